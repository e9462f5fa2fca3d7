//! `[[composite]]` cameras (issue 7) against the real binary: three real sources (two paths of the
//! test RTSP server, one rotated, one cut; and a one-client MJPEG camera, an ESP32-CAM stand-in)
//! stitched into one panorama, served as MJPEG to several viewers and decoded by the `ffmpeg` CLI
//! at the expected size with each input's known colours in its tile. Killing an input keeps the
//! panorama flowing with a "no signal" tile, which recovers when the input returns; with no
//! viewer, every input connection closes after its `idle_timeout`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use camhub_media::layout::{arrange, Layout, Tile};
use camhub_testkit::{
    KnownColor, MjpegReader, OneClientMjpegCamera, RtspServer, RtspServerOptions, COLOR_TOLERANCE,
    RTSP_BLACK, RTSP_WHITE,
};

/// One frame of `url` decoded by the ffmpeg CLI to RGB: (width, height, pixels).
fn ffmpeg_frame(url: &str) -> (u32, u32, Vec<u8>) {
    let probe = camhub_testkit::ffprobe_size(url).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-i",
            url,
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), (probe.0 * probe.1 * 3) as usize);
    (probe.0, probe.1, out.stdout)
}

/// `c` (a place in a whole input picture) as a place in the whole panorama, for an input shown in
/// `tile` after keeping columns `front..back` of a `w` wide picture.
fn in_tile(
    c: &KnownColor,
    tile: Tile,
    pano: (u32, u32),
    (front, back, w): (f64, f64, f64),
) -> KnownColor {
    let x_in = (c.x * w - front) / (back - front);
    KnownColor {
        x: (f64::from(tile.x) + x_in * f64::from(tile.width)) / f64::from(pano.0),
        y: (f64::from(tile.y) + c.y * f64::from(tile.height)) / f64::from(pano.1),
        ..*c
    }
}

/// Mean luma (0.299 R + 0.587 G + 0.114 B) of the panorama inside `tile`.
fn tile_luma(rgb: &[u8], width: u32, tile: Tile) -> f64 {
    let mut sum = 0.0;
    let mut n = 0.0;
    for y in tile.y + 4..tile.y + tile.height - 4 {
        for x in tile.x + 4..tile.x + tile.width - 4 {
            let i = ((y * width + x) * 3) as usize;
            sum += 0.299 * f64::from(rgb[i])
                + 0.587 * f64::from(rgb[i + 1])
                + 0.114 * f64::from(rgb[i + 2]);
            n += 1.0;
        }
    }
    sum / n
}

#[tokio::test(flavor = "multi_thread")]
async fn three_cameras_make_one_panorama_that_survives_a_lost_input() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let mut esp = OneClientMjpegCamera::start(480, 320, 10).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"a\"\nurl = \"{a}\"\nidle_timeout = \"3s\"\n\n\
         [[camera]]\nid = \"b\"\nurl = \"{b}\"\nrotate = 180\nidle_timeout = \"3s\"\n\n\
         [[camera]]\nid = \"esp\"\nurl = \"{esp}\"\nidle_timeout = \"3s\"\n\n\
         [[composite]]\nid = \"pano\"\nlayout = \"hstack\"\ninputs = [\"a\", \"b\", \"esp\"]\n\
         cuts = {{ a = [40, 640] }}\nheight = 240\nfps = 10\nstale_after = \"1500ms\"\nidle_timeout = \"2s\"\n",
        a = rtsp.url("/h264"),
        b = rtsp.url("/h265"),
        esp = esp.url(),
    ))
    .await;
    // The expected layout: a cut to 600x360, b 640x360, esp 480x320, all scaled to 240 high.
    let (pw, ph, placed) = arrange(
        Layout::HStack,
        &[(600, 360), (640, 360), (480, 320)],
        None,
        Some(240),
    );
    // (An array, so that each check's `async move` gets a copy.)
    let tiles: [Tile; 3] = [placed[0], placed[1], placed[2]];
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(
            MjpegReader::connect(&hub.url("/api/cameras/pano/stream.mjpeg"))
                .await
                .unwrap(),
        );
    }
    for v in &mut viewers {
        v.next_frame_within(Duration::from_secs(20)).await.unwrap();
    }
    // Let every input deliver (the composite waits at most stale_after for the first pictures).
    let url = hub.url("/api/cameras/pano/stream.mjpeg");
    let all_live = common::eventually(Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let (w, h, rgb) = tokio::task::spawn_blocking(move || ffmpeg_frame(&url))
                .await
                .unwrap();
            assert_eq!((w, h), (pw, ph), "the panorama's size");
            // a: its cut keeps columns 40..640; b is upside down; esp is bright, not "no signal".
            let a_ok = [RTSP_WHITE, RTSP_BLACK].iter().all(|c| {
                in_tile(c, tiles[0], (w, h), (40.0, 640.0, 640.0))
                    .check(&rgb, w, h, COLOR_TOLERANCE)
                    .is_ok()
            });
            let b_ok = [RTSP_WHITE, RTSP_BLACK].iter().all(|c| {
                let turned = KnownColor {
                    x: 1.0 - c.x,
                    y: 1.0 - c.y,
                    ..*c
                };
                in_tile(&turned, tiles[1], (w, h), (0.0, 640.0, 640.0))
                    .check(&rgb, w, h, COLOR_TOLERANCE)
                    .is_ok()
            });
            a_ok && b_ok && tile_luma(&rgb, w, tiles[2]) > 60.0
        }
    })
    .await;
    assert!(
        all_live,
        "the panorama never showed all three inputs; log:\n{}",
        hub.log_tail(30)
    );
    let live_luma = {
        let url = url.clone();
        let (w, _, rgb) = tokio::task::spawn_blocking(move || ffmpeg_frame(&url))
            .await
            .unwrap();
        tile_luma(&rgb, w, tiles[2])
    };
    // One connection per input, however many viewers.
    assert_eq!(esp.connections(), 1);
    assert_eq!(rtsp.count("PLAY", "/h264"), 1, "{:?}", rtsp.events());

    // The ESP32-CAM dies: the panorama keeps coming, its tile says so.
    esp.stop();
    let dimmed = common::eventually(Duration::from_secs(15), || {
        let url = url.clone();
        async move {
            let (w, _, rgb) = tokio::task::spawn_blocking(move || ffmpeg_frame(&url))
                .await
                .unwrap();
            tile_luma(&rgb, w, tiles[2]) < live_luma * 0.6
        }
    })
    .await;
    assert!(
        dimmed,
        "the lost input's tile never showed no signal; log:\n{}",
        hub.log_tail(30)
    );
    for v in &mut viewers {
        let before = v.frames();
        for _ in 0..10 {
            v.next_frame_within(Duration::from_secs(5)).await.unwrap();
        }
        assert!(v.frames() >= before + 10);
    }
    // The other tiles are untouched.
    {
        let url = url.clone();
        let (w, h, rgb) = tokio::task::spawn_blocking(move || ffmpeg_frame(&url))
            .await
            .unwrap();
        in_tile(&RTSP_WHITE, tiles[0], (w, h), (40.0, 640.0, 640.0))
            .check(&rgb, w, h, COLOR_TOLERANCE)
            .unwrap();
    }
    // It comes back: the tile recovers by itself.
    esp.start_again().await;
    let recovered = common::eventually(Duration::from_secs(40), || {
        let url = url.clone();
        async move {
            let (w, _, rgb) = tokio::task::spawn_blocking(move || ffmpeg_frame(&url))
                .await
                .unwrap();
            tile_luma(&rgb, w, tiles[2]) > live_luma * 0.8
        }
    })
    .await;
    assert!(
        recovered,
        "the tile never recovered; log:\n{}",
        hub.log_tail(30)
    );

    // Nobody watches: the composite stops, and each input closes after its idle_timeout.
    drop(viewers);
    let idle = common::eventually(Duration::from_secs(40), || async {
        let mut all = true;
        for id in ["a", "b", "esp", "pano"] {
            all &= common::camera(&hub, id).await["state"] == "idle";
        }
        all
    })
    .await;
    assert!(idle, "inputs stayed connected; log:\n{}", hub.log_tail(30));
    assert_eq!(rtsp.count("TEARDOWN", "/h264"), 1, "{:?}", rtsp.events());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_composite_is_listed_like_a_camera_and_checked_like_one() {
    let hub = common::start(
        "[[camera]]\nid = \"left\"\nurl = \"demo:?width=320&height=240&fps=10\"\n\n\
         [[camera]]\nid = \"right\"\nurl = \"demo:?width=320&height=240&fps=10\"\n\n\
         [[composite]]\nid = \"both\"\nname = \"Both\"\nlayout = \"vstack\"\ninputs = [\"left\", \"right\"]\n\n\
         [[composite]]\nid = \"h264\"\nlayout = \"hstack\"\ninputs = [\"left\", \"right\"]\ntranscode = \"h264\"\n",
    )
    .await;
    let cam = common::camera(&hub, "both").await;
    assert_eq!(cam["name"], "Both");
    let shot = common::get(&hub.url("/api/cameras/both/frame.jpeg?width=160")).await;
    assert_eq!(shot.status, 200);
    assert_eq!(camhub_testkit::jpeg_size(&shot.body), Some((160, 240)));
    let cam = common::camera(&hub, "both").await;
    assert_eq!(
        (
            cam["width"].as_u64(),
            cam["height"].as_u64(),
            cam["codec"].as_str()
        ),
        (Some(320), Some(480), Some("composite")),
        "{cam}"
    );
    // Players have nothing to carry for it, and say why; with transcode they get H.264.
    let mp4 = common::get(&hub.url("/api/cameras/both/stream.mp4")).await;
    assert_eq!(mp4.status, 415);
    assert!(mp4.text().contains("is a composite"), "{}", mp4.text());
    let url = hub.url("/api/cameras/h264/stream.mp4");
    let size = tokio::task::spawn_blocking(move || camhub_testkit::ffprobe_size(&url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(size, (640, 240));
    assert_eq!(
        common::camera(&hub, "h264").await["player_stream"],
        "transcoded h264"
    );
}
