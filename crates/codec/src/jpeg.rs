//! JPEG through libjpeg-turbo: [`JpegEncoder`] encodes full-range YUV 4:2:0 planes straight into a
//! JPEG (no RGB round trip), [`JpegDecoder`] decodes camera JPEGs to YUV, using libjpeg-turbo's
//! scaled decoding (1/2, 1/4, 1/8) when a smaller picture is wanted: far cheaper than full decode
//! followed by a scale.

use bytes::Bytes;
use ff::format::Pixel;
use ff::util::color::Range;
use ffmpeg_next as ff;
use turbojpeg::{Compressor, Decompressor, ScalingFactor, Subsamp, YuvImage, YuvPlanesImage};

use crate::{CodecError, Picture};

/// A reusable JPEG encoder (one per encoding thread).
pub struct JpegEncoder {
    compressor: Compressor,
}

impl JpegEncoder {
    /// A new encoder.
    pub fn new() -> Result<JpegEncoder, CodecError> {
        let compressor = Compressor::new().map_err(|source| CodecError::Jpeg {
            what: "creating a JPEG encoder",
            source,
        })?;
        Ok(JpegEncoder { compressor })
    }

    /// Encodes a full-range 4:2:0 picture at `quality` (1–100). The picture must be
    /// [`Picture::is_jpeg_ready`] (the [`crate::Scaler`]'s output always is).
    pub fn encode(&mut self, pic: &Picture, quality: u8) -> Result<Bytes, CodecError> {
        if !pic.is_jpeg_ready() {
            return Err(CodecError::Unsupported(format!(
                "cannot JPEG-encode {pic:?} without scaling"
            )));
        }
        let (w, h) = (pic.width() as usize, pic.height() as usize);
        let (y, ys) = pic.plane(0);
        let (u, us) = pic.plane(1);
        let (v, vs) = pic.plane(2);
        // FFmpeg pads its planes; hand turbojpeg exactly the rows it reads so its bounds check holds.
        let ch = h.div_ceil(2);
        let image = YuvPlanesImage {
            y_plane: &y[..ys * (h - 1) + w],
            u_plane: &u[..us * (ch - 1) + w.div_ceil(2)],
            v_plane: &v[..vs * (ch - 1) + w.div_ceil(2)],
            width: w,
            height: h,
            y_stride: ys,
            u_stride: us,
            v_stride: vs,
            subsamp: Subsamp::Sub2x2,
        };
        self.compressor
            .set_quality(i32::from(quality.clamp(1, 100)))
            .map_err(|source| CodecError::Jpeg {
                what: "setting JPEG quality",
                source,
            })?;
        let out = self
            .compressor
            .compress_yuv_planes_to_owned(&image)
            .map_err(|source| CodecError::Jpeg {
                what: "encoding a JPEG",
                source,
            })?;
        Ok(Bytes::copy_from_slice(&out))
    }
}

/// Largest JPEG side camhub decodes (a header can claim 65535; decoding it would need gigabytes).
pub const MAX_SIDE: usize = 16384;
/// Largest JPEG area camhub decodes.
pub const MAX_PIXELS: usize = 64_000_000;

/// A reusable JPEG decoder for JPEG sources (MJPEG cameras, snapshot URLs).
pub struct JpegDecoder {
    decompressor: Decompressor,
}

impl JpegDecoder {
    /// A new decoder.
    pub fn new() -> Result<JpegDecoder, CodecError> {
        let decompressor = Decompressor::new().map_err(|source| CodecError::Jpeg {
            what: "creating a JPEG decoder",
            source,
        })?;
        Ok(JpegDecoder { decompressor })
    }

    /// Decodes `jpeg` to a full-range YUV picture, at the smallest of 1, 1/2, 1/4 or 1/8 scale that is
    /// still at least `min_width` x `min_height` (pass 0, 0 for full size).
    pub fn decode(
        &mut self,
        jpeg: &[u8],
        min_width: u32,
        min_height: u32,
    ) -> Result<Picture, CodecError> {
        let header = self
            .decompressor
            .read_header(jpeg)
            .map_err(|source| CodecError::Jpeg {
                what: "reading a JPEG header",
                source,
            })?;
        if header.width == 0
            || header.height == 0
            || header.width > MAX_SIDE
            || header.height > MAX_SIDE
            || header.width * header.height > MAX_PIXELS
        {
            return Err(CodecError::Unsupported(format!(
                "a {}x{} JPEG is beyond what camhub decodes ({MAX_SIDE} per side, {} megapixels)",
                header.width,
                header.height,
                MAX_PIXELS / 1_000_000
            )));
        }
        let mut factor = ScalingFactor::ONE;
        let full_size = min_width == 0 && min_height == 0;
        for denom in [8, 4, 2].into_iter().filter(|_| !full_size) {
            let f = ScalingFactor::new(1, denom);
            if f.scale(header.width) >= min_width as usize
                && f.scale(header.height) >= min_height as usize
            {
                factor = f;
                break;
            }
        }
        self.decompressor
            .set_scaling_factor(factor)
            .map_err(|source| CodecError::Jpeg {
                what: "setting the JPEG scale",
                source,
            })?;
        let (w, h) = (factor.scale(header.width), factor.scale(header.height));
        let (fmt, subsamp) = match header.subsamp {
            Subsamp::Sub2x2 => (Pixel::YUV420P, Subsamp::Sub2x2),
            Subsamp::Sub2x1 => (Pixel::YUV422P, Subsamp::Sub2x1),
            Subsamp::None => (Pixel::YUV444P, Subsamp::None),
            Subsamp::Gray => (Pixel::GRAY8, Subsamp::Gray),
            other => {
                return Err(CodecError::Unsupported(format!(
                    "JPEG subsampling {other:?}"
                )))
            }
        };
        let size =
            turbojpeg::yuv_pixels_len(w, 1, h, subsamp).map_err(|source| CodecError::Jpeg {
                what: "sizing a JPEG decode",
                source,
            })?;
        let mut buf = vec![0u8; size];
        self.decompressor
            .decompress_to_yuv(
                jpeg,
                YuvImage {
                    pixels: &mut buf[..],
                    width: w,
                    align: 1,
                    height: h,
                    subsamp,
                },
            )
            .map_err(|source| CodecError::Jpeg {
                what: "decoding a JPEG",
                source,
            })?;
        let (wu, hu) = (
            u32::try_from(w).map_err(|_| CodecError::Unsupported("JPEG too large".into()))?,
            u32::try_from(h).map_err(|_| CodecError::Unsupported("JPEG too large".into()))?,
        );
        let mut frame = ff::frame::Video::new(fmt, wu, hu);
        frame.set_color_range(Range::JPEG);
        // turbojpeg packs the planes back to back, each padded to whole MCUs (4:2:0: even width and
        // height for luma); FFmpeg's planes have their own strides. Copy row by row.
        let pad2 = |v: usize| v + (v & 1);
        let (yw, yh, cw, ch) = match subsamp {
            Subsamp::Sub2x2 => (pad2(w), pad2(h), pad2(w) / 2, pad2(h) / 2),
            Subsamp::Sub2x1 => (pad2(w), h, pad2(w) / 2, h),
            Subsamp::None => (w, h, w, h),
            _ => (w, h, 0, 0),
        };
        // (source stride, source rows, bytes to copy per row, rows to copy)
        let layout = [
            (yw, yh, w, h),
            (cw, ch, w.div_ceil(yw / cw.max(1)), ch),
            (cw, ch, w.div_ceil(yw / cw.max(1)), ch),
        ];
        let planes = if subsamp == Subsamp::Gray { 1 } else { 3 };
        if frame.planes() < planes {
            return Err(CodecError::Unsupported(format!(
                "cannot allocate a {w}x{h} picture"
            )));
        }
        let mut offset = 0;
        for (i, &(stride_src, rows_src, copy_w, copy_rows)) in
            layout.iter().enumerate().take(planes)
        {
            let stride = frame.stride(i);
            let dst = frame.data_mut(i);
            for row in 0..copy_rows {
                let src = buf.get(offset + row * stride_src..offset + row * stride_src + copy_w);
                let d = dst.get_mut(row * stride..row * stride + copy_w);
                if let (Some(s), Some(d)) = (src, d) {
                    d.copy_from_slice(s);
                }
            }
            offset += stride_src * rows_src;
        }
        Ok(Picture::from_frame(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Bytes {
        let pic = Picture::new_yuv420_full(w, h).expect("picture");
        JpegEncoder::new()
            .expect("encoder")
            .encode(&pic, 80)
            .expect("encode")
    }

    #[test]
    fn decodes_at_the_smallest_scale_that_is_big_enough() {
        let src = jpeg(640, 360);
        let mut dec = JpegDecoder::new().expect("decoder");
        let size = |dec: &mut JpegDecoder, w, h| {
            let pic = dec.decode(&src, w, h).expect("decode");
            (pic.width(), pic.height())
        };
        // 0 x 0 is documented as full size (it once meant 1/8).
        assert_eq!(size(&mut dec, 0, 0), (640, 360));
        assert_eq!(size(&mut dec, 640, 360), (640, 360));
        assert_eq!(size(&mut dec, 320, 0), (320, 180));
        assert_eq!(size(&mut dec, 321, 0), (640, 360));
        assert_eq!(size(&mut dec, 160, 90), (160, 90));
        assert_eq!(size(&mut dec, 0, 91), (320, 180));
        assert_eq!(size(&mut dec, 1, 1), (80, 45));
    }
}
