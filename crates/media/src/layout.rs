//! Where each input of a composite goes: [`arrange`] places pictures of given sizes side by side
//! (`HStack`, scaled to a common height), one above the other (`VStack`, a common width) or in a
//! grid of equal cells (each fitted into its cell), then scales the whole to the requested output
//! size. Every tile starts at even coordinates and has an even size where it can, so 4:2:0 chroma
//! lines up with its luma; tiles abut exactly (no gaps from rounding).

/// How tiles are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Side by side, scaled to a common height, keeping their aspect.
    HStack,
    /// One above the other, scaled to a common width, keeping their aspect.
    VStack,
    /// Rows and columns of equal cells; each picture fitted into its cell, centred.
    Grid,
}

/// One tile's place in the output picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// The largest output side.
pub const MAX_SIDE: u32 = 16384;

fn even(v: f64) -> u32 {
    ((v / 2.0).round() * 2.0).max(0.0) as u32
}

/// The output size and one tile per input (of `sizes`, each `(width, height)` after its cut) for
/// `layout`; `width` / `height` force the output size (one of them alone keeps the aspect).
pub fn arrange(
    layout: Layout,
    sizes: &[(u32, u32)],
    width: Option<u32>,
    height: Option<u32>,
) -> (u32, u32, Vec<Tile>) {
    let sizes: Vec<(f64, f64)> = sizes
        .iter()
        .map(|&(w, h)| (f64::from(w.max(1)), f64::from(h.max(1))))
        .collect();
    if sizes.is_empty() {
        return (16, 16, Vec::new());
    }
    // The natural layout: cell boundaries along the main axis, and the common cross size.
    let n = sizes.len();
    let (cols, rows) = match layout {
        Layout::HStack => (n, 1),
        Layout::VStack => (1, n),
        Layout::Grid => {
            let cols = (n as f64).sqrt().ceil() as usize;
            (cols, n.div_ceil(cols))
        }
    };
    let max_w = sizes.iter().map(|s| s.0).fold(1.0, f64::max);
    let max_h = sizes.iter().map(|s| s.1).fold(1.0, f64::max);
    // Natural cell edges in x and y (cumulative), per layout.
    let (xs, ys): (Vec<f64>, Vec<f64>) = match layout {
        Layout::HStack => {
            let mut xs = vec![0.0];
            for &(w, h) in &sizes {
                xs.push(xs[xs.len() - 1] + w * max_h / h);
            }
            (xs, vec![0.0, max_h])
        }
        Layout::VStack => {
            let mut ys = vec![0.0];
            for &(w, h) in &sizes {
                ys.push(ys[ys.len() - 1] + h * max_w / w);
            }
            (vec![0.0, max_w], ys)
        }
        Layout::Grid => (
            (0..=cols).map(|c| c as f64 * max_w).collect(),
            (0..=rows).map(|r| r as f64 * max_h).collect(),
        ),
    };
    let (nat_w, nat_h) = (xs[xs.len() - 1], ys[ys.len() - 1]);
    let (mut out_w, mut out_h) = match (width, height) {
        (Some(w), Some(h)) => (f64::from(w), f64::from(h)),
        (Some(w), None) => (f64::from(w), nat_h * f64::from(w) / nat_w),
        (None, Some(h)) => (nat_w * f64::from(h) / nat_h, f64::from(h)),
        (None, None) => (nat_w, nat_h),
    };
    let over = (out_w.max(out_h) / f64::from(MAX_SIDE)).max(1.0);
    out_w = (out_w / over).max(16.0);
    out_h = (out_h / over).max(16.0);
    let (ow, oh) = (even(out_w).max(16), even(out_h).max(16));
    let (sx, sy) = (f64::from(ow) / nat_w, f64::from(oh) / nat_h);
    let edge_x = |i: usize| even(xs[i] * sx).min(ow);
    let edge_y = |i: usize| even(ys[i] * sy).min(oh);
    let mut tiles = Vec::with_capacity(n);
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let (c, r) = match layout {
            Layout::HStack => (i, 0),
            Layout::VStack => (0, i),
            Layout::Grid => (i % cols, i / cols),
        };
        let (x0, x1, y0, y1) = (edge_x(c), edge_x(c + 1), edge_y(r), edge_y(r + 1));
        let (cw, ch) = (x1.saturating_sub(x0).max(1), y1.saturating_sub(y0).max(1));
        let tile = if layout == Layout::Grid {
            // Fitted into the cell, keeping its aspect, centred.
            let k = (f64::from(cw) / w).min(f64::from(ch) / h);
            let (tw, th) = (even(w * k).clamp(2, cw), even(h * k).clamp(2, ch));
            Tile {
                x: x0 + even(f64::from(cw - tw) / 2.0).min(cw - tw),
                y: y0 + even(f64::from(ch - th) / 2.0).min(ch - th),
                width: tw,
                height: th,
            }
        } else {
            Tile {
                x: x0,
                y: y0,
                width: cw,
                height: ch,
            }
        };
        tiles.push(tile);
    }
    (ow, oh, tiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hstack_scales_to_a_common_height_and_abuts() {
        let (w, h, tiles) = arrange(
            Layout::HStack,
            &[(640, 480), (320, 240), (632, 250)],
            None,
            None,
        );
        assert_eq!(h, 480);
        // 640 + 640 + 632 * 480 / 250 = 1213.4 -> even.
        assert_eq!(w, 2494);
        assert_eq!(
            tiles[0],
            Tile {
                x: 0,
                y: 0,
                width: 640,
                height: 480
            }
        );
        assert_eq!(
            tiles[1],
            Tile {
                x: 640,
                y: 0,
                width: 640,
                height: 480
            }
        );
        assert_eq!(tiles[2].x, 1280);
        assert_eq!(tiles[2].x + tiles[2].width, w);
    }

    #[test]
    fn a_requested_size_scales_the_whole_and_keeps_tiles_even() {
        let (w, h, tiles) = arrange(Layout::HStack, &[(640, 360); 3], Some(1000), None);
        assert_eq!((w, h), (1000, 188));
        let mut x = 0;
        for t in &tiles {
            assert_eq!(t.x, x);
            assert!(t.x % 2 == 0 && t.width % 2 == 0, "{t:?}");
            x += t.width;
        }
        assert_eq!(x, 1000);
        let (w, h, tiles) = arrange(Layout::VStack, &[(640, 360), (1280, 720)], None, None);
        assert_eq!((w, h), (1280, 1440));
        assert_eq!(
            tiles[1],
            Tile {
                x: 0,
                y: 720,
                width: 1280,
                height: 720
            }
        );
    }

    #[test]
    fn a_grid_fits_each_picture_in_its_cell() {
        let (w, h, tiles) = arrange(
            Layout::Grid,
            &[(640, 360), (640, 360), (360, 640)],
            None,
            None,
        );
        assert_eq!((w, h), (1280, 1280));
        // Cells are 640x640 (the widest and the tallest picture): landscape ones are centred.
        assert_eq!(
            tiles[0],
            Tile {
                x: 0,
                y: 140,
                width: 640,
                height: 360
            }
        );
        assert_eq!(
            tiles[1],
            Tile {
                x: 640,
                y: 140,
                width: 640,
                height: 360
            }
        );
        // A portrait picture in a 640x640 cell: 360 wide, centred.
        assert_eq!(
            tiles[2],
            Tile {
                x: 140,
                y: 640,
                width: 360,
                height: 640
            }
        );
        // Never beyond the largest side.
        let (w, h, _) = arrange(Layout::HStack, &[(16384, 100); 4], None, None);
        assert!(w <= MAX_SIDE && h >= 16, "{w}x{h}");
    }
}
