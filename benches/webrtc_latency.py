#!/usr/bin/env python3
"""Glass-to-glass latency and CPU per viewer of camhub's browser players: WebRTC (WHEP), MSE and MJPEG,
in one run, on one live source, in headless Chromium on camhub's own camera page.

One run:
  1. a live source: GStreamer's rtsp-server (this script's `--serve` mode, run by /usr/bin/python3 for
     python3-gi) whose media is `appsrc` fed by Python: a numpy I420 picture (1280x720 at 25 fps by
     default, a scrolling texture) into which, at the moment the frame is made, the wall-clock time is
     drawn as a machine-readable code: a row of 48 blocks (40 bits of Unix time in ms + a CRC-8) and,
     under it, the same row inverted (every bit is read as "upper block brighter than lower block" and
     must differ clearly, or the picture is not taken). Then
       x264enc tune=zerolatency speed-preset=ultrafast key-int-max=50 bframes=0 bitrate=4000 ! rtph264pay
     The source logs, per frame, how long it took from making the frame to leaving x264 and to leaving
     the payloader (its own encode + packetize delay).
  2. one camhub process for the whole run (`--binary`), the source as an RTSP camera with
     `always_on = true` (one camera session all run long), WebRTC on `webrtc_listen = "127.0.0.1:0"`,
     and `rtsp_listen = "127.0.0.1:0"` for the native reference below (nobody uses it in the
     measured windows).
  3. native references (no browser): a GStreamer client (`rtspsrc latency=0 ! rtph264depay ! avdec_h264 !
     appsink sync=false`, `--probe-client` mode) reading the code from each decoded picture, (a) straight
     from the source, (b) through camhub's RTSP re-serving: the floor a player could reach, and what
     camhub's relay adds to it.
  4. camhub idle (camera connected, no viewer): its CPU, the floor of every phase.
  5. for each player (webrtc, mse, mjpeg, in turn; `--rounds` repeats the cycle in a rotated order):
     one headless Chromium (/usr/lib/chromium/chromium --headless=new, one process for the whole run)
     opens `/cameras/cam?player=KIND` in a new target (its own window, so every target is visible and
     none is throttled as a background tab). A sampler injected with Runtime.evaluate draws, on every
     requestAnimationFrame, the code strip of the visible picture (the `<video id=video>` for WebRTC
     and MSE, the `<img id=stream>` for MJPEG) into a 96x5 canvas (each block lands on 2x2 canvas
     pixels away from its edges), decodes it, and when the code changes records
     `Date.now() - code_ms` (same machine, same clock; a rAF-time sample, so it includes up to one
     display frame of 16.7 ms of sampling delay, the same for every player). The samples come back over
     the DevTools protocol. 1 viewer: latency (>= --min-samples frames) and camhub's CPU over the same
     window; then 3 more targets of the same player (4 viewers), CPU again (the sampler keeps running in
     the first target only, so its latency at 4 viewers is reported too). CPU per viewer =
     (CPU@4 - CPU@1) / 3. All targets closed before the next player.
  CPU = utime+stime of camhub (all threads) from /proc/PID/stat over the window / the window's length.
  Also per window: camhub_decode_seconds_total and camhub_encode_seconds_total (WebRTC and MSE must not
  decode; MJPEG decodes and encodes JPEG once per frame for any number of viewers of one size),
  camhub_packet_viewers{kind=...}, camhub_webrtc_bytes_out_total, Chromium's CPU (all its processes) and
  the rest of the machine's ("others busy": the machine is shared, 2 cores, other sessions' builds run).
  Stalls: the longest wait for a new picture in the page, next to the longest gap between two animation
  frames (a page that did not draw at all: Chromium starved of CPU, not a stream that stopped), WebRTC's
  own freeze count (getStats, through a hook on RTCPeerConnection installed before the page's scripts),
  the MSE player's distance from the live edge, camhub's WARN/ERROR and WebRTC log lines.
Prints Markdown and writes (or replaces) its section at the end of benches/RESULTS.md (--results '' not to);
raw data, camhub's, the source's and Chromium's logs stay in /tmp/camhub-webrtc-lat-*/; `--report-from
/tmp/camhub-webrtc-lat-*/raw.json` writes the report of that run again without measuring.

Needs: /usr/bin/python3 with python3-gi, python3-numpy, GStreamer 1.22+ with gst-rtsp-server, x264enc,
avdec_h264 (gst-libav); /usr/lib/chromium/chromium. Build camhub (a private target dir, from a clean export
of the commit, not the work tree):
  rm -rf /tmp/bench-src2 && mkdir /tmp/bench-src2 && git archive HEAD | tar -x -C /tmp/bench-src2 &&
  cd /tmp/bench-src2 && CARGO_TARGET_DIR=/work/target-bench cargo build --release -p camhub
then:  python3 benches/webrtc_latency.py --binary /work/target-bench/release/camhub [--duration 20] [--rounds 1]
"""

import argparse
import base64
import collections
import json
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mjpeg_fanout as mf  # noqa: E402  (/proc CPU probes, metrics, versions, helpers)

log = mf.log
CAM = "cam"
GST_PYTHON = "/usr/bin/python3"
CHROMIUM = "/usr/lib/chromium/chromium"
MARKER = "CAMHUB_BENCH_CHROMIUM"
PLAYERS = ("webrtc", "mse", "mjpeg")
SECTION_BEGIN = "<!-- webrtc_latency.py: begin (rewritten by benches/webrtc_latency.py) -->"
SECTION_END = "<!-- webrtc_latency.py: end -->"

# ----------------------------------------------------------------------------------------------
# The time code: 48 blocks = 40 bits of Unix ms (mod 2^40) + CRC-8 (poly 0x07), MSB first; row 1 the
# bits (1 = white), row 2 the same bits inverted. Geometry in source pixels, for a W x H picture.

BITS = 48
TIME_BITS = 40


def geometry(w, h):
    bw = (w // 53) & ~1                   # block width: 24 at 1280, 36 at 1920
    bh = bw * 4 // 3                      # block height: 32 / 48, even multiple of 4
    bh -= bh % 4
    x0 = (w - BITS * bw) // 2
    y0 = bh // 2                          # row 1 [y0, y0+bh), gap [y0+bh, y0+1.5bh), row 2 [y0+1.5bh, y0+2.5bh)
    return {"bw": bw, "bh": bh, "x0": x0, "y0": y0, "w": w, "h": h,
            "strip_w": BITS * bw, "strip_h": bh * 5 // 2, "band": y0 + bh * 3}


def crc8(data):
    c = 0
    for b in data:
        c ^= b
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def code_bits(ms):
    t = ms & ((1 << TIME_BITS) - 1)
    body = t.to_bytes(5, "big")
    word = (t << 8) | crc8(body)
    return [(word >> (BITS - 1 - k)) & 1 for k in range(BITS)]


def decode_bits(bits, now_ms):
    """Unix ms of a code (the candidate nearest to now), or None when the CRC fails."""
    word = 0
    for b in bits:
        word = (word << 1) | b
    t, c = word >> 8, word & 0xFF
    if crc8(t.to_bytes(5, "big")) != c:
        return None
    period = 1 << TIME_BITS
    full = t + (now_ms // period) * period
    if full > now_ms + period // 2:
        full -= period
    return full


# ----------------------------------------------------------------------------------------------
# The live source (`--serve`, run by /usr/bin/python3 for python3-gi and numpy)


def serve(args):
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
    import numpy as np

    Gst.init(None)
    w, h, fps = args.width, args.height, args.fps
    g = geometry(w, h)
    missing = [e for e in ("appsrc", "x264enc", "rtph264pay") if Gst.ElementFactory.find(e) is None]
    if missing:
        print("missing GStreamer elements: " + ", ".join(missing), file=sys.stderr, flush=True)
        sys.exit(3)

    # The picture: a texture scrolled 4 px a frame (something for the encoder to do), a flat grey band
    # at the top holding the code.
    rng = np.random.default_rng(1)
    tw = w + 512
    yy, xx = np.mgrid[0:h, 0:tw].astype(np.float32)
    tex = 128 + 50 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    tex += np.where(((xx // 32) + (yy // 32)) % 2 == 0, 25, -25)
    tex += rng.normal(0, 5, size=tex.shape)
    tex = np.clip(tex, 16, 235).astype(np.uint8)
    uv = bytes([128]) * (w * h // 2)
    frame = np.empty((h, w), np.uint8)
    block_x = [g["x0"] + k * g["bw"] for k in range(BITS)]
    y1, y2 = g["y0"], g["y0"] + g["bh"] * 3 // 2

    medias = []            # [{"src": appsrc, "pts": {pts: code_ms}}]
    lock = threading.Lock()
    out = open(args.frames_log, "w", buffering=1)

    def on_configure(_factory, media):
        el = media.get_element()
        # x264enc shifts timestamps (by 1000 h), so frames are matched by order through the encoder
        # (one picture in, one out, no B-frames), then by PTS through the payloader.
        st = {"src": el.get_by_name_recurse_up("src"), "fifo": collections.deque(maxlen=500), "enc": {}}
        enc = el.get_by_name_recurse_up("enc")
        pay = el.get_by_name_recurse_up("pay0")

        def on_src(_pad, info):
            st["fifo"].append(info.get_buffer().offset)   # offset = the code's ms, set when the frame was made
            return Gst.PadProbeReturn.OK

        def on_enc(_pad, info):
            buf = info.get_buffer()
            if st["fifo"]:
                code = st["fifo"].popleft()
                st["enc"][buf.pts] = (code, time.time() * 1000 - code)
            return Gst.PadProbeReturn.OK

        def on_pay_buffer(buf):
            hdr = buf.extract_dup(0, 2)
            if len(hdr) == 2 and hdr[1] & 0x80:   # RTP marker: the last packet of the frame
                e = st["enc"].pop(buf.pts, None)
                if e is not None:
                    code, enc_ms = e
                    out.write(f"{code} {enc_ms:.2f} {time.time() * 1000 - code:.2f}\n")
            if len(st["enc"]) > 500:
                st["enc"].clear()

        def on_pay(_pad, info):
            if info.type & Gst.PadProbeType.BUFFER_LIST:
                lst = info.get_buffer_list()
                for i in range(lst.length()):
                    on_pay_buffer(lst.get(i))
            else:
                on_pay_buffer(info.get_buffer())
            return Gst.PadProbeReturn.OK

        st["src"].get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_src)
        enc.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_enc)
        pay.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, on_pay)
        with lock:
            medias.append(st)

        def on_unprepared(_m):
            with lock:
                if st in medias:
                    medias.remove(st)
        media.connect("unprepared", on_unprepared)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service("0")
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( appsrc name=src is-live=true do-timestamp=true format=time max-bytes=0 "
        f"caps=video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 "
        f"! x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max={2 * fps} bframes=0 "
        f"bitrate={args.kbps} "
        f"! rtph264pay name=pay0 pt=96 config-interval=-1 )")
    factory.set_shared(True)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)
    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory("/live", factory)
    if server.attach(None) == 0:
        print("cannot listen", file=sys.stderr, flush=True)
        sys.exit(2)

    stop = threading.Event()

    def feeder():
        period = 1.0 / fps
        t_next = time.monotonic()
        n = 0
        while not stop.is_set():
            t_next += period
            code_ms = int(time.time() * 1000)       # the moment this frame is made
            off = (n * 4) % 512
            frame[:] = tex[:, off:off + w]
            frame[:g["band"], :] = 128
            for k, b in enumerate(code_bits(code_ms)):
                x = block_x[k]
                frame[y1:y1 + g["bh"], x:x + g["bw"]] = 235 if b else 16
                frame[y2:y2 + g["bh"], x:x + g["bw"]] = 16 if b else 235
            data = frame.tobytes() + uv
            with lock:
                targets = list(medias)
            for st in targets:
                buf = Gst.Buffer.new_wrapped(data)
                buf.offset = code_ms
                st["src"].emit("push-buffer", buf)
            n += 1
            d = t_next - time.monotonic()
            if d > 0:
                time.sleep(d)
            elif d < -period:
                t_next = time.monotonic()           # fell behind (a busy machine): do not burst

    th = threading.Thread(target=feeder, daemon=True)
    th.start()
    loop = GLib.MainLoop()

    def quit_():
        stop.set()
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, quit_)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, quit_)
    print("READY", server.get_bound_port(), flush=True)
    loop.run()
    out.close()


# ----------------------------------------------------------------------------------------------
# The native reference client (`--probe-client`, /usr/bin/python3): rtspsrc -> avdec_h264 -> appsink,
# the code read from each decoded picture.


def probe_client(args):
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst
    import numpy as np

    Gst.init(None)
    g = None
    res = {"lat": [], "frames": 0, "bad": 0, "first_ms": None, "error": None}
    t_start = time.time()
    pipe = Gst.parse_launch(
        f"rtspsrc location={args.url} latency=0 protocols=tcp ! rtph264depay ! h264parse ! "
        f"avdec_h264 max-threads=1 ! video/x-raw,format=I420 ! "
        f"appsink name=sink sync=false max-buffers=2 drop=true emit-signals=true")
    sink = pipe.get_by_name("sink")
    last = [None]

    def on_sample(s):
        nonlocal g
        now = time.time() * 1000
        sample = s.emit("pull-sample")
        buf = sample.get_buffer()
        caps = sample.get_caps().get_structure(0)
        w, h = caps.get_value("width"), caps.get_value("height")
        if g is None:
            g = geometry(w, h)
        ok, mi = buf.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.OK
        try:
            y = np.frombuffer(mi.data, np.uint8, count=w * g["band"]).reshape(g["band"], w)
            bits = []
            good = True
            cy1 = g["y0"] + g["bh"] // 2
            cy2 = g["y0"] + g["bh"] * 2
            for k in range(BITS):
                cx = g["x0"] + k * g["bw"] + g["bw"] // 2
                a = int(y[cy1 - 2:cy1 + 2, cx - 2:cx + 2].mean())
                b = int(y[cy2 - 2:cy2 + 2, cx - 2:cx + 2].mean())
                if abs(a - b) < 60:
                    good = False
                    break
                bits.append(1 if a > b else 0)
        finally:
            buf.unmap(mi)
        res["frames"] += 1
        code = decode_bits(bits, int(now)) if good else None
        if code is None:
            res["bad"] += 1
        elif code != last[0]:
            # The first picture is the camera's cached keyframe and a burst of its GOP (camhub's re-serve):
            # samples count from `warmup` seconds after it.
            if res["first_ms"] is None:
                res["first_ms"] = now - t_start * 1000
            elif now - t_start * 1000 - res["first_ms"] > args.warmup * 1000:
                res["lat"].append(now - code)
            last[0] = code
        return Gst.FlowReturn.OK

    sink.connect("new-sample", on_sample)
    loop = GLib.MainLoop()
    bus = pipe.get_bus()
    bus.add_signal_watch()

    def on_msg(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            res["error"] = f"{err.message} ({dbg})"
            loop.quit()
    bus.connect("message", on_msg)
    def tick():
        # run until `seconds` after the warm-up that follows the first picture (or give up after 60 s)
        t = time.time() * 1000 - t_start * 1000
        if (res["first_ms"] is not None and t > res["first_ms"] + (args.warmup + args.seconds) * 1000) or t > 60000 + \
                (args.warmup + args.seconds) * 1000:
            loop.quit()
            return False
        return True
    GLib.timeout_add(100, tick)
    pipe.set_state(Gst.State.PLAYING)
    loop.run()
    pipe.set_state(Gst.State.NULL)
    print(json.dumps(res), flush=True)


# ----------------------------------------------------------------------------------------------
# DevTools protocol over a minimal WebSocket client (RFC 6455: text frames, masking, ping, close)


class Cdp:
    def __init__(self, ws_url, timeout=60):
        u = urllib.parse.urlparse(ws_url)
        self.s = socket.create_connection((u.hostname, u.port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                       .encode())
        self.f = self.s.makefile("rb", buffering=1 << 16)
        status = self.f.readline()
        if b" 101 " not in status:
            raise RuntimeError(f"DevTools WebSocket upgrade failed: {status!r}")
        while self.f.readline() not in (b"\r\n", b""):
            pass
        self.next_id = 0
        self.events = []

    def _send_frame(self, op, payload):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x80 | op])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            hdr += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        m = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big") if n else b""
        self.s.sendall(hdr + mask + masked)

    def _read(self, n):
        d = self.f.read(n)
        if len(d) != n:
            raise RuntimeError("DevTools WebSocket closed")
        return d

    def recv(self):
        parts = []
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            if op == 9:
                self._send_frame(10, payload)
                continue
            if op == 8:
                raise RuntimeError("DevTools WebSocket closed by Chromium")
            if op in (0, 1, 2):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def call(self, method, params=None, session=None):
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._send_frame(1, json.dumps(msg).encode())
        while True:
            reply = json.loads(self.recv())
            if reply.get("id") != mid:
                if "method" in reply and len(self.events) < 2000:
                    self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"DevTools {method}: {reply['error']}")
            return reply.get("result", {})

    def eval(self, session, js, await_promise=True):
        r = self.call("Runtime.evaluate", {"expression": js, "returnByValue": True,
                                           "awaitPromise": await_promise}, session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"JavaScript threw: {json.dumps(r['exceptionDetails'])[:600]}")
        return r.get("result", {}).get("value")

    def close(self):
        try:
            self._send_frame(8, b"")
        except OSError:
            pass
        self.s.close()


# Every RTCPeerConnection the page makes, kept for getStats() (installed before the page's scripts).
PC_HOOK = r"""
(function () {
  const O = window.RTCPeerConnection;
  if (!O) return;
  window.__pcs = [];
  function P(...a) { const pc = new O(...a); window.__pcs.push(pc); return pc; }
  P.prototype = O.prototype;
  Object.setPrototypeOf(P, O);
  window.RTCPeerConnection = P;
})();
"""

# The sampler: on every animation frame, the code strip of the visible picture into a 96x5 canvas.
SAMPLER = r"""
(function (G) {
  if (window.__lat) return 'already';
  const cv = document.createElement('canvas');
  cv.width = 2 * G.bits; cv.height = 5;
  const ctx = cv.getContext('2d', { willReadFrequently: true });
  const S = window.__lat = { samples: [], rafs: 0, noPicture: 0, bad: 0, crc: 0, back: 0, codes: 0,
                             skipped: 0, last: null, on: true, t0: Date.now(), firstCode: null, lastCode: null,
                             rafAt: 0, rafGap: 0 };
  function crc8(bytes) {
    let c = 0;
    for (const b of bytes) {
      c ^= b;
      for (let i = 0; i < 8; i++) c = (c & 0x80) ? ((c << 1) ^ 0x07) & 0xFF : (c << 1) & 0xFF;
    }
    return c;
  }
  function picture() {
    const kind = window.camhub && window.camhub.cameraPage ? window.camhub.cameraPage().player : null;
    if (kind === 'mjpeg') {
      const i = document.getElementById('stream');
      return i.naturalWidth ? [i, i.naturalWidth, i.naturalHeight] : null;
    }
    const v = document.getElementById('video');
    return v.videoWidth && v.readyState >= 2 ? [v, v.videoWidth, v.videoHeight] : null;
  }
  function tick() {
    if (!S.on) return;
    requestAnimationFrame(tick);
    S.rafs++;
    const now = Date.now();
    if (S.rafAt) S.rafGap = Math.max(S.rafGap, now - S.rafAt);   // the page itself not drawing
    S.rafAt = now;
    const p = picture();
    if (!p) { S.noPicture++; return; }
    const k = p[1] / G.w;                    // the picture may not be the source's size
    try {
      ctx.drawImage(p[0], G.x0 * k, G.y0 * k, G.strip_w * k, G.strip_h * k, 0, 0, cv.width, cv.height);
    } catch (e) { S.noPicture++; return; }
    const d = ctx.getImageData(0, 0, cv.width, cv.height).data;
    const px = function (x, y) { return d[(y * cv.width + x) * 4 + 1]; };
    const bytes = [0, 0, 0, 0, 0, 0];
    for (let b = 0; b < G.bits; b++) {
      const x = 2 * b;
      const hi = px(x, 0) + px(x + 1, 0) + px(x, 1) + px(x + 1, 1);
      const lo = px(x, 3) + px(x + 1, 3) + px(x, 4) + px(x + 1, 4);
      if (Math.abs(hi - lo) < 4 * 60) { S.bad++; return; }
      if (hi > lo) bytes[b >> 3] |= 0x80 >> (b & 7);
    }
    if (crc8(bytes.slice(0, 5)) !== bytes[5]) { S.crc++; return; }
    let t = 0;
    for (let i = 0; i < 5; i++) t = t * 256 + bytes[i];
    const period = Math.pow(2, 40);
    let full = t + Math.floor(now / period) * period;
    if (full > now + period / 2) full -= period;
    if (S.last === null) { S.last = full; S.firstCode = full; return; }
    if (full === S.last) return;
    if (full < S.last) { S.back++; S.last = full; return; }
    const step = full - S.last;
    if (step > 60) S.skipped += Math.round(step / G.frame_ms) - 1;
    S.codes++;
    S.samples.push([now, now - full]);
    S.last = full;
    S.lastCode = full;
  }
  requestAnimationFrame(tick);
  window.__latTake = function () {
    const out = { samples: S.samples, rafs: S.rafs, noPicture: S.noPicture, bad: S.bad, crc: S.crc,
                  back: S.back, codes: S.codes, skipped: S.skipped, rafGap: S.rafGap, t: Date.now() };
    S.samples = []; S.rafs = 0; S.noPicture = 0; S.bad = 0; S.crc = 0; S.back = 0; S.codes = 0; S.skipped = 0;
    S.rafGap = 0;
    return out;
  };
  return 'ok';
})(%s)
"""

# What the page plays, whether the picture is up, and the player's own statistics.
STATE_JS = r"""
(async function () {
  const p = window.camhub && window.camhub.cameraPage ? window.camhub.cameraPage() : null;
  const v = document.getElementById('video'), i = document.getElementById('stream');
  const out = { player: p ? p.player : null, visibility: document.visibilityState,
                video: [v.videoWidth, v.videoHeight, v.readyState, v.paused],
                img: [i.naturalWidth, i.naturalHeight], webrtc: p ? p.webrtc : null, mse: p ? p.mse : null,
                webrtcRefused: p ? p.webrtcRefused : null, playerWhy: p ? p.playerWhy : null,
                message: (document.getElementById('message') || {}).textContent || '' };
  const pcs = (window.__pcs || []).filter(function (pc) { return pc.connectionState !== 'closed'; });
  if (pcs.length) {
    const pc = pcs[pcs.length - 1];
    out.pc = { state: pc.connectionState, ice: pc.iceConnectionState };
    try {
      const st = await pc.getStats();
      st.forEach(function (r) {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          out.rtp = { framesDecoded: r.framesDecoded, framesDropped: r.framesDropped,
                      framesReceived: r.framesReceived, packetsLost: r.packetsLost,
                      jitterBufferDelay: r.jitterBufferDelay, jitterBufferEmittedCount: r.jitterBufferEmittedCount,
                      jitterBufferTargetDelay: r.jitterBufferTargetDelay,
                      jitterBufferMinimumDelay: r.jitterBufferMinimumDelay,
                      totalDecodeTime: r.totalDecodeTime, totalProcessingDelay: r.totalProcessingDelay,
                      freezeCount: r.freezeCount, totalFreezesDuration: r.totalFreezesDuration,
                      pliCount: r.pliCount, nackCount: r.nackCount, decoderImplementation: r.decoderImplementation,
                      framesPerSecond: r.framesPerSecond, frameWidth: r.frameWidth };
        }
        if (r.type === 'candidate-pair' && r.nominated) out.rtt = r.currentRoundTripTime;
      });
    } catch (e) { out.statsError = String(e); }
  }
  if (v.getVideoPlaybackQuality) {
    const q = v.getVideoPlaybackQuality();
    out.quality = { total: q.totalVideoFrames, dropped: q.droppedVideoFrames };
  }
  return out;
})()
"""


# ----------------------------------------------------------------------------------------------
# Headless Chromium


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def ppid_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def environ_has(pid, needle):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return needle in f.read()
    except OSError:
        return False


class Browser:
    """One headless Chromium; targets opened and closed over one browser-level DevTools connection."""

    def __init__(self, workdir):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        self.needle = f"{MARKER}={self.profile}".encode()
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--mute-audio", "--window-size=1280,800",
                 "--autoplay-policy=no-user-gesture-required", "--disable-background-timer-throttling",
                 "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
                 "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={self.profile}",
                 "about:blank"]
        self.errf = open(os.path.join(workdir, "chromium.log"), "w")
        self.proc = subprocess.Popen([CHROMIUM] + flags, stdin=subprocess.DEVNULL, stdout=self.errf,
                                     stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **{MARKER: self.profile}))
        self.flags = flags
        self.cdp = None
        self.tabs = []
        try:
            port_file = os.path.join(self.profile, "DevToolsActivePort")
            # A loaded 2-core machine has taken Chromium 40 s to start.
            deadline = time.monotonic() + 120
            port = None
            while port is None:
                try:
                    with open(port_file) as f:
                        port = int(f.readline().strip())
                except (OSError, ValueError):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"Chromium did not start; see {self.errf.name}")
                    time.sleep(0.1)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=30) as r:
                ver = json.loads(r.read())
            self.version = ver.get("Browser", "?")
            self.cdp = Cdp(ver["webSocketDebuggerUrl"])
        except BaseException:
            self.stop()
            raise

    def open(self, url):
        tid = self.cdp.call("Target.createTarget", {"url": "about:blank", "newWindow": True})["targetId"]
        sid = self.cdp.call("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        self.cdp.call("Page.enable", {}, sid)
        self.cdp.call("Page.addScriptToEvaluateOnNewDocument", {"source": PC_HOOK}, sid)
        self.cdp.call("Page.navigate", {"url": url}, sid)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.cdp.eval(sid, "document.readyState") == "complete" and \
                        self.cdp.eval(sid, "location.href") != "about:blank":
                    break
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not load")
            time.sleep(0.1)
        tab = {"tid": tid, "sid": sid, "url": url}
        self.tabs.append(tab)
        return tab

    def close(self, tab):
        try:
            self.cdp.call("Target.closeTarget", {"targetId": tab["tid"]})
        except RuntimeError:
            pass
        self.tabs.remove(tab)

    def pids(self):
        """Chromium's processes: the browser's descendants and anything with the marker (crashpad)."""
        pids = all_pids()
        parents = {p: ppid_of(p) for p in pids}
        out = {self.proc.pid}
        grew = True
        while grew:
            grew = False
            for p, pp in parents.items():
                if pp in out and p not in out:
                    out.add(p)
                    grew = True
        for p in pids:
            if p not in out and environ_has(p, self.needle):
                out.add(p)
        return out

    def cpu(self):
        t = {}
        for p in self.pids():
            try:
                t[p] = mf.proc_cpu(p)
            except OSError:
                pass
        return t

    def stop(self):
        if self.cdp:
            try:
                self.cdp.call("Browser.close")
            except Exception:  # noqa: BLE001
                pass
        pids = self.pids()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        pids |= self.pids()
        for p in sorted(pids):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        self.errf.close()


def chromium_cpu_delta(c0, c1):
    return sum(c1[p] - c0[p] for p in c1 if p in c0)


# ----------------------------------------------------------------------------------------------
# camhub


def start_camhub(binary, workdir, url):
    proc, port, cfg, logpath = mf.start_camhub(
        binary, workdir, extra_config="always_on = true", url=url,
        server_extra='webrtc_listen = "127.0.0.1:0"\nrtsp_listen = "127.0.0.1:0"')
    ports = {
        "webrtc": mf.port_in_log(logpath, r"WebRTC on UDP 127\.0\.0\.1:(\d+)"),
        "rtsp": mf.port_in_log(logpath, r"RTSP server on rtsp://127\.0\.0\.1:(\d+)/"),
    }
    return proc, port, ports, cfg, logpath


def camera_status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/cameras/{CAM}", timeout=5) as r:
        return json.loads(r.read())


def metric_sum(m, name, **labels):
    total = 0.0
    for k, v in m.items():
        if k == name or k.startswith(name + "{"):
            if all(f'{lk}="{lv}"' in k for lk, lv in labels.items()):
                if 'camera="' in k and f'camera="{CAM}"' not in k:
                    continue
                total += v
    return total


def log_problems(path, since_line=0):
    """camhub's WARN / ERROR lines and its WebRTC / WHEP lines (ANSI colours cut)."""
    out = []
    with open(path, errors="replace") as f:
        for i, line in enumerate(f):
            if i < since_line:
                continue
            line = re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip()
            if re.search(r"\b(WARN|ERROR)\b", line) or re.search(r"webrtc|whep|panick", line, re.I):
                out.append(line)
    return out


def log_lines(path):
    with open(path, errors="replace") as f:
        return sum(1 for _ in f)


def distinct(lines, n=8):
    seen, out = set(), []
    for line in lines:
        key = re.sub(r"\d+", "N", re.sub(r"^\S+\s+", "", line))
        if key not in seen:
            seen.add(key)
            out.append(line)
    return out[:n]


# ----------------------------------------------------------------------------------------------
# phases


class Source:
    def __init__(self, args, workdir):
        self.frames_log = os.path.join(workdir, "source-frames.log")
        self.errf = open(os.path.join(workdir, "source.log"), "w")
        self.proc = subprocess.Popen([GST_PYTHON, os.path.abspath(__file__), "--serve", "--width", str(args.width),
                                      "--height", str(args.height), "--fps", str(args.fps), "--kbps",
                                      str(args.kbps), "--frames-log", self.frames_log],
                                     stdout=subprocess.PIPE, stderr=self.errf, text=True)
        first = self.proc.stdout.readline().split()
        if not first or first[0] != "READY":
            self.proc.kill()
            raise RuntimeError(f"the source did not start; see {self.errf.name}")
        self.port = int(first[1])
        self.url = f"rtsp://127.0.0.1:{self.port}/live"

    def frames(self, t0_ms, t1_ms):
        """[(code ms, encode ms, sent ms)] of the frames made in [t0, t1)."""
        out = []
        try:
            with open(self.frames_log) as f:
                for line in f:
                    w = line.split()
                    if len(w) == 3 and t0_ms <= int(w[0]) < t1_ms:
                        out.append((int(w[0]), float(w[1]), float(w[2])))
        except OSError:
            pass
        return out

    def stop(self):
        mf.stop(self.proc)
        self.errf.close()


def run_probe_client(url, seconds, warmup=3.0):
    cmd = [GST_PYTHON, os.path.abspath(__file__), "--probe-client", "--url", url, "--seconds", str(seconds),
           "--warmup", str(warmup)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup + 120)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"lat": [], "error": (p.stderr or "no output").strip()[-400:]}


def wait_playing(browser, tab, kind, timeout=60.0):
    """Until the page plays `kind` with a picture; returns its state (or raises)."""
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        try:
            st = browser.cdp.eval(tab["sid"], STATE_JS)
        except RuntimeError:
            st = None
        if st and st["player"] == kind:
            up = (st["img"][0] > 0) if kind == "mjpeg" else (st["video"][0] > 0 and st["video"][2] >= 2)
            if up:
                return st
        time.sleep(0.2)
    raise RuntimeError(f"{tab['url']}: no {kind} picture within {timeout:g} s; page state {json.dumps(st)[:800]}")


class Window:
    """CPU of camhub, the source and Chromium, and camhub's metrics, between two instants."""

    def __init__(self, camhub, source, browser, port):
        self.camhub, self.source, self.browser, self.port = camhub, source, browser, port
        self.m0 = mf.metrics(port)
        self.c0 = browser.cpu() if browser else {}
        self.probe = mf.Probe([camhub.pid, source.proc.pid])
        self.t0_ms = time.time() * 1000

    def stop(self):
        p = self.probe.stop()
        m1 = mf.metrics(self.port)
        c1 = self.browser.cpu() if self.browser else {}
        wall = p.wall

        def d(name, **labels):
            return (metric_sum(m1, name, **labels) - metric_sum(self.m0, name, **labels)) / wall

        return {
            "wall": wall,
            "t0_ms": self.t0_ms,
            "t1_ms": time.time() * 1000,
            "cpu": p.cpu[self.camhub.pid] / wall,
            "user": p.split[self.camhub.pid][0] / wall,
            "sys": p.split[self.camhub.pid][1] / wall,
            "source_cpu": p.cpu[self.source.proc.pid] / wall,
            "chromium_cpu": chromium_cpu_delta(self.c0, c1) / wall if self.browser else 0.0,
            "machine_busy": p.machine_busy_cores,
            # others = the machine minus camhub, the source and Chromium
            "others_busy": max(0.0, p.machine_busy_cores - (sum(p.cpu.values()) + chromium_cpu_delta(self.c0, c1))
                               / wall),
            "decode": d("camhub_decode_seconds_total"),
            "encode": d("camhub_encode_seconds_total"),
            "frames_in": d("camhub_frames_in_total"),
            "webrtc_mbit": d("camhub_webrtc_bytes_out_total") * 8 / 1e6,
            "packet_mbit": d("camhub_packet_bytes_out_total") * 8 / 1e6,
            "jpeg_mbit": d("camhub_bytes_out_total") * 8 / 1e6,
            "webrtc_pli": d("camhub_webrtc_keyframe_requests_total") * wall,
            "resyncs": d("camhub_keyframe_resyncs_total") * wall,
            "viewers": {k: metric_sum(m1, "camhub_packet_viewers", kind=k) for k in ("webrtc", "mse")},
            "threads": {k: v / wall for k, v in p.threads[self.camhub.pid].items() if v / wall >= 0.003},
        }


def take(browser, tab):
    return browser.cdp.eval(tab["sid"], "window.__latTake ? window.__latTake() : null")


def run_player(args, kind, browser, camhub, source, port, geo):
    url = f"http://127.0.0.1:{port}/cameras/{CAM}?player={kind}"
    res = {"kind": kind, "errors": []}
    log_at = log_lines(args.camhub_log)
    tabs = []
    try:
        t = time.monotonic()
        tab = browser.open(url)
        tabs.append(tab)
        st = wait_playing(browser, tab, kind)
        res["first_picture_s"] = time.monotonic() - t
        res["state_start"] = st
        browser.cdp.eval(tab["sid"], SAMPLER % json.dumps(geo))
        time.sleep(args.warmup)
        take(browser, tab)                         # drop the warm-up samples
        # 1 viewer: latency and CPU over the same window (longer if too few frames were seen)
        w = Window(camhub, source, browser, port)
        samples, stats = [], {"rafs": 0, "noPicture": 0, "bad": 0, "crc": 0, "back": 0, "codes": 0, "skipped": 0,
                              "rafGap": 0}
        t_end = time.monotonic() + args.duration
        while True:
            time.sleep(max(0.0, min(2.0, t_end - time.monotonic())))
            r = take(browser, tab)
            samples += r["samples"]
            for k in stats:
                stats[k] = max(stats[k], r[k]) if k == "rafGap" else stats[k] + r[k]
            if time.monotonic() >= t_end and (len(samples) >= args.min_samples or
                                               time.monotonic() > t_end + args.duration):
                break
        win1 = w.stop()
        res["one"] = win1
        res["lat1"] = [s[1] for s in samples]
        res["gap1_max"] = max((b[0] - a[0] for a, b in zip(samples, samples[1:])), default=None)
        res["lat1_stats"] = stats
        res["state1"] = browser.cdp.eval(tab["sid"], STATE_JS)
        src = source.frames(win1["t0_ms"] - 200, win1["t1_ms"] - 200)
        res["source_enc_ms"] = [f[1] for f in src]
        res["source_sent_ms"] = [f[2] for f in src]
        res["camera1"] = camera_status(port)
        # 3 more viewers of the same player
        for _ in range(args.viewers - 1):
            tb = browser.open(url)
            tabs.append(tb)
            wait_playing(browser, tb, kind)
        time.sleep(args.warmup)
        states = [browser.cdp.eval(tb["sid"], STATE_JS) for tb in tabs]
        res["visibility"] = [s["visibility"] for s in states]
        take(browser, tab)
        w = Window(camhub, source, browser, port)
        time.sleep(args.duration)
        win4 = w.stop()
        r = take(browser, tab)
        res["many"] = win4
        res["latN"] = [s[1] for s in r["samples"]]
        res["gapN_max"] = max((b[0] - a[0] for a, b in zip(r["samples"], r["samples"][1:])), default=None)
        res["latN_stats"] = {k: r[k] for k in stats}
        res["stateN"] = [browser.cdp.eval(tb["sid"], STATE_JS) for tb in tabs]
        res["cameraN"] = camera_status(port)
    except Exception as e:  # noqa: BLE001  (reported in the results, the other players still run)
        res["errors"].append(f"{type(e).__name__}: {e}")
        log(f"  {kind}: {e}")
    finally:
        for tb in list(tabs):
            browser.close(tb)
    res["log"] = log_problems(args.camhub_log, log_at)
    time.sleep(args.settle)
    return res


# ----------------------------------------------------------------------------------------------
# report

def pct(v, q):
    return mf.pct(v, q) if v else None


def f1(x, spec=".1f"):
    return "–" if x is None else format(x, spec)


def merge_rounds(rows):
    """One row per player kind: latency samples pooled, CPU windows median over rounds."""
    out = {}
    for kind in PLAYERS:
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        ok = [r for r in rs if "one" in r and "many" in r]
        m = {"kind": kind, "rounds": rs, "errors": [e for r in rs for e in r["errors"]],
             "log": [line for r in rs for line in r["log"]]}
        m["lat1"] = [x for r in rs for x in r.get("lat1", [])]
        m["latN"] = [x for r in rs for x in r.get("latN", [])]
        m["source_sent_ms"] = [x for r in rs for x in r.get("source_sent_ms", [])]
        if ok:
            for key in ("one", "many"):
                m[key] = {k: statistics.median(r[key][k] for r in ok)
                          for k in ok[0][key] if isinstance(ok[0][key][k], (int, float))}
                m[key]["viewers"] = ok[-1][key]["viewers"]
                m[key]["threads"] = ok[-1][key]["threads"]
            m["per_viewer"] = statistics.median((r["many"]["cpu"] - r["one"]["cpu"]) / (r["n"] - 1) for r in ok)
            m["per_viewer_rounds"] = [(r["many"]["cpu"] - r["one"]["cpu"]) / (r["n"] - 1) for r in ok]
            m["chromium_per_viewer"] = statistics.median(
                (r["many"]["chromium_cpu"] - r["one"]["chromium_cpu"]) / (r["n"] - 1) for r in ok)
        stats = {}
        for r in rs:
            for k, v in r.get("lat1_stats", {}).items():
                stats[k] = max(stats.get(k, 0), v) if k == "rafGap" else stats.get(k, 0) + v
        m["lat1_stats"] = stats
        m["first_picture_s"] = [r["first_picture_s"] for r in rs if "first_picture_s" in r]
        m["visibility"] = [v for r in rs for v in r.get("visibility", [])]
        m["last"] = rs[-1]
        out[kind] = m
    return out


def report(args, info, geo, idle, refs, players, chromium_version, log_all, cam_end):
    L = []
    add = L.append
    add("# Glass-to-glass latency and CPU per viewer: WebRTC vs MSE vs MJPEG (`benches/webrtc_latency.py`)")
    add("")
    add("Written by `" + shlex.join(["python3", "benches/webrtc_latency.py"] + args.argv) + "`; how it measures is in "
        "the script's docstring.")
    add("")
    add(f"- date: {info['date']}; CPU: {info['cpu']}, nproc = {info['nproc']}; **the machine is shared and noisy** "
        "(2 cores; other sessions' builds, tests and CI ran at the same time: \"others busy\" below is what they used "
        "during each window). Compare the players with each other within this run, not with other runs.")
    add(f"- camhub: {info['camhub']}, release build `{args.binary}` (built {info['built']})")
    add(f"- {chromium_version} (headless=new, software decode: `--disable-gpu`), one process for the whole run; "
        f"every viewer is a target in its own window (document.visibilityState of the targets: "
        f"{', '.join(sorted(set(v for p in players.values() for v in p['visibility']))) or '?'})")
    add(f"- Source: live, GStreamer rtsp-server, appsrc fed by Python: {args.width}x{args.height} I420 at "
        f"{args.fps} fps, the wall clock drawn into each frame when it is made (48 blocks of {geo['bw']}x{geo['bh']} px "
        f"+ the inverted row; 40-bit ms + CRC-8), `x264enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={2 * args.fps} bframes=0 bitrate={args.kbps}` → `rtph264pay`, RTSP over TCP to camhub "
        f"(`always_on = true`: one camera session for the whole run).")
    add(f"- Each player: {args.warmup:g} s warm-up, then {args.duration:g} s with 1 viewer (latency and CPU; longer "
        f"until ≥ {args.min_samples} frames), then {args.viewers} viewers ({args.viewers - 1} more targets) "
        f"{args.warmup:g} s warm-up + {args.duration:g} s (CPU; latency of the first target). {args.rounds} round(s), "
        f"order {', '.join(' → '.join(o) for o in args.orders)}.")
    add("- Latency = `Date.now()` in the page's requestAnimationFrame callback when a new code shows − the code "
        "(the moment the frame was made): source encode + packetize, camhub, the player's network path, buffering, "
        "decode and paint, plus up to one 16.7 ms display frame of sampling (rAF), the same for every player.")
    add("")
    add("## Glass-to-glass latency (1 viewer)")
    add("")
    add("| player | frames | median ms | p99 ms | p90 ms | min ms | max ms | median per round ms | frames skipped | "
        f"rAF/s | median / p99 with {args.viewers} viewers (frames, skipped) |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, p in players.items():
        v, s = p["lat1"], p["lat1_stats"]
        wall = (p.get("one") or {}).get("wall") or 0
        add(f"| **{kind}** | {len(v)} | {f1(pct(v, .5))} | {f1(pct(v, .99))} | {f1(pct(v, .9))} | "
            f"{f1(min(v) if v else None)} | {f1(max(v) if v else None)} | "
            f"{', '.join(f1(pct(r.get('lat1'), .5)) for r in p['rounds'])} | {s.get('skipped', 0)} | "
            f"{f1(s.get('rafs', 0) / wall / args.rounds if wall else None)} | "
            f"{f1(pct(p['latN'], .5))} / {f1(pct(p['latN'], .99))} ({len(p['latN'])}, "
            f"{sum(r.get('latN_stats', {}).get('skipped', 0) for r in p['rounds'])}) |")
    for name, r in refs.items():
        v = r.get("lat", [])
        add(f"| {name} | {len(v)} | {f1(pct(v, .5))} | {f1(pct(v, .99))} | {f1(pct(v, .9))} | "
            f"{f1(min(v) if v else None)} | {f1(max(v) if v else None)} | – | – | – | – |")
    sent = [x for p in players.values() for x in p["source_sent_ms"]]
    enc = idle.get("source_enc_ms", [])
    add(f"| source only: frame made → last RTP packet out of the payloader | {len(sent)} | {f1(pct(sent, .5))} | "
        f"{f1(pct(sent, .99))} | {f1(pct(sent, .9))} | {f1(min(sent) if sent else None)} | "
        f"{f1(max(sent) if sent else None)} | – | – | – | – |")
    add("")
    add("Native references (no browser): a GStreamer client `rtspsrc latency=0 protocols=tcp ! rtph264depay ! "
        "avdec_h264 ! appsink sync=false` reading the code from each decoded picture, straight from the source and "
        "through camhub's RTSP re-serving (`rtsp_listen`), run before the players: the floor a player could reach, and "
        "what camhub's relay adds to it. " + (f"Source x264 encode alone: median {f1(pct(enc, .5))} ms." if enc else ""))
    add("")
    add("### Where the time goes (medians)")
    add("")
    ref_src = refs.get("native client ← source (no camhub)", {}).get("lat")
    ref_cam = refs.get("native client ← camhub RTSP re-serve", {}).get("lat")
    add(f"- the source, frame made → its last RTP packet leaves the payloader: {f1(pct(sent, .5))} ms "
        f"(x264 alone {f1(pct(enc, .5))} ms)")
    add(f"- a native player (GStreamer, no jitter buffer, no display) straight from the source: "
        f"{f1(pct(ref_src, .5))} ms; through camhub's RTSP re-serve: {f1(pct(ref_cam, .5))} ms: camhub's relay "
        f"adds {f1(pct(ref_cam, .5) - pct(ref_src, .5) if ref_src and ref_cam else None)} ms (under 1 ms is no "
        "measurable delay)")
    for kind, p in players.items():
        if p["lat1"] and ref_cam:
            add(f"- {kind} in Chromium: {pct(p['lat1'], .5):.1f} ms, i.e. {pct(p['lat1'], .5) - pct(ref_cam, .5):.1f} ms "
                "more than the native player through camhub (the browser path: "
                + {"webrtc": "WebRTC jitter buffer, decode, paint",
                   "mse": "the MSE player's buffer behind the live edge, decode, paint",
                   "mjpeg": "camhub's decode + JPEG encode, the JPEG's decode in the page, paint"}[kind]
                + ", rAF sampling)")
    add("")
    add("(camhub's WHEP, MSE and MJPEG paths are not its RTSP one, so the differences are approximate: WebRTC and MSE "
        "are the same packet hand-off, MJPEG adds camhub's decode and JPEG encode.)")
    add("")
    lat = {k: pct(p["lat1"], .5) for k, p in players.items() if p["lat1"]}
    lat99 = {k: pct(p["lat1"], .99) for k, p in players.items() if p["lat1"]}
    add("### Target: WebRTC has the lowest latency")
    add("")
    if "webrtc" in lat and len(lat) > 1:
        others = {k: v for k, v in lat.items() if k != "webrtc"}
        best = min(others, key=others.get)
        ok = lat["webrtc"] < others[best]
        ok99 = all(lat99["webrtc"] < lat99[k] for k in others)
        add(f"- median: WebRTC {lat['webrtc']:.1f} ms vs {', '.join(f'{k} {v:.1f} ms' for k, v in others.items())}: "
            f"**{'MET' if ok else 'NOT MET'}**" + ("" if ok else f" ({best} is lower by {lat['webrtc'] - others[best]:.1f} ms)"))
        add(f"- p99: WebRTC {lat99['webrtc']:.1f} ms vs "
            f"{', '.join(f'{k} {lat99[k]:.1f} ms' for k in others)}: **{'MET' if ok99 else 'NOT MET'}**")
        per_round = []
        for i in range(args.rounds):
            meds = {k: pct(p["rounds"][i].get("lat1"), .5) for k, p in players.items() if i < len(p["rounds"])}
            if meds.get("webrtc") is not None and all(v is not None for v in meds.values()):
                per_round.append(all(meds["webrtc"] < v for k, v in meds.items() if k != "webrtc"))
        if per_round:
            add(f"- WebRTC's median the lowest in each round: {sum(per_round)} of {len(per_round)} rounds: "
                f"**{'MET' if all(per_round) else 'NOT MET'}**")
        mse_r = [pct(r.get("lat1"), .5) for r in players.get("mse", {}).get("rounds", []) if r.get("lat1")]
        if len(mse_r) > 1 and max(mse_r) - min(mse_r) > 100:
            add(f"- MSE's latency differs from round to round ({', '.join(f'{x:.0f}' for x in mse_r)} ms): the MSE "
                "player aims at 0.1 s behind the newest buffered frame and raises that aim by 50 ms after 3 stalls within 10 s "
                "(the player detail below has its distance, aim and stalls per round)")
    elif "webrtc" in lat:
        add("- not compared: only WebRTC gave samples" + ("; " + "; ".join(e for p in players.values() for e in p["errors"])
                                                          if any(p["errors"] for p in players.values()) else ""))
    else:
        add("- **NOT MEASURED**: " + ("; ".join(e for p in players.values() for e in p["errors"]) or "no WebRTC samples"))
    add("")
    add(f"## camhub CPU per viewer (1 → {args.viewers} viewers of one player, one Chromium, {args.viewers} targets)")
    add("")
    add(f"camhub idle (camera connected, no viewer): **{idle['cpu']:.4f} CPU-s/s** (decode {idle['decode']:.4f}); "
        f"others busy {idle['others_busy']:.2f} cores.")
    add("")
    add(f"| player | camhub CPU-s/s @1 | @{args.viewers} | **per viewer** (@{args.viewers} − @1) / {args.viewers - 1} | "
        f"user / sys @{args.viewers} | decode CPU-s/s @1 / @{args.viewers} | JPEG encode CPU-s/s @1 / @{args.viewers} | "
        f"Mbit/s out @{args.viewers} | packet viewers @{args.viewers} | Chromium CPU-s/s @1 / @{args.viewers} | "
        f"others busy @1 / @{args.viewers} |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, p in players.items():
        if "one" not in p:
            add(f"| {kind} | – | – | – | – | – | – | – | – | – | – |")
            continue
        a, b = p["one"], p["many"]
        mbit = b["webrtc_mbit"] if kind == "webrtc" else (b["packet_mbit"] if kind == "mse" else b["jpeg_mbit"])
        pv = b["viewers"].get(kind, "–") if kind != "mjpeg" else "–"
        rounds = p["per_viewer_rounds"]
        add(f"| **{kind}** | {a['cpu']:.4f} | {b['cpu']:.4f} | **{p['per_viewer']:.4f}**"
            + (f" ({', '.join(f'{x:.4f}' for x in rounds)})" if len(rounds) > 1 else "")
            + f" | {b['user']:.4f} / {b['sys']:.4f} | {a['decode']:.4f} / {b['decode']:.4f} | "
            f"{a['encode']:.4f} / {b['encode']:.4f} | {mbit:.1f} | {pv if isinstance(pv, str) else int(pv)} | "
            f"{a['chromium_cpu']:.2f} / {b['chromium_cpu']:.2f} | {a['others_busy']:.2f} / {b['others_busy']:.2f} |")
    add("")
    add("Every viewer is a whole camera page: besides its player it holds the camera WebSocket (`/ws`, mode off) and "
        "polls `/api/cameras` every 2 s, so \"per viewer\" is the page's cost, not only the stream's. MJPEG viewers "
        "of one size share one decode + JPEG encode (the decode and encode columns); WebRTC and MSE viewers get the "
        "camera's own packets, nothing decoded (a per-viewer figure at or below 0 means: no cost above the noise). "
        f"CPU-s/s over a {args.duration:g} s window is counted in 10 ms clock ticks and the machine is shared: "
        "differences under ~0.005 CPU-s/s are noise here.")
    add("")
    add(f"Viewers: {args.viewers} targets (`Target.createTarget`, each in its own window) in the one Chromium, "
        "not several Chromium processes. Chromium's own CPU per extra viewer: "
        + ", ".join(f"{k} {p['chromium_per_viewer']:.2f}" for k, p in players.items() if "chromium_per_viewer" in p)
        + " CPU-s/s (software decode and paint; for MJPEG a JPEG decode per frame per target). With 2 cores, "
        "4 viewers' Chromium competes with camhub and the source for the CPU: the latency and frames-skipped "
        f"columns at {args.viewers} viewers show what that does to the first target.")
    add("")
    add("camhub threads above 0.003 CPU-s/s with "
        f"{args.viewers} viewers (last round):")
    add("")
    for kind, p in players.items():
        if "many" in p:
            th = sorted(((v, k) for k, v in p["many"]["threads"].items()), reverse=True)
            add(f"- {kind}: " + ", ".join(f"`{k}` {v:.3f}" for v, k in th))
    add("")
    add("## Player detail")
    add("")
    add("| player | first picture s (page open → picture) | decode failures / rAF without picture (1 viewer) | "
        f"codes going backwards | longest wait for a new picture ms, 1 / {args.viewers} viewers (longest gap between "
        "two animation frames of the page) | "
        "browser's own figures (last round, 1 viewer) |")
    add("|---|---:|---:|---:|---:|---|")
    for kind, p in players.items():
        s = p["lat1_stats"]
        st = p["last"].get("state1") or {}
        extra = []
        rtp = st.get("rtp")
        if rtp:
            n = rtp.get("jitterBufferEmittedCount") or 0
            if n:
                extra.append(f"jitter buffer {1000 * rtp['jitterBufferDelay'] / n:.1f} ms avg")
                if rtp.get("jitterBufferTargetDelay") is not None:
                    extra.append(f"target {1000 * rtp['jitterBufferTargetDelay'] / n:.1f} ms")
                if rtp.get("totalProcessingDelay") is not None:
                    extra.append(f"processing {1000 * rtp['totalProcessingDelay'] / n:.1f} ms avg")
            if rtp.get("framesDecoded"):
                extra.append(f"decode {1000 * (rtp.get('totalDecodeTime') or 0) / rtp['framesDecoded']:.1f} ms avg")
            extra.append(f"frames received/decoded/dropped {rtp.get('framesReceived')}/{rtp.get('framesDecoded')}/"
                         f"{rtp.get('framesDropped')}, packets lost {rtp.get('packetsLost')}, freezes "
                         f"{rtp.get('freezeCount')}, PLI {rtp.get('pliCount')}, NACK {rtp.get('nackCount')}"
                         + (f", decoder {rtp['decoderImplementation']}" if rtp.get("decoderImplementation") else ""))
        if kind == "mse":
            def ms_(x):
                return "–" if x is None else f"{1000 * x:.0f}"
            per = []
            for r in p["rounds"]:
                a, b = (r.get("state_start") or {}).get("mse") or {}, (r.get("state1") or {}).get("mse") or {}
                per.append(f"{ms_(a.get('delay'))} → {ms_(b.get('delay'))} ms behind the newest buffered frame "
                           f"(own latency estimate {ms_(a.get('latency'))} → {ms_(b.get('latency'))} ms, "
                           f"jumps {b.get('jumps')}, stalls {b.get('stalls')}, aim {ms_(b.get('target'))} ms)")
            extra.append("MSE player, per round, first picture → end of the 1-viewer window: " + "; ".join(per))
        q = st.get("quality")
        if q and kind != "mjpeg":
            extra.append(f"video frames {q['total']}, dropped {q['dropped']}")
        if kind == "webrtc":
            fr = []
            for r in p["rounds"]:
                rtps = [x.get("rtp") or {} for x in r.get("stateN", [])]
                fr.append(f"{'/'.join(str(x.get('freezeCount')) for x in rtps)} "
                          f"({sum(x.get('totalFreezesDuration') or 0 for x in rtps):.1f} s in all, packets lost "
                          f"{sum(x.get('packetsLost') or 0 for x in rtps)}, machine busy "
                          f"{(r.get('many') or {}).get('machine_busy', 0):.2f} cores)")
            extra.append(f"with {args.viewers} viewers, freezes per target (counted since each target opened), per "
                         "round: " + "; ".join(fr))
        add(f"| {kind} | {', '.join(f'{x:.2f}' for x in p['first_picture_s']) or '–'} | "
            f"{s.get('bad', 0) + s.get('crc', 0)} / {s.get('noPicture', 0)} | {s.get('back', 0)} | "
            f"{f1(max((r.get('gap1_max') or 0 for r in p['rounds']), default=None), '.0f')} / "
            f"{f1(max((r.get('gapN_max') or 0 for r in p['rounds']), default=None), '.0f')} ("
            f"{s.get('rafGap', 0)} / {max((r.get('latN_stats', {}).get('rafGap', 0) for r in p['rounds']), default=0)}) | "
            f"{'; '.join(extra) or '–'} |")
    add("")
    add("## camhub log and errors")
    add("")
    errs = [f"{k}: {e}" for k, p in players.items() for e in p["errors"]]
    errs += [f"{k}: {r['error']}" for k, r in refs.items() if r.get("error")]
    add(f"- run errors: {len(errs)}" + (" — " + "; ".join(errs) if errs else ""))
    wl = [line for line in log_all if re.search(r"\b(WARN|ERROR)\b", line)]
    add(f"- camhub WARN/ERROR lines over the whole run: {len(wl)}" + (":" if wl else ""))
    for line in distinct(wl):
        add(f"  - `{line[:400]}`")
    add(f"- camera at the end: state {cam_end.get('state')}, reconnects {cam_end.get('reconnects')}, "
        f"fps {cam_end.get('fps')}, last_error {cam_end.get('last_error')}")
    return "\n".join(L)


def set_orders(args):
    """The players' order in each round: rotated by one per round."""
    kinds = [k for k in args.players.split(",") if k]
    args.orders = [kinds[r % len(kinds):] + kinds[:r % len(kinds)] for r in range(args.rounds)]


def report_again(ap, args):
    """--report-from: the report of a finished run, from its raw.json and the camhub.log beside it."""
    with open(args.report_from) as f:
        raw = json.load(f)
    run = ap.parse_args(raw["argv"])
    run.argv = raw["argv"]
    run.binary = os.path.abspath(run.binary)
    set_orders(run)
    log_all = log_problems(os.path.join(os.path.dirname(os.path.abspath(args.report_from)), "camhub.log"))
    text = report(run, raw["info"], raw["geometry"], raw["idle"], raw["refs"], merge_rounds(raw["rows"]),
                  raw.get("chromium", "?"), log_all, raw.get("cam_end") or {})
    print(text)
    if args.results:
        mf.write_section(args.results, text, SECTION_BEGIN, SECTION_END)
        log(f"wrote the webrtc_latency section of {args.results} from {args.report_from}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="/work/target-bench/release/camhub")
    ap.add_argument("--players", default=",".join(PLAYERS))
    ap.add_argument("--viewers", type=int, default=4, help="viewers of each player in the second window")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per measured window")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--settle", type=float, default=4.0, help="seconds after closing a player's targets")
    ap.add_argument("--min-samples", type=int, default=300, dest="min_samples")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--reference-seconds", type=float, default=15.0, dest="reference_seconds")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--kbps", type=int, default=4000)
    ap.add_argument("--commit", help="the binary was built from a clean export of this commit")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--report-from", dest="report_from", metavar="RAW_JSON",
                    help="write the report (and the RESULTS.md section) again from a run's raw.json, measuring nothing")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--frames-log", dest="frames_log", help=argparse.SUPPRESS)
    ap.add_argument("--probe-client", action="store_true", dest="probe_client", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args)
    if args.probe_client:
        return probe_client(args)
    if args.report_from:
        return report_again(ap, args)
    args.argv = sys.argv[1:]
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no camhub binary at {args.binary}")
    for path in (GST_PYTHON, CHROMIUM):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} not found")
    set_orders(args)
    geo = geometry(args.width, args.height)
    geo.update({"bits": BITS, "frame_ms": 1000 / args.fps})
    info = mf.versions(args.binary, args.commit)
    workdir = tempfile.mkdtemp(prefix="camhub-webrtc-lat-")
    log(f"workdir {workdir}")
    source = Source(args, workdir)
    camhub = browser = None
    rows, refs, idle = [], {}, {}
    try:
        camhub, port, ports, _, args.camhub_log = start_camhub(args.binary, workdir, source.url)
        log(f"camhub on {port}, WebRTC UDP {ports['webrtc']}, RTSP {ports['rtsp']}; source {source.url}")
        deadline = time.monotonic() + 20
        while camera_status(port).get("state") != "streaming":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the camera is not streaming: {camera_status(port)}")
            time.sleep(0.2)
        time.sleep(3)
        log("camhub idle (camera connected, no viewer)")
        w = Window(camhub, source, None, port)
        time.sleep(min(args.duration, 10))
        idle = w.stop()
        src = source.frames(idle["t0_ms"] - 200, idle["t1_ms"] - 200)
        idle["source_enc_ms"] = [f[1] for f in src]
        log(f"  camhub {idle['cpu']:.4f} CPU-s/s, decode {idle['decode']:.4f}, source {idle['source_cpu']:.3f}, "
            f"source encode median {f1(pct(idle['source_enc_ms'], .5))} ms")
        for name, url in (("native client ← source (no camhub)", source.url),
                          ("native client ← camhub RTSP re-serve", f"rtsp://127.0.0.1:{ports['rtsp']}/{CAM}")):
            log(f"reference: {name}")
            r = run_probe_client(url, args.reference_seconds)
            refs[name] = r
            log(f"  {len(r.get('lat', []))} frames, median {f1(pct(r.get('lat'), .5))} ms, p99 "
                f"{f1(pct(r.get('lat'), .99))} ms" + (f"; error {r['error']}" if r.get("error") else ""))
        browser = Browser(workdir)
        log(f"{browser.version}")
        for rnd, order in enumerate(args.orders):
            for kind in order:
                log(f"round {rnd + 1}/{args.rounds}: {kind}")
                r = run_player(args, kind, browser, camhub, source, port, geo)
                r["n"] = args.viewers
                rows.append(r)
                v = r.get("lat1", [])
                if "many" in r:
                    log(f"  latency median {f1(pct(v, .5))} ms p99 {f1(pct(v, .99))} ms ({len(v)} frames); camhub "
                        f"{r['one']['cpu']:.4f} → {r['many']['cpu']:.4f} CPU-s/s (decode {r['one']['decode']:.4f} → "
                        f"{r['many']['decode']:.4f}); Chromium {r['one']['chromium_cpu']:.2f} → "
                        f"{r['many']['chromium_cpu']:.2f}; others busy {r['one']['others_busy']:.2f} / "
                        f"{r['many']['others_busy']:.2f}; visibility {r.get('visibility')}")
                for line in distinct(r["log"], 4):
                    log(f"  log: {line[:300]}")
        cam_end = camera_status(port)
    finally:
        if browser:
            browser.stop()
        if camhub:
            mf.stop(camhub)
        source.stop()
    players = merge_rounds(rows)
    log_all = log_problems(args.camhub_log)
    text = report(args, info, geo, idle, refs, players, browser.version if browser else "?", log_all, cam_end)
    print(text)
    with open(os.path.join(workdir, "raw.json"), "w") as f:
        json.dump({"rows": rows, "refs": refs, "idle": idle, "info": info, "geometry": geo, "cam_end": cam_end,
                   "chromium": browser.version if browser else "?", "argv": args.argv}, f, indent=1, default=str)
    if args.results:
        mf.write_section(args.results, text, SECTION_BEGIN, SECTION_END)
        log(f"wrote the webrtc_latency section of {args.results}; raw data and logs in {workdir}")


if __name__ == "__main__":
    main()
