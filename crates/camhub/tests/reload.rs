//! Changing the config while camhub runs, through `SIGHUP` and `POST /api/config/reload`: the
//! cameras whose settings did not change keep their connection and their viewers see no gap
//! (frame counter continuous, no reconnect), a changed camera restarts with its new settings and
//! its viewers move over (the same MJPEG response and WebSocket tile go on), a new camera appears,
//! a removed one ends its streams, and an invalid file is refused with its errors while the
//! running config stays.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use camhub_testkit::{jpeg_size, Camhub, MjpegReader};
use common::{eventually, get, start};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

fn cameras(b_width: u32, extra: &str) -> String {
    format!(
        "[[camera]]\nid = \"a\"\nurl = \"demo:?width=320&height=180&fps=10\"\n\n\
         [[camera]]\nid = \"b\"\nurl = \"demo:?width={b_width}&height=180&fps=10\"\n\n{extra}"
    )
}

/// Writes the new config over the running one, keeping the `[server]` the test harness wrote.
fn rewrite(hub: &Camhub, cams: &str) {
    let text = std::fs::read_to_string(hub.config_path()).unwrap();
    let server_end = text.find("[[camera]]").unwrap_or(text.len());
    std::fs::write(hub.config_path(), format!("{}{cams}", &text[..server_end])).unwrap();
}

/// Every frame header of a grid WebSocket, by camera: (seq, width).
fn watch_grid(hub: &Camhub) -> mpsc::UnboundedReceiver<(String, u64, u64)> {
    let url = hub.url("/api/ws").replace("http://", "ws://");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        let subscribe = json!({"subscribe": [{"camera": "a"}, {"camera": "b"}]});
        ws.send(Message::Text(subscribe.to_string().into()))
            .await
            .unwrap();
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(text) = msg {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["type"] == "frame" {
                    let id = v["camera"].as_str().unwrap().to_owned();
                    let _ = tx.send((id, v["seq"].as_u64().unwrap(), v["width"].as_u64().unwrap()));
                }
            }
        }
    });
    rx
}

fn sighup(hub: &Camhub) {
    let ok = Command::new("kill")
        .args(["-HUP", &hub.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_restarts_only_the_changed_camera_and_its_viewers_move_over() {
    let hub = start(&cameras(320, "")).await;
    let mut grid = watch_grid(&hub);
    let mjpeg_a = MjpegReader::connect(&hub.url("/api/cameras/a/stream.mjpeg"))
        .await
        .unwrap()
        .count_in_background();
    let mjpeg_b = MjpegReader::connect(&hub.url("/api/cameras/b/stream.mjpeg"))
        .await
        .unwrap()
        .count_in_background();
    // Both play.
    let mut last: HashMap<String, (u64, u64)> = HashMap::new();
    while last.len() < 2 {
        let (id, seq, width) = tokio::time::timeout(Duration::from_secs(20), grid.recv())
            .await
            .unwrap()
            .unwrap();
        last.insert(id, (seq, width));
    }

    // b gets a new size, c is added, a stays as it was.
    rewrite(
        &hub,
        &cameras(
            480,
            "[[camera]]\nid = \"c\"\nurl = \"demo:?width=160&height=90&fps=5\"\n",
        ),
    );
    sighup(&hub);
    assert!(
        eventually(Duration::from_secs(10), || async {
            hub.log().contains("config reloaded")
        })
        .await,
        "{}",
        hub.log_tail(20)
    );
    let log = hub.log();
    let line = log.lines().find(|l| l.contains("config reloaded")).unwrap();
    assert!(
        line.contains("added=[\"c\"]") && line.contains("restarted=[\"b\"]"),
        "{line}"
    );

    // The grid tile of b goes on with the new size; a's sequence never restarts.
    let mut b_new = 0;
    let mut a_after = 0;
    while b_new < 3 || a_after < 10 {
        let (id, seq, width) = tokio::time::timeout(Duration::from_secs(20), grid.recv())
            .await
            .unwrap_or_else(|_| panic!("the grid stalled after the reload\n{}", hub.log_tail(20)))
            .unwrap();
        let (prev_seq, _) = last.get(&id).copied().unwrap_or((0, 0));
        if id == "a" {
            assert!(
                seq > prev_seq,
                "camera a's frame counter went from {prev_seq} to {seq}: it restarted"
            );
            a_after += 1;
        }
        if id == "b" && width == 480 {
            b_new += 1;
        }
        last.insert(id, (seq, width));
    }
    // a was never reconnected; b was opened twice (before and after).
    let log = hub.log();
    assert_eq!(log.matches("camera{id=a}: connecting").count(), 1, "{log}");
    assert_eq!(log.matches("camera{id=b}: connecting").count(), 2, "{log}");
    // The MJPEG responses go on: a's without a break, b's with the new camera's frames.
    let (a_then, b_then) = (mjpeg_a.frames(), mjpeg_b.frames());
    assert!(
        eventually(Duration::from_secs(15), || async {
            mjpeg_a.frames() > a_then + 5 && mjpeg_b.frames() > b_then + 5
        })
        .await,
        "a {} b {}: {:?} {:?}",
        mjpeg_a.frames(),
        mjpeg_b.frames(),
        mjpeg_a.error(),
        mjpeg_b.error()
    );
    assert_eq!(mjpeg_a.error(), None);
    assert_eq!(mjpeg_b.error(), None);
    assert_eq!(jpeg_size(&mjpeg_b.last_frame().unwrap()), Some((480, 180)));
    // The new camera is there.
    let list = get(&hub.url("/api/cameras")).await.json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_reloads_refuses_an_invalid_file_and_removes_cameras() {
    let hub = start(&cameras(320, "[[camera]]\nid = \"c\"\nurl = \"demo:\"\n")).await;
    let http = reqwest::Client::new();
    let reload = || http.post(hub.url("/api/config/reload")).send();

    // Nothing changed: everything stays.
    let r = reload().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["cameras"]["unchanged"],
        json!(["a", "b", "c"]),
        "{body}"
    );
    assert_eq!(body["restart_needed"], json!([]));

    // An invalid file: 400 with the errors, and the cameras are as they were.
    let text = std::fs::read_to_string(hub.config_path()).unwrap();
    let bad = text.replace("id = \"c\"\n", "id = \"c\"\nidle_timout = \"5s\"\n");
    std::fs::write(hub.config_path(), bad).unwrap();
    let r = reload().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let errors = body["errors"].to_string();
    assert!(
        errors.contains("idle_timout") && errors.contains("idle_timeout"),
        "{body}"
    );
    assert_eq!(
        get(&hub.url("/api/cameras"))
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // c removed: its stream ends, the others are untouched; a [server] change needs a restart.
    let c_stream = MjpegReader::connect(&hub.url("/api/cameras/c/stream.mjpeg"))
        .await
        .unwrap()
        .count_in_background();
    assert!(eventually(Duration::from_secs(15), || async { c_stream.frames() > 0 }).await);
    std::fs::write(
        hub.config_path(),
        text.replace("[[camera]]\nid = \"c\"\nurl = \"demo:\"\n", ""),
    )
    .unwrap();
    let text = std::fs::read_to_string(hub.config_path()).unwrap();
    std::fs::write(
        hub.config_path(),
        text.replace("[server]\n", "[server]\nstall_timeout = \"45s\"\n"),
    )
    .unwrap();
    let r = reload().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["cameras"]["removed"], json!(["c"]), "{body}");
    assert_eq!(body["cameras"]["unchanged"], json!(["a", "b"]), "{body}");
    assert_eq!(body["restart_needed"], json!(["stall_timeout"]), "{body}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            c_stream.error().is_some()
        })
        .await,
        "the removed camera's stream did not end"
    );
    assert_eq!(get(&hub.url("/api/cameras/c")).await.status, 404);
}
