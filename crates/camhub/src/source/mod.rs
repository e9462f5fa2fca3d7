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
use camhub_media::redact::{scrub_secrets, secrets_of};

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
        /// Presentation timestamp in the stream's time base, if known.
        pts: Option<i64>,
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
    /// A scrubber for the secrets in `url`.
    pub fn for_url(url: &str) -> Scrubber {
        Scrubber {
            secrets: all_secrets(url),
        }
    }

    /// An error from any displayable message, scrubbed.
    pub fn err(&self, msg: impl std::fmt::Display) -> SourceError {
        SourceError(scrub_secrets(&msg.to_string(), &self.secrets))
    }
}

/// The secrets of `url` as written and as the `url` crate re-serialises it (libraries quote the
/// parsed form, where characters like `{` or a space are percent-encoded).
pub fn all_secrets(url: &str) -> Vec<String> {
    let mut secrets = secrets_of(url);
    if let Ok(parsed) = url::Url::parse(url) {
        secrets.extend(secrets_of(parsed.as_str()));
    }
    secrets.sort();
    secrets.dedup();
    secrets
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
}

impl Source {
    /// Connects to `spec`. Fails (never hangs) within `opts.connect_timeout`.
    pub async fn open(spec: &SourceSpec, opts: &OpenOptions) -> Result<Source, SourceError> {
        let scrub = Scrubber::for_url(&spec.url);
        let fut = async {
            Ok(match &spec.kind {
                SourceKind::Rtsp { transport } => Source::Rtsp(
                    rtsp::RtspSource::open(&spec.url, *transport, scrub.clone()).await?,
                ),
                SourceKind::Http {
                    poll_interval,
                    insecure_tls,
                } => Source::Http(
                    http::HttpSource::open(
                        &spec.url,
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
        }
    }
}

/// Percent-decodes URL userinfo (`p%40ss` → `p@ss`) for the protocol clients that take credentials
/// apart from the URL.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
