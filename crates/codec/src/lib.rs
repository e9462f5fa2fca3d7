//! camhub's bindings to C codecs — FFmpeg (libavcodec decode, libswscale scale) and libjpeg-turbo
//! (JPEG encode and scaled decode). This is the only crate with `unsafe`, and the only one that links
//! C. Everything here is synchronous and CPU-bound: callers run it on dedicated named threads, never
//! on the async runtime.

mod bsf;
pub mod cputime;
pub mod decode;
pub mod demux;
pub mod h264enc;
pub mod jpeg;
pub mod picture;
pub mod scale;

pub use cputime::thread_cpu_time;
pub use decode::{Codec, Decoder, StreamParams};
pub use demux::{DemuxedPacket, Demuxer};
pub use h264enc::{EncodedPacket, H264Encoder, H264Settings};
pub use jpeg::{JpegDecoder, JpegEncoder};
pub use picture::{ColourMatrix, Picture};
pub use scale::Scaler;

/// An error from a codec library, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// FFmpeg returned an error.
    #[error("{what}: {source}")]
    Ffmpeg {
        /// What camhub was doing.
        what: &'static str,
        /// FFmpeg's error.
        source: ffmpeg_next::Error,
    },
    /// libjpeg-turbo returned an error.
    #[error("{what}: {source}")]
    Jpeg {
        /// What camhub was doing.
        what: &'static str,
        /// libjpeg-turbo's error.
        source: turbojpeg::Error,
    },
    /// The input cannot be handled (unsupported format, absurd size).
    #[error("{0}")]
    Unsupported(String),
}

/// Initialises FFmpeg once and silences its own logging (camhub reports errors itself; FFmpeg's
/// per-packet warnings would flood the log while a camera sends damaged data).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if ffmpeg_next::init().is_ok() {
            ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
        }
    });
}
