//! `camhub._camhub`: the native part of the camhub Python package. It wraps
//! [`camhub::frames::Reader`] (camhub's own hub in-process, or a running camhub over `/frames`);
//! `camhub/__init__.py` is the API users see (numpy array subclass with metadata, context manager,
//! iterator). Every call that waits or converts releases the GIL.

use std::time::Duration;

use camhub::frames::{FramesError, FramesErrorKind, ReadFrame, Reader as FrameReader, Transport};
use camhub::hub::raw::{PixelFormat, RawKey};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(_camhub, CamhubError, PyException, "Any camhub failure.");
create_exception!(
    _camhub,
    AuthError,
    CamhubError,
    "The camera or the hub refused the credentials or the token."
);
create_exception!(
    _camhub,
    UnknownCamera,
    CamhubError,
    "No camera with that id (the message lists the known ones)."
);
create_exception!(
    _camhub,
    CameraUnavailable,
    CamhubError,
    "The camera or the hub cannot be reached, or has no picture (the message says why)."
);
create_exception!(
    _camhub,
    FrameTimeout,
    CamhubError,
    "No newer frame within the timeout."
);
create_exception!(
    _camhub,
    TooManySizes,
    CamhubError,
    "The camera already serves as many raw sizes as [server] max_raw_sizes allows."
);
create_exception!(_camhub, ReaderClosed, CamhubError, "The reader was closed.");

fn py_err(e: FramesError) -> PyErr {
    let m = e.message;
    match e.kind {
        FramesErrorKind::BadArgument => PyValueError::new_err(m),
        FramesErrorKind::Auth => AuthError::new_err(m),
        FramesErrorKind::NotFound => UnknownCamera::new_err(m),
        FramesErrorKind::Unavailable => CameraUnavailable::new_err(m),
        FramesErrorKind::Timeout => FrameTimeout::new_err(m),
        FramesErrorKind::TooMany => TooManySizes::new_err(m),
        FramesErrorKind::Closed => ReaderClosed::new_err(m),
        FramesErrorKind::Internal => CamhubError::new_err(m),
    }
}

fn seconds(t: Option<f64>) -> PyResult<Option<Duration>> {
    match t {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(PyValueError::new_err(format!(
            "timeout={s} is not a number of seconds >= 0 (or None: no limit)"
        ))),
    }
}

fn key(width: Option<u32>, height: Option<u32>, format: &str) -> PyResult<RawKey> {
    let format = match format {
        "bgr" | "rgb" | "gray" | "yuv420" => {
            PixelFormat::parse(format).map_err(|e| PyValueError::new_err(e.message))?
        }
        other => {
            return Err(PyValueError::new_err(format!(
            "format={other:?} is not a pixel format; use \"bgr\", \"rgb\", \"gray\" or \"yuv420\""
        )))
        }
    };
    RawKey::new(width, height, format).map_err(|e| PyValueError::new_err(e.message))
}

/// A frame as (array, metadata dict): the array's shape follows its format.
fn to_python<'py>(
    py: Python<'py>,
    f: ReadFrame,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
    let raw = &f.raw;
    let (w, h) = (raw.width as usize, raw.height as usize);
    let flat = PyArray1::from_slice(py, &raw.data);
    let array = match raw.format {
        PixelFormat::Bgr | PixelFormat::Rgb => flat.reshape([h, w, 3])?.into_any(),
        PixelFormat::Gray => flat.reshape([h, w])?.into_any(),
        // I420 as OpenCV lays it out: (height * 3 / 2, width), planes one after the other.
        PixelFormat::Yuv420 if w % 2 == 0 && h % 2 == 0 => flat.reshape([h * 3 / 2, w])?.into_any(),
        PixelFormat::Yuv420 | PixelFormat::Jpeg => flat.into_any(),
    };
    let meta = PyDict::new(py);
    meta.set_item("seq", raw.seq)?;
    meta.set_item("timestamp", raw.unix_ms as f64 / 1000.0)?;
    meta.set_item("pts", raw.pts)?;
    meta.set_item("skipped", f.skipped)?;
    meta.set_item("width", raw.width)?;
    meta.set_item("height", raw.height)?;
    meta.set_item("format", raw.format.name())?;
    meta.set_item("age", raw.received.elapsed().as_secs_f64())?;
    Ok((array, meta))
}

/// A camera's newest frames (see `camhub.open` and `camhub.connect`).
#[pyclass(frozen, module = "camhub._camhub")]
struct Reader {
    inner: FrameReader,
}

#[pymethods]
impl Reader {
    /// Opens `source` in this process; `keys` are more camera keys as TOML lines.
    #[staticmethod]
    #[pyo3(signature = (source, keys, timeout))]
    fn open(py: Python<'_>, source: String, keys: String, timeout: f64) -> PyResult<Reader> {
        let t = seconds(Some(timeout))?.unwrap_or_default();
        let inner = py
            .detach(move || FrameReader::open(&source, &keys, t))
            .map_err(py_err)?;
        Ok(Reader { inner })
    }

    /// Opens camera `camera` of the camhub config file `path` in this process.
    #[staticmethod]
    #[pyo3(signature = (path, camera, timeout))]
    fn open_config(py: Python<'_>, path: String, camera: String, timeout: f64) -> PyResult<Reader> {
        let t = seconds(Some(timeout))?.unwrap_or_default();
        let inner = py
            .detach(move || FrameReader::open_config(std::path::Path::new(&path), &camera, t))
            .map_err(py_err)?;
        Ok(Reader { inner })
    }

    /// Reads camera `camera` from the camhub at `base`.
    #[staticmethod]
    #[pyo3(signature = (base, camera, token, transport))]
    fn connect(
        py: Python<'_>,
        base: String,
        camera: String,
        token: Option<String>,
        transport: &str,
    ) -> PyResult<Reader> {
        let transport = match transport {
            "raw" => Transport::Raw,
            "jpeg" => Transport::Jpeg,
            other => {
                return Err(PyValueError::new_err(format!(
                    "transport={other:?}: use \"raw\" (loopback) or \"jpeg\" (across a network)"
                )))
            }
        };
        let inner = py
            .detach(move || FrameReader::connect(&base, &camera, token.as_deref(), transport))
            .map_err(py_err)?;
        Ok(Reader { inner })
    }

    /// The newest frame newer than the last one returned, waiting up to `timeout` seconds.
    #[pyo3(signature = (width, height, format, timeout))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        width: Option<u32>,
        height: Option<u32>,
        format: &str,
        timeout: Option<f64>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
        let key = key(width, height, format)?;
        let timeout = seconds(timeout)?;
        let frame = py
            .detach(|| self.inner.read(key, timeout))
            .map_err(py_err)?;
        to_python(py, frame)
    }

    /// The newest frame now (None before the first).
    #[pyo3(signature = (width, height, format))]
    fn latest<'py>(
        &self,
        py: Python<'py>,
        width: Option<u32>,
        height: Option<u32>,
        format: &str,
    ) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyDict>)>> {
        let key = key(width, height, format)?;
        match py.detach(|| self.inner.latest(key)).map_err(py_err)? {
            Some(f) => Ok(Some(to_python(py, f)?)),
            None => Ok(None),
        }
    }

    /// The newest frame's sequence number now (in-process; None from a hub).
    fn newest_seq(&self) -> Option<u64> {
        self.inner.newest_seq()
    }

    /// The camera's state and why.
    fn status(&self) -> String {
        self.inner.status()
    }

    /// Closes the reader (the camera's connection closes; waiting reads return).
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner.close());
    }
}

/// The module.
#[pymodule]
fn _camhub(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Reader>()?;
    m.add("CamhubError", py.get_type::<CamhubError>())?;
    m.add("AuthError", py.get_type::<AuthError>())?;
    m.add("UnknownCamera", py.get_type::<UnknownCamera>())?;
    m.add("CameraUnavailable", py.get_type::<CameraUnavailable>())?;
    m.add("FrameTimeout", py.get_type::<FrameTimeout>())?;
    m.add("TooManySizes", py.get_type::<TooManySizes>())?;
    m.add("ReaderClosed", py.get_type::<ReaderClosed>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
