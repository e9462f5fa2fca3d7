//! [`Camera`]: one configured camera and its upstream lifecycle. The upstream connection is opened
//! when the first consumer arrives and closed when no consumer has taken a frame for
//! `idle_timeout` (consumers that are waiting for the next frame count as taking); `always_on`
//! keeps it up. A failed or silent connection (the watchdog: no frame for `watchdog`) is retried
//! forever with capped exponential back-off and jitter while anyone still wants the camera. All of
//! it runs in one tokio task per camera, which only moves bytes; pixels are handled on the
//! camera's decode thread ([`super::pipeline`]).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use camhub_config::{Camera as CameraConfig, SourceKind, SourceSpec};
use camhub_media::backoff::Backoff;
use tokio::sync::watch;
use tracing::{debug, info, warn, Instrument};

use super::pipeline;
use super::queue::FrameQueue;
use super::status::{Metrics, State, Status};
use super::variants::{JpegFrame, VariantKey, Variants};
use crate::error::Error;
use crate::source::{OpenOptions, Source, SourceEvent};

/// First retry delay after a failure.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Longest retry delay (before jitter).
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// One camera: config, status, variants, counters, and the on-demand upstream.
pub struct Camera {
    /// The camera's configuration.
    pub config: CameraConfig,
    /// JPEG variants and their latest frames.
    pub variants: Variants,
    /// Current status; subscribers are told of every change.
    pub status: watch::Sender<Status>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    epoch: Instant,
    /// Milliseconds since `epoch` when a consumer last took a frame (or arrived).
    last_taken_ms: AtomicU64,
    /// Milliseconds since `epoch` when the newest frame arrived from the camera (0 = none yet).
    last_frame_ms: AtomicU64,
    /// Consumers currently waiting for the next frame.
    waiting: AtomicUsize,
    /// Live subscriptions (viewers).
    viewers: AtomicUsize,
    running: AtomicBool,
    /// Source frame counter, shared by every variant.
    pub(crate) seq: AtomicU64,
    /// Bytes each live viewer has been handed but not yet accepted (for `/metrics`).
    queues: Mutex<Vec<Weak<ViewerBytes>>>,
    /// The failure last logged as a warning (repeats of it are logged at debug level).
    logged_error: Mutex<Option<String>>,
    /// The camera's substream (`substream_url`), a camera of its own with the same lifecycle rules:
    /// small variants are made from it, so a grid decodes small streams, not full ones.
    pub substream: Option<Arc<Camera>>,
}

impl Camera {
    /// A camera in the idle state.
    pub fn new(config: CameraConfig, max_variants: usize) -> Arc<Camera> {
        let substream = config.substream.clone().map(|spec| {
            let sub = CameraConfig {
                id: format!("{}/sub", config.id),
                source: spec,
                substream: None,
                // The substream serves small variants on demand only.
                always_on: false,
                ..config.clone()
            };
            Camera::new(sub, max_variants)
        });
        Arc::new(Camera {
            substream,
            config,
            variants: Variants::new(max_variants),
            status: watch::Sender::new(Status::default()),
            metrics: Metrics::default(),
            epoch: Instant::now(),
            last_taken_ms: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            viewers: AtomicUsize::new(0),
            running: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            queues: Mutex::new(Vec::new()),
            logged_error: Mutex::new(None),
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
        self.seq.load(Ordering::Relaxed)
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
        let base = written.as_ref().map_or(0, |w| w.load(Ordering::Relaxed));
        let v = Arc::new(ViewerBytes {
            produced: AtomicU64::new(0),
            written,
            base,
        });
        let mut qs = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        qs.retain(|w| w.strong_count() > 0);
        qs.push(Arc::downgrade(&v));
        v
    }

    /// The largest number of bytes any live viewer has been handed but not yet accepted.
    pub fn max_queued_bytes(&self) -> u64 {
        let qs = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        qs.iter()
            .filter_map(Weak::upgrade)
            .map(|v| v.queued())
            .max()
            .unwrap_or(0)
    }

    /// Subscribes to a JPEG variant and makes sure the upstream runs.
    pub fn subscribe(self: &Arc<Self>, key: VariantKey) -> Result<Subscription, Error> {
        let stream = self.stream_for(&key);
        if !Arc::ptr_eq(stream, self) {
            return stream.subscribe(key);
        }
        let rx = self.variants.subscribe(key)?;
        self.viewers.fetch_add(1, Ordering::Relaxed);
        self.touch();
        self.ensure_running();
        Ok(Subscription {
            camera: self.clone(),
            rx,
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

    /// True while the upstream should be open.
    pub fn demanded(&self) -> bool {
        if self.config.always_on || self.waiting.load(Ordering::SeqCst) > 0 {
            return true;
        }
        let last = self.last_taken_ms.load(Ordering::SeqCst);
        last != 0
            && self.now_ms().saturating_sub(last) < self.config.idle_timeout.as_millis() as u64
    }

    /// Starts the upstream task unless it runs already.
    pub fn ensure_running(self: &Arc<Self>) {
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
            self.status.send_modify(|s| {
                s.reconnects += 1;
                s.last_error = Some(error.clone());
                s.fps = None;
            });
            let delay = backoff.next_delay(rand::random::<f64>());
            self.set_state(
                State::Retrying,
                Some(format!(
                    "{error}; retrying in {:.0}s",
                    delay.as_secs_f64().max(1.0)
                )),
                Some(&error),
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
        let mut source = Source::open(spec, &opts).await.map_err(|e| e.0)?;
        let queue = Arc::new(FrameQueue::new());
        let thread = pipeline::spawn(self.clone(), queue.clone())
            .map_err(|e| format!("cannot start decoding: {e}"))?;
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
        let result = self
            .pump(&mut source, &queue, backoff, watchdog, &thread)
            .await;
        queue.close();
        drop(source);
        // The decode thread drains and exits on its own; don't block the runtime joining it.
        drop(thread);
        result
    }

    /// Moves events from the source to the decode thread until failure or idleness.
    async fn pump(
        &self,
        source: &mut Source,
        queue: &FrameQueue,
        backoff: &mut Backoff,
        watchdog: Duration,
        decoder: &std::thread::JoinHandle<()>,
    ) -> Result<(), String> {
        let mut idle_check = tokio::time::interval(Duration::from_millis(500));
        let mut streaming = false;
        let mut window_start = Instant::now();
        let mut window_frames = 0u32;
        let mut warned_behind = false;
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
                        if decoder.is_finished() {
                            return Err("the decoder stopped unexpectedly (a bug: please report it with the log)".into());
                        }
                        if !self.demanded() {
                            info!(
                                "no consumer took a frame for {}s: closing the connection",
                                self.config.idle_timeout.as_secs()
                            );
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
                    window_frames = 0;
                    backoff.reset();
                    self.set_state(State::Streaming, None, None);
                }
            }
            let outcome = queue.push(ev);
            Metrics::add(&self.metrics.frames_dropped, outcome.dropped as u64);
            if outcome.overflowed && !warned_behind {
                // Once per connection: the fix is the user's (a substream, or frame threads).
                warned_behind = true;
                warn!(
                    "decoding cannot keep up with this camera: skipping to the next keyframe to stay live \
                     (set decode_threads = 2 or more for it, or serve small sizes from a substream_url)"
                );
            }
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
    /// Bytes produced but not yet accepted by the kernel.
    pub fn queued(&self) -> u64 {
        let produced = self.produced.load(Ordering::Relaxed);
        match &self.written {
            Some(w) => produced.saturating_sub(w.load(Ordering::Relaxed).saturating_sub(self.base)),
            None => 0,
        }
    }
}

/// A consumer's subscription to one JPEG variant of one camera. Dropping it removes the viewer.
pub struct Subscription {
    camera: Arc<Camera>,
    rx: watch::Receiver<Option<Arc<JpegFrame>>>,
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
