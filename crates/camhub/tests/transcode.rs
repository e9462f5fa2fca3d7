//! `transcode = "h264"` (issue 8) against the real binary: an ESP32-CAM stand-in (the `ffmpeg` CLI
//! serving MJPEG over HTTP to one client) and the demo become H.264 that `ffprobe` reads at the
//! camera's size, that the MSE WebSocket serves, and that the camera page plays in headless
//! Chromium; the camera still has one connection; the encoder runs only while someone watches.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use camhub_testkit::{Camhub, Chromium, OneClientMjpegCamera};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Whether camhub has a thread named `name` (e.g. `cam-esp/h264`).
fn has_thread(hub: &Camhub, name: &str) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", hub.pid())) else {
        return false;
    };
    tasks
        .flatten()
        .any(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
}

fn ffprobe(input: &str) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-read_intervals", "%+2", "-count_frames"])
        .args(["-select_streams", "v:0", "-show_entries"])
        .arg("stream=codec_name,width,height,nb_read_frames")
        .args(["-of", "json", input])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"][0].clone()
}

#[tokio::test]
async fn a_jpeg_camera_is_served_as_h264_to_players() {
    let esp = OneClientMjpegCamera::start(480, 320, 10).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"esp\"\nurl = \"{}\"\ntranscode = \"h264\"\n\n\
         [[camera]]\nid = \"demo\"\nurl = \"demo:?width=320&height=240&fps=10\"\ntranscode = \"h264\"\n",
        esp.url()
    ))
    .await;
    let cam = common::camera(&hub, "esp").await;
    assert_eq!(cam["player_stream"], "transcoded h264", "{cam}");

    // stream.mp4: H.264 at the camera's size.
    for (id, size) in [("esp", (480u32, 320u32)), ("demo", (320, 240))] {
        let url = hub.url(&format!("/api/cameras/{id}/stream.mp4"));
        let s = tokio::task::spawn_blocking(move || ffprobe(&url))
            .await
            .unwrap();
        assert_eq!(s["codec_name"], "h264", "{id}: {s}");
        assert_eq!(
            (s["width"].as_u64(), s["height"].as_u64()),
            (Some(u64::from(size.0)), Some(u64::from(size.1))),
            "{id}: {s}"
        );
        let frames: u64 = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
        assert!(frames >= 10, "{id}: {frames} frames in 2 s: {s}");
    }
    assert!(common::metric(&hub, "camhub_transcode_seconds_total", "esp").await > 0.0);

    // The MSE WebSocket offers it as H.264.
    let url = hub.url("/api/cameras/esp/mse").replacen("http", "ws", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"type": "mse", "codecs": ["avc1.640028"]}).to_string(),
    ))
    .await
    .unwrap();
    let mut codec = None;
    let mut fragments = 0;
    while fragments < 5 {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("MSE messages within 20 s")
            .unwrap()
            .unwrap();
        match m {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_ne!(v["type"], "error", "{v}");
                if v["type"] == "mse" {
                    codec = v["codec"].as_str().map(str::to_owned);
                    assert_eq!(
                        (v["width"].as_u64(), v["height"].as_u64()),
                        (Some(480), Some(320))
                    );
                }
            }
            Message::Binary(b) if &b[4..8] == b"moof" => fragments += 1,
            _ => {}
        }
    }
    assert!(codec.unwrap().starts_with("avc1."));
    drop(ws);
    // The ESP32-CAM serves one client: camhub is it, for every player and every kind.
    assert_eq!(esp.runs(), 1, "one connection to the camera");

    // Nobody watches: the encoder stops after its grace period.
    assert!(
        common::eventually(Duration::from_secs(20), || async {
            !has_thread(&hub, "cam-esp/h264")
        })
        .await,
        "the encoder still runs with nobody watching"
    );
}

#[tokio::test]
async fn the_camera_page_plays_a_transcoded_jpeg_camera_through_mse() {
    let esp = OneClientMjpegCamera::start(480, 320, 10).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"esp\"\nurl = \"{}\"\ntranscode = \"h264\"\n",
        esp.url()
    ))
    .await;
    let mut browser = Chromium::start().await;
    // MSE (the automatic choice, WebRTC, plays the same transcoded stream: tests/webrtc.rs).
    browser.open(&hub.url("/cameras/esp?player=mse")).await;
    let js = "camhub.cameraPage().player === 'mse' && camhub.cameraPage().mse && \
              camhub.cameraPage().mse.width === 480 && camhub.cameraPage().mse.currentTime > 1";
    if !browser.wait_until(js, Duration::from_secs(40)).await {
        let page = browser
            .try_eval("JSON.stringify(camhub.cameraPage())")
            .await
            .unwrap_or(Value::Null);
        panic!(
            "the page did not play the transcoded camera: {page}\nlog:\n{}",
            hub.log_tail(30)
        );
    }
    let label = browser
        .eval("document.getElementById('player-label').textContent")
        .await;
    assert!(
        label.as_str().unwrap().starts_with("MSE · avc1."),
        "{label}"
    );
}
