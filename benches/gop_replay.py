#!/usr/bin/env python3
"""Time to first picture after the decoder stopped: GOP replay (issue 5, "What the benchmark must show").

camhub runs one `always_on` `ffmpeg:` camera looping the 1080p25 H.264 benchmark clip (GOP 50 frames
= 2 s, `-g 50`): packets flow into the packet tap, but with no pixel consumer nothing is decoded.
Each sample:
  1. waits with no pixel consumer for longer than the decoder's 3 s grace (4.5 s + a varying 0-2 s,
     so requests land at varied phases within the GOP), reading `camhub_decode_seconds_total` once
     the grace is over and again just before the request: the two must be equal (the decoder had
     stopped), and the decode thread `cam-cam/decode` must be gone from /proc;
  2. times `GET /api/cameras/cam/frame.jpeg?width=640` from the request (before connecting) to the
     end of the body. camhub starts the decoder, which replays the cached GOP from its last keyframe
     (decoding every packet, publishing the newest picture), scales and encodes it.
The GOP phase of each request (frames since the last keyframe) is `camhub_frames_in_total` mod 50.
For reference, the same request while decoding already runs: (a) with an MJPEG viewer of the same
size streaming (the JPEG is at hand), (b) 0.5 s after the previous snapshot (the decoder is in its
grace period, the variant was idle: the request waits for the next frame).

Stdlib + the ffmpeg CLI; shares mjpeg_fanout.py's helpers. Build camhub first:
  CARGO_TARGET_DIR=/tmp/target-release cargo build --release -p camhub
then:  python3 benches/gop_replay.py [--samples 40] [--bframes 0] [--results benches/RESULTS-gop-replay.md]
Prints a Markdown section (and appends nothing): paste it or pass --results to write a file.
"""

import argparse
import http.client
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mjpeg_fanout as mf  # noqa: E402

GOP = 50
GRACE_S = 3.0
DECODE_THREAD = "cam-cam/decode"
CLIP_CMD = mf.CLIP_CMD[:]


def snapshot(port, width=mf.WIDTH):
    """(seconds from before connecting to the end of the body, status, body length, X-Frame-Age-Ms)."""
    t = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", f"/api/cameras/{mf.CAM}/frame.jpeg?width={width}")
        r = conn.getresponse()
        body = r.read()
        took = time.monotonic() - t
        return took, r.status, len(body), r.getheader("X-Frame-Age-Ms"), body[:2]
    finally:
        conn.close()


def decode_thread_alive(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() == DECODE_THREAD:
                    return True
        except OSError:
            pass
    return False


def decode_s(port):
    return mf.metric(mf.metrics(port), "camhub_decode_seconds_total")


def cold_samples(proc, port, n, base_wait):
    """The GOP-replay samples: [{ms, phase, flat, thread_gone, busy}]."""
    out = []
    for i in range(n):
        # Varied phases: 4.5 s + an offset that walks through the 2 s GOP in steps of 0.73 s.
        wait = base_wait + (i * 0.73) % 2.0
        t_start = time.monotonic()
        mf.sleep_until(t_start + GRACE_S + 0.6)
        d0 = decode_s(port)
        sys0 = mf.system_busy()
        mf.sleep_until(t_start + wait)
        m = mf.metrics(port)
        d1 = mf.metric(m, "camhub_decode_seconds_total")
        phase = int(mf.metric(m, "camhub_frames_in_total")) % GOP
        gone = not decode_thread_alive(proc.pid)
        took, status, length, age, soi = snapshot(port)
        b1, t1 = mf.system_busy()
        busy = (b1 - sys0[0]) / max(1, t1 - sys0[1]) * os.cpu_count()
        ok = status == 200 and soi == b"\xff\xd8" and length > 1000
        out.append({"ms": took * 1000, "phase": phase, "flat": d1 == d0, "decode_delta": d1 - d0,
                    "thread_gone": gone, "ok": ok, "status": status, "age": age, "busy": busy,
                    "wait": wait})
        mf.log(f"  sample {i + 1}/{n}: {took * 1000:.1f} ms, GOP phase {phase}, decoder stopped "
               f"{d1 == d0 and gone}, busy {busy:.2f}")
    return out


def warm_samples_with_viewer(port, n):
    """Snapshots while an MJPEG viewer of the same size streams (decoder running, JPEG at hand)."""
    stop = threading.Event()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(mf.request_bytes(port, f"/api/cameras/{mf.CAM}/stream.mjpeg?width={mf.WIDTH}"))
    s.settimeout(0.5)

    def drain():
        while not stop.is_set():
            try:
                if not s.recv(1 << 16):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    th = threading.Thread(target=drain, daemon=True)
    th.start()
    time.sleep(2.0)
    out = []
    for i in range(n):
        time.sleep(0.2 + (i * 0.0137) % 0.04)
        took, status, length, _, soi = snapshot(port)
        out.append({"ms": took * 1000, "ok": status == 200 and soi == b"\xff\xd8"})
    stop.set()
    th.join(timeout=2)
    s.close()
    return out


def warm_samples_in_grace(port, n):
    """Snapshots 0.5 s apart: the decoder runs (grace), the 640 variant has no subscriber between."""
    snapshot(port)
    time.sleep(1.0)
    out = []
    for i in range(n):
        time.sleep(0.5 + (i * 0.0137) % 0.04)
        took, status, length, _, soi = snapshot(port)
        out.append({"ms": took * 1000, "ok": status == 200 and soi == b"\xff\xd8"})
    return out


def stats(v):
    return (len(v), mf.pct(v, 0.5), mf.pct(v, 0.99), max(v), min(v))


def run(args, bframes):
    if bframes is not None:
        mf.CLIP = os.path.join(mf.CACHE, f"testsrc2_1080p25_20s_bf{bframes}.mp4")
        mf.CLIP_CMD = CLIP_CMD + ["-bf", str(bframes)]
    else:
        mf.CLIP = os.path.join(mf.CACHE, "testsrc2_1080p25_20s.mp4")
        mf.CLIP_CMD = CLIP_CMD
    clip = mf.ensure_clip()
    workdir = tempfile.mkdtemp(prefix="camhub-gop-")
    proc, port, _, logpath = mf.start_camhub(args.binary, workdir, 'always_on = true\n')
    try:
        time.sleep(2.0)  # streaming, no pixel consumer yet
        mf.log(f"clip {os.path.basename(mf.CLIP)} (has_b_frames {clip.get('has_b_frames')}): "
               f"{args.samples} cold samples")
        cold = cold_samples(proc, port, args.samples, args.wait)
        mf.log("warm: with an MJPEG viewer streaming")
        warm_viewer = warm_samples_with_viewer(port, args.warm_samples)
        time.sleep(GRACE_S + 1.5)
        mf.log("warm: decoder in its grace period")
        warm_grace = warm_samples_in_grace(port, args.warm_samples)
    finally:
        mf.stop(proc)
    return {"clip": clip, "clip_name": os.path.relpath(mf.CLIP, mf.REPO), "cold": cold,
            "warm_viewer": warm_viewer, "warm_grace": warm_grace, "log": logpath,
            "bframes": bframes}


def report(results, args, info):
    lines = ["### Time to first picture after the decoder stopped (GOP replay)\n",
             f"`python3 benches/gop_replay.py --samples {args.samples}` ({info['date']}, {info['camhub']}). "
             f"One `always_on` camera looping the clip: packets flow, nothing is decoded. Each cold sample waits "
             f"{args.wait:g}–{args.wait + 2:g} s with no pixel consumer (decoder grace 3 s), checks that "
             f"`camhub_decode_seconds_total` did not move between 3.6 s and the request and that the thread "
             f"`{DECODE_THREAD}` is gone, then times `GET /api/cameras/cam/frame.jpeg?width=640` from before "
             f"connecting to the end of the body. GOP phase = frames since the last keyframe when the request "
             f"was made (`camhub_frames_in_total` mod 50).\n",
             "| clip | request | samples | median ms | p99 ms | max ms | min ms | decoder had stopped | "
             "machine busy cores (median) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        cold = [s for s in r["cold"] if s["ok"]]
        v = [s["ms"] for s in cold]
        stopped = sum(1 for s in r["cold"] if s["flat"] and s["thread_gone"])
        bad = len(r["cold"]) - len(cold)
        name = f"{r['clip']['codec_name']} {r['clip']['width']}x{r['clip']['height']}, GOP 50, " \
               f"has_b_frames {r['clip'].get('has_b_frames')}"
        n, med, p99, mx, mn = stats(v)
        lines.append(f"| {name} | cold: decoder stopped, GOP replay | {n}{f' ({bad} failed)' if bad else ''} | "
                     f"{med:.1f} | {p99:.1f} | {mx:.1f} | {mn:.1f} | {stopped}/{len(r['cold'])} | "
                     f"{statistics.median(s['busy'] for s in r['cold']):.2f} |")
        for key, label in (("warm_viewer", "warm: an MJPEG viewer of the same size streams"),
                           ("warm_grace", "warm: decoder in its grace, variant idle (waits for the next frame)")):
            w = [s["ms"] for s in r[key] if s["ok"]]
            n, med, p99, mx, mn = stats(w)
            lines.append(f"| {name} | {label} | {n} | {med:.1f} | {p99:.1f} | {mx:.1f} | {mn:.1f} | – | – |")
    lines.append("")
    lines.append("By GOP phase (cold samples; median ms and samples per bucket of frames since the keyframe):\n")
    buckets = [(0, 12), (13, 24), (25, 37), (38, 49)]
    lines.append("| clip | " + " | ".join(f"phase {a}–{b}" for a, b in buckets) + " |")
    lines.append("|---|" + "---:|" * len(buckets))
    for r in results:
        cells = []
        for a, b in buckets:
            v = [s["ms"] for s in r["cold"] if s["ok"] and a <= s["phase"] <= b]
            cells.append(f"{statistics.median(v):.1f} ({len(v)})" if v else "–")
        lines.append(f"| has_b_frames {r['clip'].get('has_b_frames')} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="/tmp/target-release/release/camhub")
    ap.add_argument("--samples", type=int, default=40, help="cold samples per clip")
    ap.add_argument("--warm-samples", type=int, default=40)
    ap.add_argument("--wait", type=float, default=4.5, help="shortest wait with no pixel consumer, s")
    ap.add_argument("--clips", default="default,0",
                    help="x264 B-frames of the clips: 'default' (x264's own) and/or numbers, comma-separated")
    ap.add_argument("--results", default=None, help="also write the section to this file")
    ap.add_argument("--commit", default=None,
                    help="the binary was built from a clean export of this commit (not from this work tree)")
    args = ap.parse_args()
    if args.wait < GRACE_S + 1.0:
        sys.exit(f"--wait must exceed the decoder's grace ({GRACE_S:g} s) by 1 s at least")
    mf.raise_fd_limit()
    info = mf.versions(args.binary, args.commit)
    if info["stale"]:
        mf.log(f"WARNING: {args.binary} is older than {', '.join(info['stale'][:5])}: rebuild it")
    results = []
    for c in args.clips.split(","):
        results.append(run(args, None if c == "default" else int(c)))
    text = report(results, args, info)
    print(text)
    if args.results:
        with open(args.results, "w") as f:
            f.write(text + "\n")
    for r in results:
        mf.log(f"camhub log: {r['log']}")


if __name__ == "__main__":
    main()
