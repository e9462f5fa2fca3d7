//! The web UI: static files from `web/`, embedded into the binary at build time (no files to
//! install, no build step).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::AppState;
use crate::auth::Principal;
use crate::error::{Error, ErrorKind};

const INDEX: &str = include_str!("../../../../web/index.html");
const CAMERA: &str = include_str!("../../../../web/camera.html");
const SETTINGS: &str = include_str!("../../../../web/settings.html");
const HISTORY: &str = include_str!("../../../../web/history.html");
const CALIBRATE: &str = include_str!("../../../../web/calibrate.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/app.js"),
    ),
    (
        "camera.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/camera.js"),
    ),
    (
        "camera-link.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/camera-link.js"),
    ),
    (
        "camera-picture.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/camera-picture.js"),
    ),
    (
        "mse-player.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/mse-player.js"),
    ),
    (
        "webrtc-player.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/webrtc-player.js"),
    ),
    (
        "alerts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/alerts.js"),
    ),
    (
        "calibrate.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/calibrate.js"),
    ),
    (
        "history.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/history.js"),
    ),
    // The service worker only shows notifications on phones (Android allows them no other way);
    // served from the base path, so its scope is the whole UI.
    (
        "sw.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/sw.js"),
    ),
    // Lets phones add the UI to the home screen as an app (iOS allows notifications only then).
    (
        "manifest.webmanifest",
        "application/manifest+json",
        include_str!("../../../../web/manifest.webmanifest"),
    ),
    (
        "session.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/session.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/login.js"),
    ),
    (
        "settings.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/settings.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../../../web/style.css"),
    ),
];

/// A page of the UI. Its links are relative to `<base href="/">`, which becomes
/// `<base href="{base_path}/">` when camhub is served under a prefix.
pub fn html(state: &AppState, body: &'static str) -> Response {
    let body = if state.base_path.is_empty() {
        std::borrow::Cow::Borrowed(body)
    } else {
        let base = format!("<base href=\"{}/\">", state.base_path);
        std::borrow::Cow::Owned(body.replacen("<base href=\"/\">", &base, 1))
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `{base_path}/` under a prefix: the grid lives at `{base_path}` (axum's nesting), so send the
/// browser there; `<base href>` keeps its relative links right either way.
pub async fn redirect_to_base(State(state): State<AppState>) -> Response {
    (
        axum::http::StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, state.base_path.to_string())],
    )
        .into_response()
}

/// `/`: the grid of all cameras.
pub async fn index(State(state): State<AppState>) -> Response {
    html(&state, INDEX)
}

/// `/cameras/{id}`: one camera.
pub async fn camera_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, Error> {
    camera_html(&state, &id, &principal, CAMERA)
}

/// A page about camera `id`: 404 for a camera the user may not see (it does not exist for them)
/// or that does not exist.
fn camera_html(
    state: &AppState,
    id: &str,
    principal: &Principal,
    body: &'static str,
) -> Result<Response, Error> {
    if !principal.can_see(id) {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no camera \"{}\"", id.escape_default()),
        ));
    }
    state.hub.camera(id)?;
    Ok(html(state, body))
}

/// `/cameras/{id}/calibrate`: place a perspective warp's corners on the camera's picture and
/// copy the config block (the page does the geometry; the picture is `source.jpeg`).
pub async fn calibrate_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, Error> {
    camera_html(&state, &id, &principal, CALIBRATE)
}

/// `/settings`: API tokens (the page asks the API, which answers admins only).
pub async fn settings_page(State(state): State<AppState>) -> Response {
    html(&state, SETTINGS)
}

/// `/history`: motion history, a bar chart of motion over time and the events behind each bar
/// (the page asks the events API, which shows each user their cameras' events only).
pub async fn history_page(State(state): State<AppState>) -> Response {
    html(&state, HISTORY)
}

/// `/{file}` for the UI's scripts and stylesheet.
pub async fn asset(Path(file): Path<String>) -> Result<Response, Error> {
    let (_, mime, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no such file: /{}", file.escape_default()),
            )
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, *mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response())
}
