//! Per-camera transforms (issue 7) against the real binary and the test RTSP server: a rotated and
//! cropped camera serves pictures of the transformed size with the test pattern's known colours
//! where the rotation puts them, and the API reports that size; a perspective warp keeps its
//! output (size and content) when the camera's resolution changes mid-stream; the API says that
//! players get the camera's own, untransformed stream.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use camhub_testkit::{
    decode_jpeg_rgb, KnownColor, MjpegReader, RtspServer, RtspServerOptions, COLOR_TOLERANCE,
    RTSP_BLACK, RTSP_WHITE,
};

/// `c` at its place in the original picture, moved to where a 90° clockwise turn of a `w` x `h`
/// picture puts it, then (for a crop at the origin) in a `cw` x `ch` picture.
fn rotated_cw(c: &KnownColor, w: f64, h: f64, cw: f64, ch: f64) -> KnownColor {
    let (x, y) = (c.x * w, c.y * h);
    // (x, y) -> (h - 1 - y, x)
    KnownColor {
        x: (h - 1.0 - y) / cw,
        y: x / ch,
        ..*c
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_and_cropped_camera_serves_and_reports_its_new_size() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"turned\"\nurl = \"{}\"\nrotate = 90\ncrop = [0, 0, 300, 600]\n\n\
         [[camera]]\nid = \"demo\"\nurl = \"demo:?width=320&height=240&fps=10\"\nrotate = 270\n",
        rtsp.url("/h264")
    ))
    .await;
    // The test server sends 640x360: turned it is 360x640, cut to 300x600.
    let shot = common::get(&hub.url("/api/cameras/turned/frame.jpeg")).await;
    assert_eq!(shot.status, 200, "{}", hub.log_tail(20));
    let (w, h, rgb) = decode_jpeg_rgb(&shot.body);
    assert_eq!((w, h), (300, 600));
    for c in [RTSP_WHITE, RTSP_BLACK] {
        let moved = rotated_cw(&c, 640.0, 360.0, 300.0, 600.0);
        moved.check(&rgb, w, h, COLOR_TOLERANCE).unwrap();
        // (Turned the other way, these places hold top-row bars: the check tells the two apart.)
    }
    let cam = common::camera(&hub, "turned").await;
    assert_eq!(
        (cam["width"].as_u64(), cam["height"].as_u64()),
        (Some(300), Some(600)),
        "{cam}"
    );
    assert_eq!(cam["transform"]["rotate"], 90, "{cam}");
    assert_eq!(cam["transform"]["players_transformed"], false, "{cam}");
    assert_eq!(cam["player_stream"], "camera");

    // Any size of a transformed camera is made from the transformed picture.
    let small = common::get(&hub.url("/api/cameras/turned/frame.jpeg?width=150")).await;
    assert_eq!(decode_jpeg_rgb(&small.body).0, 150);
    assert_eq!(decode_jpeg_rgb(&small.body).1, 300);

    // The demo camera (drawn, not decoded) turns too.
    let demo = common::get(&hub.url("/api/cameras/demo/frame.jpeg")).await;
    assert_eq!(decode_jpeg_rgb(&demo.body).0, 240);
    assert_eq!(decode_jpeg_rgb(&demo.body).1, 320);
    assert!(common::metric(&hub, "camhub_transform_seconds_total", "turned").await > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warp_keeps_its_output_when_the_camera_changes_resolution() {
    let rtsp = RtspServer::start(RtspServerOptions {
        switch_after: Duration::from_secs(3),
        ..RtspServerOptions::default()
    })
    .await;
    // The warp's corners are the whole 640x360 picture: the output shows the whole pattern,
    // stretched to 320x240. After the switch to 320x180 the corners must be scaled with it, or
    // three quarters of the output would be black.
    let hub = common::start(&format!(
        "[[camera]]\nid = \"warped\"\nurl = \"{url}\"\n\
         perspective = {{ corners = [[0, 0], [0, 360], [640, 360], [640, 0]], width = 320, height = 240 }}\n\n\
         [[camera]]\nid = \"plain\"\nurl = \"{url}\"\n",
        url = rtsp.url("/switch")
    ))
    .await;
    let mut warped = MjpegReader::connect(&hub.url("/api/cameras/warped/stream.mjpeg"))
        .await
        .unwrap();
    let mut plain = MjpegReader::connect(&hub.url("/api/cameras/plain/stream.mjpeg"))
        .await
        .unwrap();
    let check = |jpeg: &[u8]| {
        let (w, h, rgb) = decode_jpeg_rgb(jpeg);
        assert_eq!((w, h), (320, 240));
        for c in [RTSP_WHITE, RTSP_BLACK] {
            c.check(&rgb, w, h, COLOR_TOLERANCE).unwrap();
        }
    };
    check(
        &warped
            .next_frame_within(Duration::from_secs(15))
            .await
            .unwrap(),
    );
    // Wait for the untransformed camera on the same stream to show the new size.
    let mut switched = false;
    for _ in 0..200 {
        let f = plain
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
        "the stream never switched; log:\n{}",
        hub.log_tail(20)
    );
    // Frames of the new size reach the warped camera within a few frames: check a second's worth.
    for _ in 0..25 {
        check(
            &warped
                .next_frame_within(Duration::from_secs(10))
                .await
                .unwrap(),
        );
    }
    let cam = common::camera(&hub, "warped").await;
    assert_eq!(
        (cam["width"].as_u64(), cam["height"].as_u64()),
        (Some(320), Some(240)),
        "{cam}"
    );
}
