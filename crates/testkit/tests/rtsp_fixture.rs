//! The GStreamer RTSP fixture against the real ffmpeg CLI as client.

mod common;

use std::time::{Duration, Instant};

use camhub_testkit::{
    decode_jpeg_rgb, ffprobe_size, region_mean_abs_diff, RtspServer, RtspServerOptions,
    COLOR_TOLERANCE, RTSP_BLACK, RTSP_COUNTER_REGION, RTSP_WHITE,
};
use common::{ffmpeg, grab_jpeg, showinfo_sizes};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn h264_h265_mjpeg_decode_over_tcp_and_sessions_are_counted() {
    let server = RtspServer::start(RtspServerOptions::default()).await;
    for path in ["/h264", "/h265", "/mjpeg"] {
        let url = server.url(path);
        let (ok, log) = ffmpeg(
            &[
                "-rtsp_transport",
                "tcp",
                "-i",
                &url,
                "-frames:v",
                "2",
                "-f",
                "null",
                "-",
            ],
            LIMIT,
        );
        assert!(ok, "{path} did not decode over TCP:\n{log}");
        assert!(
            server
                .wait_for("TEARDOWN", path, 1, Duration::from_secs(5))
                .await,
            "{:?}",
            server.events()
        );
        assert_eq!(server.count("SETUP", path), 1, "{:?}", server.events());
        assert_eq!(server.transports(path), ["tcp"], "{:?}", server.events());
        assert_eq!(server.count("PLAY", path), 1);
    }
    assert!(
        server
            .wait_for("CLOSED", "*", 3, Duration::from_secs(5))
            .await
    );
    assert_eq!(server.count("CLIENT", "*"), 3);
    assert_eq!(ffprobe_size(&server.url("/h264")), Ok((640, 360)));
}

#[tokio::test(flavor = "multi_thread")]
async fn h264_decodes_over_udp() {
    let server = RtspServer::start(RtspServerOptions::default()).await;
    let url = server.url("/h264");
    let (ok, log) = ffmpeg(
        &[
            "-rtsp_transport",
            "udp",
            "-i",
            &url,
            "-frames:v",
            "2",
            "-f",
            "null",
            "-",
        ],
        LIMIT,
    );
    assert!(ok, "UDP:\n{log}");
    assert!(log.contains("Video: h264"), "{log}");
    assert_eq!(
        server.transports("/h264"),
        ["udp"],
        "the fixture reports the transport its SETUP chose: {:?}",
        server.events()
    );
}

/// The colour matrix a stream signals in its SPS (VUI), as ffprobe reads it (`bt709`, `smpte170m`).
fn signalled_matrix(url: &str) -> String {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-rtsp_transport", "tcp"])
        .args(["-show_entries", "stream=color_space", "-of", "csv=p=0", url])
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn hd_signals_bt709_unless_told_otherwise_and_every_bar_decodes_to_its_colour() {
    for (colorimetry, matrix) in [(None, "bt709"), (Some("bt601"), "smpte170m")] {
        let mut options = RtspServerOptions::default().with_size(1280, 720, 15);
        if let Some(c) = colorimetry {
            options = options.with_colorimetry(c);
        }
        let server = RtspServer::start(options).await;
        for path in ["/h264", "/h265"] {
            assert_eq!(
                signalled_matrix(&server.url(path)),
                matrix,
                "{path} with {colorimetry:?}"
            );
            // FFmpeg reads the signalled matrix, so every bar (chroma-heavy ones included) comes
            // out at its colour: the sample points are on the bars at this size.
            let (w, h, rgb) = server.ffmpeg_rgb(path);
            assert_eq!((w, h), (1280, 720));
            for bar in RtspServer::BARS {
                bar.check(&rgb, w, h, COLOR_TOLERANCE)
                    .unwrap_or_else(|e| panic!("{path} with {colorimetry:?}: {e}"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_auth_is_enforced() {
    let server = RtspServer::start(RtspServerOptions::default().with_auth("admin", "s3cret")).await;
    let anonymous = server.url_without_credentials("/h264");
    let (ok, log) = ffmpeg(
        &[
            "-rtsp_transport",
            "tcp",
            "-i",
            &anonymous,
            "-frames:v",
            "1",
            "-f",
            "null",
            "-",
        ],
        LIMIT,
    );
    assert!(
        !ok && log.contains("401"),
        "anonymous access must get 401:\n{log}"
    );
    let wrong = anonymous.replace("rtsp://", "rtsp://admin:wrong@");
    let (ok, log) = ffmpeg(
        &[
            "-rtsp_transport",
            "tcp",
            "-i",
            &wrong,
            "-frames:v",
            "1",
            "-f",
            "null",
            "-",
        ],
        LIMIT,
    );
    assert!(
        !ok && log.contains("401"),
        "a wrong password must get 401:\n{log}"
    );
    assert!(server
        .url("/h264")
        .starts_with("rtsp://admin:s3cret@127.0.0.1:"));
    let (ok, log) = ffmpeg(
        &[
            "-rtsp_transport",
            "tcp",
            "-i",
            &server.url("/h264"),
            "-frames:v",
            "2",
            "-f",
            "null",
            "-",
        ],
        LIMIT,
    );
    assert!(ok, "with credentials:\n{log}");
    assert_eq!(server.count("SETUP", "/h264"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn known_colours_and_changing_counter() {
    let server = RtspServer::start(RtspServerOptions::default()).await;
    let url = server.url("/h264");
    let a = grab_jpeg(&url, 2);
    let b = grab_jpeg(&url, 12);
    let (w, h, rgb_a) = decode_jpeg_rgb(&a);
    let (w2, h2, rgb_b) = decode_jpeg_rgb(&b);
    assert_eq!((w, h, w2, h2), (640, 360, 640, 360));
    for colour in [RTSP_WHITE, RTSP_BLACK] {
        colour.check(&rgb_a, w, h, 10).expect("known colour");
        colour.check(&rgb_b, w, h, 10).expect("known colour");
    }
    let diff = region_mean_abs_diff(&rgb_a, &rgb_b, w, h, RTSP_COUNTER_REGION);
    assert!(
        diff > 1.0,
        "the running-time text must differ between frames (mean abs diff {diff})"
    );
    let still = region_mean_abs_diff(&rgb_a, &rgb_b, w, h, (0.1, 0.75, 0.3, 1.0));
    assert!(
        still < 3.0,
        "the white patch must not change (mean abs diff {still})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn switch_mount_changes_resolution_mid_stream() {
    let options = RtspServerOptions {
        switch_after: Duration::from_secs(1),
        ..RtspServerOptions::default()
    };
    let server = RtspServer::start(options).await;
    let url = server.url("/switch");
    let (_, log) = ffmpeg(
        &[
            "-rtsp_transport",
            "tcp",
            "-i",
            &url,
            "-t",
            "3",
            "-vf",
            "showinfo",
            "-f",
            "null",
            "-",
        ],
        LIMIT,
    );
    let sizes = showinfo_sizes(&log);
    assert!(
        sizes.iter().any(|s| s == "640x360"),
        "no 640x360 frame: {sizes:?}"
    );
    assert!(
        sizes.iter().any(|s| s == "320x180"),
        "no 320x180 frame after the switch: {sizes:?}"
    );
    let first_small = sizes
        .iter()
        .position(|s| s == "320x180")
        .expect("small frame");
    assert!(
        sizes[..first_small].iter().all(|s| s == "640x360"),
        "{sizes:?}"
    );
    assert!(
        sizes[first_small..].iter().all(|s| s == "320x180"),
        "{sizes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_mount_stops_sending_but_keeps_the_session() {
    let options = RtspServerOptions {
        silent_after: Duration::from_secs(2),
        ..RtspServerOptions::default()
    };
    let server = RtspServer::start(options).await;
    let url = server.url("/silent");
    let started = Instant::now();
    // Watch for 5 s: a live stream would give ~75 frames at 15 fps; the silent one stops after ~2 s.
    // (A short probe, or ffmpeg would still be probing the stream when it goes silent.)
    let args = [
        "-rtsp_transport",
        "tcp",
        "-analyzeduration",
        "500000",
        "-i",
        &url,
        "-vf",
        "showinfo",
        "-f",
        "null",
        "-",
    ];
    let (_, log) = ffmpeg(&args, Duration::from_secs(5));
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "ffmpeg must still be waiting for frames, not have quit"
    );
    let frames = showinfo_sizes(&log).len();
    assert!(
        (10..=50).contains(&frames),
        "expected ~30 frames before silence, got {frames}:\n{log}"
    );
    assert_eq!(server.count("SETUP", "/silent"), 1);
    assert_eq!(
        server.count("TEARDOWN", "/silent"),
        0,
        "the session was never torn down"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_and_restart_on_the_same_port() {
    let mut server = RtspServer::start(RtspServerOptions::default()).await;
    let port = server.port();
    let url = server.url("/h264");
    let status = server.kill().expect("it was running");
    assert!(
        status.success(),
        "SIGTERM must shut the fixture down cleanly: {status}"
    );
    assert!(!server.is_running());
    let (ok, _) = ffmpeg(
        &[
            "-rtsp_transport",
            "tcp",
            "-i",
            &url,
            "-frames:v",
            "1",
            "-f",
            "null",
            "-",
        ],
        LIMIT,
    );
    assert!(!ok, "a killed server must refuse clients");
    server.restart().await;
    assert_eq!(server.port(), port);
    let (ok, log) = ffmpeg(
        &[
            "-rtsp_transport",
            "tcp",
            "-i",
            &url,
            "-frames:v",
            "2",
            "-f",
            "null",
            "-",
        ],
        LIMIT,
    );
    assert!(ok, "after restart:\n{log}");
    assert_eq!(server.count("READY", "*"), 2);
}
