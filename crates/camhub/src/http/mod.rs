//! The HTTP layer: `fn app(hub) -> Router` with the JSON API, MJPEG streams, snapshots, the grid
//! WebSocket, metrics and the embedded web UI. Handlers only move bytes; every error is a status
//! code with a JSON `{ "error": ... }` body.

pub mod api;
pub mod error;
pub mod metrics;
pub mod mjpeg;
pub mod query;
pub mod serve;
pub mod snapshot;
pub mod web;
pub mod ws;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::hub::Hub;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The cameras.
    pub hub: Arc<Hub>,
    /// Becomes true when the server shuts down: endless responses (MJPEG, WebSocket) end.
    pub shutdown: watch::Receiver<bool>,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/cameras/{id}", get(web::camera_page))
        .route("/{file}", get(web::asset))
        .route("/api/cameras", get(api::list))
        .route("/api/cameras/{id}", get(api::one))
        .route("/api/cameras/{id}/stream.mjpeg", get(mjpeg::stream))
        .route("/api/cameras/{id}/frame.jpeg", get(snapshot::frame))
        .route("/api/ws", get(ws::grid))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(api::not_found)
        .with_state(state)
}
