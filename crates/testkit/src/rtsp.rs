//! [`RtspServer`]: the GStreamer RTSP server fixture (`fixtures/rtsp_server.py`) as a real IP camera.
//!
//! The script prints one event per line (`READY`, `CLIENT`, `SETUP`, `TRANSPORT`, `PLAY`, `TEARDOWN`,
//! `CLOSED`); a background thread collects them so tests can count sessions the camera saw and check
//! which transport each one used.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::media::{KnownColor, RTSP_BLACK, RTSP_WHITE};
use crate::process::{stop_child, tail};

/// Path of the GStreamer RTSP server script (run it with `/usr/bin/python3`).
pub const RTSP_SERVER_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/rtsp_server.py");

/// How long [`RtspServer::start`] waits for the script's `READY` line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Options for [`RtspServer::start`]; `Default` is 640×360 at 15 fps on a free port, no auth, the
/// colorimetry GStreamer picks for the size (BT.601 up to 576 lines, BT.709 above).
#[derive(Debug, Clone)]
pub struct RtspServerOptions {
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// `(user, password)`: when set, every request needs DIGEST auth (401 otherwise).
    pub credentials: Option<(String, String)>,
    /// Picture width (the `/switch` mount later switches to half of it).
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second; H.264 gets a keyframe every `fps` frames (one per second) unless `gop`.
    pub fps: u32,
    /// Frames from one keyframe to the next on the H.264/H.265 mounts (None: `fps`, one second).
    pub gop: Option<u32>,
    /// `/switch` halves the picture size this long after its media starts.
    pub switch_after: Duration,
    /// `/silent` stops sending RTP this long after its media starts (the session stays open).
    pub silent_after: Duration,
    /// `"bt709"` or `"bt601"`: the colour matrix the H.264/H.265 mounts use and signal in their SPS
    /// (VUI), as HD and SD cameras do; None leaves GStreamer's choice by size.
    pub colorimetry: Option<String>,
}

impl Default for RtspServerOptions {
    fn default() -> Self {
        Self {
            port: 0,
            credentials: None,
            width: 640,
            height: 360,
            fps: 15,
            gop: None,
            switch_after: Duration::from_secs(3),
            silent_after: Duration::from_secs(3),
            colorimetry: None,
        }
    }
}

impl RtspServerOptions {
    /// Requires DIGEST auth with these credentials.
    pub fn with_auth(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Sets the picture size and frame rate.
    pub fn with_size(mut self, width: u32, height: u32, fps: u32) -> Self {
        self.width = width;
        self.height = height;
        self.fps = fps;
        self
    }

    /// A keyframe every `frames` frames on the H.264/H.265 mounts (a long GOP, as cameras often have).
    pub fn with_gop(mut self, frames: u32) -> Self {
        self.gop = Some(frames);
        self
    }

    /// Makes the H.264/H.265 mounts use and signal this colorimetry: `"bt709"` or `"bt601"`.
    pub fn with_colorimetry(mut self, colorimetry: &str) -> Self {
        self.colorimetry = Some(colorimetry.to_owned());
        self
    }
}

/// One line the RTSP fixture printed, e.g. `SETUP /h264` or `CLIENT 3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspEvent {
    /// `CLIENT`, `SETUP`, `TRANSPORT`, `PLAY`, `TEARDOWN` or `CLOSED` (`READY` is recorded too).
    pub kind: String,
    /// The mount path (`/h264`) for SETUP/PLAY/TEARDOWN; the mount path and the transport the SETUP
    /// chose for TRANSPORT (`/h264 udp`, `/h264 tcp`); the client id for CLIENT/CLOSED.
    pub arg: String,
    /// When the line was read.
    pub at: Instant,
}

/// A running GStreamer RTSP server on 127.0.0.1 with mounts `/h264`, `/h265`, `/mjpeg`, `/switch`, `/silent`,
/// `/fast` (H.264 whose RTP clock runs 10 % fast)
/// (see `fixtures/rtsp_server.py`, [`RtspServer::BARS`] and [`crate::RTSP_WHITE`] for the picture).
///
/// Events are kept across [`restart`](Self::restart)s, so counts are totals for the fixture's life.
/// Dropping it stops the server (SIGTERM, then SIGKILL).
///
/// ```no_run
/// # async fn demo() {
/// use camhub_testkit::{RtspServer, RtspServerOptions};
/// use std::time::Duration;
/// let server = RtspServer::start(RtspServerOptions::default()).await;
/// let url = server.url("/h264"); // rtsp://127.0.0.1:PORT/h264
/// // ... point camhub at `url`, open a viewer ...
/// assert!(server.wait_for("SETUP", "/h264", 1, Duration::from_secs(10)).await);
/// assert_eq!(server.count("SETUP", "/h264"), 1);
/// # }
/// ```
pub struct RtspServer {
    options: RtspServerOptions,
    port: u16,
    child: Option<Child>,
    events: Arc<Mutex<Vec<RtspEvent>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl RtspServer {
    /// Points of the picture's SMPTE bars that stay put at every size and between frames (away from
    /// the running-time text and the noise patch): the seven 100 % bars of the top row, then −I,
    /// white, +Q and black of the bottom row. The chroma-heavy bars show a wrong colour matrix (BT.709
    /// read as BT.601 moves red by ~20 levels), which white and black cannot. The colours are as FFmpeg
    /// decodes them; GStreamer defines −I and +Q in YCbCr, so theirs depend on the matrix (these are
    /// BT.601's; BT.709 gives −I (0, 42, 147) and +Q (125, 0, 226), still within
    /// [`crate::COLOR_TOLERANCE`]). To catch a matrix error, compare with FFmpeg's decode
    /// ([`RtspServer::ffmpeg_rgb`]) within a few levels, not with these.
    pub const BARS: [KnownColor; 11] = [
        bar("white", 1.0 / 14.0, 0.45, (255, 255, 255)),
        bar("yellow", 3.0 / 14.0, 0.45, (255, 255, 0)),
        bar("cyan", 5.0 / 14.0, 0.45, (0, 255, 255)),
        bar("green", 7.0 / 14.0, 0.45, (0, 255, 0)),
        bar("magenta", 9.0 / 14.0, 0.45, (255, 0, 255)),
        bar("red", 11.0 / 14.0, 0.45, (255, 0, 0)),
        bar("blue", 13.0 / 14.0, 0.45, (0, 0, 255)),
        bar("-I", 1.0 / 12.0, 0.875, (0, 58, 141)),
        RTSP_WHITE,
        bar("+Q", 5.0 / 12.0, 0.875, (110, 0, 216)),
        RTSP_BLACK,
    ];

    /// Spawns the script and waits (up to 20 s) until it listens.
    ///
    /// # Panics
    /// When the script cannot start or does not print `READY` in time (the message shows its stderr).
    pub async fn start(options: RtspServerOptions) -> RtspServer {
        let mut server = RtspServer {
            port: options.port,
            options,
            child: None,
            events: Arc::default(),
            stderr: Arc::default(),
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let o = &self.options;
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(RTSP_SERVER_SCRIPT)
            .args(["--port", &self.port.to_string()])
            .args([
                "--width",
                &o.width.to_string(),
                "--height",
                &o.height.to_string(),
            ])
            .args(["--fps", &o.fps.to_string()])
            .args(["--gop", &o.gop.unwrap_or(0).to_string()])
            .args(["--switch-after", &o.switch_after.as_secs_f64().to_string()])
            .args(["--silent-after", &o.silent_after.as_secs_f64().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((user, password)) = &o.credentials {
            cmd.args(["--user", user, "--password", password]);
        }
        if let Some(colorimetry) = &o.colorimetry {
            cmd.args(["--colorimetry", colorimetry]);
        }
        let mut child = cmd
            .spawn()
            .expect("spawn /usr/bin/python3 fixtures/rtsp_server.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<u16>();
        let events = self.events.clone();
        std::thread::Builder::new()
            .name("rtsp-fixture/stdout".into())
            .spawn(move || {
                let mut ready_tx = Some(ready_tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let mut words = line.splitn(2, ' ');
                    let kind = words.next().unwrap_or_default().to_owned();
                    let arg = words.next().unwrap_or_default().trim().to_owned();
                    if kind == "READY" {
                        if let (Some(tx), Ok(port)) = (ready_tx.take(), arg.parse()) {
                            let _ = tx.send(port);
                        }
                    }
                    let event = RtspEvent {
                        kind,
                        arg,
                        at: Instant::now(),
                    };
                    events.lock().expect("rtsp events lock").push(event);
                }
            })
            .expect("spawn rtsp fixture stdout thread");
        let stderr_lines = self.stderr.clone();
        std::thread::Builder::new()
            .name("rtsp-fixture/stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut lines = stderr_lines.lock().expect("rtsp stderr lock");
                    if lines.len() >= 500 {
                        lines.remove(0);
                    }
                    lines.push(line);
                }
            })
            .expect("spawn rtsp fixture stderr thread");
        self.child = Some(child);
        match tokio::time::timeout(READY_TIMEOUT, ready_rx).await {
            Ok(Ok(port)) => self.port = port,
            _ => {
                if let Some(mut child) = self.child.take() {
                    stop_child(&mut child, Duration::from_secs(2));
                }
                panic!(
                    "RTSP fixture did not print READY within {READY_TIMEOUT:?} (port {}); stderr:\n{}",
                    self.port,
                    self.stderr_tail()
                );
            }
        }
    }

    /// The port the server listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtsp://[user:pass@]127.0.0.1:PORT{path}`, e.g. `url("/h264")`.
    pub fn url(&self, path: &str) -> String {
        match &self.options.credentials {
            Some((user, password)) => {
                format!("rtsp://{user}:{password}@127.0.0.1:{}{path}", self.port)
            }
            None => format!("rtsp://127.0.0.1:{}{path}", self.port),
        }
    }

    /// The URL without credentials, even when the server requires them (to test that auth is enforced).
    pub fn url_without_credentials(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.port)
    }

    /// How many `event` lines (e.g. `"SETUP"`) with argument `path` (e.g. `"/h264"`) were seen so far;
    /// `path` `"*"` matches any argument (`count("CLIENT", "*")`).
    pub fn count(&self, event: &str, path: &str) -> usize {
        self.events
            .lock()
            .expect("rtsp events lock")
            .iter()
            .filter(|e| e.kind == event && (path == "*" || e.arg == path))
            .count()
    }

    /// The transport (`udp`, `tcp`, `udp-multicast`) of every SETUP of `path` so far, oldest first.
    pub fn transports(&self, path: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.kind == "TRANSPORT")
            .filter_map(|e| {
                let (mount, transport) = e.arg.split_once(' ')?;
                (mount == path).then(|| transport.to_owned())
            })
            .collect()
    }

    /// FFmpeg's own decode of `path` (e.g. `"/h264"`) as the `ffmpeg` CLI shows it, at the stream's size:
    /// `(width, height, rgb24)`. The reference a test compares camhub's pictures with: the `ffmpeg` CLI
    /// reads the stream's colour description (range and matrix) the way users' players do. It skips the
    /// first frames, so the decoder has settled on a keyframe. Blocking (runs the CLI over TCP).
    ///
    /// # Panics
    /// When ffmpeg cannot decode a frame within 30 s (the message has its stderr).
    pub fn ffmpeg_rgb(&self, path: &str) -> (u32, u32, Vec<u8>) {
        let url = self.url(path);
        let out = Command::new("timeout")
            .args(["30", "ffmpeg", "-nostdin", "-hide_banner", "-v", "error"])
            .args(["-rtsp_transport", "tcp", "-i", &url])
            .args(["-vf", "select=gte(n\\,5)", "-frames:v", "1"])
            .args(["-f", "image2pipe", "-c:v", "ppm", "-"])
            .stdin(Stdio::null())
            .output()
            .expect("run ffmpeg");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "ffmpeg could not decode {url}: {stderr}"
        );
        parse_ppm(&out.stdout).unwrap_or_else(|e| panic!("ffmpeg's PPM of {url}: {e}; {stderr}"))
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<RtspEvent> {
        self.events.lock().expect("rtsp events lock").clone()
    }

    /// Waits until [`count`](Self::count)`(event, path) >= n`; false on timeout.
    pub async fn wait_for(&self, event: &str, path: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count(event, path) >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The last lines the script wrote to stderr (GStreamer warnings), for failure messages.
    pub fn stderr_tail(&self) -> String {
        tail(
            &self.stderr.lock().expect("rtsp stderr lock").join("\n"),
            40,
        )
    }

    /// Stops the server (SIGTERM, SIGKILL after 3 s): clients see the camera vanish. Returns the exit
    /// status (success when the script shut down cleanly on SIGTERM), None when it was not running.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        stop_child(&mut child, Duration::from_secs(3))
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the server if it runs and starts it again on the same port (a camera reboot).
    pub async fn restart(&mut self) {
        let _ = self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The port can stay busy for a moment after the old process is gone; retry until it binds.
        loop {
            if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok()
                || Instant::now() >= deadline
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.spawn().await;
    }
}

/// A [`KnownColor`] of [`RtspServer::BARS`].
const fn bar(name: &'static str, x: f64, y: f64, rgb: (u8, u8, u8)) -> KnownColor {
    KnownColor { name, x, y, rgb }
}

/// `(width, height, rgb24)` from a binary PPM (`P6`, maxval 255) as ffmpeg writes it.
fn parse_ppm(ppm: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    // The header is four whitespace-separated fields; ffmpeg writes no comments.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while ppm.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let start = i;
        while ppm.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
            i += 1;
        }
        if start == i {
            return Err(format!("truncated PPM header ({} bytes)", ppm.len()));
        }
        fields.push(String::from_utf8_lossy(&ppm[start..i]).into_owned());
    }
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|e| format!("PPM header {s:?}: {e}"))
    };
    if fields[0] != "P6" || number(&fields[3])? != 255 {
        return Err(format!("not an 8-bit P6 PPM: {fields:?}"));
    }
    let (width, height) = (number(&fields[1])?, number(&fields[2])?);
    // One whitespace byte ends the header.
    let pixels = ppm.get(i + 1..).unwrap_or_default();
    let len = width as usize * height as usize * 3;
    if pixels.len() < len {
        return Err(format!(
            "{width}x{height} PPM with {} bytes of pixels",
            pixels.len()
        ));
    }
    Ok((width, height, pixels[..len].to_vec()))
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
