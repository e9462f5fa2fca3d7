#!/usr/bin/env python3
"""What login costs (issue 10, "What the benchmark must show"): "The cost of auth per request and per
frame is invisible: the MJPEG fan-out benchmark with auth on (token) is within noise of auth off;
login / token check latency p99."

Two parts, each alternating the modes being compared in rounds so that the machine's drift (it is
shared: other sessions build and test on its 2 cores) hits every mode alike:

  1. Per frame: the fan-out of mjpeg_fanout.py (one `ffmpeg:` camera looping the 1080p25 H.264 clip,
     `stream.mjpeg?width=640`, light viewers that parse the multipart stream and count frames) at
     1 and 100 viewers, auth off (no [[user]]) vs auth on with every viewer using `?token=` (a viewer
     API token). A fresh camhub per phase. camhub's CPU-seconds per 30 s of video, peak RSS, frames
     per viewer; the on/off ratio per round, and the spread of the off rounds among themselves (noise).
  2. Per request: N sequential requests on one keep-alive connection per mode: `/healthz` (public) on
     both servers, `GET /api/cameras/cam` with auth off, then with a Bearer token, `?token=`, HTTP
     Basic (cached after the first) and the session cookie of a login. Latency p50 / p99 as the client
     sees it (Python, so the client's own time is in it, the same for every mode) and camhub's CPU per
     request (the sum of its threads' run time, /proc/PID/task/*/schedstat, ns resolution). Then login:
     `POST /api/login` (one argon2id verify) and the first, uncached, Basic request of a user (also one
     argon2id verify), p50 / p99 and camhub's CPU each.

Stdlib + the ffmpeg CLI (through mjpeg_fanout.py's helpers, imported). Build camhub first:
  cargo build --release -p camhub
then:  python3 benches/auth_cost.py [--binary target/release/camhub] [--rounds 3] [--duration 30]
Prints Markdown; writes (or replaces) its section at the end of benches/RESULTS.md (--results '' not to).
"""

import argparse
import base64
import json
import os
import socket
import re
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
import mjpeg_fanout as mf  # noqa: E402  (clip, viewer clients, /proc probes, camhub start/stop)

PASSWORD = "bench-password-1"
SECTION_BEGIN = "<!-- auth_cost.py: begin (rewritten by benches/auth_cost.py) -->"
SECTION_END = "<!-- auth_cost.py: end -->"
log = mf.log


# ----------------------------------------------------------------------------------------------
# small helpers


def sched_ns(pid):
    """Time on CPU of all the live threads of `pid`, in ns (schedstat's first field): unlike
    utime+stime (10 ms ticks) fine enough for a few thousand requests."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def pct(values, q):
    return mf.pct(values, q)


def basic_header(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def http(port, method, path, headers=None, body=None, timeout=30):
    """One request on a new connection: (status, headers, body bytes)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def metrics(port, auth_header=None):
    """camhub's /metrics (with the admin's cached Basic credentials when login is on)."""
    status, _, body = http(port, "GET", "/metrics", {"Authorization": auth_header} if auth_header else {})
    if status != 200:
        raise RuntimeError(f"/metrics: HTTP {status}: {body[:200]!r}")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, val = line.rpartition(" ")
        out[name] = float(val)
    return out


def hash_password(binary):
    r = subprocess.run([binary, "hash-password"], input=PASSWORD, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"camhub hash-password failed: {r.stderr.strip()}")
    h = r.stdout.strip().splitlines()[-1].strip()
    if not h.startswith("$argon2id$"):
        raise RuntimeError(f"camhub hash-password printed {h!r}")
    return h


def users_config(pw_hash, n_basic):
    """[[user]]s appended after the camera: `admin`, and `basic0..` (viewers with the same password)
    whose first Basic request each is uncached (the cache is keyed by user and password)."""
    out = [f'\n[[user]]\nname = "admin"\npassword_hash = "{pw_hash}"\nrole = "admin"\n']
    for k in range(n_basic):
        out.append(f'\n[[user]]\nname = "basic{k}"\npassword_hash = "{pw_hash}"\nrole = "viewer"\n')
    return "".join(out)


def make_token(port, admin_auth):
    body = json.dumps({"name": "bench", "role": "viewer"}).encode()
    status, _, out = http(port, "POST", "/api/tokens",
                          {"Authorization": admin_auth, "Content-Type": "application/json"}, body)
    if status not in (200, 201):
        raise RuntimeError(f"POST /api/tokens: HTTP {status}: {out[:300]!r}")
    token = json.loads(out)["token"]
    if not token.startswith("chb_"):
        raise RuntimeError(f"unexpected token {token[:8]}...")
    return token


def login(port):
    """POST /api/login → (seconds, cookie value)."""
    body = json.dumps({"name": "admin", "password": PASSWORD}).encode()
    t = time.perf_counter()
    status, headers, out = http(port, "POST", "/api/login", {"Content-Type": "application/json"}, body)
    dt = time.perf_counter() - t
    if status != 200:
        raise RuntimeError(f"POST /api/login: HTTP {status}: {out[:300]!r}")
    for v in headers.get_all("Set-Cookie") or []:
        k, _, rest = v.partition("=")
        if k.strip() == "camhub_session":
            return dt, rest.split(";", 1)[0]
    raise RuntimeError("POST /api/login set no camhub_session cookie")


class KeepAlive:
    """One HTTP/1.1 keep-alive connection with the least client work per request: the request bytes
    are made once, the response is read by Content-Length (or chunked framing)."""

    def __init__(self, port):
        self.port = port
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.s.close()

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise ConnectionError("closed by server")
        self.buf += d

    def request(self, raw):
        """Sends `raw`, reads one response: (status, body)."""
        self.s.sendall(raw)
        while (k := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = self.buf[:k].decode("latin-1")
        self.buf = self.buf[k + 4:]
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        elif "chunked" in hdrs.get("transfer-encoding", ""):
            body = b""
            while True:
                while (j := self.buf.find(b"\r\n")) < 0:
                    self._fill()
                size = int(self.buf[:j].split(b";")[0], 16)
                while len(self.buf) < j + 2 + size + 2:
                    self._fill()
                body += self.buf[j + 2:j + 2 + size]
                self.buf = self.buf[j + 2 + size + 2:]
                if size == 0:
                    break
        else:
            body = b""
        return status, body


def raw_get(port, path, headers=()):
    h = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: camhub-bench\r\n{h}\r\n".encode()


# ----------------------------------------------------------------------------------------------
# part 1: per frame (MJPEG fan-out, auth off vs ?token=)


def fanout_phase(args, mode, n, workdir, users):
    """One fresh camhub, n viewers, one measured window."""
    wd = os.path.join(workdir, mode)
    os.makedirs(wd, exist_ok=True)
    proc, port, _, logpath = mf.start_camhub(args.binary, wd, users if mode == "on" else "")
    path = f"/api/cameras/{mf.CAM}/stream.mjpeg?width={mf.WIDTH}"
    admin = basic_header("admin", PASSWORD)
    res = {"name": f"{n} viewer{'s' if n > 1 else ''}, auth {mode}", "mode": mode, "n": n, "log": logpath}
    try:
        res["rss_start_mb"] = mf.proc_status(proc.pid)["VmRSS"] / 1024
        if mode == "on":
            # Also puts the admin's Basic credentials in the cache, for /metrics at the window's edges.
            path += "&token=" + make_token(port, admin)
            if http(port, "GET", path.replace("stream.mjpeg", "frame.jpeg").replace("&token=", "&x="))[0] != 401:
                raise RuntimeError("login is on but a request without the token was not refused")
        res["rss_setup_mb"] = mf.proc_status(proc.pid)["VmRSS"] / 1024
        t0 = time.monotonic() + args.warmup
        t1 = t0 + args.duration
        clients = mf.spawn_clients(port, path, n, t0, t1, t1 + 1)
        mf.sleep_until(t0)
        m0 = metrics(port, admin)
        probe = mf.Probe([proc.pid] + [c.pid for c in clients])
        mf.sleep_until(t1)
        probe.stop()
        m1 = metrics(port, admin)
        st = mf.proc_status(proc.pid)
        viewers = mf.collect_clients(clients)
        wall = probe.wall
        errors = [v["err"] for v in viewers if v["err"] and v["err"] != "closed by server"]
        frames_in = mf.metric(m1, "camhub_frames_in_total") - mf.metric(m0, "camhub_frames_in_total")
        res.update({
            "cpu_per_s": probe.cpu[proc.pid] / wall,
            "user_per_s": probe.split[proc.pid][0] / wall,
            "sys_per_s": probe.split[proc.pid][1] / wall,
            "hwm_mb": st["VmHWM"] / 1024,
            "rss_mb": st["VmRSS"] / 1024,
            "fps_in": frames_in / wall,
            "viewer_fps": [v["win"] / wall for v in viewers],
            "viewer_frames": [v["win"] for v in viewers],
            "errors": errors,
            "bad_jpeg": sum(v["bad"] for v in viewers),
            "client_cpu_per_s": sum(probe.cpu[c.pid] for c in clients) / wall,
            "other_busy": probe.other_busy_cores,
            "machine_busy": probe.machine_busy_cores,
            "wall": wall,
        })
        if errors or len(viewers) != n:
            log(f"  warning: {res['name']}: {len(viewers)} viewers, errors {errors[:3]}")
    finally:
        mf.stop(proc)
    return res


def part_fanout(args, workdir, users):
    rows = {(m, n): [] for n in args.viewers for m in ("off", "on")}
    for r in range(args.rounds):
        # off, on in even rounds; on, off in odd ones: a drift during a round does not favour one mode.
        order = ("off", "on") if r % 2 == 0 else ("on", "off")
        for n in args.viewers:
            for mode in order:
                log(f"fan-out round {r + 1}/{args.rounds}: {n} viewer(s), auth {mode}")
                res = mf.retry_busy(args, lambda: fanout_phase(args, mode, n, workdir, users))
                res["round"] = r + 1
                log(f"  {res['cpu_per_s']:.3f} CPU-s/s, viewers {min(res['viewer_fps']):.2f} fps min, "
                    f"others {res['other_busy']:.2f} cores, tries {res['tries_total']}")
                rows[(mode, n)].append(res)
    return rows


# ----------------------------------------------------------------------------------------------
# part 2: per request, and login


def measure_requests(port, pid, raw, count, warm=200):
    conn = KeepAlive(port)
    try:
        for _ in range(warm):
            st, _ = conn.request(raw)
            if st != 200:
                raise RuntimeError(f"HTTP {st} for {raw.split(b' ')[1][:60]!r}")
        lat = []
        c0, s0 = sched_ns(pid), mf.proc_cpu(pid)
        pc = time.perf_counter_ns
        for _ in range(count):
            t = pc()
            st, _ = conn.request(raw)
            lat.append(pc() - t)
            if st != 200:
                raise RuntimeError(f"HTTP {st}")
        c1, s1 = sched_ns(pid), mf.proc_cpu(pid)
    finally:
        conn.close()
    return {"lat_us": [x / 1000 for x in lat], "cpu_us": (c1 - c0) / 1000 / count,
            "ticks_us": (s1 - s0) * 1e6 / count}


def part_requests(args, workdir, users):
    wd_off, wd_on = os.path.join(workdir, "req-off"), os.path.join(workdir, "req-on")
    os.makedirs(wd_off, exist_ok=True)
    os.makedirs(wd_on, exist_ok=True)
    p_off, port_off, _, _ = mf.start_camhub(args.binary, wd_off, "")
    p_on, port_on, _, _ = mf.start_camhub(args.binary, wd_on, users)
    out = {"modes": {}, "login_s": [], "login_cpu_ms": [], "basic_first_s": [], "basic_first_cpu_ms": [],
           "basic_second_s": [], "idle_us_per_s": {}}
    try:
        admin = basic_header("admin", PASSWORD)
        token = make_token(port_on, admin)            # the admin's Basic now cached too
        _, cookie = login(port_on)
        cam = f"/api/cameras/{mf.CAM}"
        modes = [
            ("/healthz, auth off", "off", "/healthz", ()),
            ("/healthz, auth on (public)", "on", "/healthz", ()),
            (f"{cam}, auth off", "off", cam, ()),
            (f"{cam}, Bearer token", "on", cam, (("Authorization", f"Bearer {token}"),)),
            (f"{cam}?token=", "on", f"{cam}?token={token}", ()),
            (f"{cam}, Basic (cached)", "on", cam, (("Authorization", admin),)),
            (f"{cam}, session cookie", "on", cam, (("Cookie", f"camhub_session={cookie}"),)),
        ]
        server = {"off": (p_off, port_off), "on": (p_on, port_on)}
        # What each camhub does with nobody asking (its camera is not watched: nothing decodes).
        for m, (p, _) in server.items():
            c0 = sched_ns(p.pid)
            time.sleep(2)
            out["idle_us_per_s"][m] = (sched_ns(p.pid) - c0) / 1000 / 2
        for name, *_ in modes:
            out["modes"][name] = {"lat_us": [], "cpu_us": [], "ticks_us": [], "other_busy": []}
        per_round_logins = max(1, args.logins // args.request_rounds)
        basic_k = 0
        for r in range(args.request_rounds):
            order = modes if r % 2 == 0 else list(reversed(modes))
            log(f"requests round {r + 1}/{args.request_rounds}: {args.requests} per mode, {len(modes)} modes")
            for name, m, path, headers in order:
                p, port = server[m]
                b0 = mf.system_busy()
                t0 = time.monotonic()
                res = measure_requests(port, p.pid, raw_get(port, path, headers), args.requests)
                b1 = mf.system_busy()
                wall = time.monotonic() - t0
                machine = (b1[0] - b0[0]) / max(1, b1[1] - b0[1]) * os.cpu_count()
                d = out["modes"][name]
                d["lat_us"].extend(res["lat_us"])
                d["cpu_us"].append(res["cpu_us"])
                d["ticks_us"].append(res["ticks_us"])
                # the client and camhub together keep about one core busy; the rest is others
                d["other_busy"].append(max(0.0, machine - 1.0))
                d["wall"] = wall
            # login: one argon2id verify each (the hashing runs on a blocking thread: utime+stime of the
            # process counts it even if that thread exits; 10 ms ticks are fine for ~50 ms of work)
            log(f"login round {r + 1}/{args.request_rounds}: {per_round_logins} logins, {per_round_logins} first Basic requests")
            for _ in range(per_round_logins):
                c0 = mf.proc_cpu(p_on.pid)
                dt, _ = login(port_on)
                out["login_s"].append(dt)
                out["login_cpu_ms"].append((mf.proc_cpu(p_on.pid) - c0) * 1000)
            for _ in range(per_round_logins):
                user = f"basic{basic_k}"
                basic_k += 1
                raw = raw_get(port_on, cam, (("Authorization", basic_header(user, PASSWORD)),))
                conn = KeepAlive(port_on)
                try:
                    c0 = mf.proc_cpu(p_on.pid)
                    t = time.perf_counter()
                    st, _ = conn.request(raw)
                    out["basic_first_s"].append(time.perf_counter() - t)
                    out["basic_first_cpu_ms"].append((mf.proc_cpu(p_on.pid) - c0) * 1000)
                    t = time.perf_counter()
                    st2, _ = conn.request(raw)
                    out["basic_second_s"].append(time.perf_counter() - t)
                    if st != 200 or st2 != 200:
                        raise RuntimeError(f"Basic as {user}: HTTP {st}, {st2}")
                finally:
                    conn.close()
        out["rss_mb"] = {m: mf.proc_status(p.pid)["VmRSS"] / 1024 for m, (p, _) in server.items()}
        out["perf"] = {}
        if args.perf_requests and perf_works():
            for name, path, headers in ((f"{cam}, Bearer token", cam, (("Authorization", f"Bearer {token}"),)),
                                        (f"{cam}?token=", f"{cam}?token={token}", ())):
                log(f"perf record: {args.perf_requests} requests `{name}`")
                out["perf"][name] = perf_profile(workdir, "bearer" if "Bearer" in name else "query", p_on.pid,
                                                 port_on, raw_get(port_on, path, headers), args.perf_requests)
        elif args.perf_requests:
            log("perf does not work here (`perf stat -e cpu-clock true`): no attribution")
    finally:
        mf.stop(p_off)
        mf.stop(p_on)
    return out


PERF_PARTS = [
    # (label, symbol prefix): inclusive shares (callees included), none inside another
    ("credentials: header / `?token=` parse, `Auth::token` (SHA-256, map lookup, Principal)",
     "camhub::http::access::credentials"),
    ("ban check (`Auth::banned`: a mutex and a map lookup)", "camhub::auth::Auth::banned"),
    ("client address (`client_ip`)", "camhub::http::access::client_ip"),
    ("camera allow-list (`Principal::can_see`)", "camhub::auth::Principal::can_see"),
    ("dropping the Principal", "core::ptr::drop_in_place<camhub::auth::Principal>"),
]
PERF_SCALE = [
    ("for scale: the handler (`api::one`)", "camhub::http::api::one"),
    ("for scale: hyper reading and parsing the request head", "hyper::proto::h1::conn::Conn<I,B,T>::poll_read_head"),
    ("for scale: hyper writing the response", "hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_write"),
]


def perf_profile(workdir, tag, pid, port, raw, count):
    """`perf record` (DWARF call graphs) of camhub while it answers `count` requests; returns
    {symbol prefix: inclusive % of camhub's samples} for PERF_PARTS and PERF_SCALE, or None."""
    data = os.path.join(workdir, f"perf-{tag}.data")
    measure_requests(port, pid, raw, 500)
    pr = subprocess.Popen(["perf", "record", "-F", "4999", "--call-graph", "dwarf,16384", "-o", data,
                           "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # perf attaches
    if pr.poll() is not None:
        return None
    res = measure_requests(port, pid, raw, count, warm=0)
    pr.send_signal(signal.SIGINT)
    pr.wait(60)
    rep = subprocess.run(["perf", "report", "-i", data, "--children", "--sort", "sym", "--stdio", "-g", "none"],
                         capture_output=True, text=True, timeout=900).stdout
    shares = {}
    samples = None
    for line in rep.splitlines():
        m = re.match(r"#\s*Samples:\s*(\S+)", line)
        if m and samples is None:
            samples = m.group(1)
        m = re.match(r"^\s+([\d.]+)%\s+([\d.]+)%\s+\[.\]\s+(.*)$", line)
        if not m:
            continue
        sym = m.group(3)
        for _, prefix in PERF_PARTS + PERF_SCALE:
            if sym.startswith(prefix):
                shares[prefix] = max(shares.get(prefix, 0.0), float(m.group(1)))
    try:
        os.remove(data)  # ~100 MB
    except OSError:
        pass
    return {"shares": shares, "samples": samples, "cpu_us_under_perf": res["cpu_us"]}


def perf_works():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-e", "cpu-clock", "true"], capture_output=True, text=True)
    return r.returncode == 0


def parallel_logins(port, clients, each):
    """`clients` threads, each logging in `each` times in a row: latencies (s)."""
    lat = []
    lock = threading.Lock()

    def run():
        for _ in range(each):
            dt, _ = login(port)
            with lock:
                lat.append(dt)

    ths = [threading.Thread(target=run) for _ in range(clients)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return lat


def rss_check(args, workdir, users, logins=4):
    """camhub's RSS after each of a few logins, then after logins from `--login-clients` parallel clients,
    with glibc's malloc as is and with its mmap threshold pinned (GLIBC_TUNABLES): argon2's 19 MiB block
    kept by malloc, or a leak? Also the parallel logins' latency (they queue: two hashes at a time)."""
    out = {}
    for tag, tunable in (("default", None), ("pinned", "glibc.malloc.mmap_threshold=131072")):
        wd = os.path.join(workdir, f"rss-{tag}")
        os.makedirs(wd, exist_ok=True)
        old = os.environ.get("GLIBC_TUNABLES")
        if tunable:
            os.environ["GLIBC_TUNABLES"] = tunable
        try:
            p, port, _, _ = mf.start_camhub(args.binary, wd, users)
        finally:
            if tunable:
                if old is None:
                    os.environ.pop("GLIBC_TUNABLES", None)
                else:
                    os.environ["GLIBC_TUNABLES"] = old
        try:
            rss = [mf.proc_status(p.pid)["VmRSS"] / 1024]
            for _ in range(logins):
                login(port)
                rss.append(mf.proc_status(p.pid)["VmRSS"] / 1024)
            out[tag] = rss
            if args.login_clients:
                lat = parallel_logins(port, args.login_clients, args.parallel_logins)
                out[tag + "_par"] = {"lat_s": lat, "rss_mb": mf.proc_status(p.pid)["VmRSS"] / 1024}
        finally:
            mf.stop(p)
    return out


# ----------------------------------------------------------------------------------------------
# report


def fnum(v, spec=".3f"):
    return "–" if v is None else format(v, spec)


def spread(values, spec=".3f"):
    return ", ".join(format(v, spec) for v in values)


def report(args, info, load0, fan, req):
    L = []
    L.append("## Auth cost: per frame and per request (`benches/auth_cost.py`)")
    L.append("")
    L.append('Issue 10, "What the benchmark must show": auth per request and per frame is invisible; login and '
             "token check latency p99. Written by `python3 benches/auth_cost.py` "
             f"(`{' '.join(args.argv) or '(defaults)'}`), see the script's docstring.")
    L.append("")
    L.append(f"- date: {info['date']}; CPU: {info['cpu']}, nproc = {info['nproc']}, "
             f"Linux {info['kernel']}; load average at start {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f} "
             "(1 / 5 / 15 min); the machine is shared with other sessions' builds and tests")
    L.append(f"- camhub: {info['camhub']}, release build `{args.binary}` (built {info['built']})"
             + (f"; **sources newer than the binary**: {', '.join(info['stale'][:5])}" if info["stale"] else ""))
    L.append(f"- {info['ffmpeg']}; Python {info['python']}")
    L.append("")
    summary = {}
    if fan:
        L.append(f"### Per frame: MJPEG fan-out, auth off vs `?token=` ({args.rounds} round(s), {args.warmup:g} s "
                 f"warm-up + {args.duration:g} s measured, a fresh camhub per phase, modes alternated per round)")
        L.append("")
        L.append("One `ffmpeg:` camera looping the 1080p25 H.264 clip (`loop_file = true`), viewers on "
                 f"`/api/cameras/cam/stream.mjpeg?width={mf.WIDTH}` (mjpeg_fanout.py's light clients). Auth on: "
                 "`[[user]]`s in the config, every viewer adds `&token=chb_…` (a viewer API token, made with "
                 "`POST /api/tokens` and the admin's Basic credentials after the start: 'setup', one argon2id "
                 "verify; the RSS column shows what that leaves behind). "
                 f"camhub CPU = utime+stime over the window, scaled to {args.per:g} s; median of rounds, "
                 "each round in brackets.")
        L.append("")
        L.append(f"| viewers | auth | camhub CPU-s per {args.per:g} s | user / sys CPU-s per {args.per:g} s | "
                 "RSS MB: start → after setup → window end (peak) | frames per viewer in the window, min / median | viewer fps min | "
                 "others' busy cores | on / off, per round |")
        L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for n in args.viewers:
            off, on = fan[("off", n)], fan[("on", n)]
            ratios = [b["cpu_per_s"] / a["cpu_per_s"] for a, b in zip(off, on)]
            for mode, rows in (("off", off), ("on", on)):
                cpu = [r["cpu_per_s"] * args.per for r in rows]
                frames = [f for r in rows for f in r["viewer_frames"]]
                fps = [f for r in rows for f in r["viewer_fps"]]
                L.append(
                    f"| {n} | {mode} | {statistics.median(cpu):.2f} ({spread(cpu, '.2f')}) | "
                    f"{statistics.median(r['user_per_s'] for r in rows) * args.per:.2f} / "
                    f"{statistics.median(r['sys_per_s'] for r in rows) * args.per:.2f} | "
                    f"{statistics.median(r['rss_start_mb'] for r in rows):.1f} → "
                    f"{statistics.median(r['rss_setup_mb'] for r in rows):.1f} → "
                    f"{statistics.median(r['rss_mb'] for r in rows):.1f} ({max(r['hwm_mb'] for r in rows):.1f}) | {min(frames)} / {statistics.median(frames):.0f} | "
                    f"{min(fps):.2f} | {spread([r['other_busy'] for r in rows], '.2f')} | "
                    + (f"**{statistics.median(ratios):.3f}** ({spread(ratios)})" if mode == "on" else "") + " |")
            offc = [r["cpu_per_s"] for r in off]
            noise = (max(offc) - min(offc)) / statistics.median(offc) if len(offc) > 1 else None
            summary[n] = (statistics.median(ratios), min(ratios), max(ratios), noise,
                          sum(len(r["errors"]) for r in off + on), sum(r["bad_jpeg"] for r in off + on))
        L.append("")
        for n, (med, lo, hi, noise, errs, bad) in summary.items():
            L.append(f"- {n} viewer(s): on / off = **{med:.3f}** (rounds {lo:.3f} … {hi:.3f}); the off rounds "
                     f"among themselves spread by {fnum(noise * 100 if noise is not None else None, '.1f')} % "
                     f"of their median; viewer errors {errs}, parts not starting with a JPEG SOI {bad}")
        L.append("")
    if req:
        L.append(f"### Per request: {args.requests} sequential requests per mode and round on one keep-alive "
                 f"connection ({args.request_rounds} rounds, mode order reversed every other round)")
        L.append("")
        L.append("Latency = the Python client's send → whole response (its own work included, the same for every "
                 "mode), pooled over rounds. camhub CPU = its threads' run time (`/proc/PID/task/*/schedstat`, "
                 "ns) per request: median of rounds (lowest … highest round); idle camhub (camera not "
                 f"watched): {req['idle_us_per_s']['off']:.0f} / {req['idle_us_per_s']['on']:.0f} µs per s "
                 "(off / on). Two camhubs run side by side (off: no `[[user]]`; on: users and a viewer token).")
        L.append("")
        L.append("| request | p50 µs | p99 µs | camhub CPU µs per request | − the same request with auth off in "
                 "the same round, µs: median (lowest … highest) |")
        L.append("|---|---:|---:|---:|---:|")
        cam_off = f"/api/cameras/{mf.CAM}, auth off"
        base = statistics.median(req["modes"][cam_off]["cpu_us"])
        hz_off = statistics.median(req["modes"]["/healthz, auth off"]["cpu_us"])
        paired = {}
        for name, d in req["modes"].items():
            cpu = statistics.median(d["cpu_us"])
            ref = req["modes"]["/healthz, auth off" if name.startswith("/healthz") else cam_off]["cpu_us"]
            delta = ""
            if not name.endswith("auth off"):
                diffs = [a - b for a, b in zip(d["cpu_us"], ref)]
                paired[name] = diffs
                delta = f"{statistics.median(diffs):+.1f} ({min(diffs):+.1f} … {max(diffs):+.1f})"
            L.append(f"| `{name}` | {pct(d['lat_us'], 0.5):.0f} | {pct(d['lat_us'], 0.99):.0f} | "
                     f"{cpu:.1f} ({min(d['cpu_us']):.1f} … {max(d['cpu_us']):.1f}) | {delta} |")
        L.append("")
        perf_us = {}
        if req.get("perf"):
            L.append(f"Where a checked request's CPU goes: `perf record -F 4999 --call-graph dwarf -p PID` over "
                     f"{args.perf_requests} requests per mode, inclusive share of camhub's samples (the function and "
                     "what it calls); µs = share × the mode's median CPU per request above.")
            L.append("")
            names = [n for n in req["perf"] if req["perf"][n]]
            L.append("| part | " + " | ".join(f"`{n}` % / µs" for n in names) + " |")
            L.append("|---|" + "---:|" * len(names))
            for label, prefix in PERF_PARTS + [("**auth-specific, sum of the above**", None)] + PERF_SCALE:
                cells = []
                for n in names:
                    sh = req["perf"][n]["shares"]
                    cpu = statistics.median(req["modes"][n]["cpu_us"])
                    v = sum(sh.get(pf, 0.0) for _, pf in PERF_PARTS) if prefix is None else sh.get(prefix, 0.0)
                    if prefix is None:
                        perf_us[n] = (v, v / 100 * cpu)
                    cells.append(f"{v:.2f} % / {v / 100 * cpu:.2f}")
                L.append(f"| {label} | " + " | ".join(cells) + " |")
            L.append("")
            L.append("Samples: " + ", ".join(f"`{n}` {req['perf'][n]['samples']}" for n in names)
                     + "; perf's own overhead (DWARF stack copies) is in the samples, so the shares are if anything low.")
            L.append("")
        ls, lc = [x * 1000 for x in req["login_s"]], req["login_cpu_ms"]
        bs, bc = [x * 1000 for x in req["basic_first_s"]], req["basic_first_cpu_ms"]
        b2 = [x * 1e6 for x in req["basic_second_s"]]
        L.append("| argon2id (m = 19 MiB, t = 2, p = 1), one at a time | n | p50 ms | p99 ms | max ms | "
                 "camhub CPU ms each, median |")
        L.append("|---|---:|---:|---:|---:|---:|")
        L.append(f"| `POST /api/login` (JSON, new connection) | {len(ls)} | {pct(ls, .5):.1f} | {pct(ls, .99):.1f} | "
                 f"{max(ls):.1f} | {statistics.median(lc):.0f} |")
        L.append(f"| first Basic request of a user (uncached; keep-alive connection) | {len(bs)} | {pct(bs, .5):.1f} | "
                 f"{pct(bs, .99):.1f} | {max(bs):.1f} | {statistics.median(bc):.0f} |")
        L.append(f"| … its second request (cached) | {len(b2)} | {pct(b2, .5) / 1000:.2f} | {pct(b2, .99) / 1000:.2f} | "
                 f"{max(b2) / 1000:.2f} | – |")
        L.append("")
        rc = req.get("rss_check")
        L.append(f"camhub RSS after the requests: {req['rss_mb']['off']:.1f} MB (auth off), "
                 f"{req['rss_mb']['on']:.1f} MB (auth on, after {len(ls) + 1} logins and {len(bs)} first Basic "
                 "requests).")
        if rc:
            L.append("RSS MB of a fresh camhub with login on, at start and after each of "
                     f"{len(rc['default']) - 1} sequential logins: {' → '.join(f'{x:.1f}' for x in rc['default'])} "
                     "(glibc malloc as is); "
                     f"{' → '.join(f'{x:.1f}' for x in rc['pinned'])} with "
                     "`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072`.")
            if "default_par" in rc:
                for tag, label in (("default", "glibc malloc as is"), ("pinned", "mmap threshold pinned")):
                    d = rc[tag + "_par"]
                    lat = [x * 1000 for x in d["lat_s"]]
                    L.append(f"Then {args.login_clients} clients logging in at once, {args.parallel_logins} times each "
                             f"({label}): login latency p50 {pct(lat, .5):.0f} ms, p99 {pct(lat, .99):.0f} ms "
                             f"(they queue: two hashes at a time); RSS {d['rss_mb']:.1f} MB after.")
        L.append("")
    # The reading, from the numbers above.
    R = []
    if summary:
        parts = []
        all_inside = True
        for n, (med, lo, hi, noise, _, _) in summary.items():
            inside = noise is not None and abs(med - 1) <= max(noise, 0.02)
            all_inside = all_inside and inside
            parts.append(f"{n} viewer{'s' if n > 1 else ''}: on / off = {med:.3f} (rounds {lo:.3f} … {hi:.3f}), "
                         + (f"inside the {noise * 100:.1f} % the off rounds spread among themselves"
                            if inside else f"**outside** the off rounds' own spread "
                            f"({fnum(noise * 100 if noise is not None else None, '.1f')} %)"))
        R.append(("**Per frame, auth is invisible**: " if all_inside else
                  "**Per frame, this run does not show auth invisible**"
                  + (" (one round gives no noise estimate: use --rounds 3 or more)" if args.rounds < 2 else "")
                  + ": ") + "; ".join(parts) + ". "
                 "That is what the code says: an MJPEG stream is one request, its token checked once when it opens "
                 "(`access::authorize`: SHA-256 of the token and a map lookup); frames never meet auth again, and a "
                 "token's `last_used` is written at most once a minute, off the request path.")
    if req:
        tok = paired[f"/api/cameras/{mf.CAM}, Bearer token"]
        qry = paired[f"/api/cameras/{mf.CAM}?token="]
        hz = paired["/healthz, auth on (public)"]
        txt = (f"**Per request**, a small JSON request costs camhub about {base:.0f} µs of CPU with auth off "
               f"(`/healthz`: {hz_off:.0f} µs; hyper, the socket and the kernel's loopback are most of it). Against "
               f"auth off in the same round, a Bearer token adds {statistics.median(tok):+.1f} µs "
               f"({min(tok):+.1f} … {max(tok):+.1f} over the rounds), `?token=` {statistics.median(qry):+.1f} µs "
               f"({min(qry):+.1f} … {max(qry):+.1f}), while the two camhubs' public `/healthz` differ by "
               f"{statistics.median(hz):+.1f} µs ({min(hz):+.1f} … {max(hz):+.1f}): the end-to-end CPU numbers on "
               "this shared machine cannot resolve a cost of a few µs.")
        if perf_us:
            txt += (" perf can: the auth-specific code is " + ", ".join(
                f"{v:.1f} % ≈ {u:.1f} µs (`{n.split(', ')[-1] if ', ' in n else '?token='}`)"
                for n, (v, u) in perf_us.items()) + " of a request's CPU.")
        txt += (f" Client-side latency p99: {pct(req['modes'][cam_off]['lat_us'], .99):.0f} µs auth off vs "
                f"{pct(req['modes'][f'/api/cameras/{mf.CAM}, Bearer token']['lat_us'], .99):.0f} µs Bearer and "
                f"{pct(req['modes'][f'/api/cameras/{mf.CAM}?token=']['lat_us'], .99):.0f} µs `?token=` "
                "(the tail is the shared machine's scheduling). ")
        ls = [x * 1000 for x in req["login_s"]]
        txt += (f"A login is one argon2id verify: p50 {pct(ls, .5):.0f} ms, p99 {pct(ls, .99):.0f} ms, "
                f"{statistics.median(req['login_cpu_ms']):.0f} ms of CPU; the first Basic request of a user costs the "
                "same, the next ones (cached 5 min) cost what a token does.")
        rc = req.get("rss_check")
        if rc and rc["default"][-1] - rc["default"][0] > 15:
            txt += (f" Memory: after the first argon2 hash camhub's RSS stays about 19 MiB higher (and another 19 MiB "
                    f"each time a hash runs on a blocking thread whose malloc arena has none yet: "
                    f"{rc['default'][0]:.0f} → {rc['default'][-1]:.0f} MB after {len(rc['default']) - 1} logins), "
                    "not a leak: glibc raises its mmap threshold when the first 19 MiB block is freed, so later "
                    "blocks come from the arenas and stay resident; with the threshold pinned the RSS stays "
                    f"{rc['pinned'][0]:.0f} → {rc['pinned'][-1]:.0f} MB. The fan-out's +20 MB with auth on is this, "
                    "from the one Basic request that made the token, not a per-viewer cost.")
            if "default_par" in rc and rc["default_par"]["rss_mb"] - rc["default"][-1] > 40:
                txt += (f" But logins at once spread the blocks over more arenas: after {args.login_clients} parallel "
                        f"clients' {args.login_clients * args.parallel_logins} logins camhub held "
                        f"{rc['default_par']['rss_mb']:.0f} MB ({rc['pinned_par']['rss_mb']:.0f} MB with the threshold "
                        "pinned); the two-at-a-time semaphore bounds the hashing's CPU, not this memory. Wrong "
                        "passwords run the same hash (unknown names against a dummy hash), so this needs no "
                        "account. A fix in `auth.rs`, not a process-wide malloc setting (that "
                        "would turn the video path's big buffers into mmap/munmap): give argon2 its memory "
                        "explicitly, e.g. `hash_password_into_with_memory` with a buffer per semaphore permit, or one "
                        "mapped and unmapped per hash.")
        R.append(txt)
    if R:
        L.append("### Reading")
        L.append("")
        L.extend(x + "\n" for x in R)
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


def wait_for_quiet(limit, max_wait):
    t_end = time.monotonic() + max_wait
    while os.getloadavg()[0] > limit and time.monotonic() < t_end:
        log(f"load {os.getloadavg()[0]:.2f} > {limit:g}: waiting")
        time.sleep(30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "camhub"))
    ap.add_argument("--commit", help="the binary was built from a clean export of this commit (shown instead of HEAD)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=30.0, help="measured seconds per fan-out phase")
    ap.add_argument("--warmup", type=float, default=6.0)
    ap.add_argument("--per", type=float, default=30.0, help="CPU is reported per this many seconds of video")
    ap.add_argument("--viewers", default="1,100", help="viewer counts of the fan-out, comma-separated")
    ap.add_argument("--requests", type=int, default=2000, help="sequential requests per mode and request round")
    ap.add_argument("--request-rounds", type=int, default=10, dest="request_rounds")
    ap.add_argument("--perf-requests", type=int, default=20000, dest="perf_requests",
                    help="Bearer and ?token= requests under `perf record` to attribute the check's CPU (0 = no perf)")
    ap.add_argument("--logins", type=int, default=30, help="logins (and first Basic requests) in all")
    ap.add_argument("--login-clients", type=int, default=4, dest="login_clients",
                    help="parallel clients logging in at once (RSS and queueing), 0 = none")
    ap.add_argument("--parallel-logins", type=int, default=20, dest="parallel_logins",
                    help="logins per parallel client")
    ap.add_argument("--tries", type=int, default=2, help="fan-out phase measured again while others are busy")
    ap.add_argument("--max-other-busy", type=float, default=0.5, dest="max_other_busy")
    ap.add_argument("--wait-load", type=float, default=1.5, help="wait (≤ 10 min) for the 1-min load to drop")
    ap.add_argument("--skip-fanout", action="store_true")
    ap.add_argument("--skip-requests", action="store_true")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"),
                    help="file whose auth_cost section is written or replaced ('' = none)")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    args.viewers = [int(x) for x in args.viewers.split(",") if x]
    args.binary = os.path.abspath(args.binary)
    mf.raise_fd_limit()
    wait_for_quiet(args.wait_load, 600)
    load0 = os.getloadavg()
    info = mf.versions(args.binary, args.commit)
    mf.ensure_clip()
    workdir = tempfile.mkdtemp(prefix="camhub-authcost-")
    log(f"work dir {workdir}; load {load0[0]:.2f}")
    pw_hash = hash_password(args.binary)
    users = users_config(pw_hash, max(1, args.logins // args.request_rounds) * args.request_rounds)
    fan = None if args.skip_fanout else part_fanout(args, workdir, users)
    req = None if args.skip_requests else part_requests(args, workdir, users)
    if req is not None:
        log("RSS after logins, glibc malloc as is and with its mmap threshold pinned")
        req["rss_check"] = rss_check(args, workdir, users)
    text = report(args, info, load0, fan, req)
    print(text)
    with open(os.path.join(workdir, "raw.json"), "w") as f:
        json.dump({"args": vars(args), "info": info, "load0": load0,
                   "fanout": {f"{m}-{n}": v for (m, n), v in (fan or {}).items()}, "requests": req}, f, default=str)
    if args.results:
        write_section(args.results, text)
        log(f"wrote the auth_cost section of {args.results}")
    log(f"raw data and camhub logs: {workdir}")


if __name__ == "__main__":
    main()
