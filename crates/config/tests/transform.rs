//! A camera's geometry keys (`rotate`, `flip`, `crop`, `perspective`, `transform_size`): what
//! parses into which transform, and what each mistake reports (line, key, message, fix).

// In tests a panic is the assertion.
#![allow(clippy::unwrap_used)]

use camhub_config::{parse, ConfigError, Crop, Perspective, Rotation, Transform};

/// A config with one demo camera whose table ends with `lines` (from line 4 on).
fn camera(lines: &str) -> String {
    format!("[[camera]]\nid = \"cam\"\nurl = \"demo:\"\n{lines}\n")
}

fn transform(lines: &str) -> Transform {
    match parse(&camera(lines), "camhub.toml") {
        Ok(c) => c.cameras[0].transform.clone(),
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn one(lines: &str) -> ConfigError {
    match parse(&camera(lines), "camhub.toml") {
        Ok(c) => panic!("expected an error, got {:?}", c.cameras[0].transform),
        Err(mut e) => {
            assert_eq!(e.0.len(), 1, "expected exactly one error, got {:#?}", e.0);
            e.0.remove(0)
        }
    }
}

#[test]
fn no_geometry_keys_is_the_identity() {
    assert!(transform("").is_identity());
    assert!(transform("rotate = 0\nflip = \"none\"").is_identity());
}

#[test]
fn every_key_parses_into_the_transform() {
    let t = transform(
        "rotate = 180\nflip = \"horizontal\"\ncrop = [0, 10, 600, 200]\n\
         perspective = { corners = [[0, 92], [0, 325.5], [640, 349], [640, 116]], width = 680, height = 250 }\n\
         transform_size = [640, 480]",
    );
    assert_eq!(
        t,
        Transform {
            rotate: Rotation::Cw180,
            flip_horizontal: true,
            flip_vertical: false,
            perspective: Some(Perspective {
                corners: [[0.0, 92.0], [0.0, 325.5], [640.0, 349.0], [640.0, 116.0]],
                width: 680,
                height: 250,
            }),
            crop: Some(Crop {
                x: 0,
                y: 10,
                width: 600,
                height: 200
            }),
            reference: Some((640, 480)),
        }
    );
    assert_eq!(transform("rotate = 270").rotate, Rotation::Cw270);
    assert_eq!(transform("rotate = -90").rotate, Rotation::Cw270);
    let both = transform("flip = \"both\"");
    assert!(both.flip_horizontal && both.flip_vertical);
    // As a [camera.perspective] table too.
    let t = transform("[camera.perspective]\ncorners = [[1, 1], [1, 99], [99, 99], [99, 1]]\nwidth = 100\nheight = 100");
    assert_eq!(t.perspective.map(|p| p.width), Some(100));
}

#[test]
fn each_mistake_names_its_key_line_and_fix() {
    let e = one("rotate = 45");
    assert_eq!((e.key.as_str(), e.line), ("camera[0].rotate", Some(4)));
    assert!(
        e.message.contains("45") && e.fix.contains("90, 180 or 270"),
        "{e}"
    );

    let e = one("flip = \"sideways\"");
    assert_eq!(e.key, "camera[0].flip");
    assert!(e.fix.contains("\"horizontal\""), "{e}");

    let e = one("crop = [0, 0, 640]");
    assert_eq!(e.key, "camera[0].crop");
    assert!(
        e.message.contains("4 numbers") && e.fix.contains("[x, y, width, height]"),
        "{e}"
    );
    let e = one("crop = [0, 0, 0, 10]");
    assert!(e.message.contains("above 0"), "{e}");
    let e = one("crop = [0, -1, 10, 10]");
    assert_eq!(e.key, "camera[0].crop[1]");

    let e = one("perspective = { corners = [[0, 0], [0, 1], [1, 1]], width = 10, height = 10 }");
    assert_eq!(e.key, "camera[0].perspective.corners");
    assert!(e.message.contains("4 corners"), "{e}");
    let e = one("perspective = { corners = [[0, 0], [0, 10], [10, 10], [10, 0]], width = 10 }");
    assert_eq!(e.key, "camera[0].perspective.height");
    assert!(e.message.contains("missing"), "{e}");
    let e = one(
        "perspective = { corners = [[0, 0], [5, 5], [10, 10], [10, 0]], width = 10, height = 10 }",
    );
    assert!(e.message.contains("quadrilateral"), "{e}");
    let e = one("perspective = { corners = [[0, 0], [0, 10], [10, 10], [10, 0]], width = 10, height = 10, hight = 5 }");
    assert_eq!(e.key, "camera[0].perspective.hight");
    assert!(
        e.to_string().contains("did you mean \"height\""),
        "the closest key is suggested: {e}"
    );

    // A crop is taken from the warped picture: it must fit in it.
    let e = one(
        "perspective = { corners = [[0, 0], [0, 10], [10, 10], [10, 0]], width = 100, height = 50 }\n\
         crop = [50, 0, 60, 50]",
    );
    assert_eq!((e.key.as_str(), e.line), ("camera[0].crop", Some(5)));
    assert!(e.message.contains("100x50"), "{e}");

    let e = one("transform_size = [640]");
    assert_eq!(e.key, "camera[0].transform_size");
}

#[test]
fn a_geometry_change_needs_a_new_connection() {
    let a = parse(&camera(""), "c.toml").unwrap();
    let b = parse(&camera("rotate = 90"), "c.toml").unwrap();
    assert!(!a.cameras[0].same_connection(&b.cameras[0]));
}
