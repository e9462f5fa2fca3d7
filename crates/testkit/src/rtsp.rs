//! [`RtspServer`]: the GStreamer RTSP server fixture (`fixtures/rtsp_server.py`) as a real IP camera.
//!
//! The script prints one event per line (`READY`, `CLIENT`, `SETUP`, `PLAY`, `TEARDOWN`, `CLOSED`); a
//! background thread collects them so tests can count sessions the camera saw.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::{stop_child, tail};

/// Path of the GStreamer RTSP server script (run it with `/usr/bin/python3`).
pub const RTSP_SERVER_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/rtsp_server.py");

/// How long [`RtspServer::start`] waits for the script's `READY` line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Options for [`RtspServer::start`]; `Default` is 640×360 at 15 fps on a free port, no auth.
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
    /// Frames per second; H.264 gets a keyframe every `fps` frames (one per second).
    pub fps: u32,
    /// `/switch` halves the picture size this long after its media starts.
    pub switch_after: Duration,
    /// `/silent` stops sending RTP this long after its media starts (the session stays open).
    pub silent_after: Duration,
}

impl Default for RtspServerOptions {
    fn default() -> Self {
        Self {
            port: 0,
            credentials: None,
            width: 640,
            height: 360,
            fps: 15,
            switch_after: Duration::from_secs(3),
            silent_after: Duration::from_secs(3),
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
}

/// One line the RTSP fixture printed, e.g. `SETUP /h264` or `CLIENT 3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspEvent {
    /// `CLIENT`, `SETUP`, `PLAY`, `TEARDOWN` or `CLOSED` (`READY` is recorded too).
    pub kind: String,
    /// The mount path (`/h264`) for SETUP/PLAY/TEARDOWN; the client id for CLIENT/CLOSED.
    pub arg: String,
    /// When the line was read.
    pub at: Instant,
}

/// A running GStreamer RTSP server on 127.0.0.1 with mounts `/h264`, `/h265`, `/mjpeg`, `/switch`, `/silent`
/// (see `fixtures/rtsp_server.py` and [`crate::RTSP_WHITE`] for the picture).
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
            .args(["--switch-after", &o.switch_after.as_secs_f64().to_string()])
            .args(["--silent-after", &o.silent_after.as_secs_f64().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((user, password)) = &o.credentials {
            cmd.args(["--user", user, "--password", password]);
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

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
