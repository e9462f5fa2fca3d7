//! WHEP (RFC 9725): `POST /api/cameras/{id}/whep` with an SDP offer answers `201` with the SDP
//! answer and a `Location` to `DELETE` the session; `OPTIONS` says what is accepted (and answers
//! CORS preflights from allowed origins); `PATCH` (trickle ICE) is not supported, so browsers
//! send their candidates in the offer, which is what WHEP players do. The peers themselves are
//! [`crate::webrtc`]'s.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::access::{origin_allowed, ClientAddr, LocalAddr};
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::outputs::{described_stream, NotDescribed};
use crate::webrtc::{profile_level_id, Offer};
use camhub_media::annexb::Coding;

/// How long an offer waits for an idle camera's first keyframe (its parameter sets).
const DESCRIBE_WITHIN: Duration = Duration::from_secs(10);
/// The largest offer read.
const MAX_OFFER: usize = 64 * 1024;

/// `POST /api/cameras/{id}/whep`.
pub async fn offer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    client: Option<Extension<ClientAddr>>,
    local: Option<Extension<LocalAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let webrtc = state
        .webrtc
        .clone()
        .map_err(|why| Error::new(ErrorKind::Unavailable, format!("WebRTC is off: {why}")))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(Error::new(
            ErrorKind::UnsupportedMedia,
            "send the SDP offer with Content-Type: application/sdp",
        ));
    }
    if body.len() > MAX_OFFER {
        return Err(Error::new(ErrorKind::BadRequest, "the offer is too large"));
    }
    let sdp = String::from_utf8(body.to_vec())
        .map_err(|_| Error::new(ErrorKind::BadRequest, "the offer is not UTF-8 text"))?;
    let camera = state.hub.camera(&id)?;
    let (coding, params) =
        described_stream(&camera, Duration::from_secs(1), DESCRIBE_WITHIN, false)
            .await
            .map_err(|e| match e {
                NotDescribed::Unplayable(why) => Error::new(ErrorKind::UnsupportedMedia, why),
                NotDescribed::NoKeyframe(why) => Error::new(ErrorKind::Unavailable, why),
            })?;
    if coding != Some(Coding::H264) {
        return Err(Error::new(
            ErrorKind::UnsupportedMedia,
            format!(
                "camera {id} sends {}, and browsers take only H.264 over WebRTC from camhub: set \
                 transcode = \"h264\" on the camera, or play it through MSE",
                params.codec
            ),
        ));
    }
    let profile_level_id = profile_level_id(&params.parameter_sets).ok_or_else(|| {
        Error::new(
            ErrorKind::Unavailable,
            format!("camera {id}: no H.264 sequence parameter set yet"),
        )
    })?;
    let peer = client.map_or_else(
        || std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        |Extension(c)| c.0,
    );
    let (session, answer) = webrtc
        .offer(Offer {
            camera,
            profile_level_id,
            sdp,
            local_ip: local.map(|Extension(l)| l.0.ip()),
            peer,
        })
        .await?;
    let location = format!("{}/api/cameras/{id}/whep/{session}", state.base_path);
    let mut response = (StatusCode::CREATED, answer).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    links(h, &webrtc.ice_servers);
    cors(h, &headers, &state);
    Ok(response)
}

/// `DELETE /api/cameras/{id}/whep/{session}`: ends the session and frees everything it held.
pub async fn delete(
    State(state): State<AppState>,
    Path((id, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let gone = || {
        Error::new(
            ErrorKind::NotFound,
            format!("no WebRTC session {session} of camera {id}"),
        )
    };
    let webrtc = state.webrtc.clone().map_err(|_| gone())?;
    let n: u64 = session.parse().map_err(|_| gone())?;
    if !webrtc.delete(&id, n).await {
        return Err(gone());
    }
    let mut response = StatusCode::OK.into_response();
    cors(response.headers_mut(), &headers, &state);
    Ok(response)
}

/// `OPTIONS /api/cameras/{id}/whep` (and on a session): what is accepted, the ICE servers, and the
/// CORS preflight answer for allowed origins.
pub async fn options(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert("Accept-Post", HeaderValue::from_static("application/sdp"));
    h.insert(
        header::ALLOW,
        HeaderValue::from_static("OPTIONS, POST, DELETE"),
    );
    if let Ok(w) = &state.webrtc {
        links(h, &w.ice_servers);
    }
    cors(h, &headers, &state);
    response
}

/// `Link: <stun:…>; rel="ice-server"` for each configured ICE server.
fn links(h: &mut HeaderMap, servers: &[String]) {
    for s in servers {
        if let Ok(v) = HeaderValue::from_str(&format!("<{s}>; rel=\"ice-server\"")) {
            h.append(header::LINK, v);
        }
    }
}

/// CORS for a request from another origin that `[server] allowed_origins` allows (a WHEP player
/// on another site, such as a dashboard).
fn cors(h: &mut HeaderMap, request: &HeaderMap, state: &AppState) {
    let Some(origin) = request.get(header::ORIGIN).cloned() else {
        return;
    };
    let policy = state.auth.policy();
    if !origin_allowed(request, &policy.allowed_origins) {
        return;
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("OPTIONS, POST, DELETE"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}
