//! Motion detection on decoded pictures: a [`Detector`] that compares each luma plane with a learned
//! background and says how much of the picture changed and where, and a [`Tracker`] that turns those
//! per-frame verdicts into events with a start and an end. Pure: the caller hands in the plane (and,
//! for the tracker, the media time); nothing here reads a clock, and after the first frame of a
//! given size the detector allocates nothing but the boxes it returns. Any input is accepted — a
//! panic here is a bug, never bad input.
//!
//! # The model, and why
//! - **Luma only, box-averaged into a grid of at most 320 cells a side.** Motion is about shapes,
//!   not colour, and the luma plane is what the decoder already has. Averaging an `f`×`f` block
//!   (integer `f`, aspect kept: 640×360 and 1920×1080 both become 320×180) divides sensor noise by
//!   `f` and makes the cost per frame almost independent of the camera's resolution (at most 8
//!   rows of a cell are read, evenly spread, so a 4K picture is not read in full). The price is
//!   that a thing thinner than a cell counts with its contrast diluted by the cell. Every pass is
//!   a plain loop over slices that the compiler vectorizes, over buffers kept from frame to frame:
//!   reading the plane is most of the cost.
//! - **A running background per cell** (`f32`, blended in at 5 % a frame where nothing changed) that
//!   soaks up noise and slow changes of the scene. Where a cell *is* changed the background holds
//!   still, so a slow walker never fades into it; a cell changed for [`HOLD_FRAMES`] frames in a row
//!   (10 s at the default 10 fps) is then absorbed quickly, so a parked car stops being motion
//!   about 12 s after it stopped, and the scar it leaves when it drives away heals the same way.
//! - **Global illumination compensation.** The median of frame − background over the unmasked
//!   picture (every other row of cells) is the part of the change that the whole scene shares (auto-exposure, clouds, dusk);
//!   it is subtracted before thresholding, and all of the background follows it. The median ignores
//!   anything covering less than half the picture, so a person does not compensate themselves away.
//! - **Light switches.** When the shared shift jumps by more than [`LIGHT_JUMP`] levels from one
//!   analysed frame to the next, or more than [`LIGHT_SHARE`] of the unmasked picture changed at
//!   once, the cause is the light (a lamp, IR switching on, a camera re-exposing), not something
//!   moving: the frame is reported as a light switch and the background is re-learned from it at
//!   once, so the next frames are quiet instead of a minute of false motion. With
//!   [`Settings::light_switch`] off, such a frame is motion instead (only the gradual part of the
//!   shift is compensated).
//! - **Speckle removal.** A cell changes when `|frame − background − shift| > threshold`, and it
//!   counts only when at least two of its eight neighbours changed too. Sensor noise and single
//!   hot pixels are isolated by nature, so they never add up however noisy the scene; anything with
//!   a body survives. Isolated cells also count as unchanged for the background, so noise never
//!   freezes it.
//! - **Masks and zones** are rasterized once per grid size into a per-cell map: masked cells are
//!   ignored everywhere (also for the shift and the light-switch share: a swaying tree or a TV must
//!   not steer them); with zones, only cells inside a zone are scored, but the shift and the
//!   light-switch share still use the whole unmasked picture, so a person filling a small zone is
//!   motion, not lighting. The score is a percentage of the *whole* picture, so one `min_area`
//!   means the same object size whatever the zones.
//! - **Boxes** are the bounding boxes of 8-connected groups of counted cells, merged when they
//!   overlap or are one cell apart (one person often breaks into several groups).
//! - **Warm-up.** The first [`WARMUP_FRAMES`] frames after a start, a reset or a size change build
//!   the background (their per-cell median, so a thing passing by then is not learnt) and never
//!   report motion.
//!
//! Rates are per analysed frame; the durations quoted assume the default detection rate of 10 fps.

use std::cmp::Reverse;

/// A point in normalized picture coordinates: x and y in 0..=1 of the width / height.
pub type Point = (f32, f32);

/// A rectangle in normalized coordinates (x, y = top-left; w, h sizes), all in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rect {
    /// Left edge, as a fraction of the picture width.
    pub x: f32,
    /// Top edge, as a fraction of the picture height.
    pub y: f32,
    /// Width, as a fraction of the picture width.
    pub w: f32,
    /// Height, as a fraction of the picture height.
    pub h: f32,
}

impl Rect {
    /// The area as a fraction of the picture (0..=1).
    pub fn area(&self) -> f32 {
        self.w * self.h
    }

    /// Intersection over union with `other` (0 when disjoint or both empty), the usual measure of
    /// how well a detected box matches where a thing really is.
    pub fn iou(&self, other: &Rect) -> f32 {
        let w = (self.x + self.w).min(other.x + other.w) - self.x.max(other.x);
        let h = (self.y + self.h).min(other.y + other.h) - self.y.max(other.y);
        let inter = w.max(0.0) * h.max(0.0);
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// What the detector looks for; see the module documentation for how each is used.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Luma difference from the background that makes a pixel "changed" (default 20).
    pub threshold: u8,
    /// Percent (0..=100) of the whole frame that must change for motion (default 0.5).
    pub min_area: f32,
    /// A sudden change of most of the frame is lighting, not motion (default true).
    pub light_switch: bool,
    /// Ignore these polygons (normalized points).
    pub masks: Vec<Vec<Point>>,
    /// When not empty, only these polygons count.
    pub zones: Vec<Vec<Point>>,
}

impl Default for Settings {
    /// Out of the box on noisy scenes: 20 levels is several times the noise left after averaging
    /// cells and learning the background over many frames, and 0.5 % of the picture is a person
    /// far across a wide-angle view, well above what survives speckle removal.
    fn default() -> Self {
        Settings {
            threshold: 20,
            min_area: 0.5,
            light_switch: true,
            masks: Vec::new(),
            zones: Vec::new(),
        }
    }
}

/// The verdict on one analysed frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Analysis {
    /// Changed area as percent (0..=100) of the whole frame (inside zones, outside masks).
    pub score: f32,
    /// score >= min_area, not a light switch, background established.
    pub motion: bool,
    /// This frame was judged a global lighting change (and the background re-learned).
    pub light_switch: bool,
    /// Boxes around changed regions, normalized, largest first (at most 16).
    /// Empty on warm-up and light-switch frames.
    pub boxes: Vec<Rect>,
    /// True while the background is still being learned (first frames / after a reset): never motion.
    pub warming_up: bool,
}

/// The analysis grid has at most this many cells along either side.
pub const MAX_GRID_SIDE: usize = 320;
/// Frames that only build the background after a start, a reset or a size change (their median).
pub const WARMUP_FRAMES: u32 = 3;
/// At most this many boxes are reported.
pub const MAX_BOXES: usize = 16;
/// A cell changed for this many analysed frames in a row starts being absorbed into the background.
pub const HOLD_FRAMES: u8 = 100;
/// A jump of the global shift by more than this many luma levels between two analysed frames is a
/// light switch: auto-exposure and clouds move a few levels a frame, a lamp or IR tens at once.
pub const LIGHT_JUMP: f32 = 25.0;
/// More than this share of the unmasked picture changed at once (after compensation and speckle
/// removal) is a light switch: nothing that moves covers more than half of a surveillance picture in 100 ms.
pub const LIGHT_SHARE: f32 = 0.55;

/// Background blend rate where a cell is unchanged: a time constant of 20 frames (2 s) follows a
/// scene's slow changes while averaging noise over many frames.
const BG_RATE: f32 = 0.05;
/// Blend rate of a held-too-long changed cell: a contrast of 80 falls under the default threshold in
/// about 22 frames.
const ABSORB_RATE: f32 = 1.0 / 16.0;
/// Rows summed per cell at most (evenly spread): beyond 8 rows more averaging buys nothing, and
/// reading fewer rows is what makes a 4K picture cheap (memory bandwidth is the main cost there).
/// Also keeps the vertical sums small enough for `u16` lanes.
const MAX_ROWS_PER_CELL: usize = 8;
/// A changed cell counts when its 3x3 block (itself included) holds at least this many changed cells.
const MIN_SUPPORT: u8 = 3;
/// Groups of fewer cells get no box of their own (they still count in the score).
const MIN_BOX_CELLS: u32 = 4;
/// Only the largest groups are merged into boxes: bounds the merge work on pathological frames.
const MAX_GROUPS: usize = 64;
/// Boxes this many cells apart (or less) are merged.
const MERGE_GAP: usize = 1;
/// Histogram of frame − background for the median: bin `i` holds differences around `i - 256`.
const HIST_BINS: usize = 512;
const HIST_ZERO: f32 = 256.0;
/// 2^23: a float in 2^23..2^24 has no fraction bits, so adding it rounds, and the low mantissa bits
/// are then the integer.
const ROUND_MAGIC: f32 = 8_388_608.0;

/// Region map values: ignored (masked), live (used for shift and light switch), scored too.
const MASKED: u8 = 0;
const LIVE: u8 = 1;
const SCORED: u8 = 3;

/// Finds motion in a stream of luma planes; see the module documentation for the model.
///
/// Feed every analysed picture of one stream, in order, to [`analyse`](Self::analyse); call
/// [`reset`](Self::reset) when the stream restarts. The first [`WARMUP_FRAMES`] pictures only learn.
///
/// ```
/// use camhub_media::motion::{Detector, Settings};
///
/// let mut detector = Detector::new(Settings::default());
/// let (w, h) = (640, 360);
/// let mut plane = vec![120u8; w * h];
/// for _ in 0..5 {
///     let a = detector.analyse(&plane, w, w, h);
///     assert!(!a.motion);
/// }
/// assert_eq!(detector.grid(), (320, 180));
/// // A dark 120x60 px object appears (3 % of the picture).
/// for row in plane.chunks_exact_mut(w).skip(100).take(60) {
///     row[200..320].fill(30);
/// }
/// let a = detector.analyse(&plane, w, w, h);
/// assert!(a.motion && a.score > 2.5 && a.boxes.len() == 1);
/// ```
#[derive(Debug, Clone)]
pub struct Detector {
    settings: Settings,
    /// Size of the pictures the model was built for; (0, 0) before the first one.
    width: usize,
    height: usize,
    /// Pixels per cell side.
    factor: usize,
    /// Rows actually summed per cell (`factor`, capped at `MAX_ROWS_PER_CELL`).
    rows_per_cell: usize,
    /// Grid size in cells.
    gw: usize,
    gh: usize,
    /// Vertical sums of one grid row's source rows, per source column.
    acc: Vec<u16>,
    /// The current frame, averaged per cell.
    cur: Vec<f32>,
    /// The background per cell.
    bg: Vec<f32>,
    /// The second warm-up frame, until the third gives the median.
    second: Vec<f32>,
    /// Consecutive frames each cell has been changed (saturating).
    held: Vec<u8>,
    /// MASKED / LIVE / SCORED per cell.
    region: Vec<u8>,
    live_cells: u32,
    /// Changed flags (0/1) with a border of zeros, (gw + 2) x (gh + 2), so the 3x3 sums need no
    /// bounds checks.
    changed: Vec<u8>,
    /// Horizontal 3-sums of `changed`, gw x (gh + 2).
    hsum: Vec<u8>,
    /// Changed cells with changed neighbours (0/1), gw x gh: what is really changing, inside zones
    /// or not.
    supported: Vec<u8>,
    /// Supported cells in the scored region (0/1), gw x gh.
    counted: Vec<u8>,
    /// Runs of live cells in every other grid row, `start..end` indices within one row each.
    live_spans: Vec<(usize, usize)>,
    /// Histogram bin of each cell's difference in one span, for the median.
    bins: Vec<u32>,
    /// Four histograms of `bins`, added up in the first.
    hist: Vec<u32>,
    /// Runs of counted cells, row after row, for the box search.
    runs: Vec<Run>,
    /// Union-find parent of each run.
    parent: Vec<u32>,
    /// Index in `groups` of each root run (u32::MAX before it has one).
    slot: Vec<u32>,
    groups: Vec<Group>,
    /// Frames seen since the last start, reset or size change (saturating at WARMUP_FRAMES).
    frames: u32,
    /// The global shift measured on the previous frame.
    prev_shift: f32,
}

/// A horizontal run of counted cells in grid row `y`, columns `x0..=x1`.
#[derive(Debug, Clone, Copy)]
struct Run {
    y: usize,
    x0: usize,
    x1: usize,
}

/// An 8-connected group of counted cells: inclusive bounds in cells.
#[derive(Debug, Clone, Copy)]
struct Group {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
    cells: u32,
}

impl Group {
    fn near(&self, o: &Group) -> bool {
        let g = 1 + MERGE_GAP;
        self.x0 <= o.x1 + g && o.x0 <= self.x1 + g && self.y0 <= o.y1 + g && o.y0 <= self.y1 + g
    }

    fn box_area(&self) -> usize {
        (self.x1 + 1 - self.x0) * (self.y1 + 1 - self.y0)
    }
}

impl Detector {
    /// A detector with no background yet: the first frames learn it.
    pub fn new(settings: Settings) -> Detector {
        Detector {
            settings,
            width: 0,
            height: 0,
            factor: 1,
            rows_per_cell: 1,
            gw: 0,
            gh: 0,
            acc: Vec::new(),
            cur: Vec::new(),
            bg: Vec::new(),
            second: Vec::new(),
            held: Vec::new(),
            region: Vec::new(),
            live_cells: 0,
            changed: Vec::new(),
            hsum: Vec::new(),
            supported: Vec::new(),
            counted: Vec::new(),
            live_spans: Vec::new(),
            bins: Vec::new(),
            hist: vec![0; 4 * HIST_BINS],
            runs: Vec::new(),
            parent: Vec::new(),
            slot: Vec::new(),
            groups: Vec::new(),
            frames: 0,
            prev_shift: 0.0,
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Changes the settings and keeps the learned background (a config reload should not cost a
    /// warm-up); masks and zones are re-rasterized.
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
        self.rasterize();
    }

    /// Analyses one luma plane: `width` x `height` pixels, rows `stride` bytes apart.
    /// Any size (from 64x36 to 4096x2160); a size change resets the model.
    ///
    /// A plane that cannot be read (a zero size, `stride < width`, `luma` shorter than
    /// `(height - 1) * stride + width`) gives an empty [`Analysis`] and leaves the model alone.
    pub fn analyse(&mut self, luma: &[u8], stride: usize, width: usize, height: usize) -> Analysis {
        if width == 0 || height == 0 || stride < width {
            return Analysis::default();
        }
        let needed = (height - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(width));
        if needed.is_none_or(|n| luma.len() < n) {
            return Analysis::default();
        }
        if (width, height) != (self.width, self.height) {
            self.resize(width, height);
        }
        self.downscale(luma, stride);

        if self.frames < WARMUP_FRAMES {
            // The background is the per-cell median of the three warm-up frames, not their mean:
            // someone walking by or a flash in one of them is not learnt (a mean would keep a
            // third of it, enough to be a ghost for the hold time).
            match self.frames {
                0 => self.bg.copy_from_slice(&self.cur),
                1 => self.second.copy_from_slice(&self.cur),
                _ => {
                    for ((b, &s), &c) in self.bg.iter_mut().zip(&self.second).zip(&self.cur) {
                        *b = b.min(s).max(b.max(s).min(c));
                    }
                }
            }
            self.frames += 1;
            self.prev_shift = 0.0;
            return Analysis {
                warming_up: true,
                ..Analysis::default()
            };
        }

        let measured = self.global_shift();
        let sudden = (measured - self.prev_shift).abs() > LIGHT_JUMP;
        // Without light-switch handling a sudden jump is left in the difference, so it shows.
        let shift = if sudden && !self.settings.light_switch {
            self.prev_shift
        } else {
            measured
        };
        self.prev_shift = measured;

        self.mark_changed(shift);
        let (supported, counted) = self.count_supported();
        let score = if self.cur.is_empty() {
            0.0
        } else {
            (counted as f32 * 100.0 / self.cur.len() as f32).min(100.0)
        };
        let widespread = supported as f32 > LIGHT_SHARE * self.live_cells as f32;
        if self.settings.light_switch && (sudden || widespread) {
            self.bg.copy_from_slice(&self.cur);
            self.held.fill(0);
            self.prev_shift = 0.0;
            return Analysis {
                score,
                light_switch: true,
                ..Analysis::default()
            };
        }
        self.update_background(shift);
        Analysis {
            score,
            motion: counted > 0 && score >= self.settings.min_area,
            boxes: if counted > 0 {
                self.boxes()
            } else {
                Vec::new()
            },
            ..Analysis::default()
        }
    }

    /// Forgets the background (the stream restarted).
    pub fn reset(&mut self) {
        self.frames = 0;
        self.prev_shift = 0.0;
        self.bg.fill(0.0);
        self.held.fill(0);
    }

    /// The analysis grid size (after downscale), for tests and metrics.
    pub fn grid(&self) -> (usize, usize) {
        (self.gw, self.gh)
    }

    /// Sets up the grid and its buffers for a new picture size, and starts learning afresh.
    fn resize(&mut self, width: usize, height: usize) {
        let side = MAX_GRID_SIDE;
        // Capped by the short side so that even a 1-pixel-high strip has one row of cells.
        let factor = width
            .div_ceil(side)
            .max(height.div_ceil(side))
            .min(width.min(height))
            .max(1);
        self.width = width;
        self.height = height;
        self.factor = factor;
        self.rows_per_cell = factor.min(MAX_ROWS_PER_CELL);
        self.gw = width / factor;
        self.gh = height / factor;
        let cells = self.gw * self.gh;
        self.acc = vec![0; self.gw * factor];
        self.cur = vec![0.0; cells];
        self.bg = vec![0.0; cells];
        self.second = vec![0.0; cells];
        self.bins = vec![0; self.gw];
        self.held = vec![0; cells];
        self.changed = vec![0; (self.gw + 2) * (self.gh + 2)];
        self.hsum = vec![0; self.gw * (self.gh + 2)];
        self.supported = vec![0; cells];
        self.counted = vec![0; cells];
        self.rasterize();
        self.reset();
    }

    /// Box-averages the plane into `cur`. Validated by the caller: every row read lies in `luma`.
    fn downscale(&mut self, luma: &[u8], stride: usize) {
        let (f, n) = (self.factor, self.rows_per_cell);
        let row_len = self.gw * f;
        let scale = 1.0 / (n * f) as f32;
        let acc = &mut self.acc[..row_len];
        for (gy, out) in self.cur.chunks_exact_mut(self.gw).enumerate() {
            for k in 0..n {
                // Evenly spread when a cell has more rows than are summed.
                let start = (gy * f + k * f / n) * stride;
                let row = luma.get(start..start + row_len).unwrap_or_default();
                // u8 -> u16 over plain slices: the compiler turns these into wide SIMD adds.
                if k == 0 {
                    for (a, &p) in acc.iter_mut().zip(row) {
                        *a = u16::from(p);
                    }
                } else {
                    for (a, &p) in acc.iter_mut().zip(row) {
                        *a += u16::from(p);
                    }
                }
            }
            // The usual factors get a loop the compiler can unroll and vectorize.
            match f {
                1 => sum_cells::<1>(acc, out, scale),
                2 => sum_cells::<2>(acc, out, scale),
                3 => sum_cells::<3>(acc, out, scale),
                4 => sum_cells::<4>(acc, out, scale),
                6 => sum_cells::<6>(acc, out, scale),
                8 => sum_cells::<8>(acc, out, scale),
                12 => sum_cells::<12>(acc, out, scale),
                _ => {
                    for (o, cell) in out.iter_mut().zip(acc.chunks_exact(f)) {
                        let sum: u32 = cell.iter().map(|&v| u32::from(v)).sum();
                        *o = sum as f32 * scale;
                    }
                }
            }
        }
    }

    /// The median of frame − background over the live cells of every other row (0 when there are
    /// none).
    fn global_shift(&mut self) -> f32 {
        self.hist.fill(0);
        let (hist, rest) = self.hist.split_at_mut(2 * HIST_BINS);
        let (h0, h1) = hist.split_at_mut(HIST_BINS);
        let (h2, h3) = rest.split_at_mut(HIST_BINS);
        for &(start, end) in &self.live_spans {
            let bins = &mut self.bins[..end - start];
            // First the bins, in a loop of one width (f32 -> i32) that the compiler vectorizes.
            for ((o, &c), &b) in bins
                .iter_mut()
                .zip(&self.cur[start..end])
                .zip(&self.bg[start..end])
            {
                // Rounded to an integer by the float adder itself (adding 2^23 leaves no
                // fraction bits): `as i32` would be a saturating cast the compiler does one lane
                // at a time.
                let x = (c - b + HIST_ZERO).clamp(0.0, (HIST_BINS - 1) as f32) + ROUND_MAGIC;
                *o = x.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
            }
            // Then the counting. Neighbouring cells mostly fall in the same bin, so with one
            // histogram every increment would wait for the previous one; four take turns.
            let bin = |b: u32| (b as usize).min(HIST_BINS - 1);
            let mut quads = bins.chunks_exact(4);
            for q in &mut quads {
                if let [b0, b1, b2, b3] = *q {
                    h0[bin(b0)] += 1;
                    h1[bin(b1)] += 1;
                    h2[bin(b2)] += 1;
                    h3[bin(b3)] += 1;
                }
            }
            for &b in quads.remainder() {
                h0[bin(b)] += 1;
            }
        }
        for (((a, &b), &c), &d) in h0.iter_mut().zip(&*h1).zip(&*h2).zip(&*h3) {
            *a += b + c + d;
        }
        let hist = &*h0;
        let n: u32 = hist.iter().sum();
        let half = n / 2;
        let mut below = 0u32;
        for (i, &count) in hist.iter().enumerate() {
            if below + count > half {
                // Interpolated inside the bin: the shift is followed smoothly, not in whole levels.
                let within = (half - below) as f32 + 0.5;
                return i as f32 - HIST_ZERO - 0.5 + within / count as f32;
            }
            below += count;
        }
        0.0
    }

    /// Flags live cells whose compensated difference passes the threshold.
    fn mark_changed(&mut self, shift: f32) {
        let threshold = f32::from(self.settings.threshold);
        let (gw, pw) = (self.gw, self.gw + 2);
        for (gy, ((cur, bg), region)) in self
            .cur
            .chunks_exact(gw)
            .zip(self.bg.chunks_exact(gw))
            .zip(self.region.chunks_exact(gw))
            .enumerate()
        {
            let start = (gy + 1) * pw + 1;
            let out = &mut self.changed[start..start + gw];
            for (((o, &c), &b), &r) in out.iter_mut().zip(cur).zip(bg).zip(region) {
                let d = c - b - shift;
                *o = u8::from(d.abs() > threshold) & (r & LIVE);
            }
        }
    }

    /// Keeps the changed cells that have changed neighbours, into `supported`, and those of them in
    /// the scored region, into `counted`; returns how many of each.
    fn count_supported(&mut self) -> (u32, u32) {
        let (gw, pw) = (self.gw, self.gw + 2);
        for (padded, sums) in self
            .changed
            .chunks_exact(pw)
            .zip(self.hsum.chunks_exact_mut(gw))
        {
            for ((s, a), (b, c)) in sums
                .iter_mut()
                .zip(padded)
                .zip(padded[1..].iter().zip(&padded[2..]))
            {
                *s = a + b + c;
            }
        }
        let (mut all, mut scored) = (0u32, 0u32);
        for (gy, ((out, supported), region)) in self
            .counted
            .chunks_exact_mut(gw)
            .zip(self.supported.chunks_exact_mut(gw))
            .zip(self.region.chunks_exact(gw))
            .enumerate()
        {
            let above = &self.hsum[gy * gw..][..gw];
            let middle = &self.hsum[(gy + 1) * gw..][..gw];
            let below = &self.hsum[(gy + 2) * gw..][..gw];
            let centre = &self.changed[(gy + 1) * pw + 1..][..gw];
            // Short loops over one row each, which the compiler vectorizes.
            for (((s, &a), &m), &b) in supported.iter_mut().zip(above).zip(middle).zip(below) {
                *s = a + m + b;
            }
            for (s, &c) in supported.iter_mut().zip(centre) {
                *s = u8::from(*s >= MIN_SUPPORT) & c;
            }
            for ((o, &s), &r) in out.iter_mut().zip(&*supported).zip(region) {
                *o = s & (r >> 1);
            }
            all += supported.iter().map(|&v| u32::from(v)).sum::<u32>();
            scored += out.iter().map(|&v| u32::from(v)).sum::<u32>();
        }
        (all, scored)
    }

    /// Blends the frame into the background: fast where nothing is changing, not at all where
    /// something is, and fast again where that has lasted too long. Everything follows the global
    /// shift. Speckle counts as unchanged: a noise cell must not be frozen (and then help its
    /// neighbours survive speckle removal) for the hold time.
    fn update_background(&mut self, shift: f32) {
        for (h, &s) in self.held.iter_mut().zip(&self.supported) {
            *h = h.saturating_add(1) & s.wrapping_neg();
        }
        // Written without branches, so that it vectorizes: `s` is 1 where something is changing.
        let follow = BG_RATE * shift;
        for (((b, &c), &h), &s) in self
            .bg
            .iter_mut()
            .zip(&self.cur)
            .zip(&self.held)
            .zip(&self.supported)
        {
            let s = f32::from(s);
            let long = f32::from(u8::from(h >= HOLD_FRAMES));
            let rate = BG_RATE + s * (long * ABSORB_RATE - BG_RATE);
            let d = c - *b - shift;
            *b = (*b + follow + rate * d).clamp(0.0, 255.0);
        }
    }

    /// Bounding boxes of the 8-connected groups of counted cells, merged, largest first.
    fn boxes(&mut self) -> Vec<Rect> {
        // Connected groups by runs: each row's runs of counted cells are joined (union-find)
        // with the runs of the row above that they touch, diagonals included. The work goes with
        // the number of runs, not of cells.
        self.runs.clear();
        self.parent.clear();
        let mut above = 0..0;
        for (y, row) in self.counted.chunks_exact(self.gw).enumerate() {
            let first = self.runs.len();
            let mut x = 0;
            let mut p = above.start;
            while let Some(offset) = row[x..].iter().position(|&v| v != 0) {
                let x0 = x + offset;
                let x1 = x0 + row[x0..].iter().take_while(|&&v| v != 0).count() - 1;
                let k = self.runs.len();
                self.runs.push(Run { y, x0, x1 });
                self.parent.push(k as u32);
                // Runs above that end left of this one cannot touch any later run of this row.
                while p < above.end && self.runs[p].x1 + 1 < x0 {
                    p += 1;
                }
                let mut q = p;
                while q < above.end && self.runs[q].x0 <= x1 + 1 {
                    union(&mut self.parent, k, q);
                    q += 1;
                }
                x = x1 + 1;
            }
            above = first..self.runs.len();
        }
        self.groups.clear();
        self.slot.clear();
        self.slot.resize(self.runs.len(), u32::MAX);
        for k in 0..self.runs.len() {
            let Run { y, x0, x1 } = self.runs[k];
            // Roots are the lowest index of their set, so a root is always seen before its runs.
            let root = find(&mut self.parent, k);
            let cells = (x1 + 1 - x0) as u32;
            match self.groups.get_mut(self.slot[root] as usize) {
                Some(g) => {
                    g.x0 = g.x0.min(x0);
                    g.x1 = g.x1.max(x1);
                    g.y1 = y;
                    g.cells += cells;
                }
                None => {
                    self.slot[root] = self.groups.len() as u32;
                    self.groups.push(Group {
                        x0,
                        y0: y,
                        x1,
                        y1: y,
                        cells,
                    });
                }
            }
        }
        self.groups.retain(|g| g.cells >= MIN_BOX_CELLS);
        self.groups
            .sort_unstable_by_key(|g| (Reverse(g.cells), g.y0, g.x0));
        self.groups.truncate(MAX_GROUPS);
        // Merge until no two boxes are near each other (a merge can bring a third one near).
        let mut i = 0;
        while i < self.groups.len() {
            let mut merged = false;
            let mut j = i + 1;
            while j < self.groups.len() {
                let (a, b) = (self.groups[i], self.groups[j]);
                if a.near(&b) {
                    self.groups[i] = Group {
                        x0: a.x0.min(b.x0),
                        y0: a.y0.min(b.y0),
                        x1: a.x1.max(b.x1),
                        y1: a.y1.max(b.y1),
                        cells: a.cells + b.cells,
                    };
                    self.groups.swap_remove(j);
                    merged = true;
                } else {
                    j += 1;
                }
            }
            if !merged {
                i += 1;
            }
        }
        self.groups
            .sort_unstable_by_key(|g| (Reverse(g.box_area()), g.y0, g.x0));
        let sx = self.factor as f32 / self.width as f32;
        let sy = self.factor as f32 / self.height as f32;
        self.groups
            .iter()
            .take(MAX_BOXES)
            .map(|g| {
                let x = (g.x0 as f32 * sx).min(1.0);
                let y = (g.y0 as f32 * sy).min(1.0);
                Rect {
                    x,
                    y,
                    w: ((g.x1 + 1 - g.x0) as f32 * sx).min(1.0 - x),
                    h: ((g.y1 + 1 - g.y0) as f32 * sy).min(1.0 - y),
                }
            })
            .collect()
    }

    /// Builds the per-cell region map from the masks and zones, tested at cell centres.
    fn rasterize(&mut self) {
        let valid = |p: &&Vec<Point>| p.len() >= 3;
        let masks: Vec<&Vec<Point>> = self.settings.masks.iter().filter(valid).collect();
        let zones: Vec<&Vec<Point>> = self.settings.zones.iter().filter(valid).collect();
        let (gw, gh) = (self.gw, self.gh);
        self.region.clear();
        self.region.resize(gw * gh, SCORED);
        self.live_cells = 0;
        for (gy, row) in self.region.chunks_exact_mut(gw.max(1)).enumerate() {
            let y = ((gy as f32 + 0.5) * self.factor as f32) / self.height as f32;
            for (gx, cell) in row.iter_mut().enumerate() {
                let x = ((gx as f32 + 0.5) * self.factor as f32) / self.width as f32;
                *cell = if masks.iter().any(|p| inside(p, x, y)) {
                    MASKED
                } else if zones.is_empty() || zones.iter().any(|p| inside(p, x, y)) {
                    SCORED
                } else {
                    LIVE
                };
                self.live_cells += u32::from(*cell != MASKED);
            }
        }
        // The median is taken over every other row of cells: a shift shared by the whole scene is
        // found as well in half of it, at half the cost (the histogram cannot be vectorized).
        self.live_spans.clear();
        for (gy, row) in self.region.chunks_exact(gw.max(1)).enumerate().step_by(2) {
            let mut x = 0;
            while x < row.len() {
                let start = x + row[x..].iter().take_while(|&&r| r == MASKED).count();
                let end = start + row[start..].iter().take_while(|&&r| r != MASKED).count();
                if end > start {
                    self.live_spans.push((gy * gw + start, gy * gw + end));
                }
                x = end;
            }
        }
    }
}

/// The root of `i`'s set, halving the path on the way.
fn find(parent: &mut [u32], mut i: usize) -> usize {
    while parent[i] as usize != i {
        let grand = parent[parent[i] as usize];
        parent[i] = grand;
        i = grand as usize;
    }
    i
}

/// Joins the sets of `a` and `b`; the lower index becomes the root.
fn union(parent: &mut [u32], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    let (low, high) = (ra.min(rb), ra.max(rb));
    parent[high] = low as u32;
}

/// Sums each cell's `F` columns of vertical sums into its average. `F` ≤ 32 columns of at most
/// [`MAX_ROWS_PER_CELL`] rows of 255 fit in a `u16`, which keeps the lanes narrow.
fn sum_cells<const F: usize>(acc: &[u16], out: &mut [f32], scale: f32) {
    for (o, cell) in out.iter_mut().zip(acc.chunks_exact(F)) {
        let sum = cell.iter().fold(0u16, |s, &v| s.wrapping_add(v));
        *o = f32::from(sum) * scale;
    }
}

/// Even-odd point-in-polygon test (a self-intersecting polygon's overlaps are holes, as in SVG's
/// default). Non-finite coordinates make comparisons false and the point outside.
fn inside(poly: &[Point], x: f32, y: f32) -> bool {
    let Some(&last) = poly.last() else {
        return false;
    };
    let mut prev = last;
    let mut odd = false;
    for &p in poly {
        let ((xi, yi), (xj, yj)) = (p, prev);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            odd = !odd;
        }
        prev = p;
    }
    odd
}

/// A change of the tracker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// An event starts. `first_ms`: the first motion frame of the run; `at_ms`: now (when confirmed).
    Start {
        /// Media time of the first motion frame of the run that started the event.
        first_ms: i64,
        /// Media time of the frame that confirmed it.
        at_ms: i64,
    },
    /// The event ends. `last_ms`: the last motion frame; `at_ms`: now (when confirmed).
    End {
        /// Media time of the event's last motion frame.
        last_ms: i64,
        /// Media time of the frame that confirmed the end.
        at_ms: i64,
    },
}

/// Event state machine: motion must last `start_after` to start an event, quiet must last
/// `end_after` to end it. Times are milliseconds on any monotonic media clock.
///
/// - A run of motion frames starts an event once it has lasted `start_after` since its first motion
///   frame (at once when `start_after` is 0). Quiet frames inside the run are forgiven while they
///   are a single frame or last less than `start_after / 3`, so one missed frame or a short
///   glitch does not restart the count; longer quiet drops the run.
/// - An active event ends once `end_after` has passed since its last motion frame.
/// - Time going backwards means a new timeline (the stream restarted): an active event ends at the
///   last time seen on the old one, a pending run is forgotten, and counting starts afresh at that
///   frame. A pause of the frames themselves is not quiet (nothing was seen): call
///   [`finish`](Self::finish) when the stream is lost.
///
/// ```
/// use camhub_media::motion::{Tracker, Transition};
///
/// let mut t = Tracker::new(300, 2_000);
/// assert_eq!(t.update(0, true), None);
/// assert_eq!(t.update(100, false), None); // one quiet frame is forgiven
/// assert_eq!(t.update(200, true), None);
/// assert_eq!(t.update(300, true), Some(Transition::Start { first_ms: 0, at_ms: 300 }));
/// assert_eq!(t.update(2_000, false), None);
/// assert_eq!(t.update(2_300, false), Some(Transition::End { last_ms: 300, at_ms: 2_300 }));
/// ```
#[derive(Debug, Clone)]
pub struct Tracker {
    start_after: i64,
    end_after: i64,
    /// Quiet at least this long (and more than one frame) breaks a run.
    tolerance: i64,
    active: bool,
    /// First motion frame of the pending run (or of the active event).
    run_first: Option<i64>,
    /// Last motion frame of the pending run or the active event.
    last_motion: Option<i64>,
    /// Quiet frames since `last_motion`.
    quiet_frames: u32,
    /// Time of the previous update.
    last_t: Option<i64>,
}

impl Tracker {
    /// A tracker with no event; durations above `i64::MAX` ms count as forever.
    pub fn new(start_after_ms: u64, end_after_ms: u64) -> Tracker {
        let start_after = i64::try_from(start_after_ms).unwrap_or(i64::MAX);
        Tracker {
            start_after,
            end_after: i64::try_from(end_after_ms).unwrap_or(i64::MAX),
            tolerance: start_after / 3,
            active: false,
            run_first: None,
            last_motion: None,
            quiet_frames: 0,
            last_t: None,
        }
    }

    /// Feeds one analysed frame at media time `t_ms`; returns a transition when one happens.
    pub fn update(&mut self, t_ms: i64, motion: bool) -> Option<Transition> {
        let t = t_ms;
        if let Some(prev) = self.last_t.filter(|&prev| t < prev) {
            let ended = self.finish(prev);
            self.last_t = Some(t);
            if motion {
                // This frame opens the new timeline's run; an End and a Start cannot both be
                // returned, so a zero `start_after` confirms it with the next frame.
                self.run_first = Some(t);
                self.last_motion = Some(t);
                if ended.is_none() {
                    return self.update(t, true);
                }
            }
            return ended;
        }
        self.last_t = Some(t);
        if motion {
            self.quiet_frames = 0;
            self.last_motion = Some(t);
            let first = *self.run_first.get_or_insert(t);
            if !self.active && t.saturating_sub(first) >= self.start_after {
                self.active = true;
                return Some(Transition::Start {
                    first_ms: first,
                    at_ms: t,
                });
            }
            return None;
        }
        let last = self.last_motion?;
        self.quiet_frames = self.quiet_frames.saturating_add(1);
        let quiet = t.saturating_sub(last);
        if self.active {
            if quiet >= self.end_after {
                self.clear();
                return Some(Transition::End {
                    last_ms: last,
                    at_ms: t,
                });
            }
        } else if self.quiet_frames >= 2 && quiet >= self.tolerance {
            self.clear();
        }
        None
    }

    /// True while an event is active.
    pub fn active(&self) -> bool {
        self.active
    }

    /// Ends an active event now (stream lost, shutdown): the End transition, if one was active.
    /// A pending run is forgotten either way.
    pub fn finish(&mut self, t_ms: i64) -> Option<Transition> {
        let ended = match (self.active, self.last_motion) {
            (true, Some(last)) => Some(Transition::End {
                last_ms: last,
                at_ms: t_ms.max(last),
            }),
            _ => None,
        };
        self.clear();
        self.last_t = None;
        ended
    }

    fn clear(&mut self) {
        self.active = false;
        self.run_first = None;
        self.last_motion = None;
        self.quiet_frames = 0;
    }
}

/// Picks which pictures of a stream to analyse so that `fps` of them are, on average, whatever
/// the stream's own rate: a schedule of due times one period apart in media time, and each
/// picture that reaches its due time (less an eighth of a period, for timestamp rounding) is
/// taken. A minimum gap instead of a schedule would round the rate down to a divisor of the
/// stream's (10 fps asked of 25 fps would give every third picture, 8.3 fps).
///
/// ```
/// use camhub_media::motion::Pacer;
/// let mut p = Pacer::new(10.0);
/// let taken = (0..25).filter(|i| p.take(i * 40)).count(); // one second at 25 fps
/// assert_eq!(taken, 10);
/// ```
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Microseconds between analysed pictures.
    period_us: i64,
    /// Media time (µs) from which the next picture is taken.
    next_due_us: Option<i64>,
}

impl Pacer {
    /// A schedule of `fps` pictures a second (a non-positive or absurd rate means every picture).
    pub fn new(fps: f64) -> Pacer {
        let period_us = if fps.is_finite() && fps > 0.0 {
            (1_000_000.0 / fps).round().clamp(0.0, 3_600_000_000.0) as i64
        } else {
            0
        };
        Pacer {
            period_us,
            next_due_us: None,
        }
    }

    /// Whether to analyse the picture at media time `t_ms`.
    pub fn take(&mut self, t_ms: i64) -> bool {
        let t = t_ms.saturating_mul(1000);
        let period = self.period_us;
        let due = match self.next_due_us {
            // A new stream, a clock that went backwards (reconnect) or a gap of more than a
            // second: start the schedule again here rather than catch up in a burst.
            Some(due) if t >= due.saturating_sub(period) && t <= due.saturating_add(1_000_000) => {
                due
            }
            _ => {
                self.next_due_us = Some(t.saturating_add(period));
                return true;
            }
        };
        if t.saturating_add(period / 8) < due {
            return false;
        }
        let mut next = due.saturating_add(period);
        if next <= t {
            // Pictures were missing for more than a period: due again one period from now.
            next = t.saturating_add(period);
        }
        self.next_due_us = Some(next);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grid_for(width: usize, height: usize) -> (usize, usize) {
        let mut d = Detector::new(Settings::default());
        d.analyse(&vec![0; width * height], width, width, height);
        d.grid()
    }

    #[test]
    fn the_grid_is_at_most_320_a_side_with_the_aspect_kept() {
        assert_eq!(Detector::new(Settings::default()).grid(), (0, 0));
        assert_eq!(grid_for(640, 360), (320, 180));
        assert_eq!(grid_for(1920, 1080), (320, 180));
        assert_eq!(grid_for(1280, 720), (320, 180));
        assert_eq!(grid_for(320, 240), (320, 240));
        assert_eq!(grid_for(64, 36), (64, 36));
        assert_eq!(grid_for(4096, 2160), (315, 166));
        assert_eq!(grid_for(1080, 1920), (180, 320));
        assert_eq!(grid_for(2560, 1), (2560, 1));
    }

    #[test]
    fn cells_are_box_averages() {
        // 642 px wide needs factor 3 (capped by the 4 rows): cells average 3x3 blocks.
        let (w, h) = (642, 4);
        let mut plane = vec![0u8; w * h];
        plane[0] = 255;
        plane[1] = 255;
        plane[w] = 255;
        plane[w + 2] = 100;
        let mut d = Detector::new(Settings::default());
        d.analyse(&plane, w, w, h);
        assert_eq!(d.factor, 3);
        assert_eq!(d.grid(), (214, 1));
        assert_eq!(d.cur[0], (255.0 * 3.0 + 100.0) / 9.0);
        assert_eq!(d.cur[1], 0.0);
    }

    #[test]
    fn tall_cells_sum_at_most_eight_rows_evenly_spread() {
        // 320 * 20 wide gives factor 20: rows 0, 2, 5, 7, 10, 12, 15 and 17 of each cell are summed.
        let (w, h) = (6400, 40);
        let mut plane = vec![10u8; w * h];
        for row in plane.chunks_exact_mut(w).skip(20) {
            row.fill(250);
        }
        let mut d = Detector::new(Settings::default());
        d.analyse(&plane, w, w, h);
        assert_eq!((d.factor, d.rows_per_cell, d.grid()), (20, 8, (320, 2)));
        assert_eq!(d.cur[0], 10.0);
        assert_eq!(d.cur[320], 250.0);
    }

    #[test]
    fn polygons_are_even_odd_at_cell_centres() {
        let square = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)];
        assert!(inside(&square, 0.5, 0.5));
        assert!(!inside(&square, 0.1, 0.5));
        assert!(!inside(&square, 0.5, 0.9));
        // A bow tie: both lobes are inside, above and below the crossing is not.
        let bow = [(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)];
        assert!(inside(&bow, 0.2, 0.5) && inside(&bow, 0.8, 0.5));
        assert!(!inside(&bow, 0.5, 0.2) && !inside(&bow, 0.5, 0.8));
        // A pentagram: the points are inside, the pentagon in the middle (covered twice) is not.
        let star: Vec<Point> = [0, 2, 4, 1, 3]
            .iter()
            .map(|&k| {
                let a = std::f32::consts::TAU * k as f32 / 5.0;
                (0.5 + 0.4 * a.sin(), 0.5 - 0.4 * a.cos())
            })
            .collect();
        assert!(inside(&star, 0.5, 0.15));
        assert!(!inside(&star, 0.5, 0.5));
        assert!(!inside(&[], 0.5, 0.5));
        assert!(!inside(
            &[(f32::NAN, 0.0), (1.0, f32::NAN), (1.0, 1.0)],
            0.5,
            0.5
        ));
    }

    #[test]
    fn masks_and_zones_make_the_region_map() {
        let left_half = vec![(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)];
        let top_half = vec![(0.0, 0.0), (1.0, 0.0), (1.0, 0.5), (0.0, 0.5)];
        let settings = Settings {
            masks: vec![left_half, vec![(0.0, 0.0), (1.0, 1.0)]],
            zones: vec![top_half],
            ..Settings::default()
        };
        let mut d = Detector::new(settings);
        d.analyse(&[0; 64 * 36], 64, 64, 36);
        let at = |x: usize, y: usize| d.region[y * 64 + x];
        assert_eq!(at(10, 10), MASKED);
        assert_eq!(at(10, 30), MASKED);
        assert_eq!(at(40, 10), SCORED);
        assert_eq!(at(40, 30), LIVE);
        assert_eq!(d.live_cells, 32 * 36);
        // Zones with fewer than three points are ignored: the whole picture counts again.
        d.set_settings(Settings {
            zones: vec![vec![(0.0, 0.0), (1.0, 1.0)]],
            ..Settings::default()
        });
        assert!(d.region.iter().all(|&r| r == SCORED));
    }

    #[test]
    fn rect_area_and_iou() {
        let a = Rect {
            x: 0.0,
            y: 0.0,
            w: 0.5,
            h: 0.5,
        };
        let b = Rect { x: 0.25, ..a };
        assert_eq!(a.area(), 0.25);
        assert_eq!(a.iou(&a), 1.0);
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(a.iou(&Rect { x: 0.6, ..a }), 0.0);
        assert_eq!(Rect::default().iou(&Rect::default()), 0.0);
    }

    #[test]
    fn a_sudden_object_in_a_flat_picture_is_motion_with_its_box() {
        let (w, h) = (64, 36);
        let mut plane = vec![100u8; w * h];
        let mut d = Detector::new(Settings::default());
        for _ in 0..WARMUP_FRAMES {
            assert!(d.analyse(&plane, w, w, h).warming_up);
        }
        for row in plane.chunks_exact_mut(w).skip(8).take(8) {
            row[16..32].fill(200);
        }
        let a = d.analyse(&plane, w, w, h);
        assert!(a.motion && !a.warming_up && !a.light_switch);
        assert!((a.score - 100.0 * 128.0 / (64.0 * 36.0)).abs() < 1e-3);
        let expected = Rect {
            x: 0.25,
            y: 8.0 / 36.0,
            w: 0.25,
            h: 8.0 / 36.0,
        };
        assert_eq!(a.boxes, [expected]);
    }

    #[test]
    fn zero_min_area_still_needs_a_changed_cell() {
        let settings = Settings {
            min_area: 0.0,
            ..Settings::default()
        };
        let mut d = Detector::new(settings);
        let plane = vec![100u8; 64 * 36];
        for _ in 0..10 {
            assert!(!d.analyse(&plane, 64, 64, 36).motion);
        }
    }

    #[test]
    fn unreadable_planes_give_nothing_and_keep_the_model() {
        let mut d = Detector::new(Settings::default());
        let plane = vec![100u8; 64 * 36];
        for _ in 0..5 {
            d.analyse(&plane, 64, 64, 36);
        }
        let nothing = Analysis::default();
        assert_eq!(d.analyse(&plane, 64, 0, 36), nothing);
        assert_eq!(d.analyse(&plane, 64, 64, 0), nothing);
        assert_eq!(d.analyse(&plane, 63, 64, 36), nothing);
        assert_eq!(d.analyse(&plane[1..], 64, 64, 36), nothing);
        assert_eq!(d.analyse(&plane, usize::MAX, 64, 36), nothing);
        assert_eq!(d.analyse(&[], 0, 0, 0), nothing);
        assert_eq!(d.grid(), (64, 36));
        // The last row needs only `width` bytes, not a whole stride.
        let short = vec![100u8; 80 * 35 + 64];
        let a = d.analyse(&short, 80, 64, 36);
        assert!(!a.warming_up && !a.motion);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_plane_is_safe(
            frames in proptest::collection::vec(
                (0usize..300, 0usize..200, 0usize..400, 0usize..70_000, any::<u8>(), any::<bool>()),
                1..8,
            ),
            threshold in any::<u8>(),
            min_area in prop_oneof![Just(f32::NAN), -1.0f32..150.0],
            light_switch in any::<bool>(),
            mask in proptest::collection::vec((-0.5f32..1.5, -0.5f32..1.5), 0..6),
            zone in proptest::collection::vec((-0.5f32..1.5, -0.5f32..1.5), 0..6),
        ) {
            let settings = Settings {
                threshold,
                min_area,
                light_switch,
                masks: vec![mask],
                zones: vec![zone, vec![(f32::NAN, f32::INFINITY); 3]],
            };
            let mut d = Detector::new(settings);
            for (width, height, stride, len, seed, repeat) in frames {
                let mut x = u32::from(seed) | 1;
                let plane: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect();
                for _ in 0..if repeat { 6 } else { 1 } {
                    let a = d.analyse(&plane, stride, width, height);
                    prop_assert!((0.0..=100.0).contains(&a.score), "{:?}", a);
                    prop_assert!(a.boxes.len() <= MAX_BOXES);
                    prop_assert!(!(a.motion && (a.light_switch || a.warming_up)));
                    for b in &a.boxes {
                        prop_assert!(b.x >= 0.0 && b.y >= 0.0 && b.w > 0.0 && b.h > 0.0);
                        prop_assert!(b.x + b.w <= 1.0 + 1e-6 && b.y + b.h <= 1.0 + 1e-6);
                    }
                    let (gw, gh) = d.grid();
                    prop_assert!(gw * gh <= (MAX_GRID_SIDE * MAX_GRID_SIDE).max(width.max(height)));
                }
            }
        }
    }

    // Tracker.

    use Transition::{End, Start};

    /// Feeds `(t, motion)` pairs; returns the transitions with the time they came at.
    fn feed(tracker: &mut Tracker, frames: &[(i64, bool)]) -> Vec<Transition> {
        frames
            .iter()
            .filter_map(|&(t, m)| tracker.update(t, m))
            .collect()
    }

    /// Frames at 10 fps from `from` to `to` (exclusive), all with the same verdict.
    fn span(from: i64, to: i64, motion: bool) -> Vec<(i64, bool)> {
        (from..to).step_by(100).map(|t| (t, motion)).collect()
    }

    #[test]
    fn an_event_starts_after_start_after_and_ends_after_end_after() {
        let mut t = Tracker::new(500, 2_000);
        let mut frames = span(0, 400, false);
        frames.extend(span(400, 3_000, true));
        frames.extend(span(3_000, 6_000, false));
        assert_eq!(
            feed(&mut t, &frames),
            [
                Start {
                    first_ms: 400,
                    at_ms: 900
                },
                End {
                    last_ms: 2_900,
                    at_ms: 4_900
                }
            ]
        );
        assert!(!t.active());
    }

    #[test]
    fn zero_durations_follow_every_frame() {
        let mut t = Tracker::new(0, 0);
        assert_eq!(
            t.update(5, true),
            Some(Start {
                first_ms: 5,
                at_ms: 5
            })
        );
        assert!(t.active());
        assert_eq!(t.update(6, true), None);
        assert_eq!(
            t.update(7, false),
            Some(End {
                last_ms: 6,
                at_ms: 7
            })
        );
        assert_eq!(t.update(8, false), None);
    }

    #[test]
    fn a_short_burst_starts_nothing() {
        let mut t = Tracker::new(1_000, 2_000);
        let mut frames = span(0, 600, true);
        frames.extend(span(600, 2_000, false));
        frames.extend(span(2_000, 2_500, true));
        assert_eq!(feed(&mut t, &frames), []);
        assert!(!t.active());
    }

    #[test]
    fn short_glitches_do_not_restart_the_count() {
        // start_after 900 ms forgives quiet shorter than 300 ms: two quiet frames here.
        let mut t = Tracker::new(900, 2_000);
        let frames = [
            (0, true),
            (100, true),
            (200, false),
            (300, false),
            (400, true),
            (500, true),
            (600, false),
            (700, true),
            (800, true),
            (900, true),
        ];
        assert_eq!(
            feed(&mut t, &frames),
            [Start {
                first_ms: 0,
                at_ms: 900
            }]
        );
        // A single quiet frame is forgiven even when it is longer than start_after / 3.
        let mut t = Tracker::new(300, 2_000);
        let frames = [(0, true), (100, true), (200, false), (300, true)];
        assert_eq!(
            feed(&mut t, &frames),
            [Start {
                first_ms: 0,
                at_ms: 300
            }]
        );
        // But three quiet frames, 300 ms, are a break: the count restarts at 1_000.
        let mut t = Tracker::new(900, 2_000);
        let mut frames = span(0, 500, true);
        frames.extend(span(500, 1_000, false));
        frames.extend(span(1_000, 2_000, true));
        assert_eq!(
            feed(&mut t, &frames),
            [Start {
                first_ms: 1_000,
                at_ms: 1_900
            }]
        );
    }

    #[test]
    fn motion_while_active_keeps_the_event() {
        let mut t = Tracker::new(0, 1_000);
        let mut frames = Vec::new();
        for k in 0..10 {
            // 0.9 s of quiet between motion frames: never the full second.
            frames.push((k * 1_000, true));
            frames.extend(span(k * 1_000 + 100, k * 1_000 + 1_000, false));
        }
        assert_eq!(feed(&mut t, &frames).len(), 1);
        assert!(t.active());
        assert_eq!(
            t.update(10_000, false),
            Some(End {
                last_ms: 9_000,
                at_ms: 10_000
            })
        );
    }

    #[test]
    fn finish_ends_an_active_event_only() {
        let mut t = Tracker::new(0, 5_000);
        assert_eq!(t.finish(0), None);
        t.update(100, true);
        assert_eq!(
            t.finish(300),
            Some(End {
                last_ms: 100,
                at_ms: 300
            })
        );
        assert!(!t.active());
        assert_eq!(t.finish(400), None);
        // A pending run is dropped too.
        let mut t = Tracker::new(500, 5_000);
        t.update(0, true);
        t.finish(100);
        assert_eq!(t.update(400, true), None);
        assert_eq!(t.update(500, true), None);
    }

    #[test]
    fn time_going_backwards_starts_a_new_timeline() {
        let mut t = Tracker::new(0, 5_000);
        t.update(10_000, true);
        t.update(10_100, true);
        t.update(10_200, false);
        // The stream restarted: the event ends on the old timeline...
        assert_eq!(
            t.update(0, true),
            Some(End {
                last_ms: 10_100,
                at_ms: 10_200
            })
        );
        // ...and the motion that came with the new one starts the next event.
        assert_eq!(
            t.update(100, true),
            Some(Start {
                first_ms: 0,
                at_ms: 100
            })
        );
        // A pending run is forgotten, not stretched across the jump.
        let mut t = Tracker::new(1_000, 5_000);
        t.update(50_000, true);
        t.update(50_500, true);
        assert_eq!(t.update(200, true), None);
        assert_eq!(t.update(1_100, true), None);
        assert_eq!(
            t.update(1_200, true),
            Some(Start {
                first_ms: 200,
                at_ms: 1_200
            })
        );
        // With nothing active, the backwards frame itself starts the run.
        let mut t = Tracker::new(0, 5_000);
        t.update(9_000, false);
        assert_eq!(
            t.update(10, true),
            Some(Start {
                first_ms: 10,
                at_ms: 10
            })
        );
    }

    proptest! {
        #[test]
        fn transitions_alternate_and_make_sense(
            start_after in prop_oneof![0u64..3_000, Just(u64::MAX)],
            end_after in prop_oneof![0u64..3_000, Just(u64::MAX)],
            frames in proptest::collection::vec(
                (prop_oneof![-200i64..1_000, Just(i64::MIN), Just(i64::MAX)], any::<bool>()),
                0..200,
            ),
        ) {
            let mut t = Tracker::new(start_after, end_after);
            let mut now = 0i64;
            let mut active = false;
            for (step, motion) in frames {
                now = now.saturating_add(step);
                match t.update(now, motion) {
                    Some(Start { first_ms, at_ms }) => {
                        prop_assert!(!active);
                        prop_assert!(first_ms <= at_ms && at_ms == now);
                        active = true;
                    }
                    Some(End { last_ms, at_ms }) => {
                        prop_assert!(active);
                        prop_assert!(last_ms <= at_ms);
                        active = false;
                    }
                    None => {}
                }
                prop_assert_eq!(t.active(), active);
            }
            if let Some(End { last_ms, at_ms }) = t.finish(now) {
                prop_assert!(active && last_ms <= at_ms);
            } else {
                prop_assert!(!active);
            }
        }
    }
    #[test]
    fn the_pacer_keeps_the_asked_rate_whatever_the_stream_rate() {
        for (stream_fps, want, expect) in [
            (25.0, 10.0, 10),
            (30.0, 10.0, 10),
            (15.0, 10.0, 10),
            (25.0, 5.0, 5),
            (5.0, 10.0, 5),
            (25.0, 25.0, 25),
            (25.0, 0.0, 25),
        ] {
            let mut p = Pacer::new(want);
            let frames = (10.0 * stream_fps) as i64;
            let taken = (0..frames)
                .filter(|i| p.take((*i as f64 * 1000.0 / stream_fps).round() as i64))
                .count();
            assert_eq!(
                taken,
                expect * 10,
                "{want} fps asked of a {stream_fps} fps stream"
            );
        }
    }

    #[test]
    fn the_pacer_restarts_after_a_gap_or_a_clock_going_back() {
        let mut p = Pacer::new(10.0);
        assert!(p.take(1_000));
        assert!(!p.take(1_040));
        // Five seconds without pictures: the next one is taken, and no burst follows.
        assert!(p.take(6_000));
        assert!(!p.take(6_040));
        assert!(p.take(6_120));
        // A reconnect starts the stream's clock again.
        assert!(p.take(0));
        assert!(!p.take(40));
        assert!(p.take(120));
    }
}
