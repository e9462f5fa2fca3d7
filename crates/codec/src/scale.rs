//! [`Scaler`]: any decoded picture to full-range BT.601 YUV 4:2:0 at a requested size, through
//! libswscale: what a JPEG holds. Camera video is almost always limited range (16–235) while JPEG is
//! full range (0–255), and HD cameras use the BT.709 matrix while JPEG decoders read BT.601; the scaler
//! converts both, otherwise JPEGs come out washed out or with shifted colours.

use ff::format::Pixel;
use ff::software::scaling::{self, Flags};
use ff::util::color::{Range, Space};
use ffmpeg_next as ff;

use crate::picture::ColourMatrix;
use crate::{CodecError, Picture};

/// A cached swscale context for one (source format and size → destination size) pairing; it is rebuilt
/// when the source changes (a camera that switches resolution mid-stream).
pub struct Scaler {
    ctx: Option<(Key, scaling::Context)>,
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

impl Default for Scaler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scaler {
    /// A scaler with no context yet (made on first use).
    pub fn new() -> Scaler {
        Scaler { ctx: None }
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
        if self.ctx.as_ref().map(|(k, _)| *k) != Some(key) {
            let ctx = scaling::Context::get(
                key.src_format,
                key.src_w,
                key.src_h,
                // The deprecated "J" format makes swscale initialise with a full-range destination;
                // with a plain YUV420P destination it picks its unscaled copy path at equal sizes
                // and ignores the range set afterwards (FFmpeg 5.1), leaving black at 16.
                Pixel::YUVJ420P,
                width,
                height,
                // Bilinear: the quality difference to bicubic is invisible at preview sizes and it
                // costs about half as much.
                Flags::BILINEAR,
            )
            .map_err(|source| CodecError::Ffmpeg {
                what: "creating a scaler",
                source,
            })?;
            let mut ctx = ctx;
            set_colour_details(&mut ctx, key.src_full, key.src_matrix);
            self.ctx = Some((key, ctx));
        }
        let Some((_, ctx)) = self.ctx.as_mut() else {
            return Err(CodecError::Unsupported("scaler missing".into()));
        };
        let mut out = ff::frame::Video::new(Pixel::YUVJ420P, width, height);
        ctx.run(&src.frame, &mut out)
            .map_err(|source| CodecError::Ffmpeg {
                what: "scaling",
                source,
            })?;
        out.set_color_range(Range::JPEG);
        out.set_color_space(Space::BT470BG);
        Ok(Picture::from_frame(out))
    }
}

/// Tells swscale the source's range and matrix and asks for full-range BT.601 (JPEG). When the
/// matrices differ, swscale converts through an intermediate RGB picture (two passes instead of one),
/// also at equal sizes; BT.601 sources keep the single pass.
fn set_colour_details(ctx: &mut scaling::Context, src_full: bool, src_matrix: ColourMatrix) {
    // Brightness 0, contrast and saturation 1.0 (16.16 fixed point): swscale's own defaults.
    let (brightness, contrast, saturation) = (0, 1 << 16, 1 << 16);
    // SAFETY: plain calls on a valid SwsContext owned by `ctx`; the coefficient tables returned by
    // sws_getCoefficients are static, and swscale copies them.
    #[allow(unsafe_code)]
    unsafe {
        let src_coefficients = ff::ffi::sws_getCoefficients(src_matrix.sws_colorspace());
        let dst_coefficients = ff::ffi::sws_getCoefficients(ColourMatrix::Bt601.sws_colorspace());
        // The result is not checked: for YUV → YUV with equal matrices FFmpeg 5.1 returns -1 after it
        // has applied the new ranges. The colour tests check the outcome instead.
        ff::ffi::sws_setColorspaceDetails(
            ctx.as_mut_ptr(),
            src_coefficients,
            i32::from(src_full),
            dst_coefficients,
            1,
            brightness,
            contrast,
            saturation,
        );
    }
}
