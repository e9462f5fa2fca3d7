//! The mistakes newcomers make that are valid TOML and valid values: credentials as keys (an
//! error: the key does nothing), and warnings for a placeholder host, an ESP32-CAM stream URL
//! without `:81` and an `input_format` FFmpeg does not know. Each names the line, the key and the
//! fix, and never quotes a password.

// In tests a panic is the assertion.
#![allow(clippy::unwrap_used)]

use camhub_config::{parse, parse_with, ConfigError, Probe};

fn warnings(text: &str) -> Vec<ConfigError> {
    match parse(text, "camhub.toml") {
        Ok(c) => c.warnings,
        Err(e) => panic!("expected a valid config, got:\n{e}\n--- text:\n{text}"),
    }
}

#[test]
fn credential_keys_are_an_error_that_says_to_put_them_in_the_url() {
    let text = "[[camera]]\nid = \"door\"\nurl = \"rtsp://192.168.1.64/Streaming/Channels/101\"\n\
                username = \"admin\"\npassword = \"hunter2\"\n";
    let e = parse(text, "camhub.toml").unwrap_err().0;
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].key, "camera[0].username");
    assert_eq!(e[0].line, Some(4));
    assert_eq!(e[1].key, "camera[0].password");
    assert_eq!(e[1].line, Some(5));
    for err in &e {
        assert!(err.fix.contains("rtsp://USER:PASSWORD@HOST"), "{err}");
        assert!(err.fix.contains("%40"), "says how to percent-encode: {err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    // Outside a camera, "password" is just an unknown key.
    let e = parse("[server]\npassword = \"x\"\n", "c.toml")
        .unwrap_err()
        .0;
    assert!(!e[0].fix.contains("rtsp://USER"), "{}", e[0]);
}

#[test]
fn an_esp32_stream_url_without_port_81_is_a_warning_with_the_right_url() {
    let text = "[[camera]]\nid = \"esp\"\nurl = \"http://192.168.1.50/stream\"\n";
    let w = warnings(text);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].key, "camera[0].url");
    assert_eq!((w[0].line, w[0].column), (Some(3), Some(7)));
    assert!(w[0].message.contains("port 81"), "{}", w[0]);
    assert!(
        w[0].fix.contains("\"http://192.168.1.50:81/stream\""),
        "{}",
        w[0]
    );
    assert!(
        warnings("[[camera]]\nid = \"esp\"\nurl = \"http://192.168.1.50:81/stream\"\n").is_empty()
    );
}

#[test]
fn placeholder_hosts_are_warnings_in_url_and_substream_url() {
    let text = "[[camera]]\nid = \"door\"\n\
                url = \"rtsp://admin:hunter2@IP:554/Streaming/Channels/101\"\n\
                substream_url = \"rtsp://admin:hunter2@192.168.1.x:554/Streaming/Channels/102\"\n";
    let w = warnings(text);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert_eq!(w[0].key, "camera[0].url");
    assert_eq!(w[1].key, "camera[0].substream_url");
    assert!(
        w[0].message.contains("\"IP\" looks like a placeholder"),
        "{}",
        w[0]
    );
    assert!(w[1].message.contains("\"192.168.1.x\""), "{}", w[1]);
    for warning in &w {
        assert!(!warning.to_string().contains("hunter2"), "{warning}");
    }
}

#[test]
fn an_input_format_ffmpeg_does_not_know_is_a_warning_when_the_loader_can_tell() {
    let text = "[[camera]]\nid = \"usb\"\nurl = \"ffmpeg:/dev/video0\"\ninput_format = \"v4l\"\n";
    // Without a probe the config crate cannot know (it never calls FFmpeg).
    assert!(warnings(text).is_empty());
    let probe = Probe {
        has_input_format: &|name| name == "v4l2",
    };
    let config = parse_with(text, "camhub.toml", &probe).unwrap();
    let w = &config.warnings;
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].key, "camera[0].input_format");
    assert_eq!((w[0].line, w[0].column), (Some(4), Some(16)));
    assert!(
        w[0].fix.contains("ffmpeg -hide_banner -formats"),
        "{}",
        w[0]
    );
    // The camera is still there: a warning never drops one.
    assert_eq!(config.cameras.len(), 1);
    let good = text.replace("\"v4l\"", "\"v4l2\"");
    assert!(parse_with(&good, "camhub.toml", &probe)
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn warnings_come_in_file_order() {
    let text = "[[camera]]\nid = \"b\"\nurl = \"http://HOST/stream\"\n\n\
                [[camera]]\nid = \"a\"\nurl = \"rtsp://camera_ip/1\"\n";
    let w = warnings(text);
    let lines: Vec<_> = w.iter().map(|w| w.line).collect();
    assert_eq!(lines, vec![Some(3), Some(3), Some(7)], "{w:#?}");
}
