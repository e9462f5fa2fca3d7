//! Low-latency HLS of a camera's own H.264 (issue 8), against the real binary and a real RTSP
//! camera (GStreamer's server): the playlist is LL-HLS (parts, preload hint, blocking reloads),
//! its segments are valid fMP4 that `ffprobe` reads at the source's size, the `ffmpeg` CLI plays
//! the playlist, hls.js (vendored from npm, test-only) plays it in headless Chromium near the live
//! edge, nothing is decoded, segments exist only while someone watches, and cameras with nothing
//! HLS can carry are refused with a reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use camhub_testkit::{Camhub, Chromium, RtspServer, RtspServerOptions};
use serde_json::Value;

fn config(rtsp: &RtspServer) -> String {
    format!(
        "[[camera]]\nid = \"cam\"\nurl = \"{}\"\n\n[[camera]]\nid = \"jpeg\"\nurl = \"{}\"\n\n\
         [[camera]]\nid = \"demo\"\nurl = \"demo:\"\n",
        rtsp.url("/h264"),
        rtsp.url("/mjpeg")
    )
}

/// `camhub_packet_viewers{camera="cam",kind="hls"}`.
async fn hls_running(hub: &Camhub) -> f64 {
    let text = common::get(&hub.url("/metrics")).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("camhub_packet_viewers{camera=\"cam\",kind=\"hls\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hls gauge in /metrics:\n{text}"))
}

/// Every URI of `tag` lines (`#EXT-X-PART:…URI="…"`) or plain lines (`None`) in a playlist.
fn uris(playlist: &str, tag: Option<&str>) -> Vec<String> {
    playlist
        .lines()
        .filter_map(|l| match tag {
            Some(t) if l.starts_with(t) => l
                .split("URI=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_owned),
            None if !l.starts_with('#') && !l.is_empty() => Some(l.to_owned()),
            _ => None,
        })
        .collect()
}

fn ffprobe_file(path: &std::path::Path) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
        ])
        .arg("stream=codec_name,width,height,nb_read_frames")
        .args(["-of", "json"])
        .arg(path)
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
async fn the_playlist_is_low_latency_hls_of_the_cameras_own_h264() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;
    let base = hub.url("/api/cameras/cam/hls/");
    let first = common::get(&format!("{base}index.m3u8")).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        first.header("content-type").as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    let text = first.text();
    for tag in [
        "#EXTM3U",
        "#EXT-X-PART-INF:PART-TARGET=0.500",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
        "#EXT-X-MAP:URI=\"init.mp4?id=",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part.m4s?msn=",
    ] {
        assert!(text.contains(tag), "{tag} missing:\n{text}");
    }
    assert_eq!(hls_running(&hub).await, 1.0);

    // A blocking reload for the next segment returns once it is complete (1 s GOPs here).
    let newest: u64 = uris(&text, Some("#EXT-X-PRELOAD-HINT"))[0]
        .split("msn=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .unwrap()
        .parse()
        .unwrap();
    let reload = common::get(&format!("{base}index.m3u8?_HLS_msn={}", newest + 1)).await;
    assert_eq!(reload.status, 200, "{}", reload.text());
    let text = reload.text();
    let segments = uris(&text, None);
    assert!(
        segments
            .iter()
            .any(|u| u == &format!("seg.m4s?msn={newest}")),
        "segment {newest} is complete in the blocking reload:\n{text}"
    );
    // Parts are at most the part target, and each segment's first part is independent.
    for line in text.lines().filter(|l| l.starts_with("#EXT-X-PART:")) {
        let d: f64 = line
            .split("DURATION=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(d > 0.0 && d <= 0.5, "{line}");
        if line.contains("part=0\"") {
            assert!(line.ends_with("INDEPENDENT=YES"), "{line}");
        }
    }
    // A two-segment-ahead reload is refused (RFC 8216bis 6.2.5.2).
    let ahead = common::get(&format!("{base}index.m3u8?_HLS_msn={}", newest + 10)).await;
    assert_eq!(ahead.status, 400, "{}", ahead.text());

    // init + the newest complete segment is a valid MP4 at the camera's size; a segment is its
    // parts, byte for byte.
    let init = uris(&text, Some("#EXT-X-MAP")).pop().unwrap();
    let seg = segments.last().unwrap().clone();
    let mut file = common::get(&format!("{base}{init}")).await.body;
    let seg_bytes = common::get(&format!("{base}{seg}")).await;
    assert_eq!(seg_bytes.status, 200, "{}", seg_bytes.text());
    let msn = seg.split("msn=").nth(1).unwrap().to_owned();
    let mut parts = Vec::new();
    for k in 0.. {
        let p = common::get(&format!("{base}part.m4s?msn={msn}&part={k}")).await;
        if p.status != 200 {
            break;
        }
        parts.extend_from_slice(&p.body);
    }
    assert_eq!(parts, seg_bytes.body, "segment {msn} is its parts");
    file.extend_from_slice(&seg_bytes.body);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hls.mp4");
    std::fs::write(&path, &file).unwrap();
    let s = ffprobe_file(&path);
    assert_eq!(s["codec_name"], "h264", "{s}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(640), Some(360)),
        "{s}"
    );
    assert_eq!(
        s["nb_read_frames"], "15",
        "one 1 s GOP of a 15 fps camera: {s}"
    );

    // The ffmpeg CLI plays the playlist.
    let url = format!("{base}index.m3u8");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i", &url, "-t", "3", "-f", "null", "-"])
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
        common::metric(&hub, "camhub_decode_seconds_total", "cam").await,
        0.0
    );

    // Nobody asks any more: the segmenter stops and its segments go.
    assert!(
        common::eventually(Duration::from_secs(30), || async {
            hls_running(&hub).await == 0.0
        })
        .await,
        "the segmenter still runs with nobody watching"
    );
    let gone = common::get(&format!("{base}{seg}")).await;
    assert_eq!(gone.status, 404, "{}", gone.text());
}

#[tokio::test]
async fn hls_refuses_what_it_cannot_carry() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;
    for (id, what) in [("jpeg", "mjpeg"), ("demo", "demo")] {
        let got = common::get(&hub.url(&format!("/api/cameras/{id}/hls/index.m3u8"))).await;
        assert_eq!(got.status, 415, "{id}: {}", got.text());
        assert!(got.text().contains(what), "{id}: {}", got.text());
    }
    let got = common::get(&hub.url("/api/cameras/cam/hls/index.m3u8?width=2")).await;
    assert_eq!(got.status, 400, "{}", got.text());
    let got = common::get(&hub.url("/api/cameras/cam/hls/seg.m4s?msn=0")).await;
    assert_eq!(got.status, 404, "no segmenter runs yet: {}", got.text());
}

#[tokio::test]
async fn hls_js_plays_the_playlist_in_chromium_near_the_live_edge() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;
    let mut browser = Chromium::start().await;
    // Any page of camhub's origin; hls.js is put into it through DevTools (test-only).
    browser.open(&hub.url("/cameras/demo?player=mjpeg")).await;
    let hls_js = include_str!("fixtures/hls.js/hls.light.min.js");
    browser.eval(&format!("{hls_js};\ntypeof Hls")).await;
    browser
        .eval(
            "(() => {
                const v = document.createElement('video');
                v.id = 'hls-video'; v.muted = true; v.autoplay = true;
                document.body.append(v);
                window.__hls = new Hls({ lowLatencyMode: true, enableWorker: false });
                window.__hlsErrors = [];
                window.__hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.__hlsErrors.push(d.details); });
                window.__hls.loadSource('api/cameras/cam/hls/index.m3u8');
                window.__hls.attachMedia(v);
                v.play().catch(() => {});
                return true;
            })()",
        )
        .await;
    let state = "JSON.stringify({t: document.getElementById('hls-video').currentTime, \
                 w: document.getElementById('hls-video').videoWidth, latency: window.__hls.latency, \
                 errors: window.__hlsErrors})";
    if !browser
        .wait_until(
            "document.getElementById('hls-video').currentTime > 2 && \
             document.getElementById('hls-video').videoWidth === 640",
            Duration::from_secs(40),
        )
        .await
    {
        let now = browser.try_eval(state).await.unwrap_or(Value::Null);
        panic!("hls.js did not play: {now}\nlog:\n{}", hub.log_tail(30));
    }
    let s: Value = serde_json::from_str(browser.eval(state).await.as_str().unwrap()).unwrap();
    assert_eq!(s["errors"], serde_json::json!([]), "{s}");
    let latency = s["latency"].as_f64().unwrap();
    assert!(
        latency < 4.0,
        "hls.js plays {latency} s behind the live edge: {s}"
    );
}
