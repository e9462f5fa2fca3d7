//! The decode stage of one camera stream (thread `cam-{id}/decode`): the packet tap's first
//! subscriber and the picture tap's only producer. It runs while the picture tap has subscribers,
//! and for [`DecodeHandle::grace`] after the last one left; a later subscriber gets its first
//! picture fast because the packet tap hands the decoder the cached GOP from its last keyframe.
//! Under backlog every packet is decoded (references!) but only the newest picture is published.
//! JPEG cameras' JPEGs are published undecoded (consumers decode them at the scale they need); the
//! demo camera's pictures are drawn here. Nothing here runs on the async runtime, and nothing here
//! knows the camera beyond the narrow [`DecodeHandle`].

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use camhub_codec::{thread_cpu_time, Decoder, StreamParams};
use camhub_media::jpeg::parse_jpeg_header;
use camhub_media::motion::Pacer;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::composite::{Compositor, Lookup};
use super::geometry::{ReferenceSize, Shaper};
use super::render::render_pattern;
use super::status::{FailureKind, Metrics, Status};
use super::taps::{
    Colour, Delivery, Frame, FrameContent, PacketSubscriber, PacketTap, PictureSubscriber,
    PictureTap,
};
use super::worker::Worker;

/// The decoder's lag limit on the packet tap: a decoder that falls further behind than this skips
/// to the newest keyframe (a freeze, never seconds of lag).
pub const DECODER_MAX_LAG: Duration = Duration::from_secs(1);
/// Longest picture side camhub decodes: an SPS (or a bug) claiming more is refused with a status
/// reason instead of making camhub allocate gigabytes.
pub const MAX_PICTURE_SIDE: u32 = 16384;
/// A decoder that starts with more packets than this to catch up on (the cached GOP) decodes them with
/// two frame threads, where the machine has two cores: the first picture comes about twice as fast.
/// It goes back to the configured threading at the next keyframe once it is live, because frame
/// threads delay every picture by a frame.
pub const CATCH_UP_WITH_THREADS: u64 = 8;
/// Most pixels in one decoded picture (8K UHD is 33 Mpx).
pub const MAX_PICTURE_PIXELS: u64 = 8192 * 8192;

/// One tick of the demo camera: the decode thread draws frame `frame_no`.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Frame number, from 0.
    pub frame_no: u64,
    /// Wall-clock time of the tick, ms since the Unix epoch (drawn as the clock).
    pub unix_ms: u64,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// When it happened.
    pub received: Instant,
}

/// Latest-value hand-off of demo ticks to the decode thread (the demo has no packets).
#[derive(Default)]
pub struct TickSlot {
    slot: Mutex<Option<Tick>>,
    cond: Condvar,
}

impl TickSlot {
    /// Replaces any tick not taken yet.
    pub fn put(&self, tick: Tick) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(tick);
        self.cond.notify_all();
    }

    fn take(&self, timeout: Duration) -> Option<Tick> {
        let mut g = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            g = self
                .cond
                .wait_timeout(g, timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        g.take()
    }
}

/// Everything the decode thread of one stream may touch: its taps, status and counters.
pub struct DecodeHandle {
    /// Camera (or `ID/sub`) id, for thread names and logs.
    pub id: String,
    /// Where packets come from.
    pub packets: Arc<PacketTap>,
    /// Where pictures go.
    pub pictures: Arc<PictureTap>,
    /// Demo ticks (used instead of packets when `demo`).
    pub ticks: TickSlot,
    /// The stream draws a test pattern (or a composite) instead of decoding packets.
    pub demo: bool,
    /// For a `[[composite]]`: its spec and how to find its inputs (it draws from them).
    pub composite: Option<(camhub_config::Composite, Lookup)>,
    /// Status (codec, size, reason).
    pub status: Arc<watch::Sender<Status>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// FFmpeg threads (the camera's `decode_threads`).
    pub decode_threads: usize,
    /// How long decoding goes on after the last picture subscriber left.
    pub grace: Duration,
    /// The camera's transform, applied to every picture before it is published (the identity
    /// costs nothing), and where its reference size is kept.
    pub geometry: Geometry,
    /// The newest picture as the camera sent it, before the transform: kept only while
    /// [`DecodeHandle::want_source`] asked for it recently (the calibration page).
    pub source: Mutex<Option<Arc<Frame>>>,
    /// Until when (ms since the Unix epoch) the untransformed picture is kept.
    source_wanted_until: std::sync::atomic::AtomicU64,
    /// The tokio runtime the camera was built in: a composite wakes its inputs' upstream tasks
    /// from its decode thread.
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    worker: Worker,
}

/// A stream's transform and the size its corners were written for (see [`ReferenceSize`]).
#[derive(Clone, Default)]
pub struct Geometry {
    /// `rotate`, `flip`, `perspective`, `crop` (`transform_size` as its reference).
    pub transform: camhub_media::warp::Transform,
    /// The main stream's first rotated size, shared with its substream.
    pub reference: ReferenceSize,
    /// This is the main stream: its first picture sets the reference.
    pub sets_reference: bool,
}

impl DecodeHandle {
    /// A handle for a stream whose decode thread is not running.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        packets: Arc<PacketTap>,
        pictures: Arc<PictureTap>,
        demo: bool,
        status: Arc<watch::Sender<Status>>,
        metrics: Arc<Metrics>,
        decode_threads: usize,
        grace: Duration,
        geometry: Geometry,
        composite: Option<(camhub_config::Composite, Lookup)>,
    ) -> DecodeHandle {
        DecodeHandle {
            id,
            packets,
            pictures,
            ticks: TickSlot::default(),
            demo: demo || composite.is_some(),
            composite,
            status,
            metrics,
            decode_threads,
            grace,
            geometry,
            // Cameras are built inside the runtime (the hub at start and at reloads).
            runtime: Mutex::new(tokio::runtime::Handle::try_current().ok()),
            source: Mutex::new(None),
            source_wanted_until: std::sync::atomic::AtomicU64::new(0),
            worker: Worker::default(),
        }
    }

    /// Subscribes to the picture tap and makes sure decoding runs.
    pub fn subscribe_pictures(self: &Arc<Self>) -> PictureSubscriber {
        let sub = self.pictures.subscribe();
        self.ensure_running();
        sub
    }

    /// Like [`DecodeHandle::subscribe_pictures`], for a consumer that only analyses pictures
    /// (motion detection), `fps` of them a second (0: all): while all consumers are such, decoding
    /// skips the deblocking filter, and the pictures between the analysed ones that no other
    /// frame refers to.
    pub fn subscribe_pictures_analysing(self: &Arc<Self>, fps: f64) -> PictureSubscriber {
        let sub = self.pictures.subscribe_analysing(fps);
        self.ensure_running();
        sub
    }

    /// Keeps the untransformed picture in [`DecodeHandle::source`] for the next `for_ms`
    /// milliseconds (a camera without a transform publishes it anyway).
    pub fn want_source(&self, for_ms: u64) {
        self.source_wanted_until.store(
            super::unix_ms() + for_ms,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// True while the decode thread runs.
    pub fn is_running(&self) -> bool {
        self.worker.is_running()
    }

    /// Starts the decode thread unless it runs already.
    pub fn ensure_running(self: &Arc<Self>) {
        Worker::ensure(
            self,
            |h| &h.worker,
            format!("cam-{}/decode", self.id),
            &self.id,
            |h| h.pictures.subscribers() > 0,
            |h| Decode::new(h).run(),
        );
    }
}

/// The decode thread's state for one run.
struct Decode<'a> {
    h: &'a DecodeHandle,
    decoder: Option<Decoder>,
    /// Generation of the parameters the decoder was opened with.
    generation: u64,
    /// The codec is JPEG: publish JPEGs without decoding.
    jpeg: bool,
    await_keyframe: bool,
    decode_errors: u64,
    warned_behind: bool,
    /// What a frame costs to decode and how often one comes: the behind-warning's evidence.
    pace: DecodePace,
    /// A size the decoder refused, so it is reported once.
    refused: Option<(u32, u32)>,
    /// The decoder was opened with frame threads to catch up, not because the camera asked for them.
    catching_up: bool,
    /// While only analysers at a rate take pictures: that rate and its schedule.
    pacer: Option<(f64, Pacer)>,
    /// The camera's transform (None without one).
    shaper: Option<Shaper>,
    /// The last transform failure put into the status (reported once).
    shape_error: Option<String>,
    /// A composite's running state (its input subscriptions end with this run).
    compositor: Option<Compositor>,
    /// The receive times of the last packets fed to the decoder, by pts: a picture that comes out
    /// of frame threads (or B-frame reordering) later than its packet is published with its own
    /// packet's times, not those of the packet that happened to complete it.
    fed: std::collections::VecDeque<(i64, Instant, u64)>,
}

/// Packets remembered in [`Decode::fed`]: more than frame threads or reordering ever delay.
const FED_REMEMBERED: usize = 64;

impl<'a> Decode<'a> {
    fn new(h: &'a DecodeHandle) -> Decode<'a> {
        Decode {
            h,
            decoder: None,
            generation: 0,
            jpeg: false,
            await_keyframe: true,
            decode_errors: 0,
            warned_behind: false,
            pace: DecodePace::default(),
            refused: None,
            catching_up: false,
            pacer: None,
            shaper: Shaper::new(
                &h.geometry.transform,
                h.geometry.reference.clone(),
                h.geometry.sets_reference,
            ),
            shape_error: None,
            compositor: h
                .composite
                .as_ref()
                .map(|(spec, lookup)| Compositor::new(spec.clone(), lookup.clone())),
            fed: std::collections::VecDeque::with_capacity(FED_REMEMBERED),
        }
    }

    /// Remembers a packet fed to the decoder (see [`Decode::fed`]).
    fn note_fed(&mut self, pts: i64, received: Instant, unix_ms: u64) {
        if self.fed.len() == FED_REMEMBERED {
            self.fed.pop_front();
        }
        self.fed.push_back((pts, received, unix_ms));
    }

    /// The receive times of the packet with this pts, if it was among the last fed.
    fn fed_times(&self, pts: Option<i64>) -> Option<(Instant, u64)> {
        let pts = pts?;
        self.fed
            .iter()
            .rev()
            .find(|f| f.0 == pts)
            .map(|&(_, received, unix_ms)| (received, unix_ms))
    }

    /// Whether anybody takes the picture of media time `pts` (90 kHz): false only while every
    /// subscriber analyses at a rate and this picture is not on its schedule. The schedule is the
    /// analysers' own ([`Pacer`] on the same timestamps), so they get exactly the pictures they
    /// would have picked, and the ones in between cost no hand-over (and, for frames nothing
    /// refers to, no decode).
    fn wanted(&mut self, pts: i64) -> bool {
        let Some(fps) = self.h.pictures.analysis_fps() else {
            self.pacer = None;
            return true;
        };
        let pacer = match &mut self.pacer {
            Some((rate, pacer)) if *rate == fps => pacer,
            slot => &mut slot.insert((fps, Pacer::new(fps))).1,
        };
        pacer.take(pts.div_euclid(90))
    }

    /// Decodes until nobody has wanted pictures for the grace period, then forgets the last
    /// picture (it stops being the newest the camera shows).
    fn run(&mut self) {
        // (Only a composite has one: it starts its inputs' upstream tasks from here.)
        let runtime = self
            .h
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let _runtime = runtime.as_ref().map(|rt| rt.enter());
        let mut sub = (!self.h.demo).then(|| self.h.packets.subscribe(DECODER_MAX_LAG));
        let started = Instant::now();
        loop {
            // The grace runs from when the last consumer went, whenever that was: consumers that
            // come and go between two packets (pollers) must not look like no consumer at all,
            // or the thread stops and its next start drops everything up to a keyframe.
            let unwatched = self.h.pictures.unwatched_for().min(started.elapsed());
            if self.h.pictures.subscribers() == 0 && unwatched >= self.h.grace {
                break;
            }
            match sub.as_mut() {
                Some(sub) => {
                    if let Some(d) = sub.next_timeout(Duration::from_millis(100)) {
                        self.packet(d, sub);
                    }
                }
                None => {
                    if let Some(tick) = self.h.ticks.take(Duration::from_millis(100)) {
                        self.tick(tick);
                    }
                }
            }
        }
        self.h.pictures.clear();
    }

    fn tick(&mut self, t: Tick) {
        let codec = if self.compositor.is_some() {
            "composite"
        } else {
            "demo"
        };
        self.h.status.send_if_modified(|s| {
            let changed = s.codec.as_deref() != Some(codec);
            s.codec = Some(codec.into());
            changed
        });
        let cpu = thread_cpu_time();
        if let Some(compositor) = self.compositor.as_mut() {
            let made = compositor.render(t.received);
            Metrics::add(&self.h.metrics.decode_ns, cpu_since(cpu));
            match made {
                Ok(Some(pic)) => {
                    let (w, h) = (pic.width(), pic.height());
                    self.publish(
                        FrameContent::Picture(pic),
                        w,
                        h,
                        t.received,
                        t.unix_ms,
                        None,
                    );
                }
                Ok(None) => {}
                Err(e) => self.shape_failed(format!("composite: {e}")),
            }
            return;
        }
        match render_pattern(t.width, t.height, t.frame_no, t.unix_ms, &self.h.id) {
            Ok(pic) => {
                Metrics::add(&self.h.metrics.decode_ns, cpu_since(cpu));
                self.publish(
                    FrameContent::Picture(pic),
                    t.width,
                    t.height,
                    t.received,
                    t.unix_ms,
                    None,
                );
            }
            Err(e) => warn!("cannot draw the test pattern: {e}"),
        }
    }

    fn packet(&mut self, d: Delivery, sub: &PacketSubscriber) {
        let p = d.packet;
        if p.generation != self.generation {
            self.open(p.generation, sub.pending());
        } else if self.catching_up && p.keyframe && sub.pending() <= 2 {
            // Live again: back to the configured threading, at a keyframe where a new decoder can
            // start cleanly.
            self.open(p.generation, 0);
        } else if d.skipped > 0 {
            Metrics::add(&self.h.metrics.frames_dropped, d.skipped);
            if !self.warned_behind && self.decoder.is_some() {
                // Once per run: the fix is the user's (a substream, frame threads, or a less busy
                // machine), and which one depends on what decoding really costs.
                self.warned_behind = true;
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                // Frame threads decode on FFmpeg's threads, out of this thread's CPU time.
                let measured = self.h.decode_threads == 1 && !self.catching_up;
                let pace = if measured {
                    self.pace
                } else {
                    DecodePace::default()
                };
                warn!("{}", pace.behind_warning(load_average(), cores));
            }
        }
        if p.generation != self.generation {
            return; // a packet of a stream that is already gone
        }
        if self.jpeg {
            if !self.wanted(p.pts) {
                return;
            }
            match parse_jpeg_header(&p.data) {
                Ok(info) => self.publish(
                    FrameContent::Jpeg(p.data.clone()),
                    info.width,
                    info.height,
                    p.received,
                    p.unix_ms,
                    Some(p.pts),
                ),
                Err(e) => {
                    debug!("skipping a damaged JPEG from the camera: {e}");
                    Metrics::add(&self.h.metrics.frames_dropped, 1);
                }
            }
            return;
        }
        if self.await_keyframe && !p.keyframe {
            Metrics::add(&self.h.metrics.frames_dropped, 1);
            return;
        }
        self.await_keyframe = false;
        let behind = sub.pending() > 2;
        let wanted = self.wanted(p.pts);
        let Some(decoder) = self.decoder.as_mut() else {
            return;
        };
        decoder.skip_non_reference(behind || !wanted);
        // Only motion detection looks at these pictures: no deblocking (the next viewer's pictures
        // are filtered again at once; their blockiness drifts out by the next keyframe).
        decoder.skip_loop_filter(self.h.pictures.analysis_only());
        let cpu = thread_cpu_time();
        let result = decoder.decode(&p.data, Some(p.pts));
        let spent = cpu_since(cpu);
        Metrics::add(&self.h.metrics.decode_ns, spent);
        self.pace.note(p.pts, spent);
        self.note_fed(p.pts, p.received, p.unix_ms);
        match result {
            Ok(pictures) => {
                let n = pictures.len();
                for (i, pic) in pictures.into_iter().enumerate() {
                    let (w, h) = (pic.width(), pic.height());
                    if !self.size_ok(w, h) {
                        continue;
                    }
                    // Under backlog (replaying the cached GOP included) decode everything but
                    // publish only the newest picture.
                    if i + 1 < n || behind {
                        Metrics::add(&self.h.metrics.frames_dropped, 1);
                        continue;
                    }
                    if !wanted {
                        continue; // not on the analysers' schedule: nobody takes it
                    }
                    let colour = Some(Colour {
                        full_range: pic.is_full_range(),
                        matrix: pic.matrix(),
                    });
                    self.h.packets.note_picture(self.generation, (w, h), colour);
                    // The picture's own packet: with frame threads it is an earlier one.
                    let pts = pic.pts().unwrap_or(p.pts);
                    let (received, unix_ms) =
                        self.fed_times(Some(pts)).unwrap_or((p.received, p.unix_ms));
                    self.publish(
                        FrameContent::Picture(pic),
                        w,
                        h,
                        received,
                        unix_ms,
                        Some(pts),
                    );
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

    /// A picture the transform could not handle: dropped, and the reason shown once.
    fn shape_failed(&mut self, e: String) {
        Metrics::add(&self.h.metrics.frames_dropped, 1);
        if self.shape_error.as_ref() == Some(&e) {
            return;
        }
        let reason = format!("cannot transform the camera's picture: {e}");
        warn!("{reason}");
        self.shape_error = Some(e);
        self.h.status.send_modify(|s| {
            s.last_error = Some(reason);
            s.error_kind = Some(FailureKind::UnsupportedCodec);
        });
    }

    /// False (and reported once as the status reason) for a picture too large to handle.
    fn size_ok(&mut self, w: u32, h: u32) -> bool {
        if w <= MAX_PICTURE_SIDE
            && h <= MAX_PICTURE_SIDE
            && u64::from(w) * u64::from(h) <= MAX_PICTURE_PIXELS
        {
            return true;
        }
        if self.refused != Some((w, h)) {
            self.refused = Some((w, h));
            let reason = format!(
                "the camera sends {w}x{h} pictures, more than camhub handles ({MAX_PICTURE_SIDE} per side, {} Mpx); choose a smaller stream",
                MAX_PICTURE_PIXELS / 1_000_000
            );
            warn!("{reason}");
            self.h.status.send_modify(|s| {
                s.last_error = Some(reason);
                s.error_kind = Some(FailureKind::UnsupportedCodec);
            });
        }
        Metrics::add(&self.h.metrics.frames_dropped, 1);
        false
    }

    /// Opens the decoder for the tap's current parameters, with frame threads for a `backlog` worth it.
    fn open(&mut self, generation: u64, backlog: u64) {
        self.decoder = None;
        self.catching_up = false;
        self.jpeg = false;
        self.await_keyframe = true;
        self.warned_behind = false;
        let Some(params) = self.h.packets.params() else {
            return;
        };
        if params.generation != generation {
            return; // parameters moved on already; the packets of the new ones will follow
        }
        self.generation = generation;
        if matches!(
            params.decoder,
            StreamParams::Codec {
                codec: camhub_codec::Codec::Mjpeg,
                ..
            }
        ) {
            self.jpeg = true;
            return;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if self.h.decode_threads == 1 && backlog > CATCH_UP_WITH_THREADS && cores >= 2
        {
            self.catching_up = true;
            2
        } else {
            self.h.decode_threads
        };
        match Decoder::new(&params.decoder, threads) {
            Ok(d) => self.decoder = Some(d),
            Err(e) => {
                let reason = format!("cannot decode {}: {e}", params.codec);
                warn!("{reason}");
                self.h.status.send_modify(|s| {
                    s.last_error = Some(reason);
                    s.error_kind = Some(FailureKind::UnsupportedCodec);
                });
            }
        }
    }

    fn publish(
        &mut self,
        content: FrameContent,
        width: u32,
        height: u32,
        received: Instant,
        unix_ms: u64,
        pts: Option<i64>,
    ) {
        let (content, width, height) = match self.shaper.as_mut() {
            None => (content, width, height),
            Some(shaper) => {
                let cpu = thread_cpu_time();
                let shaped = match &content {
                    FrameContent::Picture(p) => shaper.picture(p),
                    FrameContent::Jpeg(j) => shaper.jpeg(j),
                };
                Metrics::add(&self.h.metrics.transform_ns, cpu_since(cpu));
                let wanted_until = self
                    .h
                    .source_wanted_until
                    .load(std::sync::atomic::Ordering::Relaxed);
                if unix_ms < wanted_until {
                    // Never published: not numbered.
                    let source = Frame::new(received, unix_ms, pts, (width, height), content);
                    *self.h.source.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(Arc::new(source));
                }
                match shaped {
                    Ok(p) => {
                        let (w, h) = (p.width(), p.height());
                        (FrameContent::Picture(p), w, h)
                    }
                    Err(e) => {
                        self.shape_failed(e);
                        return;
                    }
                }
            }
        };
        self.h.status.send_if_modified(|s| {
            let changed = s.width != Some(width) || s.height != Some(height);
            if changed && s.width.is_some() {
                debug!("resolution changed to {width}x{height}");
            }
            s.width = Some(width);
            s.height = Some(height);
            changed
        });
        let frame = Frame {
            seq: self.h.pictures.next_seq(),
            ..Frame::new(received, unix_ms, pts, (width, height), content)
        };
        self.h.pictures.publish(Arc::new(frame));
    }
}

/// A decode thread's running averages: CPU per decoded packet and the camera's frame interval.
/// Skipping means the thread fell a second behind; these say whether decoding is too slow for
/// the camera (a substream or frame threads help) or the thread was kept from running by a
/// busy machine (they would not).
#[derive(Debug, Default, Clone, Copy)]
struct DecodePace {
    /// Mean CPU ns per decoded packet (exponential, about the last 32).
    cpu_ns: Option<f64>,
    /// Mean interval between packets in 90 kHz ticks (same averaging).
    interval: Option<f64>,
    last_pts: Option<i64>,
}

impl DecodePace {
    /// Weight of the newest sample in the averages.
    const WEIGHT: f64 = 1.0 / 32.0;
    /// Decoding that takes less than this share of the frame interval keeps up by itself.
    const FAST_SHARE: f64 = 0.6;

    fn note(&mut self, pts: i64, cpu_ns: u64) {
        let avg = |old: Option<f64>, x: f64| Some(old.map_or(x, |o| o + (x - o) * Self::WEIGHT));
        self.cpu_ns = avg(self.cpu_ns, cpu_ns as f64);
        if let Some(last) = self.last_pts {
            let d = pts.saturating_sub(last);
            // Only plausible frame spacings: not reordering, a jump or a camera's clock reset.
            if d > 0 && d <= 90_000 {
                self.interval = avg(self.interval, d as f64);
            }
        }
        self.last_pts = Some(pts);
    }

    /// The warning for a decode thread that fell behind, given the machine's one-minute load
    /// average and its cores. Without measurements, the advice for a slow decoder.
    fn behind_warning(&self, load: Option<f64>, cores: usize) -> String {
        let (Some(cpu_ns), Some(interval)) = (self.cpu_ns, self.interval) else {
            return "decoding cannot keep up with this camera: skipping to the next keyframe to stay live \
                    (set decode_threads = 2 or more for it, or serve small sizes from a substream_url)"
                .into();
        };
        let cost_ms = cpu_ns / 1e6;
        let every_ms = interval / 90.0;
        let load = load.map_or(String::new(), |l| format!("load average {l:.1} on "));
        if cost_ms < every_ms * Self::FAST_SHARE {
            format!(
                "the decoder of this camera fell behind although decoding takes only {cost_ms:.1} ms \
                 of each {every_ms:.0} ms frame: the machine is short of CPU ({load}{cores} cores); \
                 skipping to the next keyframe to stay live (other programs or cameras take the CPU, \
                 not this decoder)"
            )
        } else {
            format!(
                "decoding cannot keep up with this camera ({cost_ms:.1} ms of CPU per frame, a frame \
                 every {every_ms:.0} ms; {load}{cores} cores): skipping to the next keyframe to stay \
                 live (set decode_threads = 2 or more for it, or serve small sizes from a substream_url)"
            )
        }
    }
}

/// The one-minute load average, where /proc has it.
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Nanoseconds of this thread's CPU time since `start` (a [`thread_cpu_time`] reading).
pub fn cpu_since(start: Duration) -> u64 {
    thread_cpu_time().saturating_sub(start).as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(cost_ms: f64, fps: u32) -> DecodePace {
        let mut p = DecodePace::default();
        for i in 0..100 {
            p.note(i * i64::from(90_000 / fps), (cost_ms * 1e6) as u64);
        }
        p
    }

    #[test]
    fn a_fast_decoder_that_fell_behind_blames_the_busy_machine() {
        let w = pace(3.0, 25).behind_warning(Some(5.2), 2);
        assert!(w.contains("short of CPU"), "{w}");
        assert!(w.contains("3.0 ms of each 40 ms frame"), "{w}");
        assert!(w.contains("load average 5.2 on 2 cores"), "{w}");
        assert!(!w.contains("decode_threads"), "{w}");
    }

    #[test]
    fn a_slow_decoder_gets_the_substream_and_thread_advice() {
        let w = pace(38.0, 25).behind_warning(None, 4);
        assert!(w.starts_with("decoding cannot keep up"), "{w}");
        assert!(
            w.contains("38.0 ms of CPU per frame, a frame every 40 ms; 4 cores"),
            "{w}"
        );
        assert!(
            w.contains("decode_threads = 2") && w.contains("substream_url"),
            "{w}"
        );
    }

    #[test]
    fn without_measurements_the_advice_is_the_slow_decoder_one() {
        let w = DecodePace::default().behind_warning(Some(1.0), 2);
        assert!(w.starts_with("decoding cannot keep up"), "{w}");
        // One packet: a cost but no interval yet.
        let mut p = DecodePace::default();
        p.note(0, 1_000_000);
        assert!(p
            .behind_warning(None, 2)
            .starts_with("decoding cannot keep up"));
    }

    #[test]
    fn implausible_pts_steps_do_not_move_the_interval() {
        let mut p = pace(1.0, 25);
        p.note(100 * 3600 + 10 * 90_000, 1_000_000); // a 10 s jump
        p.note(0, 1_000_000); // backwards
        let every = p.interval.map(|i| i / 90.0);
        assert!(every.is_some_and(|e| (e - 40.0).abs() < 0.01), "{every:?}");
    }
}
