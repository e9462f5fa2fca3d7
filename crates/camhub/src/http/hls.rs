//! `GET /api/cameras/{id}/hls/index.m3u8`: low-latency HLS of the camera's own H.264 / H.265 for
//! players without Media Source Extensions (Safari's native player, TVs, VLC, ffmpeg). One
//! segmenter per camera ([`camhub_media::hls::Segmenter`], a packet-tap consumer: no decode) runs
//! while someone asks for the playlist or its segments, and stops [`IDLE`] after the last request:
//! segments exist only while watched, at most [`camhub_media::hls::KEEP_SEGMENTS`] of them.
//!
//! Segment, part and init URLs come from the playlist (`seg.m4s?msn=`, `part.m4s?msn=&part=`,
//! `init.mp4?id=`); a `token` in the playlist's URL is carried into them. Blocking playlist reloads
//! (`_HLS_msn`, `_HLS_part`) and the preload-hinted part are held until they exist (at most
//! [`HOLD`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use camhub_media::annexb::Coding;
use camhub_media::hls::{AccessUnit, Segmenter};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::debug;

use super::fmp4::{no_packets, unplayable};
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::status::Metrics;
use crate::hub::Camera;

/// A segmenter nobody asked anything of for this long stops (and its segments go).
pub const IDLE: Duration = Duration::from_secs(15);
/// Longest a blocking request is held.
pub const HOLD: Duration = Duration::from_secs(6);
/// How long the first playlist request waits for the first part (a camera connecting).
const FIRST_PART_WITHIN: Duration = Duration::from_secs(15);
/// Lag after which the segmenter skips to the newest keyframe.
const MAX_LAG: Duration = Duration::from_secs(4);

/// The running segmenters, by camera id.
#[derive(Default)]
pub struct Registry {
    running: Mutex<HashMap<String, Arc<Live>>>,
}

/// One camera's segmenter and what waits on it.
pub struct Live {
    camera: Arc<Camera>,
    segmenter: Mutex<Segmenter>,
    /// Bumped whenever the playlist changes (and when the segmenter stops).
    changed: watch::Sender<u64>,
    /// The segmenter's task has ended.
    stopped: AtomicBool,
    /// Why there is nothing to play (a codec HLS cannot carry), once known.
    error: Mutex<Option<String>>,
    /// When it was last asked for anything (ms since `started`).
    last_request_ms: AtomicU64,
    started: Instant,
}

impl Live {
    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_request_ms.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_request_ms.load(Ordering::Relaxed)) > IDLE.as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Segmenter> {
        self.segmenter.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until `ready` holds, the segmenter stops, or `limit` passes; returns `ready`'s last
    /// answer.
    async fn wait_for(&self, limit: Duration, ready: impl Fn(&Segmenter) -> bool) -> bool {
        let mut rx = self.changed.subscribe();
        let deadline = Instant::now() + limit;
        loop {
            if ready(&self.lock()) {
                return true;
            }
            if self.error().is_some() || self.stopped.load(Ordering::SeqCst) {
                return false;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return ready(&self.lock()),
            }
        }
    }
}

impl Registry {
    /// The camera's running segmenter, started if it is not running.
    fn live(self: &Arc<Self>, camera: &Arc<Camera>) -> Arc<Live> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(live) = running.get(camera.id()) {
            if Arc::ptr_eq(&live.camera, camera) && !live.stopped.load(Ordering::SeqCst) {
                live.touch();
                return live.clone();
            }
        }
        let live = Arc::new(Live {
            camera: camera.clone(),
            segmenter: Mutex::new(Segmenter::new(Coding::H264)),
            changed: watch::Sender::new(0),
            stopped: AtomicBool::new(false),
            error: Mutex::new(None),
            last_request_ms: AtomicU64::new(0),
            started: Instant::now(),
        });
        running.insert(camera.id().to_owned(), live.clone());
        tokio::spawn(run(self.clone(), live.clone()));
        live
    }

    /// The camera's running segmenter, if one runs (segment requests never start one).
    fn running(&self, camera: &Arc<Camera>) -> Option<Arc<Live>> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .get(camera.id())
            .filter(|l| Arc::ptr_eq(&l.camera, camera))
            .cloned()
    }

    fn remove(&self, live: &Arc<Live>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running
            .get(live.camera.id())
            .is_some_and(|l| Arc::ptr_eq(l, live))
        {
            running.remove(live.camera.id());
        }
    }

    /// Segmenters running now, per camera id (for `/metrics`).
    pub fn is_running(&self, id: &str) -> bool {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .get(id)
            .is_some_and(|l| !l.stopped.load(Ordering::SeqCst))
    }
}

/// The segmenter's task: packets in, parts out, until nobody asks for a while.
async fn run(registry: Arc<Registry>, live: Arc<Live>) {
    let camera = live.camera.clone();
    let mut sub = camera.subscribe_player_packets(MAX_LAG);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut coding = None;
    let mut generation = 0;
    loop {
        tokio::select! {
            d = sub.next() => {
                camera.touch();
                let codec = sub.params().map(|p| p.codec).unwrap_or_default();
                let Some(c) = Coding::from_name(&codec) else {
                    *live.error.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(unplayable(camera.id(), &codec));
                    break;
                };
                let mut seg = live.lock();
                if coding != Some(c) {
                    *seg = Segmenter::new(c);
                    coding = Some(c);
                }
                // Frames skipped (the segmenter lagged), or a new connection to the camera: the
                // segment in progress ends, and the next keyframe continues the timeline.
                if d.skipped > 0 || (generation != 0 && d.packet.generation != generation) {
                    seg.gap();
                }
                generation = d.packet.generation;
                let p = &d.packet;
                let au = AccessUnit { data: &p.data, dts: p.dts, pts: p.pts, keyframe: p.keyframe };
                match seg.push(&au) {
                    Ok(true) => {
                        drop(seg);
                        live.changed.send_modify(|n| *n += 1);
                    }
                    Ok(false) => {}
                    Err(e) => debug!(camera = %camera.id(), "HLS: a keyframe's parameter sets: {e}"),
                }
            }
            _ = tick.tick() => {
                if live.idle() || camera.retired() {
                    break;
                }
            }
        }
    }
    // The registry entry goes with the task: the next request starts a new segmenter. Waiters
    // wake and find it closed.
    live.stopped.store(true, Ordering::SeqCst);
    registry.remove(&live);
    drop(sub);
    debug!(camera = %camera.id(), "HLS segmenter stopped");
    live.changed.send_modify(|n| *n += 1);
}

/// Query parameters of the HLS requests.
#[derive(Default)]
struct HlsQuery {
    msn: Option<u64>,
    part: Option<usize>,
    id: Option<u32>,
    /// `&token=…` to carry into the playlist's URIs.
    carry: String,
}

fn parse_query(query: Option<&str>) -> Result<HlsQuery, Error> {
    let mut q = HlsQuery::default();
    let bad = |k: &str, v: &str| {
        Error::new(
            ErrorKind::BadRequest,
            format!(
                "{}={}: expected a number",
                k.escape_default(),
                v.escape_default()
            ),
        )
    };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "_HLS_msn" | "msn" => q.msn = Some(v.parse().map_err(|_| bad(&k, &v))?),
            "_HLS_part" | "part" => q.part = Some(v.parse().map_err(|_| bad(&k, &v))?),
            "id" => q.id = Some(v.parse().map_err(|_| bad(&k, &v))?),
            "token" => {
                q.carry = format!(
                    "&token={}",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            }
            "_HLS_skip" => {}
            _ => {
                return Err(Error::new(
                    ErrorKind::BadRequest,
                    format!("{}: not an HLS parameter", k.escape_default()),
                ))
            }
        }
    }
    Ok(q)
}

fn response(content_type: &str, body: Bytes) -> Result<Response, Error> {
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
        .body(axum::body::Body::from(body))
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot build the response: {e}"),
            )
        })
}

/// A part or init segment shared with the segmenter, as a response body without a copy.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn gone(what: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("{what} is not (or no longer) kept: reload the playlist"),
    )
}

/// `GET /api/cameras/{id}/hls/index.m3u8` (with `_HLS_msn` / `_HLS_part`: a blocking reload).
pub async fn playlist(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let q = parse_query(query.as_deref())?;
    let camera = state.hub.camera(&id)?;
    if let Some(why) = no_packets(&camera) {
        return Err(Error::new(ErrorKind::UnsupportedMedia, why));
    }
    let live = state.hls.live(&camera);
    let first = live
        .wait_for(FIRST_PART_WITHIN, |s| s.newest().is_some())
        .await;
    if let Some(e) = live.error() {
        return Err(Error::new(ErrorKind::UnsupportedMedia, e));
    }
    if !first {
        let status = camera.status.borrow().clone();
        let why = status
            .last_error
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "camera {id} gave no video within {} s{why}",
                FIRST_PART_WITHIN.as_secs()
            ),
        ));
    }
    if let Some(msn) = q.msn {
        let newest = live.lock().newest().map_or(0, |(m, _)| m);
        if msn > newest + 2 {
            return Err(Error::new(
                ErrorKind::BadRequest,
                format!("_HLS_msn={msn} is more than two segments ahead of {newest}"),
            ));
        }
        live.wait_for(HOLD, |s| s.has(msn, q.part)).await;
    }
    live.touch();
    let text = live.lock().playlist(&q.carry);
    response("application/vnd.apple.mpegurl", Bytes::from(text))
}

/// The running segmenter a segment request refers to.
fn running(state: &AppState, id: &str) -> Result<(Arc<Camera>, Arc<Live>), Error> {
    let camera = state.hub.camera(id)?;
    let live = state
        .hls
        .running(&camera)
        .ok_or_else(|| gone("HLS for this camera"))?;
    live.touch();
    Ok((camera, live))
}

/// `GET /api/cameras/{id}/hls/init.mp4?id=`.
pub async fn init(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let q = parse_query(query.as_deref())?;
    let (camera, live) = running(&state, &id)?;
    let data = live
        .lock()
        .init(q.id.unwrap_or(0))
        .ok_or_else(|| gone("this init segment"))?;
    Metrics::add(&camera.metrics.packet_bytes_out, data.len() as u64);
    response("video/mp4", Bytes::from_owner(Shared(data)))
}

/// `GET /api/cameras/{id}/hls/seg.m4s?msn=`: a complete segment.
pub async fn segment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let q = parse_query(query.as_deref())?;
    let msn = q.msn.ok_or_else(|| gone("a segment without msn"))?;
    let (camera, live) = running(&state, &id)?;
    live.wait_for(HOLD, |s| s.segment(msn).is_some_and(|x| x.complete))
        .await;
    let data = live
        .lock()
        .segment(msn)
        .filter(|s| s.complete)
        .map(|s| s.bytes())
        .ok_or_else(|| gone("this segment"))?;
    Metrics::add(&camera.metrics.packet_bytes_out, data.len() as u64);
    response("video/mp4", Bytes::from(data))
}

/// `GET /api/cameras/{id}/hls/part.m4s?msn=&part=`: a partial segment, held until it exists
/// when it is the next one (the playlist's preload hint).
pub async fn part(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let q = parse_query(query.as_deref())?;
    let (msn, index) = q
        .msn
        .zip(q.part)
        .ok_or_else(|| gone("a part without msn and part"))?;
    let (camera, live) = running(&state, &id)?;
    live.wait_for(HOLD, |s| s.part(msn, index).is_some() || s.has(msn, None))
        .await;
    let data = live
        .lock()
        .part(msn, index)
        .ok_or_else(|| gone("this part"))?;
    Metrics::add(&camera.metrics.packet_bytes_out, data.len() as u64);
    response("video/mp4", Bytes::from_owner(Shared(data)))
}
