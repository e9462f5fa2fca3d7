//! [`Camera`]: one configured camera and its upstream lifecycle. The upstream connection is opened
//! when the first consumer arrives and closed when no consumer has taken a frame for
//! `idle_timeout` (consumers that are waiting for the next frame count as taking); `always_on`
//! keeps it up. A failed or silent connection (the watchdog: no frame for `watchdog`) is retried
//! forever with capped exponential back-off and jitter while anyone still wants the camera. All of
//! it runs in one tokio task per camera, which only moves bytes; pixels are handled on the
//! camera's threads: the decode stage ([`super::pipeline`]) between the two taps ([`super::taps`]) and
//! the JPEG variant encoder ([`super::encode`]), each running only while it has consumers.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use camhub_config::{Camera as CameraConfig, SourceKind, SourceSpec};
use camhub_media::annexb::Coding;
use camhub_media::backoff::Backoff;
use tokio::sync::watch;
use tracing::{debug, info, warn, Instrument};

use super::composite::Lookup;
use super::encode::EncodeHandle;
use super::geometry::Shaper;
use super::motion::MotionHandle;
use super::pipeline::{DecodeHandle, Geometry, Tick};
use super::status::{FailureKind, Metrics, State, Status};
use super::taps::{FrameContent, PacketSubscriber, PacketTap, PictureSubscriber, PictureTap};
use super::transcode::TranscodeHandle;
use super::variants::{JpegFrame, VariantKey, Variants};
use crate::error::{Error, ErrorKind};
use crate::source::{OpenOptions, Source, SourceEvent, SourceOpener};
use camhub_codec::{Codec, StreamParams};

/// First retry delay after a failure.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Longest retry delay (before jitter).
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a stream must stay up before a later failure counts as a new problem (the back-off
/// starts again from [`BACKOFF_INITIAL`]): a camera that drops every few seconds keeps backing off.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How long decoding goes on after the last picture consumer left (capped by `idle_timeout`): a
/// snapshot poller coming back every second or two finds pictures at once; a later one gets the
/// cached GOP decoded.
pub const DECODE_GRACE: Duration = Duration::from_secs(3);

/// One camera: config, status, variants, counters, and the on-demand upstream.
pub struct Camera {
    /// The camera's configuration.
    pub config: CameraConfig,
    /// JPEG variants and their latest frames.
    pub variants: Arc<Variants>,
    /// Current status; subscribers are told of every change.
    pub status: Arc<watch::Sender<Status>>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The packet tap: the camera's encoded access units.
    pub packets: Arc<PacketTap>,
    /// The decode stage and the picture tap it feeds.
    pub decode: Arc<DecodeHandle>,
    /// Raw pixels for programs (`frame.raw`, `/frames`, [`crate::frames`]), one conversion per
    /// picture and (size, format).
    pub raw: Arc<super::raw::RawSizes>,
    /// The JPEG variant encoder (the picture tap's first consumer).
    encode: Arc<EncodeHandle>,
    /// How connections are opened (real sources; tests may script one).
    opener: SourceOpener,
    epoch: Instant,
    /// Milliseconds since `epoch` when a consumer last took a frame (or arrived).
    last_taken_ms: AtomicU64,
    /// Milliseconds since `epoch` when the newest frame arrived from the camera (0 = none yet).
    last_frame_ms: AtomicU64,
    /// Consumers currently waiting for the next frame.
    waiting: AtomicUsize,
    /// Live subscriptions (viewers).
    viewers: AtomicUsize,
    /// Subscriptions admitted through [`Camera::subscribe`] (the substream's included), against
    /// `max_viewers`.
    admitted: AtomicUsize,
    /// `[server] max_viewers_per_camera` (unlimited until [`Camera::set_max_viewers`]).
    max_viewers: AtomicUsize,
    running: AtomicBool,
    /// Set at shutdown: nothing demands the camera any more, so its connection closes (and an RTSP
    /// session is torn down).
    stopping: AtomicBool,
    /// Bytes each live viewer has been handed but not yet accepted (for `/metrics`).
    queues: Mutex<Vec<Weak<ViewerBytes>>>,
    /// The failure last logged as a warning (repeats of it are logged at debug level).
    logged_error: Mutex<Option<String>>,
    /// Placeholder JPEGs made for this camera (size, text lines → JPEG), shared by all its viewers;
    /// at most [`PLACEHOLDERS_KEPT`].
    placeholders: Mutex<Vec<Placeholder>>,
    /// Motion detection (a picture-tap consumer of the substream, if any, else of this stream).
    pub motion: Arc<MotionHandle>,
    /// The shared H.264 encode of `transcode = "h264"` (None without it).
    pub transcode: Option<Arc<TranscodeHandle>>,
    /// The camera's substream (`substream_url`), a camera of its own with the same lifecycle rules:
    /// small variants are made from it, so a grid decodes small streams, not full ones.
    pub substream: Option<Arc<Camera>>,
    /// The RTSP and WebRTC client sessions of this stream, for the API.
    pub sessions: super::outputs::Sessions,
}

impl Camera {
    /// A camera in the idle state, connecting through the real sources.
    pub fn new(config: CameraConfig, max_variants: usize) -> Arc<Camera> {
        Camera::with_opener(config, max_variants, SourceOpener::default())
    }

    /// A camera in the idle state whose connections `opener` makes.
    pub fn with_opener(
        config: CameraConfig,
        max_variants: usize,
        opener: SourceOpener,
    ) -> Arc<Camera> {
        Camera::build(config, max_variants, opener, None, None)
    }

    /// A camera that may be a `[[composite]]`: `lookup` finds its inputs (the hub's cameras).
    pub fn with_lookup(
        config: CameraConfig,
        max_variants: usize,
        opener: SourceOpener,
        lookup: Lookup,
    ) -> Arc<Camera> {
        Camera::build(config, max_variants, opener, None, Some(lookup))
    }

    /// A camera; `main_geometry` is the main stream's when this is its substream (the two share
    /// the transform's reference size).
    fn build(
        config: CameraConfig,
        max_variants: usize,
        opener: SourceOpener,
        main_geometry: Option<Geometry>,
        lookup: Option<Lookup>,
    ) -> Arc<Camera> {
        let geometry = main_geometry.unwrap_or_else(|| Geometry {
            transform: config.transform.clone(),
            reference: Default::default(),
            sets_reference: true,
        });
        let substream = config.substream.clone().map(|spec| {
            let sub = CameraConfig {
                id: format!("{}/sub", config.id),
                source: spec,
                substream: None,
                // Motion is the main camera's (it analyses this substream itself).
                motion: None,
                transcode: None,
                // The substream serves small variants on demand only.
                always_on: false,
                ..config.clone()
            };
            let sub_geometry = Geometry {
                sets_reference: false,
                ..geometry.clone()
            };
            Camera::build(sub, max_variants, opener.clone(), Some(sub_geometry), None)
        });
        let status = Arc::new(watch::Sender::new(Status::default()));
        let metrics = Arc::new(Metrics::default());
        let packets = Arc::new(PacketTap::default());
        let variants = Arc::new(Variants::new(max_variants));
        let decode = Arc::new(DecodeHandle::new(
            config.id.clone(),
            packets.clone(),
            Arc::new(PictureTap::default()),
            matches!(config.source.kind, SourceKind::Demo { .. }),
            status.clone(),
            metrics.clone(),
            config.decode_threads,
            DECODE_GRACE.min(config.idle_timeout),
            geometry,
            match (&config.source.kind, lookup) {
                (SourceKind::Composite(spec), Some(lookup)) => Some((spec.clone(), lookup)),
                _ => None,
            },
        ));
        let encode = Arc::new(EncodeHandle::new(
            config.id.clone(),
            variants.clone(),
            decode.clone(),
            metrics.clone(),
        ));
        Arc::new_cyclic(|me| Camera {
            motion: Arc::new(MotionHandle::new(me.clone(), config.motion.clone())),
            transcode: config
                .transcode
                .map(|_| Arc::new(TranscodeHandle::new(me.clone(), &config.id))),
            substream,
            config,
            variants,
            status,
            metrics,
            packets,
            decode,
            raw: Arc::default(),
            encode,
            opener,
            epoch: Instant::now(),
            last_taken_ms: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            viewers: AtomicUsize::new(0),
            admitted: AtomicUsize::new(0),
            max_viewers: AtomicUsize::new(usize::MAX),
            running: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            queues: Mutex::new(Vec::new()),
            sessions: Default::default(),
            logged_error: Mutex::new(None),
            placeholders: Mutex::new(Vec::new()),
        })
    }

    /// The camera's id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Number of live subscriptions (the substream's included).
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed) + self.substream.as_ref().map_or(0, |s| s.viewers())
    }

    /// Sequence number of the newest picture this camera produced.
    pub fn latest_seq(&self) -> u64 {
        self.decode.pictures.latest_seq()
    }

    /// Subscribes to the picture tap (decoded pictures, newest only) and makes sure decoding and
    /// the upstream run. The subscriber must [`Camera::touch`] the camera as it takes pictures, like
    /// any consumer, or the upstream closes after `idle_timeout`.
    pub fn subscribe_pictures(self: &Arc<Self>) -> PictureSubscriber {
        let sub = self.decode.subscribe_pictures();
        self.touch();
        self.ensure_running();
        sub
    }

    /// Like [`Camera::subscribe_pictures`], for a consumer that analyses pictures and never shows
    /// them (motion detection), `fps` of them a second (0: all; see [`PictureTap::analysis_fps`]).
    pub fn subscribe_pictures_analysing(self: &Arc<Self>, fps: f64) -> PictureSubscriber {
        let sub = self.decode.subscribe_pictures_analysing(fps);
        self.touch();
        self.ensure_running();
        sub
    }

    /// The packets players are given (MSE, `stream.mp4`, HLS): the transcoded H.264 when the
    /// camera has `transcode`, else the camera's own (see [`Camera::subscribe_packets`]).
    pub fn subscribe_player_packets(self: &Arc<Self>, max_lag: Duration) -> PacketSubscriber {
        match &self.transcode {
            Some(t) => {
                self.touch();
                t.subscribe(max_lag)
            }
            None => self.subscribe_packets(max_lag),
        }
    }

    /// Subscribes to the packet tap with lag limit `max_lag` and makes sure the upstream runs. Never
    /// causes a decode. The subscriber must [`Camera::touch`] the camera as it takes packets.
    pub fn subscribe_packets(self: &Arc<Self>, max_lag: Duration) -> PacketSubscriber {
        let sub = self.packets.subscribe(max_lag);
        self.touch();
        self.ensure_running();
        sub
    }

    /// The source's picture size and pixel aspect, once a picture was seen.
    fn geometry(&self) -> Option<((u32, u32), (u32, u32))> {
        if let Some(f) = self.decode.pictures.peek() {
            let sar = match &f.content {
                FrameContent::Picture(p) => p.sar(),
                FrameContent::Jpeg(_) => (1, 1),
            };
            return Some(((f.width, f.height), sar));
        }
        let s = self.status.borrow();
        Some(((s.width?, s.height?), (1, 1)))
    }

    /// Live subscriptions of this stream alone (not its substream's), for `/metrics`.
    pub fn direct_viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Which stream serves `key`: the substream when the requested box is no larger than the
    /// substream's picture. Before the substream's size is known, requests up to 640x480 (what
    /// substreams usually are: 640x360, 704x576, 640x480) go to it.
    fn stream_for(self: &Arc<Self>, key: &VariantKey) -> &Arc<Camera> {
        let Some(sub) = &self.substream else {
            return self;
        };
        if key.width.is_none() && key.height.is_none() {
            return self;
        }
        let (sw, sh) = {
            let s = sub.status.borrow();
            (s.width.unwrap_or(640), s.height.unwrap_or(480))
        };
        if key.width.is_none_or(|w| w <= sw) && key.height.is_none_or(|h| h <= sh) {
            sub
        } else {
            self
        }
    }

    /// Age of the newest frame from the camera, if any arrived.
    pub fn last_frame_age(&self) -> Option<Duration> {
        match self.last_frame_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms)),
            ),
        }
    }

    /// Registers a viewer's byte counters, reported in `/metrics` while the viewer lives.
    /// `written` counts what the kernel accepted on the viewer's connection (if known).
    pub fn register_viewer(&self, written: Option<Arc<AtomicU64>>) -> Arc<ViewerBytes> {
        let v = ViewerBytes::new(written);
        self.register_queue(&v);
        v
    }

    /// Counts an existing viewer's bytes toward this camera too (a grid WebSocket shows several
    /// cameras over one connection: its queue counts toward each of them).
    pub fn register_queue(&self, v: &Arc<ViewerBytes>) {
        let mut qs = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        qs.retain(|w| w.strong_count() > 0);
        if !qs.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(v))) {
            qs.push(Arc::downgrade(v));
        }
    }

    /// Bytes handed to this camera's live viewers (MJPEG, WebSocket, snapshots being sent) but not
    /// yet accepted by the kernel: the sum over viewers and the largest one.
    pub fn queued_bytes(&self) -> (u64, u64) {
        let qs = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        qs.iter()
            .filter_map(Weak::upgrade)
            .map(|v| v.queued())
            .fold((0, 0), |(sum, max), q| (sum + q, max.max(q)))
    }

    /// Sets the most live subscriptions at once (`[server] max_viewers_per_camera`, the
    /// substream's viewers included); existing ones are never ended by it.
    pub fn set_max_viewers(&self, max: usize) {
        self.max_viewers.store(max, Ordering::Relaxed);
    }

    /// Subscribes to a JPEG variant and makes sure the upstream runs. Past `max_viewers` the
    /// error is `Unavailable` (503) and names the config key.
    pub fn subscribe(self: &Arc<Self>, key: VariantKey) -> Result<Subscription, Error> {
        let admission = self.admit()?;
        let mut sub = self.stream_for(&key).subscribe_stream(key)?;
        sub.admission = Some(admission);
        Ok(sub)
    }

    /// A place under `max_viewers` for one viewer of any kind (JPEG, fMP4, MSE), held until the
    /// [`Admission`] drops. Past the limit the error is `Unavailable` (503) and names the key.
    pub fn admit(self: &Arc<Self>) -> Result<Admission, Error> {
        let max = self.max_viewers.load(Ordering::Relaxed);
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= max {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            debug!(camera = %self.config.id, "viewer refused: max_viewers_per_camera = {max}");
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "camera \"{}\" already has {max} viewers, the most [server] \
                     max_viewers_per_camera allows: close another viewer of it, or raise \
                     max_viewers_per_camera in the config",
                    self.config.id
                ),
            ));
        }
        Ok(Admission(self.clone()))
    }

    /// Subscribes to a JPEG variant of this stream itself (not its substream).
    fn subscribe_stream(self: &Arc<Self>, key: VariantKey) -> Result<Subscription, Error> {
        let rx = self.variants.subscribe(key, self.geometry())?;
        self.viewers.fetch_add(1, Ordering::Relaxed);
        self.touch();
        self.encode.ensure_running();
        self.ensure_running();
        Ok(Subscription {
            camera: self.clone(),
            rx,
            admission: None,
        })
    }

    /// Records that a consumer took a frame (or arrived): the camera is wanted for another
    /// `idle_timeout`.
    pub fn touch(&self) {
        // SeqCst pairs with `running` below: a consumer that arrives while the upstream task is
        // deciding to stop must be seen by it, or must see the flag cleared and start a new task.
        // Skipping the store when another viewer already wrote this millisecond saves a contended
        // write per frame per viewer.
        let now = self.now_ms();
        if self.last_taken_ms.load(Ordering::SeqCst) != now {
            self.last_taken_ms.store(now, Ordering::SeqCst);
        }
    }

    fn now_ms(&self) -> u64 {
        // +1 so that 0 keeps meaning "never".
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Takes the camera out of service for good: a config reload replaced or removed it. Its
    /// upstream closes and its viewers' subscriptions end, so they can move to the camera that
    /// replaced it (the MJPEG and WebSocket outputs do that by themselves).
    pub fn retire(&self) {
        self.stop();
        self.variants.close();
        if let Some(sub) = &self.substream {
            sub.variants.close();
        }
    }

    /// Closes the upstream (and the substream's) for good: the process is shutting down.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(sub) = &self.substream {
            sub.stop();
        }
    }

    /// True once the camera was stopped or retired for good (shutdown, config reload).
    pub fn retired(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// True while the upstream task runs (this stream or its substream).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
            || self.substream.as_ref().is_some_and(|s| s.is_running())
    }

    /// True while the upstream should be open.
    pub fn demanded(&self) -> bool {
        if self.stopping.load(Ordering::SeqCst) {
            return false;
        }
        if self.config.always_on || self.waiting.load(Ordering::SeqCst) > 0 {
            return true;
        }
        let last = self.last_taken_ms.load(Ordering::SeqCst);
        last != 0
            && self.now_ms().saturating_sub(last) < self.config.idle_timeout.as_millis() as u64
    }

    /// Starts the upstream task unless it runs already.
    pub fn ensure_running(self: &Arc<Self>) {
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        // Every viewer calls this for every frame: read before writing, so the common case does
        // not bounce the cache line between cores. The load is SeqCst like the swap: if it sees
        // `true`, the task's later check of `waiting` sees this consumer.
        if self.running.load(Ordering::SeqCst) || self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let cam = self.clone();
        let span = tracing::info_span!("camera", id = %self.config.id);
        tokio::spawn(
            async move {
                // Clears `running` however the task ends (a panic included), so the camera can
                // always be started again.
                struct Running(Arc<Camera>);
                impl Drop for Running {
                    fn drop(&mut self) {
                        self.0.running.store(false, Ordering::SeqCst);
                    }
                }
                loop {
                    let guard = Running(cam.clone());
                    cam.upstream().await;
                    drop(guard);
                    // A consumer may have arrived between the decision to stop and the flag
                    // clearing; it saw `running` set and did not start a task, so check again.
                    if !cam.demanded() || cam.running.swap(true, Ordering::SeqCst) {
                        break;
                    }
                }
            }
            .instrument(span),
        );
    }

    /// Changes the status and logs what an operator needs, once: a camera that keeps failing
    /// the same way logs one warning, not one per attempt (the retries are at debug level).
    fn set_state(&self, state: State, reason: Option<String>, error: Option<&str>) {
        let mut previous = State::Idle;
        self.status.send_if_modified(|s| {
            let modified = s.state != state || s.reason != reason;
            previous = s.state;
            s.state = state;
            s.reason = reason.clone();
            if state == State::Idle {
                s.fps = None;
            }
            modified
        });
        let mut logged = self.logged_error.lock().unwrap_or_else(|p| p.into_inner());
        let text = reason.as_deref().unwrap_or("");
        match state {
            State::Retrying => {
                if logged.as_deref() != error {
                    warn!(state = state.name(), "{text}");
                    *logged = error.map(str::to_owned);
                } else {
                    debug!(state = state.name(), "{text}");
                }
            }
            State::Connecting if previous == State::Retrying => {
                debug!(state = state.name(), "{text}")
            }
            State::Streaming if logged.is_some() => {
                info!(state = state.name(), "the camera is back");
                *logged = None;
            }
            _ if previous != state => {
                info!(
                    state = state.name(),
                    "{}",
                    if text.is_empty() {
                        "state changed"
                    } else {
                        text
                    }
                )
            }
            _ => {}
        }
    }

    /// The upstream loop: connect, stream, reconnect; returns when nobody wants the camera.
    async fn upstream(self: &Arc<Self>) {
        let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
        while self.demanded() {
            self.set_state(
                State::Connecting,
                Some(format!("connecting to {}", self.config.source.redacted)),
                None,
            );
            let outcome = self.session(&self.config.source, &mut backoff).await;
            let error = match outcome {
                Ok(()) => break,
                Err(e) => e,
            };
            Metrics::add(&self.metrics.reconnects, 1);
            let kind = FailureKind::classify(&error);
            // Some library errors run to many lines (retina's framing errors carry a hex dump of
            // the bytes): the status and the log get the first line; the whole error is at debug.
            debug!("connection failed: {error}");
            let shown = summarize(&error);
            self.status.send_modify(|s| {
                s.reconnects += 1;
                s.last_error = Some(shown.clone());
                s.error_kind = Some(kind);
                s.fps = None;
            });
            let delay = backoff.next_delay(rand::random::<f64>());
            // The same failure logs once: compared without digits, which carry times, offsets and
            // ports that change at every attempt.
            let same: String = shown.chars().filter(|c| !c.is_ascii_digit()).collect();
            self.set_state(
                State::Retrying,
                Some(format!(
                    "{shown}; retrying in {:.0}s",
                    delay.as_secs_f64().max(1.0)
                )),
                Some(&same),
            );
            // Sleep in slices so a camera nobody wants any more goes idle promptly.
            let until = tokio::time::Instant::now() + delay;
            while tokio::time::Instant::now() < until && self.demanded() {
                tokio::time::sleep_until(
                    until.min(tokio::time::Instant::now() + Duration::from_millis(250)),
                )
                .await;
            }
        }
        self.set_state(State::Idle, None, None);
    }

    /// One connection: Ok(()) when closed for idleness, Err(reason) on failure.
    async fn session(
        self: &Arc<Self>,
        spec: &SourceSpec,
        backoff: &mut Backoff,
    ) -> Result<(), String> {
        let opts = OpenOptions {
            camera: self.config.id.clone(),
            ..OpenOptions::default()
        };
        let mut source = self.opener.open(spec, &opts).await.map_err(|e| e.0)?;
        // A camera polled every N seconds is silent for N seconds by design.
        let watchdog = match &spec.kind {
            SourceKind::Http {
                poll_interval: Some(p),
                ..
            } => self
                .config
                .watchdog
                .max(*p + OpenOptions::default().connect_timeout),
            _ => self.config.watchdog,
        };
        let result = self.pump(&mut source, backoff, watchdog).await;
        drop(source);
        // Nothing of this connection may reach a consumer as the newest: the cached GOP and the
        // last picture go with it.
        self.packets.stop();
        self.decode.pictures.clear();
        result
    }

    /// Moves events from the source into the taps until failure or idleness.
    async fn pump(
        &self,
        source: &mut Source,
        backoff: &mut Backoff,
        watchdog: Duration,
    ) -> Result<(), String> {
        let mut idle_check = tokio::time::interval(Duration::from_millis(500));
        let mut streaming = false;
        let mut streaming_since = Instant::now();
        let mut stable = false;
        let mut window_start = Instant::now();
        let mut window_frames = 0u32;
        // Sources that send JPEGs have no parameters to announce: the first JPEG starts the stream.
        let mut started = false;
        loop {
            // The same `next` future lives across idle checks: sources need not be cancel-safe.
            let next = source.next();
            tokio::pin!(next);
            let watchdog_at = tokio::time::sleep(watchdog);
            tokio::pin!(watchdog_at);
            let next = loop {
                tokio::select! {
                    ev = &mut next => break ev,
                    _ = &mut watchdog_at => {
                        return Err(format!("no frame for {}s while connected (watchdog)", watchdog.as_secs_f64()));
                    }
                    _ = idle_check.tick() => {
                        if !self.demanded() {
                            // Stopping (shutdown, reload) also ends demand: say which it was.
                            if self.retired() {
                                info!("camhub stops or replaced the camera: closing the connection");
                            } else {
                                info!(
                                    "no consumer took a frame for {}s: closing the connection",
                                    self.config.idle_timeout.as_secs()
                                );
                            }
                            return Ok(());
                        }
                    }
                }
            };
            let ev = match next {
                Err(e) => return Err(e.0),
                Ok(ev) => ev,
            };
            if !matches!(ev, SourceEvent::Params(_)) {
                Metrics::add(&self.metrics.frames_in, 1);
                self.last_frame_ms.store(self.now_ms(), Ordering::Relaxed);
                window_frames += 1;
                if !streaming {
                    streaming = true;
                    // The rate is measured between frames: the window opens at the first.
                    window_start = Instant::now();
                    streaming_since = window_start;
                    window_frames = 0;
                    self.set_state(State::Streaming, None, None);
                }
                if !stable && streaming_since.elapsed() >= STABLE_AFTER {
                    // Only a stream that stayed up for a while resets the back-off: a camera
                    // that fails a few seconds after every connect keeps backing off.
                    stable = true;
                    backoff.reset();
                }
            }
            self.feed(ev, &mut started);
            let elapsed = window_start.elapsed();
            if elapsed >= Duration::from_secs(2) {
                let fps = (f64::from(window_frames) / elapsed.as_secs_f64() * 10.0).round() / 10.0;
                self.status.send_if_modified(|s| {
                    let changed = s.fps != Some(fps);
                    s.fps = Some(fps);
                    changed
                });
                window_start = Instant::now();
                window_frames = 0;
            }
        }
    }
}

impl Camera {
    /// Puts one source event into the taps.
    fn feed(&self, ev: SourceEvent, started: &mut bool) {
        let received = std::time::Instant::now();
        match ev {
            SourceEvent::Params(params) => {
                self.set_codec(&params.codec_name());
                self.packets.start(params);
                *started = true;
            }
            SourceEvent::Packet {
                data,
                keyframe,
                pts,
                dts,
            } => {
                let (pts, dts) = match (pts, dts) {
                    (Some(p), d) => (p, d.unwrap_or(p)),
                    (None, Some(d)) => (d, d),
                    (None, None) => (self.clock_90k(received), self.clock_90k(received)),
                };
                if keyframe {
                    self.note_sps_size(&data);
                }
                self.packets
                    .push(data, keyframe, pts, dts, received, super::unix_ms());
            }
            SourceEvent::Jpeg(data) => {
                if !*started {
                    *started = true;
                    self.set_codec("mjpeg");
                    self.packets.start(StreamParams::Codec {
                        codec: Codec::Mjpeg,
                        extradata: None,
                    });
                }
                let ts = self.clock_90k(received);
                self.packets
                    .push(data, true, ts, ts, received, super::unix_ms());
            }
            SourceEvent::Pattern {
                frame_no,
                unix_ms,
                width,
                height,
            } => self.decode.ticks.put(Tick {
                frame_no,
                unix_ms,
                width,
                height,
                received,
            }),
        }
    }

    /// Arrival time on the 90 kHz clock, for sources without timestamps (JPEG cameras).
    fn clock_90k(&self, at: std::time::Instant) -> i64 {
        let since = at.saturating_duration_since(self.epoch.into_std());
        (since.as_micros() as i64).saturating_mul(9) / 100
    }

    /// The picture size an H.264/H.265 keyframe's SPS says, into the status: viewers of the
    /// camera's own stream (MSE, HLS) decode nothing, and the API and UI still show the size.
    /// Once per keyframe; a damaged SPS changes nothing (the decoder reports what it finds).
    fn note_sps_size(&self, access_unit: &[u8]) {
        let Some(codec) = self.status.borrow().codec.clone() else {
            return;
        };
        let Some(coding) = Coding::from_name(&codec) else {
            return;
        };
        let sets = super::taps::parameter_sets(access_unit, &codec);
        let Some(sps) = sets.iter().find(|n| coding.is_sps(n)) else {
            return;
        };
        let size = match coding {
            Coding::H264 => camhub_media::sps::H264Sps::parse(sps).map(|s| (s.width, s.height)),
            Coding::H265 => camhub_media::sps::H265Sps::parse(sps).map(|s| (s.width, s.height)),
        };
        // A transformed camera shows its transformed size everywhere.
        let size = size.map(|(w, h)| {
            if self.config.transform.is_identity() {
                (w, h)
            } else {
                Shaper::output_size(&self.config.transform, w, h).unwrap_or((w, h))
            }
        });
        if let Ok((w, h)) = size {
            self.status.send_if_modified(|s| {
                let changed = s.width != Some(w) || s.height != Some(h);
                s.width = Some(w);
                s.height = Some(h);
                changed
            });
        }
    }

    fn set_codec(&self, codec: &str) {
        self.status.send_if_modified(|s| {
            let changed = s.codec.as_deref() != Some(codec);
            s.codec = Some(codec.to_owned());
            changed
        });
    }
}

/// Placeholders kept per camera: a few sizes times the current status text.
pub const PLACEHOLDERS_KEPT: usize = 8;

/// One cached placeholder: picture size, text lines, JPEG.
type Placeholder = ((u32, u32), Vec<String>, bytes::Bytes);

impl Camera {
    /// The labelled "reconnecting…" picture for viewers of size `size` while the camera is not
    /// streaming (None while it streams). Rendered once per camera, size and status text, and
    /// shared by every viewer: a hundred viewers of a dead camera cost one small JPEG encode per
    /// status change, not a hundred every few seconds.
    pub async fn placeholder(self: &Arc<Self>, size: (u32, u32)) -> Option<bytes::Bytes> {
        let status = self.status.borrow().clone();
        let headline = match status.state {
            State::Retrying => "reconnecting...",
            State::Connecting => "connecting...",
            State::Idle => "waiting for the camera...",
            State::Streaming => return None,
        };
        let mut lines = vec![self.config.name.clone(), headline.to_owned()];
        if let Some(reason) = status.reason.or(status.last_error) {
            lines.extend(wrap(&reason, 48));
        }
        let cached = |cam: &Camera, lines: &[String]| {
            let g = cam.placeholders.lock().unwrap_or_else(|p| p.into_inner());
            g.iter()
                .find(|(s, l, _)| *s == size && l == lines)
                .map(|(_, _, jpeg)| jpeg.clone())
        };
        if let Some(jpeg) = cached(self, &lines) {
            return Some(jpeg);
        }
        let cam = self.clone();
        tokio::task::spawn_blocking(move || {
            // Viewers that asked at the same moment wait for one render, not one each.
            let mut g = cam.placeholders.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, _, jpeg)) = g.iter().find(|(s, l, _)| *s == size && *l == lines) {
                return Some(jpeg.clone());
            }
            let jpeg = super::render::render_placeholder(size.0, size.1, &lines).ok()?;
            Metrics::add(&cam.metrics.placeholders_rendered, 1);
            if g.len() >= PLACEHOLDERS_KEPT {
                g.remove(0);
            }
            g.push((size, lines, jpeg.clone()));
            Some(jpeg)
        })
        .await
        .ok()?
    }
}

/// Splits text into lines of at most `width` characters at spaces (at most four lines).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let Some(last) = lines.last_mut() else { break };
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_owned());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines.truncate(4);
    lines
}

/// One viewer's bytes: produced for it by camhub versus accepted by the kernel on its connection.
/// The difference is what sits in camhub's and hyper's buffers for that viewer.
#[derive(Debug)]
pub struct ViewerBytes {
    /// Bytes of response body produced.
    pub produced: AtomicU64,
    written: Option<Arc<AtomicU64>>,
    base: u64,
}

impl ViewerBytes {
    /// Counters for a new viewer; `written` counts what the kernel accepted on its connection.
    pub fn new(written: Option<Arc<AtomicU64>>) -> Arc<ViewerBytes> {
        let base = written.as_ref().map_or(0, |w| w.load(Ordering::Relaxed));
        Arc::new(ViewerBytes {
            produced: AtomicU64::new(0),
            written,
            base,
        })
    }

    /// Records `n` more bytes handed to the viewer's connection.
    pub fn produce(&self, n: usize) {
        self.produced.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Bytes produced but not yet accepted by the kernel.
    pub fn queued(&self) -> u64 {
        let produced = self.produced.load(Ordering::Relaxed);
        match &self.written {
            Some(w) => produced.saturating_sub(w.load(Ordering::Relaxed).saturating_sub(self.base)),
            None => 0,
        }
    }
}

/// An error as the status and the log show it: its first line, at most 300 characters.
fn summarize(error: &str) -> String {
    let line = error.lines().next().unwrap_or("").trim_end();
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// A consumer's subscription to one JPEG variant of one camera. Dropping it removes the viewer.
pub struct Subscription {
    camera: Arc<Camera>,
    rx: watch::Receiver<Option<Arc<JpegFrame>>>,
    /// Its place under the (main) camera's `max_viewers`.
    admission: Option<Admission>,
}

/// A place under a camera's `max_viewers`, given back when dropped.
pub struct Admission(Arc<Camera>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Subscription {
    /// The camera.
    pub fn camera(&self) -> &Arc<Camera> {
        &self.camera
    }

    /// The newest frame, if any, marking it seen.
    pub fn latest(&mut self) -> Option<Arc<JpegFrame>> {
        let f = self.rx.borrow_and_update().clone();
        if f.is_some() {
            self.camera.touch();
        }
        f
    }

    /// Waits until a frame newer than the last one seen exists, without taking it (cancel-safe).
    /// False if the variant went away.
    pub async fn wait_new(&mut self) -> bool {
        let _waiting = Waiting::new(&self.camera);
        self.camera.ensure_running();
        self.rx.changed().await.is_ok()
    }

    /// Sleeps until `until` while counting as a consumer waiting for its next frame: a viewer that
    /// paces itself (`fps=0.1`) keeps the camera open between its frames, however long they are
    /// apart. A stalled viewer never gets here (it is stuck in a socket write), so it cannot.
    pub async fn pace_until(&mut self, until: tokio::time::Instant) {
        let _waiting = Waiting::new(&self.camera);
        self.camera.ensure_running();
        tokio::time::sleep_until(until).await;
    }

    /// True if a frame newer than the last one seen is waiting.
    pub fn has_new(&self) -> bool {
        self.rx.has_changed().unwrap_or(false)
    }

    /// Waits for a frame newer than the last one seen. `None` if the variant went away.
    pub async fn next(&mut self) -> Option<Arc<JpegFrame>> {
        {
            let _waiting = Waiting::new(&self.camera);
            self.camera.ensure_running();
            self.rx.changed().await.ok()?;
        }
        self.latest()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.camera.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a consumer as waiting for the next frame while alive.
struct Waiting<'a>(&'a Camera);

impl<'a> Waiting<'a> {
    fn new(cam: &'a Camera) -> Self {
        cam.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(cam)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
        // Leaving the wait (frame taken or gave up) also counts as activity.
        self.0.touch();
    }
}

/// The lifecycle rules (idle close, back-off, flapping, watchdog, paced viewers) on tokio's paused
/// clock, through a scripted source: each runs in milliseconds of real time.
#[cfg(test)]
mod lifecycle {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use futures::StreamExt;

    use super::*;
    use crate::source::{Source, SourceError, SourceEvent, SourceOpener};

    fn camera(extra: &str, opener: SourceOpener) -> Arc<Camera> {
        let toml =
            format!("[[camera]]\nid = \"cam\"\nurl = \"http://127.0.0.1:9/stream\"\n{extra}\n");
        let config = camhub_config::parse(&toml, "test.toml").expect("valid config");
        Camera::with_opener(config.cameras[0].clone(), 4, opener)
    }

    /// A source that sends a (tiny, not decodable) JPEG every `period`, and fails after `fail_after`
    /// frames (or never).
    fn jpegs(period: Duration, fail_after: Option<usize>) -> Source {
        let stream = futures::stream::unfold(0usize, move |n| async move {
            tokio::time::sleep(period).await;
            if fail_after.is_some_and(|f| n >= f) {
                return Some((Err(SourceError("connection reset".into())), n + 1));
            }
            Some((
                Ok(SourceEvent::Jpeg(Bytes::from_static(b"\xff\xd8\xff\xd9"))),
                n + 1,
            ))
        });
        Source::Scripted(stream.boxed())
    }

    fn counting(
        opens: &Arc<AtomicUsize>,
        make: impl Fn() -> Result<Source, SourceError> + Send + Sync + 'static,
    ) -> SourceOpener {
        let opens = opens.clone();
        SourceOpener::scripted(move |_| {
            opens.fetch_add(1, Ordering::SeqCst);
            make()
        })
    }

    fn state(cam: &Camera) -> State {
        cam.status.borrow().state
    }

    #[tokio::test(start_paused = true)]
    async fn the_upstream_closes_idle_timeout_after_the_last_consumer() {
        let opens = Arc::new(AtomicUsize::new(0));
        let cam = camera(
            "idle_timeout = \"10s\"",
            counting(&opens, || Ok(jpegs(Duration::from_millis(100), None))),
        );
        let sub = cam.subscribe_packets(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(state(&cam), State::Streaming);
        drop(sub);
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert_eq!(state(&cam), State::Streaming, "closed before idle_timeout");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(state(&cam), State::Idle, "still open after idle_timeout");
        assert_eq!(opens.load(Ordering::SeqCst), 1);
        assert!(
            cam.packets.params().is_none(),
            "the cached GOP outlived the connection"
        );
    }

    #[test]
    fn long_errors_are_summarised_to_their_first_line() {
        assert_eq!(summarize("refused"), "refused");
        assert_eq!(
            summarize("framing error at 12:00:01\n00 01 02 03\n04 05"),
            "framing error at 12:00:01"
        );
        let long = "x".repeat(400);
        assert_eq!(summarize(&long).chars().count(), 301);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially() {
        let opens = Arc::new(AtomicUsize::new(0));
        let cam = camera(
            "always_on = true",
            counting(&opens, || Err(SourceError("connection refused".into()))),
        );
        cam.ensure_running();
        tokio::time::sleep(Duration::from_secs(120)).await;
        // 1, 2, 4, 8, 16, 30, 30, 30 s (±50 %): about 8 attempts in two minutes, never one a second.
        let n = opens.load(Ordering::SeqCst);
        assert!((5..=14).contains(&n), "{n} attempts in 120 s");
        assert_eq!(state(&cam), State::Retrying);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flapping_camera_keeps_backing_off() {
        // Up for 2 s after every connect, then the connection drops: the back-off must not reset at
        // the first frame, or it reconnects every second forever.
        let opens = Arc::new(AtomicUsize::new(0));
        let cam = camera(
            "always_on = true",
            counting(&opens, || Ok(jpegs(Duration::from_millis(100), Some(20)))),
        );
        cam.ensure_running();
        tokio::time::sleep(Duration::from_secs(180)).await;
        let n = opens.load(Ordering::SeqCst);
        // Resetting at the first frame: one attempt per ~3.5 s (about 50). Backing off: about 9.
        assert!(
            n <= 15,
            "{n} connects in 180 s: the back-off was reset by a flapping stream"
        );
        assert!(n >= 5, "{n}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_stays_up_resets_the_back_off() {
        let opens = Arc::new(AtomicUsize::new(0));
        // Up for 40 s (longer than STABLE_AFTER) after every connect.
        let cam = camera(
            "always_on = true",
            counting(&opens, || Ok(jpegs(Duration::from_millis(100), Some(400)))),
        );
        cam.ensure_running();
        tokio::time::sleep(Duration::from_secs(300)).await;
        // Every failure after a stable stream retries after ~1 s: one connect per ~41 s.
        let n = opens.load(Ordering::SeqCst);
        assert!((6..=9).contains(&n), "{n} connects in 300 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_camera_is_reconnected_by_the_watchdog() {
        let opens = Arc::new(AtomicUsize::new(0));
        let cam = camera(
            "always_on = true\nwatchdog = \"5s\"",
            counting(&opens, || {
                let first = futures::stream::once(async {
                    Ok(SourceEvent::Jpeg(Bytes::from_static(b"\xff\xd8\xff\xd9")))
                });
                Ok(Source::Scripted(
                    first.chain(futures::stream::pending()).boxed(),
                ))
            }),
        );
        cam.ensure_running();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(opens.load(Ordering::SeqCst), 1);
        assert_eq!(state(&cam), State::Streaming);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let s = cam.status.borrow().clone();
        assert!(
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("watchdog")),
            "{s:?}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(opens.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn placeholders_are_made_once_per_camera_and_shared() {
        // An idle camera keeps one status text (a retrying one changes it with every attempt).
        let cam = camera(
            "",
            SourceOpener::scripted(|_| Err(SourceError("connection refused".into()))),
        );
        assert_eq!(state(&cam), State::Idle);
        // A hundred viewers of one size at once, then again: one render.
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let cam = cam.clone();
            tasks.push(tokio::spawn(
                async move { cam.placeholder((640, 360)).await },
            ));
        }
        let mut jpegs = Vec::new();
        for t in tasks {
            jpegs.push(t.await.expect("task").expect("a placeholder"));
        }
        assert!(
            jpegs.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr()),
            "not shared"
        );
        assert!(cam.placeholder((640, 360)).await.is_some());
        assert_eq!(Metrics::get(&cam.metrics.placeholders_rendered), 1);
        // Another size is another picture.
        assert!(cam.placeholder((320, 180)).await.is_some());
        assert_eq!(Metrics::get(&cam.metrics.placeholders_rendered), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_viewer_pacing_itself_keeps_its_camera() {
        let opens = Arc::new(AtomicUsize::new(0));
        let cam = camera(
            "idle_timeout = \"5s\"",
            counting(&opens, || Ok(jpegs(Duration::from_millis(100), None))),
        );
        let mut sub = cam.subscribe(VariantKey::NATIVE).expect("subscribe");
        // A viewer at fps=0.1: takes a frame, then waits 10 s for its next one, twice.
        for _ in 0..2 {
            sub.latest();
            sub.pace_until(tokio::time::Instant::now() + Duration::from_secs(10))
                .await;
            assert_eq!(state(&cam), State::Streaming);
        }
        assert_eq!(
            opens.load(Ordering::SeqCst),
            1,
            "closed and reopened between frames"
        );
    }
}
