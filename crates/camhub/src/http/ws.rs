//! `GET /api/ws`: one WebSocket carries a whole grid of cameras (browsers allow only six HTTP/1.1
//! connections per host, so a grid of MJPEG `<img>`s stalls past six). The client subscribes with
//! JSON; the server sends, per camera, a JSON header then the binary JPEG — only the newest frame:
//! while a send is in progress, newer frames replace older ones in the cameras' latest-value slots.
//! Status changes and a heartbeat every 5 s let the client tell a dead link from a still scene.
//! The protocol is documented in `docs/api.md`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use super::serve::ConnWritten;
use super::AppState;
use crate::auth::Principal;
use crate::error::{Error, ErrorKind};
use crate::hub::camera::ViewerBytes;
use crate::hub::motion::MotionState;
use crate::hub::status::{Metrics, Status};
use crate::hub::{Camera, Subscription, VariantKey};

/// Heartbeat period.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Most entries in one subscribe message.
const MAX_ENTRIES: usize = 64;

/// The upgrade handler.
pub async fn grid(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    conn: Option<Extension<ConnWritten>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    // What this connection was handed versus what the kernel accepted, for `/metrics`.
    let bytes = ViewerBytes::new(conn.map(|Extension(ConnWritten(w))| w));
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| session(socket, state, bytes, principal))
}

#[derive(Deserialize)]
struct ClientMessage {
    subscribe: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    camera: String,
    width: Option<u32>,
    height: Option<u32>,
    quality: Option<u32>,
    fps: Option<f64>,
}

struct Sub {
    camera: Arc<Camera>,
    key: VariantKey,
    frames: Subscription,
    status: watch::Receiver<Status>,
    /// The camera's motion state: the grid shows a badge per camera.
    motion: watch::Receiver<MotionState>,
    /// (events started, active) as last told.
    motion_seen: (u64, bool),
    min_interval: Option<Duration>,
    last_sent: Option<Instant>,
}

impl Sub {
    fn new(
        camera: Arc<Camera>,
        key: VariantKey,
        frames: Subscription,
        min_interval: Option<Duration>,
        bytes: &Arc<ViewerBytes>,
    ) -> Sub {
        // The status of the stream that serves this size (the substream for small tiles).
        let status = frames.camera().status.subscribe();
        frames.camera().register_queue(bytes);
        let motion = camera.motion.state.subscribe();
        Sub {
            camera,
            key,
            frames,
            status,
            motion,
            // Told at subscription (see `motion_msg`).
            motion_seen: (0, false),
            min_interval,
            last_sent: None,
        }
    }

    /// After a config reload replaced the camera: the same subscription on the new camera (the
    /// grid tile keeps playing). `None` when the camera was removed.
    fn follow(&self, state: &AppState, bytes: &Arc<ViewerBytes>) -> Option<Sub> {
        let cam = state.hub.camera(self.camera.id()).ok()?;
        if Arc::ptr_eq(&cam, &self.camera) {
            return None;
        }
        let frames = cam.subscribe(self.key).ok()?;
        Some(Sub::new(cam, self.key, frames, self.min_interval, bytes))
    }
}

enum Wake {
    Frame(usize),
    Status(usize),
    Motion(usize),
    Gone(usize),
}

async fn session(
    socket: WebSocket,
    state: AppState,
    bytes: Arc<ViewerBytes>,
    principal: Principal,
) {
    let (mut sink, mut stream) = socket.split();
    let mut subs: Vec<Sub> = Vec::new();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut shutdown = state.shutdown.clone();
    loop {
        let wake = async {
            if subs.is_empty() {
                return futures::future::pending::<Wake>().await;
            }
            let futs = subs.iter_mut().enumerate().map(|(i, s)| {
                Box::pin(async move {
                    if let (Some(min), Some(last)) = (s.min_interval, s.last_sent) {
                        // Pacing counts as waiting for a frame: a tile at fps=0.1 keeps its camera.
                        s.frames.pace_until(last + min).await;
                    }
                    tokio::select! {
                        r = s.frames.wait_new() => if r { Wake::Frame(i) } else { Wake::Gone(i) },
                        r = s.status.changed() => if r.is_ok() { Wake::Status(i) } else { Wake::Gone(i) },
                        r = s.motion.changed() => if r.is_ok() { Wake::Motion(i) } else { Wake::Gone(i) },
                    }
                })
            });
            futures::future::select_all(futs).await.0
        };
        let outgoing: Vec<Message> = tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => match subscribe(&state, &principal, &text, &mut subs, &bytes) {
                    Ok(msgs) => msgs,
                    Err(e) => vec![text_msg(json!({"type": "error", "camera": null, "error": e}))],
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => Vec::new(),
            },
            w = wake => match w {
                Wake::Frame(i) => frame_messages(&mut subs[i]),
                Wake::Status(i) => {
                    let s = &mut subs[i];
                    let status = s.status.borrow_and_update().clone();
                    vec![status_msg(&s.camera, &status)]
                }
                Wake::Motion(i) => motion_msg(&mut subs[i], false).into_iter().collect(),
                Wake::Gone(i) => {
                    let gone = subs.remove(i);
                    match gone.follow(&state, &bytes) {
                        Some(mut sub) => {
                            let status = sub.status.borrow_and_update().clone();
                            let mut out = vec![status_msg(&sub.camera, &status)];
                            out.extend(motion_msg(&mut sub, true));
                            out.extend(frame_messages(&mut sub));
                            subs.push(sub);
                            out
                        }
                        None => vec![text_msg(json!({
                            "type": "error", "camera": gone.camera.id(),
                            "error": "this camera was removed from the config",
                        }))],
                    }
                }
            },
            _ = heartbeat.tick() => vec![text_msg(json!({"type": "heartbeat", "ts": crate::hub::unix_ms()}))],
            _ = shutdown.changed() => break,
        };
        if send_all(&mut sink, &bytes, outgoing).await.is_err() {
            return;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}

/// Applies a subscribe message: replaces the subscription set; returns the immediate replies
/// (status of each camera, the newest frame where one exists, errors for bad entries).
fn subscribe(
    state: &AppState,
    principal: &Principal,
    text: &str,
    subs: &mut Vec<Sub>,
    bytes: &Arc<ViewerBytes>,
) -> Result<Vec<Message>, String> {
    let msg: ClientMessage = serde_json::from_str(text).map_err(|e| {
        format!(
            "bad message ({e}); expected {{\"subscribe\":[{{\"camera\":\"id\",\"width\":640}}]}}"
        )
    })?;
    if msg.subscribe.len() > MAX_ENTRIES {
        return Err(format!("at most {MAX_ENTRIES} cameras per subscription"));
    }
    subs.clear();
    let mut out = Vec::new();
    for e in msg.subscribe {
        // A camera the user may not see is answered like an unknown one.
        let allowed = if principal.can_see(&e.camera) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Forbidden,
                "you may not watch this camera",
            ))
        };
        let result = allowed
            .and_then(|()| state.hub.camera(&e.camera))
            .and_then(|cam| {
                let key = super::query::variant_key(e.width, e.height, e.quality)?;
                if let Some(f) = e.fps {
                    super::query::check_fps(f)?;
                }
                Ok((cam.clone(), key, cam.subscribe(key)?))
            });
        match result {
            Ok((camera, key, frames)) => {
                let min_interval = e.fps.map(|f| Duration::from_secs_f64(1.0 / f));
                let mut sub = Sub::new(camera, key, frames, min_interval, bytes);
                let status = sub.status.borrow_and_update().clone();
                out.push(status_msg(&sub.camera, &status));
                out.extend(motion_msg(&mut sub, true));
                out.extend(frame_messages(&mut sub));
                subs.push(sub);
            }
            Err(err) => out.push(text_msg(
                json!({"type": "error", "camera": e.camera, "error": err.message}),
            )),
        }
    }
    Ok(out)
}

/// The header and JPEG of a subscription's newest frame (nothing if it has none).
fn frame_messages(sub: &mut Sub) -> Vec<Message> {
    let Some(f) = sub.frames.latest() else {
        return Vec::new();
    };
    sub.last_sent = Some(Instant::now());
    // Counted on the stream that made the frame (the substream for small sizes).
    let metrics = &sub.frames.camera().metrics;
    Metrics::add(&metrics.frames_out, 1);
    metrics.added_latency.observe(f.received.elapsed());
    Metrics::add(&metrics.bytes_out, f.data.len() as u64);
    vec![
        text_msg(json!({
            "type": "frame", "camera": sub.camera.id(), "seq": f.seq, "ts": f.unix_ms,
            "width": f.width, "height": f.height, "size": f.data.len(),
        })),
        Message::Binary(f.data.clone()),
    ]
}

/// Sends messages in order, counting each as handed to the viewer (for the queued-bytes metrics);
/// the grid's and the camera WebSocket's one way out.
pub(crate) async fn send_all(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    bytes: &ViewerBytes,
    messages: Vec<Message>,
) -> Result<(), axum::Error> {
    for m in messages {
        bytes.produce(match &m {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        });
        sink.send(m).await?;
    }
    Ok(())
}

/// A camera's motion as a grid message, when it changed: a start or an end since last told
/// (`always`: the current state, at subscription). Box updates are left to the camera WebSocket:
/// a grid needs the badge, not ten messages a second.
fn motion_msg(sub: &mut Sub, always: bool) -> Option<Message> {
    let m = sub.motion.borrow_and_update().clone();
    let seen = (m.starts, m.active);
    if !always && seen == sub.motion_seen {
        return None;
    }
    sub.motion_seen = seen;
    Some(text_msg(json!({
        "type": "motion", "camera": sub.camera.id(), "active": m.active,
        "detecting": m.detecting, "event": m.event.as_ref().map(crate::hub::motion::EventInfo::to_json),
    })))
}

/// A camera's status as a WebSocket message (the grid's and the camera WebSocket's).
pub(crate) fn status_msg(cam: &Camera, s: &Status) -> Message {
    text_msg(json!({
        "type": "status", "camera": cam.id(), "state": s.state, "reason": s.reason,
        "codec": s.codec, "width": s.width, "height": s.height, "fps": s.fps,
        "viewers": cam.viewers(), "reconnects": s.reconnects, "last_error": s.last_error,
        "error_kind": s.error_kind,
    }))
}

/// A one-camera WebSocket's `{"type": "error"}` message (the camera WebSocket, MSE).
pub(crate) fn error_msg(e: &str) -> Message {
    text_msg(json!({"type": "error", "error": e}))
}

pub(crate) fn text_msg(v: serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}
