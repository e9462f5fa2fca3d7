//! JPEG variants of one camera: each distinct `(width, height, quality)` request is a [`VariantKey`]
//! with one latest-value slot ([`tokio::sync::watch`]) holding the newest encoded [`JpegFrame`]. The
//! decode thread encodes each variant at most once per source frame, only while it has subscribers,
//! and every subscriber shares the same bytes. A subscriber that reads slowly skips frames; nothing
//! ever queues per subscriber.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use camhub_media::size::fit_size;
use tokio::sync::watch;

use crate::error::{Error, ErrorKind};

/// Default JPEG quality when a request names none.
pub const DEFAULT_QUALITY: u8 = 80;

/// What a consumer asked for: requested box (either side optional) and quality. `quality: None`
/// means the default, and for a JPEG camera at native size it means "pass the camera's JPEG
/// through unchanged".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VariantKey {
    /// Requested width, if any.
    pub width: Option<u32>,
    /// Requested height, if any.
    pub height: Option<u32>,
    /// Requested quality (1–100), if any.
    pub quality: Option<u8>,
}

impl VariantKey {
    /// The native-size, default-quality variant.
    pub const NATIVE: VariantKey = VariantKey {
        width: None,
        height: None,
        quality: None,
    };

    /// The quality to encode at.
    pub fn effective_quality(&self) -> u8 {
        self.quality.unwrap_or(DEFAULT_QUALITY)
    }

    /// The picture this request comes out as from a `native`-sized source with pixel aspect `sar`.
    /// Requests that differ only in how they were written (`width=640` and `width=641` on a
    /// 1280x720 camera, `quality=80` and none) have the same output.
    pub fn output(&self, native: (u32, u32), sar: (u32, u32)) -> Option<Output> {
        let (width, height) = fit_size(native.0, native.1, sar, self.width, self.height).ok()?;
        Some(Output {
            width,
            height,
            quality: self.effective_quality(),
        })
    }
}

/// A variant as the picture it produces: size and quality. One encode per output per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Output {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// JPEG quality.
    pub quality: u8,
}

impl Output {
    /// The source's own size.
    pub fn is_native(&self, native: (u32, u32)) -> bool {
        (self.width, self.height) == native
    }

    /// A JPEG source's own JPEG serves it as it is: native size at the default quality.
    pub fn is_passthrough(&self, native: (u32, u32)) -> bool {
        self.is_native(native) && self.quality == DEFAULT_QUALITY
    }
}

/// One encoded picture of one variant, shared by every subscriber.
#[derive(Debug)]
pub struct JpegFrame {
    /// Sequence number of the source frame it was made from (per camera, increasing).
    pub seq: u64,
    /// The JPEG.
    pub data: Bytes,
    /// Its size in pixels.
    pub width: u32,
    /// Its size in pixels.
    pub height: u32,
    /// When camhub received the source frame (for age and added-latency measurements).
    pub received: Instant,
    /// Wall-clock time the source frame was received, ms since the Unix epoch.
    pub unix_ms: u64,
    /// The frame as one multipart part (header, JPEG, CRLF), built once by the first MJPEG viewer
    /// and shared by all: one buffer and one write per frame per viewer.
    pub part: std::sync::OnceLock<Bytes>,
}

impl JpegFrame {
    /// A frame of `data`, `width` x `height`, made from source frame `seq` received at `received`.
    pub fn new(
        seq: u64,
        data: Bytes,
        width: u32,
        height: u32,
        received: Instant,
        unix_ms: u64,
    ) -> JpegFrame {
        JpegFrame {
            seq,
            data,
            width,
            height,
            received,
            unix_ms,
            part: std::sync::OnceLock::new(),
        }
    }
}

/// A latest-value slot holding a variant's newest frame.
pub type Slot = watch::Sender<Option<Arc<JpegFrame>>>;

/// The variants of one camera, capped in number.
pub struct Variants {
    map: Mutex<HashMap<VariantKey, Slot>>,
    /// Set by [`Variants::close`]: the camera was replaced or removed.
    closed: std::sync::atomic::AtomicBool,
    max: usize,
    /// Bumped whenever a variant is added, so the decode thread knows to encode the last picture for it.
    generation: AtomicU64,
}

impl Variants {
    /// An empty set allowing at most `max` live variants.
    pub fn new(max: usize) -> Variants {
        Variants {
            map: Mutex::new(HashMap::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            max: max.max(1),
            generation: AtomicU64::new(0),
        }
    }

    /// Subscribes to `key`, creating the variant if needed. Variants nobody subscribes to any more are
    /// dropped first, so the cap counts only live ones.
    /// With the source's size and pixel aspect known (`native`), the cap counts distinct outputs:
    /// requests that come out as the same picture take one place.
    pub fn subscribe(
        &self,
        key: VariantKey,
        native: Option<((u32, u32), (u32, u32))>,
    ) -> Result<watch::Receiver<Option<Arc<JpegFrame>>>, Error> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "this camera was just reconfigured; ask again",
            ));
        }
        if let Some(slot) = map.get(&key) {
            if slot.receiver_count() == 0 {
                // Nobody kept this variant fresh: its frame may be old. Start empty; the decode
                // thread fills it from the newest picture (see `generation`).
                slot.send_replace(None);
                self.generation.fetch_add(1, Ordering::Release);
            }
            return Ok(slot.subscribe());
        }
        map.retain(|_, slot| slot.receiver_count() > 0);
        let output = |k: &VariantKey| native.and_then(|(wh, sar)| k.output(wh, sar));
        let mut outputs: Vec<Option<Output>> = Vec::new();
        let mut distinct = 0;
        for k in map.keys() {
            let o = output(k);
            if o.is_none() || !outputs.contains(&o) {
                distinct += 1;
                outputs.push(o);
            }
        }
        let shares = output(&key).is_some_and(|o| outputs.contains(&Some(o)));
        if !shares && distinct >= self.max {
            let live: Vec<String> = map.keys().map(describe).collect();
            return Err(Error::new(
                ErrorKind::TooMany,
                format!(
                    "this camera already serves {} distinct size/quality variants (the limit, server.max_variants): {}; request one of those or raise the limit",
                    distinct,
                    live.join(", ")
                ),
            ));
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key, tx);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(rx)
    }

    /// Ends every variant: their subscribers see the end of the stream (once the encoder lets go of
    /// the slots it holds) and new subscriptions are refused. For a camera that a config reload
    /// replaced or removed.
    pub fn close(&self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Release);
        map.clear();
    }

    /// The variants that currently have subscribers, with their slots (cloned handles).
    pub fn active(&self) -> Vec<(VariantKey, Slot)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, s)| s.receiver_count() > 0)
            .map(|(k, s)| (*k, s.clone()))
            .collect()
    }

    /// True if any variant has a subscriber (i.e. someone needs pixels).
    pub fn wanted(&self) -> bool {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.values().any(|s| s.receiver_count() > 0)
    }

    /// Changes whenever a variant is added.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Number of live subscribers over all variants.
    pub fn subscribers(&self) -> usize {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.values().map(|s| s.receiver_count()).sum()
    }
}

fn describe(k: &VariantKey) -> String {
    let w = k.width.map_or("native".to_owned(), |w| w.to_string());
    let h = k.height.map_or("auto".to_owned(), |h| h.to_string());
    format!("{w}x{h}@q{}", k.effective_quality())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_counts_only_live_variants() {
        let v = Variants::new(2);
        let k = |w| VariantKey {
            width: Some(w),
            height: None,
            quality: None,
        };
        let a = v.subscribe(k(100), None).expect("first");
        let _b = v.subscribe(k(200), None).expect("second");
        let err = v
            .subscribe(k(300), None)
            .expect_err("third is over the cap");
        assert_eq!(err.kind, ErrorKind::TooMany);
        assert!(err.message.contains("100x"), "{}", err.message);
        // Same key again is always fine.
        let _a2 = v.subscribe(k(100), None).expect("existing key");
        drop(a);
        drop(_a2);
        v.subscribe(k(300), None)
            .expect("a dropped variant frees its place");
    }

    #[test]
    fn a_variant_is_the_picture_it_produces() {
        let v = Variants::new(1);
        let native = Some(((1280, 720), (1, 1)));
        let q = |w: Option<u32>, h: Option<u32>, q: Option<u32>| VariantKey {
            width: w,
            height: h,
            quality: q.map(|q| q as u8),
        };
        let _a = v
            .subscribe(q(Some(640), None, None), native)
            .expect("first");
        for key in [
            q(Some(641), None, None),
            q(Some(640), Some(360), None),
            q(Some(640), None, Some(80)),
            q(None, Some(360), Some(80)),
        ] {
            let o = key.output((1280, 720), (1, 1));
            assert_eq!(
                o.map(|o| (o.width, o.height, o.quality)),
                Some((640, 360, 80))
            );
            v.subscribe(key, native)
                .unwrap_or_else(|e| panic!("{key:?} is the same picture: {}", e.message));
        }
        assert!(v.subscribe(q(Some(320), None, None), native).is_err());
        assert!(q(None, None, Some(80))
            .output((1280, 720), (1, 1))
            .is_some_and(|o| o.is_passthrough((1280, 720))));
    }
}
