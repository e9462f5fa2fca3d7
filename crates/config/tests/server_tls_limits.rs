//! `[server]` TLS, limit and proxy keys: `tls_cert` / `tls_key` (both or neither), `max_connections`,
//! `max_connections_per_ip`, `max_viewers_per_camera`, `base_path`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use camhub_config::{parse, Config, ConfigError, Server};

fn ok(text: &str) -> Config {
    parse(text, "camhub.toml").unwrap_or_else(|e| panic!("expected valid, got:\n{e}\n{text}"))
}

fn one(text: &str) -> ConfigError {
    let mut e = parse(text, "camhub.toml")
        .map(|c| panic!("expected an error, got {c:?}"))
        .unwrap_err()
        .0;
    assert_eq!(e.len(), 1, "expected exactly one error, got {e:#?}");
    e.remove(0)
}

#[test]
fn defaults_are_plain_http_with_sane_limits() {
    let s = Server::default();
    assert_eq!((s.tls_cert, s.tls_key), (None, None));
    assert_eq!(s.max_connections, 1024);
    assert_eq!(s.max_connections_per_ip, 64);
    assert_eq!(s.max_viewers_per_camera, 100);
    assert_eq!(ok("[server]\n").server, Server::default());
}

#[test]
fn tls_cert_and_key_together() {
    let c = ok("[server]\ntls_cert = \"/etc/camhub/fullchain.pem\"\ntls_key = \"certs/key.pem\"\n");
    assert_eq!(
        c.server.tls_cert,
        Some(PathBuf::from("/etc/camhub/fullchain.pem"))
    );
    // A relative path stays relative (to the directory camhub runs in, like data_dir).
    assert_eq!(c.server.tls_key, Some(PathBuf::from("certs/key.pem")));
}

#[test]
fn a_cert_without_its_key_names_the_missing_key() {
    let e = one("[server]\nlisten = \"127.0.0.1:8443\"\ntls_cert = \"cert.pem\"\n");
    assert_eq!(
        e.to_string(),
        "camhub.toml:3:12: server.tls_key: tls_cert is set but tls_key is not — add tls_key = \
         \"/path/to/key.pem\" (the certificate's private key, PEM) to [server], or remove tls_cert \
         to serve plain HTTP"
    );
    let e = one("[server]\ntls_key = \"key.pem\"\n");
    assert_eq!((e.key.as_str(), e.line), ("server.tls_cert", Some(2)));
    assert_eq!(e.message, "tls_key is set but tls_cert is not");
    assert!(e.fix.starts_with("add tls_cert = "), "{e}");
}

#[test]
fn bad_tls_paths() {
    let e = one("[server]\ntls_cert = \"\"\ntls_key = \"k.pem\"\n");
    // The empty one is the error; "tls_key without tls_cert" would be one too many.
    assert_eq!((e.key.as_str(), e.line), ("server.tls_cert", Some(2)));
    assert_eq!(e.message, "tls_cert is empty");
    assert!(e.fix.contains("remove tls_cert and tls_key"), "{e}");
    let e = one("[server]\ntls_cert = 1\ntls_key = \"k.pem\"\n");
    assert_eq!(e.key, "server.tls_cert");
    assert!(e.message.starts_with("expected a string"), "{e}");
}

#[test]
fn limits() {
    let c = ok(
        "[server]\nmax_connections = 10\nmax_connections_per_ip = 2\nmax_viewers_per_camera = 3\n",
    );
    assert_eq!(
        (
            c.server.max_connections,
            c.server.max_connections_per_ip,
            c.server.max_viewers_per_camera
        ),
        (10, 2, 3)
    );
    for key in [
        "max_connections",
        "max_connections_per_ip",
        "max_viewers_per_camera",
    ] {
        for bad in ["0", "1000001", "-1"] {
            let e = one(&format!("[server]\n{key} = {bad}\n"));
            assert_eq!(
                (e.key.as_str(), e.line, e.column),
                (
                    format!("server.{key}").as_str(),
                    Some(2),
                    Some(key.len() + 4)
                ),
                "{key} = {bad}"
            );
            assert_eq!(e.message, format!("{bad} is out of range"));
            assert_eq!(e.fix, "use a whole number from 1 to 1000000");
        }
        let e = one(&format!("[server]\n{key} = \"100\"\n"));
        assert_eq!(e.message, "expected an integer, found a string", "{e}");
        assert!(e.fix.contains("without quotes"), "{e}");
    }
}

#[test]
fn a_misspelt_limit_is_suggested() {
    let e = one("[server]\nmax_viewer_per_camera = 5\n");
    assert!(
        e.fix
            .starts_with("did you mean \"max_viewers_per_camera\"?"),
        "{e}"
    );
    let e = one("[server]\nmax_connection = 5\n");
    assert!(
        e.fix.starts_with("did you mean \"max_connections\"?"),
        "{e}"
    );
}

#[test]
fn base_path_is_normalised_and_checked() {
    let c = camhub_config::parse("[server]\nbase_path = \"/camhub/\"\n", "c.toml").unwrap();
    assert_eq!(c.server.base_path, "/camhub");
    let c = camhub_config::parse("[server]\nbase_path = \"/\"\n", "c.toml").unwrap();
    assert_eq!(c.server.base_path, "");
    for bad in ["camhub", "/a b", "/x//y", "/x?y"] {
        let e = camhub_config::parse(&format!("[server]\nbase_path = \"{bad}\"\n"), "c.toml")
            .unwrap_err();
        assert_eq!(e.0[0].key, "server.base_path", "{bad}: {e}");
        assert_eq!(e.0[0].line, Some(2));
    }
}
