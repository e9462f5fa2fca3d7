#!/usr/bin/env python3
"""MJPEG fan-out benchmark: camhub vs the ffmpeg CLI (issue 2, "What the benchmark must show").

One run:
  1. makes (once, cached in benches/.cache/) a 20 s 1080p25 H.264 clip of testsrc2;
  2. reference: `ffmpeg -re -stream_loop -1 -i clip.mp4 -vf scale=640:-2 -q:v 5 -f mpjpeg` for one viewer
     (also the same with `-threads 1`, as camhub decodes with one thread by default);
  3. camhub with one `ffmpeg:` camera looping the clip (`loop_file = true`, paced at 25 fps, no re-encode),
     serving `stream.mjpeg?width=640` to 1, 10 and 100 light viewers (child processes that only parse
     the chunked HTTP body and the multipart framing, count frames, never decode), a fresh camhub per phase;
  4. added latency (camhub's own histogram; a WebSocket client comparing each frame's "ts" with its receive
     time; the X-Frame-Age-Ms of frame.jpeg) and the time to first frame of a new MJPEG viewer;
  5. prints a table and writes benches/RESULTS.md.

Stdlib + the ffmpeg CLI only. Build camhub first:
  CARGO_TARGET_DIR=/tmp/target-release cargo build --release -p camhub
then:  python3 benches/mjpeg_fanout.py [--binary PATH] [--duration 30] [--warmup 6] [--rounds 1]
"""

import argparse
import base64
import datetime
import json
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")
CLIP = os.path.join(CACHE, "testsrc2_1080p25_20s.mp4")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
WIDTH = 640
CAM = "cam"
RESULTS_MARKER = "<!-- Everything below this line is kept when the benchmark rewrites this file. -->"

CLIP_CMD = [
    "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25", "-t", "20",
    "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p", "-an",
    "-movflags", "+faststart",
]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# /proc helpers


def proc_cpu(pid):
    """utime+stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "Threads"):
                out[k] = int(v.split()[0])
    return out


def proc_cpu_split(pid):
    """(utime, stime) of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def raise_fd_limit():
    """Soft RLIMIT_NOFILE up to the hard limit: 500 viewers need 500+ sockets in the server."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def thread_cpu(pid, split=False):
    """{thread name: cpu seconds}, threads with the same name summed (tokio workers, etc.);
    with split, {thread name: (user, system)}."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        if split:
            u, s = out.get(name, (0.0, 0.0))
            out[name] = (u + int(fields[11]) / CLK_TCK, s + int(fields[12]) / CLK_TCK)
        else:
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def system_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    total = sum(vals[:8])
    return total - idle, total


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Probe:
    """CPU of a set of processes (and of the whole machine) between two instants."""

    def __init__(self, pids):
        self.pids = pids
        self.cpu0 = {p: proc_cpu(p) for p in pids}
        self.split0 = {p: proc_cpu_split(p) for p in pids}
        self.threads0 = {p: thread_cpu(p) for p in pids}
        self.tsplit0 = {p: thread_cpu(p, split=True) for p in pids}
        self.sys0 = system_busy()
        self.t0 = time.monotonic()

    def stop(self):
        self.t1 = time.monotonic()
        self.cpu = {p: proc_cpu(p) - self.cpu0[p] for p in self.pids}
        self.split = {}
        for p in self.pids:
            u, s = proc_cpu_split(p)
            self.split[p] = (u - self.split0[p][0], s - self.split0[p][1])
        self.threads = {}
        self.tsplit = {}
        for p in self.pids:
            now = thread_cpu(p)
            self.threads[p] = {k: v - self.threads0[p].get(k, 0.0) for k, v in now.items()}
            now = thread_cpu(p, split=True)
            self.tsplit[p] = {k: (u - self.tsplit0[p].get(k, (0.0, 0.0))[0], s - self.tsplit0[p].get(k, (0.0, 0.0))[1])
                              for k, (u, s) in now.items()}
        b1, t1 = system_busy()
        self.machine_busy_cores = (b1 - self.sys0[0]) / max(1, t1 - self.sys0[1]) * os.cpu_count()
        self.wall = self.t1 - self.t0
        # What the rest of the machine (other sessions' builds and tests) used meanwhile.
        self.other_busy_cores = max(0.0, self.machine_busy_cores - sum(self.cpu.values()) / self.wall)
        return self


# ----------------------------------------------------------------------------------------------
# A light MJPEG client: HTTP/1.1 (chunked, as hyper sends it) + multipart framing, no JPEG decode.


class MjpegConn:
    """Incremental parser of one `stream.mjpeg` response. feed(bytes) -> number of JPEG parts completed."""

    def __init__(self):
        self.state = "http"      # http headers, then chunk-size / chunk-data / chunk-crlf
        self.buf = bytearray()   # pending header / chunk-size line bytes
        self.chunked = False
        self.chunk_left = 0
        # multipart layer
        self.mp_state = "hdr"
        self.mp_buf = bytearray()
        self.part_left = 0
        self.part_first = True
        self.frames = 0
        self.bad = 0
        self.status = None
        self.error = None

    def feed(self, data):
        done = 0
        mv = memoryview(data)
        i, n = 0, len(mv)
        while i < n:
            st = self.state
            if st == "data":
                take = min(self.chunk_left, n - i)
                done += self._mp(mv[i:i + take])
                i += take
                self.chunk_left -= take
                if self.chunk_left == 0:
                    self.state = "crlf"
                    self.chunk_left = 2
            elif st == "crlf":
                take = min(self.chunk_left, n - i)
                i += take
                self.chunk_left -= take
                if self.chunk_left == 0:
                    self.state = "size"
            elif st == "size":
                seg = bytes(mv[i:min(n, i + 32)])
                j = seg.find(b"\n")
                if j < 0:
                    self.buf += seg
                    i += len(seg)
                    if len(self.buf) > 1024:
                        raise ValueError("chunk-size line too long")
                    continue
                self.buf += seg[:j + 1]
                i += j + 1
                line = bytes(self.buf).strip()
                self.buf.clear()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.error = "end of stream"
                    return done
                self.chunk_left = size
                self.state = "data"
            elif st == "raw":  # not chunked (HTTP/1.0 style): the body runs to the close
                done += self._mp(mv[i:])
                i = n
            else:  # "http": the response head
                prev = len(self.buf)
                self.buf += mv[i:]
                k = self.buf.find(b"\r\n\r\n")
                if k < 0:
                    i = n
                    if len(self.buf) > 16384:
                        raise ValueError("response head too long")
                    continue
                head = bytes(self.buf[:k]).decode("latin-1")
                i += k + 4 - prev
                self.buf.clear()
                lines = head.split("\r\n")
                self.status = int(lines[0].split()[1])
                hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
                        for l in lines[1:] if ":" in l}
                if self.status != 200:
                    raise ValueError(f"HTTP {self.status}")
                self.chunked = "chunked" in hdrs.get("transfer-encoding", "").lower()
                self.state = "size" if self.chunked else "raw"
        return done

    def _mp(self, mv):
        """Multipart layer: `--frame\\r\\nContent-Type..\\r\\nContent-Length: N\\r\\n\\r\\n` JPEG `\\r\\n`."""
        done = 0
        i, n = 0, len(mv)
        while i < n:
            if self.mp_state == "body":
                take = min(self.part_left, n - i)
                if self.part_first:  # the first two bytes of the part must be a JPEG SOI
                    self.soi += bytes(mv[i:i + min(take, 2 - len(self.soi))])
                    if len(self.soi) == 2:
                        if self.soi != b"\xff\xd8":
                            self.bad += 1
                        self.part_first = False
                i += take
                self.part_left -= take
                if self.part_left == 0:
                    self.mp_state = "hdr"
                    done += 1
            else:
                prev = len(self.mp_buf)
                self.mp_buf += mv[i:]
                k = self.mp_buf.find(b"\r\n\r\n")
                if k < 0:
                    i = n
                    if len(self.mp_buf) > 4096:
                        raise ValueError("part header too long")
                    continue
                head = bytes(self.mp_buf[:k])
                i += k + 4 - prev
                self.mp_buf.clear()
                m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                if not m:
                    raise ValueError(f"part without Content-Length: {head[:200]!r}")
                # the JPEG, then the CRLF that ends the part
                self.part_left = int(m.group(1)) + 2
                self.part_first = True
                self.soi = b""
                self.mp_state = "body"
        return done


def request_bytes(port, path):
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: camhub-bench\r\n"
            f"Accept: */*\r\n\r\n").encode()


def client_main(args):
    """Child process: N MJPEG viewers on one selector loop. Prints a JSON summary at the end."""
    port, path, n = args.port, args.path, args.n
    raise_fd_limit()
    t0, t1, t_stop = args.t0, args.t1, args.t_stop
    sel = selectors.DefaultSelector()
    conns = []
    for k in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(request_bytes(port, path))
        s.setblocking(False)
        c = {"k": k, "sock": s, "p": MjpegConn(), "t_open": time.monotonic(), "first": None,
             "win": 0, "total": 0, "bytes": 0, "last": None, "max_gap": 0.0, "err": None}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    buf = bytearray(1 << 18)
    mv = memoryview(buf)
    open_n = n
    while open_n:
        now = time.monotonic()
        if now >= t_stop:
            break
        for key, _ in sel.select(timeout=min(0.5, t_stop - now)):
            c = key.data
            try:
                got = c["sock"].recv_into(buf)
            except BlockingIOError:
                continue
            except OSError as e:
                got, c["err"] = 0, str(e)
            if got == 0:
                c["err"] = c["err"] or c["p"].error or "closed by server"
                sel.unregister(c["sock"])
                c["sock"].close()
                open_n -= 1
                continue
            c["bytes"] += got
            try:
                f = c["p"].feed(mv[:got])
            except Exception as e:  # noqa: BLE001 - reported, not raised
                c["err"] = f"parse error: {e}"
                sel.unregister(c["sock"])
                c["sock"].close()
                open_n -= 1
                continue
            if f:
                now = time.monotonic()
                if c["first"] is None:
                    c["first"] = now - c["t_open"]
                c["total"] += f
                if t0 <= now < t1:
                    c["win"] += f
                    if c["last"] is not None and c["last"] >= t0:
                        c["max_gap"] = max(c["max_gap"], now - c["last"])
                c["last"] = now
    for c in conns:
        try:
            c["sock"].close()
        except OSError:
            pass
    out = [{"win": c["win"], "total": c["total"], "bytes": c["bytes"], "first": c["first"],
            "max_gap": c["max_gap"], "bad": c["p"].bad, "err": c["err"]} for c in conns]
    print(json.dumps(out))


def spawn_clients(port, path, n, t0, t1, t_stop, per_proc=50):
    procs = []
    left = n
    while left > 0:
        k = min(per_proc, left)
        left -= k
        cmd = [sys.executable, os.path.abspath(__file__), "--client", "--port", str(port), "--path", path,
               "--n", str(k), "--t0", repr(t0), "--t1", repr(t1), "--t-stop", repr(t_stop)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    return procs


def collect_clients(procs):
    viewers = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        viewers.extend(json.loads(out))
    return viewers


def time_to_first_frame(port, path, timeout=5.0):
    """Seconds from starting the TCP connect to the end of the first complete JPEG part."""
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(request_bytes(port, path))
        p = MjpegConn()
        buf = bytearray(1 << 17)
        while True:
            got = s.recv_into(buf)
            if not got:
                raise RuntimeError("closed before the first frame")
            if p.feed(memoryview(buf)[:got]):
                return time.monotonic() - t
    finally:
        s.close()


# ----------------------------------------------------------------------------------------------
# WebSocket client (RFC 6455, the minimum): subscribe, then time each frame header against its "ts".


def ws_latency(port, seconds, width=WIDTH, skip=5):
    """[(client receive unix ms) - ts] for each frame header, after the first `skip` frames."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    f = s.makefile("rb", buffering=1 << 16)
    status = f.readline()
    if b" 101 " not in status:
        raise RuntimeError(f"WebSocket upgrade failed: {status!r}")
    while f.readline() not in (b"\r\n", b""):
        pass

    def send_text(text):
        payload = text.encode()
        mask = os.urandom(4)
        hdr = bytes([0x81])
        ln = len(payload)
        if ln < 126:
            hdr += bytes([0x80 | ln])
        elif ln < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack("!H", ln)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack("!Q", ln)
        s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read_exact(n):
        d = f.read(n)
        if len(d) != n:
            raise RuntimeError("WebSocket closed")
        return d

    send_text(json.dumps({"subscribe": [{"camera": CAM, "width": width}]}))
    lat, seen = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        b0, b1 = read_exact(2)
        t_recv = time.time() * 1000.0
        op, ln = b0 & 0x0F, b1 & 0x7F
        if ln == 126:
            ln = struct.unpack("!H", read_exact(2))[0]
        elif ln == 127:
            ln = struct.unpack("!Q", read_exact(8))[0]
        if b1 & 0x80:
            read_exact(4)  # servers never mask, but be lenient
        payload = read_exact(ln)
        if op == 1:
            msg = json.loads(payload)
            if msg.get("type") == "frame":
                seen += 1
                if seen > skip:
                    lat.append(t_recv - msg["ts"])
        elif op == 8:
            break
        elif op == 9:  # ping -> pong
            mask = os.urandom(4)
            s.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask +
                      bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    try:
        s.sendall(bytes([0x88, 0x80]) + os.urandom(4))
    except OSError:
        pass
    s.close()
    return lat, seen


def snapshot_ages(port, seconds, interval=0.037, width=WIDTH):
    """X-Frame-Age-Ms of frame.jpeg?width=640, sampled every `interval` s (not aligned with 25 fps)."""
    ages = []
    end = time.monotonic() + seconds
    url = f"http://127.0.0.1:{port}/api/cameras/{CAM}/frame.jpeg?width={width}"
    while time.monotonic() < end:
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
            ages.append(float(r.headers["X-Frame-Age-Ms"]))
        time.sleep(interval)
    return ages


# ----------------------------------------------------------------------------------------------
# camhub helpers


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, val = line.rpartition(" ")
        out[name] = float(val)
    return out


def metric(m, name):
    return m.get(f'{name}{{camera="{CAM}"}}', 0.0)


def latency_hist(m0, m1):
    """Delta of camhub_added_latency_seconds buckets: [(le seconds, cumulative count)]."""
    pat = re.compile(r'camhub_added_latency_seconds_bucket\{camera="' + CAM + r'",le="([^"]+)"\}')
    out = []
    for k, v in m1.items():
        mm = pat.fullmatch(k)
        if mm:
            le = float("inf") if mm.group(1) == "+Inf" else float(mm.group(1))
            out.append((le, v - m0.get(k, 0.0)))
    return sorted(out)


def hist_quantile(buckets, q):
    """Prometheus-style histogram_quantile (linear inside the bucket); returns seconds."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(workdir, port, extra="", url=None, server_extra=""):
    """camhub.toml with one camera: `url`, or by default an `ffmpeg:` camera looping CLIP; `extra`
    lines go into its [[camera]], `server_extra` lines into [server]."""
    source = f'url = "{url}"' if url else f'name = "bench 1080p25 H.264 clip"\nurl = "ffmpeg:{CLIP}"\nloop_file = true'
    path = os.path.join(workdir, "camhub.toml")
    with open(path, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{port}"
data_dir = "{workdir}/data"
# Every bench viewer is one connection from 127.0.0.1 to one camera: far past the defaults
# (64 connections per address, 100 viewers per camera).
max_connections = 5000
max_connections_per_ip = 5000
max_viewers_per_camera = 5000
{server_extra}

[[camera]]
id = "{CAM}"
{source}
{extra}""")
    return path


def start_camhub(binary, workdir, extra_config="", url=None, server_extra=""):
    port = free_port()
    cfg = write_config(workdir, port, extra_config, url, server_extra)
    logf = open(os.path.join(workdir, f"camhub-{port}.log"), "w")
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
    return proc, port, cfg, logf.name


def port_in_log(logpath, pattern, timeout=20):
    """The port a camhub log line names (`pattern` has it as its first group), waiting for the line."""
    deadline = time.monotonic() + timeout
    while True:
        with open(logpath, errors="replace") as f:
            m = re.search(pattern, f.read())
        if m:
            return int(m.group(1))
        if time.monotonic() > deadline:
            raise RuntimeError(f"no line matching {pattern!r} in {logpath}")
        time.sleep(0.1)


def write_section(path, text, begin, end):
    """Writes `text` between the markers `begin` and `end` of the results file `path`: replaces the
    section if it is there, appends it otherwise; the rest of the file is kept."""
    with open(path) as f:
        old = f.read()
    block = f"{begin}\n\n{text.rstrip()}\n\n{end}\n"
    if begin in old and end in old:
        a = old.index(begin)
        b = old.index(end) + len(end)
        new = old[:a] + block.rstrip("\n") + old[b:]
    else:
        new = old.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(new)


def stop(proc, timeout=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sleep_until(t):
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# ----------------------------------------------------------------------------------------------
# phases


def ensure_clip():
    os.makedirs(CACHE, exist_ok=True)
    if not os.path.exists(CLIP):
        log("encoding the 1080p25 clip once (cached in benches/.cache/) ...")
        tmp = CLIP + ".tmp.mp4"
        subprocess.run(CLIP_CMD + [tmp], check=True)
        os.replace(tmp, CLIP)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,profile,width,height,r_frame_rate,bit_rate,nb_frames,has_b_frames", "-of", "json", CLIP],
        check=True, capture_output=True, text=True)
    st = json.loads(probe.stdout)["streams"][0]
    num, den = st["r_frame_rate"].split("/")
    st["fps"] = int(num) / int(den)
    return st


def ffmpeg_cmd(total_seconds, threads1):
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    if threads1:
        cmd += ["-threads", "1"]
    cmd += ["-re", "-stream_loop", "-1", "-i", CLIP, "-t", str(total_seconds),
            "-vf", f"scale={WIDTH}:-2", "-q:v", "5", "-f", "mpjpeg", "-progress", "pipe:1", "/dev/null"]
    return cmd


def run_ffmpeg(args, threads1):
    total = args.warmup + args.duration + 3
    cmd = ffmpeg_cmd(total, threads1)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    progress = {}
    lock = threading.Lock()

    def reader():
        for line in proc.stdout:
            k, _, v = line.strip().partition("=")
            with lock:
                progress[k] = v

    th = threading.Thread(target=reader, daemon=True)
    th.start()

    def snap():
        with lock:
            return int(progress.get("frame", "0") or 0), int(progress.get("total_size", "0") or 0)

    t_start = time.monotonic()
    sleep_until(t_start + args.warmup)
    f0, b0 = snap()
    probe = Probe([proc.pid])
    sleep_until(t_start + args.warmup + args.duration)
    probe.stop()
    f1, b1 = snap()
    if proc.poll() is not None:
        raise RuntimeError(f"ffmpeg exited early ({proc.returncode}): {' '.join(cmd)}")
    st = proc_status(proc.pid)
    threads = st["Threads"]
    rc = proc.wait(timeout=30)
    th.join(timeout=5)
    frames = f1 - f0
    return {
        "name": "ffmpeg CLI" + (" -threads 1" if threads1 else ""),
        "cmd": " ".join(cmd),
        "cpu": probe.cpu[proc.pid],
        "wall": probe.wall,
        "cpu_per_s": probe.cpu[proc.pid] / probe.wall,
        "hwm_mb": st["VmHWM"] / 1024,
        "rss_mb": st["VmRSS"] / 1024,
        "fps_in": frames / probe.wall,
        "jpeg_bytes": (b1 - b0) / frames if frames else None,
        "viewer_fps": [frames / probe.wall],
        "client_cpu_per_s": 0.0,
        "threads": probe.threads[proc.pid],
        "n_threads": threads,
        "machine_busy": probe.machine_busy_cores,
        "other_busy": probe.other_busy_cores,
        "rc": rc,
    }


def run_camhub(args, n, workdir, extra):
    proc, port, cfg, logpath = start_camhub(args.binary, workdir)
    path = f"/api/cameras/{CAM}/stream.mjpeg?width={WIDTH}"
    res = {"name": f"camhub {n} viewer" + ("s" if n > 1 else ""), "n": n, "port": port, "log": logpath}
    try:
        t_spawn = time.monotonic()
        t0 = t_spawn + args.warmup
        t1 = t0 + args.duration
        t_stop = t1 + (args.extra_seconds if extra else 0) + 1
        clients = spawn_clients(port, path, n, t0, t1, t_stop)
        sleep_until(t0)
        m0 = metrics(port)
        probe = Probe([proc.pid] + [c.pid for c in clients])
        sleep_until(t1)
        probe.stop()
        m1 = metrics(port)
        st = proc_status(proc.pid)
        if extra:
            res.update(latency_extras(args, port, path, t_stop - 1))
        viewers = collect_clients(clients)
        wall = probe.wall
        frames_in = metric(m1, "camhub_frames_in_total") - metric(m0, "camhub_frames_in_total")
        frames_out = metric(m1, "camhub_frames_out_total") - metric(m0, "camhub_frames_out_total")
        encoded = metric(m1, "camhub_frames_encoded_total") - metric(m0, "camhub_frames_encoded_total")
        bytes_out = metric(m1, "camhub_bytes_out_total") - metric(m0, "camhub_bytes_out_total")
        hist = latency_hist(m0, m1)
        res.update({
            "cpu": probe.cpu[proc.pid],
            "wall": wall,
            "cpu_per_s": probe.cpu[proc.pid] / wall,
            "user_per_s": probe.split[proc.pid][0] / wall,
            "sys_per_s": probe.split[proc.pid][1] / wall,
            "hwm_mb": st["VmHWM"] / 1024,
            "rss_mb": st["VmRSS"] / 1024,
            "n_threads": st["Threads"],
            "fps_in": frames_in / wall,
            "encoded_per_in": encoded / frames_in if frames_in else None,
            "jpeg_bytes": bytes_out / frames_out if frames_out else None,
            "decode_s_per_s": (metric(m1, "camhub_decode_seconds_total") - metric(m0, "camhub_decode_seconds_total")) / wall,
            "encode_s_per_s": (metric(m1, "camhub_encode_seconds_total") - metric(m0, "camhub_encode_seconds_total")) / wall,
            "dropped": metric(m1, "camhub_frames_dropped_total") - metric(m0, "camhub_frames_dropped_total"),
            "reconnects": metric(m1, "camhub_reconnects_total"),
            "lat_hist": hist,
            "lat_p50_ms": (hist_quantile(hist, 0.5) or 0) * 1000,
            "lat_p99_ms": (hist_quantile(hist, 0.99) or 0) * 1000,
            "lat_count": hist[-1][1] if hist else 0,
            "viewer_fps": [v["win"] / wall for v in viewers],
            "viewer_max_gap_ms": max((v["max_gap"] for v in viewers), default=0) * 1000,
            "viewer_first_ms": [v["first"] * 1000 for v in viewers if v["first"] is not None],
            "viewer_errors": [v["err"] for v in viewers if v["err"] and v["err"] != "closed by server"],
            "viewer_bad_jpeg": sum(v["bad"] for v in viewers),
            "client_cpu_per_s": sum(probe.cpu[c.pid] for c in clients) / wall,
            "client_procs": len(clients),
            "threads": probe.threads[proc.pid],
            "threads_split": probe.tsplit[proc.pid],
            "machine_busy": probe.machine_busy_cores,
            "other_busy": probe.other_busy_cores,
        })
    finally:
        stop(proc)
        res["exit_code"] = proc.returncode
    return res


def latency_extras(args, port, path, t_end):
    """While the phase's viewers still stream: WebSocket ts latency + frame.jpeg ages (concurrently),
    then time to first frame of new MJPEG viewers."""
    out = {}
    ws_res, age_res = {}, {}

    def ws():
        try:
            ws_res["lat"], ws_res["seen"] = ws_latency(port, args.latency_seconds)
        except Exception as e:  # noqa: BLE001
            ws_res["error"] = str(e)

    def ages():
        try:
            age_res["ages"] = snapshot_ages(port, args.latency_seconds)
        except Exception as e:  # noqa: BLE001
            age_res["error"] = str(e)

    ths = [threading.Thread(target=ws), threading.Thread(target=ages)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    out["ws_lat_ms"] = ws_res.get("lat", [])
    out["ws_error"] = ws_res.get("error")
    out["ages_ms"] = age_res.get("ages", [])
    out["ages_error"] = age_res.get("error")
    ttff = []
    for i in range(args.ttff_tries):
        # spread the attempts over the frame interval
        time.sleep(0.2 + (i * 0.0137) % 0.04)
        try:
            ttff.append(time_to_first_frame(port, path) * 1000)
        except Exception as e:  # noqa: BLE001
            out.setdefault("ttff_errors", []).append(str(e))
    out["ttff_ms"] = ttff
    if time.monotonic() > t_end:
        log("warning: latency measurements outlasted the viewers; raise --extra-seconds")
    return out


# ----------------------------------------------------------------------------------------------
# report


def fmt(v, spec=".3f", none="–"):
    return none if v is None else format(v, spec)


def versions(binary, commit=None):
    """Machine and tool versions. `commit`: the binary was built from a clean export of this commit
    (`git archive`), not from this work tree, so neither the tree's HEAD nor its edits apply."""
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.splitlines()[0].strip()
        except Exception:  # noqa: BLE001
            return "?"

    git = first_line(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    # Is the binary older than the sources it should have been built from?
    stale = []
    if commit:
        git, dirty = commit, ""
    try:
        bin_mtime = os.stat(binary).st_mtime
        files = subprocess.run(["git", "-C", REPO, "ls-files", "crates", "Cargo.toml", "Cargo.lock"],
                               capture_output=True, text=True).stdout.split()
        for rel in files:
            if rel.endswith((".rs", ".toml", ".lock")) and "/tests/" not in rel and "/benches/" not in rel:
                try:
                    if not commit and os.stat(os.path.join(REPO, rel)).st_mtime > bin_mtime:
                        stale.append(rel)
                except OSError:
                    pass
        built = datetime.datetime.fromtimestamp(bin_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except OSError:
        built = "?"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "mem_gb": mem_gb,
        "kernel": platform.release(),
        "camhub": first_line([binary, "--version"]) + f" (git {git}{', uncommitted changes' if dirty else ''}"
                  f"{', built from a clean `git archive` of it' if commit else ''})",
        "built": built,
        "stale": stale,
        "ffmpeg": first_line(["ffmpeg", "-version"]),
        "python": platform.python_version(),
    }


def median_row(rows):
    """Median of the numeric fields over rounds (per-viewer fps lists are pooled)."""
    if len(rows) == 1:
        return rows[0]
    out = dict(rows[-1])
    for k in ("cpu_per_s", "hwm_mb", "client_cpu_per_s", "fps_in", "machine_busy", "other_busy", "user_per_s",
              "sys_per_s"):
        if all(k in r for r in rows):
            out[k] = statistics.median(r[k] for r in rows)
    out["hwm_mb"] = max(r["hwm_mb"] for r in rows)
    out["viewer_fps"] = [f for r in rows for f in r["viewer_fps"]]
    out["rounds_cpu"] = [r["cpu_per_s"] for r in rows]
    out["rounds_busy"] = [r["machine_busy"] for r in rows]
    out["rounds_tries"] = [r.get("tries_total", 1) for r in rows]
    return out


def marginal_cost(cams):
    """Least-squares slope of server CPU-s/s against viewers, over the camhub phases, and per
    delivered frame: µs of server CPU per viewer per frame. Also each step's own increment."""
    pts = [(c["n"], c["cpu_per_s"], statistics.median(c["viewer_fps"])) for c in cams]
    if len(pts) < 2:
        return None
    mx = statistics.mean(n for n, _, _ in pts)
    my = statistics.mean(y for _, y, _ in pts)
    sxx = sum((n - mx) ** 2 for n, _, _ in pts)
    slope = sum((n - mx) * (y - my) for n, y, _ in pts) / sxx
    fps = statistics.median(f for _, _, f in pts)
    steps = []
    for (n0, y0, _), (n1, y1, f1) in zip(pts, pts[1:]):
        steps.append((n0, n1, (y1 - y0) / (n1 - n0) / f1 * 1e6))
    out = {"slope": slope, "intercept": my - slope * mx, "fps": fps, "us": slope / fps * 1e6, "steps": steps}
    for key in ("user_per_s", "sys_per_s"):
        if all(key in c for c in cams):
            ys = [c[key] for c in cams]
            myk = statistics.mean(ys)
            out[key] = sum((n - mx) * (y - myk) for (n, _, _), y in zip(pts, ys)) / sxx / fps * 1e6
    return out


def retry_busy(args, measure):
    """Runs `measure` again (up to --tries times in all) while other processes on the machine used more
    than --max-other-busy cores during its window; keeps the quietest try."""
    best = None
    for k in range(args.tries):
        r = measure()
        r["tries"] = k + 1
        if best is None or r["other_busy"] < best["other_busy"]:
            best = dict(r)
            best["tries"] = k + 1
        if r["other_busy"] <= args.max_other_busy:
            break
        log(f"  others used {r['other_busy']:.2f} cores during {r['name']} (> {args.max_other_busy:g}): "
            f"measuring again" + ("" if k + 1 < args.tries else " - no, out of tries; keeping the quietest"))
    best["tries_total"] = k + 1
    return best


def build_report(args, info, clip, ff, ff1, cams, cmds):
    ref = ff["cpu_per_s"]
    c1 = next((c for c in cams if c["n"] == 1), None)
    src_fps = clip["fps"]
    lines = []
    table = ["| run | server CPU-s per s of video | × ffmpeg | × camhub@1 | peak RSS MB | "
             "per-viewer fps min / median | client CPU-s/s | input fps | JPEG KB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in [ff, ff1] + cams:
        if r is None:
            continue
        vf = r["viewer_fps"]
        rounds = r.get("rounds_cpu")
        cpu = fmt(r["cpu_per_s"]) + (f" ({', '.join(fmt(x) for x in rounds)})" if rounds else "")
        table.append(
            f"| {r['name']} | {cpu} | {r['cpu_per_s'] / ref:.2f} | "
            f"{fmt(r['cpu_per_s'] / c1['cpu_per_s'], '.2f') if c1 and 'n' in r else '–'} | "
            f"{r['hwm_mb']:.1f} | {min(vf):.2f} / {statistics.median(vf):.2f} | "
            f"{fmt(r['client_cpu_per_s'], '.3f') if 'n' in r else '– (writes to /dev/null)'} | "
            f"{r['fps_in']:.2f} | {fmt(r['jpeg_bytes'] / 1024 if r.get('jpeg_bytes') else None, '.1f')} |")

    verdicts = []
    if c1:
        ratio = c1["cpu_per_s"] / ref
        verdicts.append((ratio <= 1.0, f"camhub at 1 viewer ≤ 1.0× ffmpeg: **{ratio:.2f}×** "
                         f"({c1['cpu_per_s']:.3f} vs {ref:.3f} CPU-s/s)"))
    c100 = next((c for c in cams if c["n"] == 100), None) or \
        next((c for c in cams if c["n"] == max(x["n"] for x in cams)), None)
    if c1 and c100 and c100 is not c1:
        ratio = c100["cpu_per_s"] / c1["cpu_per_s"]
        verdicts.append((ratio <= 1.15, f"camhub at {c100['n']} viewers ≤ 1.15× camhub at 1: **{ratio:.2f}×** "
                         f"({c100['cpu_per_s']:.3f} vs {c1['cpu_per_s']:.3f} CPU-s/s)"))
    worst = min(min(c["viewer_fps"]) for c in cams)
    verdicts.append((worst >= 0.98 * src_fps, f"every viewer at the source's {src_fps:g} fps (≥ 98 %): "
                     f"slowest viewer **{worst:.2f} fps**"))
    mc = marginal_cost(cams) if c1 else None
    if mc:
        verdicts.append((mc["us"] <= 8.0, f"per-viewer marginal cost ≤ 8 µs of server CPU per delivered frame "
                         f"({', '.join(str(c['n']) for c in cams)} viewers): **{mc['us']:.1f} µs**"))
    lat_rows = [c for c in cams if c.get("ws_lat_ms")]
    for c in cams:
        if c.get("lat_count"):
            verdicts.append((c["lat_p99_ms"] < 1000 / src_fps,
                             f"added latency p99 < one frame interval ({1000 / src_fps:.0f} ms), camhub histogram, "
                             f"{c['n']} viewer(s): **{c['lat_p99_ms']:.1f} ms**"))
    for c in lat_rows:
        p99 = pct(c["ws_lat_ms"], 0.99)
        verdicts.append((p99 < 1000 / src_fps, f"added latency p99 < {1000 / src_fps:.0f} ms, WebSocket client, "
                         f"{c['n']} viewer(s) streaming: **{p99:.1f} ms**"))
    for c in cams:
        if c.get("ttff_ms"):
            p99 = pct(c["ttff_ms"], 0.99)
            verdicts.append((p99 < 100, f"time to first frame < 100 ms ({c['n']} viewer(s) already streaming): "
                             f"p99 **{p99:.1f} ms**"))

    lines.append("# MJPEG fan-out benchmark: camhub vs the ffmpeg CLI\n")
    lines.append("Written by `python3 benches/mjpeg_fanout.py` (see [README.md](README.md)); "
                 "issues #2 and #5, \"What the benchmark must show\".\n")
    lines.append("## Machine and versions\n")
    lines.append(f"- date: {info['date']}")
    lines.append(f"- CPU: {info['cpu']}, nproc = {info['nproc']}, RAM {info['mem_gb']:.0f} GB, "
                 f"Linux {info['kernel']}")
    lines.append(f"- camhub: {info['camhub']}, release build (`{args.binary}`, built {info['built']})")
    if info["stale"]:
        lines.append(f"- **WARNING: the binary is older than {len(info['stale'])} source file(s) "
                     f"({', '.join(info['stale'][:5])}): it may not be the commit named above. Rebuild.**")
    lines.append(f"- {info['ffmpeg']}; Python {info['python']}")
    lines.append(f"- the machine is **shared** (other sessions build and test on it): busy cores of the whole "
                 f"machine during each measurement window are in the detail table below.\n")
    lines.append("## Setup\n")
    lines.append(f"- Source: `{os.path.relpath(CLIP, REPO)}`, {clip['codec_name']} {clip.get('profile', '')} "
                 f"{clip['width']}×{clip['height']} at {src_fps:g} fps, "
                 f"{int(clip.get('bit_rate', 0)) / 1e6:.2f} Mbit/s, {clip.get('nb_frames')} frames, "
                 f"has_b_frames = {clip.get('has_b_frames')}, made once with\n"
                 f"  `{' '.join(CLIP_CMD)} clip.mp4`\n  and looped without re-encoding by both contenders "
                 f"(paced at its native rate: `-re` / camhub's `loop_file`).")
    lines.append(f"- Reference (1 viewer): `{cmds['ffmpeg']}` — decode, scale to 640 px wide, JPEG, "
                 f"written to /dev/null (so it pays no socket writes at all). Also with `-threads 1` "
                 f"(camhub's decoder uses one thread by default; the CLI's default is frame threading).")
    lines.append(f"- camhub: a fresh process per phase, config:\n\n```toml\n{cmds['config']}```\n")
    lines.append(f"  viewers: `GET /api/cameras/{CAM}/stream.mjpeg?width={WIDTH}` (quality 80, camhub's default), "
                 f"HTTP/1.1 (chunked), light clients in child processes (≤ 50 connections each, one selector "
                 f"loop, parse the chunked body and the multipart framing, check each part starts with FF D8, "
                 f"count frames, never decode).")
    lines.append(f"- Each phase: {args.warmup:g} s warm-up, then {args.duration:g} s measured; "
                 f"{args.rounds} round(s) (with several rounds: median CPU, per-round values in brackets).")
    lines.append("- CPU = utime+stime from `/proc/PID/stat` over the window (all threads), divided by the window "
                 "length (= seconds of video, both run at the native 25 fps; the 'input fps' column checks it). "
                 "Peak RSS = `VmHWM` at the end of the window. Client CPU = the client processes, same way.")
    lines.append(f"- A phase during which other processes (other sessions' builds and tests: busy cores of the "
                 f"machine minus the benchmark's own processes) used more than {args.max_other_busy:g} cores is "
                 f"measured again, at most {args.tries} tries, keeping the quietest ('tries' column, per round).\n")
    lines.append("## Results\n")
    lines.extend(table)
    lines.append("")
    lines.append("### Targets\n")
    for ok, text in verdicts:
        lines.append(f"- {'MET' if ok else '**NOT MET**'} — {text}")
    lines.append("")
    if mc:
        lines.append("### Per-viewer marginal cost\n")
        lines.append(f"Least-squares line through the camhub phases' server CPU (median of rounds): "
                     f"{mc['intercept']:.3f} + {mc['slope'] * 1000:.3f}e-3 × viewers CPU-s/s; each viewer receives "
                     f"{mc['fps']:.2f} frames/s, so one viewer costs **{mc['us']:.1f} µs of server CPU per delivered "
                     f"frame**" + (f" ({mc['user_per_s']:.1f} µs user, {mc['sys_per_s']:.1f} µs system)"
                                   if "user_per_s" in mc else "") + ". Step by step:\n")
        lines.append("| from → to viewers | µs per viewer per delivered frame |")
        lines.append("|---|---:|")
        for n0, n1, us in mc["steps"]:
            lines.append(f"| {n0} → {n1} | {us:.1f} |")
        lines.append("")
        lines.append("| run | server user CPU-s/s | server system CPU-s/s | `camhub-io` user / system | "
                     "`cam-cam/decode` user / system | `cam-cam/jpeg` user / system |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for c in cams:
            ts = c.get("threads_split", {})

            def us(name):
                u, s_ = ts.get(name, (0.0, 0.0))
                return f"{u / c['wall']:.3f} / {s_ / c['wall']:.3f}"
            lines.append(f"| {c['name']} | {fmt(c.get('user_per_s'))} | {fmt(c.get('sys_per_s'))} | "
                         f"{us('camhub-io')} | {us('cam-cam/decode')} | {us('cam-cam/jpeg')} |")
        lines.append("\nUser and system time of the whole server are medians of the rounds; per thread, the last "
                     "round.\n")
    lines.append("### Latency and time to first frame\n")
    lines.append("| measure | viewers streaming | samples | median ms | p99 ms | max ms |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for c in cams:
        if c.get("lat_count"):
            lines.append(f"| added latency, camhub's `camhub_added_latency_seconds` histogram (MJPEG), "
                         f"bucket-interpolated | {c['n']} | {int(c['lat_count'])} | {c['lat_p50_ms']:.1f} | "
                         f"{c['lat_p99_ms']:.1f} | – |")
    for c in cams:
        for key, label in (("ws_lat_ms", "added latency + delivery: WebSocket frame `ts` → client receive time"),
                           ("ages_ms", "`X-Frame-Age-Ms` of `frame.jpeg?width=640` sampled every 37 ms"),
                           ("ttff_ms", "time to first frame: connect → first complete JPEG part, new MJPEG viewer"),
                           ("viewer_first_ms", "first frame of the phase's own viewers (camera idle → streaming; "
                                               "includes opening the input)")):
            v = c.get(key)
            if v:
                lines.append(f"| {label} | {c['n']}{' (+ itself)' if key != 'viewer_first_ms' else ''} | {len(v)} | "
                             f"{pct(v, 0.5):.1f} | {pct(v, 0.99):.1f} | {max(v):.1f} |")
    lines.append("")
    lines.append("How to read them: camhub records, for every JPEG part it hands to a viewer's socket, the time "
                 "since the source packet arrived from the camera (demuxer → decode → scale → JPEG → the viewer's "
                 "body stream): that is the added latency by definition, but only in coarse buckets (…, 10, 20, "
                 "40, 80 ms). The WebSocket measurement is end to end and independent of those buckets: each frame "
                 "header carries `ts`, the wall-clock ms at which camhub received the source frame, and the client "
                 "(same machine, same clock) subtracts it from the time the header arrived, the JPEG following "
                 "immediately; it includes the delivery over loopback and the client's own scheduling, so it "
                 "bounds the added latency from above (±1 ms for `ts`'s resolution). `X-Frame-Age-Ms` is the age "
                 "of the newest frame when a snapshot is answered: the pipeline latency *plus* the wait for the "
                 "next frame (uniform over 0–40 ms at 25 fps), so it is expected to approach 40 ms + pipeline "
                 "latency and is not itself the added latency.\n")
    lines.append("## Detail per phase\n")
    lines.append("| run | window s | machine busy cores | of which others' | tries | decode s/s ¹ | scale+encode s/s ¹ | JPEGs encoded per "
                 "input frame | frames dropped | viewer max gap ms | viewer errors | bad JPEG starts | threads | "
                 "exit |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in [ff, ff1] + cams:
        if r is None:
            continue
        lines.append(
            f"| {r['name']} | {r['wall']:.1f} | {r['machine_busy']:.2f} | {fmt(r.get('other_busy'), '.2f')} | "
            f"{'/'.join(str(t) for t in r.get('rounds_tries', [r.get('tries_total', 1)]))} | "
            f"{fmt(r.get('decode_s_per_s'))} | "
            f"{fmt(r.get('encode_s_per_s'))} | {fmt(r.get('encoded_per_in'), '.2f')} | "
            f"{fmt(r.get('dropped'), '.0f')} | {fmt(r.get('viewer_max_gap_ms'), '.0f')} | "
            f"{len(r.get('viewer_errors', []))} | {r.get('viewer_bad_jpeg', '–')} | {r['n_threads']} | "
            f"{r.get('exit_code', r.get('rc'))} |")
    lines.append("")
    lines.append("¹ from `camhub_decode_seconds_total` / `camhub_encode_seconds_total`: the decode and JPEG "
                 "threads' own CPU time spent in the calls (`CLOCK_THREAD_CPUTIME_ID`), not wall time, so a busy "
                 "machine does not inflate them.\n")
    lines.append("CPU-seconds per second by thread (threads of the same name summed; only threads above 0.005):\n")
    for r in [ff, ff1] + cams:
        if r is None:
            continue
        th = sorted(((v / r["wall"], k) for k, v in r["threads"].items() if v / r["wall"] >= 0.005), reverse=True)
        lines.append(f"- {r['name']}: " + ", ".join(f"`{k}` {v:.3f}" for v, k in th))
    lines.append("")
    errs = [(c["name"], e) for c in cams for e in c.get("viewer_errors", [])[:3]]
    if errs:
        lines.append("Viewer errors (first few): " + "; ".join(f"{n}: {e}" for n, e in errs) + "\n")
    lines.append("## Exact commands\n")
    lines.append("```sh")
    if args.commit:
        lines.append(f"rm -rf /tmp/camhub-src && mkdir /tmp/camhub-src && git archive {args.commit} | tar -x -C /tmp/camhub-src")
        lines.append("(cd /tmp/camhub-src && CARGO_TARGET_DIR=/tmp/target-release cargo build --release -p camhub)")
        lines.append(f"cp /tmp/target-release/release/camhub {args.binary}")
    else:
        lines.append("CARGO_TARGET_DIR=/tmp/target-release cargo build --release -p camhub")
    lines.append("python3 " + " ".join(sys.argv))
    lines.append(f"# reference: {cmds['ffmpeg']}")
    lines.append(f"# reference: {cmds['ffmpeg1']}")
    lines.append(f"# camhub:    {args.binary} --config camhub.toml   (config above, a free port)")
    lines.append("```\n")
    lines.append("## Caveats\n")
    lines.append("- 2 shared cores: other sessions' builds and tests run at the same time; the 'machine busy cores' "
                 "column shows how loaded the whole machine was. CPU-seconds are charged per process, so load "
                 "mostly adds noise (cache, frequency, scheduling) rather than bias, but short windows on a busy "
                 "machine can move a ratio by ±10 %. Run with `--rounds 3 --duration 60` for tighter numbers.")
    lines.append("- At many viewers the server's socket writes over loopback include the kernel's TCP work for "
                 "both ends of each connection (loopback delivers in the sender's context), so the fan-out cost "
                 "charged to camhub is higher than on a real network card; the client CPU column is reported "
                 "separately and is not part of the server figures.")
    lines.append("- The ffmpeg CLI writes to /dev/null: it pays no socket at all, which slightly favours the "
                 "reference. Its JPEG quality (`-q:v 5`) and camhub's default (80) give similar sizes (JPEG KB "
                 "column); its scaler is bicubic.")
    lines.append("- The clip is synthetic (testsrc2); its bitrate (setup above) is in the range of a real 1080p camera "
                 "main stream (4–8 Mbit/s). Decode cost grows with bitrate and weighs equally on both contenders.")
    lines.append("- B-frames: x264's default makes B-frames (`has_b_frames` in the setup above); IP cameras almost "
                 "never send them. `--bframes 0` makes a camera-like clip (cached separately).\n")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="/tmp/target-release/release/camhub",
                    help="release camhub binary (default: %(default)s)")
    ap.add_argument("--duration", type=float, default=30, help="measured seconds per phase")
    ap.add_argument("--warmup", type=float, default=6, help="seconds before each measurement window")
    ap.add_argument("--viewers", default="1,10,100,500", help="viewer counts (comma-separated)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat every phase this many times (median)")
    ap.add_argument("--latency-seconds", type=float, default=15, help="WebSocket / snapshot sampling time")
    ap.add_argument("--ttff-tries", type=int, default=20)
    ap.add_argument("--latency-at", default="1,100", help="viewer counts at which latency/TTFF are measured")
    ap.add_argument("--no-ffmpeg-threads1", action="store_true", help="skip the `-threads 1` reference row")
    ap.add_argument("--bframes", type=int, default=None,
                    help="x264 B-frames of the clip (default: x264's own, 3; IP cameras usually send 0)")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"), help="where to write the report")
    ap.add_argument("--commit", default=None,
                    help="the binary was built from a clean export of this commit (not from this work tree)")
    ap.add_argument("--max-other-busy", type=float, default=0.5,
                    help="measure a phase again if other processes used more cores than this meanwhile")
    ap.add_argument("--tries", type=int, default=3, help="at most this many tries per phase (quietest kept)")
    # internal: the MJPEG client child process
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--t1", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--t-stop", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        return client_main(args)
    raise_fd_limit()

    if args.bframes is not None:
        global CLIP, CLIP_CMD
        CLIP = os.path.join(CACHE, f"testsrc2_1080p25_20s_bf{args.bframes}.mp4")
        CLIP_CMD = CLIP_CMD + ["-bf", str(args.bframes)]
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no camhub binary at {args.binary}; build it with\n"
                 f"  cd {REPO} && CARGO_TARGET_DIR=/tmp/target-release cargo build --release -p camhub")
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install ffmpeg)")
    viewers = [int(x) for x in args.viewers.split(",") if x]
    latency_at = {int(x) for x in args.latency_at.split(",") if x}
    args.extra_seconds = args.latency_seconds + args.ttff_tries * 0.5 + 5

    clip = ensure_clip()
    info = versions(args.binary, args.commit)
    if info["stale"]:
        log(f"WARNING: {args.binary} is older than {', '.join(info['stale'][:5])}: rebuild it")
    log(f"clip: {clip['width']}x{clip['height']} {clip['codec_name']} {clip['fps']:g} fps, "
        f"{int(clip.get('bit_rate', 0)) / 1e6:.2f} Mbit/s")
    workdir = tempfile.mkdtemp(prefix="camhub-bench-")
    ffs, ff1s, cams = [], [], {n: [] for n in viewers}
    for rnd in range(args.rounds):
        log(f"round {rnd + 1}/{args.rounds}: ffmpeg CLI reference")
        ffs.append(retry_busy(args, lambda: run_ffmpeg(args, threads1=False)))
        log(f"  ffmpeg: {ffs[-1]['cpu_per_s']:.3f} CPU-s/s, peak RSS {ffs[-1]['hwm_mb']:.1f} MB, "
            f"{ffs[-1]['fps_in']:.2f} fps")
        if not args.no_ffmpeg_threads1:
            ff1s.append(retry_busy(args, lambda: run_ffmpeg(args, threads1=True)))
            log(f"  ffmpeg -threads 1: {ff1s[-1]['cpu_per_s']:.3f} CPU-s/s, peak RSS {ff1s[-1]['hwm_mb']:.1f} MB")
        for n in viewers:
            extra = n in latency_at and rnd == args.rounds - 1
            log(f"round {rnd + 1}/{args.rounds}: camhub, {n} viewer(s)" + (" + latency/TTFF" if extra else ""))
            r = retry_busy(args, lambda: run_camhub(args, n, workdir, extra))
            cams[n].append(r)
            vf = r["viewer_fps"]
            log(f"  camhub@{n}: {r['cpu_per_s']:.3f} CPU-s/s (decode {r['decode_s_per_s']:.3f}, encode "
                f"{r['encode_s_per_s']:.3f}), peak RSS {r['hwm_mb']:.1f} MB, viewer fps min {min(vf):.2f} "
                f"median {statistics.median(vf):.2f}, clients {r['client_cpu_per_s']:.3f} CPU-s/s, "
                f"latency p99 {r['lat_p99_ms']:.1f} ms, machine busy {r['machine_busy']:.2f} cores")
            if r["viewer_errors"]:
                log(f"  viewer errors: {r['viewer_errors'][:3]}")
            if r.get("ttff_ms"):
                log(f"  TTFF median {pct(r['ttff_ms'], .5):.1f} ms p99 {pct(r['ttff_ms'], .99):.1f} ms; "
                    f"WS latency median {fmt(pct(r['ws_lat_ms'], .5), '.1f')} p99 "
                    f"{fmt(pct(r['ws_lat_ms'], .99), '.1f')} ms; frame age median "
                    f"{fmt(pct(r['ages_ms'], .5), '.1f')} p99 {fmt(pct(r['ages_ms'], .99), '.1f')} ms")
    ff = median_row(ffs)
    ff1 = median_row(ff1s) if ff1s else None
    cam_rows = []
    for n in viewers:
        row = median_row(cams[n])
        # latency extras come from the last round only
        for k in ("ws_lat_ms", "ages_ms", "ttff_ms", "ws_error", "ages_error"):
            if k in cams[n][-1]:
                row[k] = cams[n][-1][k]
        cam_rows.append(row)
    with open(os.path.join(workdir, "camhub.toml")) as f:
        config = re.sub(r'listen = "127.0.0.1:\d+"', 'listen = "127.0.0.1:PORT"', f.read())
        config = config.replace(workdir, "/tmp/camhub-bench-XXXX")
    cmds = {"ffmpeg": " ".join(ffmpeg_cmd("T", False)).replace(CLIP, "clip.mp4"),
            "ffmpeg1": " ".join(ffmpeg_cmd("T", True)).replace(CLIP, "clip.mp4"),
            "config": config}
    report = build_report(args, info, clip, ff, ff1, cam_rows, cmds)
    kept = ""
    if os.path.exists(args.results):
        with open(args.results) as f:
            old = f.read()
        if RESULTS_MARKER in old:
            kept = old.split(RESULTS_MARKER, 1)[1]
    with open(args.results, "w") as f:
        f.write(report + "\n" + RESULTS_MARKER + (kept if kept else "\n"))
    with open(os.path.join(workdir, "raw.json"), "w") as f:
        json.dump({"ffmpeg": ffs, "ffmpeg_threads1": ff1s, "camhub": cams, "clip": clip, "info": info}, f,
                  indent=1, default=str)
    print(report)
    log(f"wrote {args.results}; raw data and camhub logs in {workdir}")


if __name__ == "__main__":
    main()
