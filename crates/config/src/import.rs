//! `camhub import-config`: seed 004's `cameras_config.json` (its `url.jpg` / `url.rtsp`, `rotate`,
//! `perspective.src` / `width` / `hight`, `concat_x.front` / `back`, one entry per camera) turned
//! into an equivalent `camhub.toml`: one `[[camera]]` per entry with its rotation and warp, and a
//! `[[composite]]` of all of them with the cuts. Everything that could not be mapped as it was is
//! said in a note (and as a comment in the file), never dropped silently. Pure: text in, text out.

use serde_json::Value;

/// A converted config: the TOML text and what the user should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The `camhub.toml` text (it passes `camhub check`).
    pub toml: String,
    /// What was not mapped as it was, one sentence each.
    pub notes: Vec<String>,
}

/// How often a JPEG snapshot URL is polled: seed 004 fetched the next JPEG as soon as the last
/// one arrived; an ESP32-CAM answers a `/capture` in about 100–200 ms.
const POLL: &str = "200ms";

/// Converts seed 004's JSON. Errors name the place in the JSON (`camera[1].perspective.src`) and
/// what was expected.
pub fn seed004(json: &str) -> Result<Imported, String> {
    let root: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
    let cameras = root
        .get("camera")
        .and_then(Value::as_array)
        .ok_or("expected an object with a \"camera\" list (seed 004's cameras_config.json)")?;
    if cameras.is_empty() {
        return Err("the \"camera\" list is empty".into());
    }
    let mut notes = Vec::new();
    let mut out = String::from(
        "# Imported by `camhub import-config` from seed 004's cameras_config.json.\n\
         # Each camera is connected once and only while someone watches; \"panorama\" stitches them.\n",
    );
    let mut ids = Vec::new();
    let mut cuts = Vec::new();
    for (i, cam) in cameras.iter().enumerate() {
        let at = format!("camera[{i}]");
        let obj = cam
            .as_object()
            .ok_or_else(|| format!("{at}: expected an object"))?;
        let id = format!("cam{}", i + 1);
        let mut lines = vec![format!("\n[[camera]]\nid = {}", quote(&id))];
        for key in obj.keys() {
            if !matches!(key.as_str(), "url" | "rotate" | "perspective" | "concat_x") {
                notes.push(format!(
                    "{at}: \"{key}\" has no camhub equivalent and was left out"
                ));
            }
        }
        // The URL: RTSP wins over a JPEG snapshot URL.
        let url = obj.get("url").and_then(Value::as_object);
        let text = |k: &str| {
            url.and_then(|u| u.get(k))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let (rtsp, jpg) = (text("rtsp"), text("jpg"));
        let chosen = match (rtsp, jpg) {
            (Some(r), Some(j)) => {
                notes.push(format!(
                    "{at} ({id}): both url.jpg and url.rtsp are given: the RTSP URL is used (one \
                     connection, full frame rate); the JPEG URL is kept as a comment"
                ));
                lines.push(format!("# url.jpg was {}", quote(j)));
                Some((r, false))
            }
            (Some(r), None) => Some((r, false)),
            (None, Some(j)) => Some((j, true)),
            (None, None) => None,
        };
        let usable = |u: &str, jpeg: bool| {
            let schemes: &[&str] = if jpeg {
                &["http://", "https://"]
            } else {
                &["rtsp://"]
            };
            schemes.iter().any(|s| u.starts_with(s)) && crate::source::classify(u).is_ok()
        };
        match chosen {
            Some((u, jpeg)) if usable(u, jpeg) => {
                lines.push(format!("url = {}", quote(u)));
                if jpeg {
                    lines.push(format!("poll_interval = \"{POLL}\""));
                    notes.push(format!(
                        "{at} ({id}): a JPEG snapshot URL is polled every {POLL} (poll_interval); \
                         if the camera also serves MJPEG (an ESP32-CAM's :81/stream), use that URL \
                         instead: it needs no polling"
                    ));
                }
            }
            other => {
                let placeholder = format!("http://CAMERA{}-IP/capture", i + 1);
                let was = other.map_or("nothing".to_owned(), |(u, _)| quote(u));
                notes.push(format!(
                    "{at} ({id}): the URL is {was}, not a camera URL: replace {placeholder} with \
                     the camera's address"
                ));
                lines.push(format!("url = {}", quote(&placeholder)));
                lines.push(format!("poll_interval = \"{POLL}\""));
            }
        }
        match obj.get("rotate").map(Value::as_i64) {
            None | Some(Some(0)) => {}
            Some(Some(d @ (90 | 180 | 270))) => lines.push(format!("rotate = {d}")),
            Some(other) => notes.push(format!(
                "{at}.rotate: {} is not 0, 90, 180 or 270 and was left out",
                other.map_or("a non-number".to_owned(), |d| d.to_string())
            )),
        }
        let mut width = None;
        if let Some(p) = obj.get("perspective") {
            let (corners, w, h) = perspective(p, &format!("{at}.perspective"))?;
            width = Some(w);
            let points: Vec<String> = corners
                .iter()
                .map(|[x, y]| format!("[{}, {}]", number(*x), number(*y)))
                .collect();
            lines.push(format!(
                "perspective = {{ corners = [{}], width = {w}, height = {h} }}",
                points.join(", ")
            ));
        }
        if let Some(c) = obj.get("concat_x") {
            let get = |k: &str| c.get(k).and_then(Value::as_i64);
            let (front, back) = match (get("front"), get("back")) {
                (Some(f), Some(b)) => (f, b),
                _ => {
                    return Err(format!(
                        "{at}.concat_x: expected {{\"front\": N, \"back\": N}}"
                    ))
                }
            };
            if front < 0 || back <= front {
                return Err(format!(
                    "{at}.concat_x: front {front} and back {back}: front must be 0 or more and less than back"
                ));
            }
            // The whole width needs no cut.
            if !(front == 0 && width == Some(back as u32)) {
                cuts.push(format!("{id} = [{front}, {back}]"));
            }
        }
        out.push_str(&lines.join("\n"));
        out.push('\n');
        ids.push(id);
    }
    out.push_str("\n[[composite]]\nid = \"panorama\"\nname = \"Panorama\"\nlayout = \"hstack\"\n");
    let quoted: Vec<String> = ids.iter().map(|i| quote(i)).collect();
    out.push_str(&format!("inputs = [{}]\n", quoted.join(", ")));
    if !cuts.is_empty() {
        out.push_str(&format!("cuts = {{ {} }}\n", cuts.join(", ")));
    }
    notes.push(
        "the panorama is /api/cameras/panorama/stream.mjpeg (seed 004's /stream); cameras close \
         30 s after the last viewer, as seed 004's server did (idle_timeout)"
            .to_owned(),
    );
    Ok(Imported { toml: out, notes })
}

/// `perspective`: `src` (4 points), `width`, `hight` (seed 004's spelling; `height` accepted).
fn perspective(p: &Value, at: &str) -> Result<([[f64; 2]; 4], u32, u32), String> {
    let src = p
        .get("src")
        .and_then(Value::as_array)
        .filter(|s| s.len() == 4)
        .ok_or_else(|| format!("{at}.src: expected 4 [x, y] corners"))?;
    let mut corners = [[0.0; 2]; 4];
    for (i, pt) in src.iter().enumerate() {
        let xy = pt
            .as_array()
            .filter(|a| a.len() == 2)
            .and_then(|a| Some([a[0].as_f64()?, a[1].as_f64()?]))
            .ok_or_else(|| format!("{at}.src[{i}]: expected [x, y], two numbers"))?;
        corners[i] = xy;
    }
    let side = |k: &str| {
        p.get(k)
            .and_then(Value::as_u64)
            .filter(|&n| (1..=16384).contains(&n))
            .map(|n| n as u32)
    };
    let w = side("width").ok_or_else(|| format!("{at}.width: expected a number of pixels"))?;
    let h = side("hight")
        .or_else(|| side("height"))
        .ok_or_else(|| format!("{at}.hight: expected a number of pixels"))?;
    Ok((corners, w, h))
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A number as TOML writes it: whole numbers without a fraction.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)] // in tests a panic is the assertion
    fn bad_json_is_refused_with_its_place() {
        assert!(seed004("{").unwrap_err().contains("not valid JSON"));
        assert!(seed004("{\"cameras\": []}")
            .unwrap_err()
            .contains("\"camera\" list"));
        let e = seed004(r#"{"camera": [{"url": {"jpg": "http://a/x"}, "perspective": {"src": [[0, 0]], "width": 1, "hight": 1}}]}"#)
            .unwrap_err();
        assert!(e.starts_with("camera[0].perspective.src"), "{e}");
        let e = seed004(
            r#"{"camera": [{"url": {"jpg": "http://a/x"}, "concat_x": {"front": 9, "back": 3}}]}"#,
        )
        .unwrap_err();
        assert!(e.starts_with("camera[0].concat_x"), "{e}");
    }
}
