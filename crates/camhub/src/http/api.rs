//! JSON API: the camera list with live status.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::AppState;
use crate::auth::Principal;
use crate::error::{Error, ErrorKind};
use crate::hub::Camera;

/// `GET /api/cameras`: the cameras the asker may see.
pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Json<Value> {
    Json(Value::Array(
        state
            .hub
            .cameras()
            .iter()
            .filter(|c| principal.can_see(&c.config.id))
            .map(|c| camera_json(c))
            .collect(),
    ))
}

/// `GET /api/cameras/{id}`.
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let cam = state.hub.camera(&id)?;
    Ok(Json(camera_json(&cam)))
}

/// `POST /api/config/reload`: reads the config file again and applies it (only changed cameras
/// restart). `200` with what changed, or `400` / `409` with why nothing did.
pub async fn reload(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match state.reloader.reload(&state.hub, &state.auth).await {
        Ok(outcome) => Json(json!(outcome)).into_response(),
        Err(e) => super::config_api::reload_error(e),
    }
}

/// Unknown paths.
pub async fn not_found(uri: axum::http::Uri) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "no such page or endpoint: {}; the API is described in docs/api.md",
            uri.path()
        ),
    )
}

/// A camera as the API shows it. URLs are redacted.
pub fn camera_json(cam: &Camera) -> Value {
    let s = cam.status.borrow().clone();
    json!({
        "id": cam.config.id,
        "name": cam.config.name,
        "url": cam.config.source.redacted,
        "substream_url": cam.config.substream.as_ref().map(|s| s.redacted.clone()),
        "state": s.state,
        "reason": s.reason,
        "codec": s.codec,
        "width": s.width,
        "height": s.height,
        "fps": s.fps,
        "viewers": cam.viewers(),
        "reconnects": s.reconnects,
        "last_error": s.last_error,
        "error_kind": s.error_kind,
        "last_frame_age_ms": cam.last_frame_age().map(|d| d.as_millis() as u64),
        "always_on": cam.config.always_on,
        // What MSE, stream.mp4 and HLS carry: the camera's own stream, or its transcode.
        "player_stream": if cam.transcode.is_some() { "transcoded h264" } else { "camera" },
        // The geometry applied to the camera's pictures (JPEG, WebSocket, motion, snapshots), and
        // whether players get it too: they do only through a transcode.
        "transform": transform_json(&cam.config.transform, cam.transcode.is_some()),
        // RTSP and WebRTC clients of the camera's own stream (and of its substream).
        "sessions": cam.sessions.list().iter()
            .chain(cam.substream.iter().flat_map(|s| s.sessions.list()).collect::<Vec<_>>().iter())
            .map(|s| s.json()).collect::<Vec<_>>(),
        "substream": cam.substream.as_ref().map(|sub| {
            let s = sub.status.borrow().clone();
            json!({
                "state": s.state, "reason": s.reason, "codec": s.codec, "width": s.width,
                "height": s.height, "fps": s.fps, "viewers": sub.viewers(),
                "reconnects": s.reconnects, "last_error": s.last_error, "error_kind": s.error_kind,
            })
        }),
    })
}

/// A camera's transform for the API: null without one.
fn transform_json(t: &camhub_config::Transform, transcoded: bool) -> Value {
    if t.is_identity() {
        return Value::Null;
    }
    let flip = match (t.flip_horizontal, t.flip_vertical) {
        (true, true) => Some("both"),
        (true, false) => Some("horizontal"),
        (false, true) => Some("vertical"),
        (false, false) => None,
    };
    json!({
        "rotate": t.rotate.degrees(),
        "flip": flip,
        "perspective": t.perspective.map(|p| json!({
            "corners": p.corners, "width": p.width, "height": p.height,
        })),
        "crop": t.crop.map(|c| [c.x, c.y, c.width, c.height]),
        "transform_size": t.reference.map(|(w, h)| [w, h]),
        "players_transformed": transcoded,
    })
}
