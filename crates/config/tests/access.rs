//! Who may watch: `[[user]]`s, `[server] auth` and the rule that camhub never serves beyond
//! loopback without a login unless the config says so — each mistake with its line and fix, and
//! never a password or hash in a message.

// In tests a panic is the assertion.
#![allow(clippy::unwrap_used)]

use camhub_config::{parse, AuthMode, Config, ConfigError, Role};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn ok(text: &str) -> Config {
    parse(text, "camhub.toml").unwrap_or_else(|e| panic!("{e}\n--- text:\n{text}"))
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, "camhub.toml") {
        Ok(c) => panic!("expected errors, got {c:?}\n--- text:\n{text}"),
        Err(e) => e.0,
    }
}

fn user(lines: &str) -> String {
    format!("[[camera]]\nid = \"door\"\nurl = \"demo:\"\n\n[[user]]\n{lines}\n")
}

#[test]
fn loopback_without_users_needs_no_login() {
    let c = ok("[[camera]]\nid = \"door\"\nurl = \"demo:\"\n");
    assert_eq!(c.server.auth, AuthMode::Auto);
    assert!(!c.auth_enforced());
    let c = ok("[server]\nlisten = \"[::1]:8080\"\n");
    assert!(!c.auth_enforced());
}

#[test]
fn beyond_loopback_without_users_is_refused_with_both_ways_out() {
    let e = errors("[server]\nlisten = \"0.0.0.0:8080\"\n");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].key.as_str(), e[0].line), ("server.listen", Some(2)));
    assert!(e[0].message.contains("0.0.0.0:8080"), "{}", e[0]);
    assert!(e[0].fix.contains("camhub hash-password"), "{}", e[0]);
    assert!(e[0].fix.contains("auth = \"none\""), "{}", e[0]);
    // Saying so explicitly is allowed (camhub warns at start and the UI shows a banner).
    let c = ok("[server]\nlisten = \"0.0.0.0:8080\"\nauth = \"none\"\n");
    assert!(!c.auth_enforced());
    // With a user it is fine, and login is required.
    let c = ok(&format!(
        "[server]\nlisten = \"0.0.0.0:8080\"\n\n[[user]]\nname = \"admin\"\npassword_hash = \"{HASH}\"\nrole = \"admin\"\n"
    ));
    assert!(c.auth_enforced());
    // auth = "none" turns login off even with users.
    let c = ok(&format!(
        "[server]\nauth = \"none\"\n\n[[user]]\nname = \"admin\"\npassword_hash = \"{HASH}\"\n"
    ));
    assert!(!c.auth_enforced());
}

#[test]
fn auth_users_without_a_user_is_an_error() {
    let e = errors("[server]\nauth = \"users\"\n");
    assert_eq!((e[0].key.as_str(), e[0].line), ("server.auth", Some(2)));
    let e = errors("[server]\nauth = \"maybe\"\n");
    assert!(e[0].fix.contains("\"none\""), "{}", e[0]);
}

#[test]
fn a_broken_user_is_reported_once_not_as_no_user_too() {
    let e = errors("[server]\nlisten = \"0.0.0.0:8080\"\n\n[[user]]\nname = \"admin\"\n");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].key, "user[0].password_hash");
    assert!(e[0].message.contains("missing required key"), "{}", e[0]);
}

#[test]
fn user_mistakes_name_the_line_and_never_quote_secrets() {
    // A password where the hash goes.
    let e = errors(&user("name = \"alice\"\npassword_hash = \"hunter2\""));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(
        (e[0].key.as_str(), e[0].line),
        ("user[0].password_hash", Some(7))
    );
    assert!(e[0].fix.contains("camhub hash-password"), "{}", e[0]);
    assert!(!e[0].to_string().contains("hunter2"), "{}", e[0]);
    // A plain password key.
    let e = errors(&user(&format!(
        "name = \"alice\"\npassword_hash = \"{HASH}\"\npassword = \"hunter2\""
    )));
    assert_eq!(e[0].key, "user[0].password");
    assert!(e[0].message.contains("only their hashes"), "{}", e[0]);
    assert!(!e[0].to_string().contains("hunter2"), "{}", e[0]);
    // An unknown camera, a bad role, a bad name.
    let e = errors(&user(&format!(
        "name = \"alice\"\npassword_hash = \"{HASH}\"\ncameras = [\"door\", \"garage\"]"
    )));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].key.as_str(), e[0].line), ("user[0].cameras", Some(8)));
    assert!(e[0].message.contains("\"garage\""), "{}", e[0]);
    assert!(e[0].fix.contains("door"), "{}", e[0]);
    let e = errors(&user(&format!(
        "name = \"alice\"\npassword_hash = \"{HASH}\"\nrole = \"root\""
    )));
    assert_eq!(e[0].key, "user[0].role");
    let e = errors(&user(&format!(
        "name = \"a b\"\npassword_hash = \"{HASH}\""
    )));
    assert_eq!(e[0].key, "user[0].name");
}

#[test]
fn duplicate_users_name_both_lines() {
    let text = format!(
        "[[user]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\n\n[[user]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\n"
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].line, Some(6));
    assert!(e[0].message.contains("first on line 2"), "{}", e[0]);
}

#[test]
fn debug_never_shows_a_hash() {
    let c = ok(&user(&format!(
        "name = \"alice\"\npassword_hash = \"{HASH}\""
    )));
    assert_eq!(c.users[0].role, Role::Viewer);
    let shown = format!("{c:?}");
    assert!(!shown.contains("argon2id"), "{shown}");
    assert!(shown.contains("alice"), "{shown}");
}

#[test]
fn trusted_proxies_and_origins_are_checked() {
    let e = errors("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.lan\"]\n");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].line, e[0].column), (Some(2), Some(34)));
    let e = errors("[server]\nallowed_origins = [\"https://ha.lan/path\"]\n");
    assert_eq!(e[0].key, "server.allowed_origins");
    let e = errors("[server]\ntrusted_proxies = \"10.0.0.1\"\n");
    assert!(e[0].fix.contains("list"), "{}", e[0]);
}

#[test]
fn an_rtsp_server_beyond_loopback_needs_a_user_too() {
    let c = ok("[server]\nrtsp_listen = \"127.0.0.1:8554\"\n");
    assert_eq!(
        c.server.rtsp_listen,
        Some("127.0.0.1:8554".parse().unwrap())
    );
    assert_eq!(ok("").server.rtsp_listen, None, "off by default");
    let e = errors("[server]\nrtsp_listen = \"0.0.0.0:8554\"\n");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(
        (e[0].key.as_str(), e[0].line),
        ("server.rtsp_listen", Some(2))
    );
    assert!(e[0].message.contains("0.0.0.0:8554"), "{}", e[0]);
    let e = errors("[server]\nrtsp_listen = \"8554\"\n");
    assert_eq!(
        (e[0].key.as_str(), e[0].line),
        ("server.rtsp_listen", Some(2))
    );
    assert!(e[0].fix.contains("0.0.0.0:8554"), "{}", e[0]);
    let c = ok(&format!(
        "[server]\nrtsp_listen = \"0.0.0.0:8554\"\n\n{}password_hash = \"{HASH}\"\nname = \"a\"\n",
        user("")
    ));
    assert!(c.auth_enforced());
}

#[test]
fn webrtc_keys() {
    use camhub_config::WebrtcListen;
    assert_eq!(ok("").server.webrtc_listen, WebrtcListen::Default);
    let c = ok("[server]\nwebrtc_listen = \"off\"\n");
    assert_eq!(c.server.webrtc_listen, WebrtcListen::Off);
    let c = ok(
        "[server]\nwebrtc_listen = \"127.0.0.1:9000\"\nwebrtc_candidates = [\"192.168.1.10\", \"2001:db8::1\"]\n\
         ice_servers = [\"stun:stun.example.com:3478\"]\n",
    );
    assert_eq!(
        c.server.webrtc_listen,
        WebrtcListen::At("127.0.0.1:9000".parse().unwrap())
    );
    assert_eq!(c.server.webrtc_candidates.len(), 2);
    assert_eq!(
        c.server.ice_servers,
        vec!["stun:stun.example.com:3478".to_owned()]
    );
    let e = errors("[server]\nwebrtc_listen = \"8555\"\n");
    assert_eq!(
        (e[0].key.as_str(), e[0].line),
        ("server.webrtc_listen", Some(2))
    );
    assert!(e[0].fix.contains("\"off\""), "{}", e[0]);
    let e = errors("[server]\nwebrtc_candidates = [\"camhub.lan\"]\n");
    assert_eq!(
        (e[0].key.as_str(), e[0].line),
        ("server.webrtc_candidates", Some(2))
    );
    let e = errors("[server]\nice_servers = [\"stun.example.com\"]\n");
    assert_eq!(
        (e[0].key.as_str(), e[0].line),
        ("server.ice_servers", Some(2))
    );
    assert!(e[0].fix.contains("stun:"), "{}", e[0]);
}
