//! Benchmark: what the motion [`Detector`] costs per analysed picture (issue 6, "Motion detection").
//!
//! [`Detector::analyse`] — the box-averaging downscale of the luma plane to the ≤ 320-cell grid
//! included, and everything after it: the global shift, thresholding, speckle removal, the
//! background update and, when something moves, the boxes — on 1920×1080 and 640×360 luma planes
//! of a synthetic camera scene: a textured picture (smooth gradients plus fixed fine texture) with
//! per-frame sensor noise (σ ≈ 4 levels), either quiet or with a dark textured object (≈ 4 % of
//! the picture) crossing it. The planes are made up front and the detector cycles through several
//! of them (more bytes than the CPU's caches hold at 1080p), each with its own noise, so neither
//! the caches nor a repeated picture flatter it: like a decoder's output, every plane is read from
//! memory.
//!
//! Reported per picture size and scene: the calling thread's CPU time per analysed picture
//! (`/proc/thread-self/schedstat`, ns; the machine is shared, so CPU time rather than wall time)
//! as the median of several runs of at least `--ms` ms each, with the lowest and highest run; the
//! wall time per picture alongside; and how many pictures the detector called motion, which must
//! be none on the quiet scene and nearly all on the moving one (asserted: a detector that skips
//! its work would otherwise look fast).
//!
//! `cargo bench -p camhub-media --bench motion [-- --runs 9 --ms 400]` prints a Markdown table
//! (results are in `benches/RESULTS.md`). Under `cargo test` (no `--bench` argument) it runs a
//! short smoke version at both sizes and asserts the same verdicts, so the benchmark cannot rot.

use std::time::{Duration, Instant};

use camhub_media::motion::{Detector, Settings, WARMUP_FRAMES};

/// Picture sizes measured, with the number of distinct planes cycled through: 24 planes of 1080p are
/// 50 MB, 192 of 640×360 are 44 MB, more than the caches (the benchmark machine's L3 is 32 MB).
const SIZES: [(usize, usize, usize); 2] = [(1920, 1080, 24), (640, 360, 192)];
/// Cold measurement: before each timed call this many bytes are written and read, so that neither
/// the plane nor the detector's own state (≈ 1 MB of per-cell buffers) is left in any cache — as
/// in camhub, where a camera's pictures are analysed 100 ms apart while other cameras decode.
const FLUSH_BYTES: usize = 96 << 20;
/// Timed calls of the cold measurement.
const COLD_CALLS: usize = 200;
/// Sensor noise: the sum of four uniform values in -4..=4 (σ ≈ 5).
const NOISE_TERMS: usize = 4;
const NOISE_HALF: i32 = 4;
/// The moving object: a fraction of the picture's width and height (0.2 × 0.2 = 4 %), luma around
/// 45 (a dark coat over a mid-grey scene), crossing the picture in this many analysed pictures
/// (about 4 s at camhub's default 10 fps).
const OBJECT_W: f64 = 0.2;
const OBJECT_H: f64 = 0.2;
const OBJECT_LUMA: i32 = 45;
const CROSSING_PICTURES: usize = 40;

/// xorshift64*: deterministic noise without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Sensor noise: the sum of NOISE_TERMS uniform values in -NOISE_HALF..=NOISE_HALF.
    fn noise(&mut self) -> i32 {
        let r = self.next();
        let span = (2 * NOISE_HALF + 1) as u64;
        (0..NOISE_TERMS)
            .map(|k| ((r >> (16 * k)) & 0xffff) % span)
            .map(|v| v as i32 - NOISE_HALF)
            .sum()
    }
}

/// The quiet scene: smooth gradients (walls, sky, a lawn) plus fixed fine texture (gravel,
/// leaves), the same in every picture.
fn background(width: usize, height: usize) -> Vec<i32> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (width * height) as u64);
    let (w, h) = (width as f64, height as f64);
    let mut out = Vec::with_capacity(width * height);
    for y in 0..height {
        let fy = y as f64 / h;
        for x in 0..width {
            let fx = x as f64 / w;
            let smooth = 120.0
                + 45.0 * (fx * 7.0).sin() * (fy * 5.0).cos()
                + 30.0 * ((fx + fy) * 13.0).sin()
                + 25.0 * (fy - 0.5);
            let texture = (rng.next() % 41) as f64 - 20.0;
            out.push((smooth + texture) as i32);
        }
    }
    out
}

/// One picture: the scene, the object at `object_x` (pixels, its left edge; None = no object),
/// and fresh noise.
fn picture(
    scene: &[i32],
    width: usize,
    height: usize,
    object_x: Option<i64>,
    rng: &mut Rng,
) -> Vec<u8> {
    let (ow, oh) = (
        (width as f64 * OBJECT_W) as i64,
        (height as f64 * OBJECT_H) as i64,
    );
    let oy = (height as i64 - oh) / 2;
    let mut out = vec![0u8; width * height];
    for (y, (row, src)) in out
        .chunks_exact_mut(width)
        .zip(scene.chunks_exact(width))
        .enumerate()
    {
        let in_rows = (oy..oy + oh).contains(&(y as i64));
        for (x, (o, &s)) in row.iter_mut().zip(src).enumerate() {
            let v = match object_x {
                Some(ox) if in_rows && (ox..ox + ow).contains(&(x as i64)) => {
                    // The object has a texture of its own (the scene's, faded).
                    OBJECT_LUMA + (s - 120) / 4
                }
                _ => s,
            };
            *o = (v + rng.noise()).clamp(0, 255) as u8;
        }
    }
    out
}

/// The planes one measurement cycles through: `count` pictures of the quiet scene, or of the
/// object crossing it (at evenly spaced positions, entering at the left and leaving at the right).
fn planes(width: usize, height: usize, count: usize, moving: bool) -> Vec<Vec<u8>> {
    let scene = background(width, height);
    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ count as u64 ^ u64::from(moving));
    let ow = (width as f64 * OBJECT_W) as i64;
    // Positions of one crossing; the planes take every (CROSSING_PICTURES / count)-th one so that
    // the cycle is one whole crossing whatever the count, plus the object wholly inside.
    (0..count)
        .map(|i| {
            let x = moving.then(|| {
                let step = i * CROSSING_PICTURES / count;
                let travel = width as i64 - ow;
                travel * step as i64 / (CROSSING_PICTURES as i64 - 1)
            });
            picture(&scene, width, height, x, &mut rng)
        })
        .collect()
}

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

/// What one run measured.
struct Run {
    pictures: usize,
    cpu: Duration,
    wall: Duration,
    motion: usize,
}

/// Feeds the detector the planes in turn, for at least `budget` of CPU time (whole cycles).
fn run(detector: &mut Detector, planes: &[Vec<u8>], width: usize, budget: Duration) -> Run {
    let height = planes[0].len() / width;
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    let mut r = Run {
        pictures: 0,
        cpu: Duration::ZERO,
        wall: Duration::ZERO,
        motion: 0,
    };
    loop {
        for plane in planes {
            let a = detector.analyse(std::hint::black_box(plane), width, width, height);
            r.motion += usize::from(a.motion);
            r.pictures += 1;
            std::hint::black_box(&a);
        }
        r.cpu = thread_cpu().saturating_sub(cpu0);
        if r.cpu >= budget {
            break;
        }
    }
    r.wall = wall0.elapsed();
    r
}

/// Wall time of single calls, each after the caches were flushed: the median per call (the wall clock
/// of one call: reading the thread's CPU clock from /proc per call would cost more than the call).
fn run_cold(detector: &mut Detector, planes: &[Vec<u8>], width: usize, flush: &mut [u8]) -> f64 {
    let height = planes[0].len() / width;
    let mut times = Vec::with_capacity(COLD_CALLS);
    for (i, plane) in planes.iter().cycle().take(COLD_CALLS).enumerate() {
        // Write then read every cache line of a buffer larger than the caches.
        let v = i as u8;
        for line in flush.chunks_exact_mut(64) {
            line[0] = line[0].wrapping_add(v);
        }
        let sum: u64 = flush.chunks_exact(64).map(|l| u64::from(l[0])).sum();
        std::hint::black_box(sum);
        let t = Instant::now();
        let a = detector.analyse(std::hint::black_box(plane), width, width, height);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(&a);
    }
    median(&mut times)
}

/// A detector that learnt the quiet scene (its warm-up), then saw the planes twice: like a camera
/// watching an empty scene before something moves in it.
fn warmed(planes: &[Vec<u8>], width: usize) -> Detector {
    let mut d = Detector::new(Settings::default());
    let height = planes[0].len() / width;
    for plane in self::planes(width, height, WARMUP_FRAMES as usize, false) {
        d.analyse(&plane, width, width, height);
    }
    for plane in planes.iter().cycle().take(2 * planes.len()) {
        d.analyse(plane, width, width, height);
    }
    d
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The verdicts that prove the detector did its work: nothing on the quiet scene, and motion on
/// every picture with the object wholly or partly inside (all of them here; allow a few at the
/// edges).
fn check(moving: bool, pictures: usize, motion: usize, what: &str) {
    if moving {
        assert!(
            motion * 10 >= pictures * 9,
            "{what}: motion on only {motion} of {pictures} pictures with an object crossing"
        );
    } else {
        assert_eq!(motion, 0, "{what}: motion on the quiet scene");
    }
}

fn arg(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let runs = arg(&args, "--runs").unwrap_or(9).max(1) as usize;
    let budget = Duration::from_millis(arg(&args, "--ms").unwrap_or(400));

    if !bench {
        // Smoke: a few planes per size, a short run each, the verdicts checked.
        for (w, h, _) in SIZES {
            for moving in [false, true] {
                let p = planes(w, h, 8, moving);
                let mut d = warmed(&p, w);
                let r = run(&mut d, &p, w, Duration::ZERO);
                check(moving, r.pictures, r.motion, &format!("{w}x{h}"));
            }
        }
        return;
    }

    println!(
        "`Detector::analyse` with the default settings (threshold 20, min_area 0.5 %), downscale included; \
         synthetic camera scene (texture + noise σ ≈ 5), {runs} runs of ≥ {} ms CPU each per row",
        budget.as_millis()
    );
    println!(
        "CPU µs per analysed picture (thread CPU time, schedstat): median (lowest … highest run); wall µs: median; \
         cold: wall µs of one call after {} MB were written and read (nothing cached), median of {COLD_CALLS} calls\n",
        FLUSH_BYTES >> 20
    );
    println!(
        "| picture | grid | scene | planes cycled (MB) | pictures per run | CPU µs per picture | wall µs per picture | cold µs per picture | pictures with motion |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    let mut flush = vec![0u8; FLUSH_BYTES];
    for (w, h, count) in SIZES {
        for moving in [false, true] {
            let p = planes(w, h, count, moving);
            let mut d = warmed(&p, w);
            let (gw, gh) = d.grid();
            let mut cpu = Vec::new();
            let mut wall = Vec::new();
            let (mut pictures, mut motion) = (0, 0);
            for _ in 0..runs {
                let r = run(&mut d, &p, w, budget);
                cpu.push(r.cpu.as_secs_f64() * 1e6 / r.pictures as f64);
                wall.push(r.wall.as_secs_f64() * 1e6 / r.pictures as f64);
                pictures += r.pictures;
                motion += r.motion;
            }
            check(moving, pictures, motion, &format!("{w}x{h}"));
            let cold = run_cold(&mut d, &p, w, &mut flush);
            let lo = cpu.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = cpu.iter().copied().fold(0.0, f64::max);
            println!(
                "| {w}×{h} | {gw}×{gh} | {} | {count} ({:.1}) | {} | **{:.0}** ({lo:.0} … {hi:.0}) | {:.0} | {cold:.0} | {motion} of {pictures} |",
                if moving {
                    "object crossing (4 %)"
                } else {
                    "quiet"
                },
                (count * w * h) as f64 / 1e6,
                pictures / runs,
                median(&mut cpu),
                median(&mut wall),
            );
        }
    }
}
