//! The HTTP API's contract with the built-in demo camera: statuses, JSON errors for bad input,
//! variant limits, metrics, health, graceful shutdown, and `camhub check`.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use camhub_testkit::{decode_jpeg_rgb, MjpegReader};
use common::{bin, camera, get, metric, start, wait_state};

const DEMO: &str = r#"
[server]
max_variants = 3
[[camera]]
id = "demo"
name = "Demo"
url = "demo:?width=640&height=360&fps=10"
idle_timeout = "2s"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_json_errors() {
    let hub = start(DEMO).await;
    let cases = [
        ("/api/cameras/nope/frame.jpeg", 404, "nope"),
        ("/api/cameras/nope/stream.mjpeg", 404, "known cameras: demo"),
        ("/api/cameras/demo/frame.jpeg?width=0", 400, "width=0"),
        ("/api/cameras/demo/frame.jpeg?width=100000", 400, "16384"),
        (
            "/api/cameras/demo/frame.jpeg?height=abc",
            400,
            "not a whole number",
        ),
        ("/api/cameras/demo/frame.jpeg?quality=101", 400, "quality"),
        ("/api/cameras/demo/stream.mjpeg?fps=0", 400, "fps"),
        (
            "/api/cameras/demo/frame.jpeg?colour=red",
            400,
            "unknown parameter",
        ),
        ("/no/such/page", 404, "no such page"),
    ];
    for (path, status, needle) in cases {
        let r = get(&hub.url(path)).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        let err = r.json()["error"].as_str().unwrap().to_owned();
        assert!(
            err.contains(needle),
            "{path}: {err:?} should mention {needle:?}"
        );
    }
    // Absurd input did not hurt the server.
    assert_eq!(get(&hub.url("/healthz")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_camera_wakes_on_demand_serves_sizes_and_goes_idle() {
    let hub = start(DEMO).await;
    assert_eq!(camera(&hub, "demo").await["state"], "idle");
    let snap = get(&hub.url("/api/cameras/demo/frame.jpeg?width=320&quality=60")).await;
    assert_eq!(snap.status, 200, "{}", snap.text());
    assert_eq!(snap.header("content-type").as_deref(), Some("image/jpeg"));
    let age: u64 = snap.header("x-frame-age-ms").unwrap().parse().unwrap();
    assert!(age < 10_000);
    let (w, h, rgb) = decode_jpeg_rgb(&snap.body);
    assert_eq!((w, h), (320, 180));
    // The first bar is 100 % white, the eighth black (full range: the pattern is drawn that way).
    let px = |x: u32, y: u32| rgb[((y * w + x) * 3) as usize];
    assert!(px(10, 40) > 240, "white bar is {}", px(10, 40));
    assert!(px(w - 10, 40) < 15, "black bar is {}", px(w - 10, 40));
    let api = camera(&hub, "demo").await;
    assert_eq!(api["state"], "streaming", "{api}");
    assert_eq!(api["width"], 640);
    // Never upscaled.
    let big = get(&hub.url("/api/cameras/demo/frame.jpeg?width=4000")).await;
    assert_eq!(decode_jpeg_rgb(&big.body).0, 640);
    // Nobody takes frames: the camera closes after idle_timeout (2 s).
    wait_state(&hub, "demo", "idle", Duration::from_secs(15)).await;
    assert!(hub.log().contains("closing the connection"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_poller_gets_a_new_frame_every_time() {
    let hub = start(DEMO).await;
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let snap = get(&hub.url("/api/cameras/demo/frame.jpeg?width=320")).await;
        assert_eq!(snap.status, 200);
        seqs.push(snap.header("x-frame-seq").unwrap().parse::<u64>().unwrap());
        let age: u64 = snap.header("x-frame-age-ms").unwrap().parse().unwrap();
        assert!(age < 1000, "a stale frame ({age} ms old) was served");
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "same frame served again: {seqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn variants_are_capped_and_shared() {
    let hub = start(DEMO).await;
    let mut readers = Vec::new();
    for w in [320, 160, 96] {
        let url = hub.url(&format!("/api/cameras/demo/stream.mjpeg?width={w}"));
        let mut r = MjpegReader::connect(&url).await.unwrap();
        r.next_frame_within(Duration::from_secs(10)).await.unwrap();
        readers.push(r);
    }
    // A fourth distinct variant is over max_variants = 3.
    let over = get(&hub.url("/api/cameras/demo/frame.jpeg?width=200")).await;
    assert_eq!(over.status, 429, "{}", over.text());
    assert!(over.json()["error"]
        .as_str()
        .unwrap()
        .contains("max_variants"));
    // An existing variant is still fine, and shares the encoder's output.
    let same = get(&hub.url("/api/cameras/demo/frame.jpeg?width=160")).await;
    assert_eq!(same.status, 200);
    let before = metric(&hub, "camhub_frames_encoded_total", "demo").await;
    let frames_before = metric(&hub, "camhub_frames_in_total", "demo").await;
    let mut extra = Vec::new();
    for _ in 0..10 {
        let url = hub.url("/api/cameras/demo/stream.mjpeg?width=160");
        extra.push(MjpegReader::connect(&url).await.unwrap());
    }
    for r in &mut extra {
        r.next_frame_within(Duration::from_secs(10)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let encoded = metric(&hub, "camhub_frames_encoded_total", "demo").await - before;
    let frames = metric(&hub, "camhub_frames_in_total", "demo").await - frames_before;
    // Three variants: at most three encodes per source frame, however many viewers (+1 frame of slack
    // for the window edges).
    assert!(
        encoded <= 3.0 * (frames + 1.0),
        "{encoded} encodes for {frames} frames"
    );
    assert_eq!(camera(&hub, "demo").await["viewers"], 13);
    drop(readers);
    drop(extra);
    let text = get(&hub.url("/metrics")).await.text();
    for name in [
        "camhub_frames_in_total",
        "camhub_decode_seconds_total",
        "camhub_encode_seconds_total",
        "camhub_viewers",
        "camhub_reconnects_total",
        "camhub_frames_dropped_total",
        "camhub_bytes_out_total",
        "camhub_viewer_queued_bytes_max",
        "camhub_added_latency_seconds_count",
    ] {
        assert!(
            text.contains(&format!("{name}{{camera=\"demo\"}}")),
            "{name} missing:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_shuts_down_cleanly_with_viewers_connected() {
    let mut hub = start(DEMO).await;
    let mut reader = MjpegReader::connect(&hub.url("/api/cameras/demo/stream.mjpeg"))
        .await
        .unwrap();
    reader
        .next_frame_within(Duration::from_secs(10))
        .await
        .unwrap();
    let status = hub
        .terminate()
        .await
        .expect("camhub exits on SIGTERM within 10 s");
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        hub.log_tail(20)
    );
    assert!(hub.log().contains("shutting down"));
}

#[test]
fn check_validates_configs_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        include_str!("../../config/tests/fixtures/design_example.toml"),
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("check")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("valid, 2 camera(s)"), "{stdout}");
    assert!(
        !stdout.contains("secret"),
        "check output shows credentials: {stdout}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"127.0.0.1:8080\"\n\n[[camera]]\nid = \"a\"\nurl = \"rtsp://admin:hunter2@cam/1\"\nidle_timout = \"30s\"\n",
    )
    .unwrap();
    let out = Command::new(bin()).arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":7:"), "names line 7: {stderr}");
    assert!(
        stderr.contains("idle_timeout"),
        "suggests the fix: {stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[camera]]\nid = \"a\nurl = 1\n").unwrap();
    let out = Command::new(bin())
        .arg("check")
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2:"));

    // Running with a bad config refuses to start, with the same errors.
    let out = Command::new(bin())
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("idle_timout"));
}
