//! [`FrameQueue`]: the hand-off from a camera's async source task to its decode thread. Bounded by
//! design: compressed video packets queue up to [`MAX_PACKETS`] and at most [`MAX_BACKLOG`] behind
//! (a decoder must see every packet of a GOP); past either bound the backlog is dropped and decoding
//! resumes at the next keyframe, so a decoder that cannot keep up loses frames, never memory, and
//! never falls more than about a second behind live. Self-contained pictures (JPEGs, test
//! pattern ticks) are latest-value: a new one replaces any that is still waiting.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::source::SourceEvent;

/// Most compressed packets waiting for the decoder (a memory bound: 100 packets of 4K video are
/// a few megabytes).
pub const MAX_PACKETS: usize = 100;
/// Longest a packet may wait for the decoder: the bound on how far behind live a slow decoder
/// gets (packet counts alone would allow 20 s at 5 fps).
pub const MAX_BACKLOG: Duration = Duration::from_secs(1);

/// A bounded queue between one producer (async) and one consumer (a decode thread).
pub struct FrameQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
}

struct Inner {
    items: VecDeque<(SourceEvent, Instant)>,
    closed: bool,
    /// After an overflow: drop packets until a keyframe arrives.
    await_keyframe: bool,
}

/// What [`FrameQueue::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct PushOutcome {
    /// Events dropped to keep the bound.
    pub dropped: usize,
    /// The packet backlog hit a bound just now: the decoder cannot keep up.
    pub overflowed: bool,
}

impl Default for FrameQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameQueue {
    /// An empty, open queue.
    pub fn new() -> FrameQueue {
        FrameQueue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                closed: false,
                await_keyframe: false,
            }),
            ready: Condvar::new(),
        }
    }

    /// Adds an event, keeping the bounds described on the type.
    pub fn push(&self, ev: SourceEvent) -> PushOutcome {
        self.push_bounded(ev, MAX_BACKLOG)
    }

    /// [`FrameQueue::push`] with another age bound (for tests).
    fn push_bounded(&self, ev: SourceEvent, max_backlog: Duration) -> PushOutcome {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut dropped = 0;
        let mut overflowed = false;
        match &ev {
            SourceEvent::Packet { keyframe, .. } => {
                if g.await_keyframe && !keyframe {
                    return PushOutcome {
                        dropped: 1,
                        overflowed: false,
                    };
                }
                g.await_keyframe = false;
                let is_packet = |e: &SourceEvent| matches!(e, SourceEvent::Packet { .. });
                // One pass: the count, and (FIFO) the first packet is the oldest.
                let (mut packets, mut oldest) = (0, None);
                for (_, t) in g.items.iter().filter(|(e, _)| is_packet(e)) {
                    packets += 1;
                    oldest.get_or_insert(*t);
                }
                if packets >= MAX_PACKETS || oldest.is_some_and(|t| t.elapsed() > max_backlog) {
                    overflowed = true;
                    let before = g.items.len();
                    g.items.retain(|(e, _)| !is_packet(e));
                    dropped = before - g.items.len();
                    if !keyframe {
                        g.await_keyframe = true;
                        return PushOutcome {
                            dropped: dropped + 1,
                            overflowed,
                        };
                    }
                }
            }
            SourceEvent::Jpeg { .. } | SourceEvent::Pattern { .. } => {
                let before = g.items.len();
                g.items.retain(|(e, _)| {
                    !matches!(e, SourceEvent::Jpeg { .. } | SourceEvent::Pattern { .. })
                });
                dropped = before - g.items.len();
            }
            SourceEvent::Params(_) => {}
        }
        g.items.push_back((ev, Instant::now()));
        drop(g);
        self.ready.notify_one();
        PushOutcome {
            dropped,
            overflowed,
        }
    }

    /// Takes the next event and when it was received, waiting up to `timeout`. `Err(())` once
    /// closed and drained.
    #[allow(clippy::result_unit_err)]
    pub fn pop(&self, timeout: Duration) -> Result<Option<(SourceEvent, Instant)>, ()> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.items.is_empty() && !g.closed {
            g = self
                .ready
                .wait_timeout(g, timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        match g.items.pop_front() {
            Some(ev) => Ok(Some(ev)),
            None if g.closed => Err(()),
            None => Ok(None),
        }
    }

    /// Number of events waiting.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .items
            .len()
    }

    /// True if nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the queue: the consumer drains what is left, then `pop` returns `Err(())`.
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn packet(key: bool) -> SourceEvent {
        SourceEvent::Packet {
            data: Bytes::from_static(b"x"),
            keyframe: key,
            pts: None,
        }
    }

    #[test]
    fn jpegs_are_latest_value() {
        let q = FrameQueue::new();
        for i in 0..10u8 {
            q.push(SourceEvent::Jpeg(Bytes::from(vec![i])));
        }
        assert_eq!(q.len(), 1);
        match q.pop(Duration::ZERO) {
            Ok(Some((SourceEvent::Jpeg(b), _))) => assert_eq!(&b[..], &[9]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn packet_backlog_is_bounded_and_resumes_at_keyframe() {
        let q = FrameQueue::new();
        q.push(packet(true));
        for _ in 0..1000 {
            q.push(packet(false));
            assert!(q.len() <= MAX_PACKETS);
        }
        // Overflowed while non-key packets kept coming: everything dropped until a keyframe.
        let before = q.len();
        assert_eq!(q.push(packet(false)).dropped, 1);
        assert_eq!(q.len(), before);
        q.push(packet(true));
        let mut last = None;
        while let Ok(Some(ev)) = q.pop(Duration::ZERO) {
            last = Some(ev.0);
        }
        assert!(matches!(
            last,
            Some(SourceEvent::Packet { keyframe: true, .. })
        ));
    }

    #[test]
    fn a_decoder_that_falls_behind_skips_to_the_next_keyframe() {
        let q = FrameQueue::new();
        let bound = Duration::from_millis(50);
        assert!(!q.push_bounded(packet(true), bound).overflowed);
        assert!(!q.push_bounded(packet(false), bound).overflowed);
        std::thread::sleep(Duration::from_millis(80));
        // Nobody popped for longer than the bound: the backlog goes, and so does everything up
        // to the next keyframe (a P-frame without its references would decode to garbage).
        let out = q.push_bounded(packet(false), bound);
        assert!(out.overflowed);
        assert_eq!(out.dropped, 3);
        assert_eq!(q.len(), 0);
        assert_eq!(q.push_bounded(packet(false), bound).dropped, 1);
        let out = q.push_bounded(packet(true), bound);
        assert_eq!((out.dropped, out.overflowed), (0, false));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn close_drains_then_ends() {
        let q = FrameQueue::new();
        q.push(packet(true));
        q.close();
        assert!(matches!(q.pop(Duration::ZERO), Ok(Some(_))));
        assert!(q.pop(Duration::ZERO).is_err());
    }
}
