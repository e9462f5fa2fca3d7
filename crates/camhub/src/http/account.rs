//! Logging in and out, who am I, and API tokens: `GET /login`, `POST /api/login`,
//! `POST /api/logout`, `GET /api/session`, and the admin's `GET|POST /api/tokens`,
//! `DELETE /api/tokens/{id}`. The checks themselves live in `http::access` and `auth`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{client_ip, safe_next, ClientAddr, SESSION_COOKIE};
use super::AppState;
use crate::auth::{parse_access, Access, Principal, TokenRequest, Via};
use crate::error::{Error, ErrorKind};

const LOGIN_PAGE: &str = include_str!("../../../../web/login.html");

/// `GET /login`: the login form.
pub async fn login_page(State(state): State<AppState>) -> Response {
    super::web::html(&state, LOGIN_PAGE)
}

/// What a login sends, as a form or JSON.
#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Back to the login form with a reason (forms), or the error (JSON).
fn login_failed(json_client: bool, error: Error, reason: &str, next: &str, base: &str) -> Response {
    if json_client {
        return error.into_response();
    }
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            format!("{base}/login?error={reason}&next={next}"),
        )],
    )
        .into_response()
}

/// `POST /api/login`: a form post from the login page (answers with a redirect) or JSON
/// `{"name", "password"}` from a script (answers `{"user", "role", "csrf"}`). Sets the session
/// cookie. Failures count towards the address's ban.
pub async fn login(
    State(state): State<AppState>,
    addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_client = is_json(&headers);
    let form: Option<LoginForm> = if json_client {
        serde_json::from_slice(&body).ok()
    } else {
        serde_urlencoded_form(&body)
    };
    let next = form
        .as_ref()
        .and_then(|f| f.next.as_deref())
        .map(safe_next)
        .map_or_else(|| format!("{}/", state.base_path), str::to_owned);
    let auth = &state.auth;
    if !auth.enforced() {
        return if json_client {
            Json(json!({"user": null, "role": "admin", "auth": "off"})).into_response()
        } else {
            (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response()
        };
    }
    let ip = client_ip(
        &headers,
        addr.map(|Extension(a)| a.0.ip()),
        &auth.policy().trusted_proxies,
    );
    if let Some(left) = ip.and_then(|ip| auth.banned(ip)) {
        let e = super::access::banned_error(left);
        return login_failed(json_client, e, "banned", &next, &state.base_path);
    }
    let Some(form) = form else {
        let e = Error::new(
            ErrorKind::BadRequest,
            "send name and password (a form, or JSON {\"name\": …, \"password\": …})",
        );
        return login_failed(json_client, e, "bad", &next, &state.base_path);
    };
    let Some(session) = auth.login(&form.name, &form.password).await else {
        if let Some(ip) = ip {
            tokio::time::sleep(auth.failed(ip)).await;
        }
        tracing::info!(user = %form.name.escape_default(), ip = ?ip, "failed login");
        let e = Error::new(ErrorKind::Unauthorized, "wrong user name or password");
        return login_failed(json_client, e, "wrong", &next, &state.base_path);
    };
    if let Some(ip) = ip {
        auth.succeeded(ip);
    }
    tracing::info!(user = %session.principal.name, ip = ?ip, "logged in");
    let cookie = session_cookie(
        &session.cookie,
        session.lifetime,
        state.tls,
        &state.base_path,
    );
    let mut response = if json_client {
        Json(json!({
            "user": session.principal.name,
            "role": session.principal.access.as_str(),
            "csrf": session.csrf,
        }))
        .into_response()
    } else {
        (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// The `Set-Cookie` value of a session: unreadable to scripts, never sent by other sites' requests,
/// HTTPS-only under TLS.
fn session_cookie(value: &str, lifetime: Duration, tls: bool, base: &str) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; Path={}; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        cookie_path(base),
        lifetime.as_secs()
    )
}

/// The cookie's `Path`: the prefix itself, without a trailing `/` — `{base}` is the grid's own
/// address, and a `Path={base}/` cookie would not be sent to it.
fn cookie_path(base: &str) -> &str {
    if base.is_empty() {
        "/"
    } else {
        base
    }
}

/// `application/x-www-form-urlencoded` into a [`LoginForm`].
fn serde_urlencoded_form(body: &[u8]) -> Option<LoginForm> {
    let (mut name, mut password, mut next) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "name" => name = Some(v.into_owned()),
            "password" => password = Some(v.into_owned()),
            "next" => next = Some(v.into_owned()),
            _ => {}
        }
    }
    Some(LoginForm {
        name: name?,
        password: password?,
        next,
    })
}

/// `POST /api/logout`: ends the session and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Response {
    if let Via::Session { hash, .. } = principal.via {
        state.auth.logout(hash).await;
        tracing::info!(user = %principal.name, "logged out");
    }
    let clear = format!(
        "{SESSION_COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
        cookie_path(&state.base_path)
    );
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response()
}

/// `GET /api/session`: who is asking, and how camhub is protected (the UI shows the user, a logout
/// button, and a banner when login is off on purpose).
pub async fn session(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Json<Value> {
    let auth = &state.auth;
    let mode = if auth.enforced() {
        "users"
    } else if auth.explicitly_open() {
        "none"
    } else {
        "off"
    };
    let csrf = match &principal.via {
        Via::Session { csrf, .. } => Some(csrf.clone()),
        _ => None,
    };
    let cameras = principal.cameras.as_ref().map(|c| {
        let mut ids: Vec<&String> = c.iter().collect();
        ids.sort();
        json!(ids)
    });
    Json(json!({
        "auth": mode,
        "user": (!principal.name.is_empty()).then_some(&principal.name),
        "role": principal.access.as_str(),
        "cameras": cameras,
        "csrf": csrf,
    }))
}

/// What `POST /api/tokens` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    cameras: Option<Vec<String>>,
    #[serde(default)]
    expires_in: Option<String>,
}

fn token_json(t: &camhub_store::TokenRecord) -> Value {
    json!({
        "id": t.id, "name": t.name, "role": t.role, "cameras": t.cameras,
        "created_by": t.created_by, "created_ms": t.created_ms, "expires_ms": t.expires_ms,
        "revoked_ms": t.revoked_ms, "last_used_ms": t.last_used_ms,
    })
}

fn internal(e: String) -> Error {
    tracing::error!("token store: {e}");
    Error::new(
        ErrorKind::Internal,
        "the token store failed; see camhub's log",
    )
}

/// `GET /api/tokens`: every token, without secrets.
pub async fn list_tokens(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let tokens = state.auth.tokens().await.map_err(internal)?;
    Ok(Json(Value::Array(tokens.iter().map(token_json).collect())))
}

/// `POST /api/tokens`: `{"name", "role": "viewer"|"admin"|"metrics", "cameras": [...],
/// "expires_in": "30d"}` → `201` with the token, shown this once.
pub async fn create_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: Bytes,
) -> Result<Response, Error> {
    let bad = |m: String| Error::new(ErrorKind::BadRequest, m);
    let body: NewTokenBody = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "bad token request ({e}); send {{\"name\": \"…\", \"role\": \"viewer\", \"cameras\": [\"id\"], \"expires_in\": \"30d\"}}"
        ))
    })?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.len() > 100 {
        return Err(bad("name: 1 to 100 characters".into()));
    }
    let access = match body.role.as_deref() {
        None => Access::Viewer,
        Some(r) => parse_access(r).ok_or_else(|| {
            bad(format!(
                "role \"{}\": use viewer, admin or metrics",
                r.escape_default()
            ))
        })?,
    };
    if let Some(ids) = &body.cameras {
        for id in ids {
            if state.hub.camera(id).is_err() {
                return Err(bad(format!("no camera \"{}\"", id.escape_default())));
            }
        }
    }
    let expires_in = match &body.expires_in {
        None => None,
        Some(text) => Some(
            camhub_config::parse_duration(text)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    bad(format!(
                        "expires_in \"{}\": use a duration like \"30d\" or \"12h\"",
                        text.escape_default()
                    ))
                })?,
        ),
    };
    let request = TokenRequest {
        name,
        access,
        cameras: body.cameras,
        expires_in,
    };
    let (secret, record) = state
        .auth
        .create_token(&principal, request)
        .await
        .map_err(internal)?;
    tracing::info!(by = %principal.name, id = record.id, name = %record.name, "token created");
    let mut out = token_json(&record);
    out["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `DELETE /api/tokens/{id}`: revokes a token at once.
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let id: i64 = id
        .parse()
        .map_err(|_| Error::new(ErrorKind::BadRequest, "the token id is a number"))?;
    if state.auth.revoke_token(id).await.map_err(internal)? {
        tracing::info!(by = %principal.name, id, "token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::new(
            ErrorKind::NotFound,
            format!("no active token {id}"),
        ))
    }
}
