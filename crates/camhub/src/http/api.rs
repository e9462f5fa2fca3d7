//! JSON API: the camera list with live status, and the query parsing shared by the picture
//! endpoints (so a bad `width=abc` is a JSON 400 naming the parameter, not a plain-text rejection).

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::hub::{Camera, VariantKey};

/// `GET /api/cameras`.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(Value::Array(
        state.hub.cameras().iter().map(|c| camera_json(c)).collect(),
    ))
}

/// `GET /api/cameras/{id}`.
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(camera_json(state.hub.camera(&id)?)))
}

/// Unknown paths.
pub async fn not_found(uri: axum::http::Uri) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "no such page or endpoint: {}; the API is described in docs/api.md",
            uri.path()
        ),
    )
}

/// A camera as the API shows it. URLs are redacted.
pub fn camera_json(cam: &Camera) -> Value {
    let s = cam.status.borrow().clone();
    json!({
        "id": cam.config.id,
        "name": cam.config.name,
        "url": cam.config.source.redacted,
        "substream_url": cam.config.substream.as_ref().map(|s| s.redacted.clone()),
        "state": s.state,
        "reason": s.reason,
        "codec": s.codec,
        "width": s.width,
        "height": s.height,
        "fps": s.fps,
        "viewers": cam.viewers(),
        "reconnects": s.reconnects,
        "last_error": s.last_error,
        "last_frame_age_ms": cam.last_frame_age().map(|d| d.as_millis() as u64),
        "always_on": cam.config.always_on,
        "substream": cam.substream.as_ref().map(|sub| {
            let s = sub.status.borrow().clone();
            json!({
                "state": s.state, "reason": s.reason, "codec": s.codec, "width": s.width,
                "height": s.height, "fps": s.fps, "viewers": sub.viewers(),
                "reconnects": s.reconnects, "last_error": s.last_error,
            })
        }),
    })
}

/// Parameters of the picture endpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PictureQuery {
    /// Which variant.
    pub key: VariantKey,
    /// Frame-rate cap for streams, if any.
    pub fps: Option<f64>,
}

impl PictureQuery {
    /// Parses `width`, `height`, `quality` and (when `allow_fps`) `fps`; anything else is an error.
    pub fn parse(raw: Option<&str>, allow_fps: bool) -> Result<PictureQuery, Error> {
        let (mut width, mut height, mut quality, mut fps) = (None, None, None, None);
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let int = |name: &str| -> Result<Option<u32>, Error> {
                if v.is_empty() {
                    return Ok(None);
                }
                v.parse::<u32>().map(Some).map_err(|_| {
                    Error::new(
                        ErrorKind::BadRequest,
                        format!("{name}={} is not a whole number", v.escape_default()),
                    )
                })
            };
            match k {
                "width" => width = int("width")?,
                "height" => height = int("height")?,
                "quality" => quality = int("quality")?,
                "fps" if allow_fps => {
                    if v.is_empty() {
                        continue;
                    }
                    let f: f64 = v.parse().map_err(|_| {
                        Error::new(
                            ErrorKind::BadRequest,
                            format!("fps={} is not a number", v.escape_default()),
                        )
                    })?;
                    check_fps(f)?;
                    fps = Some(f);
                }
                other => {
                    let valid = if allow_fps {
                        "width, height, quality, fps"
                    } else {
                        "width, height, quality"
                    };
                    return Err(Error::new(
                        ErrorKind::BadRequest,
                        format!(
                            "unknown parameter \"{}\"; valid parameters: {valid}",
                            other.escape_default()
                        ),
                    ));
                }
            }
        }
        Ok(PictureQuery {
            key: VariantKey::from_query(width, height, quality)?,
            fps,
        })
    }
}

/// Lowest accepted `fps`: one frame every 100 s (smaller values would overflow time arithmetic).
pub const MIN_FPS: f64 = 0.01;

/// Validates a frame-rate cap.
pub fn check_fps(f: f64) -> Result<(), Error> {
    if (MIN_FPS..=1000.0).contains(&f) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::BadRequest,
            format!("fps must be between {MIN_FPS} and 1000"),
        ))
    }
}

/// The optional raw query as `&str`.
pub fn raw(q: &RawQuery) -> Option<&str> {
    q.0.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let q = PictureQuery::parse(Some("width=640&quality=70&fps=5"), true).expect("valid");
        assert_eq!(q.key.width, Some(640));
        assert_eq!(q.fps, Some(5.0));
        for bad in [
            "width=abc",
            "width=0",
            "width=100000",
            "quality=0",
            "fps=0",
            "fps=-1",
            "colour=red",
        ] {
            let e = PictureQuery::parse(Some(bad), true).expect_err(bad);
            assert_eq!(e.kind, ErrorKind::BadRequest, "{bad}");
        }
        assert!(PictureQuery::parse(Some("fps=5"), false).is_err());
    }
}
