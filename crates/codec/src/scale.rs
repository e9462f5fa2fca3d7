//! [`Scaler`]: any decoded picture to full-range BT.601 YUV 4:2:0 at a requested size: what a JPEG
//! holds. Camera video is almost always limited range (16–235) while JPEG is full range (0–255), and
//! HD cameras use the BT.709 matrix while JPEG decoders read BT.601; the scaler converts both,
//! otherwise JPEGs come out washed out or with shifted colours.
//!
//! libswscale scales and converts the range, but never the matrix: given two different matrices it
//! converts through an intermediate RGB picture, which made a BT.709 preview cost ~40 % more and a
//! native 1080p picture ~3×. So swscale keeps the source's matrix, and the matrix is converted after,
//! on the small output, by `camhub_media::colour` (one integer pass). At native size an 8-bit 4:2:0
//! picture skips swscale altogether: that same pass converts range and matrix at once.

use camhub_media::colour::{Plane, PlaneMut, SampleRange, YcbcrConversion};
use ff::format::Pixel;
use ff::software::scaling::{self, Flags};
use ff::util::color::{Range, Space};
use ffmpeg_next as ff;

use crate::picture::ColourMatrix;
use crate::{CodecError, Picture};

/// Converts decoded pictures to JPEG-ready ones of one size, keeping what it prepared for one
/// source (format, size, range, matrix) and rebuilding it when the source changes (a camera that
/// switches resolution mid-stream).
pub struct Scaler {
    prepared: Option<(Key, Path)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    src_format: Pixel,
    src_w: u32,
    src_h: u32,
    src_full: bool,
    src_matrix: ColourMatrix,
    dst_w: u32,
    dst_h: u32,
}

/// How one source becomes the output.
enum Path {
    /// Same size and already 8-bit 4:2:0: one pass of `colour` converts range and matrix, several
    /// times cheaper than swscale's same-size range conversion alone.
    Direct(YcbcrConversion),
    /// swscale scales (or repacks) and converts the range, keeping the matrix; `matrix` then
    /// converts the matrix of its output in place (`None` for BT.601 sources).
    Swscale {
        ctx: scaling::Context,
        matrix: Option<YcbcrConversion>,
    },
}

// SAFETY: a swscale context has no thread affinity: it may be used from any thread, one at a time.
// Every method that touches it takes `&mut self`, so it is never used from two threads at once; a
// Scaler is only moved (a reader's conversion state, kept behind a mutex, runs on whichever thread
// asks for the picture).
#[allow(unsafe_code)]
unsafe impl Send for Scaler {}

impl Default for Scaler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scaler {
    /// A scaler with nothing prepared yet (done on first use).
    pub fn new() -> Scaler {
        Scaler { prepared: None }
    }

    /// Returns `src` as full-range BT.601 YUV 4:2:0 at `width` x `height` (always
    /// [`Picture::is_jpeg_ready`]).
    pub fn scale(&mut self, src: &Picture, width: u32, height: u32) -> Result<Picture, CodecError> {
        let key = Key {
            src_format: src.frame.format(),
            src_w: src.width(),
            src_h: src.height(),
            src_full: src.is_full_range(),
            src_matrix: src.matrix(),
            dst_w: width,
            dst_h: height,
        };
        if self.prepared.as_ref().map(|(k, _)| *k) != Some(key) {
            self.prepared = Some((key, prepare(key)?));
        }
        let Some((_, path)) = self.prepared.as_mut() else {
            return Err(CodecError::Unsupported("scaler missing".into()));
        };
        let mut out = Picture::from_frame(ff::frame::Video::new(Pixel::YUVJ420P, width, height));
        match path {
            Path::Direct(conversion) => {
                let (w, h) = (width as usize, height as usize);
                let [y, cb, cr] = [0, 1, 2].map(|i| {
                    let (data, stride) = src.plane(i);
                    Plane { data, stride }
                });
                let [oy, ocb, ocr] = out
                    .planes_mut()
                    .map(|(data, stride, _, _)| PlaneMut { data, stride });
                conversion
                    .convert_420(w, h, [y, cb, cr], [oy, ocb, ocr])
                    .map_err(|e| CodecError::Unsupported(format!("converting colours: {e}")))?;
            }
            Path::Swscale { ctx, matrix } => {
                ctx.run(&src.frame, &mut out.frame)
                    .map_err(|source| CodecError::Ffmpeg {
                        what: "scaling",
                        source,
                    })?;
                if let Some(conversion) = matrix {
                    let planes = out
                        .planes_mut()
                        .map(|(data, stride, _, _)| PlaneMut { data, stride });
                    conversion
                        .convert_420_in_place(width as usize, height as usize, planes)
                        .map_err(|e| CodecError::Unsupported(format!("converting colours: {e}")))?;
                }
            }
        }
        out.frame.set_color_range(Range::JPEG);
        out.frame.set_color_space(Space::BT470BG);
        Ok(out)
    }
}

/// Chooses and prepares the path for one source.
fn prepare(key: Key) -> Result<Path, CodecError> {
    let range = if key.src_full {
        SampleRange::Full
    } else {
        SampleRange::Limited
    };
    let jpeg = ColourMatrix::Bt601.luma_weights();
    let same_size = (key.src_w, key.src_h) == (key.dst_w, key.dst_h);
    if same_size && matches!(key.src_format, Pixel::YUV420P | Pixel::YUVJ420P) {
        let conversion = YcbcrConversion::new(key.src_matrix.luma_weights(), range, jpeg);
        return Ok(Path::Direct(conversion));
    }
    let mut ctx = scaling::Context::get(
        key.src_format,
        key.src_w,
        key.src_h,
        // The deprecated "J" format makes swscale initialise with a full-range destination; with a
        // plain YUV420P destination it picks its unscaled copy path at equal sizes and ignores the
        // range set afterwards (FFmpeg 5.1), leaving black at 16.
        Pixel::YUVJ420P,
        key.dst_w,
        key.dst_h,
        // Bilinear: the quality difference to bicubic is invisible at preview sizes and it costs
        // about half as much.
        Flags::BILINEAR,
    )
    .map_err(|source| CodecError::Ffmpeg {
        what: "creating a scaler",
        source,
    })?;
    set_range(&mut ctx, key.src_full);
    let matrix = (key.src_matrix != ColourMatrix::Bt601)
        .then(|| YcbcrConversion::new(key.src_matrix.luma_weights(), SampleRange::Full, jpeg));
    Ok(Path::Swscale { ctx, matrix })
}

/// Tells swscale the source's range and asks for full range, with the same matrix on both sides so
/// that it stays on its single-pass YUV → YUV path (different matrices would send it through RGB).
fn set_range(ctx: &mut scaling::Context, src_full: bool) {
    // Brightness 0, contrast and saturation 1.0 (16.16 fixed point): swscale's own defaults.
    let (brightness, contrast, saturation) = (0, 1 << 16, 1 << 16);
    // SAFETY: plain calls on a valid SwsContext owned by `ctx`; the coefficient table returned by
    // sws_getCoefficients is static, and swscale copies it.
    #[allow(unsafe_code)]
    unsafe {
        let coefficients = ff::ffi::sws_getCoefficients(ColourMatrix::Bt601.sws_colorspace());
        // The result is not checked: for YUV → YUV FFmpeg 5.1 returns -1 after it has applied the new
        // ranges. The colour tests check the outcome instead.
        ff::ffi::sws_setColorspaceDetails(
            ctx.as_mut_ptr(),
            coefficients,
            i32::from(src_full),
            coefficients,
            1,
            brightness,
            contrast,
            saturation,
        );
    }
}
