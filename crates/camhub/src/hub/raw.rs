//! Raw pixels for programs: a camera's newest picture converted to packed BGR or RGB, gray, planar
//! I420 (or a JPEG, for readers across a network) at the size a reader asks for. One conversion per
//! picture, size and format, shared by every reader of the camera (`frame.raw`, the `/frames`
//! WebSocket, the in-process [`crate::frames`] readers); at most `[server] max_raw_sizes` distinct
//! (size, format) pairs per camera at once, apart from the JPEG variants' `max_variants`.
//!
//! Colours are full-range BT.601, what a JPEG of the same picture decodes to, whatever the camera
//! sends (limited-range BT.709 H.264 included).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use camhub_codec::{JpegDecoder, JpegEncoder, Picture, Scaler};
use camhub_media::colour::{full_range_420_to_rgb, Plane, RgbOrder};
use camhub_media::size::fit_size;

use super::taps::{Frame, FrameContent};
use crate::error::{Error, ErrorKind};

/// The default of `[server] max_raw_sizes`.
pub const DEFAULT_MAX_RAW_SIZES: usize = 8;
/// A (size, format) nobody asked for in this long gives its place to another.
const UNUSED_AFTER: Duration = Duration::from_secs(10);
/// The JPEG quality of `format=jpeg`: what a model or a person across the network cannot tell
/// from the raw picture, at a tenth of its bytes.
pub const JPEG_QUALITY: u8 = 90;

/// Pixel layouts for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 8-bit blue, green, red (OpenCV's order).
    Bgr,
    /// Packed 8-bit red, green, blue.
    Rgb,
    /// 8-bit luma only.
    Gray,
    /// Planar 4:2:0: Y, then U, then V, each plane's rows back to back (I420, stride = width).
    Yuv420,
    /// A JPEG (4:2:0, full range) of the picture: for readers across a network, which decode it
    /// themselves.
    Jpeg,
}

impl PixelFormat {
    /// The format named `v` (`bgr`, `rgb`, `gray`, `yuv420`, `jpeg`), or an error listing them.
    pub fn parse(v: &str) -> Result<PixelFormat, Error> {
        match v {
            "bgr" => Ok(PixelFormat::Bgr),
            "rgb" => Ok(PixelFormat::Rgb),
            "gray" => Ok(PixelFormat::Gray),
            "yuv420" => Ok(PixelFormat::Yuv420),
            "jpeg" => Ok(PixelFormat::Jpeg),
            _ => Err(Error::new(
                ErrorKind::BadRequest,
                format!(
                    "format={} is not a pixel format; use bgr, rgb, gray, yuv420 or jpeg",
                    v.escape_default()
                ),
            )),
        }
    }

    /// The name, as queries and headers write it.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Bgr => "bgr",
            PixelFormat::Rgb => "rgb",
            PixelFormat::Gray => "gray",
            PixelFormat::Yuv420 => "yuv420",
            PixelFormat::Jpeg => "jpeg",
        }
    }

    /// Bytes of one row of the first plane, for `width` pixels (0 for a JPEG, which has none).
    pub fn stride(self, width: u32) -> usize {
        match self {
            PixelFormat::Bgr | PixelFormat::Rgb => 3 * width as usize,
            PixelFormat::Gray | PixelFormat::Yuv420 => width as usize,
            PixelFormat::Jpeg => 0,
        }
    }

    /// Bytes of a whole `width` x `height` picture (None for a JPEG, whose size varies). Odd
    /// sizes round the chroma planes up.
    pub fn len(self, width: u32, height: u32) -> Option<usize> {
        let (w, h) = (width as usize, height as usize);
        match self {
            PixelFormat::Bgr | PixelFormat::Rgb => Some(3 * w * h),
            PixelFormat::Gray => Some(w * h),
            PixelFormat::Yuv420 => Some(w * h + 2 * w.div_ceil(2) * h.div_ceil(2)),
            PixelFormat::Jpeg => None,
        }
    }
}

/// What a reader asks for: a box (as for `frame.jpeg`: either side alone keeps the aspect, neither
/// is the picture's own size) and a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawKey {
    /// Requested width.
    pub width: Option<u32>,
    /// Requested height.
    pub height: Option<u32>,
    /// Pixel format.
    pub format: PixelFormat,
}

impl RawKey {
    /// A key whose sides are within what camhub scales to (the one check for `frame.raw`,
    /// `/frames` and the libraries), or a `BadRequest` naming the side.
    pub fn new(
        width: Option<u32>,
        height: Option<u32>,
        format: PixelFormat,
    ) -> Result<RawKey, Error> {
        // Any source size does: only the requested sides' bounds are checked here.
        fit_size(640, 480, (1, 1), width, height)
            .map_err(|e| Error::new(ErrorKind::BadRequest, e.to_string()))?;
        Ok(RawKey {
            width,
            height,
            format,
        })
    }
}

/// One picture as a reader gets it: pixels and what they are.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// The camera's picture sequence number (increases by one per published picture).
    pub seq: u64,
    /// When camhub received the picture's first packet, ms since the Unix epoch.
    pub unix_ms: u64,
    /// The same, on the monotonic clock (for the picture's age).
    pub received: Instant,
    /// The source's presentation time (90 kHz), if it has one.
    pub pts: Option<i64>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixel format of `data`.
    pub format: PixelFormat,
    /// The pixels (planes back to back, no padding), or the JPEG.
    pub data: Bytes,
}

impl RawFrame {
    /// Bytes of one row of the first plane.
    pub fn stride(&self) -> usize {
        self.format.stride(self.width)
    }
}

/// Turns pictures into one [`RawKey`]'s pixels, keeping its scaler (a swscale context) and coders
/// from one picture to the next.
#[derive(Default)]
pub struct Converter {
    scaler: Scaler,
    jpeg_in: Option<JpegDecoder>,
    jpeg_out: Option<JpegEncoder>,
}

impl Converter {
    /// A converter with nothing prepared yet.
    pub fn new() -> Converter {
        Converter::default()
    }

    /// `frame`'s picture as `key` asks.
    pub fn convert(&mut self, frame: &Frame, key: RawKey) -> Result<RawFrame, String> {
        let (req_w, req_h) = (key.width, key.height);
        let decoded;
        let (pic, sar) = match &frame.content {
            FrameContent::Picture(p) => (p, p.sar()),
            FrameContent::Jpeg(data) => {
                let (w, h) = fit_size(frame.width, frame.height, (1, 1), req_w, req_h)
                    .map_err(|e| e.to_string())?;
                decoded = self
                    .jpeg_decoder()?
                    .decode(data, w, h)
                    .map_err(|e| e.to_string())?;
                (&decoded, (1, 1))
            }
        };
        let (w, h) =
            fit_size(frame.width, frame.height, sar, req_w, req_h).map_err(|e| e.to_string())?;
        let data = self.picture(pic, w, h, key.format)?;
        Ok(RawFrame {
            seq: frame.seq,
            unix_ms: frame.unix_ms,
            received: frame.received,
            pts: frame.pts,
            width: w,
            height: h,
            format: key.format,
            data,
        })
    }

    /// A JPEG (a reader's `format=jpeg` picture, received across the network) as `format`
    /// pixels at its own size: (width, height, pixels).
    pub fn decode_jpeg(
        &mut self,
        jpeg: &[u8],
        format: PixelFormat,
    ) -> Result<(u32, u32, Bytes), String> {
        let pic = self
            .jpeg_decoder()?
            .decode(jpeg, 0, 0)
            .map_err(|e| e.to_string())?;
        let (w, h) = (pic.width(), pic.height());
        Ok((w, h, self.picture(&pic, w, h, format)?))
    }

    fn jpeg_decoder(&mut self) -> Result<&mut JpegDecoder, String> {
        if self.jpeg_in.is_none() {
            self.jpeg_in = Some(JpegDecoder::new().map_err(|e| e.to_string())?);
        }
        self.jpeg_in
            .as_mut()
            .ok_or_else(|| "no JPEG decoder".into())
    }

    /// `pic` scaled to `w` x `h` and laid out as `format`.
    fn picture(
        &mut self,
        pic: &Picture,
        w: u32,
        h: u32,
        format: PixelFormat,
    ) -> Result<Bytes, String> {
        let ready = self.scaler.scale(pic, w, h).map_err(|e| e.to_string())?;
        let (wu, hu) = (w as usize, h as usize);
        let planes = [0, 1, 2].map(|i| {
            let (data, stride) = ready.plane(i);
            Plane { data, stride }
        });
        let bytes = match format {
            PixelFormat::Bgr | PixelFormat::Rgb => {
                let mut out = vec![0u8; 3 * wu * hu];
                let order = if format == PixelFormat::Bgr {
                    RgbOrder::Bgr
                } else {
                    RgbOrder::Rgb
                };
                full_range_420_to_rgb(planes, wu, hu, &mut out, order)
                    .map_err(|e| e.to_string())?;
                out
            }
            PixelFormat::Gray | PixelFormat::Yuv420 => {
                let mut out = Vec::with_capacity(format.len(w, h).unwrap_or(0));
                let sizes = [
                    (wu, hu),
                    (wu.div_ceil(2), hu.div_ceil(2)),
                    (wu.div_ceil(2), hu.div_ceil(2)),
                ];
                let n = if format == PixelFormat::Gray { 1 } else { 3 };
                for (p, (pw, ph)) in planes.iter().zip(sizes).take(n) {
                    for row in p.data.chunks(p.stride).take(ph) {
                        out.extend_from_slice(row.get(..pw).ok_or("short plane")?);
                    }
                }
                out
            }
            PixelFormat::Jpeg => {
                if self.jpeg_out.is_none() {
                    self.jpeg_out = Some(JpegEncoder::new().map_err(|e| e.to_string())?);
                }
                let encoder = self.jpeg_out.as_mut().ok_or("no JPEG encoder")?;
                return encoder
                    .encode(&ready, JPEG_QUALITY)
                    .map_err(|e| e.to_string());
            }
        };
        Ok(Bytes::from(bytes))
    }
}

/// One (size, format) of one camera: its converter and the last picture it made.
struct Entry {
    key: RawKey,
    /// ms since the [`RawSizes`] epoch when a reader last asked.
    used_ms: AtomicU64,
    made: Mutex<(Converter, Option<Arc<RawFrame>>)>,
}

/// A camera's raw sizes in use. See the module docs.
pub struct RawSizes {
    max: AtomicUsize,
    epoch: Instant,
    entries: Mutex<Vec<Arc<Entry>>>,
}

impl Default for RawSizes {
    fn default() -> Self {
        RawSizes {
            max: AtomicUsize::new(DEFAULT_MAX_RAW_SIZES),
            epoch: Instant::now(),
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl RawSizes {
    /// Sets the cap (`[server] max_raw_sizes`).
    pub fn set_max(&self, max: usize) {
        self.max.store(max.max(1), Ordering::Relaxed);
    }

    /// The (size, format) pairs in use.
    pub fn in_use(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// `frame` as `key` asks, converted once for every reader of this key (a reader that asks
    /// while another converts the same picture waits for it). Blocks for the conversion: call from a
    /// thread, not an async task. `TooMany` when the camera already serves `max_raw_sizes` others.
    pub fn get(&self, frame: &Frame, key: RawKey) -> Result<Arc<RawFrame>, Error> {
        let entry = self.entry(key)?;
        let mut made = entry.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = made
            .1
            .as_ref()
            .filter(|m| m.seq == frame.seq && frame.seq != 0)
        {
            return Ok(m.clone());
        }
        let raw = made.0.convert(frame, key).map(Arc::new).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot convert the picture: {e}"),
            )
        })?;
        made.1 = Some(raw.clone());
        Ok(raw)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn entry(&self, key: RawKey) -> Result<Arc<Entry>, Error> {
        let now = self.now_ms();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.iter().find(|e| e.key == key) {
            e.used_ms.store(now, Ordering::Relaxed);
            return Ok(e.clone());
        }
        let unused = UNUSED_AFTER.as_millis() as u64;
        entries.retain(|e| now.saturating_sub(e.used_ms.load(Ordering::Relaxed)) < unused);
        let max = self.max.load(Ordering::Relaxed);
        if entries.len() >= max {
            let live: Vec<String> = entries.iter().map(|e| describe(e.key)).collect();
            return Err(Error::new(
                ErrorKind::TooMany,
                format!(
                    "this camera already serves {} distinct raw sizes/formats (the limit, server.max_raw_sizes): {}; request one of those or raise the limit",
                    entries.len(),
                    live.join(", ")
                ),
            ));
        }
        let e = Arc::new(Entry {
            key,
            used_ms: AtomicU64::new(now),
            made: Mutex::new((Converter::new(), None)),
        });
        entries.push(e.clone());
        Ok(e)
    }
}

/// `width=640 format=bgr`, for error messages.
fn describe(k: RawKey) -> String {
    let side = |name: &str, v: Option<u32>| v.map(|v| format!("{name}={v} ")).unwrap_or_default();
    format!(
        "{}{}format={}",
        side("width", k.width),
        side("height", k.height),
        k.format.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> Frame {
        let mut pic = Picture::new_yuv420_full(64, 48).expect("picture");
        for (data, _, _, _) in pic.planes_mut() {
            data.fill(128);
        }
        Frame {
            seq,
            ..Frame::new(
                Instant::now(),
                1,
                Some(0),
                (64, 48),
                FrameContent::Picture(pic),
            )
        }
    }

    fn key(width: u32, format: PixelFormat) -> RawKey {
        RawKey {
            width: Some(width),
            height: None,
            format,
        }
    }

    #[test]
    fn readers_of_one_key_share_one_conversion_per_picture() {
        let sizes = RawSizes::default();
        let a = sizes.get(&frame(1), key(32, PixelFormat::Bgr)).expect("a");
        let b = sizes.get(&frame(1), key(32, PixelFormat::Bgr)).expect("b");
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second reader gets the first one's pixels"
        );
        assert_eq!((a.width, a.height, a.data.len()), (32, 24, 32 * 24 * 3));
        let c = sizes.get(&frame(2), key(32, PixelFormat::Bgr)).expect("c");
        assert!(!Arc::ptr_eq(&a, &c), "a new picture is converted again");
        assert_eq!(c.seq, 2);
    }

    #[test]
    fn the_cap_names_the_sizes_in_use() {
        let sizes = RawSizes::default();
        sizes.set_max(2);
        sizes
            .get(&frame(1), key(32, PixelFormat::Bgr))
            .expect("one");
        sizes
            .get(&frame(1), key(32, PixelFormat::Gray))
            .expect("two");
        let err = sizes
            .get(&frame(1), key(16, PixelFormat::Bgr))
            .expect_err("a third is refused");
        assert_eq!(err.kind, ErrorKind::TooMany);
        assert!(
            err.message.contains("width=32 format=gray") && err.message.contains("max_raw_sizes"),
            "{}",
            err.message
        );
        // One of those in use is still served.
        sizes
            .get(&frame(2), key(32, PixelFormat::Gray))
            .expect("in use");
    }

    #[test]
    fn formats_have_their_documented_lengths() {
        let mut c = Converter::new();
        for (format, len) in [
            (PixelFormat::Bgr, 40 * 30 * 3),
            (PixelFormat::Rgb, 40 * 30 * 3),
            (PixelFormat::Gray, 40 * 30),
            (PixelFormat::Yuv420, 40 * 30 + 2 * 20 * 15),
        ] {
            let raw = c.convert(&frame(1), key(40, format)).expect("converted");
            assert_eq!((raw.width, raw.height), (40, 30));
            assert_eq!(raw.data.len(), len, "{format:?}");
            assert_eq!(format.len(40, 30), Some(len));
        }
        let jpeg = c
            .convert(&frame(1), key(32, PixelFormat::Jpeg))
            .expect("jpeg");
        assert_eq!(&jpeg.data[..2], &[0xff, 0xd8]);
        let (w, h, bgr) = c
            .decode_jpeg(&jpeg.data, PixelFormat::Bgr)
            .expect("decoded");
        assert_eq!((w, h, bgr.len()), (32, 24, 32 * 24 * 3));
        // Grey 128 stays grey through JPEG.
        assert!(
            bgr.iter().all(|&v| (126..=130).contains(&v)),
            "{:?}",
            &bgr[..6]
        );
    }
}
