//! Picture helpers around the `ffmpeg`/`ffprobe` CLI: make test JPEGs, decode JPEGs to RGB, probe sizes,
//! and check known colours of the RTSP fixture's picture. All blocking (each runs a short CLI).

use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// A point of a test picture with a known colour, as fractions of the width and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnownColor {
    /// What it is, for messages.
    pub name: &'static str,
    /// Horizontal position, 0.0 (left) ..= 1.0 (right).
    pub x: f64,
    /// Vertical position, 0.0 (top) ..= 1.0 (bottom).
    pub y: f64,
    /// Expected colour after decoding to full-range RGB.
    pub rgb: (u8, u8, u8),
}

/// The RTSP fixture's 100 % white patch (bottom row of `videotestsrc pattern=smpte`, x 1/6..2/6, y 3/4..1).
pub const RTSP_WHITE: KnownColor = KnownColor {
    name: "white",
    x: 0.25,
    y: 0.875,
    rgb: (255, 255, 255),
};
/// The RTSP fixture's black patch (bottom row, x 7/12..8/12, y 3/4..1).
pub const RTSP_BLACK: KnownColor = KnownColor {
    name: "black",
    x: 0.625,
    y: 0.875,
    rgb: (0, 0, 0),
};
/// Allowed per-channel difference from a [`KnownColor`] after lossy coding (H.264 → JPEG → RGB).
/// A picture whose range was not converted misses by ~16–20 levels at black and white; washed-out output
/// fails the black check only just, so tests that target range errors should use a tighter bound (≈10).
pub const COLOR_TOLERANCE: u8 = 24;

/// A rectangle as fractions of the picture: `(x0, y0, x1, y1)`, each 0.0..=1.0.
pub type Region = (f64, f64, f64, f64);

/// Where the RTSP fixture draws its running-time text ("frame counter"): it differs between frames.
pub const RTSP_COUNTER_REGION: Region = (0.0, 0.0, 0.45, 0.2);

impl KnownColor {
    /// The mean colour of a 5×5 block around this point of an RGB24 picture.
    pub fn sample(&self, rgb: &[u8], width: u32, height: u32) -> (u8, u8, u8) {
        let cx = ((self.x * f64::from(width)) as u32).min(width.saturating_sub(1));
        let cy = ((self.y * f64::from(height)) as u32).min(height.saturating_sub(1));
        let (mut sum, mut n) = ([0u32; 3], 0u32);
        for y in cy.saturating_sub(2)..=(cy + 2).min(height.saturating_sub(1)) {
            for x in cx.saturating_sub(2)..=(cx + 2).min(width.saturating_sub(1)) {
                let (r, g, b) = pixel(rgb, width, x, y);
                sum[0] += u32::from(r);
                sum[1] += u32::from(g);
                sum[2] += u32::from(b);
                n += 1;
            }
        }
        let n = n.max(1);
        ((sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8)
    }

    /// Ok when [`sample`](Self::sample) is within `tolerance` of [`rgb`](Self::rgb) in every channel;
    /// otherwise a message naming the colour, the point, and what was found.
    pub fn check(&self, rgb: &[u8], width: u32, height: u32, tolerance: u8) -> Result<(), String> {
        let got = self.sample(rgb, width, height);
        let close = |a: u8, b: u8| a.abs_diff(b) <= tolerance;
        if close(got.0, self.rgb.0) && close(got.1, self.rgb.1) && close(got.2, self.rgb.2) {
            Ok(())
        } else {
            Err(format!(
                "{} at ({:.3}, {:.3}) of {width}x{height}: expected {:?} ±{tolerance}, got {got:?}",
                self.name, self.x, self.y, self.rgb
            ))
        }
    }
}

/// The pixel at (x, y) of an RGB24 picture `width` pixels wide.
///
/// # Panics
/// When (x, y) is outside the buffer.
pub fn pixel(rgb: &[u8], width: u32, x: u32, y: u32) -> (u8, u8, u8) {
    let i = ((y as usize) * (width as usize) + x as usize) * 3;
    assert!(
        i + 2 < rgb.len(),
        "pixel ({x}, {y}) is outside a {width}-wide picture of {} bytes",
        rgb.len()
    );
    (rgb[i], rgb[i + 1], rgb[i + 2])
}

/// Mean absolute difference (0..=255) between two same-size RGB24 pictures inside `region`.
/// Frames of the RTSP fixture differ by several levels in [`RTSP_COUNTER_REGION`]; identical frames give 0.
pub fn region_mean_abs_diff(a: &[u8], b: &[u8], width: u32, height: u32, region: Region) -> f64 {
    let (x0, y0, x1, y1) = region;
    let px = |f: f64, n: u32| ((f * f64::from(n)) as u32).min(n);
    let (mut total, mut n) = (0u64, 0u64);
    for y in px(y0, height)..px(y1, height) {
        for x in px(x0, width)..px(x1, width) {
            let i = ((y * width + x) * 3) as usize;
            for c in 0..3 {
                if let (Some(p), Some(q)) = (a.get(i + c), b.get(i + c)) {
                    total += u64::from(p.abs_diff(*q));
                    n += 1;
                }
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        total as f64 / n as f64
    }
}

/// Width and height from a JPEG's SOF header; None when there is none.
///
/// ```
/// let jpeg = camhub_testkit::ffmpeg_jpegs(1, 64, 48).remove(0);
/// assert_eq!(camhub_testkit::jpeg_size(&jpeg), Some((64, 48)));
/// ```
pub fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        if jpeg[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = jpeg[i + 1];
        if marker == 0xFF || marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let sof = jpeg.get(i + 4..i + 9)?;
            let height = u32::from(u16::from_be_bytes([sof[1], sof[2]]));
            let width = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
            return Some((width, height));
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + len;
    }
    None
}

/// Decodes a JPEG to RGB24 with the ffmpeg CLI: `(width, height, rgb)`.
///
/// # Panics
/// When the bytes are not a JPEG ffmpeg can decode (the message has ffmpeg's stderr).
pub fn decode_jpeg_rgb(jpeg: &[u8]) -> (u32, u32, Vec<u8>) {
    try_decode_jpeg_rgb(jpeg).unwrap_or_else(|e| panic!("decode_jpeg_rgb: {e}"))
}

/// [`decode_jpeg_rgb`] returning an error instead of panicking.
pub fn try_decode_jpeg_rgb(jpeg: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    let (width, height) =
        jpeg_size(jpeg).ok_or_else(|| format!("no JPEG SOF header in {} bytes", jpeg.len()))?;
    let mut child = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "-i",
            "-",
        ])
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("ffmpeg stdin")?;
    let input = jpeg.to_vec();
    // Feed stdin from a thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut rgb = Vec::new();
    child
        .stdout
        .take()
        .ok_or("ffmpeg stdout")?
        .read_to_end(&mut rgb)
        .map_err(|e| e.to_string())?;
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let _ = writer.join();
    let status = child.wait().map_err(|e| e.to_string())?;
    let want = (width * height * 3) as usize;
    if !status.success() || rgb.len() != want {
        return Err(format!(
            "ffmpeg decoded {} bytes, expected {want} for {width}x{height} ({status}): {stderr}",
            rgb.len()
        ));
    }
    Ok((width, height, rgb))
}

/// The first video stream's size, from `ffprobe` on a file path or URL (RTSP is probed over TCP).
pub fn ffprobe_size(url_or_path: &str) -> Result<(u32, u32), String> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-rw_timeout", "15000000"]);
    if url_or_path.starts_with("rtsp://") {
        cmd.args(["-rtsp_transport", "tcp"]);
    }
    let out = cmd
        .args([
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0:s=x",
        ])
        .arg(url_or_path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ffprobe: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let parsed = line
        .trim()
        .trim_end_matches('x')
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    parsed.ok_or_else(|| {
        format!(
            "ffprobe {url_or_path}: no video size in {text:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `n` distinct JPEGs (`testsrc2` frames, which change every frame) of `width`×`height`, made by ffmpeg.
///
/// # Panics
/// When ffmpeg fails.
pub fn ffmpeg_jpegs(n: usize, width: u32, height: u32) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir for ffmpeg_jpegs");
    let pattern = dir.path().join("%05d.jpg");
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
        ])
        .arg("-i")
        .arg(format!("testsrc2=size={width}x{height}:rate=25"))
        .args([
            "-frames:v",
            &n.to_string(),
            "-q:v",
            "4",
            "-pix_fmt",
            "yuvj420p",
            "-f",
            "image2",
        ])
        .arg(&pattern)
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg for ffmpeg_jpegs");
    assert!(
        out.status.success(),
        "ffmpeg_jpegs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (1..=n)
        .map(|i| {
            std::fs::read(dir.path().join(format!("{i:05}.jpg"))).expect("read a JPEG ffmpeg wrote")
        })
        .collect()
}
