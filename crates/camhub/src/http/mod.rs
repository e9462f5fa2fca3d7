//! The HTTP layer: `fn app(hub) -> Router` with the JSON API, MJPEG streams, snapshots, the grid
//! WebSocket, metrics and the embedded web UI. Handlers only move bytes; every error is a status
//! code with a JSON `{ "error": ... }` body.

pub mod access;
pub mod account;
pub mod api;
pub mod camera_ws;
pub mod config_api;
pub mod error;
pub mod events;
pub mod fmp4;
pub mod hls;
pub mod metrics;
pub mod mjpeg;
pub mod mse;
pub mod query;
pub mod raw;
pub mod serve;
pub mod snapshot;
pub mod tls;
pub mod web;
pub mod whep;
pub mod ws;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::http::Method;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{delete, get, options, post, put, MethodRouter};
use axum::Router;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::hub::Hub;
use access::{Guard, Rule, Rules};

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The cameras.
    pub hub: Arc<Hub>,
    /// Becomes true when the server shuts down: endless responses (MJPEG, WebSocket) end.
    pub shutdown: watch::Receiver<bool>,
    /// Who may do what.
    pub auth: Arc<Auth>,
    /// Whether camhub serves HTTPS (session cookies are then `Secure`).
    pub tls: bool,
    /// Applies the config file again (`POST /api/config/reload`, SIGHUP).
    pub reloader: Arc<crate::reload::Reloader>,
    /// `[server] base_path`: the prefix every URL is served under (`""` for the root).
    pub base_path: Arc<str>,
    /// The running HLS segmenters.
    pub hls: Arc<hls::Registry>,
    /// The WebRTC service, or why there is none (`webrtc_listen = "off"`, its port taken).
    pub webrtc: Result<Arc<crate::webrtc::WebRtc>, Arc<str>>,
}

/// One route: method, path, who may use it, and its handler. Every route camhub serves is in
/// [`routes`], which builds both the router and the access rules, so a route cannot exist
/// without a rule.
pub struct Route {
    /// The method (`GET` routes also answer `HEAD`).
    pub method: Method,
    /// The path, axum style (`/api/cameras/{id}`).
    pub path: &'static str,
    /// Who may use it.
    pub rule: Rule,
    handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, rule: Rule, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        rule,
        handler,
    }
}

/// The route table: every route camhub serves, with its rule.
pub fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/", Rule::Page, get(web::index)),
        route(M::GET, "/cameras/{id}", Rule::Page, get(web::camera_page)),
        route(
            M::GET,
            "/cameras/{id}/calibrate",
            Rule::Page,
            get(web::calibrate_page),
        ),
        route(M::GET, "/settings", Rule::Page, get(web::settings_page)),
        route(M::GET, "/history", Rule::Page, get(web::history_page)),
        route(M::GET, "/login", Rule::Public, get(account::login_page)),
        // The UI's scripts and stylesheet: the login page needs them before anyone logs in.
        route(M::GET, "/{file}", Rule::Public, get(web::asset)),
        route(M::POST, "/api/login", Rule::Public, post(account::login)),
        route(M::POST, "/api/logout", Rule::Viewer, post(account::logout)),
        route(M::GET, "/api/session", Rule::Viewer, get(account::session)),
        route(
            M::GET,
            "/api/tokens",
            Rule::Admin,
            get(account::list_tokens),
        ),
        route(
            M::POST,
            "/api/tokens",
            Rule::Admin,
            post(account::create_token),
        ),
        route(
            M::DELETE,
            "/api/tokens/{id}",
            Rule::Admin,
            delete(account::revoke_token),
        ),
        route(
            M::POST,
            "/api/config/reload",
            Rule::Admin,
            post(api::reload),
        ),
        route(
            M::GET,
            "/api/config/cameras",
            Rule::Admin,
            get(config_api::list),
        ),
        route(
            M::POST,
            "/api/config/cameras",
            Rule::Admin,
            post(config_api::add),
        ),
        route(
            M::PUT,
            "/api/config/cameras/{id}",
            Rule::Admin,
            put(config_api::update),
        ),
        route(
            M::DELETE,
            "/api/config/cameras/{id}",
            Rule::Admin,
            delete(config_api::remove),
        ),
        route(
            M::POST,
            "/api/config/test",
            Rule::Admin,
            post(config_api::test),
        ),
        route(M::GET, "/api/cameras", Rule::Viewer, get(api::list)),
        route(M::GET, "/api/cameras/{id}", Rule::Camera, get(api::one)),
        route(
            M::GET,
            "/api/cameras/{id}/frame.raw",
            Rule::Camera,
            get(raw::frame_raw),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/frames",
            Rule::Camera,
            get(raw::frames_ws),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/source.jpeg",
            Rule::Camera,
            get(snapshot::source),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/stream.mjpeg",
            Rule::Camera,
            get(mjpeg::stream),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/frame.jpeg",
            Rule::Camera,
            get(snapshot::frame),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/ws",
            Rule::Camera,
            get(camera_ws::camera_ws),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/stream.mp4",
            Rule::Camera,
            get(fmp4::stream),
        ),
        route(M::GET, "/api/cameras/{id}/mse", Rule::Camera, get(mse::mse)),
        route(
            M::POST,
            "/api/cameras/{id}/whep",
            Rule::Camera,
            post(whep::offer),
        ),
        route(
            M::OPTIONS,
            "/api/cameras/{id}/whep",
            Rule::Public,
            options(whep::options),
        ),
        route(
            M::DELETE,
            "/api/cameras/{id}/whep/{session}",
            Rule::Camera,
            delete(whep::delete),
        ),
        route(
            M::OPTIONS,
            "/api/cameras/{id}/whep/{session}",
            Rule::Public,
            options(whep::options),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/hls/index.m3u8",
            Rule::Camera,
            get(hls::playlist),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/hls/init.mp4",
            Rule::Camera,
            get(hls::init),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/hls/seg.m4s",
            Rule::Camera,
            get(hls::segment),
        ),
        route(
            M::GET,
            "/api/cameras/{id}/hls/part.m4s",
            Rule::Camera,
            get(hls::part),
        ),
        route(M::GET, "/api/ws", Rule::Viewer, get(ws::grid)),
        route(M::GET, "/api/events", Rule::Viewer, get(events::list)),
        route(
            M::GET,
            "/api/events/histogram",
            Rule::Viewer,
            get(events::histogram),
        ),
        route(M::GET, "/api/events/{id}", Rule::Viewer, get(events::one)),
        route(
            M::DELETE,
            "/api/events/{id}",
            Rule::Admin,
            delete(events::remove),
        ),
        route(
            M::GET,
            "/api/events/{id}/snapshot.jpeg",
            Rule::Viewer,
            get(events::snapshot),
        ),
        route(
            M::GET,
            "/api/events/{id}/frames/{file}",
            Rule::Viewer,
            get(events::frame),
        ),
        route(M::GET, "/metrics", Rule::Metrics, get(metrics::metrics)),
        route(M::GET, "/healthz", Rule::Public, get(|| async { "ok\n" })),
    ]
}

/// The whole HTTP application: the routes of [`routes`] behind [`access::authorize`], with
/// [`access::security_headers`] on every response.
pub fn app(state: AppState) -> Router {
    let mut rules = HashMap::new();
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for r in routes() {
        rules.insert((r.method, r.path), r.rule);
        let merged = match by_path.remove(r.path) {
            Some(existing) => existing.merge(r.handler),
            None => r.handler,
        };
        by_path.insert(r.path, merged);
    }
    let mut router = Router::new();
    for (path, handler) in by_path {
        router = router.route(path, handler);
    }
    let guard = Guard {
        state: state.clone(),
        rules: Rules(Arc::new(rules)),
    };
    let base = state.base_path.clone();
    let router = router
        .route_layer(from_fn_with_state(guard, access::authorize))
        .fallback(api::not_found);
    // Under a prefix, `{base}` and `{base}/` are the grid; everything else outside it is a 404
    // (but /healthz).
    let router = if base.is_empty() {
        router
    } else {
        let slash = format!("{base}/");
        // /healthz stays at the root too: a service manager or container probe asks camhub
        // directly, not through the proxy.
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route(&slash, get(web::redirect_to_base))
            .nest(&base, router)
            .fallback(api::not_found)
    };
    router
        .layer(from_fn(access::security_headers))
        .with_state(state)
}
