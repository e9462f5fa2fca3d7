#!/usr/bin/env python3
"""Browser video fan-out (issue 8, "What the benchmark must show"): one 1080p25 H.264 camera served as
fragmented MP4 (`stream.mp4`, the same packets and fragments as the MSE WebSocket) to many viewers, no
decode, no re-encode; against the `ffmpeg` CLI doing the same job (`-c copy` to fragmented MP4) for one
client, in the same run.

One run:
  1. makes (once, cached in benches/.cache/) a 1080p25 H.264 clip of testsrc2 long enough for every
     phase (libx264 veryfast, 4 Mbit/s, GOP 50 = 2 s, no B-frames: like a camera's main stream);
  2. serves it over RTSP (GStreamer's rtsp-server, motion_cost.py's `--serve` mode: a session plays the
     clip from its start at its native pace, no re-encoding);
  3. reference: `ffmpeg -rtsp_transport tcp -i rtsp://… -c copy -f mp4 -movflags
     frag_keyframe+empty_moov+default_base_moof pipe:1` read (and discarded) by this script: one viewer;
  4. camhub (a fresh process per phase) with the camera, serving `stream.mp4` to 10, 100, 500 and 1000
     light viewers (child processes that parse only the chunked HTTP body and the MP4 box headers,
     counting `moof` boxes = frames; they never decode);
  5. per phase: camhub's CPU-s/s (utime + stime, all threads), peak RSS, CPU µs per viewer-frame, the
     frames each viewer received per second, keyframe resyncs (`camhub_keyframe_resyncs_total`: a viewer
     that fell 1.5 s behind), decode CPU (`camhub_decode_seconds_total`, must stay 0);
  6. time to first frame of a new viewer while the camera streams (connect → first complete `moof` +
     `mdat`), against the GOP duration (what a server without the cached GOP makes a viewer wait, on
     average half of it, at worst all of it).
Prints Markdown and writes (or replaces) its section in benches/RESULTS.md.

Stdlib + the ffmpeg CLI + /usr/bin/python3 with python3-gi and gir1.2-gst-rtsp-server-1.0 (scripts/setup.sh
test installs them). Build camhub first:
  CARGO_TARGET_DIR=/tmp/target-release cargo build --release -p camhub
then:  python3 benches/mse_fanout.py [--binary PATH] [--viewers 10,100,500,1000] [--duration 20]
"""

import argparse
import json
import os
import selectors
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mjpeg_fanout as mf  # noqa: E402  (/proc probes, versions, helpers)
import motion_cost as mc  # noqa: E402  (the RTSP server)

log = mf.log
CAM = "cam"
FPS = 25
GOP_S = 2.0
SECTION_BEGIN = "<!-- mse_fanout.py: begin (rewritten by benches/mse_fanout.py) -->"
SECTION_END = "<!-- mse_fanout.py: end -->"


def clip_path(seconds):
    return os.path.join(mf.CACHE, f"testsrc2_1080p25_{seconds}s_g50_bf0_4M.mp4")


def ensure_clip(seconds):
    path = clip_path(seconds)
    if not os.path.exists(path):
        os.makedirs(mf.CACHE, exist_ok=True)
        log(f"encoding a {seconds} s 1080p25 clip once (cached in benches/.cache/) ...")
        tmp = path + ".tmp.mp4"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                        "-i", "testsrc2=size=1920x1080:rate=25", "-t", str(seconds), "-c:v", "libx264",
                        "-preset", "veryfast", "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M", "-g", "50",
                        "-bf", "0", "-pix_fmt", "yuv420p", "-an", "-movflags", "+faststart", tmp], check=True)
        os.replace(tmp, path)
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,profile,width,height,bit_rate,nb_frames", "-of", "json", path],
                           check=True, capture_output=True, text=True)
    st = json.loads(probe.stdout)["streams"][0]
    st["path"] = path
    return st


class Mp4Conn(mf.MjpegConn):
    """A `stream.mp4` response: HTTP/1.1 chunked framing (the parent's), then MP4 box headers; feed()
    returns the number of media fragments (`moof` boxes followed by their `mdat`) completed."""

    def __init__(self):
        super().__init__()
        self.box_hdr = bytearray()
        self.box_left = 0
        self.box_type = b""
        self.init_seen = False

    def _mp(self, mv):
        done = 0
        i, n = 0, len(mv)
        while i < n:
            if self.box_left:
                take = min(self.box_left, n - i)
                i += take
                self.box_left -= take
                if self.box_left == 0 and self.box_type == b"mdat":
                    done += 1
                continue
            need = 8 - len(self.box_hdr)
            self.box_hdr += mv[i:i + need]
            i += min(need, n - i)
            if len(self.box_hdr) < 8:
                continue
            size = int.from_bytes(self.box_hdr[:4], "big")
            self.box_type = bytes(self.box_hdr[4:8])
            self.box_hdr.clear()
            if size < 8:
                raise ValueError(f"box {self.box_type!r} of size {size}")
            if self.box_type == b"moov":
                self.init_seen = True
            elif self.box_type == b"moof" and not self.init_seen:
                self.bad += 1
            self.box_left = size - 8
            if self.box_left == 0 and self.box_type == b"mdat":
                done += 1
        return done


def client_main(args):
    """Child process: N stream.mp4 viewers on one selector loop; prints a JSON summary at the end."""
    mf.MjpegConn = Mp4Conn  # mf.client_main builds its parsers from this name
    mf.client_main(args)


def spawn_clients(port, path, n, t0, t1, t_stop, per_proc=100):
    procs = []
    left = n
    while left > 0:
        k = min(per_proc, left)
        left -= k
        cmd = [sys.executable, os.path.abspath(__file__), "--client", "--port", str(port), "--path", path,
               "--n", str(k), "--t0", repr(t0), "--t1", repr(t1), "--t-stop", repr(t_stop)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    return procs


def first_fragment_s(port, path, timeout=10.0):
    """Seconds from the TCP connect to the end of the first complete fragment."""
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(mf.request_bytes(port, path))
        p = Mp4Conn()
        buf = bytearray(1 << 17)
        while True:
            got = s.recv_into(buf)
            if not got:
                raise RuntimeError("closed before the first fragment")
            if p.feed(memoryview(buf)[:got]):
                return time.monotonic() - t
    finally:
        s.close()


def run_camhub(args, server, n, workdir):
    proc, port, _, _ = mf.start_camhub(args.binary, workdir, url=server.url(1))
    path = f"/api/cameras/{CAM}/stream.mp4"
    res = {"name": f"camhub {n} viewers", "n": n}
    try:
        # The camera connects with the first viewer; the clients then all start at its cached GOP.
        first = first_fragment_s(port, path, timeout=20)
        res["cold_first_s"] = first
        t_spawn = time.monotonic()
        t0 = t_spawn + args.warmup
        t1 = t0 + args.duration
        t_stop = t1 + 1
        clients = spawn_clients(port, path, n, t0, t1, t_stop)
        mf.sleep_until(t0)
        m0 = mf.metrics(port)
        probe = mf.Probe([proc.pid, server.proc.pid] + [c.pid for c in clients])
        mf.sleep_until(t1)
        probe.stop()
        m1 = mf.metrics(port)
        st = mf.proc_status(proc.pid)
        viewers = []
        for c in clients:
            out, _ = c.communicate(timeout=120)
            viewers.extend(json.loads(out))
        wall = probe.wall

        def d(name):
            return mf.metric(m1, name) - mf.metric(m0, name)

        fps = [v["win"] / wall for v in viewers]
        cpu = probe.cpu[proc.pid] / wall
        res.update({
            "cpu_per_s": cpu,
            "user_per_s": probe.split[proc.pid][0] / wall,
            "sys_per_s": probe.split[proc.pid][1] / wall,
            "hwm_mb": st["VmHWM"] / 1024,
            "n_threads": st["Threads"],
            "fps_in": d("camhub_frames_in_total") / wall,
            "decode_per_s": d("camhub_decode_seconds_total") / wall,
            "resyncs": d("camhub_keyframe_resyncs_total"),
            "mbit_out": d("camhub_packet_bytes_out_total") * 8 / wall / 1e6,
            "viewer_fps_median": statistics.median(fps) if fps else 0.0,
            "viewer_fps_min": min(fps) if fps else 0.0,
            "viewers_full_rate": sum(1 for f in fps if f >= 0.95 * FPS),
            "viewer_errors": [v["err"] for v in viewers if v["err"] and v["err"] != "closed by server"],
            "viewer_bad": sum(v["bad"] for v in viewers),
            "us_per_viewer_frame": cpu / max(1e-9, sum(fps)) * 1e6,
            "client_cpu_per_s": sum(probe.cpu[c.pid] for c in clients) / wall,
            "server_cpu_per_s": probe.cpu[server.proc.pid] / wall,
            "machine_busy": probe.machine_busy_cores,
            "other_busy": probe.other_busy_cores,
            "threads": {k: v / wall for k, v in probe.threads[proc.pid].items() if v / wall >= 0.005},
        })
        # A new viewer while the camera streams (the n viewers gone): the cached GOP at once.
        samples = []
        for _ in range(args.ttff_samples):
            samples.append(first_fragment_s(port, path))
            time.sleep(0.37)
        res["ttff_ms"] = [s * 1000 for s in samples]
    finally:
        mf.stop(proc)
    return res


def run_ffmpeg(args, server):
    """The reference: ffmpeg -c copy to fragmented MP4 for one client (this script reads and discards)."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-rtsp_transport", "tcp", "-i",
           server.url(1), "-c", "copy", "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof",
           "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    got = [0]

    def drain():
        while True:
            b = proc.stdout.read(1 << 16)
            if not b:
                return
            got[0] += len(b)

    threading.Thread(target=drain, daemon=True).start()
    try:
        time.sleep(args.warmup)
        b0 = got[0]
        probe = mf.Probe([proc.pid])
        time.sleep(args.duration)
        probe.stop()
        st = mf.proc_status(proc.pid)
        return {"name": "ffmpeg -c copy, 1 client", "cmd": shlex.join(cmd),
                "cpu_per_s": probe.cpu[proc.pid] / probe.wall, "hwm_mb": st["VmHWM"] / 1024,
                "mbit_out": (got[0] - b0) * 8 / probe.wall / 1e6, "other_busy": probe.other_busy_cores}
    finally:
        mf.stop(proc)


def report(args, info, clip, ff, cams):
    L = []
    add = L.append
    add("# Browser video fan-out: `stream.mp4` / MSE, no transcoding (`benches/mse_fanout.py`)")
    add("")
    add("Issue 8, \"What the benchmark must show\". Written by `"
        + shlex.join(["python3", "benches/mse_fanout.py"] + args.argv) + "`; see the script's docstring.")
    add("")
    add(f"- date: {info['date']}; CPU: {info['cpu']}, nproc = {info['nproc']}; the machine is shared with other "
        "sessions' builds and tests")
    add(f"- camhub: {info['camhub']}, release build `{args.binary}` (built {info['built']})")
    add(f"- {info['ffmpeg']}")
    add(f"- Camera: {clip['width']}x{clip['height']} {clip['codec_name']} ({clip.get('profile', '?')}), {FPS} fps, "
        f"{int(clip.get('bit_rate', 0)) / 1e6:.1f} Mbit/s, GOP {GOP_S:g} s, no B-frames; served over RTSP (TCP) "
        "by GStreamer's rtsp-server from a file, no re-encoding (its CPU is in the table, counted for nobody).")
    add(f"- Viewers: light clients in other processes ({'100'} connections each), each reading "
        f"`/api/cameras/{CAM}/stream.mp4` and counting fragments (`moof` + `mdat`), no decode. "
        f"{args.warmup:g} s warm-up, {args.duration:g} s measured, one camhub process per phase.")
    add("")
    add("| phase | CPU-s/s | user / sys | peak RSS MB | µs CPU per viewer-frame | viewer fps median (min) | "
        "viewers at ≥ 95 % of 25 fps | resyncs | Mbit/s out | decode CPU-s/s | clients' CPU-s/s | RTSP server | others busy |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    add(f"| {ff['name']} | {ff['cpu_per_s']:.3f} | – | {ff['hwm_mb']:.1f} | – | – | – | – | {ff['mbit_out']:.1f} | – | – | – | "
        f"{ff['other_busy']:.2f} |")
    for r in cams:
        add(f"| {r['name']} | {r['cpu_per_s']:.3f} | {r['user_per_s']:.3f} / {r['sys_per_s']:.3f} | {r['hwm_mb']:.1f} | "
            f"{r['us_per_viewer_frame']:.1f} | {r['viewer_fps_median']:.2f} ({r['viewer_fps_min']:.2f}) | "
            f"{r['viewers_full_rate']} of {r['n']} | {r['resyncs']:.0f} | {r['mbit_out']:.0f} | {r['decode_per_s']:.3f} | "
            f"{r['client_cpu_per_s']:.2f} | {r['server_cpu_per_s']:.3f} | {r['other_busy']:.2f} |")
    add("")
    add(f"Reference command: `{ff['cmd']}`.")
    add("")
    add("### Time to first frame of a new viewer")
    add("")
    add(f"Connect → the first complete fragment, while the camera streams ({args.ttff_samples} samples per phase, "
        f"after the phase's viewers left), against the GOP ({GOP_S:g} s): a server without the cached GOP makes a "
        f"new viewer wait for the next keyframe, {GOP_S / 2:g} s on average and up to {GOP_S:g} s.")
    add("")
    add("| phase | median ms | max ms | first viewer, camera idle (connect + RTSP set-up) ms |")
    add("|---|---:|---:|---:|")
    for r in cams:
        t = r["ttff_ms"]
        add(f"| {r['name']} | {statistics.median(t):.1f} | {max(t):.1f} | {r['cold_first_s'] * 1000:.0f} |")
    add("")
    add("### Targets")
    add("")
    big = max(cams, key=lambda r: r["n"])
    ok = big["viewers_full_rate"] == big["n"]
    add(f"- {big['n']} viewers at full frame rate on this 2-core machine: {big['viewers_full_rate']} of {big['n']} at "
        f"≥ 95 % of 25 fps, camhub {big['cpu_per_s']:.2f} CPU-s/s, {big['us_per_viewer_frame']:.1f} µs per "
        f"viewer-frame: **{'MET' if ok else 'NOT MET'}**")
    all_ttff = [x for r in cams for x in r["ttff_ms"]]
    add(f"- time to first frame < 100 ms: median {statistics.median(all_ttff):.1f} ms, max {max(all_ttff):.1f} ms "
        f"(vs {GOP_S * 1000:.0f} ms GOP): **{'MET' if max(all_ttff) < 100 else 'NOT MET'}**")
    dec = max(r["decode_per_s"] for r in cams)
    add(f"- nothing decoded for packet viewers: decode CPU-s/s max {dec:.4f}: **{'MET' if dec == 0 else 'NOT MET'}**")
    add("- go2rtc's published figures: none per viewer. Its maintainer's only figure is \"simple RTSP 4K proxying "
        "can load 3% of CPU\" (go2rtc issue #1120, no machine or viewer count given); users report 15–45 % of a "
        "core for 9 cameras (#1322). The `ffmpeg -c copy` row is the in-run reference.")
    errors = [e for r in cams for e in r["viewer_errors"]]
    if errors:
        add(f"- viewer errors: {len(errors)} ({', '.join(sorted(set(errors))[:5])})")
    return "\n".join(L)


def write_section(path, text):
    with open(path) as f:
        old = f.read()
    block = f"{SECTION_BEGIN}\n\n{text.rstrip()}\n\n{SECTION_END}\n"
    if SECTION_BEGIN in old and SECTION_END in old:
        a = old.index(SECTION_BEGIN)
        b = old.index(SECTION_END) + len(SECTION_END)
        new = old[:a] + block.rstrip("\n") + old[b:]
    else:
        new = old.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="/tmp/target-release/release/camhub")
    ap.add_argument("--viewers", default="10,100,500,1000")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=6.0)
    ap.add_argument("--ttff-samples", type=int, default=10, dest="ttff_samples")
    ap.add_argument("--commit", help="the binary was built from a clean export of this commit")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int)
    ap.add_argument("--path")
    ap.add_argument("--n", type=int)
    ap.add_argument("--t0", type=float)
    ap.add_argument("--t1", type=float)
    ap.add_argument("--t-stop", type=float, dest="t_stop")
    args = ap.parse_args()
    if args.client:
        return client_main(args)
    args.argv = sys.argv[1:]
    args.binary = os.path.abspath(args.binary)
    counts = [int(x) for x in args.viewers.split(",") if x]
    mf.raise_fd_limit()
    # Every phase plays the clip from its start (a session per PLAY): long enough for the longest.
    per_phase = args.warmup + args.duration + args.ttff_samples * 0.6 + 15
    clip = ensure_clip(int(per_phase) + 30)
    info = mf.versions(args.binary, args.commit)
    workdir = tempfile.mkdtemp(prefix="camhub-mse-")
    server = mc.Server(clip["path"], workdir, 1)
    try:
        log("reference: ffmpeg -c copy, 1 client")
        ff = run_ffmpeg(args, server)
        log(f"  {ff['cpu_per_s']:.3f} CPU-s/s")
        cams = []
        for n in counts:
            log(f"camhub, {n} viewers")
            r = run_camhub(args, server, n, workdir)
            log(f"  {r['cpu_per_s']:.3f} CPU-s/s, {r['us_per_viewer_frame']:.1f} µs/viewer-frame, viewers "
                f"{r['viewer_fps_median']:.2f} fps (min {r['viewer_fps_min']:.2f}), resyncs {r['resyncs']:.0f}, "
                f"ttff median {statistics.median(r['ttff_ms']):.1f} ms; others busy {r['other_busy']:.2f}")
            cams.append(r)
    finally:
        server.stop()
    text = report(args, info, clip, ff, cams)
    print(text)
    with open(os.path.join(workdir, "raw.json"), "w") as f:
        json.dump({"ffmpeg": ff, "camhub": cams, "info": info, "clip": clip}, f, indent=1, default=str)
    if args.results:
        write_section(args.results, text)
        log(f"wrote the mse_fanout section of {args.results}")


if __name__ == "__main__":
    main()
