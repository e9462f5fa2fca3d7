//! [`PacketRing`]: the bounded, GOP-aware ring behind a camera's packet tap. It holds encoded access
//! units (H.264/H.265 or whole JPEGs) in arrival order, each at a monotonically increasing index, and
//! lets any number of readers walk it with their own [`Cursor`] and their own lag limit. It never
//! waits and never reads a clock: the caller passes arrival times in, and locks it.
//!
//! Bounds (both hard, see [`RingLimits`]):
//! - **bytes**: the payload bytes held never exceed `max_bytes` (after a push completes);
//! - **duration**: no packet older than `max_span` (measured from the newest packet's arrival) is held,
//!   and packets from before the current GOP's keyframe are held only for `history` — long enough for
//!   a reader with a lag limit up to `history` to keep going across a keyframe.
//!
//! The current GOP (from its keyframe to the newest packet) is kept whole while it fits both bounds, so
//! a new reader starts at the last keyframe at once. A GOP larger than the byte bound keeps as much as
//! fits (its keyframe is gone), and new readers then start at the next keyframe.

use std::collections::VecDeque;

/// How much a [`PacketRing`] may hold. Times are in microseconds of the caller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLimits {
    /// Most payload bytes held.
    pub max_bytes: usize,
    /// Oldest packet held, relative to the newest one (µs).
    pub max_span_us: u64,
    /// How long packets from before the current GOP's keyframe stay (µs): the longest lag limit a
    /// reader can have without being resynchronised at every keyframe.
    pub history_us: u64,
}

impl Default for RingLimits {
    /// 16 MiB, 30 s, 2 s: a 2 s GOP of 4K at 16 Mbit/s is 4 MB; a 10 s GOP of 1080p at 4 Mbit/s is 5 MB.
    fn default() -> Self {
        RingLimits {
            max_bytes: 16 << 20,
            max_span_us: 30_000_000,
            history_us: 2_000_000,
        }
    }
}

struct Entry<T> {
    item: T,
    bytes: usize,
    keyframe: bool,
    at_us: u64,
}

/// A bounded ring of packets `T` (see the module docs for the bounds).
pub struct PacketRing<T> {
    entries: VecDeque<Entry<T>>,
    /// Index of `entries[0]`.
    first: u64,
    bytes: usize,
    /// Index of the newest keyframe still held.
    last_key: Option<u64>,
    limits: RingLimits,
}

/// A reader's position in a [`PacketRing`]. Created by [`PacketRing::cursor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Index of the next packet to deliver.
    next: u64,
    /// Deliver nothing until a keyframe (after joining without one, or after a resync).
    need_key: bool,
    /// Packets passed over since the last one delivered.
    skipped: u64,
    /// Packets before this index were in the ring when the reader joined: replaying them (the cached
    /// GOP) is not lagging, so the lag limit applies only from here on.
    joined_at: u64,
}

/// What [`PacketRing::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a, T> {
    /// The next packet for this reader, and how many it skipped before it (resyncs, waiting for a
    /// keyframe, packets evicted before it read them).
    Packet {
        /// The packet.
        item: &'a T,
        /// Packets skipped since the previous one delivered to this cursor.
        skipped: u64,
    },
    /// Nothing new yet.
    Empty,
}

impl<T> PacketRing<T> {
    /// An empty ring with these limits.
    pub fn new(limits: RingLimits) -> PacketRing<T> {
        PacketRing {
            entries: VecDeque::new(),
            first: 0,
            bytes: 0,
            last_key: None,
            limits,
        }
    }

    /// Index the next pushed packet gets.
    pub fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Index of the newest keyframe held, where a new reader starts.
    pub fn last_keyframe(&self) -> Option<u64> {
        self.last_key
    }

    /// Appends a packet of `bytes` payload bytes that arrived at `at_us`, then evicts down to the
    /// limits. Arrival times should not go backwards; if they do, they are treated as equal.
    pub fn push(&mut self, item: T, bytes: usize, keyframe: bool, at_us: u64) {
        let at_us = self.entries.back().map_or(at_us, |e| e.at_us.max(at_us));
        if keyframe {
            self.last_key = Some(self.end());
        }
        self.entries.push_back(Entry {
            item,
            bytes,
            keyframe,
            at_us,
        });
        self.bytes += bytes;
        self.evict(at_us);
    }

    fn evict(&mut self, newest_us: u64) {
        while let Some(front) = self.entries.front() {
            let age = newest_us.saturating_sub(front.at_us);
            let before_gop = self.last_key.is_none_or(|k| self.first < k);
            let keep = self.bytes <= self.limits.max_bytes
                && age <= self.limits.max_span_us
                && !(before_gop && age > self.limits.history_us);
            if keep {
                break;
            }
            self.bytes -= front.bytes;
            self.entries.pop_front();
            if self.last_key == Some(self.first) {
                // The current GOP no longer fits: new readers wait for the next keyframe.
                self.last_key = None;
            }
            self.first += 1;
        }
    }

    /// Forgets everything (a new connection: the old GOP must never reach a new reader). Indexes
    /// keep increasing, so existing cursors see the gap as skipped packets and wait for a keyframe.
    pub fn clear(&mut self) {
        self.first = self.end();
        self.entries.clear();
        self.bytes = 0;
        self.last_key = None;
    }

    /// A cursor for a new reader: at the newest keyframe if one is held (the reader gets the cached
    /// GOP at once), else at the end, waiting for the next keyframe.
    pub fn cursor(&self) -> Cursor {
        let end = self.end();
        match self.last_key {
            Some(k) => Cursor {
                next: k,
                need_key: false,
                skipped: 0,
                joined_at: end,
            },
            None => Cursor {
                next: end,
                need_key: true,
                skipped: 0,
                joined_at: end,
            },
        }
    }

    /// Packets held that `cursor` has not read yet.
    pub fn pending(&self, cursor: &Cursor) -> u64 {
        self.end().saturating_sub(cursor.next.max(self.first))
    }

    /// The next packet for `cursor`, applying its lag limit: a reader whose next packet is more than
    /// `max_lag_us` older than the newest one is moved to the newest keyframe (or, if it is already
    /// inside the newest GOP, to the next keyframe), and the packets it passes over are counted.
    pub fn read(&self, cursor: &mut Cursor, max_lag_us: u64) -> Read<'_, T> {
        let end = self.end();
        if cursor.next < self.first {
            // Evicted before this reader got to them.
            cursor.skipped += self.first - cursor.next;
            cursor.next = self.first;
            cursor.need_key = true;
        }
        if cursor.next > end {
            // A cursor from before a clear() that outran nothing: cannot happen with indexes that
            // only grow, but never index past the end.
            cursor.next = end;
        }
        if let (Some(newest), Some(at)) = (self.entries.back(), self.get(cursor.next)) {
            let lagging = cursor.next >= cursor.joined_at
                && newest.at_us.saturating_sub(at.at_us) > max_lag_us;
            if lagging {
                // Either way the reader starts over as if it had just joined: replaying the GOP it
                // is moved to is catching up, not lagging.
                cursor.joined_at = end;
                match self.last_key {
                    Some(k) if k > cursor.next => {
                        cursor.skipped += k - cursor.next;
                        cursor.next = k;
                        cursor.need_key = false;
                    }
                    _ => {
                        // Inside the newest GOP already: the next keyframe is the first place a
                        // decoder can resume cleanly.
                        cursor.skipped += end - cursor.next;
                        cursor.next = end;
                        cursor.need_key = true;
                    }
                }
            }
        }
        while let Some(e) = self.get(cursor.next) {
            cursor.next += 1;
            if cursor.need_key && !e.keyframe {
                cursor.skipped += 1;
                continue;
            }
            cursor.need_key = false;
            let skipped = std::mem::take(&mut cursor.skipped);
            return Read::Packet {
                item: &e.item,
                skipped,
            };
        }
        Read::Empty
    }

    fn get(&self, index: u64) -> Option<&Entry<T>> {
        let i = index.checked_sub(self.first)?;
        self.entries.get(usize::try_from(i).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    fn limits(max_bytes: usize) -> RingLimits {
        RingLimits {
            max_bytes,
            max_span_us: 30_000 * MS,
            history_us: 2_000 * MS,
        }
    }

    /// Pushes a GOP of `n` packets (first one key), 40 ms apart, starting at `t` ms; returns the next t.
    fn gop(r: &mut PacketRing<u32>, first_id: u32, n: u32, t: u64) -> u64 {
        for i in 0..n {
            r.push(first_id + i, 100, i == 0, (t + u64::from(i) * 40) * MS);
        }
        t + u64::from(n) * 40
    }

    fn read_all(r: &PacketRing<u32>, c: &mut Cursor, lag: u64) -> (Vec<u32>, u64) {
        let (mut out, mut skipped) = (Vec::new(), 0);
        while let Read::Packet { item, skipped: s } = r.read(c, lag) {
            out.push(*item);
            skipped += s;
        }
        (out, skipped)
    }

    #[test]
    fn a_new_reader_starts_at_the_last_keyframe_with_the_cached_gop() {
        let mut r = PacketRing::new(limits(1 << 20));
        let t = gop(&mut r, 0, 50, 0);
        gop(&mut r, 100, 10, t);
        let mut c = r.cursor();
        let (got, skipped) = read_all(&r, &mut c, 1000 * MS);
        assert_eq!(got, (100..110).collect::<Vec<_>>());
        assert_eq!(skipped, 0);
        assert_eq!(r.read(&mut c, 1000 * MS), Read::Empty);
    }

    #[test]
    fn a_reader_joining_without_a_keyframe_waits_for_the_next_one() {
        let mut r = PacketRing::new(limits(1 << 20));
        r.push(1, 10, false, 0);
        let mut c = r.cursor();
        r.push(2, 10, false, 40 * MS);
        assert_eq!(r.read(&mut c, u64::MAX), Read::Empty);
        r.push(3, 10, true, 80 * MS);
        assert_eq!(
            r.read(&mut c, u64::MAX),
            Read::Packet {
                item: &3,
                skipped: 1
            }
        );
    }

    #[test]
    fn bytes_bound_holds_and_an_oversized_gop_makes_readers_wait_for_the_next_keyframe() {
        let mut r = PacketRing::new(limits(1000));
        gop(&mut r, 0, 30, 0); // 3000 bytes: more than fits
        assert!(r.bytes() <= 1000);
        assert_eq!(r.last_keyframe(), None);
        let mut c = r.cursor();
        assert_eq!(r.read(&mut c, u64::MAX), Read::Empty);
        r.push(99, 100, true, 5000 * MS);
        assert_eq!(
            r.read(&mut c, u64::MAX),
            Read::Packet {
                item: &99,
                skipped: 0
            }
        );
    }

    #[test]
    fn history_before_the_current_gop_is_bounded_in_time_but_the_gop_is_kept() {
        let mut r = PacketRing::new(limits(1 << 30));
        // A 10 s GOP: kept whole (within max_span).
        let t = gop(&mut r, 0, 250, 0);
        assert_eq!(r.len(), 250);
        // A new keyframe: the old GOP stays only for `history` (2 s of it: 50 packets).
        r.push(1000, 100, true, t * MS);
        assert_eq!(r.len(), 1 + 2000 / 40);
        // ... measured from the newest packet: 4 s (and a GOP) later none of it is left.
        gop(&mut r, 1001, 100, t + 40);
        assert_eq!(r.len(), 100);
        // A GOP longer than max_span is cut.
        let mut r = PacketRing::new(limits(1 << 30));
        gop(&mut r, 0, 1000, 0); // 40 s
        assert!(r.len() <= 30_000 / 40 + 1);
    }

    #[test]
    fn a_lagging_reader_moves_to_the_newest_keyframe_and_is_told_what_it_skipped() {
        let mut r = PacketRing::new(limits(1 << 20));
        let t = gop(&mut r, 0, 25, 0);
        let mut c = r.cursor();
        assert_eq!(read_all(&r, &mut c, 500 * MS).0.len(), 25);
        // The reader stops reading; two seconds of GOPs arrive.
        let t = gop(&mut r, 100, 25, t);
        gop(&mut r, 200, 25, t);
        let (got, skipped) = read_all(&r, &mut c, 500 * MS);
        assert_eq!(got, (200..225).collect::<Vec<_>>());
        assert_eq!(skipped, 25);
    }

    #[test]
    fn a_reader_lagging_inside_the_newest_gop_resumes_at_the_next_keyframe() {
        let mut r = PacketRing::new(limits(1 << 20));
        let t = gop(&mut r, 0, 1, 0);
        let mut c = r.cursor();
        assert_eq!(read_all(&r, &mut c, 500 * MS).0, vec![0]);
        let t = gop(&mut r, 1, 0, t);
        for i in 1..50u32 {
            r.push(i, 100, false, (t + u64::from(i) * 40) * MS);
        }
        // 2 s behind inside one GOP: everything is passed over until the next keyframe.
        assert_eq!(r.read(&mut c, 500 * MS), Read::Empty);
        r.push(77, 100, true, 3000 * MS);
        assert_eq!(
            r.read(&mut c, 500 * MS),
            Read::Packet {
                item: &77,
                skipped: 49
            }
        );
    }

    #[test]
    fn replaying_the_cached_gop_is_not_lagging() {
        let mut r = PacketRing::new(limits(1 << 20));
        gop(&mut r, 0, 50, 0); // a 2 s GOP
        let mut c = r.cursor();
        // A 1 s lag limit must not skip the GOP the reader was given on joining.
        let (got, skipped) = read_all(&r, &mut c, 1000 * MS);
        assert_eq!(got.len(), 50);
        assert_eq!(skipped, 0);
    }

    #[test]
    fn clear_forgets_the_old_gop_and_readers_resume_at_a_keyframe() {
        let mut r = PacketRing::new(limits(1 << 20));
        gop(&mut r, 0, 10, 0);
        let mut c = r.cursor();
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.cursor().read_pos_for_test(), r.end());
        r.push(5, 10, false, 0);
        r.push(6, 10, true, 40 * MS);
        let (got, skipped) = read_all(&r, &mut c, u64::MAX);
        assert_eq!(got, vec![6]);
        assert_eq!(skipped, 11);
    }

    impl Cursor {
        fn read_pos_for_test(&self) -> u64 {
            self.next
        }
    }
}
