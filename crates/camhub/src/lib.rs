//! camhub: connect once to each camera, serve it to any number of viewers.
//!
//! Layers, in dependency order (nothing imports `http`): [`source`] talks to cameras and yields
//! compressed frames; [`hub`] owns each camera's lifecycle (on-demand connection, reconnect, the
//! decode/encode thread, latest-value fan-out of JPEG variants); [`http`] serves it all;
//! [`mqtt`] publishes the cameras' motion to a broker; [`frames`] gives programs the newest
//! pictures (in this process or from a running camhub).

pub mod auth;
pub mod error;
pub mod events;
pub mod frames;
pub mod http;
pub mod hub;
pub mod mqtt;
pub mod reload;
pub mod rtsp;
pub mod source;
pub mod udp;
pub mod webrtc;

pub use error::{Error, ErrorKind};
