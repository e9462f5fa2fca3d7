//! `[[composite]]`: virtual cameras made of other cameras' pictures (seed 004's panorama). Each is
//! read into a [`crate::Camera`] whose source is [`SourceKind::Composite`], so the rest of camhub
//! serves it like any camera; its inputs are checked against the `[[camera]]` ids once the whole
//! file is read.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;

use toml::de::DeValue;

use super::{in_file_order, to_i64, Cx, Value, ID_FIX};
use crate::{Camera, Composite, Layout, SourceKind, SourceSpec, Transform, User};

/// The keys of a `[[composite]]` table.
pub(crate) const COMPOSITE_KEYS: &[&str] = &[
    "id",
    "name",
    "layout",
    "inputs",
    "cuts",
    "width",
    "height",
    "fps",
    "stale_after",
    "idle_timeout",
    "enabled",
    "motion",
    "transcode",
];
const LAYOUT_FIX: &str =
    "use \"hstack\" (side by side), \"vstack\" (one above the other) or \"grid\"";
const INPUTS_FIX: &str =
    "write inputs = [\"left\", \"middle\", \"right\"]: ids of [[camera]]s, in the order they are placed";
const CUTS_FIX: &str = "write cuts = { left = [0, 632], right = [8, 640] }: per input id, the first \
     column kept and the one after the last (rows for \"vstack\"), in pixels of that camera's picture";

/// A composite as read, with the places of its inputs and cuts for the checks that need every
/// camera.
pub(crate) struct RawComposite {
    pub camera: Camera,
    index: usize,
    id_at: Range<usize>,
    inputs_at: Range<usize>,
    cuts_at: Option<Range<usize>>,
}

impl Cx<'_> {
    /// The `[[composite]]` list.
    pub(crate) fn composites(&mut self, v: &Value<'_>) -> Vec<RawComposite> {
        let fix = "write [[composite]] (double brackets), once before each composite's keys";
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type("composite", v, "a list of tables", fix);
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.composite(i, item))
            .collect()
    }

    fn composite(&mut self, index: usize, v: &Value<'_>) -> Option<RawComposite> {
        let prefix = format!("composite[{index}].");
        let DeValue::Table(table) = v.get_ref() else {
            let fix = "write [[composite]] (double brackets), once before each composite's keys";
            self.wrong_type(&format!("composite[{index}]"), v, "a table", fix);
            return None;
        };
        let errors_before = self.errors.len();
        let (mut id, mut name, mut layout, mut inputs) = (None, None, None, None);
        let mut cuts = BTreeMap::new();
        let mut cuts_at = None;
        let (mut width, mut height) = (None, None);
        let mut fps = 10;
        let mut stale_after = Duration::from_secs(3);
        let mut idle_timeout = Duration::from_secs(30);
        let mut enabled = true;
        let mut motion = None;
        let mut transcode = None;
        for (key, value) in in_file_order(table) {
            let key_name = key.get_ref().as_ref();
            let path = format!("{prefix}{key_name}");
            let path = path.as_str();
            match key_name {
                "id" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    let ok = s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    });
                    if s.is_empty() || s.len() > 64 || !ok {
                        self.error(value.span(), path, format!("invalid id \"{s}\""), ID_FIX);
                    } else {
                        id = Some((s, value.span()));
                    }
                }
                "name" => name = self.string(path, value).filter(|s| !s.trim().is_empty()),
                "layout" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    layout = match s.as_str() {
                        "hstack" => Some(Layout::HStack),
                        "vstack" => Some(Layout::VStack),
                        "grid" => Some(Layout::Grid),
                        _ => {
                            self.error(
                                value.span(),
                                path,
                                format!("invalid layout \"{s}\""),
                                LAYOUT_FIX,
                            );
                            None
                        }
                    };
                }
                "inputs" => {
                    let Some(list) = self.string_list(path, value) else {
                        continue;
                    };
                    if list.is_empty() {
                        self.error(
                            value.span(),
                            path,
                            "a composite needs at least one input",
                            INPUTS_FIX,
                        );
                        continue;
                    }
                    let mut seen: HashMap<&str, ()> = HashMap::new();
                    for (s, at) in &list {
                        if seen.insert(s.as_str(), ()).is_some() {
                            self.error(
                                at.clone(),
                                path,
                                format!("\"{s}\" is listed twice"),
                                INPUTS_FIX,
                            );
                        }
                    }
                    inputs = Some((
                        list.into_iter().map(|(s, _)| s).collect::<Vec<_>>(),
                        value.span(),
                    ));
                }
                "cuts" => {
                    let DeValue::Table(t) = value.get_ref() else {
                        self.wrong_type(
                            path,
                            value,
                            "a table of input id = [front, back]",
                            CUTS_FIX,
                        );
                        continue;
                    };
                    cuts_at = Some(value.span());
                    for (k, cut) in in_file_order(t) {
                        let cut_path = format!("{path}.{}", k.get_ref());
                        let pair = match cut.get_ref() {
                            DeValue::Array(xs) if xs.len() == 2 => {
                                let n = |v: &Value<'_>| match v.get_ref() {
                                    DeValue::Integer(i) => {
                                        to_i64(i).filter(|n| (0..=16384).contains(n))
                                    }
                                    _ => None,
                                };
                                n(&xs[0]).zip(n(&xs[1]))
                            }
                            _ => None,
                        };
                        match pair {
                            Some((front, back)) if front < back => {
                                cuts.insert(k.get_ref().to_string(), [front as u32, back as u32]);
                            }
                            Some(_) => self.error(
                                cut.span(),
                                &cut_path,
                                "front must be less than back",
                                CUTS_FIX,
                            ),
                            None => self.error(
                                cut.span(),
                                &cut_path,
                                "a cut is [front, back], two whole numbers of pixels (0 to 16384)",
                                CUTS_FIX,
                            ),
                        }
                    }
                }
                "width" => width = self.integer(path, value, 16, 16384).map(|n| n as u32),
                "height" => height = self.integer(path, value, 16, 16384).map(|n| n as u32),
                "fps" => fps = self.integer(path, value, 1, 60).map_or(fps, |n| n as u32),
                "stale_after" => {
                    if let Some(d) = self.duration(
                        path,
                        value,
                        Duration::from_millis(200),
                        Duration::from_secs(600),
                    ) {
                        stale_after = d;
                    }
                }
                "idle_timeout" => {
                    if let Some(d) = self.duration(
                        path,
                        value,
                        Duration::from_secs(1),
                        Duration::from_secs(24 * 3600),
                    ) {
                        idle_timeout = d;
                    }
                }
                "enabled" => enabled = self.boolean(path, value).unwrap_or(enabled),
                "motion" => motion = self.motion(path, value),
                "transcode" => match self.string(path, value).as_deref() {
                    Some("h264") => transcode = Some(crate::Transcode::H264),
                    Some(other) => {
                        let message = format!("invalid transcode \"{other}\"");
                        let fix =
                            "use \"h264\" (or leave transcode out: the panorama is then JPEG only)";
                        self.error(value.span(), path, message, fix);
                    }
                    None => {}
                },
                _ => self.unknown_key(key, &prefix, COMPOSITE_KEYS),
            }
        }
        for (key, missing) in [
            ("id", id.is_none()),
            ("layout", layout.is_none()),
            ("inputs", inputs.is_none()),
        ] {
            if missing && !table.iter().any(|(k, _)| k.get_ref() == key) {
                let fix = match key {
                    "id" => "add a line like id = \"panorama\" ([a-z0-9_-], unique among cameras and composites)",
                    "layout" => LAYOUT_FIX,
                    _ => INPUTS_FIX,
                };
                self.error(
                    v.span(),
                    &format!("{prefix}{key}"),
                    format!("missing required key \"{key}\""),
                    fix,
                );
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let ((id, id_at), layout, (inputs, inputs_at)) = (id?, layout?, inputs?);
        let composite = Composite {
            layout,
            inputs,
            cuts,
            width,
            height,
            fps,
            stale_after,
        };
        let url = format!("composite:{}", composite.inputs.join(","));
        Some(RawComposite {
            camera: Camera {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                source: SourceSpec {
                    kind: SourceKind::Composite(composite),
                    url_without_credentials: url.clone(),
                    redacted: url.clone(),
                    url,
                    credentials: None,
                    secrets: Vec::new(),
                },
                substream: None,
                idle_timeout,
                always_on: false,
                watchdog: Duration::from_secs(10),
                decode_threads: 1,
                enabled,
                motion,
                transcode,
                transform: Transform::default(),
            },
            index,
            id_at,
            inputs_at,
            cuts_at,
        })
    }

    /// Checks the composites against the cameras (ids unique across both, every input an
    /// enabled camera, every cut an input) and adds them to `cameras`.
    pub(crate) fn add_composites(
        &mut self,
        cameras: &mut Vec<Camera>,
        composites: Vec<RawComposite>,
    ) {
        for raw in composites {
            let prefix = format!("composite[{}].", raw.index);
            let c = &raw.camera;
            if cameras.iter().any(|cam| cam.id == c.id) {
                let message = format!("\"{}\" is already the id of a camera or composite", c.id);
                let fix = "give every camera and composite a different id";
                self.error(raw.id_at.clone(), &format!("{prefix}id"), message, fix);
                continue;
            }
            let SourceKind::Composite(spec) = &c.source.kind else {
                continue;
            };
            let known: Vec<&str> = cameras
                .iter()
                .filter(|cam| !matches!(cam.source.kind, SourceKind::Composite(_)))
                .map(|cam| cam.id.as_str())
                .collect();
            let mut ok = true;
            for input in &spec.inputs {
                match cameras.iter().find(|cam| &cam.id == input) {
                    Some(cam) if matches!(cam.source.kind, SourceKind::Composite(_)) => {
                        ok = false;
                        let message =
                            format!("\"{input}\" is a composite: a composite's inputs are cameras");
                        self.error(
                            raw.inputs_at.clone(),
                            &format!("{prefix}inputs"),
                            message,
                            INPUTS_FIX,
                        );
                    }
                    Some(cam) if !cam.enabled => {
                        ok = false;
                        let message = format!("camera \"{input}\" is disabled (enabled = false)");
                        let fix = "enable the camera, or take it out of the composite's inputs";
                        self.error(
                            raw.inputs_at.clone(),
                            &format!("{prefix}inputs"),
                            message,
                            fix,
                        );
                    }
                    Some(_) => {}
                    None => {
                        ok = false;
                        let message = format!("unknown camera id \"{input}\"");
                        let fix = format!("use ids of [[camera]]s: {}", known.join(", "));
                        self.error(
                            raw.inputs_at.clone(),
                            &format!("{prefix}inputs"),
                            message,
                            fix,
                        );
                    }
                }
            }
            for id in spec.cuts.keys() {
                if !spec.inputs.contains(id) {
                    ok = false;
                    let message = format!("a cut for \"{id}\", which is not one of the inputs");
                    let at = raw.cuts_at.clone().unwrap_or(raw.inputs_at.clone());
                    self.error(at, &format!("{prefix}cuts"), message, CUTS_FIX);
                }
            }
            if ok {
                cameras.push(raw.camera);
            }
        }
    }

    /// A user who may see only some cameras may see a composite exactly when they may see all of
    /// its inputs: such composites are added to their list, and a composite listed without all of
    /// its inputs is an error (it would show them cameras they may not see).
    pub(crate) fn composite_access(
        &mut self,
        cameras: &[Camera],
        users: Vec<(User, Option<Range<usize>>)>,
    ) -> Vec<User> {
        let composites: Vec<(&str, &Composite)> = cameras
            .iter()
            .filter_map(|c| match &c.source.kind {
                SourceKind::Composite(spec) => Some((c.id.as_str(), spec)),
                _ => None,
            })
            .collect();
        let mut out = Vec::with_capacity(users.len());
        for (index, (mut user, at)) in users.into_iter().enumerate() {
            if let Some(list) = user.cameras.as_mut() {
                for (id, spec) in &composites {
                    let missing: Vec<&str> = spec
                        .inputs
                        .iter()
                        .filter(|i| !list.contains(i))
                        .map(String::as_str)
                        .collect();
                    let listed = list.iter().any(|c| c == id);
                    if missing.is_empty() && !listed {
                        list.push((*id).to_owned());
                    } else if !missing.is_empty() && listed {
                        let message = format!(
                            "composite \"{id}\" is listed but not all of its inputs: {}",
                            missing.join(", ")
                        );
                        let fix = "a composite shows its inputs: list them all too, or take the composite out";
                        self.error(
                            at.clone().unwrap_or(0..0),
                            &format!("user[{index}].cameras"),
                            message,
                            fix,
                        );
                    }
                }
            }
            out.push(user);
        }
        out
    }
}
