//! No camera credential reaches anything camhub shows — its log (text and JSON), `/api/cameras`,
//! picture errors, `camhub check` and the config's `Debug` — while the rest stays readable: the scheme
//! of an `ffmpeg:` input, the host, and a camera whose id is `rtmp`. And logs fit where they go: no
//! colour codes in a pipe, one JSON object per line with `--log-format json`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use camhub_testkit::{free_port, rewrite_listen};
use common::{bin, camera, eventually, get, start};

/// The user name and password in every URL below; neither may show anywhere.
const USER: &str = "camuser";
const PASSWORD: &str = "hunter2pw";

/// Unreachable cameras (port 1 refuses at once) whose URLs hold credentials in each place they can:
/// the userinfo of an `ffmpeg:` input (main stream and substream) and a Xiongmai path.
const CONFIG: &str = r#"
[server]
snapshot_timeout = "1s"

[[camera]]
id = "rtmp"
url = "ffmpeg:rtmp://camuser:hunter2pw@127.0.0.1:1/live"
substream_url = "ffmpeg:rtsps://camuser:hunter2pw@127.0.0.1:1/sub"
always_on = true

[[camera]]
id = "xiongmai"
url = "rtsp://127.0.0.1:1/user=camuser&password=hun%23ter2pw&channel=1&stream=0.sdp"
always_on = true
"#;

/// Panics when `text` (named `what`) holds the user name or any part of the password.
fn assert_no_credentials(what: &str, text: &str) {
    for secret in [USER, PASSWORD, "ter2pw", "hun%23", "hun#"] {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_api_check_and_debug_never_show_a_password() {
    let hub = start(CONFIG).await;
    // Both cameras and the substream failed at least once, so every error path has been logged.
    let failed = eventually(Duration::from_secs(20), || async {
        let rtmp = camera(&hub, "rtmp").await;
        let xiongmai = camera(&hub, "xiongmai").await;
        !rtmp["last_error"].is_null() && !xiongmai["last_error"].is_null()
    })
    .await;
    assert!(failed, "cameras did not fail: {}", hub.log_tail(30));
    // A small picture goes to the ffmpeg: substream, which cannot connect: the error is shown.
    let picture = get(&hub.url("/api/cameras/rtmp/frame.jpeg?width=160")).await;
    assert_eq!(picture.status, 503, "{}", picture.text());
    assert_no_credentials("the picture error", &picture.text());
    let ok = eventually(Duration::from_secs(10), || async {
        !camera(&hub, "rtmp").await["substream"]["last_error"].is_null()
    })
    .await;
    assert!(ok, "the substream never tried: {}", hub.log_tail(30));

    let api = get(&hub.url("/api/cameras")).await.text();
    assert_no_credentials("/api/cameras", &api);
    for visible in [
        r#""id":"rtmp""#,
        r#""url":"ffmpeg:rtmp://***:***@127.0.0.1:1/live""#,
        r#""substream_url":"ffmpeg:rtsps://***:***@127.0.0.1:1/sub""#,
        r#""url":"rtsp://127.0.0.1:1/user=***&password=***&channel=1&stream=0.sdp""#,
    ] {
        assert!(api.contains(visible), "/api/cameras lacks {visible}: {api}");
    }

    let log = hub.log();
    assert_no_credentials("the log", &log);
    for visible in [
        "camera{id=rtmp}",
        "camera{id=rtmp/sub}",
        "connecting to ffmpeg:rtmp://***:***@127.0.0.1:1/live",
        "connecting to rtsp://127.0.0.1:1/user=***&password=***&channel=1",
    ] {
        assert!(log.contains(visible), "the log lacks {visible}:\n{log}");
    }

    let out = Command::new(bin())
        .arg("check")
        .arg(hub.config_path())
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{shown}");
    assert_no_credentials("camhub check", &shown);
    assert!(
        shown.contains("rtmp/sub") && shown.contains("ffmpeg:rtsps://***:***@127.0.0.1:1/sub"),
        "{shown}"
    );

    let config = camhub_config::parse(CONFIG, "camhub.toml").unwrap();
    for debug in [format!("{config:?}"), format!("{config:#?}")] {
        assert_no_credentials("Debug", &debug);
        assert!(
            debug.contains("\"rtmp\"") && debug.contains("ffmpeg:rtmp://***:***@127.0.0.1:1/live"),
            "{debug}"
        );
    }
}

#[test]
fn check_refuses_rtsps_and_a_password_cut_by_a_hash_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camhub.toml");
    std::fs::write(
        &path,
        r#"
[[camera]]
id = "tls"
url = "rtsps://camuser:hunter2pw@192.168.1.64:322/live"

[[camera]]
id = "xiongmai"
url = "rtsp://192.168.1.10:554/user=camuser&password=hun#ter2pw&channel=1&stream=0.sdp"
"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_no_credentials("camhub check", &stderr);
    assert!(stderr.contains(":4:"), "names the rtsps line: {stderr}");
    assert!(
        stderr.contains("\"ffmpeg:rtsps://***@192.168.1.64:322/live\""),
        "gives the ffmpeg: fix: {stderr}"
    );
    assert!(stderr.contains(":8:"), "names the Xiongmai line: {stderr}");
    assert!(stderr.contains("%23"), "gives the encoding fix: {stderr}");

    // Running with it refuses to start, with the same errors.
    let out = Command::new(bin())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("%23"));
}

/// Runs `camhub ARGS --config FILE` with stdout and stderr to pipes until its API answered and the
/// cameras failed a few times, then stops it (SIGTERM) and returns (stdout, stderr).
async fn run_to_pipe(extra_args: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("camhub.toml");
    std::fs::write(&path, rewrite_listen(CONFIG, port)).unwrap();
    let mut child = Command::new(bin())
        .args(extra_args)
        .arg("--config")
        .arg(&path)
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}/api/cameras");
    let failed = eventually(Duration::from_secs(30), || async {
        let Ok(r) = reqwest::get(&api).await else {
            return false;
        };
        let Ok(body) = r.bytes().await else {
            return false;
        };
        let Ok(list) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return false;
        };
        list.as_array()
            .is_some_and(|cams| cams.iter().all(|c| c["reconnects"].as_u64() >= Some(2)))
    })
    .await;
    stop(&mut child);
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(failed, "camhub did not come up:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// SIGTERM, then SIGKILL if it is still running after 10 s.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_to_a_pipe_have_no_colour_codes() {
    let (stdout, stderr) = run_to_pipe(&[]).await;
    assert!(stdout.contains("WARN camera{id=xiongmai}"), "{stdout}");
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!text.contains("\x1b["), "colour codes in {name}:\n{text:?}");
    }
    assert_no_credentials("the text log", &stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_scrubbed_object_per_line() {
    let (stdout, _) = run_to_pipe(&["--log-format", "json"]).await;
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    assert!(lines.len() >= 4, "{stdout}");
    assert!(
        lines.iter().all(|l| l["level"].is_string()
            && l["timestamp"].is_string()
            && l["fields"]["message"].is_string()),
        "{stdout}"
    );
    // Fields and spans are structured, and the rest stays readable.
    let rtmp_connecting = lines.iter().any(|l| {
        l["span"]["id"] == "rtmp"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("ffmpeg:rtmp://***:***@127.0.0.1:1/live"))
    });
    assert!(rtmp_connecting, "{stdout}");
    assert_no_credentials("the JSON log", &stdout);
}

#[test]
fn help_lists_the_log_format_and_bad_values_are_refused() {
    let out = Command::new(bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--log-format text|json"), "{help}");

    for bad in [&["--log-format", "xml"][..], &["--log-format"][..]] {
        let out = Command::new(bin()).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("text or json"), "{bad:?}: {stderr}");
    }
}
