//! [`Compositor`]: a `[[composite]]` camera's pictures, made on its decode thread from its inputs'
//! newest pictures (seed 004's panorama). A composite is a camera like any other: its source only
//! ticks at `fps` (like the demo's), and each tick the decode stage asks the compositor for a
//! picture, which the picture tap publishes to every consumer.
//!
//! While it runs, the compositor holds a picture subscription on each input (found through the hub
//! by id, again after a reload replaced it) and touches it at every tick, so the inputs connect on
//! demand and follow the usual idle rules: when the composite's decode stage stops, the
//! subscriptions go and the inputs close after their `idle_timeout`. An input with no new picture
//! for `stale_after` is drawn as a labelled "no signal" tile (its last picture dimmed, or a plain
//! tile) and never holds the others up; it recovers by itself when pictures come again.

use std::sync::Arc;
use std::time::Instant;

use camhub_codec::{ColourMatrix, JpegDecoder, Picture, Scaler};
use camhub_config::Composite;
use camhub_media::colour::{PlaneMut, SampleRange, YcbcrConversion};
use camhub_media::draw::{self, Plane};
use camhub_media::layout::{arrange, Layout, Tile};
use camhub_media::warp::{Homography, Mapping, PlaneLayout, WarpPlan};

use super::taps::{Frame, FrameContent, PictureSubscriber};
use super::Camera;

/// Finds a camera by id (the hub's current one).
pub type Lookup = Arc<dyn Fn(&str) -> Option<Arc<Camera>> + Send + Sync>;

/// The size assumed for an input whose size is not known yet (no picture, no status).
const UNKNOWN_SIZE: (u32, u32) = (640, 360);

/// One input of a running composite.
struct Input {
    id: String,
    /// The input camera and the subscription on its picture tap.
    sub: Option<(Arc<Camera>, PictureSubscriber)>,
    /// The newest picture seen, and when it was new.
    last: Option<(Arc<Frame>, Instant)>,
    jpeg: Option<JpegDecoder>,
    /// The newest JPEG decoded: its sequence number, the size asked for, the picture.
    decoded: Option<(u64, (u32, u32), Picture)>,
    scaler: Option<Scaler>,
    /// The plan for the current source layout and tile, with what it was built for.
    plan: Option<(PlanKey, WarpPlan)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct PlanKey {
    luma: PlaneLayout,
    chroma: PlaneLayout,
    cut: [u32; 4],
    tile: (u32, u32),
}

/// A composite's running state (one per run of its decode stage).
pub struct Compositor {
    spec: Composite,
    lookup: Lookup,
    inputs: Vec<Input>,
    started: Instant,
    /// The layout in use.
    layout: Option<Placed>,
}

/// A layout: the input sizes (after cuts) it was computed for, the output size, the tiles.
struct Placed {
    sizes: Vec<(u32, u32)>,
    size: (u32, u32),
    tiles: Vec<Tile>,
}

impl Compositor {
    /// A compositor for `spec`, finding its inputs through `lookup`.
    pub fn new(spec: Composite, lookup: Lookup) -> Compositor {
        let inputs = spec
            .inputs
            .iter()
            .map(|id| Input {
                id: id.clone(),
                sub: None,
                last: None,
                jpeg: None,
                decoded: None,
                scaler: None,
                plan: None,
            })
            .collect();
        Compositor {
            spec,
            lookup,
            inputs,
            started: Instant::now(),
            layout: None,
        }
    }

    /// The next picture; None while the first pictures of the inputs are awaited (at most
    /// `stale_after`), so a composite does not start with "no signal" tiles for inputs that are
    /// still connecting.
    pub fn render(&mut self, now: Instant) -> Result<Option<Picture>, String> {
        let stale_after = self.spec.stale_after;
        for input in &mut self.inputs {
            input.refresh(&self.lookup, now);
        }
        let waiting = self.inputs.iter().any(|i| i.last.is_none());
        if waiting && now.duration_since(self.started) < stale_after {
            return Ok(None);
        }
        // The layout, from each input's size after its cut; recomputed when one changes.
        let sizes: Vec<(u32, u32)> = self
            .inputs
            .iter()
            .map(|i| cut_size(&self.spec, &i.id, i.size()))
            .collect();
        if self.layout.as_ref().is_none_or(|p| p.sizes != sizes) {
            let (w, h, tiles) =
                arrange(self.spec.layout, &sizes, self.spec.width, self.spec.height);
            self.layout = Some(Placed {
                sizes,
                size: (w, h),
                tiles,
            });
        }
        let Some(Placed {
            size: (w, h),
            tiles,
            ..
        }) = &self.layout
        else {
            return Err("no layout".into());
        };
        let mut out = Picture::new_yuv420_full(*w, *h).map_err(|e| e.to_string())?;
        {
            let [(y, _, _, _), (u, _, _, _), (v, _, _, _)] = out.planes_mut();
            y.fill(0);
            u.fill(128);
            v.fill(128);
        }
        for (input, tile) in self.inputs.iter_mut().zip(tiles.iter()) {
            let fresh = input
                .last
                .as_ref()
                .is_some_and(|(_, at)| now.duration_since(*at) < stale_after);
            let drawn = match &input.last {
                Some((frame, _)) => {
                    let frame = frame.clone();
                    input.draw(&self.spec, &frame, *tile, &mut out).is_ok()
                }
                None => false,
            };
            if !drawn {
                fill_tile(&mut out, *tile, 40);
            }
            if !fresh {
                no_signal(&mut out, *tile, &input.id, drawn);
            }
        }
        Ok(Some(out))
    }
}

impl Input {
    /// Makes sure the subscription is on the hub's current camera of this id, keeps that camera
    /// wanted, and takes its newest picture.
    fn refresh(&mut self, lookup: &Lookup, now: Instant) {
        let current = lookup(&self.id);
        let same = match (&self.sub, &current) {
            (Some((cam, _)), Some(c)) => Arc::ptr_eq(cam, c) && !cam.retired(),
            _ => false,
        };
        if !same {
            self.sub = current.map(|cam| {
                let sub = cam.subscribe_pictures();
                (cam, sub)
            });
        }
        let Some((cam, sub)) = self.sub.as_mut() else {
            return;
        };
        cam.touch();
        cam.ensure_running();
        if let Some(frame) = sub.latest() {
            let new = self.last.as_ref().is_none_or(|(f, _)| f.seq != frame.seq);
            if new {
                self.last = Some((frame, now));
            }
        }
    }

    /// The input's picture size: its newest picture's, else its status's, else a guess.
    fn size(&self) -> (u32, u32) {
        if let Some((f, _)) = &self.last {
            return (f.width, f.height);
        }
        self.sub
            .as_ref()
            .and_then(|(cam, _)| {
                let s = cam.status.borrow();
                Some((s.width?, s.height?))
            })
            .unwrap_or(UNKNOWN_SIZE)
    }

    /// Draws `frame`, cut and scaled, into `tile` of `out`, in full-range BT.601 like the rest.
    fn draw(
        &mut self,
        spec: &Composite,
        frame: &Frame,
        tile: Tile,
        out: &mut Picture,
    ) -> Result<(), String> {
        // Fields apart, so the picture can borrow one while the plan is rebuilt in another.
        let Input {
            id,
            jpeg,
            decoded,
            scaler,
            plan,
            ..
        } = self;
        let pic = match &frame.content {
            FrameContent::Picture(p) => p,
            FrameContent::Jpeg(data) => {
                // Decoded at the smallest scale that still covers the tile, once per picture (the
                // composite may tick faster than the camera sends).
                let [_, _, cw, ch] = cut_rect(spec, id, (frame.width, frame.height));
                let need_w =
                    (u64::from(tile.width) * u64::from(frame.width) / u64::from(cw.max(1))) as u32;
                let need_h = (u64::from(tile.height) * u64::from(frame.height)
                    / u64::from(ch.max(1))) as u32;
                let need = (need_w.max(1), need_h.max(1));
                if decoded
                    .as_ref()
                    .is_none_or(|(seq, n, _)| *seq != frame.seq || *n != need)
                {
                    let decoder = match jpeg {
                        Some(d) => d,
                        slot => slot.insert(JpegDecoder::new().map_err(|e| e.to_string())?),
                    };
                    let pic = decoder
                        .decode(data, need.0, need.1)
                        .map_err(|e| e.to_string())?;
                    *decoded = Some((frame.seq, need, pic));
                }
                match decoded {
                    Some((_, _, pic)) => &*pic,
                    None => return Err("no picture".into()),
                }
            }
        };
        let converted;
        let pic = if pic.yuv_layout().is_some() {
            pic
        } else {
            let scaler = scaler.get_or_insert_with(Scaler::new);
            converted = scaler
                .scale(pic, pic.width(), pic.height())
                .map_err(|e| e.to_string())?;
            &converted
        };
        let Some([(w, h, ys), (cw, ch, cs), _]) = pic.yuv_layout() else {
            return Err("unsupported picture format".into());
        };
        // The cut in this picture's pixels (a JPEG may have been decoded smaller than the frame).
        let k = f64::from(w) / f64::from(frame.width.max(1));
        let [x0, y0, cut_w, cut_h] = cut_rect(spec, id, (frame.width, frame.height));
        let scaled = |v: u32| (f64::from(v) * k).round() as u32;
        let cut = [
            scaled(x0),
            scaled(y0),
            scaled(cut_w).clamp(1, w),
            scaled(cut_h).clamp(1, h),
        ];
        let key = PlanKey {
            luma: PlaneLayout {
                width: w,
                height: h,
                stride: ys,
            },
            chroma: PlaneLayout {
                width: cw,
                height: ch,
                stride: cs,
            },
            cut,
            tile: (tile.width, tile.height),
        };
        if plan.as_ref().is_none_or(|(k, _)| *k != key) {
            let resize = Mapping::resize(cut[2], cut[3], tile.width, tile.height);
            let mapping = Mapping {
                to_source: Homography::translate(f64::from(cut[0]), f64::from(cut[1]))
                    .after(&resize.to_source),
                ..resize
            };
            let new_plan =
                WarpPlan::new(&mapping, key.luma, key.chroma).map_err(|e| e.to_string())?;
            *plan = Some((key, new_plan));
        }
        let Some((_, plan)) = &*plan else {
            return Err("no plan".into());
        };
        let black = if pic.is_full_range() { 0 } else { 16 };
        let src = [pic.plane(0).0, pic.plane(1).0, pic.plane(2).0];
        let [y, u, v] = region(out, tile);
        plan.apply(src, [(y.0, y.1), (u.0, u.1), (v.0, v.1)], [black, 128, 128])
            .map_err(|e| e.to_string())?;
        // Every tile in the output's colours: full-range BT.601, as JPEG wants.
        if !(pic.is_full_range() && pic.matrix() == ColourMatrix::Bt601) {
            let range = if pic.is_full_range() {
                SampleRange::Full
            } else {
                SampleRange::Limited
            };
            let conversion = YcbcrConversion::new(
                pic.matrix().luma_weights(),
                range,
                ColourMatrix::Bt601.luma_weights(),
            );
            if !conversion.is_identity() {
                let [y, u, v] = region(out, tile);
                conversion
                    .convert_420_in_place(
                        tile.width as usize,
                        tile.height as usize,
                        [y, u, v].map(|(data, stride)| PlaneMut { data, stride }),
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// The part of a `size` picture of input `id` that its cut keeps: `[x, y, width, height]`.
fn cut_rect(spec: &Composite, id: &str, (w, h): (u32, u32)) -> [u32; 4] {
    let Some([front, back]) = spec.cuts.get(id).copied() else {
        return [0, 0, w, h];
    };
    match spec.layout {
        Layout::VStack => {
            let y = front.min(h.saturating_sub(1));
            [0, y, w, back.min(h).saturating_sub(y).max(1)]
        }
        _ => {
            let x = front.min(w.saturating_sub(1));
            [x, 0, back.min(w).saturating_sub(x).max(1), h]
        }
    }
}

/// The size of input `id` after its cut.
fn cut_size(spec: &Composite, id: &str, size: (u32, u32)) -> (u32, u32) {
    let [_, _, w, h] = cut_rect(spec, id, size);
    (w, h)
}

/// The three planes of `out` from the top-left corner of `tile` on, with their strides.
fn region(out: &mut Picture, tile: Tile) -> [(&mut [u8], usize); 3] {
    let [(y, ys, _, _), (u, us, _, _), (v, vs, _, _)] = out.planes_mut();
    let (x, top) = (tile.x as usize, tile.y as usize);
    let luma = (top * ys + x).min(y.len());
    let chroma = |len: usize, stride: usize| ((top / 2) * stride + x / 2).min(len);
    let (cu, cv) = (chroma(u.len(), us), chroma(v.len(), vs));
    [(&mut y[luma..], ys), (&mut u[cu..], us), (&mut v[cv..], vs)]
}

/// Fills a tile with a flat grey (no picture at all).
fn fill_tile(out: &mut Picture, tile: Tile, luma: u8) {
    let [(y, ys), (u, us), (v, vs)] = region(out, tile);
    let (w, h) = (tile.width as usize, tile.height as usize);
    for (plane, stride, pw, ph, value) in [
        (y, ys, w, h, luma),
        (u, us, w.div_ceil(2), h.div_ceil(2), 128),
        (v, vs, w.div_ceil(2), h.div_ceil(2), 128),
    ] {
        for row in plane.chunks_mut(stride).take(ph) {
            let n = pw.min(row.len());
            row[..n].fill(value);
        }
    }
}

/// Marks a tile as "no signal": its picture (if any) dimmed, and a label with the input's id.
fn no_signal(out: &mut Picture, tile: Tile, id: &str, had_picture: bool) {
    let (w, h) = (tile.width as usize, tile.height as usize);
    let [(y, ys), (u, us), (v, vs)] = region(out, tile);
    if had_picture {
        for row in y.chunks_mut(ys).take(h) {
            let n = w.min(row.len());
            for s in &mut row[..n] {
                *s = (u16::from(*s) * 2 / 5) as u8;
            }
        }
        for (plane, stride) in [(u, us), (v, vs)] {
            for row in plane.chunks_mut(stride).take(h.div_ceil(2)) {
                let n = w.div_ceil(2).min(row.len());
                for s in &mut row[..n] {
                    *s = (128 + (i16::from(*s) - 128) * 2 / 5) as u8;
                }
            }
        }
    }
    let [(y, ys), _, _] = region(out, tile);
    let rows = h.min(y.len() / ys.max(1));
    let mut plane = Plane {
        data: y,
        stride: ys,
        width: w,
        height: rows,
    };
    let text = format!("{id}: NO SIGNAL");
    // As large as fits: the label must be readable on a phone showing the whole panorama.
    let scale = (1..=6u32)
        .rev()
        .find(|&s| draw::text_width(&text, s) + 8 <= w as i64)
        .unwrap_or(1);
    let (tw, th) = (draw::text_width(&text, scale), draw::text_height(scale));
    let (x, top) = ((w as i64 - tw) / 2, (h as i64 - th) / 2);
    draw::fill_rect(&mut plane, x - 4, top - 4, tw + 8, th + 8, 0);
    draw::draw_text(&mut plane, x, top, scale, &text, 235);
}
