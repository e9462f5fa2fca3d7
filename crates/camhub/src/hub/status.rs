//! A camera's observable state: [`Status`] (what the API, the UI and WebSocket clients see; changes
//! are published through a watch channel, one notification per real change) and [`Metrics`]
//! (monotonic counters for `/metrics`, updated lock-free from the hot path).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Lifecycle state of a camera's upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not connected: nobody is watching.
    Idle,
    /// Opening the connection.
    Connecting,
    /// Frames are arriving.
    Streaming,
    /// The last attempt failed; waiting to try again.
    Retrying,
}

impl State {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connecting => "connecting",
            State::Streaming => "streaming",
            State::Retrying => "retrying",
        }
    }
}

/// What is known about a camera right now. Credentials never appear in any field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// Connection state.
    pub state: State,
    /// Why, for connecting/retrying (e.g. "connection refused; retrying in 4s").
    pub reason: Option<String>,
    /// Codec of the stream (`h264`, `h265`, `mjpeg`, …) once known.
    pub codec: Option<String>,
    /// Picture width once known.
    pub width: Option<u32>,
    /// Picture height once known.
    pub height: Option<u32>,
    /// Measured input frame rate.
    pub fps: Option<f64>,
    /// Times the upstream was (re)connected after a failure.
    pub reconnects: u64,
    /// The most recent failure, kept after recovery.
    pub last_error: Option<String>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: State::Idle,
            reason: None,
            codec: None,
            width: None,
            height: None,
            fps: None,
            reconnects: 0,
            last_error: None,
        }
    }
}

/// Per-camera counters exported at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Frames (access units or JPEGs) received from the camera.
    pub frames_in: AtomicU64,
    /// JPEGs encoded (all variants).
    pub frames_encoded: AtomicU64,
    /// Frames dropped before decode (decoder behind, waiting for a keyframe, nobody needs pixels).
    pub frames_dropped: AtomicU64,
    /// Nanoseconds spent decoding.
    pub decode_ns: AtomicU64,
    /// Nanoseconds spent scaling and encoding.
    pub encode_ns: AtomicU64,
    /// Reconnects after failures.
    pub reconnects: AtomicU64,
    /// Bytes written to viewers (MJPEG, snapshots, WebSocket).
    pub bytes_out: AtomicU64,
    /// JPEG frames handed to viewers.
    pub frames_out: AtomicU64,
    /// Largest number of bytes any one viewer currently has produced but not yet accepted.
    pub viewer_queued_bytes_max: AtomicU64,
}

impl Metrics {
    /// Adds `v` to a counter.
    pub fn add(counter: &AtomicU64, v: u64) {
        counter.fetch_add(v, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
