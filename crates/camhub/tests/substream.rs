//! `substream_url`: small JPEG variants are made from the camera's substream, so a grid decodes
//! small streams; the main stream is opened only for large variants.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use camhub_testkit::{decode_jpeg_rgb, MjpegReader, RtspServer, RtspServerOptions};
use common::{camera, get, metric, start};

#[tokio::test(flavor = "multi_thread")]
async fn small_variants_come_from_the_substream() {
    let main = RtspServer::start(RtspServerOptions::default().with_size(640, 360, 15)).await;
    let sub = RtspServer::start(RtspServerOptions::default().with_size(320, 180, 15)).await;
    let cfg = format!(
        "[[camera]]\nid = \"cam\"\nurl = \"{}\"\nsubstream_url = \"{}\"\n",
        main.url("/h264"),
        sub.url("/h264")
    );
    let hub = start(&cfg).await;
    let mut small = MjpegReader::connect(&hub.url("/api/cameras/cam/stream.mjpeg?width=160"))
        .await
        .unwrap();
    let f = small
        .next_frame_within(Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(decode_jpeg_rgb(&f).0, 160);
    let at_sub_size = get(&hub.url("/api/cameras/cam/frame.jpeg?width=320")).await;
    assert_eq!(decode_jpeg_rgb(&at_sub_size.body).0, 320);
    assert_eq!(sub.count("SETUP", "/h264"), 1);
    assert_eq!(
        main.count("SETUP", "/h264"),
        0,
        "the main stream is not opened for small variants"
    );
    let api = camera(&hub, "cam").await;
    assert_eq!(api["substream"]["state"], "streaming", "{api}");
    assert_eq!(api["substream"]["width"], 320, "{api}");
    assert_eq!(
        api["viewers"], 1,
        "substream viewers count as the camera's: {api}"
    );
    assert!(metric(&hub, "camhub_frames_in_total", "cam/sub").await > 0.0);

    // Larger than the substream: the main stream serves it.
    let big = get(&hub.url("/api/cameras/cam/frame.jpeg?width=640")).await;
    assert_eq!(big.status, 200, "{}", big.text());
    assert_eq!(decode_jpeg_rgb(&big.body).0, 640);
    assert_eq!(main.count("SETUP", "/h264"), 1);
    assert!(api["url"].as_str().unwrap().starts_with("rtsp://"));
}
