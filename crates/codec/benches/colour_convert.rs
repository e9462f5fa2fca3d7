//! Benchmark: what the [`Scaler`] costs for the pictures HD cameras send — 1080p, limited range,
//! signalling BT.709 (Hikvision, Dahua) or BT.601 — served as a 640×360 preview and at native size.
//! A BT.709 picture needs its matrix converted to JPEG's BT.601 on top of the range conversion; this
//! shows what that costs next to the BT.601 picture, which needs only the range. CPU time, not wall
//! time: the machine is shared.
//!
//! `cargo bench -p camhub-codec --bench colour_convert` prints a Markdown table. Under `cargo test`
//! (no `--bench` argument) it runs each path once and checks the output, so the benchmark cannot rot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use camhub_codec::{thread_cpu_time, ColourMatrix, Decoder, Demuxer, JpegEncoder, Picture, Scaler};
use camhub_media::colour::{LumaWeights, Plane, PlaneMut, SampleRange, YcbcrConversion};

const SRC_W: u32 = 1920;
const SRC_H: u32 = 1080;
/// The outputs: camhub's usual preview and the native size.
const OUTPUTS: [(u32, u32); 2] = [(640, 360), (SRC_W, SRC_H)];
/// JPEG quality of the outputs (camhub's default).
const QUALITY: u8 = 80;
/// CPU time spent per measurement (at least).
const CPU_BUDGET: Duration = Duration::from_millis(1500);

/// A camera-like source: how the `ffmpeg` CLI converts and tags ffmpeg's testsrc2.
struct Source {
    name: &'static str,
    matrix: ColourMatrix,
    args: &'static [&'static str],
}

const SOURCES: [Source; 2] = [
    Source {
        name: "BT.601",
        matrix: ColourMatrix::Bt601,
        args: &[
            "-vf",
            "scale=out_color_matrix=bt601:out_range=tv,format=yuv420p",
            "-colorspace",
            "smpte170m",
        ],
    },
    Source {
        name: "BT.709",
        matrix: ColourMatrix::Bt709,
        args: &[
            "-vf",
            "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
            "-colorspace",
            "bt709",
        ],
    },
];

fn main() {
    camhub_codec::init();
    let bench = std::env::args().any(|a| a == "--bench");
    let dir = std::env::temp_dir().join(format!("camhub-colour-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut encoder = JpegEncoder::new().expect("encoder");

    if bench {
        println!(
            "source: {SRC_W}x{SRC_H} limited-range H.264 of ffmpeg's testsrc2, decoded by camhub"
        );
        println!("CPU ms per output frame (thread CPU time)\n");
        println!("| source matrix | output | scale | scale + JPEG encode |");
        println!("|---|---|---:|---:|");
    }
    for source in &SOURCES {
        let path = make_source(&dir, source);
        let pic = first_picture(&path);
        assert_eq!(pic.matrix(), source.matrix, "{}", source.name);
        assert!(!pic.is_full_range(), "{}", source.name);
        for (w, h) in OUTPUTS {
            let mut scaler = Scaler::new();
            if !bench {
                // Smoke test under `cargo test`: the path makes a JPEG-ready picture of the size.
                let out = scaler.scale(&pic, w, h).expect("scale");
                assert!(out.is_jpeg_ready(), "{} {w}x{h}", source.name);
                assert_eq!((out.width(), out.height()), (w, h));
                encoder.encode(&out, QUALITY).expect("encode");
                continue;
            }
            let scale = per_frame_cpu(|| {
                std::hint::black_box(scaler.scale(&pic, w, h).expect("scale"));
            });
            let both = per_frame_cpu(|| {
                let out = scaler.scale(&pic, w, h).expect("scale");
                std::hint::black_box(encoder.encode(&out, QUALITY).expect("encode"));
            });
            println!(
                "| {} | {w}x{h} | {:.2} | {:.2} |",
                source.name,
                scale.as_secs_f64() * 1e3,
                both.as_secs_f64() * 1e3
            );
        }
    }
    if bench {
        println!("\ncamhub_media::colour alone, CPU ms per frame\n");
        println!("| pass | size | ms |");
        println!("|---|---|---:|");
        for (w, h) in OUTPUTS.map(|(w, h)| (w as usize, h as usize)) {
            // A flat orange inside the gamut: the 16-bit pass alone.
            let source = [
                vec![100u8; w * h],
                vec![90u8; w * h / 4],
                vec![170u8; w * h / 4],
            ];
            let mut planes = source.clone();
            let matrix =
                YcbcrConversion::new(LumaWeights::BT709, SampleRange::Full, LumaWeights::BT601);
            let both =
                YcbcrConversion::new(LumaWeights::BT709, SampleRange::Limited, LumaWeights::BT601);
            let in_place = per_frame_cpu(|| {
                // Fresh samples each time (a copy costs ~5 % of the pass): converted again and
                // again, they would drift out of the gamut onto the slow path.
                for (p, s) in planes.iter_mut().zip(&source) {
                    p.copy_from_slice(s);
                }
                let [y, cb, cr] = &mut planes;
                matrix
                    .convert_420_in_place(
                        w,
                        h,
                        [
                            PlaneMut { data: y, stride: w },
                            PlaneMut {
                                data: cb,
                                stride: w / 2,
                            },
                            PlaneMut {
                                data: cr,
                                stride: w / 2,
                            },
                        ],
                    )
                    .expect("planes fit");
            });
            let copying = per_frame_cpu(|| {
                let [y, cb, cr] = &mut planes;
                both.convert_420(
                    w,
                    h,
                    [
                        Plane {
                            data: &source[0],
                            stride: w,
                        },
                        Plane {
                            data: &source[1],
                            stride: w / 2,
                        },
                        Plane {
                            data: &source[2],
                            stride: w / 2,
                        },
                    ],
                    [
                        PlaneMut { data: y, stride: w },
                        PlaneMut {
                            data: cb,
                            stride: w / 2,
                        },
                        PlaneMut {
                            data: cr,
                            stride: w / 2,
                        },
                    ],
                )
                .expect("planes fit");
            });
            println!(
                "| matrix, in place | {w}x{h} | {:.3} |",
                in_place.as_secs_f64() * 1e3
            );
            println!(
                "| range + matrix, copying | {w}x{h} | {:.3} |",
                copying.as_secs_f64() * 1e3
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// CPU time per call of `f`, measured over at least [`CPU_BUDGET`].
fn per_frame_cpu(mut f: impl FnMut()) -> Duration {
    // Warm up (scaler context, caches) and size the run.
    let start = thread_cpu_time();
    for _ in 0..5 {
        f();
    }
    let per = (thread_cpu_time() - start) / 5;
    let n = (CPU_BUDGET.as_nanos() / per.as_nanos().max(1)).clamp(20, 100_000) as u32;
    let start = thread_cpu_time();
    for _ in 0..n {
        f();
    }
    (thread_cpu_time() - start) / n
}

/// One second of testsrc2 (gradients, text, colours) as the source's limited-range H.264.
fn make_source(dir: &Path, source: &Source) -> PathBuf {
    let path = dir.join(format!("{}.mkv", source.name));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={SRC_W}x{SRC_H}:rate=25:duration=0.2"
        ))
        .args(source.args)
        .args(["-c:v", "libx264", "-preset", "ultrafast"])
        .arg(&path)
        .status()
        .expect("run ffmpeg (apt install ffmpeg)");
    assert!(status.success(), "ffmpeg could not make {}", source.name);
    path
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
