//! The motion detector on synthetic scenes: a textured picture with per-frame sensor noise (σ ≈ 4,
//! the sum of four uniform values), objects moving across it, lighting that drifts, pumps and
//! switches. Each test pairs what must stay quiet with a control that must not, so that a detector
//! that never reports anything fails too.

use camhub_media::motion::{Analysis, Detector, Rect, Settings};

/// xorshift64*: deterministic noise without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Something drawn over the scene, in pixels (may reach outside the picture).
#[derive(Clone, Copy)]
struct Object {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
    look: Look,
}

#[derive(Clone, Copy)]
enum Look {
    /// A flat luma value.
    Flat(u8),
    /// The scene under it, shifted by this many levels.
    Delta(i16),
}

impl Object {
    fn flat(x: i64, y: i64, w: i64, h: i64, luma: u8) -> Object {
        Object {
            x,
            y,
            w,
            h,
            look: Look::Flat(luma),
        }
    }

    /// Where the object is, normalized and clipped to the picture.
    fn rect(&self, width: usize, height: usize) -> Rect {
        let (w, h) = (width as i64, height as i64);
        let (x0, y0) = (self.x.clamp(0, w), self.y.clamp(0, h));
        let (x1, y1) = ((self.x + self.w).clamp(0, w), (self.y + self.h).clamp(0, h));
        Rect {
            x: x0 as f32 / w as f32,
            y: y0 as f32 / h as f32,
            w: (x1 - x0) as f32 / w as f32,
            h: (y1 - y0) as f32 / h as f32,
        }
    }
}

/// A fixed textured scene (gradient, 16 px checker, per-pixel grain; luma about 90..170) that
/// renders noisy frames.
struct Scene {
    width: usize,
    height: usize,
    stride: usize,
    base: Vec<u8>,
    buf: Vec<u8>,
    rng: Rng,
}

impl Scene {
    fn new(width: usize, height: usize) -> Scene {
        Scene::with_stride(width, height, width)
    }

    fn with_stride(width: usize, height: usize, stride: usize) -> Scene {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (width * 31 + height) as u64);
        let mut base = vec![0; width * height];
        for (y, row) in base.chunks_exact_mut(width).enumerate() {
            for (x, v) in row.iter_mut().enumerate() {
                let gradient = 50 * x / width;
                let checker = 15 * ((x / 16 + y / 16) % 2);
                let grain = (rng.next() % 11) as usize;
                *v = (90 + gradient + checker + grain) as u8;
            }
        }
        Scene {
            width,
            height,
            stride,
            base,
            buf: vec![0; stride * height],
            rng: Rng(0xD1B5_4A32_D192_ED03),
        }
    }

    /// One frame: the scene through `light` (a per-level mapping: exposure, gain), the objects on
    /// top, then noise. Padding bytes past `width` get fresh garbage every frame.
    fn frame(&mut self, light: impl Fn(u8) -> i32, objects: &[Object]) -> &[u8] {
        let lut: Vec<i32> = (0..=255u8).map(&light).collect();
        let w = self.width as i64;
        for (y, (out, base)) in self
            .buf
            .chunks_exact_mut(self.stride)
            .zip(self.base.chunks_exact(self.width))
            .enumerate()
        {
            let mut ideal: Vec<i32> = base.iter().map(|&v| lut[v as usize]).collect();
            for o in objects {
                let y = y as i64;
                if y < o.y || y >= o.y + o.h {
                    continue;
                }
                for x in o.x.clamp(0, w)..(o.x + o.w).clamp(0, w) {
                    let x = x as usize;
                    ideal[x] = match o.look {
                        Look::Flat(v) => i32::from(v),
                        Look::Delta(d) => i32::from(base[x]) + i32::from(d),
                    };
                }
            }
            let mut bits = 0u64;
            for (x, (o, v)) in out.iter_mut().zip(&ideal).enumerate() {
                if x.is_multiple_of(2) {
                    bits = self.rng.next();
                }
                // Four uniform values in -3..=3 from four bytes: σ = 4.
                let mut noise = -12;
                for _ in 0..4 {
                    noise += (((bits & 0xFF) * 7) >> 8) as i32;
                    bits >>= 8;
                }
                *o = (v + noise).clamp(0, 255) as u8;
            }
            for pad in &mut out[self.width..] {
                *pad = self.rng.next() as u8;
            }
        }
        &self.buf
    }
}

fn same(v: u8) -> i32 {
    i32::from(v)
}

/// Feeds `frames` frames to a detector; `objects(i)` says what is in frame `i`, `light(i)` how the
/// scene is lit. Returns every frame's analysis.
fn run(
    scene: &mut Scene,
    settings: Settings,
    frames: usize,
    light: impl Fn(usize, u8) -> i32,
    objects: impl Fn(usize) -> Vec<Object>,
) -> Vec<Analysis> {
    let mut detector = Detector::new(settings);
    (0..frames)
        .map(|i| {
            let (stride, w, h) = (scene.stride, scene.width, scene.height);
            let plane = scene.frame(|v| light(i, v), &objects(i));
            detector.analyse(plane, stride, w, h)
        })
        .collect()
}

fn motion_frames(results: &[Analysis]) -> Vec<usize> {
    results
        .iter()
        .enumerate()
        .filter(|(_, a)| a.motion)
        .map(|(i, _)| i)
        .collect()
}

fn max_score(results: &[Analysis]) -> f32 {
    results.iter().map(|a| a.score).fold(0.0, f32::max)
}

/// In a module named after the detector so that `cargo test motion` selects every test here.
mod motion {
    use super::*;

    /// Frames before anything happens in the scene tests: warm-up plus a margin.
    const QUIET: usize = 10;

    #[test]
    fn noise_alone_is_never_motion_at_640x360() {
        let mut scene = Scene::new(640, 360);
        let r = run(
            &mut scene,
            Settings::default(),
            300,
            |_, v| same(v),
            |_| vec![],
        );
        assert!(r[..3].iter().all(|a| a.warming_up));
        assert!(r[3..].iter().all(|a| !a.warming_up));
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert!(r.iter().all(|a| !a.light_switch));
        assert!(max_score(&r) < 0.02, "max score {}", max_score(&r));
    }

    #[test]
    fn noise_alone_is_never_motion_at_1080p() {
        let mut scene = Scene::new(1920, 1080);
        let r = run(
            &mut scene,
            Settings::default(),
            50,
            |_, v| same(v),
            |_| vec![],
        );
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert!(max_score(&r) < 0.02, "max score {}", max_score(&r));
    }

    #[test]
    fn noise_alone_is_never_motion_without_downscale() {
        // 320x240 is analysed pixel by pixel: no averaging helps here, only the threshold, the
        // background's own averaging and speckle removal.
        let mut scene = Scene::new(320, 240);
        let r = run(
            &mut scene,
            Settings::default(),
            300,
            |_, v| same(v),
            |_| vec![],
        );
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert!(max_score(&r) < 0.02, "max score {}", max_score(&r));
    }

    #[test]
    fn hot_pixels_never_add_up() {
        // 1 % of the pixels of each frame are black or white at random: 1 % of the picture changes
        // every frame, twice min_area, but never as a body.
        let (w, h) = (320, 240);
        let mut scene = Scene::new(w, h);
        let mut detector = Detector::new(Settings::default());
        let mut rng = Rng(42);
        let mut worst = 0.0f32;
        for _ in 0..200 {
            let mut plane = scene.frame(same, &[]).to_vec();
            for _ in 0..w * h / 100 {
                let i = (rng.next() % (w * h) as u64) as usize;
                plane[i] = if rng.next().is_multiple_of(2) { 0 } else { 255 };
            }
            let a = detector.analyse(&plane, w, w, h);
            assert!(!a.motion, "{a:?}");
            worst = worst.max(a.score);
        }
        assert!(worst < 0.05, "max score {worst}");
    }

    /// An object of `w` x `h` px moving right by `speed` px per frame from frame QUIET on: motion on
    /// every frame it is there, its box on it.
    fn assert_moving_object_found(width: usize, height: usize, w: i64, h: i64, speed: i64) {
        let mut scene = Scene::new(width, height);
        let at = |i: usize| Object::flat(40 + speed * (i as i64 - QUIET as i64), 100, w, h, 40);
        let frames = QUIET + 80;
        let r = run(
            &mut scene,
            Settings::default(),
            frames,
            |_, v| same(v),
            |i| if i >= QUIET { vec![at(i)] } else { vec![] },
        );
        assert_eq!(motion_frames(&r[..QUIET]), Vec::<usize>::new());
        let share = (w * h) as f32 * 100.0 / (width * height) as f32;
        for (i, a) in r.iter().enumerate().skip(QUIET) {
            assert!(a.motion, "frame {i}: {a:?}");
            assert!(
                (a.score - share).abs() < share * 0.3,
                "frame {i}: score {} for an object of {share} %",
                a.score
            );
            let truth = at(i).rect(width, height);
            let iou = a.boxes[0].iou(&truth);
            assert!(iou > 0.7, "frame {i}: box {:?} vs {truth:?}", a.boxes[0]);
        }
    }

    #[test]
    fn a_small_object_is_found_at_once() {
        // 96x48 of 640x360: 2 %.
        assert_moving_object_found(640, 360, 96, 48, 3);
    }

    #[test]
    fn a_small_object_is_found_at_1080p() {
        // 288x144 of 1920x1080: 2 %.
        assert_moving_object_found(1920, 1080, 288, 144, 9);
    }

    #[test]
    fn a_bigger_object_is_found_at_once() {
        // 170x95 of 640x360: 7 %.
        assert_moving_object_found(640, 360, 170, 95, 4);
    }

    #[test]
    fn an_object_below_min_area_is_not_motion() {
        // 30x15 of 640x360: 0.2 %, under the default 0.5 %; the same object counts once min_area is
        // lower, so the detector does see it.
        let object = |i: usize| {
            if i >= QUIET {
                vec![Object::flat(40 + 3 * i as i64, 100, 30, 15, 40)]
            } else {
                vec![]
            }
        };
        let mut scene = Scene::new(640, 360);
        let r = run(&mut scene, Settings::default(), 100, |_, v| same(v), object);
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert!(max_score(&r) > 0.1, "the object is not seen at all");

        let low = Settings {
            min_area: 0.1,
            ..Settings::default()
        };
        let r = run(&mut scene, low, 100, |_, v| same(v), object);
        assert_eq!(motion_frames(&r), (QUIET..100).collect::<Vec<_>>());
    }

    #[test]
    fn contrast_under_the_threshold_is_not_motion() {
        let run_delta = |delta: i16| {
            let mut scene = Scene::new(640, 360);
            let object = move |i: usize| {
                let look = Look::Delta(delta);
                if i >= QUIET {
                    vec![Object {
                        x: 40 + 3 * i as i64,
                        y: 80,
                        w: 150,
                        h: 100,
                        look,
                    }]
                } else {
                    vec![]
                }
            };
            run(&mut scene, Settings::default(), 80, |_, v| same(v), object)
        };
        // 12 levels darker than what it covers: under the threshold of 20.
        assert_eq!(motion_frames(&run_delta(-12)), Vec::<usize>::new());
        assert_eq!(motion_frames(&run_delta(12)), Vec::<usize>::new());
        // 35 levels: well over.
        assert_eq!(
            motion_frames(&run_delta(-35)),
            (QUIET..80).collect::<Vec<_>>()
        );
        assert_eq!(
            motion_frames(&run_delta(35)),
            (QUIET..80).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_light_switched_on_is_not_motion() {
        let step = |i: usize, v: u8| i32::from(v) + if i >= 20 { 80 } else { 0 };
        let mut scene = Scene::new(640, 360);
        let r = run(&mut scene, Settings::default(), 80, step, |_| vec![]);
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        let switched: Vec<usize> = (0..80).filter(|&i| r[i].light_switch).collect();
        assert_eq!(switched, [20]);
        assert!(r[20].boxes.is_empty());
        assert!(max_score(&r[21..]) < 0.02, "not quiet after the switch");

        // And switched off again.
        let pulse = |i: usize, v: u8| i32::from(v) + if (20..40).contains(&i) { 80 } else { 0 };
        let r = run(&mut scene, Settings::default(), 80, pulse, |_| vec![]);
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        let switched: Vec<usize> = (0..80).filter(|&i| r[i].light_switch).collect();
        assert_eq!(switched, [20, 40]);
    }

    #[test]
    fn a_light_switch_is_motion_when_asked() {
        let step = |i: usize, v: u8| i32::from(v) + if i >= 20 { 80 } else { 0 };
        let settings = Settings {
            light_switch: false,
            ..Settings::default()
        };
        let mut scene = Scene::new(640, 360);
        let r = run(&mut scene, settings, 80, step, |_| vec![]);
        assert!(r.iter().all(|a| !a.light_switch));
        assert!(r[20].motion && r[20].score > 90.0, "{:?}", r[20]);
        // Once the light is on it stays on: the scene is quiet again.
        assert_eq!(motion_frames(&r), [20]);
    }

    #[test]
    fn uneven_lighting_changes_are_light_switches() {
        let (w, h) = (640, 360);
        let mut scene = Scene::new(w, h);
        let mut detector = Detector::new(Settings::default());
        for _ in 0..QUIET {
            detector.analyse(scene.frame(same, &[]), w, w, h);
        }
        // A camera switching to night mode: the picture inverted around its median level (IR light
        // reflects differently), so the global shift stays 0 and only the share of changed cells
        // tells...
        let mut levels = scene.base.clone();
        levels.sort_unstable();
        let median = i32::from(levels[levels.len() / 2]);
        let night = |v: u8| 2 * median - i32::from(v);
        let a = detector.analyse(scene.frame(night, &[]), w, w, h);
        assert!(a.light_switch && !a.motion, "{a:?}");
        let a = detector.analyse(scene.frame(night, &[]), w, w, h);
        assert!(!a.light_switch && !a.motion && a.score < 0.02, "{a:?}");

        // ...and back in day mode, a lamp lighting the left 70 % of the picture.
        for _ in 0..QUIET {
            detector.analyse(scene.frame(same, &[]), w, w, h);
        }
        let lamp = Object {
            x: 0,
            y: 0,
            w: 448,
            h: 360,
            look: Look::Delta(70),
        };
        let a = detector.analyse(scene.frame(same, &[lamp]), w, w, h);
        assert!(a.light_switch && !a.motion, "{a:?}");
        let a = detector.analyse(scene.frame(same, &[lamp]), w, w, h);
        assert!(!a.light_switch && !a.motion && a.score < 0.02, "{a:?}");
    }

    #[test]
    fn dusk_is_not_motion() {
        // -40 levels, linearly over 30 s at 10 fps.
        let dusk = |i: usize, v: u8| i32::from(v) - (40 * i / 300) as i32;
        let mut scene = Scene::new(640, 360);
        let r = run(&mut scene, Settings::default(), 300, dusk, |_| vec![]);
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert!(r.iter().all(|a| !a.light_switch));
        assert!(max_score(&r) < 0.02, "max score {}", max_score(&r));
    }

    #[test]
    fn auto_exposure_pumping_is_not_motion() {
        // Gain 1 ± 0.15 and a ±15 level offset, a 2 s cycle: the background alone (a 2 s time
        // constant) lags by more than the threshold; the global shift compensation takes it out.
        let pump = |i: usize, v: u8| {
            let phase = (i as f32 * std::f32::consts::TAU / 20.0).sin();
            (f32::from(v) * (1.0 + 0.15 * phase) + 15.0 * phase).round() as i32
        };
        let mut scene = Scene::new(640, 360);
        let r = run(&mut scene, Settings::default(), 300, pump, |_| vec![]);
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert!(r.iter().all(|a| !a.light_switch));

        // While it pumps, a person walking by is still found.
        let walker = |i: usize| {
            if i >= QUIET {
                vec![Object::flat(20 + 5 * i as i64, 120, 60, 140, 40)]
            } else {
                vec![]
            }
        };
        let r = run(&mut scene, Settings::default(), 100, pump, walker);
        assert_eq!(motion_frames(&r), (QUIET..100).collect::<Vec<_>>());
    }

    #[test]
    fn masked_motion_is_ignored() {
        // A fan turning inside the masked polygon (a triangle around it).
        let fan = |i: usize| {
            if i >= QUIET && i.is_multiple_of(2) {
                vec![Object::flat(200, 100, 120, 80, 30)]
            } else {
                vec![]
            }
        };
        let mask = vec![(0.25, 0.2), (0.6, 0.15), (0.55, 0.6), (0.28, 0.58)];
        let masked = Settings {
            masks: vec![mask],
            ..Settings::default()
        };
        let mut scene = Scene::new(640, 360);
        let r = run(&mut scene, masked, 60, |_, v| same(v), fan);
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert_eq!(max_score(&r), 0.0);
        // The control: unmasked, it is motion.
        let r = run(&mut scene, Settings::default(), 60, |_, v| same(v), fan);
        assert!(motion_frames(&r).len() > 20);
    }

    #[test]
    fn only_zones_count_and_the_score_is_of_the_whole_picture() {
        let zone = vec![(0.5, 0.0), (1.0, 0.0), (1.0, 0.5), (0.5, 0.5)];
        let in_zone = Settings {
            zones: vec![zone],
            ..Settings::default()
        };
        // 96x48 px (2 % of the picture) moving in the bottom-left quarter: outside the zone.
        let outside = |i: usize| {
            if i >= QUIET {
                vec![Object::flat(20 + 3 * i as i64, 250, 96, 48, 40)]
            } else {
                vec![]
            }
        };
        let mut scene = Scene::new(640, 360);
        let r = run(&mut scene, in_zone.clone(), 60, |_, v| same(v), outside);
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert_eq!(max_score(&r), 0.0);
        // The same in the top-right quarter, inside the zone.
        let inside = |i: usize| {
            if i >= QUIET {
                vec![Object::flat(340 + 3 * i as i64, 40, 96, 48, 40)]
            } else {
                vec![]
            }
        };
        let r = run(&mut scene, in_zone, 60, |_, v| same(v), inside);
        assert_eq!(motion_frames(&r), (QUIET..60).collect::<Vec<_>>());
        // 2 % of the picture (not 8 % of the zone).
        assert!((1.6..2.4).contains(&r[30].score), "{:?}", r[30]);
    }

    #[test]
    fn a_parked_car_stops_being_motion_but_not_at_once() {
        // 160x80 px (5.6 %) arrives at frame QUIET and stays.
        let car = |i: usize| {
            if i >= QUIET {
                vec![Object::flat(200, 200, 160, 80, 40)]
            } else {
                vec![]
            }
        };
        let mut scene = Scene::new(640, 360);
        let r = run(
            &mut scene,
            Settings::default(),
            QUIET + 400,
            |_, v| same(v),
            car,
        );
        let moving = motion_frames(&r);
        // Still there after 8 s at 10 fps...
        assert!(
            moving.starts_with(&(QUIET..QUIET + 80).collect::<Vec<_>>()),
            "{moving:?}"
        );
        // ...absorbed within 30 s, for good.
        let last = moving.last().copied().unwrap_or(0);
        assert!(last < QUIET + 300, "still motion at frame {last}");
        assert!(max_score(&r[QUIET + 300..]) < 0.02);
    }

    #[test]
    fn a_slow_walker_never_fades() {
        // 1 px a frame: every pixel of the 60 px wide object stays covered for 60 frames.
        let walker = |i: usize| {
            if i >= QUIET {
                vec![Object::flat(20 + i as i64, 100, 60, 120, 40)]
            } else {
                vec![]
            }
        };
        let mut scene = Scene::new(640, 360);
        let r = run(
            &mut scene,
            Settings::default(),
            QUIET + 400,
            |_, v| same(v),
            walker,
        );
        assert_eq!(motion_frames(&r), (QUIET..QUIET + 400).collect::<Vec<_>>());
        for (i, a) in r.iter().enumerate().skip(QUIET) {
            let truth = walker(i)[0].rect(640, 360);
            assert!(a.boxes[0].iou(&truth) > 0.7, "frame {i}: {:?}", a.boxes);
        }
    }

    #[test]
    fn boxes_are_per_object_and_largest_first() {
        let objects = |i: usize| {
            if i >= QUIET {
                vec![
                    Object::flat(40, 40, 60, 60, 30),
                    Object::flat(300 + i as i64, 200, 120, 100, 30),
                ]
            } else {
                vec![]
            }
        };
        let mut scene = Scene::new(640, 360);
        let r = run(
            &mut scene,
            Settings::default(),
            QUIET + 5,
            |_, v| same(v),
            objects,
        );
        let a = &r[QUIET + 4];
        assert_eq!(a.boxes.len(), 2, "{:?}", a.boxes);
        assert!(a.boxes[0].iou(&objects(QUIET + 4)[1].rect(640, 360)) > 0.8);
        assert!(a.boxes[1].iou(&objects(QUIET + 4)[0].rect(640, 360)) > 0.8);

        // Forty separate things: sixteen boxes.
        let many = |i: usize| {
            if i >= QUIET {
                (0..40)
                    .map(|k| Object::flat(10 + 60 * (k % 10), 10 + 80 * (k / 10), 30, 30, 20))
                    .collect()
            } else {
                vec![]
            }
        };
        let r = run(
            &mut scene,
            Settings::default(),
            QUIET + 1,
            |_, v| same(v),
            many,
        );
        let boxes = &r[QUIET].boxes;
        assert_eq!(boxes.len(), 16);
        for b in boxes {
            assert!(b.x >= 0.0 && b.y >= 0.0 && b.x + b.w <= 1.0 && b.y + b.h <= 1.0);
        }
    }

    #[test]
    fn row_padding_is_never_read() {
        // Every frame's padding bytes are fresh garbage; only the visible pixels count.
        let mut scene = Scene::with_stride(640, 360, 704);
        let r = run(
            &mut scene,
            Settings::default(),
            100,
            |_, v| same(v),
            |_| vec![],
        );
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert!(max_score(&r) < 0.02);
    }

    #[test]
    fn a_new_size_or_a_reset_learns_again() {
        let mut detector = Detector::new(Settings::default());
        let mut small = Scene::new(320, 240);
        let mut big = Scene::new(640, 360);
        for _ in 0..5 {
            detector.analyse(big.frame(same, &[]), 640, 640, 360);
        }
        assert_eq!(detector.grid(), (320, 180));
        // A different picture that would be all motion against the old background.
        let a = detector.analyse(small.frame(same, &[]), 320, 320, 240);
        assert!(a.warming_up && !a.motion);
        assert_eq!(detector.grid(), (320, 240));
        for _ in 0..5 {
            assert!(
                !detector
                    .analyse(small.frame(same, &[]), 320, 320, 240)
                    .motion
            );
        }
        detector.reset();
        let a = detector.analyse(small.frame(|v| 255 - i32::from(v), &[]), 320, 320, 240);
        assert!(a.warming_up && !a.motion);
    }

    #[test]
    fn someone_walking_by_during_warm_up_leaves_no_ghost() {
        // Walks through the picture fast during the three warm-up frames and is gone after.
        let walker = |i: usize| {
            if i < 3 {
                vec![Object::flat(100 + 150 * i as i64, 100, 80, 160, 30)]
            } else {
                vec![]
            }
        };
        let mut scene = Scene::new(640, 360);
        let r = run(&mut scene, Settings::default(), 100, |_, v| same(v), walker);
        assert_eq!(motion_frames(&r), Vec::<usize>::new());
        assert!(max_score(&r) < 0.02, "max score {}", max_score(&r));
    }
}
