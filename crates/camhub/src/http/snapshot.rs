//! `GET /api/cameras/{id}/frame.jpeg`: the newest frame at once, with its age in `X-Frame-Age-Ms`.
//! An idle camera is woken and the request waits up to `snapshot_timeout` for a frame, then answers
//! 503 with the reason. Never hangs.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::Response;
use axum::Extension;

use super::query::{raw, PictureQuery};
use super::serve::ConnWritten;
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::status::Metrics;
use crate::hub::taps::FrameContent;
use crate::hub::State as CamState;

/// A frame older than this is not served from the slot of a camera that is not streaming.
const FRESH_MS: u128 = 2000;

/// The handler.
pub async fn frame(
    State(state): State<AppState>,
    Path(id): Path<String>,
    conn: Option<Extension<ConnWritten>>,
    q: RawQuery,
) -> Result<Response, Error> {
    let cam = state.hub.camera(&id)?.clone();
    let query = PictureQuery::parse(raw(&q), false)?;
    let mut sub = cam.subscribe(query.key)?;
    // The substream may be the one serving this size.
    let source = sub.camera().clone();
    let streaming = source.status.borrow().state == CamState::Streaming;
    // Served at once only if it is the newest picture the camera produced (or, from a camera
    // that is not streaming, a recent one).
    let at_hand = sub.latest().filter(|f| {
        if streaming {
            f.seq >= source.latest_seq()
        } else {
            f.received.elapsed().as_millis() < FRESH_MS
        }
    });
    let frame = match at_hand {
        Some(f) => f,
        None => {
            let timeout = state.hub.server.snapshot_timeout;
            match tokio::time::timeout(timeout, sub.next()).await {
                Ok(Some(f)) => f,
                _ => {
                    let s = source.status.borrow().clone();
                    // Between retries the state is briefly "connecting": the last failure
                    // says more than "connecting to …".
                    let why = if s.state == CamState::Connecting {
                        s.last_error.or(s.reason)
                    } else {
                        s.reason.or(s.last_error)
                    }
                    .unwrap_or_else(|| format!("state: {}", s.state.name()));
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "camera \"{id}\" produced no frame within {:.1}s ({why})",
                            timeout.as_secs_f64()
                        ),
                    ));
                }
            }
        }
    };
    Metrics::add(&source.metrics.bytes_out, frame.data.len() as u64);
    // Counted as queued until the kernel took it: the counters live as long as the body.
    let bytes = source.register_viewer(conn.map(|Extension(ConnWritten(w))| w));
    bytes.produce(frame.data.len());
    let body = CountedBody {
        data: Some(frame.data.clone()),
        len: frame.data.len() as u64,
        _bytes: bytes,
    };
    Metrics::add(&source.metrics.frames_out, 1);
    Response::builder()
        .header(header::CONTENT_TYPE, "image/jpeg")
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            "X-Frame-Age-Ms",
            frame.received.elapsed().as_millis().to_string(),
        )
        .header("X-Frame-Seq", frame.seq.to_string())
        .header("X-Frame-Timestamp", frame.unix_ms.to_string())
        .body(axum::body::Body::new(body))
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot build the response: {e}"),
            )
        })
}

/// A snapshot's body that keeps its viewer's byte counters registered until hyper is done with it,
/// with an exact length (so the response keeps its `Content-Length`).
struct CountedBody {
    data: Option<bytes::Bytes>,
    len: u64,
    _bytes: std::sync::Arc<crate::hub::camera::ViewerBytes>,
}

impl http_body::Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.data.take().map(|d| Ok(http_body::Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(if self.data.is_some() { self.len } else { 0 })
    }
}

/// `GET /api/cameras/{id}/source.jpeg`: the newest picture as the camera sends it, before its
/// transform (for the calibration page, which places a perspective's corners on it), at full size.
/// For a camera without a transform it is the picture every viewer gets. Wakes the camera like a
/// snapshot; 503 with the reason when no picture comes within `snapshot_timeout`.
pub async fn source(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let cam = state.hub.camera(&id)?.clone();
    let _admission = cam.admit()?;
    let transformed = !cam.config.transform.is_identity();
    cam.decode.want_source(15_000);
    let frame = newest_picture(&state, &cam, transformed).await?;
    let jpeg = tokio::task::spawn_blocking(move || -> Result<bytes::Bytes, String> {
        match &frame.content {
            FrameContent::Jpeg(data) => Ok(data.clone()),
            FrameContent::Picture(p) => {
                let ready = camhub_codec::Scaler::new()
                    .scale(p, p.width(), p.height())
                    .map_err(|e| e.to_string())?;
                camhub_codec::JpegEncoder::new()
                    .and_then(|mut e| e.encode(&ready, 90))
                    .map_err(|e| e.to_string())
            }
        }
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Internal, format!("encoding failed: {e}")))?
    .map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot encode the picture: {e}"),
        )
    })?;
    Metrics::add(&cam.metrics.bytes_out, jpeg.len() as u64);
    Response::builder()
        .header(header::CONTENT_TYPE, "image/jpeg")
        .header(header::CACHE_CONTROL, "no-store")
        .body(axum::body::Body::from(jpeg))
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot build the response: {e}"),
            )
        })
}

/// The camera's newest picture (`untransformed`: as the camera sent it, before its transform),
/// waking the camera and waiting up to `snapshot_timeout` for one; 503 with the reason.
pub async fn newest_picture(
    state: &AppState,
    cam: &std::sync::Arc<crate::hub::Camera>,
    untransformed: bool,
) -> Result<std::sync::Arc<crate::hub::taps::Frame>, Error> {
    let _sub = cam.subscribe_pictures();
    let asked = crate::hub::unix_ms();
    let timeout = state.hub.server.snapshot_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        cam.touch();
        let newest = if untransformed {
            cam.decode
                .source
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        } else {
            cam.decode.pictures.peek()
        };
        // A picture from before the request is fine if it is recent: the camera is live.
        if let Some(f) = newest.filter(|f| f.unix_ms + FRESH_MS as u64 >= asked) {
            return Ok(f);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            let s = cam.status.borrow().clone();
            let why = s
                .reason
                .or(s.last_error)
                .unwrap_or_else(|| format!("state: {}", s.state.name()));
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "camera \"{}\" produced no frame within {:.1}s ({why})",
                    cam.id(),
                    timeout.as_secs_f64()
                ),
            ));
        }
        // Wait on the picture tap (from a thread: it is a condvar shared with the decode thread)
        // for the next picture, waking now and then to keep the camera wanted.
        let tap = cam.decode.pictures.clone();
        let after = tap.peek().map_or(0, |f| f.seq);
        let slice = (deadline - now).min(std::time::Duration::from_millis(500));
        if tokio::task::spawn_blocking(move || tap.wait_after(after, slice))
            .await
            .is_err()
        {
            return Err(Error::new(
                ErrorKind::Internal,
                "waiting for a picture failed",
            ));
        }
    }
}
