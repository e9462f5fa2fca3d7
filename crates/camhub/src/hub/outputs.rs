//! The packet outputs that hold a session with a client (RTSP, WebRTC): each one's place under
//! `max_viewers_per_camera` and in its kind's gauge ([`PacketViewer`]), and what the API lists of
//! it ([`OutputSession`]: kind, peer, state, bytes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

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
