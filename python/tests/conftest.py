"""Fixtures: the GStreamer test RTSP server (crates/testkit/fixtures/rtsp_server.py, a real RTSP
camera on loopback) and a real camhub server (the binary in $CAMHUB_BIN) with a login."""

import base64
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RTSP_SCRIPT = ROOT / "crates" / "testkit" / "fixtures" / "rtsp_server.py"
PASSWORD = "correct horse battery staple"


class RtspServer:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(RTSP_SCRIPT), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("the RTSP test server did not start")
        # Keep reading its event lines so it never blocks on a full pipe.
        import threading

        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def url(self, mount, user=None, password=None):
        auth = f"{user}:{password}@" if user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{mount}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def rtsp():
    """A 25 fps 640x360 camera: /h264, /h265, /mjpeg, /switch (to 320x180 after 3 s), /silent
    (stops sending after 2 s)."""
    server = RtspServer("--fps", "25", "--switch-after", "3", "--silent-after", "2")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rtsp_auth():
    """The same camera behind RTSP credentials (user / secret)."""
    server = RtspServer("--user", "user", "--password", "secret")
    yield server
    server.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    def __init__(self, config_text, data_dir):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = Path(data_dir) / "camhub.toml"
        config.write_text(
            f'[server]\nlisten = "127.0.0.1:{self.port}"\ndata_dir = "{data_dir}/data"\n\n'
            + config_text
        )
        self.proc = subprocess.Popen(
            [os.environ["CAMHUB_BIN"], "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("camhub did not start")

    def token(self, user="admin", password=PASSWORD):
        """Makes an API token through the API, with the user's Basic credentials."""
        body = json.dumps({"name": "pytest"}).encode()
        request = urllib.request.Request(self.base + "/api/tokens", data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)["token"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def hub(rtsp):
    """camhub with cameras cam (/h264) and switch (/switch), an admin user, API tokens."""
    hashed = subprocess.run(
        [os.environ["CAMHUB_BIN"], "hash-password"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as data_dir:
        text = (
            f'[[user]]\nname = "admin"\npassword_hash = "{hashed}"\nrole = "admin"\n\n'
            f'[[camera]]\nid = "cam"\nurl = "{rtsp.url("/h264")}"\n\n'
        )
        server = Hub(text, data_dir)
        yield server
        server.stop()
