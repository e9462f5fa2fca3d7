//! [`Picture`]: one decoded video frame in planar YUV, owned, sendable between threads. It wraps an
//! FFmpeg frame so decoder output reaches the scaler and the JPEG encoder without a copy.

use camhub_media::colour::LumaWeights;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::color::{Range, Space};
use ffmpeg_next::util::frame::video::Video;

use crate::CodecError;

/// The matrix that turns a picture's YCbCr samples into RGB, read the way FFmpeg reads it.
///
/// HD cameras signal BT.709 in the stream (H.264/H.265 VUI); JPEG/JFIF is always BT.601, so a BT.709
/// picture written into a JPEG as it is comes out with wrong colours (red R 233 instead of 254, green
/// with a red cast), though black and white stay right. A stream that signals nothing, or something
/// FFmpeg has no coefficients for, is [`ColourMatrix::Bt601`]: FFmpeg 5.1's `ffmpeg` CLI and `ffplay`
/// do the same (swscale's default, whatever the picture size), so camhub's pictures match what users
/// compare them with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColourMatrix {
    /// ITU-R BT.601 (BT.470BG, SMPTE 170M): SD video, JPEG, and anything unsignalled.
    Bt601,
    /// ITU-R BT.709: HD video.
    Bt709,
    /// ITU-R BT.2020 (constant or non-constant luminance; the coefficients are the same).
    Bt2020,
    /// SMPTE 240M (early HDTV).
    Smpte240m,
    /// FCC 73.682 (NTSC 1953).
    Fcc,
}

impl ColourMatrix {
    /// The matrix of FFmpeg's colour space `space`, as swscale's `parse_yuv_type` maps it.
    pub(crate) fn from_space(space: Space) -> ColourMatrix {
        match space {
            Space::BT709 => ColourMatrix::Bt709,
            Space::BT2020NCL | Space::BT2020CL => ColourMatrix::Bt2020,
            Space::SMPTE240M => ColourMatrix::Smpte240m,
            Space::FCC => ColourMatrix::Fcc,
            // BT470BG and SMPTE170M are BT.601; FFmpeg reads unspecified, reserved, RGB, YCgCo and
            // the newer spaces as BT.601 too.
            _ => ColourMatrix::Bt601,
        }
    }

    /// swscale's `SWS_CS_*` number for this matrix (libswscale/swscale.h).
    pub(crate) fn sws_colorspace(self) -> i32 {
        match self {
            ColourMatrix::Bt601 => 5,     // SWS_CS_ITU601
            ColourMatrix::Bt709 => 1,     // SWS_CS_ITU709
            ColourMatrix::Fcc => 4,       // SWS_CS_FCC
            ColourMatrix::Smpte240m => 7, // SWS_CS_SMPTE240M
            ColourMatrix::Bt2020 => 9,    // SWS_CS_BT2020
        }
    }

    /// This matrix's luma weights, for `camhub_media::colour`'s conversion to JPEG's BT.601.
    pub fn luma_weights(self) -> LumaWeights {
        match self {
            ColourMatrix::Bt601 => LumaWeights::BT601,
            ColourMatrix::Bt709 => LumaWeights::BT709,
            ColourMatrix::Bt2020 => LumaWeights::BT2020,
            ColourMatrix::Smpte240m => LumaWeights::SMPTE240M,
            ColourMatrix::Fcc => LumaWeights::FCC,
        }
    }
}

/// One decoded (or generated) picture: planar YUV, its size, pixel aspect ratio, colour range and
/// colour matrix.
pub struct Picture {
    pub(crate) frame: Video,
}

impl Picture {
    /// A new full-range YUV 4:2:0 picture (all planes zeroed), for generated content (test pattern,
    /// placeholders). Width and height must be even and non-zero.
    pub fn new_yuv420_full(width: u32, height: u32) -> Result<Picture, CodecError> {
        if width == 0
            || height == 0
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || width > 16384
            || height > 16384
        {
            return Err(CodecError::Unsupported(format!(
                "bad picture size {width}x{height}"
            )));
        }
        let mut frame = Video::new(Pixel::YUV420P, width, height);
        frame.set_color_range(Range::JPEG);
        Ok(Picture { frame })
    }

    /// A new YUV 4:2:0 picture of any size from 1x1 up (odd sizes too: chroma planes are
    /// `ceil(width / 2)` x `ceil(height / 2)`), its samples read with `full_range` and `matrix`;
    /// planes uninitialised until written through [`Picture::planes_mut`]. For transformed
    /// pictures.
    pub fn new_yuv420(
        width: u32,
        height: u32,
        full_range: bool,
        matrix: ColourMatrix,
    ) -> Result<Picture, CodecError> {
        if width == 0 || height == 0 || width > 16384 || height > 16384 {
            return Err(CodecError::Unsupported(format!(
                "bad picture size {width}x{height}"
            )));
        }
        let mut frame = Video::new(Pixel::YUV420P, width, height);
        frame.set_color_range(if full_range { Range::JPEG } else { Range::MPEG });
        frame.set_color_space(match matrix {
            ColourMatrix::Bt601 => Space::BT470BG,
            ColourMatrix::Bt709 => Space::BT709,
            ColourMatrix::Bt2020 => Space::BT2020NCL,
            ColourMatrix::Smpte240m => Space::SMPTE240M,
            ColourMatrix::Fcc => Space::FCC,
        });
        Ok(Picture { frame })
    }

    /// The planes of an 8-bit planar YUV picture (4:2:0, 4:2:2, 4:4:4, 4:4:0, 4:1:1, any range)
    /// as `(width, height, stride)` of Y, U and V; None for other formats (semi-planar, 10-bit,
    /// RGB), which go through the [`crate::Scaler`] first.
    pub fn yuv_layout(&self) -> Option<[(u32, u32, usize); 3]> {
        let (w, h) = (self.width(), self.height());
        let (cw, ch) = match self.frame.format() {
            Pixel::YUV420P | Pixel::YUVJ420P => (w.div_ceil(2), h.div_ceil(2)),
            Pixel::YUV422P | Pixel::YUVJ422P => (w.div_ceil(2), h),
            Pixel::YUV444P | Pixel::YUVJ444P => (w, h),
            Pixel::YUV440P | Pixel::YUVJ440P => (w, h.div_ceil(2)),
            Pixel::YUV411P => (w.div_ceil(4), h),
            _ => return None,
        };
        Some([
            (w, h, self.frame.stride(0)),
            (cw, ch, self.frame.stride(1)),
            (cw, ch, self.frame.stride(2)),
        ])
    }

    pub(crate) fn from_frame(frame: Video) -> Picture {
        Picture { frame }
    }

    /// The presentation time the decoder carried over from the packet this picture came from
    /// (the `pts` given to [`crate::Decoder::decode`]); None when the packet had none. With frame
    /// threads a picture comes out one or more packets after its own, so this, not the packet just
    /// fed, says which packet it is.
    pub fn pts(&self) -> Option<i64> {
        self.frame.pts()
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.frame.width()
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.frame.height()
    }

    /// Sample (pixel) aspect ratio as (num, den); (1, 1) when square or unknown.
    pub fn sar(&self) -> (u32, u32) {
        let r = self.frame.aspect_ratio();
        match (u32::try_from(r.numerator()), u32::try_from(r.denominator())) {
            (Ok(n), Ok(d)) if n > 0 && d > 0 => (n, d),
            _ => (1, 1),
        }
    }

    /// True if the samples use the full 0–255 range (JPEG), false for limited (16–235) video range.
    pub fn is_full_range(&self) -> bool {
        matches!(
            self.frame.format(),
            Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P
        ) || self.frame.color_range() == Range::JPEG
    }

    /// The matrix of this picture's YCbCr samples (BT.601 unless the stream signals another one).
    pub fn matrix(&self) -> ColourMatrix {
        ColourMatrix::from_space(self.frame.color_space())
    }

    /// True if this picture is planar 4:2:0 in full range with the BT.601 matrix, i.e. can be
    /// JPEG-encoded as it is. A BT.709 picture is not, even at the wanted size: it must go through the
    /// [`crate::Scaler`], which converts the matrix.
    pub fn is_jpeg_ready(&self) -> bool {
        matches!(self.frame.format(), Pixel::YUV420P | Pixel::YUVJ420P)
            && self.is_full_range()
            && self.matrix() == ColourMatrix::Bt601
    }

    /// Mutable access to the three planes as `(data, stride, width, height)`, for drawing and for
    /// the scaler's colour conversion. Only for 8-bit 4:2:0 pictures: those made by
    /// [`Picture::new_yuv420_full`] and the scaler's output.
    pub fn planes_mut(&mut self) -> [(&mut [u8], usize, usize, usize); 3] {
        let (w, h) = (self.width() as usize, self.height() as usize);
        let strides = [
            self.frame.stride(0),
            self.frame.stride(1),
            self.frame.stride(2),
        ];
        // SAFETY-free split: take the three planes one at a time through FFmpeg's accessors.
        let y = self.frame.data_mut(0).as_mut_ptr();
        let u = self.frame.data_mut(1).as_mut_ptr();
        let v = self.frame.data_mut(2).as_mut_ptr();
        let lens = [
            strides[0] * h,
            strides[1] * h.div_ceil(2),
            strides[2] * h.div_ceil(2),
        ];
        // SAFETY: the three planes are distinct allocations (or disjoint parts of one buffer) owned
        // by this frame, each at least stride * rows long; the borrow of `self` covers all three.
        #[allow(unsafe_code)]
        unsafe {
            [
                (std::slice::from_raw_parts_mut(y, lens[0]), strides[0], w, h),
                (
                    std::slice::from_raw_parts_mut(u, lens[1]),
                    strides[1],
                    w.div_ceil(2),
                    h.div_ceil(2),
                ),
                (
                    std::slice::from_raw_parts_mut(v, lens[2]),
                    strides[2],
                    w.div_ceil(2),
                    h.div_ceil(2),
                ),
            ]
        }
    }

    /// Plane `i` (0 = Y, 1 = U, 2 = V) and its stride.
    pub fn plane(&self, i: usize) -> (&[u8], usize) {
        (self.frame.data(i), self.frame.stride(i))
    }

    /// The luma plane and its stride when it is 8 bits per sample (every 8-bit planar or
    /// semi-planar YUV format and grey), for analysis that needs brightness only (motion
    /// detection); None for other formats (10-bit, packed RGB), which go through the
    /// [`crate::Scaler`] first.
    pub fn luma8(&self) -> Option<(&[u8], usize)> {
        match self.frame.format() {
            Pixel::YUV420P
            | Pixel::YUVJ420P
            | Pixel::YUV422P
            | Pixel::YUVJ422P
            | Pixel::YUV444P
            | Pixel::YUVJ444P
            | Pixel::YUV440P
            | Pixel::YUVJ440P
            | Pixel::YUV411P
            | Pixel::NV12
            | Pixel::NV21
            | Pixel::GRAY8 => Some(self.plane(0)),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Picture({}x{} {:?} {:?})",
            self.width(),
            self.height(),
            self.frame.format(),
            self.matrix()
        )
    }
}
