//! Connection and viewer limits: past `max_connections_per_ip` / `max_connections` a new
//! connection is closed at once while the viewers already there keep their frame rate; a freed
//! place is taken again; past `max_viewers_per_camera` a new viewer gets a 503 naming the key;
//! `/metrics` counts what was refused. Frame rates are compared loosely with the camera's
//! (25 fps): no timed assertion depends on the machine's speed.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use camhub_testkit::{Camhub, FrameCounter, MjpegReader};
use common::{eventually, start};

/// The demo camera's frame rate.
const FPS: f64 = 25.0;

fn config(server: &str) -> String {
    format!("[server]\n{server}\n[[camera]]\nid = \"demo\"\nurl = \"demo:\"\n")
}

/// A viewer of the demo camera, and how many times it was refused first. camhub frees a place
/// when it has seen a connection close, which can come a moment after the client closed it: the
/// start-up `/healthz` poll's connection may still hold a place when the first viewers connect.
/// Those refusals are real and counted in /metrics, so the tests add them to what they expect.
async fn viewer(hub: &Camhub) -> (FrameCounter, u32) {
    let url = hub.url("/api/cameras/demo/stream.mjpeg?width=320");
    let mut refused = 0;
    loop {
        match MjpegReader::connect(&url).await {
            Ok(reader) => return (reader.count_in_background(), refused),
            // Refused: a 503, or closed before the answer could be written.
            Err(e)
                if (e.contains("503") || e.contains("error sending request")) && refused < 50 =>
            {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Opens a connection from `from` and sends a request: what camhub answered before it closed
/// the connection (empty when it closed without a word). Panics if the connection stays open
/// for 10 s (a refused connection is closed at once).
fn refused_answer(hub: &Camhub, from: Ipv4Addr) -> String {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::new(IpAddr::V4(from), 0).into())
        .unwrap();
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], hub.port())).into())
        .unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may have closed already: a failed write is part of being refused.
    let _ = stream.write_all(b"GET /api/cameras/demo/stream.mjpeg HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection was not closed: {e}; got {answer:?}"),
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503 "),
        "{answer}"
    );
    answer
}

/// A client whose connections come from `from` (another loopback address is another client).
fn client_from(from: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(from))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn metrics_from(hub: &Camhub, from: Ipv4Addr) -> String {
    client_from(from)
        .get(hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} not in /metrics:\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

/// Frames each viewer receives over `window`, as a fraction of the camera's rate.
async fn rates(viewers: &[FrameCounter], window: Duration) -> Vec<f64> {
    let before: Vec<u64> = viewers.iter().map(FrameCounter::frames).collect();
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let elapsed = start.elapsed().as_secs_f64();
    viewers
        .iter()
        .zip(before)
        .map(|(v, b)| (v.frames() - b) as f64 / elapsed / FPS)
        .collect()
}

const LOCAL: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[tokio::test(flavor = "multi_thread")]
async fn past_the_per_address_limit_new_connections_are_refused_and_viewers_keep_their_rate() {
    const N: usize = 4;
    let hub = start(&config(&format!("max_connections_per_ip = {N}"))).await;
    let mut viewers = Vec::new();
    let mut early = 0;
    for _ in 0..N {
        let (v, refused) = viewer(&hub).await;
        viewers.push(v);
        early += refused;
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            viewers.iter().all(|v| v.frames() >= 3)
        })
        .await,
        "viewers did not start: {:?}",
        viewers.iter().map(FrameCounter::frames).collect::<Vec<_>>()
    );

    // One more from the same address is closed at once, with a 503 when it could be sent.
    for _ in 0..3 {
        let answer = refused_answer(&hub, LOCAL);
        if !answer.is_empty() {
            assert!(answer.contains("max_connections_per_ip"), "{answer}");
        }
    }
    // The viewers keep the camera's frame rate meanwhile (loosely: at least half of it).
    let during = rates(&viewers, Duration::from_secs(3)).await;
    assert!(during.iter().all(|r| *r >= 0.5), "rates {during:?}");
    assert!(viewers.iter().all(|v| v.error().is_none()));

    // Another address is another client: it gets in, and sees the refusals counted.
    let m = metrics_from(&hub, OTHER).await;
    assert_eq!(
        sample(
            &m,
            "camhub_connections_refused_total{reason=\"max_connections_per_ip\"}"
        ),
        f64::from(3 + early),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "camhub_connections_refused_total{reason=\"max_connections\"}"
        ),
        0.0
    );
    assert_eq!(sample(&m, "camhub_connections_open"), (N + 1) as f64, "{m}");

    // One viewer leaves: its place is free again.
    viewers.pop().unwrap().stop();
    let mut again = None;
    for _ in 0..100 {
        match MjpegReader::connect(&hub.url("/api/cameras/demo/stream.mjpeg?width=320")).await {
            Ok(r) => {
                again = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let mut again = again.expect("a new viewer is accepted after one left");
    again
        .next_frame_within(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        hub.log().contains("refusing connections from 127.0.0.1"),
        "{}",
        hub.log_tail(20)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_total_limit_every_address_is_refused() {
    let hub = start(&config("max_connections = 2")).await;
    let (first, early_first) = viewer(&hub).await;
    let (second, early_second) = viewer(&hub).await;
    let viewers = [first, second];
    refused_answer(&hub, LOCAL);
    let answer = refused_answer(&hub, OTHER);
    if !answer.is_empty() {
        assert!(answer.contains("max_connections"), "{answer}");
    }
    let during = rates(&viewers, Duration::from_secs(2)).await;
    assert!(during.iter().all(|r| *r >= 0.5), "rates {during:?}");
    drop(viewers);
    // Once the viewers' connections are closed, another client gets in.
    let mut m = None;
    let mut refusals = 0;
    for _ in 0..100 {
        match client_from(OTHER).get(hub.url("/metrics")).send().await {
            Ok(r) if r.status() == 200 => {
                m = Some(r.text().await.unwrap());
                break;
            }
            // Refused too (and counted) while the viewers' connections are still closing.
            _ => refusals += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = m.expect("/metrics answers once the viewers left");
    assert_eq!(
        sample(
            &m,
            "camhub_connections_refused_total{reason=\"max_connections\"}"
        ),
        f64::from(2 + refusals + early_first + early_second),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_viewer_limit_a_new_viewer_gets_503_naming_the_key() {
    let hub = start(&config("max_viewers_per_camera = 2")).await;
    let viewers = [viewer(&hub).await.0, viewer(&hub).await.0];
    for path in [
        "/api/cameras/demo/stream.mjpeg",
        "/api/cameras/demo/frame.jpeg?width=160",
    ] {
        let got = common::get(&hub.url(path)).await;
        assert_eq!(got.status, 503, "{path}: {}", got.text());
        let error = got.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.contains("camera \"demo\" already has 2 viewers")
                && error.contains("max_viewers_per_camera"),
            "{error}"
        );
    }
    // The camera's page and API still answer; the viewers keep streaming.
    assert_eq!(common::camera(&hub, "demo").await["viewers"], 2);
    let during = rates(&viewers, Duration::from_secs(2)).await;
    assert!(during.iter().all(|r| *r >= 0.5), "rates {during:?}");
    // A place freed is a place taken.
    drop(viewers);
    assert!(
        eventually(Duration::from_secs(10), || async {
            common::get(&hub.url("/api/cameras/demo/frame.jpeg?width=160"))
                .await
                .status
                == 200
        })
        .await
    );
}
