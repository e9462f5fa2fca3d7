//! Benchmark: a JPEG camera's 1080p frames served smaller than native, three ways —
//! camhub's path (libjpeg-turbo scaled decode at 1/2, 1/4 or 1/8, then scale the rest of the way
//! and encode), full decode + scale + encode (what camhub would do without scaled decoding), and
//! the `ffmpeg` CLI doing the same job as the reference. CPU time, not wall time: the machine is
//! shared.
//!
//! `cargo bench -p camhub-codec --bench jpeg_scaled_decode` prints a Markdown table (results are in
//! `benches/RESULTS.md`). Under `cargo test` (no `--bench` argument) it runs each path once and
//! checks the output sizes, so the benchmark cannot rot.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use camhub_codec::{JpegDecoder, JpegEncoder, Picture, Scaler};
use camhub_media::jpeg::parse_jpeg_header;
use camhub_media::size::fit_size;

/// Output widths: 1/2 exactly, between 1/2 and 1/4, 1/4 exactly, between 1/4 and 1/8, 1/8.
const WIDTHS: [u32; 5] = [960, 640, 480, 320, 240];
const SRC_W: u32 = 1920;
const SRC_H: u32 = 1080;
/// JPEG quality of the outputs (camhub's default).
const QUALITY: u8 = 80;
/// CPU seconds spent per measurement (at least).
const CPU_BUDGET: f64 = 2.0;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let dir = std::env::temp_dir().join(format!("camhub-jpeg-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = make_source(&dir);
    let jpeg = std::fs::read(&src).expect("read the source JPEG");
    let mut dec = JpegDecoder::new().expect("decoder");
    let mut enc = JpegEncoder::new().expect("encoder");
    let mut scaler = Scaler::new();

    if !bench {
        // Smoke test under `cargo test`: every path makes a JPEG of the asked size.
        for w in WIDTHS {
            let (w, h) = output_size(w);
            for scaled in [true, false] {
                let out = serve(&mut dec, &mut scaler, &mut enc, &jpeg, w, h, scaled);
                let info = parse_jpeg_header(&out).expect("our output is a JPEG");
                assert_eq!((info.width, info.height), (w, h), "scaled={scaled}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    println!(
        "source: {SRC_W}x{SRC_H} 4:2:0 JPEG of ffmpeg's testsrc2, {} KB; outputs at quality {QUALITY}",
        jpeg.len() / 1024
    );
    println!("CPU ms per output frame (thread CPU time; ffmpeg: the whole process, one thread)\n");
    println!("| output | decoded at | camhub: scaled decode | full decode + scale | × | ffmpeg CLI `-threads 1` | camhub × ffmpeg |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for w in WIDTHS {
        let (w, h) = output_size(w);
        let decoded = dec.decode(&jpeg, w, h).expect("decode");
        let at = format!("{}x{}", decoded.width(), decoded.height());
        let scaled = per_frame_cpu(|| {
            serve(&mut dec, &mut scaler, &mut enc, &jpeg, w, h, true);
        });
        let full = per_frame_cpu(|| {
            serve(&mut dec, &mut scaler, &mut enc, &jpeg, w, h, false);
        });
        let reference = ffmpeg_per_frame_cpu(&src, w, 300);
        println!(
            "| {w}x{h} | {at} | {:.2} | {:.2} | {:.2} | {} | {} |",
            scaled * 1e3,
            full * 1e3,
            scaled / full,
            reference.map_or("–".into(), |r| format!("{:.2}", r * 1e3)),
            reference.map_or("–".into(), |r| format!("{:.2}", scaled / r)),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One output frame: decode (scaled or not), scale to the exact size, encode.
fn serve(
    dec: &mut JpegDecoder,
    scaler: &mut Scaler,
    enc: &mut JpegEncoder,
    jpeg: &[u8],
    w: u32,
    h: u32,
    scaled: bool,
) -> bytes::Bytes {
    let (mw, mh) = if scaled { (w, h) } else { (0, 0) };
    let pic: Picture = dec.decode(jpeg, mw, mh).expect("decode");
    let out = scaler.scale(&pic, w, h).expect("scale");
    enc.encode(&out, QUALITY).expect("encode")
}

/// CPU seconds per call of `f`, measured over at least [`CPU_BUDGET`] CPU seconds.
fn per_frame_cpu(mut f: impl FnMut()) -> f64 {
    // Warm up (scaler contexts, caches) and size the run.
    let t = Instant::now();
    for _ in 0..5 {
        f();
    }
    let per = t.elapsed().as_secs_f64() / 5.0;
    let n = ((CPU_BUDGET / per.max(1e-6)) as u64).clamp(20, 100_000);
    let before = thread_cpu();
    for _ in 0..n {
        f();
    }
    (thread_cpu() - before) / n as f64
}

/// This thread's user + system CPU seconds (clock ticks of 10 ms: runs last seconds).
fn thread_cpu() -> f64 {
    let stat =
        std::fs::read_to_string("/proc/thread-self/stat").expect("read /proc/thread-self/stat");
    ticks(&stat, 13) + ticks(&stat, 14)
}

/// Field `i` (0-based: 13 is utime) of a /proc stat line, as seconds (100 ticks per second).
fn ticks(stat: &str, i: usize) -> f64 {
    let after = stat.rsplit_once(')').map_or(stat, |(_, rest)| rest);
    let v: f64 = after
        .split_whitespace()
        .nth(i - 2)
        .and_then(|s| s.parse().ok())
        .expect("a /proc stat field");
    v / 100.0
}

/// The ffmpeg CLI decoding `src` `n` times and writing JPEGs `w` wide to /dev/null: its CPU
/// seconds per frame, read from the waiting shell's cutime + cstime (None without ffmpeg).
fn ffmpeg_per_frame_cpu(src: &Path, w: u32, n: u32) -> Option<f64> {
    let script = format!(
        "ffmpeg -hide_banner -loglevel error -nostdin -threads 1 -loop 1 -i '{}' -frames:v {n} \
         -vf scale={w}:-2 -q:v 5 -threads 1 -f mjpeg -y /dev/null && cat /proc/$$/stat",
        src.display()
    );
    let out = Command::new("sh").arg("-c").arg(script).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let stat = String::from_utf8_lossy(&out.stdout);
    // cutime, cstime: fields 16 and 17 (1-based).
    Some((ticks(&stat, 15) + ticks(&stat, 16)) / f64::from(n))
}

/// A camera-like 1080p JPEG (ffmpeg's testsrc2: gradients, text, motion; about 150 KB).
fn make_source(dir: &Path) -> PathBuf {
    let path = dir.join("src.jpg");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={SRC_W}x{SRC_H}:rate=1"))
        .args(["-frames:v", "1", "-pix_fmt", "yuvj420p", "-q:v", "3"])
        .arg(&path)
        .status()
        .expect("run ffmpeg (apt install ffmpeg)");
    assert!(status.success(), "ffmpeg could not make the source JPEG");
    path
}

/// The size camhub serves for `?width=w` of the source (the same rule as the server's).
fn output_size(w: u32) -> (u32, u32) {
    fit_size(SRC_W, SRC_H, (1, 1), Some(w), None).expect("a valid size")
}
