//! Motion detection of one camera (thread `cam-{id}/motion`): a picture-tap consumer that hands
//! each picture's luma plane to the pure detector ([`camhub_media::motion`]) at `[camera.motion]
//! fps`, turns its verdicts into events with the tracker (`start_after`, `end_after`), stores them
//! (record, best snapshot, frames spread over the event) through [`crate::events`], and publishes
//! the camera's [`MotionState`] for the WebSockets.
//!
//! It runs while `[camera.motion] enabled` (so the camera stays connected) or while a client asks
//! for motion on a camera without it (the per-camera WebSocket's `motion` mode: defaults, nothing
//! stored). A camera with a `substream_url` is analysed on its substream; viewers keep the main
//! stream. Cameras without motion cost nothing: no thread, no subscription.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use camhub_codec::{JpegDecoder, JpegEncoder, Picture, Scaler};
use camhub_media::motion::{Analysis, Detector, Pacer, Rect, Settings, Tracker, Transition};
use camhub_store::{EventBox, EventUpdate};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::pipeline::cpu_since;
use super::status::Metrics;
use super::taps::{Frame, FrameContent};
use super::worker::Worker;
use super::Camera;
use crate::events::Events;

/// Width the detector analyses at most (it box-averages down to about this); a JPEG camera's
/// pictures are decoded at the smallest libjpeg scale that still covers it.
const ANALYSIS_WIDTH: u32 = 320;
/// Quality of stored snapshots and frames.
const SNAPSHOT_QUALITY: u8 = 85;
/// A new best snapshot is written only when the changed area grew by this factor, and at most
/// this often: an event does not rewrite its snapshot on every frame.
const SNAPSHOT_GROWTH: f32 = 1.25;
const SNAPSHOT_EVERY_MS: i64 = 500;
/// The first interval between stored frames; it doubles whenever the frames are thinned.
const FIRST_FRAME_INTERVAL_MS: i64 = 1000;
/// How long the main stream is given to show one picture (to learn the size polygons are in).
const MAIN_PROBE_FOR: Duration = Duration::from_secs(60);

/// The current (or last) event of a camera, as viewers are told.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInfo {
    /// The stored event's id (None when motion runs only for a client and nothing is stored).
    pub id: Option<i64>,
    /// Unix ms of the first motion frame.
    pub start_ms: u64,
    /// Unix ms of the last motion frame, once the event ended.
    pub end_ms: Option<u64>,
    /// Media time (ms of the stream's clock) of the first motion frame and of the moment the
    /// event was confirmed: what tests count frames with.
    pub media_start_ms: i64,
    /// Media time when the event was confirmed (start) or ended.
    pub media_at_ms: i64,
    /// Highest changed area so far (percent of the frame).
    pub peak_score: f32,
    /// The largest change's box (normalized).
    pub peak_box: Option<Rect>,
}

impl EventInfo {
    /// The event as the WebSockets and MQTT show it (`docs/api.md`).
    pub fn to_json(&self) -> serde_json::Value {
        let time = |ms: u64| camhub_media::civil::rfc3339_ms(i64::try_from(ms).unwrap_or(i64::MAX));
        serde_json::json!({
            "id": self.id,
            "start": time(self.start_ms),
            "end": self.end_ms.map(time),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "media_start_ms": self.media_start_ms,
            "media_at_ms": self.media_at_ms,
            "peak_score": self.peak_score,
            "box": self.peak_box.map(|b| [b.x, b.y, b.w, b.h]),
        })
    }
}

/// What viewers are told about a camera's motion; changes are published through a `watch`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MotionState {
    /// The detector runs.
    pub detecting: bool,
    /// An event is in progress.
    pub active: bool,
    /// Events started so far: a viewer that missed a start and its end between two looks still
    /// sees that one happened.
    pub starts: u64,
    /// The current or last event.
    pub event: Option<EventInfo>,
    /// Changed area of the newest analysed picture (percent of the frame).
    pub score: f32,
    /// Boxes of the newest analysed picture while an event is active (normalized).
    pub boxes: Vec<Rect>,
}

/// Motion detection of one camera: its settings, its demand and its published state.
pub struct MotionHandle {
    camera: Weak<Camera>,
    /// `[camera.motion]`, if the camera has the table.
    config: Option<camhub_config::Motion>,
    /// Clients that asked for motion on this camera (counted whether or not it is enabled).
    demand: AtomicUsize,
    /// Where events are stored (set by the hub when a camera has motion enabled).
    events: Mutex<Option<Arc<Events>>>,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    /// The published state.
    pub state: watch::Sender<MotionState>,
    worker: Worker,
}

/// A client's claim on motion detection; dropping it releases the claim.
pub struct MotionDemand(Arc<MotionHandle>);

impl Drop for MotionDemand {
    fn drop(&mut self) {
        self.0.demand.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MotionHandle {
    /// The handle of `camera` (whose `[camera.motion]` is `config`); nothing runs yet.
    pub fn new(camera: Weak<Camera>, config: Option<camhub_config::Motion>) -> MotionHandle {
        MotionHandle {
            camera,
            config,
            demand: AtomicUsize::new(0),
            events: Mutex::new(None),
            runtime: Mutex::new(None),
            state: watch::Sender::new(MotionState::default()),
            worker: Worker::default(),
        }
    }

    /// True when `[camera.motion] enabled`: detection runs always and events are stored.
    pub fn enabled(&self) -> bool {
        self.config.as_ref().is_some_and(|m| m.enabled)
    }

    /// Sets where events are stored.
    pub fn set_events(&self, events: Option<Arc<Events>>) {
        *self.events.lock().unwrap_or_else(|p| p.into_inner()) = events;
    }

    fn events(&self) -> Option<Arc<Events>> {
        if !self.enabled() {
            return None;
        }
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn wanted(&self) -> bool {
        self.enabled() || self.demand.load(Ordering::SeqCst) > 0
    }

    /// A client wants motion on this camera: detection runs (with defaults when the camera has no
    /// `[camera.motion]`) until the returned claim is dropped. Call inside the tokio runtime.
    pub fn demand(self: &Arc<Self>) -> MotionDemand {
        self.demand.fetch_add(1, Ordering::SeqCst);
        self.ensure_running();
        MotionDemand(self.clone())
    }

    /// Starts the detection thread if it is wanted and not running. Call inside the tokio runtime
    /// (the thread keeps the camera's connection up through it).
    pub fn ensure_running(self: &Arc<Self>) {
        if !self.wanted() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = Some(rt);
        }
        let id = self
            .camera
            .upgrade()
            .map(|c| c.id().to_owned())
            .unwrap_or_default();
        Worker::ensure(
            self,
            |h| &h.worker,
            format!("cam-{id}/motion"),
            &id,
            MotionHandle::wanted,
            run,
        );
    }
}

/// Pictures analysed a second: the configured `fps`, 10 where it is not a rate.
fn analysis_fps(settings: &camhub_config::Motion) -> f64 {
    if settings.fps.is_finite() && settings.fps > 0.0 {
        settings.fps
    } else {
        10.0
    }
}

/// The thread's body: runs until nothing wants motion any more.
fn run(h: &MotionHandle) {
    let Some(cam) = h.camera.upgrade() else {
        return;
    };
    let Some(rt) = h.runtime.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
        warn!("motion detection needs the async runtime; not started");
        return;
    };
    let _rt = rt.enter();
    // A camera with a substream is analysed on it (Frigate's "detect" role).
    let stream = cam.substream.clone().unwrap_or_else(|| cam.clone());
    let fps = analysis_fps(&h.config.clone().unwrap_or_default());
    let mut sub = stream.subscribe_pictures_analysing(fps);
    let mut run = match Run::new(h, &cam) {
        Ok(r) => r,
        Err(e) => {
            warn!("cannot start motion detection: {e}");
            return;
        }
    };
    h.state.send_modify(|s| s.detecting = true);
    while h.wanted() && !cam.retired() {
        // The detector is a consumer like a viewer: it keeps the analysed stream up.
        stream.touch();
        stream.ensure_running();
        match sub.wait_newer(Duration::from_millis(100)) {
            Some(frame) => run.frame(&frame),
            None => run.no_frame(),
        }
    }
    run.finish();
    h.state.send_modify(|s| {
        s.detecting = false;
        s.boxes.clear();
    });
}

/// A stored event in progress.
struct Stored {
    id: i64,
    events: Arc<Events>,
    best_score: f32,
    snapshot_at: i64,
    /// Stored frames (media time, relative path), oldest first.
    frames: Vec<(i64, String)>,
    frame_interval: i64,
}

/// The state of one detection run.
struct Run<'a> {
    h: &'a MotionHandle,
    camera: String,
    settings: camhub_config::Motion,
    detector: Option<Detector>,
    /// Picture size the detector's polygons were scaled for.
    detector_size: (u32, u32),
    tracker: Tracker,
    /// Which pictures to analyse, `fps` a second in media time.
    pacer: Pacer,
    /// Media time of the last analysed picture.
    last_t: Option<i64>,
    /// Media time and Unix ms of the last analysed picture: media times map to wall times with it.
    last_clock: Option<(i64, i64)>,
    /// Unix ms of the last picture (for ending an event when pictures stop).
    last_frame_unix: i64,
    /// Unix ms of the last picture with motion: an event's recorded end.
    last_motion_unix: i64,
    /// The `last_ms` last written to the store for the current event.
    last_recorded: i64,
    /// Decoding the main stream to learn its size, since when (see [`Run::main_size`]).
    main_probe: Option<(super::taps::PictureSubscriber, std::time::Instant)>,
    /// The main stream gave no picture in time: polygons stay in the analysed picture's pixels.
    main_probe_given_up: bool,
    stored: Option<Stored>,
    jpeg_decoder: JpegDecoder,
    encoder: JpegEncoder,
    scaler: Scaler,
    /// The camera (its status, its metrics).
    cam: Arc<Camera>,
}

impl<'a> Run<'a> {
    fn new(h: &'a MotionHandle, cam: &Arc<Camera>) -> Result<Run<'a>, camhub_codec::CodecError> {
        let settings = h.config.clone().unwrap_or_default();
        let fps = analysis_fps(&settings);
        Ok(Run {
            h,
            camera: cam.id().to_owned(),
            tracker: Tracker::new(
                duration_ms(settings.start_after),
                duration_ms(settings.end_after),
            ),
            pacer: Pacer::new(fps),
            settings,
            detector: None,
            detector_size: (0, 0),
            last_t: None,
            last_clock: None,
            last_frame_unix: 0,
            last_motion_unix: 0,
            last_recorded: 0,
            main_probe: None,
            main_probe_given_up: false,
            stored: None,
            jpeg_decoder: JpegDecoder::new()?,
            encoder: JpegEncoder::new()?,
            scaler: Scaler::new(),
            cam: cam.clone(),
        })
    }

    /// The detector for pictures of the camera's main size `main` (its polygons are in those
    /// pixels), made again when that size changes.
    fn detector(&mut self, main: (u32, u32)) -> &mut Detector {
        if self.detector.is_none() || self.detector_size != main {
            let scale = |polys: &[Vec<[f64; 2]>]| -> Vec<Vec<(f32, f32)>> {
                polys
                    .iter()
                    .map(|p| {
                        p.iter()
                            .map(|[x, y]| {
                                (
                                    (*x / f64::from(main.0.max(1))) as f32,
                                    (*y / f64::from(main.1.max(1))) as f32,
                                )
                            })
                            .collect()
                    })
                    .collect()
            };
            let settings = Settings {
                threshold: self.settings.threshold,
                min_area: self.settings.min_area as f32,
                light_switch: self.settings.light_switch,
                masks: scale(&self.settings.masks),
                zones: scale(&self.settings.zones),
            };
            self.detector = Some(Detector::new(settings));
            self.detector_size = main;
        }
        self.detector
            .get_or_insert_with(|| Detector::new(Settings::default()))
    }

    /// The size of the camera's main picture, which polygons are given in: known from its status
    /// once a picture of it was decoded. A camera analysed on its substream whose main picture was
    /// not seen yet has its main stream decoded until one picture is (like a short viewer; the
    /// connection closes after `idle_timeout`); until then polygons are taken in the analysed
    /// picture's pixels.
    fn main_size(&mut self, analysed: (u32, u32)) -> (u32, u32) {
        if self.cam.substream.is_none() {
            return analysed;
        }
        let known = {
            let s = self.cam.status.borrow();
            s.width.zip(s.height)
        };
        if let Some(size) = known {
            self.main_probe = None;
            return size;
        }
        let polygons = !self.settings.masks.is_empty() || !self.settings.zones.is_empty();
        if polygons {
            match &self.main_probe {
                Some((_, since)) if since.elapsed() > MAIN_PROBE_FOR => {
                    warn!(
                        "the main stream gave no picture within {}s: motion masks and zones are \
                         read as pixels of the substream for now",
                        MAIN_PROBE_FOR.as_secs()
                    );
                    self.main_probe = None;
                    self.main_probe_given_up = true;
                }
                Some(_) => self.cam.touch(),
                None if !self.main_probe_given_up => {
                    self.main_probe = Some((
                        // One picture is enough, whichever.
                        self.cam.subscribe_pictures_analysing(0.0),
                        std::time::Instant::now(),
                    ));
                }
                None => {}
            }
        }
        analysed
    }

    fn frame(&mut self, frame: &Frame) {
        let unix = i64::try_from(frame.unix_ms).unwrap_or(i64::MAX);
        // Media time: the stream's own clock where it has one, so detection is measured in the
        // camera's time, not in when pictures happened to reach this thread.
        let t = frame.pts.map_or(unix, |pts| pts.div_euclid(90));
        self.last_frame_unix = unix;
        if !self.pacer.take(t) {
            return;
        }
        self.last_t = Some(t);
        self.last_clock = Some((t, unix));
        let main = self.main_size((frame.width, frame.height));
        let cpu = camhub_codec::thread_cpu_time();
        let analysis = match &frame.content {
            FrameContent::Picture(p) => match p.luma8() {
                Some((luma, stride)) => self.detector(main).analyse(
                    luma,
                    stride,
                    frame.width as usize,
                    frame.height as usize,
                ),
                None => match self.scaler.scale(p, frame.width, frame.height) {
                    Ok(converted) => analyse_picture(self.detector(main), &converted),
                    Err(e) => {
                        debug!("cannot convert a picture for motion detection: {e}");
                        return;
                    }
                },
            },
            FrameContent::Jpeg(jpeg) => {
                let (w, h) = (frame.width, frame.height);
                let min_w = ANALYSIS_WIDTH.min(w);
                let min_h = (u64::from(h) * u64::from(min_w) / u64::from(w.max(1))) as u32;
                match self.jpeg_decoder.decode(jpeg, min_w, min_h) {
                    Ok(p) => analyse_picture(self.detector(main), &p),
                    Err(e) => {
                        debug!("cannot decode a JPEG for motion detection: {e}");
                        return;
                    }
                }
            }
        };
        let metrics = &self.cam.metrics;
        Metrics::add(&metrics.motion_frames, 1);
        Metrics::add(&metrics.motion_ns, cpu_since(cpu));
        if analysis.motion {
            self.last_motion_unix = unix;
        }
        let transition = self.tracker.update(t, analysis.motion);
        match transition {
            Some(Transition::Start { first_ms, at_ms }) => self.start(&analysis, first_ms, at_ms),
            Some(Transition::End { last_ms, at_ms }) => self.end(last_ms, at_ms),
            None => {}
        }
        if self.tracker.active() {
            self.progress(frame, &analysis, t);
        }
        let active = self.tracker.active();
        self.h.state.send_if_modified(|s| {
            let boxes = if active {
                analysis.boxes.clone()
            } else {
                Vec::new()
            };
            let changed = s.score != analysis.score || s.boxes != boxes;
            s.score = analysis.score;
            s.boxes = boxes;
            changed
        });
    }

    /// Unix ms of a media time (through the newest picture's pair of clocks).
    fn unix_of(&self, media_ms: i64) -> i64 {
        match self.last_clock {
            Some((t, unix)) => unix.saturating_sub(t.saturating_sub(media_ms)),
            None => media_ms,
        }
    }

    fn start(&mut self, analysis: &Analysis, first_ms: i64, at_ms: i64) {
        let start_unix = self.unix_of(first_ms);
        let peak_box = analysis.boxes.first().copied();
        let id = self.h.events().and_then(|events| {
            let bx = peak_box.map(event_box);
            match events
                .store
                .event_start(&self.camera, start_unix, f64::from(analysis.score), bx)
            {
                Ok(id) => {
                    self.stored = Some(Stored {
                        id,
                        events,
                        best_score: 0.0,
                        snapshot_at: i64::MIN,
                        frames: Vec::new(),
                        frame_interval: FIRST_FRAME_INTERVAL_MS,
                    });
                    Some(id)
                }
                Err(e) => {
                    warn!("cannot store a motion event: {e}");
                    None
                }
            }
        });
        debug!(event = ?id, "motion started");
        let info = EventInfo {
            id,
            start_ms: u64::try_from(start_unix).unwrap_or(0),
            end_ms: None,
            media_start_ms: first_ms,
            media_at_ms: at_ms,
            peak_score: analysis.score,
            peak_box,
        };
        self.h.state.send_modify(|s| {
            s.active = true;
            s.starts += 1;
            s.event = Some(info);
        });
    }

    /// Records an active event's progress: peak, best snapshot, frames spread over the event.
    fn progress(&mut self, frame: &Frame, analysis: &Analysis, t: i64) {
        let peak = self
            .h
            .state
            .borrow()
            .event
            .as_ref()
            .map_or(0.0, |e| e.peak_score);
        let new_peak = analysis.score > peak;
        if new_peak {
            let bx = analysis.boxes.first().copied();
            self.h.state.send_modify(|s| {
                if let Some(e) = &mut s.event {
                    e.peak_score = analysis.score;
                    e.peak_box = bx;
                }
            });
        }
        let Some(stored) = &self.stored else {
            return;
        };
        // The event lasts until its last motion picture, not through the quiet `end_after` wait.
        let mut update = EventUpdate {
            last_ms: self.last_motion_unix,
            ..EventUpdate::default()
        };
        if new_peak {
            update.peak = Some((
                f64::from(analysis.score),
                analysis.boxes.first().copied().map(event_box),
            ));
        }
        let want_snapshot = analysis.score > stored.best_score * SNAPSHOT_GROWTH
            && t.saturating_sub(stored.snapshot_at) >= SNAPSHOT_EVERY_MS;
        let want_frame = self.settings.frames > 0
            && stored
                .frames
                .last()
                .is_none_or(|(at, _)| t.saturating_sub(*at) >= stored.frame_interval);
        let (id, events) = (stored.id, stored.events.clone());
        let jpeg = if want_snapshot || want_frame {
            self.jpeg(frame)
        } else {
            None
        };
        if let (Some(jpeg), true) = (&jpeg, want_snapshot) {
            match events.write(
                &self.camera,
                id,
                &format!("snapshot-{t}"),
                self.last_frame_unix,
                jpeg,
            ) {
                Ok(file) => {
                    update.snapshot = Some(file);
                    if let Some(s) = &mut self.stored {
                        s.best_score = analysis.score;
                        s.snapshot_at = t;
                    }
                }
                Err(e) => warn!("cannot write a motion snapshot: {e}"),
            }
        }
        if let (Some(jpeg), true) = (&jpeg, want_frame) {
            let max = self.settings.frames as usize;
            if let Some(s) = &mut self.stored {
                // Full: keep every other frame (the first always) and space the next ones twice as
                // far, so the frames stay spread over however long the event turns out to be.
                if s.frames.len() >= max {
                    let mut i = 0;
                    s.frames.retain(|(_, rel)| {
                        let keep = i % 2 == 0;
                        if !keep {
                            update.remove_frames.push(rel.clone());
                        }
                        i += 1;
                        keep
                    });
                    s.frame_interval *= 2;
                }
            }
            match events.write(
                &self.camera,
                id,
                &format!("frame-{t}"),
                self.last_frame_unix,
                jpeg,
            ) {
                Ok((rel, bytes)) => {
                    update.add_frames.push((rel.clone(), bytes));
                    if let Some(s) = &mut self.stored {
                        s.frames.push((t, rel));
                    }
                }
                Err(e) => warn!("cannot write a motion frame: {e}"),
            }
        }
        // Progress alone is written at most once a second: each write is a synced transaction,
        // and a kill -9 then loses under a second of an event's end.
        let only_progress = update.peak.is_none()
            && update.snapshot.is_none()
            && update.add_frames.is_empty()
            && update.remove_frames.is_empty();
        if only_progress && update.last_ms.saturating_sub(self.last_recorded) < 1000 {
            return;
        }
        self.last_recorded = update.last_ms;
        match events.store.event_update(id, &update) {
            Ok(old) => {
                if let Some(old) = old {
                    events.remove_file(&old);
                }
                for rel in &update.remove_frames {
                    events.remove_file(rel);
                }
            }
            Err(e) => {
                // Deleted while it lasted (an admin), or the store failed: the files just written
                // belong to no record, and this event is stored no further.
                debug!("motion event {id} is not recorded any more: {e}");
                for (rel, _) in update.snapshot.iter().chain(&update.add_frames) {
                    events.remove_file(rel);
                }
                self.stored = None;
            }
        }
    }

    /// The picture as a JPEG: a JPEG camera's own, or the decoded picture encoded.
    fn jpeg(&mut self, frame: &Frame) -> Option<Bytes> {
        let encoded = match &frame.content {
            FrameContent::Jpeg(jpeg) => return Some(jpeg.clone()),
            FrameContent::Picture(p) => super::encode::encode_jpeg(
                &mut self.encoder,
                &mut self.scaler,
                p,
                (frame.width, frame.height),
                true,
                SNAPSHOT_QUALITY,
            ),
        };
        encoded
            .map_err(|e| debug!("cannot encode a motion snapshot: {e}"))
            .ok()
    }

    fn end(&mut self, last_ms: i64, at_ms: i64) {
        let end_unix = self.unix_of(last_ms);
        if let Some(stored) = self.stored.take() {
            if let Err(e) = stored.events.store.event_end(stored.id, end_unix) {
                warn!("cannot end motion event {}: {e}", stored.id);
            }
            stored.events.prune(end_unix);
        }
        debug!("motion ended");
        self.h.state.send_modify(|s| {
            s.active = false;
            s.boxes.clear();
            if let Some(e) = &mut s.event {
                e.end_ms = Some(u64::try_from(end_unix).unwrap_or(0));
                e.media_at_ms = at_ms;
            }
        });
    }

    /// No picture came for a while: a stream that stopped (camera gone) ends an active event
    /// after `end_after` of wall time, at its last picture.
    fn no_frame(&mut self) {
        if !self.tracker.active() || self.last_frame_unix == 0 {
            return;
        }
        let now = i64::try_from(super::unix_ms()).unwrap_or(i64::MAX);
        if now - self.last_frame_unix >= duration_ms(self.settings.end_after) as i64 {
            self.finish();
        }
    }

    /// Ends an active event (detection stops, or the stream stopped).
    fn finish(&mut self) {
        let t = self.last_t.unwrap_or(0);
        if let Some(Transition::End { last_ms, at_ms }) = self.tracker.finish(t) {
            self.end(last_ms, at_ms);
        }
    }
}

/// Runs the detector on a picture whose luma must first be found (a decoded JPEG, a converted
/// picture).
fn analyse_picture(detector: &mut Detector, p: &Picture) -> Analysis {
    match p.luma8() {
        Some((luma, stride)) => {
            detector.analyse(luma, stride, p.width() as usize, p.height() as usize)
        }
        None => Analysis::default(),
    }
}

fn event_box(r: Rect) -> EventBox {
    EventBox {
        x: f64::from(r.x),
        y: f64::from(r.y),
        w: f64::from(r.w),
        h: f64::from(r.h),
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
