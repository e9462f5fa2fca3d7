//! The snapshot/multipart HTTP server: auth checked by real curl, multipart modes read by real clients.

use std::process::Command;
use std::time::Duration;

use camhub_testkit::{
    ffmpeg_jpegs, jpeg_size, MjpegReader, SnapshotMode, SnapshotServer, StalledClient,
};

/// `curl` exit status and HTTP code, body to `out`.
fn curl(args: &[&str], url: &str, out: &str) -> (i32, String) {
    let output = Command::new("curl")
        .args(["-s", "-m", "30", "-o", out, "-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_snapshot_is_served_and_counted() {
    let jpeg = ffmpeg_jpegs(1, 160, 120).remove(0);
    let server = SnapshotServer::start(jpeg.clone()).await;
    assert!(server.url().ends_with("/capture"));
    let body = reqwest::get(server.url())
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&body[..], &jpeg[..]);
    let missing = reqwest::get(server.url().replace("/capture", "/nope"))
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    assert_eq!((server.requests(), server.served()), (2, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_auth_checks_the_response() {
    let jpeg = ffmpeg_jpegs(1, 160, 120).remove(0);
    let server = SnapshotServer::start(jpeg.clone())
        .await
        .with_digest("admin", "s3cret");
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("snap.jpg");
    let out = out.to_str().expect("utf-8 path");
    let url = format!("{}?quality=1", server.url());

    assert_eq!(curl(&[], &url, out).1, "401", "no credentials");
    assert_eq!(
        curl(&["--digest", "-u", "admin:wrong"], &url, out).1,
        "401",
        "wrong password"
    );
    assert_eq!(
        curl(&["--basic", "-u", "admin:s3cret"], &url, out).1,
        "401",
        "basic is not digest"
    );
    assert_eq!(
        curl(&["--digest", "-u", "admin:s3cret"], &url, out).1,
        "200",
        "right password"
    );
    assert_eq!(std::fs::read(out).expect("snapshot"), jpeg);
    assert_eq!(server.served(), 1);
    assert!(
        server.unauthorized() >= 4,
        "each curl --digest gets one challenge first"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth() {
    let server = SnapshotServer::start(ffmpeg_jpegs(1, 160, 120).remove(0))
        .await
        .with_basic("u", "p");
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("snap.jpg");
    let out = out.to_str().expect("utf-8 path");
    assert_eq!(curl(&[], &server.url(), out).1, "401");
    assert_eq!(curl(&["-u", "u:x"], &server.url(), out).1, "401");
    assert_eq!(curl(&["-u", "u:p"], &server.url(), out).1, "200");
}

#[tokio::test(flavor = "multi_thread")]
async fn quirky_multipart_loops_frames_with_a_mismatched_boundary() {
    let jpegs = ffmpeg_jpegs(3, 160, 120);
    let server = SnapshotServer::start_mode(SnapshotMode::Multipart {
        jpegs: jpegs.clone(),
        fps: 20,
    })
    .await;
    let mut reader = MjpegReader::connect(&server.url())
        .await
        .expect("multipart");
    assert_eq!(
        reader.content_type(),
        "multipart/x-mixed-replace;boundary=camhubquirk"
    );
    for i in 0..7 {
        let frame = reader
            .next_frame_within(Duration::from_secs(5))
            .await
            .expect("frame");
        assert_eq!(
            &frame[..],
            &jpegs[i % 3][..],
            "frame {i} is the looped JPEG"
        );
    }
    // The raw bytes really carry the other boundary and no Content-Length.
    let raw = Command::new("curl")
        .args(["-s", "-m", "1", &server.url()])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&raw.stdout);
    assert!(
        text.contains("--quirkycamera\r\nContent-Type: image/jpeg\r\n\r\n"),
        "{:?}",
        &text[..60.min(text.len())]
    );
    assert!(!text.contains("--camhubquirk") && !text.contains("Content-Length"));
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_multipart_sends_one_frame_then_nothing() {
    let jpeg = ffmpeg_jpegs(1, 160, 120).remove(0);
    let server = SnapshotServer::start_mode(SnapshotMode::SilentMultipart(jpeg.clone())).await;
    let mut reader = MjpegReader::connect(&server.url())
        .await
        .expect("multipart");
    let first = reader
        .next_frame_within(Duration::from_secs(5))
        .await
        .expect("one frame");
    assert_eq!(&first[..], &jpeg[..]);
    let more = reader.next_frame_within(Duration::from_secs(2)).await;
    assert!(
        more.is_err_and(|e| e.contains("no MJPEG frame within")),
        "then silence with the socket open"
    );
    assert_eq!(server.parts_sent(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_part_streams_100_mb() {
    let server = SnapshotServer::start_mode(SnapshotMode::MultipartHuge).await;
    // Our reader refuses the part by its declared size...
    let mut reader = MjpegReader::connect(&server.url())
        .await
        .expect("multipart");
    let refused = reader.next_frame_within(Duration::from_secs(10)).await;
    assert!(
        refused.is_err_and(|e| e.contains("over the")),
        "a 100 MB part must be refused"
    );
    // ...and curl sees the whole 100 MB arrive (streamed by the server, never held in memory).
    let (code, http) = curl(&[], &server.url(), "/dev/null");
    assert_eq!((code, http.as_str()), (0, "200"));
    let size = Command::new("curl")
        .args([
            "-s",
            "-m",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            &server.url(),
        ])
        .output()
        .expect("curl");
    let bytes: u64 = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .expect("size_download");
    assert!(bytes > 100 * 1024 * 1024, "downloaded {bytes} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_client_connects_with_a_small_buffer_and_never_reads() {
    let jpegs = ffmpeg_jpegs(2, 320, 240);
    let server = SnapshotServer::start_mode(SnapshotMode::Multipart { jpegs, fps: 50 }).await;
    let stalled = StalledClient::connect(&server.url(), 4096).expect("stalled client");
    let granted = stalled.recv_buffer_size().expect("SO_RCVBUF");
    assert!(granted <= 16 * 1024, "kernel granted {granted} bytes");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.served(), 1, "the request went out");
    // The server soon blocks on the stalled socket; a healthy reader beside it is unaffected.
    let mut healthy = MjpegReader::connect(&server.url()).await.expect("healthy");
    for _ in 0..10 {
        let frame = healthy
            .next_frame_within(Duration::from_secs(5))
            .await
            .expect("frame");
        assert_eq!(jpeg_size(&frame), Some((320, 240)));
    }
    let counter = healthy.count_in_background();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        counter.frames() >= 10,
        "background counter saw {} frames",
        counter.frames()
    );
    assert!(counter.last_frame().is_some() && counter.error().is_none());
    drop(stalled);
}
