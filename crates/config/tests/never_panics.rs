//! "A panic means a bug, never bad input": random and mutated config text only ever produces a
//! config or errors, and every error has a place in the text.

// In tests a panic is the assertion.
#![allow(clippy::unwrap_used)]

use camhub_config::parse;
use proptest::prelude::*;

const DESIGN_EXAMPLE: &str = include_str!("fixtures/design_example.toml");

/// A camera with every motion key, and the events table: polygons and sizes to mutate.
const MOTION_EXAMPLE: &str = r#"[[camera]]
id = "door"
url = "demo:"
motion = { fps = 5, zones = [[[0, 0], [9.5, 0], [9, 9]]] }

[[camera]]
id = "yard"
url = "demo:"

[camera.motion]
enabled = true
threshold = 20
min_area = 0.5
masks = [[[0, 0], [640, 0], [640, 120], [0, 120]], [[1, 1], [2, 2], [3, 3]]]
start_after = "200ms"
end_after = "10s"
light_switch = true
frames = 5

[events]
retention = "30d"
max_size = "1.5GiB"
"#;

/// Every `[mqtt]` key: a URL, prefixes and ids to mutate.
const MQTT_EXAMPLE: &str = r#"[mqtt]
url = "mqtts://broker.lan:8883/"
username = "camhub"
password = "p@ss:w/rd"
topic_prefix = "home/cams"
client_id = "camhub-garage"
discovery = true
discovery_prefix = "homeassistant"
node_id = "camhub_2"
ca_file = "/etc/camhub/ca.pem"
"#;

/// Bytes that make mutations likely to stay near-TOML, so they reach the validator.
const ALPHABET: &[u8] = b"[]{}=\"',.:/@?&#\n 019_-azAZms\\";

fn mutate(text: &str, edits: Vec<(usize, u8, usize)>) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for (pos, op, pick) in edits {
        let pos = pos % (bytes.len() + 1);
        let c = ALPHABET[pick % ALPHABET.len()];
        match op {
            0 => bytes.insert(pos, c),
            1 if pos < bytes.len() => {
                bytes.remove(pos);
            }
            _ if pos < bytes.len() => bytes[pos] = c,
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(text: &str) {
    if let Err(errors) = parse(text, "fuzz.toml") {
        assert!(!errors.0.is_empty());
        for e in &errors.0 {
            assert!(e.line.is_some() && e.column.is_some(), "{e}");
            assert!(!e.message.is_empty(), "{e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn mutated_design_example(edits in proptest::collection::vec((any::<usize>(), 0u8..3, any::<usize>()), 1..8)) {
        check(&mutate(DESIGN_EXAMPLE, edits));
    }

    #[test]
    fn mutated_motion_example(edits in proptest::collection::vec((any::<usize>(), 0u8..3, any::<usize>()), 1..8)) {
        check(&mutate(MOTION_EXAMPLE, edits));
    }

    #[test]
    fn mutated_mqtt_example(edits in proptest::collection::vec((any::<usize>(), 0u8..3, any::<usize>()), 1..8)) {
        check(&mutate(MQTT_EXAMPLE, edits));
    }
}

#[test]
fn awkward_inputs() {
    for text in [
        "\u{feff}[server]\n",
        "[server]\r\nlisten = \"127.0.0.1:1\"\r\n",
        "camera = []\n",
        "camera = [1, \"x\", { id = \"a\", url = \"demo:\" }]\n",
        "[[camera]]\n[[camera]]\n[[camera]]\n",
        "[[camera]]\nid = \"a\"\nurl = \"demo:?width=99999999999999999999\"\n",
        "[[camera]]\nid = \"a\"\nurl = \"ffmpeg:\u{0}\"\n",
        "[server]\nsnapshot_timeout = \"999999999999h999999999999m999999999999s999999999999ms\"\n",
        "[server]\nmax_variants = -9223372036854775808\n",
        "[server]\nmax_variants = 0x7fffffffffffffff\n",
        "[events]\nmax_size = \"99999999999999999999999999TiB\"\n",
        "[events]\nmax_size = \"1.99999999999999999999999GB\"\n",
        "[events]\nmax_size = -9223372036854775808\n",
        "[[camera]]\nid = \"a\"\nurl = \"demo:\"\nmotion = { masks = [[[1e308, 1e309], [-0.0, nan], [-inf, 0]]] }\n",
        "[[camera]]\nid = \"a\"\nurl = \"demo:\"\nmotion = { masks = [[], [[]], [[[]]]], zones = [[[0, 0]]] }\n",
        "[[camera]]\nid = \"a\"\nurl = \"demo:\"\nmotion = { fps = 1e-320, min_area = 5e-324, threshold = 0x100 }\n",
        "[mqtt]\nurl = \"mqtt://h:65536\"\n",
        "[mqtt]\nurl = \"mqtt://\u{0}\"\nnode_id = \"\u{0}\"\n",
        "[mqtt]\nurl = \"mqtts://[::1\"\n",
        "[mqtt]\nurl = \"mqtt://h\"\ntopic_prefix = \"\u{1F600}/\u{0}\"\n",
        "mqtt = { url = \"mqtt:\" }\n",
        &"[".repeat(10_000),
        &format!("a = {}", "[".repeat(10_000)),
    ] {
        check(text);
    }
}
