#!/usr/bin/env python3
"""What motion detection costs (issue 6, "Motion detection"): camhub against the Motion daemon
(https://motion-project.github.io/, Debian package `motion`), the same cameras, the same stream, the
same run.

The cameras are 640x360 25 fps H.264 streams, as a camera's substream would be: one clip (made once
with the ffmpeg CLI, cached in benches/.cache/) of a still, textured scene with light sensor noise,
crossed by a dark box (96x128 px, 5.3 % of the picture) from CROSS_START to CROSS_END seconds of
every CYCLE seconds and quiet the rest of the time; libx264 veryfast, 1 Mbit/s, GOP 25, no B-frames.
An RTSP server (GStreamer's rtsp-server through python3-gi, this script's `--serve` mode) plays it
at its native pace without re-encoding, a mount per camera (/c1 … /c8) and a pipeline per session
that starts the clip at the session's PLAY: each camera is its own RTSP session (over TCP), and each
camera's crossings are timed from its own PLAY, which the server reports (one shared pipeline would
not do: a PLAY with `Range: npt=0-` from a camera joining or reconnecting seeks it for everybody).

Per phase (a contender and a camera count: 1, 4, 8):
  - camhub: a release binary, one `[[camera]]` per camera with `url = "rtsp://127.0.0.1:PORT/cN"` and
    `[camera.motion] enabled = true` (all defaults: 10 fps analysed, threshold 20, min_area 0.5 %,
    end_after 10 s, best snapshot and 5 frames stored per event). No viewers.
  - Motion: one `motion -n` process with a `camera` file per camera: `netcam_url` the same URL,
    640x360, `netcam_params capture_rate=30` (it reads and decodes all 25 fps, as it must for H.264;
    a little above the camera's rate, as Motion's manual advises: at exactly 25 it fell seconds behind),
    `framerate 10` (pictures analysed per second, as camhub's fps), `threshold 1152` (changed pixels:
    0.5 % of 640x360, camhub's min_area), `event_gap 10` (camhub's end_after), no pictures, movies,
    text overlays, web control or stream; `on_event_start` / `on_event_end` append a line to a file,
    which the benchmark watches and stamps (every 50 ms). Every setting is printed in the report.
  - The floor: one `ffmpeg` CLI process decoding the same streams the way camhub's detection does
    (`-threads 1 -skip_loop_filter all`, every stream to `-f null`), nothing else. Every frame of an
    H.264 stream with no non-reference frames must be decoded to analyse any of them, so no detector
    on these streams costs less.
  - After both are connected (camhub: every camera's camhub_motion_frames_total moves; Motion: its log
    says every camera connected) and a warm-up, a measured window: the process's CPU (utime + stime
    of all threads, /proc/PID/stat) per second, its peak RSS (VmHWM), per thread; for camhub also
    /metrics over the window: camhub_decode_seconds_total (decode threads' CPU),
    camhub_motion_seconds_total (CPU of the detector calls alone), camhub_motion_frames_total.
  - Detection: every event either reported (camhub: GET /api/events; Motion: the on_event_* lines),
    matched against the crossings that happened while it was running: how many crossings each camera
    detected, events outside any crossing (false), the event's start and end after the box entered.
    Both wait end_after / event_gap (10 s) after the window, so the window's events have ended.
  - Busy machine: the machine is shared (other sessions build Rust on its 2 cores). If other
    processes (all busy cores minus the contender and the RTSP server) used more than
    --max-other-busy cores during a window, the phase is measured again, up to --tries times, and
    the quietest try is kept (as mjpeg_fanout.py does).
Rounds: every camera count, every contender, --rounds times, the contenders' order rotated per
round; the median of rounds is reported with every round's value.

Targets (issue 6): camhub's CPU ≤ 0.5x Motion's at every camera count; both detect every crossing
with no false events. Decode should dominate camhub's CPU (the breakdown shows it).

Needs Python 3 (stdlib only), the ffmpeg CLI, /usr/bin/python3 with python3-gi and
gir1.2-gst-rtsp-server-1.0 (scripts/setup.sh installs them for the test fixture), GStreamer's good and
bad plugins (qtdemux, h264parse, rtph264pay), `apt-get install -y motion`, and a release build:
  CARGO_TARGET_DIR=/tmp/target-release cargo build --release -p camhub
then:  python3 benches/motion_cost.py [--binary PATH] [--cameras 1,4,8] [--rounds 3] [--duration 40]
Prints Markdown; writes (or replaces) its section at the end of benches/RESULTS.md (--results '' not to).
"""

import argparse
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import mjpeg_fanout as mf  # noqa: E402  (/proc probes, versions, camhub start/stop helpers)

SECTION_BEGIN = "<!-- motion_cost.py: begin (rewritten by benches/motion_cost.py) -->"
SECTION_END = "<!-- motion_cost.py: end -->"
GST_PYTHON = "/usr/bin/python3"
log = mf.log

W, H, FPS = 640, 360, 25
# The scene's schedule: the box crosses from CROSS_START to CROSS_END of every CYCLE seconds. The quiet
# rest (15 s) is longer than camhub's end_after and Motion's event_gap (10 s), so every crossing is one
# event; a measured window of a multiple of CYCLE holds the same share of motion wherever it starts.
CYCLE = 20
CROSS_START = 3.0
CROSS_END = 8.0
BOX_W, BOX_H, BOX_Y = 96, 128, 116
# camhub's defaults this is compared with (crates/config: [camera.motion]).
CAMHUB_FPS = 10
CAMHUB_MIN_AREA = 0.5          # percent of the picture
CAMHUB_END_AFTER = 10          # seconds
MOTION_THRESHOLD = round(W * H * CAMHUB_MIN_AREA / 100)   # changed pixels: 1152


def clip_path(cycles):
    return os.path.join(mf.CACHE, f"motion_{W}x{H}_{FPS}fps_{cycles * CYCLE}s.mp4")


def clip_cmd(cycles, out):
    """The scene: a still texture (computed once by geq, then looped) with a dark box crossing it, then
    temporal noise; encoded like a camera's substream."""
    texture = ("nullsrc=s=%dx%d:r=%d,trim=end_frame=1,"
               "geq=lum='clip(115+45*sin(X/41)*cos(Y/29)+25*sin((X+2*Y)/9)+18*sin(X*X/9000+Y/5)+12*sin(X*Y/300),0,255)'"
               ":cb='128+22*sin(X/70+Y/90)':cr='128+22*cos(Y/50-X/130)',"
               "loop=loop=-1:size=1:start=0,setpts=N/%d/TB[bg]" % (W, H, FPS, FPS))
    speed = (W + BOX_W) / (CROSS_END - CROSS_START)
    x = (f"if(between(mod(t\\,{CYCLE})\\,{CROSS_START:g}\\,{CROSS_END:g})\\,"
         f"-{BOX_W}+(mod(t\\,{CYCLE})-{CROSS_START:g})*{speed:g}\\,-1000)")
    graph = (f"{texture};color=c=0x282828:s={BOX_W}x{BOX_H}:r={FPS}[box];"
             f"[bg][box]overlay=x='{x}':y={BOX_Y}:eval=frame,noise=alls=6:allf=t+u,format=yuv420p")
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", graph, "-t", str(cycles * CYCLE),
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", str(FPS),
            "-b:v", "1M", "-maxrate", "1M", "-bufsize", "1M", "-an", "-movflags", "+faststart", out]


def ensure_clip(cycles):
    os.makedirs(mf.CACHE, exist_ok=True)
    path = clip_path(cycles)
    if not os.path.exists(path):
        log(f"encoding the {W}x{H} motion clip once ({cycles * CYCLE} s, cached in benches/.cache/) ...")
        tmp = path + ".tmp.mp4"
        subprocess.run(clip_cmd(cycles, tmp), check=True)
        os.replace(tmp, path)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,profile,width,height,r_frame_rate,bit_rate,nb_frames,has_b_frames", "-of", "json", path],
        check=True, capture_output=True, text=True)
    st = json.loads(probe.stdout)["streams"][0]
    st["path"] = path
    return st


# ----------------------------------------------------------------------------------------------
# The RTSP server (`--serve`, run by /usr/bin/python3 for python3-gi)


def serve(clip, port, mounts):
    """Mounts /c1 … /cN, one per camera: the clip demuxed and packetized without re-encoding, paced by
    the sinks' clock. Not shared: every session gets its own pipeline, which starts at the clip's
    beginning at its PLAY, so each camera's scene has its own clock (no seek or reconnect of one camera
    moves another's). Prints READY <port>, then PLAY <mount> <unix time> at each PLAY."""
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

    def emit(*words):
        print(" ".join(str(w) for w in words), flush=True)

    Gst.init(None)
    missing = [e for e in ("filesrc", "qtdemux", "h264parse", "rtph264pay") if Gst.ElementFactory.find(e) is None]
    if missing:
        print("missing GStreamer elements: " + ", ".join(missing), file=sys.stderr, flush=True)
        sys.exit(3)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    for i in range(1, mounts + 1):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f'( filesrc location="{clip}" ! qtdemux ! h264parse '
                           f'! rtph264pay name=pay0 pt=96 config-interval=1 )')
        factory.set_shared(False)
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)
        server.get_mount_points().add_factory(f"/c{i}", factory)

    def mount_of(ctx):
        try:
            return "/" + (ctx.uri.abspath or "/").strip("/").split("/")[0]
        except Exception:  # noqa: BLE001  (a context without a URL)
            return "/?"

    def on_client(_server, client):
        client.connect("play-request", lambda _c, ctx: emit("PLAY", mount_of(ctx), f"{time.time():.3f}"))

    server.connect("client-connected", on_client)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        sys.exit(2)
    loop = GLib.MainLoop()

    def stop():
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
    emit("READY", server.get_bound_port())
    loop.run()


class Server:
    """The RTSP server child process and the PLAY times it reports, per mount."""

    def __init__(self, clip, workdir, mounts):
        self.plays = []
        self.lock = threading.Lock()
        self.errf = open(os.path.join(workdir, "rtsp-server.log"), "w")
        self.proc = subprocess.Popen([GST_PYTHON, os.path.abspath(__file__), "--serve", clip,
                                      "--mounts", str(mounts)],
                                     stdout=subprocess.PIPE, stderr=self.errf, text=True)
        first = self.proc.stdout.readline().split()
        if not first or first[0] != "READY":
            self.proc.kill()
            raise RuntimeError(f"the RTSP server did not start; see {self.errf.name}")
        self.port = int(first[1])
        threading.Thread(target=self._read, daemon=True).start()

    def url(self, i):
        return f"rtsp://127.0.0.1:{self.port}/c{i}"

    def _read(self):
        for line in self.proc.stdout:
            w = line.split()
            if len(w) == 3 and w[0] == "PLAY":
                with self.lock:
                    self.plays.append((w[1].lstrip("/"), float(w[2])))

    def plays_of(self, cam, since):
        """PLAY times of camera `cam` (c1, c2 …) at or after `since`: each one starts its clip again."""
        with self.lock:
            return sorted(t for c, t in self.plays if c == cam and t >= since)

    def stop(self):
        mf.stop(self.proc)
        self.errf.close()


# ----------------------------------------------------------------------------------------------
# The contenders

# camhub, the Motion daemon, and the ffmpeg CLI only decoding the same streams (the floor).
CONTENDERS = ("camhub", "motion", "ffmpeg")


def camhub_config(workdir, port, server, n):
    cams = "".join(f"""
[[camera]]
id = "c{i}"
name = "bench camera {i}"
url = "{server.url(i)}"

[camera.motion]
enabled = true
""" for i in range(1, n + 1))
    return f"""[server]
listen = "127.0.0.1:{port}"
data_dir = "{workdir}/data"
{cams}"""


def start_camhub(binary, workdir, server, n):
    port = mf.free_port()
    cfg = os.path.join(workdir, "camhub.toml")
    with open(cfg, "w") as f:
        f.write(camhub_config(workdir, port, server, n))
    logf = open(os.path.join(workdir, "camhub.log"), "w")
    proc = subprocess.Popen([binary, "--config", cfg], stdout=logf, stderr=subprocess.STDOUT,
                            env=dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info")))
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"camhub exited with {proc.returncode}; see {logf.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"camhub did not answer /healthz; see {logf.name}")
            time.sleep(0.1)
    return proc, port, logf.name


def camhub_sums(m):
    """/metrics summed over cameras: {metric name: total}."""
    out = {}
    for key, v in m.items():
        name = key.split("{", 1)[0]
        if key.startswith("camhub_") and 'camera="' in key:
            out[name] = out.get(name, 0.0) + v
    return out


def camhub_per_camera(m, name):
    return {k.split('camera="', 1)[1].split('"', 1)[0]: v for k, v in m.items()
            if k.startswith(name + "{") and 'camera="' in k}


def camhub_events(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/events?limit=500", timeout=10) as r:
        data = json.loads(r.read())
    return [{"camera": e["camera"], "start": e["start_ms"] / 1000,
             "end": e["end_ms"] / 1000 if e.get("end_ms") is not None else None,
             "peak": e.get("peak_score")} for e in data.get("events", [])]


MOTION_GLOBAL = """# motion_cost.py: the Motion daemon, detection only (see benches/motion_cost.py)
daemon off
setup_mode off
native_language off
log_file {dir}/motion.log
log_level 6
target_dir {dir}/out
pid_file {dir}/motion.pid
webcontrol_port 0
stream_port 0
"""

# Per camera. Everything that writes or serves pictures is off; the detection settings are set to match
# camhub's defaults where Motion has an equivalent, Debian's motion.conf otherwise.
MOTION_CAMERA = [
    ("netcam_url", "{url}", "the same RTSP stream, camera N's mount (Motion's default transport: TCP; it opens "
     "each camera twice at start, a probe then the stream)"),
    ("netcam_params", "capture_rate=30",
     "read and decode all of the camera's 25 fps (H.264 cannot skip frames). The default, capture_rate = "
     "framerate = 10, reads slower than the camera sends (the manual: decoding errors, disconnections); at "
     "exactly 25 Motion fell seconds behind the stream; the manual advises a rate a little above the camera's"),
    ("width", str(W), "the stream's size"),
    ("height", str(H), ""),
    ("framerate", str(CAMHUB_FPS), "pictures analysed per second: camhub's `fps` default"),
    ("threshold", str(MOTION_THRESHOLD), f"changed pixels for motion: {CAMHUB_MIN_AREA} % of {W}x{H}, camhub's "
     "`min_area` default"),
    ("noise_level", "32", "Motion's default; pixel change that counts (camhub: `threshold` 20 on cells)"),
    ("noise_tune", "on", "Motion's default"),
    ("despeckle_filter", "EedDl", "Debian's motion.conf (camhub removes isolated changed cells)"),
    ("lightswitch_percent", "55", "camhub's light-switch share (55 % of the picture at once)"),
    ("minimum_motion_frames", "1", "Debian's motion.conf"),
    ("event_gap", str(CAMHUB_END_AFTER), "seconds without motion that end an event: camhub's `end_after`"),
    ("pre_capture", "0", "no pictures are stored, so none are buffered"),
    ("post_capture", "0", ""),
    ("picture_output", "off", "no pictures"),
    ("movie_output", "off", "no movies"),
    ("text_left", "", "no text drawn on the pictures (nobody sees them)"),
    ("text_right", "", ""),
    ("on_event_start", "echo start %t %s %D >> {dir}/events.txt",
     "the event log (a shell forked per event; the benchmark stamps each line as it appears)"),
    ("on_event_end", "echo end %t %s >> {dir}/events.txt", ""),
]


def motion_config(workdir, server, n):
    with open(os.path.join(workdir, "motion.conf"), "w") as f:
        f.write(MOTION_GLOBAL.format(dir=workdir))
        for i in range(1, n + 1):
            f.write(f"camera {workdir}/cam{i}.conf\n")
    for i in range(1, n + 1):
        with open(os.path.join(workdir, f"cam{i}.conf"), "w") as f:
            f.write(f"camera_id {i}\ncamera_name c{i}\n")
            for k, v, _ in MOTION_CAMERA:
                f.write(f"{k} {v.format(url=server.url(i), dir=workdir)}".rstrip() + "\n")
    return os.path.join(workdir, "motion.conf")


def motion_connected(workdir):
    try:
        with open(os.path.join(workdir, "motion.log"), errors="replace") as f:
            text = f.read()
    except OSError:
        return 0
    return len(set(re.findall(r"Camera \((c\d+)\) connected", text)))


class MotionEvents:
    """Watches Motion's event file (its on_event_start / on_event_end lines) every 50 ms and stamps each
    new line with the time it appeared: Motion's own %s has whole seconds only."""

    def __init__(self, workdir):
        self.path = os.path.join(workdir, "events.txt")
        self.lines = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        pos, buf = 0, ""
        while True:
            stop = self.done.is_set()
            try:
                with open(self.path) as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            except OSError:
                chunk = ""
            now = time.time()
            buf += chunk
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                self.lines.append((now, line))
            if stop:
                return
            time.sleep(0.05)

    def events(self):
        """[{camera, start, end}]: the stamped times (within 50 ms of the shell's echo), checked against
        Motion's whole-second %s."""
        self.done.set()
        self.thread.join(timeout=5)
        events, open_ = [], {}
        for stamp, line in self.lines:
            w = line.split()
            if len(w) < 3 or not w[2].isdigit():
                continue
            cam, t = f"c{w[1]}", stamp if abs(stamp - float(w[2]) - 0.5) <= 1.5 else float(w[2])
            if w[0] == "start":
                ev = {"camera": cam, "start": t, "end": None,
                      "pixels": int(w[3]) if len(w) > 3 and w[3].isdigit() else None}
                events.append(ev)
                open_[cam] = ev
            elif w[0] == "end" and cam in open_:
                open_.pop(cam)["end"] = t
        return events


def motion_version():
    try:
        out = subprocess.run(["motion", "-h"], capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).splitlines()[0].split(",")[0].strip()
    except Exception:  # noqa: BLE001
        return "?"


# ----------------------------------------------------------------------------------------------
# One phase


def thread_groups(threads):
    """Per-thread CPU grouped by role: camhub's per-camera threads (cam-c3/decode) under cam-*/decode,
    Motion's (ml3:c3, nc4:c3) under ml*, nc*."""
    out = {}
    for name, v in threads.items():
        g = re.sub(r"^cam-[^/]*/", "cam-*/", name)
        g = re.sub(r"^(ml|nc)\d+:.*", r"\1*", g)
        out[g] = out.get(g, 0.0) + v
    return out


def detection(events, server, since, t_ready, t_end, n):
    """Matches each camera's events against the crossings of its own clip (which starts at each PLAY of
    its mount: a reconnection starts it again). Crossings counted: those that began after the
    contender was ready and ended (+1 s) before `t_end`; an event matching no crossing at all is false.
    Times are from the box entering the picture."""
    crossings, detected, false, delays, ends, peaks, events_in = 0, 0, 0, [], [], [], 0
    plays_total = 0
    for i in range(1, n + 1):
        cam = f"c{i}"
        plays = server.plays_of(cam, since)
        plays_total += len(plays)
        every, counted = [], []
        for j, p in enumerate(plays):
            q = plays[j + 1] if j + 1 < len(plays) else math.inf
            k = 0
            while p + k * CYCLE + CROSS_START < min(q, t_end):
                a, b = p + k * CYCLE + CROSS_START, p + k * CYCLE + CROSS_END
                every.append((a, b))
                if a >= t_ready and b + 1 <= min(q, t_end):
                    counted.append((a, b))
                k += 1
        evs = [e for e in events if e["camera"] == cam and t_ready <= e["start"] <= t_end]
        events_in += len(evs)
        crossings += len(counted)
        for a, b in counted:
            match = [e for e in evs if a - 1.0 <= e["start"] <= b + 1.0]
            if match:
                detected += 1
                e = match[0]
                delays.append(e["start"] - a)
                if e["end"] is not None:
                    ends.append(e["end"] - a)
                if e.get("peak") is not None:
                    peaks.append(e["peak"])
        false += sum(1 for e in evs if not any(a - 1.0 <= e["start"] <= b + 1.0 for a, b in every))
    return {"crossings": crossings, "detected": detected, "false": false,
            "delay_s": statistics.median(delays) if delays else None,
            "end_s": statistics.median(ends) if ends else None,
            "peak": statistics.median(peaks) if peaks else None,
            "events": events_in, "reconnects": plays_total - n}


def run_phase(args, server, who, n, workdir_root):
    workdir = tempfile.mkdtemp(prefix=f"{who}-{n}-", dir=workdir_root)
    since = time.time()
    res = {"name": f"{who} {n} camera" + ("s" if n > 1 else ""), "who": who, "n": n, "dir": workdir}
    if who == "camhub":
        proc, port, logpath = start_camhub(args.binary, workdir, server, n)
        res["log"] = logpath

        def ready():
            m = camhub_per_camera(mf.metrics(port), "camhub_motion_frames_total")
            return sum(1 for v in m.values() if v > 0)
    elif who == "ffmpeg":
        # The floor: decoding alone, as camhub's detection decodes (one thread per stream, no
        # deblocking), in one ffmpeg CLI process that does nothing else with the pictures.
        cmd = ["ffmpeg", "-nostdin", "-v", "error"]
        for i in range(1, n + 1):
            cmd += ["-threads", "1", "-skip_loop_filter", "all", "-rtsp_transport", "tcp", "-i", server.url(i)]
        for i in range(n):
            cmd += ["-map", f"{i}:v", "-f", "null", "-"]
        logf = open(os.path.join(workdir, "ffmpeg.log"), "w")
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=workdir)
        port = None
        started = time.monotonic()

        def ready():
            # No metric to ask: every input is open after its RTSP set-up, a second or two.
            return n if time.monotonic() - started > 3 else 0
    else:
        cfg = motion_config(workdir, server, n)
        watcher = MotionEvents(workdir)
        logf = open(os.path.join(workdir, "motion.stdout"), "w")
        proc = subprocess.Popen(["motion", "-n", "-c", cfg], stdout=logf, stderr=subprocess.STDOUT,
                                cwd=workdir)
        port = None

        def ready():
            return motion_connected(workdir)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{who} exited with {proc.returncode}; see {workdir}")
            try:
                if ready() >= n:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{who}: not all {n} cameras started within 30 s; see {workdir}")
            time.sleep(0.2)
        t_ready = time.time()
        res["startup_s"] = t_ready - since
        time.sleep(args.warmup)
        m0 = mf.metrics(port) if port else None
        probe = mf.Probe([proc.pid, server.proc.pid])
        time.sleep(args.duration)
        probe.stop()
        m1 = mf.metrics(port) if port else None
        st = mf.proc_status(proc.pid)
        t_end = time.time()
        # Both: wait for the events of the window to end (end_after / event_gap of quiet), so their
        # ends are known.
        if who != "ffmpeg":
            time.sleep(CAMHUB_END_AFTER + 1.5)
        events = (camhub_events(port) if who == "camhub"
                  else watcher.events() if who == "motion" else None)
        wall = probe.wall
        res.update({
            "cpu_per_s": probe.cpu[proc.pid] / wall,
            "user_per_s": probe.split[proc.pid][0] / wall,
            "sys_per_s": probe.split[proc.pid][1] / wall,
            "server_per_s": probe.cpu[server.proc.pid] / wall,
            "wall": wall,
            "hwm_mb": st["VmHWM"] / 1024,
            "rss_mb": st["VmRSS"] / 1024,
            "n_threads": st["Threads"],
            "threads": {k: v / wall for k, v in thread_groups(probe.threads[proc.pid]).items()},
            "machine_busy": probe.machine_busy_cores,
            "other_busy": probe.other_busy_cores,
            "load1": os.getloadavg()[0],
            "t_ready": t_ready, "t_end": t_end,
            "plays": {f"c{i}": server.plays_of(f"c{i}", since) for i in range(1, n + 1)},
            "events_raw": events,
        })
        res["detect"] = detection(events, server, since, t_ready, t_end, n) if events is not None else None
        if m0 is not None:
            s0, s1 = camhub_sums(m0), camhub_sums(m1)
            d = {k: s1.get(k, 0.0) - s0.get(k, 0.0) for k in s1}
            res.update({
                "decode_per_s": d.get("camhub_decode_seconds_total", 0.0) / wall,
                "motion_per_s": d.get("camhub_motion_seconds_total", 0.0) / wall,
                "analysed_per_s": d.get("camhub_motion_frames_total", 0.0) / wall / n,
                "frames_in_per_s": d.get("camhub_frames_in_total", 0.0) / wall / n,
                "events_metric": s1.get("camhub_motion_events_total", 0.0),
                "reconnects": s1.get("camhub_reconnects_total", 0.0),
            })
            frames = d.get("camhub_motion_frames_total", 0.0)
            res["motion_us_per_frame"] = d.get("camhub_motion_seconds_total", 0.0) / frames * 1e6 if frames else None
        else:
            try:
                with open(os.path.join(workdir, "motion.log"), errors="replace") as f:
                    text = f.read()
                res["motion_log_errors"] = len(re.findall(r"\[(ERR|EMG|ALR|CRT|WRN)\]", text))
                res["motion_reconnects"] = max(0, len(re.findall(r"connected", text)) - n)
            except OSError:
                pass
    finally:
        mf.stop(proc)
        res["exit_code"] = proc.returncode
        if who == "motion":
            logf.close()
            watcher.done.set()
        elif who == "ffmpeg":
            logf.close()
    time.sleep(1.0)
    return res


# ----------------------------------------------------------------------------------------------
# Report


def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def each(rows, key, spec=".3f"):
    return ", ".join(format(r[key], spec) for r in rows)


def fmt(v, spec=".3f", none="–"):
    return none if v is None else format(v, spec)


def report(args, info, load0, clip, cams, ratios):
    L = []
    add = L.append
    add("# Motion detection cost: camhub vs Motion (`benches/motion_cost.py`)")
    add("")
    add("Issue 6, \"Motion detection\": what motion detection costs per camera, against the Motion daemon doing "
        "the same job on the same streams in the same run. Written by `"
        + shlex.join(["python3", "benches/motion_cost.py"] + args.argv) + "`, see the script's docstring.")
    add("")
    add("## Machine and versions")
    add("")
    add(f"- date: {info['date']}; CPU: {info['cpu']}, nproc = {info['nproc']}, {info['mem_gb']:.1f} GB, "
        f"Linux {info['kernel']}; load average at start {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f} "
        "(1 / 5 / 15 min); the machine is shared with other sessions' builds and tests")
    add(f"- camhub: {info['camhub']}, release build `{args.binary}` (built {info['built']})"
        + (f"; {args.source_note}" if args.source_note else ""))
    add(f"- Motion: {args.motion_version} (Debian package `motion`), {args.motion_libav or 'libavcodec ?'}")
    add(f"- {info['ffmpeg']}; GStreamer rtsp-server {args.gst_version}; Python {info['python']}")
    add("")
    add("## Setup")
    add("")
    add(f"- Cameras: {clip['width']}x{clip['height']} {clip['codec_name']} ({clip.get('profile', '?')}), "
        f"{FPS} fps, {int(clip.get('bit_rate', 0)) / 1e6:.2f} Mbit/s, GOP {FPS}, no B-frames: a still textured scene "
        f"with light temporal noise, crossed by a dark {BOX_W}x{BOX_H} box ({BOX_W * BOX_H * 100 / (W * H):.1f} % of "
        f"the picture) from {CROSS_START:g} s to {CROSS_END:g} s of every {CYCLE} s, quiet otherwise "
        f"(`ffmpeg -f lavfi` geq texture + overlay + noise, libx264 veryfast 1 Mbit/s; the command is in the "
        f"script, `clip_cmd`).")
    add("- Source: one RTSP server (GStreamer rtsp-server through python3-gi, this script's `--serve` mode) with a "
        "mount per camera (`/c1` … `/c8`), each session its own `filesrc ! qtdemux ! h264parse ! rtph264pay` "
        "pipeline: no re-encoding, paced at 25 fps, the clip starting at the session's PLAY; camhub and Motion "
        "open one RTSP session (TCP) per camera. Each camera's crossings are timed from its own PLAY. The "
        "server's CPU is counted for neither (it is in the detail table).")
    add(f"- Phases: {', '.join(str(n) for n in args.cameras)} cameras × camhub / Motion, {args.rounds} round(s), "
        "the contenders' order alternated per round, a fresh process per phase; after every camera delivered "
        f"its first analysed picture (camhub: `camhub_motion_frames_total`; Motion: its log says connected), "
        f"{args.warmup:g} s warm-up, then {args.duration:g} s measured (a multiple of the {CYCLE} s cycle keeps "
        "the share of motion the same). CPU = utime + stime of the whole process (all threads) over the "
        f"window, per second. Busy check: a phase is measured again (≤ {args.tries} tries, the quietest kept) "
        f"when other processes used more than {args.max_other_busy:g} cores during its window.")
    add("- camhub: one `[[camera]]` per camera, `url = \"rtsp://127.0.0.1:PORT/cN\"`, `[camera.motion] enabled = "
        "true` with every default (10 fps analysed, threshold 20, min_area 0.5 %, start_after 0.2 s, end_after "
        "10 s, light_switch on; it also stores each event: a record, the best snapshot and 5 frames as JPEG "
        "files). No viewers.")
    add("- Motion: `motion -n -c motion.conf` (one process, a `camera` file per camera), global: `webcontrol_port 0`, "
        "`stream_port 0`, `log_level 6`; per camera:")
    add("")
    add("| Motion setting | value | why |")
    add("|---|---|---|")
    for k, v, why in MOTION_CAMERA:
        shown = v.replace("{url}", "rtsp://127.0.0.1:PORT/cN").replace("{dir}", "DIR")
        add(f"| `{k}` | `{shown}` | {why} |" if shown else f"| `{k}` | (empty) | {why} |")
    add("")
    add("## Results")
    add("")
    add("Median of rounds; every round in brackets. CPU-s/s: CPU seconds per second of wall time (= of video) of "
        "the whole process; per camera = / cameras.")
    add("")
    add("| cameras | camhub CPU-s/s | Motion CPU-s/s | **camhub / Motion** | camhub per camera | Motion per camera | "
        "camhub peak RSS MB | Motion peak RSS MB | others' busy cores (camhub; Motion) |")
    add("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.cameras:
        c, m = cams[("camhub", n)], cams[("motion", n)]
        cc, mm = med(c, "cpu_per_s"), med(m, "cpu_per_s")
        rr = ratios[n]
        add(f"| {n} | {cc:.3f} ({each(c, 'cpu_per_s')}) | {mm:.3f} ({each(m, 'cpu_per_s')}) | "
            f"**{statistics.median(rr):.2f}** ({', '.join(format(x, '.2f') for x in rr)}) | "
            f"{cc / n:.4f} | {mm / n:.4f} | {med(c, 'hwm_mb'):.1f} | {med(m, 'hwm_mb'):.1f} | "
            f"{each(c, 'other_busy', '.2f')}; {each(m, 'other_busy', '.2f')} |")
    add("")
    add("Ratio per round: camhub's CPU over Motion's in the same round.")
    add("")
    add("### The floor: decoding alone")
    add("")
    add("The ffmpeg CLI decoding the same RTSP streams as camhub's detection does (`-threads 1 -skip_loop_filter "
        "all`, one process, every stream to `-f null`) and nothing else: no detection, no events. Every frame of "
        "an H.264 stream whose frames are all references (as here, and as most cameras send) must be decoded "
        "to analyse any of them, so this is what any detector on these streams costs at least.")
    add("")
    add("| cameras | ffmpeg decode only CPU-s/s | **floor / Motion** | camhub / floor | camhub − floor per camera |")
    add("|---:|---:|---:|---:|---:|")
    for n in args.cameras:
        f, c, m = cams[("ffmpeg", n)], cams[("camhub", n)], cams[("motion", n)]
        ff, cc, mm = med(f, "cpu_per_s"), med(c, "cpu_per_s"), med(m, "cpu_per_s")
        add(f"| {n} | {ff:.3f} ({each(f, 'cpu_per_s')}) | **{ff / mm:.2f}** | {cc / ff:.2f} | {(cc - ff) / n:.4f} |")
    add("")
    add("### camhub's CPU, broken down")
    add("")
    add("From `/metrics` over the same window (the decode threads' and the detector calls' own CPU clocks), and "
        "per thread from `/proc/PID/task` (`cam-*/…` summed over cameras); median of rounds, CPU-s/s.")
    add("")
    groups = set()
    for n in args.cameras:
        for r in cams[("camhub", n)]:
            groups.update(k for k, v in r["threads"].items() if v >= 0.0005)
    groups = sorted(groups)
    add("| cameras | total | decode (`camhub_decode_seconds_total`) | motion (`camhub_motion_seconds_total`) | "
        "the rest | decode share | motion share | detector µs per analysed picture | pictures analysed per s "
        "per camera | frames in per s per camera | " + " | ".join(f"thread `{g}`" for g in groups) + " |")
    add("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(groups))
    for n in args.cameras:
        c = cams[("camhub", n)]
        tot, dec, mot = med(c, "cpu_per_s"), med(c, "decode_per_s"), med(c, "motion_per_s")
        ths = []
        for g in groups:
            vals = [r["threads"].get(g, 0.0) for r in c]
            ths.append(f"{statistics.median(vals):.4f}")
        add(f"| {n} | {tot:.3f} | {dec:.3f} | {mot:.4f} | {tot - dec - mot:.3f} | {dec / tot * 100:.0f} % | "
            f"{mot / tot * 100:.1f} % | {fmt(med(c, 'motion_us_per_frame'), '.0f')} | "
            f"{fmt(med(c, 'analysed_per_s'), '.2f')} | {fmt(med(c, 'frames_in_per_s'), '.2f')} | " + " | ".join(ths) + " |")
    add("")
    mgroups = set()
    for n in args.cameras:
        for r in cams[("motion", n)]:
            mgroups.update(k for k, v in r["threads"].items() if v >= 0.0005)
    mgroups = sorted(mgroups)
    add("Motion per thread (`ml*`: a camera's motion loop, the detection; `nc*`: its netcam thread, RTSP and "
        "decoding; median of rounds, CPU-s/s): " + "; ".join(
            f"{n} camera(s): " + ", ".join(
                f"`{g}` {statistics.median([r['threads'].get(g, 0.0) for r in cams[('motion', n)]]):.3f}"
                for g in mgroups) for n in args.cameras) + ".")
    add("")
    add("### Same detection results")
    add("")
    add(f"Crossings counted: per camera, those that began after the contender's cameras were up and ended before "
        f"the window closed (timed from the camera's PLAY: the box enters {CROSS_START:g} s into each {CYCLE} s "
        f"cycle and leaves {CROSS_END - CROSS_START:g} s later). An event matches a crossing when it starts "
        f"between 1 s before the box enters and 1 s after it leaves; an event matching no crossing is false. "
        f"Start: the event's start after the box entered (camhub: `start_ms` of `/api/events`, its first motion "
        f"picture; Motion: when its `on_event_start` line appeared, ±50 ms). End: the event's end after the box "
        f"entered, as each reports it (camhub: `end_ms`; Motion: its `on_event_end` line, {CAMHUB_END_AFTER} s of "
        f"`event_gap` after its last motion picture). All rounds together.")
    add("")
    add("| cameras | contender | crossings | detected | false events | start s, median | end s, median | "
        "events in the window | RTSP PLAYs per camera | peak score % (camhub) |")
    add("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.cameras:
        for who in ("camhub", "motion"):
            rows = [r for r in cams[(who, n)] if r.get("detect")]
            if not rows:
                add(f"| {n} | {who} | – | – | – | – | – | – | – | – |")
                continue
            d = [r["detect"] for r in rows]
            delays = [x["delay_s"] for x in d if x["delay_s"] is not None]
            ends = [x["end_s"] for x in d if x["end_s"] is not None]
            peaks = [x["peak"] for x in d if x["peak"] is not None]
            plays = (sum(x["reconnects"] for x in d) + n * len(d)) / (n * len(d))
            add(f"| {n} | {'camhub' if who == 'camhub' else 'Motion'} | {sum(x['crossings'] for x in d)} | "
                f"{sum(x['detected'] for x in d)} | {sum(x['false'] for x in d)} | "
                f"{fmt(statistics.median(delays) if delays else None, '.2f')} | "
                f"{fmt(statistics.median(ends) if ends else None, '.2f')} | {sum(x['events'] for x in d)} | "
                f"{plays:.1f} | "
                f"{fmt(statistics.median(peaks) if peaks else None, '.1f') if who == 'camhub' else ''} |")
    add("")
    add("### Targets")
    add("")
    for line in targets(args, cams, ratios):
        add(f"- {line}")
    add("")
    add("### Detail per phase")
    add("")
    add("| round | phase | tries | CPU-s/s | user / sys | peak RSS MB | threads | RTSP server CPU-s/s | machine busy cores | "
        "others' busy | load 1 min | start-up s |")
    add("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rnd in range(args.rounds):
        for n in args.cameras:
            for who in CONTENDERS:
                rows = cams[(who, n)]
                if rnd < len(rows):
                    r = rows[rnd]
                    add(f"| {rnd + 1} | {r['name']} | {r['tries']} | {r['cpu_per_s']:.3f} | {r['user_per_s']:.3f} / "
                        f"{r['sys_per_s']:.3f} | {r['hwm_mb']:.1f} | {r['n_threads']} | {r['server_per_s']:.3f} | "
                        f"{r['machine_busy']:.2f} | {r['other_busy']:.2f} | {r['load1']:.2f} | {r['startup_s']:.1f} |")
    add("")
    notes = []
    bad = [r for rows in cams.values() for r in rows if r["who"] == "camhub" and r.get("reconnects")]
    if bad:
        notes.append(f"camhub counted reconnections (`camhub_reconnects_total`) in {len(bad)} phase(s): "
                     + ", ".join(f"{r['name']} round {cams[(r['who'], r['n'])].index(r) + 1}: {r['reconnects']:.0f}"
                                 for r in bad) + ".")
    bad = [r for rows in cams.values() for r in rows if r["who"] == "motion" and r.get("motion_log_errors")]
    if bad:
        notes.append("Motion logged errors or warnings in " + ", ".join(
            f"{r['name']} ({r['motion_log_errors']})" for r in bad) + ".")
    if notes:
        add("Notes: " + " ".join(notes))
        add("")
    return "\n".join(L)


def targets(args, cams, ratios):
    out = []
    for n in args.cameras:
        r = statistics.median(ratios[n])
        out.append(f"{n} camera(s): camhub / Motion CPU = {r:.2f} (rounds {min(ratios[n]):.2f} … "
                   f"{max(ratios[n]):.2f}); target ≤ 0.5: **{'MET' if r <= 0.5 else 'NOT MET'}**")
    floors = [(n, med(cams[("ffmpeg", n)], "cpu_per_s") / med(cams[("motion", n)], "cpu_per_s"))
              for n in args.cameras]
    out.append("the floor (the ffmpeg CLI only decoding the same streams the same way) is " + ", ".join(
        f"{f:.2f}× Motion at {n} camera(s)" for n, f in floors)
        + ": a detector that analyses these streams cannot cost less than that")
    for n in args.cameras:
        parts = []
        ok = True
        for who in ("camhub", "motion"):
            d = [r["detect"] for r in cams[(who, n)] if r.get("detect")]
            cr, de, fa = (sum(x[k] for x in d) for k in ("crossings", "detected", "false"))
            ok = ok and bool(d) and cr > 0 and de == cr and fa == 0
            parts.append(f"{'camhub' if who == 'camhub' else 'Motion'} {de} of {cr} crossings, {fa} false")
        out.append(f"{n} camera(s), same detection results (every crossing detected by both, no false events): "
                   f"{'; '.join(parts)}: **{'MET' if ok else 'NOT MET'}**")
    shares = []
    for n in args.cameras:
        c = cams[("camhub", n)]
        tot, dec, mot = med(c, "cpu_per_s"), med(c, "decode_per_s"), med(c, "motion_per_s")
        shares.append((n, dec / tot, mot / tot))
    ok = all(d > m for _, d, m in shares)
    out.append("decode dominates camhub's CPU (decode > motion): " + ", ".join(
        f"{n} camera(s) decode {d * 100:.0f} % vs motion {m * 100:.1f} %" for n, d, m in shares)
        + f": **{'MET' if ok else 'NOT MET'}**")
    return out


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


def retry_busy(args, measure):
    """mjpeg_fanout.retry_busy, with the try count kept per phase."""
    best = None
    for k in range(args.tries):
        r = measure()
        r["tries"] = k + 1
        if best is None or r["other_busy"] < best["other_busy"]:
            best = r
        if r["other_busy"] <= args.max_other_busy:
            break
        log(f"  others used {r['other_busy']:.2f} cores during {r['name']} (> {args.max_other_busy:g}): "
            + ("measuring again" if k + 1 < args.tries else "out of tries; keeping the quietest"))
    best["tries"] = k + 1
    return best


def gst_version():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "gir1.2-gst-rtsp-server-1.0"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"
    except Exception:  # noqa: BLE001
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="/tmp/target-release/release/camhub", help="release camhub binary")
    ap.add_argument("--commit", help="the binary was built from a clean export of this commit (shown instead of HEAD)")
    ap.add_argument("--source-note", default="", dest="source_note",
                    help="a note on what the binary was built from, for the report")
    ap.add_argument("--cameras", default="1,4,8", help="camera counts, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=40.0, help="measured seconds per phase (a multiple of 20 is best)")
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--tries", type=int, default=3, help="a phase measured again while others are busy, at most")
    ap.add_argument("--max-other-busy", type=float, default=0.5, dest="max_other_busy")
    ap.add_argument("--wait-load", type=float, default=0.0,
                    help="first wait (≤ 40 min) for the 1-min load average to drop under this (0 = don't)")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"),
                    help="file whose motion_cost section is written or replaced ('' = none)")
    ap.add_argument("--serve", metavar="CLIP", help=argparse.SUPPRESS)
    ap.add_argument("--mounts", type=int, default=8, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, 0, args.mounts)
    args.argv = [a for a in sys.argv[1:]]
    args.cameras = [int(x) for x in args.cameras.split(",") if x]
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no camhub binary at {args.binary}; build it with\n"
                 f"  cd {REPO} && CARGO_TARGET_DIR=/tmp/target-release cargo build --release -p camhub")
    for tool in ("ffmpeg", "ffprobe", "motion"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install -y {'ffmpeg' if tool != 'motion' else 'motion'})")
    if not os.access(GST_PYTHON, os.X_OK):
        sys.exit(f"{GST_PYTHON} not found: the RTSP server needs Debian's python3 with python3-gi")
    if args.wait_load > 0:
        t_end = time.monotonic() + 2400
        while os.getloadavg()[0] > args.wait_load and time.monotonic() < t_end:
            log(f"load {os.getloadavg()[0]:.2f} > {args.wait_load:g}: waiting")
            time.sleep(60)
    load0 = os.getloadavg()
    info = mf.versions(args.binary, args.commit)
    if info["stale"]:
        log(f"WARNING: {args.binary} is older than {', '.join(info['stale'][:5])}: rebuild it")
    args.motion_version = motion_version()
    args.gst_version = gst_version()
    args.motion_libav = None
    cycles = math.ceil((args.warmup + args.duration + 30) / CYCLE)
    clip = ensure_clip(cycles)
    workdir = tempfile.mkdtemp(prefix="camhub-motion-")
    log(f"work dir {workdir}; load {load0[0]:.2f}; clip {clip['path']}")
    server = Server(clip["path"], workdir, max(args.cameras))
    cams = {(who, n): [] for who in CONTENDERS for n in args.cameras}
    try:
        for rnd in range(args.rounds):
            order = CONTENDERS[rnd % 3:] + CONTENDERS[:rnd % 3]
            for n in args.cameras:
                for who in order:
                    log(f"round {rnd + 1}/{args.rounds}: {who}, {n} camera(s)")
                    r = retry_busy(args, lambda: run_phase(args, server, who, n, workdir))
                    cams[(who, n)].append(r)
                    d = r.get("detect") or {}
                    extra = (f" (decode {r['decode_per_s']:.3f}, motion {r['motion_per_s']:.4f})"
                             if who == "camhub" else "")
                    log(f"  {who}@{n}: {r['cpu_per_s']:.3f} CPU-s/s{extra}, peak RSS {r['hwm_mb']:.1f} MB, "
                        f"detected {d.get('detected', '?')} of {d.get('crossings', '?')} crossings, "
                        f"{d.get('false', '?')} false; others busy {r['other_busy']:.2f}")
                    if who == "motion" and args.motion_libav is None:
                        try:
                            with open(os.path.join(r["dir"], "motion.log"), errors="replace") as f:
                                m = re.search(r"ffmpeg (libavcodec version \S+ libavformat version \S+)", f.read())
                            args.motion_libav = m.group(1) if m else None
                        except OSError:
                            pass
    finally:
        server.stop()
    ratios = {n: [c["cpu_per_s"] / m["cpu_per_s"] for c, m in zip(cams[("camhub", n)], cams[("motion", n)])]
              for n in args.cameras}
    text = report(args, info, load0, clip, cams, ratios)
    print(text)
    with open(os.path.join(workdir, "raw.json"), "w") as f:
        json.dump({"args": vars(args), "info": info, "load0": load0, "clip": clip,
                   "phases": {f"{w}-{n}": v for (w, n), v in cams.items()}}, f, indent=1, default=str)
    if args.results:
        write_section(args.results, text)
        log(f"wrote the motion_cost section of {args.results}")
    log(f"raw data, configs and logs: {workdir}")


if __name__ == "__main__":
    main()
