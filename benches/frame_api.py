#!/usr/bin/env python3
"""Issue 11's benchmark ("Frames for programs"): frames per second, CPU per frame and the age of the
returned frame (capture -> returned) of read(width=640) over HTTP, against cv2.VideoCapture + cv2.resize
on the same live 1080p25 H.264 source, in one run, and of the in-process Python package (`camhub.open`).

One run:
  1. makes (once, cached in benches/.cache/) a 60 s 1080p25 H.264 clip (testsrc2, libx264 veryfast, GOP 50,
     no B-frames like a camera) whose every picture carries its own frame number: a row of 24 black/white
     40x40 blocks at the top left, bit i = block i (least significant first), machine readable after any
     downscale to 640 px;
  2. serves it live with this script's `--serve-source` mode (a separate process group): per client
     connection, `ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f flv pipe:1` (a fresh one, so each client
     starts at frame 0), relayed over HTTP (`/live.flv`). FLV carries whole frames (an MPEG-TS stream costs
     every reader two frames more, ~80 ms: its demuxer and FFmpeg's H.264 parser each wait for the next
     frame). The relay reads the FLV tags' headers as they leave ffmpeg and keeps, per connection, the
     anchor: min over frames of (time sent - i / 25), so frame i of the live source exists from anchor +
     i / 25 (-re keeps that schedule, catching up after a stall). A client that does not read blocks the
     relay and ffmpeg (TCP back-pressure, like `ffmpeg -listen 1`); the schedule stays on the wall clock;
  3. per round, each contender alone, each mode "fast" (no work per frame) and "slow" (sleeps 200 ms per
     frame, as a model would), one client process (this script's `--client` mode):
     - ws:  camhub (a fresh process, url = "ffmpeg:http://127.0.0.1:PORT/live.flv"),
            /api/cameras/cam/frames?width=640&format=bgr, a pull loop (send "next", read one binary
            message, parse the header, reshape to numpy), over a minimal RFC 6455 client written here;
     - raw: camhub, GET /api/cameras/cam/frame.raw?width=640&format=bgr polled back to back on one keep-alive
            connection (fast mode returns the same picture again when polled faster than 25/s: both the
            calls and the new pictures are counted);
     - cv2: cv2.VideoCapture(http://127.0.0.1:PORT/live.flv) + cv2.resize(frame, (640, 360));
     - floor (fast mode only): the same cv2.VideoCapture returning the encoded packets (CAP_PROP_FORMAT = -1,
            no decoding): what receiving and demuxing alone cost and how late a frame is before any
            decoding (the source's -re jitter, the transport, the demuxer);
  4. after a warm-up, over a window: returned frames per second (new pictures), CPU ms per returned frame
     (utime + stime from /proc: client + camhub for ws and raw, the cv2 process for cv2; the source relay
     apart), the age of each returned frame against the live source (returned time - (anchor + frame number
     / 25), the number read from the picture) and, for camhub, against X-Frame-Timestamp / the header's
     timestamp (camhub received -> returned); the backlog (the last returned frame's age at the end of the
     window: cv2's slow reader falls seconds behind);
  5. prints Markdown tables; `--results FILE` appends them under a header naming the commit and date.

Needs /usr/bin/python3 with numpy and cv2 (Debian's python3-opencv) and the ffmpeg CLI. Usage:
  /usr/bin/python3 benches/frame_api.py [--binary PATH] [--duration 30] [--warmup 10] [--rounds 2]
"""

import argparse
import base64
import hashlib
import json
import math
import os
import signal
import socket
import socketserver
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import mjpeg_fanout as mf  # noqa: E402  (start_camhub, metrics, free_port, /proc helpers)
import composite_cost as cc  # noqa: E402  (process-tree CPU, children ended at exit, versions)

log = mf.log
W, H, FPS = 1920, 1080, 25
CLIP_SECONDS = 60
PERIOD = CLIP_SECONDS * FPS            # frames in the clip: the pictures' numbers wrap at this
BITS, BLOCK = 24, 40                   # the frame number's blocks: 24 of 40x40 px at the top left
OUT_W, OUT_H = 640, 360                # what every contender returns
SLOW_S = 0.2                           # the slow consumer's work per frame
MIN_MARGIN = 40                        # a block's mean must be this far from 128 to be read
CAM = "cam"
CLIP = os.path.join(mf.CACHE, f"frame_api_numbered_1080p25_{CLIP_SECONDS}s.mp4")
KINDS = ("lib", "ws", "raw", "cv2", "floor")
MODES = ("fast", "slow")
LABEL = {
    "lib": "in-process `camhub.open(...).read(width=640)` (Python package)",
    "ws": "camhub `/frames?width=640&format=bgr` (WebSocket pull)",
    "raw": "camhub `frame.raw?width=640&format=bgr` (polled)",
    "cv2": "`cv2.VideoCapture` + `cv2.resize(640, 360)`",
    "floor": "floor: `cv2.VideoCapture` packets, no decoding",
}


def clip_cmd(out):
    vf = [f"drawbox=x=0:y=0:w={BITS * BLOCK}:h={BLOCK}:color=black:t=fill"]
    for i in range(BITS):
        vf.append(f"drawbox=x={i * BLOCK}:y=0:w={BLOCK}:h={BLOCK}:color=white:t=fill:"
                  f"enable='eq(mod(floor(n/{1 << i}),2),1)'")
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate={FPS}", "-t", str(CLIP_SECONDS),
            "-vf", ",".join(vf), "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-bf", "0",
            "-pix_fmt", "yuv420p", "-an", "-movflags", "+faststart", out]


def source_cmd(clip):
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
            "-i", clip, "-c", "copy", "-f", "flv", "-flush_packets", "1", "pipe:1"]


def ensure_clip():
    os.makedirs(mf.CACHE, exist_ok=True)
    if not os.path.exists(CLIP):
        log(f"encoding {os.path.basename(CLIP)} once (cached in benches/.cache/, ~1 min) ...")
        tmp = CLIP + ".tmp.mp4"
        subprocess.run(clip_cmd(tmp), check=True)
        os.replace(tmp, CLIP)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,width,height,r_frame_rate,bit_rate,nb_frames,has_b_frames", "-of", "json", CLIP],
        check=True, capture_output=True, text=True)
    st = json.loads(probe.stdout)["streams"][0]
    if int(st["nb_frames"]) != PERIOD or (st["width"], st["height"]) != (W, H):
        raise RuntimeError(f"{CLIP} is not the expected clip ({st}); delete it to make it again")
    return st


# ----------------------------------------------------------------------------------------------
# The frame number in the picture


class NumberReader:
    """Reads the frame number from a BGR picture of any size (the blocks scaled with it)."""

    def __init__(self, width, height):
        import numpy as np
        self.np = np
        sx, sy = width / W, height / H
        half = max(1, int(BLOCK * min(sx, sy) / 2) - 3)  # a patch well inside each block
        cy = int(BLOCK / 2 * sy)
        self.rows = slice(max(0, cy - half), cy + half + 1)
        self.cols = np.array([[int((i * BLOCK + BLOCK / 2) * sx) + d for d in range(-half, half + 1)]
                              for i in range(BITS)])
        self.weights = (1 << np.arange(BITS, dtype=np.int64))

    def __call__(self, img):
        """(number, margin): margin = the least distance of a block's mean from mid-grey."""
        np = self.np
        patch = img[self.rows][:, self.cols]           # (rows, BITS, cols[, channels])
        axes = (0, 2, 3) if patch.ndim == 4 else (0, 2)
        v = patch.mean(axis=axes)
        bits = v > 128
        return int((bits * self.weights).sum()), float(np.abs(v - 128).min())


# ----------------------------------------------------------------------------------------------
# The live source: `--serve-source CLIP --port P` (its own process group)


def serve_source(args):
    conns = []
    lock = threading.Lock()
    procs = set()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            sock = self.request
            f = sock.makefile("rb")
            line = f.readline(8192).decode("latin-1")
            while True:
                h = f.readline(8192)
                if h in (b"\r\n", b"\n", b""):
                    break
            parts = line.split()
            path = urllib.parse.urlsplit(parts[1]).path if len(parts) > 1 else ""
            if path == "/status":
                with lock:
                    body = json.dumps({"conns": conns, "pid": os.getpid()}).encode()
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)
                return
            if path != "/live.flv":
                sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self.stream(sock)

        def stream(self, sock):
            rec = {"id": None, "peer": "%s:%d" % self.client_address, "t_connect": time.time(),
                   "t_first": None, "anchor": None, "frames": 0, "bytes": 0, "t_close": None, "end": None}
            with lock:
                rec["id"] = len(conns)
                conns.append(rec)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nCache-Control: no-store\r\n"
                         b"Connection: close\r\n\r\n")
            proc = subprocess.Popen(source_cmd(args.serve_source), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=sys.stderr)
            with lock:
                procs.add(proc)
            fd = proc.stdout.fileno()
            counter = FlvFrames()
            frames, anchor = 0, None
            try:
                while True:
                    data = os.read(fd, 1 << 16)
                    t = time.time()
                    if not data:
                        rec["end"] = f"ffmpeg exited ({proc.wait()})"
                        break
                    for _ in range(counter.feed(data)):
                        # Frame i (in order, no B-frames) left ffmpeg at t: -re makes it no earlier than
                        # its schedule, anchor + i / FPS.
                        d = t - frames / FPS
                        if anchor is None or d < anchor:
                            anchor = d
                        frames += 1
                    if rec["t_first"] is None:
                        rec["t_first"] = t
                    with lock:
                        rec["frames"], rec["anchor"] = frames, anchor
                    sock.sendall(data)
                    rec["bytes"] += len(data)
            except OSError as e:  # the client went away
                rec["end"] = f"client: {e.__class__.__name__}"
            finally:
                proc.kill()
                proc.wait()
                with lock:
                    procs.discard(proc)
                    rec["t_close"] = time.time()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", args.port), Handler)

    def on_term(*_):
        with lock:
            for p in procs:
                p.kill()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print(f"source relay on 127.0.0.1:{args.port}: {' '.join(source_cmd(args.serve_source))}", flush=True)
    server.serve_forever()


class FlvFrames:
    """Counts the H.264 frames (FLV video tags holding NAL units, AVCPacketType 1) in an FLV byte stream
    fed in pieces, reading only the tags' headers."""

    def __init__(self):
        self.skip = 9 + 4      # the FLV header and PreviousTagSize0
        self.hdr = b""

    def feed(self, data):
        n, pos, end = 0, 0, len(data)
        while pos < end:
            if self.skip:
                k = min(self.skip, end - pos)
                pos += k
                self.skip -= k
                continue
            take = min(13 - len(self.hdr), end - pos)   # the 11-byte tag header + 2 bytes of its data
            self.hdr += data[pos:pos + take]
            pos += take
            if len(self.hdr) < 13:
                break
            kind, size = self.hdr[0] & 0x1F, int.from_bytes(self.hdr[1:4], "big")
            if kind == 9 and self.hdr[12] == 1:
                n += 1
            if size < 2:
                raise ValueError(f"an FLV tag of {size} bytes: out of step with the stream")
            self.skip = size - 2 + 4   # the rest of the data, then PreviousTagSize
            self.hdr = b""
        return n


class Source:
    def __init__(self, workdir):
        self.port = mf.free_port()
        self.url = f"http://127.0.0.1:{self.port}/live.flv"
        self.log = os.path.join(workdir, "source.log")
        self.proc = None

    def start(self):
        cmd = [sys.executable, os.path.abspath(__file__), "--serve-source", CLIP, "--port", str(self.port)]
        self.proc = cc.register(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(self.log, "w"),
                                                 stderr=subprocess.STDOUT, start_new_session=True), group=True)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.status()
                return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"the source relay exited with {self.proc.returncode}: {cc.tail(self.log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the source relay does not answer on port {self.port}: {cc.tail(self.log)}")
            time.sleep(0.1)

    def status(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=3) as r:
            return json.loads(r.read())["conns"]

    def cpu(self):
        return cc.tree_cpu(self.proc.pid)


# ----------------------------------------------------------------------------------------------
# A minimal RFC 6455 client (client frames masked; fragments reassembled; pings answered)


class WebSocket:
    GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, url, timeout=30):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        path = u.path + ("?" + u.query if u.query else "")
        self.sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                          % (path.encode(), u.hostname.encode(), u.port or 80, key))
        self.f = self.sock.makefile("rb", buffering=1 << 16)
        status = self.f.readline()
        headers = {}
        while True:
            line = self.f.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if b" 101 " not in status:
            body = self.f.read1(2000) if hasattr(self.f, "read1") else b""
            raise RuntimeError(f"WebSocket upgrade refused: {status.decode('latin-1').strip()} {body[:300]!r}")
        want = base64.b64encode(hashlib.sha1(key + self.GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            raise RuntimeError("WebSocket upgrade: wrong Sec-WebSocket-Accept")

    def send(self, payload, opcode=0x1):
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload)
        hdr = bytes([0x80 | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(hdr + mask + masked)

    def _read_into(self, view):
        got = 0
        while got < len(view):
            k = self.f.readinto(view[got:])
            if not k:
                raise RuntimeError("WebSocket closed by the server")
            got += k

    def _read(self, n):
        buf = bytearray(n)
        self._read_into(memoryview(buf))
        return buf

    def recv(self):
        """(opcode, payload) of the next whole message (text 1, binary 2); pings answered."""
        parts, first_op = [], None
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None  # servers never mask; accept it anyway
            payload = self._read(n)
            if mask:
                payload = bytearray(b ^ mask[i & 3] for i, b in enumerate(payload))
            if op == 0x9:
                self.send(bytes(payload), opcode=0xA)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise RuntimeError(f"WebSocket closed by the server (code {code}, {bytes(payload[2:])!r})")
            if op != 0x0:
                first_op = op
            parts.append(payload)
            if b0 & 0x80:
                return first_op, parts[0] if len(parts) == 1 else bytearray().join(parts)

    def close(self):
        try:
            self.sock.sendall(bytes([0x88, 0x82]) + b"\0\0\0\0" + struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


# ----------------------------------------------------------------------------------------------
# The consumers: `--client KIND --mode fast|slow --url URL --until UNIX_TIME --out FILE`


def client_main(args):
    import numpy as np
    read_number = NumberReader(OUT_W, OUT_H)
    slow = args.mode == "slow"
    samples = []   # [returned unix s, number, margin, seq, camhub timestamp ms, skipped]
    info, err, timeouts, http_errors = {}, None, 0, {}
    try:
        if args.client in ("cv2", "floor"):
            import cv2
            info["cv2"] = cv2.__version__
            info["cv2_threads"] = cv2.getNumThreads()
            cap = cv2.VideoCapture(args.url, cv2.CAP_FFMPEG)
            if not cap.isOpened():
                raise RuntimeError(f"cv2.VideoCapture could not open {args.url}")
            info["backend"] = cap.getBackendName()
            if hasattr(cv2, "CAP_PROP_N_THREADS"):
                info["decoder_threads"] = cap.get(cv2.CAP_PROP_N_THREADS)
            if args.client == "floor":
                # Encoded packets, not decoded: packet i is frame i (the stream starts at frame 0, no
                # B-frames), so its "number" is its index.
                if not cap.set(cv2.CAP_PROP_FORMAT, -1):
                    raise RuntimeError("this OpenCV cannot return raw packets (CAP_PROP_FORMAT = -1)")
                i = 0
                while time.time() < args.until:
                    ok, packet = cap.read()
                    if not ok:
                        raise RuntimeError("cv2.VideoCapture.read() returned no packet (the stream ended)")
                    samples.append([time.time(), i % PERIOD, 255.0, None, None, None])
                    i += 1
            while args.client == "cv2" and time.time() < args.until:
                ok, frame = cap.read()
                if not ok:
                    raise RuntimeError("cv2.VideoCapture.read() returned no frame (the stream ended)")
                small = cv2.resize(frame, (OUT_W, OUT_H))
                t = time.time()
                n, margin = read_number(small)
                samples.append([t, n, margin, None, None, None])
                if slow:
                    time.sleep(SLOW_S)
            cap.release()
        elif args.client == "lib":
            if args.package:
                sys.path.insert(0, args.package)
            import camhub
            info["camhub_package"] = camhub.__version__
            with camhub.open("ffmpeg:" + args.url, timeout=30) as cam:
                while time.time() < args.until:
                    img = cam.read(width=OUT_W, timeout=10)
                    t = time.time()
                    n, margin = read_number(img)
                    samples.append([t, n, margin, img.seq, round(img.timestamp * 1000), img.skipped])
                    if slow:
                        time.sleep(SLOW_S)
        elif args.client == "ws":
            ws = WebSocket(args.url)
            while time.time() < args.until:
                ws.send("next")
                op, msg = ws.recv()
                if op == 0x1:
                    m = json.loads(bytes(msg))
                    if m.get("type") == "timeout":
                        timeouts += 1
                        continue
                    raise RuntimeError(f"/frames answered {m}")
                n_head = struct.unpack_from("<I", msg)[0]
                head = json.loads(bytes(msg[4:4 + n_head]))
                h, w = head["height"], head["width"]
                img = np.frombuffer(msg, np.uint8, count=h * head["stride"], offset=4 + n_head).reshape(h, w, 3)
                t = time.time()
                n, margin = read_number(img)
                samples.append([t, n, margin, head["seq"], head["timestamp"], head["skipped"]])
                if slow:
                    time.sleep(SLOW_S)
            ws.close()
        elif args.client == "raw":
            import http.client
            u = urllib.parse.urlsplit(args.url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            path = u.path + "?" + u.query
            while time.time() < args.until:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    http_errors[r.status] = http_errors.get(r.status, 0) + 1
                    if sum(http_errors.values()) > 50:
                        raise RuntimeError(f"frame.raw: {r.status} {body[:300]!r}")
                    time.sleep(0.2)
                    continue
                h, w = int(r.getheader("X-Height")), int(r.getheader("X-Width"))
                img = np.frombuffer(body, np.uint8).reshape(h, w, 3)
                t = time.time()
                n, margin = read_number(img)
                samples.append([t, n, margin, int(r.getheader("X-Frame-Seq")),
                                int(r.getheader("X-Frame-Timestamp")), None])
                if slow:
                    time.sleep(SLOW_S)
            conn.close()
        else:
            raise RuntimeError(f"unknown client {args.client}")
    except Exception as e:  # noqa: BLE001  (reported to the harness, with what was measured so far)
        err = f"{e.__class__.__name__}: {e}"
    if samples:
        info["size"] = [OUT_W, OUT_H]
    with open(args.out, "w") as fh:
        json.dump({"samples": samples, "info": info, "error": err, "timeouts": timeouts,
                   "http_errors": http_errors}, fh)
    return 1 if err else 0


# ----------------------------------------------------------------------------------------------
# One session: one contender, one mode


def camhub_metrics(port):
    m = mf.metrics(port)
    return {k: mf.metric(m, name) for k, name in (
        ("frames_in", "camhub_frames_in_total"), ("decode_s", "camhub_decode_seconds_total"),
        ("dropped", "camhub_frames_dropped_total"), ("reconnects", "camhub_reconnects_total"),
        ("bytes_out", "camhub_bytes_out_total"))}


def snapshot(source, client, camhub, port):
    out = {"t": time.time(), "client": cc.tree_cpu(client.pid), "source": source.cpu(),
           "camhub": cc.tree_cpu(camhub.pid) if camhub else 0.0, "busy": mf.system_busy(),
           "conns": source.status()}
    if camhub:
        out["metrics"] = camhub_metrics(port)
    return out


def sleep_until_unix(t):
    d = t - time.time()
    if d > 0:
        time.sleep(d)


def session(args, kind, mode, source, workdir, tag):
    camhub = port = logname = None
    if kind in ("ws", "raw"):
        mf.CAM = CAM
        camhub, port, _, logname = mf.start_camhub(args.binary, workdir, url="ffmpeg:" + source.url)
        cc.register(camhub, group=False)
        q = f"width={OUT_W}&format=bgr"
        url = (f"ws://127.0.0.1:{port}/api/cameras/{CAM}/frames?{q}" if kind == "ws"
               else f"http://127.0.0.1:{port}/api/cameras/{CAM}/frame.raw?{q}")
        # The route must exist in this binary (frame.raw and /frames came with issue 11).
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/cameras/{CAM}/frame.raw?width=0", timeout=5)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise RuntimeError(f"{args.binary} has no /api/cameras/{{id}}/frame.raw (404): a build from "
                                   f"before issue 11's frame API; build a newer one") from None
    else:
        url = source.url
    out = os.path.join(workdir, f"client-{tag}.json")
    clog = os.path.join(workdir, f"client-{tag}.log")
    t_start = time.time()
    t0 = t_start + args.warmup
    t1 = t0 + args.duration
    cmd = [sys.executable, os.path.abspath(__file__), "--client", kind, "--mode", mode, "--url", url,
           "--until", repr(t1 + 0.3), "--out", out]
    if args.package:
        cmd += ["--package", args.package]
    client = cc.register(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(clog, "w"),
                                          stderr=subprocess.STDOUT), group=False)
    try:
        sleep_until_unix(t0)
        for p, name, lg in ((client, "the client", clog), (camhub, "camhub", logname)):
            if p is not None and p.poll() is not None:
                raise RuntimeError(f"{kind}/{mode}: {name} exited during the warm-up ({p.returncode}): "
                                   f"{cc.tail(lg)}" + ("" if p is client else cc.tail(out)))
        before = snapshot(source, client, camhub, port)
        sleep_until_unix(t1)
        after = snapshot(source, client, camhub, port)
        try:
            client.wait(20)
        except subprocess.TimeoutExpired:
            log(f"  {kind}/{mode}: the client did not end 20 s after the window (blocked in a read?): ending it")
        cc.end_child(client, False)
        cc.forget(client)
    finally:
        if camhub:
            cc.end_child(camhub, False)
            cc.forget(camhub)
    conns = source.status()
    try:
        with open(out) as fh:
            res = json.load(fh)
    except (OSError, ValueError):
        raise RuntimeError(f"{kind}/{mode}: the client wrote no result: {cc.tail(clog)}") from None
    return analyse(args, kind, mode, t_start, before, after, conns, res, logname or clog)


def datetime_ms(t):
    return time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d} UTC"


def camhub_kind(kind):
    return kind in ("ws", "raw")


def analyse(args, kind, mode, t_start, before, after, conns, res, logname):
    wall = after["t"] - before["t"]
    t0, t1 = before["t"], after["t"]
    mine = [c for c in conns if c["t_connect"] >= t_start - 0.2]
    if not mine:
        raise RuntimeError(f"{kind}/{mode}: the contender never connected to the source; {res.get('error')}; "
                           f"see {logname}")
    conn = mine[0]
    anchor = conn["anchor"]
    if anchor is None:
        raise RuntimeError(f"{kind}/{mode}: the source sent no frame; see {logname}")
    # Unwrap the pictures' numbers (they wrap every PERIOD frames): the first from the wall clock (the
    # live source's frame now), the next ones forward from the previous (a reader's frames come in order).
    prev, unreadable, backwards, last = None, 0, [], None
    rows = []
    for t, n, margin, seq, ts, skipped in res["samples"]:
        if margin < MIN_MARGIN or n >= PERIOD:
            unreadable += 1
            continue
        if prev is None:
            live = (t - anchor) * FPS
            k = n + PERIOD * max(0, math.floor((live + 2 - n) / PERIOD))
        else:
            d = (n - prev) % PERIOD
            if d > PERIOD // 2:
                # An older picture than the one returned before it: kept out of the ages, reported.
                if len(backwards) < 5:
                    backwards.append(f"{datetime_ms(t)}: picture {n}" +
                                     (f" (seq {seq}, timestamp {ts})" if seq is not None else "") +
                                     f" after picture {last[0]}" +
                                     (f" (seq {last[1]}, timestamp {last[2]})" if last[1] is not None else ""))
                else:
                    backwards.append(None)
                continue
            k = prev + d
        prev, last = k, (n, seq, ts)
        rows.append((t, k, seq, ts, skipped))
    win = [r for r in rows if t0 <= r[0] <= t1]
    if not win:
        raise RuntimeError(f"{kind}/{mode}: no frame returned in the window ({res.get('error')}); see {logname}")
    ages = [(t - (anchor + k / FPS)) * 1e3 for t, k, *_ in win]
    hub_ages = [t * 1e3 - ts for t, _, _, ts, _ in win if ts is not None]
    new = len({k for _, k, *_ in win})
    cpu_client = after["client"] - before["client"]
    cpu_hub = after["camhub"] - before["camhub"]
    cpu_source = after["source"] - before["source"]
    fr0 = next((c["frames"] for c in before["conns"] if c["id"] == conn["id"]), 0)
    fr1 = next((c["frames"] for c in after["conns"] if c["id"] == conn["id"]), 0)
    machine = ((after["busy"][0] - before["busy"][0]) / max(1, after["busy"][1] - before["busy"][1])
               * os.cpu_count())
    r = {
        "kind": kind, "mode": mode, "wall": wall,
        "calls_per_s": len(win) / wall, "new_per_s": new / wall,
        "cpu_ms": (cpu_client + cpu_hub) / new * 1e3, "client_ms": cpu_client / new * 1e3,
        "camhub_ms": cpu_hub / new * 1e3 if camhub_kind(kind) else None,
        "cpu_per_s": (cpu_client + cpu_hub) / wall, "source_per_s": cpu_source / wall,
        "source_fps": (fr1 - fr0) / wall,
        "age_p50": mf.pct(ages, 0.5), "age_p95": mf.pct(ages, 0.95), "ages": ages,
        "hub_p50": mf.pct(hub_ages, 0.5), "hub_p95": mf.pct(hub_ages, 0.95), "hub_ages": hub_ages,
        "backlog_s": ages[-1] / 1e3, "backlog_at": win[-1][0] - conn["t_connect"],
        "unreadable": unreadable, "backwards": len(backwards), "backwards_examples": [b for b in backwards if b],
        "n_conns": len(mine),
        "error": res.get("error"), "timeouts": res.get("timeouts", 0), "http_errors": res.get("http_errors"),
        "info": res.get("info", {}), "machine_busy": machine,
        "anchor_lag_ms": (conn["t_first"] - anchor) * 1e3 if conn["t_first"] else None,
    }
    r["other_busy"] = max(0.0, machine - r["cpu_per_s"] - r["source_per_s"])
    if camhub_kind(kind):
        m0, m1 = before["metrics"], after["metrics"]
        dm = {k: m1[k] - m0[k] for k in m0}
        r["hub_fps_in"] = dm["frames_in"] / wall
        r["decode_ms"] = dm["decode_s"] / dm["frames_in"] * 1e3 if dm["frames_in"] else None
        r["decode_per_s"] = dm["decode_s"] / wall
        r["dropped"] = dm["dropped"]
        r["reconnects"] = dm["reconnects"]
        sk = [s for *_, s in win if s is not None]
        r["skipped_per_s"] = sum(sk) / wall if sk else None
    # Consecutive returned frames: how many source frames lie between them (cv2 must be 1: every frame).
    steps = [b[1] - a[1] for a, b in zip(win, win[1:])]
    r["step_max"] = max(steps) if steps else None
    r["dups"] = sum(1 for s in steps if s == 0)
    return r


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


def f(v, spec=".1f"):
    return "–" if v is None else format(v, spec)


def summarise(rs):
    ages = [a for r in rs for a in r["ages"]]
    hub = [a for r in rs for a in r["hub_ages"]]
    keys = ("new_per_s", "calls_per_s", "cpu_ms", "client_ms", "camhub_ms", "source_fps", "backlog_s",
            "backlog_at", "source_per_s", "cpu_per_s")
    s = {k: mean(r.get(k) for r in rs) for k in keys}
    s.update(age_p50=mf.pct(ages, 0.5), age_p95=mf.pct(ages, 0.95), hub_p50=mf.pct(hub, 0.5),
             hub_p95=mf.pct(hub, 0.95), decode_ms=mean(r.get("decode_ms") for r in rs),
             hub_fps_in=mean(r.get("hub_fps_in") for r in rs))
    return s


def build_report(args, rows, order):
    n = args.rounds
    lines = []
    lines.append(f"| contender | mode | frames/s returned (new) | calls/s | CPU ms per returned frame | of which "
                 f"camhub / client | source frames/s sent | age median / p95 ms (live source → returned) | "
                 f"age median / p95 ms (camhub received → returned) | backlog s at the end (s after connect) |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    summ = {}
    for kind in KINDS:
        for mode in MODES:
            rs = rows.get((kind, mode))
            if not rs:
                continue
            s = summ[(kind, mode)] = summarise(rs)
            split = (f"{f(s['camhub_ms'], '.2f')} / {f(s['client_ms'], '.2f')}" if kind in ("ws", "raw")
                     else f"– / {f(s['client_ms'], '.2f')}")
            lines.append(f"| {LABEL[kind]} | {mode} | {f(s['new_per_s'], '.2f')} | {f(s['calls_per_s'], '.1f')} | "
                         f"{f(s['cpu_ms'], '.2f')} | {split} | {f(s['source_fps'], '.2f')} | "
                         f"{f(s['age_p50'], '.0f')} / {f(s['age_p95'], '.0f')} | "
                         f"{f(s['hub_p50'], '.0f') + ' / ' + f(s['hub_p95'], '.0f') if kind in ('lib', 'ws', 'raw') else '–'} | "
                         f"{f(s['backlog_s'], '.2f')} ({f(s['backlog_at'], '.0f')}) |")
    lines.append("")
    lines.append(f"Mean of {n} round(s) for rates and CPU; ages pooled over the rounds' windows. \"calls/s\": "
                 f"reads that returned a picture (`frame.raw` polled back to back returns the same picture "
                 f"again until a new one exists); \"frames/s returned\" counts new pictures, and CPU per "
                 f"returned frame divides by those. CPU: utime + stime from `/proc` of the client process plus "
                 f"camhub's (ws, raw), of the client process with camhub inside it (lib), or of the cv2 process; "
                 f"the source relay's "
                 f"({f(mean(s['source_per_s'] for s in summ.values()), '.3f')} CPU-s/s) is not in them.")
    # Targets
    lines.append("")
    lines.append("Targets (issue 11):")
    lines.append("")
    lib = [f"{m} {summ[('lib', m)]['cpu_ms'] / summ[('cv2', m)]['cpu_ms']:.2f}×"
           for m in MODES if ("lib", m) in summ and ("cv2", m) in summ]
    met = all(summ[("lib", m)]["cpu_ms"] <= summ[("cv2", m)]["cpu_ms"]
              for m in MODES if ("lib", m) in summ and ("cv2", m) in summ)
    lines.append("- in-process CPU per frame ≤ `cv2.VideoCapture`'s (CPU ms per returned frame, lib / cv2): "
                 + ("; ".join(lib) + (" (MET)" if met else " (NOT MET)") if lib else "not measured") + ". "
                 "The HTTP forms against cv2 (camhub + client): " +
                 "; ".join(f"{k} {m} {summ[(k, m)]['cpu_ms'] / summ[('cv2', m)]['cpu_ms']:.2f}×"
                           for m in MODES for k in ("ws", "raw")
                           if (k, m) in summ and ("cv2", m) in summ) + ".")
    dec = mean(summ[(k, m)]["decode_ms"] for k in ("ws", "raw") for m in MODES if (k, m) in summ)
    if dec is not None:
        thr = 1000 / FPS + dec
        parts = []
        for k in ("lib", "ws", "raw"):
            for m in MODES:
                s = summ.get((k, m))
                if s:
                    ok = s["age_p50"] < thr
                    parts.append(f"{k} {m}: median {s['age_p50']:.0f} ms, p95 {s['age_p95']:.0f} ms "
                                 f"({'MET' if ok else 'NOT MET'}{'' if s['age_p95'] < thr else ', p95 over'})")
        lines.append(f"- returned frame age < 1 frame interval + decode time = {1000 / FPS:.0f} + {dec:.1f} "
                     f"(camhub's `camhub_decode_seconds_total` per frame) = {thr:.0f} ms, judged on the median "
                     f"age against the live source: " + "; ".join(parts) + ".")
    fl = summ.get(("floor", "fast"))
    if fl:
        lines.append(f"- what each contender adds to a frame's age, over the floor (packets received and demuxed, "
                     f"not decoded: median {fl['age_p50']:.0f} ms, p95 {fl['age_p95']:.0f} ms — the source's "
                     f"`-re` jitter and the transport), median: " +
                     "; ".join(f"{k} {m} {summ[(k, m)]['age_p50'] - fl['age_p50']:.0f} ms"
                               for m in MODES for k in ("lib", "ws", "raw", "cv2") if (k, m) in summ) + ".")
    cv = summ.get(("cv2", "slow"))
    if cv:
        lines.append(f"- the slow consumer (200 ms per frame): cv2 returns frames {cv['backlog_s']:.1f} s behind "
                     f"the live source after {cv['backlog_at']:.0f} s, every frame in order; camhub's "
                     + ", ".join(f"{k} {summ[(k, 'slow')]['backlog_s'] * 1e3:.0f} ms" for k in ("lib", "ws", "raw")
                                 if (k, "slow") in summ) + ".")
    # Detail
    lines.append("")
    lines.append("| round | contender | mode | window s | frames/s | CPU-s/s | source CPU-s/s | camhub frames in/s | "
                 "decode ms/frame | camhub dropped | skipped/s | max step | unreadable / out of order | source conns | "
                 "machine busy | others' | tries | error |")
    lines.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for rnd, od in enumerate(order):
        for kind, mode in od:
            rs = rows[(kind, mode)]
            if rnd >= len(rs):
                continue
            r = rs[rnd]
            lines.append(f"| {rnd + 1} | {kind} | {mode} | {r['wall']:.1f} | {r['new_per_s']:.2f} | "
                         f"{r['cpu_per_s']:.3f} | {r['source_per_s']:.3f} | {f(r.get('hub_fps_in'), '.2f')} | "
                         f"{f(r.get('decode_ms'), '.2f')} | {f(r.get('dropped'), '.0f')} | "
                         f"{f(r.get('skipped_per_s'), '.1f')} | {f(r['step_max'], 'd')} | "
                         f"{r['unreadable']} / {r['backwards']} | {r['n_conns']} | "
                         f"{r['machine_busy']:.2f} | {r['other_busy']:.2f} | {r['tries']} | "
                         f"{(r['error'] or '') + (' timeouts %d' % r['timeouts'] if r['timeouts'] else '')} |")
    odd = [(rnd, kind, mode, e) for rnd, od in enumerate(order) for kind, mode in od
           if rnd < len(rows[(kind, mode)]) for e in rows[(kind, mode)][rnd]["backwards_examples"]]
    if odd:
        lines.append("")
        lines.append("Pictures returned out of order (an older picture after a newer one; left out of the ages):")
        lines.append("")
        for rnd, kind, mode, e in odd:
            lines.append(f"- round {rnd + 1}, {kind} {mode}, {e}")
    return "\n".join(lines), summ


def setup_text(args, info, clip, rows):
    cvinfo = next((r["info"] for rs in rows.values() for r in rs if r["kind"] == "cv2"), {})
    lag = [r["anchor_lag_ms"] for rs in rows.values() for r in rs if r.get("anchor_lag_ms") is not None]
    out = [
        f"A 1080p25 H.264 clip ({CLIP_SECONDS} s of testsrc2, libx264 veryfast, GOP 50, no B-frames, "
        f"{int(clip.get('bit_rate', 0)) / 1e6:.1f} Mbit/s) whose pictures carry their frame number ({BITS} "
        f"black/white {BLOCK}×{BLOCK} blocks), served live: per connection `{' '.join(source_cmd('clip.mp4'))}` "
        f"relayed over HTTP by `frame_api.py --serve-source` (each contender connects to it the same way and "
        f"starts at frame 0). Each contender alone, a fresh camhub per session, {args.warmup:g} s warm-up, "
        f"{args.duration:g} s window, {args.rounds} round(s), the order reversed every other round. Modes: "
        f"fast = no work per frame, slow = `time.sleep({SLOW_S})` per frame.",
        "",
        f"camhub: `{(info['camhub'] or ['?'])[0]}`, binary `{args.binary}`, one camera `url = \"ffmpeg:http://"
        f"127.0.0.1:PORT/live.flv\"` (defaults: `decode_threads = 1`). Clients (Python {sys.version.split()[0]}, "
        f"numpy): `/frames` over a minimal RFC 6455 client in the script (send `next`, read one binary "
        f"message, `np.frombuffer(...).reshape`); `frame.raw` with `http.client` on one keep-alive connection. "
        f"cv2: OpenCV {cvinfo.get('cv2', '?')}, backend {cvinfo.get('backend', '?')}, "
        f"`cv2.getNumThreads()` {cvinfo.get('cv2_threads', '?')}, "
        + (f"decoder threads {cvinfo['decoder_threads']:g}" if "decoder_threads" in cvinfo
           else "the decoder's threads left to OpenCV") + " (OpenCV's defaults, as a program gets them). "
        f"The floor: the same `cv2.VideoCapture` with `CAP_PROP_FORMAT = -1` (encoded packets, no decoding).",
        "",
        f"Age against the live source: returned time − (anchor + frame number / {FPS}), the frame number read "
        f"from the returned picture (the floor: the packet's index); the anchor is the source's schedule, the "
        f"relay's min over frames of (time frame i left ffmpeg − i / {FPS}) (`-re` sends frames 0 and 1 at once, "
        f"then each on its schedule, 0–10 ms late: the first byte left {f(mean(lag), '.0f')} ms after the anchor). "
        f"Against camhub: returned time − `X-Frame-Timestamp` / the header's `timestamp` (when camhub received "
        f"the frame). Backlog: the age of the last frame returned in the window. "
        f"{(info['ffmpeg'] or ['?'])[0]}; {os.cpu_count()} cores.",
    ]
    if "/debug/" in args.binary:
        out += ["", "**A debug build of camhub: these numbers are a smoke test, not results.**"]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=None,
                    help="camhub binary (default: /work/target-bench/release/camhub, else target/release/camhub)")
    ap.add_argument("--duration", type=float, default=30, help="measured seconds per contender, mode and round")
    ap.add_argument("--warmup", type=float, default=10,
                    help="seconds from the client's start to the window (opening the FLV stream takes ~5 s)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--contenders", default="lib,ws,raw,cv2,floor",
                    help="a subset of lib,ws,raw,cv2,floor (lib: the Python package in-process; floor: packets "
                         "without decoding, fast mode only)")
    ap.add_argument("--package", help="a directory holding the camhub Python package (e.g. from "
                                      "`pip install --target DIR` of a release wheel); else it must be importable")
    ap.add_argument("--modes", default="fast,slow", help="a subset of fast,slow")
    ap.add_argument("--max-other-busy", type=float, default=0.5,
                    help="measure again if other processes used more cores than this during a window")
    ap.add_argument("--tries", type=int, default=2, help="at most this many tries per window (quietest kept)")
    ap.add_argument("--results", help="append the report to this file (e.g. benches/RESULTS.md)")
    ap.add_argument("--serve-source", metavar="CLIP", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--client", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--until", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_source:
        return serve_source(args)
    if args.client:
        return client_main(args)

    kinds = [k for k in args.contenders.split(",") if k]
    modes = [m for m in args.modes.split(",") if m]
    if not set(kinds) <= set(KINDS) or not set(modes) <= set(MODES) or not kinds or not modes:
        sys.exit(f"--contenders takes {','.join(KINDS)}, --modes {','.join(MODES)}")
    args.binary = args.binary or cc.default_binary()
    if set(kinds) & {"ws", "raw"} and not os.access(args.binary, os.X_OK):
        sys.exit(f"no camhub binary at {args.binary}; build one (e.g. CARGO_TARGET_DIR=/work/target-bench cargo "
                 f"build --release -p camhub) or pass --binary PATH")
    for tool in ("ffmpeg", "ffprobe"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(":")):
            sys.exit(f"{tool} not found (apt-get install ffmpeg)")
    try:
        import cv2  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        sys.exit(f"{e}: run with /usr/bin/python3 and Debian's python3-opencv (apt-get install python3-opencv)")
    if "/debug/" in args.binary:
        log(f"WARNING: {args.binary} is a debug build: its numbers are a smoke test, not results")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    info = cc.versions(args.binary)
    workdir = tempfile.mkdtemp(prefix="camhub-frameapi-")
    rows, order = {}, []
    try:
        clip = ensure_clip()
        source = Source(workdir)
        source.start()
        log(f"source relay on port {source.port}; logs in {workdir}")
        plan = [(k, m) for m in modes for k in kinds if not (k == "floor" and m == "slow")]
        for rnd in range(args.rounds):
            od = plan if rnd % 2 == 0 else plan[::-1]
            order.append(od)
            for kind, mode in od:
                log(f"round {rnd + 1}/{args.rounds}: {kind} {mode}")
                tag = f"{kind}-{mode}-r{rnd + 1}"
                r = retry_busy(args, lambda: session(args, kind, mode, source, workdir, tag))
                rows.setdefault((kind, mode), []).append(r)
                log(f"  {kind} {mode}: {r['new_per_s']:.2f} frames/s ({r['calls_per_s']:.1f} calls/s), "
                    f"{r['cpu_ms']:.2f} CPU ms/frame, age p50 {r['age_p50']:.0f} ms p95 {r['age_p95']:.0f} ms"
                    + (f", camhub age p50 {r['hub_p50']:.0f} ms" if r["hub_p50"] is not None else "")
                    + f", backlog {r['backlog_s']:.2f} s, source {r['source_fps']:.1f} frames/s sent, "
                    f"machine busy {r['machine_busy']:.2f} cores"
                    + (f", client error: {r['error']}" if r["error"] else ""))
    except KeyboardInterrupt as e:
        cc.end_all()
        sys.exit(f"interrupted ({e}); logs in {workdir}")
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        cc.end_all()
        sys.exit(f"error: {e}\nlogs in {workdir}")
    finally:
        cc.end_all()
    table, _ = build_report(args, rows, order)
    setup = setup_text(args, info, clip, rows)
    print(setup + "\n\n" + table)
    if args.results:
        with open(args.results, "a") as fh:
            fh.write(f"\n## Frames for programs: `read(width=640)` over HTTP against `cv2.VideoCapture` (issue 11), "
                     f"`benches/frame_api.py`, commit {info['commit']}"
                     f"{' + uncommitted changes' if info['dirty'] else ''}, {time.strftime('%Y-%m-%d')}\n\n"
                     f"{setup}\n\n{table}\n")
        log(f"appended to {args.results}")
    log(f"logs in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
