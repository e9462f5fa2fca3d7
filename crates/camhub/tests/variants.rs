//! A variant is the picture it produces, not the query that asked for it: requests that come out as
//! the same JPEG share one encode and one place against `max_variants`, and a JPEG camera asked for its
//! own size at the default quality (what the web UI asks) gets the camera's JPEGs untouched.

mod common;

use std::time::Duration;

use camhub_testkit::{ffmpeg_jpegs, MjpegReader, SnapshotMode, SnapshotServer};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn requests_that_make_the_same_picture_share_one_encode_and_one_place() {
    // 1280x720 demo pattern; only one variant allowed.
    let hub = start(
        "[server]\nmax_variants = 1\n\n[[camera]]\nid = \"demo\"\nurl = \"demo:?width=1280&height=720&fps=10\"\n",
    )
    .await;
    let queries = [
        "width=640",
        "width=641",
        "width=640&height=360",
        "width=640&quality=80",
        "height=360&quality=80",
    ];
    // The first one makes the camera's size known; the others must then join its variant.
    let mut first =
        MjpegReader::connect(&hub.url(&format!("/api/cameras/demo/stream.mjpeg?{}", queries[0])))
            .await
            .expect("connect");
    first
        .next_frame_within(Duration::from_secs(10))
        .await
        .expect("a frame");
    let mut readers = vec![first];
    for q in &queries[1..] {
        let url = hub.url(&format!("/api/cameras/demo/stream.mjpeg?{q}"));
        let mut r = MjpegReader::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let f = r
            .next_frame_within(Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let (w, h, _) = camhub_testkit::decode_jpeg_rgb(&f);
        assert_eq!((w, h), (640, 360), "{q}");
        readers.push(r);
    }
    // One encode per source frame for all five viewers.
    let (in0, enc0) = (
        metric(&hub, "camhub_frames_in_total", "demo").await,
        metric(&hub, "camhub_frames_encoded_total", "demo").await,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    for r in &mut readers {
        r.next_frame_within(Duration::from_secs(5))
            .await
            .expect("still streaming");
    }
    let (in1, enc1) = (
        metric(&hub, "camhub_frames_in_total", "demo").await,
        metric(&hub, "camhub_frames_encoded_total", "demo").await,
    );
    let (frames, encodes) = (in1 - in0, enc1 - enc0);
    assert!(frames >= 20.0, "{frames} frames in 3 s");
    assert!(
        encodes <= frames + 1.0,
        "{encodes} JPEGs encoded for {frames} source frames: the five requests were not one variant"
    );
    // A different picture is a second variant: over the cap.
    let other = get(&hub.url("/api/cameras/demo/frame.jpeg?width=320")).await;
    assert_eq!(other.status, 429, "{}", other.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jpeg_camera_at_its_own_size_and_the_default_quality_is_passed_through() {
    let jpegs = ffmpeg_jpegs(5, 320, 240);
    let camera_server = SnapshotServer::start_mode(SnapshotMode::Multipart {
        jpegs: jpegs.clone(),
        fps: 10,
    })
    .await;
    let hub = start(&format!(
        "[[camera]]\nid = \"esp\"\nurl = \"{}\"\n",
        camera_server.url()
    ))
    .await;
    // What the UI asks for: the native size with quality=80 spelled out, and with width= the native width.
    for q in ["quality=80", "width=320&quality=80", "width=320"] {
        let mut r = MjpegReader::connect(&hub.url(&format!("/api/cameras/esp/stream.mjpeg?{q}")))
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        for n in 0..3 {
            let f = r
                .next_frame_within(Duration::from_secs(10))
                .await
                .unwrap_or_else(|e| panic!("{q} frame {n}: {e}\n{}", hub.log_tail(20)));
            assert!(
                jpegs.iter().any(|j| j[..] == f[..]),
                "{q}: frame {n} ({} bytes) is not one of the camera's JPEGs",
                f.len()
            );
        }
    }
    assert_eq!(
        metric(&hub, "camhub_frames_encoded_total", "esp").await,
        0.0
    );
}
