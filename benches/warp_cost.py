#!/usr/bin/env python3
"""Issue 7's per-frame benchmark: what camhub's transforms cost per picture, against OpenCV on the
same picture in the same run.

camhub: `cargo bench -p camhub-media --bench warp -- --json` (WarpPlan::apply on YUV 4:2:0 planes,
the thread's CPU time per picture, median of runs). OpenCV (Debian's python3-opencv, one thread):
the same operations on the same picture (the formula in crates/media/benches/warp.rs `pattern`),
    - on its I420 planes, as camhub does them (Y, then U and V at half size; warpPerspective
      INTER_LINEAR with the matrix scaled for the chroma planes; cv2.rotate; a copied slice), and
    - on the BGR picture, seed 004's way (one warpPerspective of a 3-channel picture).
Prints a Markdown table; `--results FILE` appends it with a header (benches/RESULTS.md).
Usage: python3 benches/warp_cost.py [--runs 7] [--ms 300] [--results benches/RESULTS.md]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pattern(w, h):
    x = np.arange(w)[None, :]
    y = np.arange(h)[:, None]
    g = (x + y) // 8 % 200
    c = np.where((x // 16 + y // 16) % 2 == 0, 40, 0)
    return np.minimum(16 + g + c, 255).astype(np.uint8)


def corners(w, h):
    s = lambda x, y: [x / 640 * w, y / 480 * h]
    return np.float32([s(0, 92), s(0, 325), s(640, 349), s(640, 116)])


def timed(fn, runs, ms):
    per = []
    for _ in range(runs):
        t0, w0, n = time.thread_time(), time.perf_counter(), 0
        while True:
            fn()
            n += 1
            if time.perf_counter() - w0 >= ms / 1000:
                break
        per.append((time.thread_time() - t0) * 1e3 / n)
    per.sort()
    return per[len(per) // 2]


def opencv(w, h, runs, ms):
    cv2.setNumThreads(1)
    y = pattern(w, h)
    u = np.full((h // 2, w // 2), 128, np.uint8)
    v = u.copy()
    bgr = cv2.merge([y, y, y])
    m = cv2.getPerspectiveTransform(corners(w, h), np.float32([(0, 0), (0, h), (w, h), (w, 0)]))
    # The chroma planes' matrix: half-size coordinates in and out (sample centres as camhub).
    half = np.float64([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]])
    double = np.float64([[2, 0, 0.5], [0, 2, 0.5], [0, 0, 1]])
    mc = half @ m @ double
    x0, y0, cw, ch = w // 6, h // 6, w * 2 // 3, h * 2 // 3
    ops = {
        "rotate90": lambda: [cv2.rotate(p, cv2.ROTATE_90_CLOCKWISE) for p in (y, u, v)],
        "crop": lambda: [
            np.ascontiguousarray(y[y0:y0 + ch, x0:x0 + cw]),
            np.ascontiguousarray(u[y0 // 2:(y0 + ch) // 2, x0 // 2:(x0 + cw) // 2]),
            np.ascontiguousarray(v[y0 // 2:(y0 + ch) // 2, x0 // 2:(x0 + cw) // 2]),
        ],
        "perspective": lambda: (
            cv2.warpPerspective(y, m, (w, h), flags=cv2.INTER_LINEAR),
            cv2.warpPerspective(u, mc, (w // 2, h // 2), flags=cv2.INTER_LINEAR),
            cv2.warpPerspective(v, mc, (w // 2, h // 2), flags=cv2.INTER_LINEAR),
        ),
    }
    out = {op: timed(fn, runs, ms) for op, fn in ops.items()}
    out["perspective_bgr"] = timed(lambda: cv2.warpPerspective(bgr, m, (w, h)), runs, ms)
    return out


def camhub(runs, ms):
    cmd = ["cargo", "bench", "-q", "-p", "camhub-media", "--bench", "warp", "--",
           "--json", "--runs", str(runs), "--ms", str(ms)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return {(r["size"], r["op"]): r for r in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--ms", type=int, default=300)
    ap.add_argument("--results", help="append the report to this file")
    a = ap.parse_args()
    ours = camhub(a.runs, a.ms)
    lines = [
        "| picture | operation | camhub CPU ms | OpenCV on I420 planes, ms | camhub / OpenCV | "
        "OpenCV BGR (seed 004), ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (w, h) in [(1280, 720), (1920, 1080)]:
        ref = opencv(w, h, a.runs, a.ms)
        for op in ["rotate90", "crop", "perspective"]:
            c = ours[(f"{w}x{h}", op)]["cpu_ms"]
            bgr = f"{ref['perspective_bgr']:.2f}" if op == "perspective" else "–"
            lines.append(f"| {w}×{h} | {op} | {c:.2f} | {ref[op]:.2f} | {c / ref[op]:.2f} | {bgr} |")
    report = "\n".join(lines)
    print(report)
    if a.results:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()
        with open(a.results, "a") as f:
            f.write(f"\n## Transforms per picture (issue 7), `benches/warp_cost.py`, commit {commit}, "
                    f"{time.strftime('%Y-%m-%d')}\n\nOne thread each, CPU time per picture, median of "
                    f"{a.runs} runs of {a.ms} ms; OpenCV {cv2.__version__} (Debian python3-opencv).\n\n"
                    f"{report}\n")


if __name__ == "__main__":
    sys.exit(main())
