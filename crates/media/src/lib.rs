//! Pure media logic for camhub: everything here takes its input (and `now`, where time matters) as
//! arguments and returns results. No sockets, no threads, no wall clock, no FFmpeg, no tokio — so all
//! of it is unit-tested and fuzzed directly, and a panic here is always a bug, never bad input.

pub mod annexb;
pub mod backoff;
pub mod civil;
pub mod colour;
pub mod draw;
pub mod fmp4;
pub mod hls;
pub mod jpeg;
pub mod layout;
pub mod motion;
pub mod multipart;
pub mod redact;
pub mod ring;
pub mod rtp;
pub mod size;
pub mod sps;
pub mod timestamp;
pub mod warp;
