"""camhub's Python package against a real RTSP camera (the GStreamer test server) and a real
camhub server: newest-frame semantics, sizes and colours, resolution changes, the GIL, errors."""

import threading
import time

import numpy as np
import pytest

import camhub

# The test pattern's known colours (crates/testkit/fixtures/rtsp_server.py), as BGR, at fractions
# of the picture: the top row's bars (below the time overlay) and the bottom row's white and black.
BARS = [
    ("white", 1 / 14, (255, 255, 255)),
    ("yellow", 3 / 14, (0, 255, 255)),
    ("cyan", 5 / 14, (255, 255, 0)),
    ("green", 7 / 14, (0, 255, 0)),
    ("magenta", 9 / 14, (255, 0, 255)),
    ("red", 11 / 14, (0, 0, 255)),
    ("blue", 13 / 14, (255, 0, 0)),
]
TOLERANCE = 24


def at(frame, fx, fy):
    h, w = frame.shape[:2]
    return frame[int(fy * h), int(fx * w)].astype(int)


def check_pattern_bgr(frame):
    for name, fx, bgr in BARS:
        got = at(frame, fx, 0.45)
        assert np.all(np.abs(got - bgr) <= TOLERANCE), f"{name} bar: {got} vs {bgr}"
    # Full range: white is white and black is black, not 235 and 16.
    assert at(frame, 0.25, 0.875).min() > 235, "white patch"
    assert at(frame, 0.625, 0.875).max() < 20, "black patch"


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_open_reads_the_pattern_at_the_size_asked(rtsp):
    with camhub.open(rtsp.url("/h264")) as cam:
        frame = cam.read(width=320)
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
        assert frame.shape == (180, 320, 3)
        assert (frame.width, frame.height, frame.format) == (320, 180, "bgr")
        check_pattern_bgr(frame)
        rgb = cam.read(width=320, format="rgb")
        check_pattern_bgr(rgb[:, :, ::-1])
        gray = cam.read(height=90, format="gray")
        assert gray.shape == (90, 160)
        yuv = cam.read(width=64, format="yuv420")
        assert yuv.shape == (54, 64)
        # The white patch: Y is full range, its chroma neutral (I420: the 32x18 U plane fills
        # the 9 rows after the 36 rows of Y).
        assert yuv[int(0.875 * 36), 16] > 235
        u = yuv[36:45].reshape(18, 32)
        assert abs(int(u[int(0.875 * 18), 8]) - 128) <= 8
        full = cam.read()
        assert full.shape == (360, 640, 3)
        # Metadata: increasing sequence numbers, capture times of now.
        assert full.seq > frame.seq
        assert abs(time.time() - full.timestamp) < 2
        assert full.age < 2 and full.pts is not None
        with pytest.raises(ValueError, match="format"):
            cam.read(format="bgra")
        with pytest.raises(ValueError, match="width"):
            cam.read(width=0)


def test_a_slow_reader_always_gets_the_newest_frame_and_memory_stays_flat(rtsp):
    with camhub.open(rtsp.url("/h264")) as cam:
        cam.read(width=640)
        reads, start = 0, time.time()
        rss_start = None
        while time.time() - start < 60:
            frame = cam.read(width=640)
            newest = cam.newest_seq
            # By sequence number: the newest, or the one before it (the camera may have moved on
            # since read() picked it).
            assert newest - frame.seq <= 1, (frame.seq, newest)
            if reads > 0:
                assert frame.skipped >= 5, frame.skipped  # 25 fps, 500 ms per frame
            reads += 1
            if reads == 10:
                rss_start = rss_mb()
            time.sleep(0.5)  # the model at work
        rss_end = rss_mb()
        assert reads >= 100
        assert cam.latest(width=640).seq >= frame.seq
        assert rss_end - rss_start < 20, f"RSS grew from {rss_start:.0f} to {rss_end:.0f} MB"


def test_a_resolution_change_reaches_the_reader(rtsp):
    with camhub.open(rtsp.url("/switch")) as cam:
        sizes = []
        deadline = time.time() + 20
        while time.time() < deadline:
            frame = cam.read(timeout=5)
            assert frame.shape == (frame.height, frame.width, 3)
            if not sizes or sizes[-1] != (frame.width, frame.height):
                sizes.append((frame.width, frame.height))
            if (320, 180) in sizes:
                break
        assert sizes == [(640, 360), (320, 180)], sizes
        check_pattern_bgr(cam.read())


def test_the_gil_is_released_while_read_waits(rtsp):
    with camhub.open(rtsp.url("/silent")) as cam:
        cam.read()
        count = [0]
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                count[0] += 1

        t = threading.Thread(target=spin)
        t.start()
        try:
            # /silent stops sending after 2 s: this read waits (and times out).
            with pytest.raises((camhub.FrameTimeout, camhub.CameraUnavailable)):
                for _ in range(100):
                    cam.read(timeout=3)
            before = count[0]
            with pytest.raises((camhub.FrameTimeout, camhub.CameraUnavailable)):
                cam.read(timeout=1)
            during = count[0] - before
        finally:
            stop.set()
            t.join()
        # A thread that cannot take the GIL counts nothing in that second.
        assert during > 10000, during


def test_threads_share_one_handle(rtsp):
    with camhub.open(rtsp.url("/h264")) as cam:
        seqs, errors = [], []

        def reader():
            try:
                for _ in range(10):
                    seqs.append(cam.read(width=160).seq)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(seqs) == 40


def test_close_wakes_a_waiting_reader(rtsp):
    cam = camhub.open(rtsp.url("/h264"))
    frames = []
    t = threading.Thread(target=lambda: frames.extend(cam))
    t.start()
    time.sleep(1)
    cam.close()
    t.join(10)
    assert not t.is_alive()
    assert len(frames) > 5
    with pytest.raises(camhub.ReaderClosed):
        cam.read()


def test_open_errors(rtsp, rtsp_auth, tmp_path):
    with pytest.raises(camhub.AuthError):
        camhub.open(rtsp_auth.url("/h264", "user", "wrong"))
    with camhub.open(rtsp_auth.url("/h264", "user", "secret")) as cam:
        assert cam.read(width=64).shape == (36, 64, 3)
    with pytest.raises(camhub.CameraUnavailable, match="refused"):
        camhub.open("rtsp://127.0.0.1:1/nothing", timeout=5)
    config = tmp_path / "camhub.toml"
    config.write_text(f'[[camera]]\nid = "front"\nurl = "{rtsp.url("/h264")}"\nrotate = 90\n')
    with pytest.raises(camhub.UnknownCamera, match="front"):
        camhub.open(config=config, camera="back")
    with camhub.open(config=config, camera="front") as cam:
        assert cam.read().shape == (640, 360, 3), "the camera's rotate applies"
    with pytest.raises(ValueError, match="rotate"):
        camhub.open(rtsp.url("/h264"), rotate=45)


def test_connect_gives_what_open_gives(rtsp, hub):
    token = hub.token()
    with camhub.connect(hub.base, "cam", token=token) as remote, camhub.open(
        rtsp.url("/h264")
    ) as local:
        a = remote.read(width=320)
        b = local.read(width=320)
        assert a.shape == b.shape == (180, 320, 3)
        check_pattern_bgr(a)
        # The same picture but for the time overlay at the top left.
        diff = np.abs(a[60:].astype(int) - b[60:].astype(int)).mean()
        assert diff < 4, diff
        assert abs(time.time() - a.timestamp) < 2
        later = remote.read(width=320)
        assert later.seq > a.seq
    with camhub.connect(hub.base, "cam", token=token, transport="jpeg") as remote:
        frame = remote.read(width=320)
        assert frame.shape == (180, 320, 3)
        check_pattern_bgr(frame)
        assert remote.read(width=160, format="gray").shape == (90, 160)


def test_connect_a_slow_reader_gets_the_newest(hub):
    with camhub.connect(hub.base, "cam", token=hub.token()) as cam:
        last = cam.read(width=320)
        for _ in range(6):
            time.sleep(0.5)
            frame = cam.read(width=320)
            assert frame.skipped >= 5, frame.skipped
            assert frame.seq == last.seq + frame.skipped + 1
            last = frame


def test_connect_errors(hub):
    with pytest.raises(camhub.AuthError):
        camhub.connect(hub.base, "cam")
    with pytest.raises(camhub.AuthError):
        camhub.connect(hub.base, "cam", token="chb_wrong")
    with pytest.raises(camhub.UnknownCamera, match="cam"):
        camhub.connect(hub.base, "nope", token=hub.token())
    with pytest.raises(camhub.CameraUnavailable):
        camhub.connect("http://127.0.0.1:1", "cam")
    with pytest.raises(ValueError, match="transport"):
        camhub.connect(hub.base, "cam", transport="udp")
