//! Synthetic motion scenes: a textured grey picture with sensor-like noise, and a script of what
//! happens when (a dark object crossing a region, a global brightness step, a slow drift),
//! rendered frame by frame and encoded by the `ffmpeg` CLI into an H.264 MP4 that camhub plays as
//! an `ffmpeg:` file source (paced at its native rate). Every event is given in frames, so a test
//! compares what camhub reports in media time with exactly when the scene moved.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// One thing that happens in a scene, over frames `from..to`.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A dark (luma 40) box of `w` x `h` pixels moving in a straight line from `(x0, y0)` to
    /// `(x1, y1)` (top-left corners, pixels) over the range.
    Object {
        /// Box size.
        w: u32,
        /// Box size.
        h: u32,
        /// Start position (top-left).
        x0: u32,
        /// Start position (top-left).
        y0: u32,
        /// End position (top-left).
        x1: u32,
        /// End position (top-left).
        y1: u32,
    },
    /// Adds `delta` to every pixel from `from` on (and keeps it: a light switched on).
    Step {
        /// Luma change.
        delta: i32,
    },
    /// Adds a change growing linearly from 0 at `from` to `delta` at `to` (and keeps it after).
    Drift {
        /// Luma change at the end.
        delta: i32,
    },
}

/// One scripted action and its frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// First frame.
    pub from: u32,
    /// One past the last frame.
    pub to: u32,
    /// What happens.
    pub action: Action,
}

/// A scene: picture size, frame rate, length, noise and its script.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Picture width (even).
    pub width: u32,
    /// Picture height (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Frames in all.
    pub frames: u32,
    /// Standard deviation of the per-pixel, per-frame luma noise.
    pub noise: f64,
    /// What happens when.
    pub cues: Vec<Cue>,
}

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

impl Scene {
    /// The luma plane of frame `n` (without noise).
    fn luma(&self, n: u32, out: &mut [u8]) {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut offset = 0i32;
        for c in &self.cues {
            match c.action {
                Action::Step { delta } if n >= c.from => offset += delta,
                Action::Drift { delta } if n >= c.from => {
                    let span = (c.to - c.from).max(1) as f64;
                    let done = (f64::from(n - c.from) / span).min(1.0);
                    offset += (f64::from(delta) * done).round() as i32;
                }
                _ => {}
            }
        }
        for y in 0..h {
            for x in 0..w {
                // A gentle gradient and a coarse texture: a scene, not a flat wall.
                let base = 110 + (x * 30 / w) as i32 + (y * 20 / h) as i32
                    - if (x / 40 + y / 30) % 2 == 0 { 6 } else { 0 };
                out[y * w + x] = (base + offset).clamp(16, 235) as u8;
            }
        }
        for c in &self.cues {
            if let Action::Object {
                w: ow,
                h: oh,
                x0,
                y0,
                x1,
                y1,
            } = c.action
            {
                if n < c.from || n >= c.to {
                    continue;
                }
                let t = f64::from(n - c.from) / f64::from((c.to - c.from - 1).max(1));
                let ox = (f64::from(x0) + (f64::from(x1) - f64::from(x0)) * t).round() as usize;
                let oy = (f64::from(y0) + (f64::from(y1) - f64::from(y0)) * t).round() as usize;
                for y in oy..(oy + oh as usize).min(h) {
                    for x in ox..(ox + ow as usize).min(w) {
                        out[y * w + x] = 40;
                    }
                }
            }
        }
    }

    /// Renders the scene into `path` (H.264 MP4, no B-frames, a keyframe every second). Blocking.
    /// Panics when `ffmpeg` fails.
    pub fn render(&self, path: &Path) {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo"])
            .args(["-pix_fmt", "yuv420p", "-s", &format!("{w}x{h}")])
            .args(["-r", &self.fps.to_string(), "-i", "-"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                "18",
                "-bf",
                "0",
            ])
            .args(["-g", &self.fps.to_string(), "-pix_fmt", "yuv420p"])
            .arg(path)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffmpeg must be installed to render a test scene");
        let mut stdin = child.stdin.take().expect("ffmpeg's stdin");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut luma = vec![0u8; w * h];
        let chroma = vec![128u8; w * h / 2];
        // Sum of four uniforms in [-a, a] has σ = a·sqrt(4/3): scale for the wanted σ.
        let a = self.noise / (4.0f64 / 3.0).sqrt();
        for n in 0..self.frames {
            self.luma(n, &mut luma);
            if a > 0.0 {
                for p in &mut luma {
                    let r = rng.next();
                    let sum: i32 = (0..4)
                        .map(|i| ((r >> (i * 16)) & 0xFFFF) as i32 - 32768)
                        .sum();
                    let noise = f64::from(sum) / 32768.0 * a;
                    *p = (f64::from(*p) + noise).round().clamp(0.0, 255.0) as u8;
                }
            }
            stdin.write_all(&luma).expect("writing a frame to ffmpeg");
            stdin.write_all(&chroma).expect("writing a frame to ffmpeg");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("waiting for ffmpeg");
        assert!(
            out.status.success(),
            "ffmpeg could not encode the scene: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
