//! Benchmark: the cost of packet-tap subscribers (issue 5, "What the benchmark must show").
//!
//! One 1080p25 H.264 camera's real packets (the benchmark clip demuxed with camhub's own
//! [`Demuxer`], read once into memory) are pushed into a [`PacketTap`] at 25 fps, in real time,
//! by a producer thread — as the camera's upstream does. 0, 1, 100 and 1000 subscribers, each a
//! tokio task on a multi-thread runtime with 2 workers, only sum `packet.data.len()` (no decode).
//! Reported: the process's CPU time (utime + stime, `/proc/self/stat`) per second of video, the
//! increment over 0 subscribers per packet per subscriber (µs), and proof that every subscriber
//! counted every byte of every packet (none skipped). For comparison, the same subscribers fed
//! through a bare `tokio::sync::watch` channel of `Arc<Packet>` (no ring): what waking the tasks
//! and handing each an `Arc` costs by itself.
//!
//! `cargo bench -p camhub --bench packet_tap [-- --seconds 20]` prints a Markdown table (results
//! are in `benches/RESULTS.md`). Under `cargo test` (no `--bench` argument) it runs a one-second
//! smoke version with a few subscribers and asserts the counts, so the benchmark cannot rot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use camhub::hub::taps::{Packet, PacketTap};
use camhub_codec::{Codec, Demuxer, StreamParams};

/// Subscriber counts measured by the benchmark.
const SUBSCRIBERS: [usize; 4] = [0, 1, 100, 1000];
/// Subscriber counts of the smoke test.
const SMOKE_SUBSCRIBERS: [usize; 2] = [0, 5];
/// Lag limit of every subscriber: longer than the run, so a subscriber is never moved on for
/// lagging (and a skip would be a real loss).
const MAX_LAG: Duration = Duration::from_secs(60);
/// The clip `benches/mjpeg_fanout.py` makes (same command), reused if it is there.
const CLIP: &str = "benches/.cache/testsrc2_1080p25_20s.mp4";

/// One packet as the source hands it over.
struct Source {
    data: Bytes,
    keyframe: bool,
    pts: i64,
    dts: i64,
    due: Duration,
}

/// What one phase measured.
struct Phase {
    packets: u64,
    /// Packets the subscribers did not get, all together (always 0 for the tap: asserted).
    missed: u64,
    wall: f64,
    cpu_user: f64,
    cpu_sys: f64,
    machine_busy: f64,
    /// From the last push to every subscriber having counted it.
    last_delivery_ms: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = std::env::temp_dir().join(format!("camhub-packet-tap-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");

    let (clip, seconds) = if bench {
        (ensure_clip(&repo.join(CLIP), 20), seconds)
    } else {
        (ensure_clip(&tmp.join("smoke.mp4"), 1), 1.0)
    };
    let packets = read_packets(&clip, seconds);
    let video_s = packets.len() as f64 / 25.0;
    let bytes: usize = packets.iter().map(|p| p.data.len()).sum();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    if !bench {
        for n in SMOKE_SUBSCRIBERS {
            let phase = run(&runtime, &packets, n, Fanout::Tap);
            assert_eq!(phase.packets as usize, packets.len());
            assert_eq!(phase.missed, 0);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return;
    }

    println!(
        "source: {} ({} packets, {:.1} s of video, {:.2} Mbit/s); tokio multi-thread runtime, 2 workers",
        clip.display(),
        packets.len(),
        video_s,
        bytes as f64 * 8.0 / video_s / 1e6,
    );
    println!("process CPU (utime + stime) while the producer pushes in real time\n");
    println!(
        "| fan-out | subscribers | CPU-s per s of video | user | system | + over 0 subscribers, µs per packet per subscriber | deliveries | bytes counted per subscriber | packets missed | last packet reaches all, ms | machine busy cores |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut slopes = Vec::new();
    for how in [Fanout::Tap, Fanout::Watch] {
        let mut base = None;
        let mut points = Vec::new();
        for n in SUBSCRIBERS {
            let p = run(&runtime, &packets, n, how);
            let cpu = p.cpu_user + p.cpu_sys;
            points.push((n as f64, cpu / (p.packets as f64)));
            let base_cpu = *base.get_or_insert(cpu);
            let per = if n > 0 {
                format!(
                    "{:.2}",
                    (cpu - base_cpu) / (p.packets as f64 * n as f64) * 1e6
                )
            } else {
                "–".into()
            };
            let counted = match (n, how) {
                (0, _) => "–".into(),
                (_, Fanout::Tap) => format!("{bytes} (all)"),
                (_, Fanout::Watch) => "–".into(),
            };
            println!(
                "| {} | {n} | {:.4} | {:.4} | {:.4} | {per} | {} | {counted} | {} | {:.2} | {:.2} |",
                match how {
                    Fanout::Tap => "packet tap",
                    Fanout::Watch => "bare watch channel",
                },
                cpu / p.wall,
                p.cpu_user / p.wall,
                p.cpu_sys / p.wall,
                p.packets * n as u64 - p.missed,
                p.missed,
                p.last_delivery_ms,
                p.machine_busy,
            );
        }
        slopes.push((how, slope(&points) * 1e6));
    }
    println!();
    for (how, us) in slopes {
        println!(
            "{}: least-squares slope over all subscriber counts: {us:.2} µs of CPU per packet per subscriber",
            match how {
                Fanout::Tap => "packet tap",
                Fanout::Watch => "bare watch channel",
            }
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// How the packets reach the subscribers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fanout {
    /// camhub's packet tap: each subscriber reads the ring from its own cursor.
    Tap,
    /// For comparison, no ring at all: a bare `tokio::sync::watch` channel holding the newest
    /// `Arc<Packet>` (latest-value: it would lose packets under load, but shows what waking the
    /// tasks and handing each an `Arc` costs by itself).
    Watch,
}

/// One phase: `n` subscribers, then the packets pushed at their due times; asserts that every
/// subscriber counted every packet and byte, none skipped.
fn run(runtime: &tokio::runtime::Runtime, packets: &[Source], n: usize, how: Fanout) -> Phase {
    let tap = Arc::new(PacketTap::default());
    let generation = tap.start(StreamParams::Codec {
        codec: Codec::H264,
        extradata: None,
    });
    let (watch_tx, _) = tokio::sync::watch::channel::<Option<Arc<Packet>>>(None);
    let expected_bytes: usize = packets.iter().map(|p| p.data.len()).sum();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let mut sub = tap.subscribe(MAX_LAG);
            let mut rx = watch_tx.subscribe();
            runtime.spawn(async move {
                let (mut bytes, mut count, mut skipped) = (0usize, 0u64, 0u64);
                loop {
                    let packet = match how {
                        Fanout::Tap => {
                            let d = sub.next().await;
                            skipped += d.skipped;
                            d.packet
                        }
                        Fanout::Watch => {
                            if rx.changed().await.is_err() {
                                return (bytes, count, skipped, Instant::now());
                            }
                            let Some(p) = rx.borrow_and_update().clone() else {
                                continue;
                            };
                            p
                        }
                    };
                    // An empty packet ends the run.
                    if packet.data.is_empty() {
                        return (bytes, count, skipped, Instant::now());
                    }
                    bytes += packet.data.len();
                    count += 1;
                }
            })
        })
        .collect();
    // Let the tasks reach their first wait.
    std::thread::sleep(Duration::from_millis(200));

    let push = |data: Bytes, keyframe: bool, pts: i64, dts: i64, received: Instant| match how {
        Fanout::Tap => {
            tap.push(data, keyframe, pts, dts, received, unix_ms());
        }
        Fanout::Watch => {
            watch_tx.send_replace(Some(Arc::new(Packet {
                data,
                keyframe,
                pts,
                dts,
                received,
                unix_ms: unix_ms(),
                generation,
            })));
        }
    };
    let (busy0, cpu0) = (machine_busy(), process_cpu());
    let start = Instant::now();
    for p in packets {
        let due = start + p.due;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        push(p.data.clone(), p.keyframe, p.pts, p.dts, Instant::now());
    }
    let wall = start.elapsed().as_secs_f64();
    // The end marker, one frame interval later.
    std::thread::sleep(Duration::from_millis(40));
    let end_push = Instant::now();
    push(Bytes::new(), false, 0, 0, end_push);
    let mut last_done = end_push;
    let mut missed = 0;
    for t in tasks {
        let (bytes, count, skipped, done) = runtime.block_on(t).expect("subscriber task");
        if how == Fanout::Tap {
            assert_eq!(skipped, 0, "a subscriber skipped packets");
            assert_eq!(count as usize, packets.len(), "a subscriber missed packets");
            assert_eq!(bytes, expected_bytes, "a subscriber missed bytes");
        }
        missed += packets.len() as u64 - count;
        last_done = last_done.max(done);
    }
    let (user1, sys1) = process_cpu();
    let busy = machine_busy_since(busy0);
    Phase {
        packets: packets.len() as u64,
        missed,
        wall,
        cpu_user: user1 - cpu0.0,
        cpu_sys: sys1 - cpu0.1,
        machine_busy: busy,
        last_delivery_ms: last_done.duration_since(end_push).as_secs_f64() * 1e3,
    }
}

/// Least-squares slope of y against x.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx > 0.0 {
        sxy / sxx
    } else {
        0.0
    }
}

/// The clip's first `seconds` of packets, in memory, with their due times.
fn read_packets(clip: &Path, seconds: f64) -> Vec<Source> {
    let mut demuxer = Demuxer::open(
        clip.to_str().expect("a UTF-8 path"),
        None,
        &BTreeMap::new(),
        false,
        Arc::new(AtomicBool::new(false)),
    )
    .expect("open the clip");
    let mut out = Vec::new();
    while let Some(p) = demuxer.read().expect("read a packet") {
        if p.due.as_secs_f64() >= seconds {
            break;
        }
        out.push(Source {
            data: Bytes::from(p.data),
            keyframe: p.keyframe,
            pts: p.pts_90k,
            dts: p.dts_90k,
            due: p.due,
        });
    }
    assert!(
        !out.is_empty() && out[0].keyframe,
        "the clip starts with a keyframe"
    );
    out
}

/// `path`, made with the benchmark's clip command (`seconds` long) if it is not there yet.
fn ensure_clip(path: &Path, seconds: u32) -> PathBuf {
    if path.exists() {
        return path.to_path_buf();
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("clip directory");
    }
    let tmp = path.with_extension("tmp.mp4");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "50"])
        .args(["-pix_fmt", "yuv420p", "-an", "-movflags", "+faststart"])
        .arg(&tmp)
        .status()
        .expect("run ffmpeg (apt install ffmpeg)");
    assert!(status.success(), "ffmpeg could not make the clip");
    std::fs::rename(&tmp, path).expect("move the clip into place");
    path.to_path_buf()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// This process's (user, system) CPU seconds, all threads (clock ticks of 10 ms: phases last
/// seconds).
fn process_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let after = stat
        .rsplit_once(')')
        .map_or(stat.as_str(), |(_, rest)| rest);
    let field = |i: usize| -> f64 {
        after
            .split_whitespace()
            .nth(i - 2)
            .and_then(|s| s.parse::<f64>().ok())
            .expect("a /proc stat field")
            / 100.0
    };
    (field(13), field(14))
}

/// (busy, total) jiffies of the whole machine.
fn machine_busy() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let vals: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|s| s.parse().ok())
        .collect();
    let total: u64 = vals.iter().sum();
    let idle = vals.get(3).copied().unwrap_or(0) + vals.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Busy cores of the whole machine since `before`.
fn machine_busy_since(before: (u64, u64)) -> f64 {
    let (b, t) = machine_busy();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (b - before.0) as f64 / (t - before.1).max(1) as f64 * cores as f64
}
