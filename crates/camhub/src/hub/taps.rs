//! The two taps of one camera stream; every output is a consumer of one of them.
//!
//! - [`PacketTap`]: the camera's encoded access units (Annex B H.264/H.265, or whole JPEGs) in a
//!   bounded, GOP-aware ring ([`camhub_media::ring::PacketRing`]: at most [`PACKET_RING_LIMITS`]
//!   `max_bytes`, `max_span_us` and, before the current GOP, `history_us`), plus the current
//!   [`TapParams`]. A new subscriber starts at the last keyframe at once; each has its own lag limit
//!   and is moved to the newest keyframe when it passes it, and told how many packets it skipped.
//!   Subscribing never causes a decode. The decoder is its first subscriber.
//! - [`PictureTap`]: the newest decoded picture ([`Frame`]), latest-value. Decoding runs while it has
//!   subscribers (and a short grace after the last one leaves). The JPEG variant encoder is its first
//!   subscriber.
//!
//! Both are plain shared state (a mutex, a condvar for threads, a watch channel for tasks): producers
//! never wait for consumers, and a consumer's speed never changes what the producer keeps.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use camhub_codec::{ColourMatrix, Picture, StreamParams};
use camhub_media::annexb::{nal_units, Coding};
use camhub_media::ring::{Cursor, PacketRing, Read, RingLimits};
use tokio::sync::watch;

/// The packet ring's bounds: 16 MiB, 30 s span, 2 s of history before the current GOP.
pub const PACKET_RING_LIMITS: RingLimits = RingLimits {
    max_bytes: 16 << 20,
    max_span_us: 30_000_000,
    history_us: 2_000_000,
};

/// One encoded access unit from the camera.
#[derive(Debug)]
pub struct Packet {
    /// Annex B bytes with in-band parameter sets on keyframes (H.264/H.265), a whole JPEG (MJPEG), or
    /// what libavformat produced for other `ffmpeg:` codecs.
    pub data: Bytes,
    /// A keyframe (IDR / random access point; every JPEG is one).
    pub keyframe: bool,
    /// Presentation time, 90 kHz ([`camhub_media::timestamp`]).
    pub pts: i64,
    /// Decode time, 90 kHz (equal to `pts` where the source does not say: RTP carries no dts).
    pub dts: i64,
    /// When camhub received it (monotonic; for latency and age).
    pub received: Instant,
    /// When camhub received it, ms since the Unix epoch.
    pub unix_ms: u64,
    /// The [`TapParams::generation`] of the parameters this packet belongs to.
    pub generation: u64,
}

/// What a consumer needs to start on a stream: what a decoder opens with, and what a muxer writes
/// into its init segment. Replaced (with a new `generation`) when the camera reconnects or the
/// stream's parameters change.
#[derive(Debug, Clone)]
pub struct TapParams {
    /// Increases with every change; packets carry the generation they belong to.
    pub generation: u64,
    /// How to open a decoder.
    pub decoder: StreamParams,
    /// Codec name as the API shows it (`h264`, `h265`, `mjpeg`, …).
    pub codec: String,
    /// The newest parameter sets seen in-band (H.264: SPS, PPS; H.265: VPS, SPS, PPS), each one NAL
    /// unit without start code. Empty for JPEG.
    pub parameter_sets: Vec<Bytes>,
    /// Picture size once known (from the decoder or the JPEG header).
    pub size: Option<(u32, u32)>,
    /// Colour description once known (from the decoder).
    pub colour: Option<Colour>,
}

/// How a stream's samples are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour {
    /// Full (0–255) rather than limited (16–235) range.
    pub full_range: bool,
    /// The YCbCr matrix (BT.601 when the stream signals none, as FFmpeg reads it).
    pub matrix: ColourMatrix,
}

/// A camera stream's packet tap. See the module docs.
pub struct PacketTap {
    inner: Mutex<PacketInner>,
    /// Wakes subscribers on threads.
    cond: Condvar,
    /// The ring's end index, for subscribers in async tasks.
    end_tx: watch::Sender<u64>,
    epoch: Instant,
    /// Live subscribers (a transcoder runs while its tap has any).
    subscribers: AtomicUsize,
}

struct PacketInner {
    ring: PacketRing<Arc<Packet>>,
    params: Option<TapParams>,
    generation: u64,
}

impl Default for PacketTap {
    fn default() -> Self {
        Self::new(PACKET_RING_LIMITS)
    }
}

impl PacketTap {
    /// An empty tap with these ring bounds.
    pub fn new(limits: RingLimits) -> PacketTap {
        PacketTap {
            inner: Mutex::new(PacketInner {
                ring: PacketRing::new(limits),
                params: None,
                generation: 0,
            }),
            cond: Condvar::new(),
            end_tx: watch::Sender::new(0),
            epoch: Instant::now(),
            subscribers: AtomicUsize::new(0),
        }
    }

    /// Live subscribers.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, PacketInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a new stream (a new connection): forgets every packet of the old one, so no consumer
    /// ever gets a GOP from before, and installs `decoder` as the new parameters. Returns their
    /// generation.
    pub fn start(&self, decoder: StreamParams) -> u64 {
        let mut g = self.lock();
        g.ring.clear();
        g.generation += 1;
        let codec = decoder.codec_name();
        g.params = Some(TapParams {
            generation: g.generation,
            decoder,
            codec,
            parameter_sets: Vec::new(),
            size: None,
            colour: None,
        });
        g.generation
    }

    /// Ends the stream (the connection closed): the cached GOP goes.
    pub fn stop(&self) {
        let mut g = self.lock();
        g.ring.clear();
        g.params = None;
        drop(g);
        self.wake();
    }

    /// The current parameters, if a stream is on.
    pub fn params(&self) -> Option<TapParams> {
        self.lock().params.clone()
    }

    /// Records the picture size and colour the decoder found (once per change).
    pub fn note_picture(&self, generation: u64, size: (u32, u32), colour: Option<Colour>) {
        let mut g = self.lock();
        if let Some(p) = g.params.as_mut().filter(|p| p.generation == generation) {
            p.size = Some(size);
            if colour.is_some() {
                p.colour = colour;
            }
        }
    }

    /// Adds a packet of the current stream. `pts`/`dts` are 90 kHz. Returns the packet's generation,
    /// or None if no stream is on (a packet before [`PacketTap::start`]).
    pub fn push(
        &self,
        data: Bytes,
        keyframe: bool,
        pts: i64,
        dts: i64,
        received: Instant,
        unix_ms: u64,
    ) -> Option<u64> {
        let mut g = self.lock();
        let generation = g.params.as_ref()?.generation;
        if keyframe {
            let sets = parameter_sets(&data, &g.params.as_ref()?.codec);
            if let Some(p) = g.params.as_mut().filter(|_| !sets.is_empty()) {
                p.parameter_sets = sets;
            }
        }
        let len = data.len();
        let packet = Arc::new(Packet {
            data,
            keyframe,
            pts,
            dts,
            received,
            unix_ms,
            generation,
        });
        let at = received.saturating_duration_since(self.epoch).as_micros() as u64;
        g.ring.push(packet, len, keyframe, at);
        let end = g.ring.end();
        drop(g);
        self.cond.notify_all();
        self.end_tx.send_replace(end);
        Some(generation)
    }

    /// Bytes and packets held (for `/metrics`).
    pub fn held(&self) -> (usize, usize) {
        let g = self.lock();
        (g.ring.bytes(), g.ring.len())
    }

    fn wake(&self) {
        self.cond.notify_all();
        let end = self.lock().ring.end();
        self.end_tx.send_replace(end);
    }

    /// A new subscriber with lag limit `max_lag`: it starts at the last keyframe held (the cached
    /// GOP), or waits for the next keyframe.
    pub fn subscribe(self: &Arc<Self>, max_lag: Duration) -> PacketSubscriber {
        let cursor = self.lock().ring.cursor();
        self.subscribers.fetch_add(1, Ordering::SeqCst);
        PacketSubscriber {
            tap: self.clone(),
            cursor,
            max_lag_us: max_lag.as_micros() as u64,
            end_rx: self.end_tx.subscribe(),
        }
    }
}

/// One consumer's position in a [`PacketTap`].
pub struct PacketSubscriber {
    tap: Arc<PacketTap>,
    cursor: Cursor,
    max_lag_us: u64,
    end_rx: watch::Receiver<u64>,
}

/// A packet for one subscriber, and how many packets it skipped before this one.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The packet (shared with every other subscriber).
    pub packet: Arc<Packet>,
    /// Packets this subscriber skipped since the previous delivery (it lagged, or joined without a
    /// keyframe at hand, or the stream restarted).
    pub skipped: u64,
}

impl PacketSubscriber {
    /// The next packet if one is waiting.
    pub fn try_next(&mut self) -> Option<Delivery> {
        let g = self.tap.lock();
        read(&g.ring, &mut self.cursor, self.max_lag_us)
    }

    /// The next packet, waiting up to `timeout` on this thread (for decode threads).
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Delivery> {
        let mut g = self.tap.lock();
        if let Some(d) = read(&g.ring, &mut self.cursor, self.max_lag_us) {
            return Some(d);
        }
        g = self
            .tap
            .cond
            .wait_timeout(g, timeout)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        read(&g.ring, &mut self.cursor, self.max_lag_us)
    }

    /// The next packet, waiting in an async task. Cancel-safe.
    pub async fn next(&mut self) -> Delivery {
        loop {
            self.end_rx.borrow_and_update();
            if let Some(d) = self.try_next() {
                return d;
            }
            if self.end_rx.changed().await.is_err() {
                // The tap is part of its camera and lives as long as this subscriber's Arc: the
                // sender cannot go away first. Wait forever rather than spin.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Packets held that this subscriber has not read yet.
    pub fn pending(&self) -> u64 {
        self.tap.lock().ring.pending(&self.cursor)
    }

    /// The tap's current parameters.
    pub fn params(&self) -> Option<TapParams> {
        self.tap.params()
    }
}

impl Drop for PacketSubscriber {
    fn drop(&mut self) {
        self.tap.subscribers.fetch_sub(1, Ordering::SeqCst);
    }
}

fn read(ring: &PacketRing<Arc<Packet>>, cursor: &mut Cursor, lag: u64) -> Option<Delivery> {
    match ring.read(cursor, lag) {
        Read::Packet { item, skipped } => Some(Delivery {
            packet: item.clone(),
            skipped,
        }),
        Read::Empty => None,
    }
}

/// The parameter-set NAL units (without start codes) of an Annex B keyframe. They precede its first
/// slice, so the scan stops there: a keyframe of hundreds of kilobytes costs a few header bytes.
pub fn parameter_sets(data: &[u8], codec: &str) -> Vec<Bytes> {
    let Some(coding) = Coding::from_name(codec) else {
        return Vec::new();
    };
    nal_units(data)
        .take_while(|nal| !coding.is_slice(nal))
        .filter(|nal| coding.is_parameter_set(nal))
        .map(Bytes::copy_from_slice)
        .collect()
}

/// One picture of a camera, as the picture tap publishes it.
#[derive(Debug)]
pub struct Frame {
    /// Sequence number per camera, increasing by one per published picture.
    pub seq: u64,
    /// When camhub received the packet it was decoded from.
    pub received: Instant,
    /// The same, ms since the Unix epoch.
    pub unix_ms: u64,
    /// The source's presentation time (90 kHz), if it has one.
    pub pts: Option<i64>,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// The pixels.
    pub content: FrameContent,
}

impl Frame {
    /// A picture received at `received` (`unix_ms`), of `size`, not yet numbered (`seq` 0).
    pub fn new(
        received: Instant,
        unix_ms: u64,
        pts: Option<i64>,
        (width, height): (u32, u32),
        content: FrameContent,
    ) -> Frame {
        Frame {
            seq: 0,
            received,
            unix_ms,
            pts,
            width,
            height,
            content,
        }
    }
}

/// A picture's pixels.
#[derive(Debug)]
pub enum FrameContent {
    /// Decoded planar YUV (4:2:0 or 4:2:2; range and matrix on the picture).
    Picture(Picture),
    /// A JPEG camera's own JPEG, not decoded: libjpeg-turbo decodes it at 1/2, 1/4 or 1/8 scale far
    /// cheaper than in full, so each consumer decodes it at the size it needs (and the variant
    /// encoder passes it through untouched at native size).
    Jpeg(Bytes),
}

/// A camera stream's picture tap. See the module docs.
pub struct PictureTap {
    latest: Mutex<Option<Arc<Frame>>>,
    cond: Condvar,
    seq: AtomicU64,
    subscribers: AtomicUsize,
    /// Subscribers that only analyse pictures (motion detection), never show them.
    analysing: AtomicUsize,
    /// The rate each analysing subscriber takes pictures at (0 = every picture).
    analysis_rates: Mutex<Vec<f64>>,
    epoch: Instant,
    /// ms since `epoch` when the last subscriber went (see [`PictureTap::unwatched_for`]).
    left_ms: AtomicU64,
}

impl Default for PictureTap {
    fn default() -> Self {
        PictureTap {
            latest: Mutex::new(None),
            cond: Condvar::new(),
            seq: AtomicU64::new(0),
            subscribers: AtomicUsize::new(0),
            analysing: AtomicUsize::new(0),
            analysis_rates: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            left_ms: AtomicU64::new(0),
        }
    }
}

impl PictureTap {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<Frame>>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next sequence number (for the producer).
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sequence number of the newest picture published.
    pub fn latest_seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// Publishes a picture; it replaces the previous one.
    pub fn publish(&self, frame: Arc<Frame>) {
        *self.lock() = Some(frame);
        self.cond.notify_all();
    }

    /// The newest picture, without subscribing.
    pub fn peek(&self) -> Option<Arc<Frame>> {
        self.lock().clone()
    }

    /// Waits up to `timeout` for a picture newer than `seq` and returns it (None on timeout). For
    /// readers that share one position between threads (a library handle), where a
    /// [`PictureSubscriber`]'s own position would not do.
    pub fn wait_after(&self, seq: u64, timeout: Duration) -> Option<Arc<Frame>> {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            if let Some(f) = g.as_ref().filter(|f| f.seq > seq) {
                return Some(f.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            g = self
                .cond
                .wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Forgets the newest picture: it is no longer the newest the camera shows (decoding stopped,
    /// or the connection closed), so nobody may be handed it as such.
    pub fn clear(&self) {
        *self.lock() = None;
    }

    /// Wakes every waiting subscriber (e.g. the set of consumers changed).
    pub fn wake(&self) {
        let _g = self.lock();
        self.cond.notify_all();
    }

    /// Live subscribers.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::SeqCst)
    }

    /// How long the tap has had no subscriber: zero while it has one, else the time since the last
    /// one went (since the tap was made if none ever came). Short-lived subscribers (a `frame.raw`
    /// poller holds one for a request, a few times a second) keep it low even if the decode thread
    /// never happens to look while one is there.
    pub fn unwatched_for(&self) -> Duration {
        if self.subscribers() > 0 {
            return Duration::ZERO;
        }
        let left = self.left_ms.load(Ordering::SeqCst);
        Duration::from_millis((self.epoch.elapsed().as_millis() as u64).saturating_sub(left))
    }

    /// True while every subscriber only analyses pictures (nobody will see them): the decoder
    /// may then cut corners that only the eye would notice.
    pub fn analysis_only(&self) -> bool {
        let all = self.subscribers.load(Ordering::SeqCst);
        all > 0 && self.analysing.load(Ordering::SeqCst) >= all
    }

    /// While every subscriber only analyses pictures and each takes them at a rate below the
    /// stream's: the fastest of those rates (pictures a second). The decoder then needs to hand
    /// out only pictures on that schedule ([`camhub_media::motion::Pacer`]), and need not decode
    /// the frames nothing refers to in between. None when some subscriber wants every picture.
    pub fn analysis_fps(&self) -> Option<f64> {
        if !self.analysis_only() {
            return None;
        }
        let rates = self
            .analysis_rates
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if rates.is_empty() || rates.iter().any(|&r| r <= 0.0) {
            return None;
        }
        rates.iter().copied().reduce(f64::max)
    }

    /// A new subscriber. Callers normally go through the camera, which also starts decoding.
    pub fn subscribe(self: &Arc<Self>) -> PictureSubscriber {
        self.subscribers.fetch_add(1, Ordering::SeqCst);
        PictureSubscriber {
            tap: self.clone(),
            last_seq: 0,
            analysing: None,
        }
    }

    /// A new subscriber that only analyses the pictures (see [`PictureTap::analysis_only`]),
    /// `fps` of them a second in media time (0: every picture; see [`PictureTap::analysis_fps`]).
    pub fn subscribe_analysing(self: &Arc<Self>, fps: f64) -> PictureSubscriber {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            0.0
        };
        self.analysis_rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fps);
        self.analysing.fetch_add(1, Ordering::SeqCst);
        let mut sub = self.subscribe();
        sub.analysing = Some(fps);
        sub
    }
}

/// One consumer of a [`PictureTap`]. Dropping it unsubscribes.
pub struct PictureSubscriber {
    tap: Arc<PictureTap>,
    last_seq: u64,
    /// The rate of an analysing subscriber (see [`PictureTap::subscribe_analysing`]).
    analysing: Option<f64>,
}

impl PictureSubscriber {
    /// The newest picture, if any, whether or not it was seen before; marks it seen.
    pub fn latest(&mut self) -> Option<Arc<Frame>> {
        let f = self.tap.lock().clone()?;
        self.last_seq = self.last_seq.max(f.seq);
        Some(f)
    }

    /// Waits up to `timeout` for a picture newer than the last one this subscriber saw (or until
    /// [`PictureTap::wake`]); returns it, or None.
    pub fn wait_newer(&mut self, timeout: Duration) -> Option<Arc<Frame>> {
        let mut g = self.tap.lock();
        let newer = |g: &Option<Arc<Frame>>, last| g.as_ref().filter(|f| f.seq > last).cloned();
        if let Some(f) = newer(&g, self.last_seq) {
            self.last_seq = f.seq;
            return Some(f);
        }
        g = self
            .tap
            .cond
            .wait_timeout(g, timeout)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        let f = newer(&g, self.last_seq)?;
        self.last_seq = f.seq;
        Some(f)
    }
}

impl Drop for PictureSubscriber {
    fn drop(&mut self) {
        if let Some(fps) = self.analysing {
            let mut rates = self
                .tap
                .analysis_rates
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(i) = rates.iter().position(|&r| r == fps) {
                rates.swap_remove(i);
            }
            drop(rates);
            self.tap.analysing.fetch_sub(1, Ordering::SeqCst);
        }
        let now = self.tap.epoch.elapsed().as_millis() as u64;
        self.tap.left_ms.store(now, Ordering::SeqCst);
        self.tap.subscribers.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camhub_codec::Codec;

    fn h264() -> StreamParams {
        StreamParams::Codec {
            codec: Codec::H264,
            extradata: None,
        }
    }

    #[test]
    fn parameter_sets_are_taken_from_keyframes() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x68, 4, 5, 0, 0, 1, 0x65, 9, 9,
        ];
        let sets = parameter_sets(&au, "h264");
        assert_eq!(
            sets,
            vec![
                Bytes::from_static(&[0x67, 1, 2, 3]),
                Bytes::from_static(&[0x68, 4, 5])
            ]
        );
        let tap = PacketTap::default();
        tap.start(h264());
        let now = Instant::now();
        tap.push(Bytes::copy_from_slice(&au), true, 0, 0, now, 0);
        assert_eq!(tap.params().map(|p| p.parameter_sets.len()), Some(2));
    }

    #[test]
    fn a_new_connection_never_hands_out_the_old_gop() {
        let tap = Arc::new(PacketTap::default());
        let g1 = tap.start(h264());
        let now = Instant::now();
        tap.push(Bytes::from_static(b"k"), true, 0, 0, now, 0);
        let mut old = tap.subscribe(Duration::from_secs(1));
        let g2 = tap.start(h264());
        assert!(g2 > g1);
        assert!(tap.subscribe(Duration::from_secs(1)).try_next().is_none());
        tap.push(Bytes::from_static(b"p"), false, 1, 1, now, 0);
        tap.push(Bytes::from_static(b"K"), true, 2, 2, now, 0);
        let d = old.try_next().expect("the new keyframe");
        assert_eq!((d.packet.generation, &d.packet.data[..]), (g2, &b"K"[..]));
        assert_eq!(d.skipped, 2, "the old keyframe and the new P-frame");
    }

    #[test]
    fn subscribers_wait_on_threads_and_in_tasks() {
        let tap = Arc::new(PacketTap::default());
        tap.start(h264());
        let mut a = tap.subscribe(Duration::from_secs(1));
        let t = tap.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            t.push(Bytes::from_static(b"k"), true, 0, 0, Instant::now(), 0);
        });
        assert!(a.next_timeout(Duration::from_secs(5)).is_some());
        h.join().expect("pusher");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let mut b = tap.subscribe(Duration::from_secs(1));
        rt.block_on(async {
            // The cached keyframe at once.
            assert_eq!(&b.next().await.packet.data[..], b"k");
        });
    }
}
