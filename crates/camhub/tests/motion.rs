//! Motion detection end to end, against a real binary and real video: synthetic scenes with
//! sensor-like noise (rendered frame by frame and encoded by the `ffmpeg` CLI, played by camhub as
//! an `ffmpeg:` file source at its native rate) and the per-camera WebSocket. Everything is counted
//! in the scene's frames through the media times camhub reports, never in wall time: a slow
//! machine delays the messages, not the frames they name.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use camhub_testkit::{Action, Camhub, Cue, Scene};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const FPS: u32 = 25;
/// An event must start within this many frames of the object's first frame (0.5 s at 25 fps).
const START_WITHIN: i64 = 12;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn object(from: u32, to: u32, w: u32, h: u32, start: (u32, u32), end: (u32, u32)) -> Cue {
    Cue {
        from,
        to,
        action: Action::Object {
            w,
            h,
            x0: start.0,
            y0: start.1,
            x1: end.0,
            y1: end.1,
        },
    }
}

/// Renders `scene` into `dir/name.mp4`.
fn render(scene: &Scene, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.mp4"));
    scene.render(&path);
    path
}

async fn camera_ws(hub: &Camhub, id: &str) -> Ws {
    let url = hub
        .url(&format!("/api/cameras/{id}/ws"))
        .replacen("http", "ws", 1);
    tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap()
        .0
}

/// The next message within `limit`: JSON text as a Value, binary as `Err(len)`.
async fn next(ws: &mut Ws, limit: Duration) -> Option<Result<Value, usize>> {
    loop {
        let m = tokio::time::timeout(limit, ws.next()).await.ok()??.ok()?;
        match m {
            Message::Text(t) => return Some(Ok(serde_json::from_str(t.as_str()).unwrap())),
            Message::Binary(b) => return Some(Err(b.len())),
            _ => {}
        }
    }
}

/// The scene frame a media time (ms) falls in.
fn frame_of(media_ms: &Value) -> i64 {
    media_ms.as_i64().unwrap() * i64::from(FPS) / 1000
}

/// One camera's motion as its WebSocket told it: (start frame, confirmed frame, end frame).
async fn collect_events(ws: &mut Ws, until_frame: i64) -> Vec<(i64, i64, Option<i64>)> {
    let mut events: Vec<(i64, i64, Option<i64>)> = Vec::new();
    ws.send(Message::text(r#"{"mode": "off"}"#)).await.unwrap();
    // The scene plays in real time; past this something is wrong (heartbeats alone go on forever).
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(60 + 2 * u64::try_from(until_frame).unwrap() / u64::from(FPS));
    while let Some(m) = next(ws, Duration::from_secs(30)).await {
        if tokio::time::Instant::now() >= deadline {
            // The callers' checks say what is missing (with camhub's log).
            eprintln!("no end past frame {until_frame} in time; events so far {events:?}");
            break;
        }
        let Ok(m) = m else {
            panic!("a JPEG in off mode");
        };
        match m["type"].as_str().unwrap() {
            "motion_start" => {
                let e = &m["event"];
                events.push((
                    frame_of(&e["media_start_ms"]),
                    frame_of(&e["media_at_ms"]),
                    None,
                ));
            }
            "motion_end" => {
                let last = events.last_mut().expect("an end without a start");
                last.2 = Some(frame_of(&m["event"]["media_at_ms"]));
            }
            "heartbeat" => {}
            _ => {}
        }
        if let Some(m) = m.get("type").filter(|t| *t == "motion_end") {
            let _ = m;
            if events
                .last()
                .and_then(|e| e.2)
                .is_some_and(|f| f >= until_frame)
            {
                break;
            }
        }
    }
    events
}

/// The scene of the issue: quiet noise (σ 4), a dark 4 % object crossing the top, quiet, a +80
/// brightness step, a −40 drift over 30 s, a 2 % object moving inside the bottom-left (masked on
/// one camera), a 7 % object inside the bottom-right (the other camera's only zone).
#[tokio::test(flavor = "multi_thread")]
async fn exactly_the_expected_events_start_and_end_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let crossing = object(100, 175, 128, 72, (0, 40), (500, 40));
    let masked = object(1175, 1250, 96, 48, (20, 260), (180, 300));
    let zoned = object(1350, 1425, 180, 90, (340, 240), (440, 260));
    let scene = Scene {
        width: 640,
        height: 360,
        fps: FPS,
        frames: 1525,
        noise: 4.0,
        cues: vec![
            crossing.clone(),
            Cue {
                from: 275,
                to: 276,
                action: Action::Step { delta: 80 },
            },
            Cue {
                from: 375,
                to: 1125,
                action: Action::Drift { delta: -40 },
            },
            masked.clone(),
            zoned.clone(),
        ],
    };
    let file = render(&scene, dir.path(), "scene");
    let config = format!(
        r#"
[server]
data_dir = "{data}"

[[camera]]
id = "masked"
url = "ffmpeg:{file}"
[camera.motion]
end_after = "2s"
masks = [[[0, 220], [280, 220], [280, 360], [0, 360]]]

[[camera]]
id = "zoned"
url = "ffmpeg:{file}"
[camera.motion]
end_after = "2s"
zones = [[[320, 200], [640, 200], [640, 360], [320, 360]]]
"#,
        data = dir.path().join("data").display(),
        file = file.display()
    );
    let hub = common::start(&config).await;
    let (mut a, mut b) = (
        camera_ws(&hub, "masked").await,
        camera_ws(&hub, "zoned").await,
    );
    let end_of_last = i64::from(zoned.to);
    let (got_a, got_b) = tokio::join!(
        collect_events(&mut a, end_of_last),
        collect_events(&mut b, end_of_last)
    );
    let end_after = 2 * i64::from(FPS);
    let check = |got: &[(i64, i64, Option<i64>)], want: &[&Cue], camera: &str| {
        assert_eq!(
            got.len(),
            want.len(),
            "{camera}: events (start, confirmed, end frames) {got:?}, expected one per {:?}\n{}",
            want.iter().map(|c| (c.from, c.to)).collect::<Vec<_>>(),
            hub.log_tail(30)
        );
        for (g, w) in got.iter().zip(want) {
            let (first, confirmed, end) = *g;
            let (from, to) = (i64::from(w.from), i64::from(w.to));
            assert!(
                first >= from && confirmed <= from + START_WITHIN,
                "{camera}: event {g:?} for the object of frames {from}..{to}: must start within {START_WITHIN} frames"
            );
            let end = end.unwrap();
            assert!(
                end >= to - 1 + end_after - 2 && end <= to - 1 + end_after + START_WITHIN,
                "{camera}: event {g:?} for the object of frames {from}..{to}: must end within end_after + {START_WITHIN} frames of its last frame"
            );
        }
    };
    check(&got_a, &[&crossing, &zoned], "masked");
    check(&got_b, &[&zoned], "zoned");

    // Stored: records with a snapshot and frames, served as JPEGs.
    let list = common::get(&hub.url("/api/events?camera=masked"))
        .await
        .json();
    let events = list["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{list}");
    for e in events {
        assert!(e["end"].is_string(), "{e}");
        let snapshot = common::get(&hub.url(e["snapshot"].as_str().unwrap())).await;
        assert_eq!(snapshot.status, 200);
        assert_eq!(
            snapshot.header("content-type").as_deref(),
            Some("image/jpeg")
        );
        let (w, h) = camhub_testkit::jpeg_size(&snapshot.body).unwrap();
        assert_eq!((w, h), (640, 360));
        let frames = e["frames"].as_array().unwrap();
        assert!(!frames.is_empty() && frames.len() <= 5, "{e}");
        let first = common::get(&hub.url(frames[0].as_str().unwrap())).await;
        assert_eq!(first.status, 200);
    }
    // The newest first.
    assert!(events[0]["start_ms"].as_i64() > events[1]["start_ms"].as_i64());
}

/// The per-camera WebSocket on a camera without `[camera.motion]`: `motion` mode runs the
/// detector for this client and sends JPEGs only while something moves; heartbeats come in every
/// mode; `off` stops the JPEGs and `live` sends them at once; nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn websocket_sends_pictures_only_during_motion_and_switches_modes() {
    let dir = tempfile::tempdir().unwrap();
    let scene = Scene {
        width: 640,
        height: 360,
        fps: FPS,
        frames: 400,
        noise: 4.0,
        cues: vec![object(125, 300, 128, 72, (0, 100), (500, 160))],
    };
    let file = render(&scene, dir.path(), "cross");
    let config = format!(
        "[[camera]]\nid = \"cam\"\nurl = \"ffmpeg:{}\"\nloop_file = true\n",
        file.display()
    );
    let hub = common::start(&config).await;
    let mut ws = camera_ws(&hub, "cam").await;
    let hello = next(&mut ws, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hello["type"], "mode", "{hello}");
    assert_eq!(hello["mode"], "motion");
    assert_eq!(hello["motion_enabled"], false);

    // Quiet until the object appears: heartbeats, no JPEG.
    let (mut heartbeats, mut start) = (0, None);
    while let Some(m) = next(&mut ws, Duration::from_secs(30)).await {
        match m {
            Err(_) => panic!("a JPEG before motion started (after {heartbeats} heartbeats)"),
            Ok(m) if m["type"] == "heartbeat" => heartbeats += 1,
            Ok(m) if m["type"] == "motion_start" => {
                start = Some(m);
                break;
            }
            Ok(_) => {}
        }
    }
    let start = start.expect("motion_start");
    assert!(heartbeats >= 1, "no heartbeat during the quiet part");
    assert!(start["event"]["id"].is_null(), "nothing is stored: {start}");
    let confirmed = frame_of(&start["event"]["media_at_ms"]);
    assert!(
        (125..=125 + START_WITHIN).contains(&confirmed),
        "started at frame {confirmed}, the object came at 125"
    );
    // During motion: JPEGs, and boxes.
    let (mut jpegs, mut boxes) = (0, 0);
    while jpegs < 10 {
        match next(&mut ws, Duration::from_secs(10))
            .await
            .expect("JPEGs during motion")
        {
            Err(len) => {
                assert!(len > 1000);
                jpegs += 1;
            }
            Ok(m) if m["type"] == "motion" => {
                boxes += usize::from(!m["boxes"].as_array().unwrap().is_empty())
            }
            Ok(_) => {}
        }
    }
    assert!(boxes > 0, "no motion boxes while the object moved");

    // Off: after the reply, no more JPEGs; heartbeats go on.
    ws.send(Message::text(r#"{"mode": "off"}"#)).await.unwrap();
    loop {
        let m = next(&mut ws, Duration::from_secs(10)).await.unwrap();
        if matches!(&m, Ok(v) if v["type"] == "mode") {
            assert_eq!(m.unwrap()["mode"], "off");
            break;
        }
    }
    let mut beats = 0;
    while beats < 2 {
        match next(&mut ws, Duration::from_secs(10))
            .await
            .expect("heartbeats in off mode")
        {
            Err(_) => panic!("a JPEG in off mode"),
            Ok(m) if m["type"] == "heartbeat" => beats += 1,
            Ok(_) => {}
        }
    }
    // Live: JPEGs at once, whatever moves.
    ws.send(Message::text(r#"{"mode": "live", "width": 320}"#))
        .await
        .unwrap();
    let mut texts = 0;
    loop {
        match next(&mut ws, Duration::from_secs(10))
            .await
            .expect("a JPEG in live mode")
        {
            Err(_) => break,
            Ok(_) => {
                texts += 1;
                assert!(texts < 10, "no JPEG after switching to live");
            }
        }
    }
    // Bad messages get an error, and the connection stays.
    ws.send(Message::text(r#"{"mode": "loud"}"#)).await.unwrap();
    loop {
        match next(&mut ws, Duration::from_secs(10)).await.unwrap() {
            Ok(m) if m["type"] == "error" => {
                assert!(m["error"].as_str().unwrap().contains("mode"), "{m}");
                break;
            }
            _ => {}
        }
    }
    // The mode to start in, from the URL; a bad one is refused before the upgrade.
    let url = hub
        .url("/api/cameras/cam/ws?mode=off")
        .replacen("http", "ws", 1);
    let (mut off, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let hello = next(&mut off, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hello["mode"], "off", "{hello}");
    let url = hub
        .url("/api/cameras/cam/ws?mode=loud")
        .replacen("http", "ws", 1);
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 400);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("mode=motion|live|off"), "{body}");
        }
        other => panic!("a bad mode was not refused: {:?}", other.map(|_| ())),
    }
    // Nothing was stored for a camera without [camera.motion].
    let list = common::get(&hub.url("/api/events")).await.json();
    assert_eq!(list["events"], serde_json::json!([]), "{list}");
}

/// A kill -9 in the middle of an event leaves a consistent store: at the next start the event is
/// closed at the time of its last frame, and it and its pictures are served.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_survives_kill_9_and_is_closed_at_its_last_frame() {
    let dir = tempfile::tempdir().unwrap();
    let scene = Scene {
        width: 640,
        height: 360,
        fps: FPS,
        frames: 750,
        noise: 4.0,
        cues: vec![object(75, 750, 128, 72, (0, 100), (500, 200))],
    };
    let file = render(&scene, dir.path(), "long");
    let config = format!(
        "[server]\ndata_dir = \"{}\"\n[[camera]]\nid = \"cam\"\nurl = \"ffmpeg:{}\"\n[camera.motion]\nend_after = \"2s\"\n",
        dir.path().join("data").display(),
        file.display()
    );
    let hub = common::start(&config).await;
    let mut ws = camera_ws(&hub, "cam").await;
    let id = loop {
        let m = next(&mut ws, Duration::from_secs(30))
            .await
            .expect("motion_start");
        if let Ok(m) = m {
            if m["type"] == "motion_start" {
                break m["event"]["id"].as_i64().expect("a stored event");
            }
        }
    };
    // Wait until a frame besides the snapshot is stored, then kill.
    let url = hub.url(&format!("/api/events/{id}"));
    let mut stored = Value::Null;
    for _ in 0..100 {
        stored = common::get(&url).await.json();
        if stored["frames"].as_array().is_some_and(|f| f.len() >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stored["end"].is_null(), "{stored}");
    assert!(stored["frames"].as_array().unwrap().len() >= 2, "{stored}");
    let status = std::process::Command::new("kill")
        .args(["-9", &hub.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    drop(ws);
    drop(hub);

    // The next start closes it at its last frame (the camera is not watched: no new event).
    let config = config.replace("[camera.motion]\nend_after = \"2s\"\n", "");
    let hub = common::start(&config).await;
    let after = common::get(&url.replace(&url[..url.find("/api").unwrap()], &hub.base_url()))
        .await
        .json();
    assert_eq!(after["id"], id, "{after}");
    let end = after["end_ms"].as_i64().expect("closed at restart");
    assert!(end >= after["start_ms"].as_i64().unwrap(), "{after}");
    assert!(
        end >= stored["start_ms"].as_i64().unwrap() + stored["duration_ms"].as_i64().unwrap(),
        "{after} vs {stored}"
    );
    let snapshot = common::get(&hub.url(after["snapshot"].as_str().unwrap())).await;
    assert_eq!(snapshot.status, 200);
    for f in after["frames"].as_array().unwrap() {
        assert_eq!(
            common::get(&hub.url(f.as_str().unwrap())).await.status,
            200,
            "{f}"
        );
    }
    let histogram = common::get(&hub.url("/api/events/histogram?bucket=minute"))
        .await
        .json();
    let total: u64 = histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["events"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1, "{histogram}");
}

/// A camera with a substream is analysed on the substream, and its polygons are in the main
/// picture's pixels: a zone over the bottom-right quarter of the 1280x720 main picture is the
/// bottom-right quarter of the 640x360 substream (read as substream pixels it would lie outside the
/// picture, and nothing would ever move in it).
#[tokio::test(flavor = "multi_thread")]
async fn a_substream_is_analysed_with_polygons_in_main_stream_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let scene = Scene {
        width: 640,
        height: 360,
        fps: FPS,
        frames: 300,
        noise: 4.0,
        cues: vec![object(125, 225, 96, 48, (360, 220), (520, 290))],
    };
    let file = render(&scene, dir.path(), "sub");
    let config = format!(
        r#"
[[camera]]
id = "cam"
url = "demo:?width=1280&height=720&fps=5"
substream_url = "ffmpeg:{}"
[camera.motion]
end_after = "1s"
zones = [[[640, 360], [1280, 360], [1280, 720], [640, 720]]]
"#,
        file.display()
    );
    let hub = common::start(&config).await;
    let mut ws = camera_ws(&hub, "cam").await;
    let events = collect_events(&mut ws, 225).await;
    assert_eq!(events.len(), 1, "{events:?}\n{}", hub.log_tail(40));
    let (first, confirmed, _) = events[0];
    assert!(
        first >= 125 && confirmed <= 125 + START_WITHIN,
        "{events:?}: the object came at frame 125"
    );
    // The substream did the work; the main stream was connected only to learn its size.
    let metrics = common::get(&hub.url("/metrics")).await.text();
    assert!(
        metrics.contains("camhub_motion_frames_total{camera=\"cam\"}"),
        "{metrics}"
    );
    let cam = common::get(&hub.url("/api/cameras/cam")).await.json();
    assert_eq!(cam["width"], 1280, "{cam}");
}
