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

fn html(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `/`: the grid of all cameras.
pub async fn index() -> Response {
    html(INDEX)
}

/// `/cameras/{id}`: one camera.
pub async fn camera_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, Error> {
    // A camera the user may not see does not exist for them.
    if !principal.can_see(&id) {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no camera \"{}\"", id.escape_default()),
        ));
    }
    state.hub.camera(&id)?;
    Ok(html(CAMERA))
}

/// `/settings`: API tokens (the page asks the API, which answers admins only).
pub async fn settings_page() -> Response {
    html(SETTINGS)
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
