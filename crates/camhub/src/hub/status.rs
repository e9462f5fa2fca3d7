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
    /// Time from a frame's arrival from the camera to its JPEG being handed to a viewer's socket.
    pub added_latency: Histogram,
}

/// Upper bounds of [`Histogram`] buckets, in seconds (Prometheus `le` labels).
pub const LATENCY_BUCKETS: [f64; 10] =
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.5, 1.0];

/// A lock-free latency histogram with fixed buckets ([`LATENCY_BUCKETS`], plus +Inf).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 11],
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket (the last is +Inf, i.e. the total count), and the sum in seconds.
    pub fn snapshot(&self) -> ([u64; 11], f64) {
        let mut out = [0u64; 11];
        let mut acc = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            acc += b.load(Ordering::Relaxed);
            out[i] = acc;
        }
        (out, self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9)
    }
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
