//! HTTP and `ffmpeg:` cameras end to end: an ESP32-CAM stand-in that takes one client at a time, JPEG
//! snapshot URLs with basic and digest auth, multipart streams that real cameras get wrong, a looped file
//! through libavformat, and a camera that is down — camhub in between, real sockets on both sides.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use camhub_testkit::{
    decode_jpeg_rgb, ffmpeg_jpegs, free_port, MjpegReader, OneClientMjpegCamera, SnapshotMode,
    SnapshotServer,
};
use common::{camera, eventually, get, metric, start, wait_state};

fn camera_toml(id: &str, url: &str, extra: &str) -> String {
    format!("[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\n{extra}\n")
}

/// `http://127.0.0.1:PORT/path` with `user:password@` put in.
fn with_login(url: &str, user: &str, password: &str) -> String {
    url.replacen("http://", &format!("http://{user}:{password}@"), 1)
}

/// The text of a camera's `reason` and `last_error`, for "mentions X" assertions.
async fn why(hub: &camhub_testkit::Camhub, id: &str) -> String {
    let api = camera(hub, id).await;
    format!(
        "{} | {}",
        api["reason"].as_str().unwrap_or(""),
        api["last_error"].as_str().unwrap_or("")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_client_camera_serves_fifty_viewers_over_one_connection() {
    let cam = OneClientMjpegCamera::start(320, 240, 10).await;
    let hub = start(&camera_toml("esp32", &cam.url(), "")).await;
    let mut viewers = Vec::new();
    for i in 0..50 {
        let q = if i % 2 == 0 { "" } else { "?width=160" };
        let url = hub.url(&format!("/api/cameras/esp32/stream.mjpeg{q}"));
        let reader = MjpegReader::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("viewer {i}: {e}\n{}", hub.log_tail(20)));
        viewers.push((i, reader.count_in_background()));
    }
    let all_got_five = eventually(Duration::from_secs(60), || async {
        viewers.iter().all(|(_, v)| v.frames() >= 5)
    })
    .await;
    let counts: Vec<u64> = viewers.iter().map(|(_, v)| v.frames()).collect();
    assert!(
        all_got_five,
        "frames per viewer: {counts:?}; errors: {:?}\nlog:\n{}",
        viewers
            .iter()
            .filter_map(|(i, v)| v.error().map(|e| format!("{i}: {e}")))
            .collect::<Vec<_>>(),
        hub.log_tail(30)
    );
    // Each size is what was asked for, and every picture decodes.
    for (i, v) in &viewers {
        let frame = v.last_frame().unwrap();
        let (w, h, _) = decode_jpeg_rgb(&frame);
        let want = if i % 2 == 0 { (320, 240) } else { (160, 120) };
        assert_eq!((w, h), want, "viewer {i}");
    }
    assert_eq!(
        cam.connections(),
        1,
        "the camera was connected to more than once; log:\n{}",
        hub.log_tail(30)
    );
    let api = camera(&hub, "esp32").await;
    assert_eq!(api["viewers"], 50, "{api}");
    assert_eq!(api["codec"], "mjpeg", "{api}");
    assert_eq!(api["state"], "streaming", "{api}");
    assert_eq!(api["width"], 320, "{api}");
    assert_eq!(api["reconnects"], 0, "{api}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quirky_multipart_stream_is_passed_through_byte_for_byte_and_scaled_on_request() {
    let jpegs = ffmpeg_jpegs(5, 320, 240);
    let quirky = SnapshotServer::start_mode(SnapshotMode::Multipart {
        jpegs: jpegs.clone(),
        fps: 10,
    })
    .await;
    let hub = start(&camera_toml("quirky", &quirky.url(), "")).await;
    let snap = get(&hub.url("/api/cameras/quirky/frame.jpeg")).await;
    assert_eq!(snap.status, 200, "{}\n{}", snap.text(), hub.log_tail(30));
    assert!(
        jpegs.iter().any(|j| j[..] == snap.body[..]),
        "the native snapshot ({} bytes) is not one of the camera's JPEGs ({:?} bytes)",
        snap.body.len(),
        jpegs.iter().map(Vec::len).collect::<Vec<_>>()
    );

    let mut native = MjpegReader::connect(&hub.url("/api/cameras/quirky/stream.mjpeg"))
        .await
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    for n in 0..12 {
        let f = native
            .next_frame_within(Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("frame {n}: {e}\n{}", hub.log_tail(20)));
        let index = jpegs.iter().position(|j| j[..] == f[..]);
        assert!(
            index.is_some(),
            "frame {n} ({} bytes) is not byte-identical to any of the camera's JPEGs ({:?} bytes)",
            f.len(),
            jpegs.iter().map(Vec::len).collect::<Vec<_>>()
        );
        seen.extend(index);
    }
    assert!(
        seen.len() >= 3,
        "the stream is live: several different source frames pass through ({seen:?})"
    );

    let mut small = MjpegReader::connect(&hub.url("/api/cameras/quirky/stream.mjpeg?width=160"))
        .await
        .unwrap();
    for _ in 0..3 {
        let f = small
            .next_frame_within(Duration::from_secs(10))
            .await
            .unwrap();
        let (w, h, _) = decode_jpeg_rgb(&f);
        assert_eq!((w, h), (160, 120));
    }
    let api = camera(&hub, "quirky").await;
    assert_eq!(api["codec"], "mjpeg", "{api}");
    assert_eq!(api["reconnects"], 0, "{api}");
    assert!(quirky.requests() == 1, "one connection to the camera");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_camera_is_polled_at_its_poll_interval() {
    let jpeg = ffmpeg_jpegs(1, 320, 240).remove(0);
    let snapper = SnapshotServer::start(jpeg.clone()).await;
    let hub = start(&camera_toml(
        "still",
        &snapper.url(),
        "poll_interval = \"200ms\"",
    ))
    .await;
    assert_eq!(snapper.requests(), 0, "an idle camera is not polled");
    let snap = get(&hub.url("/api/cameras/still/frame.jpeg")).await;
    assert_eq!(snap.status, 200, "{}\n{}", snap.text(), hub.log_tail(30));
    assert_eq!(snap.body, jpeg, "a snapshot at its own size passes through");

    let mut viewer = MjpegReader::connect(&hub.url("/api/cameras/still/stream.mjpeg?width=160"))
        .await
        .unwrap();
    viewer
        .next_frame_within(Duration::from_secs(10))
        .await
        .unwrap();
    let before = snapper.requests();
    let window = Instant::now();
    let mut frames = 0;
    while window.elapsed() < Duration::from_secs(2) {
        if viewer
            .next_frame_within(Duration::from_millis(500))
            .await
            .is_ok()
        {
            frames += 1;
        }
    }
    let polled = snapper.requests() - before;
    // 2 s at 200 ms is 10 polls; flat out it would be hundreds.
    assert!(
        (5..=20).contains(&polled),
        "{polled} requests in 2 s with poll_interval 200ms"
    );
    assert!(frames >= 3, "{frames} frames reached the viewer in 2 s");
    let api = camera(&hub, "still").await;
    assert_eq!(api["state"], "streaming", "{api}");
    assert_eq!(api["codec"], "mjpeg", "{api}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_size_of_a_slowly_polled_camera_is_served_from_the_last_snapshot() {
    let jpeg = ffmpeg_jpegs(1, 320, 240).remove(0);
    let snapper = SnapshotServer::start(jpeg).await;
    let hub = start(&camera_toml(
        "slow",
        &snapper.url(),
        "poll_interval = \"20s\"",
    ))
    .await;
    let first = get(&hub.url("/api/cameras/slow/frame.jpeg?width=160")).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let polls = snapper.requests();
    // Another size, well before the next poll: made from the JPEG camhub already has.
    let second = get(&hub.url("/api/cameras/slow/frame.jpeg?width=80")).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(decode_jpeg_rgb(&second.body).0, 80);
    assert_eq!(
        second.header("x-frame-seq"),
        first.header("x-frame-seq"),
        "same source frame"
    );
    assert_eq!(snapper.requests(), polls, "no extra poll was needed");
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_cameras_log_in_with_digest_and_basic_auth_and_passwords_never_show() {
    let (digest_pw, basic_pw, wrong_pw) = ("Dg7-secret-pw", "Bs4-secret-pw", "Wr0ng-pw-991");
    let jpeg = ffmpeg_jpegs(1, 320, 240).remove(0);
    let digest = SnapshotServer::start(jpeg.clone())
        .await
        .with_digest("admin", digest_pw);
    let basic = SnapshotServer::start(jpeg.clone())
        .await
        .with_basic("admin", basic_pw);
    let guarded = SnapshotServer::start(jpeg.clone())
        .await
        .with_digest("admin", digest_pw);
    let cfg = format!(
        "[server]\nsnapshot_timeout = \"3s\"\n\n{}{}{}",
        camera_toml(
            "digest",
            &with_login(&digest.url(), "admin", digest_pw),
            "poll_interval = \"200ms\""
        ),
        camera_toml(
            "basic",
            &with_login(&basic.url(), "admin", basic_pw),
            "poll_interval = \"200ms\""
        ),
        camera_toml(
            "wrong",
            &with_login(&guarded.url(), "admin", wrong_pw),
            "always_on = true"
        ),
    );
    let hub = start(&cfg).await;
    for (id, server) in [("digest", &digest), ("basic", &basic)] {
        let snap = get(&hub.url(&format!("/api/cameras/{id}/frame.jpeg"))).await;
        assert_eq!(
            snap.status,
            200,
            "{id}: {}\n{}",
            snap.text(),
            hub.log_tail(30)
        );
        assert_eq!(snap.body, jpeg, "{id}");
        let small = get(&hub.url(&format!("/api/cameras/{id}/frame.jpeg?width=160"))).await;
        assert_eq!(small.status, 200, "{id}: {}", small.text());
        assert_eq!(decode_jpeg_rgb(&small.body).0, 160, "{id}");
        assert!(server.served() >= 1, "{id}: the camera served a snapshot");
        assert!(
            server.unauthorized() >= 1,
            "{id}: the camera challenged camhub (auth was exercised)"
        );
    }

    wait_state(&hub, "wrong", "retrying", Duration::from_secs(20)).await;
    let api = camera(&hub, "wrong").await;
    let reason = api["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("password") || reason.contains("401"),
        "the reason says the login failed: {api}"
    );
    assert_eq!(guarded.served(), 0, "a wrong password is never let in");
    let failed = get(&hub.url("/api/cameras/wrong/frame.jpeg")).await;
    assert_eq!(failed.status, 503, "{}", failed.text());
    assert!(
        failed.json()["error"].as_str().is_some(),
        "{}",
        failed.text()
    );

    let everything = format!(
        "{}{}{}{}",
        get(&hub.url("/api/cameras")).await.text(),
        failed.text(),
        get(&hub.url("/metrics")).await.text(),
        hub.log(),
    );
    for secret in [digest_pw, basic_pw, wrong_pw] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
    assert!(everything.contains("***"), "URLs are shown redacted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multipart_stream_with_a_100_mb_part_is_refused_within_a_memory_bound() {
    let huge = SnapshotServer::start_mode(SnapshotMode::MultipartHuge).await;
    let hub = start(&camera_toml("huge", &huge.url(), "always_on = true")).await;
    let peak_kib = Cell::new(0);
    let sample = || peak_kib.set(peak_kib.get().max(hub.rss_kib().unwrap_or(0)));
    let refused = eventually(Duration::from_secs(60), || async {
        sample();
        camera(&hub, "huge").await["state"] == "retrying"
    })
    .await;
    assert!(
        refused,
        "{}\nlog:\n{}",
        camera(&hub, "huge").await,
        hub.log_tail(30)
    );
    let text = why(&hub, "huge").await;
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("byte")
            && (lower.contains("limit") || lower.contains("exceed") || lower.contains("larger")),
        "the reason names the size bound: {text}"
    );
    // It keeps trying (and refusing) without memory growing.
    let retried = eventually(Duration::from_secs(30), || async {
        sample();
        huge.requests() >= 3
    })
    .await;
    assert!(
        retried,
        "{} requests; {}",
        huge.requests(),
        camera(&hub, "huge").await
    );
    let peak_kib = peak_kib.get();
    assert!(
        peak_kib > 0 && peak_kib < 200 * 1024,
        "camhub's RSS peaked at {peak_kib} KiB"
    );
    let health = get(&hub.url("/healthz")).await;
    assert_eq!(health.status, 200, "camhub is alive");
    assert_eq!(get(&hub.url("/api/cameras")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multipart_camera_that_goes_silent_is_reconnected_by_the_watchdog() {
    let jpeg = ffmpeg_jpegs(1, 320, 240).remove(0);
    let silent = SnapshotServer::start_mode(SnapshotMode::SilentMultipart(jpeg)).await;
    let hub = start(&camera_toml(
        "quiet",
        &silent.url(),
        "always_on = true\nwatchdog = \"2s\"",
    ))
    .await;
    let caught = eventually(Duration::from_secs(30), || async {
        camera(&hub, "quiet").await["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("watchdog")
    })
    .await;
    assert!(
        caught,
        "{}\nlog:\n{}",
        camera(&hub, "quiet").await,
        hub.log_tail(20)
    );
    let reconnected =
        eventually(Duration::from_secs(30), || async { silent.requests() >= 2 }).await;
    assert!(
        reconnected,
        "{} requests; {}",
        silent.requests(),
        camera(&hub, "quiet").await
    );
    assert!(camera(&hub, "quiet").await["reconnects"].as_u64().unwrap() >= 1);
}

/// Makes `clip.mp4` in `dir`: 2 s of `testsrc2` at 320x240 and 10 fps, H.264, a keyframe every second.
fn h264_clip(dir: &Path) -> PathBuf {
    let path = dir.join("clip.mp4");
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=10",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "10",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg to make a clip");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ffmpeg_file_source_loops_at_the_files_frame_rate() {
    let dir = tempfile::tempdir().unwrap();
    let clip = h264_clip(dir.path());
    const CLIP_FRAMES: u64 = 20;
    const FPS: f64 = 10.0;
    let hub = start(&camera_toml(
        "clip",
        &format!("ffmpeg:{}", clip.display()),
        "loop_file = true",
    ))
    .await;
    let mut reader = MjpegReader::connect(&hub.url("/api/cameras/clip/stream.mjpeg"))
        .await
        .unwrap();
    let first = reader
        .next_frame_within(Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", hub.log_tail(30)));
    wait_state(&hub, "clip", "streaming", Duration::from_secs(10)).await;
    let (w, h, _) = decode_jpeg_rgb(&first);
    assert_eq!((w, h), (320, 240));
    let counting_since = Instant::now();
    let frames_in_before = metric(&hub, "camhub_frames_in_total", "clip").await;
    let mut frames = 0u64;
    while frames < 40 {
        reader
            .next_frame_within(Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("after {frames} frames: {e}\n{}", hub.log_tail(30)));
        frames += 1;
    }
    let elapsed = counting_since.elapsed().as_secs_f64();
    let frames_in = metric(&hub, "camhub_frames_in_total", "clip").await - frames_in_before;
    assert!(
        frames >= 2 * CLIP_FRAMES,
        "{frames} frames from a {CLIP_FRAMES}-frame clip: it loops"
    );
    // Read at the file's rate, not as fast as the disk allows: within 3x of real time (plus a
    // little for the channel between the reader thread and the hub filling up).
    let realtime = FPS * elapsed;
    assert!(
        frames_in < 3.0 * realtime + 10.0,
        "{frames_in} frames read in {elapsed:.1}s of a {FPS} fps file"
    );
    assert!(
        (frames as f64) < 3.0 * realtime + 10.0,
        "{frames} frames served in {elapsed:.1}s of a {FPS} fps file"
    );
    let api = camera(&hub, "clip").await;
    assert_eq!(api["state"], "streaming", "{api}");
    assert_eq!(api["codec"], "h264", "{api}");
    assert_eq!(api["width"], 320, "{api}");
    assert_eq!(api["height"], 240, "{api}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ffmpeg_source_on_a_missing_file_is_retried_with_a_clear_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-clip.mp4");
    let hub = start(&camera_toml(
        "gone",
        &format!("ffmpeg:{}", missing.display()),
        "always_on = true\nloop_file = true",
    ))
    .await;
    wait_state(&hub, "gone", "retrying", Duration::from_secs(20)).await;
    let text = why(&hub, "gone").await;
    assert!(
        text.to_ascii_lowercase().contains("no such file"),
        "the reason says the file is missing: {text}"
    );
    assert!(text.contains("retrying in"), "{text}");
    assert_eq!(get(&hub.url("/healthz")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_of_a_camera_that_is_down_is_a_503_within_snapshot_timeout() {
    let port = free_port();
    let cfg = format!(
        "[server]\nsnapshot_timeout = \"2s\"\n\n{}",
        camera_toml("down", &format!("http://127.0.0.1:{port}/capture"), "")
    );
    let hub = start(&cfg).await;
    for attempt in 0..2 {
        let asked = Instant::now();
        let failed = get(&hub.url("/api/cameras/down/frame.jpeg?width=320")).await;
        let took = asked.elapsed();
        assert_eq!(failed.status, 503, "attempt {attempt}: {}", failed.text());
        assert_eq!(
            failed.header("content-type").as_deref(),
            Some("application/json")
        );
        let error = failed.json()["error"].as_str().unwrap_or("").to_owned();
        assert!(
            error.contains("down") && error.to_ascii_lowercase().contains("refused"),
            "the error names the camera and says why: {error}"
        );
        // snapshot_timeout is 2 s; allow generously for a loaded machine, but it never hangs.
        assert!(
            took < Duration::from_secs(8),
            "attempt {attempt}: answered after {took:?}"
        );
    }
    let api = camera(&hub, "down").await;
    assert!(
        api["last_error"].as_str().is_some(),
        "the API shows the failure: {api}"
    );
}
