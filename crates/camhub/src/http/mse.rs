//! `GET /api/cameras/{id}/mse`: the camera's own H.264 / H.265 over a WebSocket for Media Source
//! Extensions, no decode, no re-encode. The client first says what it can play
//! (`{"type": "mse", "codecs": ["avc1.640028", "hvc1.1.6.L120.90"]}`, from
//! `MediaSource.isTypeSupported`); the server answers `{"type": "mse", "codec": "avc1.64001e",
//! "width": 640, "height": 360}` and sends the init segment and then one fragment per frame as
//! binary messages, starting at the cached GOP's keyframe (instant start). New parameter sets
//! (a resolution change) bring a new `mse` message and init segment. A camera with nothing the
//! client can play gets `{"type": "error", …}` and a close. The camera's status comes as
//! `status` messages, a `heartbeat` every 2 s, and before each keyframe's fragment a `time`
//! message (`{"type": "time", "t": 12.4, "unix_ms": …}`: when camhub received the frame shown at
//! that point of the timeline), so a player knows how far behind live it really is; the client
//! reports its distance to the live edge with `{"type": "edge", "delay": seconds}` (for
//! `/metrics`). The protocol is in `docs/api.md`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::camera_ws::HEARTBEAT;
use super::fmp4::{client_plays, no_packets, unplayable, Piece, PlayerFeed};
use super::serve::ConnWritten;
use super::ws::{error_msg, send_all, status_msg, text_msg};
use super::AppState;
use crate::hub::camera::ViewerBytes;
use crate::hub::status::Metrics;
use crate::hub::Camera;

/// How long a client has to say what it plays.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientMessage {
    /// What the client can play.
    Mse { codecs: Vec<String> },
    /// Newest buffered time minus the playing position, and (when the player knows it, from the
    /// `time` messages) how long ago camhub received the frame playing now; seconds.
    Edge {
        delay: f64,
        #[serde(default)]
        latency: Option<f64>,
    },
}

/// The upgrade handler (access was checked by the route's rule).
pub async fn mse(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Path(id): Path<String>,
    conn: Option<Extension<ConnWritten>>,
) -> Response {
    let camera = match state.hub.camera(&id) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let bytes = ViewerBytes::new(conn.map(|Extension(ConnWritten(w))| w));
    ws.max_message_size(16 * 1024)
        .on_upgrade(move |socket| session(socket, state, camera, bytes))
}

async fn session(socket: WebSocket, state: AppState, camera: Arc<Camera>, bytes: Arc<ViewerBytes>) {
    let (mut sink, mut stream) = socket.split();
    // The client speaks first: what it can play.
    let codecs = match tokio::time::timeout(HELLO_WITHIN, stream.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str(&text) {
            Ok(ClientMessage::Mse { codecs }) => codecs,
            _ => {
                let msg = error_msg(
                    "the first message must be {\"type\": \"mse\", \"codecs\": [...]}: the codecs \
                     this browser plays (MediaSource.isTypeSupported)",
                );
                let _ = send_all(&mut sink, &bytes, vec![msg]).await;
                return;
            }
        },
        Ok(_) => return,
        Err(_) => {
            let msg = error_msg("no {\"type\": \"mse\", \"codecs\": [...]} message within 10 s");
            let _ = send_all(&mut sink, &bytes, vec![msg]).await;
            return;
        }
    };
    if let Some(why) = no_packets(&camera) {
        let _ = send_all(&mut sink, &bytes, vec![error_msg(&why)]).await;
        return;
    }
    let mut feed = match PlayerFeed::new(camera, |m| &m.mse_viewers) {
        Ok(f) => f,
        Err(e) => {
            let _ = send_all(&mut sink, &bytes, vec![error_msg(&e.message)]).await;
            return;
        }
    };
    feed.camera().register_queue(&bytes);
    let mut status = feed.camera().status.subscribe();
    let first = status_msg(feed.camera(), &status.borrow_and_update().clone());
    if send_all(&mut sink, &bytes, vec![first]).await.is_err() {
        return;
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut shutdown = state.shutdown.clone();
    loop {
        let out: Vec<Message> = tokio::select! {
            (d, coding) = feed.next() => {
                let id = feed.camera().id().to_owned();
                let coding = match coding {
                    Ok(c) => c,
                    Err(codec) => {
                        let _ = send_all(&mut sink, &bytes, vec![error_msg(&unplayable(&id, &codec))]).await;
                        break;
                    }
                };
                if !client_plays(&codecs, coding) {
                    let msg = error_msg(&format!(
                        "camera {id} sends {}, and this browser plays none of it ({})",
                        coding.name(),
                        codecs.join(", ")
                    ));
                    let _ = send_all(&mut sink, &bytes, vec![msg]).await;
                    break;
                }
                let pieces = match feed.pieces(&d, coding) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = send_all(&mut sink, &bytes, vec![error_msg(&e)]).await;
                        break;
                    }
                };
                let mut out = Vec::with_capacity(pieces.len() + 1);
                for piece in pieces {
                    let data = match piece {
                        Piece::Init { codec, size, data } => {
                            out.push(text_msg(json!({
                                "type": "mse", "codec": codec, "width": size.0, "height": size.1,
                            })));
                            data
                        }
                        Piece::Media { data, keyframe, time, unix_ms } => {
                            if keyframe {
                                // Which wall-clock moment this point of the timeline is: the
                                // player's true distance from live, whatever its buffer says.
                                out.push(text_msg(json!({
                                    "type": "time", "t": time, "unix_ms": unix_ms,
                                })));
                            }
                            data
                        }
                    };
                    Metrics::add(&feed.camera().metrics.packet_bytes_out, data.len() as u64);
                    out.push(Message::Binary(data));
                }
                out
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
                    Ok(ClientMessage::Edge { delay, latency }) if delay.is_finite() && delay >= 0.0 => {
                        let metrics = &feed.camera().metrics;
                        metrics.live_edge.observe(Duration::from_secs_f64(delay.min(3600.0)));
                        if let Some(l) = latency.filter(|l| l.is_finite() && *l >= 0.0) {
                            metrics.live_latency.observe(Duration::from_secs_f64(l.min(3600.0)));
                        }
                        Vec::new()
                    }
                    Ok(_) => Vec::new(),
                    Err(e) => vec![error_msg(&format!(
                        "bad message ({e}); expected {{\"type\": \"edge\", \"delay\": seconds}}"
                    ))],
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => Vec::new(),
            },
            r = status.changed() => {
                if r.is_err() {
                    break;
                }
                let s = status.borrow_and_update().clone();
                vec![status_msg(feed.camera(), &s)]
            }
            _ = heartbeat.tick() => {
                if feed.camera().retired() {
                    // A reload replaced the camera: go on with the new one (a new connection:
                    // the writer waits for its keyframe and sends a new init if needed).
                    if !feed.follow(&state.hub) {
                        let msg = error_msg("this camera was removed from the config");
                        let _ = send_all(&mut sink, &bytes, vec![msg]).await;
                        break;
                    }
                    feed.camera().register_queue(&bytes);
                    status = feed.camera().status.subscribe();
                }
                vec![text_msg(json!({"type": "heartbeat", "ts": crate::hub::unix_ms()}))]
            }
            _ = shutdown.changed() => break,
        };
        if send_all(&mut sink, &bytes, out).await.is_err() {
            return;
        }
    }
    drop(feed);
    let _ = sink.send(Message::Close(None)).await;
}
