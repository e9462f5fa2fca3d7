//! Converting 8-bit 4:2:0 YCbCr pictures from a camera's colour matrix and range to JPEG's: full range
//! and BT.601. HD cameras (Hikvision, Dahua, nearly every H.264/H.265 camera above 720p) signal BT.709,
//! but JPEG/JFIF decoders read BT.601, so a BT.709 picture written into a JPEG as it is shows red at
//! 233 instead of 254 and a red cast on green. libswscale can convert the matrix, but only through an
//! intermediate RGB picture, which costs more than the scaling itself; here the conversion is one
//! integer pass over the (usually small, already scaled) planes, written so that the compiler
//! vectorises it.
//!
//! Why this is cheap: a change of matrix never changes luma's weight in luma, and chroma never depends
//! on luma. Going through RGB, `Y' = Y + Kr'·(R−Y) + Kg'·(G−Y) + Kb'·(B−Y)` (because
//! `Kr' + Kg' + Kb' = 1`), and `R−Y`, `G−Y`, `B−Y` are linear in `Cb`, `Cr` alone; `Cb'` and `Cr'` are
//! differences of those. So, with `Cb`, `Cr` centred on 0 and all in full range,
//!
//! ```text
//! Y'  = Y + a·Cb + b·Cr        BT.709 → BT.601:  a =  0.10158  b =  0.19608
//! Cb' =     c·Cb + d·Cr                          c =  0.98985  d = -0.11065
//! Cr' =     e·Cb + f·Cr                          e = -0.07245  f =  0.98340
//! ```
//!
//! ([`YcbcrConversion::new`] derives them from the matrices' `Kr`, `Kb`; the tests check them against
//! a plain float conversion through RGB.) A limited-range source (16–235, 16–240) folds into the same
//! pass as a gain and an offset. Luma takes the chroma sample of its 2×2 block, as every 4:2:0
//! decoder's matrix stage in the chroma's own resolution would.
//!
//! Colours outside the RGB gamut have no exact equivalent; they are clamped in RGB, as FFmpeg shows
//! them (see `YcbcrConversion::convert_block_row`). Nothing here allocates more than a few rows or
//! panics on any plane sizes: planes too small for the stated picture are an error.

use std::fmt;

/// The luma weights `Kr` and `Kb` that define a YCbCr matrix (`Kg = 1 − Kr − Kb`); the values are the
/// ones FFmpeg's swscale uses (`ff_yuv2rgb_coeffs`), so camhub's colours match FFmpeg's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LumaWeights {
    /// Red's weight in luma.
    pub kr: f64,
    /// Blue's weight in luma.
    pub kb: f64,
}

impl LumaWeights {
    /// ITU-R BT.601 (BT.470BG, SMPTE 170M): SD video and JPEG/JFIF.
    pub const BT601: LumaWeights = LumaWeights {
        kr: 0.299,
        kb: 0.114,
    };
    /// ITU-R BT.709: HD video.
    pub const BT709: LumaWeights = LumaWeights {
        kr: 0.2126,
        kb: 0.0722,
    };
    /// ITU-R BT.2020 (the non-constant-luminance matrix).
    pub const BT2020: LumaWeights = LumaWeights {
        kr: 0.2627,
        kb: 0.0593,
    };
    /// SMPTE 240M (early HDTV).
    pub const SMPTE240M: LumaWeights = LumaWeights {
        kr: 0.212,
        kb: 0.087,
    };
    /// FCC 73.682 (NTSC 1953).
    pub const FCC: LumaWeights = LumaWeights { kr: 0.30, kb: 0.11 };
}

/// The range of a picture's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleRange {
    /// Video range: luma 16–235, chroma 16–240 (what cameras send).
    Limited,
    /// 0–255 for luma and chroma (JPEG/JFIF).
    Full,
}

// The arithmetic is all in wrapping 16-bit lanes, so that one SSE2 instruction works on 8 samples.
// The coefficients are Q14 (14 fractional bits; real matrices need at most about ±1.17). A sample
// times a coefficient is an unsigned "multiply high" (`(a·b) >> 16`, pmulhuw) of the sample shifted
// up by 8 bits, which leaves the product in Q6; a negative coefficient is its two's complement,
// corrected by subtracting the shifted sample ([`Coefficient::times`]). Chroma stays uncentred
// (0–255) and its `−128·c` goes into constant bases. Sums are Q6 until the final rounding shift, and
// they wrap: wrapping addition is associative, so partial sums may leave the i16 range as long as
// the final one is inside it, which it is for every real matrix (−4 000 to 21 000 at most).
//
// Each multiply high floors by under 1/64 of a level; with the coefficients' own rounding that stays
// below 0.05 levels, so every result is within one level of the exact one (the tests check it
// against a float conversion for every matrix and range). Unsigned, because the compiler keeps the
// work in 16-bit lanes only then: it does not recognise its signed multiply-high (pmulhw) pattern
// with a coefficient that is not a constant, and falls back to 32-bit lanes, 2.5× slower.
/// Fractional bits of the coefficients.
const COEFFICIENT_BITS: u32 = 14;
const ONE: f64 = (1 << COEFFICIENT_BITS) as f64;
/// Fractional bits of the sums.
const SUM_BITS: u32 = 6;
/// Half a level in the sums, for rounding to nearest.
const SUM_HALF: f64 = (1 << (SUM_BITS - 1)) as f64;

/// One conversion of 8-bit 4:2:0 YCbCr pictures to full-range samples in another matrix: the fixed-
/// point form of `Y' = g·(Y − y0) + a·Cb + b·Cr`, `Cb' = 128 + c·Cb + d·Cr`, `Cr' = 128 + e·Cb + f·Cr`
/// (with `Cb`, `Cr` centred on 128). Rounded to nearest and clamped to 0–255.
///
/// Make one per source (matrix, range) and reuse it; it is a handful of integers.
///
/// ```
/// use camhub_media::colour::{LumaWeights, PlaneMut, SampleRange, YcbcrConversion};
///
/// // A 2×2 full-range BT.709 picture of pure red (Y 54, Cb 99, Cr 255) becomes JPEG's BT.601 red.
/// let to_jpeg = YcbcrConversion::new(LumaWeights::BT709, SampleRange::Full, LumaWeights::BT601);
/// let (mut y, mut cb, mut cr) = ([54u8; 4], [99u8], [255u8]);
/// to_jpeg
///     .convert_420_in_place(
///         2,
///         2,
///         [
///             PlaneMut { data: &mut y, stride: 2 },
///             PlaneMut { data: &mut cb, stride: 1 },
///             PlaneMut { data: &mut cr, stride: 1 },
///         ],
///     )
///     .expect("the planes hold a 2×2 picture");
/// assert_eq!((y[0], cb[0], cr[0]), (76, 85, 255));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YcbcrConversion {
    /// Luma gain `g` (255/219 from limited range, 1 from full range).
    y_gain: Coefficient,
    /// Chroma's weights in the new luma, `a` and `b`.
    y_cb: Coefficient,
    y_cr: Coefficient,
    /// The new chroma from the old, `c`, `d`, `e`, `f`.
    cb_cb: Coefficient,
    cb_cr: Coefficient,
    cr_cb: Coefficient,
    cr_cr: Coefficient,
    /// The constant terms in Q6 with the rounding half: luma `−g·y0 − 128·(a + b)`, chroma
    /// `128 − 128·(c + d)` and `128 − 128·(e + f)`.
    y_base: u16,
    cb_base: u16,
    cr_base: u16,
    /// The same conversion in floating point through clamped RGB, for the rare rows it matters.
    through_rgb: ThroughRgb,
}

impl YcbcrConversion {
    /// The conversion from samples in matrix `from` and range `range` to full-range samples in matrix
    /// `to`.
    pub fn new(from: LumaWeights, range: SampleRange, to: LumaWeights) -> YcbcrConversion {
        // Limited range stretches 219 luma and 224 chroma levels onto 255.
        let (y_gain, c_gain, y_black) = match range {
            SampleRange::Limited => (255.0 / 219.0, 255.0 / 224.0, 16.0),
            SampleRange::Full => (1.0, 1.0, 0.0),
        };
        let y_gain_value = y_gain;
        let [from_cb, from_cr] =
            [(1.0, 0.0), (0.0, 1.0)].map(|(cb, cr)| matrix_change(from, to, cb, cr));
        let [y_cb, y_cr, cb_cb, cb_cr, cr_cb, cr_cr] = [
            from_cb.0, from_cr.0, from_cb.1, from_cr.1, from_cb.2, from_cr.2,
        ]
        .map(|v| Coefficient::new(v * c_gain));
        let y_gain = Coefficient::new(y_gain);
        // The bases from the coefficients as rounded, so that the −128 matches what samples get.
        let q6 = f64::from(1 << SUM_BITS);
        let centre = |a: Coefficient, b: Coefficient| 128.0 * q6 * (a.value() + b.value());
        // Wrapping, like the sums they start.
        let base = |v: f64| (v.round() as i64) as u16;
        YcbcrConversion {
            y_gain,
            y_cb,
            y_cr,
            cb_cb,
            cb_cr,
            cr_cb,
            cr_cr,
            y_base: base(SUM_HALF - y_gain.value() * y_black * q6 - centre(y_cb, y_cr)),
            cb_base: base(SUM_HALF + 128.0 * q6 - centre(cb_cb, cb_cr)),
            cr_base: base(SUM_HALF + 128.0 * q6 - centre(cr_cb, cr_cr)),
            through_rgb: ThroughRgb {
                y_gain: y_gain_value,
                y_black,
                c_gain,
                from,
                to,
            },
        }
    }

    /// True if the conversion leaves every sample as it is (full range to the same matrix).
    pub fn is_identity(&self) -> bool {
        let (one, zero) = (Coefficient::new(1.0), Coefficient::new(0.0));
        [self.y_gain, self.cb_cb, self.cr_cr] == [one; 3]
            && [self.y_cb, self.y_cr, self.cb_cr, self.cr_cb] == [zero; 4]
            && self.y_base == SUM_HALF as u16
    }

    /// Converts the 4:2:0 picture `src` (`width` × `height` luma samples, chroma planes of
    /// `⌈width/2⌉` × `⌈height/2⌉`; planes Y, Cb, Cr) into `dst`, a picture of the same size.
    pub fn convert_420(
        &self,
        width: usize,
        height: usize,
        src: [Plane<'_>; 3],
        dst: [PlaneMut<'_>; 3],
    ) -> Result<(), PlaneError> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        for (i, (stride, len)) in src.iter().map(|p| (p.stride, p.data.len())).enumerate() {
            check_plane(i, stride, len, width, height)?;
        }
        for (i, (stride, len)) in dst.iter().map(|p| (p.stride, p.data.len())).enumerate() {
            check_plane(i, stride, len, width, height)?;
        }
        let [sy, scb, scr] = src;
        let [mut dy, mut dcb, mut dcr] = dst;
        let mut offsets = LumaOffsets::new(width);
        for row in 0..ch {
            let from = BlockRow {
                y: luma_pair(sy.data, sy.stride, row, width, height),
                cb: &scb.data[row * scb.stride..][..cw],
                cr: &scr.data[row * scr.stride..][..cw],
            };
            let to = block_row_mut([&mut dy, &mut dcb, &mut dcr], row, width, height);
            self.convert_block_row(&from, to, &mut offsets);
        }
        Ok(())
    }

    /// Converts the 4:2:0 picture in `planes` (Y, Cb, Cr; as in [`YcbcrConversion::convert_420`])
    /// where it is: for the planes the scaler has just made.
    pub fn convert_420_in_place(
        &self,
        width: usize,
        height: usize,
        planes: [PlaneMut<'_>; 3],
    ) -> Result<(), PlaneError> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        for (i, (stride, len)) in planes.iter().map(|p| (p.stride, p.data.len())).enumerate() {
            check_plane(i, stride, len, width, height)?;
        }
        let [mut y, mut cb, mut cr] = planes;
        let mut offsets = LumaOffsets::new(width);
        // The block row as it was: the conversion reads it after it has started writing.
        let mut saved = vec![0; 2 * width + 2 * cw];
        for row in 0..ch {
            let to = block_row_mut([&mut y, &mut cb, &mut cr], row, width, height);
            let (y0, rest) = saved.split_at_mut(width);
            let (y1, rest) = rest.split_at_mut(width);
            let (saved_cb, saved_cr) = rest.split_at_mut(cw);
            y0.copy_from_slice(to.y[0]);
            let y1 = &mut y1[..to.y[1].len()];
            y1.copy_from_slice(to.y[1]);
            saved_cb.copy_from_slice(to.cb);
            saved_cr.copy_from_slice(to.cr);
            let from = BlockRow {
                y: [y0, y1],
                cb: saved_cb,
                cr: saved_cr,
            };
            self.convert_block_row(&from, to, &mut offsets);
        }
        Ok(())
    }

    /// Converts one row of 2×2 blocks: one chroma row and its one or two luma rows.
    ///
    /// The 16-bit pass clamps Y′, Cb′ and Cr′ each to 0–255, which is right for every colour inside
    /// the RGB gamut. A colour outside it (a test pattern's −I bar, or saturated dark colours that a
    /// camera's encoder pushed out) can map to Y′ below 0 or chroma beyond 255; clamped there, the
    /// JPEG decoder would show it up to 16 levels brighter than FFmpeg's own decode, which clamps
    /// in RGB. So a block where the 16-bit pass clamped by more than a level (luma only where
    /// the chroma is not grey: superwhite and superblack clamp alike in both) is converted again
    /// through clamped RGB, in floating point. That is rare in camera pictures and costs little.
    fn convert_block_row(
        &self,
        from: &BlockRow<'_>,
        to: BlockRowMut<'_>,
        offsets: &mut LumaOffsets,
    ) {
        self.luma_offsets(from.cb, from.cr, offsets);
        offsets.luma_clamped.fill(0);
        offsets.chroma_clamped.fill(0);
        let mut clamped = false;
        let [y0, y1] = to.y;
        for (src, dst) in from.y.iter().zip([&mut *y0, &mut *y1]) {
            clamped |= self.luma_row(offsets, src, dst);
        }
        clamped |= self.chroma_row(
            from.cb,
            from.cr,
            &mut *to.cb,
            &mut *to.cr,
            &mut offsets.chroma_clamped,
        );
        if !clamped {
            return;
        }
        // Only the blocks that clamped: at colour edges, 4:2:0 makes a few blocks in many rows
        // leave the gamut, and a whole row in floating point would cost 20 times as much.
        let outputs = to.cb.iter_mut().zip(to.cr.iter_mut());
        for (i, ((cb, cr), &chroma_clamped)) in outputs.zip(&offsets.chroma_clamped).enumerate() {
            let luma_clamped = offsets.luma_clamped.get(2 * i..).unwrap_or_default();
            if chroma_clamped != 0 || luma_clamped.iter().take(2).any(|&c| c != 0) {
                self.through_rgb
                    .convert_block(from, i, [&mut *y0, &mut *y1], cb, cr);
            }
        }
    }

    /// Each luma sample's share of the conversion that depends on its block's chroma (with the
    /// constant terms), one per luma column: a separate pass, so that the luma loops are plain
    /// element-wise work that vectorises.
    fn luma_offsets(&self, cb: &[u8], cr: &[u8], out: &mut LumaOffsets) {
        let offset = |cb: u8, cr: u8| {
            let o = self
                .y_base
                .wrapping_add(self.y_cb.times(cb))
                .wrapping_add(self.y_cr.times(cr));
            let grey = cb.abs_diff(128) <= GREY && cr.abs_diff(128) <= GREY;
            (o, if grey { 0 } else { u16::MAX })
        };
        let mut pairs = out.offsets.chunks_exact_mut(2);
        let mut colours = out.coloured.chunks_exact_mut(2);
        for ((pair, colour), (&cb, &cr)) in (&mut pairs).zip(&mut colours).zip(cb.iter().zip(cr)) {
            let (o, c) = offset(cb, cr);
            pair.fill(o);
            colour.fill(c);
        }
        // An odd width's last column has a chroma sample of its own.
        if let ([last], [last_colour], (Some(&cb), Some(&cr))) = (
            pairs.into_remainder(),
            colours.into_remainder(),
            (cb.last(), cr.last()),
        ) {
            (*last, *last_colour) = offset(cb, cr);
        }
    }

    /// Converts one luma row; true if it clamped a coloured sample by more than a level.
    /// Marks the columns it clamped in `offsets.luma_clamped`.
    fn luma_row(&self, offsets: &mut LumaOffsets, src: &[u8], dst: &mut [u8]) -> bool {
        let mut clamped = 0;
        let columns = offsets.offsets.iter().zip(&offsets.coloured);
        for (((d, &s), (&o, &c)), mark) in dst
            .iter_mut()
            .zip(src)
            .zip(columns)
            .zip(offsets.luma_clamped.iter_mut())
        {
            let sum = self.y_gain.times(s).wrapping_add(o);
            *d = to_sample(sum);
            let this = beyond_a_level(sum) & c;
            *mark |= this;
            clamped |= this;
        }
        clamped != 0
    }

    /// Converts one chroma row; true if it clamped a sample by more than a level.
    /// Marks the blocks it clamped in `marks`.
    fn chroma_row(
        &self,
        cb: &[u8],
        cr: &[u8],
        cb_out: &mut [u8],
        cr_out: &mut [u8],
        marks: &mut [u16],
    ) -> bool {
        // One output plane at a time: with both in one loop the compiler does not vectorise it.
        let b = chroma_plane_row(self.cb_base, self.cb_cb, self.cb_cr, cb, cr, cb_out, marks);
        let r = chroma_plane_row(self.cr_base, self.cr_cb, self.cr_cr, cb, cr, cr_out, marks);
        b || r
    }
}

/// One row of one output chroma plane: `base + wb·Cb + wr·Cr`; true if it clamped a sample by more
/// than a level, and marks those samples in `marks`.
fn chroma_plane_row(
    base: u16,
    wb: Coefficient,
    wr: Coefficient,
    cb: &[u8],
    cr: &[u8],
    out: &mut [u8],
    marks: &mut [u16],
) -> bool {
    let mut clamped = 0;
    for ((o, (&b, &r)), mark) in out.iter_mut().zip(cb.iter().zip(cr)).zip(marks.iter_mut()) {
        let sum = base.wrapping_add(wb.times(b)).wrapping_add(wr.times(r));
        *o = to_sample(sum);
        let this = beyond_a_level(sum);
        *mark |= this;
        clamped |= this;
    }
    clamped != 0
}

/// Chroma this close to 128 counts as grey: a luma clamp there is a clamp in RGB within two levels
/// (superwhite and superblack are common and take the 16-bit pass).
const GREY: u8 = 1;

/// All ones if the Q6 sum is more than a level outside 0–255 (the clamp then changes the colour;
/// by a level or less it is only rounding), else 0.
#[inline(always)]
fn beyond_a_level(sum: u16) -> u16 {
    let level = (sum as i16) >> SUM_BITS;
    // −1 to 256 map to 0–257.
    if level.wrapping_add(1) as u16 > 257 {
        u16::MAX
    } else {
        0
    }
}

/// Per luma column of one block row: the chroma's share of luma, and whether the chroma is
/// coloured (all ones) or grey (0).
/// Also which luma columns and which blocks the 16-bit pass clamped (all ones) in one block row.
struct LumaOffsets {
    offsets: Vec<u16>,
    coloured: Vec<u16>,
    luma_clamped: Vec<u16>,
    chroma_clamped: Vec<u16>,
}

impl LumaOffsets {
    fn new(width: usize) -> LumaOffsets {
        LumaOffsets {
            offsets: vec![0; width],
            coloured: vec![0; width],
            luma_clamped: vec![0; width],
            chroma_clamped: vec![0; width.div_ceil(2)],
        }
    }
}

/// One row of 2×2 blocks to read: two luma rows (the second empty at an odd height's end) and
/// one row of each chroma plane.
struct BlockRow<'a> {
    y: [&'a [u8]; 2],
    cb: &'a [u8],
    cr: &'a [u8],
}

/// One row of 2×2 blocks to write, as [`BlockRow`].
struct BlockRowMut<'a> {
    y: [&'a mut [u8]; 2],
    cb: &'a mut [u8],
    cr: &'a mut [u8],
}

/// Luma rows `2·row` and `2·row + 1` (empty past the last row) of a checked plane.
fn luma_pair(data: &[u8], stride: usize, row: usize, width: usize, height: usize) -> [&[u8]; 2] {
    let second = if 2 * row + 1 < height {
        &data[(2 * row + 1) * stride..][..width]
    } else {
        &[]
    };
    [&data[2 * row * stride..][..width], second]
}

/// Block row `row` of three checked planes.
fn block_row_mut<'a>(
    planes: [&'a mut PlaneMut<'_>; 3],
    row: usize,
    width: usize,
    height: usize,
) -> BlockRowMut<'a> {
    let [y, cb, cr] = planes;
    let cw = width.div_ceil(2);
    // The checks guarantee row 2·row + 1 when it exists; past the last row, any split will do.
    let middle = ((2 * row + 1) * y.stride).min(y.data.len());
    let (first, second) = y.data.split_at_mut(middle);
    let first = &mut first[2 * row * y.stride..][..width];
    let second = if 2 * row + 1 < height {
        &mut second[..width]
    } else {
        &mut []
    };
    BlockRowMut {
        y: [first, second],
        cb: &mut cb.data[row * cb.stride..][..cw],
        cr: &mut cr.data[row * cr.stride..][..cw],
    }
}

/// The conversion in floating point through RGB clamped to 0–255, as FFmpeg decodes a picture
/// for display: for the blocks where that differs from clamping the YCbCr result.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ThroughRgb {
    y_gain: f64,
    y_black: f64,
    c_gain: f64,
    from: LumaWeights,
    to: LumaWeights,
}

impl ThroughRgb {
    /// Converts one block row; each block's chroma from the mean of its pixels' clamped RGB.
    /// Converts block `i` of a block row; its chroma from the mean of its pixels' clamped RGB.
    fn convert_block(
        &self,
        from: &BlockRow<'_>,
        i: usize,
        y: [&mut [u8]; 2],
        cb: &mut u8,
        cr: &mut u8,
    ) {
        let (f, t) = (self.from, self.to);
        let from_kg = 1.0 - f.kr - f.kb;
        let to_kg = 1.0 - t.kr - t.kb;
        let (Some(&from_cb), Some(&from_cr)) = (from.cb.get(i), from.cr.get(i)) else {
            return;
        };
        let b_y = 2.0 * (1.0 - f.kb) * self.c_gain * (f64::from(from_cb) - 128.0);
        let r_y = 2.0 * (1.0 - f.kr) * self.c_gain * (f64::from(from_cr) - 128.0);
        let g_y = -(f.kr * r_y + f.kb * b_y) / from_kg;
        let (mut sum, mut n) = ([0.0; 3], 0.0);
        for (src, dst) in from.y.iter().zip(y) {
            let src = src.get(2 * i..).unwrap_or_default();
            let dst = dst.get_mut(2 * i..).unwrap_or_default();
            for (&s, d) in src.iter().zip(dst.iter_mut()).take(2) {
                let luma = self.y_gain * (f64::from(s) - self.y_black);
                let rgb = [luma + r_y, luma + g_y, luma + b_y].map(|v| v.clamp(0.0, 255.0));
                let new_y = t.kr * rgb[0] + to_kg * rgb[1] + t.kb * rgb[2];
                *d = rounded(new_y);
                sum = [sum[0] + rgb[0], sum[1] + rgb[2], sum[2] + new_y];
                n += 1.0;
            }
        }
        if n > 0.0 {
            let [r, b, new_y] = sum.map(|v| v / n);
            *cb = rounded(128.0 + (b - new_y) / (2.0 * (1.0 - t.kb)));
            *cr = rounded(128.0 + (r - new_y) / (2.0 * (1.0 - t.kr)));
        }
    }
}

/// A level rounded to nearest and clamped to a sample.
fn rounded(v: f64) -> u8 {
    // Lossless after the clamp (NaN, impossible here, would become 0).
    (v + 0.5).floor().clamp(0.0, 255.0) as u8
}

/// A Q14 coefficient as the 16-bit arithmetic uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Coefficient {
    /// The coefficient in Q14, two's complement.
    bits: u16,
    /// All ones if the coefficient is negative.
    negative: u16,
}

impl Coefficient {
    fn new(v: f64) -> Coefficient {
        // Real matrices stay far inside ±2; the clamp only keeps nonsense weights from wrapping
        // (their results are nonsense too, but never a panic).
        let q = (v * ONE).round().clamp(-32768.0, 32767.0) as i16;
        Coefficient {
            bits: q as u16,
            negative: if q < 0 { u16::MAX } else { 0 },
        }
    }

    /// The coefficient's value.
    fn value(self) -> f64 {
        f64::from(self.bits as i16) / ONE
    }

    /// `sample · coefficient` in Q6, floored, as a wrapping i16. The unsigned multiply high reads a
    /// negative coefficient as `q + 2^16`, which adds exactly `x · 2^16 >> 16 = x`: taken off again.
    #[inline(always)]
    fn times(self, sample: u8) -> u16 {
        let x = u16::from(sample) << 8;
        let high = ((u32::from(x) * u32::from(self.bits)) >> 16) as u16;
        high.wrapping_sub(x & self.negative)
    }
}

/// How luma and centred chroma change from matrix `from` to matrix `to` for a full-range colour of
/// centred chroma (`cb`, `cr`) in `from`: `(Y' − Y, Cb', Cr')`, through the colour differences
/// `R − Y`, `G − Y`, `B − Y` (luma itself cancels out; see the module comment).
fn matrix_change(from: LumaWeights, to: LumaWeights, cb: f64, cr: f64) -> (f64, f64, f64) {
    let from_kg = 1.0 - from.kr - from.kb;
    let to_kg = 1.0 - to.kr - to.kb;
    let r_y = 2.0 * (1.0 - from.kr) * cr;
    let b_y = 2.0 * (1.0 - from.kb) * cb;
    let g_y = -(from.kr * r_y + from.kb * b_y) / from_kg;
    let dy = to.kr * r_y + to_kg * g_y + to.kb * b_y;
    (
        dy,
        (b_y - dy) / (2.0 * (1.0 - to.kb)),
        (r_y - dy) / (2.0 * (1.0 - to.kr)),
    )
}

/// A Q6 sum (a wrapping i16) rounded (the half is already in it) and clamped to a sample.
#[inline(always)]
fn to_sample(v: u16) -> u8 {
    // Lossless after the clamp.
    ((v as i16) >> SUM_BITS).clamp(0, 255) as u8
}

/// Checks that plane `i` (0 = Y, else chroma) of a `width` × `height` 4:2:0 picture fits.
fn check_plane(
    i: usize,
    stride: usize,
    len: usize,
    width: usize,
    height: usize,
) -> Result<(), PlaneError> {
    let (w, h) = if i == 0 {
        (width, height)
    } else {
        (width.div_ceil(2), height.div_ceil(2))
    };
    let needed = match h.checked_sub(1) {
        None => Some(0),
        Some(rows) => rows.checked_mul(stride).and_then(|n| n.checked_add(w)),
    }
    .unwrap_or(usize::MAX);
    if stride < w || len < needed {
        return Err(PlaneError {
            plane: i,
            stride,
            len,
            width: w,
            height: h,
        });
    }
    Ok(())
}

/// A read-only view of one 8-bit plane: row `r` starts at `data[r * stride]`.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    /// The samples, row after row.
    pub data: &'a [u8],
    /// Bytes from the start of one row to the start of the next.
    pub stride: usize,
}

/// A writable view of one 8-bit plane: row `r` starts at `data[r * stride]`.
#[derive(Debug)]
pub struct PlaneMut<'a> {
    /// The samples, row after row.
    pub data: &'a mut [u8],
    /// Bytes from the start of one row to the start of the next.
    pub stride: usize,
}

/// A plane cannot hold the picture it was given for: its stride is narrower than a row, or its data
/// ends before the last row does. A bug in the caller, not bad input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneError {
    /// 0 = Y, 1 = Cb, 2 = Cr (3: the packed output of [`full_range_420_to_rgb`]).
    pub plane: usize,
    /// The plane's stride.
    pub stride: usize,
    /// The plane's length in bytes.
    pub len: usize,
    /// Samples per row the picture needs in this plane.
    pub width: usize,
    /// Rows the picture needs in this plane.
    pub height: usize,
}

impl fmt::Display for PlaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plane {} ({} bytes, stride {}) cannot hold {}x{} samples",
            self.plane, self.len, self.stride, self.width, self.height
        )
    }
}

impl std::error::Error for PlaneError {}

/// Packed 8-bit RGB sample order, for [`full_range_420_to_rgb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RgbOrder {
    /// Red, green, blue (`numpy` / PIL order).
    Rgb,
    /// Blue, green, red (OpenCV's order).
    Bgr,
}

/// Converts a full-range BT.601 4:2:0 picture (what JPEG holds, and what the scaler makes) of
/// `width` x `height` to packed RGB or BGR, `3 * width` bytes a row, into `out` (at least
/// `3 * width * height` bytes). Each chroma sample covers its 2x2 luma block. Integer arithmetic,
/// JFIF's equations (the ones libjpeg decodes with).
pub fn full_range_420_to_rgb(
    planes: [Plane<'_>; 3],
    width: usize,
    height: usize,
    out: &mut [u8],
    order: RgbOrder,
) -> Result<(), PlaneError> {
    for (i, p) in planes.iter().enumerate() {
        check_plane(i, p.stride, p.data.len(), width, height)?;
    }
    if out.len() < 3 * width * height {
        return Err(PlaneError {
            plane: 3,
            stride: 3 * width,
            len: out.len(),
            width,
            height,
        });
    }
    // 16.16 fixed point: 1.402, 0.344136, 0.714136, 1.772.
    const CR_R: i32 = 91_881;
    const CB_G: i32 = 22_554;
    const CR_G: i32 = 46_802;
    const CB_B: i32 = 116_130;
    const HALF: i32 = 1 << 15;
    let [y, u, v] = planes;
    let (ri, bi) = match order {
        RgbOrder::Rgb => (0, 2),
        RgbOrder::Bgr => (2, 0),
    };
    let clamp = |x: i32| x.clamp(0, 255) as u8;
    for (row, line) in out.chunks_exact_mut(3 * width).take(height).enumerate() {
        let ys = &y.data[row * y.stride..row * y.stride + width];
        let c = (row / 2) * u.stride;
        let cv = (row / 2) * v.stride;
        let us = &u.data[c..c + width.div_ceil(2)];
        let vs = &v.data[cv..cv + width.div_ceil(2)];
        for (col, (px, &l)) in line.chunks_exact_mut(3).zip(ys).enumerate() {
            let (cb, cr) = (i32::from(us[col / 2]) - 128, i32::from(vs[col / 2]) - 128);
            let l = i32::from(l) << 16;
            px[ri] = clamp((l + CR_R * cr + HALF) >> 16);
            px[1] = clamp((l - CB_G * cb - CR_G * cr + HALF) >> 16);
            px[bi] = clamp((l + CB_B * cb + HALF) >> 16);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn full_range_yuv_becomes_rgb_and_bgr() {
        // 4x2: left block white, right block JFIF red (Y 76, Cb 85, Cr 255).
        let y = [255, 255, 76, 76, 255, 255, 76, 76];
        let (u, v) = ([128, 85], [128, 255]);
        let planes = || {
            [
                Plane {
                    data: &y,
                    stride: 4,
                },
                Plane {
                    data: &u,
                    stride: 2,
                },
                Plane {
                    data: &v,
                    stride: 2,
                },
            ]
        };
        let mut rgb = [0u8; 24];
        full_range_420_to_rgb(planes(), 4, 2, &mut rgb, RgbOrder::Rgb).expect("convert");
        assert_eq!(&rgb[..3], &[255, 255, 255]);
        let red = &rgb[6..9];
        assert!(red[0] >= 250 && red[1] <= 3 && red[2] <= 3, "{red:?}");
        let mut bgr = [0u8; 24];
        full_range_420_to_rgb(planes(), 4, 2, &mut bgr, RgbOrder::Bgr).expect("convert");
        assert_eq!((bgr[6], bgr[8]), (red[2], red[0]));
        let mut short = [0u8; 10];
        assert!(full_range_420_to_rgb(planes(), 4, 2, &mut short, RgbOrder::Rgb).is_err());
    }

    use super::*;
    use proptest::prelude::*;

    const MATRICES: [(&str, LumaWeights); 5] = [
        ("BT.601", LumaWeights::BT601),
        ("BT.709", LumaWeights::BT709),
        ("BT.2020", LumaWeights::BT2020),
        ("SMPTE 240M", LumaWeights::SMPTE240M),
        ("FCC", LumaWeights::FCC),
    ];

    /// The textbook decode of `(y, cb, cr)` to R′G′B′ (0–255, unclamped) with matrix `from`.
    fn rgb(from: LumaWeights, range: SampleRange, y: u8, cb: u8, cr: u8) -> [f64; 3] {
        let (y, cb, cr) = (f64::from(y), f64::from(cb) - 128.0, f64::from(cr) - 128.0);
        let (y, cb, cr) = match range {
            SampleRange::Limited => ((y - 16.0) / 219.0, cb / 224.0, cr / 224.0),
            SampleRange::Full => (y / 255.0, cb / 255.0, cr / 255.0),
        };
        let kg = 1.0 - from.kr - from.kb;
        let r = y + 2.0 * (1.0 - from.kr) * cr;
        let b = y + 2.0 * (1.0 - from.kb) * cb;
        let g = (y - from.kr * r - from.kb * b) / kg;
        [r, g, b].map(|v| 255.0 * v)
    }

    /// The textbook conversion, in floating point and through RGB (no shortcuts shared with the code
    /// under test): decode `(y, cb, cr)` to R′G′B′ with `from`, encode full-range BT.601.
    fn reference(from: LumaWeights, range: SampleRange, y: u8, cb: u8, cr: u8) -> [f64; 3] {
        let [r, g, b] = rgb(from, range, y, cb, cr);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        let cb = (b - y) / 1.772;
        let cr = (r - y) / 1.402;
        [y, 128.0 + cb, 128.0 + cr].map(|v| v.clamp(0.0, 255.0))
    }

    /// What a viewer sees: RGB clamped to 0–255.
    fn displayed(rgb: [f64; 3]) -> [f64; 3] {
        rgb.map(|v| v.clamp(0.0, 255.0))
    }

    fn in_gamut(rgb: [f64; 3]) -> bool {
        rgb.iter().all(|v| (-0.5..=255.5).contains(v))
    }

    fn within_one(got: u8, want: f64) -> bool {
        (f64::from(got) - want).abs() <= 1.0
    }

    /// A picture two rows high with one 2×2 block per chroma pair of `chroma`; the top row of luma
    /// is `y_top`, the bottom `y_bottom`.
    fn blocks(chroma: &[(u8, u8)], y_top: u8, y_bottom: u8) -> [Vec<u8>; 3] {
        let w = 2 * chroma.len();
        let mut y = vec![y_top; w];
        y.extend(std::iter::repeat_n(y_bottom, w));
        [
            y,
            chroma.iter().map(|c| c.0).collect(),
            chroma.iter().map(|c| c.1).collect(),
        ]
    }

    fn convert_in_place(
        conversion: &YcbcrConversion,
        width: usize,
        height: usize,
        planes: &mut [Vec<u8>; 3],
    ) {
        let [y, cb, cr] = planes;
        let (ys, cs) = (width, width.div_ceil(2));
        conversion
            .convert_420_in_place(
                width,
                height,
                [
                    PlaneMut {
                        data: y,
                        stride: ys,
                    },
                    PlaneMut {
                        data: cb,
                        stride: cs,
                    },
                    PlaneMut {
                        data: cr,
                        stride: cs,
                    },
                ],
            )
            .expect("planes of the right size");
    }

    #[test]
    fn bt709_to_bt601_has_the_coefficients_of_the_module_comment() {
        let c = YcbcrConversion::new(LumaWeights::BT709, SampleRange::Full, LumaWeights::BT601);
        let got = [c.y_cb, c.y_cr, c.cb_cb, c.cb_cr, c.cr_cb, c.cr_cr].map(Coefficient::value);
        let want = [0.10158, 0.19608, 0.98985, -0.11065, -0.07245, 0.98340];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{got:?} != {want:?}");
        }
        assert_eq!(c.y_gain.value(), 1.0);
    }

    #[test]
    /// Every colour inside the RGB gamut is within a level of the float conversion; every colour
    /// outside it (which has no exact BT.601 equivalent) looks as FFmpeg shows it: RGB clamped.
    fn every_matrix_and_range_matches_the_float_conversion_within_one_level() {
        let luma: Vec<u8> = (0..=255).step_by(7).chain([16, 235, 255]).collect();
        let levels: Vec<u8> = (0..=255).step_by(7).chain([16, 128, 240, 255]).collect();
        let chroma: Vec<(u8, u8)> = levels
            .iter()
            .flat_map(|&cb| levels.iter().map(move |&cr| (cb, cr)))
            .collect();
        for (name, from) in MATRICES {
            for range in [SampleRange::Limited, SampleRange::Full] {
                let conversion = YcbcrConversion::new(from, range, LumaWeights::BT601);
                for &y in &luma {
                    let mut planes = blocks(&chroma, y, y);
                    convert_in_place(&conversion, 2 * chroma.len(), 2, &mut planes);
                    for (i, &(cb, cr)) in chroma.iter().enumerate() {
                        let got = [planes[0][2 * i], planes[1][i], planes[2][i]];
                        let source = rgb(from, range, y, cb, cr);
                        if in_gamut(source) {
                            let want = reference(from, range, y, cb, cr);
                            assert!(
                                got.iter().zip(want).all(|(&g, w)| within_one(g, w)),
                                "{name} {range:?} ({y}, {cb}, {cr}): got {got:?}, want {want:?}"
                            );
                        } else {
                            // A level in Y′CbCr is up to 1 + 1.772 levels in RGB.
                            let want = displayed(source);
                            let seen = displayed(rgb(
                                LumaWeights::BT601,
                                SampleRange::Full,
                                got[0],
                                got[1],
                                got[2],
                            ));
                            assert!(
                                seen.iter().zip(want).all(|(s, w)| (s - w).abs() <= 3.0),
                                "{name} {range:?} ({y}, {cb}, {cr}) outside the gamut: got \
                                 {got:?}, seen as {seen:?}, want {want:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The −I bar of the SMPTE pattern that GStreamer's `videotestsrc` sends in a BT.709 stream has
    /// R′ at −192: its BT.601 luma is −16. Clamped in Y′CbCr it would show 16 levels too bright.
    #[test]
    fn colours_outside_the_gamut_are_clamped_in_rgb_as_ffmpeg_shows_them() {
        let conversion =
            YcbcrConversion::new(LumaWeights::BT709, SampleRange::Limited, LumaWeights::BT601);
        let mut planes = blocks(&[(198, 21), (128, 128)], 16, 16);
        convert_in_place(&conversion, 4, 2, &mut planes);
        let seen = rgb(
            LumaWeights::BT601,
            SampleRange::Full,
            planes[0][0],
            planes[1][0],
            planes[2][0],
        );
        let want = displayed(rgb(LumaWeights::BT709, SampleRange::Limited, 16, 198, 21));
        assert!(
            displayed(seen)
                .iter()
                .zip(want)
                .all(|(s, w)| (s - w).abs() <= 2.0),
            "seen {seen:?}, FFmpeg shows {want:?}"
        );
        assert_eq!(
            [planes[0][2], planes[1][1], planes[2][1]],
            [0, 128, 128],
            "black next to it"
        );
    }

    #[test]
    fn full_range_bt601_is_left_as_it_is() {
        let conversion =
            YcbcrConversion::new(LumaWeights::BT601, SampleRange::Full, LumaWeights::BT601);
        assert!(conversion.is_identity());
        let chroma: Vec<(u8, u8)> = (0..=255)
            .flat_map(|cb| [(cb, 255 - cb), (cb, cb)])
            .collect();
        for y in 0..=255 {
            let before = blocks(&chroma, y, 255 - y);
            let mut after = before.clone();
            convert_in_place(&conversion, 2 * chroma.len(), 2, &mut after);
            assert_eq!(before, after, "Y {y}");
        }
        for (_, from) in &MATRICES[1..] {
            assert!(
                !YcbcrConversion::new(*from, SampleRange::Full, LumaWeights::BT601).is_identity()
            );
        }
        assert!(!YcbcrConversion::new(
            LumaWeights::BT601,
            SampleRange::Limited,
            LumaWeights::BT601
        )
        .is_identity());
    }

    #[test]
    fn limited_range_black_and_white_become_0_and_255() {
        for (name, from) in MATRICES {
            let conversion = YcbcrConversion::new(from, SampleRange::Limited, LumaWeights::BT601);
            let mut planes = blocks(&[(128, 128)], 16, 235);
            convert_in_place(&conversion, 2, 2, &mut planes);
            assert_eq!(
                planes,
                [vec![0, 0, 255, 255], vec![128], vec![128]],
                "{name}"
            );
        }
    }

    /// SMPTE bars as an HD camera sends them (limited-range BT.709, the values FFmpeg's `scale`
    /// filter makes) come out as JPEG's full-range BT.601 bars (`draw::BARS`), within a level.
    #[test]
    fn hd_camera_bars_become_jpeg_bars() {
        let bt709 = [
            (235, 128, 128),
            (219, 16, 138),
            (188, 154, 16),
            (173, 42, 26),
            (78, 214, 230),
            (63, 102, 240),
            (32, 240, 118),
            (16, 128, 128),
        ];
        let conversion =
            YcbcrConversion::new(LumaWeights::BT709, SampleRange::Limited, LumaWeights::BT601);
        let chroma: Vec<(u8, u8)> = bt709.iter().map(|b| (b.1, b.2)).collect();
        let mut planes = blocks(&chroma, 0, 0);
        for (i, b) in bt709.iter().enumerate() {
            for row in 0..2 {
                planes[0][row * 16 + 2 * i..][..2].fill(b.0);
            }
        }
        convert_in_place(&conversion, 16, 2, &mut planes);
        for (i, want) in crate::draw::BARS.iter().enumerate() {
            let got = (planes[0][2 * i], planes[1][i], planes[2][i]);
            assert!(
                got.0.abs_diff(want.0) <= 1
                    && got.1.abs_diff(want.1) <= 1
                    && got.2.abs_diff(want.2) <= 1,
                "bar {i}: got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn odd_sizes_and_padded_strides_convert_every_sample_and_no_padding() {
        let conversion =
            YcbcrConversion::new(LumaWeights::BT709, SampleRange::Limited, LumaWeights::BT601);
        let (w, h, ys, cs) = (5, 3, 8, 4);
        let pad = 0xAA;
        let mut y = vec![pad; ys * (h - 1) + w];
        let mut cb = vec![pad; cs * 2];
        let mut cr = vec![pad; cs * 2];
        for r in 0..h {
            y[r * ys..][..w].copy_from_slice(&[60, 90, 120, 150, 180]);
        }
        for r in 0..2 {
            cb[r * cs..][..3].copy_from_slice(&[128, 110, 140]);
            cr[r * cs..][..3].copy_from_slice(&[128, 140, 120]);
        }
        let mut out = [
            vec![0x55; y.len()],
            vec![0x55; cb.len()],
            vec![0x55; cr.len()],
        ];
        let [oy, ocb, ocr] = &mut out;
        conversion
            .convert_420(
                w,
                h,
                [
                    Plane {
                        data: &y,
                        stride: ys,
                    },
                    Plane {
                        data: &cb,
                        stride: cs,
                    },
                    Plane {
                        data: &cr,
                        stride: cs,
                    },
                ],
                [
                    PlaneMut {
                        data: oy,
                        stride: ys,
                    },
                    PlaneMut {
                        data: ocb,
                        stride: cs,
                    },
                    PlaneMut {
                        data: ocr,
                        stride: cs,
                    },
                ],
            )
            .expect("planes of the right size");
        conversion
            .convert_420_in_place(
                w,
                h,
                [
                    PlaneMut {
                        data: &mut y,
                        stride: ys,
                    },
                    PlaneMut {
                        data: &mut cb,
                        stride: cs,
                    },
                    PlaneMut {
                        data: &mut cr,
                        stride: cs,
                    },
                ],
            )
            .expect("planes of the right size");
        for r in 0..h {
            for x in 0..w {
                let (ci, cv) = ((r / 2) * cs + x / 2, [128, 110, 140][x / 2]);
                let want = reference(
                    LumaWeights::BT709,
                    SampleRange::Limited,
                    [60, 90, 120, 150, 180][x],
                    cv,
                    [128, 140, 120][x / 2],
                );
                assert!(within_one(y[r * ys + x], want[0]), "Y at {x},{r}");
                assert!(
                    within_one(cb[ci], want[1]) && within_one(cr[ci], want[2]),
                    "C at {x},{r}"
                );
            }
            assert!(
                y[r * ys..].iter().skip(w).take(ys - w).all(|&p| p == pad),
                "row {r} padding"
            );
        }
        assert!(cb
            .iter()
            .chain(&cr)
            .enumerate()
            .all(|(i, &p)| (i % cs < 3) || p == pad));
        assert_eq!(
            out,
            [y.clone(), cb.clone(), cr.clone()].map(|p| p
                .iter()
                .map(|&v| if v == pad { 0x55 } else { v })
                .collect::<Vec<_>>())
        );
    }

    proptest! {
        /// Any sizes, strides and plane lengths: an error exactly when a plane is too small, never a
        /// panic, and the copying and in-place conversions agree.
        #[test]
        fn any_plane_geometry_is_converted_or_refused(
            width in 0usize..40,
            height in 0usize..12,
            strides in proptest::array::uniform3(0usize..48),
            lens in proptest::array::uniform3(0usize..600),
            seed in any::<u8>(),
        ) {
            let conversion = YcbcrConversion::new(LumaWeights::BT709, SampleRange::Limited, LumaWeights::BT601);
            let src: Vec<Vec<u8>> = lens
                .iter()
                .map(|&n| (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect())
                .collect();
            let mut copied: Vec<Vec<u8>> = lens.iter().map(|&n| vec![0; n]).collect();
            let mut in_place = src.clone();
            let fits = (0..3).all(|i| check_plane(i, strides[i], lens[i], width, height).is_ok());
            let [a, b, c] = &mut copied[..] else { unreachable!() };
            let copy_result = conversion.convert_420(
                width,
                height,
                [0, 1, 2].map(|i| Plane { data: &src[i], stride: strides[i] }),
                [
                    PlaneMut { data: a, stride: strides[0] },
                    PlaneMut { data: b, stride: strides[1] },
                    PlaneMut { data: c, stride: strides[2] },
                ],
            );
            let [a, b, c] = &mut in_place[..] else { unreachable!() };
            let in_place_result = conversion.convert_420_in_place(
                width,
                height,
                [
                    PlaneMut { data: a, stride: strides[0] },
                    PlaneMut { data: b, stride: strides[1] },
                    PlaneMut { data: c, stride: strides[2] },
                ],
            );
            prop_assert_eq!(copy_result.is_ok(), fits);
            prop_assert_eq!(in_place_result.is_ok(), fits);
            if fits {
                for i in 0..3 {
                    let (w, h) = if i == 0 { (width, height) } else { (width.div_ceil(2), height.div_ceil(2)) };
                    for r in 0..h {
                        prop_assert_eq!(&copied[i][r * strides[i]..][..w], &in_place[i][r * strides[i]..][..w]);
                    }
                }
            }
        }
    }
}
