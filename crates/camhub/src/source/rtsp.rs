//! RTSP cameras through `retina`: H.264, H.265 and MJPEG (RFC 2435), TCP (default) or UDP, digest
//! or basic auth. H.264/H.265 frames are requested in Annex B form with parameter sets repeated on
//! every keyframe, so the decoder needs no out-of-band extradata and follows a new SPS (a resolution
//! change mid-stream) by itself. MJPEG frames arrive as whole JPEGs and are forwarded as they are.

use std::sync::Arc;

use bytes::Bytes;
use camhub_codec::{Codec, StreamParams};
use camhub_config::RtspTransport;
use camhub_media::annexb::{nal_units, Coding};
use futures::StreamExt;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionGroup, SessionOptions, SetupOptions,
    TcpTransportOptions, TeardownPolicy, Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat};

use super::{Scrubber, SourceError, SourceEvent};

/// The process's one RTSP session group: every session is registered in it, so that at shutdown
/// camhub can wait (bounded) for the TEARDOWN of each one it dropped, and cameras with few session
/// slots are not left with sessions that only expire a minute later.
pub fn session_group() -> Arc<SessionGroup> {
    static GROUP: std::sync::OnceLock<Arc<SessionGroup>> = std::sync::OnceLock::new();
    GROUP
        .get_or_init(|| Arc::new(SessionGroup::default().named("camhub".into())))
        .clone()
}

/// Waits up to `limit` for the TEARDOWN of every RTSP session that was closed (true if all were
/// attempted in time).
pub async fn await_teardowns(limit: std::time::Duration) -> bool {
    let group = session_group();
    tokio::time::timeout(limit, group.await_teardown())
        .await
        .is_ok()
}

/// A playing RTSP session.
pub struct RtspSource {
    demuxed: Demuxed,
    codec: Codec,
    params_sent: bool,
    pending: Option<SourceEvent>,
    scrub: Scrubber,
}

impl RtspSource {
    /// DESCRIBE, SETUP the first video stream camhub can decode, PLAY. `url` holds no userinfo: the
    /// config took the credentials apart (`SourceSpec::url_without_credentials` and `credentials`).
    pub async fn open(
        url: &str,
        credentials: Option<&camhub_config::Credentials>,
        transport: RtspTransport,
        scrub: Scrubber,
    ) -> Result<RtspSource, SourceError> {
        let url = url::Url::parse(url).map_err(|e| scrub.err(format!("bad RTSP URL: {e}")))?;
        let creds = credentials.map(|c| Credentials {
            username: c.user.clone(),
            password: c.password.clone(),
        });
        let options = SessionOptions::default()
            .creds(creds)
            .user_agent(format!("camhub/{}", env!("CARGO_PKG_VERSION")))
            .session_group(session_group())
            // Always say goodbye: cameras with few session slots (and our tests) see a TEARDOWN.
            .teardown(TeardownPolicy::Always);
        let mut session = Session::describe(url, options)
            .await
            .map_err(|e| scrub.err(e))?;
        let (index, codec) = session
            .streams()
            .iter()
            .enumerate()
            .find_map(|(i, s)| {
                if s.media() != "video" {
                    return None;
                }
                match s.encoding_name() {
                    "h264" => Some((i, Codec::H264)),
                    "h265" => Some((i, Codec::H265)),
                    "jpeg" => Some((i, Codec::Mjpeg)),
                    _ => None,
                }
            })
            .ok_or_else(|| {
                let found: Vec<String> =
                    session.streams().iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
                scrub.err(format!(
                    "the camera offers no H.264, H.265 or MJPEG video stream (it offers: {}); pick another stream URL",
                    found.join(", ")
                ))
            })?;
        let transport = match transport {
            RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
            RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
        };
        session
            .setup(
                index,
                SetupOptions::default()
                    .transport(transport)
                    .frame_format(FrameFormat::SIMPLE),
            )
            .await
            .map_err(|e| scrub.err(e))?;
        let playing = session
            .play(PlayOptions::default())
            .await
            .map_err(|e| scrub.err(e))?;
        let demuxed = playing.demuxed().map_err(|e| scrub.err(e))?;
        Ok(RtspSource {
            demuxed,
            codec,
            params_sent: false,
            pending: None,
            scrub,
        })
    }

    /// The next event; `Err` when the session ends or fails.
    pub async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        if let Some(ev) = self.pending.take() {
            return Ok(ev);
        }
        loop {
            match self.demuxed.next().await {
                None => return Err(SourceError("the camera ended the RTSP session".into())),
                Some(Err(e)) => return Err(self.scrub.err(e)),
                Some(Ok(CodecItem::VideoFrame(frame))) => {
                    let keyframe = frame.is_random_access_point();
                    let ts = frame.timestamp();
                    // The RTP clock (90 kHz for video, but read it rather than assume it).
                    let pts = camhub_media::timestamp::to_90khz(
                        ts.timestamp(),
                        1,
                        i64::from(ts.clock_rate().get()),
                    );
                    let data = Bytes::from(frame.into_data());
                    tracing::trace!(len = data.len(), keyframe, pts, nals = ?nal_types(&data, self.codec), "frame");
                    if self.codec == Codec::Mjpeg {
                        return Ok(SourceEvent::Jpeg(data));
                    }
                    let packet = SourceEvent::Packet {
                        data,
                        keyframe,
                        pts: Some(pts),
                        // RTP carries presentation times only.
                        dts: None,
                    };
                    if !self.params_sent {
                        self.params_sent = true;
                        self.pending = Some(packet);
                        return Ok(SourceEvent::Params(StreamParams::Codec {
                            codec: self.codec,
                            extradata: None,
                        }));
                    }
                    return Ok(packet);
                }
                Some(Ok(_)) => continue,
            }
        }
    }
}

/// NAL unit types in an Annex B access unit (for trace logs).
fn nal_types(data: &[u8], codec: Codec) -> Vec<u8> {
    let coding = if codec == Codec::H265 {
        Coding::H265
    } else {
        Coding::H264
    };
    nal_units(data).map(|nal| coding.nal_type(nal)).collect()
}
