//! `GET /api/cameras/{id}/frame.raw?width=&height=&format=`: the newest picture as raw pixels, for
//! programs that want arrays rather than JPEGs (numpy, OpenCV, a model's input tensor): packed
//! `bgr` (OpenCV's order, the default) or `rgb`, `gray`, or planar `yuv420` (I420, planes back to
//! back, stride = width). Decoded and scaled by camhub, full-range BT.601 colours (what a JPEG of
//! the same picture decodes to). The size, stride, format, sequence number and timestamps are in
//! headers. An idle camera is woken like a snapshot. The conversion is the camera's shared one
//! ([`crate::hub::raw`]): readers of the same size and format cost one conversion per picture.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::Response;

use super::query::{raw, whole_number};
use super::snapshot::newest_picture;
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::raw::{PixelFormat, RawFrame, RawKey};
use crate::hub::status::Metrics;
use crate::hub::taps::Frame;
use crate::hub::Camera;
use std::sync::Arc;

/// `width`, `height`, `format` (and the access layer's `token`), checked before the camera is
/// woken (the size's bounds, not the picture).
fn parse_query(q: Option<&str>) -> Result<RawKey, Error> {
    let (mut w, mut h, mut format) = (None, None, PixelFormat::Bgr);
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let int = |name: &str| whole_number(name, v);
        match k {
            "width" => w = int("width")?,
            "height" => h = int("height")?,
            "format" => format = PixelFormat::parse(v)?,
            "token" => {}
            other => {
                return Err(Error::new(
                    ErrorKind::BadRequest,
                    format!(
                        "unknown parameter \"{}\"; valid parameters: width, height, format",
                        other.escape_default()
                    ),
                ))
            }
        }
    }
    RawKey::new(w, h, format)
}

/// `frame` as `key` asks, through the camera's shared conversion (on a thread: it blocks).
async fn converted(
    cam: &Arc<Camera>,
    frame: Arc<Frame>,
    key: RawKey,
) -> Result<Arc<RawFrame>, Error> {
    let cam = cam.clone();
    tokio::task::spawn_blocking(move || cam.raw.get(&frame, key))
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("conversion failed: {e}")))?
}

/// The handler.
pub async fn frame_raw(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response, Error> {
    let key = parse_query(raw(&q))?;
    let cam = state.hub.camera(&id)?.clone();
    let _admission = cam.admit()?;
    let frame = newest_picture(&state, &cam, false).await?;
    let made = converted(&cam, frame, key).await?;
    Metrics::add(&cam.metrics.bytes_out, made.data.len() as u64);
    let content_type = if key.format == PixelFormat::Jpeg {
        "image/jpeg"
    } else {
        "application/octet-stream"
    };
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .header("X-Width", made.width.to_string())
        .header("X-Height", made.height.to_string())
        .header("X-Stride", made.stride().to_string())
        .header("X-Format", made.format.name())
        .header("X-Frame-Seq", made.seq.to_string())
        .header("X-Frame-Timestamp", made.unix_ms.to_string())
        .header(
            "X-Frame-Age-Ms",
            made.received.elapsed().as_millis().to_string(),
        );
    if let Some(pts) = made.pts {
        response = response.header("X-Frame-Pts", pts.to_string());
    }
    response
        .body(axum::body::Body::from(made.data.clone()))
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot build the response: {e}"),
            )
        })
}

/// How long one `next` waits for a newer picture before the server says `timeout`.
const NEXT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `GET /api/cameras/{id}/frames` (WebSocket): the streaming form of `frame.raw`, pulled. The
/// client sends `next` (a text message) whenever it is ready for a picture; the server answers
/// with the newest picture it has not sent yet (waiting for one if needed), as one binary message:
/// a little-endian u32 `n`, `n` bytes of JSON (`width`, `height`, `stride`, `format`, `seq`,
/// `timestamp`, `pts`, `skipped`), then the pixels. `latest` answers at once with the newest
/// picture, sent before or not. A JSON form carries how long `next` may wait:
/// `{"type":"next","timeout_ms":2000}` (10 s unless given, at most 60 s). Nothing is ever queued for a slow client: it gets the newest
/// picture when it asks, and `skipped` says how many it did not take.
pub async fn frames_ws(
    ws: axum::extract::ws::WebSocketUpgrade,
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response, Error> {
    let key = parse_query(raw(&q))?;
    let cam = state.hub.camera(&id)?.clone();
    let admission = cam.admit()?;
    Ok(ws
        .max_message_size(4096)
        .on_upgrade(move |socket| async move {
            let _admission = admission;
            frames_session(socket, cam, key).await;
        }))
}

/// What a `/frames` client asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// A picture newer than the last one sent, waiting for it.
    Next,
    /// The newest picture now, even if sent before.
    Latest,
}

/// Longest wait a `next` may ask for with `timeout_ms`.
const LONGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The client's message: `next` or `latest`, as text or as JSON (`{"type": "next", "timeout_ms":
/// 2000}`: how long to wait for a newer picture, [`NEXT_WAIT`] unless given).
fn ask(text: &str) -> Option<(Ask, std::time::Duration)> {
    let (kind, wait) = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => (
            v["type"].as_str().map(str::to_owned)?,
            v["timeout_ms"]
                .as_u64()
                .map(std::time::Duration::from_millis),
        ),
        Err(_) => (text.to_owned(), None),
    };
    let wait = wait.map_or(NEXT_WAIT, |w| w.min(LONGEST_WAIT));
    match kind.as_str() {
        "next" => Some((Ask::Next, wait)),
        "latest" => Some((Ask::Latest, wait)),
        _ => None,
    }
}

async fn frames_session(mut socket: axum::extract::ws::WebSocket, cam: Arc<Camera>, key: RawKey) {
    use axum::extract::ws::Message;
    // Held for the session: decoding runs while the client reads.
    let _sub = cam.subscribe_pictures();
    let mut last_seq = 0u64;
    while let Some(Ok(msg)) = socket.recv().await {
        let text = match &msg {
            Message::Text(t) => t.as_str().trim().to_owned(),
            Message::Close(_) => break,
            Message::Binary(_) => String::from("binary"),
            _ => continue,
        };
        let Some((asked, wait)) = ask(&text) else {
            let error = serde_json::json!({
                "type": "error",
                "error": "send \"next\" for the next picture, or \"latest\" for the newest now",
            });
            if send_json(&mut socket, &error).await.is_err() {
                break;
            }
            continue;
        };
        cam.touch();
        cam.ensure_running();
        let frame = match asked {
            Ask::Latest => cam.decode.pictures.peek(),
            Ask::Next => {
                // The picture tap is waited on from a thread (a condvar shared with the decode
                // thread).
                let tap = cam.decode.pictures.clone();
                match tokio::task::spawn_blocking(move || tap.wait_after(last_seq, wait)).await {
                    Ok(f) => f,
                    Err(_) => break,
                }
            }
        };
        let Some(frame) = frame else {
            let st = cam.status.borrow().clone();
            let kind = if asked == Ask::Next {
                "timeout"
            } else {
                "none"
            };
            let nothing = serde_json::json!({
                "type": kind,
                "state": st.state.name(),
                "reason": st.reason.or(st.last_error),
            });
            if send_json(&mut socket, &nothing).await.is_err() {
                break;
            }
            continue;
        };
        cam.touch();
        let skipped = if last_seq == 0 || frame.seq <= last_seq {
            0
        } else {
            frame.seq - last_seq - 1
        };
        last_seq = last_seq.max(frame.seq);
        let made = match converted(&cam, frame, key).await {
            Ok(m) => m,
            Err(e) => {
                let error = serde_json::json!({"type": "error", "error": e.message});
                if send_json(&mut socket, &error).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let header = serde_json::json!({
            "width": made.width, "height": made.height, "stride": made.stride(),
            "format": made.format.name(), "seq": made.seq, "timestamp": made.unix_ms,
            "pts": made.pts, "skipped": skipped,
        })
        .to_string();
        let mut message = Vec::with_capacity(4 + header.len() + made.data.len());
        message.extend_from_slice(&(header.len() as u32).to_le_bytes());
        message.extend_from_slice(header.as_bytes());
        message.extend_from_slice(&made.data);
        Metrics::add(&cam.metrics.bytes_out, message.len() as u64);
        if socket.send(Message::Binary(message.into())).await.is_err() {
            break;
        }
    }
}

/// Sends one JSON text message (errors, timeouts) on the `/frames` socket.
async fn send_json(
    socket: &mut axum::extract::ws::WebSocket,
    value: &serde_json::Value,
) -> Result<(), axum::Error> {
    socket
        .send(axum::extract::ws::Message::Text(value.to_string().into()))
        .await
}
