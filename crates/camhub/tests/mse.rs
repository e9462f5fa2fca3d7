//! Browser video without transcoding (issue 8), against the real binary and a real RTSP camera
//! (GStreamer's server): `stream.mp4` and the MSE WebSocket carry the camera's own H.264 as
//! fragmented MP4 that `ffprobe` reads at the source's size and rate, nothing is decoded for them
//! (`/metrics`), cameras with nothing a browser can play are refused with a reason, and the camera
//! page plays the stream in headless Chromium through MSE.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use camhub_testkit::{Camhub, Chromium, RtspServer, RtspServerOptions};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn config(rtsp: &RtspServer) -> String {
    format!(
        "[[camera]]\nid = \"cam\"\nurl = \"{}\"\n\n[[camera]]\nid = \"jpeg\"\nurl = \"{}\"\n\n\
         [[camera]]\nid = \"demo\"\nurl = \"demo:\"\n",
        rtsp.url("/h264"),
        rtsp.url("/mjpeg")
    )
}

/// `ffprobe`'s view of a file or URL: the first video stream's fields, frames counted.
fn ffprobe(input: &str, extra: &[&str]) -> Value {
    let mut args = vec!["-v", "error"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,profile,level,width,height,nb_read_frames,r_frame_rate,avg_frame_rate",
        "-of",
        "json",
        input,
    ]);
    let out = std::process::Command::new("ffprobe")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"][0].clone()
}

/// A rate like "15/1" as a number.
fn rate(v: &Value) -> f64 {
    let s = v.as_str().unwrap_or("0/1");
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    n.parse::<f64>().unwrap_or(0.0) / d.parse::<f64>().unwrap_or(1.0).max(1e-9)
}

/// The `camhub_packet_viewers` gauge of `camera` and `kind`.
async fn packet_viewers(hub: &Camhub, camera: &str, kind: &str) -> f64 {
    let text = common::get(&hub.url("/metrics")).await.text();
    let prefix = format!("camhub_packet_viewers{{camera=\"{camera}\",kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no packet viewers of {camera}/{kind} in /metrics:\n{text}"))
}

async fn mse_ws(hub: &Camhub, id: &str) -> Ws {
    let url = hub
        .url(&format!("/api/cameras/{id}/mse"))
        .replacen("http", "ws", 1);
    tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap()
        .0
}

/// The next message within `limit`: JSON text as Ok, binary as Err; None when closed or silent.
async fn next(ws: &mut Ws, limit: Duration) -> Option<Result<Value, Vec<u8>>> {
    loop {
        let m = tokio::time::timeout(limit, ws.next()).await.ok()??.ok()?;
        match m {
            Message::Text(t) => return Some(Ok(serde_json::from_str(t.as_str()).unwrap())),
            Message::Binary(b) => return Some(Err(b.to_vec())),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// The first `error` message a client saying it plays `codecs` gets from camera `id`.
async fn refusal(hub: &Camhub, id: &str, codecs: &[&str]) -> String {
    let mut ws = mse_ws(hub, id).await;
    ws.send(Message::text(
        json!({"type": "mse", "codecs": codecs}).to_string(),
    ))
    .await
    .unwrap();
    while let Some(m) = next(&mut ws, Duration::from_secs(20)).await {
        match m {
            Ok(v) if v["type"] == "error" => return v["error"].as_str().unwrap().to_owned(),
            Ok(v) => assert_ne!(v["type"], "mse", "{id}: a codec was offered: {v}"),
            Err(b) => panic!(
                "{id}: {} bytes of video for a client that cannot play it",
                b.len()
            ),
        }
    }
    panic!("{id}: closed or silent without an error message");
}

#[tokio::test]
async fn stream_mp4_is_the_cameras_own_h264_and_nothing_is_decoded() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;
    let url = hub.url("/api/cameras/cam/stream.mp4");

    // ffprobe reads three seconds of the live file: the source's codec, size and rate.
    let probe_url = url.clone();
    let s = tokio::task::spawn_blocking(move || ffprobe(&probe_url, &["-read_intervals", "%+3"]))
        .await
        .unwrap();
    assert_eq!(s["codec_name"], "h264", "{s}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(640), Some(360)),
        "{s}"
    );
    let fps = rate(&s["r_frame_rate"]);
    assert!((14.0..=16.0).contains(&fps), "frame rate {fps}: {s}");
    let frames: u64 = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(
        frames >= 30,
        "only {frames} frames in 3 s of a 15 fps camera: {s}"
    );

    // The ffmpeg CLI decodes what it gets without a complaint.
    let decode_url = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-t",
                "2",
                "-i",
                &decode_url,
                "-f",
                "null",
                "-",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "",
        "ffmpeg complained"
    );

    // A packet viewer costs no decode: nothing asked for pictures.
    assert_eq!(
        common::metric(&hub, "camhub_decode_seconds_total", "cam").await,
        0.0
    );
    // ... and the API still knows the picture size, from the stream's SPS.
    let cam = common::camera(&hub, "cam").await;
    assert_eq!(
        (cam["width"].as_u64(), cam["height"].as_u64()),
        (Some(640), Some(360)),
        "{cam}"
    );
    assert_eq!(
        common::metric(&hub, "camhub_frames_encoded_total", "cam").await,
        0.0
    );
    assert!(common::metric(&hub, "camhub_packet_bytes_out_total", "cam").await > 10_000.0);

    // While a response is open it counts as a viewer of its kind, and the camera stays connected.
    let client = reqwest::Client::new();
    let mut resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    let first = resp.chunk().await.unwrap().unwrap();
    assert_eq!(
        &first[4..8],
        b"ftyp",
        "the response starts with the init segment"
    );
    assert_eq!(packet_viewers(&hub, "cam", "mp4").await, 1.0);
    drop(resp);
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            packet_viewers(&hub, "cam", "mp4").await == 0.0
        })
        .await,
        "the viewer gauge did not go back to 0"
    );
}

#[tokio::test]
async fn the_mse_websocket_sends_the_codec_an_init_segment_and_playable_fragments() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;
    let mut ws = mse_ws(&hub, "cam").await;
    ws.send(Message::text(
        json!({"type": "mse", "codecs": ["avc1.640028", "avc1.42E01E"]}).to_string(),
    ))
    .await
    .unwrap();
    let mut codec = None;
    let mut status = false;
    let mut file = Vec::new();
    let mut fragments = 0;
    while fragments < 45 {
        match next(&mut ws, Duration::from_secs(20)).await {
            Some(Ok(v)) if v["type"] == "mse" => {
                assert!(
                    file.is_empty(),
                    "the codec message comes before the init segment"
                );
                assert_eq!(
                    (v["width"].as_u64(), v["height"].as_u64()),
                    (Some(640), Some(360)),
                    "{v}"
                );
                codec = v["codec"].as_str().map(str::to_owned);
            }
            Some(Ok(v)) if v["type"] == "status" => status = true,
            Some(Ok(v)) => assert_ne!(v["type"], "error", "{v}"),
            Some(Err(b)) => {
                if file.is_empty() {
                    assert_eq!(
                        &b[4..8],
                        b"ftyp",
                        "the first binary message is the init segment"
                    );
                } else {
                    assert_eq!(&b[4..8], b"moof", "then fragments");
                    fragments += 1;
                }
                file.extend_from_slice(&b);
            }
            None => panic!(
                "closed after {fragments} fragments; log:\n{}",
                hub.log_tail(30)
            ),
        }
    }
    let codec = codec.expect("an mse message");
    assert!(codec.starts_with("avc1.") && codec.len() == 11, "{codec}");
    assert!(status, "the camera's status came too");
    assert_eq!(packet_viewers(&hub, "cam", "mse").await, 1.0);
    ws.send(Message::text(
        json!({"type": "edge", "delay": 0.25}).to_string(),
    ))
    .await
    .unwrap();
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            common::metric(&hub, "camhub_mse_live_edge_seconds_count", "cam").await == 1.0
        })
        .await,
        "the reported live-edge distance is in /metrics"
    );
    drop(ws);

    // What was captured is a valid MP4: every fragment a frame, at the camera's size.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mse.mp4");
    std::fs::write(&path, &file).unwrap();
    let s = ffprobe(path.to_str().unwrap(), &[]);
    assert_eq!(s["codec_name"], "h264", "{s}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(640), Some(360)),
        "{s}"
    );
    assert_eq!(s["nb_read_frames"], "45", "{s}");
    // The codec string is the stream's own profile and level (RFC 6381: avc1.PPCCLL).
    let level = u8::from_str_radix(&codec[9..11], 16).unwrap();
    assert_eq!(
        s["level"].as_u64(),
        Some(u64::from(level)),
        "{codec} vs {s}"
    );
    let baseline = s["profile"].as_str().unwrap().contains("Baseline");
    assert_eq!(&codec[5..7] == "42", baseline, "{codec} vs {s}");
    let fps = rate(&s["avg_frame_rate"]);
    assert!((13.0..=17.0).contains(&fps), "frame rate {fps}: {s}");
    assert_eq!(
        common::metric(&hub, "camhub_decode_seconds_total", "cam").await,
        0.0
    );
}

#[tokio::test]
async fn cameras_a_browser_cannot_play_are_refused_with_the_reason() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;

    let e = refusal(&hub, "cam", &["hvc1.1.6.L120.90"]).await;
    assert!(e.contains("h264") && e.contains("plays none"), "{e}");
    let e = refusal(&hub, "jpeg", &["avc1.640028"]).await;
    assert!(e.contains("mjpeg") && e.contains("JPEG"), "{e}");
    let e = refusal(&hub, "demo", &["avc1.640028"]).await;
    assert!(e.contains("demo"), "{e}");

    // A first message that is not the codec list.
    let mut ws = mse_ws(&hub, "cam").await;
    ws.send(Message::text(r#"{"mode": "live"}"#)).await.unwrap();
    match next(&mut ws, Duration::from_secs(10)).await {
        Some(Ok(v)) => assert!(v["error"].as_str().unwrap().contains("codecs"), "{v}"),
        other => panic!("expected an error, got {other:?}"),
    }

    for (id, what) in [("jpeg", "mjpeg"), ("demo", "demo")] {
        let got = common::get(&hub.url(&format!("/api/cameras/{id}/stream.mp4"))).await;
        assert_eq!(got.status, 415, "{id}: {}", got.text());
        assert!(got.text().contains(what), "{id}: {}", got.text());
    }
    let got = common::get(&hub.url("/api/cameras/nope/stream.mp4")).await;
    assert_eq!(got.status, 404);
    let got = common::get(&hub.url("/api/cameras/cam/stream.mp4?width=3")).await;
    assert_eq!(got.status, 400, "{}", got.text());
}

#[tokio::test]
async fn the_camera_page_plays_h264_through_mse_and_falls_back_to_mjpeg() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;
    let mut browser = Chromium::start().await;

    // MSE chosen on an H.264 camera (the automatic choice is WebRTC: tests/webrtc.rs), playing
    // at the camera's size.
    browser.open(&hub.url("/cameras/cam?player=mse")).await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().player === 'mse' && camhub.cameraPage().mse && \
         camhub.cameraPage().mse.width === 640 && camhub.cameraPage().mse.currentTime > 0.5",
        30,
        "the page plays the camera through MSE",
    )
    .await;
    let page = browser.eval("camhub.cameraPage()").await;
    assert!(
        page["mse"]["codec"].as_str().unwrap().starts_with("avc1."),
        "{page}"
    );
    assert_eq!(page["mse"]["height"], 360, "{page}");
    let t0 = page["mse"]["currentTime"].as_f64().unwrap();
    // Playback advances (waited for, not timed: the machine may be busy).
    common::expect_camera_page(
        &mut browser,
        &hub,
        &format!("camhub.cameraPage().mse.currentTime > {t0} + 1.5"),
        30,
        "playback advances",
    )
    .await;
    let page = browser.eval("camhub.cameraPage()").await;
    let delay = page["mse"]["delay"].as_f64().unwrap();
    assert!(delay <= 1.0, "at the live edge: {delay} s behind: {page}");
    let label = browser
        .eval("document.getElementById('player-label').textContent")
        .await;
    assert!(label.as_str().unwrap().starts_with("MSE"), "{label}");
    assert_eq!(packet_viewers(&hub, "cam", "mse").await, 1.0);
    assert_eq!(
        common::metric(&hub, "camhub_decode_seconds_total", "cam").await,
        0.0,
        "the browser's video is the camera's own: nothing decoded"
    );
    screenshot(&mut browser, "mse-camera-page.png").await;

    // A JPEG-only camera: the automatic choice falls back to MJPEG and says why.
    browser.open(&hub.url("/cameras/demo")).await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().player === 'mjpeg' && camhub.cameraPage().playerWhy.includes('demo') && \
         document.getElementById('stream').naturalWidth > 0",
        30,
        "the demo falls back to MJPEG",
    )
    .await;

    // ?player=mjpeg forces MJPEG on an H.264 camera.
    browser.open(&hub.url("/cameras/cam?player=mjpeg")).await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().player === 'mjpeg' && document.getElementById('stream').naturalWidth === 640",
        30,
        "?player=mjpeg shows MJPEG",
    )
    .await;
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            packet_viewers(&hub, "cam", "mse").await == 0.0
        })
        .await,
        "the MSE viewer left with the page"
    );
}

/// Saves a screenshot to a temporary directory; with `CAMHUB_TEST_ARTIFACTS=DIR` set, a copy is
/// kept there.
async fn screenshot(browser: &mut Chromium, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    browser.screenshot(&path).await;
    assert!(std::fs::metadata(&path).unwrap().len() > 1000);
    if let Ok(keep) = std::env::var("CAMHUB_TEST_ARTIFACTS") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&path, Path::new(&keep).join(name)).unwrap();
    }
}

/// Connects to the camera's MSE WebSocket and says it plays H.264.
async fn hello(hub: &Camhub, id: &str) -> Ws {
    let mut ws = mse_ws(hub, id).await;
    ws.send(Message::text(
        json!({"type": "mse", "codecs": ["avc1.640028"]}).to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// Whether a fragment's first sample is a sync sample (a keyframe): its `trun` sample flags.
fn starts_with_keyframe(fragment: &[u8]) -> bool {
    let Some(i) = fragment.windows(4).position(|w| w == b"trun") else {
        return false;
    };
    let flags = fragment
        .get(i + 24..i + 28)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    flags.is_some_and(|f| f & 0x0001_0000 == 0 && f & 0x0200_0000 != 0)
}

#[tokio::test]
async fn a_new_viewer_starts_at_the_cached_gop_not_at_the_next_keyframe() {
    // 10 fps with a keyframe every 4 s, as cameras often send.
    let rtsp = RtspServer::start(
        RtspServerOptions::default()
            .with_size(640, 360, 10)
            .with_gop(40),
    )
    .await;
    let hub = common::start(&config(&rtsp)).await;
    // The first viewer keeps the camera streaming; 25 frames after its first keyframe the stream
    // is 2.5 s into a 4 s GOP.
    let mut a = hello(&hub, "cam").await;
    let mut frames = 0;
    while frames < 25 {
        match next(&mut a, Duration::from_secs(20)).await {
            Some(Err(b)) if &b[4..8] == b"moof" => {
                if frames == 0 {
                    assert!(starts_with_keyframe(&b), "the first fragment is a keyframe");
                }
                frames += 1;
            }
            Some(_) => {}
            None => panic!(
                "the first viewer's stream closed; log:\n{}",
                hub.log_tail(30)
            ),
        }
    }
    // A second viewer now. Without the cached GOP it would wait 1.5 s for the next keyframe and
    // then only ever hold what happened since; with it, it gets the 2.5 s since the keyframe at
    // once, i.e. it holds more media than the time it has been connected. (A wall-clock stall
    // of the test can only make that harder, never fake it.)
    let connected = std::time::Instant::now();
    let mut b = hello(&hub, "cam").await;
    let mut count = 0u32;
    let mut ahead = f64::MIN;
    while count < 30 {
        match next(&mut b, Duration::from_secs(20)).await {
            Some(Err(f)) if &f[4..8] == b"moof" => {
                if count == 0 {
                    assert!(starts_with_keyframe(&f), "a viewer starts on a keyframe");
                }
                count += 1;
                let media = f64::from(count) * 0.1;
                ahead = ahead.max(media - connected.elapsed().as_secs_f64());
            }
            Some(_) => {}
            None => panic!("the second viewer's stream closed"),
        }
    }
    assert!(
        ahead >= 1.0,
        "the new viewer got at most {ahead:.2} s of media ahead of its connection time: it was not \
         given the cached GOP"
    );
}

#[tokio::test]
async fn two_hundred_viewers_share_one_camera_connection_and_nothing_is_decoded() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&format!(
        "[server]\nmax_connections = 1000\nmax_connections_per_ip = 1000\nmax_viewers_per_camera = 1000\n\n{}",
        config(&rtsp)
    ))
    .await;
    let port = hub.port();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        tasks.push(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            s.write_all(
                format!(
                    "GET /api/cameras/cam/stream.mp4 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            // Read until two fragments came (the init segment and the first frames).
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 65536];
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while seen.windows(4).filter(|w| w == b"moof").count() < 2 {
                let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
                    .await
                    .expect("fragments within 60 s")
                    .unwrap();
                assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
                seen.extend_from_slice(&buf[..n]);
            }
            assert!(
                seen.starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&seen[..40])
            );
            s // kept open until every viewer is counted
        }));
    }
    let mut open = Vec::new();
    for t in tasks {
        open.push(t.await.unwrap());
    }
    assert_eq!(packet_viewers(&hub, "cam", "mp4").await, 200.0);
    assert_eq!(
        rtsp.count("PLAY", "/h264"),
        1,
        "one camera connection for 200 viewers"
    );
    assert_eq!(
        common::metric(&hub, "camhub_decode_seconds_total", "cam").await,
        0.0
    );
    drop(open);
}

#[tokio::test]
async fn a_resolution_change_reaches_the_player_as_a_new_init_segment() {
    // /switch halves the picture 3 s after it starts.
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"sw\"\nurl = \"{}\"\n",
        rtsp.url("/switch")
    ))
    .await;
    let mut ws = hello(&hub, "sw").await;
    let mut sizes = Vec::new();
    let mut after = Vec::new();
    let mut fragments_after = 0;
    while fragments_after < 20 {
        match next(&mut ws, Duration::from_secs(20)).await {
            Some(Ok(v)) if v["type"] == "mse" => {
                sizes.push((v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap()));
                after.clear();
            }
            Some(Ok(v)) => assert_ne!(v["type"], "error", "{v}"),
            Some(Err(b)) => {
                if sizes.len() >= 2 && &b[4..8] == b"moof" {
                    fragments_after += 1;
                }
                after.extend_from_slice(&b);
            }
            None => panic!("closed; sizes so far {sizes:?}; log:\n{}", hub.log_tail(30)),
        }
    }
    assert_eq!(sizes, vec![(640, 360), (320, 180)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("after.mp4");
    std::fs::write(&path, &after).unwrap();
    let s = ffprobe(path.to_str().unwrap(), &[]);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(320), Some(180)),
        "{s}"
    );
    assert_eq!(s["nb_read_frames"], "20", "{s}");
}

#[tokio::test]
async fn the_player_follows_a_resolution_change_and_keeps_playing() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"sw\"\nurl = \"{}\"\n",
        rtsp.url("/switch")
    ))
    .await;
    let mut browser = Chromium::start().await;
    browser.open(&hub.url("/cameras/sw?player=mse")).await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().mse && camhub.cameraPage().mse.width === 640",
        30,
        "the page plays the first resolution",
    )
    .await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().mse && camhub.cameraPage().mse.width === 320",
        30,
        "the page plays the new resolution",
    )
    .await;
    let t0 = browser
        .eval("camhub.cameraPage().mse.currentTime")
        .await
        .as_f64()
        .unwrap();
    common::expect_camera_page(
        &mut browser,
        &hub,
        &format!("camhub.cameraPage().mse.currentTime > {t0} + 1.5"),
        30,
        "playback goes on after the change",
    )
    .await;
    let page = browser.eval("camhub.cameraPage()").await;
    assert_eq!(page["player"], "mse", "{page}");
}

/// A TCP proxy from a local port to `target` whose downstream (server → client) direction can be
/// throttled to a trickle, as a congested Wi-Fi link would: the test's slow link.
struct SlowLink {
    port: u16,
    throttled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowLink {
    async fn start(target: u16) -> SlowLink {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let throttled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = throttled.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                tokio::spawn(async move {
                    // A small receive buffer toward camhub, so a throttled link backs up into
                    // camhub quickly instead of into this proxy's kernel buffers.
                    let socket = tokio::net::TcpSocket::new_v4().unwrap();
                    socket.set_recv_buffer_size(32 * 1024).unwrap();
                    let Ok(server) = socket.connect(([127, 0, 0, 1], target).into()).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    });
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let want = if flag.load(Ordering::Relaxed) {
                            1024
                        } else {
                            buf.len()
                        };
                        let n = match sr.read(&mut buf[..want]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        if flag.load(Ordering::Relaxed) {
                            // About 10 KB/s: far below the camera's bitrate.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                });
            }
        });
        SlowLink { port, throttled }
    }

    fn throttle(&self, on: bool) {
        self.throttled
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test]
async fn after_a_slow_link_recovers_the_player_is_live_again() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;
    let link = SlowLink::start(hub.port()).await;
    let mut browser = Chromium::start().await;
    browser
        .open(&format!(
            "http://127.0.0.1:{}/cameras/cam?player=mse",
            link.port
        ))
        .await;
    let live = "camhub.cameraPage().mse && camhub.cameraPage().mse.latency !== null && \
                camhub.cameraPage().mse.latency < 1.0 && camhub.cameraPage().mse.delay < 1.0";
    common::expect_camera_page(&mut browser, &hub, live, 30, "the player is live before").await;

    // Eight seconds of a link far slower than the stream: camhub's socket to the player backs up.
    link.throttle(true);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = browser.eval("camhub.cameraPage().mse").await;
    link.throttle(false);

    // The server moved the player to a newer keyframe instead of queueing the backlog, and the
    // player is at the live edge again: what it shows was received by camhub under 1 s ago.
    common::expect_camera_page(&mut browser, &hub, live, 20, "the player is live again").await;
    let t0 = browser
        .eval("camhub.cameraPage().mse.currentTime")
        .await
        .as_f64()
        .unwrap();
    common::expect_camera_page(
        &mut browser,
        &hub,
        &format!("camhub.cameraPage().mse.currentTime > {t0} + 1.5"),
        30,
        "playback goes on",
    )
    .await;
    let page = browser.eval("camhub.cameraPage()").await;
    let latency = page["mse"]["latency"].as_f64().unwrap();
    assert!(
        latency < 1.0,
        "{latency} s behind live after recovery: {page}"
    );
    let resyncs = common::metric(&hub, "camhub_keyframe_resyncs_total", "cam").await;
    assert!(
        resyncs >= 1.0,
        "the server never moved the lagging player to a newer keyframe (during: {during})"
    );
}

#[tokio::test]
async fn a_camera_clock_running_fast_does_not_make_the_delay_creep() {
    // /fast's RTP clock runs 10 % ahead of real time: 40 s of it drift 4 s, as a 1 % fast camera
    // drifts in 400 s (go2rtc #262: the delay creeps up over hours).
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"fast\"\nurl = \"{}\"\n",
        rtsp.url("/fast")
    ))
    .await;
    let mut browser = Chromium::start().await;
    browser.open(&hub.url("/cameras/fast?player=mse")).await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().mse && camhub.cameraPage().mse.latency !== null && \
         camhub.cameraPage().mse.currentTime > 1",
        30,
        "the page plays the fast camera",
    )
    .await;
    let mut worst = 0.0f64;
    let mut samples = Vec::new();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let m = browser.eval("camhub.cameraPage().mse").await;
        let latency = m["latency"].as_f64().unwrap_or(f64::MAX);
        worst = worst.max(latency);
        samples.push((m["currentTime"].as_f64().unwrap_or(0.0), latency));
    }
    assert!(
        worst < 1.0,
        "the player fell {worst:.2} s behind live; (currentTime, latency) every 2 s: {samples:?}"
    );
    let (first, last) = (samples[0].0, samples[samples.len() - 1].0);
    assert!(last > first + 30.0, "playback went on: {samples:?}");
}

#[tokio::test]
async fn an_h265_camera_is_served_as_hevc_to_clients_that_play_it() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"hevc\"\nurl = \"{}\"\n",
        rtsp.url("/h265")
    ))
    .await;
    let url = hub.url("/api/cameras/hevc/stream.mp4");
    let s = tokio::task::spawn_blocking(move || ffprobe(&url, &["-read_intervals", "%+2"]))
        .await
        .unwrap();
    assert_eq!(s["codec_name"], "hevc", "{s}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(640), Some(360)),
        "{s}"
    );
    // A browser that plays HEVC gets its codec string; one that does not is told why.
    let mut ws = mse_ws(&hub, "hevc").await;
    ws.send(Message::text(
        json!({"type": "mse", "codecs": ["avc1.640028", "hvc1.1.6.L120.90"]}).to_string(),
    ))
    .await
    .unwrap();
    let codec = loop {
        match next(&mut ws, Duration::from_secs(20)).await {
            Some(Ok(v)) if v["type"] == "mse" => break v["codec"].as_str().unwrap().to_owned(),
            Some(Ok(v)) => assert_ne!(v["type"], "error", "{v}"),
            Some(Err(b)) => panic!("{} bytes before the codec message", b.len()),
            None => panic!("closed before the codec message"),
        }
    };
    assert!(codec.starts_with("hvc1.1."), "{codec}");
    let e = refusal(&hub, "hevc", &["avc1.640028"]).await;
    assert!(e.contains("h265") && e.contains("plays none"), "{e}");
}
