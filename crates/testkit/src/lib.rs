//! Real-part test fixtures for camhub: cameras, clients and a browser that tests drive over real sockets.
//!
//! Nothing here is a mock. The cameras are a GStreamer RTSP server ([`RtspServer`]), the `ffmpeg` CLI as a
//! one-client-at-a-time MJPEG camera ([`OneClientMjpegCamera`]) and a small HTTP server of our own for JPEG
//! snapshots and quirky multipart streams ([`SnapshotServer`]). The clients are an MJPEG reader
//! ([`MjpegReader`], [`FrameCounter`]), a client that never reads ([`StalledClient`]), the `ffmpeg`/`ffprobe`
//! CLI ([`decode_jpeg_rgb`], [`ffprobe_size`]) and headless Chromium ([`Chromium`]). [`Camhub`] runs the
//! camhub binary itself on a free port.
//!
//! # The RTSP fixture's picture
//! `videotestsrc pattern=smpte` with a running-time text at the top left ([`RTSP_COUNTER_REGION`], differs
//! on every frame). Known colours, as fractions of width and height (valid at every size): 100 % white at
//! (0.25, 0.875) = [`RTSP_WHITE`], black at (0.625, 0.875) = [`RTSP_BLACK`]; check them with
//! [`KnownColor::check`] on the output of [`decode_jpeg_rgb`].
//!
//! # Runtime
//! Functions that wait (start-up, `wait_for`, HTTP) are `async` and need a tokio runtime with the time and
//! I/O drivers: write tests as `#[tokio::test(flavor = "multi_thread")]`. Quick helpers that only run a CLI
//! (`decode_jpeg_rgb`, `ffprobe_size`, `ffmpeg_jpegs`) are blocking std code, fine to call from a test body.
//! Every fixture stops its processes on `Drop` (SIGTERM, then SIGKILL, and reaps them: no zombies).
//!
//! # Panics
//! This is test code: a fixture that cannot start (a missing tool, a port in use) panics with a message that
//! says what failed and shows the tool's output, rather than returning an error every test must unwrap.
//!
//! # Requirements
//! Debian packages: `ffmpeg`, `gstreamer1.0-plugins-{base,good,bad,ugly}`, `gir1.2-gst-rtsp-server-1.0`,
//! `python3-gi` (the RTSP fixture runs under `/usr/bin/python3`), `chromium`. `scripts/setup.sh` installs them.

mod camhub;
mod chromium;
mod media;
mod mjpeg_camera;
mod mjpeg_reader;
mod process;
mod rtsp;
mod scene;
mod snapshot;

pub use crate::camhub::{rewrite_listen, Camhub};
pub use crate::chromium::Chromium;
pub use crate::media::{
    decode_jpeg_rgb, ffmpeg_jpegs, ffprobe_size, jpeg_size, pixel, region_mean_abs_diff,
    try_decode_jpeg_rgb, KnownColor, Region, COLOR_TOLERANCE, RTSP_BLACK, RTSP_COUNTER_REGION,
    RTSP_WHITE,
};
pub use crate::mjpeg_camera::OneClientMjpegCamera;
pub use crate::mjpeg_reader::{FrameCounter, MjpegReader, StalledClient};
pub use crate::rtsp::{RtspEvent, RtspServer, RtspServerOptions, RTSP_SERVER_SCRIPT};
pub use crate::scene::{Action, Cue, Scene};
pub use crate::snapshot::{SnapshotMode, SnapshotServer};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
///
/// Another process could take it before the caller binds it; on a test machine that race is rare enough.
///
/// ```
/// let port = camhub_testkit::free_port();
/// assert!(port > 0);
/// ```
pub fn free_port() -> u16 {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}
