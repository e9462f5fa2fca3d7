//! The motion events API: list (newest first, paginated), one event, its snapshot and frames,
//! a histogram per minute / hour / day, and delete (admins). A viewer sees only the events of
//! their cameras; another camera's event is answered like a missing one (404). Times are RFC 3339
//! UTC with milliseconds on the way out; on the way in `from` / `to` take RFC 3339 or Unix
//! milliseconds. Documented in `docs/api.md`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use camhub_media::civil::{parse_rfc3339, rfc3339_ms};
use camhub_store::{EventQuery, EventRecord};
use serde_json::{json, Value};

use super::AppState;
use crate::auth::Principal;
use crate::error::{Error, ErrorKind};
use crate::events::Events;

/// Events per page by default, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Most buckets one histogram request may ask for.
const MAX_BUCKETS: i64 = 5000;

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadRequest, message)
}

fn not_found(id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("no motion event with id {}", id.escape_default()),
    )
}

fn internal(e: impl std::fmt::Display) -> Error {
    tracing::warn!("motion events: {e}");
    Error::new(
        ErrorKind::Internal,
        "the event store failed; see camhub's log",
    )
}

/// The hub's events, looked up off the async threads: the first lookup may open the SQLite
/// file, and without events it asks the file system whether one exists.
async fn open_events(state: &AppState) -> Result<Option<Arc<Events>>, Error> {
    let hub = state.hub.clone();
    tokio::task::spawn_blocking(move || hub.events())
        .await
        .map_err(internal)
}

/// The events, or an error saying why there are none to ask.
async fn events(state: &AppState) -> Result<Arc<Events>, Error> {
    open_events(state).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            "no motion events are stored: no camera has [camera.motion] enabled",
        )
    })
}

/// Query parameters, decoded, each at most once.
fn params(raw: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, String)>, Error> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k == "token" {
            continue;
        }
        if !allowed.contains(&k.as_ref()) {
            return Err(bad(format!(
                "unknown parameter \"{}\"; valid parameters: {}",
                k.escape_default(),
                allowed.join(", ")
            )));
        }
        if out.iter().any(|(o, _)| *o == k) {
            return Err(bad(format!("parameter \"{k}\" given twice")));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// A moment: RFC 3339 or Unix milliseconds.
fn moment(name: &str, v: &str) -> Result<i64, Error> {
    v.parse::<i64>().ok().or_else(|| parse_rfc3339(v)).ok_or_else(|| {
        bad(format!(
            "{name}={} is not a time; use RFC 3339 like 2026-12-02T08:00:00Z (or Unix milliseconds)",
            v.escape_default()
        ))
    })
}

/// The cameras a request may see events of: the one asked for (if the principal may see it), or
/// the principal's list (None = all).
fn cameras(principal: &Principal, asked: Option<&str>) -> Result<Option<Vec<String>>, Error> {
    match asked {
        Some(c) if !principal.can_see(c) => Err(Error::new(
            ErrorKind::Forbidden,
            "you may not see this camera's events",
        )),
        Some(c) => Ok(Some(vec![c.to_owned()])),
        None => Ok(principal
            .cameras
            .as_ref()
            .map(|set| set.iter().cloned().collect())),
    }
}

fn range(from: Option<i64>, to: Option<i64>) -> Result<(), Error> {
    match (from, to) {
        (Some(f), Some(t)) if f >= t => Err(bad("from must be before to")),
        _ => Ok(()),
    }
}

/// An event record as the API shows it.
pub fn record_json(r: &EventRecord, base: &str) -> Value {
    let url = |tail: String| format!("{base}/api/events/{}/{tail}", r.id);
    json!({
        "id": r.id,
        "camera": r.camera,
        "start": rfc3339_ms(r.start_ms),
        "end": r.end_ms.map(rfc3339_ms),
        "start_ms": r.start_ms,
        "end_ms": r.end_ms,
        "duration_ms": r.end_ms.unwrap_or(r.last_ms).saturating_sub(r.start_ms),
        "peak_score": r.peak_score,
        "box": r.peak_box.map(|b| [b.x, b.y, b.w, b.h]),
        "snapshot": r.snapshot.as_ref().map(|_| url("snapshot.jpeg".to_owned())),
        "frames": (0..r.frames.len()).map(|n| url(format!("frames/{n}.jpeg"))).collect::<Vec<_>>(),
        "bytes": r.bytes,
    })
}

/// `GET /api/events?camera=&from=&to=&limit=&before=`: newest first; `next_before` pages on.
pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    q: RawQuery,
) -> Result<Json<Value>, Error> {
    let p = params(q.0.as_deref(), &["camera", "from", "to", "limit", "before"])?;
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let cameras = cameras(&principal, get("camera"))?;
    let from = get("from").map(|v| moment("from", v)).transpose()?;
    let to = get("to").map(|v| moment("to", v)).transpose()?;
    range(from, to)?;
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad(format!("limit must be 1 to {MAX_LIMIT}")))?,
    };
    let before = get("before")
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| bad("before must be an event id (the next_before of the last page)"))
        })
        .transpose()?;
    let Some(events) = open_events(&state).await? else {
        return Ok(Json(json!({"events": [], "next_before": null})));
    };
    let query = EventQuery {
        cameras,
        from_ms: from,
        to_ms: to,
        before_id: before,
        limit,
    };
    let records = tokio::task::spawn_blocking(move || events.store.events(&query))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let next = (records.len() == limit)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let base = &state.base_path;
    Ok(Json(json!({
        "events": records.iter().map(|r| record_json(r, base)).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

/// `GET /api/events/histogram?camera=&from=&to=&bucket=minute|hour|day`: per bucket (UTC), the
/// events that started in it and the seconds of motion in it.
pub async fn histogram(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    q: RawQuery,
) -> Result<Json<Value>, Error> {
    let p = params(q.0.as_deref(), &["camera", "from", "to", "bucket"])?;
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let cameras = cameras(&principal, get("camera"))?;
    let (bucket, bucket_ms) = match get("bucket").unwrap_or("hour") {
        "minute" => ("minute", 60_000),
        "hour" => ("hour", 3_600_000),
        "day" => ("day", 86_400_000),
        other => {
            return Err(bad(format!(
                "bucket={} is not one of minute, hour, day",
                other.escape_default()
            )))
        }
    };
    let now = i64::try_from(crate::hub::unix_ms()).unwrap_or(i64::MAX);
    let to = get("to")
        .map(|v| moment("to", v))
        .transpose()?
        .unwrap_or(now);
    let from = match get("from") {
        Some(v) => moment("from", v)?,
        None => to - 24 * 3_600_000,
    };
    range(Some(from), Some(to))?;
    // Whole buckets: the first starts at or before `from`.
    let start = from.div_euclid(bucket_ms) * bucket_ms;
    let count = (to - start + bucket_ms - 1) / bucket_ms;
    if count > MAX_BUCKETS {
        return Err(bad(format!(
            "{count} buckets asked for, at most {MAX_BUCKETS}: shorten the range or use a larger bucket"
        )));
    }
    let buckets = match open_events(&state).await? {
        None => Vec::new(),
        Some(events) => tokio::task::spawn_blocking(move || {
            events
                .store
                .histogram(cameras.as_deref(), start, to, bucket_ms, now)
        })
        .await
        .map_err(internal)?
        .map_err(internal)?,
    };
    Ok(Json(json!({
        "bucket": bucket,
        "bucket_ms": bucket_ms,
        "from": rfc3339_ms(start),
        "to": rfc3339_ms(to),
        "buckets": buckets.iter().map(|b| json!({
            "start": rfc3339_ms(b.start_ms),
            "start_ms": b.start_ms,
            "events": b.events,
            "motion_seconds": b.motion_ms as f64 / 1000.0,
        })).collect::<Vec<_>>(),
    })))
}

/// The event `id` if the principal may see it.
async fn find(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<(Arc<Events>, EventRecord), Error> {
    let n: i64 = id.parse().map_err(|_| not_found(id))?;
    let events = events(state).await?;
    let e = events.clone();
    let record = tokio::task::spawn_blocking(move || e.store.event(n))
        .await
        .map_err(internal)?
        .map_err(internal)?
        .filter(|r| principal.can_see(&r.camera))
        .ok_or_else(|| not_found(id))?;
    Ok((events, record))
}

/// `GET /api/events/{id}`.
pub async fn one(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let (_, r) = find(&state, &principal, &id).await?;
    Ok(Json(record_json(&r, &state.base_path)))
}

/// Serves one of an event's files.
async fn jpeg(events: &Events, rel: &str) -> Result<Response, Error> {
    let path = events
        .file(rel)
        .ok_or_else(|| internal(format!("bad stored path {rel:?}")))?;
    let data = tokio::fs::read(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::new(ErrorKind::NotFound, "this picture of the event was deleted")
        } else {
            internal(format!("{}: {e}", path.display()))
        }
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            // An event's pictures never change: a browser may keep them.
            (header::CACHE_CONTROL, "private, max-age=86400, immutable"),
        ],
        data,
    )
        .into_response())
}

/// `GET /api/events/{id}/snapshot.jpeg`: the frame with the largest change.
pub async fn snapshot(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let (events, r) = find(&state, &principal, &id).await?;
    let rel = r
        .snapshot
        .ok_or_else(|| Error::new(ErrorKind::NotFound, "this event has no snapshot"))?;
    jpeg(&events, &rel).await
}

/// `GET /api/events/{id}/frames/{n}.jpeg`: the event's frames, 0 = the first.
pub async fn frame(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, Error> {
    let (events, r) = find(&state, &principal, &id).await?;
    let n: usize = file
        .strip_suffix(".jpeg")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "no frame {}; frames are 0.jpeg, 1.jpeg, …",
                    file.escape_default()
                ),
            )
        })?;
    let rel = r.frames.get(n).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!(
                "this event has {} frame(s), numbered from 0",
                r.frames.len()
            ),
        )
    })?;
    jpeg(&events, rel).await
}

/// `DELETE /api/events/{id}` (admins): the event and its pictures.
pub async fn remove(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let (events, r) = find(&state, &principal, &id).await?;
    let gone = tokio::task::spawn_blocking(move || events.delete(r.id))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    match gone {
        Some(r) => Ok(Json(json!({"deleted": r.id}))),
        None => Err(not_found(&id)),
    }
}
