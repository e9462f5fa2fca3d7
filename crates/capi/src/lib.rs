//! libcamhub.so: the newest frame of a camera, at any size, for C and C++ programs. A thin layer
//! over [`hub::frames::Reader`] (the `camhub` crate, renamed `hub` here): `camhub_open` runs camhub's own hub in the process (any source
//! camhub takes), `camhub_connect` reads from a running camhub. `include/camhub.h` is generated from
//! this file by cbindgen (tests/header.rs keeps it current).
//!
//! Model, in C terms:
//! - Every function returns a [`camhub_status`]: `CAMHUB_OK` (0) or a negative error code;
//!   `camhub_last_error()` then has the message (per thread, valid until that thread's next call).
//! - A reader is thread-safe: several threads may read it at once; each gets the newest frame.
//!   `camhub_interrupt` wakes every waiting read (they return `CAMHUB_ERR_CLOSED`); `camhub_close`
//!   frees the reader and must not race with other calls on it.
//! - Frames go into the caller's buffer (`camhub_read_into`) or into a frame the library owns until
//!   `camhub_frame_free` (`camhub_read`).
#![allow(non_camel_case_types)]
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::sync::Arc;
use std::time::Duration;

use hub::frames::{FramesError, FramesErrorKind, ReadFrame, Reader, Transport};
use hub::hub::raw::{PixelFormat, RawFrame, RawKey};

/// What a call did: `CAMHUB_OK` or why not.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum camhub_status {
    /// Success.
    CAMHUB_OK = 0,
    /// A bad argument (null pointer, size, format, URL, config): the message names it.
    CAMHUB_ERR_ARGUMENT = -1,
    /// The camera or the hub refused the credentials or the token.
    CAMHUB_ERR_AUTH = -2,
    /// No camera with that id.
    CAMHUB_ERR_NOT_FOUND = -3,
    /// The camera or the hub cannot be reached, or has no picture (the message says why).
    CAMHUB_ERR_UNAVAILABLE = -4,
    /// No newer frame within the timeout.
    CAMHUB_ERR_TIMEOUT = -5,
    /// The camera already serves as many raw sizes as `[server] max_raw_sizes` allows.
    CAMHUB_ERR_TOO_MANY = -6,
    /// The reader was interrupted or closed.
    CAMHUB_ERR_CLOSED = -7,
    /// The caller's buffer is smaller than the frame (`info->size` says how large it must be).
    CAMHUB_ERR_BUFFER_TOO_SMALL = -8,
    /// A failure inside camhub.
    CAMHUB_ERR_INTERNAL = -9,
}

/// Pixel layouts.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum camhub_format {
    /// Packed 8-bit blue, green, red (OpenCV's order): `3 * width * height` bytes.
    CAMHUB_FORMAT_BGR = 0,
    /// Packed 8-bit red, green, blue.
    CAMHUB_FORMAT_RGB = 1,
    /// 8-bit luma: `width * height` bytes.
    CAMHUB_FORMAT_GRAY = 2,
    /// I420: Y, then U, then V planes, contiguous, stride = width.
    CAMHUB_FORMAT_YUV420 = 3,
}

/// What a frame is.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct camhub_frame_info {
    /// Width in pixels (a resolution change mid-stream shows here).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row of the first plane.
    pub stride: u32,
    /// A `camhub_format` value.
    pub format: i32,
    /// Bytes of pixels.
    pub size: usize,
    /// The camera's frame sequence number (one more per frame camhub decoded).
    pub seq: u64,
    /// When camhub received the frame's first packet, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The source's presentation time, 90 kHz (valid when `has_pts`).
    pub pts: i64,
    /// Whether `pts` is set.
    pub has_pts: bool,
    /// Frames the camera produced since the last one this reader returned, that it did not get.
    pub skipped: u64,
}

/// A frame the library owns: `data` holds `info.size` bytes until `camhub_frame_free`.
#[repr(C)]
pub struct camhub_frame {
    /// What it is.
    pub info: camhub_frame_info,
    /// The pixels.
    pub data: *const u8,
    /// The library's side (opaque: a `FrameOwner`).
    owner: *mut std::ffi::c_void,
}

/// Keeps a frame's pixels alive while C holds them (held, never read: `data` points into it).
struct FrameOwner(#[allow(dead_code)] Arc<RawFrame>);

/// A camera's newest frames (opaque).
pub struct camhub_reader {
    inner: Reader,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

fn fail(e: FramesError) -> camhub_status {
    set_error(&e.message);
    match e.kind {
        FramesErrorKind::BadArgument => camhub_status::CAMHUB_ERR_ARGUMENT,
        FramesErrorKind::Auth => camhub_status::CAMHUB_ERR_AUTH,
        FramesErrorKind::NotFound => camhub_status::CAMHUB_ERR_NOT_FOUND,
        FramesErrorKind::Unavailable => camhub_status::CAMHUB_ERR_UNAVAILABLE,
        FramesErrorKind::Timeout => camhub_status::CAMHUB_ERR_TIMEOUT,
        FramesErrorKind::TooMany => camhub_status::CAMHUB_ERR_TOO_MANY,
        FramesErrorKind::Closed => camhub_status::CAMHUB_ERR_CLOSED,
        FramesErrorKind::Internal => camhub_status::CAMHUB_ERR_INTERNAL,
    }
}

fn bad(message: &str) -> camhub_status {
    set_error(message);
    camhub_status::CAMHUB_ERR_ARGUMENT
}

/// A C string argument as UTF-8 (None for NULL).
///
/// # Safety
/// `s` is NULL or a NUL-terminated string.
unsafe fn text<'a>(s: *const c_char, name: &str) -> Result<Option<&'a str>, camhub_status> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller passes a NUL-terminated string (the header says so).
    let c = unsafe { CStr::from_ptr(s) };
    c.to_str()
        .map(Some)
        .map_err(|_| bad(&format!("{name} is not UTF-8")))
}

fn key(width: u32, height: u32, format: i32) -> Result<RawKey, camhub_status> {
    let format = match format {
        0 => PixelFormat::Bgr,
        1 => PixelFormat::Rgb,
        2 => PixelFormat::Gray,
        3 => PixelFormat::Yuv420,
        other => {
            return Err(bad(&format!(
                "format {other} is not a camhub_format (BGR 0, RGB 1, GRAY 2, YUV420 3)"
            )))
        }
    };
    // 0 is the camera's own (keeping the aspect when the other side is given).
    let side = |v: u32| (v != 0).then_some(v);
    RawKey::new(side(width), side(height), format).map_err(|e| bad(&e.message))
}

fn info(f: &ReadFrame) -> camhub_frame_info {
    let raw = &f.raw;
    camhub_frame_info {
        width: raw.width,
        height: raw.height,
        stride: raw.stride() as u32,
        format: match raw.format {
            PixelFormat::Bgr => 0,
            PixelFormat::Rgb => 1,
            PixelFormat::Gray => 2,
            PixelFormat::Yuv420 | PixelFormat::Jpeg => 3,
        },
        size: raw.data.len(),
        seq: raw.seq,
        timestamp_ms: raw.unix_ms,
        pts: raw.pts.unwrap_or(0),
        has_pts: raw.pts.is_some(),
        skipped: f.skipped,
    }
}

fn timeout(ms: i32) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

/// Stores a new reader in `*out`.
///
/// # Safety
/// `out` is a valid pointer to write to.
unsafe fn hand_out(
    made: Result<Reader, FramesError>,
    out: *mut *mut camhub_reader,
) -> camhub_status {
    match made {
        Ok(inner) => {
            let reader = Box::into_raw(Box::new(camhub_reader { inner }));
            // SAFETY: checked non-null by the callers; the caller gave a writable pointer.
            unsafe { *out = reader };
            camhub_status::CAMHUB_OK
        }
        Err(e) => fail(e),
    }
}

/// Opens `source` (any camera URL camhub takes: `rtsp://`, `http://`, `ffmpeg:`, `demo:`) in this
/// process, with more camera keys as TOML lines in `camera_keys` (NULL for none; e.g.
/// `"rotate = 90"`), and waits up to `timeout_ms` for its first frame. On success `*out` is a reader
/// to `camhub_close`.
///
/// # Safety
/// `source` and `camera_keys` are NULL or NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn camhub_open(
    source: *const c_char,
    camera_keys: *const c_char,
    timeout_ms: u32,
    out: *mut *mut camhub_reader,
) -> camhub_status {
    if out.is_null() {
        return bad("out is NULL");
    }
    // SAFETY: the caller's strings, as documented.
    let (source, keys) = match unsafe { (text(source, "source"), text(camera_keys, "camera_keys")) }
    {
        (Ok(Some(s)), Ok(k)) => (s, k.unwrap_or("")),
        (Ok(None), _) => return bad("source is NULL"),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let made = Reader::open(source, keys, Duration::from_millis(timeout_ms.into()));
    // SAFETY: `out` checked above.
    unsafe { hand_out(made, out) }
}

/// Opens camera `camera` of the camhub config file `path` in this process.
///
/// # Safety
/// `path` and `camera` are NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn camhub_open_config(
    path: *const c_char,
    camera: *const c_char,
    timeout_ms: u32,
    out: *mut *mut camhub_reader,
) -> camhub_status {
    if out.is_null() {
        return bad("out is NULL");
    }
    // SAFETY: the caller's strings, as documented.
    let (path, camera) = match unsafe { (text(path, "path"), text(camera, "camera")) } {
        (Ok(Some(p)), Ok(Some(c))) => (p, c),
        (Err(e), _) | (_, Err(e)) => return e,
        _ => return bad("path and camera must not be NULL"),
    };
    let made = Reader::open_config(
        std::path::Path::new(path),
        camera,
        Duration::from_millis(timeout_ms.into()),
    );
    // SAFETY: `out` checked above.
    unsafe { hand_out(made, out) }
}

/// Reads camera `camera` from the camhub at `hub` (`"http://host:8080"`), with an API token (NULL
/// without). `jpeg`: carry JPEGs (for a network) instead of raw pixels (for loopback).
///
/// # Safety
/// `hub` and `camera` are NUL-terminated, `token` NULL or NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn camhub_connect(
    hub: *const c_char,
    camera: *const c_char,
    token: *const c_char,
    jpeg: bool,
    out: *mut *mut camhub_reader,
) -> camhub_status {
    if out.is_null() {
        return bad("out is NULL");
    }
    // SAFETY: the caller's strings, as documented.
    let strings = unsafe {
        (
            text(hub, "hub"),
            text(camera, "camera"),
            text(token, "token"),
        )
    };
    let (hub, camera, token) = match strings {
        (Ok(Some(h)), Ok(Some(c)), Ok(t)) => (h, c, t),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e,
        _ => return bad("hub and camera must not be NULL"),
    };
    let transport = if jpeg {
        Transport::Jpeg
    } else {
        Transport::Raw
    };
    let made = Reader::connect(hub, camera, token, transport);
    // SAFETY: `out` checked above.
    unsafe { hand_out(made, out) }
}

/// The reader behind `r`, or an argument error.
///
/// # Safety
/// `r` is NULL or a reader from `camhub_open*`/`camhub_connect` not yet closed.
unsafe fn reader<'a>(r: *const camhub_reader) -> Result<&'a Reader, camhub_status> {
    // SAFETY: as documented, a live reader or NULL.
    match unsafe { r.as_ref() } {
        Some(r) => Ok(&r.inner),
        None => Err(bad("reader is NULL")),
    }
}

/// The reader and the request of a read: a live reader, a writable output, a valid size and format.
///
/// # Safety
/// `r` is NULL or a live reader.
unsafe fn request<'a>(
    r: *const camhub_reader,
    out_is_null: bool,
    width: u32,
    height: u32,
    format: i32,
) -> Result<(&'a Reader, RawKey), camhub_status> {
    // SAFETY: as documented.
    let reader = unsafe { reader(r) }?;
    if out_is_null {
        return Err(bad("an output pointer is NULL"));
    }
    Ok((reader, key(width, height, format)?))
}

/// A frame handed to C: freed by `camhub_frame_free`.
fn owned(f: ReadFrame) -> *mut camhub_frame {
    Box::into_raw(Box::new(camhub_frame {
        info: info(&f),
        data: f.raw.data.as_ptr(),
        owner: Box::into_raw(Box::new(FrameOwner(f.raw))).cast(),
    }))
}

/// Reads the newest frame newer than the last one this reader returned, waiting up to `timeout_ms`
/// (-1: no limit), at `width` x `height` (0 for either keeps the aspect; both 0: the camera's size)
/// in `format`, into the library-owned `*out` (free it with `camhub_frame_free`).
///
/// # Safety
/// `r` is a live reader; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn camhub_read(
    r: *const camhub_reader,
    width: u32,
    height: u32,
    format: i32,
    timeout_ms: i32,
    out: *mut *mut camhub_frame,
) -> camhub_status {
    // SAFETY: as documented.
    let (reader, key) = match unsafe { request(r, out.is_null(), width, height, format) } {
        Ok(got) => got,
        Err(e) => return e,
    };
    match reader.read(key, timeout(timeout_ms)) {
        Ok(f) => {
            // SAFETY: `out` is non-null and writable (documented).
            unsafe { *out = owned(f) };
            camhub_status::CAMHUB_OK
        }
        Err(e) => fail(e),
    }
}

/// Like `camhub_read`, into the caller's buffer `buf` of `len` bytes; `*info` says what it holds.
/// A buffer too small gets `CAMHUB_ERR_BUFFER_TOO_SMALL` with `info->size` the bytes needed (that
/// frame counts as returned: the next read gets a newer one).
///
/// # Safety
/// `r` is a live reader; `buf` has `len` writable bytes; `info` is writable.
#[no_mangle]
pub unsafe extern "C" fn camhub_read_into(
    r: *const camhub_reader,
    width: u32,
    height: u32,
    format: i32,
    timeout_ms: i32,
    buf: *mut u8,
    len: usize,
    info_out: *mut camhub_frame_info,
) -> camhub_status {
    let null = info_out.is_null() || (buf.is_null() && len > 0);
    // SAFETY: as documented.
    let (reader, key) = match unsafe { request(r, null, width, height, format) } {
        Ok(got) => got,
        Err(e) => return e,
    };
    match reader.read(key, timeout(timeout_ms)) {
        Ok(f) => {
            let i = info(&f);
            // SAFETY: `info_out` is non-null and writable (documented).
            unsafe { *info_out = i };
            if i.size > len {
                set_error(&format!(
                    "the frame needs {} bytes; the buffer has {len}",
                    i.size
                ));
                return camhub_status::CAMHUB_ERR_BUFFER_TOO_SMALL;
            }
            // SAFETY: `buf` has `len` >= `size` writable bytes (documented and checked), and
            // cannot overlap the library's own frame.
            unsafe { std::ptr::copy_nonoverlapping(f.raw.data.as_ptr(), buf, i.size) };
            camhub_status::CAMHUB_OK
        }
        Err(e) => fail(e),
    }
}

/// The newest frame now, returned before or not, without waiting for a new one; `*out` is NULL
/// (and the status `CAMHUB_OK`) before the first frame.
///
/// # Safety
/// `r` is a live reader; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn camhub_latest(
    r: *const camhub_reader,
    width: u32,
    height: u32,
    format: i32,
    out: *mut *mut camhub_frame,
) -> camhub_status {
    // SAFETY: as documented.
    let (reader, key) = match unsafe { request(r, out.is_null(), width, height, format) } {
        Ok(got) => got,
        Err(e) => return e,
    };
    match reader.latest(key) {
        Ok(got) => {
            let frame = got.map_or(std::ptr::null_mut(), owned);
            // SAFETY: `out` is non-null and writable (documented).
            unsafe { *out = frame };
            camhub_status::CAMHUB_OK
        }
        Err(e) => fail(e),
    }
}

/// Frees a frame from `camhub_read` or `camhub_latest` (NULL is fine).
///
/// # Safety
/// `f` is NULL or a frame from this library not yet freed.
#[no_mangle]
pub unsafe extern "C" fn camhub_frame_free(f: *mut camhub_frame) {
    if f.is_null() {
        return;
    }
    // SAFETY: made by Box::into_raw in this library, freed once (documented).
    let frame = unsafe { Box::from_raw(f) };
    if !frame.owner.is_null() {
        // SAFETY: the owner was made by Box::into_raw with the frame.
        drop(unsafe { Box::from_raw(frame.owner.cast::<FrameOwner>()) });
    }
}

/// Wakes every read waiting on `r` (they return `CAMHUB_ERR_CLOSED`) and closes the camera's
/// connection; the reader stays valid until `camhub_close`. Safe to call from any thread.
///
/// # Safety
/// `r` is NULL or a live reader.
#[no_mangle]
pub unsafe extern "C" fn camhub_interrupt(r: *const camhub_reader) {
    // SAFETY: as documented.
    if let Ok(reader) = unsafe { reader(r) } {
        reader.close();
    }
}

/// Closes and frees the reader (NULL is fine). No other call on it may run or follow.
///
/// # Safety
/// `r` is NULL or a live reader that no other thread uses.
#[no_mangle]
pub unsafe extern "C" fn camhub_close(r: *mut camhub_reader) {
    if !r.is_null() {
        // SAFETY: made by Box::into_raw in `hand_out`, freed once (documented).
        drop(unsafe { Box::from_raw(r) });
    }
}

/// The camera's state, with the reason when it is not streaming, into `buf` (NUL-terminated,
/// truncated to `len`). Returns the length of the whole text.
///
/// # Safety
/// `r` is a live reader; `buf` has `len` writable bytes (or is NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn camhub_status_text(
    r: *const camhub_reader,
    buf: *mut c_char,
    len: usize,
) -> usize {
    // SAFETY: as documented.
    let Ok(reader) = (unsafe { reader(r) }) else {
        return 0;
    };
    let status = reader.status();
    if !buf.is_null() && len > 0 {
        let n = status.len().min(len - 1);
        // SAFETY: `buf` has `len` > n writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(status.as_ptr().cast::<c_char>(), buf, n);
            *buf.add(n) = 0;
        }
    }
    status.len()
}

/// The message of this thread's last failed call ("" if none): valid until this thread's next call.
#[no_mangle]
pub extern "C" fn camhub_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}
