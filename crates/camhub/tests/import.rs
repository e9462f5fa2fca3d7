//! `camhub import-config` (issue 7) with the real binary: seed 004's own example
//! (`tests/fixtures/seed004_cameras_config.json`, copied from the seed's README: placeholder URLs,
//! one camera) and a realistic three-camera file become configs that `camhub check` accepts, with
//! the same cameras, rotation, corners and cuts; what could not be mapped is said on stderr.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use camhub_config::{Rotation, SourceKind};
use common::bin;

fn camhub(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn import(json_path: &Path, dir: &Path) -> (camhub_config::Config, String) {
    let out_path = dir.join("camhub.toml");
    let out = camhub(&[
        "import-config",
        json_path.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let notes = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{notes}");
    // `camhub check` accepts it (warnings, such as a placeholder host, are allowed).
    let check = camhub(&["check", out_path.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // It does not overwrite.
    let again = camhub(&[
        "import-config",
        json_path.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    let text = std::fs::read_to_string(&out_path).unwrap();
    (camhub_config::parse(&text, "camhub.toml").unwrap(), notes)
}

#[test]
fn seed_004s_example_imports_into_a_config_that_checks() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed004_cameras_config.json");
    let (config, notes) = import(&fixture, dir.path());
    let cam = &config.cameras[0];
    assert_eq!(cam.id, "cam1");
    assert_eq!(cam.transform.rotate, Rotation::None);
    let p = cam.transform.perspective.unwrap();
    assert_eq!(
        p.corners,
        [[0.0, 92.0], [0.0, 325.0], [640.0, 349.0], [640.0, 116.0]]
    );
    assert_eq!((p.width, p.height), (680, 250));
    let SourceKind::Composite(pano) = &config.cameras[1].source.kind else {
        panic!("{:?}", config.cameras[1]);
    };
    assert_eq!(pano.inputs, ["cam1"]);
    assert_eq!(pano.cuts["cam1"], [0, 632]);
    // Its URLs are placeholders: the note says so, and what to replace.
    assert!(
        notes.contains("not a camera URL") && notes.contains("CAMERA1-IP"),
        "{notes}"
    );
}

#[test]
fn three_cameras_keep_their_rotation_corners_and_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{"camera": [
        {"url": {"jpg": "http://192.168.1.60/capture"}, "rotate": 180,
         "perspective": {"src": [[0, 92], [0, 325], [640, 349], [640, 116]], "width": 680, "hight": 250},
         "concat_x": {"front": 0, "back": 632}},
        {"url": {"jpg": "http://192.168.1.61/capture", "rtsp": "rtsp://192.168.1.61:8554/mjpeg/1"}, "rotate": 0,
         "perspective": {"src": [[10.5, 80], [0, 330], [640, 340], [630, 100]], "width": 680, "hight": 250},
         "concat_x": {"front": 8, "back": 680}},
        {"url": {"rtsp": "rtsp://user:p%40ss@192.168.1.62/stream"}, "rotate": 180,
         "perspective": {"src": [[0, 90], [0, 320], [640, 350], [640, 110]], "width": 680, "hight": 250},
         "concat_x": {"front": 20, "back": 660}, "fps": 5}
    ]}"#;
    let path = dir.path().join("cameras_config.json");
    std::fs::write(&path, json).unwrap();
    let (config, notes) = import(&path, dir.path());
    let ids: Vec<&str> = config.cameras.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["cam1", "cam2", "cam3", "panorama"]);
    let [c1, c2, c3] = [&config.cameras[0], &config.cameras[1], &config.cameras[2]];
    assert_eq!(c1.source.url, "http://192.168.1.60/capture");
    assert!(matches!(
        c1.source.kind,
        SourceKind::Http {
            poll_interval: Some(_),
            ..
        }
    ));
    assert_eq!(c1.transform.rotate, Rotation::Cw180);
    // Both URLs: RTSP wins, and the note says so.
    assert_eq!(c2.source.url, "rtsp://192.168.1.61:8554/mjpeg/1");
    assert!(notes.contains("both url.jpg and url.rtsp"), "{notes}");
    assert_eq!(c2.transform.perspective.unwrap().corners[0], [10.5, 80.0]);
    assert_eq!(c3.transform.rotate, Rotation::Cw180);
    assert_eq!(c3.source.credentials.as_ref().unwrap().password, "p@ss");
    assert!(
        notes.contains("\"fps\" has no camhub equivalent"),
        "{notes}"
    );
    let SourceKind::Composite(pano) = &config.cameras[3].source.kind else {
        panic!();
    };
    assert_eq!(pano.inputs, ["cam1", "cam2", "cam3"]);
    assert_eq!(pano.cuts["cam1"], [0, 632]);
    assert_eq!(pano.cuts["cam2"], [8, 680]);
    assert_eq!(pano.cuts["cam3"], [20, 660]);
    // To stdout without -o; a file that is not seed 004's is refused with the reason.
    let out = camhub(&["import-config", path.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[[composite]]"));
    std::fs::write(&path, "{\"cameras\": 1}").unwrap();
    let out = camhub(&["import-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"camera\" list"));
}
