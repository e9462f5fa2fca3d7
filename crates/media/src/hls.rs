//! Low-latency HLS (RFC 8216bis, with partial segments) from a live H.264 / H.265 access-unit
//! stream: a [`Segmenter`] cuts segments that start on keyframes into partial segments of at most
//! [`PART_TARGET`], all of them fragmented MP4 ([`crate::fmp4`]), keeps the last
//! [`KEEP_SEGMENTS`], and writes the media playlist. Pure: access units and their timestamps in,
//! bytes and text out; the caller owns the clock (blocking reloads, when to stop).
//!
//! - A segment is the concatenation of its parts (the same bytes), so a part is stored once and a
//!   segment request is answered from the parts.
//! - Timestamps are rebased onto one continuous timeline: a skip ([`Segmenter::gap`]) or a camera
//!   reconnect continues where the last frame ended, so players never see a hole. New parameter
//!   sets (another resolution) close the segment and open the next one with
//!   `#EXT-X-DISCONTINUITY` and a new `#EXT-X-MAP`.
//! - A frame's duration is the interval before it (the next one is not waited for: that would
//!   add a frame of delay); the fragments' decode times keep the timeline exact anyway.
//!
//! ```
//! use camhub_media::annexb::Coding;
//! use camhub_media::hls::{AccessUnit, Segmenter};
//! let sps = [0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x5f, 0xf2, 0xe0, 0x22, 0, 0, 3, 0,
//!            0x02, 0, 0, 3, 0, 0x64, 0x1e, 0x2c, 0x5c, 0x90];
//! let mut key = vec![0, 0, 0, 1];
//! key.extend_from_slice(&sps);
//! key.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0, 0, 0, 0, 1, 0x65, 0x88]);
//! let p = [0, 0, 0, 1, 0x41, 0x9a];
//! let mut s = Segmenter::new(Coding::H264);
//! for i in 0..50i64 {
//!     let data: &[u8] = if i % 25 == 0 { &key } else { &p };
//!     s.push(&AccessUnit { data, dts: i * 3600, pts: i * 3600, keyframe: i % 25 == 0 })?;
//! }
//! let playlist = s.playlist("");
//! assert!(playlist.contains("#EXTINF:1.000,\nseg.m4s?msn=0"));
//! assert!(playlist.contains("#EXT-X-PART:DURATION=0.480,URI=\"part.m4s?msn=1&part=0\",INDEPENDENT=YES"));
//! # Ok::<(), camhub_media::fmp4::Fmp4Error>(())
//! ```

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Arc;

use crate::annexb::{nal_units, Coding};
use crate::fmp4::{init_segment, Fmp4Error, Fragmenter, Sample, Timeline, Track};

/// The longest partial segment, in 90 kHz ticks (0.5 s): parts close before they would pass it.
pub const PART_TARGET: i64 = 45_000;
/// A segment lasts at least this long (1 s) before the next keyframe starts a new one.
pub const MIN_SEGMENT: i64 = 90_000;
/// Complete segments kept (and listed); older ones are dropped.
pub const KEEP_SEGMENTS: usize = 6;
/// Complete segments at the end of the playlist whose parts are listed too.
const PARTS_LISTED_FOR: usize = 2;

/// One access unit in: Annex B bytes (in-band parameter sets on keyframes), 90 kHz times.
#[derive(Debug, Clone, Copy)]
pub struct AccessUnit<'a> {
    /// The Annex B access unit.
    pub data: &'a [u8],
    /// Decode time, 90 kHz, the camera's own timeline.
    pub dts: i64,
    /// Presentation time, 90 kHz.
    pub pts: i64,
    /// An IDR / random access point.
    pub keyframe: bool,
}

/// A partial segment: one `moof` + `mdat`.
#[derive(Debug, Clone)]
pub struct Part {
    /// The fragment's bytes (shared with every response that sends it).
    pub data: Arc<Vec<u8>>,
    /// Duration, 90 kHz ticks.
    pub duration: i64,
    /// Starts with a keyframe (`INDEPENDENT=YES`).
    pub independent: bool,
}

/// A segment: its parts, and whether it is finished.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// The init segment it needs ([`Segmenter::init`]).
    pub init: u32,
    /// Preceded by a discontinuity (new parameter sets).
    pub discontinuity: bool,
    /// Its parts so far.
    pub parts: Vec<Part>,
    /// No more parts will come.
    pub complete: bool,
}

impl Segment {
    /// Duration of its parts, 90 kHz ticks.
    pub fn duration(&self) -> i64 {
        self.parts.iter().map(|p| p.duration).sum()
    }

    /// The whole segment: its parts one after the other.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.parts.iter().map(|p| p.data.len()).sum());
        for p in &self.parts {
            out.extend_from_slice(&p.data);
        }
        out
    }
}

/// A frame placed on the output timeline, waiting in the current part.
#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    dts: i64,
    pts: i64,
    duration: i64,
    keyframe: bool,
}

/// Cuts one live stream into LL-HLS segments and parts. See the module docs.
#[derive(Debug)]
pub struct Segmenter {
    coding: Coding,
    track: Option<Track>,
    inits: Vec<(u32, Arc<Vec<u8>>)>,
    fragmenter: Fragmenter,
    segments: VecDeque<Segment>,
    next_msn: u64,
    /// Discontinuities before the first segment kept (`#EXT-X-DISCONTINUITY-SEQUENCE`).
    discontinuity_sequence: u64,
    /// The current part's frames.
    part: Vec<Pending>,
    awaiting_keyframe: bool,
    /// The next segment follows new parameter sets.
    discontinuity_next: bool,
    /// Frames placed on one continuous timeline.
    timeline: Timeline,
    /// The longest segment so far, rounded up to whole seconds (`#EXT-X-TARGETDURATION` may
    /// not change).
    target_secs: u64,
}

impl Segmenter {
    /// A segmenter for a stream of `coding` that starts at its next keyframe.
    pub fn new(coding: Coding) -> Segmenter {
        Segmenter {
            coding,
            track: None,
            inits: Vec::new(),
            fragmenter: Fragmenter::new(),
            segments: VecDeque::new(),
            next_msn: 0,
            discontinuity_sequence: 0,
            part: Vec::new(),
            awaiting_keyframe: true,
            discontinuity_next: false,
            timeline: Timeline::default(),
            target_secs: 1,
        }
    }

    /// The stream jumped (frames were skipped, or the camera reconnected): the segment in
    /// progress ends, and the next keyframe goes on from where the timeline stands.
    pub fn gap(&mut self) {
        self.close_segment();
        self.awaiting_keyframe = true;
    }

    /// Adds one access unit. Returns true when a part (and maybe a segment) was completed, i.e.
    /// the playlist changed. An error is a keyframe whose parameter sets cannot be read.
    pub fn push(&mut self, au: &AccessUnit<'_>) -> Result<bool, Fmp4Error> {
        if self.awaiting_keyframe && !au.keyframe {
            return Ok(false);
        }
        let mut changed = false;
        if au.keyframe {
            let sets: Vec<&[u8]> = nal_units(au.data)
                .filter(|n| self.coding.is_parameter_set(n))
                .collect();
            if !sets.is_empty() {
                let track = Track::from_parameter_sets(self.coding, &sets)?;
                if self.track.as_ref() != Some(&track) {
                    changed |= self.close_segment();
                    if self.track.is_some() {
                        self.discontinuity_next = true;
                    }
                    let id = self.inits.last().map_or(0, |(id, _)| id + 1);
                    self.inits.push((id, Arc::new(init_segment(&track))));
                    self.track = Some(track);
                }
            }
            if self.track.is_none() {
                return Ok(changed);
            }
            if self.awaiting_keyframe {
                self.timeline.rejoin();
                self.awaiting_keyframe = false;
            }
        }
        let (dts, pts, duration) = self.timeline.place(au.dts, au.pts);
        let duration = i64::from(duration);

        let open = self.segments.back().is_some_and(|s| !s.complete);
        let current = self
            .segments
            .back()
            .filter(|s| !s.complete)
            .map_or(0, Segment::duration)
            + part_duration(&self.part);
        if au.keyframe && (!open || current >= MIN_SEGMENT || self.discontinuity_next) {
            changed |= self.close_segment();
            self.open_segment();
        } else if !open {
            self.open_segment();
        }
        let in_part = part_duration(&self.part);
        if !self.part.is_empty() && in_part + duration > PART_TARGET {
            changed |= self.flush_part();
        }
        self.part.push(Pending {
            data: au.data.to_vec(),
            dts,
            pts,
            duration,
            keyframe: au.keyframe,
        });
        // Close the part now if the next frame would not fit: it is ready a frame earlier.
        if part_duration(&self.part) + duration > PART_TARGET {
            changed |= self.flush_part();
        }
        Ok(changed)
    }

    fn open_segment(&mut self) {
        let init = self.inits.last().map_or(0, |(id, _)| *id);
        self.segments.push_back(Segment {
            msn: self.next_msn,
            init,
            discontinuity: std::mem::take(&mut self.discontinuity_next),
            parts: Vec::new(),
            complete: false,
        });
        self.next_msn += 1;
    }

    /// Writes the pending frames as the current segment's next part.
    fn flush_part(&mut self) -> bool {
        if self.part.is_empty() {
            return false;
        }
        let Some(track) = &self.track else {
            self.part.clear();
            return false;
        };
        let Some(segment) = self.segments.back_mut().filter(|s| !s.complete) else {
            self.part.clear();
            return false;
        };
        let samples: Vec<Sample<'_>> = self
            .part
            .iter()
            .map(|p| Sample {
                data: &p.data,
                dts: p.dts,
                pts: p.pts,
                duration: u32::try_from(p.duration).unwrap_or(u32::MAX),
                keyframe: p.keyframe,
            })
            .collect();
        let data = self.fragmenter.fragment(track, &samples);
        segment.parts.push(Part {
            data: Arc::new(data),
            duration: part_duration(&self.part),
            independent: self.part.first().is_some_and(|p| p.keyframe),
        });
        self.part.clear();
        true
    }

    /// Ends the segment in progress (its pending frames become its last part) and drops the
    /// oldest beyond [`KEEP_SEGMENTS`].
    fn close_segment(&mut self) -> bool {
        let mut changed = self.flush_part();
        if let Some(s) = self.segments.back_mut().filter(|s| !s.complete) {
            if s.parts.is_empty() {
                // Nothing in it: forget it (its number is reused).
                self.discontinuity_next |= s.discontinuity;
                self.segments.pop_back();
                self.next_msn -= 1;
            } else {
                s.complete = true;
                let secs = (s.duration() as f64 / 90_000.0).round() as u64;
                self.target_secs = self.target_secs.max(secs.max(1));
                changed = true;
            }
        }
        while self.segments.iter().filter(|s| s.complete).count() > KEEP_SEGMENTS {
            if let Some(old) = self.segments.pop_front() {
                if old.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
        // Init segments no kept segment needs, except the newest, go.
        let newest = self.inits.last().map(|(id, _)| *id);
        let needed: Vec<u32> = self.segments.iter().map(|s| s.init).collect();
        self.inits
            .retain(|(id, _)| Some(*id) == newest || needed.contains(id));
        changed
    }

    /// The init segment `id`, if still kept.
    pub fn init(&self, id: u32) -> Option<Arc<Vec<u8>>> {
        self.inits
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, d)| d.clone())
    }

    /// Segment `msn`, if kept (complete or in progress).
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| s.msn == msn)
    }

    /// Part `index` of segment `msn`, if it exists yet.
    pub fn part(&self, msn: u64, index: usize) -> Option<Arc<Vec<u8>>> {
        self.segment(msn)
            .and_then(|s| s.parts.get(index))
            .map(|p| p.data.clone())
    }

    /// Whether the playlist already has segment `msn` complete (`part` None) or its part `part`
    /// (for blocking playlist reloads, `_HLS_msn` / `_HLS_part`).
    pub fn has(&self, msn: u64, part: Option<usize>) -> bool {
        match (self.segment(msn), part) {
            (Some(s), Some(p)) => s.parts.len() > p || s.complete,
            (Some(s), None) => s.complete,
            (None, _) => self.segments.front().is_some_and(|f| msn < f.msn),
        }
    }

    /// The newest segment's number and how many parts it has (None before the first part).
    pub fn newest(&self) -> Option<(u64, usize)> {
        let s = self.segments.back()?;
        (!s.parts.is_empty() || s.complete).then_some((s.msn, s.parts.len()))
    }

    /// Picture size and codec string of the current parameter sets.
    pub fn track(&self) -> Option<&Track> {
        self.track.as_ref()
    }

    /// The media playlist. `query` (e.g. `&token=…`, already URL-encoded) is appended to every
    /// URI so that a token in the playlist's URL carries into its segments.
    pub fn playlist(&self, query: &str) -> String {
        let mut out = String::with_capacity(2048);
        let part_target = PART_TARGET as f64 / 90_000.0;
        let first = self.segments.front().map_or(self.next_msn, |s| s.msn);
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{}\n\
             #EXT-X-PART-INF:PART-TARGET={part_target:.3}\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}\n\
             #EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            self.target_secs,
            part_target * 3.0,
            self.discontinuity_sequence,
        );
        let complete = self.segments.iter().filter(|s| s.complete).count();
        let mut map = None;
        for (i, s) in self.segments.iter().enumerate() {
            if s.discontinuity && i > 0 {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if map != Some(s.init) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"init.mp4?id={}{query}\"", s.init);
                map = Some(s.init);
            }
            if !s.complete || i + PARTS_LISTED_FOR >= complete {
                for (k, p) in s.parts.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "#EXT-X-PART:DURATION={:.3},URI=\"part.m4s?msn={}&part={k}{query}\"{}",
                        p.duration as f64 / 90_000.0,
                        s.msn,
                        if p.independent {
                            ",INDEPENDENT=YES"
                        } else {
                            ""
                        }
                    );
                }
            }
            if s.complete {
                let _ = write!(
                    out,
                    "#EXTINF:{:.3},\nseg.m4s?msn={}{query}\n",
                    s.duration() as f64 / 90_000.0,
                    s.msn
                );
            }
        }
        // The part the next frames go into: players ask for it ahead and the server holds the
        // request until it exists.
        let (msn, part) = match self.segments.back() {
            Some(s) if !s.complete => (s.msn, s.parts.len()),
            _ => (self.next_msn, 0),
        };
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part.m4s?msn={msn}&part={part}{query}\""
        );
        out
    }
}

/// How long the frames of a part last, 90 kHz ticks.
fn part_duration(part: &[Pending]) -> i64 {
    part.iter().map(|p| p.duration).sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SPS: [u8; 26] = [
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x5f, 0xf2, 0xe0, 0x22, 0, 0, 3, 0, 0x02,
        0, 0, 3, 0, 0x64, 0x1e, 0x2c, 0x5c, 0x90,
    ];
    const PPS: [u8; 6] = [0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0];

    fn keyframe(sps: &[u8]) -> Vec<u8> {
        let mut k = vec![0, 0, 0, 1];
        k.extend_from_slice(sps);
        k.extend_from_slice(&[0, 0, 0, 1]);
        k.extend_from_slice(&PPS);
        k.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
        k
    }

    const P: [u8; 7] = [0, 0, 0, 1, 0x41, 0x9a, 0x01];

    /// Feeds `n` frames at 25 fps from frame `from`, a keyframe every `gop`.
    fn feed(s: &mut Segmenter, from: i64, n: i64, gop: i64, sps: &[u8]) {
        let key = keyframe(sps);
        for i in from..from + n {
            let k = i % gop == 0;
            let data: &[u8] = if k { &key } else { &P };
            s.push(&AccessUnit {
                data,
                dts: 1_000_000 + i * 3600,
                pts: 1_000_000 + i * 3600,
                keyframe: k,
            })
            .unwrap();
        }
    }

    #[test]
    fn segments_start_on_keyframes_and_parts_stay_under_the_target() {
        let mut s = Segmenter::new(Coding::H264);
        feed(&mut s, 0, 25 * 5 + 3, 50, &SPS); // a keyframe every 2 s
        let complete: Vec<&Segment> = s.segments.iter().filter(|x| x.complete).collect();
        assert_eq!(complete.len(), 2);
        for seg in &complete {
            assert_eq!(seg.duration(), 180_000, "2 s segments (one GOP each)");
            assert!(seg.parts[0].independent);
            assert!(seg.parts[1..].iter().all(|p| !p.independent));
            assert!(seg.parts.iter().all(|p| p.duration <= PART_TARGET));
            assert_eq!(
                seg.bytes().len(),
                seg.parts.iter().map(|p| p.data.len()).sum()
            );
        }
        let pl = s.playlist("&token=abc");
        assert!(pl.contains("#EXT-X-TARGETDURATION:2\n"), "{pl}");
        assert!(pl.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{pl}");
        assert!(pl.contains("seg.m4s?msn=1&token=abc\n"), "{pl}");
        assert!(
            pl.contains("#EXT-X-MAP:URI=\"init.mp4?id=0&token=abc\""),
            "{pl}"
        );
        assert!(
            pl.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part.m4s?msn=2&part="),
            "{pl}"
        );
        assert!(s.has(1, None) && !s.has(2, None) && s.has(2, Some(0)));
    }

    #[test]
    fn old_segments_go_and_the_playlist_moves_on() {
        let mut s = Segmenter::new(Coding::H264);
        feed(&mut s, 0, 25 * 20, 25, &SPS);
        let complete = s.segments.iter().filter(|x| x.complete).count();
        assert_eq!(complete, KEEP_SEGMENTS);
        let first = s.segments.front().unwrap().msn;
        assert!(first >= 12, "{first}");
        assert!(s
            .playlist("")
            .contains(&format!("#EXT-X-MEDIA-SEQUENCE:{first}\n")));
        assert!(
            s.segment(0).is_none() && s.has(0, None),
            "an old segment counts as done"
        );
    }

    #[test]
    fn new_parameter_sets_give_a_discontinuity_and_a_new_map() {
        let mut s = Segmenter::new(Coding::H264);
        feed(&mut s, 0, 60, 25, &SPS);
        let mut other = SPS;
        other[3] = 0x1f; // another level: other parameter sets
        feed(&mut s, 60, 40, 20, &other);
        let pl = s.playlist("");
        assert!(
            pl.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init.mp4?id=1\""),
            "{pl}"
        );
        assert!(s.init(0).is_some() && s.init(1).is_some());
    }

    #[test]
    fn a_gap_keeps_the_timeline_continuous_and_waits_for_a_keyframe() {
        let mut s = Segmenter::new(Coding::H264);
        feed(&mut s, 0, 30, 25, &SPS);
        s.gap();
        let before = s.timeline.end();
        // Frames 30..49 are P-frames: ignored until the keyframe at 50.
        feed(&mut s, 30, 45, 25, &SPS);
        let seg = s.segments.back().unwrap();
        assert_eq!(
            seg.msn, 2,
            "the gap closed segment 1; the keyframe opened 2"
        );
        assert!(seg.parts.first().unwrap().independent);
        assert_eq!(
            s.timeline.end(),
            before + 25 * 3600,
            "frames 50..74 follow on directly"
        );
    }

    #[test]
    fn nothing_before_the_first_keyframe_and_no_panic_on_garbage() {
        let mut s = Segmenter::new(Coding::H264);
        assert!(!s
            .push(&AccessUnit {
                data: &P,
                dts: 0,
                pts: 0,
                keyframe: false
            })
            .unwrap());
        assert!(s.newest().is_none());
        let junk = [0, 0, 1, 0x67, 0xff];
        assert!(s
            .push(&AccessUnit {
                data: &junk,
                dts: 0,
                pts: 0,
                keyframe: true
            })
            .is_err());
    }
}
