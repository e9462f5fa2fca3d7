//! The `ffmpeg:` source hands the packet tap Annex B with in-band parameter sets, whatever the
//! container: an MP4's length-prefixed H.264 / H.265 (avcC / hvcC) comes out of the [`Demuxer`] with
//! start codes, and every keyframe carries its parameter sets before its first slice, across loops
//! too; a decoder opened from [`Demuxer::params`] decodes it. An Annex B input passes byte for byte.
//!
//! Each clip is made by the `ffmpeg` CLI from its `testsrc2` pattern, two seconds of 320x240 at
//! 25 fps with a keyframe every second and no B-frames.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use camhub_codec::{Decoder, DemuxedPacket, Demuxer, StreamParams};
use camhub_media::annexb::{nal_units, Coding};

/// A clip the `ffmpeg` CLI made, deleted on drop.
struct Clip(PathBuf);

impl Drop for Clip {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Two seconds of the test pattern, encoded with `encode` (codec and muxer arguments) into `file`.
fn clip(file: &str, encode: &[&str]) -> Clip {
    let path = std::env::temp_dir().join(format!("camhub-annexb-{}-{file}", std::process::id()));
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "2",
        ])
        .args(encode)
        .arg(&path)
        .output()
        .expect("run ffmpeg (apt install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg could not make {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Clip(path)
}

fn h264_mp4() -> Clip {
    clip(
        "h264.mp4",
        &[
            "-c:v", "libx264", "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p",
        ],
    )
}

fn h265_mp4() -> Clip {
    clip(
        "h265.mp4",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error:keyint=25:min-keyint=25:bframes=0",
            "-tag:v",
            "hvc1",
            "-pix_fmt",
            "yuv420p",
        ],
    )
}

/// The clip's stream parameters and up to `max` packets.
fn read(clip: &Clip, loop_file: bool, max: usize) -> (StreamParams, Vec<DemuxedPacket>) {
    let input = clip.0.to_str().expect("temp paths are UTF-8");
    let stop = Arc::new(AtomicBool::new(false));
    let mut demuxer =
        Demuxer::open(input, None, &BTreeMap::new(), loop_file, stop).expect("open the clip");
    let params = demuxer.params().expect("params");
    let mut packets = Vec::new();
    while packets.len() < max {
        match demuxer.read().expect("read a packet") {
            Some(p) => packets.push(p),
            None => break,
        }
    }
    (params, packets)
}

fn starts_with_start_code(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
}

/// Every packet is Annex B; every keyframe has the coding's parameter sets (`wanted` NAL types)
/// before its first slice, and that slice is a random access point (`rap` NAL types).
fn assert_annex_b(coding: Coding, wanted: &[u8], rap: &[u8], packets: &[DemuxedPacket]) {
    assert!(!packets.is_empty(), "the clip has packets");
    assert!(packets[0].keyframe, "the clip starts with a keyframe");
    for (i, p) in packets.iter().enumerate() {
        assert!(
            starts_with_start_code(&p.data),
            "packet {i} starts with a start code, not {:02x?}",
            &p.data[..p.data.len().min(8)]
        );
        if !p.keyframe {
            continue;
        }
        let units: Vec<&[u8]> = nal_units(&p.data).collect();
        let first_slice = units
            .iter()
            .position(|u| coding.is_slice(u))
            .unwrap_or_else(|| panic!("keyframe {i} has a slice"));
        let before: Vec<u8> = units[..first_slice]
            .iter()
            .map(|u| coding.nal_type(u))
            .collect();
        for t in wanted {
            assert!(
                before.contains(t),
                "keyframe {i} has NAL type {t} before its first slice (has {before:?})"
            );
        }
        let slice_type = coding.nal_type(units[first_slice]);
        assert!(
            rap.contains(&slice_type),
            "keyframe {i}'s first slice is a random access point, not type {slice_type}"
        );
    }
}

/// A decoder opened from `params` decodes every packet, and into 320x240 pictures.
fn assert_decodes(params: &StreamParams, packets: &[DemuxedPacket]) {
    let mut decoder = Decoder::new(params, 1).expect("open a decoder from the demuxer's params");
    let mut pictures = 0;
    for (i, p) in packets.iter().enumerate() {
        let out = decoder
            .decode(&p.data, p.pts)
            .unwrap_or_else(|e| panic!("packet {i} decodes: {e}"));
        for pic in &out {
            assert_eq!((pic.width(), pic.height()), (320, 240));
        }
        pictures += out.len();
    }
    // Without B-frames a single-threaded decoder returns each picture with its packet; allow for
    // a frame of delay all the same.
    assert!(
        pictures + 1 >= packets.len(),
        "{pictures} pictures from {} packets",
        packets.len()
    );
}

#[test]
fn h264_mp4_comes_out_as_annex_b_with_sps_and_pps_on_every_keyframe() {
    let clip = h264_mp4();
    let (params, packets) = read(&clip, false, usize::MAX);
    assert_eq!(packets.len(), 50, "two seconds at 25 fps");
    assert_eq!(packets.iter().filter(|p| p.keyframe).count(), 2);
    assert_annex_b(Coding::H264, &[7, 8], &[5], &packets);
    assert_decodes(&params, &packets);
}

#[test]
fn h265_mp4_comes_out_as_annex_b_with_vps_sps_and_pps_on_every_keyframe() {
    let clip = h265_mp4();
    let (params, packets) = read(&clip, false, usize::MAX);
    assert_eq!(packets.len(), 50, "two seconds at 25 fps");
    assert!(packets.iter().filter(|p| p.keyframe).count() >= 2);
    assert_annex_b(
        Coding::H265,
        &[32, 33, 34],
        &[16, 17, 18, 19, 20, 21],
        &packets,
    );
    assert_decodes(&params, &packets);
}

#[test]
fn a_looped_mp4_keeps_its_parameter_sets_and_a_rising_clock_on_every_pass() {
    let clip = h264_mp4();
    // Three passes and a bit.
    let (params, packets) = read(&clip, true, 160);
    assert_eq!(packets.len(), 160, "a looped file never ends");
    assert_eq!(packets.iter().filter(|p| p.keyframe).count(), 7);
    assert_annex_b(Coding::H264, &[7, 8], &[5], &packets);
    for pair in packets.windows(2) {
        assert!(
            pair[1].dts_90k > pair[0].dts_90k,
            "decode times rise across loops: {} then {}",
            pair[0].dts_90k,
            pair[1].dts_90k
        );
        // One frame (3600 ticks at 25 fps) apart, the loop seam included.
        assert!((pair[1].dts_90k - pair[0].dts_90k - 3600).abs() <= 1);
    }
    assert_decodes(&params, &packets);
}

#[test]
fn an_annex_b_input_passes_byte_for_byte() {
    let clip = clip(
        "raw.h264",
        &["-c:v", "libx264", "-g", "25", "-bf", "0", "-f", "h264"],
    );
    let (params, packets) = read(&clip, false, usize::MAX);
    assert_eq!(packets.len(), 50, "two seconds at 25 fps");
    let file = std::fs::read(&clip.0).expect("read the clip");
    let demuxed: Vec<u8> = packets
        .iter()
        .flat_map(|p| p.data.iter().copied())
        .collect();
    assert!(
        demuxed == file,
        "the packets are the file's bytes, split ({} bytes from a {}-byte file)",
        demuxed.len(),
        file.len()
    );
    assert_annex_b(Coding::H264, &[7, 8], &[5], &packets);
    assert_decodes(&params, &packets);
}
