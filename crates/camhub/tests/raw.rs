//! `GET /api/cameras/{id}/frame.raw` (issue 11's HTTP frame API) against the real binary and the
//! test RTSP server: raw BGR, RGB, gray and I420 pixels of the size asked for, the test pattern's
//! bars in the right colours and in full range (black 0, white 255), the size and layout in the
//! headers; a JPEG camera (the server's /mjpeg) too; bad parameters are JSON 400s.
#![allow(clippy::unwrap_used)]

mod common;

use camhub_testkit::{KnownColor, RtspServer, RtspServerOptions, COLOR_TOLERANCE};

fn header(got: &common::Got, name: &str) -> String {
    got.header(name)
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// `rgb` (packed RGB, `w` x `h`) has every bar of the test pattern within the tolerance.
fn bars_ok(rgb: &[u8], w: u32, h: u32) {
    for bar in RtspServer::BARS {
        bar.check(rgb, w, h, COLOR_TOLERANCE).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_pixels_in_every_format_with_their_layout() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"cam\"\nurl = \"{}\"\n\n[[camera]]\nid = \"mj\"\nurl = \"{}\"\n",
        rtsp.url("/h264"),
        rtsp.url("/mjpeg")
    ))
    .await;
    for id in ["cam", "mj"] {
        // BGR, OpenCV's order (the default): swapped back to RGB, the bars are right.
        let got = common::get(&hub.url(&format!("/api/cameras/{id}/frame.raw?width=320"))).await;
        assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
        assert_eq!(header(&got, "content-type"), "application/octet-stream");
        let (w, h) = (320u32, 180u32);
        assert_eq!(header(&got, "x-width"), "320");
        assert_eq!(header(&got, "x-height"), "180");
        assert_eq!(header(&got, "x-stride"), "960");
        assert_eq!(header(&got, "x-format"), "bgr");
        assert!(header(&got, "x-frame-seq").parse::<u64>().unwrap() > 0);
        assert!(header(&got, "x-frame-timestamp").parse::<u64>().unwrap() > 1_600_000_000_000);
        assert_eq!(got.body.len(), (w * h * 3) as usize);
        let rgb: Vec<u8> = got
            .body
            .chunks(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        bars_ok(&rgb, w, h);

        let got =
            common::get(&hub.url(&format!("/api/cameras/{id}/frame.raw?height=90&format=rgb")))
                .await;
        assert_eq!(
            (header(&got, "x-width"), header(&got, "x-height")),
            ("160".into(), "90".into())
        );
        bars_ok(&got.body, 160, 90);

        // Gray: luma only, full range.
        let got = common::get(&hub.url(&format!(
            "/api/cameras/{id}/frame.raw?width=320&format=gray"
        )))
        .await;
        assert_eq!(got.body.len(), (w * h) as usize);
        assert_eq!(header(&got, "x-stride"), "320");
        let white = camhub_testkit::RTSP_WHITE;
        let at = |c: &KnownColor| {
            ((c.y * f64::from(h)) as u32 * w + (c.x * f64::from(w)) as u32) as usize
        };
        assert!(
            got.body[at(&white)] > 235,
            "white luma {}",
            got.body[at(&white)]
        );
        assert!(got.body[at(&camhub_testkit::RTSP_BLACK)] < 20);

        // I420: the three planes back to back, stride = width.
        let got = common::get(&hub.url(&format!(
            "/api/cameras/{id}/frame.raw?width=320&format=yuv420"
        )))
        .await;
        assert_eq!(got.body.len(), (w * h + 2 * (w / 2) * (h / 2)) as usize);
        assert!(got.body[at(&white)] > 235);
        let cb = &got.body[(w * h) as usize..];
        let white_chroma = ((white.y * f64::from(h / 2)) as u32 * (w / 2)
            + (white.x * f64::from(w / 2)) as u32) as usize;
        assert!(
            (i32::from(cb[white_chroma]) - 128).abs() < 10,
            "white is grey in chroma"
        );
    }
    // Bad parameters: JSON errors naming them, before the camera is woken.
    for (q, says) in [
        ("format=png", "format=png"),
        ("width=0", "width"),
        ("size=3", "unknown parameter"),
    ] {
        let got = common::get(&hub.url(&format!("/api/cameras/cam/frame.raw?{q}"))).await;
        assert_eq!(got.status, 400, "{q}");
        assert!(
            got.json()["error"].as_str().unwrap().contains(says),
            "{q}: {}",
            got.text()
        );
    }
    let got = common::get(&hub.url("/api/cameras/nope/frame.raw")).await;
    assert_eq!(got.status, 404);
}

/// One binary message of the `frames` WebSocket: its JSON header and its pixels.
fn split(message: &[u8]) -> (serde_json::Value, &[u8]) {
    let n = u32::from_le_bytes(message[..4].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&message[4..4 + n]).unwrap(),
        &message[4 + n..],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_frames_websocket_gives_a_slow_reader_the_newest_picture() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"cam\"\nurl = \"{}\"\n",
        rtsp.url("/h264")
    ))
    .await;
    let url = hub
        .url("/api/cameras/cam/frames?width=320&format=rgb")
        .replacen("http", "ws", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut last = 0u64;
    for round in 0..6 {
        ws.send(Message::text("next")).await.unwrap();
        let msg = loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Binary(b) => break b,
                Message::Text(t) => assert!(!t.contains("error"), "{t}"),
                _ => {}
            }
        };
        let (head, pixels) = split(&msg);
        assert_eq!(
            (head["width"].as_u64(), head["height"].as_u64()),
            (Some(320), Some(180)),
            "{head}"
        );
        assert_eq!(head["format"], "rgb");
        assert_eq!(pixels.len(), 320 * 180 * 3);
        bars_ok(pixels, 320, 180);
        let seq = head["seq"].as_u64().unwrap();
        assert!(seq > last, "{head}");
        if round >= 2 {
            // The reader took half a second: a 25 fps camera made ~12 pictures meanwhile, and it
            // gets the newest, not the next in a queue.
            assert!(head["skipped"].as_u64().unwrap() >= 5, "{head}");
            assert_eq!(head["skipped"].as_u64().unwrap(), seq - last - 1);
        }
        last = seq;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // Anything but `next` is an error message, and the stream goes on.
    ws.send(Message::text("more please")).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Text(t) => assert!(t.contains("\"error\""), "{t}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resolution_change_reaches_the_reader_as_pictures_of_the_new_size() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let rtsp = RtspServer::start(RtspServerOptions {
        switch_after: std::time::Duration::from_secs(2),
        ..RtspServerOptions::default()
    })
    .await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"sw\"\nurl = \"{}\"\n",
        rtsp.url("/switch")
    ))
    .await;
    // No size asked: the camera's own, which changes from 640x360 to 320x180.
    let url = hub
        .url("/api/cameras/sw/frames?format=gray")
        .replacen("http", "ws", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut sizes = Vec::new();
    for _ in 0..200 {
        ws.send(Message::text("next")).await.unwrap();
        let Message::Binary(msg) = ws.next().await.unwrap().unwrap() else {
            continue;
        };
        let (head, pixels) = split(&msg);
        let (w, h) = (
            head["width"].as_u64().unwrap(),
            head["height"].as_u64().unwrap(),
        );
        // Every message is whole and self-describing, across the change too.
        assert_eq!(pixels.len() as u64, w * h, "{head}");
        assert_eq!(head["stride"].as_u64(), Some(w));
        if sizes.last() != Some(&(w, h)) {
            sizes.push((w, h));
        }
        if (w, h) == (320, 180) {
            break;
        }
    }
    assert_eq!(
        sizes,
        [(640, 360), (320, 180)],
        "log:\n{}",
        hub.log_tail(20)
    );
}

/// A program that polls `frame.raw` a few times a second (each request holds the picture tap for a
/// moment only) keeps the decoder running: no restart that drops frames up to the next keyframe,
/// and every answer is a live picture, not one kept from before a restart.
#[tokio::test(flavor = "multi_thread")]
async fn polling_frame_raw_keeps_the_decoder_live() {
    let rtsp = RtspServer::start(RtspServerOptions::default().with_size(640, 360, 25)).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"cam\"\nurl = \"{}\"\n",
        rtsp.url("/h264")
    ))
    .await;
    let url = hub.url("/api/cameras/cam/frame.raw?width=160");
    // The first request starts the camera and decodes the cached GOP (those frames count as dropped).
    assert_eq!(common::get(&url).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let dropped = common::metric(&hub, "camhub_frames_dropped_total", "cam").await;
    let mut last_seq = 0u64;
    for _ in 0..40 {
        // 5 polls a second for 8 s: well past the decoder's 3 s grace each time it is alone.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let got = common::get(&url).await;
        assert_eq!(got.status, 200);
        let seq: u64 = header(&got, "x-frame-seq").parse().unwrap();
        let age: u64 = header(&got, "x-frame-age-ms").parse().unwrap();
        assert!(
            seq > last_seq,
            "a new picture at every poll: {seq} after {last_seq}"
        );
        assert!(
            age < 1000,
            "a live picture, not one from before a pause: {age} ms old"
        );
        last_seq = seq;
    }
    let dropped_now = common::metric(&hub, "camhub_frames_dropped_total", "cam").await;
    assert_eq!(
        dropped_now - dropped,
        0.0,
        "the decoder dropped frames while polled (it stopped and started again)"
    );
}
