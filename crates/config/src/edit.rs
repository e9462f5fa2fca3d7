//! Editing a config file's text the way a person would: one `[[camera]]` table added, changed or
//! removed, every other line — comments, order, blank lines, the other tables — kept as it was.
//! Pure (text in, text out); the result is checked with [`crate::parse`] by the caller before it
//! is written.
//!
//! A camera comes from the web form as a JSON object whose keys are the config's camera keys.
//! URLs come back from the API redacted (`rtsp://***:***@host/…`); a URL that still holds a `***`
//! where a secret was keeps the stored secret, so editing a camera's name never needs its password.
//!
//! A camera's `[camera.motion]` table (or `motion = { … }`) is not on the form: a change that does
//! not name `motion` leaves it exactly as written, comments and all; one that sends it back as the
//! API listed it (the settings page's Disable and Enable do) changes nothing in it either.

use std::fmt;

use serde_json::{Map, Value};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table};

use crate::CAMERA_KEYS;

/// Why an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The file is not TOML (it cannot be edited without losing what it says).
    Syntax(String),
    /// No camera has this id.
    NoCamera(String),
    /// A camera with this id exists already.
    Duplicate(String),
    /// A value from the form cannot be written (wrong type, unknown key).
    BadValue(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Syntax(e) => write!(f, "the config file is not valid TOML: {e}"),
            EditError::NoCamera(id) => write!(f, "no camera \"{id}\" in the config file"),
            EditError::Duplicate(id) => write!(f, "a camera \"{id}\" exists already"),
            EditError::BadValue(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for EditError {}

/// What to do to the file.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraChange {
    /// Append a new `[[camera]]`.
    Add(Map<String, Value>),
    /// Replace the keys of camera `id` by these (keys not given are removed; keys whose value is
    /// unchanged keep their comments).
    Update(String, Map<String, Value>),
    /// Remove camera `id`.
    Remove(String),
}

fn cameras(doc: &mut DocumentMut) -> Option<&mut ArrayOfTables> {
    doc.get_mut("camera").and_then(Item::as_array_of_tables_mut)
}

fn id_of(t: &Table) -> Option<&str> {
    t.get("id").and_then(Item::as_str)
}

fn find(doc: &mut DocumentMut, id: &str) -> Option<usize> {
    cameras(doc)?.iter().position(|t| id_of(t) == Some(id))
}

/// The value of camera `id`'s key `key` as written in `text`, if it is a string (the stored URL a
/// redacted one is merged with).
pub fn camera_string(text: &str, id: &str, key: &str) -> Option<String> {
    let doc: DocumentMut = text.parse().ok()?;
    let tables = doc.get("camera")?.as_array_of_tables()?;
    let table = tables.iter().find(|t| id_of(t) == Some(id))?;
    table.get(key)?.as_str().map(str::to_owned)
}

/// Applies `change` to the config text.
pub fn edit_camera(text: &str, change: &CameraChange) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Syntax(e.message().to_owned()))?;
    match change {
        CameraChange::Add(fields) => {
            let id = fields.get("id").and_then(Value::as_str).unwrap_or("");
            if find(&mut doc, id).is_some() {
                return Err(EditError::Duplicate(id.to_owned()));
            }
            let mut table = Table::new();
            write_fields(&mut table, fields)?;
            if cameras(&mut doc).is_none() {
                doc.insert("camera", Item::ArrayOfTables(ArrayOfTables::new()));
            }
            let Some(list) = cameras(&mut doc) else {
                return Err(EditError::BadValue("camera is not a list of tables".into()));
            };
            // A blank line before the new table, like the examples (not at the top of a new file).
            if !list.is_empty() || !text.trim().is_empty() {
                table.decor_mut().set_prefix("\n");
            }
            list.push(table);
        }
        CameraChange::Update(id, fields) => {
            let index = find(&mut doc, id).ok_or_else(|| EditError::NoCamera(id.clone()))?;
            let new_id = fields.get("id").and_then(Value::as_str).unwrap_or(id);
            if new_id != id && find(&mut doc, new_id).is_some() {
                return Err(EditError::Duplicate(new_id.to_owned()));
            }
            let list = cameras(&mut doc).ok_or_else(|| EditError::NoCamera(id.clone()))?;
            let table = list
                .get_mut(index)
                .ok_or_else(|| EditError::NoCamera(id.clone()))?;
            write_fields(table, fields)?;
        }
        CameraChange::Remove(id) => {
            let index = find(&mut doc, id).ok_or_else(|| EditError::NoCamera(id.clone()))?;
            if let Some(list) = cameras(&mut doc) {
                list.remove(index);
            }
        }
    }
    Ok(doc.to_string())
}

/// Camera keys the settings form does not show: a change that leaves them out keeps them as
/// written instead of removing them.
const NOT_ON_THE_FORM: &[&str] = &[
    "motion",
    "rotate",
    "flip",
    "crop",
    "perspective",
    "transform_size",
];

/// Sets the table's keys to `fields`: changed values are written, unchanged ones are left (with
/// their comments), keys not in `fields` are removed (except [`NOT_ON_THE_FORM`]). Known keys only,
/// new ones in the order of the config reference. A URL still masked (`***` as its user info or a
/// `key=***` value, after [`restore_secrets`] had its chance) is refused: it would be written as
/// it is.
fn write_fields(table: &mut Table, fields: &Map<String, Value>) -> Result<(), EditError> {
    for key in fields.keys() {
        if !CAMERA_KEYS.contains(&key.as_str()) {
            return Err(EditError::BadValue(format!(
                "unknown camera key \"{}\"",
                key.escape_default()
            )));
        }
    }
    let stale: Vec<String> = table
        .iter()
        .map(|(k, _)| k.to_owned())
        .filter(|k| !fields.contains_key(k) && !NOT_ON_THE_FORM.contains(&k.as_str()))
        .collect();
    for key in stale {
        table.remove(&key);
    }
    // New keys in the config's own order (id, name, url first), whatever order the form used.
    let mut ordered: Vec<(&String, &Value)> = fields.iter().collect();
    ordered.sort_by_key(|(k, _)| CAMERA_KEYS.iter().position(|c| c == k));
    for (key, value) in ordered {
        if matches!(key.as_str(), "url" | "substream_url") && value.as_str().is_some_and(holds_mask)
        {
            return Err(EditError::BadValue(format!(
                "{key} still shows *** where a user name or password goes, and there is no stored \
                 one to keep: type them in (percent-encoded)"
            )));
        }
        if key == "motion" {
            write_sub_table(table, key, value)?;
            continue;
        }
        let new = to_value(key, value)?;
        let same = table
            .get(key)
            .and_then(Item::as_value)
            .is_some_and(|old| same_value(old, &new));
        if !same {
            // Keep the comment after an existing value when only the value changes.
            let suffix = table.get(key).and_then(Item::as_value).and_then(|v| {
                v.decor()
                    .suffix()
                    .and_then(|s| s.as_str())
                    .map(str::to_owned)
            });
            let mut new = new;
            if let Some(suffix) = suffix {
                new.decor_mut().set_suffix(suffix);
            }
            table.insert(key, Item::Value(new));
        }
    }
    Ok(())
}

/// Sets a sub-table key (`motion`) to `value`, a JSON object. When it says what the file says
/// already, nothing is touched. Otherwise a `[camera.motion]` table stays one (its keys set like
/// the camera's: unchanged values keep their text and comments), anything else is written
/// `motion = { … }`.
fn write_sub_table(table: &mut Table, key: &str, value: &Value) -> Result<(), EditError> {
    let Value::Object(entries) = value else {
        return Err(EditError::BadValue(format!(
            "{key}: a table is needed, like {{\"enabled\": true}}"
        )));
    };
    if table
        .get(key)
        .is_some_and(|old| same_json(&item_to_json(old), value))
    {
        return Ok(());
    }
    let Some(Item::Table(sub)) = table.get_mut(key) else {
        table.insert(key, Item::Value(to_value(key, value)?));
        return Ok(());
    };
    let stale: Vec<String> = sub
        .iter()
        .map(|(k, _)| k.to_owned())
        .filter(|k| !entries.contains_key(k))
        .collect();
    for k in stale {
        sub.remove(&k);
    }
    for (k, v) in entries {
        if sub
            .get(k)
            .is_some_and(|old| same_json(&item_to_json(old), v))
        {
            continue;
        }
        let mut new = to_value(&format!("{key}.{k}"), v)?;
        let suffix = sub.get(k).and_then(Item::as_value).and_then(|v| {
            v.decor()
                .suffix()
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        });
        if let Some(suffix) = suffix {
            new.decor_mut().set_suffix(suffix);
        }
        sub.insert(k, Item::Value(new));
    }
    Ok(())
}

/// What a TOML item says, as JSON (the form the API lists a camera's keys in).
fn item_to_json(item: &Item) -> Value {
    match item {
        Item::None => Value::Null,
        Item::Value(v) => value_to_json(v),
        Item::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_owned(), item_to_json(v)))
                .collect(),
        ),
        Item::ArrayOfTables(a) => Value::Array(
            a.iter()
                .map(|t| item_to_json(&Item::Table(t.clone())))
                .collect(),
        ),
    }
}

fn value_to_json(v: &toml_edit::Value) -> Value {
    use toml_edit::Value as V;
    match v {
        V::String(s) => Value::String(s.value().clone()),
        V::Integer(i) => Value::from(*i.value()),
        V::Float(f) => serde_json::Number::from_f64(*f.value()).map_or(Value::Null, Value::Number),
        V::Boolean(b) => Value::Bool(*b.value()),
        V::Datetime(d) => Value::String(d.value().to_string()),
        V::Array(a) => Value::Array(a.iter().map(value_to_json).collect()),
        V::InlineTable(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_owned(), value_to_json(v)))
                .collect(),
        ),
    }
}

/// Whether two JSON values say the same, numbers compared by value (`10.0` from the file is `10`
/// once a browser has had it).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn same_value(a: &toml_edit::Value, b: &toml_edit::Value) -> bool {
    // Compare what the values say, not how they are written.
    let mut a = a.clone();
    let mut b = b.clone();
    a.decor_mut().clear();
    b.decor_mut().clear();
    a.to_string().trim() == b.to_string().trim()
}

fn to_value(key: &str, v: &Value) -> Result<toml_edit::Value, EditError> {
    let bad = || {
        EditError::BadValue(format!(
            "{key}: a string, number, boolean, list or table is needed"
        ))
    };
    Ok(match v {
        Value::String(s) => s.as_str().into(),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(f)) => f.into(),
            _ => return Err(bad()),
        },
        Value::Array(items) => {
            let mut a = Array::new();
            for item in items {
                a.push(to_value(key, item)?);
            }
            a.into()
        }
        Value::Object(map) => {
            let mut t = InlineTable::new();
            for (k, item) in map {
                t.insert(k, to_value(key, item)?);
            }
            t.into()
        }
        Value::Null => return Err(bad()),
    })
}

/// `new` as the form sent it, with the secrets of `stored` put back where `new` shows `***`: the
/// `user:password@` part (`***:***@`) and `key=***` query pairs (Xiongmai's `password=`). A URL
/// with no `***` is taken as written.
pub fn restore_secrets(new: &str, stored: &str) -> String {
    if !new.contains("***") {
        return new.to_owned();
    }
    let mut out = new.to_owned();
    // The user:password@ part.
    if let (Some(n), Some(s)) = (userinfo(new), userinfo(stored)) {
        if n.1.contains("***") {
            out = format!("{}{}{}", &new[..n.0], s.1, &new[n.0 + n.1.len()..]);
        }
    }
    // key=*** pairs anywhere after the authority.
    let stored_pairs: Vec<(&str, &str)> = stored
        .split(['?', '&', ';'])
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .collect();
    for (key, value) in stored_pairs {
        let masked = format!("{key}=***");
        if out.contains(&masked) {
            out = out.replacen(&masked, &format!("{key}={value}"), 1);
        }
    }
    out
}

/// Whether a URL still shows the API's mask where a secret goes.
fn holds_mask(url: &str) -> bool {
    userinfo(url).is_some_and(|(_, u)| u.contains("***")) || url.contains("=***")
}

/// The byte offset and text of a URL's `user:password` part (without the `@`), if it has one.
fn userinfo(url: &str) -> Option<(usize, &str)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    Some((start, &rest[..at]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"# camhub at home
[server]
listen = "127.0.0.1:8080"   # loopback

# The front door (Hikvision)
[[camera]]
id = "door"
name = "Front door"   # shown in the UI
url = "rtsp://admin:s3cret@192.168.1.64/Streaming/Channels/101"

# The garden
[[camera]]
id = "garden"
url = "http://192.168.1.50:81/stream"
"#;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn an_update_keeps_comments_and_the_other_tables() {
        let change = CameraChange::Update(
            "door".into(),
            fields(json!({
                "id": "door", "name": "Front door",
                "url": "rtsp://***:***@192.168.1.64/Streaming/Channels/102",
                "idle_timeout": "1m",
            })),
        );
        let mut change = change;
        if let CameraChange::Update(_, f) = &mut change {
            let stored = camera_string(FILE, "door", "url").unwrap();
            let url = restore_secrets(f["url"].as_str().unwrap(), &stored);
            f.insert("url".into(), url.into());
        }
        let out = edit_camera(FILE, &change).unwrap();
        assert!(
            out.starts_with(
                "# camhub at home\n[server]\nlisten = \"127.0.0.1:8080\"   # loopback\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("# The front door (Hikvision)\n[[camera]]"),
            "{out}"
        );
        assert!(
            out.contains("name = \"Front door\"   # shown in the UI"),
            "{out}"
        );
        assert!(
            out.contains("url = \"rtsp://admin:s3cret@192.168.1.64/Streaming/Channels/102\""),
            "{out}"
        );
        assert!(out.contains("idle_timeout = \"1m\""), "{out}");
        assert!(
            out.contains("# The garden\n[[camera]]\nid = \"garden\""),
            "{out}"
        );
        let config = crate::parse(&out, "t.toml").unwrap();
        assert_eq!(config.cameras[0].idle_timeout.as_secs(), 60);
    }

    #[test]
    fn add_and_remove() {
        let out = edit_camera(
            FILE,
            &CameraChange::Add(fields(json!({"id": "usb", "url": "ffmpeg:/dev/video0", "input_options": {"video_size": "1280x720"}}))),
        )
        .unwrap();
        let config = crate::parse(&out, "t.toml").unwrap();
        assert_eq!(config.cameras.len(), 3);
        assert_eq!(config.cameras[2].id, "usb");
        let e = edit_camera(
            FILE,
            &CameraChange::Add(fields(json!({"id": "door", "url": "demo:"}))),
        );
        assert_eq!(e, Err(EditError::Duplicate("door".into())));
        let out = edit_camera(FILE, &CameraChange::Remove("door".into())).unwrap();
        assert!(!out.contains("s3cret") && out.contains("garden"), "{out}");
        assert!(
            out.contains("listen = \"127.0.0.1:8080\"   # loopback"),
            "{out}"
        );
        assert_eq!(
            edit_camera(FILE, &CameraChange::Remove("nope".into())),
            Err(EditError::NoCamera("nope".into()))
        );
        // A file with no cameras gets its first, id first whatever the form's order.
        let out = edit_camera(
            "",
            &CameraChange::Add(fields(
                json!({"url": "demo:", "enabled": false, "id": "demo", "always_on": true}),
            )),
        )
        .unwrap();
        assert!(
            out.starts_with(
                "[[camera]]\nid = \"demo\"\nurl = \"demo:\"\nalways_on = true\nenabled = false\n"
            ),
            "{out}"
        );
        assert_eq!(crate::parse(&out, "t.toml").unwrap().cameras[0].id, "demo");
    }

    #[test]
    fn unknown_keys_and_bad_files_are_refused() {
        let e = edit_camera(
            FILE,
            &CameraChange::Add(fields(json!({"id": "x", "password": "p"}))),
        );
        assert!(matches!(e, Err(EditError::BadValue(_))), "{e:?}");
        let e = edit_camera("[[camera]\n", &CameraChange::Remove("x".into()));
        assert!(matches!(e, Err(EditError::Syntax(_))), "{e:?}");
    }

    const WITH_MOTION: &str = r#"[[camera]]
id = "door"
url = "demo:"
idle_timeout = "1m"   # keep

# Motion at the door: not the street.
[camera.motion]
threshold = 25            # a noisy sensor
min_area = 1.0
masks = [
  [[0, 0], [640, 0], [640, 120]],   # the street
]
start_after = "500ms"

[[camera]]
id = "yard"
url = "demo:"
motion = { enabled = true, fps = 5.0 }   # inline
name = "Yard"

[events]
retention = "7d"
"#;

    /// A camera's keys as `GET /api/config/cameras` lists them (and the settings page sends them
    /// back).
    fn listed(text: &str, index: usize) -> Map<String, Value> {
        let doc: toml::Table = toml::from_str(text).unwrap();
        let camera = &doc["camera"].as_array().unwrap()[index];
        let json = serde_json::to_value(camera).unwrap();
        // Through a browser: 1.0 becomes 1.
        let json: Value = serde_json::from_str(&json.to_string().replace(".0", "")).unwrap();
        json.as_object().unwrap().clone()
    }

    /// The `[camera.motion]` block of the door camera, as written.
    fn door_motion(text: &str) -> &str {
        let start = text.find("\n# Motion at the door").unwrap();
        let end = text.find("\n[[camera]]\nid = \"yard\"").unwrap();
        &text[start..end]
    }

    #[test]
    fn a_change_from_the_form_keeps_the_motion_tables_as_written() {
        // The form sends only its own keys: motion is left as it is, comments and all.
        let door = CameraChange::Update(
            "door".into(),
            fields(json!({"id": "door", "name": "Door", "url": "demo:", "idle_timeout": "2m"})),
        );
        let out = edit_camera(WITH_MOTION, &door).unwrap();
        assert_eq!(door_motion(&out), door_motion(WITH_MOTION), "{out}");
        assert!(out.contains("idle_timeout = \"2m\"   # keep\n"), "{out}");
        assert!(out.contains("name = \"Door\""), "{out}");
        let config = crate::parse(&out, "t.toml").unwrap();
        assert_eq!(config.cameras[0].motion.as_ref().unwrap().threshold, 25);
        assert_eq!(config.cameras[0].name, "Door");

        // The inline form too.
        let yard = CameraChange::Update(
            "yard".into(),
            fields(json!({"id": "yard", "url": "demo:", "always_on": true})),
        );
        let out = edit_camera(WITH_MOTION, &yard).unwrap();
        assert!(
            out.contains("motion = { enabled = true, fps = 5.0 }   # inline\n"),
            "{out}"
        );
        assert!(!out.contains("Yard"), "{out}");
        assert!(
            out.ends_with("always_on = true\n\n[events]\nretention = \"7d\"\n"),
            "{out}"
        );
        assert_eq!(
            door_motion(&out),
            door_motion(WITH_MOTION),
            "the other camera is untouched: {out}"
        );
        assert_eq!(
            crate::parse(&out, "t.toml").unwrap().cameras[1]
                .motion
                .as_ref()
                .unwrap()
                .fps,
            5.0
        );
    }

    #[test]
    fn disable_sends_motion_back_and_it_stays_as_written() {
        // The settings page's Disable: the listed keys, plus enabled = false.
        for (index, id) in [(0, "door"), (1, "yard")] {
            let mut f = listed(WITH_MOTION, index);
            assert!(f.contains_key("motion"), "{f:?}");
            f.insert("enabled".into(), false.into());
            let out = edit_camera(WITH_MOTION, &CameraChange::Update(id.into(), f)).unwrap();
            assert_eq!(door_motion(&out), door_motion(WITH_MOTION), "{out}");
            assert!(
                out.contains("motion = { enabled = true, fps = 5.0 }   # inline\n"),
                "{out}"
            );
            let config = crate::parse(&out, "t.toml").unwrap();
            assert!(!config.cameras[index].enabled);
            assert_eq!(
                config.cameras[index].motion,
                crate::parse(WITH_MOTION, "t.toml").unwrap().cameras[index].motion
            );
        }
    }

    #[test]
    fn a_changed_motion_table_is_written_in_its_own_form() {
        // A sub-table stays one: only the changed value is rewritten, the comments stay.
        let mut f = listed(WITH_MOTION, 0);
        f["motion"]["threshold"] = json!(30);
        f["motion"].as_object_mut().unwrap().remove("start_after");
        f["motion"]["fps"] = json!(5);
        let out = edit_camera(WITH_MOTION, &CameraChange::Update("door".into(), f)).unwrap();
        let block = door_motion(&out);
        assert!(
            block.contains("[camera.motion]\nthreshold = 30            # a noisy sensor\n"),
            "{out}"
        );
        assert!(block.contains("min_area = 1.0\n"), "{out}");
        assert!(
            block.contains("  [[0, 0], [640, 0], [640, 120]],   # the street\n"),
            "{out}"
        );
        assert!(!block.contains("start_after"), "{out}");
        let motion = crate::parse(&out, "t.toml").unwrap().cameras[0]
            .motion
            .clone()
            .unwrap();
        assert_eq!((motion.threshold, motion.fps), (30, 5.0));
        assert_eq!(motion.start_after, crate::Motion::default().start_after);
        assert_eq!(
            motion.masks,
            vec![vec![[0.0, 0.0], [640.0, 0.0], [640.0, 120.0]]]
        );

        // A camera without one gets motion = { … }.
        let out = edit_camera(
            FILE,
            &CameraChange::Update(
                "garden".into(),
                fields(
                    json!({"id": "garden", "url": "http://192.168.1.50:81/stream",
                    "motion": {"zones": [[[0, 0], [10, 0], [10, 10]]], "min_area": 2.5}}),
                ),
            ),
        )
        .unwrap();
        assert!(
            out.ends_with("motion = { min_area = 2.5, zones = [[[0, 0], [10, 0], [10, 10]]] }\n"),
            "{out}"
        );
        let motion = crate::parse(&out, "t.toml").unwrap().cameras[1]
            .motion
            .clone()
            .unwrap();
        assert_eq!(motion.min_area, 2.5);

        let e = edit_camera(
            FILE,
            &CameraChange::Update(
                "garden".into(),
                fields(json!({"id": "garden", "motion": true})),
            ),
        );
        assert!(
            matches!(e, Err(EditError::BadValue(ref m)) if m.starts_with("motion: a table")),
            "{e:?}"
        );
    }

    #[test]
    fn numbers_are_the_same_whatever_their_type() {
        assert!(same_json(&json!({"a": [1.0, 2]}), &json!({"a": [1, 2.0]})));
        assert!(!same_json(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!same_json(&json!({"a": 1}), &json!({"b": 1})));
        assert!(!same_json(&json!([1, 2]), &json!([2, 1])));
        assert!(!same_json(&json!("1"), &json!(1)));
    }

    #[test]
    fn secrets_come_back_only_where_masked() {
        let stored = "rtsp://admin:p%40ss@10.0.0.2:554/x?user=admin&password=hunter2";
        assert_eq!(
            restore_secrets(
                "rtsp://***:***@10.0.0.2:554/x?user=admin&password=***",
                stored
            ),
            stored
        );
        // New credentials typed in are taken.
        assert_eq!(
            restore_secrets("rtsp://bob:new@10.0.0.2/x", stored),
            "rtsp://bob:new@10.0.0.2/x"
        );
        // A masked URL for a camera without secrets stays as it is, and is refused when written.
        let e = edit_camera(
            FILE,
            &CameraChange::Add(fields(json!({"id": "copy", "url": "rtsp://***:***@h/x"}))),
        );
        assert!(
            matches!(e, Err(EditError::BadValue(ref m)) if m.contains("***")),
            "{e:?}"
        );
        let e = edit_camera(
            FILE,
            &CameraChange::Add(fields(
                json!({"id": "xm", "url": "rtsp://h/x?user=a&password=***"}),
            )),
        );
        assert!(matches!(e, Err(EditError::BadValue(_))), "{e:?}");
        assert_eq!(
            restore_secrets("rtsp://***:***@h/x", "rtsp://h/x"),
            "rtsp://***:***@h/x"
        );
    }
}
