//! Decode → scale → JPEG gives the colours FFmpeg gives, for every colour matrix a camera signals.
//!
//! Each case is a clip of 100 % colour bars that the `ffmpeg` CLI encodes (H.264 signalling BT.709,
//! BT.601 or nothing, H.265 signalling BT.709, MJPEG). camhub's path — [`Decoder`], then the
//! [`JpegEncoder`] straight from the picture when it is [`Picture::is_jpeg_ready`] or through the
//! [`Scaler`] otherwise, as the hub does — must put every bar within a few levels of the `ffmpeg` CLI's
//! own RGB decode of the same first frame, at the native size and scaled down. A BT.709 picture written
//! into a JPEG unconverted misses red by ~20 levels; an unsignalled one must read as BT.601, as FFmpeg
//! reads it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use camhub_codec::picture::ColourMatrix;
use camhub_codec::{Decoder, Demuxer, JpegEncoder, Picture, Scaler};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
/// The bars, left to right, each `WIDTH / 8` wide; lavfi colour names.
const BARS: [&str; 8] = [
    "white", "yellow", "cyan", "lime", "magenta", "red", "blue", "black",
];
/// Per channel, camhub against FFmpeg: JPEG at quality 80 and 8-bit rounding in swscale move flat
/// colours by a level or two (2 at most, measured); a missing matrix conversion moves red by ~20.
const TOLERANCE: u8 = 4;

/// A clip the `ffmpeg` CLI made from the bars, deleted on drop.
struct Clip(PathBuf);

impl Drop for Clip {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Limited-range 4:2:0 with the BT.709 matrix, as HD cameras send.
const TO_BT709: &str = "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p";
/// Limited-range 4:2:0 with the BT.601 matrix, as SD cameras send.
const TO_BT601: &str = "scale=out_color_matrix=bt601:out_range=tv,format=yuv420p";
/// Full-range 4:2:0 with the BT.601 matrix: JPEG.
const TO_JPEG: &str = "scale=out_color_matrix=bt601:out_range=pc,format=yuvj420p";

/// Encodes one second of bars, converted from RGB by `convert` (one of the `TO_*` filters), with
/// `encode` (codec and colour tagging arguments) into a Matroska file.
fn clip(name: &str, convert: &str, encode: &[&str]) -> Clip {
    let path =
        std::env::temp_dir().join(format!("camhub-colour-{}-{name}.mkv", std::process::id()));
    let bar_w = WIDTH / 8;
    let mut graph = String::new();
    for (i, colour) in BARS.iter().enumerate() {
        graph += &format!("color=c={colour}:s={bar_w}x{HEIGHT}:r=25:d=1[b{i}];");
    }
    for i in 0..BARS.len() {
        graph += &format!("[b{i}]");
    }
    graph += &format!("hstack=inputs={},{convert}[v]", BARS.len());
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args(["-filter_complex", &graph, "-map", "[v]"])
        .args(encode)
        .arg(&path)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg could not make {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Clip(path)
}

/// The `ffmpeg` CLI's RGB24 decode of the clip's first frame at its native size: the reference.
fn ffmpeg_rgb(path: &Path) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), (WIDTH * HEIGHT * 3) as usize);
    out.stdout
}

/// camhub's first picture of the clip.
fn first_picture(path: &Path) -> Picture {
    let input = path.to_str().expect("temp paths are UTF-8");
    let stop = Arc::new(AtomicBool::new(false));
    let mut demuxer =
        Demuxer::open(input, None, &BTreeMap::new(), false, stop).expect("open the clip");
    let mut decoder = Decoder::new(&demuxer.params().expect("params"), 1).expect("decoder");
    while let Some(packet) = demuxer.read().expect("read") {
        if let Some(pic) = decoder
            .decode(&packet.data, packet.pts)
            .expect("decode")
            .into_iter()
            .next()
        {
            return pic;
        }
    }
    panic!("no picture in {input}");
}

/// The picture as camhub's JPEG at `width` x `height`, decoded back to RGB24 by libjpeg-turbo.
fn camhub_jpeg_rgb(pic: &Picture, width: u32, height: u32) -> Vec<u8> {
    let mut encoder = JpegEncoder::new().expect("encoder");
    let jpeg = if (width, height) == (pic.width(), pic.height()) && pic.is_jpeg_ready() {
        encoder.encode(pic, 80).expect("encode")
    } else {
        let scaled = Scaler::new().scale(pic, width, height).expect("scale");
        assert!(scaled.is_jpeg_ready(), "the scaler's output is JPEG-ready");
        assert_eq!(scaled.matrix(), ColourMatrix::Bt601);
        encoder.encode(&scaled, 80).expect("encode")
    };
    let image = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::RGB).expect("decode JPEG");
    assert_eq!(
        (image.width, image.height),
        (width as usize, height as usize)
    );
    assert_eq!(image.pitch, width as usize * 3);
    image.pixels
}

/// Mean colour of a 5×5 block around the middle of bar `bar` (at mid-height) of an RGB24 picture.
fn bar_colour(rgb: &[u8], width: u32, height: u32, bar: usize) -> [u8; 3] {
    let cx = (width as usize * (2 * bar + 1)) / (2 * BARS.len());
    let cy = height as usize / 2;
    let mut sum = [0u32; 3];
    for y in cy - 2..=cy + 2 {
        for x in cx - 2..=cx + 2 {
            let i = (y * width as usize + x) * 3;
            for c in 0..3 {
                sum[c] += u32::from(rgb[i + c]);
            }
        }
    }
    sum.map(|s| (s / 25) as u8)
}

/// Checks every bar at native size and at 320×180 against FFmpeg's decode; returns the failures.
fn compare(name: &str, clip: &Clip, expected_matrix: ColourMatrix) -> Vec<String> {
    let reference = ffmpeg_rgb(&clip.0);
    let pic = first_picture(&clip.0);
    assert_eq!((pic.width(), pic.height()), (WIDTH, HEIGHT), "{name}");
    assert_eq!(pic.matrix(), expected_matrix, "{name}");
    let mut failures = Vec::new();
    for (w, h) in [(WIDTH, HEIGHT), (320, 180)] {
        let ours = camhub_jpeg_rgb(&pic, w, h);
        for (bar, colour) in BARS.iter().enumerate() {
            let want = bar_colour(&reference, WIDTH, HEIGHT, bar);
            let got = bar_colour(&ours, w, h, bar);
            if want.iter().zip(got).any(|(a, b)| a.abs_diff(b) > TOLERANCE) {
                failures.push(format!(
                    "{name} {w}x{h} {colour}: FFmpeg {want:?}, camhub {got:?}"
                ));
            }
        }
    }
    failures
}

#[test]
fn h264_signalling_bt709_is_converted_to_jpegs_bt601() {
    let clip = clip(
        "h264-bt709",
        TO_BT709,
        &[
            "-c:v",
            "libx264",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],
    );
    let failures = compare("h264 bt709", &clip, ColourMatrix::Bt709);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn h264_signalling_bt601_keeps_its_matrix() {
    let clip = clip(
        "h264-bt601",
        TO_BT601,
        &[
            "-c:v",
            "libx264",
            "-colorspace",
            "smpte170m",
            "-color_primaries",
            "smpte170m",
            "-color_trc",
            "smpte170m",
        ],
    );
    let failures = compare("h264 bt601", &clip, ColourMatrix::Bt601);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// FFmpeg 5.1 reads a stream without a colour description as BT.601, whatever its size (HD too), so
/// camhub does the same: its pictures then match what users compare them with.
#[test]
fn unsignalled_hd_h264_reads_as_bt601_like_ffmpeg() {
    let clip = clip("h264-unsignalled", TO_BT709, &["-c:v", "libx264"]);
    let failures = compare("h264 unsignalled", &clip, ColourMatrix::Bt601);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn h265_signalling_bt709_is_converted_to_jpegs_bt601() {
    let clip = clip(
        "h265-bt709",
        TO_BT709,
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],
    );
    let failures = compare("h265 bt709", &clip, ColourMatrix::Bt709);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// 4:2:2 pictures take the scaler's swscale path even at native size (only 8-bit 4:2:0 is converted
/// directly), so this covers swscale repacking plus the matrix conversion after it.
#[test]
fn h264_422_signalling_bt709_is_converted_to_jpegs_bt601() {
    let clip = clip(
        "h264-422-bt709",
        "scale=out_color_matrix=bt709:out_range=tv,format=yuv422p",
        &[
            "-c:v",
            "libx264",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],
    );
    let failures = compare("h264 4:2:2 bt709", &clip, ColourMatrix::Bt709);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Many cameras' MJPEG is 4:2:2: full range and BT.601 already, it only needs repacking to 4:2:0.
#[test]
fn mjpeg_422_keeps_its_colours() {
    let clip = clip(
        "mjpeg-422",
        "scale=out_color_matrix=bt601:out_range=pc,format=yuvj422p",
        &["-c:v", "mjpeg", "-q:v", "2"],
    );
    let failures = compare("mjpeg 4:2:2", &clip, ColourMatrix::Bt601);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn mjpeg_is_bt601_and_jpeg_ready() {
    let clip = clip("mjpeg", TO_JPEG, &["-c:v", "mjpeg", "-q:v", "2"]);
    let failures = compare("mjpeg", &clip, ColourMatrix::Bt601);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        first_picture(&clip.0).is_jpeg_ready(),
        "a full-range BT.601 JPEG picture is encoded without a scaling pass"
    );
}
