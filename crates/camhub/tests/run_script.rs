//! `scripts/run.sh` typed in another directory: a relative `--config FILE` and `check FILE` mean the file
//! where the command was typed, not in the repository the script changes into. The script runs the binary
//! Cargo built for these tests through its `CAMHUB_BIN` seam (no set-up, no release build).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camhub_testkit::{free_port, rewrite_listen};
use common::bin;

/// The id of the only camera in the caller's config: not the built-in demo's `demo`.
const CAMERA_ID: &str = "from-the-callers-dir";

/// This repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A caller's directory outside the repository holding `sub/my.toml`: one demo camera, listening on `port`.
fn caller_dir(port: u16) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("camhub-run-sh-")
        .tempdir()
        .unwrap();
    assert!(
        !dir.path().canonicalize().unwrap().starts_with(repo()),
        "the caller's directory must not be inside the repository"
    );
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let config =
        format!("[[camera]]\nid = \"{CAMERA_ID}\"\nurl = \"demo:?width=320&height=240&fps=5\"\n");
    std::fs::write(
        dir.path().join("sub/my.toml"),
        rewrite_listen(&config, port),
    )
    .unwrap();
    // The relative path the test passes must not resolve inside the repository (where run.sh changes to).
    assert!(!repo().join("sub/my.toml").exists());
    dir
}

/// `bash scripts/run.sh ARGS` run in `dir`, with `CAMHUB_BIN` set to the test build of camhub.
fn run_sh(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(repo().join("scripts/run.sh"))
        .args(args)
        .current_dir(dir)
        .env("CAMHUB_BIN", bin())
        .stdin(Stdio::null());
    command
}

/// Kills and reaps the process on drop (run.sh execs camhub, so this is camhub).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_sh_starts_with_a_config_relative_to_the_callers_directory() {
    let port = free_port();
    let dir = caller_dir(port);
    let log_path = dir.path().join("run.log");
    let log = File::create(&log_path).unwrap();
    let child = run_sh(dir.path(), &["--config", "sub/my.toml"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/cameras");
    // A bound on waiting for start-up, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(60);
    let cameras: serde_json::Value = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            panic!(
                "run.sh exited ({status}) before {url} answered; output:\n{}",
                log()
            );
        }
        if let Ok(response) = client.get(&url).send().await {
            if response.status() == reqwest::StatusCode::OK {
                let body = response.bytes().await.unwrap();
                break serde_json::from_slice(&body).unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer; output:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ids: Vec<&str> = cameras
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {cameras}"))
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [CAMERA_ID],
        "camhub should serve the camera of sub/my.toml in the caller's directory; output:\n{}",
        log()
    );
}

#[test]
fn run_sh_check_resolves_the_file_against_the_callers_directory() {
    let dir = caller_dir(free_port());
    let file = dir.path().canonicalize().unwrap().join("sub/my.toml");
    for args in [
        &["check", "sub/my.toml"][..],
        &["check", "--strict", "sub/my.toml"],
    ] {
        let out = run_sh(dir.path(), args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "run.sh {args:?} failed ({}):\n{stdout}{stderr}",
            out.status
        );
        assert!(
            stdout.contains(&file.display().to_string()) && stdout.contains(CAMERA_ID),
            "run.sh {args:?} should check {} and list {CAMERA_ID}:\n{stdout}{stderr}",
            file.display()
        );
    }
}
