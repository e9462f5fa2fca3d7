//! Helpers shared by camhub's end-to-end tests: the binary's path, HTTP GETs that return status,
//! headers and body, polling for a condition, and reading `/metrics`.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use camhub_testkit::{Camhub, Chromium};

/// The camhub binary Cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_camhub"))
}

/// Starts camhub with `config`.
pub async fn start(config: &str) -> Camhub {
    Camhub::start(&bin(), config).await
}

/// A GET's outcome.
pub struct Got {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// GET with a 30 s bound (a hanging request is a failure, not a stuck test).
pub async fn get(url: &str) -> Got {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {url} body: {e}"))
        .to_vec();
    Got {
        status,
        headers,
        body,
    }
}

/// The camera's entry in `/api/cameras`.
pub async fn camera(hub: &Camhub, id: &str) -> serde_json::Value {
    let list = get(&hub.url("/api/cameras")).await.json();
    list.as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id).cloned())
        .unwrap_or_else(|| panic!("camera {id} not in {list}"))
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the camera reports `state`, or panics with the API entry and log tail.
pub async fn wait_state(hub: &Camhub, id: &str, state: &str, timeout: Duration) {
    let ok = eventually(timeout, || async {
        camera(hub, id).await["state"] == state
    })
    .await;
    if !ok {
        panic!(
            "camera {id} did not reach {state} within {timeout:?}: {}\nlog:\n{}",
            camera(hub, id).await,
            hub.log_tail(40)
        );
    }
}

/// One sample from `/metrics`.
pub async fn metric(hub: &Camhub, name: &str, camera: &str) -> f64 {
    let text = get(&hub.url("/metrics")).await.text();
    let prefix = format!("{name}{{camera=\"{camera}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} for {camera} not in /metrics:\n{text}"))
}

/// Waits until `js` is true on the camera page, or panics with `what`, the page's summary
/// (`camhub.cameraPage()`) and camhub's log.
pub async fn expect_camera_page(
    browser: &mut Chromium,
    hub: &Camhub,
    js: &str,
    secs: u64,
    what: &str,
) {
    if !browser.wait_until(js, Duration::from_secs(secs)).await {
        let now = browser
            .try_eval("JSON.stringify(camhub.cameraPage())")
            .await
            .unwrap_or(serde_json::Value::Null);
        panic!(
            "{what}: not within {secs} s\npage: {now}\nlog:\n{}",
            hub.log_tail(40)
        );
    }
}
