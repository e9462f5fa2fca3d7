//! [`Camhub`]: runs the real camhub binary (`camhub --config FILE`) on a free loopback port.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::process::{signal, tail};

/// How long [`Camhub::start`] waits for `GET /healthz` to answer 200.
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);

/// Returns `config` with `[server] listen` set to `127.0.0.1:{port}`: an existing `listen` line inside
/// `[server]` is replaced, a `[server]` table without one gets it as its first key, and a config without a
/// `[server]` table gets one appended at the end (valid TOML whatever precedes it). Comments and everything
/// else are kept as they are. Dotted keys (`server.listen = ...`) are not recognised.
///
/// ```
/// let out = camhub_testkit::rewrite_listen("[server]\nlisten = \"127.0.0.1:0\"\n", 4242);
/// assert_eq!(out, "[server]\nlisten = \"127.0.0.1:4242\"\n");
/// ```
pub fn rewrite_listen(config: &str, port: u16) -> String {
    let listen = format!("listen = \"127.0.0.1:{port}\"");
    let mut out: Vec<String> = Vec::new();
    let mut in_server = false;
    let mut done = false;
    for line in config.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let is_server =
                trimmed.starts_with("[server]") || trimmed.replace(' ', "").starts_with("[server]");
            if is_server && !trimmed.starts_with("[[") {
                in_server = true;
                out.push(line.to_owned());
                out.push(listen.clone());
                done = true;
                continue;
            }
            in_server = false;
        } else if in_server {
            let key = trimmed.split('=').next().unwrap_or_default().trim();
            if key == "listen" || key == "\"listen\"" {
                continue; // replaced by the line inserted after the table header
            }
        }
        out.push(line.to_owned());
    }
    if !done {
        if out.last().is_some_and(|l| !l.trim().is_empty()) {
            out.push(String::new());
        }
        out.push("[server]".into());
        out.push(listen);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// A running camhub process with its own temp dir (config, log, working directory — so a relative
/// `data_dir` lands there too). Killed on `Drop`.
///
/// Paths inside the config (files for `ffmpeg:` sources) should be absolute: the process runs in the temp dir.
///
/// ```no_run
/// # async fn demo() {
/// use camhub_testkit::Camhub;
/// let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/camhub");
/// let hub = Camhub::start(&bin, "[[camera]]\nid = \"demo\"\nurl = \"demo:\"\n").await;
/// let body = reqwest::get(format!("{}/api/cameras", hub.base_url())).await.expect("GET").text().await.expect("body");
/// let mut hub = hub;
/// let status = hub.terminate().await.expect("exited within 10 s");
/// assert!(status.success(), "{}", hub.log());
/// # }
/// ```
pub struct Camhub {
    child: Option<Child>,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    log_path: PathBuf,
    port: u16,
}

impl Camhub {
    /// Writes the config (with `listen` on a free port, see [`rewrite_listen`], and WebRTC on a free
    /// UDP port unless the config sets `webrtc_listen`: tests run side by side) to a temp dir, runs
    /// `bin --config FILE` there with `RUST_LOG=info` (unless `RUST_LOG` is set), stdout and stderr to
    /// `camhub.log`, and waits until `GET /healthz` answers 200.
    ///
    /// # Panics
    /// When the binary cannot start, exits, or is not healthy within 30 s (the message has the log's tail).
    pub async fn start(bin: &Path, config_toml: &str) -> Camhub {
        let dir = tempfile::Builder::new()
            .prefix("camhub-test-")
            .tempdir()
            .expect("temp dir for camhub");
        let port = free_port();
        let config_path = dir.path().join("camhub.toml");
        let mut text = rewrite_listen(config_toml, port);
        if !config_toml.contains("webrtc_listen") {
            let listen = format!("listen = \"127.0.0.1:{port}\"\n");
            text = text.replacen(
                &listen,
                &format!("{listen}webrtc_listen = \"127.0.0.1:0\"\n"),
                1,
            );
        }
        std::fs::write(&config_path, text).expect("write camhub.toml");
        let log_path = dir.path().join("camhub.log");
        let log = File::create(&log_path).expect("create camhub.log");
        let log_err = log.try_clone().expect("clone log file handle");
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run camhub binary {}: {e}", bin.display()));
        let mut hub = Camhub {
            child: Some(child),
            dir,
            config_path,
            log_path,
            port,
        };
        hub.wait_healthy().await;
        hub
    }

    async fn wait_healthy(&mut self) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("reqwest client for /healthz");
        let url = self.url("/healthz");
        let deadline = Instant::now() + HEALTHY_TIMEOUT;
        loop {
            if let Ok(response) = client.get(&url).send().await {
                if response.status() == reqwest::StatusCode::OK {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "camhub exited ({status}) before {url} answered 200; log tail:\n{}",
                    tail(&self.log(), 60)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{url} did not answer 200 within {HEALTHY_TIMEOUT:?}; log tail:\n{}",
                    tail(&self.log(), 60)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `base_url() + path`, e.g. `url("/api/cameras")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The port camhub listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything camhub wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|raw| String::from_utf8_lossy(&raw).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of [`log`](Self::log), for assertion messages.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log(), n)
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Path of the config file as written (with the rewritten `listen`).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The temp dir camhub runs in (its working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// camhub's process id (for RSS readings from `/proc/PID/status`).
    ///
    /// # Panics
    /// After [`terminate`](Self::terminate).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("camhub was terminated").id()
    }

    /// camhub's resident set size in KiB, from `/proc/PID/status` (`VmRSS`); None once it has exited.
    pub fn rss_kib(&self) -> Option<u64> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.as_ref()?.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Sends SIGTERM and waits up to 10 s for camhub to exit: its exit status, or None if it had to be
    /// killed (or was already terminated).
    pub async fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Camhub {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite_listen;

    #[test]
    fn replaces_listen_in_server_table() {
        let cfg = "# top\n[server]\nlisten = \"127.0.0.1:0\"  # comment\ndata_dir = \"d\"\n\n[[camera]]\nid = \"a\"\n";
        let out = rewrite_listen(cfg, 5000);
        assert_eq!(
            out,
            "# top\n[server]\nlisten = \"127.0.0.1:5000\"\ndata_dir = \"d\"\n\n[[camera]]\nid = \"a\"\n"
        );
    }

    #[test]
    fn inserts_listen_into_server_table_without_one() {
        let out = rewrite_listen("[server]\ndata_dir = \"d\"\n", 5001);
        assert_eq!(
            out,
            "[server]\nlisten = \"127.0.0.1:5001\"\ndata_dir = \"d\"\n"
        );
    }

    #[test]
    fn appends_server_table_when_missing() {
        let out = rewrite_listen("[[camera]]\nid = \"a\"\nurl = \"demo:\"\n", 5002);
        assert_eq!(
            out,
            "[[camera]]\nid = \"a\"\nurl = \"demo:\"\n\n[server]\nlisten = \"127.0.0.1:5002\"\n"
        );
    }

    #[test]
    fn empty_config_gets_server_table() {
        assert_eq!(
            rewrite_listen("", 5003),
            "[server]\nlisten = \"127.0.0.1:5003\"\n"
        );
    }

    #[test]
    fn leaves_listen_keys_of_other_tables_alone() {
        let cfg = "[[camera]]\nid = \"a\"\nlisten = \"x\"\n[server]\nlisten = \"0.0.0.0:8080\"\n";
        let out = rewrite_listen(cfg, 5004);
        assert_eq!(
            out,
            "[[camera]]\nid = \"a\"\nlisten = \"x\"\n[server]\nlisten = \"127.0.0.1:5004\"\n"
        );
    }

    #[test]
    fn server_subtable_is_not_the_server_table() {
        let out = rewrite_listen("[server.tls]\ncert = \"c\"\n", 5005);
        assert!(
            out.ends_with("[server]\nlisten = \"127.0.0.1:5005\"\n"),
            "{out}"
        );
        assert!(out.starts_with("[server.tls]\ncert = \"c\"\n"), "{out}");
    }
}
