#!/usr/bin/env python3
"""Issue 7's composite benchmark: a 3 x 720p panorama served to 10 MJPEG viewers, camhub against seed
004's approach (Python + OpenCV: warpPerspective + hconcat, one imencode per viewer per frame), rebuilt
here as the reference, in the same run.

One run:
  1. makes (once, cached in benches/.cache/) three 20 s 1280x720 10 fps MJPEG clips (testsrc2, plain /
     mirrored / mirrored upside down with other colours);
  2. serves each as an MJPEG-over-HTTP camera with the ffmpeg CLI, without re-encoding:
     `ffmpeg -re -stream_loop -1 -i camN.mkv -c copy -f mpjpeg -listen 1 http://127.0.0.1:PORT/stream`
     in a shell loop (`-listen 1` serves one client, then the loop starts it again for the next one);
     the sources' own CPU is measured and reported apart;
  3. per round, one contender at a time on the same sources (the order alternates by round):
     - camhub: three [[camera]]s with seed-like corners scaled to 720p (one `rotate = 180`) and a
       [[composite]] "pano" (hstack, cuts, fps = 10); N viewers of /api/cameras/pano/stream.mjpeg;
     - the reference (`--reference-server`, a separate process tree): one reader process per camera
       (cv2.VideoCapture on the URL, frames into a multiprocessing.Queue), a concat process (rotate,
       getPerspectiveTransform + warpPerspective, cut columns, cv2.hconcat at 10 fps, the panorama sent
       through a Pipe), an http.server ThreadingHTTPServer whose /stream handler, per viewer, takes each
       new panorama, cv2.imencode('.jpg') it and writes a multipart part;
  4. after a warm-up, over a window: the contender's CPU-seconds (utime + stime of its whole process
     tree, from /proc), each viewer's frames per second (light clients from mjpeg_fanout.py: they parse
     the multipart framing, count frames, never decode), the panorama's size and rate, JPEG encodes/s;
  5. prints a Markdown table; `--results FILE` appends it with a header naming the commit and date.

Needs /usr/bin/python3 with numpy and cv2 (Debian's python3-opencv) and the ffmpeg CLI. Usage:
  /usr/bin/python3 benches/composite_cost.py [--binary PATH] [--duration 30] [--viewers 10] [--rounds 2]
"""

import argparse
import json
import os
import queue
import signal
import socket
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
import mjpeg_fanout as mf  # noqa: E402  (start_camhub, light MJPEG viewers, /proc helpers)

log = mf.log
CLK_TCK = os.sysconf("SC_CLK_TCK")
W, H, FPS = 1280, 720, 10
# Seed 004's example corners (for its 640x480 cameras) scaled to 1280x720, warped to the whole 1280x720.
CORNERS = [[0, 92 * 1.5], [0, 325 * 1.5], [1280, 349 * 1.5], [1280, 116 * 1.5]]
# Per camera: the picture's filter in the clip, its rotation, and the columns kept (seed's concat_x).
CAMERAS = [
    {"id": "cam1", "vf": "null", "rotate": 0, "cut": [0, 1264]},
    {"id": "cam2", "vf": "hflip", "rotate": 180, "cut": [16, 1264]},
    {"id": "cam3", "vf": "hflip,vflip,hue=h=120", "rotate": 0, "cut": [16, 1280]},
]
PANO = "pano"


def clip_path(i):
    return os.path.join(mf.CACHE, f"composite_cam{i + 1}_720p10_20s.mkv")


def clip_cmd(i, out):
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate={FPS}", "-t", "20", "-vf", CAMERAS[i]["vf"],
            "-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p", "-an", out]


def source_cmd(clip, port):
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
            "-i", clip, "-c", "copy", "-f", "mpjpeg", "-content_type", "multipart/x-mixed-replace;boundary=ffmpeg",
            "-listen", "1", f"http://127.0.0.1:{port}/stream"]


# ----------------------------------------------------------------------------------------------
# /proc: CPU of process trees


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def parent_map():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                out[int(d)] = int(stat_fields(d)[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def tree_pids(root):
    pp = parent_map()
    kids = {}
    for p, parent in pp.items():
        kids.setdefault(parent, []).append(p)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in pp or p == root:
            out.append(p)
            todo.extend(kids.get(p, []))
    return out


def tree_cpu(root):
    """CPU seconds of a process tree: utime + stime + cutime + cstime of every live member. A child that
    exits and is reaped moves its time into its parent's cutime/cstime, so the sum stays continuous
    across restarts (the sources' loops) as long as the root lives."""
    total = 0.0
    for p in tree_pids(root):
        try:
            f = stat_fields(p)
        except OSError:
            continue
        total += sum(int(x) for x in f[11:15]) / CLK_TCK
    return total


def pid_cpu(pid):
    try:
        return mf.proc_cpu(pid)
    except OSError:
        return None


def listening(port):
    """Is something listening on 127.0.0.1:port (read from /proc/net/tcp, without connecting: a
    `-listen 1` source would take a probe for its one client)."""
    want = f":{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1].endswith(want) and parts[3] == "0A":
                return True
    return False


# ----------------------------------------------------------------------------------------------
# Cleanup: every child this harness starts is recorded and ended at exit (by its id).

CHILDREN = []  # (Popen, own process group?)


def register(proc, group):
    CHILDREN.append((proc, group))
    return proc


def end_child(proc, group, timeout=5.0):
    if proc.poll() is not None and not group:
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    if group:  # whatever is left of the group (a loop's ffmpeg, a reader process)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    elif proc.poll() is None:
        proc.kill()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def end_all():
    while CHILDREN:
        proc, group = CHILDREN.pop()
        end_child(proc, group)
    # Any other child of this process (a camhub that start_camhub gave up on before returning it).
    me = os.getpid()
    left = [p for p, parent in parent_map().items() if parent == me]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in left:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while left and time.monotonic() < deadline:
            left = [p for p in left if _reap(p)]
            time.sleep(0.05)


def _reap(pid):
    """True while pid still runs (reaps it once it exited)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def forget(proc):
    for k, (p, _) in enumerate(CHILDREN):
        if p is proc:
            del CHILDREN[k]
            return


# ----------------------------------------------------------------------------------------------
# The sources


def ensure_clips():
    os.makedirs(mf.CACHE, exist_ok=True)
    for i in range(len(CAMERAS)):
        path = clip_path(i)
        if not os.path.exists(path):
            log(f"encoding {os.path.basename(path)} once (cached in benches/.cache/) ...")
            tmp = path + ".tmp.mkv"
            subprocess.run(clip_cmd(i, tmp), check=True)
            os.replace(tmp, path)
    return [clip_path(i) for i in range(len(CAMERAS))]


class Sources:
    """One shell loop per camera restarting `ffmpeg ... -listen 1` after each client."""

    def __init__(self, clips, workdir):
        self.clips = clips
        self.ports = [mf.free_port() for _ in clips]
        self.urls = [f"http://127.0.0.1:{p}/stream" for p in self.ports]
        self.procs = []
        self.workdir = workdir

    def start(self):
        for i, (clip, port) in enumerate(zip(self.clips, self.ports)):
            cmd = " ".join(_sh_quote(a) for a in source_cmd(clip, port))
            logf = open(os.path.join(self.workdir, f"source{i + 1}.log"), "w")
            p = subprocess.Popen(["/bin/sh", "-c", f"while :; do {cmd}; sleep 0.1; done"],
                                 stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            self.procs.append(register(p, group=True))
        self.wait_listening()
        # One real request each: it must answer with a multipart stream of JPEGs.
        for url in self.urls:
            check_mjpeg(url, 10)
        self.wait_listening()

    def wait_listening(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        for i, port in enumerate(self.ports):
            while not listening(port):
                if self.procs[i].poll() is not None:
                    raise RuntimeError(f"source {i + 1}'s loop exited; see {self.workdir}/source{i + 1}.log")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"source {i + 1} (ffmpeg -listen 1 on port {port}) does not listen; see "
                                       f"{self.workdir}/source{i + 1}.log")
                time.sleep(0.05)

    def cpu(self):
        return sum(tree_cpu(p.pid) for p in self.procs)


def _sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def check_mjpeg(url, timeout):
    """GET url, read until one complete JPEG part arrived; raise with what came instead."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        ctype = r.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/x-mixed-replace"):
            raise RuntimeError(f"{url}: Content-Type {ctype!r}, not an MJPEG stream")
        data = b""
        deadline = time.monotonic() + timeout
        while True:
            a = data.find(b"\xff\xd8")
            if a >= 0 and data.find(b"\xff\xd9", a + 2) > 0:
                return
            chunk = r.read1(65536)
            if not chunk or time.monotonic() > deadline:
                raise RuntimeError(f"{url}: no complete JPEG within {timeout} s")
            data += chunk


def http_json(port, path, timeout=3):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return json.loads(r.read())


# ----------------------------------------------------------------------------------------------
# The reference: seed 004's server rebuilt (run as `composite_cost.py --reference-server CONFIG.json`)


def seed_config(urls):
    """The cameras in seed 004's cameras_config.json format. Seed 004's rtsp_cam opens url.rtsp with
    cv2.VideoCapture, which takes any FFmpeg URL: here the MJPEG-over-HTTP stream."""
    return {"camera": [{"url": {"rtsp": url}, "rotate": c["rotate"],
                        "perspective": {"src": CORNERS, "width": W, "hight": H},
                        "concat_x": {"front": c["cut"][0], "back": c["cut"][1]}}
                       for url, c in zip(urls, CAMERAS)]}


def _orphaned(parent):
    return os.getppid() != parent


def _reader(i, url, q, counts, parent):
    """Seed 004's process_readCam (rtsp_cam): cv2.VideoCapture, every frame into the queue."""
    import cv2
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    cap = cv2.VideoCapture(url)
    while not _orphaned(parent):
        ok, frame = cap.read()
        if not ok:
            cap.release()
            time.sleep(0.5)
            cap = cv2.VideoCapture(url)
            continue
        counts[i] += 1
        q.put((i, frame))


def _concat_image(info, images):
    """Seed 004's concatImage, with its rotate (0 or 180) applied first, as camhub does."""
    import cv2
    import numpy as np
    out = []
    for n, img in enumerate(images):
        if info[n].get("rotate") == 180:
            img = cv2.rotate(img, cv2.ROTATE_180)
        p = info[n]["perspective"]
        width, hight = p["width"], p["hight"]
        pts1 = np.float32(p["src"])
        pts2 = np.float32([(0, 0), (0, hight), (width, hight), (width, 0)])
        m = cv2.getPerspectiveTransform(pts1, pts2)
        out.append(cv2.warpPerspective(img, m, (width, hight)))
    for n, img in enumerate(out):
        c = info[n]["concat_x"]
        out[n] = img[:, c["front"]:c["back"], :]
    return cv2.hconcat(out)


def _concat(info, q, conn, fps, made, parent):
    """Seed 004's process_concatFrame: the newest frame of each camera, stitched at `fps`, the panorama
    sent to the server process through a Pipe."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    latest = [None] * len(info)
    period = 1.0 / fps
    next_t = time.monotonic()
    while not _orphaned(parent):
        wait = next_t - time.monotonic()
        if wait > 0:
            try:
                i, frame = q.get(timeout=wait)
                latest[i] = frame
                continue
            except queue.Empty:
                pass
        while True:
            try:
                i, frame = q.get_nowait()
                latest[i] = frame
            except queue.Empty:
                break
        if all(f is not None for f in latest):
            conn.send(_concat_image(info, latest))
            made.value += 1
        next_t += period
        now = time.monotonic()
        if next_t < now - period:  # fell behind: skip ticks rather than burst
            next_t = now


def reference_server(args):
    import http.server
    import multiprocessing as mp

    import cv2

    with open(args.reference_server) as f:
        info = json.load(f)["camera"]
    me = os.getpid()
    q = mp.Queue()
    counts = mp.Array("q", len(info), lock=False)
    made = mp.Value("q", 0, lock=False)
    recv_conn, send_conn = mp.Pipe(duplex=False)
    procs = [mp.Process(target=_reader, args=(i, c["url"]["rtsp"], q, counts, me), daemon=True, name=f"reader{i + 1}")
             for i, c in enumerate(info)]
    procs.append(mp.Process(target=_concat, args=(info, q, send_conn, args.fps, made, me), daemon=True,
                            name="concat"))
    for p in procs:
        p.start()

    st = {"frame": None, "seq": 0, "encodes": 0, "bytes": 0, "viewers": 0, "size": None}
    cond = threading.Condition()
    params = [] if args.quality is None else [int(cv2.IMWRITE_JPEG_QUALITY), args.quality]

    def update():  # seed 004's updateFrame: keep the newest panorama in memory
        while True:
            try:
                pano = recv_conn.recv()
            except EOFError:
                return
            with cond:
                st["frame"], st["seq"] = pano, st["seq"] + 1
                st["size"] = [pano.shape[1], pano.shape[0]]
                cond.notify_all()

    threading.Thread(target=update, daemon=True).start()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path == "/status":
                body = json.dumps({
                    "panoramas": st["seq"], "made": made.value, "frames_read": list(counts),
                    "encodes": st["encodes"], "bytes": st["bytes"], "viewers": st["viewers"], "size": st["size"],
                    "pids": {p.name: p.pid for p in procs} | {"server": me},
                    "cv2": cv2.__version__, "cv2_threads": cv2.getNumThreads(),
                    "start_method": mp.get_start_method(), "quality": args.quality,
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path != "/stream":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            last = -1
            with cond:
                st["viewers"] += 1
            try:
                while True:
                    # Seed 004's gen_frames: the newest panorama, encoded for this viewer. Paced by the
                    # panoramas (10 fps): each one is sent once, like camhub sends each composite frame.
                    with cond:
                        if not cond.wait_for(lambda: st["seq"] != last and st["frame"] is not None, timeout=10):
                            return
                        frame, last = st["frame"], st["seq"]
                    ok, buf = cv2.imencode(".jpg", frame, params)
                    data = buf.tobytes()
                    # Content-Length is not in seed 004's parts; the bench viewers need it.
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                     % len(data) + data + b"\r\n")
                    with cond:
                        st["encodes"] += 1
                        st["bytes"] += len(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with cond:
                    st["viewers"] -= 1

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", args.port), Handler)

    def on_term(*_):
        for p in procs:
            if p.is_alive():
                p.terminate()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print(f"reference server on 127.0.0.1:{args.port}, pids {[p.pid for p in procs]}, cv2 {cv2.__version__} "
          f"threads {cv2.getNumThreads()}", flush=True)
    server.serve_forever()


# ----------------------------------------------------------------------------------------------
# The contenders


def camhub_extra(urls):
    """The camhub.toml after mjpeg_fanout.write_config's first camera's url line."""
    persp = ("perspective = { corners = [" + ", ".join(f"[{x:g}, {y:g}]" for x, y in CORNERS) +
             f"], width = {W}, height = {H} }}")
    lines = []
    for k, (url, c) in enumerate(zip(urls, CAMERAS)):
        if k:
            lines += ["", "[[camera]]", f'id = "{c["id"]}"', f'url = "{url}"']
        if c["rotate"]:
            lines.append(f"rotate = {c['rotate']}")
        lines.append(persp)
    cuts = ", ".join(f'{c["id"]} = [{c["cut"][0]}, {c["cut"][1]}]' for c in CAMERAS)
    lines += ["", "[[composite]]", f'id = "{PANO}"', 'layout = "hstack"',
              "inputs = [" + ", ".join(f'"{c["id"]}"' for c in CAMERAS) + "]",
              f"cuts = {{ {cuts} }}", f"fps = {FPS}", ""]
    return "\n".join(lines)


def start_reference(args, sources, workdir):
    cfg = os.path.join(workdir, "cameras_config.json")
    with open(cfg, "w") as f:
        json.dump(seed_config(sources.urls), f, indent=1)
    port = mf.free_port()
    cmd = [sys.executable, os.path.abspath(__file__), "--reference-server", cfg, "--port", str(port),
           "--fps", str(FPS)]
    if args.quality is not None:
        cmd += ["--quality", str(args.quality)]
    logname = os.path.join(workdir, f"reference-{port}.log")
    proc = register(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(logname, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True), group=True)
    deadline = time.monotonic() + 40
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the reference server exited with {proc.returncode}: {tail(logname)}")
        try:
            s = http_json(port, "/status")
            if s["panoramas"] > 0:
                return proc, port, logname, cmd
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the reference server made no panorama within 40 s (is a source down?): "
                               f"{tail(logname)}")
        time.sleep(0.2)


def tail(path, n=15):
    try:
        with open(path) as f:
            return "\n" + "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def camhub_metrics(port):
    m = mf.metrics(port)

    def g(name, cam):
        return m.get(f'{name}{{camera="{cam}"}}', 0.0)
    return {
        "transform_s": sum(g("camhub_transform_seconds_total", c["id"]) for c in CAMERAS),
        "compose_s": g("camhub_decode_seconds_total", PANO),
        "encode_s": g("camhub_encode_seconds_total", PANO),
        "panos": g("camhub_frames_in_total", PANO),
        "encodes": g("camhub_frames_encoded_total", PANO),
        "frames_out": g("camhub_frames_out_total", PANO),
        "bytes_out": g("camhub_bytes_out_total", PANO),
        "cam_frames": sum(g("camhub_frames_in_total", c["id"]) for c in CAMERAS),
        "dropped": sum(g("camhub_frames_dropped_total", c) for c in [c["id"] for c in CAMERAS] + [PANO]),
    }


def measure(args, kind, sources, workdir):
    """One contender, one window. Returns a result dict."""
    qs = f"?quality={args.quality}" if args.quality is not None else ""
    if kind == "camhub":
        mf.CAM = CAMERAS[0]["id"]  # write_config names its one [[camera]] after mf.CAM
        proc, port, cfg, logname = mf.start_camhub(args.binary, workdir, camhub_extra(sources.urls),
                                                  url=sources.urls[0])
        register(proc, group=False)
        path = f"/api/cameras/{PANO}/stream.mjpeg{qs}"
    else:
        proc, port, logname, _ = start_reference(args, sources, workdir)
        path = "/stream"
    try:
        t_spawn = time.monotonic()
        t0 = t_spawn + args.warmup
        t1 = t0 + args.duration
        clients = mf.spawn_clients(port, path, args.viewers, t0, t1, t1 + 1.5)
        for c in clients:
            register(c, group=False)
        mf.sleep_until(t0)
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited during the warm-up: {tail(logname)}")
        before = snapshot(kind, proc, port, sources, clients)
        mf.sleep_until(t1)
        after = snapshot(kind, proc, port, sources, clients)
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited during the window: {tail(logname)}")
        viewers = mf.collect_clients(clients)
        for c in clients:
            forget(c)
        if kind == "camhub":
            cams = http_json(port, "/api/cameras")
            pano = next(c for c in cams if c["id"] == PANO)
            size = (pano.get("width"), pano.get("height"))
        else:
            size = tuple(http_json(port, "/status")["size"] or (None, None))
    finally:
        end_child(proc, group=(kind != "camhub"))
        forget(proc)
    wall = after["t"] - before["t"]
    d = {k: after[k] - before[k] for k in before if isinstance(before[k], float)}
    fps = [v["win"] / wall for v in viewers]
    if not any(fps):
        raise RuntimeError(f"{kind}: the viewers received no frame in the window; see {logname}")
    r = {
        "name": kind, "wall": wall, "cpu_per_s": d["cpu"] / wall, "sources_per_s": d["sources"] / wall,
        "clients_per_s": d["clients"] / wall, "viewer_fps": fps, "size": size,
        "viewer_errors": [v["err"] for v in viewers if v["err"]],
        "bad_jpeg": sum(v["bad"] for v in viewers), "log": logname,
    }
    machine = (after["busy"][0] - before["busy"][0]) / max(1, after["busy"][1] - before["busy"][1]) * os.cpu_count()
    r["machine_busy"] = machine
    r["other_busy"] = max(0.0, machine - r["cpu_per_s"] - r["sources_per_s"] - r["clients_per_s"])
    delivered = sum(fps)
    r["ms_per_frame"] = r["cpu_per_s"] / delivered * 1e3 if delivered else None
    if kind == "camhub":
        m0, m1 = before["metrics"], after["metrics"]
        dm = {k: m1[k] - m0[k] for k in m0}
        r["panos_per_s"] = dm["panos"] / wall
        r["encodes_per_s"] = dm["encodes"] / wall
        r["jpeg_kb"] = dm["bytes_out"] / dm["frames_out"] / 1e3 if dm["frames_out"] else None
        r["cam_fps"] = dm["cam_frames"] / wall / len(CAMERAS)
        r["dropped"] = dm["dropped"]
        r["split"] = {"JPEG decode + rotate + warp, 3 cameras (`camhub_transform_seconds_total`)":
                      dm["transform_s"] / wall,
                      "compose: cut + stitch (`camhub_decode_seconds_total{camera=\"pano\"}`)": dm["compose_s"] / wall,
                      "JPEG encode (`camhub_encode_seconds_total{camera=\"pano\"}`)": dm["encode_s"] / wall}
    else:
        s0, s1 = before["status"], after["status"]
        r["panos_per_s"] = (s1["panoramas"] - s0["panoramas"]) / wall
        r["encodes_per_s"] = (s1["encodes"] - s0["encodes"]) / wall
        n_enc = s1["encodes"] - s0["encodes"]
        r["jpeg_kb"] = (s1["bytes"] - s0["bytes"]) / n_enc / 1e3 if n_enc else None
        r["cam_fps"] = (sum(s1["frames_read"]) - sum(s0["frames_read"])) / wall / len(CAMERAS)
        r["split"] = {}
        for role, pid in s1["pids"].items():
            c0, c1 = before["roles"].get(role), after["roles"].get(role)
            if c0 is not None and c1 is not None:
                r["split"][role] = (c1 - c0) / wall
        r["cv2"], r["cv2_threads"], r["start_method"] = s1["cv2"], s1["cv2_threads"], s1["start_method"]
        r["n_procs"] = after["n_procs"]
    return r


def snapshot(kind, proc, port, sources, clients):
    out = {"t": time.monotonic(), "cpu": tree_cpu(proc.pid), "sources": sources.cpu(),
           "clients": sum(pid_cpu(c.pid) or 0.0 for c in clients), "busy": mf.system_busy()}
    if kind == "camhub":
        out["metrics"] = camhub_metrics(port)
    else:
        st = http_json(port, "/status")
        out["status"] = st
        out["roles"] = {role: pid_cpu(pid) for role, pid in st["pids"].items()}
        out["n_procs"] = len(tree_pids(proc.pid))
    return out


def retry_busy(args, fn):
    best = None
    for k in range(args.tries):
        r = fn()
        if best is None or r["other_busy"] < best["other_busy"]:
            best = r
        if r["other_busy"] <= args.max_other_busy:
            break
        log(f"  others used {r['other_busy']:.2f} cores during the window (> {args.max_other_busy:g})" +
            (": measuring again" if k + 1 < args.tries else ": out of tries, keeping the quietest"))
    best["tries"] = k + 1
    return best


# ----------------------------------------------------------------------------------------------
# Report


def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.mean(xs) if xs else None


def f(v, spec=".3f"):
    return "–" if v is None else format(v, spec)


LABEL = {"camhub": "camhub (`[[composite]]`, one JPEG encode per frame)",
         "reference": "seed 004's approach (Python + OpenCV, one `imencode` per viewer per frame)"}


def build_report(args, rows, info):
    lines = []
    summary = {}
    for kind in ("camhub", "reference"):
        rs = rows[kind]
        fps = [x for r in rs for x in r["viewer_fps"]]
        summary[kind] = {
            "cpu": mean(r["cpu_per_s"] for r in rs), "fps": statistics.mean(fps), "fps_min": min(fps),
            "ms": mean(r["ms_per_frame"] for r in rs), "size": rs[-1]["size"],
            "kb": mean(r["jpeg_kb"] for r in rs), "panos": mean(r["panos_per_s"] for r in rs),
            "enc": mean(r["encodes_per_s"] for r in rs), "sources": mean(r["sources_per_s"] for r in rs),
            "clients": mean(r["clients_per_s"] for r in rs), "cam_fps": mean(r["cam_fps"] for r in rs),
        }
    n = len(rows["camhub"])
    lines.append(f"| contender | CPU-s per s (mean of {n} round{'s' if n > 1 else ''}) | per viewer frames/s "
                 "(mean, min) | CPU ms per delivered frame | panorama size | JPEG KB | panoramas/s | "
                 "JPEG encodes/s |")
    lines.append("|---|---:|---:|---:|---|---:|---:|---:|")
    for kind in ("camhub", "reference"):
        s = summary[kind]
        w, h = s["size"]
        lines.append(f"| {LABEL[kind]} | {f(s['cpu'])} | {f(s['fps'], '.2f')}, {f(s['fps_min'], '.2f')} | "
                     f"{f(s['ms'], '.2f')} | {w}×{h} | {f(s['kb'], '.0f')} | {f(s['panos'], '.2f')} | "
                     f"{f(s['enc'], '.1f')} |")
    c, ref = summary["camhub"], summary["reference"]
    lines.append("")
    lines.append(f"**camhub / reference: {c['cpu'] / ref['cpu']:.3f}× the CPU-seconds per second**, "
                 f"{c['ms'] / ref['ms']:.3f}× per delivered frame, to {args.viewers} viewers.")
    lines.append("")
    lines.append(f"The three sources (`ffmpeg -re -stream_loop -1 … -c copy -f mpjpeg -listen 1`) used "
                 f"{f(mean([c['sources'], ref['sources']]))} CPU-s/s (camhub's windows {f(c['sources'])}, the "
                 f"reference's {f(ref['sources'])}); the viewers' client process "
                 f"{f(c['clients'])} (camhub's windows) / {f(ref['clients'])} (the reference's). Neither is in the figures above. Camera frames "
                 f"read per camera per second: camhub {f(c['cam_fps'], '.2f')}, reference "
                 f"{f(ref['cam_fps'], '.2f')} (the sources send {FPS}).")
    behind = [(k, summary[k]["fps"]) for k in ("camhub", "reference") if summary[k]["fps"] < 0.95 * FPS]
    if behind:
        lines.append("")
        lines.append("Did not keep up: " + ", ".join(f"{k}'s viewers got {v:.2f} frames/s of {FPS}" for k, v in behind)
                     + ". A contender short of CPU (the machine's free cores, what other processes left) "
                     "delivers fewer frames and its CPU-s per s is capped; CPU ms per delivered frame compares "
                     "the work done.")
    lines.append("")
    lines.append("Where the CPU goes (CPU-s per s, last round):")
    lines.append("")
    cr = rows["camhub"][-1]
    lines.append("- camhub, from `/metrics` (thread CPU time of the calls): " +
                 "; ".join(f"{k} {v:.3f}" for k, v in cr["split"].items()) +
                 f"; the rest (HTTP sources, scheduling, serving) "
                 f"{cr['cpu_per_s'] - sum(cr['split'].values()):.3f}.")
    rr = rows["reference"][-1]
    names = {"reader1": "reader 1", "reader2": "reader 2", "reader3": "reader 3",
             "concat": "concat (rotate + warp + cut + hconcat, pickling into the Pipe)",
             "server": "server (the Pipe, one `imencode` per viewer per panorama, the sockets)"}
    lines.append("- reference, per process (`/proc`): " +
                 "; ".join(f"{names.get(k, k)} {v:.3f}" for k, v in rr["split"].items()) +
                 f" ({rr['n_procs']} processes).")
    lines.append("")
    lines.append("| round | contender | window s | CPU-s per s | viewer frames/s mean / min | sources CPU-s/s | "
                 "machine busy cores | of which others' | tries | viewer errors |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in range(n):
        for kind in rows["order"][k]:
            r = rows[kind][k]
            lines.append(f"| {k + 1} | {kind} | {r['wall']:.1f} | {r['cpu_per_s']:.3f} | "
                         f"{statistics.mean(r['viewer_fps']):.2f} / {min(r['viewer_fps']):.2f} | "
                         f"{r['sources_per_s']:.3f} | {r['machine_busy']:.2f} | {r['other_busy']:.2f} | "
                         f"{r['tries']} | {len(r['viewer_errors'])} |")
    return "\n".join(lines), summary


def versions(binary):
    def run(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=REPO).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"
    commit = run(["git", "rev-parse", "--short", "HEAD"])
    dirty = bool(run(["git", "status", "--porcelain", "--untracked-files=no"]))
    return {"commit": commit, "dirty": dirty, "camhub": run([binary, "--version"]).splitlines()[0:1],
            "ffmpeg": run(["ffmpeg", "-version"]).splitlines()[0:1]}


def setup_text(args, info, ref_row):
    debug = "/debug/" in args.binary
    corners = ", ".join(f"[{x:g}, {y:g}]" for x, y in CORNERS)
    out = [
        f"Three 1280×720 {FPS} fps MJPEG-over-HTTP cameras (testsrc2 clips, ffmpeg `-q:v 5`, ≈ 45 KB a frame, "
        f"served by `ffmpeg -re -stream_loop -1 -i camN.mkv -c copy -f mpjpeg -listen 1`, no re-encoding); "
        f"each contender alone on them, {args.viewers} MJPEG viewers (light clients from `mjpeg_fanout.py`, "
        f"no decoding), {args.warmup:g} s warm-up, {args.duration:g} s window, {args.rounds} round(s), the order "
        f"alternating by round. CPU: utime + stime of the contender's whole process tree from `/proc`.",
        "",
        f"Both: per camera the corners [{corners}] (seed 004's example, scaled to 720p) warped to 1280×720, "
        f"`rotate = 180` on cam2, cuts {', '.join(str(c['cut']) for c in CAMERAS)}, hstack, {FPS} panoramas/s, "
        f"JPEG quality {args.quality if args.quality is not None else 'each contender’s default'}.",
        f"camhub: `{(info['camhub'] or ['?'])[0]}`, binary `{args.binary}`, `[[composite]]` `pano`, viewers of "
        f"`/api/cameras/pano/stream.mjpeg" + (f"?quality={args.quality}" if args.quality is not None else "") + "`.",
        f"Reference (`composite_cost.py --reference-server`, Python {sys.version.split()[0]}, OpenCV "
        f"{ref_row.get('cv2')}, `cv2.setNumThreads` left at its default: {ref_row.get('cv2_threads')} threads; "
        f"multiprocessing start method `{ref_row.get('start_method')}`): a reader process per camera "
        f"(`cv2.VideoCapture(url)`, frames into a `multiprocessing.Queue`), a concat process "
        f"(`cv2.rotate`, `getPerspectiveTransform` + `warpPerspective`, column cuts, `cv2.hconcat`, {FPS}/s, "
        f"sent through a `Pipe`), a `ThreadingHTTPServer` whose `/stream` handler `cv2.imencode`s each new "
        f"panorama for its viewer (a `Content-Length` header added to seed 004's parts for the bench viewers).",
        f"{(info['ffmpeg'] or ['?'])[0]}; {os.cpu_count()} cores.",
    ]
    if debug:
        out.append("")
        out.append("**A debug build of camhub: these numbers are a smoke test, not results.**")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------


def default_binary():
    for p in ("/work/target-bench/release/camhub", os.path.join(REPO, "target", "release", "camhub")):
        if os.access(p, os.X_OK):
            return p
    return "/work/target-bench/release/camhub"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=None,
                    help="camhub binary (default: /work/target-bench/release/camhub, else target/release/camhub)")
    ap.add_argument("--duration", type=float, default=30, help="measured seconds per contender and round")
    ap.add_argument("--warmup", type=float, default=8, help="seconds from the viewers' connect to the window")
    ap.add_argument("--viewers", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quality", type=int, default=95,
                    help="JPEG quality of both contenders (default 95: cv2.imencode's default, what seed 004 "
                         "serves; camhub's own default is 80)")
    ap.add_argument("--max-other-busy", type=float, default=0.5,
                    help="measure again if other processes used more cores than this during a window")
    ap.add_argument("--tries", type=int, default=2, help="at most this many tries per window (quietest kept)")
    ap.add_argument("--results", help="append the report to this file (e.g. benches/RESULTS.md)")
    ap.add_argument("--reference-server", metavar="CONFIG_JSON", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--fps", type=float, default=FPS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_server:
        return reference_server(args)

    args.binary = args.binary or default_binary()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no camhub binary at {args.binary}; build one (e.g. CARGO_TARGET_DIR=/work/target-bench cargo "
                 f"build --release -p camhub) or pass --binary PATH")
    if not any(os.access(os.path.join(d, "ffmpeg"), os.X_OK) for d in os.environ.get("PATH", "").split(":")):
        sys.exit("ffmpeg not found (apt-get install ffmpeg)")
    try:
        import cv2  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        sys.exit(f"{e}: run with /usr/bin/python3 and Debian's python3-opencv (apt-get install python3-opencv)")
    mf.raise_fd_limit()
    if "/debug/" in args.binary:
        log(f"WARNING: {args.binary} is a debug build: its numbers are a smoke test, not results")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    info = versions(args.binary)
    workdir = tempfile.mkdtemp(prefix="camhub-composite-")
    rows = {"camhub": [], "reference": [], "order": []}
    try:
        clips = ensure_clips()
        sources = Sources(clips, workdir)
        sources.start()
        log(f"sources up on ports {sources.ports}; logs and configs in {workdir}")
        for rnd in range(args.rounds):
            order = ["camhub", "reference"] if rnd % 2 == 0 else ["reference", "camhub"]
            rows["order"].append(order)
            for kind in order:
                log(f"round {rnd + 1}/{args.rounds}: {kind}, {args.viewers} viewers")
                sources.wait_listening()
                r = retry_busy(args, lambda: measure(args, kind, sources, workdir))
                rows[kind].append(r)
                log(f"  {kind}: {r['cpu_per_s']:.3f} CPU-s/s, viewers {statistics.mean(r['viewer_fps']):.2f} fps "
                    f"(min {min(r['viewer_fps']):.2f}), {r['encodes_per_s']:.1f} encodes/s, panorama "
                    f"{r['size'][0]}x{r['size'][1]}, sources {r['sources_per_s']:.3f} CPU-s/s, machine busy "
                    f"{r['machine_busy']:.2f} cores" + (f", viewer errors {r['viewer_errors'][:2]}"
                                                         if r["viewer_errors"] else ""))
                sources.wait_listening()
    except KeyboardInterrupt as e:
        end_all()
        sys.exit(f"interrupted ({e}); logs in {workdir}")
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        end_all()
        sys.exit(f"error: {e}\nlogs in {workdir}")
    finally:
        end_all()
    table, _ = build_report(args, rows, info)
    setup = setup_text(args, info, rows["reference"][-1])
    print(setup + "\n\n" + table)
    if args.results:
        with open(args.results, "a") as fh:
            fh.write(f"\n## 3 × 720p composite to {args.viewers} viewers (issue 7), `benches/composite_cost.py`, "
                     f"commit {info['commit']}{' + uncommitted changes' if info['dirty'] else ''}, "
                     f"{time.strftime('%Y-%m-%d')}\n\n{setup}\n\n{table}\n")
        log(f"appended to {args.results}")
    log(f"logs in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
