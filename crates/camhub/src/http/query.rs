//! Query parameters of the picture endpoints (`width`, `height`, `quality`, `fps`), validated in one
//! place: a bad `width=abc` is a JSON 400 naming the parameter and the valid range, never a
//! plain-text rejection and never a panic, whatever the bytes.

use axum::extract::RawQuery;

use crate::error::{Error, ErrorKind};
use crate::hub::variants::DEFAULT_QUALITY;
use crate::hub::VariantKey;

/// Parameters of the picture endpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PictureQuery {
    /// Which variant.
    pub key: VariantKey,
    /// Frame-rate cap for streams, if any.
    pub fps: Option<f64>,
}

impl PictureQuery {
    /// Parses `width`, `height`, `quality` and (when `allow_fps`) `fps`; `token` is the access
    /// layer's; anything else is an error.
    pub fn parse(raw: Option<&str>, allow_fps: bool) -> Result<PictureQuery, Error> {
        let (mut width, mut height, mut quality, mut fps) = (None, None, None, None);
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let int = |name: &str| whole_number(name, v);
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
                // The API token for `<img>` URLs: checked (and taken) by the access layer.
                "token" => {}
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
            key: variant_key(width, height, quality)?,
            fps,
        })
    }
}

/// Parameter `name`'s value `v` as a whole number: None when empty, a 400 naming it when not a
/// number.
pub fn whole_number(name: &str, v: &str) -> Result<Option<u32>, Error> {
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<u32>().map(Some).map_err(|_| {
        Error::new(
            ErrorKind::BadRequest,
            format!("{name}={} is not a whole number", v.escape_default()),
        )
    })
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

/// Validates picture query parameters into a variant key: sizes 2..=16384, quality 1..=100.
pub fn variant_key(
    width: Option<u32>,
    height: Option<u32>,
    quality: Option<u32>,
) -> Result<VariantKey, Error> {
    for (name, v) in [("width", width), ("height", height)] {
        if let Some(v) = v {
            if !(2..=16384).contains(&v) {
                return Err(Error::new(
                    ErrorKind::BadRequest,
                    format!("{name}={v} is out of range: use 2 to 16384 (pictures are never upscaled), or leave it out for the native size"),
                ));
            }
        }
    }
    let quality = match quality {
        None => None,
        Some(q @ 1..=100) => Some(q as u8),
        Some(q) => {
            return Err(Error::new(
                ErrorKind::BadRequest,
                format!("quality={q} is out of range: use 1 to 100 (default {DEFAULT_QUALITY})"),
            ))
        }
    };
    Ok(VariantKey {
        width,
        height,
        quality,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn variant_keys_are_range_checked() {
        assert!(variant_key(Some(0), None, None).is_err());
        assert!(variant_key(Some(100_000), None, None).is_err());
        assert!(variant_key(None, None, Some(0)).is_err());
        assert!(variant_key(None, None, Some(101)).is_err());
        let k = variant_key(Some(640), None, Some(50)).expect("valid");
        assert_eq!(k.effective_quality(), 50);
    }

    proptest! {
        #[test]
        fn never_panics_on_any_query(raw in ".{0,200}", fps in any::<bool>()) {
            let _ = PictureQuery::parse(Some(&raw), fps);
        }

        #[test]
        fn never_panics_on_query_shaped_input(
            pairs in proptest::collection::vec(
                ("(width|height|quality|fps|x)", "[-+0-9.eE]{0,12}|inf|NaN|[0-9]{1,30}"),
                0..6,
            ),
        ) {
            let raw: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let raw = raw.join("&");
            if let Ok(q) = PictureQuery::parse(Some(&raw), true) {
                prop_assert!(q.fps.is_none_or(|f| (MIN_FPS..=1000.0).contains(&f)));
                prop_assert!(q.key.width.is_none_or(|w| (2..=16384).contains(&w)));
                prop_assert!(q.key.quality.is_none_or(|q| (1..=100).contains(&q)));
            }
        }
    }
}
