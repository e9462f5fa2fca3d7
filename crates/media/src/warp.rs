//! Per-camera geometry: rotate, flip, perspective warp and crop ([`Transform`]), composed into one
//! output-to-source [`Homography`] ([`Transform::mapping`]) and turned into precomputed remap tables
//! for the planes of a YUV picture ([`WarpPlan`]).
//!
//! Coordinates follow OpenCV's convention (pixel `i`'s centre is at `i`, a perspective maps the four
//! corners to `(0, 0)`, `(0, h)`, `(w, h)`, `(w, 0)`), so a config written for seed 004's
//! `cv2.getPerspectiveTransform` + `cv2.warpPerspective` gives the same picture here.
//!
//! The order of operations is seed 004's: rotate (clockwise) and flip, then the perspective warp
//! (its corners are points of the rotated picture), then the crop (in the warped picture, or in the
//! rotated one without a warp). Rotations, flips and crops map whole pixels to whole pixels and are
//! exact copies; a warp samples bilinearly. A plan is built once per source layout (size and
//! strides); applying it allocates nothing and touches each output sample once.

use std::fmt;

/// Quarter turns, clockwise (as `cv2.ROTATE_90_CLOCKWISE` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    /// As the camera sends it.
    #[default]
    None,
    /// 90° clockwise: width and height swap.
    Cw90,
    /// Upside down.
    Cw180,
    /// 270° clockwise (90° counter-clockwise): width and height swap.
    Cw270,
}

impl Rotation {
    /// The rotation of `degrees` (0, 90, 180, 270; also -90 for 270), or None.
    pub fn from_degrees(degrees: i64) -> Option<Rotation> {
        match degrees {
            0 => Some(Rotation::None),
            90 => Some(Rotation::Cw90),
            180 | -180 => Some(Rotation::Cw180),
            270 | -90 => Some(Rotation::Cw270),
            _ => None,
        }
    }

    /// Degrees clockwise.
    pub fn degrees(self) -> u32 {
        match self {
            Rotation::None => 0,
            Rotation::Cw90 => 90,
            Rotation::Cw180 => 180,
            Rotation::Cw270 => 270,
        }
    }

    /// True when width and height swap.
    pub fn swaps(self) -> bool {
        matches!(self, Rotation::Cw90 | Rotation::Cw270)
    }
}

/// A perspective warp: the quadrilateral with these corners (top-left, bottom-left, bottom-right,
/// top-right, as seed 004 lists them) becomes a `width` x `height` picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Perspective {
    /// Corners in the rotated picture, in pixels.
    pub corners: [[f64; 2]; 4],
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
}

/// A rectangle cut out of the picture: left, top, width, height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// One camera's geometry, as configured. See the module docs for the order of operations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transform {
    /// Quarter turns clockwise, applied first.
    pub rotate: Rotation,
    /// Mirror left-right (after the rotation).
    pub flip_horizontal: bool,
    /// Mirror top-bottom (after the rotation).
    pub flip_vertical: bool,
    /// The warp, in rotated-picture pixels.
    pub perspective: Option<Perspective>,
    /// The cut, in pixels of the warped picture (or of the rotated one without a warp).
    pub crop: Option<Crop>,
    /// The rotated picture size that the corners (and, without a warp, the crop) were written for:
    /// a camera sending another size gets them scaled to it. None: the size they are applied to.
    pub reference: Option<(u32, u32)>,
}

/// Why a transform cannot be applied to a picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarpError(pub String);

impl fmt::Display for WarpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WarpError {}

/// A 3x3 projective transform of the plane, row-major: `(x, y)` maps to
/// `((m0 x + m1 y + m2) / w, (m3 x + m4 y + m5) / w)` with `w = m6 x + m7 y + m8`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography(pub [f64; 9]);

impl Homography {
    /// The identity.
    pub const IDENTITY: Homography = Homography([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);

    /// The transform that takes `src[i]` to `dst[i]` for the four point pairs (what
    /// `cv2.getPerspectiveTransform` computes); None when three of the points are on one line.
    pub fn from_quads(src: [[f64; 2]; 4], dst: [[f64; 2]; 4]) -> Option<Homography> {
        // Eight equations in h0..h7 (h8 = 1):
        //   x' (h6 x + h7 y + 1) = h0 x + h1 y + h2,  y' (h6 x + h7 y + 1) = h3 x + h4 y + h5.
        let mut a = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let [x, y] = src[i];
            let [u, v] = dst[i];
            a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        let h = solve8(a)?;
        let m = Homography([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0]);
        // Collinear corners can leave a solvable but degenerate system.
        (m.determinant().abs() > 1e-12).then_some(m)
    }

    /// Where `(x, y)` goes; None at infinity (the point is on the horizon line).
    pub fn apply(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let m = &self.0;
        let w = m[6] * x + m[7] * y + m[8];
        if w.abs() < 1e-12 {
            return None;
        }
        Some((
            (m[0] * x + m[1] * y + m[2]) / w,
            (m[3] * x + m[4] * y + m[5]) / w,
        ))
    }

    /// `self` after `first`: the transform that applies `first`, then `self`.
    pub fn after(&self, first: &Homography) -> Homography {
        let (a, b) = (&self.0, &first.0);
        let mut m = [0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                m[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
            }
        }
        Homography(m)
    }

    fn determinant(&self) -> f64 {
        let m = &self.0;
        m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
            + m[2] * (m[3] * m[7] - m[4] * m[6])
    }

    /// The inverse transform; None when singular.
    pub fn inverse(&self) -> Option<Homography> {
        let m = &self.0;
        let det = self.determinant();
        if !det.is_finite() || det.abs() < 1e-12 {
            return None;
        }
        let adj = [
            m[4] * m[8] - m[5] * m[7],
            m[2] * m[7] - m[1] * m[8],
            m[1] * m[5] - m[2] * m[4],
            m[5] * m[6] - m[3] * m[8],
            m[0] * m[8] - m[2] * m[6],
            m[2] * m[3] - m[0] * m[5],
            m[3] * m[7] - m[4] * m[6],
            m[1] * m[6] - m[0] * m[7],
            m[0] * m[4] - m[1] * m[3],
        ];
        Some(Homography(adj.map(|v| v / det)))
    }

    /// A shift by whole or fractional pixels.
    pub fn translate(dx: f64, dy: f64) -> Homography {
        Homography([1.0, 0.0, dx, 0.0, 1.0, dy, 0.0, 0.0, 1.0])
    }

    /// Scaling about the origin.
    pub fn scale(sx: f64, sy: f64) -> Homography {
        Homography([sx, 0.0, 0.0, 0.0, sy, 0.0, 0.0, 0.0, 1.0])
    }
}

/// Gaussian elimination with partial pivoting on an 8x8 system (augmented to 8x9).
fn solve8(mut a: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if !a[pivot][col].is_finite() || a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let mut x = [0.0; 8];
    for (i, xi) in x.iter_mut().enumerate() {
        *xi = a[i][8] / a[i][i];
        if !xi.is_finite() {
            return None;
        }
    }
    Some(x)
}

/// A transform resolved for one source size: the output size and where each output pixel comes
/// from.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Output pixel to source pixel (OpenCV convention: centres at whole numbers).
    pub to_source: Homography,
    /// Every output pixel is exactly one source pixel (no warp, no scaling): a copy, no filtering.
    pub exact: bool,
    /// The crop reached beyond the picture and was cut to it (worth telling the user once).
    pub crop_clamped: bool,
}

impl Transform {
    /// True when the transform changes nothing (a camera without one pays nothing).
    pub fn is_identity(&self) -> bool {
        self.rotate == Rotation::None
            && !self.flip_horizontal
            && !self.flip_vertical
            && self.perspective.is_none()
            && self.crop.is_none()
    }

    /// The mapping for a `width` x `height` source picture.
    pub fn mapping(&self, width: u32, height: u32) -> Result<Mapping, WarpError> {
        if width == 0 || height == 0 {
            return Err(WarpError(format!(
                "cannot transform a {width}x{height} picture"
            )));
        }
        let (w, h) = (f64::from(width), f64::from(height));
        let (rw, rh) = if self.rotate.swaps() {
            (height, width)
        } else {
            (width, height)
        };
        // Rotated picture -> source, each pixel centre to a pixel centre.
        let unrotate = match self.rotate {
            Rotation::None => Homography::IDENTITY,
            Rotation::Cw90 => Homography([0.0, 1.0, 0.0, -1.0, 0.0, h - 1.0, 0.0, 0.0, 1.0]),
            Rotation::Cw180 => Homography([-1.0, 0.0, w - 1.0, 0.0, -1.0, h - 1.0, 0.0, 0.0, 1.0]),
            Rotation::Cw270 => Homography([0.0, -1.0, w - 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
        };
        let unflip = Homography([
            if self.flip_horizontal { -1.0 } else { 1.0 },
            0.0,
            if self.flip_horizontal {
                f64::from(rw) - 1.0
            } else {
                0.0
            },
            0.0,
            if self.flip_vertical { -1.0 } else { 1.0 },
            if self.flip_vertical {
                f64::from(rh) - 1.0
            } else {
                0.0
            },
            0.0,
            0.0,
            1.0,
        ]);
        let mut to_source = unrotate.after(&unflip);
        // The factor from the size the config was written for to this one.
        let (sx, sy) = match self.reference {
            Some((fw, fh)) if fw > 0 && fh > 0 => {
                (f64::from(rw) / f64::from(fw), f64::from(rh) / f64::from(fh))
            }
            _ => (1.0, 1.0),
        };
        let mut exact = true;
        let (mut cw, mut ch) = (rw, rh);
        if let Some(p) = &self.perspective {
            if p.width == 0 || p.height == 0 {
                return Err(WarpError(
                    "a perspective's width and height must be above 0".into(),
                ));
            }
            let corners = p.corners.map(|[x, y]| [x * sx, y * sy]);
            let (pw, ph) = (f64::from(p.width), f64::from(p.height));
            let warp =
                Homography::from_quads(corners, [[0.0, 0.0], [0.0, ph], [pw, ph], [pw, 0.0]])
                    .ok_or_else(|| {
                        WarpError(
                    "the perspective's corners do not make a quadrilateral (three are on one line)"
                        .into(),
                )
                    })?;
            let unwarp = warp
                .inverse()
                .ok_or_else(|| WarpError("the perspective cannot be inverted".into()))?;
            to_source = to_source.after(&unwarp);
            exact = false;
            (cw, ch) = (p.width, p.height);
        }
        let mut crop_clamped = false;
        if let Some(c) = &self.crop {
            // Without a warp the crop is in rotated-picture pixels, and scales with them.
            let c = if self.perspective.is_none() && (sx, sy) != (1.0, 1.0) {
                let s = |v: u32, f: f64| (f64::from(v) * f).round() as u32;
                Crop {
                    x: s(c.x, sx),
                    y: s(c.y, sy),
                    width: s(c.width, sx).max(1),
                    height: s(c.height, sy).max(1),
                }
            } else {
                *c
            };
            let x = c.x.min(cw.saturating_sub(1));
            let y = c.y.min(ch.saturating_sub(1));
            let cut_w = c.width.min(cw - x).max(1);
            let cut_h = c.height.min(ch - y).max(1);
            crop_clamped = (x, y, cut_w, cut_h) != (c.x, c.y, c.width, c.height);
            to_source = to_source.after(&Homography::translate(f64::from(x), f64::from(y)));
            (cw, ch) = (cut_w, cut_h);
        }
        Ok(Mapping {
            width: cw,
            height: ch,
            to_source,
            exact,
            crop_clamped,
        })
    }
}

impl Mapping {
    /// A plain resize of a `width` x `height` picture to `to_w` x `to_h` (bilinear), for tiles of a
    /// composite; the same machinery as a warp.
    pub fn resize(width: u32, height: u32, to_w: u32, to_h: u32) -> Mapping {
        let (sx, sy) = (
            f64::from(width) / f64::from(to_w.max(1)),
            f64::from(height) / f64::from(to_h.max(1)),
        );
        // Pixel areas line up: output centre u maps to (u + 0.5) * s - 0.5.
        let to_source = Homography::translate(-0.5, -0.5)
            .after(&Homography::scale(sx, sy))
            .after(&Homography::translate(0.5, 0.5));
        Mapping {
            width: to_w.max(1),
            height: to_h.max(1),
            to_source,
            exact: width == to_w && height == to_h,
            crop_clamped: false,
        }
    }
}

/// How one plane of a source picture lies in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Samples per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bytes from one row to the next.
    pub stride: usize,
}

/// The table entry of an output sample that falls outside the source: it gets the fill value.
const OUTSIDE: u32 = u32::MAX;
/// Bilinear weights are in 1/64ths of a pixel (OpenCV's remap uses 1/32ths): small enough that
/// the whole interpolation fits 16-bit lanes.
const WEIGHT_ONE: u16 = 64;
/// A bilinear weight entry with this bit set is outside the source (its offset is 0, readable).
const OUTSIDE_BIT: u16 = 0x8000;
/// Output samples interpolated per batch: gathered first, then computed in SIMD lanes.
const BATCH: usize = 64;
/// 0, 1, 2, … as f32: each lane's column within a batch.
const LANES: [f32; BATCH] = {
    let mut lanes = [0.0; BATCH];
    let mut i = 0;
    while i < BATCH {
        lanes[i] = i as f32;
        i += 1;
    }
    lanes
};

/// Where each output sample of one plane comes from.
#[derive(Debug, Clone)]
enum Table {
    /// A whole-pixel shift (a crop, or nothing): output row `v` is source row `y + v` from
    /// column `x`, copied (where it lies inside the source; the rest is filled).
    Shift { x: i64, y: i64 },
    /// Exact mappings (rotations, flips): the source sample at this offset (or [`OUTSIDE`]).
    Nearest(Vec<u32>),
    /// Warps: output sample to source point, computed per row in SIMD lanes (a table of offsets
    /// and weights would be read from memory at every picture: at 1080p that traffic alone costs
    /// more than the arithmetic). Normalised so that points in front of the camera have w > 0.
    Bilinear(Homography),
}

/// One output plane's table and the source plane it reads.
#[derive(Debug, Clone)]
struct PlaneTable {
    table: Table,
    out_w: usize,
    out_h: usize,
    src: PlaneLayout,
    /// Bytes the source plane must have for every sample the table reads.
    src_len: usize,
}

/// A [`Mapping`] compiled for one source layout: the remap tables of the luma and chroma planes.
/// The output is planar 4:2:0 whatever the source's chroma subsampling (its chroma planes are
/// `ceil(width / 2)` x `ceil(height / 2)`).
#[derive(Debug, Clone)]
pub struct WarpPlan {
    mapping: Mapping,
    luma: PlaneTable,
    chroma: PlaneTable,
}

impl WarpPlan {
    /// Compiles `mapping` for a source whose luma plane is `luma` and whose two chroma planes are
    /// each `chroma` (the same size as luma for 4:4:4, half as wide for 4:2:2, half both ways for
    /// 4:2:0).
    pub fn new(
        mapping: &Mapping,
        luma: PlaneLayout,
        chroma: PlaneLayout,
    ) -> Result<WarpPlan, WarpError> {
        let ok = |p: &PlaneLayout| p.width > 0 && p.height > 0 && p.stride >= p.width as usize;
        if !ok(&luma) || !ok(&chroma) {
            return Err(WarpError(format!(
                "bad source layout: luma {luma:?}, chroma {chroma:?}"
            )));
        }
        if mapping.width == 0 || mapping.height == 0 {
            return Err(WarpError("empty output".into()));
        }
        let (ow, oh) = (mapping.width as usize, mapping.height as usize);
        let m = mapping.to_source;
        let luma_table = PlaneTable::build(ow, oh, luma, mapping.exact, m)?;
        let (lw, lh) = (f64::from(luma.width), f64::from(luma.height));
        let (cw, ch) = (f64::from(chroma.width), f64::from(chroma.height));
        // A chroma sample of the output covers luma pixels 2u and 2u + 1: its centre is at
        // 2u + 0.5 in output luma pixels. Its source luma point is then read in the source's
        // chroma grid, whatever that grid's subsampling: x -> (x + 0.5) * cw / lw - 0.5.
        let to_luma = Homography([2.0, 0.0, 0.5, 0.0, 2.0, 0.5, 0.0, 0.0, 1.0]);
        let (sx, sy) = (cw / lw, ch / lh);
        let to_chroma = Homography([
            sx,
            0.0,
            0.5 * sx - 0.5,
            0.0,
            sy,
            0.5 * sy - 0.5,
            0.0,
            0.0,
            1.0,
        ]);
        let chroma_exact = mapping.exact && {
            let even = |n: u32| n.is_multiple_of(2);
            // Whole chroma samples map to whole chroma samples when the source is 4:2:0 with even
            // sizes (rotations keep the 2x2 blocks).
            chroma.width == luma.width.div_ceil(2)
                && chroma.height == luma.height.div_ceil(2)
                && even(luma.width)
                && even(luma.height)
        };
        let chroma_table = PlaneTable::build(
            ow.div_ceil(2),
            oh.div_ceil(2),
            chroma,
            chroma_exact,
            to_chroma.after(&m).after(&to_luma),
        )?;
        Ok(WarpPlan {
            mapping: mapping.clone(),
            luma: luma_table,
            chroma: chroma_table,
        })
    }

    /// The mapping this plan applies.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// Output width and height.
    pub fn output_size(&self) -> (u32, u32) {
        (self.mapping.width, self.mapping.height)
    }

    /// True when this plan was compiled for exactly this source layout (sizes and strides).
    pub fn fits(&self, luma: PlaneLayout, chroma: PlaneLayout) -> bool {
        self.luma.src == luma && self.chroma.src == chroma
    }

    /// Writes the output into `dst` (Y, U, V planes, each `(samples, stride)`) from `src` (the
    /// source's Y, U, V planes, laid out as the plan was compiled for). Samples that fall outside
    /// the source get `fill` (per plane: black is `[16, 128, 128]` in limited range). Allocates
    /// nothing.
    pub fn apply(
        &self,
        src: [&[u8]; 3],
        dst: [(&mut [u8], usize); 3],
        fill: [u8; 3],
    ) -> Result<(), WarpError> {
        let [(dy, sy), (du, su), (dv, sv)] = dst;
        self.luma.apply(src[0], dy, sy, fill[0])?;
        if let Table::Bilinear(m) = &self.chroma.table {
            // U and V sample the same points: computed once for both.
            let c = &self.chroma;
            c.check(src[1], du, su)?;
            c.check(src[2], dv, sv)?;
            let (su_src, sv_src) = (&src[1][..c.src_len], &src[2][..c.src_len]);
            for (v, (ur, vr)) in du
                .chunks_mut(su)
                .zip(dv.chunks_mut(sv))
                .take(c.out_h)
                .enumerate()
            {
                let mut planes = [
                    (su_src, &mut ur[..c.out_w], fill[1]),
                    (sv_src, &mut vr[..c.out_w], fill[2]),
                ];
                bilinear_row(c.src, m, v, &mut planes);
            }
            return Ok(());
        }
        self.chroma.apply(src[1], du, su, fill[1])?;
        self.chroma.apply(src[2], dv, sv, fill[2])
    }
}

impl PlaneTable {
    /// The table of an `out_w` x `out_h` plane whose sample `(u, v)` comes from source point
    /// `m(u, v)` of plane `src`.
    fn build(
        out_w: usize,
        out_h: usize,
        src: PlaneLayout,
        exact: bool,
        m: Homography,
    ) -> Result<PlaneTable, WarpError> {
        let n = out_w
            .checked_mul(out_h)
            .filter(|&n| n <= 1 << 28)
            .ok_or_else(|| WarpError(format!("output {out_w}x{out_h} is too large")))?;
        let stride = src.stride;
        let last_row = (src.height as usize - 1) * stride;
        // Offsets are u32 (tables) and i32 (the SIMD lanes).
        if last_row + stride + src.width as usize >= i32::MAX as usize {
            return Err(WarpError("source plane too large".into()));
        }
        let bilinear = !exact && src.width >= 2 && src.height >= 2;
        let shift = {
            let t = &m.0;
            let whole = |v: f64| (v - v.round()).abs() < 1e-9;
            (t[0], t[1], t[3], t[4], t[6], t[7], t[8]) == (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0)
                && whole(t[2])
                && whole(t[5])
        };
        let table = if exact && shift {
            Table::Shift {
                x: m.0[2].round() as i64,
                y: m.0[5].round() as i64,
            }
        } else if bilinear {
            // Which side of the horizon is in front depends on the matrix's overall sign: make it
            // the positive side, so one comparison tells.
            let centre = m.0[6] * out_w as f64 / 2.0 + m.0[7] * out_h as f64 / 2.0 + m.0[8];
            Table::Bilinear(if centre < 0.0 {
                Homography(m.0.map(|v| -v))
            } else {
                m
            })
        } else {
            let (w, h) = (f64::from(src.width), f64::from(src.height));
            let in_range =
                |&(x, y): &(f64, f64)| x >= -0.5 && x <= w - 0.5 && y >= -0.5 && y <= h - 0.5;
            let mut offsets = Vec::with_capacity(n);
            for v in 0..out_h {
                for u in 0..out_w {
                    offsets.push(match m.apply(u as f64, v as f64).filter(in_range) {
                        Some((x, y)) => {
                            let x = (x.round().max(0.0) as u32).min(src.width - 1);
                            let y = (y.round().max(0.0) as u32).min(src.height - 1);
                            (y as usize * stride + x as usize) as u32
                        }
                        None => OUTSIDE,
                    });
                }
            }
            Table::Nearest(offsets)
        };
        Ok(PlaneTable {
            table,
            out_w,
            out_h,
            src,
            // The last row needs only its samples, not a whole stride (FFmpeg's planes may end
            // there).
            src_len: last_row + src.width as usize,
        })
    }

    /// Whether `src` and `dst` are large enough for this table.
    fn check(&self, src: &[u8], dst: &[u8], dst_stride: usize) -> Result<(), WarpError> {
        if src.len() < self.src_len {
            return Err(WarpError(format!(
                "source plane has {} bytes, the plan needs {}",
                src.len(),
                self.src_len
            )));
        }
        let (w, h) = (self.out_w, self.out_h);
        if dst_stride < w || dst.len() < dst_stride * (h - 1) + w {
            return Err(WarpError("output plane too small".into()));
        }
        Ok(())
    }

    fn apply(
        &self,
        src: &[u8],
        dst: &mut [u8],
        dst_stride: usize,
        fill: u8,
    ) -> Result<(), WarpError> {
        self.check(src, dst, dst_stride)?;
        let (w, h) = (self.out_w, self.out_h);
        let src = &src[..self.src_len];
        match &self.table {
            Table::Shift { x, y } => {
                let (sw, sh) = (i64::from(self.src.width), i64::from(self.src.height));
                // The output columns that fall inside the source, the same on every row.
                let first = (-x).clamp(0, w as i64) as usize;
                let last = (sw - x).clamp(first as i64, w as i64) as usize;
                for (v, out) in dst.chunks_mut(dst_stride).take(h).enumerate() {
                    let out = &mut out[..w];
                    let sy = y + v as i64;
                    if !(0..sh).contains(&sy) || first == last {
                        out.fill(fill);
                        continue;
                    }
                    let start = sy as usize * self.src.stride + (x + first as i64) as usize;
                    match src.get(start..start + (last - first)) {
                        Some(row) => out[first..last].copy_from_slice(row),
                        None => out[first..last].fill(fill),
                    }
                    out[..first].fill(fill);
                    out[last..].fill(fill);
                }
            }
            Table::Nearest(offsets) => {
                // In tiles: a rotation reads the source down its columns, and a tile's source
                // rows stay in the cache while the tile is written.
                const TILE: usize = 64;
                for v0 in (0..h).step_by(TILE) {
                    for u0 in (0..w).step_by(TILE) {
                        let u1 = (u0 + TILE).min(w);
                        for v in v0..(v0 + TILE).min(h) {
                            let row = &offsets[v * w + u0..v * w + u1];
                            let out = &mut dst[v * dst_stride + u0..v * dst_stride + u1];
                            for (o, &at) in out.iter_mut().zip(row) {
                                *o = if at == OUTSIDE {
                                    fill
                                } else {
                                    src.get(at as usize).copied().unwrap_or(fill)
                                };
                            }
                        }
                    }
                }
            }
            Table::Bilinear(m) => {
                for (v, out) in dst.chunks_mut(dst_stride).take(h).enumerate() {
                    bilinear_row(self.src, m, v, &mut [(src, &mut out[..w], fill)]);
                }
            }
        }
        Ok(())
    }
}

/// One output row `v` of a warp, in batches: the source points of the batch are computed in f32
/// lanes (from the row's start, in f64), their 2x2 blocks gathered (two 16-bit loads each: a
/// block's two samples of a row are neighbours), then interpolated in 16-bit lanes. The compiler
/// turns the first and last steps into SIMD; no branch depends on the pixels.
fn bilinear_row(
    layout: PlaneLayout,
    m: &Homography,
    v: usize,
    planes: &mut [(&[u8], &mut [u8], u8)],
) {
    let m = &m.0;
    let vf = v as f64;
    // Homogeneous source point of (0, v), and its step per output column.
    let (x0, y0, w0) = (
        (m[1] * vf + m[2]) as f32,
        (m[4] * vf + m[5]) as f32,
        (m[7] * vf + m[8]) as f32,
    );
    let (dx, dy, dw) = (m[0] as f32, m[3] as f32, m[6] as f32);
    let (sw, sh) = (layout.width as f32, layout.height as f32);
    let one = f32::from(WEIGHT_ONE);
    // The 2x2 block must lie inside: points are kept 1/64 pixel short of the last column and
    // row, so a block starts at most at the one before, with (nearly) full weight on the far
    // sample. Done in floats: SSE2 has no 32-bit integer min.
    let (hi_x, hi_y) = (sw - 1.0 - 1.0 / one, sh - 1.0 - 1.0 / one);
    let mut cells = [0u32; BATCH];
    let mut weights = [0u16; BATCH];
    let mut top = [0u16; BATCH];
    let mut bottom = [0u16; BATCH];
    let pair = |src: &[u8], at: usize| match src.get(at..at + 2) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        // Unreachable: every block lies inside the plane (`apply` checked its length).
        _ => 0,
    };
    let width = planes.first().map_or(0, |p| p.1.len());
    for batch in 0..width.div_ceil(BATCH) {
        let (b0, b1) = (batch * BATCH, ((batch + 1) * BATCH).min(width));
        let first = b0 as f32;
        // Source points in SIMD lanes. (Lane numbers come from a table, `&` replaces `&&`, and
        // max/min replace clamp and `as i32`: each of those would keep this loop scalar.)
        for ((cell, wt), &lane) in cells.iter_mut().zip(weights.iter_mut()).zip(&LANES) {
            let u = first + lane;
            let wv = w0 + u * dw;
            let r = 1.0 / wv;
            let x = (x0 + u * dx) * r;
            let y = (y0 + u * dy) * r;
            // NaN (w = 0) fails every comparison: outside. A thousandth of a pixel of slack for
            // f32 rounding at the edges.
            let inside =
                (wv > 0.0) & (x >= -0.501) & (x <= sw - 0.499) & (y >= -0.501) & (y <= sh - 0.499);
            let (x, y) = (x.max(0.0).min(hi_x), y.max(0.0).min(hi_y));
            // Fixed point in 1/64 pixel, rounded by the float unit itself: adding 2^23 leaves
            // the rounded integer in the mantissa (x * 64 < 2^22 as sides are at most 16384).
            let magic = 8_388_608.0f32;
            let nx = (x * one + magic).to_bits() & 0x7f_ffff;
            let ny = (y * one + magic).to_bits() & 0x7f_ffff;
            // Whole pixels (x in the low half, y in the high half) and the fractions.
            *cell = if inside {
                (nx >> 6) | (ny >> 6) << 16
            } else {
                0
            };
            *wt = if inside {
                (nx & 63 | (ny & 63) << 8) as u16
            } else {
                OUTSIDE_BIT
            };
        }
        for (src, out, fill) in planes.iter_mut() {
            let out = &mut out[b0..b1];
            for ((&cell, t), b) in cells
                .iter()
                .zip(top.iter_mut())
                .zip(bottom.iter_mut())
                .take(out.len())
            {
                let at = (cell >> 16) as usize * layout.stride + (cell & 0xffff) as usize;
                *t = pair(src, at);
                *b = pair(src, at + layout.stride);
            }
            for (((o, &wt), &t), &b) in out.iter_mut().zip(&weights).zip(&top).zip(&bottom) {
                let (wx, wy) = ((wt & 0xff) as i16, ((wt >> 8) & 0x7f) as i16);
                let (a, bb) = ((t & 0xff) as i16, (t >> 8) as i16);
                let (c, d) = ((b & 0xff) as i16, (b >> 8) as i16);
                // Rows first, rounded to 8 bits, then between the rows: at most 64 * 255 per
                // lane.
                let one = WEIGHT_ONE as i16;
                let up = (a * one + (bb - a) * wx + one / 2) >> 6;
                let down = (c * one + (d - c) * wx + one / 2) >> 6;
                let v = ((up * one + (down - up) * wy + one / 2) >> 6) as u8;
                *o = if wt & OUTSIDE_BIT != 0 { *fill } else { v };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A planar 4:2:0 test picture: luma and chroma sample values from functions of position.
    struct Yuv {
        w: u32,
        h: u32,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
        stride: usize,
        cstride: usize,
    }

    impl Yuv {
        fn new(
            w: u32,
            h: u32,
            luma: impl Fn(u32, u32) -> u8,
            chroma: impl Fn(u32, u32) -> u8,
        ) -> Yuv {
            // Strides wider than the rows, as FFmpeg's are.
            let (stride, cstride) = (w as usize + 7, w.div_ceil(2) as usize + 5);
            let mut y = vec![0; stride * h as usize];
            let mut u = vec![0; cstride * h.div_ceil(2) as usize];
            for r in 0..h {
                for c in 0..w {
                    y[r as usize * stride + c as usize] = luma(c, r);
                }
            }
            for r in 0..h.div_ceil(2) {
                for c in 0..w.div_ceil(2) {
                    u[r as usize * cstride + c as usize] = chroma(c, r);
                }
            }
            let v = u.iter().map(|s| 255 - s).collect();
            Yuv {
                w,
                h,
                y,
                u,
                v,
                stride,
                cstride,
            }
        }

        fn layouts(&self) -> (PlaneLayout, PlaneLayout) {
            (
                PlaneLayout {
                    width: self.w,
                    height: self.h,
                    stride: self.stride,
                },
                PlaneLayout {
                    width: self.w.div_ceil(2),
                    height: self.h.div_ceil(2),
                    stride: self.cstride,
                },
            )
        }

        fn luma(&self, x: u32, y: u32) -> u8 {
            self.y[y as usize * self.stride + x as usize]
        }

        fn chroma(&self, x: u32, y: u32) -> (u8, u8) {
            let i = y as usize * self.cstride + x as usize;
            (self.u[i], self.v[i])
        }
    }

    fn warp(src: &Yuv, t: &Transform) -> Yuv {
        let m = t.mapping(src.w, src.h).expect("mapping");
        let (l, c) = src.layouts();
        let plan = WarpPlan::new(&m, l, c).expect("plan");
        let (w, h) = plan.output_size();
        let mut out = Yuv::new(w, h, |_, _| 0, |_, _| 0);
        let (oy, ou, ov) = (&mut out.y, &mut out.u, &mut out.v);
        plan.apply(
            [&src.y, &src.u, &src.v],
            [(oy, out.stride), (ou, out.cstride), (ov, out.cstride)],
            [16, 128, 128],
        )
        .expect("apply");
        out
    }

    fn rotated(rotate: Rotation, flip_horizontal: bool, flip_vertical: bool) -> Transform {
        Transform {
            rotate,
            flip_horizontal,
            flip_vertical,
            ..Transform::default()
        }
    }

    /// Where output pixel (u, v) of a w x h source comes from, written out case by case.
    fn expected_source(t: &Transform, w: u32, h: u32, u: u32, v: u32) -> (u32, u32) {
        let (rw, rh) = if t.rotate.swaps() { (h, w) } else { (w, h) };
        let u = if t.flip_horizontal { rw - 1 - u } else { u };
        let v = if t.flip_vertical { rh - 1 - v } else { v };
        match t.rotate {
            Rotation::None => (u, v),
            Rotation::Cw90 => (v, h - 1 - u),
            Rotation::Cw180 => (w - 1 - u, h - 1 - v),
            Rotation::Cw270 => (w - 1 - v, u),
        }
    }

    #[test]
    fn every_rotation_and_flip_moves_every_pixel_to_its_place() {
        // Odd and even sizes; every luma value unique.
        for (w, h) in [(7u32, 5u32), (8, 6), (1, 3), (9, 2)] {
            let src = Yuv::new(
                w,
                h,
                |x, y| (x + y * w) as u8,
                |x, y| (100 + x + 10 * y) as u8,
            );
            for rotate in [
                Rotation::None,
                Rotation::Cw90,
                Rotation::Cw180,
                Rotation::Cw270,
            ] {
                for (fh, fv) in [(false, false), (true, false), (false, true), (true, true)] {
                    let t = rotated(rotate, fh, fv);
                    let out = warp(&src, &t);
                    let size = if rotate.swaps() { (h, w) } else { (w, h) };
                    assert_eq!((out.w, out.h), size, "{t:?} on {w}x{h}");
                    for v in 0..out.h {
                        for u in 0..out.w {
                            let (x, y) = expected_source(&t, w, h, u, v);
                            assert_eq!(
                                out.luma(u, v),
                                src.luma(x, y),
                                "{t:?} {w}x{h} at ({u},{v})"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rotated_chroma_follows_its_luma_block() {
        // Even sizes: each 2x2 luma block and its chroma sample move together, exactly.
        let (w, h) = (8u32, 6u32);
        let src = Yuv::new(
            w,
            h,
            |x, y| (x + y * w) as u8,
            |x, y| (60 + x + 10 * y) as u8,
        );
        for rotate in [Rotation::Cw90, Rotation::Cw180, Rotation::Cw270] {
            let t = rotated(rotate, true, false);
            let out = warp(&src, &t);
            for v in 0..out.h.div_ceil(2) {
                for u in 0..out.w.div_ceil(2) {
                    // The block's source luma pixel tells which chroma sample it belongs to.
                    let (x, y) = expected_source(&t, w, h, 2 * u, 2 * v);
                    assert_eq!(
                        out.chroma(u, v),
                        src.chroma(x / 2, y / 2),
                        "{rotate:?} at ({u},{v})"
                    );
                }
            }
        }
        // Odd sizes: chroma planes have ceil(w/2) x ceil(h/2) samples and keep a flat colour.
        let flat = Yuv::new(7, 5, |_, _| 90, |_, _| 77);
        let out = warp(&flat, &rotated(Rotation::Cw90, false, false));
        assert_eq!((out.w, out.h), (5, 7));
        for v in 0..4 {
            for u in 0..3 {
                assert_eq!(out.chroma(u, v), (77, 178));
            }
        }
    }

    #[test]
    fn a_crop_is_exact_and_comes_after_the_rotation() {
        let (w, h) = (10u32, 8u32);
        let src = Yuv::new(w, h, |x, y| (x + y * w) as u8, |x, y| (x + 10 * y) as u8);
        let crop = Crop {
            x: 3,
            y: 1,
            width: 4,
            height: 5,
        };
        let out = warp(
            &src,
            &Transform {
                crop: Some(crop),
                ..Transform::default()
            },
        );
        assert_eq!((out.w, out.h), (4, 5));
        for v in 0..5 {
            for u in 0..4 {
                assert_eq!(out.luma(u, v), src.luma(u + 3, v + 1));
            }
        }
        // Rotated 90° the picture is 8 wide, 10 high; the crop is in those pixels.
        let t = Transform {
            crop: Some(crop),
            ..rotated(Rotation::Cw90, false, false)
        };
        let out = warp(&src, &t);
        assert_eq!((out.w, out.h), (4, 5));
        for v in 0..5 {
            for u in 0..4 {
                let (x, y) =
                    expected_source(&rotated(Rotation::Cw90, false, false), w, h, u + 3, v + 1);
                assert_eq!(out.luma(u, v), src.luma(x, y));
            }
        }
        // A crop beyond the picture is cut to it, and says so.
        let wide = Crop {
            x: 6,
            y: 0,
            width: 100,
            height: 100,
        };
        let m = Transform {
            crop: Some(wide),
            ..Transform::default()
        }
        .mapping(w, h)
        .expect("mapping");
        assert_eq!((m.width, m.height, m.crop_clamped), (4, 8, true));
    }

    /// Whether (x, y) is inside the convex quadrilateral `q` (corners in order).
    fn inside(q: &[[f64; 2]; 4], x: f64, y: f64) -> bool {
        let side =
            |a: [f64; 2], b: [f64; 2]| (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
        let s: Vec<f64> = (0..4).map(|i| side(q[i], q[(i + 1) % 4])).collect();
        s.iter().all(|&v| v >= 0.0) || s.iter().all(|&v| v <= 0.0)
    }

    #[test]
    fn a_perspective_warp_maps_the_quadrilateral_onto_the_whole_output() {
        // Seed 004's example corners (top-left, bottom-left, bottom-right, top-right).
        let q = [[40.0, 92.0], [20.0, 325.0], [600.0, 349.0], [620.0, 116.0]];
        let src = Yuv::new(
            640,
            480,
            |x, y| {
                if inside(&q, f64::from(x), f64::from(y)) {
                    235
                } else {
                    16
                }
            },
            |_, _| 128,
        );
        let p = Perspective {
            corners: q,
            width: 680,
            height: 250,
        };
        let t = Transform {
            perspective: Some(p),
            ..Transform::default()
        };
        let m = t.mapping(640, 480).expect("mapping");
        assert!(!m.exact);
        // The corners go to the output's corners (to well within a pixel).
        let to_out = m.to_source.inverse().expect("invertible");
        for (c, target) in q
            .iter()
            .zip([[0.0, 0.0], [0.0, 250.0], [680.0, 250.0], [680.0, 0.0]])
        {
            let (u, v) = to_out.apply(c[0], c[1]).expect("finite");
            assert!(
                (u - target[0]).abs() < 1e-6 && (v - target[1]).abs() < 1e-6,
                "{c:?} -> ({u}, {v})"
            );
        }
        // In pixels: the quadrilateral fills the output up to one pixel from its edges.
        let out = warp(&src, &t);
        assert_eq!((out.w, out.h), (680, 250));
        for v in 1..249 {
            for u in 1..679 {
                assert!(out.luma(u, v) > 200, "({u},{v}) = {}", out.luma(u, v));
            }
        }
        // The same config on a camera that now sends twice the size: the corners scale with it.
        let t2 = Transform {
            reference: Some((640, 480)),
            ..t.clone()
        };
        let q2 = q.map(|[x, y]| [2.0 * x, 2.0 * y]);
        let big = Yuv::new(
            1280,
            960,
            |x, y| {
                if inside(&q2, f64::from(x), f64::from(y)) {
                    235
                } else {
                    16
                }
            },
            |_, _| 128,
        );
        let out = warp(&big, &t2);
        assert_eq!((out.w, out.h), (680, 250));
        assert!((2..248).all(|v| (2..678).all(|u| out.luma(u, v) > 200)));
    }

    #[test]
    fn outside_the_source_is_filled_and_degenerate_corners_are_refused() {
        // Corners beyond the picture: the part outside is black, not smeared edge pixels.
        let src = Yuv::new(100, 100, |_, _| 200, |_, _| 90);
        let p = Perspective {
            corners: [[-100.0, 0.0], [-100.0, 99.0], [99.0, 99.0], [99.0, 0.0]],
            width: 200,
            height: 100,
        };
        let out = warp(
            &src,
            &Transform {
                perspective: Some(p),
                ..Transform::default()
            },
        );
        assert_eq!(out.luma(10, 50), 16);
        assert_eq!(out.chroma(5, 25), (128, 128));
        assert_eq!(out.luma(150, 50), 200);
        let line = Perspective {
            corners: [[0.0, 0.0], [10.0, 10.0], [20.0, 20.0], [30.0, 0.0]],
            width: 10,
            height: 10,
        };
        let err = Transform {
            perspective: Some(line),
            ..Transform::default()
        }
        .mapping(100, 100);
        assert!(err.is_err());
        assert!(Transform::default().mapping(0, 10).is_err());
    }

    #[test]
    fn a_plan_refuses_planes_it_was_not_built_for() {
        let src = Yuv::new(16, 8, |_, _| 1, |_, _| 2);
        let (l, c) = src.layouts();
        let plan = WarpPlan::new(&Transform::default().mapping(16, 8).expect("mapping"), l, c)
            .expect("plan");
        assert!(plan.fits(l, c));
        assert!(!plan.fits(PlaneLayout { stride: 32, ..l }, c));
        let mut y = vec![0; 16 * 8];
        let (mut u, mut v) = (vec![0; 32], vec![0; 32]);
        let short = &src.y[..20];
        assert!(plan
            .apply(
                [short, &src.u, &src.v],
                [(&mut y, 16), (&mut u, 8), (&mut v, 8)],
                [0; 3]
            )
            .is_err());
        let mut tiny = vec![0; 3];
        assert!(plan
            .apply(
                [&src.y, &src.u, &src.v],
                [(&mut tiny, 16), (&mut u, 8), (&mut v, 8)],
                [0; 3]
            )
            .is_err());
    }

    #[test]
    fn a_resize_keeps_flat_areas_and_edges_in_place() {
        let src = Yuv::new(64, 32, |x, _| if x < 32 { 20 } else { 220 }, |_, _| 128);
        let m = Mapping::resize(64, 32, 32, 16);
        let (l, c) = src.layouts();
        let plan = WarpPlan::new(&m, l, c).expect("plan");
        let mut out = Yuv::new(32, 16, |_, _| 0, |_, _| 0);
        plan.apply(
            [&src.y, &src.u, &src.v],
            [
                (&mut out.y, out.stride),
                (&mut out.u, out.cstride),
                (&mut out.v, out.cstride),
            ],
            [0; 3],
        )
        .expect("apply");
        assert_eq!(out.luma(3, 5), 20);
        assert_eq!(out.luma(28, 5), 220);
        // The edge sits between output columns 15 and 16, as it sat between 31 and 32.
        assert!(out.luma(15, 5) < 120 && out.luma(16, 5) > 120);
    }
}
