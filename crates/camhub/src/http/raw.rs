//! `GET /api/cameras/{id}/frame.raw?width=&height=&format=`: the newest picture as raw pixels, for
//! programs that want arrays rather than JPEGs (numpy, OpenCV, a model's input tensor): packed
//! `bgr` (OpenCV's order, the default) or `rgb`, `gray`, or planar `yuv420` (I420, planes back to
//! back, stride = width). Decoded and scaled by camhub, full-range BT.601 colours (what a JPEG of
//! the same picture decodes to). The size, stride, format, sequence number and timestamps are in
//! headers. An idle camera is woken like a snapshot.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::Response;

use super::query::{raw, whole_number};
use super::snapshot::newest_picture;
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::status::Metrics;
use crate::hub::taps::{Frame, FrameContent};
use camhub_media::colour::{full_range_420_to_rgb, Plane, RgbOrder};
use camhub_media::size::fit_size;

/// Pixel layouts `frame.raw` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// Packed 8-bit blue, green, red.
    Bgr,
    /// Packed 8-bit red, green, blue.
    Rgb,
    /// 8-bit luma only.
    Gray,
    /// Planar 4:2:0: Y, then U, then V, each plane's rows back to back.
    Yuv420,
}

impl RawFormat {
    fn parse(v: &str) -> Result<RawFormat, Error> {
        match v {
            "bgr" => Ok(RawFormat::Bgr),
            "rgb" => Ok(RawFormat::Rgb),
            "gray" => Ok(RawFormat::Gray),
            "yuv420" => Ok(RawFormat::Yuv420),
            _ => Err(Error::new(
                ErrorKind::BadRequest,
                format!(
                    "format={} is not a pixel format; use bgr, rgb, gray or yuv420",
                    v.escape_default()
                ),
            )),
        }
    }

    /// The name, as the query and the headers write it.
    pub fn name(self) -> &'static str {
        match self {
            RawFormat::Bgr => "bgr",
            RawFormat::Rgb => "rgb",
            RawFormat::Gray => "gray",
            RawFormat::Yuv420 => "yuv420",
        }
    }

    /// Bytes of one row of the first plane, for `width` pixels.
    fn stride(self, width: u32) -> usize {
        match self {
            RawFormat::Bgr | RawFormat::Rgb => 3 * width as usize,
            RawFormat::Gray | RawFormat::Yuv420 => width as usize,
        }
    }
}

/// `width`, `height`, `format` (and the access layer's `token`), checked before the camera is
/// woken (the size's bounds, not the picture).
fn parse_query(q: Option<&str>) -> Result<(Option<u32>, Option<u32>, RawFormat), Error> {
    let (mut w, mut h, mut format) = (None, None, RawFormat::Bgr);
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let int = |name: &str| whole_number(name, v);
        match k {
            "width" => w = int("width")?,
            "height" => h = int("height")?,
            "format" => format = RawFormat::parse(v)?,
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
    if let Err(e) = fit_size(640, 480, (1, 1), w, h) {
        return Err(Error::new(ErrorKind::BadRequest, e.to_string()));
    }
    Ok((w, h, format))
}

/// The handler.
pub async fn frame_raw(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response, Error> {
    let (req_w, req_h, format) = parse_query(raw(&q))?;
    let cam = state.hub.camera(&id)?.clone();
    let _admission = cam.admit()?;
    let frame = newest_picture(&state, &cam, false).await?;
    let (seq, unix_ms, pts, age) = (
        frame.seq,
        frame.unix_ms,
        frame.pts,
        frame.received.elapsed(),
    );
    let made = tokio::task::spawn_blocking(move || convert(&frame, req_w, req_h, format))
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("conversion failed: {e}")))?
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot convert the picture: {e}"),
            )
        })?;
    let (w, h, bytes) = made;
    Metrics::add(&cam.metrics.bytes_out, bytes.len() as u64);
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .header("X-Width", w.to_string())
        .header("X-Height", h.to_string())
        .header("X-Stride", format.stride(w).to_string())
        .header("X-Format", format.name())
        .header("X-Frame-Seq", seq.to_string())
        .header("X-Frame-Timestamp", unix_ms.to_string())
        .header("X-Frame-Age-Ms", age.as_millis().to_string());
    if let Some(pts) = pts {
        response = response.header("X-Frame-Pts", pts.to_string());
    }
    response.body(axum::body::Body::from(bytes)).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot build the response: {e}"),
        )
    })
}

/// `frame` as `format` pixels at the size asked for: (width, height, bytes).
fn convert(
    frame: &Frame,
    req_w: Option<u32>,
    req_h: Option<u32>,
    format: RawFormat,
) -> Result<(u32, u32, Vec<u8>), String> {
    let decoded;
    let (pic, sar) = match &frame.content {
        FrameContent::Picture(p) => (p, p.sar()),
        FrameContent::Jpeg(data) => {
            let (w, h) = fit_size(frame.width, frame.height, (1, 1), req_w, req_h)
                .map_err(|e| e.to_string())?;
            decoded = camhub_codec::JpegDecoder::new()
                .and_then(|mut d| d.decode(data, w, h))
                .map_err(|e| e.to_string())?;
            (&decoded, (1, 1))
        }
    };
    let (w, h) =
        fit_size(frame.width, frame.height, sar, req_w, req_h).map_err(|e| e.to_string())?;
    let ready = camhub_codec::Scaler::new()
        .scale(pic, w, h)
        .map_err(|e| e.to_string())?;
    let (wu, hu) = (w as usize, h as usize);
    let planes = [0, 1, 2].map(|i| {
        let (data, stride) = ready.plane(i);
        Plane { data, stride }
    });
    let bytes = match format {
        RawFormat::Bgr | RawFormat::Rgb => {
            let mut out = vec![0u8; 3 * wu * hu];
            let order = if format == RawFormat::Bgr {
                RgbOrder::Bgr
            } else {
                RgbOrder::Rgb
            };
            full_range_420_to_rgb(planes, wu, hu, &mut out, order).map_err(|e| e.to_string())?;
            out
        }
        RawFormat::Gray | RawFormat::Yuv420 => {
            let mut out = Vec::with_capacity(wu * hu * 3 / 2 + 2);
            let sizes = [
                (wu, hu),
                (wu.div_ceil(2), hu.div_ceil(2)),
                (wu.div_ceil(2), hu.div_ceil(2)),
            ];
            let n = if format == RawFormat::Gray { 1 } else { 3 };
            for (p, (pw, ph)) in planes.iter().zip(sizes).take(n) {
                for row in p.data.chunks(p.stride).take(ph) {
                    out.extend_from_slice(row.get(..pw).ok_or("short plane")?);
                }
            }
            out
        }
    };
    Ok((w, h, bytes))
}

/// How long one `next` waits for a newer picture before the server says `timeout`.
const NEXT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `GET /api/cameras/{id}/frames` (WebSocket): the streaming form of `frame.raw`, pulled. The
/// client sends `next` (a text message) whenever it is ready for a picture; the server answers
/// with the newest picture it has not sent yet (waiting for one if needed), as one binary message:
/// a little-endian u32 `n`, `n` bytes of JSON (`width`, `height`, `stride`, `format`, `seq`,
/// `timestamp`, `pts`, `skipped`), then the pixels. Nothing is ever queued for a slow client: it
/// gets the newest picture when it asks, and `skipped` says how many it did not take.
pub async fn frames_ws(
    ws: axum::extract::ws::WebSocketUpgrade,
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response, Error> {
    let (req_w, req_h, format) = parse_query(raw(&q))?;
    let cam = state.hub.camera(&id)?.clone();
    let admission = cam.admit()?;
    Ok(ws
        .max_message_size(4096)
        .on_upgrade(move |socket| async move {
            let _admission = admission;
            frames_session(socket, cam, req_w, req_h, format).await;
        }))
}

async fn frames_session(
    mut socket: axum::extract::ws::WebSocket,
    cam: std::sync::Arc<crate::hub::Camera>,
    req_w: Option<u32>,
    req_h: Option<u32>,
    format: RawFormat,
) {
    use axum::extract::ws::Message;
    let mut sub = Some(cam.subscribe_pictures());
    let mut last_seq = 0u64;
    while let Some(Ok(msg)) = socket.recv().await {
        let text = match &msg {
            Message::Text(t) => t.as_str().trim().to_owned(),
            Message::Close(_) => break,
            Message::Binary(_) => String::from("binary"),
            _ => continue,
        };
        let next = text == "next"
            || serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v["type"] == "next");
        if !next {
            let error = serde_json::json!({
                "type": "error",
                "error": "send \"next\" for the next picture",
            });
            if send_json(&mut socket, &error).await.is_err() {
                break;
            }
            continue;
        }
        cam.touch();
        cam.ensure_running();
        // The picture tap is waited on from a thread (it is shared with the decode threads).
        let Some(mut s) = sub.take() else { break };
        let waited = tokio::task::spawn_blocking(move || {
            let f = s.wait_newer(NEXT_WAIT);
            (s, f)
        })
        .await;
        let Ok((s, frame)) = waited else { break };
        sub = Some(s);
        let Some(frame) = frame.filter(|f| f.seq > last_seq) else {
            let st = cam.status.borrow().clone();
            let timeout = serde_json::json!({
                "type": "timeout",
                "state": st.state.name(),
                "reason": st.reason.or(st.last_error),
            });
            if send_json(&mut socket, &timeout).await.is_err() {
                break;
            }
            continue;
        };
        cam.touch();
        let skipped = if last_seq == 0 {
            0
        } else {
            frame.seq - last_seq - 1
        };
        last_seq = frame.seq;
        let (seq, unix_ms, pts) = (frame.seq, frame.unix_ms, frame.pts);
        let made = tokio::task::spawn_blocking(move || convert(&frame, req_w, req_h, format)).await;
        let (w, h, pixels) = match made {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                let error = serde_json::json!({"type": "error", "error": format!("cannot convert the picture: {e}")});
                if send_json(&mut socket, &error).await.is_err() {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        let header = serde_json::json!({
            "width": w, "height": h, "stride": format.stride(w), "format": format.name(),
            "seq": seq, "timestamp": unix_ms, "pts": pts, "skipped": skipped,
        })
        .to_string();
        let mut message = Vec::with_capacity(4 + header.len() + pixels.len());
        message.extend_from_slice(&(header.len() as u32).to_le_bytes());
        message.extend_from_slice(header.as_bytes());
        message.extend_from_slice(&pixels);
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
