//! The output size of a JPEG variant: from the source size, its sample aspect ratio and the
//! `width`/`height` a client asked for, the even-sized picture that keeps the display aspect and
//! never upscales. Exact integer arithmetic (no floats), so the same request always maps to the same
//! variant and so to one shared encoder.

use std::fmt;

/// Largest width or height a client may request.
pub const MAX_DIMENSION: u32 = 16384;
/// Smallest width or height a client may request (and of any result).
pub const MIN_DIMENSION: u32 = 2;

/// Why [`fit_size`] refused a request. The Display text tells the user the valid range.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizeError {
    /// The requested width is outside `MIN_DIMENSION..=MAX_DIMENSION`.
    Width(u32),
    /// The requested height is outside `MIN_DIMENSION..=MAX_DIMENSION`.
    Height(u32),
    /// The source itself has width or height 0 (a bug upstream, not a bad request).
    EmptySource {
        /// Source width.
        width: u32,
        /// Source height.
        height: u32,
    },
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Width(w) => {
                write!(
                    f,
                    "width must be between {MIN_DIMENSION} and {MAX_DIMENSION} (got {w})"
                )
            }
            SizeError::Height(h) => {
                write!(
                    f,
                    "height must be between {MIN_DIMENSION} and {MAX_DIMENSION} (got {h})"
                )
            }
            SizeError::EmptySource { width, height } => {
                write!(
                    f,
                    "the source picture is {width}x{height}; no frame to scale yet"
                )
            }
        }
    }
}

impl std::error::Error for SizeError {}

/// The output size for a source of `src_w` x `src_h` pixels with sample aspect ratio `sar`
/// (`(num, den)`; `(1, 1)` for square pixels; a zero term is treated as `(1, 1)`) when a client
/// asked for `req_w` x `req_h` (`None` = not given).
///
/// - The display aspect is `src_w * sar.0 / (src_h * sar.1)`; the native display size keeps the
///   source height and corrects the width (704x576 at 12:11 → 768x576).
/// - Neither given: the native display size. One given: the other follows the display aspect.
///   Both given: the largest size with the display aspect that fits inside the box.
/// - Never upscales: a request beyond the native display size gets the native display size.
/// - Results are even (4:2:0 chroma needs it) and at least 2x2: each side is rounded to the nearest
///   even number, ties downwards, so a requested 321 becomes 320 and never exceeds the request or
///   the native size (an odd native 241 becomes 240).
///
/// ```
/// use camhub_media::size::fit_size;
/// assert_eq!(fit_size(1920, 1080, (1, 1), Some(640), None), Ok((640, 360)));
/// assert_eq!(fit_size(704, 576, (12, 11), None, None), Ok((768, 576)));
/// ```
pub fn fit_size(
    src_w: u32,
    src_h: u32,
    sar: (u32, u32),
    req_w: Option<u32>,
    req_h: Option<u32>,
) -> Result<(u32, u32), SizeError> {
    let valid = |v: u32| (MIN_DIMENSION..=MAX_DIMENSION).contains(&v);
    if let Some(w) = req_w.filter(|&w| !valid(w)) {
        return Err(SizeError::Width(w));
    }
    if let Some(h) = req_h.filter(|&h| !valid(h)) {
        return Err(SizeError::Height(h));
    }
    if src_w == 0 || src_h == 0 {
        return Err(SizeError::EmptySource {
            width: src_w,
            height: src_h,
        });
    }
    let (sar_n, sar_d) = if sar.0 == 0 || sar.1 == 0 {
        (1, 1)
    } else {
        sar
    };
    // Display aspect as the exact fraction an / ad.
    let an = u128::from(src_w) * u128::from(sar_n);
    let ad = u128::from(src_h) * u128::from(sar_d);
    // Native display size: the source height, the width corrected for non-square pixels.
    let mut native_w = round_even(an, u128::from(sar_d));
    let mut native_h = round_even(u128::from(src_h), 1);
    // A pixel aspect ratio (or a size) from the camera must not make the display size, and so the
    // pictures camhub allocates, unbounded: clamp it into MAX_DIMENSION, keeping the aspect.
    let max = u128::from(MAX_DIMENSION);
    // From the exact display aspect an / ad, not the rounded sides, so the clamped picture keeps it.
    if native_w > max {
        native_w = max;
        native_h = round_even(max * ad, an);
    }
    if native_h > max {
        native_h = max;
        native_w = round_even(max * an, ad);
    }
    // Which side binds: width binds if req_w / aspect <= req_h, i.e. req_w * ad <= req_h * an.
    let by_width = match (req_w, req_h) {
        (None, None) => return Ok(finish(native_w, native_h)),
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (Some(w), Some(h)) => u128::from(w) * ad <= u128::from(h) * an,
    };
    let (w, h) = if by_width {
        let w = u128::from(req_w.unwrap_or(MAX_DIMENSION));
        if w * u128::from(sar_d) >= an {
            (native_w, native_h)
        } else {
            (round_even(w, 1), round_even(w * ad, an))
        }
    } else {
        let h = u128::from(req_h.unwrap_or(MAX_DIMENSION));
        if h >= native_h {
            (native_w, native_h)
        } else {
            (round_even(h * an, ad), round_even(h, 1))
        }
    };
    Ok(finish(w.min(native_w), h.min(native_h)))
}

/// The even number nearest to `num / den` (ties downwards), as u128.
fn round_even(num: u128, den: u128) -> u128 {
    let twice = 2 * den;
    let (q, r) = (num / twice, num % twice);
    2 * if 2 * r > twice { q + 1 } else { q }
}

/// Clamps to at least 2x2 and into u32 (a source beyond u32 after aspect correction saturates).
fn finish(w: u128, h: u128) -> (u32, u32) {
    let side = |v: u128| u32::try_from(v.max(u128::from(MIN_DIMENSION))).unwrap_or(u32::MAX - 1);
    (side(w), side(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SQ: (u32, u32) = (1, 1);

    #[test]
    fn hd_requests() {
        assert_eq!(fit_size(1920, 1080, SQ, Some(640), None), Ok((640, 360)));
        assert_eq!(fit_size(1920, 1080, SQ, None, Some(360)), Ok((640, 360)));
        assert_eq!(
            fit_size(1920, 1080, SQ, Some(640), Some(640)),
            Ok((640, 360))
        );
        assert_eq!(
            fit_size(1920, 1080, SQ, Some(1000), Some(360)),
            Ok((640, 360))
        );
        assert_eq!(fit_size(1920, 1080, SQ, None, None), Ok((1920, 1080)));
    }

    #[test]
    fn an_absurd_pixel_aspect_cannot_make_a_huge_picture() {
        // A camera claiming 255:1 pixels (or 1:255) gets a display size within MAX_DIMENSION.
        let (w, h) = fit_size(1920, 1080, (255, 1), None, None).expect("fits");
        assert_eq!(w, MAX_DIMENSION);
        assert!((2..=1080).contains(&h), "{w}x{h}");
        let (w, h) = fit_size(16384, 16384, (1, 255), None, None).expect("fits");
        assert!(w <= MAX_DIMENSION && h <= MAX_DIMENSION, "{w}x{h}");
        let (w, h) = fit_size(1920, 1080, (u32::MAX, 1), None, Some(16384)).expect("fits");
        assert!(w <= MAX_DIMENSION && h <= MAX_DIMENSION, "{w}x{h}");
    }

    #[test]
    fn never_upscales() {
        assert_eq!(fit_size(1920, 1080, SQ, Some(4000), None), Ok((1920, 1080)));
        assert_eq!(fit_size(1920, 1080, SQ, None, Some(2000)), Ok((1920, 1080)));
        assert_eq!(
            fit_size(1920, 1080, SQ, Some(16384), Some(16384)),
            Ok((1920, 1080))
        );
        assert_eq!(
            fit_size(640, 480, SQ, Some(1920), Some(1080)),
            Ok((640, 480))
        );
    }

    #[test]
    fn non_square_pixels() {
        assert_eq!(fit_size(704, 576, (12, 11), None, None), Ok((768, 576)));
        assert_eq!(
            fit_size(704, 576, (12, 11), Some(384), None),
            Ok((384, 288))
        );
        assert_eq!(
            fit_size(704, 576, (12, 11), None, Some(288)),
            Ok((384, 288))
        );
        assert_eq!(
            fit_size(704, 576, (12, 11), Some(1000), None),
            Ok((768, 576))
        );
        // Anamorphic 1440x1080 at 4:3 displays as 1920x1080.
        assert_eq!(
            fit_size(1440, 1080, (4, 3), Some(640), None),
            Ok((640, 360))
        );
        // A zero term means square.
        assert_eq!(fit_size(704, 576, (0, 1), None, None), Ok((704, 576)));
        assert_eq!(fit_size(704, 576, (12, 0), None, None), Ok((704, 576)));
    }

    #[test]
    fn odd_sizes_round_to_even() {
        // 321 → 320 (a tie goes down, never above the request); 321 * 9/16 = 180.56 → 180.
        assert_eq!(fit_size(1280, 720, SQ, Some(321), None), Ok((320, 180)));
        // 323 → 322; 323 * 9/16 = 181.69 → 182.
        assert_eq!(fit_size(1280, 720, SQ, Some(323), None), Ok((322, 182)));
        assert_eq!(fit_size(321, 241, SQ, None, None), Ok((320, 240)));
        assert_eq!(fit_size(3, 3, SQ, Some(2), None), Ok((2, 2)));
        assert_eq!(fit_size(1, 1, SQ, None, None), Ok((2, 2)));
    }

    #[test]
    fn invalid_requests() {
        let e = fit_size(1920, 1080, SQ, Some(0), None).expect_err("w=0");
        assert_eq!(e, SizeError::Width(0));
        assert_eq!(e.to_string(), "width must be between 2 and 16384 (got 0)");
        assert_eq!(
            fit_size(1920, 1080, SQ, Some(100_000), None),
            Err(SizeError::Width(100_000))
        );
        assert_eq!(
            fit_size(1920, 1080, SQ, Some(1), None),
            Err(SizeError::Width(1))
        );
        assert_eq!(
            fit_size(1920, 1080, SQ, None, Some(0)),
            Err(SizeError::Height(0))
        );
        assert_eq!(
            fit_size(1920, 1080, SQ, None, Some(16385)),
            Err(SizeError::Height(16385))
        );
        assert!(fit_size(1920, 1080, SQ, Some(16384), Some(2)).is_ok());
        assert!(matches!(
            fit_size(0, 1080, SQ, None, None),
            Err(SizeError::EmptySource { .. })
        ));
    }

    #[test]
    fn extreme_inputs_do_not_overflow() {
        assert!(fit_size(u32::MAX, u32::MAX, (u32::MAX, 1), Some(16384), Some(16384)).is_ok());
        assert!(fit_size(u32::MAX, 1, (u32::MAX, 1), None, None).is_ok());
        assert!(fit_size(1, u32::MAX, (1, u32::MAX), Some(2), None).is_ok());
    }

    proptest! {
        #[test]
        fn results_are_even_bounded_and_keep_aspect(
            src_w in 2u32..8192, src_h in 2u32..8192,
            sar_n in 1u32..4, sar_d in 1u32..4,
            req_w in proptest::option::of(2u32..=16384), req_h in proptest::option::of(2u32..=16384),
        ) {
            let (w, h) = fit_size(src_w, src_h, (sar_n, sar_d), req_w, req_h).expect("valid request");
            prop_assert!(w % 2 == 0 && h % 2 == 0 && w >= 2 && h >= 2, "{w}x{h}");
            // Never larger than the native display size (height kept, width corrected).
            let (nw, nh) = fit_size(src_w, src_h, (sar_n, sar_d), None, None).expect("native");
            let display_w = f64::from(src_w) * f64::from(sar_n) / f64::from(sar_d);
            prop_assert!(f64::from(w) <= display_w + 1.0 && h <= src_h, "{w}x{h} > {display_w}x{src_h}");
            prop_assert!(w <= nw && h <= nh);
            // Never larger than what was asked for.
            prop_assert!(req_w.is_none_or(|r| w <= r) && req_h.is_none_or(|r| h <= r));
            // Aspect within a pixel (plus rounding of both sides), unless clamped to the minimum.
            let aspect = display_w / f64::from(src_h);
            if w > 2 && h > 2 {
                let err = (f64::from(w) - f64::from(h) * aspect).abs();
                prop_assert!(err <= 1.0 + aspect + 1e-9 || (f64::from(h) - f64::from(w) / aspect).abs() <= 1.0 + 1.0 / aspect + 1e-9,
                    "{w}x{h} vs aspect {aspect}");
            }
        }
    }
}
