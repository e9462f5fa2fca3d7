//! The `Camhub` harness against a stand-in binary (camhub itself is tested in its own crate): a shell
//! script that reads `listen` from the rewritten config and serves `/healthz` with Python's http.server.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use camhub_testkit::Camhub;

const STAND_IN: &str = r#"#!/bin/sh
# usage: stand-in --config FILE
[ "$1" = "--config" ] || { echo "expected --config FILE" >&2; exit 2; }
port=$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"$/\1/p' "$2")
mkdir -p www && echo ok > www/healthz
echo "stand-in: RUST_LOG=$RUST_LOG port=$port"
exec /usr/bin/python3 -m http.server "$port" --bind 127.0.0.1 --directory www
"#;

fn stand_in(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("camhub-stand-in");
    std::fs::write(&path, STAND_IN).expect("write stand-in");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("chmod stand-in");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_on_a_free_port_waits_for_healthz_and_terminates() {
    let bin_dir = tempfile::tempdir().expect("tmp");
    let bin = stand_in(&bin_dir);
    let config = "[server]\nlisten = \"127.0.0.1:0\"\n\n[[camera]]\nid = \"a\"\nurl = \"demo:\"\n";
    let mut hub = Camhub::start(&bin, config).await;
    assert!(hub.base_url().starts_with("http://127.0.0.1:"));
    assert_ne!(hub.port(), 0);
    let written = std::fs::read_to_string(hub.config_path()).expect("config");
    assert!(
        written.contains(&format!("listen = \"127.0.0.1:{}\"", hub.port())),
        "{written}"
    );
    let body = reqwest::get(hub.url("/healthz"))
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "ok\n");
    assert!(hub.rss_kib().is_some_and(|kib| kib > 0));
    assert!(hub.log().contains("RUST_LOG=info"), "{}", hub.log());
    let pid = hub.pid();
    assert!(
        hub.terminate().await.is_some(),
        "the stand-in exits on SIGTERM"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "reaped, no zombie"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[should_panic(expected = "camhub exited")]
async fn a_binary_that_exits_is_reported_with_its_log() {
    let _ = Camhub::start(std::path::Path::new("/bin/false"), "").await;
}
