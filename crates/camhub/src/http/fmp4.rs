//! A camera's own H.264 / H.265 as fragmented MP4, for browsers and players, without decoding or
//! re-encoding: every viewer is a packet-tap consumer. [`Mp4Writer`] turns one viewer's packet
//! deliveries into an init segment and one fragment per access unit; the MSE WebSocket
//! ([`super::mse`]) and `GET /api/cameras/{id}/stream.mp4` (here) send what it writes.
//!
//! Instant start and the live edge come from the tap: a new viewer starts at the cached GOP's
//! keyframe at once (its frames go out back to back with their own spacing, so the player can
//! jump to the newest one), and a viewer that falls [`MAX_LAG`] behind (a slow link, a paused
//! tab) is moved to the newest keyframe by the tap itself. Timestamps are rebased per viewer onto
//! one continuous timeline: a skip or a camera reconnect leaves no gap in what the player has
//! buffered, so it never stalls on a hole, and the distance to the live edge is what the player
//! holds, not what the camera's clock says (a camera clock running fast cannot make it creep).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use camhub_media::annexb::{nal_units, Coding};
use camhub_media::fmp4::{init_segment, Fragmenter, Sample, Track};
use tokio::sync::watch;

use super::serve::ConnWritten;
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::camera::{Admission, ViewerBytes};
use crate::hub::status::Metrics;
use crate::hub::taps::{Delivery, PacketSubscriber};
use crate::hub::{Camera, Hub};

/// How far behind the newest packet a viewer may fall before the tap moves it to the newest
/// keyframe. A player holds about this much at most; less would resync viewers on ordinary
/// network jitter.
pub const MAX_LAG: Duration = Duration::from_millis(1500);
/// How long `stream.mp4` waits for the camera's first keyframe before answering 503.
const FIRST_KEYFRAME_WITHIN: Duration = Duration::from_secs(15);
/// A frame's duration when the stream does not say yet (25 fps, in 90 kHz ticks).
const DEFAULT_DURATION: u32 = 3600;
/// Frame intervals above this (2 s) are a pause or a skip, not the frame rate.
const MAX_DURATION: i64 = 180_000;

/// The codec a packet stream carries, if a browser can be given it as is.
pub fn coding_of(codec: &str) -> Option<Coding> {
    match codec {
        "h264" => Some(Coding::H264),
        "h265" => Some(Coding::H265),
        _ => None,
    }
}

/// Why `camera` has no encoded stream to give a player, if it has none at all: the built-in demo
/// draws its pictures and sends no packets (unless it is transcoded).
pub fn no_packets(camera: &Camera) -> Option<String> {
    (camera.decode.demo && camera.transcode.is_none()).then(|| {
        format!(
            "camera {} is the built-in demo (a drawn test pattern, no H.264): use its JPEG stream, \
             or set transcode = \"h264\" on it",
            camera.id()
        )
    })
}

/// Whether a client that can play `codecs` (RFC 6381 strings such as `avc1.640028`, as it tested
/// them with `MediaSource.isTypeSupported`) can play `coding`: any profile of the family counts,
/// since a browser that plays one H.264 profile plays the ones cameras send.
pub fn client_plays(codecs: &[String], coding: Coding) -> bool {
    let families: &[&str] = match coding {
        Coding::H264 => &["avc1", "avc3"],
        Coding::H265 => &["hvc1", "hev1"],
    };
    codecs.iter().any(|c| {
        let family = c.split('.').next().unwrap_or("").trim();
        families.iter().any(|f| f.eq_ignore_ascii_case(family))
    })
}

/// What an [`Mp4Writer`] produced for one delivery.
#[derive(Debug)]
pub enum Piece {
    /// A new init segment (the first, or after the parameter sets changed): the codec string a
    /// player opens its decoder with, and the segment.
    Init {
        /// RFC 6381 codec string, e.g. `avc1.640028`.
        codec: String,
        /// Picture size from the SPS.
        size: (u32, u32),
        /// The `ftyp` + `moov` bytes.
        data: Bytes,
    },
    /// One `moof` + `mdat` (one access unit).
    Media {
        /// The fragment.
        data: Bytes,
        /// It starts with a keyframe.
        keyframe: bool,
        /// Its presentation time on the viewer's timeline, seconds (what a player's
        /// `currentTime` shows).
        time: f64,
        /// When camhub received the frame from the camera, ms since the Unix epoch.
        unix_ms: u64,
    },
}

/// One viewer's fMP4 state: the track it was given, and its own timeline.
pub struct Mp4Writer {
    track: Option<Track>,
    fragmenter: Fragmenter,
    generation: u64,
    /// Waiting for a keyframe (at the start, after a skip, after a reconnect).
    awaiting_keyframe: bool,
    /// Output dts = camera dts + `offset` (set at every join of the timeline).
    offset: Option<i64>,
    /// The camera dts of the previous access unit.
    last_in_dts: Option<i64>,
    /// Output dts the next access unit continues from (previous + its duration).
    next_out_dts: i64,
    duration: u32,
    /// Times this viewer was moved to a newer keyframe.
    pub resyncs: u64,
}

impl Default for Mp4Writer {
    fn default() -> Self {
        Mp4Writer {
            track: None,
            fragmenter: Fragmenter::new(),
            generation: 0,
            awaiting_keyframe: true,
            offset: None,
            last_in_dts: None,
            next_out_dts: 0,
            duration: DEFAULT_DURATION,
            resyncs: 0,
        }
    }
}

impl Mp4Writer {
    /// Goes on with another packet tap (a reload replaced the camera): from its next keyframe,
    /// on the same timeline.
    pub fn rejoin(&mut self) {
        self.awaiting_keyframe = true;
    }

    /// What to send for one delivery of a stream whose codec is `coding`: nothing (waiting for a
    /// keyframe), a fragment, or a new init segment and a fragment. An error is a keyframe whose
    /// parameter sets cannot be read (the stream cannot be described to a player).
    pub fn push(&mut self, d: &Delivery, coding: Coding) -> Result<Vec<Piece>, String> {
        let p = &d.packet;
        if d.skipped > 0 && self.track.is_some() && !self.awaiting_keyframe {
            self.resyncs += 1;
            self.awaiting_keyframe = true;
        }
        if p.generation != self.generation {
            // A new connection: its timestamps start anywhere, and it starts at a keyframe.
            self.generation = p.generation;
            self.awaiting_keyframe = true;
        }
        if self.awaiting_keyframe && !p.keyframe {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if p.keyframe {
            let nals: Vec<&[u8]> = nal_units(&p.data)
                .filter(|n| coding.is_parameter_set(n))
                .collect();
            if !nals.is_empty() {
                let track = Track::from_parameter_sets(coding, &nals).map_err(|e| e.to_string())?;
                if self.track.as_ref() != Some(&track) {
                    out.push(Piece::Init {
                        codec: track.codec_string.clone(),
                        size: (track.width, track.height),
                        data: Bytes::from(init_segment(&track)),
                    });
                    self.track = Some(track);
                }
            }
            if self.awaiting_keyframe {
                // Join the timeline where the previous access unit ended.
                self.offset = None;
                self.last_in_dts = None;
            }
            self.awaiting_keyframe = false;
        }
        let Some(track) = &self.track else {
            // A keyframe without parameter sets before any track: wait for one that has them.
            self.awaiting_keyframe = true;
            return Ok(out);
        };
        if let Some(last) = self.last_in_dts {
            let delta = p.dts.saturating_sub(last);
            if delta > 0 && delta <= MAX_DURATION {
                self.duration = delta as u32;
            }
        }
        self.last_in_dts = Some(p.dts);
        let offset = *self
            .offset
            .get_or_insert(self.next_out_dts.saturating_sub(p.dts));
        // Decode times must grow; a camera that sends B-frames over RTP (no dts there) would not.
        let dts = p.dts.saturating_add(offset).max(self.next_out_dts);
        let pts = p.pts.saturating_add(offset);
        let sample = Sample {
            data: &p.data,
            dts,
            pts,
            duration: self.duration,
            keyframe: p.keyframe,
        };
        out.push(Piece::Media {
            data: Bytes::from(self.fragmenter.fragment(track, &[sample])),
            keyframe: p.keyframe,
            time: pts as f64 / 90_000.0,
            unix_ms: p.unix_ms,
        });
        self.next_out_dts = dts.saturating_add(i64::from(self.duration));
        Ok(out)
    }
}

/// A packet viewer's place under the camera's `max_viewers_per_camera`, counted in a gauge of
/// its kind while it lives.
pub struct ViewerGauge {
    camera: Arc<Camera>,
    which: fn(&Metrics) -> &AtomicU64,
    /// Held for its Drop: the place under `max_viewers_per_camera`.
    _admission: Admission,
}

impl ViewerGauge {
    /// Admits one viewer of `camera` and adds one to its gauge `which`; the error when the
    /// camera has all the viewers it may have.
    pub fn new(
        camera: Arc<Camera>,
        which: fn(&Metrics) -> &AtomicU64,
    ) -> Result<ViewerGauge, Error> {
        let admission = camera.admit()?;
        Metrics::add(which(&camera.metrics), 1);
        Ok(ViewerGauge {
            camera,
            which,
            _admission: admission,
        })
    }
}

impl Drop for ViewerGauge {
    fn drop(&mut self) {
        (self.which)(&self.camera.metrics).fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `GET /api/cameras/{id}/stream.mp4`: progressive fragmented MP4 of the camera's own stream,
/// for `<video src>`, VLC, ffplay and scripts. Answers once the first keyframe is at hand (at once
/// from the cached GOP), 415 for a camera whose codec no browser plays as is, 503 when the camera
/// gives nothing in time.
pub async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    conn: Option<Extension<ConnWritten>>,
) -> Result<Response, Error> {
    for (k, _) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k != "token" {
            return Err(Error::new(
                ErrorKind::BadRequest,
                format!("{}: stream.mp4 takes no parameters", k.escape_default()),
            ));
        }
    }
    let camera = state.hub.camera(&id)?;
    if let Some(why) = no_packets(&camera) {
        return Err(Error::new(ErrorKind::UnsupportedMedia, why));
    }
    let gauge = ViewerGauge::new(camera.clone(), |m| &m.mp4_viewers)?;
    let mut viewer = Mp4Viewer {
        sub: camera.subscribe_player_packets(MAX_LAG),
        writer: Mp4Writer::default(),
        gauge,
        bytes: camera.register_viewer(conn.map(|Extension(ConnWritten(w))| w)),
        camera,
        hub: state.hub.clone(),
        id,
        shutdown: state.shutdown.clone(),
        pending: Vec::new(),
        resyncs_seen: 0,
    };
    let first = tokio::time::timeout(FIRST_KEYFRAME_WITHIN, viewer.first_init()).await;
    let init = match first {
        Ok(Ok(init)) => init,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            let status = viewer.camera.status.borrow().clone();
            let why = status
                .last_error
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "camera {} gave no keyframe within {} s{why}",
                    viewer.camera.id(),
                    FIRST_KEYFRAME_WITHIN.as_secs()
                ),
            ));
        }
    };
    viewer.bytes.produce(init.len());
    Metrics::add(&viewer.camera.metrics.packet_bytes_out, init.len() as u64);
    let head = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(init) });
    let rest = futures::stream::unfold(viewer, |mut v| async move {
        let chunk = v.next_chunk().await?;
        Some((Ok::<Bytes, std::io::Error>(chunk), v))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "video/mp4")
        .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
        .header("X-Content-Type-Options", "nosniff")
        .body(Body::from_stream(futures::StreamExt::chain(head, rest)))
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot build the response: {e}"),
            )
        })
}

/// One `stream.mp4` response's state.
struct Mp4Viewer {
    sub: PacketSubscriber,
    writer: Mp4Writer,
    #[allow(dead_code)] // held for its Drop: the viewer counts while the response lives
    gauge: ViewerGauge,
    bytes: Arc<ViewerBytes>,
    camera: Arc<Camera>,
    hub: Arc<Hub>,
    id: String,
    shutdown: watch::Receiver<bool>,
    /// Fragments produced but not yet handed out.
    pending: Vec<Bytes>,
    resyncs_seen: u64,
}

impl Mp4Viewer {
    /// Waits for the first init segment; the fragment that came with it stays pending.
    async fn first_init(&mut self) -> Result<Bytes, Error> {
        loop {
            let d = self.sub.next().await;
            self.camera.touch();
            let coding = self.coding()?;
            let pieces = self.writer.push(&d, coding).map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("camera {}: {e}", self.camera.id()),
                )
            })?;
            let mut init = None;
            let mut media = Vec::new();
            for piece in pieces {
                match piece {
                    Piece::Init { data, .. } => init = Some(data),
                    Piece::Media { data, .. } => media.push(data),
                }
            }
            if let Some(init) = init {
                self.pending = media;
                return Ok(init);
            }
        }
    }

    /// The camera's codec, if a player can be given it as is.
    fn coding(&self) -> Result<Coding, Error> {
        let codec = self
            .sub
            .params()
            .map(|p| p.codec)
            .unwrap_or_else(|| "unknown".into());
        coding_of(&codec).ok_or_else(|| {
            Error::new(
                ErrorKind::UnsupportedMedia,
                format!(
                    "camera {} sends {codec}, which players cannot be given as MP4 without \
                     transcoding: use stream.mjpeg, or set transcode = \"h264\" on the camera",
                    self.camera.id()
                ),
            )
        })
    }

    /// The next fragment (or init segment after a change); None ends the response.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if !self.pending.is_empty() {
                let chunk = self.pending.remove(0);
                self.bytes.produce(chunk.len());
                Metrics::add(&self.camera.metrics.packet_bytes_out, chunk.len() as u64);
                return Some(chunk);
            }
            if *self.shutdown.borrow() {
                return None;
            }
            let d = tokio::select! {
                d = self.sub.next() => d,
                _ = self.shutdown.changed() => return None,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {
                    if self.camera.retired() && !self.follow() {
                        return None;
                    }
                    continue;
                }
            };
            self.camera.touch();
            let coding = self.coding().ok()?;
            let pieces = self.writer.push(&d, coding).ok()?;
            if self.writer.resyncs > self.resyncs_seen {
                Metrics::add(
                    &self.camera.metrics.resyncs,
                    self.writer.resyncs - self.resyncs_seen,
                );
                self.resyncs_seen = self.writer.resyncs;
            }
            // A progressive file has one init segment; a new one mid-file (new parameter sets)
            // is what players of fragmented MP4 accept as a new moov.
            self.pending = pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Init { data, .. } | Piece::Media { data, .. } => data,
                })
                .collect();
        }
    }

    /// After a config reload replaced the camera: the same response goes on from the new one.
    fn follow(&mut self) -> bool {
        let Ok(cam) = self.hub.camera(&self.id) else {
            return false;
        };
        if Arc::ptr_eq(&cam, &self.camera) {
            return false;
        }
        let Ok(gauge) = ViewerGauge::new(cam.clone(), |m| &m.mp4_viewers) else {
            return false;
        };
        self.gauge = gauge;
        self.sub = cam.subscribe_player_packets(MAX_LAG);
        self.writer.rejoin();
        self.bytes = cam.register_viewer(None);
        self.camera = cam;
        true
    }
}
