//! The packet outputs that hold a session with a client (RTSP, WebRTC): each one's place under
//! `max_viewers_per_camera` and in its kind's gauge ([`PacketViewer`]), and what the API lists of
//! it ([`OutputSession`]: kind, peer, state, bytes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use camhub_media::annexb::Coding;
use serde_json::{json, Value};

use super::camera::Admission;
use super::status::Metrics;
use super::Camera;
use crate::error::Error;

/// A packet viewer's place under the camera's `max_viewers_per_camera`, counted in a gauge of
/// its kind while it lives.
pub struct PacketViewer {
    camera: Arc<Camera>,
    which: fn(&Metrics) -> &AtomicU64,
    /// Held for its Drop: the place under `max_viewers_per_camera`.
    _admission: Admission,
}

impl PacketViewer {
    /// Admits one viewer of `camera` and adds one to its gauge `which`; the error when the
    /// camera has all the viewers it may have.
    pub fn new(
        camera: Arc<Camera>,
        which: fn(&Metrics) -> &AtomicU64,
    ) -> Result<PacketViewer, Error> {
        let admission = camera.admit()?;
        Metrics::add(which(&camera.metrics), 1);
        Ok(PacketViewer {
            camera,
            which,
            _admission: admission,
        })
    }
}

impl Drop for PacketViewer {
    fn drop(&mut self) {
        (self.which)(&self.camera.metrics).fetch_sub(1, Ordering::Relaxed);
    }
}

/// One client session of a packet output, as the API shows it.
#[derive(Debug)]
pub struct OutputSession {
    /// `rtsp` or `webrtc`.
    pub kind: &'static str,
    /// The client's address.
    pub peer: String,
    /// Where the session stands (`described`, `ready`, `playing`, `connecting`, …).
    state: Mutex<&'static str>,
    /// Bytes sent to the client.
    pub bytes: AtomicU64,
    /// When it began, ms since the Unix epoch.
    pub since_ms: u64,
}

impl OutputSession {
    /// Sets the state shown.
    pub fn set_state(&self, state: &'static str) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// The state shown.
    pub fn state(&self) -> &'static str {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts bytes sent.
    pub fn sent(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The API's view.
    pub fn json(&self) -> Value {
        json!({
            "kind": self.kind, "peer": self.peer, "state": self.state(),
            "bytes": self.bytes.load(Ordering::Relaxed), "since_ms": self.since_ms,
        })
    }
}

/// The live [`OutputSession`]s of one camera (a session leaves the list when dropped).
#[derive(Debug, Default)]
pub struct Sessions(Mutex<Vec<Weak<OutputSession>>>);

impl Sessions {
    /// A new session of `kind` with `peer`, listed while the returned handle lives.
    pub fn open(
        &self,
        kind: &'static str,
        peer: String,
        state: &'static str,
    ) -> Arc<OutputSession> {
        let s = Arc::new(OutputSession {
            kind,
            peer,
            state: Mutex::new(state),
            bytes: AtomicU64::new(0),
            since_ms: super::unix_ms(),
        });
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&s));
        s
    }

    /// The live sessions, oldest first.
    pub fn list(&self) -> Vec<Arc<OutputSession>> {
        let list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().filter_map(Weak::upgrade).collect()
    }
}

/// Why `camera` has no encoded stream to give a player, if it has none at all: the built-in demo
/// and composites draw their pictures and send no packets (unless they are transcoded).
pub fn no_packets(camera: &Camera) -> Option<String> {
    if !camera.decode.demo || camera.transcode.is_some() {
        return None;
    }
    let what = if camera.decode.composite.is_some() {
        "a composite (drawn from its inputs' pictures, no H.264)"
    } else {
        "the built-in demo (a drawn test pattern, no H.264)"
    };
    Some(format!(
        "camera {} is {what}: use its JPEG stream, or set transcode = \"h264\" on it",
        camera.id()
    ))
}

/// What a camera sends that players cannot be given without transcoding, and what to do.
pub fn unplayable(camera: &str, codec: &str) -> String {
    format!(
        "camera {camera} sends {codec}, which players cannot be given without transcoding: use its \
         JPEG stream (stream.mjpeg), or set transcode = \"h264\" on the camera"
    )
}

/// Why a camera's stream cannot be described to a packet output (RTSP, WebRTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDescribed {
    /// It has no H.264/H.265 to give (the demo, a composite, an MJPEG camera without
    /// `transcode`): the reason and what to do.
    Unplayable(String),
    /// It gave no keyframe in time: the reason, with the camera's last error.
    NoKeyframe(String),
}

/// Waits (at most `within`) until `camera`'s player packets (its own, or its transcode's) have a
/// codec that outputs can be given as is and their parameter sets: what an SDP needs. An idle
/// camera is opened for it. With `jpeg`, a JPEG camera's packets are taken too (the coding is then
/// `None`).
pub async fn described_stream(
    camera: &Arc<Camera>,
    max_lag: std::time::Duration,
    within: std::time::Duration,
    jpeg: bool,
) -> Result<(Option<Coding>, super::taps::TapParams), NotDescribed> {
    if let Some(why) = no_packets(camera) {
        return Err(NotDescribed::Unplayable(why));
    }
    let sub = camera.subscribe_player_packets(max_lag);
    let deadline = std::time::Instant::now() + within;
    loop {
        camera.touch();
        if let Some(p) = sub.params() {
            if jpeg && p.codec == "mjpeg" {
                return Ok((None, p));
            }
            let Some(coding) = Coding::from_name(&p.codec) else {
                return Err(NotDescribed::Unplayable(unplayable(camera.id(), &p.codec)));
            };
            if !p.parameter_sets.is_empty() {
                return Ok((Some(coding), p));
            }
        }
        if std::time::Instant::now() >= deadline {
            let status = camera.status.borrow().clone();
            let why = status
                .last_error
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return Err(NotDescribed::NoKeyframe(format!(
                "camera {} gave no keyframe within {} s{why}",
                camera.id(),
                within.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Where a packet output (RTSP, WebRTC) stands on its subscription: it starts at a keyframe, and
/// starts again at one after the tap skipped it ahead (it fell behind) or the camera reconnected.
#[derive(Debug)]
pub struct KeyframeGate {
    generation: u64,
    awaiting: bool,
}

impl Default for KeyframeGate {
    fn default() -> Self {
        KeyframeGate {
            generation: 0,
            awaiting: true,
        }
    }
}

impl KeyframeGate {
    /// Whether delivery `d` is to be sent: `Some(true)` for the keyframe a new stretch starts at,
    /// `Some(false)` for the packets after it, `None` for packets to drop until a keyframe. A skip
    /// is counted as a resync in `metrics`.
    pub fn admit(&mut self, d: &super::taps::Delivery, metrics: &Metrics) -> Option<bool> {
        if d.skipped > 0 && !self.awaiting {
            Metrics::add(&metrics.resyncs, 1);
            self.awaiting = true;
        }
        if d.packet.generation != self.generation {
            self.generation = d.packet.generation;
            self.awaiting = true;
        }
        if !self.awaiting {
            return Some(false);
        }
        if !d.packet.keyframe {
            return None;
        }
        self.awaiting = false;
        Some(true)
    }

    /// Waits for the next keyframe again (a new subscription).
    pub fn restart(&mut self) {
        self.awaiting = true;
    }
}
