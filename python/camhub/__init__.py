"""camhub for programs: the newest frame of a camera as a numpy array, at any size, never a backlog.

    import camhub

    cam = camhub.open("rtsp://user:pass@192.168.1.20/stream1")   # camhub's own ingest, in-process
    cam = camhub.connect("http://hub:8080", "frontdoor", token="...")  # from a running camhub

    frame = cam.read(width=640)          # BGR uint8 array (height, width, 3) of the NEWEST frame
    frame.seq, frame.timestamp, frame.skipped, frame.pts   # metadata rides on the array

``read()`` waits only until a frame newer than the last one returned exists, then returns the
newest: a program that spends 500 ms per frame gets the frame of now, not one from seconds ago,
and nothing queues up in memory meanwhile. ``latest()`` never waits. Formats: ``"bgr"`` (OpenCV's
order, the default), ``"rgb"``, ``"gray"`` (height, width), ``"yuv420"`` (I420, planes contiguous,
stride = width, shape (height * 3 // 2, width)). Colours are full-range BT.601.

Several threads may read one handle; each gets the newest frame. The GIL is released while
``read()`` waits and while frames are decoded and converted.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Iterator, Optional

import numpy as np

from . import _camhub
from ._camhub import (
    AuthError,
    CameraUnavailable,
    CamhubError,
    FrameTimeout,
    ReaderClosed,
    TooManySizes,
    UnknownCamera,
)

__version__ = _camhub.__version__

__all__ = [
    "open",
    "connect",
    "Camera",
    "Frame",
    "CamhubError",
    "AuthError",
    "UnknownCamera",
    "CameraUnavailable",
    "FrameTimeout",
    "TooManySizes",
    "ReaderClosed",
]


class Frame(np.ndarray):
    """A frame's pixels (a numpy uint8 array) with what they are.

    Attributes:
        seq: the camera's frame sequence number (increases by one per frame camhub decoded).
        timestamp: when camhub received the frame's first packet (seconds since the Unix epoch).
        pts: the source's presentation time (90 kHz units), or None.
        skipped: frames the camera produced since the last one this handle returned, not returned.
        width, height: the picture size (a resolution change mid-stream shows here).
        format: "bgr", "rgb", "gray" or "yuv420".
        age: seconds from ``timestamp`` to when ``read()`` returned it.
    """

    seq: int
    timestamp: float
    pts: Optional[int]
    skipped: int
    width: int
    height: int
    format: str
    age: float

    def __array_finalize__(self, obj: Any) -> None:
        # Slices and copies of a frame keep its metadata.
        for name in ("seq", "timestamp", "pts", "skipped", "width", "height", "format", "age"):
            setattr(self, name, getattr(obj, name, None))

    @property
    def meta(self) -> dict:
        """The metadata as a dict."""
        names = ("seq", "timestamp", "pts", "skipped", "width", "height", "format", "age")
        return {name: getattr(self, name) for name in names}


def _frame(array: np.ndarray, meta: dict) -> Frame:
    frame = array.view(Frame)
    for name, value in meta.items():
        setattr(frame, name, value)
    return frame


class Camera:
    """One camera's newest frames. Made by :func:`open` or :func:`connect`; use it as a context
    manager (``with camhub.open(url) as cam:``) or close it; iterate it for frame after frame."""

    def __init__(self, reader: Any, where: str) -> None:
        self._reader = reader
        self._where = where

    def read(
        self,
        width: Optional[int] = None,
        height: Optional[int] = None,
        format: str = "bgr",
        timeout: Optional[float] = 10.0,
    ) -> Frame:
        """The newest frame newer than the last one this handle returned, scaled to ``width`` and/or
        ``height`` (one alone keeps the aspect; both: the largest size that fits; never upscaled;
        even sides). Waits up to ``timeout`` seconds (None: no limit) and raises
        :class:`FrameTimeout` when no new frame came, or :class:`CameraUnavailable` when the camera
        is down (the message says why)."""
        array, meta = self._reader.read(width, height, format, timeout)
        return _frame(array, meta)

    def latest(
        self, width: Optional[int] = None, height: Optional[int] = None, format: str = "bgr"
    ) -> Optional[Frame]:
        """The newest frame now, returned before or not; None before the first. Never waits for
        a new frame."""
        got = self._reader.latest(width, height, format)
        return None if got is None else _frame(*got)

    @property
    def newest_seq(self) -> Optional[int]:
        """The sequence number of the newest frame the camera has now, without converting it:
        ``cam.newest_seq - frame.seq`` is how many frames ``frame`` is behind. None for a camera
        read with :func:`connect`."""
        return self._reader.newest_seq()

    @property
    def status(self) -> str:
        """The camera's state, with the reason when it is not streaming."""
        return self._reader.status()

    def frames(
        self, width: Optional[int] = None, height: Optional[int] = None, format: str = "bgr"
    ) -> Iterator[Frame]:
        """Frame after frame (each the newest when asked for) until the reader is closed."""
        while True:
            try:
                yield self.read(width, height, format, timeout=None)
            except ReaderClosed:
                return

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        """Closes the camera's connection (in-process) or the hub's socket. Reads waiting in other
        threads raise :class:`ReaderClosed`."""
        self._reader.close()

    def __enter__(self) -> "Camera":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<camhub.Camera {self._where} ({self.status})>"


def _toml_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name}={value!r}: use a finite number")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(name, v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{k} = {_toml_value(name, v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise ValueError(f"{name}={value!r}: use a bool, number, string, list or dict")


def open(
    source: Optional[str] = None,
    *,
    config: Optional[str | os.PathLike] = None,
    camera: Optional[str] = None,
    timeout: float = 10.0,
    **camera_keys: Any,
) -> Camera:
    """Opens a camera in this process with camhub's own ingest, decode and scaling (background
    threads; the GIL is not held).

    ``source`` is any camera URL camhub takes (``rtsp://``, ``http://`` MJPEG or snapshot,
    ``ffmpeg:``, ``demo:``); more camera keys of camhub's config go as keyword arguments
    (``rotate=90``, ``substream_url=...``, ``rtsp_transport="tcp"``). Or ``config=`` a camhub.toml
    and ``camera=`` the id of one of its cameras.

    Waits up to ``timeout`` seconds for the first frame. Raises :class:`AuthError` when the camera
    refuses the credentials, :class:`CameraUnavailable` when it cannot be reached (the message says
    why), :class:`UnknownCamera` for an id not in ``config``, ``ValueError`` for a bad argument."""
    if config is not None:
        if source is not None or camera_keys:
            raise ValueError("give either a source URL (and camera keys) or config= and camera=")
        if camera is None:
            raise ValueError("config= needs camera= (the id of one of its cameras)")
        reader = _camhub.Reader.open_config(os.fspath(config), camera, float(timeout))
        return Camera(reader, f"{camera} from {os.fspath(config)}")
    if source is None:
        raise ValueError("give a camera URL, e.g. camhub.open(\"rtsp://192.168.1.20/stream1\")")
    if camera is not None:
        raise ValueError("camera= goes with config=; for a URL just pass the URL")
    keys = "\n".join(f"{k} = {_toml_value(k, v)}" for k, v in camera_keys.items())
    reader = _camhub.Reader.open(str(source), keys, float(timeout))
    return Camera(reader, "(in-process)")


def connect(
    hub: str,
    camera: str,
    *,
    token: Optional[str] = None,
    transport: str = "raw",
) -> Camera:
    """Reads ``camera`` from the camhub at ``hub`` (``"http://host:8080"``), which decodes and
    scales; this process only receives the pixels. ``transport="raw"`` (default) sends raw pixels,
    for loopback; ``"jpeg"`` sends JPEGs at the size asked, decoded here, for a network (raw 1080p
    would need ~155 MB/s). ``token`` is an API token when the hub has logins.

    Raises :class:`AuthError` for a missing or wrong token, :class:`UnknownCamera` for an unknown
    id, :class:`CameraUnavailable` when the hub cannot be reached."""
    reader = _camhub.Reader.connect(hub, camera, token, transport)
    return Camera(reader, f"{camera} at {hub}")
