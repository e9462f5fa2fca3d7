//! `[[composite]]`: what parses (a camera whose source is the composite), and what each mistake
//! reports; which users see a composite.

// In tests a panic is the assertion.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use camhub_config::{parse, ConfigError, Layout, SourceKind};

const CAMERAS: &str =
    "[[camera]]\nid = \"a\"\nurl = \"demo:\"\n\n[[camera]]\nid = \"b\"\nurl = \"demo:\"\n\n\
     [[camera]]\nid = \"off\"\nurl = \"demo:\"\nenabled = false\n\n";

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, "camhub.toml") {
        Ok(c) => panic!("expected errors, got {:?}", c.cameras),
        Err(e) => e.0,
    }
}

#[test]
fn a_composite_becomes_a_camera_of_its_own() {
    let c = parse(
        &format!(
            "{CAMERAS}[[composite]]\nid = \"pano\"\nname = \"Wall\"\nlayout = \"hstack\"\ninputs = [\"a\", \"b\"]\n\
             cuts = {{ a = [0, 632], b = [8, 640] }}\nheight = 240\nfps = 5\nstale_after = \"2s\"\ntranscode = \"h264\"\n"
        ),
        "camhub.toml",
    )
    .unwrap();
    let pano = c.cameras.iter().find(|c| c.id == "pano").unwrap();
    assert_eq!(pano.name, "Wall");
    let SourceKind::Composite(spec) = &pano.source.kind else {
        panic!("{:?}", pano.source.kind);
    };
    assert_eq!(spec.layout, Layout::HStack);
    assert_eq!(spec.inputs, ["a", "b"]);
    assert_eq!(spec.cuts["b"], [8, 640]);
    assert_eq!((spec.width, spec.height, spec.fps), (None, Some(240), 5));
    assert_eq!(spec.stale_after, Duration::from_secs(2));
    assert_eq!(pano.transcode, Some(camhub_config::Transcode::H264));
    // Defaults.
    let c = parse(
        &format!("{CAMERAS}[[composite]]\nid = \"g\"\nlayout = \"grid\"\ninputs = [\"a\"]\n"),
        "c.toml",
    )
    .unwrap();
    let SourceKind::Composite(spec) = &c.cameras[3].source.kind else {
        panic!();
    };
    assert_eq!((spec.fps, spec.stale_after), (10, Duration::from_secs(3)));
}

#[test]
fn each_mistake_names_its_key_and_fix() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "id = \"p\"\nlayout = \"diagonal\"\ninputs = [\"a\"]",
            "composite[0].layout",
            "\"hstack\"",
        ),
        (
            "id = \"p\"\nlayout = \"hstack\"\ninputs = [\"a\", \"nope\"]",
            "composite[0].inputs",
            "a, b",
        ),
        (
            "id = \"p\"\nlayout = \"hstack\"\ninputs = [\"off\"]",
            "composite[0].inputs",
            "enable the camera",
        ),
        (
            "id = \"p\"\nlayout = \"hstack\"\ninputs = []",
            "composite[0].inputs",
            "inputs = [",
        ),
        (
            "id = \"p\"\nlayout = \"hstack\"\ninputs = [\"a\", \"a\"]",
            "composite[0].inputs",
            "inputs = [",
        ),
        (
            "id = \"p\"\nlayout = \"hstack\"\ninputs = [\"a\"]\ncuts = { b = [0, 10] }",
            "composite[0].cuts",
            "cuts = {",
        ),
        (
            "id = \"p\"\nlayout = \"hstack\"\ninputs = [\"a\"]\ncuts = { a = [10, 5] }",
            "composite[0].cuts.a",
            "cuts = {",
        ),
        (
            "id = \"p\"\ninputs = [\"a\"]",
            "composite[0].layout",
            "\"hstack\"",
        ),
        (
            "id = \"a\"\nlayout = \"hstack\"\ninputs = [\"b\"]",
            "composite[0].id",
            "different id",
        ),
        (
            "id = \"p\"\nlayout = \"hstack\"\ninputs = [\"a\"]\nfps = 0",
            "composite[0].fps",
            "1 to 60",
        ),
        (
            "id = \"p\"\nlayout = \"hstack\"\ninputs = [\"a\"]\nrotate = 90",
            "composite[0].rotate",
            "",
        ),
    ];
    for (body, key, fix) in cases {
        let e = errors(&format!("{CAMERAS}[[composite]]\n{body}\n"));
        assert_eq!(e.len(), 1, "{body}: {e:#?}");
        assert_eq!(e[0].key, *key, "{body}: {}", e[0]);
        assert!(
            e[0].fix.contains(fix) || e[0].to_string().contains(fix),
            "{body}: {}",
            e[0]
        );
        assert!(e[0].line.is_some(), "{body}: {}", e[0]);
    }
}

#[test]
fn a_user_sees_a_composite_when_they_see_all_its_inputs() {
    let users = "[[user]]\nname = \"ab\"\nrole = \"viewer\"\ncameras = [\"a\", \"b\"]\n\
         password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n\n\
         [[user]]\nname = \"onlya\"\nrole = \"viewer\"\ncameras = [\"a\"]\n\
         password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n";
    let text = format!("{CAMERAS}[[composite]]\nid = \"pano\"\nlayout = \"hstack\"\ninputs = [\"a\", \"b\"]\n\n{users}");
    let c = parse(&text, "camhub.toml").unwrap();
    let sees = |name: &str| {
        c.users
            .iter()
            .find(|u| u.name == name)
            .unwrap()
            .cameras
            .clone()
            .unwrap()
    };
    assert!(sees("ab").contains(&"pano".to_owned()));
    assert!(!sees("onlya").contains(&"pano".to_owned()));
    // Listing a composite without its inputs would show cameras the user may not see.
    let bad = text.replace("cameras = [\"a\"]\n", "cameras = [\"a\", \"pano\"]\n");
    let e = errors(&bad);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].message.contains("not all of its inputs: b"),
        "{}",
        e[0]
    );
}
