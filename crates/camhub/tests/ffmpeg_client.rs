//! The `ffmpeg` CLI as a client of camhub's MJPEG stream, exactly as docs/api.md ("ffplay / ffmpeg")
//! shows it: `ffmpeg -f mpjpeg -i http://…/stream.mjpeg …`. camhub's multipart framing must be one that
//! FFmpeg's own `mpjpeg` demuxer reads, part by part, with no byte of one JPEG leaking into the next.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;
use std::time::Duration;

use camhub_testkit::{decode_jpeg_rgb, jpeg_size, KnownColor, COLOR_TOLERANCE};
use common::start;

const DEMO: &str = "[[camera]]\nid = \"demo\"\nurl = \"demo:?width=640&height=360&fps=25\"\n";
/// Frames each ffmpeg run reads.
const FRAMES: usize = 10;
/// A hanging ffmpeg is a failure, not a stuck test.
const FFMPEG_TIMEOUT: Duration = Duration::from_secs(60);

/// The demo pattern's bars (`BAR_RGB` in crates/media/src/draw.rs) at their centres, a third of the
/// way down the picture.
fn demo_bars() -> Vec<KnownColor> {
    const BARS: [(&str, (u8, u8, u8)); 8] = [
        ("white bar", (255, 255, 255)),
        ("yellow bar", (255, 255, 0)),
        ("cyan bar", (0, 255, 255)),
        ("green bar", (0, 255, 0)),
        ("magenta bar", (255, 0, 255)),
        ("red bar", (255, 0, 0)),
        ("blue bar", (0, 0, 255)),
        ("black bar", (0, 0, 0)),
    ];
    (0..8)
        .map(|i| KnownColor {
            name: BARS[i].0,
            x: (i as f64 + 0.5) / 8.0,
            y: 1.0 / 3.0,
            rgb: BARS[i].1,
        })
        .collect()
}

/// Runs `ffmpeg` with `args` (after `-hide_banner -nostdin`) and returns its output; panics with
/// stderr when it does not finish within [`FFMPEG_TIMEOUT`].
async fn ffmpeg(args: &[&str]) -> Output {
    let child = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "info"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    tokio::time::timeout(FFMPEG_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("ffmpeg {args:?} did not finish within {FFMPEG_TIMEOUT:?}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ffmpeg_cli_reads_the_mjpeg_stream() {
    let hub = start(DEMO).await;
    let url = hub.url("/api/cameras/demo/stream.mjpeg?width=320");

    // Decoded by FFmpeg: every part is a JPEG its decoder accepts.
    let decoded = ffmpeg(&[
        "-f",
        "mpjpeg",
        "-i",
        &url,
        "-frames:v",
        &FRAMES.to_string(),
        "-f",
        "null",
        "-",
    ])
    .await;
    let log = String::from_utf8_lossy(&decoded.stderr).into_owned();
    assert!(
        decoded.status.success(),
        "ffmpeg -f mpjpeg could not read {url} ({}):\n{log}\ncamhub:\n{}",
        decoded.status,
        hub.log_tail(20)
    );
    assert!(
        log.contains(&format!("frame={FRAMES:>5}")),
        "ffmpeg did not decode {FRAMES} frames:\n{log}"
    );
    assert!(log.contains("320x180"), "not the asked size:\n{log}");

    // Copied part by part into files (docs/api.md's time-lapse recipe): each file is exactly one
    // whole JPEG of the camera's picture, and the picture moves between them.
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("part-%03d.jpg");
    let copied = ffmpeg(&[
        "-f",
        "mpjpeg",
        "-i",
        &url,
        "-frames:v",
        &FRAMES.to_string(),
        "-c",
        "copy",
        "-f",
        "image2",
        pattern.to_str().unwrap(),
    ])
    .await;
    assert!(
        copied.status.success(),
        "ffmpeg -c copy failed ({}):\n{}",
        copied.status,
        String::from_utf8_lossy(&copied.stderr)
    );
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), FRAMES, "{files:?}");
    let mut parts = Vec::new();
    for file in &files {
        let jpeg = std::fs::read(file).unwrap();
        let name = file.display();
        assert_eq!(
            jpeg.get(..2),
            Some(&[0xFF, 0xD8][..]),
            "{name}: no SOI first"
        );
        assert_eq!(
            jpeg.get(jpeg.len().saturating_sub(2)..),
            Some(&[0xFF, 0xD9][..]),
            "{name}: does not end at its EOI (multipart framing leaked into the part)"
        );
        assert_eq!(jpeg_size(&jpeg), Some((320, 180)), "{name}");
        let (w, h, rgb) = decode_jpeg_rgb(&jpeg);
        for bar in demo_bars() {
            if let Err(e) = bar.check(&rgb, w, h, COLOR_TOLERANCE) {
                panic!("{name}: {e}");
            }
        }
        parts.push(jpeg);
    }
    parts.dedup();
    assert!(parts.len() > 1, "ffmpeg read the same JPEG {FRAMES} times");
}
