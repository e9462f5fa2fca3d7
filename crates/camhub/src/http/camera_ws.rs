//! `GET /api/cameras/{id}/ws`: one camera over one WebSocket, in one of three modes the client
//! switches with `{"mode": "motion" | "live" | "off"}` (optional `width`, `height`, `quality`,
//! `fps` for the JPEGs): `motion` (the default) sends binary JPEGs only while motion is in
//! progress — a browser that stays quiet while nothing moves (seed 001's detect mode) — `live`
//! sends every frame (newest only), `off` none. In every mode the server sends a JSON heartbeat
//! every 2 s and `motion_start` / `motion_end` (event id, times, box) and `motion` (boxes while
//! active) messages, so the client can tell "nothing moves" from "the link is dead".
//!
//! On a camera without `[camera.motion] enabled`, `motion` mode runs the detector with default
//! settings while such a client is connected (nothing is stored). JPEGs come from the camera's
//! variants like every other output: a JPEG is encoded only while someone takes it. The protocol
//! is documented in `docs/api.md`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use super::serve::ConnWritten;
use super::ws::{error_msg, send_all, status_msg, text_msg};
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::camera::ViewerBytes;
use crate::hub::motion::{EventInfo, MotionDemand, MotionState};
use crate::hub::status::{Metrics, Status};
use crate::hub::{Camera, Subscription, VariantKey};

/// Heartbeat period.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// The last word to a client whose camera a reload removed.
const REMOVED: &str = "this camera was removed from the config";

/// What the client asked to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Motion,
    Live,
    Off,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Motion => "motion",
            Mode::Live => "live",
            Mode::Off => "off",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    mode: Mode,
    width: Option<u32>,
    height: Option<u32>,
    quality: Option<u32>,
    fps: Option<f64>,
}

/// The upgrade handler (access was checked by the route's rule: the camera is the principal's).
pub async fn camera_ws(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    conn: Option<Extension<ConnWritten>>,
) -> Response {
    let camera = match state.hub.camera(&id) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let mode = match initial_mode(query.as_deref()) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let bytes = ViewerBytes::new(conn.map(|Extension(ConnWritten(w))| w));
    ws.max_message_size(16 * 1024)
        .on_upgrade(move |socket| session(socket, state, camera, bytes, mode))
}

/// `?mode=motion|live|off`: the mode to start in (default `motion`), so a page that wants `off`
/// does not start the detector for a moment first.
fn initial_mode(query: Option<&str>) -> Result<Mode, Error> {
    let mut mode = Mode::Motion;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match (k.as_ref(), v.as_ref()) {
            ("mode", "motion") => mode = Mode::Motion,
            ("mode", "live") => mode = Mode::Live,
            ("mode", "off") => mode = Mode::Off,
            ("token", _) => {}
            (k, v) => {
                return Err(Error::new(
                    ErrorKind::BadRequest,
                    format!(
                        "{}={}: the only parameter is mode=motion|live|off",
                        k.escape_default(),
                        v.escape_default()
                    ),
                ))
            }
        }
    }
    Ok(mode)
}

/// One connection's state.
struct Session {
    camera: Arc<Camera>,
    mode: Mode,
    key: VariantKey,
    min_interval: Option<Duration>,
    /// The JPEG subscription, held only while frames are to be sent.
    frames: Option<Subscription>,
    last_sent: Option<Instant>,
    /// The claim on detection, held in `motion` mode.
    demand: Option<MotionDemand>,
    motion: watch::Receiver<MotionState>,
    status: watch::Receiver<Status>,
    /// Events started so far as this client was told (to send each start and end once).
    starts_seen: u64,
    active_seen: bool,
    bytes: Arc<ViewerBytes>,
}

impl Session {
    fn new(camera: Arc<Camera>, bytes: Arc<ViewerBytes>) -> Session {
        let mut motion = camera.motion.state.subscribe();
        let seen = motion.borrow_and_update().clone();
        camera.register_queue(&bytes);
        Session {
            status: camera.status.subscribe(),
            motion,
            mode: Mode::Motion,
            key: VariantKey::NATIVE,
            min_interval: None,
            frames: None,
            last_sent: None,
            demand: None,
            starts_seen: seen.starts,
            active_seen: seen.active,
            bytes,
            camera,
        }
    }

    /// Makes what runs match the mode: detection claimed in `motion` mode, the JPEG subscription
    /// held while frames are to be sent.
    fn settle(&mut self) -> Result<(), String> {
        if self.mode == Mode::Motion {
            if self.demand.is_none() {
                self.demand = Some(self.camera.motion.demand());
            }
        } else {
            self.demand = None;
        }
        let active = self.motion.borrow().active;
        let want_frames = match self.mode {
            Mode::Live => true,
            Mode::Motion => active,
            Mode::Off => false,
        };
        if want_frames && self.frames.is_none() {
            let sub = self.camera.subscribe(self.key).map_err(|e| e.message)?;
            self.frames = Some(sub);
            self.last_sent = None;
        } else if !want_frames {
            self.frames = None;
        }
        Ok(())
    }

    /// Applies a client message.
    fn command(&mut self, text: &str) -> Vec<Message> {
        let msg: ClientMessage = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                return vec![error_msg(&format!(
                "bad message ({e}); expected {{\"mode\": \"motion\" | \"live\" | \"off\"}} with \
                     optional width, height, quality and fps"
            ))]
            }
        };
        let key = match super::query::variant_key(msg.width, msg.height, msg.quality) {
            Ok(k) => k,
            Err(e) => return vec![error_msg(&e.message)],
        };
        if let Some(f) = msg.fps {
            if let Err(e) = super::query::check_fps(f) {
                return vec![error_msg(&e.message)];
            }
        }
        if key != self.key {
            // Another size: a new subscription.
            self.frames = None;
        }
        self.key = key;
        self.min_interval = msg.fps.map(|f| Duration::from_secs_f64(1.0 / f));
        self.mode = msg.mode;
        let mut out = vec![self.mode_msg()];
        if let Err(e) = self.settle() {
            out.push(error_msg(&e));
        }
        // The newest frame at once: a mode switch takes effect within a frame.
        out.extend(self.frame_messages());
        out
    }

    fn mode_msg(&self) -> Message {
        let m = self.motion.borrow();
        text_msg(json!({
            "type": "mode", "camera": self.camera.id(), "mode": self.mode.as_str(),
            "motion_enabled": self.camera.motion.enabled(), "detecting": m.detecting,
            "active": m.active, "event": m.event.as_ref().map(EventInfo::to_json),
        }))
    }

    /// The newest JPEG, if frames are being sent and one is new.
    fn frame_messages(&mut self) -> Vec<Message> {
        let Some(frames) = &mut self.frames else {
            return Vec::new();
        };
        let Some(f) = frames.latest() else {
            return Vec::new();
        };
        self.last_sent = Some(Instant::now());
        let metrics = &frames.camera().metrics;
        Metrics::add(&metrics.frames_out, 1);
        metrics.added_latency.observe(f.received.elapsed());
        Metrics::add(&metrics.bytes_out, f.data.len() as u64);
        vec![Message::Binary(f.data.clone())]
    }

    /// The messages a motion state change calls for: each event's start and end once, and the
    /// boxes while it is active.
    fn motion_messages(&mut self) -> Vec<Message> {
        let m = self.motion.borrow_and_update().clone();
        let mut out = Vec::new();
        let id = self.camera.id();
        let event = m
            .event
            .as_ref()
            .map(EventInfo::to_json)
            .unwrap_or(Value::Null);
        if m.starts > self.starts_seen {
            // A start this client missed the end of (it was busy sending) still gets both.
            if self.active_seen {
                out.push(text_msg(
                    json!({"type": "motion_end", "camera": id, "event": Value::Null}),
                ));
            }
            out.push(text_msg(
                json!({"type": "motion_start", "camera": id, "event": event}),
            ));
            if !m.active {
                out.push(text_msg(
                    json!({"type": "motion_end", "camera": id, "event": event}),
                ));
            }
        } else if self.active_seen && !m.active {
            out.push(text_msg(
                json!({"type": "motion_end", "camera": id, "event": event}),
            ));
        } else if m.active {
            out.push(text_msg(json!({
                "type": "motion", "camera": id, "score": m.score,
                "boxes": m.boxes.iter().map(|b| [b.x, b.y, b.w, b.h]).collect::<Vec<_>>(),
            })));
        }
        self.starts_seen = m.starts;
        self.active_seen = m.active;
        out
    }

    /// What a client is told when it joins a camera (at connection, or after a reload replaced
    /// the camera): the mode, the camera's status, and why frames cannot be sent, if so.
    fn announce(&mut self) -> Vec<Message> {
        let status = self.status.borrow_and_update().clone();
        let mut out = vec![self.mode_msg(), status_msg(&self.camera, &status)];
        if let Err(e) = self.settle() {
            out.push(error_msg(&e));
        }
        out
    }

    /// After a config reload replaced the camera: the same session on the new one. False when the
    /// camera was removed.
    fn follow(&mut self, state: &AppState) -> bool {
        let Ok(cam) = state.hub.camera(self.camera.id()) else {
            return false;
        };
        let mut next = Session::new(cam, self.bytes.clone());
        next.mode = self.mode;
        next.key = self.key;
        next.min_interval = self.min_interval;
        *self = next;
        true
    }
}

enum Wake {
    Frame,
    FramesGone,
    Motion,
    Status,
}

async fn session(
    socket: WebSocket,
    state: AppState,
    camera: Arc<Camera>,
    bytes: Arc<ViewerBytes>,
    mode: Mode,
) {
    let (mut sink, mut stream) = socket.split();
    let mut s = Session::new(camera, bytes.clone());
    s.mode = mode;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut shutdown = state.shutdown.clone();
    let mut first = s.announce();
    first.extend(s.frame_messages());
    if send_all(&mut sink, &bytes, first).await.is_err() {
        return;
    }
    loop {
        let (frames, min_interval, last_sent) = (&mut s.frames, s.min_interval, s.last_sent);
        let (motion, status) = (&mut s.motion, &mut s.status);
        let wake = async {
            let frames = async {
                match frames {
                    Some(f) => {
                        if let (Some(min), Some(last)) = (min_interval, last_sent) {
                            f.pace_until(last + min).await;
                        }
                        if f.wait_new().await {
                            Wake::Frame
                        } else {
                            Wake::FramesGone
                        }
                    }
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                w = frames => w,
                r = motion.changed() => if r.is_ok() { Wake::Motion } else { Wake::FramesGone },
                r = status.changed() => if r.is_ok() { Wake::Status } else { Wake::FramesGone },
            }
        };
        let out: Vec<Message> = tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => s.command(&text),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => Vec::new(),
            },
            w = wake => match w {
                Wake::Frame => s.frame_messages(),
                Wake::Motion => {
                    let mut out = s.motion_messages();
                    if let Err(e) = s.settle() {
                        out.push(error_msg(&e));
                    }
                    out.extend(s.frame_messages());
                    out
                }
                Wake::Status => {
                    let status = s.status.borrow_and_update().clone();
                    vec![status_msg(&s.camera, &status)]
                }
                Wake::FramesGone => {
                    if s.follow(&state) {
                        s.announce()
                    } else {
                        let _ = send_all(&mut sink, &bytes, vec![error_msg(REMOVED)]).await;
                        break;
                    }
                }
            },
            _ = heartbeat.tick() => {
                let m = s.motion.borrow();
                vec![text_msg(json!({
                    "type": "heartbeat", "ts": crate::hub::unix_ms(), "mode": s.mode.as_str(),
                    "detecting": m.detecting, "active": m.active,
                }))]
            }
            _ = shutdown.changed() => break,
        };
        if send_all(&mut sink, &bytes, out).await.is_err() {
            return;
        }
        // A reload retired the camera while nothing else woke us: move to its replacement.
        if s.camera.retired() && s.frames.is_none() {
            if !s.follow(&state) {
                let _ = send_all(&mut sink, &bytes, vec![error_msg(REMOVED)]).await;
                break;
            }
            let out = s.announce();
            if send_all(&mut sink, &bytes, out).await.is_err() {
                return;
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}
