//! Editing a config file's text the way a person would: one `[[camera]]` table added, changed or
//! removed, every other line — comments, order, blank lines, the other tables — kept as it was.
//! Pure (text in, text out); the result is checked with [`crate::parse`] by the caller before it
//! is written.
//!
//! A camera comes from the web form as a JSON object whose keys are the config's camera keys.
//! URLs come back from the API redacted (`rtsp://***:***@host/…`); a URL that still holds a `***`
//! where a secret was keeps the stored secret, so editing a camera's name never needs its password.

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

/// Sets the table's keys to `fields`: changed values are written, unchanged ones are left (with
/// their comments), keys not in `fields` are removed. Known keys only, new ones in the order of
/// the config reference. A URL still masked (`***` as its user info or a `key=***` value, after
/// [`restore_secrets`] had its chance) is refused: it would be written as it is.
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
        .filter(|k| !fields.contains_key(k))
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
