//! HTTPS cameras with self-signed certificates (most of them): refused by default with a reason
//! that says what to do, accepted with `insecure_tls = true`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use camhub_testkit::{decode_jpeg_rgb, ffmpeg_jpegs};
use common::{camera, get, start, wait_state};

/// The fixture process, killed on drop.
struct HttpsCamera(Child, u16);

impl Drop for HttpsCamera {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn https_camera(dir: &std::path::Path) -> HttpsCamera {
    let (cert, key, jpeg) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("x.jpg"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=camera.local",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success(), "openssl could not make a certificate");
    std::fs::write(&jpeg, &ffmpeg_jpegs(1, 320, 240)[0]).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/https_snapshot.py"
    );
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .args([&cert, &key, &jpeg])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("fixture said {line:?}"));
    HttpsCamera(child, port.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn self_signed_https_needs_the_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let cam = https_camera(dir.path());
    let url = format!("https://127.0.0.1:{}/capture", cam.1);
    let cfg = format!(
        "[server]\nsnapshot_timeout = \"3s\"\n\
         [[camera]]\nid = \"strict\"\nurl = \"{url}\"\n\
         [[camera]]\nid = \"optin\"\nurl = \"{url}\"\ninsecure_tls = true\npoll_interval = \"500ms\"\n"
    );
    let hub = start(&cfg).await;
    let ok = get(&hub.url("/api/cameras/optin/frame.jpeg")).await;
    assert_eq!(ok.status, 200, "{}\n{}", ok.text(), hub.log_tail(20));
    assert_eq!(decode_jpeg_rgb(&ok.body).0, 320);

    let refused = get(&hub.url("/api/cameras/strict/frame.jpeg")).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    wait_state(&hub, "strict", "retrying", Duration::from_secs(10)).await;
    let err = camera(&hub, "strict").await["last_error"]
        .as_str()
        .unwrap_or("")
        .to_lowercase();
    assert!(
        err.contains("certificate"),
        "the reason names the certificate: {err}"
    );
    assert!(
        err.contains("insecure_tls"),
        "the reason says how to fix it: {err}"
    );
}
