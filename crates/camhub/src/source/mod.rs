//! Sources: the code that talks to cameras. Each source connects to one URL and yields
//! [`SourceEvent`]s — compressed video packets, whole JPEGs, or test-pattern ticks — and never
//! decodes: decoding happens on the camera's decode thread, only when someone needs pixels.
//! Every error message a source produces has the camera's credentials scrubbed out.

pub mod demo;
pub mod ffmpeg;
pub mod http;
pub mod rtsp;

use std::time::Duration;

use bytes::Bytes;
use camhub_codec::StreamParams;
use camhub_config::{SourceKind, SourceSpec};
use camhub_media::redact::scrub_secrets;

/// One thing a source produced.
#[derive(Debug)]
pub enum SourceEvent {
    /// Parameters for the packets that follow: (re)open the decoder. Sent before the first packet.
    Params(StreamParams),
    /// One compressed access unit.
    Packet {
        /// Annex B (or container-native, matching `Params`) bytes.
        data: Bytes,
        /// True for a keyframe (IDR / random access point).
        keyframe: bool,
        /// Presentation timestamp on a 90 kHz clock, if known.
        pts: Option<i64>,
        /// Decode timestamp on a 90 kHz clock, if the source knows it apart from `pts`.
        dts: Option<i64>,
    },
    /// One whole JPEG (MJPEG camera, snapshot URL, RTSP MJPEG).
    Jpeg(Bytes),
    /// A tick of the built-in test pattern: the decode thread draws frame `frame_no`.
    Pattern {
        /// Frame number, from 0.
        frame_no: u64,
        /// Wall-clock time of the tick, ms since the Unix epoch (drawn as the clock).
        unix_ms: u64,
        /// Picture width.
        width: u32,
        /// Picture height.
        height: u32,
    },
}

/// A source failure, already safe to show (credentials scrubbed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(pub String);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

/// Builds [`SourceError`]s that never contain the source URL's secrets.
#[derive(Debug, Clone)]
pub struct Scrubber {
    secrets: Vec<String>,
}

impl Scrubber {
    /// A scrubber for the secrets of a source's URL, as the config took them apart.
    pub fn for_spec(spec: &SourceSpec) -> Scrubber {
        Scrubber {
            secrets: spec.secrets.clone(),
        }
    }

    /// An error from any displayable message, scrubbed.
    pub fn err(&self, msg: impl std::fmt::Display) -> SourceError {
        SourceError(scrub_secrets(&msg.to_string(), &self.secrets))
    }
}

/// Per-connection options that come from the camera's config rather than its URL.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long connecting may take before it counts as a failure.
    pub connect_timeout: Duration,
    /// Bound on one JPEG from an HTTP camera.
    pub max_jpeg_bytes: usize,
    /// The camera's id, for naming threads (`cam-{id}/input`).
    pub camera: String,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            connect_timeout: Duration::from_secs(10),
            max_jpeg_bytes: 16 * 1024 * 1024,
            camera: "camera".into(),
        }
    }
}

/// An open connection to a camera.
#[allow(clippy::large_enum_variant)] // one per camera connection; boxing buys nothing
pub enum Source {
    /// RTSP via retina.
    Rtsp(rtsp::RtspSource),
    /// HTTP MJPEG or snapshot polling.
    Http(http::HttpSource),
    /// Anything libavformat opens.
    Ffmpeg(ffmpeg::FfmpegSource),
    /// The built-in test pattern.
    Demo(demo::DemoSource),
    /// Events from any stream: what a [`SourceOpener::scripted`] opener returns (lifecycle tests
    /// on tokio's paused clock).
    Scripted(futures::stream::BoxStream<'static, Result<SourceEvent, SourceError>>),
}

/// How a camera opens its connections: the real sources by default, or a function (tests that drive
/// the lifecycle rules through a scripted source on tokio's paused clock).
#[derive(Clone, Default)]
pub struct SourceOpener {
    scripted: Option<ScriptedOpen>,
}

/// A function that opens a scripted connection.
type ScriptedOpen =
    std::sync::Arc<dyn Fn(&SourceSpec) -> Result<Source, SourceError> + Send + Sync>;

impl SourceOpener {
    /// An opener that calls `open` for every connection attempt.
    pub fn scripted(
        open: impl Fn(&SourceSpec) -> Result<Source, SourceError> + Send + Sync + 'static,
    ) -> SourceOpener {
        SourceOpener {
            scripted: Some(std::sync::Arc::new(open)),
        }
    }

    /// Opens a connection to `spec`.
    pub async fn open(&self, spec: &SourceSpec, opts: &OpenOptions) -> Result<Source, SourceError> {
        match &self.scripted {
            Some(open) => open(spec),
            None => Source::open(spec, opts).await,
        }
    }
}

impl Source {
    /// Connects to `spec`. Fails (never hangs) within `opts.connect_timeout`.
    pub async fn open(spec: &SourceSpec, opts: &OpenOptions) -> Result<Source, SourceError> {
        let scrub = Scrubber::for_spec(spec);
        let fut = async {
            Ok(match &spec.kind {
                SourceKind::Rtsp { transport } => Source::Rtsp(
                    rtsp::RtspSource::open(
                        &spec.url_without_credentials,
                        spec.credentials.as_ref(),
                        *transport,
                        scrub.clone(),
                    )
                    .await?,
                ),
                SourceKind::Http {
                    poll_interval,
                    insecure_tls,
                } => Source::Http(
                    http::HttpSource::open(
                        &spec.url_without_credentials,
                        spec.credentials.as_ref(),
                        *poll_interval,
                        *insecure_tls,
                        opts,
                        scrub.clone(),
                    )
                    .await?,
                ),
                SourceKind::Ffmpeg {
                    input,
                    format,
                    options,
                    loop_file,
                } => Source::Ffmpeg(
                    ffmpeg::FfmpegSource::open(
                        input,
                        format.clone(),
                        options.clone(),
                        *loop_file,
                        &opts.camera,
                        scrub.clone(),
                    )
                    .await?,
                ),
                // A composite's source only keeps time: its pictures are drawn from its inputs
                // on its decode thread.
                SourceKind::Composite(c) => Source::Demo(demo::DemoSource::new(0, 0, c.fps)),
                SourceKind::Demo { width, height, fps } => {
                    Source::Demo(demo::DemoSource::new(*width, *height, *fps))
                }
            })
        };
        match tokio::time::timeout(opts.connect_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(SourceError(format!(
                "no answer from {} within {}s",
                spec.redacted,
                opts.connect_timeout.as_secs()
            ))),
        }
    }

    /// The next event. An error ends this connection (the hub reconnects).
    pub async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        match self {
            Source::Rtsp(s) => s.next().await,
            Source::Http(s) => s.next().await,
            Source::Ffmpeg(s) => s.next().await,
            Source::Demo(s) => s.next().await,
            Source::Scripted(s) => match futures::StreamExt::next(s).await {
                Some(r) => r,
                None => Err(SourceError("the scripted source ended".into())),
            },
        }
    }
}
