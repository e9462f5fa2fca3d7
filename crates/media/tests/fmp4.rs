//! The fMP4 muxer against the reference reader: streams encoded by the `ffmpeg` CLI (x264, x265) are
//! split into access units, muxed into an init segment plus fragments, and the file must read in
//! `ffprobe` with the right codec, size, frame count and rate, decode in `ffmpeg` without a single
//! complaint, and decode to the very same pictures (frame MD5s) as the elementary stream it came
//! from — in presentation order, so B-frames' composition offsets are checked too.

use std::path::{Path, PathBuf};
use std::process::Command;

use camhub_media::annexb::{nal_units, Coding};
use camhub_media::fmp4::{init_segment, Fragmenter, Sample, Track};

/// A directory under the system temp dir for one test, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("camhub-fmp4-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool, fails the test with its stderr if it fails; returns (stdout, stderr).
fn run(tool: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} could not run (is FFmpeg installed?): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{tool} {args:?} failed:\n{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// Encodes `frames` frames of `testsrc2` at 25 fps with `codec_args`, into `file` (the muxer
/// follows from the extension or a `-f` in the args).
fn encode(file: &Path, size: &str, frames: u32, codec_args: &[&str]) {
    let source = format!("testsrc2=size={size}:rate=25");
    let frames = frames.to_string();
    let mut args = vec!["-v", "error", "-y", "-f", "lavfi", "-i", &source];
    args.extend(["-frames:v", &frames, "-pix_fmt", "yuv420p"]);
    args.extend(codec_args);
    args.push(path_str(file));
    run("ffmpeg", &args);
}

/// Splits an Annex B elementary stream into access units (each rebuilt with 4-byte start codes) by
/// the first-slice rule of H.264 7.4.1.2.3 / H.265 7.4.2.4.4: an AU ends before a delimiter,
/// parameter set or prefix SEI, or a slice that starts a new picture, once it holds a slice.
fn access_units(codec: Coding, stream: &[u8]) -> Vec<Vec<u8>> {
    let mut units = Vec::new();
    let mut current = Vec::new();
    let mut has_slice = false;
    for nal in nal_units(stream) {
        let ty = codec.nal_type(nal);
        let (is_slice, starts_picture) = match codec {
            Coding::H264 => (
                matches!(ty, 1..=5),
                // first_mb_in_slice == 0 is the one-bit code "1".
                matches!(ty, 6..=9) || (matches!(ty, 1..=5) && nal[1] & 0x80 != 0),
            ),
            Coding::H265 => (
                ty < 32,
                // first_slice_segment_in_pic_flag.
                matches!(ty, 32..=35 | 39) || (ty < 32 && nal[2] & 0x80 != 0),
            ),
        };
        if starts_picture && has_slice {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        has_slice |= is_slice;
    }
    if has_slice {
        units.push(current);
    }
    units
}

/// The parameter sets among the NAL units of the first access unit.
fn parameter_sets(codec: Coding, au: &[u8]) -> Track {
    let sets: Vec<&[u8]> = nal_units(au)
        .filter(|n| codec.is_parameter_set(n))
        .collect();
    Track::from_parameter_sets(codec, &sets).expect("the encoder's parameter sets")
}

fn is_keyframe(codec: Coding, au: &[u8]) -> bool {
    nal_units(au).any(|n| match codec {
        Coding::H264 => codec.nal_type(n) == 5,
        Coding::H265 => (16..=21).contains(&codec.nal_type(n)),
    })
}

/// Timestamps of one access unit, 90 kHz.
#[derive(Debug, Clone, Copy)]
struct Timing {
    dts: i64,
    pts: i64,
    duration: u32,
}

/// Muxes the access units into init segment + fragments of `per_fragment` samples, into `file`.
fn mux(file: &Path, codec: Coding, units: &[Vec<u8>], timing: &[Timing], per_fragment: usize) {
    assert_eq!(units.len(), timing.len());
    let track = parameter_sets(codec, &units[0]);
    let mut out = init_segment(&track);
    let mut fragmenter = Fragmenter::new();
    let samples: Vec<Sample<'_>> = units
        .iter()
        .zip(timing)
        .map(|(au, t)| Sample {
            data: au,
            dts: t.dts,
            pts: t.pts,
            duration: t.duration,
            keyframe: is_keyframe(codec, au),
        })
        .collect();
    assert!(samples[0].keyframe, "the stream starts with a keyframe");
    for group in samples.chunks(per_fragment) {
        out.extend_from_slice(&fragmenter.fragment(&track, group));
    }
    std::fs::write(file, out).expect("write mp4");
}

/// Every 40 ms, no reordering.
fn constant_rate(frames: usize) -> Vec<Timing> {
    (0..frames as i64)
        .map(|i| Timing {
            dts: i * 3600,
            pts: i * 3600,
            duration: 3600,
        })
        .collect()
}

/// `key=value` lines of `ffprobe -of default=nw=1` for the first video stream.
fn probe_stream(file: &Path) -> std::collections::HashMap<String, String> {
    let (out, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_streams",
            "-of",
            "default=nw=1",
            path_str(file),
        ],
    );
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// MD5 of each decoded picture, in output (presentation) order.
fn frame_md5s(file: &Path, input_format: Option<&str>) -> Vec<String> {
    let mut args = vec!["-v", "error"];
    if let Some(f) = input_format {
        args.extend(["-f", f]);
    }
    args.extend(["-i", path_str(file), "-an", "-f", "framemd5", "-"]);
    let (out, _) = run("ffmpeg", &args);
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .collect()
}

/// What every muxed file must satisfy.
fn check_file(mp4: &Path, codec: &str, size: (u32, u32), frames: usize, source_md5s: &[String]) {
    let s = probe_stream(mp4);
    let get = |k: &str| s.get(k).map(String::as_str).unwrap_or("");
    assert_eq!(get("codec_name"), codec, "{s:?}");
    assert_eq!(get("width"), size.0.to_string(), "{s:?}");
    assert_eq!(get("height"), size.1.to_string(), "{s:?}");
    assert_eq!(get("nb_read_frames"), frames.to_string(), "{s:?}");
    assert_eq!(get("r_frame_rate"), "25/1", "{s:?}");
    assert_eq!(get("avg_frame_rate"), "25/1", "{s:?}");
    let (_, stderr) = run(
        "ffmpeg",
        &["-v", "error", "-i", path_str(mp4), "-f", "null", "-"],
    );
    assert_eq!(stderr, "", "ffmpeg complained while decoding");
    let md5s = frame_md5s(mp4, None);
    assert_eq!(md5s.len(), frames);
    assert!(
        md5s == source_md5s,
        "decoded pictures differ from the source's"
    );
}

/// A raw elementary stream encoded without B-frames, muxed with constant 40 ms timestamps.
fn raw_case(
    name: &str,
    codec: Coding,
    size: &str,
    frames: u32,
    args: &[&str],
    per_fragment: usize,
) {
    let dir = Scratch::new(name);
    let (ext, format, probe_name) = match codec {
        Coding::H264 => ("h264", "h264", "h264"),
        Coding::H265 => ("hevc", "hevc", "hevc"),
    };
    let raw = dir.path(&format!("in.{ext}"));
    let mut codec_args = args.to_vec();
    codec_args.extend(["-f", format]);
    encode(&raw, size, frames, &codec_args);
    let stream = std::fs::read(&raw).expect("read stream");
    let units = access_units(codec, &stream);
    assert_eq!(units.len(), frames as usize, "access units found");
    let mp4 = dir.path("out.mp4");
    mux(
        &mp4,
        codec,
        &units,
        &constant_rate(units.len()),
        per_fragment,
    );
    let (w, h) = size.split_once('x').expect("WxH");
    let size = (w.parse().expect("width"), h.parse().expect("height"));
    let source = frame_md5s(&raw, Some(format));
    check_file(&mp4, probe_name, size, frames as usize, &source);
}

#[test]
fn h264_640x360_one_frame_per_fragment() {
    raw_case(
        "h264-360",
        Coding::H264,
        "640x360",
        50,
        &[
            "-c:v",
            "libx264",
            "-bf",
            "0",
            "-g",
            "25",
            "-x264-params",
            "aud=1",
        ],
        1,
    );
}

#[test]
fn h264_1920x1080_is_cropped_from_1088() {
    raw_case(
        "h264-1080",
        Coding::H264,
        "1920x1080",
        25,
        &[
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "25",
        ],
        1,
    );
}

#[test]
fn h264_five_frames_per_fragment() {
    // 53 frames: the last fragment is a short one. No AUDs: access units split by first slice.
    raw_case(
        "h264-5",
        Coding::H264,
        "640x360",
        53,
        &["-c:v", "libx264", "-bf", "0", "-g", "25"],
        5,
    );
}

#[test]
fn h265_640x360_one_frame_per_fragment() {
    raw_case(
        "h265-360",
        Coding::H265,
        "640x360",
        50,
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error:aud=1:keyint=25:bframes=0",
        ],
        1,
    );
}

#[test]
fn h265_1920x1080_five_frames_per_fragment() {
    raw_case(
        "h265-1080",
        Coding::H265,
        "1920x1080",
        15,
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error:keyint=25:bframes=0",
        ],
        5,
    );
}

/// B-frames: decode order differs from presentation order, so the timestamps come from an MP4 that
/// ffmpeg wrote (90 kHz track), its packets extracted to Annex B in the same (decode) order.
fn reordered_case(name: &str, codec: Coding, args: &[&str], frames: u32, per_fragment: usize) {
    let dir = Scratch::new(name);
    let (bsf, format, probe_name) = match codec {
        Coding::H264 => ("h264_mp4toannexb", "h264", "h264"),
        Coding::H265 => ("hevc_mp4toannexb", "hevc", "hevc"),
    };
    let reference = dir.path("ref.mp4");
    let mut codec_args = args.to_vec();
    codec_args.extend(["-video_track_timescale", "90000"]);
    encode(&reference, "640x360", frames, &codec_args);
    let raw = dir.path("in.raw");
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path_str(&reference),
            "-c:v",
            "copy",
            "-bsf:v",
            bsf,
            "-f",
            format,
            path_str(&raw),
        ],
    );
    let (packets, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts,duration",
            "-of",
            "compact=p=0",
            path_str(&reference),
        ],
    );
    let mut timing: Vec<Timing> = packets
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let field = |key: &str| -> i64 {
                line.split('|')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{key} in {line}"))
            };
            Timing {
                dts: field("dts"),
                pts: field("pts"),
                duration: field("duration") as u32,
            }
        })
        .collect();
    assert!(
        timing.iter().any(|t| t.pts != t.dts),
        "the encoder reordered frames"
    );
    // The caller's job: rebase so the first decode time is 0.
    let base = timing[0].dts;
    for t in &mut timing {
        t.dts -= base;
        t.pts -= base;
    }

    let stream = std::fs::read(&raw).expect("read stream");
    let units = access_units(codec, &stream);
    assert_eq!(units.len(), timing.len(), "one access unit per packet");
    let mp4 = dir.path("out.mp4");
    mux(&mp4, codec, &units, &timing, per_fragment);
    let source = frame_md5s(&reference, None);
    check_file(&mp4, probe_name, (640, 360), frames as usize, &source);

    // Pictures come out at the presentation times given, in order.
    let (out, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts",
            "-of",
            "csv=p=0",
            path_str(&mp4),
        ],
    );
    let shown: Vec<i64> = out
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    let mut expected: Vec<i64> = timing.iter().map(|t| t.pts).collect();
    expected.sort_unstable();
    assert_eq!(shown, expected);
}

#[test]
fn h264_b_frames_composition_offsets() {
    reordered_case(
        "h264-bframes",
        Coding::H264,
        &["-c:v", "libx264", "-bf", "2", "-g", "25"],
        50,
        5,
    );
}

#[test]
fn h265_b_frames_composition_offsets() {
    reordered_case(
        "h265-bframes",
        Coding::H265,
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error:keyint=25:bframes=3",
        ],
        40,
        1,
    );
}
