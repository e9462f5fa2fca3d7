#!/usr/bin/env python3
"""Where the per-viewer cost goes: profile camhub serving N MJPEG viewers (issue 5).

Starts camhub as benches/mjpeg_fanout.py does (one `ffmpeg:` camera looping the 1080p25 clip), N light
viewers of `stream.mjpeg?width=640` in child processes (≤ 50 each), and over the measured window:
  - user and system CPU of the server, per thread (`/proc/PID/task/*/stat`);
  - `perf record` (cpu-clock, all the server's threads, no call graphs) and `perf report` sorted by
    thread and by kernel / camhub / library, plus the top symbols; skipped if perf does not work here.

  python3 benches/profile_viewers.py [--viewers 500] [--seconds 20] [--warmup 6]
Prints Markdown. Needs Debian's linux-perf for the profile (`perf stat -e cpu-clock true` must work).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mjpeg_fanout as mf  # noqa: E402


def perf_works():
    try:
        return subprocess.run(["perf", "stat", "-e", "cpu-clock", "true"], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def perf_report(data, sort, limit, comms=None):
    """[(percent, key columns)] from `perf report --stdio` (percent of all the server's samples)."""
    cmd = ["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", sort, "--percent-limit", "0.2"]
    if comms:
        cmd += ["--comms", comms, "--percentage", "absolute"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "%" not in line.split()[0]:
            continue
        parts = line.split(None, 1)
        rows.append((float(parts[0].rstrip("%")), parts[1] if len(parts) > 1 else ""))
    return rows[:limit]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="/tmp/target-release/release/camhub")
    ap.add_argument("--viewers", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=6)
    ap.add_argument("--bframes", type=int, default=None)
    args = ap.parse_args()
    mf.raise_fd_limit()
    if args.bframes is not None:
        mf.CLIP = os.path.join(mf.CACHE, f"testsrc2_1080p25_20s_bf{args.bframes}.mp4")
        mf.CLIP_CMD = mf.CLIP_CMD + ["-bf", str(args.bframes)]
    mf.ensure_clip()
    use_perf = perf_works()
    workdir = tempfile.mkdtemp(prefix="camhub-prof-")
    proc, port, _, _ = mf.start_camhub(args.binary, workdir)
    data = os.path.join(workdir, "perf.data")
    path = f"/api/cameras/{mf.CAM}/stream.mjpeg?width={mf.WIDTH}"
    try:
        t0 = time.monotonic() + args.warmup
        t1 = t0 + args.seconds
        clients = mf.spawn_clients(port, path, args.viewers, t0, t1, t1 + 1)
        mf.sleep_until(t0)
        m0 = mf.metrics(port)
        probe = mf.Probe([proc.pid])
        perf = None
        if use_perf:
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999", "-p", str(proc.pid),
                                     "-o", data, "--", "sleep", str(args.seconds)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        mf.sleep_until(t1)
        probe.stop()
        m1 = mf.metrics(port)
        if perf:
            perf.wait(timeout=60)
        viewers = mf.collect_clients(clients)
    finally:
        mf.stop(proc)
    wall = probe.wall
    frames_out = mf.metric(m1, "camhub_frames_out_total") - mf.metric(m0, "camhub_frames_out_total")
    user, system = probe.split[proc.pid]
    fps = [v["win"] / wall for v in viewers]
    print(f"### Profile: camhub serving {args.viewers} MJPEG viewers ({args.seconds:g} s window)\n")
    print(f"Server CPU {(user + system) / wall:.3f} CPU-s/s = {user / wall:.3f} user + {system / wall:.3f} system; "
          f"{frames_out / wall:.0f} JPEG parts/s handed to viewers; viewer fps min {min(fps):.2f}; "
          f"machine busy {probe.machine_busy_cores:.2f} cores.\n")
    print("| thread | user CPU-s/s | system CPU-s/s |")
    print("|---|---:|---:|")
    for name, (u, s) in sorted(probe.tsplit[proc.pid].items(), key=lambda kv: -sum(kv[1])):
        if (u + s) / wall >= 0.002:
            print(f"| `{name}` | {u / wall:.3f} | {s / wall:.3f} |")
    print()
    if not use_perf:
        print("(perf does not work on this machine: no profile)")
        return
    print("`perf record -e cpu-clock -F 999 -p PID` over the same window; share of the server's samples:\n")
    print("| % | thread, object |")
    print("|---:|---|")
    for pc, key in perf_report(data, "comm,dso", 25):
        print(f"| {pc:.1f} | {key} |")
    print("\nTop symbols of the async runtime's threads (`camhub-io`: HTTP, the viewers' tasks, socket writes), "
          "% of all the server's samples:\n")
    print("| % | object, symbol |")
    print("|---:|---|")
    for pc, key in perf_report(data, "dso,sym", 45, comms="camhub-io"):
        print(f"| {pc:.1f} | {key.replace('|', '/')} |")
    print(f"\n(perf data: {data})")


if __name__ == "__main__":
    main()
