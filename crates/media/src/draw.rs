//! Drawing into 8-bit planes: filled rectangles, text in a built-in 5x7 bitmap font, and the demo
//! camera's test pattern (colour bars, a moving box, a label). Used by the built-in demo camera and
//! the "reconnecting…" placeholder frames. Everything clips to the plane: any coordinates, sizes and
//! scales are accepted, and nothing here can write outside `data`.

/// A mutable view of one 8-bit plane: `height` rows of `width` bytes, each row starting `stride`
/// bytes after the previous one in `data`. Rows or columns that `data` is too short to hold (or that
/// lie beyond `stride`) are treated as outside the plane and clipped.
#[derive(Debug)]
pub struct Plane<'a> {
    /// The samples, row after row.
    pub data: &'a mut [u8],
    /// Bytes from the start of one row to the start of the next.
    pub stride: usize,
    /// Visible samples per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

/// Colour bars of [`test_pattern`], left to right, as full-range (JPEG/JFIF) BT.601 `(Y, Cb, Cr)`:
///
/// | bar | RGB | Y | Cb | Cr |
/// |---|---|---|---|---|
/// | white   | 255, 255, 255 | 255 | 128 | 128 |
/// | yellow  | 255, 255, 0   | 226 |   1 | 149 |
/// | cyan    | 0, 255, 255   | 179 | 171 |   1 |
/// | green   | 0, 255, 0     | 150 |  44 |  21 |
/// | magenta | 255, 0, 255   | 105 | 212 | 235 |
/// | red     | 255, 0, 0     |  76 |  85 | 255 |
/// | blue    | 0, 0, 255     |  29 | 255 | 107 |
/// | black   | 0, 0, 0       |   0 | 128 | 128 |
///
/// (`Y = 0.299 R + 0.587 G + 0.114 B`, `Cb = 128 + 0.564 (B - Y)`, `Cr = 128 + 0.713 (R - Y)`,
/// rounded half up and clamped to 0..=255.)
pub const BARS: [(u8, u8, u8); 8] = [
    (255, 128, 128),
    (226, 1, 149),
    (179, 171, 1),
    (150, 44, 21),
    (105, 212, 235),
    (76, 85, 255),
    (29, 255, 107),
    (0, 128, 128),
];

/// The RGB colours of [`BARS`], in the same order.
pub const BAR_RGB: [(u8, u8, u8); 8] = [
    (255, 255, 255),
    (255, 255, 0),
    (0, 255, 255),
    (0, 255, 0),
    (255, 0, 255),
    (255, 0, 0),
    (0, 0, 255),
    (0, 0, 0),
];

/// Width of a glyph in font pixels; each character cell adds one pixel of spacing.
const GLYPH_W: i64 = 5;
/// Height of a glyph in font pixels.
const GLYPH_H: i64 = 7;
const CELL_W: i64 = GLYPH_W + 1;

/// A 5x7 font for ASCII 0x20..=0x7E: five columns per glyph, left to right; bit 0 is the top row.
#[rustfmt::skip]
const FONT: [[u8; 5]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x00, 0x00, 0x5F, 0x00, 0x00], // !
    [0x00, 0x07, 0x00, 0x07, 0x00], // "
    [0x14, 0x7F, 0x14, 0x7F, 0x14], // #
    [0x24, 0x2A, 0x7F, 0x2A, 0x12], // $
    [0x23, 0x13, 0x08, 0x64, 0x62], // %
    [0x36, 0x49, 0x55, 0x22, 0x50], // &
    [0x00, 0x05, 0x03, 0x00, 0x00], // '
    [0x00, 0x1C, 0x22, 0x41, 0x00], // (
    [0x00, 0x41, 0x22, 0x1C, 0x00], // )
    [0x14, 0x08, 0x3E, 0x08, 0x14], // *
    [0x08, 0x08, 0x3E, 0x08, 0x08], // +
    [0x00, 0x50, 0x30, 0x00, 0x00], // ,
    [0x08, 0x08, 0x08, 0x08, 0x08], // -
    [0x00, 0x60, 0x60, 0x00, 0x00], // .
    [0x20, 0x10, 0x08, 0x04, 0x02], // /
    [0x3E, 0x51, 0x49, 0x45, 0x3E], // 0
    [0x00, 0x42, 0x7F, 0x40, 0x00], // 1
    [0x42, 0x61, 0x51, 0x49, 0x46], // 2
    [0x21, 0x41, 0x45, 0x4B, 0x31], // 3
    [0x18, 0x14, 0x12, 0x7F, 0x10], // 4
    [0x27, 0x45, 0x45, 0x45, 0x39], // 5
    [0x3C, 0x4A, 0x49, 0x49, 0x30], // 6
    [0x01, 0x71, 0x09, 0x05, 0x03], // 7
    [0x36, 0x49, 0x49, 0x49, 0x36], // 8
    [0x06, 0x49, 0x49, 0x29, 0x1E], // 9
    [0x00, 0x36, 0x36, 0x00, 0x00], // :
    [0x00, 0x56, 0x36, 0x00, 0x00], // ;
    [0x08, 0x14, 0x22, 0x41, 0x00], // <
    [0x14, 0x14, 0x14, 0x14, 0x14], // =
    [0x00, 0x41, 0x22, 0x14, 0x08], // >
    [0x02, 0x01, 0x51, 0x09, 0x06], // ?
    [0x32, 0x49, 0x79, 0x41, 0x3E], // @
    [0x7E, 0x11, 0x11, 0x11, 0x7E], // A
    [0x7F, 0x49, 0x49, 0x49, 0x36], // B
    [0x3E, 0x41, 0x41, 0x41, 0x22], // C
    [0x7F, 0x41, 0x41, 0x22, 0x1C], // D
    [0x7F, 0x49, 0x49, 0x49, 0x41], // E
    [0x7F, 0x09, 0x09, 0x09, 0x01], // F
    [0x3E, 0x41, 0x49, 0x49, 0x7A], // G
    [0x7F, 0x08, 0x08, 0x08, 0x7F], // H
    [0x00, 0x41, 0x7F, 0x41, 0x00], // I
    [0x20, 0x40, 0x41, 0x3F, 0x01], // J
    [0x7F, 0x08, 0x14, 0x22, 0x41], // K
    [0x7F, 0x40, 0x40, 0x40, 0x40], // L
    [0x7F, 0x02, 0x0C, 0x02, 0x7F], // M
    [0x7F, 0x04, 0x08, 0x10, 0x7F], // N
    [0x3E, 0x41, 0x41, 0x41, 0x3E], // O
    [0x7F, 0x09, 0x09, 0x09, 0x06], // P
    [0x3E, 0x41, 0x51, 0x21, 0x5E], // Q
    [0x7F, 0x09, 0x19, 0x29, 0x46], // R
    [0x46, 0x49, 0x49, 0x49, 0x31], // S
    [0x01, 0x01, 0x7F, 0x01, 0x01], // T
    [0x3F, 0x40, 0x40, 0x40, 0x3F], // U
    [0x1F, 0x20, 0x40, 0x20, 0x1F], // V
    [0x3F, 0x40, 0x38, 0x40, 0x3F], // W
    [0x63, 0x14, 0x08, 0x14, 0x63], // X
    [0x07, 0x08, 0x70, 0x08, 0x07], // Y
    [0x61, 0x51, 0x49, 0x45, 0x43], // Z
    [0x00, 0x7F, 0x41, 0x41, 0x00], // [
    [0x02, 0x04, 0x08, 0x10, 0x20], // backslash
    [0x00, 0x41, 0x41, 0x7F, 0x00], // ]
    [0x04, 0x02, 0x01, 0x02, 0x04], // ^
    [0x40, 0x40, 0x40, 0x40, 0x40], // _
    [0x00, 0x01, 0x02, 0x04, 0x00], // `
    [0x20, 0x54, 0x54, 0x54, 0x78], // a
    [0x7F, 0x48, 0x44, 0x44, 0x38], // b
    [0x38, 0x44, 0x44, 0x44, 0x20], // c
    [0x38, 0x44, 0x44, 0x48, 0x7F], // d
    [0x38, 0x54, 0x54, 0x54, 0x18], // e
    [0x08, 0x7E, 0x09, 0x01, 0x02], // f
    [0x0C, 0x52, 0x52, 0x52, 0x3E], // g
    [0x7F, 0x08, 0x04, 0x04, 0x78], // h
    [0x00, 0x44, 0x7D, 0x40, 0x00], // i
    [0x20, 0x40, 0x44, 0x3D, 0x00], // j
    [0x7F, 0x10, 0x28, 0x44, 0x00], // k
    [0x00, 0x41, 0x7F, 0x40, 0x00], // l
    [0x7C, 0x04, 0x18, 0x04, 0x78], // m
    [0x7C, 0x08, 0x04, 0x04, 0x78], // n
    [0x38, 0x44, 0x44, 0x44, 0x38], // o
    [0x7C, 0x14, 0x14, 0x14, 0x08], // p
    [0x08, 0x14, 0x14, 0x18, 0x7C], // q
    [0x7C, 0x08, 0x04, 0x04, 0x08], // r
    [0x48, 0x54, 0x54, 0x54, 0x20], // s
    [0x04, 0x3F, 0x44, 0x40, 0x20], // t
    [0x3C, 0x40, 0x40, 0x20, 0x7C], // u
    [0x1C, 0x20, 0x40, 0x20, 0x1C], // v
    [0x3C, 0x40, 0x30, 0x40, 0x3C], // w
    [0x44, 0x28, 0x10, 0x28, 0x44], // x
    [0x0C, 0x50, 0x50, 0x50, 0x3C], // y
    [0x44, 0x64, 0x54, 0x4C, 0x44], // z
    [0x00, 0x08, 0x36, 0x41, 0x00], // {
    [0x00, 0x00, 0x7F, 0x00, 0x00], // |
    [0x00, 0x41, 0x36, 0x08, 0x00], // }
    [0x08, 0x04, 0x08, 0x10, 0x08], // ~
];

/// The glyphs `text` is drawn with: printable ASCII as itself, '…' as "...", anything else as '?'.
fn glyphs(text: &str) -> impl Iterator<Item = &'static [u8; 5]> + '_ {
    text.chars().flat_map(|c| {
        let (ch, n) = match c {
            '…' => ('.', 3),
            ' '..='~' => (c, 1),
            _ => ('?', 1),
        };
        let glyph = FONT
            .get((ch as usize).wrapping_sub(0x20))
            .unwrap_or(&FONT[0]);
        std::iter::repeat_n(glyph, n)
    })
}

/// Fills the rectangle at (`x`, `y`) of `w` x `h` samples with `value`, clipped to the plane (a
/// negative or zero size draws nothing).
pub fn fill_rect(p: &mut Plane, x: i64, y: i64, w: i64, h: i64, value: u8) {
    let cols = clip(x, w, p.width.min(p.stride));
    let rows = clip(y, h, p.height);
    if cols.is_empty() {
        return;
    }
    for row in rows {
        let start = row.saturating_mul(p.stride);
        let Some(line) = p
            .data
            .get_mut(start.saturating_add(cols.start)..start.saturating_add(cols.end))
        else {
            return; // data ends before this row: so do all later rows
        };
        line.fill(value);
    }
}

/// The part of `start .. start + len` inside `0 .. limit`.
fn clip(start: i64, len: i64, limit: usize) -> std::ops::Range<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let lo = start.clamp(0, limit);
    let hi = start.saturating_add(len.max(0)).clamp(lo, limit);
    // Both are in 0..=limit, which came from a usize.
    usize::try_from(lo).unwrap_or(0)..usize::try_from(hi).unwrap_or(0)
}

/// Draws `text` with its top-left corner at (`x`, `y`) in the built-in 5x7 font, each font pixel a
/// `scale` x `scale` square of `value`, characters 6 font pixels apart. Printable ASCII is drawn as
/// itself, '…' as "...", anything else as '?'. Clipped to the plane; returns the drawn width in
/// pixels, which is [`text_width`].
pub fn draw_text(p: &mut Plane, x: i64, y: i64, scale: u32, text: &str, value: u8) -> i64 {
    let s = i64::from(scale);
    let mut cx = x;
    for glyph in glyphs(text) {
        for (col, bits) in (0..).zip(glyph.iter()) {
            for row in 0..GLYPH_H {
                if bits >> row & 1 == 1 {
                    let px = cx.saturating_add(col * s);
                    fill_rect(p, px, y.saturating_add(row * s), s, s, value);
                }
            }
        }
        cx = cx.saturating_add(CELL_W * s);
    }
    text_width(text, scale)
}

/// Width in pixels that [`draw_text`] uses for `text` at `scale`: 6 font pixels per character, less
/// the spacing after the last one (0 for empty text). The height is always `7 * scale`.
pub fn text_width(text: &str, scale: u32) -> i64 {
    let n = i64::try_from(glyphs(text).count()).unwrap_or(i64::MAX);
    if n == 0 {
        return 0;
    }
    n.saturating_mul(CELL_W)
        .saturating_sub(1)
        .saturating_mul(i64::from(scale))
}

/// Height in pixels of text drawn at `scale`.
pub fn text_height(scale: u32) -> i64 {
    GLYPH_H * i64::from(scale)
}

/// Draws the demo test pattern into full-range (JPEG range) YUV 4:2:0 planes (`u` and `v` half the
/// size of `y`, rounded up):
///
/// - the top two thirds: eight vertical colour bars, [`BARS`] from left to right;
/// - below them, on dark grey, a white box that slides right with `frame_no`, wrapping back to the
///   left edge (so consecutive frames differ in planes at least 64 samples wide);
/// - the bottom sixth: `label` (e.g. `"demo  #000123  2026-11-22 03:04:05.120"`) in large white
///   text on black, centred, at the largest scale that fits.
pub fn test_pattern(y: &mut Plane, u: &mut Plane, v: &mut Plane, frame_no: u64, label: &str) {
    let w = i64::try_from(y.width).unwrap_or(i64::MAX);
    let h = i64::try_from(y.height).unwrap_or(i64::MAX);
    let bars_h = even(h * 2 / 3);
    let band_h = even(h / 6).max(2);
    let band_y = even(h - band_h);

    for (i, &(cy, cb, cr)) in (0i64..).zip(BARS.iter()) {
        let x0 = even(w * i / 8);
        let x1 = even(w * (i + 1) / 8);
        let x1 = if i == 7 { w } else { x1 };
        fill_yuv(y, u, v, (x0, 0, x1 - x0, bars_h), (cy, cb, cr));
    }

    // Middle strip with the moving box.
    const GREY: (u8, u8, u8) = (40, 128, 128);
    const WHITE: (u8, u8, u8) = (255, 128, 128);
    fill_yuv(y, u, v, (0, bars_h, w, band_y - bars_h), GREY);
    let box_w = even(w / 8).max(2);
    let box_h = even((band_y - bars_h) * 3 / 4).max(2);
    let box_y = even(bars_h + (band_y - bars_h - box_h) / 2);
    // Slide right one step per frame, wrapping back to the left edge.
    let step = even(w / 64).max(2);
    let positions = (even(w - box_w).max(0) / step + 1).max(1);
    let box_x = i64::try_from(frame_no % positions.unsigned_abs()).unwrap_or(0) * step;
    fill_yuv(y, u, v, (box_x, box_y, box_w, box_h), WHITE);

    // Bottom band with the label.
    fill_yuv(y, u, v, (0, band_y, w, h - band_y), (0, 128, 128));
    let fit_h = (band_h * 3 / 4) / GLYPH_H;
    let fit_w = (w - 8) / text_width(label, 1).max(1);
    let scale = u32::try_from(fit_h.min(fit_w).max(1)).unwrap_or(1);
    let tw = text_width(label, scale);
    let tx = ((w - tw) / 2).max(4);
    let ty = band_y + (band_h - text_height(scale)) / 2;
    draw_text(y, tx, ty, scale, label, 255);
}

/// Rounds down to even, so luma rectangles map exactly onto 4:2:0 chroma samples.
fn even(v: i64) -> i64 {
    v & !1
}

/// Fills a rectangle `(x, y, w, h)` given in luma coordinates on Y and on both half-size chroma
/// planes.
fn fill_yuv(
    py: &mut Plane,
    pu: &mut Plane,
    pv: &mut Plane,
    (x, y, w, h): (i64, i64, i64, i64),
    (cy, cb, cr): (u8, u8, u8),
) {
    fill_rect(py, x, y, w, h, cy);
    // Chroma sample i covers luma samples 2i and 2i+1.
    let (x0, y0) = (x.div_euclid(2), y.div_euclid(2));
    let x1 = x.saturating_add(w).saturating_add(1).div_euclid(2);
    let y1 = y.saturating_add(h).saturating_add(1).div_euclid(2);
    fill_rect(pu, x0, y0, x1 - x0, y1 - y0, cb);
    fill_rect(pv, x0, y0, x1 - x0, y1 - y0, cr);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plane(buf: &mut [u8], width: usize, height: usize) -> Plane<'_> {
        Plane {
            data: buf,
            stride: width,
            width,
            height,
        }
    }

    /// Renders text at scale 1 as ASCII art, for eyeballing glyphs.
    fn art(text: &str) -> String {
        let w = usize::try_from(text_width(text, 1)).unwrap_or(0);
        let mut buf = vec![0u8; w * 7];
        draw_text(&mut plane(&mut buf, w, 7), 0, 0, 1, text, 1);
        buf.chunks(w.max(1))
            .map(|r| {
                r.iter()
                    .map(|&b| if b == 1 { '#' } else { '.' })
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    #[test]
    fn glyphs_look_right() {
        assert_eq!(
            art("0:7"),
            concat!(
                ".###........#####\n",
                "#...#..##.......#\n",
                "#..##..##......#.\n",
                "#.#.#.........#..\n",
                "##..#..##....#...\n",
                "#...#..##....#...\n",
                ".###.........#...\n",
            )
        );
        assert_eq!(art("…"), art("..."));
        assert_eq!(art("é"), art("?"));
    }

    #[test]
    fn digit_changes_pixels_only_in_its_box() {
        let (w, h) = (40, 30);
        let mut buf = vec![0u8; w * h];
        let drawn = draw_text(&mut plane(&mut buf, w, h), 10, 5, 2, "8", 200);
        assert_eq!(drawn, 10);
        assert_eq!(drawn, text_width("8", 2));
        let mut inside = 0;
        for (i, &b) in buf.iter().enumerate() {
            let (x, y) = (i % w, i / w);
            let in_box = (10..20).contains(&x) && (5..19).contains(&y);
            if b != 0 {
                assert!(in_box, "pixel {x},{y} outside the glyph box");
                assert_eq!(b, 200);
                inside += 1;
            }
        }
        // "8" has 17 set font pixels, each 2x2.
        assert_eq!(inside, 17 * 4);
    }

    #[test]
    fn text_widths() {
        assert_eq!(text_width("", 3), 0);
        assert_eq!(text_width("a", 1), 5);
        assert_eq!(text_width("ab", 2), 22);
        assert_eq!(text_width("…", 1), text_width("...", 1));
        assert_eq!(text_width("x", 0), 0);
    }

    #[test]
    fn fill_rect_clips() {
        let mut buf = vec![0u8; 4 * 3];
        fill_rect(&mut plane(&mut buf, 4, 3), -2, 1, 4, 10, 9);
        assert_eq!(buf, [0, 0, 0, 0, 9, 9, 0, 0, 9, 9, 0, 0]);
        // A stride wider than the visible width leaves the padding alone.
        let mut buf = vec![0u8; 6 * 2];
        let mut p = Plane {
            data: &mut buf,
            stride: 6,
            width: 4,
            height: 2,
        };
        fill_rect(&mut p, 0, 0, 100, 100, 1);
        assert_eq!(buf, [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0]);
        // data shorter than stride * height: the missing rows are simply not there.
        let mut buf = vec![0u8; 5];
        fill_rect(&mut plane(&mut buf, 4, 3), 0, 0, 4, 3, 1);
        assert_eq!(buf, [1, 1, 1, 1, 0]);
    }

    fn pattern(w: usize, h: usize, frame_no: u64, label: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (mut y, mut u, mut v) = (vec![7u8; w * h], vec![7u8; cw * ch], vec![7u8; cw * ch]);
        test_pattern(
            &mut plane(&mut y, w, h),
            &mut plane(&mut u, cw, ch),
            &mut plane(&mut v, cw, ch),
            frame_no,
            label,
        );
        (y, u, v)
    }

    #[test]
    fn pattern_bars_have_documented_values() {
        let (w, h) = (320, 240);
        let (y, u, v) = pattern(w, h, 0, "demo  #000000  2026-11-22 03:04:05.120");
        for (i, &(cy, cb, cr)) in BARS.iter().enumerate() {
            let x = w * (2 * i + 1) / 16;
            let row = h / 3;
            assert_eq!(y[row * w + x], cy, "bar {i} Y");
            assert_eq!(u[row / 2 * (w / 2) + x / 2], cb, "bar {i} Cb");
            assert_eq!(v[row / 2 * (w / 2) + x / 2], cr, "bar {i} Cr");
        }
        // Every sample was drawn (the fill value 7 appears nowhere).
        assert!(!y.contains(&7) && !u.contains(&7) && !v.contains(&7));
        // The label is there: white pixels in the bottom band.
        assert!(y[(h - h / 6) * w..].contains(&255));
    }

    #[test]
    fn bars_match_their_rgb() {
        for (&(y, cb, cr), &(r, g, b)) in BARS.iter().zip(BAR_RGB.iter()) {
            let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
            let ey = 0.299 * r + 0.587 * g + 0.114 * b;
            let ecb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
            let ecr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
            for (got, want) in [(y, ey), (cb, ecb), (cr, ecr)] {
                assert!(
                    (f64::from(got) - want.clamp(0.0, 255.0)).abs() <= 0.5 + 1e-9,
                    "{got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn consecutive_frames_differ() {
        let a = pattern(320, 240, 0, "x");
        let b = pattern(320, 240, 1, "x");
        assert_ne!(a.0, b.0);
        let c = pattern(64, 48, 41, "x");
        let d = pattern(64, 48, 42, "x");
        assert_ne!(c.0, d.0);
    }

    #[test]
    fn tiny_and_odd_planes_do_not_panic() {
        for (w, h) in [(0, 0), (1, 1), (2, 2), (3, 5), (17, 9), (641, 479)] {
            pattern(w, h, u64::MAX, "label … ünïcode");
        }
    }

    proptest! {
        #[test]
        fn drawing_anywhere_never_panics(
            w in 0usize..40, h in 0usize..40, extra in 0usize..4, short in 0usize..50,
            x in any::<i64>(), y in any::<i64>(), rw in any::<i64>(), rh in any::<i64>(),
            scale in any::<u32>(), text in ".{0,8}",
        ) {
            let stride = w + extra;
            let mut buf = vec![0u8; (stride * h).saturating_sub(short)];
            let mut p = Plane { data: &mut buf, stride, width: w, height: h };
            fill_rect(&mut p, x, y, rw, rh, 1);
            draw_text(&mut p, x, y, scale, &text, 2);
            draw_text(&mut p, x % 64, y % 64, scale % 5, &text, 3);
        }
    }
}
