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

/// What kind of failure a camera's last error was: what the UI shows next to the message, and what
/// tells a user where to look (the password, the address, the camera's codec settings, the network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The camera refused the credentials (401/403).
    Auth,
    /// Nothing listens at the address (connection refused).
    Refused,
    /// No answer, or no frame for too long (the watchdog).
    Timeout,
    /// The address answers but the path or file does not exist (404, no such file).
    NotFound,
    /// The host cannot be reached or resolved.
    Unreachable,
    /// The stream's codec or picture is not one camhub can use.
    UnsupportedCodec,
    /// Anything else the camera or the network did wrong (bad response, dropped connection).
    Protocol,
}

impl FailureKind {
    /// Classifies a failure message (already scrubbed of credentials). The sources word their own
    /// errors and quote their libraries' (retina, reqwest, FFmpeg), so this reads the words those
    /// use; the first matching rule wins.
    pub fn classify(message: &str) -> FailureKind {
        let m = message.to_ascii_lowercase();
        let any = |words: &[&str]| words.iter().any(|w| m.contains(w));
        if any(&[
            "401",
            "403",
            "unauthorized",
            "forbidden",
            "authenticat",
            "password",
            "credentials",
        ]) {
            FailureKind::Auth
        } else if any(&["refused"]) {
            FailureKind::Refused
        } else if any(&["404", "not found", "no such file", "does not exist"]) {
            FailureKind::NotFound
        } else if any(&[
            "timed out",
            "timeout",
            "no answer",
            "watchdog",
            "no frame for",
        ]) {
            FailureKind::Timeout
        } else if any(&[
            "unreachable",
            "no route",
            "failed to lookup",
            "name or service not known",
            "dns",
            "resolve",
        ]) {
            FailureKind::Unreachable
        } else if any(&[
            "codec",
            "cannot decode",
            "offers no",
            "unsupported",
            "more than camhub handles",
        ]) {
            FailureKind::UnsupportedCodec
        } else {
            FailureKind::Protocol
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
    /// What kind of failure `last_error` is.
    pub error_kind: Option<FailureKind>,
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
            error_kind: None,
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
    /// Placeholder JPEGs rendered (once per camera, size and status text).
    pub placeholders_rendered: AtomicU64,
    /// Pictures analysed by motion detection.
    pub motion_frames: AtomicU64,
    /// Nanoseconds of CPU spent in motion detection (downscale and analysis; a JPEG camera's
    /// scaled decode included).
    pub motion_ns: AtomicU64,
    /// Time from a frame's arrival from the camera to its JPEG being handed to a viewer's socket.
    pub added_latency: Histogram,
    /// MSE WebSocket viewers now (packet-tap consumers: no decode).
    pub mse_viewers: AtomicU64,
    /// `stream.mp4` viewers now (packet-tap consumers: no decode).
    pub mp4_viewers: AtomicU64,
    /// Bytes of fMP4 (init segments and fragments) handed to viewers.
    pub packet_bytes_out: AtomicU64,
    /// RTSP sessions playing now (packet-tap consumers: no decode).
    pub rtsp_viewers: AtomicU64,
    /// Bytes of RTP and RTCP sent to RTSP clients.
    pub rtsp_bytes_out: AtomicU64,
    /// WebRTC peers now (packet-tap consumers: no decode).
    pub webrtc_viewers: AtomicU64,
    /// Bytes of UDP (media, RTCP, ICE, DTLS) sent to WebRTC peers.
    pub webrtc_bytes_out: AtomicU64,
    /// Keyframe requests (PLI/FIR) WebRTC peers sent.
    pub webrtc_keyframe_requests: AtomicU64,
    /// Times a packet viewer fell behind and was moved to the newest keyframe.
    pub resyncs: AtomicU64,
    /// The distance to the live edge (newest buffered frame − playing position) MSE players report.
    pub live_edge: Histogram,
    /// How long ago camhub received the frame MSE players show, as they report it.
    pub live_latency: Histogram,
    /// Nanoseconds of CPU spent encoding H.264 for `transcode`.
    pub transcode_ns: AtomicU64,
    /// Nanoseconds of CPU spent applying the camera's transform (rotate, warp, crop).
    pub transform_ns: AtomicU64,
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

#[cfg(test)]
mod tests {
    use super::FailureKind::{self, *};

    #[test]
    fn failures_are_classified_from_what_the_libraries_say() {
        for (message, kind) in [
            ("[127.0.0.1:40000(me)->127.0.0.1:8554@2026-12-01T20:00:00] DESCRIBE response: 401 Unauthorized", Auth),
            ("the camera wants a password (HTTP 401): put user:password in the URL", Auth),
            ("Unable to connect to RTSP server: Connection refused (os error 111)", Refused),
            ("error sending request for url (http://127.0.0.1:9/stream): tcp connect error: Connection refused (os error 111)", Refused),
            ("cannot open the input: No such file or directory", NotFound),
            ("DESCRIBE response: 404 Not Found", NotFound),
            ("no answer from rtsp://10.0.0.9/x within 10s", Timeout),
            ("no frame for 10s while connected (watchdog)", Timeout),
            ("failed to lookup address information: Name or service not known", Unreachable),
            ("the camera offers no H.264, H.265 or MJPEG video stream (it offers: video/mp4v-es)", UnsupportedCodec),
            ("the camera ended the RTSP session", Protocol),
        ] {
            assert_eq!(FailureKind::classify(message), kind, "{message}");
        }
    }
}
