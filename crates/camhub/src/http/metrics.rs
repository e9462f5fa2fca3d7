//! `GET /metrics`: Prometheus text exposition of every camera's counters.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::hub::status::{Histogram, Metrics, LATENCY_BUCKETS};

/// The handler.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    type Getter = fn(&crate::hub::Camera) -> f64;
    let families: [(&str, &str, &str, Getter); 24] = [
        ("camhub_frames_in_total", "counter", "Frames received from the camera.", |c| Metrics::get(&c.metrics.frames_in) as f64),
        ("camhub_frames_encoded_total", "counter", "JPEGs encoded (all variants).", |c| Metrics::get(&c.metrics.frames_encoded) as f64),
        ("camhub_frames_out_total", "counter", "JPEG frames handed to viewers.", |c| Metrics::get(&c.metrics.frames_out) as f64),
        ("camhub_frames_dropped_total", "counter", "Frames not turned into pictures or not published (decoder behind, waiting for a keyframe, replaying a cached GOP).", |c| Metrics::get(&c.metrics.frames_dropped) as f64),
        ("camhub_decode_seconds_total", "counter", "CPU time spent decoding.", |c| Metrics::get(&c.metrics.decode_ns) as f64 / 1e9),
        ("camhub_encode_seconds_total", "counter", "CPU time spent scaling and encoding JPEGs.", |c| Metrics::get(&c.metrics.encode_ns) as f64 / 1e9),
        ("camhub_reconnects_total", "counter", "Upstream reconnects after failures.", |c| Metrics::get(&c.metrics.reconnects) as f64),
        ("camhub_bytes_out_total", "counter", "Bytes of JPEG data sent to viewers.", |c| Metrics::get(&c.metrics.bytes_out) as f64),
        ("camhub_viewers", "gauge", "Live viewers (MJPEG streams, WebSocket subscriptions, waiting snapshots).", |c| c.direct_viewers() as f64),
        ("camhub_viewer_queued_bytes_max", "gauge", "Largest number of bytes one viewer (MJPEG, WebSocket, snapshot) has been handed but not yet accepted.", |c| c.queued_bytes().1 as f64),
        ("camhub_viewer_queued_bytes", "gauge", "Bytes handed to all viewers (MJPEG, WebSocket, snapshot) but not yet accepted; a grid WebSocket counts toward each camera it shows.", |c| c.queued_bytes().0 as f64),
        ("camhub_placeholders_rendered_total", "counter", "Placeholder pictures rendered (once per camera, size and status text, shared by all viewers).", |c| Metrics::get(&c.metrics.placeholders_rendered) as f64),
        ("camhub_motion_frames_total", "counter", "Pictures analysed by motion detection.", |c| Metrics::get(&c.metrics.motion_frames) as f64),
        ("camhub_motion_seconds_total", "counter", "CPU time spent in motion detection.", |c| Metrics::get(&c.metrics.motion_ns) as f64 / 1e9),
        ("camhub_motion_events_total", "counter", "Motion events started (stored or not).", |c| c.motion.state.borrow().starts as f64),
        ("camhub_motion_active", "gauge", "1 while motion is in progress.", |c| f64::from(u8::from(c.motion.state.borrow().active))),
        ("camhub_packet_bytes_out_total", "counter", "Bytes of fragmented MP4 (MSE, stream.mp4) handed to viewers.", |c| Metrics::get(&c.metrics.packet_bytes_out) as f64),
        ("camhub_rtsp_bytes_out_total", "counter", "Bytes of RTP and RTCP sent to RTSP clients.", |c| Metrics::get(&c.metrics.rtsp_bytes_out) as f64),
        ("camhub_webrtc_bytes_out_total", "counter", "Bytes of UDP (media, RTCP, ICE, DTLS) sent to WebRTC peers.", |c| Metrics::get(&c.metrics.webrtc_bytes_out) as f64),
        ("camhub_webrtc_keyframe_requests_total", "counter", "Keyframe requests (PLI, FIR) from WebRTC peers; each is answered from the cached keyframe (at most one a second per peer).", |c| Metrics::get(&c.metrics.webrtc_keyframe_requests) as f64),
        ("camhub_transcode_seconds_total", "counter", "CPU time spent encoding H.264 for transcode.", |c| Metrics::get(&c.metrics.transcode_ns) as f64 / 1e9),
        ("camhub_transform_seconds_total", "counter", "CPU time spent applying the camera's transform (rotate, flip, perspective, crop).", |c| Metrics::get(&c.metrics.transform_ns) as f64 / 1e9),
        ("camhub_keyframe_resyncs_total", "counter", "Times a viewer of the encoded stream fell behind and was moved to the newest keyframe.", |c| Metrics::get(&c.metrics.resyncs) as f64),
        ("camhub_up", "gauge", "1 while the camera is streaming.", |c| f64::from(u8::from(c.status.borrow().state == crate::hub::State::Streaming))),
    ];
    let cameras = state.hub.cameras();
    for (name, kind, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for cam in &cameras {
            let _ = writeln!(out, "{name}{{camera=\"{}\"}} {}", cam.id(), get(cam));
            if let Some(sub) = &cam.substream {
                let _ = writeln!(out, "{name}{{camera=\"{}\"}} {}", sub.id(), get(sub));
            }
        }
    }
    let name = "camhub_packet_viewers";
    let _ = writeln!(
        out,
        "# HELP {name} Viewers of the camera's own encoded stream (nothing decoded for them), by kind (hls: 1 while its segmenter runs, for any number of HLS players).\n# TYPE {name} gauge"
    );
    for cam in &cameras {
        let hls = u64::from(state.hls.is_running(cam.id()));
        for (kind, n) in [
            ("mse", Metrics::get(&cam.metrics.mse_viewers)),
            ("mp4", Metrics::get(&cam.metrics.mp4_viewers)),
            ("hls", hls),
            ("rtsp", Metrics::get(&cam.metrics.rtsp_viewers)),
            ("webrtc", Metrics::get(&cam.metrics.webrtc_viewers)),
        ] {
            let _ = writeln!(out, "{name}{{camera=\"{}\",kind=\"{kind}\"}} {n}", cam.id());
        }
    }
    histogram(
        &mut out,
        "camhub_mse_live_edge_seconds",
        "Distance from the playing position to the newest buffered frame, as MSE players report it.",
        &cameras,
        |c| &c.metrics.live_edge,
    );
    histogram(
        &mut out,
        "camhub_mse_latency_seconds",
        "How long ago camhub received the frame an MSE player shows, as the player reports it.",
        &cameras,
        |c| &c.metrics.live_latency,
    );
    histogram(
        &mut out,
        "camhub_added_latency_seconds",
        "Time from a frame's arrival from the camera to its JPEG being handed to a viewer's socket.",
        &cameras,
        |c| &c.metrics.added_latency,
    );
    let (open, refused_total, refused_per_ip) = super::serve::connection_counts();
    let _ = writeln!(
        out,
        "# HELP camhub_connections_open Open client connections (HTTP/1.1, HTTP/2, TLS handshakes).\n\
         # TYPE camhub_connections_open gauge\ncamhub_connections_open {open}\n\
         # HELP camhub_connections_refused_total Connections closed at once because a limit was reached.\n\
         # TYPE camhub_connections_refused_total counter\n\
         camhub_connections_refused_total{{reason=\"max_connections\"}} {refused_total}\n\
         camhub_connections_refused_total{{reason=\"max_connections_per_ip\"}} {refused_per_ip}"
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// Writes one histogram family over every camera and substream.
fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    cameras: &[std::sync::Arc<crate::hub::Camera>],
    get: fn(&crate::hub::Camera) -> &Histogram,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let cams = cameras
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.substream.as_ref()));
    for cam in cams {
        let (counts, sum) = get(cam).snapshot();
        for (i, count) in counts.iter().enumerate() {
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{camera=\"{}\",le=\"{le}\"}} {count}",
                cam.id()
            );
        }
        let _ = writeln!(out, "{name}_sum{{camera=\"{}\"}} {sum}", cam.id());
        let _ = writeln!(
            out,
            "{name}_count{{camera=\"{}\"}} {}",
            cam.id(),
            counts[10]
        );
    }
}
