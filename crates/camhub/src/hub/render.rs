//! Pictures camhub draws itself: the demo camera's test pattern and the labelled placeholder that
//! viewers of a camera that is not streaming get. Pure drawing (`camhub_media::draw`) onto codec
//! pictures; no camera state.

use bytes::Bytes;
use camhub_codec::{JpegEncoder, Picture};
use camhub_media::draw::{self, Plane};

/// Draws the demo camera's test pattern for one frame.
pub fn render_pattern(
    width: u32,
    height: u32,
    frame_no: u64,
    unix_ms: u64,
    id: &str,
) -> Result<Picture, camhub_codec::CodecError> {
    let mut pic = Picture::new_yuv420_full(width, height)?;
    let label = format!("{id}  #{frame_no:06}  {}", format_utc(unix_ms));
    let [(y, ys, yw, yh), (u, us, uw, uh), (v, vs, vw, vh)] = pic.planes_mut();
    draw::test_pattern(
        &mut Plane {
            data: y,
            stride: ys,
            width: yw,
            height: yh,
        },
        &mut Plane {
            data: u,
            stride: us,
            width: uw,
            height: uh,
        },
        &mut Plane {
            data: v,
            stride: vs,
            width: vw,
            height: vh,
        },
        frame_no,
        &label,
    );
    Ok(pic)
}

/// Renders a grey placeholder JPEG with centred text lines ("reconnecting…", the reason), for viewers
/// of a camera that is not streaming: a silent link must never look like a still scene.
pub fn render_placeholder(
    width: u32,
    height: u32,
    lines: &[String],
) -> Result<Bytes, camhub_codec::CodecError> {
    let (width, height) = ((width.max(64) / 2) * 2, (height.max(48) / 2) * 2);
    let mut pic = Picture::new_yuv420_full(width, height)?;
    let [(y, ys, yw, yh), (u, us, uw, uh), (v, vs, vw, vh)] = pic.planes_mut();
    let mut yp = Plane {
        data: y,
        stride: ys,
        width: yw,
        height: yh,
    };
    draw::fill_rect(&mut yp, 0, 0, yw as i64, yh as i64, 48);
    draw::fill_rect(
        &mut Plane {
            data: u,
            stride: us,
            width: uw,
            height: uh,
        },
        0,
        0,
        uw as i64,
        uh as i64,
        128,
    );
    draw::fill_rect(
        &mut Plane {
            data: v,
            stride: vs,
            width: vw,
            height: vh,
        },
        0,
        0,
        vw as i64,
        vh as i64,
        128,
    );
    let longest = lines
        .iter()
        .map(|l| draw::text_width(l, 1))
        .max()
        .unwrap_or(1)
        .max(1);
    let scale = ((i64::from(width) * 9 / 10) / longest).clamp(1, 6) as u32;
    let line_h = 10 * i64::from(scale);
    let mut top = (i64::from(height) - line_h * lines.len() as i64) / 2;
    for line in lines {
        let w = draw::text_width(line, scale);
        draw::draw_text(&mut yp, (i64::from(width) - w) / 2, top, scale, line, 230);
        top += line_h;
    }
    let mut enc = JpegEncoder::new()?;
    enc.encode(&pic, 70)
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC (no time-zone database needed).
pub fn format_utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(format_utc(1_795_310_645_120), "2026-11-22 01:24:05.120");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00.000");
    }
}
