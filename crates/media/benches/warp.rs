//! Benchmark: what a camera's transform costs per picture (issue 7, "Per-camera transforms"):
//! [`WarpPlan::apply`] on YUV 4:2:0 pictures of 1280×720 and 1920×1080 for a 90° rotation, a crop
//! to the middle two thirds, and a perspective warp (seed 004's kind of quadrilateral, scaled to the
//! picture, to an output of the same size). The source picture is the one `benches/warp_cost.py`
//! gives OpenCV (a gradient with a checkerboard; see `pattern`), so the two are timed on the same
//! pixels.
//!
//! Reported per size and operation: the thread's CPU time per picture (`/proc/thread-self/schedstat`)
//! as the median of `--runs` runs of at least `--ms` ms each, and what compiling the plan costs
//! once. `cargo bench -p camhub-media --bench warp [-- --runs 7 --ms 300 --json --only perspective]`; `--json` prints
//! one JSON object per line for the Python driver. Under `cargo test` it runs once per case at
//! 720p and checks the output, so the benchmark cannot rot.

use std::time::{Duration, Instant};

use camhub_media::warp::{Crop, Perspective, PlaneLayout, Rotation, Transform, WarpPlan};

/// CPU time of the calling thread (schedstat's first field: ns on the CPU).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// The source picture's luma (and flat chroma): a diagonal gradient with a 16-pixel checkerboard,
/// the same formula as `benches/warp_cost.py`.
fn pattern(x: usize, y: usize) -> u8 {
    let g = (x + y) / 8 % 200;
    let c = if (x / 16 + y / 16).is_multiple_of(2) {
        40
    } else {
        0
    };
    (16 + g + c).min(255) as u8
}

/// The operations measured, for a `w` x `h` picture.
fn cases(w: u32, h: u32) -> Vec<(&'static str, Transform)> {
    let (fw, fh) = (f64::from(w), f64::from(h));
    vec![
        (
            "rotate90",
            Transform {
                rotate: Rotation::Cw90,
                ..Transform::default()
            },
        ),
        (
            "crop",
            Transform {
                crop: Some(Crop {
                    x: w / 6,
                    y: h / 6,
                    width: w * 2 / 3,
                    height: h * 2 / 3,
                }),
                ..Transform::default()
            },
        ),
        (
            "perspective",
            Transform {
                perspective: Some(Perspective {
                    corners: warp_corners(fw, fh),
                    width: w,
                    height: h,
                }),
                ..Transform::default()
            },
        ),
    ]
}

/// Seed 004's corners ([0, 92], [0, 325], [640, 349], [640, 116] on 640×480), scaled to the picture.
pub fn warp_corners(w: f64, h: f64) -> [[f64; 2]; 4] {
    let s = |x: f64, y: f64| [x / 640.0 * w, y / 480.0 * h];
    [
        s(0.0, 92.0),
        s(0.0, 325.0),
        s(640.0, 349.0),
        s(640.0, 116.0),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let json = args.iter().any(|a| a == "--json");
    let arg = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (runs, ms) = if bench {
        (arg("--runs", 7), arg("--ms", 300))
    } else {
        (1, 0)
    };
    let sizes: &[(u32, u32)] = if bench {
        &[(1280, 720), (1920, 1080)]
    } else {
        &[(1280, 720)]
    };
    if !json {
        println!("| size | operation | CPU ms/picture (median) | min–max | plan build ms |");
        println!("|---|---|---:|---:|---:|");
    }
    for &(w, h) in sizes {
        // FFmpeg-like strides: rows padded to 64 bytes.
        let luma = PlaneLayout {
            width: w,
            height: h,
            stride: (w as usize).next_multiple_of(64),
        };
        let chroma = PlaneLayout {
            width: w / 2,
            height: h / 2,
            stride: (w as usize / 2).next_multiple_of(64),
        };
        let mut y = vec![0u8; luma.stride * h as usize];
        for r in 0..h as usize {
            for c in 0..w as usize {
                y[r * luma.stride + c] = pattern(c, r);
            }
        }
        let c = vec![128u8; chroma.stride * (h / 2) as usize];
        let only = args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1));
        for (name, t) in cases(w, h) {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let started = Instant::now();
            let mapping = t.mapping(w, h).expect("mapping");
            let plan = WarpPlan::new(&mapping, luma, chroma).expect("plan");
            let build_ms = started.elapsed().as_secs_f64() * 1e3;
            let (ow, oh) = plan.output_size();
            let (ow, oh) = (ow as usize, oh as usize);
            let (cw, ch) = (ow.div_ceil(2), oh.div_ceil(2));
            let mut oy = vec![0u8; ow * oh];
            let mut ou = vec![0u8; cw * ch];
            let mut ov = vec![0u8; cw * ch];
            let mut per_picture = Vec::new();
            for _ in 0..runs {
                let (cpu0, wall0) = (thread_cpu(), Instant::now());
                let mut n = 0u32;
                loop {
                    plan.apply(
                        [&y, &c, &c],
                        [(&mut oy, ow), (&mut ou, cw), (&mut ov, cw)],
                        [16, 128, 128],
                    )
                    .expect("apply");
                    n += 1;
                    if wall0.elapsed() >= Duration::from_millis(ms) {
                        break;
                    }
                }
                per_picture.push((thread_cpu() - cpu0).as_secs_f64() * 1e3 / f64::from(n));
            }
            per_picture.sort_by(f64::total_cmp);
            let median = per_picture[per_picture.len() / 2];
            let (lo, hi) = (per_picture[0], per_picture[per_picture.len() - 1]);
            // The output is the picture, not garbage: the middle of a rotation or crop is a
            // source pixel of the pattern, and the warp's corners are inside the source.
            assert!(oy.iter().any(|&v| v > 100) && oy.iter().any(|&v| v < 100));
            if json {
                println!(
                    "{{\"size\":\"{w}x{h}\",\"op\":\"{name}\",\"cpu_ms\":{median:.3},\"min_ms\":{lo:.3},\"max_ms\":{hi:.3},\"build_ms\":{build_ms:.1}}}"
                );
            } else {
                println!("| {w}×{h} | {name} | {median:.2} | {lo:.2}–{hi:.2} | {build_ms:.0} |");
            }
        }
    }
}
