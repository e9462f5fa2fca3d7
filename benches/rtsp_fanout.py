#!/usr/bin/env python3
"""RTSP re-serving fan-out (`[server] rtsp_listen`): one 1080p25 H.264 camera re-served over RTSP to
1, 10 and 100 clients (TCP interleaved) and 10 clients over UDP, camhub's own packets, no decode, no
re-encode; against the `ffmpeg` CLI relaying the same camera with `-c copy`, in the same run.

One run:
  1. makes (once, cached in benches/.cache/; the same clip as mse_fanout.py) a 1080p25 H.264 clip of
     testsrc2 long enough for every phase (libx264 veryfast, 4 Mbit/s, GOP 50 = 2 s, no B-frames);
  2. serves it over RTSP (GStreamer's rtsp-server, motion_cost.py's `--serve` mode: every session plays
     the clip from its start at its native pace, no re-encoding; it reports every PLAY, so the number
     of upstream sessions a contender opened is counted);
  3. reference, "one client served by an ffmpeg -c copy relay": ffmpeg reads the camera over RTSP/TCP
     and pushes the same packets, `-c copy`, as RTSP over TCP interleaved to a minimal RTSP RECORD
     listener in this script (OPTIONS/ANNOUNCE/SETUP/RECORD answered 200, then the `$` frames read
     and counted, never decoded):
       ffmpeg -rtsp_transport tcp -i rtsp://SOURCE -c copy -f rtsp -rtsp_transport tcp rtsp://127.0.0.1:L/relay
     That is the same work per client as camhub's TCP clients (depacketize the camera's RTP once,
     packetize again, write RTP interleaved in a TCP connection), on the same wire format. ffmpeg cannot
     *serve* RTSP to a player that connects to it (its RTSP muxer only pushes, and `-rtsp_flags listen`
     is for input), so serving N clients with ffmpeg means N relays, each with its own upstream
     session: the "N ffmpeg relays" rows are N x the one-relay figure (N upstream sessions, where
     camhub holds one). For the UDP phase the reference is the same relay to plain RTP over UDP
     (`-f rtp rtp://127.0.0.1:P`, a UDP socket of this script reading and discarding);
  4. camhub (a release binary, a fresh process per phase, `rtsp_listen = "127.0.0.1:0"`, the port read
     from its log line "RTSP server on rtsp://…") with the camera, serving `rtsp://127.0.0.1:PORT/cam`
     to 1, 10 and 100 light clients over TCP (`Transport: RTP/AVP/TCP;unicast;interleaved=0-1`), then
     to 10 clients over UDP (`RTP/AVP;unicast;client_port=a-b`, each client its own UDP pair). A client
     is a connection in a child process (a selectors loop, 50 clients per process) that does OPTIONS,
     DESCRIBE, SETUP, PLAY by hand on a raw socket and then reads the `$` frames (or the datagrams),
     counting RTP packets, bytes, lost sequence numbers and access units (RTP marker bit); nothing is
     decoded. The camera connects with a first probe client (its time to first frame, camera idle, is
     reported), which leaves before the clients come.
  5. per phase, over the measured window: camhub's CPU-s/s (utime + stime of all its threads,
     /proc/PID/stat), CPU µs per client-frame, peak RSS (VmHWM), the frames each client received per
     second (median, min), /metrics deltas (camhub_decode_seconds_total — must stay 0 —,
     camhub_rtsp_bytes_out_total, camhub_keyframe_resyncs_total, camhub_packet_viewers{kind="rtsp"}),
     the upstream sessions the GStreamer source saw (PLAYs, must be 1), camhub's WARN/ERROR log lines;
     then the time to first frame of a new client while the camera streams (connect -> first complete
     access unit), against the GOP.

The machine is shared (2 cores; other sessions' builds and CI run on it): every table has the CPU the
rest of the machine used during the window ("others busy"), and camhub is compared only with the ffmpeg
reference measured in the same run.

MediaMTX (rtsp-simple-server): no published CPU figure for RTSP relaying per reader was found (search
of its documentation, issues and web pages, 2026). The only figure tied to reader counts is a user's
report for WebRTC readers, not RTSP: "3 cores ... CCU: 150 => CPU 99%" (MediaMTX 1.14,
https://github.com/bluenviron/mediamtx/issues/4963); the maintainer's answer asks for a pprof profile
and gives no figure. https://github.com/bluenviron/mediamtx/issues/2914 reports (from pprof, no number)
that sending RTP packets one write per packet is a significant part of its CPU.

Stdlib + the ffmpeg CLI + /usr/bin/python3 with python3-gi and gir1.2-gst-rtsp-server-1.0 (scripts/setup.sh
test installs them). Build camhub first (a private target dir, from a clean export of the commit):
  git archive HEAD | tar -x -C /tmp/bench-src && cd /tmp/bench-src &&
  CARGO_TARGET_DIR=/work/target-bench cargo build --release -p camhub
then:  python3 benches/rtsp_fanout.py [--binary PATH] [--clients 1,10,100] [--udp-clients 10] [--duration 20]
Prints Markdown and writes (or replaces) its section at the end of benches/RESULTS.md (--results '' not to).
"""

import argparse
import json
import os
import re
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
import mse_fanout as mse  # noqa: E402  (the cached 1080p25 clip, shared with mse_fanout.py)

log = mf.log
CAM = "cam"
FPS = 25
GOP_S = 2.0
PER_PROC = 50
SECTION_BEGIN = "<!-- rtsp_fanout.py: begin (rewritten by benches/rtsp_fanout.py) -->"
SECTION_END = "<!-- rtsp_fanout.py: end -->"


# ----------------------------------------------------------------------------------------------
# RTSP by hand


class RtspError(Exception):
    pass


def parse_head(raw):
    """(first line, {lower-case header: value}) of an RTSP message head."""
    lines = raw.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if sep:
            hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs


class Handshake:
    """Blocking request/response on a fresh RTSP connection; bytes read past the last response (the
    first interleaved frames after PLAY) stay in `self.buf`."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.cseq = 0

    def request(self, method, url, headers=()):
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", "User-Agent: camhub-bench"] + list(headers)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, hdrs, body = self.response()
        if status != 200:
            raise RtspError(f"{method}: {status} {body[:200].decode('utf-8', 'replace').strip()}")
        return hdrs, body

    def _fill(self):
        b = self.sock.recv(65536)
        if not b:
            raise RtspError("closed by server")
        self.buf += b

    def response(self):
        while True:
            if self.buf[:1] == b"$":  # an interleaved frame before the response: skip it
                while len(self.buf) < 4:
                    self._fill()
                ln = 4 + int.from_bytes(self.buf[2:4], "big")
                while len(self.buf) < ln:
                    self._fill()
                del self.buf[:ln]
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                self._fill()
                continue
            first, hdrs = parse_head(bytes(self.buf[:end]))
            clen = int(hdrs.get("content-length", "0"))
            while len(self.buf) < end + 4 + clen:
                self._fill()
            body = bytes(self.buf[end + 4:end + 4 + clen])
            del self.buf[:end + 4 + clen]
            parts = first.split()
            if len(parts) < 2 or not parts[0].startswith("RTSP/"):
                raise RtspError(f"not an RTSP response: {first[:80]!r}")
            return int(parts[1]), hdrs, body


def control_url(base, sdp):
    """The video track's URL: its `a=control:` (absolute, or relative to Content-Base)."""
    in_video = False
    for line in sdp.decode("latin-1").splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=control:"):
            c = line[len("a=control:"):].strip()
            if c.startswith("rtsp://"):
                return c
            if c == "*":
                return base
            return base + ("" if base.endswith("/") else "/") + c
    return base


def bind_udp_pair():
    """An even UDP port and the next one on 127.0.0.1 (RTP, RTCP), with large receive buffers."""
    for _ in range(64):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        if port % 2 or port >= 65535:
            rtp.close()
            continue
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind(("127.0.0.1", port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        for s in (rtp, rtcp):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        return rtp, rtcp
    raise RuntimeError("no free pair of UDP ports")


def open_session(port, transport, timeout=25.0):
    """OPTIONS, DESCRIBE, SETUP, PLAY on a new connection to camhub's `rtsp://127.0.0.1:port/cam`.
    Returns (socket, bytes read past the PLAY response, (rtp, rtcp) UDP sockets or None)."""
    url = f"rtsp://127.0.0.1:{port}/{CAM}"
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    udp = None
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        h = Handshake(s)
        h.request("OPTIONS", url)
        hdrs, sdp = h.request("DESCRIBE", url, ["Accept: application/sdp"])
        base = hdrs.get("content-base", url + "/")
        track = control_url(base, sdp)
        if transport == "udp":
            udp = bind_udp_pair()
            p = udp[0].getsockname()[1]
            spec = f"RTP/AVP;unicast;client_port={p}-{p + 1}"
        else:
            spec = "RTP/AVP/TCP;unicast;interleaved=0-1"
        hdrs, _ = h.request("SETUP", track, [f"Transport: {spec}"])
        session = hdrs.get("session", "").split(";")[0].strip()
        if not session:
            raise RtspError("SETUP: no Session header")
        h.request("PLAY", base.rstrip("/"), [f"Session: {session}", "Range: npt=0.000-"])
        return s, bytes(h.buf), udp
    except BaseException:
        s.close()
        if udp:
            for u in udp:
                u.close()
        raise


class RtpStream:
    """RTP interleaved in a TCP connection (`$`, channel, 16-bit length, packet) or, with feed_datagram,
    one packet per UDP datagram. Counts packets, lost sequence numbers, RTCP frames and access units
    (RTP packets with the marker bit); nothing is decoded. A byte that starts no `$` frame starts an
    RTSP message: `on_message(head, body)` gets it when set, otherwise it is counted in `bad` (a server
    sends nothing but `$` frames after PLAY here: no request was sent)."""

    def __init__(self, channel=0, on_message=None):
        self.ch = channel
        self.on_message = on_message
        self.pending = b""
        self.left = 0
        self.text = None
        self.body_left = 0
        self.head = b""
        self.body = bytearray()
        self.packets = 0
        self.rtcp = 0
        self.aus = 0
        self.lost = 0
        self.seq = None
        self.bad = 0
        self.messages = 0

    def _rtp(self, b1, s_hi, s_lo):
        self.packets += 1
        seq = (s_hi << 8) | s_lo
        if self.seq is not None:
            d = (seq - self.seq - 1) & 0xFFFF
            if d and d < 0x8000:
                self.lost += d
        self.seq = seq
        if b1 & 0x80:
            self.aus += 1
            return 1
        return 0

    def feed_datagram(self, d):
        if len(d) < 12 or (d[0] >> 6) != 2:
            self.bad += 1
            return 0
        return self._rtp(d[1], d[2], d[3])

    def _text(self, mv, i, n):
        """Bytes of an RTSP message from mv[i:]; returns the new i."""
        if self.body_left:
            take = min(self.body_left, n - i)
            self.body += mv[i:i + take]
            self.body_left -= take
            i += take
        else:
            self.text += mv[i:n]
            end = self.text.find(b"\r\n\r\n")
            if end < 0:
                if len(self.text) > 65536:
                    raise ValueError("an RTSP message head over 64 KiB")
                return n
            consumed = end + 4 - (len(self.text) - (n - i))
            self.head = bytes(self.text[:end])
            i += consumed
            _, hdrs = parse_head(self.head)
            self.body_left = int(hdrs.get("content-length", "0"))
            self.body = bytearray()
            take = min(self.body_left, n - i)
            self.body += mv[i:i + take]
            self.body_left -= take
            i += take
        if not self.body_left:
            self.text = None
            self.messages += 1
            if self.on_message:
                self.on_message(self.head, bytes(self.body))
            else:
                self.bad += 1
        return i

    def feed(self, mv):
        """Interleaved bytes; returns the access units completed."""
        done = 0
        i, n = 0, len(mv)
        while i < n:
            if self.left:
                take = min(self.left, n - i)
                i += take
                self.left -= take
                continue
            if self.text is not None:
                i = self._text(mv, i, n)
                continue
            if self.pending:
                need = 8 - len(self.pending)
                self.pending += bytes(mv[i:i + need])
                i += min(need, n - i)
                if len(self.pending) < 8:
                    continue
                h = self.pending
                self.pending = b""
            elif mv[i] != 0x24:
                self.text = bytearray()
                continue
            elif n - i < 8:
                self.pending = bytes(mv[i:n])
                i = n
                continue
            else:
                h = mv[i:i + 8]
                i += 8
            length = (h[2] << 8) | h[3]
            if length < 4:
                raise ValueError(f"an interleaved frame of {length} bytes")
            if h[1] == self.ch:
                done += self._rtp(h[5], h[6], h[7])
            else:
                self.rtcp += 1
            self.left = length - 4
        return done


# ----------------------------------------------------------------------------------------------
# The light clients (child processes)


def client_main(args):
    """Child process: N RTSP clients of camhub on one selector loop; prints a JSON summary at the end."""
    mf.raise_fd_limit()
    t0, t1, t_stop = args.t0, args.t1, args.t_stop
    sel = selectors.DefaultSelector()
    conns = []
    buf = bytearray(1 << 18)
    mv = memoryview(buf)

    def account(c, f, nbytes):
        now = time.monotonic()
        c["bytes"] += nbytes
        if t0 <= now < t1:
            c["bytes_win"] += nbytes
        if f:
            if c["first"] is None:
                c["first"] = now - c["t_open"]
            c["total"] += f
            if t0 <= now < t1:
                c["win"] += f
                if c["last"] is not None and c["last"] >= t0:
                    c["max_gap"] = max(c["max_gap"], now - c["last"])
            c["last"] = now

    def close(c, err):
        if c["open"]:
            c["err"] = c["err"] or err
            for s in c["socks"]:
                try:
                    sel.unregister(s)
                except (KeyError, ValueError):
                    pass
                s.close()
            c["open"] = False

    for k in range(args.n):
        c = {"k": k, "t_open": time.monotonic(), "first": None, "win": 0, "total": 0, "bytes": 0, "bytes_win": 0,
             "last": None, "max_gap": 0.0, "err": None, "p": RtpStream(), "socks": [], "open": False,
             "pkts_t0": None, "pkts_t1": None}
        conns.append(c)
        try:
            s, rest, udp = open_session(args.port, args.transport)
        except Exception as e:  # noqa: BLE001 - reported, not raised
            c["err"] = f"set-up: {e}"
            continue
        c["open"] = True
        s.setblocking(False)
        c["socks"].append(s)
        sel.register(s, selectors.EVENT_READ, (c, "tcp"))
        if udp:
            for u, kind in zip(udp, ("rtp", "rtcp")):
                u.setblocking(False)
                c["socks"].append(u)
                sel.register(u, selectors.EVENT_READ, (c, kind))
        elif rest:
            try:
                account(c, c["p"].feed(memoryview(rest)), len(rest))
            except Exception as e:  # noqa: BLE001
                close(c, f"parse error: {e}")
    open_n = sum(1 for c in conns if c["open"])
    snap0 = snap1 = False
    while open_n:
        now = time.monotonic()
        if not snap0 and now >= t0:
            snap0 = True
            for c in conns:
                c["pkts_t0"] = (c["p"].packets, c["p"].lost)
        if not snap1 and now >= t1:
            snap1 = True
            for c in conns:
                c["pkts_t1"] = (c["p"].packets, c["p"].lost)
        if now >= t_stop:
            break
        for key, _ in sel.select(timeout=min(0.2, t_stop - now)):
            c, kind = key.data
            if not c["open"]:
                continue
            if kind == "tcp":
                try:
                    got = key.fileobj.recv_into(buf)
                except BlockingIOError:
                    continue
                except OSError as e:
                    got, c["err"] = 0, str(e)
                if got == 0:
                    close(c, "closed by server")
                    open_n -= 1
                    continue
                if args.transport == "udp":
                    c["p"].bad += 1  # nothing is expected on the RTSP connection after PLAY
                    continue
                try:
                    f = c["p"].feed(mv[:got])
                except Exception as e:  # noqa: BLE001
                    close(c, f"parse error: {e}")
                    open_n -= 1
                    continue
                account(c, f, got)
            else:
                while True:
                    try:
                        got = key.fileobj.recv_into(buf)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    if kind == "rtp":
                        account(c, c["p"].feed_datagram(mv[:got]), got)
                    else:
                        c["p"].rtcp += 1
    for c in conns:
        for s in c["socks"]:
            try:
                s.close()
            except OSError:
                pass
    out = []
    for c in conns:
        p = c["p"]
        a = c["pkts_t0"] or (0, 0)
        b = c["pkts_t1"] or (p.packets, p.lost)
        out.append({"win": c["win"], "total": c["total"], "bytes": c["bytes"], "bytes_win": c["bytes_win"],
                    "first": c["first"], "max_gap": c["max_gap"], "packets": p.packets, "lost": p.lost,
                    "packets_win": b[0] - a[0], "lost_win": b[1] - a[1], "rtcp": p.rtcp, "bad": p.bad,
                    "err": c["err"]})
    print(json.dumps(out))


def spawn_clients(port, transport, n, t0, t1, t_stop, per_proc=PER_PROC):
    procs = []
    left = n
    while left > 0:
        k = min(per_proc, left)
        left -= k
        cmd = [sys.executable, os.path.abspath(__file__), "--client", "--port", str(port), "--transport", transport,
               "--n", str(k), "--t0", repr(t0), "--t1", repr(t1), "--t-stop", repr(t_stop)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    return procs


def first_frame_s(port, transport, timeout=25.0):
    """Seconds from the TCP connect to the first complete access unit (RTP marker) of a new client."""
    t = time.monotonic()
    s, rest, udp = open_session(port, transport, timeout)
    try:
        p = RtpStream()
        if udp:
            udp[0].settimeout(timeout)
            while True:
                d = udp[0].recv(65536)
                if p.feed_datagram(d):
                    return time.monotonic() - t
        if rest and p.feed(memoryview(rest)):
            return time.monotonic() - t
        buf = bytearray(1 << 17)
        while True:
            got = s.recv_into(buf)
            if not got:
                raise RtspError("closed before the first frame")
            if p.feed(memoryview(buf)[:got]):
                return time.monotonic() - t
    finally:
        s.close()
        if udp:
            for u in udp:
                u.close()


# ----------------------------------------------------------------------------------------------
# camhub


def start_camhub(binary, workdir, url):
    proc, http_port, _, logpath = mf.start_camhub(binary, workdir, url=url,
                                                  server_extra='rtsp_listen = "127.0.0.1:0"')
    rtsp_port = mf.port_in_log(logpath, r"RTSP server on rtsp://127\.0\.0\.1:(\d+)/")
    return proc, http_port, rtsp_port, logpath


def log_problems(path):
    """camhub's WARN and ERROR lines: (count, a few distinct ones with their timestamps cut)."""
    lines = []
    with open(path, errors="replace") as f:
        for line in f:
            if re.search(r"\b(WARN|ERROR)\b", line):
                lines.append(re.sub(r"\x1b\[[0-9;]*m", "", line).strip())
    distinct = []
    for line in lines:
        key = re.sub(r"^\S+\s+", "", line)
        key = re.sub(r"\d+", "N", key)
        if key not in [d[0] for d in distinct]:
            distinct.append((key, line))
    return len(lines), [d[1] for d in distinct[:6]]


def run_camhub(args, server, n, transport, workdir):
    since = time.time() - 0.5
    proc, http_port, port, logpath = start_camhub(args.binary, workdir, server.url(1))
    res = {"name": f"camhub, {n} client{'s' if n > 1 else ''} ({transport.upper()})", "n": n, "transport": transport,
           "log": logpath}
    try:
        # The camera connects with the first client (a probe that leaves); the clients come after it.
        res["cold_first_s"] = first_frame_s(port, transport, timeout=25)
        t_spawn = time.monotonic()
        t0 = t_spawn + args.warmup
        t1 = t0 + args.duration
        t_stop = t1 + 1
        clients = spawn_clients(port, transport, n, t0, t1, t_stop)
        mf.sleep_until(t0)
        m0 = mf.metrics(http_port)
        probe = mf.Probe([proc.pid, server.proc.pid] + [c.pid for c in clients])
        mf.sleep_until(t1)
        probe.stop()
        m1 = mf.metrics(http_port)
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
        lost = sum(v["lost_win"] for v in viewers)
        pkts = sum(v["packets_win"] for v in viewers)
        res.update({
            "cpu_per_s": cpu,
            "user_per_s": probe.split[proc.pid][0] / wall,
            "sys_per_s": probe.split[proc.pid][1] / wall,
            "hwm_mb": st["VmHWM"] / 1024,
            "n_threads": st["Threads"],
            "fps_in": d("camhub_frames_in_total") / wall,
            "decode_per_s": d("camhub_decode_seconds_total") / wall,
            "decode_total": mf.metric(m1, "camhub_decode_seconds_total"),
            "resyncs": d("camhub_keyframe_resyncs_total"),
            "resyncs_phase": mf.metric(m1, "camhub_keyframe_resyncs_total"),
            "reconnects": mf.metric(m1, "camhub_reconnects_total"),
            "mbit_out": d("camhub_rtsp_bytes_out_total") * 8 / wall / 1e6,
            "rtsp_gauge": m1.get(f'camhub_packet_viewers{{camera="{CAM}",kind="rtsp"}}', -1),
            "client_mbit": sum(v["bytes_win"] for v in viewers) * 8 / wall / 1e6,
            "client_fps_median": statistics.median(fps) if fps else 0.0,
            "client_fps_min": min(fps) if fps else 0.0,
            "clients_full_rate": sum(1 for f in fps if f >= 0.95 * FPS),
            "clients_max_gap_s": max((v["max_gap"] for v in viewers), default=0.0),
            "client_first_s": [v["first"] for v in viewers if v["first"] is not None],
            "client_errors": [v["err"] for v in viewers if v["err"]],
            "client_bad": sum(v["bad"] for v in viewers),
            "lost": lost,
            "loss_pct": 100.0 * lost / max(1, lost + pkts),
            "rtcp": sum(v["rtcp"] for v in viewers),
            "us_per_client_frame": cpu / max(1e-9, sum(fps)) * 1e6,
            "client_cpu_per_s": sum(probe.cpu[c.pid] for c in clients) / wall,
            "server_cpu_per_s": probe.cpu[server.proc.pid] / wall,
            "machine_busy": probe.machine_busy_cores,
            "other_busy": probe.other_busy_cores,
            "threads": {k: v / wall for k, v in probe.threads[proc.pid].items() if v / wall >= 0.005},
        })
        # A new client while the camera streams (the n clients gone): it starts at the cached GOP.
        samples = []
        for _ in range(args.ttff_samples):
            samples.append(first_frame_s(port, transport))
            time.sleep(0.37)
        res["ttff_ms"] = [s * 1000 for s in samples]
    finally:
        mf.stop(proc)
        res["upstream_sessions"] = len(server.plays_of("c1", since))
        res["log_problems"], res["log_examples"] = log_problems(logpath)
        with open(logpath, errors="replace") as f:
            res["log_playing"] = sum(1 for line in f if "rtsp: playing" in line)
    return res


# ----------------------------------------------------------------------------------------------
# The ffmpeg references


class RecordListener:
    """A minimal RTSP server for one `ffmpeg -f rtsp` push over TCP: every request is answered 200
    (SETUP with the Transport asked for and a Session), then the interleaved RTP is read and counted."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.stream = RtpStream(on_message=self._answer)
        self.bytes = 0
        self.requests = []
        self.err = None
        self.conn = None
        threading.Thread(target=self._run, daemon=True).start()

    def _answer(self, head, _body):
        first, hdrs = parse_head(head)
        method = first.split()[0] if first else "?"
        self.requests.append(method)
        extra = ""
        if method == "OPTIONS":
            extra = "Public: OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN\r\n"
        elif method == "SETUP":
            extra = f"Transport: {hdrs.get('transport', 'RTP/AVP/TCP;unicast;interleaved=0-1')}\r\nSession: 5EB1A0C1\r\n"
        elif method in ("RECORD", "TEARDOWN", "GET_PARAMETER"):
            extra = "Session: 5EB1A0C1\r\n"
        self.conn.sendall(f"RTSP/1.0 200 OK\r\nCSeq: {hdrs.get('cseq', '0')}\r\n{extra}\r\n".encode())

    def _run(self):
        try:
            self.conn, _ = self.sock.accept()
            buf = bytearray(1 << 17)
            mv = memoryview(buf)
            while True:
                got = self.conn.recv_into(buf)
                if not got:
                    return
                self.bytes += got
                self.stream.feed(mv[:got])
        except Exception as e:  # noqa: BLE001
            self.err = str(e)

    def close(self):
        for s in (self.conn, self.sock):
            if s:
                try:
                    s.close()
                except OSError:
                    pass


class UdpSink:
    """A UDP pair (RTP, RTCP) read and discarded, counting RTP packets and access units."""

    def __init__(self):
        self.rtp, self.rtcp = bind_udp_pair()
        self.port = self.rtp.getsockname()[1]
        self.stream = RtpStream()
        self.bytes = 0
        self.err = None
        self.stop = False
        threading.Thread(target=self._run, args=(self.rtp, True), daemon=True).start()
        threading.Thread(target=self._run, args=(self.rtcp, False), daemon=True).start()

    def _run(self, s, is_rtp):
        s.settimeout(0.5)
        while not self.stop:
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if is_rtp:
                self.bytes += len(d)
                self.stream.feed_datagram(d)
            else:
                self.stream.rtcp += 1

    def close(self):
        self.stop = True
        time.sleep(0.6)
        self.rtp.close()
        self.rtcp.close()


def run_ffmpeg(args, server, transport):
    """The reference: one ffmpeg -c copy relay serving one client (this script's sink)."""
    since = time.time() - 0.5
    if transport == "tcp":
        sink = RecordListener()
        out = ["-f", "rtsp", "-rtsp_transport", "tcp", f"rtsp://127.0.0.1:{sink.port}/relay"]
        name = "ffmpeg -c copy relay → RTSP/TCP, 1 client"
    else:
        sink = UdpSink()
        out = ["-f", "rtp", f"rtp://127.0.0.1:{sink.port}"]
        name = "ffmpeg -c copy relay → RTP/UDP, 1 client"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-rtsp_transport", "tcp", "-i",
           server.url(1), "-an", "-c", "copy"] + out
    errf = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf)
    try:
        time.sleep(args.warmup)
        a0, b0, p0, l0 = sink.stream.aus, sink.bytes, sink.stream.packets, sink.stream.lost
        probe = mf.Probe([proc.pid, server.proc.pid])
        time.sleep(args.duration)
        probe.stop()
        a1, b1, p1, l1 = sink.stream.aus, sink.bytes, sink.stream.packets, sink.stream.lost
        if proc.poll() is not None:
            errf.seek(0)
            raise RuntimeError(f"ffmpeg exited with {proc.returncode}: {errf.read()[-500:]}")
        st = mf.proc_status(proc.pid)
        wall = probe.wall
        return {"name": name, "transport": transport, "cmd": shlex.join(cmd),
                "cpu_per_s": probe.cpu[proc.pid] / wall,
                "user_per_s": probe.split[proc.pid][0] / wall, "sys_per_s": probe.split[proc.pid][1] / wall,
                "hwm_mb": st["VmHWM"] / 1024, "client_fps": (a1 - a0) / wall, "mbit_out": (b1 - b0) * 8 / wall / 1e6,
                "packets_per_s": (p1 - p0) / wall, "lost": l1 - l0,
                "server_cpu_per_s": probe.cpu[server.proc.pid] / wall,
                "machine_busy": probe.machine_busy_cores, "other_busy": probe.other_busy_cores,
                "sink_err": sink.err, "requests": getattr(sink, "requests", None), "bad": sink.stream.bad}
    finally:
        mf.stop(proc)
        sink.close()
        errf.seek(0)
        tail = errf.read().strip()
        errf.close()
        if tail:
            log(f"  ffmpeg stderr: {tail[-300:]}")
        # (one upstream session per relay, by construction; checked here all the same)
        n_up = len(server.plays_of("c1", since))
        if n_up != 1:
            log(f"  the ffmpeg relay opened {n_up} upstream sessions")


# ----------------------------------------------------------------------------------------------
# Report


def report(args, info, clip, refs, cams):
    L = []
    add = L.append
    add("# RTSP re-serving fan-out: `rtsp://host:port/{id}`, the camera's own packets (`benches/rtsp_fanout.py`)")
    add("")
    add("Written by `" + shlex.join(["python3", "benches/rtsp_fanout.py"] + args.argv)
        + "`; see the script's docstring for the method.")
    add("")
    add(f"- date: {info['date']}; CPU: {info['cpu']}, nproc = {info['nproc']}; **the machine is shared and noisy** "
        "(other sessions' builds and tests, CI): \"others busy\" is the CPU the rest of the machine used during each "
        "window; compare camhub with the ffmpeg reference measured in the same run, not with other runs")
    add(f"- camhub: {info['camhub']}, release build `{args.binary}` (built {info['built']})")
    add(f"- {info['ffmpeg']}")
    add(f"- Camera: {clip['width']}x{clip['height']} {clip['codec_name']} ({clip.get('profile', '?')}), {FPS} fps, "
        f"{int(clip.get('bit_rate', 0)) / 1e6:.1f} Mbit/s, GOP {GOP_S:g} s, no B-frames; served over RTSP (TCP) by "
        "GStreamer's rtsp-server from a file, no re-encoding (its CPU is in the tables, counted for nobody).")
    add(f"- Clients: light clients in child processes ({PER_PROC} connections each, a selectors loop): OPTIONS, "
        "DESCRIBE, SETUP, PLAY by hand, then the `$` frames (TCP) or datagrams (UDP, each client its own port "
        "pair) read and counted (RTP packets, bytes, lost sequence numbers, access units = marker bits); never "
        f"decoded. {args.warmup:g} s warm-up, {args.duration:g} s measured, one camhub process per phase.")
    add("- Reference: one `ffmpeg -c copy` relay serving one client: it reads the camera over RTSP/TCP and pushes "
        "the packets as RTSP over TCP interleaved (`-f rtsp`, to a minimal RECORD listener of the script) — the same "
        "work and wire format as one camhub TCP client; for UDP, `-f rtp` to a UDP port. ffmpeg cannot serve RTSP "
        "to connecting players, so N clients take N relays (and N upstream sessions): the \"N ffmpeg relays\" "
        "figures are N × the measured one.")
    add("")
    ref = {r["transport"]: r for r in refs}
    add("| phase | CPU-s/s | user / sys | peak RSS MB | µs CPU per client-frame | client fps median (min) | "
        "clients at ≥ 95 % of 25 fps | resyncs | Mbit/s out | decode CPU-s/s | upstream sessions | "
        "N ffmpeg relays, CPU-s/s | camhub ÷ N relays | clients' CPU-s/s | RTSP source | others busy |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in refs:
        add(f"| {r['name']} | {r['cpu_per_s']:.4f} | {r['user_per_s']:.4f} / {r['sys_per_s']:.4f} | {r['hwm_mb']:.1f} | "
            f"{r['cpu_per_s'] / max(1e-9, r['client_fps']) * 1e6:.0f} | {r['client_fps']:.2f} | – | – | "
            f"{r['mbit_out']:.1f} | – | 1 | {r['cpu_per_s']:.4f} | 1.00 | – | {r['server_cpu_per_s']:.3f} | "
            f"{r['other_busy']:.2f} |")
    for r in cams:
        rf = ref.get(r["transport"])
        nrel = rf["cpu_per_s"] * r["n"] if rf else None
        ratio = f"{nrel:.4f} | {r['cpu_per_s'] / nrel:.2f}" if nrel else "– | –"
        add(f"| {r['name']} | {r['cpu_per_s']:.4f} | {r['user_per_s']:.4f} / {r['sys_per_s']:.4f} | {r['hwm_mb']:.1f} | "
            f"{r['us_per_client_frame']:.0f} | {r['client_fps_median']:.2f} ({r['client_fps_min']:.2f}) | "
            f"{r['clients_full_rate']} of {r['n']} | {r['resyncs']:.0f} | {r['mbit_out']:.1f} | {r['decode_per_s']:.3f} | "
            f"{r['upstream_sessions']} | {ratio} | {r['client_cpu_per_s']:.2f} | {r['server_cpu_per_s']:.3f} | "
            f"{r['other_busy']:.2f} |")
    add("")
    add("\"N ffmpeg relays\": N × the one-relay reference of the same transport (what serving the N clients with "
        "one ffmpeg relay each would cost, N camera sessions); \"camhub ÷ N relays\": camhub's CPU-s/s over that. "
        "CPU comes from /proc in clock ticks (10 ms), so a figure below ~0.001 CPU-s/s is within its resolution. "
        "\"Mbit/s out\" is camhub's "
        "`camhub_rtsp_bytes_out_total` (RTP + RTCP, with the 4-byte interleaving headers on TCP), for the "
        "reference the bytes its sink read. \"resyncs\" is `camhub_keyframe_resyncs_total` over the window "
        "(a client 2 s behind moved to the newest keyframe).")
    add("")
    for rf in refs:
        add(f"Reference command ({rf['transport'].upper()}): `{rf['cmd']}`.")
    add("")
    add("### Per phase: client side, start-up, log")
    add("")
    add(f"Time to first frame: connect → OPTIONS … PLAY → the first complete access unit. \"cold\" is the phase's first "
        f"client, the camera idle (camhub connects to the camera for it); \"new client\" is {args.ttff_samples} "
        f"clients one after another while the camera streams, after the phase's clients left (GOP {GOP_S:g} s: a "
        "server without the cached GOP makes a new client wait for the next keyframe, 1 s on average).")
    add("")
    add("| phase | camera fps in (window) | cold first frame ms | new client first frame ms, median (max) | "
        "longest gap between a client's frames s | "
        "RTP lost (window) | client errors | camhub WARN/ERROR lines | `rtsp: playing` lines | rtsp gauge at window end | "
        "decode CPU-s, whole phase | resyncs, whole phase | camera reconnects |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in cams:
        t = r["ttff_ms"]
        add(f"| {r['name']} | {r['fps_in']:.2f} | {r['cold_first_s'] * 1000:.0f} | {statistics.median(t):.1f} ({max(t):.1f}) | "
            f"{r['clients_max_gap_s']:.2f} | {r['lost']} ({r['loss_pct']:.3f} %) | {len(r['client_errors'])} | "
            f"{r['log_problems']} | {r['log_playing']} | {r['rtsp_gauge']:.0f} | {r['decode_total']:.3f} | "
            f"{r['resyncs_phase']:.0f} | {r['reconnects']:.0f} |")
    add("")
    add("\"camera fps in\" is `camhub_frames_in_total` over the window: a client rate a little under 25 with the "
        "camera's own rate as low is the source's pacing and the window's edges, not frames camhub lost.")
    add("")
    add("### Summary")
    add("")
    big = max((r for r in cams if r["transport"] == "tcp"), key=lambda r: r["n"], default=None)
    if big:
        rf = ref.get("tcp")
        add(f"- {big['n']} TCP clients on this 2-core machine: {big['clients_full_rate']} of {big['n']} at ≥ 95 % of "
            f"25 fps (median {big['client_fps_median']:.2f}, min {big['client_fps_min']:.2f}); camhub "
            f"{big['cpu_per_s']:.4f} CPU-s/s, {big['us_per_client_frame']:.0f} µs per client-frame"
            + (f", against {big['n']} ffmpeg relays ≈ {rf['cpu_per_s'] * big['n']:.3f} CPU-s/s "
               f"({big['cpu_per_s'] / (rf['cpu_per_s'] * big['n']):.2f}×) and {big['n']} camera sessions"
               if rf else "") + ".")
    one = next((r for r in cams if r["n"] == 1 and r["transport"] == "tcp"), None)
    if one and ref.get("tcp"):
        add(f"- 1 client: camhub {one['cpu_per_s']:.4f} CPU-s/s (the camera's connection and its packets included) "
            f"vs the ffmpeg relay {ref['tcp']['cpu_per_s']:.4f} (both a few dozen 10 ms clock ticks over the window: "
            "their ratio is ± ~10 %).")
    dec = max(r["decode_total"] for r in cams)
    add(f"- nothing decoded for RTSP clients: `camhub_decode_seconds_total` at most {dec:.4f} s over a whole phase: "
        f"**{'MET' if dec == 0 else 'NOT MET'}**")
    ups = [r["upstream_sessions"] for r in cams]
    add(f"- one camera session per phase, whatever the client count: upstream sessions per phase {ups}: "
        f"**{'MET' if all(u == 1 for u in ups) else 'NOT MET'}**")
    res = sum(r["resyncs_phase"] for r in cams)
    add(f"- resyncs over all phases: {res:.0f}; client errors: {sum(len(r['client_errors']) for r in cams)}; "
        f"camhub WARN/ERROR lines: {sum(r['log_problems'] for r in cams)}")
    errs = sorted({e for r in cams for e in r["client_errors"]})
    if errs:
        add(f"- client errors seen: {'; '.join(errs[:5])}")
    for r in cams:
        for ex in r["log_examples"]:
            add(f"- camhub log ({r['name']}): `{ex[:220]}`")
    add("- MediaMTX (rtsp-simple-server): no published CPU figure for RTSP relaying per reader found. The only "
        "reader-count figure is a user's WebRTC report, \"3 cores ... CCU: 150 => CPU 99%\" (MediaMTX 1.14, "
        "https://github.com/bluenviron/mediamtx/issues/4963), not RTSP; "
        "https://github.com/bluenviron/mediamtx/issues/2914 says (from pprof, no number) that writing RTP one "
        "packet per call is a significant part of its CPU. The `ffmpeg -c copy` rows are the in-run reference.")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="/work/target-bench/release/camhub")
    ap.add_argument("--clients", default="1,10,100", help="TCP phases: clients per phase")
    ap.add_argument("--udp-clients", type=int, default=10, dest="udp_clients", help="the UDP phase's clients (0: none)")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=6.0)
    ap.add_argument("--ttff-samples", type=int, default=5, dest="ttff_samples")
    ap.add_argument("--commit", help="the binary was built from a clean export of this commit")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--transport", default="tcp", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--t1", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--t-stop", type=float, dest="t_stop", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        return client_main(args)
    args.argv = sys.argv[1:]
    args.binary = os.path.abspath(args.binary)
    counts = [int(x) for x in args.clients.split(",") if x]
    mf.raise_fd_limit()
    # Every phase plays the clip from its start (a session per PLAY): long enough for the longest.
    # (With the defaults, mse_fanout.py's clip: made once for both.)
    per_phase = args.warmup + args.duration + args.ttff_samples * 0.6 + 18
    clip = mse.ensure_clip(max(77, int(per_phase) + 30))
    info = mf.versions(args.binary, args.commit)
    workdir = tempfile.mkdtemp(prefix="camhub-rtsp-")
    log(f"logs in {workdir}")
    server = mc.Server(clip["path"], workdir, 1)
    cams, refs = [], []
    try:
        for transport in ["tcp"] + (["udp"] if args.udp_clients else []):
            log(f"reference: ffmpeg -c copy relay, 1 client, {transport}")
            r = run_ffmpeg(args, server, transport)
            log(f"  {r['cpu_per_s']:.3f} CPU-s/s, the client got {r['client_fps']:.2f} fps, {r['mbit_out']:.1f} Mbit/s; "
                f"others busy {r['other_busy']:.2f}")
            refs.append(r)
        phases = [(n, "tcp") for n in counts] + ([(args.udp_clients, "udp")] if args.udp_clients else [])
        for n, transport in phases:
            log(f"camhub, {n} clients, {transport}")
            r = run_camhub(args, server, n, transport, workdir)
            log(f"  {r['cpu_per_s']:.3f} CPU-s/s, {r['us_per_client_frame']:.0f} µs/client-frame, clients "
                f"{r['client_fps_median']:.2f} fps (min {r['client_fps_min']:.2f}), resyncs {r['resyncs']:.0f}, "
                f"lost {r['lost']}, errors {len(r['client_errors'])}, upstream {r['upstream_sessions']}, "
                f"log WARN/ERROR {r['log_problems']}; others busy {r['other_busy']:.2f}")
            cams.append(r)
    finally:
        server.stop()
    text = report(args, info, clip, refs, cams)
    print(text)
    with open(os.path.join(workdir, "raw.json"), "w") as f:
        json.dump({"refs": refs, "camhub": cams, "info": info, "clip": clip}, f, indent=1, default=str)
    if args.results:
        mf.write_section(args.results, text, SECTION_BEGIN, SECTION_END)
        log(f"wrote the rtsp_fanout section of {args.results}")


if __name__ == "__main__":
    main()
