//! `GET /api/cameras/{id}/stream.mjpeg`: multipart/x-mixed-replace MJPEG. Each viewer gets the
//! newest frame of its variant at once, then every new one (or, with `fps=`, the newest one at
//! most that often). The JPEG bytes are shared with every other viewer of the variant (no copy);
//! the body is pulled by hyper, so a viewer that stops reading holds at most one frame.
//! While the camera is not streaming, a labelled placeholder frame is sent every few seconds.

use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use camhub_media::multipart::part_header;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::query::{raw, PictureQuery};
use super::serve::ConnWritten;
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::camera::ViewerBytes;
use crate::hub::status::Metrics;
use crate::hub::{Camera, Hub, JpegFrame, Subscription, VariantKey};

/// The multipart boundary camhub writes.
pub const BOUNDARY: &str = "frame";
/// How long a viewer waits for a frame before a placeholder is sent (when the camera is down).
pub const PLACEHOLDER_AFTER: Duration = Duration::from_secs(3);

/// The handler.
pub async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    conn: Option<Extension<ConnWritten>>,
    q: RawQuery,
) -> Result<Response, Error> {
    let cam = state.hub.camera(&id)?;
    let query = PictureQuery::parse(raw(&q), true)?;
    let sub = cam.subscribe(query.key)?;
    let written = conn.map(|Extension(ConnWritten(w))| w);
    let bytes = cam.register_viewer(written.clone());
    let viewer = Viewer {
        sub,
        camera: cam.clone(),
        hub: state.hub.clone(),
        id,
        key: query.key,
        written,
        min_interval: query.fps.map(|f| Duration::from_secs_f64(1.0 / f)),
        last_sent: None,
        first: true,
        bytes,
        shutdown: state.shutdown.clone(),
        last_size: (640, 360),
        started: Instant::now(),
        placeholder_timer: Box::pin(tokio::time::sleep(PLACEHOLDER_AFTER)),
    };
    let body = Body::from_stream(futures::stream::unfold(viewer, |mut v| async move {
        let chunk = v.next_chunk().await?;
        Some((Ok::<Bytes, std::io::Error>(chunk), v))
    }));
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
        )
        .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
        .header("X-Content-Type-Options", "nosniff")
        .body(body)
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot build the response: {e}"),
            )
        })
}

/// One MJPEG viewer's state.
struct Viewer {
    sub: Subscription,
    /// The camera asked for (`sub` may be on its substream).
    camera: Arc<Camera>,
    /// Where to find the camera again when a config reload replaces it.
    hub: Arc<Hub>,
    id: String,
    key: VariantKey,
    written: Option<Arc<AtomicU64>>,
    min_interval: Option<Duration>,
    last_sent: Option<Instant>,
    first: bool,
    bytes: Arc<ViewerBytes>,
    shutdown: watch::Receiver<bool>,
    last_size: (u32, u32),
    /// When the response started (the placeholder clock before anything was sent).
    started: Instant,
    /// Fires when a placeholder may be due: [`PLACEHOLDER_AFTER`] without sending anything.
    placeholder_timer: Pin<Box<Sleep>>,
}

impl Viewer {
    /// The next chunk of the body — one whole multipart part; `None` ends the response.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let part = match self.next_frame().await? {
            Next::Frame(frame) => {
                let metrics = &self.sub.camera().metrics;
                Metrics::add(&metrics.frames_out, 1);
                metrics.added_latency.observe(frame.received.elapsed());
                frame.part.get_or_init(|| make_part(&frame.data)).clone()
            }
            Next::Placeholder(jpeg) => make_part(&jpeg),
        };
        Metrics::add(&self.sub.camera().metrics.bytes_out, part.len() as u64);
        self.bytes.produce(part.len());
        self.last_sent = Some(Instant::now());
        Some(part)
    }

    /// The next frame to send.
    async fn next_frame(&mut self) -> Option<Next> {
        if *self.shutdown.borrow() {
            return None;
        }
        if self.first {
            self.first = false;
            if let Some(f) = self.sub.latest() {
                self.last_size = (f.width, f.height);
                return Some(Next::Frame(f));
            }
        }
        if let (Some(min), Some(last)) = (self.min_interval, self.last_sent) {
            let due = last + min;
            tokio::select! {
                _ = self.sub.pace_until(due) => {}
                _ = self.shutdown.changed() => return None,
            }
            if self.sub.has_new() {
                if let Some(f) = self.sub.latest() {
                    self.last_size = (f.width, f.height);
                    return Some(Next::Frame(f));
                }
            }
        }
        loop {
            tokio::select! {
                f = self.sub.next() => match f {
                    Some(f) => {
                        self.last_size = (f.width, f.height);
                        return Some(Next::Frame(f));
                    }
                    None if self.follow() => continue,
                    None => return None,
                },
                _ = self.placeholder_timer.as_mut() => {
                    // The timer is armed once and moved on lazily: re-arming it for every frame
                    // would cost two timer-wheel operations per frame per viewer.
                    let now = Instant::now();
                    let due = self.last_sent.unwrap_or(self.started) + PLACEHOLDER_AFTER;
                    if now < due {
                        self.placeholder_timer.as_mut().reset(due);
                        continue;
                    }
                    self.placeholder_timer.as_mut().reset(now + PLACEHOLDER_AFTER);
                    if let Some(p) = self.placeholder().await {
                        return Some(Next::Placeholder(p));
                    }
                },
                _ = self.shutdown.changed() => return None,
            }
        }
    }

    /// After a config reload replaced the camera, subscribes to the new one with the same request:
    /// the response goes on (its next part comes from the new camera). False when the camera was
    /// removed, or nothing replaced it.
    fn follow(&mut self) -> bool {
        let Ok(cam) = self.hub.camera(&self.id) else {
            return false;
        };
        if Arc::ptr_eq(&cam, &self.camera) {
            return false;
        }
        match cam.subscribe(self.key) {
            Ok(sub) => {
                self.sub = sub;
                self.camera = cam.clone();
                self.bytes = cam.register_viewer(self.written.clone());
                true
            }
            Err(_) => false,
        }
    }

    /// A labelled placeholder when the camera is not streaming (None while it streams normally).
    /// Made once per camera and status, and shared by every viewer.
    async fn placeholder(&self) -> Option<Bytes> {
        self.sub.camera().placeholder(self.last_size).await
    }
}

/// What a viewer sends next.
enum Next {
    /// A camera frame (its multipart part is shared with every viewer of the variant).
    Frame(Arc<JpegFrame>),
    /// A "reconnecting…" picture.
    Placeholder(Bytes),
}

/// One multipart part: header, JPEG, CRLF.
fn make_part(jpeg: &[u8]) -> Bytes {
    let mut part = part_header(BOUNDARY, jpeg.len());
    part.reserve(jpeg.len() + 2);
    part.extend_from_slice(jpeg);
    part.extend_from_slice(b"\r\n");
    Bytes::from(part)
}
