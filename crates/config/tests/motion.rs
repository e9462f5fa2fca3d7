//! `[camera.motion]` and `[events]`: what parses, with which defaults, and what each mistake
//! reports (line, key, message, fix).

// In tests a panic is the assertion.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use camhub_config::{parse, Config, ConfigError, Events, Motion};

fn ok(text: &str) -> Config {
    match parse(text, "camhub.toml") {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}\n--- text:\n{text}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, "camhub.toml") {
        Ok(c) => panic!("expected errors, got {c:?}\n--- text:\n{text}"),
        Err(e) => e.0,
    }
}

/// The one error `text` has.
fn one(text: &str) -> ConfigError {
    let mut e = errors(text);
    assert_eq!(e.len(), 1, "expected exactly one error, got {e:#?}");
    e.remove(0)
}

/// A config holding one demo camera whose `[camera.motion]` table holds `lines` (from line 5 on).
fn motion(lines: &str) -> String {
    format!("[[camera]]\nid = \"cam\"\nurl = \"demo:\"\n[camera.motion]\n{lines}\n")
}

/// The motion settings of the only camera of a valid `text`.
fn parsed(text: &str) -> Motion {
    ok(text).cameras[0].motion.clone().expect("a motion table")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn defaults() {
    let m = Motion::default();
    assert_eq!(
        m,
        Motion {
            enabled: true,
            threshold: 20,
            min_area: 0.5,
            masks: vec![],
            zones: vec![],
            start_after: ms(200),
            end_after: ms(10_000),
            light_switch: true,
            fps: 10.0,
            frames: 5,
        }
    );
    // An empty table turns detection on with the defaults; no table is no detection.
    assert_eq!(parsed(&motion("")), m);
    let plain = ok("[[camera]]\nid = \"cam\"\nurl = \"demo:\"\n");
    assert_eq!(plain.cameras[0].motion, None);
    assert_eq!(
        plain.events,
        Events {
            retention: Duration::from_secs(30 * 86_400),
            max_size: 2_000_000_000,
        }
    );
    assert_eq!(plain.events, Events::default());
    assert_eq!(Config::demo().cameras[0].motion, None);
    assert_eq!(Config::demo().events, Events::default());
    assert!(plain.warnings.is_empty());
}

#[test]
fn every_key_set() {
    let m = parsed(&motion(
        r#"enabled = false
threshold = 255
min_area = 100
masks = [
  [[0, 0], [640, 0], [640, 120.5], [0, 120]],   # the street
  [[1e3, 0.0], [1920, 0], [1920, 1080]],
]
zones = [[[10, 10], [20, 10], [20, 20]]]
start_after = "1m"
end_after = "1h"
light_switch = false
fps = 0.5
frames = 50"#,
    ));
    assert_eq!(
        m,
        Motion {
            enabled: false,
            threshold: 255,
            min_area: 100.0,
            masks: vec![
                vec![[0.0, 0.0], [640.0, 0.0], [640.0, 120.5], [0.0, 120.0]],
                vec![[1000.0, 0.0], [1920.0, 0.0], [1920.0, 1080.0]],
            ],
            zones: vec![vec![[10.0, 10.0], [20.0, 10.0], [20.0, 20.0]]],
            start_after: ms(60_000),
            end_after: ms(3_600_000),
            light_switch: false,
            fps: 0.5,
            frames: 50,
        }
    );
    // The other ends of the ranges; durations as bare seconds.
    let m = parsed(&motion(
        "threshold = 1\nmin_area = 0.001\nstart_after = 0\nend_after = \"1ms\"\nfps = 30\nframes = 0\nmasks = []",
    ));
    assert_eq!(
        (m.threshold, m.min_area, m.start_after, m.end_after),
        (1, 0.001, Duration::ZERO, ms(1))
    );
    assert_eq!((m.fps, m.frames, m.masks.len()), (30.0, 0, 0));
    assert_eq!(parsed(&motion("end_after = 90")).end_after, ms(90_000));
}

#[test]
fn inline_and_dotted_forms_are_the_same_table() {
    let table = parsed(&motion(
        "threshold = 30\nzones = [[[0, 0], [9, 0], [9, 9]]]",
    ));
    let inline = parsed(
        "[[camera]]\nid = \"cam\"\nurl = \"demo:\"\nmotion = { threshold = 30, zones = [[[0, 0], [9, 0], [9, 9]]] }\n",
    );
    let dotted = parsed(
        "[[camera]]\nid = \"cam\"\nmotion.threshold = 30\nmotion.zones = [[[0, 0], [9, 0], [9, 9]]]\nurl = \"demo:\"\n",
    );
    assert_eq!(table, inline);
    assert_eq!(table, dotted);
    assert_eq!(
        parsed("[[camera]]\nid = \"cam\"\nurl = \"demo:\"\nmotion = {}\n"),
        Motion::default()
    );
    // Each camera has its own table.
    let c = ok(&format!(
        "{}\n[[camera]]\nid = \"other\"\nurl = \"demo:\"\n",
        motion("fps = 5")
    ));
    assert_eq!(c.cameras[0].motion.as_ref().unwrap().fps, 5.0);
    assert_eq!(c.cameras[1].motion, None);
}

#[test]
fn out_of_range_and_wrong_values_name_the_line_and_the_fix() {
    let e = one(&motion("threshold = 0"));
    assert_eq!(
        e.to_string(),
        "camhub.toml:5:13: camera[0].motion.threshold: 0 is out of range — use a whole number from 1 to 255"
    );
    let e = one(&motion("min_area = 0"));
    assert_eq!(
        e.to_string(),
        "camhub.toml:5:12: camera[0].motion.min_area: 0 is out of range — use a number above 0 and \
         at most 100, like 0.5 (percent of the picture)"
    );
    let e = one(&motion("start_after = \"61s\""));
    assert_eq!(
        e.to_string(),
        "camhub.toml:5:15: camera[0].motion.start_after: duration \"61s\" is out of range — use a \
         duration from 0s to 1m"
    );
    let cases = [
        (
            "threshold = 256",
            "threshold",
            "256 is out of range",
            "from 1 to 255",
        ),
        (
            "threshold = -1",
            "threshold",
            "-1 is out of range",
            "from 1 to 255",
        ),
        (
            "threshold = \"20\"",
            "threshold",
            "expected an integer, found a string",
            "without quotes",
        ),
        (
            "threshold = 20.5",
            "threshold",
            "expected an integer, found a float",
            "from 1 to 255",
        ),
        (
            "min_area = 100.01",
            "min_area",
            "100.01 is out of range",
            "above 0 and at most 100",
        ),
        (
            "min_area = -0.5",
            "min_area",
            "-0.5 is out of range",
            "above 0 and at most 100",
        ),
        (
            "min_area = nan",
            "min_area",
            "nan is out of range",
            "above 0 and at most 100",
        ),
        (
            "min_area = \"0.5\"",
            "min_area",
            "expected a number, found a string",
            "without quotes",
        ),
        (
            "min_area = \"1%\"",
            "min_area",
            "expected a number, found a string",
            "like 0.5",
        ),
        (
            "fps = 0",
            "fps",
            "0 is out of range",
            "above 0 and at most 30, like 10",
        ),
        ("fps = 31", "fps", "31 is out of range", "at most 30"),
        ("fps = inf", "fps", "inf is out of range", "at most 30"),
        (
            "fps = true",
            "fps",
            "expected a number, found a boolean",
            "at most 30",
        ),
        (
            "frames = 51",
            "frames",
            "51 is out of range",
            "from 0 to 50",
        ),
        (
            "frames = -1",
            "frames",
            "-1 is out of range",
            "from 0 to 50",
        ),
        (
            "start_after = \"0.2s\"",
            "start_after",
            "invalid duration \"0.2s\"",
            "\"500ms\"",
        ),
        (
            "start_after = \"1m1ms\"",
            "start_after",
            "duration \"1m1ms\" is out of range",
            "from 0s to 1m",
        ),
        (
            "end_after = \"0s\"",
            "end_after",
            "duration \"0s\" is out of range",
            "from 1ms to 1h",
        ),
        (
            "end_after = 0",
            "end_after",
            "duration 0 (seconds) is out of range",
            "from 1ms to 1h",
        ),
        (
            "end_after = \"1h1s\"",
            "end_after",
            "duration \"1h1s\" is out of range",
            "from 1ms to 1h",
        ),
        (
            "end_after = \"10 s\"",
            "end_after",
            "invalid duration \"10 s\"",
            "use a duration like",
        ),
        (
            "enabled = \"yes\"",
            "enabled",
            "expected a boolean, found a string",
            "true or false",
        ),
        (
            "light_switch = 1",
            "light_switch",
            "expected a boolean, found an integer",
            "true or false",
        ),
    ];
    for (line, key, message, fix) in cases {
        let e = one(&motion(line));
        assert_eq!(
            (e.key.as_str(), e.line),
            (format!("camera[0].motion.{key}").as_str(), Some(5)),
            "{line}: {e}"
        );
        assert_eq!(e.message, message, "{line}: {e}");
        assert!(e.fix.contains(fix), "{line}: {e}");
    }
}

#[test]
fn every_mistake_in_a_motion_table_is_reported_and_the_camera_is_not_kept() {
    let e = errors(&motion(
        "threshold = 0\nfps = 99\nmasks = [[[0, 0], [1, 1]]]\nframes = 5\ntresh = 1",
    ));
    let places: Vec<(&str, Option<usize>)> = e.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(
        places,
        [
            ("camera[0].motion.threshold", Some(5)),
            ("camera[0].motion.fps", Some(6)),
            ("camera[0].motion.masks[0]", Some(7)),
            ("camera[0].motion.tresh", Some(9)),
        ]
    );
}

#[test]
fn unknown_keys_get_a_suggestion() {
    let e = one(&motion("treshold = 30"));
    assert_eq!(
        e.to_string(),
        "camhub.toml:5:1: camera[0].motion.treshold: unknown key \"treshold\" — did you mean \
         \"threshold\"? valid keys: enabled, threshold, min_area, masks, zones, start_after, \
         end_after, light_switch, fps, frames"
    );
    let e = one(&motion("mask = []"));
    assert!(e.fix.starts_with("did you mean \"masks\"?"), "{e}");
    let e = one(&motion("sensitivity = 3"));
    assert!(e.fix.starts_with("valid keys: enabled, threshold"), "{e}");
    // The same inline.
    let e = one("[[camera]]\nid = \"cam\"\nurl = \"demo:\"\nmotion = { min_aera = 1 }\n");
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("camera[0].motion.min_aera", Some(4), Some(12))
    );
    assert!(e.fix.starts_with("did you mean \"min_area\"?"), "{e}");
}

#[test]
fn keys_in_the_wrong_table_say_where_they_go() {
    // A camera key written after [camera.motion] belongs to motion: the camera then has no url.
    let e = errors("[[camera]]\nid = \"cam\"\n[camera.motion]\nfps = 5\nurl = \"demo:\"\n");
    let misplaced = e.iter().find(|e| e.key == "camera[0].motion.url").unwrap();
    assert_eq!(misplaced.line, Some(5));
    assert!(
        misplaced
            .fix
            .contains("every key after a [camera.motion] line belongs to it"),
        "{misplaced}"
    );
    assert!(
        misplaced.fix.contains("move url above that line"),
        "{misplaced}"
    );
    assert!(e.iter().any(|e| e.key == "camera[0].url"), "{e:#?}");
    // A motion key among the camera's keys.
    let e = one("[[camera]]\nid = \"cam\"\nurl = \"demo:\"\nthreshold = 30\n");
    assert_eq!(e.key, "camera[0].threshold");
    assert!(
        e.fix
            .contains("\"threshold\" is a motion key: put it after a [camera.motion] line"),
        "{e}"
    );
    // A motion table outside any camera.
    let e = one("[motion]\nthreshold = 30\n");
    assert_eq!((e.key.as_str(), e.line), ("motion", Some(1)));
    assert!(
        e.fix
            .starts_with("motion belongs to a camera: write [camera.motion] on a line of its own"),
        "{e}"
    );
    // Tables that are not one.
    let e = one("[[camera]]\nid = \"cam\"\nurl = \"demo:\"\nmotion = true\n");
    assert_eq!(e.message, "expected a table, found a boolean");
    assert!(e.fix.contains("motion = { enabled = true }"), "{e}");
    let e = one("[[camera]]\nid = \"cam\"\nurl = \"demo:\"\n[[camera.motion]]\nfps = 5\n");
    assert_eq!(e.key, "camera[0].motion");
    assert_eq!(e.message, "expected a table, found an array");
}

#[test]
fn polygon_shapes() {
    let e = one(&motion("masks = [[[0, 0], [640, 0]]]"));
    assert_eq!(
        e.to_string(),
        "camhub.toml:5:10: camera[0].motion.masks[0]: a polygon needs 3 or more corners, this one \
         has 2 — write a list of polygons, each a list of 3 or more [x, y] corners in pixels of the \
         camera's main picture, like [[[0, 0], [640, 0], [640, 120], [0, 120]]]"
    );
    let e = one(&motion(
        "zones = [\n  [[0, 0], [9, 0], [9, 9]],\n  [[0, 0], [-5, 0], [9, 9]],\n]",
    ));
    assert_eq!(
        e.to_string(),
        "camhub.toml:7:13: camera[0].motion.zones[1][1]: -5 is negative — write pixels of the main \
         picture from its top left corner, numbers of 0 or more without quotes, like [320, 180]"
    );
    let cases = [
        (
            "masks = [[[0, 0], [9, \"0\"], [9, 9]]]",
            "masks[0][1]",
            "expected a number, found a string",
        ),
        (
            "masks = [[[0, 0], [9, -0.5], [9, 9]]]",
            "masks[0][1]",
            "-0.5 is negative",
        ),
        (
            "masks = [[[0, 0], [9, nan], [9, 9]]]",
            "masks[0][1]",
            "nan is not a number of pixels",
        ),
        (
            "masks = [[[0, 0], [9, inf], [9, 9]]]",
            "masks[0][1]",
            "inf is not a number of pixels",
        ),
        (
            "masks = [[[0, 0], [9, 0, 1], [9, 9]]]",
            "masks[0][1]",
            "a point is [x, y], two numbers; this one has 3",
        ),
        (
            "masks = [[[0, 0], [9], [9, 9]]]",
            "masks[0][1]",
            "a point is [x, y], two numbers; this one has 1",
        ),
        (
            "masks = [[[0, 0], 9, [9, 9]]]",
            "masks[0][1]",
            "expected an [x, y] point, found an integer",
        ),
        (
            "masks = [[0, 0], [9, 0], [9, 9]]",
            "masks",
            "a list of points where a list of polygons goes",
        ),
        (
            "masks = [[[0, 0], [9, 0], [9, 9]], [0, 0]]",
            "masks[1]",
            "a polygon needs 3 or more corners, this one has 2",
        ),
        (
            "masks = [[0, 9, 9]]",
            "masks[0][0]",
            "expected an [x, y] point, found an integer",
        ),
        (
            "masks = [[]]",
            "masks[0]",
            "a polygon needs 3 or more corners, this one has 0",
        ),
        (
            "masks = [[[0, 0], [9, 0], [9, 9]], \"x\"]",
            "masks[1]",
            "expected a polygon (a list of [x, y] points), found a string",
        ),
        (
            "masks = \"0,0 9,0 9,9\"",
            "masks",
            "expected a list of polygons, found a string",
        ),
        (
            "zones = { a = 1 }",
            "zones",
            "expected a list of polygons, found a table",
        ),
    ];
    for (line, key, message) in cases {
        let e = errors(&motion(line));
        assert_eq!(
            (e[0].key.as_str(), e[0].line),
            (format!("camera[0].motion.{key}").as_str(), Some(5)),
            "{line}: {e:#?}"
        );
        assert_eq!(e[0].message, message, "{line}: {e:#?}");
        assert!(!e[0].fix.is_empty(), "{line}");
    }
    // One polygon without the list around it is one mistake, with the fix.
    let e = one(&motion("zones = [[0, 0], [9, 0], [9, 9], [0, 9]]"));
    assert_eq!(
        (e.key.as_str(), e.column),
        ("camera[0].motion.zones", Some(9))
    );
    assert!(
        e.fix
            .starts_with("put the points in one more pair of brackets"),
        "{e}"
    );
    // Points beyond any picture are kept: the picture's size is not known yet.
    let m = parsed(&motion("masks = [[[0, 0], [99999, 0], [99999, 99999.5]]]"));
    assert_eq!(m.masks[0][2], [99999.0, 99999.5]);
}

#[test]
fn warnings() {
    let c = ok(&motion("fps = 25"));
    assert_eq!(c.warnings.len(), 1, "{:#?}", c.warnings);
    let w = &c.warnings[0];
    assert_eq!(
        (w.key.as_str(), w.line, w.column),
        ("camera[0].motion.fps", Some(5), Some(7))
    );
    assert!(w.message.contains("25 times a second"), "{w}");
    assert!(w.fix.contains("fps = 10"), "{w}");
    assert!(ok(&motion("fps = 15")).warnings.is_empty());
    // A disabled table warns about nothing, and is no mistake itself.
    assert!(ok(&motion("enabled = false\nfps = 25")).warnings.is_empty());
    // A polygon with no area masks nothing.
    let c = ok(&motion(
        "fps = 5\nmasks = [\n  [[0, 0], [9, 0], [9, 9]],\n  [[0, 0], [5, 5], [10, 10]],\n]",
    ));
    assert_eq!(c.warnings.len(), 1, "{:#?}", c.warnings);
    let w = &c.warnings[0];
    assert_eq!(
        (w.key.as_str(), w.line),
        ("camera[0].motion.masks[1]", Some(8))
    );
    assert!(w.message.contains("no area"), "{w}");
    assert!(w.message.ends_with("masks nothing"), "{w}");
    let c = ok(&motion("zones = [[[1, 1], [1, 1], [1, 1]]]"));
    assert!(
        c.warnings[0].message.ends_with("watches nothing"),
        "{:#?}",
        c.warnings
    );
    // Inline, the warning points at the value too.
    let c = ok("[[camera]]\nid = \"cam\"\nurl = \"demo:\"\nmotion = { fps = 30 }\n");
    assert_eq!(
        (c.warnings[0].line, c.warnings[0].column),
        (Some(4), Some(18))
    );
}

#[test]
fn events() {
    let c = ok("[events]\nretention = \"7d\"\nmax_size = \"500MB\"\n");
    assert_eq!(
        c.events,
        Events {
            retention: Duration::from_secs(7 * 86_400),
            max_size: 500_000_000,
        }
    );
    for (written, bytes) in [
        ("\"2GB\"", 2_000_000_000),
        ("\"1.5GiB\"", 1_610_612_736),
        ("\"800 MiB\"", 800 * 1_048_576),
        ("\"10MB\"", 10_000_000),
        ("\"10mb\"", 10_000_000),
        ("\"1TB\"", 1_000_000_000_000),
        ("\"2tib\"", 2 << 40),
        ("10000000", 10_000_000),
        ("50_000_000", 50_000_000),
    ] {
        let c = ok(&format!("[events]\nmax_size = {written}\n"));
        assert_eq!(c.events.max_size, bytes, "{written}");
        assert_eq!(c.events.retention, Events::default().retention, "{written}");
    }
    assert_eq!(
        ok("[events]\nretention = 3600\n").events.retention,
        Duration::from_secs(3600)
    );
    assert_eq!(ok("[events]\n").events, Events::default());
}

#[test]
fn events_mistakes() {
    let e = one("[events]\nmax_size = \"2 gigs\"\n");
    assert_eq!(
        e.to_string(),
        "camhub.toml:2:12: events.max_size: invalid size \"2 gigs\" — use a size like \"2GB\", \
         \"500MB\" or \"1.5GiB\" (kB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of \
         1024), or a whole number of bytes without quotes"
    );
    let e = one("[events]\nmax_size = \"5MB\"\n");
    assert_eq!(
        e.to_string(),
        "camhub.toml:2:12: events.max_size: size \"5MB\" is too small — use 10MB or more, like \
         \"2GB\" (kB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of 1024)"
    );
    let e = one("[events]\nretention = \"59m\"\n");
    assert_eq!(
        e.to_string(),
        "camhub.toml:2:13: events.retention: duration \"59m\" is out of range — use a duration \
         from 1h to 3650d"
    );
    let cases = [
        (
            "max_size = 9999999",
            "max_size",
            "size 9999999 (bytes) is too small",
        ),
        (
            "max_size = \"9.99MB\"",
            "max_size",
            "size \"9.99MB\" is too small",
        ),
        (
            "max_size = \"9MiB\"",
            "max_size",
            "size \"9MiB\" is too small",
        ),
        ("max_size = -1", "max_size", "invalid size -1"),
        ("max_size = \"2G\"", "max_size", "invalid size \"2G\""),
        (
            "max_size = \"2000000000\"",
            "max_size",
            "invalid size \"2000000000\"",
        ),
        (
            "max_size = \"99999999999TB\"",
            "max_size",
            "invalid size \"99999999999TB\"",
        ),
        (
            "max_size = 2.5",
            "max_size",
            "expected a size, found a float",
        ),
        (
            "retention = \"30 days\"",
            "retention",
            "invalid duration \"30 days\"",
        ),
        (
            "retention = \"3651d\"",
            "retention",
            "duration \"3651d\" is out of range",
        ),
        (
            "retention = true",
            "retention",
            "expected a duration, found a boolean",
        ),
    ];
    for (line, key, message) in cases {
        let e = one(&format!("[events]\n{line}\n"));
        assert_eq!(
            (e.key.as_str(), e.line),
            (format!("events.{key}").as_str(), Some(2)),
            "{line}: {e}"
        );
        assert_eq!(e.message, message, "{line}: {e}");
        assert!(!e.fix.is_empty(), "{line}");
    }
    let e = one("[events]\nretension = \"7d\"\n");
    assert_eq!(e.key, "events.retension");
    assert_eq!(
        e.fix,
        "did you mean \"retention\"? valid keys: retention, max_size"
    );
    let e = one("[evnets]\nretention = \"7d\"\n");
    assert!(e.fix.starts_with("did you mean \"events\"?"), "{e}");
    let e = one("max_size = \"2GB\"\n");
    assert!(
        e.fix
            .starts_with("\"max_size\" is an events key: put it after an [events] line"),
        "{e}"
    );
    let e = one("[server]\nretention = \"7d\"\n");
    assert!(e.fix.contains("is an events key"), "{e}");
    let e = one("[[events]]\nretention = \"7d\"\n");
    assert_eq!(e.key, "events");
    assert_eq!(e.message, "expected a table, found an array");
}

#[test]
fn same_connection_ignores_the_name_and_motion_only() {
    let base = "[[camera]]\nid = \"door\"\nurl = \"rtsp://u:p@10.0.0.2/main\"\n";
    let camera = |extra: &str| ok(&format!("{base}{extra}")).cameras[0].clone();
    let a = camera("");
    let same = [
        "name = \"Front door\"\n",
        "[camera.motion]\n",
        "[camera.motion]\nthreshold = 40\nmasks = [[[0, 0], [9, 0], [9, 9]]]\n",
        "name = \"Door\"\nmotion = { enabled = false }\n",
    ];
    for extra in same {
        let b = camera(extra);
        assert_ne!(a, b, "{extra}");
        assert!(a.same_connection(&b), "{extra}");
        assert!(b.same_connection(&a), "{extra}");
    }
    let different = [
        "substream_url = \"rtsp://u:p@10.0.0.2/sub\"\n",
        "idle_timeout = \"1m\"\n",
        "always_on = true\n",
        "watchdog = \"20s\"\n",
        "decode_threads = 2\n",
        "enabled = false\n",
        "transport = \"udp\"\n",
    ];
    for extra in different {
        let b = camera(extra);
        assert!(!a.same_connection(&b), "{extra}");
        assert!(!b.same_connection(&a), "{extra}");
    }
    let other_url = ok(&base.replace("/main", "/other")).cameras[0].clone();
    assert!(!a.same_connection(&other_url));
    let other_id = ok(&base.replace("door", "gate")).cameras[0].clone();
    assert!(!a.same_connection(&other_id));
    assert!(a.same_connection(&a));
}
