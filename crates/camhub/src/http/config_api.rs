//! Configuring cameras over HTTP (admins; the settings page uses it): `GET /api/config/cameras`
//! lists the cameras as the file writes them (secrets as `***`), `POST` adds one, `PUT …/{id}`
//! changes one, `DELETE …/{id}` removes one, `POST /api/config/reload` applies the file again, and
//! `POST /api/config/test` tries a camera's settings once and says what it found. Every change is
//! checked like `camhub check`, written to the file with its comments kept, and applied live
//! ([`crate::reload::Reloader`]).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use camhub_config::edit::{camera_string, edit_camera, restore_secrets, CameraChange, EditError};
use camhub_media::redact::redact_url;
use serde_json::{json, Map, Value};

use super::AppState;
use crate::hub::{Camera, State as CamState, VariantKey};
use crate::reload::ReloadError;

/// How long "test connection" waits for a picture.
const TEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long it then waits for the frame rate to be known.
const FPS_WAIT: Duration = Duration::from_secs(3);

/// The JSON answer for a failed reload or edit.
pub fn reload_error(e: ReloadError) -> Response {
    // Refused edits are the user's to fix (the answer says how); a file camhub cannot read or
    // write is the operator's, and goes to the log too.
    if let ReloadError::Io(_) = &e {
        tracing::error!("config edit failed: {e}");
    }
    let status = match &e {
        ReloadError::Invalid(_) => StatusCode::BAD_REQUEST,
        ReloadError::Edit(EditError::NoCamera(_)) => StatusCode::NOT_FOUND,
        ReloadError::Edit(_) => StatusCode::BAD_REQUEST,
        ReloadError::NoFile | ReloadError::NeedsRestart(_) => StatusCode::CONFLICT,
        ReloadError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let errors = match &e {
        ReloadError::Invalid(list) => list.clone(),
        _ => Vec::new(),
    };
    (
        status,
        Json(json!({"error": e.to_string(), "errors": errors})),
    )
        .into_response()
}

fn bad(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into(), "errors": []})),
    )
        .into_response()
}

/// The secret-holding values of a camera table, as the API shows them.
fn redact_camera(mut table: Map<String, Value>) -> Map<String, Value> {
    for key in ["url", "substream_url"] {
        if let Some(Value::String(url)) = table.get(key) {
            let shown = redact_url(url);
            table.insert(key.to_owned(), Value::String(shown));
        }
    }
    table
}

/// `GET /api/config/cameras`: every `[[camera]]` of the file (disabled ones too), keys as written,
/// URLs redacted; plus the file's path.
pub async fn list(State(state): State<AppState>) -> Response {
    let text = match state.reloader.text().await {
        Ok(t) => t,
        Err(e) => return reload_error(e),
    };
    let cameras: Vec<Value> = match toml::from_str::<toml::Table>(&text) {
        Ok(doc) => doc
            .get("camera")
            .and_then(|c| c.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|t| serde_json::to_value(t).ok())
                    .filter_map(|v| v.as_object().cloned())
                    .map(|t| Value::Object(redact_camera(t)))
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => return bad(format!("the config file is not valid TOML: {e}")),
    };
    let path = state.reloader.path().map(|p| p.display().to_string());
    Json(json!({"file": path, "cameras": cameras})).into_response()
}

/// The camera object of a request body; `None` answers [`not_an_object`].
fn fields(body: &Bytes) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn not_an_object() -> Response {
    bad("send the camera as a JSON object of config keys, like {\"id\": \"door\", \"url\": \"rtsp://…\"}")
}

/// Puts back the stored secrets where the form kept `***` (see [`restore_secrets`]).
fn with_secrets(text: &str, stored_id: &str, mut f: Map<String, Value>) -> Map<String, Value> {
    for key in ["url", "substream_url"] {
        let (Some(Value::String(new)), Some(stored)) =
            (f.get(key), camera_string(text, stored_id, key))
        else {
            continue;
        };
        let restored = restore_secrets(new, &stored);
        f.insert(key.to_owned(), Value::String(restored));
    }
    f
}

/// `POST /api/config/cameras`: adds a camera.
pub async fn add(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(f) = fields(&body) else {
        return not_an_object();
    };
    let outcome = state
        .reloader
        .edit(&state.hub, &state.auth, |text| {
            edit_camera(text, &CameraChange::Add(f))
        })
        .await;
    match outcome {
        Ok(o) => (StatusCode::CREATED, Json(json!(o))).into_response(),
        Err(e) => reload_error(e),
    }
}

/// `PUT /api/config/cameras/{id}`: replaces a camera's keys (a URL still showing `***` keeps its
/// stored secrets).
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(f) = fields(&body) else {
        return not_an_object();
    };
    let outcome = state
        .reloader
        .edit(&state.hub, &state.auth, |text| {
            let f = with_secrets(text, &id, f);
            edit_camera(text, &CameraChange::Update(id.clone(), f))
        })
        .await;
    match outcome {
        Ok(o) => Json(json!(o)).into_response(),
        Err(e) => reload_error(e),
    }
}

/// `DELETE /api/config/cameras/{id}`: removes a camera from the file.
pub async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let outcome = state
        .reloader
        .edit(&state.hub, &state.auth, |text| {
            edit_camera(text, &CameraChange::Remove(id.clone()))
        })
        .await;
    match outcome {
        Ok(o) => Json(json!(o)).into_response(),
        Err(e) => reload_error(e),
    }
}

/// `POST /api/config/test`: opens the camera described by the body once (its own connection, not
/// the running camera's), waits up to 15 s for a picture, and answers what it found: `ok`, codec,
/// size and frame rate, or the failure's `error_kind` and message. With `"id"` naming a camera of
/// the file, URLs still showing `***` use its stored secrets.
pub async fn test(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(mut f) = fields(&body) else {
        return not_an_object();
    };
    let text = state.reloader.text().await.unwrap_or_default();
    if let Some(id) = f.get("id").and_then(Value::as_str).map(str::to_owned) {
        f = with_secrets(&text, &id, f);
    }
    // The camera alone, checked like the file would be.
    f.insert("id".into(), Value::String("test".into()));
    f.remove("enabled");
    let single = match edit_camera("", &CameraChange::Add(f)) {
        Ok(t) => t,
        Err(e) => return bad(e.to_string()),
    };
    let config = match crate::reload::check(&single, "the form") {
        Ok(c) => c,
        Err(errors) => {
            let errors: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "the settings have errors", "errors": errors})),
            )
                .into_response();
        }
    };
    let Some(camera) = config.cameras.first() else {
        return bad("no camera in the request");
    };
    let cam = Camera::new(camera.clone(), 1);
    let key = VariantKey {
        width: Some(320),
        height: None,
        quality: None,
    };
    let result = match cam.subscribe(key) {
        Ok(sub) => {
            let mut status = cam.status.subscribe();
            let found = tokio::time::timeout(TEST_TIMEOUT, async {
                loop {
                    {
                        let s = status.borrow_and_update();
                        let pictured = s.state == CamState::Streaming && s.width.is_some();
                        if pictured || s.state == CamState::Retrying {
                            return;
                        }
                    }
                    if status.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await;
            // The frame rate is measured over a few frames: give it a moment once pictures come.
            if found.is_ok() && cam.status.borrow().state == CamState::Streaming {
                let _ = tokio::time::timeout(FPS_WAIT, async {
                    while status.borrow_and_update().fps.is_none() {
                        if status.changed().await.is_err() {
                            return;
                        }
                    }
                })
                .await;
            }
            drop(sub);
            found.is_ok()
        }
        Err(_) => false,
    };
    let s = cam.status.borrow().clone();
    cam.retire();
    let ok = s.state == CamState::Streaming;
    let error = if ok {
        None
    } else if !result {
        Some(
            s.last_error
                .clone()
                .unwrap_or_else(|| "no picture within 15 s".to_owned()),
        )
    } else {
        s.last_error.clone().or(s.reason.clone())
    };
    Json(json!({
        "ok": ok,
        "state": s.state,
        "codec": s.codec,
        "width": s.width,
        "height": s.height,
        "fps": s.fps,
        "error": error,
        "error_kind": s.error_kind,
    }))
    .into_response()
}
