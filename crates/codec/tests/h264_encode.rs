//! The H.264 encoder against real libx264 and the FFmpeg CLI: what a browser consumer needs (one
//! packet per picture, SPS and PPS in front of every IDR, rising timestamps), a stream `ffprobe` and
//! `ffmpeg` read without complaint and that signals limited-range BT.601, pictures that come back
//! close to what went in — from the full-range 4:2:0 the demo draws and the full-range 4:2:2 that
//! MJPEG cameras decode to — and what it costs per frame.

use std::path::PathBuf;
use std::process::Command;

use camhub_codec::{
    thread_cpu_time, Codec, Decoder, EncodedPacket, H264Encoder, H264Settings, JpegDecoder,
    Picture, StreamParams,
};
use camhub_media::annexb::{nal_units, Coding};

/// A file in the temp directory, deleted on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("camhub-h264-{}-{name}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A full-range picture of diagonal luma stripes and chroma ramps that move by `frame`: enough
/// detail and motion for real P-frames.
fn moving_gradient(width: u32, height: u32, frame: usize) -> Picture {
    let mut pic = Picture::new_yuv420_full(width, height).expect("picture");
    let [(y, ys, yw, yh), (u, us, cw, ch), (v, vs, _, _)] = pic.planes_mut();
    for row in 0..yh {
        for col in 0..yw {
            y[row * ys + col] = ((col + row / 2 + frame * 4) % 256) as u8;
        }
    }
    for row in 0..ch {
        for col in 0..cw {
            u[row * us + col] = (64 + (col + frame) % 128) as u8;
            v[row * vs + col] = (64 + (row * 2 + frame) % 128) as u8;
        }
    }
    pic
}

/// Full range to limited range, as the encoder's input conversion does it.
fn to_limited_luma(y: u8) -> f64 {
    16.0 + f64::from(y) * 219.0 / 255.0
}

fn to_limited_chroma(c: u8) -> f64 {
    128.0 + (f64::from(c) - 128.0) * 224.0 / 255.0
}

/// The H.264 NAL unit types of a packet, in order.
fn nal_types(packet: &EncodedPacket) -> Vec<u8> {
    nal_units(&packet.data)
        .map(|nal| Coding::H264.nal_type(nal))
        .collect()
}

/// Encodes `pictures` at 40 ms (3600 ticks) intervals, checking one packet per picture.
fn encode_all(encoder: &mut H264Encoder, pictures: &[Picture]) -> Vec<EncodedPacket> {
    let mut packets = Vec::new();
    for (i, pic) in pictures.iter().enumerate() {
        let out = encoder.encode(pic, i as i64 * 3600).expect("encode");
        assert_eq!(out.len(), 1, "picture {i} gave {} packets", out.len());
        packets.extend(out);
    }
    packets
}

/// Asserts that every keyframe starts with SPS and PPS before its IDR slice, and that every IDR
/// slice is in a packet marked as a keyframe.
fn assert_keyframes_carry_parameter_sets(packets: &[EncodedPacket]) {
    for (i, p) in packets.iter().enumerate() {
        let types = nal_types(p);
        let idr = types.iter().position(|&t| t == 5);
        assert_eq!(p.keyframe, idr.is_some(), "packet {i}: NAL types {types:?}");
        if let Some(idr) = idr {
            let sps = types.iter().position(|&t| t == 7);
            let pps = types.iter().position(|&t| t == 8);
            assert!(
                matches!((sps, pps), (Some(s), Some(q)) if s < q && q < idr),
                "keyframe {i} lacks SPS, PPS before its IDR: {types:?}"
            );
        }
    }
}

fn write_h264(name: &str, packets: &[EncodedPacket]) -> TempFile {
    let file = TempFile::new(name);
    let bytes: Vec<u8> = packets
        .iter()
        .flat_map(|p| p.data.iter().copied())
        .collect();
    std::fs::write(&file.0, bytes).expect("write .h264");
    file
}

/// Decodes packets with camhub's own decoder until the first picture comes out.
fn decode_first(packets: &[EncodedPacket]) -> Picture {
    let params = StreamParams::Codec {
        codec: Codec::H264,
        extradata: None,
    };
    let mut decoder = Decoder::new(&params, 1).expect("decoder");
    for p in packets {
        if let Some(pic) = decoder
            .decode(&p.data, Some(p.pts))
            .expect("decode")
            .into_iter()
            .next()
        {
            return pic;
        }
    }
    panic!("no picture decoded");
}

/// Mean absolute difference of plane `plane` of `decoded` (limited range, encoder size) against
/// `expected(col, row)`.
fn mean_abs_diff(decoded: &Picture, plane: usize, expected: impl Fn(usize, usize) -> f64) -> f64 {
    let (w, h) = if plane == 0 {
        (decoded.width() as usize, decoded.height() as usize)
    } else {
        (decoded.width() as usize / 2, decoded.height() as usize / 2)
    };
    let (data, stride) = decoded.plane(plane);
    let mut sum = 0.0;
    for row in 0..h {
        for col in 0..w {
            sum += (f64::from(data[row * stride + col]) - expected(col, row)).abs();
        }
    }
    sum / (w * h) as f64
}

#[test]
fn fifty_pictures_give_fifty_packets_with_parameter_sets_on_every_keyframe() {
    let settings = H264Settings {
        fps: 25.0,
        gop_frames: 25,
        bitrate_kbps: None,
    };
    let mut encoder = H264Encoder::new(640, 480, &settings).expect("encoder");
    let pictures: Vec<Picture> = (0..50).map(|i| moving_gradient(640, 480, i)).collect();
    let packets = encode_all(&mut encoder, &pictures);

    assert_eq!(packets.len(), 50);
    assert!(packets[0].keyframe, "the first packet is not a keyframe");
    assert!(packets[25].keyframe, "no keyframe after 25 pictures");
    assert_keyframes_carry_parameter_sets(&packets);
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.pts, i as i64 * 3600, "packet {i}");
        assert_eq!(
            p.dts, p.pts,
            "packet {i}: dts differs from pts without B-frames"
        );
    }
}

#[test]
fn a_forced_keyframe_is_an_idr_with_parameter_sets() {
    let mut encoder = H264Encoder::new(320, 240, &H264Settings::for_fps(25.0)).expect("encoder");
    let mut packets = Vec::new();
    for i in 0..20 {
        if i == 7 {
            encoder.force_keyframe();
        }
        let pic = moving_gradient(320, 240, i);
        packets.extend(encoder.encode(&pic, i as i64 * 3600).expect("encode"));
    }
    let keyframes: Vec<usize> = (0..packets.len())
        .filter(|&i| packets[i].keyframe)
        .collect();
    assert_eq!(keyframes, [0, 7]);
    assert_keyframes_carry_parameter_sets(&packets);
}

#[test]
fn a_timestamp_that_does_not_rise_is_moved_after_the_previous_one() {
    let mut encoder = H264Encoder::new(320, 240, &H264Settings::for_fps(25.0)).expect("encoder");
    let mut pts = Vec::new();
    for (i, t) in [1000, 1000, 500, 4600].into_iter().enumerate() {
        let pic = moving_gradient(320, 240, i);
        pts.extend(
            encoder
                .encode(&pic, t)
                .expect("encode")
                .iter()
                .map(|p| p.pts),
        );
    }
    assert_eq!(pts, [1000, 1001, 1002, 4600]);
}

#[test]
fn ffprobe_and_ffmpeg_read_the_stream_and_it_decodes_to_the_input() {
    let settings = H264Settings {
        fps: 25.0,
        gop_frames: 25,
        bitrate_kbps: None,
    };
    let mut encoder = H264Encoder::new(640, 480, &settings).expect("encoder");
    let pictures: Vec<Picture> = (0..50).map(|i| moving_gradient(640, 480, i)).collect();
    let packets = encode_all(&mut encoder, &pictures);
    let file = write_h264("demo.h264", &packets);

    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames,color_range,color_space",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(&file.0)
        .output()
        .expect("run ffprobe");
    let probe = String::from_utf8_lossy(&probe.stdout);
    for wanted in [
        "codec_name=h264",
        "width=640",
        "height=480",
        "nb_read_frames=50",
        "color_range=tv",
        "color_space=smpte170m",
    ] {
        assert!(
            probe.lines().any(|l| l == wanted),
            "ffprobe lacks {wanted}:\n{probe}"
        );
    }

    let decode = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
        .arg(&file.0)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(decode.status.success());
    assert_eq!(
        String::from_utf8_lossy(&decode.stderr),
        "",
        "ffmpeg complained while decoding"
    );

    let decoded = decode_first(&packets);
    assert_eq!((decoded.width(), decoded.height()), (640, 480));
    assert!(!decoded.is_full_range(), "{decoded:?} claims full range");
    let (src, stride) = pictures[0].plane(0);
    let luma = mean_abs_diff(&decoded, 0, |col, row| {
        to_limited_luma(src[row * stride + col])
    });
    assert!(luma < 3.0, "luma off by {luma:.2} levels on average");
    let (src_u, stride_u) = pictures[0].plane(1);
    let cb = mean_abs_diff(&decoded, 1, |col, row| {
        to_limited_chroma(src_u[row * stride_u + col])
    });
    assert!(cb < 3.0, "Cb off by {cb:.2} levels on average");
}

#[test]
fn a_limited_range_decoded_picture_passes_unconverted() {
    // What an H.264/H.265 camera decodes to: limited-range 4:2:0, here this encoder's own output.
    let mut encoder = H264Encoder::new(320, 240, &H264Settings::for_fps(25.0)).expect("encoder");
    let source = decode_first(
        &encoder
            .encode(&moving_gradient(320, 240, 3), 0)
            .expect("encode"),
    );
    assert!(!source.is_full_range());
    let mut encoder = H264Encoder::new(320, 240, &H264Settings::for_fps(25.0)).expect("encoder");
    let decoded = decode_first(&encoder.encode(&source, 0).expect("encode"));
    let (src, stride) = source.plane(0);
    // Converted again as if full range, black would move from 16 to ~30.
    let luma = mean_abs_diff(&decoded, 0, |col, row| f64::from(src[row * stride + col]));
    assert!(luma < 3.0, "luma off by {luma:.2} levels on average");
}

/// A JPEG of ffmpeg's test pattern in full-range 4:2:2 (what MJPEG cameras send), made by the
/// `ffmpeg` CLI and decoded by camhub's JPEG decoder.
fn camera_jpeg_picture(width: u32, height: u32) -> Picture {
    let file = TempFile::new(&format!("cam-{width}x{height}.jpg"));
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=s={width}x{height}:r=25"))
        .args(["-frames:v", "1", "-pix_fmt", "yuvj422p", "-q:v", "2"])
        .arg(&file.0)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jpeg = std::fs::read(&file.0).expect("read JPEG");
    let pic = JpegDecoder::new()
        .expect("JPEG decoder")
        .decode(&jpeg, 0, 0)
        .expect("decode JPEG");
    assert!(pic.is_full_range());
    assert!(format!("{pic:?}").contains("YUV422P"), "{pic:?}");
    pic
}

#[test]
fn a_full_range_422_camera_picture_encodes_at_its_size_and_scaled() {
    let pic = camera_jpeg_picture(640, 480);
    let (src_y, ys) = pic.plane(0);
    let (src_u, us) = pic.plane(1);

    // Native size: luma as it is, chroma rows averaged in pairs (4:2:2 → 4:2:0).
    let mut encoder = H264Encoder::new(640, 480, &H264Settings::for_fps(10.0)).expect("encoder");
    let packets = encoder.encode(&pic, 0).expect("encode");
    assert_eq!(packets.len(), 1);
    assert!(packets[0].keyframe);
    assert_keyframes_carry_parameter_sets(&packets);
    let decoded = decode_first(&packets);
    let luma = mean_abs_diff(&decoded, 0, |col, row| {
        to_limited_luma(src_y[row * ys + col])
    });
    assert!(luma < 3.0, "luma off by {luma:.2} levels on average");
    let cb = mean_abs_diff(&decoded, 1, |col, row| {
        let pair = (f64::from(src_u[2 * row * us + col])
            + f64::from(src_u[(2 * row + 1) * us + col]))
            / 2.0;
        128.0 + (pair - 128.0) * 224.0 / 255.0
    });
    assert!(cb < 3.0, "Cb off by {cb:.2} levels on average");

    // Half size: the encoder scales; compare against 2x2 luma averages.
    let mut encoder = H264Encoder::new(320, 240, &H264Settings::for_fps(10.0)).expect("encoder");
    let packets = encoder.encode(&pic, 0).expect("encode");
    assert_eq!(packets.len(), 1);
    let decoded = decode_first(&packets);
    assert_eq!((decoded.width(), decoded.height()), (320, 240));
    let luma = mean_abs_diff(&decoded, 0, |col, row| {
        let at = |c: usize, r: usize| f64::from(src_y[r * ys + c]);
        let avg = (at(2 * col, 2 * row)
            + at(2 * col + 1, 2 * row)
            + at(2 * col, 2 * row + 1)
            + at(2 * col + 1, 2 * row + 1))
            / 4.0;
        16.0 + avg * 219.0 / 255.0
    });
    // Scaling filters differ from a plain 2x2 average on the pattern's sharp edges.
    assert!(luma < 6.0, "scaled luma off by {luma:.2} levels on average");
}

/// Camera-like pictures for the CPU measurement: ffmpeg's `testsrc2` with mild temporal noise (a
/// sensor's), as the full-range 4:2:0 the JPEG path produces.
fn noisy_pictures(width: u32, height: u32, count: usize) -> Vec<Picture> {
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=s={width}x{height}:r=25"))
        .args([
            "-vf",
            "noise=alls=2:allf=t",
            "-frames:v",
            &count.to_string(),
        ])
        .args(["-pix_fmt", "yuvj420p", "-f", "rawvideo", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h) = (width as usize, height as usize);
    let frame_len = w * h * 3 / 2;
    assert_eq!(out.stdout.len(), frame_len * count);
    out.stdout
        .chunks_exact(frame_len)
        .map(|raw| {
            let mut pic = Picture::new_yuv420_full(width, height).expect("picture");
            let (luma, chroma) = raw.split_at(w * h);
            let (cb, cr) = chroma.split_at(w * h / 4);
            for ((dst, stride, pw, ph), src) in pic.planes_mut().into_iter().zip([luma, cb, cr]) {
                for row in 0..ph {
                    dst[row * stride..row * stride + pw]
                        .copy_from_slice(&src[row * pw..(row + 1) * pw]);
                }
            }
            pic
        })
        .collect()
}

/// Prints what encoding costs; meaningful with `--release` (the range conversion is Rust).
#[test]
fn report_cpu_per_frame() {
    if cfg!(debug_assertions) {
        println!("(debug build: the range conversion is unoptimised; measure with --release)");
    }
    const FRAMES: usize = 50;
    for (w, h) in [(640, 480), (1280, 720)] {
        let pictures = noisy_pictures(w, h, FRAMES);
        let mut encoder = H264Encoder::new(w, h, &H264Settings::for_fps(25.0)).expect("encoder");
        let start = thread_cpu_time();
        let packets = encode_all(&mut encoder, &pictures);
        let cpu = thread_cpu_time() - start;
        let bytes: usize = packets.iter().map(|p| p.data.len()).sum();
        println!(
            "H.264 {w}x{h}: {:.2} ms CPU per frame (conversion included), {} kbit/s at 25 fps",
            cpu.as_secs_f64() * 1000.0 / FRAMES as f64,
            bytes * 8 * 25 / FRAMES / 1000
        );
    }
}
