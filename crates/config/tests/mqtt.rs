//! `[mqtt]`: what parses, with which defaults, and what each mistake reports (line, key, message,
//! fix) — and that the password never reaches an error or `Debug`.

// In tests a panic is the assertion.
#![allow(clippy::unwrap_used)]

use camhub_config::{parse, Config, ConfigError, Mqtt};

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

/// A config whose `[mqtt]` table (on line 1) holds `lines` (from line 2 on).
fn mqtt(lines: &str) -> String {
    format!("[mqtt]\n{lines}\n")
}

/// The `[mqtt]` of a valid `text`.
fn parsed(text: &str) -> Mqtt {
    ok(text).mqtt.expect("an [mqtt] table")
}

#[test]
fn defaults() {
    assert_eq!(ok("").mqtt, None);
    assert_eq!(Config::demo().mqtt, None);
    let m = parsed(&mqtt("url = \"mqtt://192.168.1.10\""));
    assert_eq!(
        m,
        Mqtt {
            url: "mqtt://192.168.1.10".into(),
            host: "192.168.1.10".into(),
            port: 1883,
            tls: false,
            username: None,
            password: None,
            topic_prefix: "camhub".into(),
            client_id: None,
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            node_id: "camhub".into(),
            ca_file: None,
        }
    );
    assert_eq!(
        m,
        Mqtt::new("mqtt://192.168.1.10", "192.168.1.10", 1883, false)
    );
    let tls = parsed(&mqtt("url = \"mqtts://broker.example.com\""));
    assert_eq!(
        (tls.host.as_str(), tls.port, tls.tls),
        ("broker.example.com", 8883, true)
    );
    assert!(ok(&mqtt("url = \"mqtt://h\"")).warnings.is_empty());
}

#[test]
fn every_key_set() {
    let m = parsed(&mqtt(
        r#"url = "mqtts://Broker.LAN:8884/"
username = "camhub"
password = "p@ss:w/rd#1"
topic_prefix = "home/cameras"
client_id = "camhub-garage"
discovery = false
discovery_prefix = "ha"
node_id = "Camhub_2"
ca_file = "/etc/camhub/mqtt-ca.pem""#,
    ));
    assert_eq!(
        m,
        Mqtt {
            url: "mqtts://Broker.LAN:8884/".into(),
            // An MQTT URL's host is kept as written (the url crate lower-cases only http's).
            host: "Broker.LAN".into(),
            port: 8884,
            tls: true,
            username: Some("camhub".into()),
            password: Some("p@ss:w/rd#1".into()),
            topic_prefix: "home/cameras".into(),
            client_id: Some("camhub-garage".into()),
            discovery: false,
            discovery_prefix: "ha".into(),
            node_id: "Camhub_2".into(),
            ca_file: Some("/etc/camhub/mqtt-ca.pem".into()),
        }
    );
    assert_eq!(m.secrets(), vec!["p@ss:w/rd#1".to_owned()]);
    // Other spellings of the schemes (paho's), IP addresses, an inline table.
    let m = parsed("mqtt = { url = \"tcp://10.0.0.2:1884\" }\n");
    assert_eq!((m.host.as_str(), m.port, m.tls), ("10.0.0.2", 1884, false));
    let m = parsed(&mqtt("url = \"ssl://broker\""));
    assert_eq!((m.port, m.tls), (8883, true));
    let m = parsed(&mqtt("url = \"mqtt://[::1]:1883\""));
    assert_eq!(m.host, "::1");
    // A password may be empty (a user the broker knows without one); nothing to scrub then.
    let m = parsed(&mqtt(
        "url = \"mqtt://h\"\nusername = \"u\"\npassword = \"\"",
    ));
    assert_eq!(m.password.as_deref(), Some(""));
    assert!(m.secrets().is_empty());
}

#[test]
fn broker_url_mistakes_name_the_line_and_the_fix() {
    let cases = [
        ("\"broker.lan:1883\"", "it has no scheme"),
        (
            "\"http://broker.lan\"",
            "the scheme \"http\" is not mqtt:// or mqtts://",
        ),
        (
            "\"ws://broker.lan:9001\"",
            "MQTT over WebSocket is not supported",
        ),
        ("\"mqtt://\"", "it has no host"),
        (
            "\"mqtt://broker.lan/camhub\"",
            "a broker URL has no path or query",
        ),
        (
            "\"mqtt://broker.lan?x=1\"",
            "a broker URL has no path or query",
        ),
        ("\"mqtt://broker.lan:99999\"", "invalid port number"),
        ("\"mqtt://broker.lan:0\"", "port 0"),
    ];
    for (value, what) in cases {
        let e = one(&mqtt(&format!("# the broker\nurl = {value}")));
        assert_eq!((e.line, e.column), (Some(3), Some(7)), "{e}");
        assert_eq!(e.key, "mqtt.url");
        assert!(e.message.starts_with("invalid broker URL \""), "{e}");
        assert!(e.message.contains(what), "{value}: {e}");
        assert!(e.fix.contains("url = \"mqtt://HOST:1883\""), "{e}");
    }
    let e = one(&mqtt("url = 1883"));
    assert_eq!(e.message, "expected a string, found an integer");
    let e = one(&mqtt("url = \"mqtts://[fd00::5]:8883\""));
    assert_eq!(e.message, "mqtts:// to an IPv6 address is not supported");
    assert!(e.fix.contains("host name"), "{e}");
}

#[test]
fn a_table_without_url_is_an_error_at_its_header() {
    let e = one("[[camera]]\nid = \"a\"\nurl = \"demo:\"\n\n[mqtt]\ntopic_prefix = \"x\"\n");
    assert_eq!(e.key, "mqtt.url");
    assert_eq!(e.line, Some(5), "{e}");
    assert_eq!(e.message, "missing required key \"url\"");
    assert!(
        e.fix
            .starts_with("add the broker: write the broker as url ="),
        "{e}"
    );
    let e = one("mqtt = \"mqtt://h\"\n");
    assert_eq!(e.message, "expected a table, found a string");
    assert!(e.fix.contains("write [mqtt] (single brackets)"), "{e}");
    let e = one("[[mqtt]]\nurl = \"mqtt://h\"\n");
    assert_eq!(e.message, "expected a table, found an array");
}

#[test]
fn values_out_of_range_name_the_key_and_the_fix() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "topic_prefix = \"\"",
            "mqtt.topic_prefix",
            "it is empty",
            "like \"camhub\"",
        ),
        (
            "topic_prefix = \"cams/#\"",
            "mqtt.topic_prefix",
            "+ and # are wildcards",
            "without + or #",
        ),
        (
            "topic_prefix = \"a/+/b\"",
            "mqtt.topic_prefix",
            "wildcards",
            "without + or #",
        ),
        (
            "topic_prefix = \"/camhub\"",
            "mqtt.topic_prefix",
            "empty topic level",
            "no / at",
        ),
        (
            "topic_prefix = \"camhub/\"",
            "mqtt.topic_prefix",
            "empty topic level",
            "no / at",
        ),
        (
            "topic_prefix = \"a//b\"",
            "mqtt.topic_prefix",
            "empty topic level",
            "no / at",
        ),
        (
            "topic_prefix = \"a\\u0000b\"",
            "mqtt.topic_prefix",
            "control character",
            "no / at",
        ),
        (
            "discovery_prefix = \"home assistant/#\"",
            "mqtt.discovery_prefix",
            "wildcards",
            "\"homeassistant\"",
        ),
        (
            "node_id = \"camhub.lan\"",
            "mqtt.node_id",
            "invalid node_id \"camhub.lan\"",
            "Home Assistant's rule",
        ),
        (
            "node_id = \"\"",
            "mqtt.node_id",
            "invalid node_id",
            "a-z, A-Z, 0-9",
        ),
        (
            "client_id = \"camhub garage\"",
            "mqtt.client_id",
            "invalid client_id",
            "without spaces",
        ),
        (
            "client_id = \"\"",
            "mqtt.client_id",
            "invalid client_id",
            "camhub-HOSTNAME",
        ),
        (
            "username = \"\"",
            "mqtt.username",
            "username is empty",
            "anonymous",
        ),
        (
            "discovery = \"yes\"",
            "mqtt.discovery",
            "expected a boolean, found a string",
            "true or false",
        ),
        (
            "ca_file = \"\"",
            "mqtt.ca_file",
            "ca_file is empty",
            "PEM file",
        ),
    ];
    for (line, key, message, fix) in cases {
        let text = mqtt(&format!("url = \"mqtts://h\"\n{line}"));
        let e = one(&text);
        assert_eq!((e.key.as_str(), e.line), (*key, Some(3)), "{line}: {e}");
        assert!(e.message.contains(message), "{line}: {e}");
        assert!(e.fix.contains(fix), "{line}: {e}");
    }
}

#[test]
fn keys_that_depend_on_each_other() {
    let e = one(&mqtt("url = \"mqtt://h\"\npassword = \"hunter2\""));
    assert_eq!((e.key.as_str(), e.line), ("mqtt.password", Some(3)));
    assert_eq!(e.message, "password is set but username is not");
    assert!(e.fix.contains("add username"), "{e}");
    let e = one(&mqtt("url = \"mqtt://h\"\nca_file = \"/etc/ca.pem\""));
    assert_eq!((e.key.as_str(), e.line), ("mqtt.ca_file", Some(3)));
    assert_eq!(e.message, "ca_file applies to mqtts:// URLs only");
}

#[test]
fn unknown_keys_get_a_suggestion() {
    let e = one(&mqtt("url = \"mqtt://h\"\ntopic_prefx = \"x\""));
    assert_eq!(e.to_string(), "camhub.toml:3:1: mqtt.topic_prefx: unknown key \"topic_prefx\" — did you mean \"topic_prefix\"? valid keys: url, username, password, topic_prefix, client_id, discovery, discovery_prefix, node_id, ca_file");
    // Other programs' names for the keys.
    for (key, hint) in [
        ("host = \"h\"", "the broker's address and port go in url"),
        ("port = 1883", "the broker's address and port go in url"),
        ("user = \"u\"", "did you mean \"username\"?"),
        ("prefix = \"x\"", "did you mean \"topic_prefix\"?"),
        ("base_topic = \"x\"", "did you mean \"topic_prefix\"?"),
        ("cafile = \"x\"", "did you mean \"ca_file\"?"),
    ] {
        let e = one(&mqtt(&format!("url = \"mqtt://h\"\n{key}")));
        assert!(e.fix.contains(hint), "{key}: {e}");
    }
    // [mqtt]'s keys elsewhere say where they go.
    let e = one("topic_prefix = \"x\"\n");
    assert!(
        e.fix
            .contains("is an [mqtt] key: put it after an [mqtt] line"),
        "{e}"
    );
    let e = one("[server]\nnode_id = \"x\"\n");
    assert!(e.fix.contains("is an [mqtt] key"), "{e}");
    let e = one("mqt = 1\n");
    assert!(e.fix.contains("did you mean \"mqtt\"?"), "{e}");
}

#[test]
fn every_mistake_is_reported_together() {
    let e = errors(&mqtt(
        "url = \"http://h\"\ntopic_prefix = \"#\"\nnode_id = \"a b\"\nretain = true",
    ));
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "mqtt.url",
            "mqtt.topic_prefix",
            "mqtt.node_id",
            "mqtt.retain"
        ]
    );
}

#[test]
fn the_password_never_reaches_error_text_or_debug() {
    let secret = "hunter2";
    // In the URL, where it does not belong: refused, and redacted in the message.
    for url in [
        "mqtt://camhub:hunter2@broker.lan",
        "mqtts://camhub:hunter2@broker.lan:8883",
        "mqtt://camhub:hunter2@",
        "http://camhub:hunter2@broker.lan",
        "mqtt://camhub:hunter2@broker.lan:99999",
        "mqtt://camhub:hunter2@broker.lan/x",
        "camhub:hunter2@broker.lan",
    ] {
        let shown = parse(&mqtt(&format!("url = \"{url}\"")), "camhub.toml")
            .unwrap_err()
            .to_string();
        assert!(!shown.contains(secret), "{url}: {shown}");
        assert!(!shown.contains("ter2"), "{url}: {shown}");
    }
    let e = one(&mqtt("url = \"mqtt://camhub:hunter2@broker.lan\""));
    assert_eq!(
        e.message,
        "the broker URL \"mqtt://***:***@broker.lan\" holds a user name or password"
    );
    assert!(
        e.fix.contains("username = \"…\" and password = \"…\""),
        "{e}"
    );
    // Beside other mistakes, and as a password without a user name.
    for text in [
        mqtt("url = \"mqtt://h:0\"\nusername = \"u\"\npassword = \"hunter2\"\nnode_id = \"?\""),
        mqtt("url = \"mqtt://h\"\npassword = \"hunter2\""),
    ] {
        let shown = parse(&text, "camhub.toml").unwrap_err().to_string();
        assert!(!shown.contains(secret), "{shown}");
    }
    let c = ok(&mqtt(
        "url = \"mqtt://h\"\nusername = \"camhub\"\npassword = \"hunter2\"",
    ));
    let shown = format!("{c:?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("password: Some(\"***\")"), "{shown}");
}
