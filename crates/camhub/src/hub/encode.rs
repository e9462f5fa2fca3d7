//! The JPEG variant encoder of one camera stream (thread `cam-{id}/jpeg`): the picture tap's first
//! subscriber. It runs while any variant has subscribers, and encodes each live variant at most once
//! per picture into the variant's latest-value slot. Variants that come out as the same picture
//! (same size and quality) share one encode. A JPEG camera's JPEG is passed through byte-identical
//! where its native size at the default quality is wanted, and otherwise decoded with
//! libjpeg-turbo's scaled decoding at the smallest scale that still covers the largest size asked for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use camhub_codec::{thread_cpu_time, JpegDecoder, JpegEncoder, Picture, Scaler};
use tracing::{debug, warn};

use super::pipeline::{cpu_since, DecodeHandle};
use super::status::Metrics;
use super::taps::{Frame, FrameContent};
use super::variants::{JpegFrame, Output, Slot, Variants};
use super::worker::Worker;

/// Everything the encoder thread of one stream may touch.
pub struct EncodeHandle {
    /// Stream id, for the thread name.
    pub id: String,
    /// The variants it fills.
    pub variants: Arc<Variants>,
    /// Its picture source.
    pub decode: Arc<DecodeHandle>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    worker: Worker,
}

impl EncodeHandle {
    /// A handle whose thread is not running.
    pub fn new(
        id: String,
        variants: Arc<Variants>,
        decode: Arc<DecodeHandle>,
        metrics: Arc<Metrics>,
    ) -> EncodeHandle {
        EncodeHandle {
            id,
            variants,
            decode,
            metrics,
            worker: Worker::default(),
        }
    }

    /// Starts the encoder thread unless it runs; wakes it either way (a variant was added).
    pub fn ensure_running(self: &Arc<Self>) {
        self.decode.pictures.wake();
        Worker::ensure(
            self,
            |h| &h.worker,
            format!("cam-{}/jpeg", self.id),
            &self.id,
            |h| h.variants.wanted(),
            |h| match Encoder::new(h) {
                Ok(mut e) => e.run(),
                Err(e) => warn!("cannot start the JPEG codec: {e}"),
            },
        );
    }
}

struct Encoder<'a> {
    h: &'a EncodeHandle,
    jpeg_decoder: JpegDecoder,
    encoder: JpegEncoder,
    /// One scaler per output size; pruned with the variants.
    scalers: HashMap<(u32, u32), Scaler>,
}

impl<'a> Encoder<'a> {
    fn new(h: &'a EncodeHandle) -> Result<Encoder<'a>, camhub_codec::CodecError> {
        Ok(Encoder {
            h,
            jpeg_decoder: JpegDecoder::new()?,
            encoder: JpegEncoder::new()?,
            scalers: HashMap::new(),
        })
    }

    fn run(&mut self) {
        let mut sub = self.h.decode.subscribe_pictures();
        let mut generation = None;
        while self.h.variants.wanted() {
            let frame = sub.wait_newer(Duration::from_millis(100));
            // A variant appeared: serve it from the newest picture now, not at the next one.
            let g = self.h.variants.generation();
            let added = generation != Some(g);
            generation = Some(g);
            match frame {
                Some(f) => self.encode(&f, false),
                None if added => {
                    if let Some(f) = sub.latest() {
                        self.encode(&f, true);
                    }
                }
                None => {}
            }
        }
        self.scalers.clear();
    }

    /// Encodes every live variant from `frame` (with `only_new`, those that have no frame yet).
    fn encode(&mut self, frame: &Frame, only_new: bool) {
        let native = (frame.width, frame.height);
        let sar = match &frame.content {
            FrameContent::Picture(p) => p.sar(),
            FrameContent::Jpeg(_) => (1, 1),
        };
        // Group the variants by the picture they come out as: one encode per group.
        let mut groups: HashMap<Output, Vec<Slot>> = HashMap::new();
        for (key, slot) in self.h.variants.active() {
            if only_new && slot.borrow().is_some() {
                continue;
            }
            match key.output(native, sar) {
                Some(out) => groups.entry(out).or_default().push(slot),
                None => debug!("no picture for {key:?} from {}x{}", native.0, native.1),
            }
        }
        if groups.is_empty() {
            return;
        }
        self.scalers
            .retain(|wh, _| groups.keys().any(|o| (o.width, o.height) == *wh));
        // A JPEG camera's picture, decoded once at the smallest scale that covers every size
        // that needs pixels.
        let mut jpeg_pixels: Option<Picture> = None;
        if let FrameContent::Jpeg(jpeg) = &frame.content {
            let need = groups.keys().filter(|o| !o.is_passthrough(native)).fold(
                None,
                |acc: Option<(u32, u32)>, o| {
                    let (w, h) = acc.unwrap_or((0, 0));
                    Some((w.max(o.width), h.max(o.height)))
                },
            );
            if let Some((w, h)) = need {
                let cpu = thread_cpu_time();
                match self.jpeg_decoder.decode(jpeg, w, h) {
                    Ok(p) => jpeg_pixels = Some(p),
                    Err(e) => debug!("cannot decode a JPEG from the camera: {e}"),
                }
                Metrics::add(&self.h.metrics.decode_ns, cpu_since(cpu));
            }
        }
        for (out, slots) in groups {
            let data = match &frame.content {
                FrameContent::Jpeg(jpeg) if out.is_passthrough(native) => Some(jpeg.clone()),
                FrameContent::Jpeg(_) => jpeg_pixels
                    .as_ref()
                    .and_then(|p| self.encode_picture(p, out, false)),
                FrameContent::Picture(p) => self.encode_picture(p, out, out.is_native(native)),
            };
            let Some(data) = data else { continue };
            let jf = Arc::new(JpegFrame::new(
                frame.seq,
                data,
                out.width,
                out.height,
                frame.received,
                frame.unix_ms,
            ));
            for slot in slots {
                slot.send_replace(Some(jf.clone()));
            }
        }
    }

    /// Scales (unless `native` and the picture can be encoded as it is) and encodes one output.
    fn encode_picture(&mut self, pic: &Picture, out: Output, native: bool) -> Option<Bytes> {
        let cpu = thread_cpu_time();
        let scaler = self.scalers.entry((out.width, out.height)).or_default();
        let encoded = encode_jpeg(
            &mut self.encoder,
            scaler,
            pic,
            (out.width, out.height),
            native,
            out.quality,
        );
        Metrics::add(&self.h.metrics.encode_ns, cpu_since(cpu));
        match encoded {
            Ok(data) => {
                Metrics::add(&self.h.metrics.frames_encoded, 1);
                Some(data)
            }
            Err(e) => {
                debug!("encoding {}x{} failed: {e}", out.width, out.height);
                None
            }
        }
    }
}

/// A picture as a JPEG of `size`: encoded as it is when it is at that size (`native`) and
/// JPEG-ready, otherwise through `scaler` (size, range and matrix). The variant encoder's and the
/// motion snapshots' one way to a JPEG.
pub(crate) fn encode_jpeg(
    encoder: &mut JpegEncoder,
    scaler: &mut Scaler,
    pic: &Picture,
    size: (u32, u32),
    native: bool,
    quality: u8,
) -> Result<Bytes, camhub_codec::CodecError> {
    if native && pic.is_jpeg_ready() {
        encoder.encode(pic, quality)
    } else {
        scaler
            .scale(pic, size.0, size.1)
            .and_then(|scaled| encoder.encode(&scaled, quality))
    }
}
