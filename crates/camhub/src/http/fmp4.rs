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
use camhub_media::fmp4::{init_segment, Fragmenter, Sample, Timeline, Track};
use tokio::sync::watch;

use super::serve::ConnWritten;
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::camera::ViewerBytes;
use crate::hub::outputs::PacketViewer;
pub use crate::hub::outputs::{no_packets, unplayable};
use crate::hub::status::Metrics;
use crate::hub::taps::{Delivery, PacketSubscriber};
use crate::hub::{Camera, Hub};

/// How far behind the newest packet a viewer may fall before the tap moves it to the newest
/// keyframe. A player holds about this much at most; less would resync viewers on ordinary
/// network jitter.
pub const MAX_LAG: Duration = Duration::from_millis(1500);
/// How long `stream.mp4` waits for the camera's first keyframe before answering 503.
const FIRST_KEYFRAME_WITHIN: Duration = Duration::from_secs(15);

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
    /// This viewer's own continuous timeline.
    timeline: Timeline,
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
            timeline: Timeline::default(),
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
                self.timeline.rejoin();
            }
            self.awaiting_keyframe = false;
        }
        let Some(track) = &self.track else {
            // A keyframe without parameter sets before any track: wait for one that has them.
            self.awaiting_keyframe = true;
            return Ok(out);
        };
        let (dts, pts, duration) = self.timeline.place(p.dts, p.pts);
        let sample = Sample {
            data: &p.data,
            dts,
            pts,
            duration,
            keyframe: p.keyframe,
        };
        out.push(Piece::Media {
            data: Bytes::from(self.fragmenter.fragment(track, &[sample])),
            keyframe: p.keyframe,
            time: pts as f64 / 90_000.0,
            unix_ms: p.unix_ms,
        });
        Ok(out)
    }
}

/// One player's feed of a camera's packets as fMP4 (an MSE WebSocket, a `stream.mp4`
/// response): its place under `max_viewers_per_camera`, its subscription and its writer. It
/// counts its resyncs and follows a reload that replaces the camera.
pub struct PlayerFeed {
    camera: Arc<Camera>,
    sub: PacketSubscriber,
    writer: Mp4Writer,
    /// Held for its Drop; replaced with the camera.
    _gauge: PacketViewer,
    kind: fn(&Metrics) -> &AtomicU64,
    resyncs_seen: u64,
}

impl PlayerFeed {
    /// Admits a viewer of kind `kind` (its gauge) and subscribes it to the camera's player
    /// packets; the error when the camera has all the viewers it may have.
    pub fn new(camera: Arc<Camera>, kind: fn(&Metrics) -> &AtomicU64) -> Result<PlayerFeed, Error> {
        let gauge = PacketViewer::new(camera.clone(), kind)?;
        Ok(PlayerFeed {
            sub: camera.subscribe_player_packets(MAX_LAG),
            camera,
            writer: Mp4Writer::default(),
            _gauge: gauge,
            kind,
            resyncs_seen: 0,
        })
    }

    /// The camera fed from.
    pub fn camera(&self) -> &Arc<Camera> {
        &self.camera
    }

    /// The next packet, and its coding; `Err(codec)` for a codec players cannot be given as
    /// is. Cancel-safe.
    pub async fn next(&mut self) -> (Delivery, Result<Coding, String>) {
        let d = self.sub.next().await;
        self.camera.touch();
        let codec = self.sub.params().map(|p| p.codec).unwrap_or_default();
        (d, Coding::from_name(&codec).ok_or(codec))
    }

    /// What to send for `d` ([`Mp4Writer::push`]), its resyncs counted.
    pub fn pieces(&mut self, d: &Delivery, coding: Coding) -> Result<Vec<Piece>, String> {
        let pieces = self.writer.push(d, coding);
        let resyncs = self.writer.resyncs;
        if resyncs > self.resyncs_seen {
            Metrics::add(&self.camera.metrics.resyncs, resyncs - self.resyncs_seen);
            self.resyncs_seen = resyncs;
        }
        pieces
    }

    /// After a config reload replaced the camera: goes on with the new one, from its next
    /// keyframe on the same timeline. False when there is none to go on with (removed, not
    /// replaced, or full).
    pub fn follow(&mut self, hub: &Hub) -> bool {
        let Ok(cam) = hub.camera(self.camera.id()) else {
            return false;
        };
        if Arc::ptr_eq(&cam, &self.camera) {
            return false;
        }
        let Ok(gauge) = PacketViewer::new(cam.clone(), self.kind) else {
            return false;
        };
        self._gauge = gauge;
        self.sub = cam.subscribe_player_packets(MAX_LAG);
        self.writer.rejoin();
        self.camera = cam;
        true
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
    let mut viewer = Mp4Viewer {
        bytes: camera.register_viewer(conn.map(|Extension(ConnWritten(w))| w)),
        feed: PlayerFeed::new(camera, |m| &m.mp4_viewers)?,
        hub: state.hub.clone(),
        shutdown: state.shutdown.clone(),
        pending: Vec::new(),
    };
    let first = tokio::time::timeout(FIRST_KEYFRAME_WITHIN, viewer.first_init()).await;
    let init = match first {
        Ok(Ok(init)) => init,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            let camera = viewer.feed.camera();
            let status = camera.status.borrow().clone();
            let why = status
                .last_error
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "camera {} gave no keyframe within {} s{why}",
                    camera.id(),
                    FIRST_KEYFRAME_WITHIN.as_secs()
                ),
            ));
        }
    };
    viewer.bytes.produce(init.len());
    Metrics::add(
        &viewer.feed.camera().metrics.packet_bytes_out,
        init.len() as u64,
    );
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
    feed: PlayerFeed,
    bytes: Arc<ViewerBytes>,
    hub: Arc<Hub>,
    shutdown: watch::Receiver<bool>,
    /// Fragments produced but not yet handed out.
    pending: Vec<Bytes>,
}

impl Mp4Viewer {
    /// Waits for the first init segment; the fragment that came with it stays pending.
    async fn first_init(&mut self) -> Result<Bytes, Error> {
        loop {
            let (d, coding) = self.feed.next().await;
            let id = self.feed.camera().id().to_owned();
            let coding = coding.map_err(|codec| {
                Error::new(ErrorKind::UnsupportedMedia, unplayable(&id, &codec))
            })?;
            let pieces = self
                .feed
                .pieces(&d, coding)
                .map_err(|e| Error::new(ErrorKind::Unavailable, format!("camera {id}: {e}")))?;
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

    /// The next fragment (or init segment after a change); None ends the response.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if !self.pending.is_empty() {
                let chunk = self.pending.remove(0);
                self.bytes.produce(chunk.len());
                let metrics = &self.feed.camera().metrics;
                Metrics::add(&metrics.packet_bytes_out, chunk.len() as u64);
                return Some(chunk);
            }
            if *self.shutdown.borrow() {
                return None;
            }
            let (d, coding) = tokio::select! {
                next = self.feed.next() => next,
                _ = self.shutdown.changed() => return None,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {
                    if self.feed.camera().retired() {
                        if !self.feed.follow(&self.hub) {
                            return None;
                        }
                        self.bytes = self.feed.camera().register_viewer(None);
                    }
                    continue;
                }
            };
            let pieces = self.feed.pieces(&d, coding.ok()?).ok()?;
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
}
