//! The command line as a newcomer meets it: `--help` and `check --help` say everything,
//! `check` without a file prints usage, a missing file says where it looked, `check` warns about
//! the usual copy-paste mistakes (with the real FFmpeg deciding which `input_format`s exist), and
//! SIGHUP (`systemctl reload`) applies the config without stopping camhub (tests/reload.rs shows
//! what it applies).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{bin, eventually, get, start};

fn camhub(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_lists_every_subcommand_and_option() {
    for flag in ["--help", "-h"] {
        let out = camhub(&[flag]);
        assert!(out.status.success());
        let text = stdout(&out);
        for item in [
            "camhub check [--strict] FILE",
            "camhub import-config FILE [-o OUT]",
            "-c, --config FILE",
            "--log-format text|json",
            "-h, --help",
            "-V, --version",
            "SIGHUP",
            "RUST_LOG",
        ] {
            assert!(text.contains(item), "{flag} lacks {item:?}:\n{text}");
        }
    }
    let out = camhub(&["--version"]);
    assert_eq!(
        stdout(&out).trim(),
        format!("camhub {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_help_and_check_without_a_file_print_its_usage() {
    let out = camhub(&["check", "--help"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let help = stdout(&out);
    assert!(
        help.contains("usage:\n  camhub check [--strict] FILE"),
        "{help}"
    );
    assert!(help.contains("--strict"), "{help}");

    let out = camhub(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.starts_with("check needs the config file to check"),
        "{text}"
    );
    assert!(text.contains("camhub check [--strict] FILE"), "{text}");
    assert!(!text.contains("cannot read"), "not a file error: {text}");
}

#[test]
fn a_missing_config_says_not_found_with_the_path_it_tried() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["check", "nope.toml"][..], &["--config", "nope.toml"][..]] {
        let out = Command::new(bin())
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let text = stderr(&out);
        let tried = dir.path().join("nope.toml");
        assert!(
            text.contains(&format!(
                "config file not found (tried {})",
                tried.display()
            )),
            "{args:?}: {text}"
        );
    }
    // A bare file name is not taken as a config by accident, but the message says how.
    let out = camhub(&["camhub.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("camhub --config camhub.toml"));
}

const MISTAKES: &str = r#"
[[camera]]
id = "esp32"
url = "http://192.168.1.50/stream"

[[camera]]
id = "door"
url = "rtsp://admin:hunter2@IP:554/Streaming/Channels/101"

[[camera]]
id = "usb"
url = "ffmpeg:/dev/video0"
input_format = "v4l"
"#;

#[test]
fn check_warns_about_newcomer_mistakes_and_strict_fails_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("camhub.toml");
    std::fs::write(&file, MISTAKES).unwrap();
    let path = file.to_str().unwrap();

    let out = camhub(&["check", path]);
    assert!(
        out.status.success(),
        "warnings alone pass: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("valid, 3 camera(s)"), "{text}");
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{text}");
    assert!(
        warnings[0].contains(":4:7: camera[0].url:")
            && warnings[0].contains("\"http://192.168.1.50:81/stream\""),
        "{text}"
    );
    assert!(
        warnings[1].contains(":8:7: camera[1].url:") && warnings[1].contains("\"IP\""),
        "{text}"
    );
    // The real FFmpeg says v4l is not one of its formats (v4l2 is).
    assert!(
        warnings[2].contains(":13:16: camera[2].input_format:")
            && warnings[2].contains("no input format named \"v4l\""),
        "{text}"
    );
    assert!(text.contains("3 warning(s)"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let out = camhub(&["check", "--strict", path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("3 warning(s), and --strict fails on warnings"),
        "{}",
        stderr(&out)
    );

    // A disabled camera is listed as such.
    std::fs::write(&file, format!("{MISTAKES}enabled = false\n")).unwrap();
    let out = camhub(&["check", path]);
    let listed = stdout(&out);
    let usb = listed
        .lines()
        .find(|l| l.trim_start().starts_with("usb "))
        .unwrap();
    assert!(usb.ends_with("(disabled)"), "{listed}");
    assert!(!listed
        .lines()
        .any(|l| l.trim_start().starts_with("door ") && l.contains("disabled")));

    // The fixed file passes even --strict: v4l2 is a format this FFmpeg has.
    let fixed = MISTAKES
        .replace("192.168.1.50/stream", "192.168.1.50:81/stream")
        .replace("@IP:", "@192.168.1.64:")
        .replace("\"v4l\"", "\"v4l2\"");
    std::fs::write(&file, fixed).unwrap();
    let out = camhub(&["check", "--strict", path]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains("warning"), "{}", stdout(&out));
}

#[test]
fn credentials_as_keys_are_an_error_that_says_to_put_them_in_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("camhub.toml");
    std::fs::write(
        &file,
        "[[camera]]\nid = \"door\"\nurl = \"rtsp://192.168.1.64/Streaming/Channels/101\"\nusername = \"admin\"\npassword = \"hunter2\"\n",
    )
    .unwrap();
    let out = camhub(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains(":4:1: camera[0].username: unknown key"),
        "{text}"
    );
    assert!(
        text.contains(":5:1: camera[0].password: unknown key"),
        "{text}"
    );
    assert!(
        text.contains("put the user name and password in the URL"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn sighup_reloads_the_config_and_keeps_serving() {
    let hub = start("[[camera]]\nid = \"demo\"\nurl = \"demo:\"\n").await;
    let hup = |pid: u32| {
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    hup(hub.pid());
    assert!(
        eventually(Duration::from_secs(10), || async {
            hub.log().contains("config reloaded")
        })
        .await,
        "{}",
        hub.log_tail(20)
    );
    assert_eq!(get(&hub.url("/healthz")).await.status, 200);

    // A broken edit is reported, and camhub keeps running with what it started with.
    std::fs::write(
        hub.config_path(),
        "[[camera]]\nid = \"demo\"\nurl = \"demo:\"\nidle_timout = \"5s\"\n",
    )
    .unwrap();
    hup(hub.pid());
    assert!(
        eventually(Duration::from_secs(10), || async {
            hub.log()
                .contains("SIGHUP: the config has errors, nothing changed")
        })
        .await,
        "{}",
        hub.log_tail(20)
    );
    assert!(hub.log().contains("idle_timout"), "{}", hub.log_tail(20));
    let cameras = get(&hub.url("/api/cameras")).await;
    assert_eq!(cameras.status, 200);
    assert_eq!(cameras.json()[0]["id"], "demo");
}

#[test]
fn help_into_a_closed_pipe_is_not_a_panic() {
    // `camhub --help | head -1` may close the pipe before camhub writes. Here the reading end is
    // closed at once, long before the new process (which loads the FFmpeg libraries) writes.
    let mut child = Command::new(bin())
        .arg("--help")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{:?}: {err}", out.status);
}
