//! [`Chromium`]: headless Chromium driven over the DevTools protocol, for tests of camhub's web pages.
//!
//! `/usr/lib/chromium/chromium` is started directly (Debian's `/usr/bin/chromium` wrapper has a broken
//! `/dev/shm` check) with a fresh profile dir; the DevTools port is read from the profile's
//! `DevToolsActivePort` file. Chromium's crashpad handlers leave the process group, are reparented to init
//! and do not name the profile dir, so Chromium runs with a marker variable
//! (`CAMHUB_TESTKIT_CHROMIUM=<profile dir>`) that every helper inherits; on `Drop` every descendant and
//! every process whose command line or environment names the profile dir is killed by PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::process::{descendants, pids_mentioning, signal, stop_child};

/// Where Debian installs the real Chromium binary.
const CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// Environment variable set to the profile dir, inherited by every Chromium process (crashpad included).
pub(crate) const MARKER: &str = "CAMHUB_TESTKIT_CHROMIUM";
/// How long a single DevTools command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium with one page, driven over DevTools.
///
/// ```no_run
/// # async fn demo() {
/// let mut browser = camhub_testkit::Chromium::start().await;
/// browser.open("http://127.0.0.1:8080/").await;
/// tokio::time::sleep(std::time::Duration::from_secs(3)).await;
/// let tiles = browser.eval("document.querySelectorAll('img').length").await;
/// assert!(tiles.as_u64().unwrap_or(0) > 6);
/// browser.screenshot(std::path::Path::new("/tmp/grid.png")).await;
/// # }
/// ```
pub struct Chromium {
    child: Option<Child>,
    profile: tempfile::TempDir,
    port: u16,
    page: Socket,
    next_id: u64,
}

impl Chromium {
    /// Starts Chromium (headless, no sandbox, no GPU, 1280×800) on `about:blank` and attaches to its page.
    ///
    /// # Panics
    /// When Chromium does not start or expose DevTools within 30 s.
    pub async fn start() -> Chromium {
        let profile = tempfile::Builder::new()
            .prefix("camhub-chromium-")
            .tempdir()
            .expect("chromium profile dir");
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--mute-audio",
                "--window-size=1280,800",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .env(MARKER, profile.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        let mut browser = BrowserGuard {
            child: Some(child),
            profile: profile.path().to_owned(),
        };
        let port = wait_devtools_port(profile.path(), &mut browser).await;
        let ws_url = page_ws_url(port).await;
        let (page, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .unwrap_or_else(|e| panic!("DevTools WebSocket {ws_url}: {e}"));
        let mut chromium = Chromium {
            child: browser.child.take(),
            profile,
            port,
            page,
            next_id: 0,
        };
        chromium.call("Page.enable", json!({})).await;
        chromium.call("Runtime.enable", json!({})).await;
        chromium
    }

    /// The profile (user data) dir; every Chromium process of this instance has `CAMHUB_TESTKIT_CHROMIUM=`
    /// this dir in its environment.
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// The DevTools HTTP port.
    pub fn devtools_port(&self) -> u16 {
        self.port
    }

    /// Navigates the page to `url` and waits (up to 30 s) for its `load` event.
    pub async fn open(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({ "url": url })).await;
        if let Some(error) = result.get("errorText").and_then(Value::as_str) {
            panic!("Chromium could not open {url}: {error}");
        }
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let ready = self.eval("document.readyState").await;
            if ready == "complete" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} did not finish loading within {COMMAND_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Evaluates `js` in the page (promises are awaited) and returns its value as JSON
    /// (`undefined` becomes `null`). Wrap objects so they serialise: `JSON.parse(JSON.stringify(x))` is not
    /// needed, plain objects and arrays come back as they are.
    ///
    /// # Panics
    /// When the expression throws (the message has the exception).
    pub async fn eval(&mut self, js: &str) -> Value {
        match self.try_eval(js).await {
            Ok(v) => v,
            Err(error) => panic!("DevTools Runtime.evaluate failed: {error}"),
        }
    }

    /// [`eval`](Self::eval), but a DevTools error (the page navigated while evaluating) is returned,
    /// not a panic. A JavaScript exception still panics.
    pub async fn try_eval(&mut self, js: &str) -> Result<Value, Value> {
        let result = self
            .try_call(
                "Runtime.evaluate",
                json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("JavaScript `{js}` threw: {exception}");
        }
        Ok(result
            .get("result")
            .and_then(|r| r.get("value"))
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Evaluates `js` every 100 ms until it returns `true`; false after `timeout`. The page may
    /// navigate meanwhile (a login form posting, a redirect): an evaluation cut short by that
    /// counts as "not yet".
    pub async fn wait_until(&mut self, js: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.try_eval(js).await == Ok(Value::Bool(true)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        let result = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let data = result
            .get("data")
            .and_then(Value::as_str)
            .expect("captureScreenshot returned no data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("screenshot base64");
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("write screenshot {}: {e}", path.display()));
    }

    /// A screenshot of the page (the viewport, one CSS pixel per pixel) as JPEG bytes at quality 95,
    /// to look at pixels with [`decode_jpeg_rgb`](crate::decode_jpeg_rgb): DevTools renders a fresh
    /// frame for it, so it shows what a user would see at that moment.
    ///
    /// # Panics
    /// When DevTools returns no image.
    pub async fn screenshot_jpeg(&mut self) -> Vec<u8> {
        let result = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "jpeg", "quality": 95 }),
            )
            .await;
        let data = result
            .get("data")
            .and_then(Value::as_str)
            .expect("captureScreenshot returned no data");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("screenshot base64")
    }

    /// Sends one DevTools command and returns its `result`, skipping events that arrive meanwhile.
    ///
    /// # Panics
    /// On a protocol error or no answer within 30 s.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params).await {
            Ok(v) => v,
            Err(error) => panic!("DevTools {method} failed: {error}"),
        }
    }

    /// [`call`](Self::call), with the protocol's error (e.g. the page navigated) returned.
    ///
    /// # Panics
    /// When the connection fails or no answer comes within 30 s.
    pub async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.page
            .send(Message::text(message))
            .await
            .unwrap_or_else(|e| panic!("DevTools send {method}: {e}"));
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.page.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("DevTools {method}: no answer within {COMMAND_TIMEOUT:?}")
                });
            let text = match next {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("DevTools {method}: {e}"),
                None => panic!("DevTools {method}: connection closed"),
            };
            let Ok(reply) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                continue; // an event
            }
            if let Some(error) = reply.get("error") {
                return Err(error.clone());
            }
            return Ok(reply.get("result").cloned().unwrap_or(Value::Null));
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        BrowserGuard {
            child: self.child.take(),
            profile: self.profile.path().to_owned(),
        }
        .stop();
    }
}

/// Owns the browser processes until [`Chromium`] is built, so a failed start cleans up too.
struct BrowserGuard {
    child: Option<Child>,
    profile: PathBuf,
}

impl BrowserGuard {
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let needle = format!("{MARKER}={}", self.profile.display());
        let mut pids = descendants(child.id());
        pids.extend(pids_mentioning(&needle));
        stop_child(&mut child, Duration::from_secs(3));
        // Crashpad handlers and any stragglers: gone by PID, whatever their process group.
        pids.extend(pids_mentioning(&needle));
        pids.sort_unstable();
        pids.dedup();
        for pid in pids {
            signal(pid, "KILL");
        }
    }
}

impl Drop for BrowserGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_devtools_port(profile: &Path, browser: &mut BrowserGuard) -> u16 {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                return port;
            }
        }
        if let Some(Ok(Some(status))) = browser.child.as_mut().map(Child::try_wait) {
            panic!(
                "Chromium exited ({status}) before writing {}",
                file.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "Chromium wrote no {} within 30 s",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn page_ws_url(port: u16) -> String {
    let list_url = format!("http://127.0.0.1:{port}/json/list");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(response) = reqwest::get(&list_url).await {
            if let Ok(targets) = response
                .text()
                .await
                .map(|t| serde_json::from_str::<Value>(&t).unwrap_or(Value::Null))
            {
                let page = targets
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["type"] == "page");
                if let Some(url) = page.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
                    return url.to_owned();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no page target at {list_url} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
