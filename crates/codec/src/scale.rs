//! [`Scaler`]: any decoded picture to full-range YUV 4:2:0 at a requested size, through libswscale.
//! Camera video is almost always limited range (16–235) while JPEG is full range (0–255); the scaler
//! converts the range, otherwise every JPEG would come out washed out.

use ff::format::Pixel;
use ff::software::scaling::{self, Flags};
use ff::util::color::Range;
use ffmpeg_next as ff;

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

    /// Returns `src` as full-range YUV 4:2:0 at `width` x `height`.
    pub fn scale(&mut self, src: &Picture, width: u32, height: u32) -> Result<Picture, CodecError> {
        let key = Key {
            src_format: src.frame.format(),
            src_w: src.width(),
            src_h: src.height(),
            src_full: src.is_full_range(),
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
            set_ranges(&mut ctx, key.src_full);
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
        Ok(Picture::from_frame(out))
    }
}

fn set_ranges(ctx: &mut scaling::Context, src_full: bool) {
    // SAFETY: plain calls on a valid SwsContext owned by `ctx`; the coefficient tables are static.
    #[allow(unsafe_code)]
    unsafe {
        let sws = ctx.as_mut_ptr();
        let mut inv_table: *mut i32 = std::ptr::null_mut();
        let mut table: *mut i32 = std::ptr::null_mut();
        let (mut src_range, mut dst_range, mut brightness, mut contrast, mut saturation) =
            (0, 0, 0, 0, 0);
        if ff::ffi::sws_getColorspaceDetails(
            sws,
            &mut inv_table,
            &mut src_range,
            &mut table,
            &mut dst_range,
            &mut brightness,
            &mut contrast,
            &mut saturation,
        ) < 0
        {
            return;
        }
        ff::ffi::sws_setColorspaceDetails(
            sws,
            inv_table,
            i32::from(src_full),
            table,
            1,
            brightness,
            contrast,
            saturation,
        );
    }
}
