//! [`OneClientMjpegCamera`]: an ESP32-CAM stand-in made of the real `ffmpeg` CLI.
//!
//! `ffmpeg -f mpjpeg -listen 1` accepts exactly one HTTP client, streams to it and exits when the client
//! leaves; while it streams, its listening socket is closed, so a second client is refused — the way an
//! ESP32-CAM serves one viewer. A supervisor thread restarts ffmpeg whenever it exits.
//!
//! Counting clients: ffmpeg runs with `-progress pipe:1`, which prints nothing until the output is open, i.e.
//! until a client has been accepted. A run that prints any progress line got a client; each such run counts
//! once. Probing the port would itself be a client, so readiness is read from /proc/net/tcp instead.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::free_port;
use crate::process::{is_listening, stop_child};

struct Shared {
    stop: AtomicBool,
    connections: AtomicUsize,
    runs: AtomicUsize,
    child: Mutex<Option<Child>>,
}

/// A one-client-at-a-time MJPEG camera at `http://127.0.0.1:PORT/stream` (ffmpeg's `testsrc2` pattern,
/// boundary `ffmpeg`, Content-Type `multipart/x-mixed-replace;boundary=ffmpeg`).
///
/// [`connections`](Self::connections) counts the clients served so far. Stopped on `Drop`.
///
/// ```no_run
/// # async fn demo() {
/// use camhub_testkit::OneClientMjpegCamera;
/// let camera = OneClientMjpegCamera::start(320, 240, 10).await;
/// let url = camera.url(); // http://127.0.0.1:PORT/stream
/// // ... 50 camhub viewers of a camera with this url ...
/// assert_eq!(camera.connections(), 1);
/// # }
/// ```
pub struct OneClientMjpegCamera {
    port: u16,
    width: u32,
    height: u32,
    fps: u32,
    shared: Arc<Shared>,
    supervisor: Option<JoinHandle<()>>,
}

impl OneClientMjpegCamera {
    /// Starts the camera on a free port and waits (up to 10 s) until ffmpeg listens.
    pub async fn start(width: u32, height: u32, fps: u32) -> OneClientMjpegCamera {
        let mut camera = OneClientMjpegCamera {
            port: free_port(),
            width,
            height,
            fps,
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                connections: AtomicUsize::new(0),
                runs: AtomicUsize::new(0),
                child: Mutex::new(None),
            }),
            supervisor: None,
        };
        camera.start_again().await;
        camera
    }

    /// The stream URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/stream", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Clients served so far: ffmpeg runs that accepted a client (counted within ~0.2 s of the accept).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// ffmpeg processes started so far (one per client, plus the one waiting now).
    pub fn runs(&self) -> usize {
        self.shared.runs.load(Ordering::SeqCst)
    }

    /// Whether ffmpeg is listening for a client right now (false while it serves one, or when stopped).
    pub fn is_listening(&self) -> bool {
        is_listening(self.port)
    }

    /// Waits until ffmpeg listens (true) or `timeout` passes (false).
    pub async fn wait_listening(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_listening() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Waits until [`connections`](Self::connections) reaches `n`; false on timeout.
    pub async fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.connections() < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops the camera: the current client is cut off and the port closes (a camera that went away).
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(child) = self
            .shared
            .child
            .lock()
            .expect("camera child lock")
            .as_mut()
        {
            let _ = child.kill();
        }
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
    }

    /// Starts the camera again on the same port (after [`stop`](Self::stop)); waits until it listens.
    ///
    /// # Panics
    /// When ffmpeg does not listen within 10 s.
    pub async fn start_again(&mut self) {
        self.stop();
        self.shared.stop.store(false, Ordering::SeqCst);
        let shared = self.shared.clone();
        let args = ffmpeg_args(self.width, self.height, self.fps, self.port);
        self.supervisor = Some(
            std::thread::Builder::new()
                .name(format!("mjpeg-camera-{}", self.port))
                .spawn(move || supervise(&shared, &args))
                .expect("spawn camera supervisor thread"),
        );
        assert!(
            self.wait_listening(Duration::from_secs(10)).await,
            "ffmpeg MJPEG camera did not listen on 127.0.0.1:{} within 10 s",
            self.port
        );
    }
}

fn ffmpeg_args(width: u32, height: u32, fps: u32, port: u16) -> Vec<String> {
    let input = format!("testsrc2=size={width}x{height}:rate={fps}");
    let url = format!("http://127.0.0.1:{port}/stream");
    [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        &input,
        "-q:v",
        "5",
        "-f",
        "mpjpeg",
        "-content_type",
        "multipart/x-mixed-replace;boundary=ffmpeg",
        "-progress",
        "pipe:1",
        "-stats_period",
        "0.1",
        "-nostats",
        "-listen",
        "1",
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn supervise(shared: &Shared, args: &[String]) {
    while !shared.stop.load(Ordering::SeqCst) {
        let spawned = Command::new("ffmpeg")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = spawned else {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        shared.runs.fetch_add(1, Ordering::SeqCst);
        let stdout = child.stdout.take();
        *shared.child.lock().expect("camera child lock") = Some(child);
        if shared.stop.load(Ordering::SeqCst) {
            // stop() may have looked before the child was stored.
            if let Some(child) = shared.child.lock().expect("camera child lock").as_mut() {
                let _ = child.kill();
            }
        }
        if let Some(stdout) = stdout {
            let mut counted = false;
            for line in BufReader::new(stdout).lines() {
                if line.is_err() {
                    break;
                }
                if !counted {
                    counted = true;
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        if let Some(mut child) = shared.child.lock().expect("camera child lock").take() {
            stop_child(&mut child, Duration::from_secs(2));
        }
        if !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OneClientMjpegCamera {
    fn drop(&mut self) {
        self.stop();
    }
}
