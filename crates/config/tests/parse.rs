//! The config parser from the outside: what parses, with which defaults, and what each mistake
//! reports (line, key, message, fix).

// In tests a panic is the assertion.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use camhub_config::{
    load, parse, AuthMode, Camera, Config, ConfigError, Events, IpNet, MetricsAccess, Role,
    RtspTransport, Server, SourceKind,
};

const DESIGN_EXAMPLE: &str = include_str!("fixtures/design_example.toml");

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

/// A config holding one camera with `url` and the extra `lines`.
fn camera(url: &str, lines: &str) -> String {
    format!("[[camera]]\nid = \"cam\"\nurl = \"{url}\"\n{lines}\n")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn design_example_parses() {
    let c = ok(DESIGN_EXAMPLE);
    assert_eq!(
        c.server.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.server.data_dir, PathBuf::from("camhub-data"));
    assert_eq!(c.cameras.len(), 2);
    let door = &c.cameras[0];
    assert_eq!(door.id, "frontdoor");
    assert_eq!(door.name, "Front door");
    assert_eq!(
        door.source.kind,
        SourceKind::Rtsp {
            transport: RtspTransport::Tcp
        }
    );
    assert_eq!(
        door.source.url,
        "rtsp://admin:secret@192.168.1.64:554/Streaming/Channels/101"
    );
    assert_eq!(
        door.source.redacted,
        "rtsp://***:***@192.168.1.64:554/Streaming/Channels/101"
    );
    let sub = door.substream.as_ref().expect("substream");
    assert_eq!(
        sub.redacted,
        "rtsp://***:***@192.168.1.64:554/Streaming/Channels/102"
    );
    assert_eq!(door.idle_timeout, ms(30_000));
    assert!(!door.always_on);
    let esp = &c.cameras[1];
    assert_eq!(esp.id, "esp32");
    assert_eq!(esp.name, "esp32");
    assert_eq!(
        esp.source.kind,
        SourceKind::Http {
            poll_interval: None,
            insecure_tls: false
        }
    );
}

#[test]
fn design_example_loads_from_a_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/design_example.toml");
    assert_eq!(load(&path).unwrap(), ok(DESIGN_EXAMPLE));
}

#[test]
fn every_example_in_the_docs_parses() {
    // Every ```toml block of README.md and docs/*.md is a config a reader may copy: it must be valid.
    // Examples of mistakes are fenced without `toml` (``` or ```text, as the error examples of
    // docs/config.md are), and so are not checked here.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    let mut counts = BTreeMap::new();
    for path in &files {
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut block: Option<(usize, String)> = None;
        let mut blocks = 0;
        for (i, line) in doc.lines().enumerate() {
            // Fences may be indented (a block inside a list item).
            let fence = line.trim_start();
            match block.take() {
                None => {
                    if fence == "```toml" {
                        block = Some((i + 1, String::new()));
                    }
                }
                Some((start, text)) if fence.starts_with("```") => {
                    if let Err(e) = parse(&text, &name) {
                        panic!("{name}: the toml block at line {start} is not a valid config:\n{e}\n--- block:\n{text}");
                    }
                    blocks += 1;
                }
                Some((start, mut text)) => {
                    text.push_str(line);
                    text.push('\n');
                    block = Some((start, text));
                }
            }
        }
        assert!(block.is_none(), "{name}: a ```toml block is not closed");
        counts.insert(name, blocks);
    }
    assert!(
        counts["docs/config.md"] >= 10,
        "only {} toml blocks in docs/config.md: {counts:?}",
        counts["docs/config.md"]
    );
    assert!(counts.values().sum::<usize>() >= 15, "{counts:?}");
}

#[test]
fn a_missing_file_is_one_error_naming_the_path_it_tried() {
    let e = load(Path::new("/nonexistent/camhub.toml")).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].line, None);
    let text = e.to_string();
    assert!(
        text.starts_with(
            "/nonexistent/camhub.toml: config file not found (tried /nonexistent/camhub.toml)"
        ),
        "{text}"
    );
    // A relative path is shown as the absolute path it resolved to: the directory a service or a
    // script started camhub in is not always the one the user thinks of.
    let e = load(Path::new("no-such-dir/camhub.toml")).unwrap_err();
    let cwd = std::env::current_dir().unwrap();
    let tried = cwd.join("no-such-dir/camhub.toml");
    assert!(
        e.to_string()
            .contains(&format!("not found (tried {})", tried.display())),
        "{e}"
    );
}

#[test]
fn an_unreadable_file_is_one_error_with_the_os_reason() {
    let dir = tempfile::tempdir().unwrap();
    // A directory is never readable as a file, whoever runs the test (root reads any mode).
    let e = load(dir.path()).unwrap_err();
    assert_eq!(e.0.len(), 1);
    let text = e.to_string();
    assert!(text.contains(": cannot read the config file: "), "{text}");
}

#[test]
fn defaults() {
    let empty = ok("");
    assert_eq!(
        empty,
        Config {
            server: Server::default(),
            cameras: vec![],
            users: vec![],
            events: Events::default(),
            mqtt: None,
            warnings: vec![],
        }
    );
    assert_eq!(ok("# only a comment\n[server]\n"), empty);
    let s = Server::default();
    assert_eq!(s.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(s.data_dir, PathBuf::from("camhub-data"));
    assert_eq!(s.snapshot_timeout, ms(10_000));
    assert_eq!(s.max_variants, 8);
    assert_eq!(s.stall_timeout, ms(20_000));

    let c = ok(&camera("rtsp://10.0.0.5/x", ""));
    assert_eq!(
        c.cameras[0],
        Camera {
            id: "cam".into(),
            name: "cam".into(),
            source: camhub_config::SourceSpec {
                kind: SourceKind::Rtsp {
                    transport: RtspTransport::Tcp
                },
                url: "rtsp://10.0.0.5/x".into(),
                url_without_credentials: "rtsp://10.0.0.5/x".into(),
                credentials: None,
                redacted: "rtsp://10.0.0.5/x".into(),
                secrets: Vec::new(),
            },
            substream: None,
            idle_timeout: ms(30_000),
            always_on: false,
            watchdog: ms(10_000),
            decode_threads: 1,
            enabled: true,
            motion: None,
            transcode: None,
            transform: camhub_config::Transform::default(),
        }
    );
}

#[test]
fn builtin_demo_config_equals_its_written_form() {
    let written = ok("[[camera]]\nid = \"demo\"\nname = \"Demo camera\"\nurl = \"demo:\"\n");
    assert_eq!(Config::demo(), written);
    assert_eq!(
        Config::demo().cameras[0].source.kind,
        SourceKind::Demo {
            width: 1280,
            height: 720,
            fps: 25
        }
    );
}

#[test]
fn every_key_set() {
    let c = ok(r#"
[server]
listen = "[::]:9000"
data_dir = "/var/lib/camhub"
snapshot_timeout = "500ms"
max_variants = 64
stall_timeout = "1m30s"
auth = "users"
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
allowed_origins = ["https://HA.example:8123/"]
session_lifetime = "30d"
login_attempts = 3
ban_time = "1h"
metrics = "open"
tls_cert = "/etc/camhub/cert.pem"
tls_key = "key.pem"
max_connections = 5000
max_connections_per_ip = 1
max_viewers_per_camera = 1000000

[[user]]
name = "alice"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
role = "admin"

[[user]]
name = "bob"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
cameras = ["webcam"]

[[camera]]
id = "a_b-9"
name = "Gate"
url = "https://u:p@cam.local/mjpeg"
substream_url = "rtsp://u:p@cam.local/sub"
idle_timeout = "24h"
always_on = true
enabled = false
watchdog = 5
decode_threads = 0
transport = "udp"
poll_interval = "50ms"
insecure_tls = true

[[camera]]
id = "webcam"
url = "ffmpeg:/dev/video0"
input_format = "v4l2"
input_options = { video_size = "1280x720", framerate = 30, fast = true, ratio = 1.5, hex = 0x10 }
loop_file = false
"#);
    let s = &c.server;
    assert_eq!(s.listen, "[::]:9000".parse::<SocketAddr>().unwrap());
    assert_eq!(s.data_dir, PathBuf::from("/var/lib/camhub"));
    assert_eq!(s.snapshot_timeout, ms(500));
    assert_eq!(s.max_variants, 64);
    assert_eq!(s.stall_timeout, ms(90_000));
    assert_eq!(s.auth, AuthMode::Users);
    assert_eq!(
        s.trusted_proxies,
        vec![
            IpNet::parse("127.0.0.1").unwrap(),
            IpNet::parse("10.0.0.0/8").unwrap()
        ]
    );
    assert_eq!(
        s.allowed_origins,
        vec!["https://ha.example:8123".to_owned()]
    );
    assert_eq!(s.session_lifetime, ms(30 * 86_400_000));
    assert_eq!(s.login_attempts, 3);
    assert_eq!(s.ban_time, ms(3_600_000));
    assert_eq!(s.metrics, MetricsAccess::Open);
    assert_eq!(s.tls_cert, Some(PathBuf::from("/etc/camhub/cert.pem")));
    assert_eq!(s.tls_key, Some(PathBuf::from("key.pem")));
    assert_eq!(s.max_connections, 5000);
    assert_eq!(s.max_connections_per_ip, 1);
    assert_eq!(s.max_viewers_per_camera, 1_000_000);
    assert_eq!(c.users.len(), 2);
    assert_eq!(
        (c.users[0].name.as_str(), c.users[0].role),
        ("alice", Role::Admin)
    );
    assert_eq!(c.users[0].cameras, None);
    // The role defaults to the least: viewer.
    assert_eq!(
        (c.users[1].name.as_str(), c.users[1].role),
        ("bob", Role::Viewer)
    );
    assert_eq!(c.users[1].cameras, Some(vec!["webcam".to_owned()]));
    assert!(c.auth_enforced());
    let gate = &c.cameras[0];
    assert_eq!(gate.name, "Gate");
    assert_eq!(gate.idle_timeout, ms(24 * 3_600_000));
    assert!(gate.always_on);
    assert!(!gate.enabled);
    assert_eq!(gate.watchdog, ms(5_000));
    assert_eq!(gate.decode_threads, 0);
    // transport applies to the rtsp substream, poll_interval and insecure_tls to the https main stream.
    assert_eq!(
        gate.source.kind,
        SourceKind::Http {
            poll_interval: Some(ms(50)),
            insecure_tls: true
        }
    );
    assert_eq!(gate.source.redacted, "https://***:***@cam.local/mjpeg");
    let sub = gate.substream.as_ref().unwrap();
    assert_eq!(
        sub.kind,
        SourceKind::Rtsp {
            transport: RtspTransport::Udp
        }
    );
    let options: BTreeMap<String, String> = [
        ("video_size", "1280x720"),
        ("framerate", "30"),
        ("fast", "1"),
        ("ratio", "1.5"),
        ("hex", "16"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        c.cameras[1].source.kind,
        SourceKind::Ffmpeg {
            input: "/dev/video0".into(),
            format: Some("v4l2".into()),
            options,
            loop_file: false,
        }
    );
}

#[test]
fn input_options_as_a_sub_table() {
    let c = ok("[[camera]]\nid = \"f\"\nurl = \"ffmpeg:/x.mp4\"\nloop_file = true\n\n[camera.input_options]\nre = \"\"\n");
    let SourceKind::Ffmpeg {
        options, loop_file, ..
    } = &c.cameras[0].source.kind
    else {
        panic!("not ffmpeg")
    };
    assert!(loop_file);
    assert_eq!(options.get("re").map(String::as_str), Some(""));
}

#[test]
fn http_substream_of_an_http_camera_shares_its_options() {
    let c = ok(&camera(
        "https://h/stream",
        "substream_url = \"http://h/small\"\npoll_interval = \"1s\"\ninsecure_tls = true",
    ));
    let cam = &c.cameras[0];
    assert_eq!(
        cam.source.kind,
        SourceKind::Http {
            poll_interval: Some(ms(1000)),
            insecure_tls: true
        }
    );
    // Plain http has no TLS to be insecure about.
    assert_eq!(
        cam.substream.as_ref().unwrap().kind,
        SourceKind::Http {
            poll_interval: Some(ms(1000)),
            insecure_tls: false
        }
    );
}

#[test]
fn demo_urls() {
    let kind = |url: &str| ok(&camera(url, "")).cameras[0].source.kind.clone();
    assert_eq!(
        kind("demo:"),
        SourceKind::Demo {
            width: 1280,
            height: 720,
            fps: 25
        }
    );
    assert_eq!(
        kind("demo:?width=640&height=360&fps=10"),
        SourceKind::Demo {
            width: 640,
            height: 360,
            fps: 10
        }
    );
    assert_eq!(
        kind("demo:?fps=5"),
        SourceKind::Demo {
            width: 1280,
            height: 720,
            fps: 5
        }
    );
    let e = one(&camera("demo:?width=641", ""));
    assert_eq!(
        e.to_string(),
        "camhub.toml:3:7: camera[0].url: width=641 in demo URL is out of range — use an even number from 16 to 3840"
    );
    let e = one(&camera("demo:?depth=8", ""));
    assert!(
        e.message.contains("unknown demo URL parameter \"depth\""),
        "{e}"
    );
    for bad in [
        "demo:?height=2162",
        "demo:?fps=0",
        "demo:?fps=61",
        "demo:x",
        "demo:?width=abc",
    ] {
        assert_eq!(one(&camera(bad, "")).key, "camera[0].url", "{bad}");
    }
}

#[test]
fn malformed_toml_names_the_line() {
    let e = one("[server]\nlisten = \"127.0.0.1:8080\"\ndata_dir = camhub-data\n");
    assert_eq!((e.line, e.key.as_str()), (Some(3), ""));
    assert!(e.message.starts_with("invalid TOML: "), "{e}");
    assert!(e.to_string().starts_with("camhub.toml:3:"), "{e}");

    let e = one("[[camera]]\nid = \"a\"\n\n[server\nlisten = \"x\"\n");
    assert_eq!(e.line, Some(4), "{e}");

    let e = one("[[camera]]\nid = \"a\"\nurl = \"rtsp://admin:hunter2@h/x\nname = \"b\"\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");

    let e = one("[server]\nlisten = \"a\"\nlisten = \"b\"\n");
    assert_eq!(e.line, Some(3), "{e}");
}

#[test]
fn unknown_top_level_key() {
    let e = one(&format!("# camhub\ncameras = 1\n{DESIGN_EXAMPLE}"));
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (Some(2), Some(1), "cameras")
    );
    assert_eq!(e.message, "unknown key \"cameras\"");
    assert_eq!(
        e.fix,
        "did you mean \"camera\"? valid keys: server, camera, composite, user, events, mqtt"
    );

    let e = one("url = \"rtsp://h/x\"\n");
    assert!(
        e.fix
            .contains("is a camera key: put it after a [[camera]] line"),
        "{e}"
    );
    let e = one("listen = \"0.0.0.0:80\"\n");
    assert!(
        e.fix
            .contains("is a server key: put it after the [server] line"),
        "{e}"
    );
}

#[test]
fn unknown_server_key() {
    let e = one("[server]\nlisten = \"127.0.0.1:8080\"\n  listn = \"x\"\n");
    assert_eq!(
        e.to_string(),
        "camhub.toml:3:3: server.listn: unknown key \"listn\" — did you mean \"listen\"? \
         valid keys: listen, data_dir, snapshot_timeout, max_variants, max_raw_sizes, stall_timeout, auth, trusted_proxies, allowed_origins, session_lifetime, login_attempts, ban_time, metrics, tls_cert, tls_key, max_connections, max_connections_per_ip, max_viewers_per_camera, base_path, rtsp_listen, webrtc_listen, webrtc_candidates, ice_servers"
    );
    let e = one("[server]\nurl = \"x\"\n");
    assert!(e.fix.contains("\"url\" is a camera key"), "{e}");
}

#[test]
fn unknown_camera_key() {
    let text = DESIGN_EXAMPLE.replace("idle_timeout = \"30s\"", "idle_timout = \"30s\"");
    let e = one(&text);
    assert_eq!((e.line, e.column), (Some(10), Some(1)));
    assert_eq!(e.key, "camera[0].idle_timout");
    assert!(
        e.fix
            .starts_with("did you mean \"idle_timeout\"? valid keys: id, name, url,"),
        "{e}"
    );

    let e = one(&camera("rtsp://h/x", "colour = \"red\""));
    assert_eq!(e.key, "camera[0].colour");
    assert!(e.fix.starts_with("valid keys: id, name"), "{e}");

    let e = one(&camera("rtsp://h/x", "listen = \"0.0.0.0:80\""));
    assert!(e.fix.contains("is a [server] key, not a camera key"), "{e}");

    // The second camera is camera[1], and the line is the key's own.
    let e = one(&format!(
        "{}{}",
        camera("demo:", ""),
        camera("demo:", "Name = \"x\"").replace("cam\"", "cam2\"")
    ));
    assert_eq!((e.key.as_str(), e.line), ("camera[1].Name", Some(8)));
    assert!(e.fix.starts_with("did you mean \"name\"?"), "{e}");
}

#[test]
fn duplicate_ids_name_both_lines() {
    let text = "[[camera]]\nid = \"garage\"\nurl = \"demo:\"\n\n[[camera]]\nid = \"porch\"\nurl = \"demo:\"\n\n[[camera]]\nid = \"garage\"\nurl = \"demo:\"\n";
    let e = one(text);
    assert_eq!(
        e.to_string(),
        "camhub.toml:10:6: camera[2].id: duplicate camera id \"garage\" (first used on line 2) — give every camera a different id"
    );
}

#[test]
fn bad_ids() {
    let long = "a".repeat(65);
    for bad in [
        "Front",
        "front door",
        "",
        "café",
        "a/b",
        "a.b",
        long.as_str(),
    ] {
        let e = one(&format!("[[camera]]\nid = \"{bad}\"\nurl = \"demo:\"\n"));
        assert_eq!(
            (e.key.as_str(), e.line, e.column),
            ("camera[0].id", Some(2), Some(6)),
            "{bad}"
        );
        assert_eq!(e.message, format!("invalid camera id \"{bad}\""));
        assert!(e.fix.contains("a-z, 0-9, _ and -"), "{e}");
    }
    ok(&format!(
        "[[camera]]\nid = \"{}\"\nurl = \"demo:\"\n",
        "a".repeat(64)
    ));
    ok("[[camera]]\nid = \"0_-z\"\nurl = \"demo:\"\n");
}

#[test]
fn missing_required_keys_point_at_the_camera() {
    let mut e = errors("[server]\n\n[[camera]]\nname = \"x\"\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    e.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!((e[0].key.as_str(), e[0].line), ("camera[0].id", Some(3)));
    assert_eq!(e[0].message, "missing required key \"id\"");
    assert_eq!((e[1].key.as_str(), e[1].line), ("camera[0].url", Some(3)));
}

#[test]
fn bad_url_schemes() {
    for bad in [
        "rtmp://h/live",
        "ftp://h/x",
        "/dev/video0",
        "192.168.1.5:554/x",
        "",
        "file:/x.mp4",
    ] {
        let e = one(&camera(bad, ""));
        assert_eq!(
            (e.key.as_str(), e.line),
            ("camera[0].url", Some(3)),
            "{bad}"
        );
        assert!(
            e.fix
                .starts_with("use rtsp://, http://, https://, ffmpeg:INPUT or demo:"),
            "{e}"
        );
    }
    let e = one(&camera("rtmp://h/live", ""));
    assert_eq!(e.message, "unsupported URL scheme \"rtmp:\"");
    assert!(e.fix.contains("ffmpeg:rtmp://"), "{e}");

    let e = one(&camera("ffmpeg:", ""));
    assert_eq!(e.message, "\"ffmpeg:\" needs an input after the colon");

    // retina cannot open rtsps://: refused in both URLs, with the fix.
    let e = one(&camera("rtsps://admin:hunter2@h:322/x", ""));
    assert_eq!(e.key, "camera[0].url");
    assert_eq!(
        e.fix,
        "open it through FFmpeg instead: \"ffmpeg:rtsps://***@h:322/x\""
    );
    let e = one(&camera(
        "rtsp://h/x",
        "substream_url = \"rtsps://h:322/sub\"",
    ));
    assert_eq!(e.key, "camera[0].substream_url");
    assert!(e.fix.contains("\"ffmpeg:rtsps://h:322/sub\""), "{e}");
}

#[test]
fn substream_url_takes_the_same_kinds_of_url_as_url() {
    let c = ok(&camera(
        "rtsp://h/main",
        "substream_url = \"ffmpeg:rtsps://u:p@h:322/sub\"\ninput_options = { rtsp_transport = \"tcp\" }",
    ));
    let sub = c.cameras[0].substream.as_ref().unwrap();
    let SourceKind::Ffmpeg { input, options, .. } = &sub.kind else {
        panic!("not ffmpeg: {sub:?}")
    };
    assert_eq!(input, "rtsps://u:p@h:322/sub");
    assert_eq!(
        options.get("rtsp_transport").map(String::as_str),
        Some("tcp")
    );
    assert_eq!(sub.redacted, "ffmpeg:rtsps://***:***@h:322/sub");
    // Options of ffmpeg: inputs apply to both URLs when both are inputs.
    let c = ok(&camera(
        "ffmpeg:/x.mp4",
        "substream_url = \"ffmpeg:/small.mp4\"\nloop_file = true",
    ));
    for spec in [
        &c.cameras[0].source,
        c.cameras[0].substream.as_ref().unwrap(),
    ] {
        assert!(
            matches!(
                spec.kind,
                SourceKind::Ffmpeg {
                    loop_file: true,
                    ..
                }
            ),
            "{spec:?}"
        );
    }
    let c = ok(&camera(
        "http://h/x",
        "substream_url = \"demo:?width=320&height=180\"",
    ));
    assert_eq!(
        c.cameras[0].substream.as_ref().unwrap().kind,
        SourceKind::Demo {
            width: 320,
            height: 180,
            fps: 25
        }
    );
}

#[test]
fn urls_are_taken_apart_once() {
    let c = ok(&camera(
        "rtsp://adm%20in:pa%40ss@10.0.0.5:554/Streaming/Channels/101",
        "",
    ));
    let spec = &c.cameras[0].source;
    assert_eq!(
        spec.url_without_credentials,
        "rtsp://10.0.0.5:554/Streaming/Channels/101"
    );
    let creds = spec.credentials.as_ref().unwrap();
    assert_eq!(
        (creds.user.as_str(), creds.password.as_str()),
        ("adm in", "pa@ss")
    );
    for s in ["adm%20in", "adm in", "pa%40ss", "pa@ss"] {
        assert!(
            spec.secrets.contains(&s.to_owned()),
            "{s}: {:?}",
            spec.secrets
        );
    }

    let c = ok(&camera("ffmpeg:rtmp://camuser:hunter2@10.0.0.9/live", ""));
    let spec = &c.cameras[0].source;
    assert_eq!(spec.url_without_credentials, "ffmpeg:rtmp://10.0.0.9/live");
    assert_eq!(spec.credentials.as_ref().unwrap().password, "hunter2");
    assert_eq!(spec.redacted, "ffmpeg:rtmp://***:***@10.0.0.9/live");
    assert!(
        !spec.secrets.iter().any(|s| s.contains("rtmp")),
        "{:?}",
        spec.secrets
    );

    // Xiongmai: the credentials stay in the path, where the camera reads them.
    let url = "rtsp://10.0.0.7:554/user=admin&password=hu%23nter2&channel=1&stream=0.sdp";
    let c = ok(&camera(url, ""));
    let spec = &c.cameras[0].source;
    assert_eq!(spec.credentials, None);
    assert_eq!(spec.url_without_credentials, url);
    assert_eq!(
        spec.redacted,
        "rtsp://10.0.0.7:554/user=***&password=***&channel=1&stream=0.sdp"
    );
    for s in ["hu%23nter2", "hu#nter2", "admin"] {
        assert!(
            spec.secrets.contains(&s.to_owned()),
            "{s}: {:?}",
            spec.secrets
        );
    }

    let spec = &Config::demo().cameras[0].source;
    assert_eq!(
        (
            spec.url_without_credentials.as_str(),
            spec.credentials.is_none()
        ),
        ("demo:", true)
    );
    assert!(spec.secrets.is_empty());
}

#[test]
fn debug_never_shows_a_password() {
    let text = r#"
[[camera]]
id = "door"
url = "rtsp://camuser:hunter2@192.168.1.64:554/Streaming/Channels/101"
substream_url = "ffmpeg:rtmp://camuser:hunter2@192.168.1.64/live"
input_options = { headers = "Authorization: Basic hunter2" }

[[camera]]
id = "shed"
url = "http://192.168.1.65/snap.cgi?user=camuser&pwd=hunter2&chn=1"
"#;
    let c = ok(text);
    for shown in [format!("{c:?}"), format!("{c:#?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("camuser"), "{shown}");
        // The rest stays readable.
        for visible in [
            "door",
            "rtsp://***:***@192.168.1.64:554/Streaming/Channels/101",
            "ffmpeg:rtmp://***:***@192.168.1.64/live",
            "headers",
            "http://192.168.1.65/snap.cgi?user=***&pwd=***&chn=1",
        ] {
            assert!(shown.contains(visible), "{visible} missing from {shown}");
        }
    }
}

#[test]
fn a_password_cut_by_an_unencoded_hash_is_refused_with_the_fix() {
    let e = one(&camera(
        "rtsp://10.0.0.7:554/user=admin&password=hu#nter2&channel=1&stream=0.sdp",
        "",
    ));
    assert_eq!((e.key.as_str(), e.line), ("camera[0].url", Some(3)));
    assert!(e.fix.contains("%23"), "{e}");
    let shown = e.to_string();
    assert!(
        !shown.contains("nter2") && !shown.contains("admin"),
        "{shown}"
    );
    let e = one(&camera(
        "rtsp://10.0.0.7/user=admin&password=hu?nter2&channel=1",
        "",
    ));
    assert!(e.fix.contains("%3F"), "{e}");
}

#[test]
fn urls_without_a_host() {
    for bad in [
        "rtsp://",
        "rtsp:///Streaming/Channels/101",
        "http://",
        "rtsp://admin:x@:554/",
        "https://:443/x",
    ] {
        let e = one(&camera(bad, ""));
        assert_eq!(e.key, "camera[0].url", "{bad}");
        assert!(
            e.message.contains("has no host") || e.message.contains("empty host"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn bad_durations() {
    let e = one(&camera("rtsp://h/x", "idle_timeout = \"30 sex\""));
    assert_eq!(
        e.to_string(),
        "camhub.toml:4:16: camera[0].idle_timeout: invalid duration \"30 sex\" — use a duration like \"30s\", \"500ms\" or \"2m\""
    );
    for bad in [
        "\"\"", "\"1.5s\"", "\"-1s\"", "-5", "1.5", "true", "\"30\"", "\"1s1m\"",
    ] {
        let e = one(&camera("rtsp://h/x", &format!("watchdog = {bad}")));
        assert_eq!(e.key, "camera[0].watchdog", "{bad}");
        assert!(e.fix.contains("use a duration like"), "{bad}: {e}");
    }
    // A bare integer means seconds.
    assert_eq!(
        ok(&camera("rtsp://h/x", "watchdog = 42")).cameras[0].watchdog,
        ms(42_000)
    );
}

#[test]
fn out_of_range_values() {
    let cases = [
        (
            "[server]\nmax_variants = 0",
            "server.max_variants",
            "use a whole number from 1 to 64",
        ),
        (
            "[server]\nmax_variants = 65",
            "server.max_variants",
            "use a whole number from 1 to 64",
        ),
        (
            "[server]\nmax_variants = 99999999999999999999",
            "server.max_variants",
            "from 1 to 64",
        ),
        (
            "[server]\nsnapshot_timeout = \"99ms\"",
            "server.snapshot_timeout",
            "use a duration from 100ms to 2m",
        ),
        (
            "[server]\nsnapshot_timeout = 121",
            "server.snapshot_timeout",
            "from 100ms to 2m",
        ),
        (
            "[server]\nstall_timeout = \"601s\"",
            "server.stall_timeout",
            "from 1s to 10m",
        ),
        (
            "[server]\nstall_timeout = 0",
            "server.stall_timeout",
            "from 1s to 10m",
        ),
    ];
    for (text, key, fix) in cases {
        let e = one(text);
        assert_eq!((e.key.as_str(), e.line), (key, Some(2)), "{text}");
        assert!(e.message.ends_with("is out of range"), "{e}");
        assert!(e.fix.contains(fix), "{text}: {e}");
    }
    let cam = [
        (
            "decode_threads = 17",
            "camera[0].decode_threads",
            "from 0 to 16",
        ),
        (
            "decode_threads = -1",
            "camera[0].decode_threads",
            "from 0 to 16",
        ),
        (
            "idle_timeout = \"24h1s\"",
            "camera[0].idle_timeout",
            "from 1s to 1d",
        ),
        (
            "idle_timeout = \"999ms\"",
            "camera[0].idle_timeout",
            "from 1s to 1d",
        ),
        (
            "watchdog = \"10m1ms\"",
            "camera[0].watchdog",
            "from 1s to 10m",
        ),
    ];
    for (line, key, fix) in cam {
        let e = one(&camera("rtsp://h/x", line));
        assert_eq!((e.key.as_str(), e.line), (key, Some(4)), "{line}");
        assert!(e.fix.contains(fix), "{line}: {e}");
    }
    let e = one(&camera("http://h/x", "poll_interval = \"49ms\""));
    assert!(e.fix.contains("from 50ms to 1h"), "{e}");
    let e = one(&camera("http://h/x", "poll_interval = \"2h\""));
    assert_eq!(e.message, "duration \"2h\" is out of range");
}

#[test]
fn transcode_to_h264() {
    let c = camhub_config::parse(
        "[[camera]]\nid = \"esp\"\nurl = \"http://192.168.1.50:81/stream\"\ntranscode = \"h264\"\n",
        "camhub.toml",
    )
    .unwrap();
    assert_eq!(c.cameras[0].transcode, Some(camhub_config::Transcode::H264));
    let e = one(&camera("rtsp://h/x", "transcode = \"h265\""));
    assert_eq!((e.key.as_str(), e.line), ("camera[0].transcode", Some(4)));
    assert!(e.fix.contains("use \"h264\""), "{e}");
}

#[test]
fn wrong_types() {
    let cases = [
        ("always_on = \"yes\"", "expected a boolean, found a string"),
        (
            "decode_threads = \"2\"",
            "expected an integer, found a string",
        ),
        ("name = 5", "expected a string, found an integer"),
        ("idle_timeout = [1]", "expected a duration, found an array"),
        ("transport = \"TCP\"", "invalid transport \"TCP\""),
        ("transcode = \"vp9\"", "invalid transcode \"vp9\""),
        ("transcode = true", "expected a string, found a boolean"),
    ];
    for (line, message) in cases {
        assert_eq!(one(&camera("rtsp://h/x", line)).message, message, "{line}");
    }
    let e = one("[server]\nlisten = \"localhost:8080\"\n");
    assert_eq!(e.message, "invalid socket address \"localhost:8080\"");
    assert_eq!(one("server = 1\n").key, "server");
    assert_eq!(one("[[server]]\nlisten = \"x\"\n").key, "server");
    let e = one("[camera]\nid = \"x\"\nurl = \"demo:\"\n");
    assert!(e.fix.contains("[[camera]] (double brackets)"), "{e}");
    let e = one(&camera("ffmpeg:/x", "input_options = { a = [1] }"));
    assert_eq!(e.key, "camera[0].input_options.a");
    let e = one(&camera("ffmpeg:/x", "input_options = \"-f v4l2\""));
    assert_eq!(e.key, "camera[0].input_options");
}

#[test]
fn options_that_do_not_apply_to_the_url_kind() {
    let e = one(&camera(
        "http://192.168.1.50:81/stream",
        "transport = \"udp\"",
    ));
    assert_eq!(
        e.to_string(),
        "camhub.toml:4:1: camera[0].transport: transport applies to rtsp:// URLs only — \
         remove it: this camera's url is an http:// URL"
    );
    let cases = [
        (
            "rtsp://h/x",
            "poll_interval = \"1s\"",
            "camera[0].poll_interval",
        ),
        (
            "http://h/x",
            "insecure_tls = true",
            "camera[0].insecure_tls",
        ),
        (
            "rtsp://h/x",
            "insecure_tls = false",
            "camera[0].insecure_tls",
        ),
        (
            "rtsp://h/x",
            "input_format = \"v4l2\"",
            "camera[0].input_format",
        ),
        ("demo:", "loop_file = true", "camera[0].loop_file"),
        (
            "http://h/x",
            "input_options = { a = \"b\" }",
            "camera[0].input_options",
        ),
        (
            "ffmpeg:rtsp://h/x",
            "transport = \"tcp\"",
            "camera[0].transport",
        ),
    ];
    for (url, line, key) in cases {
        let e = one(&camera(url, line));
        assert_eq!((e.key.as_str(), e.line), (key, Some(4)), "{url} {line}");
        assert!(e.fix.starts_with("remove it"), "{e}");
    }
    // An rtsp substream makes transport meaningful for an http camera.
    let e = one(&camera(
        "http://h/x",
        "substream_url = \"http://h/y\"\ntransport = \"udp\"",
    ));
    assert_eq!(e.fix, "remove it: neither url nor substream_url is rtsp://");
    ok(&camera(
        "http://h/x",
        "substream_url = \"rtsp://h/y\"\ntransport = \"udp\"",
    ));
}

#[test]
fn passwords_never_reach_error_text() {
    let secret = "hunter2";
    let bad_urls = [
        "rtmp://admin:hunter2@h/live",
        "rtsp://admin:hunter2@:554/x",
        "rtsp://admin:hunter2@h:99999/x",
        "rtsp://admin:hun/ter2@h:554/x",
        "http://admin:hunter2@/x",
        "rtsp:/admin:hunter2@h/x",
        "hunter2",
        "admin:hunter2@192.168.1.5/x",
        " rtsp://admin:hunter2@h/x",
        "rtsp://h:99999/user=admin&password=hunter2&channel=1&stream=0.sdp",
        "ffmpeg:",
    ];
    for url in bad_urls {
        for (main, sub) in [(url, "rtsp://h/y"), ("rtsp://admin:hunter2@h/ok", url)] {
            let text = format!("[[camera]]\nid = \"x\"\nurl = \"{main}\"\nsubstream_url = \"{sub}\"\nwatchdog = \"x\"\n");
            let shown = parse(&text, "camhub.toml").unwrap_err().to_string();
            assert!(!shown.contains(secret), "{url}:\n{shown}");
            assert!(!shown.contains("ter2"), "{url}:\n{shown}");
        }
    }
    // Options that do not apply, with the password in both URLs.
    let text = camera(
        "http://admin:hunter2@h/x",
        "substream_url = \"https://admin:hunter2@h/y\"\ntransport = \"udp\"\nloop_file = true",
    );
    let shown = parse(&text, "camhub.toml").unwrap_err().to_string();
    assert!(!shown.contains(secret), "{shown}");
    // Xiongmai's credentials in the path are redacted in the parsed config too.
    let c = ok(&camera(
        "rtsp://10.0.0.7:554/user=admin&password=hunter2&channel=1&stream=0.sdp",
        "",
    ));
    assert!(!c.cameras[0].source.redacted.contains(secret));
}

#[test]
fn every_error_is_collected_in_file_order() {
    let text = r#"
[server]
listen = "nowhere"
max_variants = 0

[[camera]]
id = "Bad Id"
url = "rtsp://h/x"
idle_timeout = "forever"

[[camera]]
id = "ok"
url = "gopher://h"
colour = "blue"
"#;
    let e = errors(text);
    let got: Vec<(usize, &str)> = e
        .iter()
        .map(|e| (e.line.unwrap(), e.key.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "server.listen"),
            (4, "server.max_variants"),
            (7, "camera[0].id"),
            (9, "camera[0].idle_timeout"),
            (13, "camera[1].url"),
            (14, "camera[1].colour"),
        ]
    );
    let shown = parse(text, "x.toml").unwrap_err().to_string();
    assert_eq!(shown.lines().count(), 6);
    assert!(shown.lines().all(|l| l.starts_with("x.toml:")), "{shown}");
}

#[test]
fn columns_count_characters() {
    let e = one("[[camera]]\nid = \"x\"\nname = \"Café\"\nurl = \"demo:\"\n  wat = 1\n");
    assert_eq!((e.line, e.column), (Some(5), Some(3)));
    let e = one("[[camera]]\nid = \"x\"\nname = \"Café\" ; url = 1\n");
    assert_eq!(e.line, Some(3));
}
