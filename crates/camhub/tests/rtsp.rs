//! RTSP cameras end to end: a real GStreamer RTSP server on loopback, camhub in between, and the
//! ffmpeg CLI decoding what camhub serves.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use camhub_testkit::{
    decode_jpeg_rgb, free_port, region_mean_abs_diff, MjpegReader, RtspServer, RtspServerOptions,
    RTSP_COUNTER_REGION, RTSP_WHITE,
};
use common::{camera, eventually, get, metric, start, wait_state};

/// Colours survive H.26x (limited range) → JPEG (full range) within this much per channel; an
/// unconverted range misses black by ~16.
const TIGHT: u8 = 10;

fn camera_toml(id: &str, url: &str, extra: &str) -> String {
    format!("[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\n{extra}\n")
}

/// Per channel, camhub's JPEG against FFmpeg's own decode at the middle of a bar: JPEG rounding moves
/// flat colours by a level or two; a BT.709 picture written into a JPEG without converting its matrix
/// misses red by ~20 levels, a limited range left unconverted misses black by ~16.
const BAR_TOLERANCE: u8 = 6;

/// Every bar of [`RtspServer::BARS`] in camhub's JPEG (`ours`) next to the same bar in FFmpeg's decode
/// (`reference`, any size): the bars that differ by more than [`BAR_TOLERANCE`] in a channel.
fn bars_unlike_ffmpeg(jpeg: &[u8], reference: &(u32, u32, Vec<u8>)) -> Vec<String> {
    let (w, h, ours) = decode_jpeg_rgb(jpeg);
    let (rw, rh, theirs) = reference;
    RtspServer::BARS
        .iter()
        .filter_map(|bar| {
            let want = bar.sample(theirs, *rw, *rh);
            let got = bar.sample(&ours, w, h);
            let close = |a: u8, b: u8| a.abs_diff(b) <= BAR_TOLERANCE;
            let ok = close(want.0, got.0) && close(want.1, got.1) && close(want.2, got.2);
            (!ok).then(|| format!("{} at {w}x{h}: FFmpeg {want:?}, camhub {got:?}", bar.name))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn h264_h265_and_mjpeg_are_served_at_requested_sizes_in_the_right_colours() {
    // HD cameras signal BT.709 (as GStreamer does at 720p; said explicitly here), older and SD ones
    // BT.601, also at HD sizes: one camera of each, plus H.265 and MJPEG.
    let hd_options = RtspServerOptions::default().with_size(1280, 720, 15);
    let bt709 = RtspServer::start(hd_options.clone().with_colorimetry("bt709")).await;
    let bt601 = RtspServer::start(hd_options.with_colorimetry("bt601")).await;
    let cameras = [
        ("h264", &bt709, "/h264", "h264"),
        ("h264_bt601", &bt601, "/h264", "h264"),
        ("h265", &bt709, "/h265", "h265"),
        ("mjpeg", &bt709, "/mjpeg", "mjpeg"),
    ];
    let mut cfg = String::new();
    for (id, rtsp, path, _) in cameras {
        // A short idle_timeout closes each camera soon after its turn: four 720p encoders at once
        // would starve this 2-core machine.
        cfg += &camera_toml(id, &rtsp.url(path), "idle_timeout = \"2s\"");
    }
    let hub = start(&cfg).await;
    let mut unlike = Vec::new();
    for (id, rtsp, path, codec) in cameras {
        // The reference is FFmpeg's own decode of the same stream (the `ffmpeg` CLI, which reads the
        // signalled range and matrix as users' players do). It is another frame than camhub's, but the
        // bars are static and sampled away from the running clock, so only coding noise differs;
        // comparing with FFmpeg rather than nominal colours keeps GStreamer's exact bar values out.
        let reference = rtsp.ffmpeg_rgb(path);
        assert_eq!((reference.0, reference.1), (1280, 720), "{id}");

        let small = get(&hub.url(&format!("/api/cameras/{id}/frame.jpeg?width=320"))).await;
        assert_eq!(
            small.status,
            200,
            "{id}: {}\n{}",
            small.text(),
            hub.log_tail(30)
        );
        assert!(small.header("x-frame-age-ms").is_some());
        let (w, h, _) = decode_jpeg_rgb(&small.body);
        assert_eq!((w, h), (320, 180), "{id}");
        unlike.extend(
            bars_unlike_ffmpeg(&small.body, &reference)
                .into_iter()
                .map(|e| format!("{id} scaled: {e}")),
        );

        let native = get(&hub.url(&format!("/api/cameras/{id}/frame.jpeg"))).await;
        assert_eq!(native.status, 200);
        let (w, h, _) = decode_jpeg_rgb(&native.body);
        assert_eq!((w, h), (1280, 720), "{id}");
        unlike.extend(
            bars_unlike_ffmpeg(&native.body, &reference)
                .into_iter()
                .map(|e| format!("{id} native: {e}")),
        );

        let boxed = get(&hub.url(&format!(
            "/api/cameras/{id}/frame.jpeg?width=200&height=200"
        )))
        .await;
        let (w, h, _) = decode_jpeg_rgb(&boxed.body);
        assert_eq!(
            (w, h),
            (200, 112),
            "{id}: fits the box, keeps the aspect ratio, even sizes"
        );

        // The picture is live: the fixture's running clock changes between frames of the stream.
        let mut reader =
            MjpegReader::connect(&hub.url(&format!("/api/cameras/{id}/stream.mjpeg?width=320")))
                .await
                .unwrap();
        let first = reader
            .next_frame_within(Duration::from_secs(10))
            .await
            .unwrap();
        let mut later = first.clone();
        for _ in 0..15 {
            later = reader
                .next_frame_within(Duration::from_secs(10))
                .await
                .unwrap_or_else(|e| panic!("{id}: {e}; log:\n{}", hub.log_tail(20)));
        }
        let (w, h, a) = decode_jpeg_rgb(&first);
        let (_, _, b) = decode_jpeg_rgb(&later);
        let diff = region_mean_abs_diff(&a, &b, w, h, RTSP_COUNTER_REGION);
        assert!(
            diff > 0.5,
            "{id}: frames 15 apart look the same (diff {diff})"
        );

        let api = camera(&hub, id).await;
        assert_eq!(api["codec"], codec, "{api}");
        assert_eq!(api["state"], "streaming", "{api}");
        assert_eq!(api["width"], 1280, "{api}");
    }
    assert!(
        unlike.is_empty(),
        "bars unlike FFmpeg's decode:\n{}",
        unlike.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_viewers_share_one_session_which_is_torn_down_when_idle() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = start(&camera_toml(
        "cam",
        &rtsp.url("/h264"),
        "idle_timeout = \"2s\"",
    ))
    .await;
    let mut readers = Vec::new();
    for i in 0..6 {
        let q = if i % 2 == 0 { "width=320" } else { "width=160" };
        let url = hub.url(&format!("/api/cameras/cam/stream.mjpeg?{q}"));
        readers.push(MjpegReader::connect(&url).await.unwrap());
    }
    for r in &mut readers {
        r.next_frame_within(Duration::from_secs(15)).await.unwrap();
    }
    let snap = get(&hub.url("/api/cameras/cam/frame.jpeg?width=320")).await;
    assert_eq!(snap.status, 200);
    assert_eq!(
        rtsp.count("SETUP", "/h264"),
        1,
        "one upstream session for every viewer"
    );
    assert_eq!(camera(&hub, "cam").await["viewers"], 6);
    drop(readers);
    assert!(
        rtsp.wait_for("TEARDOWN", "/h264", 1, Duration::from_secs(15))
            .await,
        "no TEARDOWN after idle_timeout; log:\n{}",
        hub.log_tail(20)
    );
    wait_state(&hub, "cam", "idle", Duration::from_secs(5)).await;
    // A new viewer opens it again.
    let again = get(&hub.url("/api/cameras/cam/frame.jpeg")).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(rtsp.count("SETUP", "/h264"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_auth_over_udp_works_and_passwords_never_show() {
    let password = "Zq9-secret-pw";
    let rtsp = RtspServer::start(RtspServerOptions::default().with_auth("admin", password)).await;
    let good = rtsp.url("/h264");
    assert!(
        good.contains(password),
        "fixture URL carries the credentials: {good}"
    );
    let bad = good.replace(password, "wrong-pw-77");
    // Xiongmai cameras carry the password in the path, where URL parsers don't look for it.
    let xiongmai = format!(
        "rtsp://127.0.0.1:{}/user=admin&password=Xm-secret-9&channel=1&stream=0.sdp",
        free_port()
    );
    let cfg = camera_toml("good", &good, "transport = \"udp\"")
        + &camera_toml("bad", &bad, "always_on = true")
        + &camera_toml("xm", &xiongmai, "always_on = true");
    let hub = start(&cfg).await;
    let snap = get(&hub.url("/api/cameras/good/frame.jpeg?width=320")).await;
    assert_eq!(snap.status, 200, "{}\n{}", snap.text(), hub.log_tail(30));
    // The camera itself says which transport each SETUP chose: the picture came over UDP.
    let transports = rtsp.transports("/h264");
    assert!(
        !transports.is_empty() && transports.iter().all(|t| t == "udp"),
        "camhub's sessions used {transports:?}, not UDP: {:?}",
        rtsp.events()
    );
    wait_state(&hub, "bad", "retrying", Duration::from_secs(20)).await;
    let bad_api = camera(&hub, "bad").await;
    assert!(bad_api["last_error"].as_str().is_some(), "{bad_api}");
    wait_state(&hub, "xm", "retrying", Duration::from_secs(20)).await;
    let failed = get(&hub.url("/api/cameras/bad/frame.jpeg")).await;
    assert_eq!(failed.status, 503);
    let everything = format!(
        "{}{}{}{}",
        get(&hub.url("/api/cameras")).await.text(),
        failed.text(),
        hub.log(),
        get(&hub.url("/metrics")).await.text()
    );
    for secret in [password, "wrong-pw-77", "Xm-secret-9"] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
    assert!(everything.contains("***"), "URLs are shown redacted");
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_survive_a_camera_restart_and_see_placeholders_meanwhile() {
    let mut rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = start(&camera_toml("cam", &rtsp.url("/h264"), "watchdog = \"3s\"")).await;
    let mut reader = MjpegReader::connect(&hub.url("/api/cameras/cam/stream.mjpeg?width=320"))
        .await
        .unwrap();
    reader
        .next_frame_within(Duration::from_secs(15))
        .await
        .unwrap();
    rtsp.kill();
    wait_state(&hub, "cam", "retrying", Duration::from_secs(20)).await;
    // While the camera is down the viewer keeps receiving labelled placeholder frames. Frames the
    // camera sent before it died may still sit in the socket buffers ahead of them (this reader
    // only pulls when asked): those come first, then a placeholder.
    let mut placeholder = false;
    for _ in 0..100 {
        let f = reader
            .next_frame_within(Duration::from_secs(10))
            .await
            .unwrap();
        let (w, h, rgb) = decode_jpeg_rgb(&f);
        assert_eq!((w, h), (320, 180));
        if RTSP_WHITE.check(&rgb, w, h, TIGHT).is_err() {
            placeholder = true;
            break;
        }
    }
    assert!(placeholder, "no placeholder while the camera was down");
    rtsp.restart().await;
    wait_state(&hub, "cam", "streaming", Duration::from_secs(60)).await;
    // The same viewer gets the real picture again.
    let mut real = false;
    for _ in 0..60 {
        let f = reader
            .next_frame_within(Duration::from_secs(10))
            .await
            .unwrap();
        let (w, h, rgb) = decode_jpeg_rgb(&f);
        if RTSP_WHITE.check(&rgb, w, h, TIGHT).is_ok() {
            real = true;
            break;
        }
    }
    assert!(
        real,
        "the viewer never saw the camera again; log:\n{}",
        hub.log_tail(30)
    );
    assert!(metric(&hub, "camhub_reconnects_total", "cam").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_camera_absent_at_start_up_is_picked_up_when_it_appears() {
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/h264");
    let hub = start(&camera_toml("late", &url, "always_on = true")).await;
    wait_state(&hub, "late", "retrying", Duration::from_secs(15)).await;
    let api = camera(&hub, "late").await;
    assert!(
        api["reason"].as_str().unwrap_or("").contains("retrying in"),
        "{api}"
    );
    // Retrying again and again logs one warning, not one per attempt.
    let retried = eventually(Duration::from_secs(20), || async {
        camera(&hub, "late").await["reconnects"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    })
    .await;
    assert!(retried, "{}", camera(&hub, "late").await);
    let warnings = hub.log().lines().filter(|l| l.contains("WARN")).count();
    assert_eq!(warnings, 1, "log:\n{}", hub.log());
    let _rtsp = RtspServer::start(RtspServerOptions {
        port,
        ..Default::default()
    })
    .await;
    wait_state(&hub, "late", "streaming", Duration::from_secs(60)).await;
    let snap = get(&hub.url("/api/cameras/late/frame.jpeg")).await;
    assert_eq!(snap.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_camera_is_reconnected_by_the_watchdog() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = start(&camera_toml(
        "quiet",
        &rtsp.url("/silent"),
        "always_on = true\nwatchdog = \"2s\"",
    ))
    .await;
    wait_state(&hub, "quiet", "streaming", Duration::from_secs(20)).await;
    let reconnected = eventually(Duration::from_secs(30), || async {
        camera(&hub, "quiet").await["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("watchdog")
    })
    .await;
    assert!(
        reconnected,
        "{}\n{}",
        camera(&hub, "quiet").await,
        hub.log_tail(20)
    );
    assert!(
        rtsp.wait_for("SETUP", "/silent", 2, Duration::from_secs(30))
            .await,
        "it connects again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resolution_change_mid_stream_is_followed() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = start(&camera_toml("sw", &rtsp.url("/switch"), "")).await;
    let mut reader = MjpegReader::connect(&hub.url("/api/cameras/sw/stream.mjpeg"))
        .await
        .unwrap();
    let first = reader
        .next_frame_within(Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(decode_jpeg_rgb(&first).0, 640);
    let mut switched = false;
    for _ in 0..150 {
        let f = reader
            .next_frame_within(Duration::from_secs(10))
            .await
            .unwrap();
        if decode_jpeg_rgb(&f).0 == 320 {
            switched = true;
            break;
        }
    }
    assert!(
        switched,
        "never saw the new size; log:\n{}",
        hub.log_tail(20)
    );
    assert_eq!(camera(&hub, "sw").await["width"], 320);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_decoded_while_nobody_needs_pixels() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = start(&camera_toml(
        "cam",
        &rtsp.url("/h264"),
        "always_on = true\nidle_timeout = \"2s\"",
    ))
    .await;
    wait_state(&hub, "cam", "streaming", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(metric(&hub, "camhub_frames_in_total", "cam").await > 10.0);
    assert_eq!(
        metric(&hub, "camhub_decode_seconds_total", "cam").await,
        0.0,
        "decoded with no viewer"
    );
    assert_eq!(
        metric(&hub, "camhub_frames_encoded_total", "cam").await,
        0.0
    );

    let snap = get(&hub.url("/api/cameras/cam/frame.jpeg?width=320")).await;
    assert_eq!(snap.status, 200);
    assert!(metric(&hub, "camhub_decode_seconds_total", "cam").await > 0.0);
    // idle_timeout after the last consumer, decoding stops although the connection stays up.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let a = metric(&hub, "camhub_decode_seconds_total", "cam").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = metric(&hub, "camhub_decode_seconds_total", "cam").await;
    assert_eq!(a, b, "still decoding with nobody watching");
    assert_eq!(camera(&hub, "cam").await["state"], "streaming");
}
