//! The decode thread of one camera session (`cam-{id}/decode`): takes events from the
//! [`FrameQueue`], decodes only while some variant has subscribers, and encodes each subscribed
//! JPEG variant once per source frame into its latest-value slot. JPEG sources are passed through
//! byte-identical when a consumer wants them at native size, and otherwise decoded with
//! libjpeg-turbo's scaled decoding. Nothing here runs on the async runtime.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use camhub_codec::{Decoder, JpegDecoder, JpegEncoder, Picture, Scaler, StreamParams};
use camhub_media::draw::{self, Plane};
use camhub_media::jpeg::parse_jpeg_header;
use camhub_media::size::fit_size;
use tracing::{debug, warn};

use super::camera::Camera;
use super::queue::FrameQueue;
use super::status::Metrics;
use super::variants::{JpegFrame, VariantKey};
use crate::source::SourceEvent;

/// Starts the decode thread for one session. It exits when the queue is closed and drained.
pub fn spawn(cam: Arc<Camera>, queue: Arc<FrameQueue>) -> std::io::Result<JoinHandle<()>> {
    let name = format!("cam-{}/decode", cam.id());
    let span = tracing::info_span!("camera", id = %cam.id());
    std::thread::Builder::new().name(name).spawn(move || {
        let _enter = span.enter();
        let mut p = match Pipeline::new(cam) {
            Ok(p) => p,
            Err(e) => {
                warn!("cannot start the JPEG codec: {e}");
                return;
            }
        };
        p.run(&queue);
    })
}

struct Pipeline {
    cam: Arc<Camera>,
    decoder: Option<Decoder>,
    jpeg_decoder: JpegDecoder,
    encoder: JpegEncoder,
    scalers: HashMap<VariantKey, Scaler>,
    /// The newest picture, kept so a variant that appears between frames is served at once.
    last: Option<(Picture, Instant, u64)>,
    generation: u64,
    await_keyframe: bool,
    decode_errors: u64,
    /// The newest JPEG from a JPEG camera, for variants that appear between its frames.
    last_jpeg: Option<(Bytes, Instant, u64)>,
    /// When a variant last had subscribers (None: never in this session).
    last_wanted: Option<Instant>,
}

impl Pipeline {
    fn new(cam: Arc<Camera>) -> Result<Pipeline, camhub_codec::CodecError> {
        Ok(Pipeline {
            generation: cam.variants.generation(),
            cam,
            decoder: None,
            jpeg_decoder: JpegDecoder::new()?,
            encoder: JpegEncoder::new()?,
            scalers: HashMap::new(),
            last: None,
            await_keyframe: false,
            decode_errors: 0,
            last_wanted: None,
            last_jpeg: None,
        })
    }

    fn run(&mut self, queue: &FrameQueue) {
        loop {
            match queue.pop(Duration::from_millis(100)) {
                Err(()) => return,
                Ok(None) => {}
                Ok(Some((ev, received))) => self.handle(ev, received, queue),
            }
            // A new variant appeared: serve it from the last picture now rather than at the next frame.
            let generation = self.cam.variants.generation();
            if generation != self.generation {
                self.generation = generation;
                if let Some((pic, received, seq)) = self.last.take() {
                    self.encode_variants(&pic, received, seq, true);
                    self.last = Some((pic, received, seq));
                } else if let Some((jpeg, received, seq)) = self.last_jpeg.clone() {
                    // A JPEG camera polled every few seconds: don't make a new size wait for the
                    // next poll when the newest JPEG is at hand.
                    if received.elapsed() < self.cam.config.idle_timeout {
                        self.jpeg_variants(&jpeg, received, seq, true);
                    }
                }
            }
        }
    }

    fn handle(&mut self, ev: SourceEvent, received: Instant, queue: &FrameQueue) {
        match ev {
            SourceEvent::Params(params) => self.open_decoder(params),
            SourceEvent::Packet {
                data,
                keyframe,
                pts,
            } => {
                if !self.pixels_wanted() {
                    // Nobody needs pixels: skip decoding, and restart cleanly at a keyframe.
                    Metrics::add(&self.cam.metrics.frames_dropped, 1);
                    self.await_keyframe = true;
                    return;
                }
                if self.await_keyframe && !keyframe {
                    Metrics::add(&self.cam.metrics.frames_dropped, 1);
                    return;
                }
                self.await_keyframe = false;
                let Some(decoder) = self.decoder.as_mut() else {
                    return;
                };
                let t = Instant::now();
                let result = decoder.decode(&data, pts);
                Metrics::add(&self.cam.metrics.decode_ns, t.elapsed().as_nanos() as u64);
                match result {
                    Ok(pictures) => {
                        let n = pictures.len();
                        for (i, pic) in pictures.into_iter().enumerate() {
                            // Under backlog, decode everything (references!) but encode only the newest.
                            let behind = queue.len() > 2 || i + 1 < n;
                            self.picture(pic, received, behind);
                        }
                    }
                    Err(e) => {
                        self.decode_errors += 1;
                        if self.decode_errors == 1 || self.decode_errors.is_multiple_of(100) {
                            debug!(errors = self.decode_errors, "decode error: {e}");
                        }
                    }
                }
            }
            SourceEvent::Jpeg(jpeg) => self.jpeg(jpeg, received),
            SourceEvent::Pattern {
                frame_no,
                unix_ms,
                width,
                height,
            } => {
                if !self.pixels_wanted() {
                    return;
                }
                self.cam.status.send_if_modified(|s| {
                    let changed = s.codec.as_deref() != Some("demo");
                    s.codec = Some("demo".into());
                    changed
                });
                match render_pattern(width, height, frame_no, unix_ms, self.cam.id()) {
                    Ok(pic) => self.picture(pic, received, false),
                    Err(e) => warn!("cannot draw the test pattern: {e}"),
                }
            }
        }
    }

    /// True while a variant has subscribers, and for `idle_timeout` after the last one left: a
    /// snapshot poller that comes back every few seconds must not wait for the next keyframe
    /// (which some cameras send only every 10 s or more) each time.
    ///
    /// When false, the frame at hand is not turned into a picture, so the last picture stops
    /// being the newest: it is dropped here, for every kind of source, so that a newcomer never
    /// gets it.
    fn pixels_wanted(&mut self) -> bool {
        if self.cam.variants.wanted() {
            self.last_wanted = Some(Instant::now());
            return true;
        }
        let wanted = self
            .last_wanted
            .is_some_and(|t| t.elapsed() < self.cam.config.idle_timeout);
        if !wanted {
            self.last = None;
        }
        wanted
    }

    fn open_decoder(&mut self, params: StreamParams) {
        let codec = params.codec_name();
        self.cam.status.send_if_modified(|s| {
            let changed = s.codec.as_deref() != Some(codec.as_str());
            s.codec = Some(codec.clone());
            changed
        });
        match Decoder::new(&params, self.cam.config.decode_threads) {
            Ok(d) => {
                self.decoder = Some(d);
                self.await_keyframe = true;
            }
            Err(e) => {
                warn!("cannot decode {codec}: {e}");
                self.decoder = None;
            }
        }
    }

    fn note_size(&self, width: u32, height: u32) {
        self.cam.status.send_if_modified(|s| {
            let changed = s.width != Some(width) || s.height != Some(height);
            if changed && s.width.is_some() {
                debug!("resolution changed to {width}x{height}");
            }
            s.width = Some(width);
            s.height = Some(height);
            changed
        });
    }

    fn picture(&mut self, pic: Picture, received: Instant, behind: bool) {
        let seq = self.cam.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.note_size(pic.width(), pic.height());
        if behind {
            Metrics::add(&self.cam.metrics.frames_dropped, 1);
        } else {
            self.encode_variants(&pic, received, seq, false);
        }
        self.last = Some((pic, received, seq));
    }

    /// Encodes every subscribed variant (or, with `only_new`, those that have no frame yet).
    fn encode_variants(&mut self, pic: &Picture, received: Instant, seq: u64, only_new: bool) {
        let unix_ms = unix_ms_at(received);
        for (key, slot) in self.cam.variants.active() {
            if only_new && slot.borrow().is_some() {
                continue;
            }
            let Ok((w, h)) = fit_size(pic.width(), pic.height(), pic.sar(), key.width, key.height)
            else {
                continue;
            };
            let t = Instant::now();
            let encoded = if (w, h) == (pic.width(), pic.height()) && pic.is_jpeg_ready() {
                self.encoder.encode(pic, key.effective_quality())
            } else {
                let scaler = self.scalers.entry(key).or_default();
                scaler
                    .scale(pic, w, h)
                    .and_then(|scaled| self.encoder.encode(&scaled, key.effective_quality()))
            };
            Metrics::add(&self.cam.metrics.encode_ns, t.elapsed().as_nanos() as u64);
            match encoded {
                Ok(data) => {
                    Metrics::add(&self.cam.metrics.frames_encoded, 1);
                    slot.send_replace(Some(Arc::new(JpegFrame::new(
                        seq, data, w, h, received, unix_ms,
                    ))));
                }
                Err(e) => debug!("encoding {w}x{h} failed: {e}"),
            }
        }
    }

    /// A JPEG from the camera: pass through where the native size is wanted, decode (scaled) for the rest.
    fn jpeg(&mut self, jpeg: Bytes, received: Instant) {
        let seq = self.cam.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.last_jpeg = Some((jpeg.clone(), received, seq));
        self.jpeg_variants(&jpeg, received, seq, false);
    }

    /// Serves the subscribed variants (with `only_new`, those without a frame yet) from one camera
    /// JPEG.
    fn jpeg_variants(&mut self, jpeg: &Bytes, received: Instant, seq: u64, only_new: bool) {
        let active: Vec<_> = self
            .cam
            .variants
            .active()
            .into_iter()
            .filter(|(_, slot)| !only_new || slot.borrow().is_none())
            .collect();
        if active.is_empty() {
            return;
        }
        let info = match parse_jpeg_header(jpeg) {
            Ok(i) => i,
            Err(e) => {
                debug!("skipping a damaged JPEG from the camera: {e}");
                Metrics::add(&self.cam.metrics.frames_dropped, 1);
                return;
            }
        };
        self.note_size(info.width, info.height);
        self.cam.status.send_if_modified(|s| {
            let changed = s.codec.as_deref() != Some("mjpeg");
            s.codec = Some("mjpeg".into());
            changed
        });
        let unix_ms = unix_ms_at(received);
        let mut need_pixels: Option<(u32, u32)> = None;
        for (key, slot) in &active {
            let native = fit_size(info.width, info.height, (1, 1), key.width, key.height)
                .is_ok_and(|wh| wh == (info.width, info.height));
            if native && key.quality.is_none() {
                slot.send_replace(Some(Arc::new(JpegFrame::new(
                    seq,
                    jpeg.clone(),
                    info.width,
                    info.height,
                    received,
                    unix_ms,
                ))));
            } else if let Ok((w, h)) =
                fit_size(info.width, info.height, (1, 1), key.width, key.height)
            {
                let (mw, mh) = need_pixels.unwrap_or((0, 0));
                need_pixels = Some((mw.max(w), mh.max(h)));
            }
        }
        let Some((min_w, min_h)) = need_pixels else {
            return;
        };
        let t = Instant::now();
        let decoded = self.jpeg_decoder.decode(jpeg, min_w, min_h);
        Metrics::add(&self.cam.metrics.decode_ns, t.elapsed().as_nanos() as u64);
        match decoded {
            Ok(pic) => {
                // Variants are chosen against the camera's native size, not the scaled decode's.
                self.encode_jpeg_variants(&pic, &info, received, seq, &active);
                self.last = None;
            }
            Err(e) => debug!("cannot decode a JPEG from the camera: {e}"),
        }
    }

    fn encode_jpeg_variants(
        &mut self,
        pic: &Picture,
        info: &camhub_media::jpeg::JpegInfo,
        received: Instant,
        seq: u64,
        targets: &[(VariantKey, super::variants::Slot)],
    ) {
        let unix_ms = unix_ms_at(received);
        for (key, slot) in targets {
            let key = *key;
            let Ok((w, h)) = fit_size(info.width, info.height, (1, 1), key.width, key.height)
            else {
                continue;
            };
            if (w, h) == (info.width, info.height) && key.quality.is_none() {
                continue; // passed through already
            }
            let t = Instant::now();
            let scaler = self.scalers.entry(key).or_default();
            let encoded = scaler
                .scale(pic, w, h)
                .and_then(|s| self.encoder.encode(&s, key.effective_quality()));
            Metrics::add(&self.cam.metrics.encode_ns, t.elapsed().as_nanos() as u64);
            match encoded {
                Ok(data) => {
                    Metrics::add(&self.cam.metrics.frames_encoded, 1);
                    slot.send_replace(Some(Arc::new(JpegFrame::new(
                        seq, data, w, h, received, unix_ms,
                    ))));
                }
                Err(e) => debug!("encoding {w}x{h} failed: {e}"),
            }
        }
    }
}

fn unix_ms_at(at: Instant) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    now.saturating_sub(at.elapsed().as_millis() as u64)
}

/// Draws the demo camera's test pattern for one frame.
fn render_pattern(
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
