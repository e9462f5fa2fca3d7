//! The built-in demo camera: a synthetic moving test pattern with a frame counter and a clock, so a
//! fresh install has something to show with no camera at all. This source only keeps time; the
//! pattern is drawn on the decode thread, like any other decoding work.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{SourceError, SourceEvent};

/// Ticks at the configured frame rate.
pub struct DemoSource {
    width: u32,
    height: u32,
    frame_no: u64,
    interval: Interval,
}

impl DemoSource {
    /// A pattern of `width` x `height` at `fps`.
    pub fn new(width: u32, height: u32, fps: u32) -> DemoSource {
        let period = Duration::from_secs(1) / fps.max(1);
        let mut interval = tokio::time::interval_at(Instant::now(), period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        DemoSource {
            width,
            height,
            frame_no: 0,
            interval,
        }
    }

    /// Waits for the next tick.
    pub async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        self.interval.tick().await;
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let ev = SourceEvent::Pattern {
            frame_no: self.frame_no,
            unix_ms,
            width: self.width,
            height: self.height,
        };
        self.frame_no += 1;
        Ok(ev)
    }
}
