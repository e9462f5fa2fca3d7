//! [`Decoder`]: compressed video (H.264, H.265, MJPEG, or whatever a libavformat input carries) to
//! [`Picture`]s through libavcodec. One decoder per camera stream, driven from that camera's decode
//! thread. Threading defaults to one thread: FFmpeg's frame threading delays output by one frame per
//! extra thread, which is latency a live view should not pay unless the camera cannot keep up.

use ff::codec::threading;
use ffmpeg_next as ff;

use crate::{CodecError, Picture};

/// Codecs that cameras send over RTSP and HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
    /// Motion JPEG (each frame a whole JPEG).
    Mjpeg,
}

impl Codec {
    /// Lower-case name used in the API (`h264`, `h265`, `mjpeg`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Mjpeg => "mjpeg",
        }
    }

    fn id(self) -> ff::codec::Id {
        match self {
            Codec::H264 => ff::codec::Id::H264,
            Codec::H265 => ff::codec::Id::HEVC,
            Codec::Mjpeg => ff::codec::Id::MJPEG,
        }
    }
}

/// What a decoder needs to know about a stream before its first packet.
#[derive(Clone)]
pub enum StreamParams {
    /// A known codec, with out-of-band parameter sets (avcC / hvcC) if the packets need them.
    /// Annex B streams with in-band SPS/PPS (retina's `FrameFormat::SIMPLE`) need none.
    Codec {
        /// The codec.
        codec: Codec,
        /// Codec extradata (avcC / hvcC record), if any.
        extradata: Option<Vec<u8>>,
    },
    /// Parameters straight from a libavformat input (the `ffmpeg:` source): any codec FFmpeg knows.
    Ffmpeg(ff::codec::Parameters),
}

impl std::fmt::Debug for StreamParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamParams::Codec { codec, extradata } => {
                write!(
                    f,
                    "{codec:?} (extradata {} bytes)",
                    extradata.as_ref().map_or(0, Vec::len)
                )
            }
            StreamParams::Ffmpeg(p) => write!(f, "ffmpeg {:?}", p.id()),
        }
    }
}

impl StreamParams {
    /// Codec name for status reports.
    pub fn codec_name(&self) -> String {
        match self {
            StreamParams::Codec { codec, .. } => codec.name().to_owned(),
            StreamParams::Ffmpeg(p) => match p.id() {
                ff::codec::Id::H264 => "h264".into(),
                ff::codec::Id::HEVC => "h265".into(),
                ff::codec::Id::MJPEG => "mjpeg".into(),
                other => format!("{other:?}").to_lowercase(),
            },
        }
    }
}

/// A libavcodec video decoder. Feed packets in order; pictures come out (usually one per packet).
pub struct Decoder {
    inner: ff::decoder::Video,
}

impl Decoder {
    /// Opens a decoder. `threads`: 1 = single thread (default, lowest latency); N > 1 = N frame
    /// threads; 0 = FFmpeg's automatic choice.
    pub fn new(params: &StreamParams, threads: usize) -> Result<Decoder, CodecError> {
        crate::init();
        let mut ctx = match params {
            StreamParams::Codec { codec, extradata } => {
                let av_codec = ff::decoder::find(codec.id()).ok_or_else(|| {
                    CodecError::Unsupported(format!("no {} decoder in this FFmpeg", codec.name()))
                })?;
                let mut ctx = ff::codec::Context::new_with_codec(av_codec);
                if let Some(extra) = extradata {
                    set_extradata(&mut ctx, extra)?;
                }
                ctx
            }
            StreamParams::Ffmpeg(p) => {
                ff::codec::Context::from_parameters(p.clone()).map_err(|source| {
                    CodecError::Ffmpeg {
                        what: "reading stream parameters",
                        source,
                    }
                })?
            }
        };
        ctx.set_threading(match threads {
            1 => threading::Config {
                kind: threading::Type::Slice,
                count: 1,
                ..Default::default()
            },
            n => threading::Config {
                kind: threading::Type::Frame,
                count: n,
                ..Default::default()
            },
        });
        let inner = ctx.decoder().video().map_err(|source| CodecError::Ffmpeg {
            what: "opening the video decoder",
            source,
        })?;
        Ok(Decoder { inner })
    }

    /// While `on`, frames no other frame refers to (most B-frames) are not decoded: a decoder
    /// catching up on a backlog shows only its newest picture, so decoding them would be wasted.
    pub fn skip_non_reference(&mut self, on: bool) {
        self.inner.skip_frame(if on {
            ff::codec::discard::Discard::NonReference
        } else {
            ff::codec::discard::Discard::Default
        });
    }

    /// While `on`, the in-loop deblocking filter is skipped: pictures come out slightly blockier
    /// and errors drift until the next keyframe, which an analysis of brightness changes (motion
    /// detection) does not notice, for about a fifth less decoding work. Never for pictures
    /// people look at.
    pub fn skip_loop_filter(&mut self, on: bool) {
        self.inner.skip_loop_filter(if on {
            ff::codec::discard::Discard::All
        } else {
            ff::codec::discard::Discard::Default
        });
    }

    /// Decodes one packet (an access unit) and returns the pictures it completed. A damaged packet is
    /// an error for that packet only; the decoder stays usable and recovers at the next keyframe.
    pub fn decode(&mut self, data: &[u8], pts: Option<i64>) -> Result<Vec<Picture>, CodecError> {
        let mut packet = ff::Packet::copy(data);
        packet.set_pts(pts);
        self.inner
            .send_packet(&packet)
            .map_err(|source| CodecError::Ffmpeg {
                what: "decoding a packet",
                source,
            })?;
        let mut out = Vec::new();
        loop {
            let mut frame = ff::frame::Video::empty();
            match self.inner.receive_frame(&mut frame) {
                Ok(()) => out.push(Picture::from_frame(frame)),
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => break,
                Err(ff::Error::Eof) => break,
                Err(source) => {
                    return Err(CodecError::Ffmpeg {
                        what: "receiving a decoded frame",
                        source,
                    })
                }
            }
        }
        Ok(out)
    }
}

fn set_extradata(ctx: &mut ff::codec::Context, extra: &[u8]) -> Result<(), CodecError> {
    let padding = ff::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
    let len = i32::try_from(extra.len())
        .map_err(|_| CodecError::Unsupported("extradata too large".into()))?;
    // SAFETY: av_mallocz returns a zeroed buffer of the requested size (or null, checked); we copy
    // `extra` into its start and hand ownership to the codec context, which frees it on drop.
    #[allow(unsafe_code)]
    unsafe {
        let buf = ff::ffi::av_mallocz(extra.len() + padding) as *mut u8;
        if buf.is_null() {
            return Err(CodecError::Unsupported(
                "out of memory for extradata".into(),
            ));
        }
        std::ptr::copy_nonoverlapping(extra.as_ptr(), buf, extra.len());
        let raw = ctx.as_mut_ptr();
        (*raw).extradata = buf;
        (*raw).extradata_size = len;
    }
    Ok(())
}
