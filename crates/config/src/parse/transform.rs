//! A camera's geometry keys: `rotate`, `flip`, `crop`, `perspective` and `transform_size`, checked
//! one by one (each error names its key and line) and then together (a crop must fit in the
//! perspective's output), into a [`camhub_media::warp::Transform`].

use std::ops::Range;

use camhub_media::warp::{Crop, Perspective, Rotation, Transform};
use toml::de::DeValue;

use super::{in_file_order, to_i64, Cx, Value};

/// The camera keys this module reads.
pub(crate) const TRANSFORM_KEYS: &[&str] =
    &["rotate", "flip", "crop", "perspective", "transform_size"];
const PERSPECTIVE_KEYS: &[&str] = &["corners", "width", "height"];
/// The largest output side a transform may ask for (camhub's picture limit).
const MAX_SIDE: i64 = 16384;
const ROTATE_FIX: &str = "use 0, 90, 180 or 270 (degrees clockwise)";
const FLIP_FIX: &str =
    "use \"horizontal\" (mirror left-right), \"vertical\" (upside-down mirror) or \"both\"";
const CROP_FIX: &str = "write crop = [x, y, width, height] in pixels, like [0, 0, 640, 360]";
const PERSPECTIVE_FIX: &str = "write perspective = { corners = [[x, y], [x, y], [x, y], [x, y]], \
     width = W, height = H }: the corners top-left, bottom-left, bottom-right, top-right in pixels \
     of the rotated picture, and the size they become (the calibration page at \
     /cameras/ID/calibrate writes it for you)";
const SIZE_FIX: &str = "write transform_size = [width, height]: the (rotated) picture size the \
     corners and crop were written for, like [640, 480]";

/// The transform keys of one camera as they were read, with the place of `crop` for the
/// cross-check.
#[derive(Default)]
pub(crate) struct TransformKeys {
    pub transform: Transform,
    crop_at: Option<Range<usize>>,
}

impl Cx<'_> {
    /// Reads one of [`TRANSFORM_KEYS`] into `keys`.
    pub(crate) fn transform_key(
        &mut self,
        keys: &mut TransformKeys,
        name: &str,
        path: &str,
        v: &Value<'_>,
    ) {
        let t = &mut keys.transform;
        match name {
            "rotate" => {
                let DeValue::Integer(i) = v.get_ref() else {
                    self.wrong_type(path, v, "a number of degrees", ROTATE_FIX);
                    return;
                };
                match to_i64(i).and_then(Rotation::from_degrees) {
                    Some(r) => t.rotate = r,
                    None => self.error(
                        v.span(),
                        path,
                        format!("cannot rotate by {i} degrees"),
                        ROTATE_FIX,
                    ),
                }
            }
            "flip" => {
                let Some(s) = self.string(path, v) else {
                    return;
                };
                match s.as_str() {
                    "horizontal" => t.flip_horizontal = true,
                    "vertical" => t.flip_vertical = true,
                    "both" => (t.flip_horizontal, t.flip_vertical) = (true, true),
                    "none" => {}
                    _ => self.error(v.span(), path, format!("invalid flip \"{s}\""), FLIP_FIX),
                }
            }
            "crop" => {
                let Some(n) = self.whole_numbers(path, v, 4, CROP_FIX) else {
                    return;
                };
                if n[2] == 0 || n[3] == 0 {
                    self.error(
                        v.span(),
                        path,
                        "a crop's width and height must be above 0",
                        CROP_FIX,
                    );
                    return;
                }
                t.crop = Some(Crop {
                    x: n[0],
                    y: n[1],
                    width: n[2],
                    height: n[3],
                });
                keys.crop_at = Some(v.span());
            }
            "transform_size" => {
                let Some(n) = self.whole_numbers(path, v, 2, SIZE_FIX) else {
                    return;
                };
                if n[0] == 0 || n[1] == 0 {
                    self.error(v.span(), path, "a size must be above 0 both ways", SIZE_FIX);
                    return;
                }
                t.reference = Some((n[0], n[1]));
            }
            "perspective" => t.perspective = self.perspective(path, v),
            _ => {}
        }
    }

    /// The checks across keys, once the camera's table is read: a crop must lie inside the
    /// perspective's output (without a warp the picture's size is not known yet: a crop beyond it
    /// is cut to it and reported in the camera's status).
    pub(crate) fn check_transform(&mut self, prefix: &str, keys: &TransformKeys) {
        let t = &keys.transform;
        if let (Some(c), Some(p), Some(at)) = (&t.crop, &t.perspective, &keys.crop_at) {
            if c.x.saturating_add(c.width) > p.width || c.y.saturating_add(c.height) > p.height {
                let message = format!(
                    "the crop [{}, {}, {}, {}] reaches beyond the perspective's {}x{} output",
                    c.x, c.y, c.width, c.height, p.width, p.height
                );
                let fix = "the crop is taken from the warped picture: keep x + width within the \
                           perspective's width and y + height within its height";
                self.error(at.clone(), &format!("{prefix}crop"), message, fix);
            }
        }
    }

    /// A list of exactly `n` whole numbers from 0 to [`MAX_SIDE`].
    fn whole_numbers(
        &mut self,
        path: &str,
        v: &Value<'_>,
        n: usize,
        fix: &str,
    ) -> Option<Vec<u32>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(path, v, &format!("a list of {n} numbers"), fix);
            return None;
        };
        if items.len() != n {
            let message = format!("{n} numbers are needed, this list has {}", items.len());
            self.error(v.span(), path, message, fix);
            return None;
        }
        let mut out = Vec::with_capacity(n);
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let DeValue::Integer(x) = item.get_ref() else {
                self.wrong_type(&item_path, item, "a whole number of pixels", fix);
                return None;
            };
            match to_i64(x).filter(|x| (0..=MAX_SIDE).contains(x)) {
                Some(x) => out.push(x as u32),
                None => {
                    self.error(
                        item.span(),
                        &item_path,
                        format!("{x} is out of range (0 to {MAX_SIDE})"),
                        fix,
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// `perspective = { corners, width, height }`.
    fn perspective(&mut self, path: &str, v: &Value<'_>) -> Option<Perspective> {
        let DeValue::Table(table) = v.get_ref() else {
            self.wrong_type(path, v, "a table", PERSPECTIVE_FIX);
            return None;
        };
        let errors_before = self.errors.len();
        let (mut corners, mut width, mut height) = (None, None, None);
        for (key, value) in in_file_order(table) {
            let name = key.get_ref().as_ref();
            let key_path = format!("{path}.{name}");
            match name {
                "corners" => corners = self.corners(&key_path, value),
                "width" => {
                    width = self
                        .integer(&key_path, value, 1, MAX_SIDE)
                        .map(|n| n as u32)
                }
                "height" => {
                    height = self
                        .integer(&key_path, value, 1, MAX_SIDE)
                        .map(|n| n as u32)
                }
                _ => self.unknown_key(key, &format!("{path}."), PERSPECTIVE_KEYS),
            }
        }
        for (name, missing) in [
            ("corners", corners.is_none()),
            ("width", width.is_none()),
            ("height", height.is_none()),
        ] {
            if missing && !table.iter().any(|(k, _)| k.get_ref() == name) {
                self.error(
                    v.span(),
                    &format!("{path}.{name}"),
                    format!("missing required key \"{name}\""),
                    PERSPECTIVE_FIX,
                );
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let p = Perspective {
            corners: corners?,
            width: width?,
            height: height?,
        };
        // Three corners on one line (or two the same) make no quadrilateral to warp.
        if (Transform {
            perspective: Some(p),
            ..Transform::default()
        })
        .mapping(p.width, p.height)
        .is_err()
        {
            self.error(
                v.span(),
                &format!("{path}.corners"),
                "these corners do not make a quadrilateral (three of them are on one line)",
                PERSPECTIVE_FIX,
            );
            return None;
        }
        Some(p)
    }

    /// Four `[x, y]` points of numbers (negative allowed: a corner may lie outside the picture).
    fn corners(&mut self, path: &str, v: &Value<'_>) -> Option<[[f64; 2]; 4]> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(path, v, "a list of four [x, y] points", PERSPECTIVE_FIX);
            return None;
        };
        if items.len() != 4 {
            let message = format!(
                "a perspective needs 4 corners, this list has {}",
                items.len()
            );
            self.error(v.span(), path, message, PERSPECTIVE_FIX);
            return None;
        }
        let mut out = [[0.0; 2]; 4];
        for (i, item) in items.iter().enumerate() {
            let point_path = format!("{path}[{i}]");
            let number = |v: &Value<'_>| match v.get_ref() {
                DeValue::Integer(n) => to_i64(n).map(|n| n as f64),
                DeValue::Float(f) => f.as_str().parse::<f64>().ok().filter(|f| f.is_finite()),
                _ => None,
            };
            match item.get_ref() {
                DeValue::Array(xy) if xy.len() == 2 => match (number(&xy[0]), number(&xy[1])) {
                    (Some(x), Some(y)) if x.abs() <= 1e6 && y.abs() <= 1e6 => out[i] = [x, y],
                    _ => {
                        self.error(
                            item.span(),
                            &point_path,
                            "a corner is [x, y], two numbers of pixels",
                            PERSPECTIVE_FIX,
                        );
                        return None;
                    }
                },
                _ => {
                    self.wrong_type(&point_path, item, "an [x, y] point", PERSPECTIVE_FIX);
                    return None;
                }
            }
        }
        Some(out)
    }
}
