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

    /// Validates query parameters into a key: sizes 2..=16384, quality 1..=100.
    pub fn from_query(
        width: Option<u32>,
        height: Option<u32>,
        quality: Option<u32>,
    ) -> Result<VariantKey, Error> {
        for (name, v) in [("width", width), ("height", height)] {
            if let Some(v) = v {
                if !(2..=16384).contains(&v) {
                    return Err(Error::new(
                        ErrorKind::BadRequest,
                        format!("{name}={v} is out of range: use 2 to 16384 (pictures are never upscaled), or leave it out for the native size"),
                    ));
                }
            }
        }
        let quality = match quality {
            None => None,
            Some(q @ 1..=100) => Some(q as u8),
            Some(q) => {
                return Err(Error::new(
                    ErrorKind::BadRequest,
                    format!(
                        "quality={q} is out of range: use 1 to 100 (default {DEFAULT_QUALITY})"
                    ),
                ))
            }
        };
        Ok(VariantKey {
            width,
            height,
            quality,
        })
    }

    /// The quality to encode at.
    pub fn effective_quality(&self) -> u8 {
        self.quality.unwrap_or(DEFAULT_QUALITY)
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
    max: usize,
    /// Bumped whenever a variant is added, so the decode thread knows to encode the last picture for it.
    generation: AtomicU64,
}

impl Variants {
    /// An empty set allowing at most `max` live variants.
    pub fn new(max: usize) -> Variants {
        Variants {
            map: Mutex::new(HashMap::new()),
            max: max.max(1),
            generation: AtomicU64::new(0),
        }
    }

    /// Subscribes to `key`, creating the variant if needed. Variants nobody subscribes to any more are
    /// dropped first, so the cap counts only live ones.
    pub fn subscribe(
        &self,
        key: VariantKey,
    ) -> Result<watch::Receiver<Option<Arc<JpegFrame>>>, Error> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
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
        if map.len() >= self.max {
            let live: Vec<String> = map.keys().map(describe).collect();
            return Err(Error::new(
                ErrorKind::TooMany,
                format!(
                    "this camera already serves {} distinct size/quality variants (the limit, server.max_variants): {}; request one of those or raise the limit",
                    map.len(),
                    live.join(", ")
                ),
            ));
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key, tx);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(rx)
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
        let a = v.subscribe(k(100)).expect("first");
        let _b = v.subscribe(k(200)).expect("second");
        let err = v.subscribe(k(300)).expect_err("third is over the cap");
        assert_eq!(err.kind, ErrorKind::TooMany);
        assert!(err.message.contains("100x"), "{}", err.message);
        // Same key again is always fine.
        let _a2 = v.subscribe(k(100)).expect("existing key");
        drop(a);
        drop(_a2);
        v.subscribe(k(300))
            .expect("a dropped variant frees its place");
    }

    #[test]
    fn query_validation() {
        assert!(VariantKey::from_query(Some(0), None, None).is_err());
        assert!(VariantKey::from_query(Some(100_000), None, None).is_err());
        assert!(VariantKey::from_query(None, None, Some(0)).is_err());
        assert!(VariantKey::from_query(None, None, Some(101)).is_err());
        let k = VariantKey::from_query(Some(640), None, Some(50)).expect("valid");
        assert_eq!(k.effective_quality(), 50);
    }
}
