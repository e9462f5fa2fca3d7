//! The RTSP server (`[server] rtsp_listen`) against real clients: `ffprobe`, the `ffmpeg` CLI over
//! TCP and UDP (recordings that decode cleanly), GStreamer's `rtspsrc` with libav's decoder, twenty
//! clients on one camera over one upstream connection, the substream, H.265, login, and bad input
//! sent by hand.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use camhub_testkit::{Camhub, OneClientMjpegCamera, RtspServer, RtspServerOptions};
use common::{camera, eventually, get, metric, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// The RTSP port camhub logged (`rtsp_listen` on port 0 picks a free one).
async fn rtsp_port(hub: &Camhub) -> u16 {
    let mut port = None;
    let found = eventually(Duration::from_secs(10), || {
        let log = hub.log();
        port = log.lines().find_map(|l| {
            let rest = l.split("RTSP server on rtsp://127.0.0.1:").nth(1)?;
            rest.split('/').next()?.parse().ok()
        });
        async move { port.is_some() }
    })
    .await;
    assert!(
        found,
        "no RTSP server line in the log:\n{}",
        hub.log_tail(30)
    );
    port.unwrap()
}

/// Runs a command with a time limit; (success, stdout, stderr).
async fn run(program: &str, args: &[&str], limit: Duration) -> (bool, String, String) {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Ok(Err(e)) => panic!("{program}: {e}"),
        Err(_) => (
            false,
            String::new(),
            format!("{program} timed out after {limit:?}"),
        ),
    }
}

/// `ffprobe`'s codec name, width and height of the first stream.
async fn probe(url: &str) -> (String, u64, u64) {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "json",
            url,
        ],
        Duration::from_secs(30),
    )
    .await;
    assert!(ok, "ffprobe {url}: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &v["streams"][0];
    (
        s["codec_name"].as_str().unwrap_or("").to_owned(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
    )
}

/// Records 5 s with `ffmpeg -rtsp_transport {transport} -c copy`, then decodes the file: it must
/// decode without a single error message and hold most of the frames the source sent.
async fn record_and_decode(url: &str, transport: &str, dir: &std::path::Path, fps: u64) {
    let file = dir.join(format!("{transport}.mkv"));
    let path = file.to_str().unwrap();
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-i",
            url,
            "-t",
            "5",
            "-c",
            "copy",
            "-y",
            path,
        ],
        Duration::from_secs(40),
    )
    .await;
    assert!(ok, "ffmpeg {transport} recording: {err}");
    let (ok, _, err) = run(
        "ffmpeg",
        &["-v", "error", "-i", path, "-f", "null", "-"],
        Duration::from_secs(30),
    )
    .await;
    assert!(
        ok && err.trim().is_empty(),
        "decoding the {transport} recording: {err}"
    );
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            path,
        ],
        Duration::from_secs(30),
    )
    .await;
    assert!(ok, "{err}");
    let frames: u64 = out.trim().parse().unwrap_or(0);
    assert!(
        frames >= 5 * fps * 8 / 10,
        "{transport}: {frames} frames in 5 s at {fps} fps"
    );
}

/// Sends `bytes` on a new connection and reads until it closes or 3 s pass.
async fn exchange(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn players_and_recorders_get_the_cameras_own_stream_over_one_connection() {
    let src = RtspServer::start(RtspServerOptions::default()).await;
    let sub = RtspServer::start(RtspServerOptions::default().with_size(320, 180, 15)).await;
    let cfg = format!(
        "[server]\nrtsp_listen = \"127.0.0.1:0\"\n\n\
         [[camera]]\nid = \"cam\"\nurl = \"{}\"\nsubstream_url = \"{}\"\n\n\
         [[camera]]\nid = \"hevc\"\nurl = \"{}\"\n\n\
         [[camera]]\nid = \"demo\"\nurl = \"demo:\"\n",
        src.url("/h264"),
        sub.url("/h264"),
        src.url("/h265"),
    );
    let hub = start(&cfg).await;
    let port = rtsp_port(&hub).await;
    let url = format!("rtsp://127.0.0.1:{port}/cam");

    // The idle camera is opened for DESCRIBE; ffprobe sees the camera's codec and size.
    assert_eq!(probe(&url).await, ("h264".into(), 640, 360));
    assert_eq!(
        probe(&format!("{url}/sub")).await,
        ("h264".into(), 320, 180)
    );
    assert_eq!(
        probe(&format!("rtsp://127.0.0.1:{port}/hevc")).await,
        ("hevc".into(), 640, 360)
    );

    let dir = tempfile::tempdir().unwrap();
    record_and_decode(&url, "tcp", dir.path(), 15).await;
    record_and_decode(&url, "udp", dir.path(), 15).await;

    // GStreamer's client plays it too.
    let location = format!("location={url}");
    let (ok, _, err) = run(
        "gst-launch-1.0",
        &[
            "-q",
            "rtspsrc",
            &location,
            "protocols=tcp",
            "!",
            "rtph264depay",
            "!",
            "h264parse",
            "!",
            "avdec_h264",
            "!",
            "fakesink",
            "num-buffers=30",
        ],
        Duration::from_secs(30),
    )
    .await;
    assert!(ok, "gst-launch rtspsrc: {err}");

    // Twenty clients at once, one upstream session; the API lists them while they play.
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                run(
                    "ffmpeg",
                    &[
                        "-v",
                        "error",
                        "-rtsp_transport",
                        "tcp",
                        "-i",
                        &url,
                        "-t",
                        "6",
                        "-c",
                        "copy",
                        "-f",
                        "null",
                        "-",
                    ],
                    Duration::from_secs(60),
                )
                .await
            })
        })
        .collect();
    let listed = eventually(Duration::from_secs(20), || async {
        let api = camera(&hub, "cam").await;
        let playing = api["sessions"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter(|s| s["kind"] == "rtsp" && s["state"] == "playing")
                    .count()
            })
            .unwrap_or(0);
        playing == 20
    })
    .await;
    assert!(listed, "{}", camera(&hub, "cam").await);
    for c in clients {
        let (ok, _, err) = c.await.unwrap();
        assert!(ok, "one of 20 clients: {err}");
    }
    assert_eq!(
        src.count("SETUP", "/h264"),
        1,
        "every RTSP client shares camhub's one connection to the camera"
    );
    assert!(metric(&hub, "camhub_rtsp_bytes_out_total", "cam").await > 1e6);
    assert_eq!(
        metric(&hub, "camhub_decode_seconds_total", "cam").await,
        0.0,
        "RTSP clients cost no decode"
    );
    // Every session is gone from the API and the gauge once its client left.
    let gone = eventually(Duration::from_secs(10), || async {
        camera(&hub, "cam").await["sessions"]
            .as_array()
            .is_some_and(|s| s.is_empty())
    })
    .await;
    assert!(gone, "{}", camera(&hub, "cam").await);
    let text = get(&hub.url("/metrics")).await.text();
    assert!(
        text.contains("camhub_packet_viewers{camera=\"cam\",kind=\"rtsp\"} 0"),
        "{text}"
    );

    // A camera that sends no H.264/H.265 is refused with the reason.
    let demo = exchange(
        port,
        format!("DESCRIBE rtsp://127.0.0.1:{port}/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(demo.starts_with("RTSP/1.0 415"), "{demo}");
    assert!(demo.contains("built-in demo"), "{demo}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_an_error_or_a_closed_connection_and_the_server_goes_on() {
    let src = RtspServer::start(RtspServerOptions::default()).await;
    let cfg = format!(
        "[server]\nrtsp_listen = \"127.0.0.1:0\"\n\n[[camera]]\nid = \"cam\"\nurl = \"{}\"\n",
        src.url("/h264")
    );
    let hub = start(&cfg).await;
    let port = rtsp_port(&hub).await;
    let base = format!("rtsp://127.0.0.1:{port}");

    let garbage = exchange(
        port,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n",
    )
    .await;
    assert!(garbage.starts_with("RTSP/1.0 400"), "{garbage:?}");
    let http = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(http.starts_with("RTSP/1.0 400"), "{http:?}");
    let mut huge = format!("OPTIONS {base}/cam RTSP/1.0\r\nCSeq: 1\r\nX-Big: ").into_bytes();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let huge = exchange(port, &huge).await;
    assert!(huge.starts_with("RTSP/1.0 400"), "{huge:?}");
    // Truncated: the connection just waits for the rest; closing it is the client's business.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(format!("DESCRIBE {base}/cam RTSP/1.0\r\nCSe").as_bytes())
        .await
        .unwrap();
    drop(s);
    let unknown = exchange(
        port,
        format!("PLAY {base}/cam RTSP/1.0\r\nCSeq: 9\r\nSession: 12345678\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(unknown.starts_with("RTSP/1.0 454"), "{unknown:?}");
    assert!(unknown.contains("CSeq: 9\r\n"), "{unknown:?}");
    let nocam = exchange(
        port,
        format!("DESCRIBE {base}/nope RTSP/1.0\r\nCSeq: 2\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(nocam.starts_with("RTSP/1.0 404"), "{nocam:?}");
    let badtransport = exchange(
        port,
        format!(
            "SETUP {base}/cam/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;multicast\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(badtransport.starts_with("RTSP/1.0 461"), "{badtransport:?}");
    // A session set up and dropped without TEARDOWN leaves nothing behind.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(
        format!(
            "SETUP {base}/cam/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(15), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    let session = reply
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("{reply}"))
        .to_owned();
    s.write_all(
        format!("PLAY {base}/cam RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    // Interleaved RTP follows the PLAY response.
    let mut got = Vec::new();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while !got.windows(2).any(|w| w == [b'$', 0]) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(seen.is_ok(), "no interleaved RTP after PLAY");
    assert_eq!(metric_rtsp(&hub).await, 1);
    drop(s);
    assert!(
        eventually(Duration::from_secs(5), || async {
            metric_rtsp(&hub).await == 0
        })
        .await,
        "the dropped session still counts"
    );

    // Still serving.
    assert_eq!(probe(&format!("{base}/cam")).await.0, "h264");
    assert!(hub.log().contains("RTSP server on"), "{}", hub.log_tail(20));
}

async fn metric_rtsp(hub: &Camhub) -> u64 {
    let text = get(&hub.url("/metrics")).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("camhub_packet_viewers{camera=\"cam\",kind=\"rtsp\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread")]
async fn rtsp_clients_log_in_with_a_users_password_or_a_token() {
    let src = RtspServer::start(RtspServerOptions::default()).await;
    let hash = camhub::auth::hash_password("s3cret pass").unwrap();
    let cfg = format!(
        "[server]\nrtsp_listen = \"127.0.0.1:0\"\n\n\
         [[camera]]\nid = \"cam\"\nurl = \"{}\"\n\n\
         [[camera]]\nid = \"other\"\nurl = \"demo:\"\n\n\
         [[user]]\nname = \"admin\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n\n\
         [[user]]\nname = \"viewer\"\npassword_hash = \"{hash}\"\ncameras = [\"other\"]\n",
        src.url("/h264")
    );
    let hub = start(&cfg).await;
    let port = rtsp_port(&hub).await;
    let open = exchange(
        port,
        format!("DESCRIBE rtsp://127.0.0.1:{port}/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(open.starts_with("RTSP/1.0 401"), "{open}");
    assert!(
        open.contains("WWW-Authenticate: Basic realm=\"camhub\""),
        "{open}"
    );
    assert_eq!(
        probe(&format!("rtsp://admin:s3cret%20pass@127.0.0.1:{port}/cam"))
            .await
            .0,
        "h264"
    );
    let (ok, _, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            &format!("rtsp://admin:wrong@127.0.0.1:{port}/cam"),
        ],
        Duration::from_secs(20),
    )
    .await;
    assert!(!ok, "a wrong password is refused");
    // A user who may not see the camera is told it does not exist.
    let (ok, _, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            &format!("rtsp://viewer:s3cret%20pass@127.0.0.1:{port}/cam"),
        ],
        Duration::from_secs(20),
    )
    .await;
    assert!(!ok && err.contains("404"), "{err}");

    // An API token in the URL, for clients that cannot send Basic credentials.
    let client = reqwest::Client::new();
    let token: serde_json::Value = client
        .post(hub.url("/api/tokens"))
        .basic_auth("admin", Some("s3cret pass"))
        .header("Origin", hub.base_url())
        .json(&serde_json::json!({"name": "nvr"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap_or_else(|| panic!("{token}"));
    assert_eq!(
        probe(&format!("rtsp://127.0.0.1:{port}/cam?token={token}")).await,
        ("h264".into(), 640, 360)
    );
    assert!(
        !hub.log().contains(token),
        "the token never reaches the log"
    );
}

/// An MJPEG camera is served as RTP/JPEG (RFC 2435) when its JPEGs are baseline with the standard
/// Huffman tables (as an ESP32-CAM's, or these that came as RTP/JPEG); one whose encoder optimises
/// its tables (the ffmpeg CLI's) is refused with the reason and what to do.
#[tokio::test(flavor = "multi_thread")]
async fn an_mjpeg_camera_is_served_as_rtp_jpeg() {
    let src = RtspServer::start(RtspServerOptions::default()).await;
    let esp = OneClientMjpegCamera::start(320, 240, 10).await;
    let cfg = format!(
        "[server]\nrtsp_listen = \"127.0.0.1:0\"\n\n\
         [[camera]]\nid = \"jpeg\"\nurl = \"{}\"\n\n\
         [[camera]]\nid = \"optimised\"\nurl = \"{}\"\n",
        src.url("/mjpeg"),
        esp.url()
    );
    let hub = start(&cfg).await;
    let port = rtsp_port(&hub).await;
    let url = format!("rtsp://127.0.0.1:{port}/jpeg");
    assert_eq!(probe(&url).await, ("mjpeg".into(), 640, 360));
    let dir = tempfile::tempdir().unwrap();
    record_and_decode(&url, "tcp", dir.path(), 15).await;
    assert_eq!(
        metric(&hub, "camhub_decode_seconds_total", "jpeg").await,
        0.0,
        "JPEGs are passed through, not decoded"
    );
    let refused = exchange(
        port,
        format!("DESCRIBE rtsp://127.0.0.1:{port}/optimised RTSP/1.0\r\nCSeq: 1\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(refused.starts_with("RTSP/1.0 415"), "{refused}");
    assert!(
        refused.contains("Huffman") && refused.contains("transcode"),
        "{refused}"
    );
}
