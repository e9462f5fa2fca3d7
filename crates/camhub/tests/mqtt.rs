//! `[mqtt]` end to end: the real binary publishing to a real `mosquitto` (Debian's `mosquitto`
//! package; each test starts its own on a free port with a config of its own), read by a
//! subscriber of our own (rumqttc). Motion comes from a synthetic scene camera that plays in real
//! time; everything is counted in messages and frames, with generous timeouts, never in
//! wall-clock speed.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use camhub_testkit::{Action, Camhub, Cue, MjpegReader, Scene};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::mpsc;

/// A mosquitto broker on 127.0.0.1, with the config lines given (listener, persistence off and
/// `allow_anonymous` unless the lines say otherwise). Stopped on drop.
struct Broker {
    port: u16,
    dir: tempfile::TempDir,
    extra: String,
    child: Option<Child>,
    runs: u32,
}

impl Broker {
    async fn start(extra: &str) -> Broker {
        let mut broker = Broker {
            port: camhub_testkit::free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: extra.to_owned(),
            child: None,
            runs: 0,
        };
        broker.start_again().await;
        broker
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the broker (again) on the same port, with nothing retained (persistence is off).
    async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the broker is running");
        self.runs += 1;
        let anonymous = if self.extra.contains("allow_anonymous") {
            ""
        } else {
            "allow_anonymous true\n"
        };
        let config = format!(
            "listener {} 127.0.0.1\npersistence false\n{anonymous}{}\n\
             # root (tests, CI) keeps root: the files here are readable by no one else\nuser root\n\
             log_dest stderr\nlog_type all\n",
            self.port, self.extra
        );
        let path = self.dir().join("mosquitto.conf");
        std::fs::write(&path, config).unwrap();
        let log =
            std::fs::File::create(self.dir().join(format!("mosquitto-{}.log", self.runs))).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("mosquitto must be installed (scripts/setup.sh test)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("mosquitto exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto does not listen on {}:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the broker (SIGTERM, then SIGKILL) and waits until it is gone.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The log of the broker's latest run.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join(format!("mosquitto-{}.log", self.runs)))
            .unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message a subscriber got.
#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    payload: String,
    /// Set by the broker on messages it held retained when the subscription was made.
    retain: bool,
}

impl Msg {
    fn json(&self) -> Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", self.topic, self.payload))
    }
}

/// A subscriber to `#` on a broker: every message, in order. [`Subscriber::next`] reads them as a
/// sequence (each call goes on after the message the last one returned); [`Subscriber::find`]
/// looks at everything received, in any order (the retained messages of a new subscription come
/// in the broker's order, not ours).
struct Subscriber {
    _client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    task: tokio::task::JoinHandle<()>,
    /// Everything received so far.
    all: Vec<Msg>,
    /// Where [`Subscriber::next`] goes on from.
    cursor: usize,
}

impl Subscriber {
    async fn connect(port: u16, login: Option<(&str, &str)>) -> Subscriber {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        let (client, mut events) = AsyncClient::new(options, 16);
        client.subscribe("#", QoS::AtLeastOnce).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let msg = Msg {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                        };
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        Subscriber {
            _client: client,
            rx,
            task,
            all: Vec::new(),
            cursor: 0,
        }
    }

    /// The first message from index `from` on that `want` accepts, waiting up to `limit` for it;
    /// panics with everything received, and `context`, when none comes.
    async fn wait(
        &mut self,
        from: usize,
        what: &str,
        limit: Duration,
        context: impl Fn() -> String,
        want: impl Fn(&Msg) -> bool,
    ) -> usize {
        if let Some(i) = (from..self.all.len()).find(|i| want(&self.all[*i])) {
            return i;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => {
                    self.all.push(m);
                    if want(&self.all[self.all.len() - 1]) {
                        return self.all.len() - 1;
                    }
                }
                _ => panic!(
                    "no {what} within {limit:?}; messages so far:\n{}\n{}",
                    self.all
                        .iter()
                        .map(|m| format!("  {} {} retain={}", m.topic, m.payload, m.retain))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    context()
                ),
            }
        }
    }

    /// The next message in sequence that `want` accepts (those before it are passed over).
    async fn next(
        &mut self,
        what: &str,
        limit: Duration,
        context: impl Fn() -> String,
        want: impl Fn(&Msg) -> bool,
    ) -> Msg {
        let i = self.wait(self.cursor, what, limit, context, want).await;
        self.cursor = i + 1;
        self.all[i].clone()
    }

    /// Any message received that `want` accepts, whenever it came (the sequence is not moved).
    async fn find(
        &mut self,
        what: &str,
        limit: Duration,
        context: impl Fn() -> String,
        want: impl Fn(&Msg) -> bool,
    ) -> Msg {
        let i = self.wait(0, what, limit, context, want).await;
        self.all[i].clone()
    }

    /// Takes in what has arrived by now, without waiting.
    fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.all.push(m);
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The retained messages of `topics` as a new subscriber gets them (each must be retained).
async fn retained(
    port: u16,
    topics: &[&str],
    context: impl Fn() -> String + Copy,
) -> BTreeMap<String, Msg> {
    let mut sub = Subscriber::connect(port, None).await;
    let mut got = BTreeMap::new();
    for topic in topics {
        let m = sub.find(topic, LONG, context, |m| m.topic == *topic).await;
        assert!(m.retain, "{topic} is not retained: {m:?}");
        got.insert((*topic).to_owned(), m);
    }
    got
}

/// A scene that loops every 10 s (250 frames at 25 fps): quiet noise, a dark object crossing from
/// frame 50 to 100, quiet again — with `end_after = "1s"` one event every loop.
fn looping_scene(dir: &Path) -> PathBuf {
    let scene = Scene {
        width: 640,
        height: 360,
        fps: 25,
        frames: 250,
        noise: 3.0,
        cues: vec![Cue {
            from: 50,
            to: 100,
            action: Action::Object {
                w: 128,
                h: 72,
                x0: 0,
                y0: 100,
                x1: 500,
                y1: 160,
            },
        }],
    };
    let path = dir.join("crossing.mp4");
    scene.render(&path);
    path
}

/// Counts the frames an MJPEG viewer gets from now on, in the background.
async fn viewer(hub: &Camhub, camera: &str) -> camhub_testkit::FrameCounter {
    MjpegReader::connect(&hub.url(&format!("/api/cameras/{camera}/stream.mjpeg?width=320")))
        .await
        .unwrap()
        .count_in_background()
}

/// Waits until `count()` passes `target`, or panics with `what` and the log.
async fn wait_count(
    hub: &Camhub,
    what: &str,
    limit: Duration,
    count: impl Fn() -> u64,
    target: u64,
) {
    let deadline = Instant::now() + limit;
    while count() < target {
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {target} within {limit:?}\n{}",
            count(),
            hub.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stored_events(hub: &Camhub, camera: &str) -> usize {
    let list = common::get(&hub.url(&format!("/api/events?camera={camera}")))
        .await
        .json();
    list["events"].as_array().map_or(0, Vec::len)
}

const LONG: Duration = Duration::from_secs(60);

/// Discovery, `online`, ON then OFF with the event documents; the broker goes away (viewers and
/// detection go on), comes back empty (everything retained is published again, the next event
/// arrives); a clean stop says `offline`, a killed camhub gets its Last Will.
#[tokio::test(flavor = "multi_thread")]
async fn motion_reaches_the_broker_and_survives_it_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let file = looping_scene(dir.path());
    let mut broker = Broker::start("").await;
    let config = format!(
        r#"
[server]
data_dir = "{data}"

[[camera]]
id = "yard"
name = "Back yard"
url = "ffmpeg:{file}"
loop_file = true
[camera.motion]
end_after = "1s"

[[camera]]
id = "plain"
url = "demo:?width=320&height=240&fps=5"

[mqtt]
url = "mqtt://127.0.0.1:{port}"
client_id = "camhub-test"
"#,
        data = dir.path().join("data").display(),
        file = file.display(),
        port = broker.port,
    );
    let mut hub = common::start(&config).await;
    let log = || hub.log_tail(40);

    // What camhub publishes at once: discovery, online, the state — retained (a subscriber that
    // comes later gets them from the broker).
    let mut sub = Subscriber::connect(broker.port, None).await;
    let topics = [
        "homeassistant/binary_sensor/camhub/yard/config",
        "camhub/status",
        "camhub/yard/motion",
    ];
    for topic in topics {
        sub.find(topic, LONG, log, |m| m.topic == topic).await;
    }
    let first = retained(broker.port, &topics, log).await;
    let c = first[topics[0]].json();
    for (key, want) in [
        ("name", "Motion"),
        ("unique_id", "camhub_yard_motion"),
        ("state_topic", "camhub/yard/motion"),
        ("payload_on", "ON"),
        ("payload_off", "OFF"),
        ("device_class", "motion"),
        ("availability_topic", "camhub/status"),
        ("payload_available", "online"),
        ("payload_not_available", "offline"),
    ] {
        assert_eq!(c[key], want, "{key} in {c}");
    }
    assert_eq!(c["device"]["identifiers"][0], "camhub_yard", "{c}");
    assert_eq!(c["device"]["name"], "Back yard", "{c}");
    assert_eq!(c["device"]["manufacturer"], "camhub", "{c}");
    assert!(
        c["device"]["model"].is_string() && c["device"]["sw_version"].is_string(),
        "{c}"
    );
    assert_eq!(first["camhub/status"].payload, "online");
    let state = &first["camhub/yard/motion"].payload;
    assert!(["ON", "OFF"].contains(&state.as_str()), "{state}");

    // An event: its start document, ON, its end document, OFF — in that order.
    let start = sub
        .next("an event start", LONG, log, |m| {
            m.topic == "camhub/yard/event" && m.json()["type"] == "start"
        })
        .await;
    assert!(!start.retain);
    let s = start.json();
    assert_eq!(s["camera"], "yard");
    assert!(s["id"].is_i64(), "stored, so it has an id: {s}");
    assert!(s["start"].is_string() && s["start_ms"].is_u64(), "{s}");
    assert!(s["end"].is_null() && s["end_ms"].is_null(), "{s}");
    assert!(
        s["media_start_ms"].is_i64() && s["media_at_ms"].is_i64(),
        "{s}"
    );
    assert!(s["peak_score"].as_f64().unwrap() > 0.0, "{s}");
    assert_eq!(s["box"].as_array().map(Vec::len), Some(4), "{s}");
    let on = sub
        .next("ON", LONG, log, |m| m.topic == "camhub/yard/motion")
        .await;
    assert_eq!(on.payload, "ON");
    let end = sub
        .next("the event's end", LONG, log, |m| {
            m.topic.ends_with("/event")
        })
        .await;
    let e = end.json();
    assert_eq!(
        (e["type"].as_str(), &e["id"]),
        (Some("end"), &s["id"]),
        "{e}"
    );
    assert!(
        e["end_ms"].as_u64().unwrap() >= e["start_ms"].as_u64().unwrap(),
        "{e}"
    );
    let off = sub
        .next("OFF", LONG, log, |m| m.topic == "camhub/yard/motion")
        .await;
    assert_eq!(off.payload, "OFF");
    // The camera without motion has no topics at all.
    sub.drain();
    assert!(
        !sub.all.iter().any(|m| m.topic.contains("/plain/")),
        "{:?}",
        sub.all
    );
    drop(sub);

    // The broker goes away: a viewer keeps getting frames, detection goes on (another event is
    // stored), camhub keeps serving.
    let frames = viewer(&hub, "yard").await;
    wait_count(
        &hub,
        "frames before the broker stops",
        LONG,
        || frames.frames(),
        10,
    )
    .await;
    let events_before = stored_events(&hub, "yard").await;
    let analysed = common::metric(&hub, "camhub_motion_frames_total", "yard").await;
    broker.stop();
    let at_stop = frames.frames();
    wait_count(
        &hub,
        "frames while the broker is away",
        LONG,
        || frames.frames(),
        at_stop + 100,
    )
    .await;
    let stored = common::eventually(LONG, || async {
        stored_events(&hub, "yard").await > events_before
    })
    .await;
    assert!(
        stored,
        "no event stored while the broker was away\n{}",
        log()
    );
    assert!(common::metric(&hub, "camhub_motion_frames_total", "yard").await > analysed + 50.0);
    assert_eq!(common::get(&hub.url("/healthz")).await.status, 200);
    assert!(frames.error().is_none(), "{:?}", frames.error());

    // Back, empty (no persistence): camhub publishes it all again once it has reconnected (a
    // subscriber that was there first gets it live), retained (a later one gets it from the
    // broker), and the next event arrives.
    broker.start_again().await;
    let mut sub = Subscriber::connect(broker.port, None).await;
    for topic in topics {
        sub.find(topic, LONG, log, |m| m.topic == topic).await;
    }
    let again = retained(broker.port, &topics, log).await;
    assert_eq!(again[topics[0]].payload, first[topics[0]].payload);
    assert_eq!(again["camhub/status"].payload, "online");
    assert!(["ON", "OFF"].contains(&again["camhub/yard/motion"].payload.as_str()));
    let s = sub
        .next("the next event start", LONG, log, |m| {
            m.topic == "camhub/yard/event" && m.json()["type"] == "start"
        })
        .await
        .json();
    sub.next("ON after the restart", LONG, log, |m| {
        m.topic == "camhub/yard/motion" && m.payload == "ON"
    })
    .await;
    let e = sub
        .next("the next event end", LONG, log, |m| {
            m.topic == "camhub/yard/event" && m.json()["type"] == "end"
        })
        .await
        .json();
    assert_eq!(e["id"], s["id"]);
    sub.next("OFF after the restart", LONG, log, |m| {
        m.topic == "camhub/yard/motion" && m.payload == "OFF"
    })
    .await;
    assert!(frames.frames() > at_stop + 100);
    frames.stop();

    // A clean stop says goodbye.
    let status = hub.terminate().await;
    assert!(status.is_some_and(|s| s.success()), "{}", hub.log_tail(30));
    sub.next(
        "offline at a clean stop",
        LONG,
        || hub.log_tail(30),
        |m| m.topic == "camhub/status" && m.payload == "offline",
    )
    .await;
    let log = hub.log();
    assert!(
        log.contains("connected to the broker mqtt://127.0.0.1"),
        "{log}"
    );

    // A killed camhub: the broker sends its Last Will.
    let hub = common::start(&config).await;
    sub.next(
        "online after a start",
        LONG,
        || hub.log_tail(30),
        |m| m.topic == "camhub/status" && m.payload == "online",
    )
    .await;
    let killed = Command::new("kill")
        .arg("-KILL")
        .arg(hub.pid().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    sub.next(
        "the Last Will",
        LONG,
        || broker.log(),
        |m| m.topic == "camhub/status" && m.payload == "offline",
    )
    .await;
}

/// A camera taken out by a reload loses its discovery config and its retained state; one added
/// gets them.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_adds_and_removes_sensors() {
    let broker = Broker::start("").await;
    let camera = |id: &str| {
        format!("[[camera]]\nid = \"{id}\"\nurl = \"demo:?width=320&height=240&fps=5\"\n[camera.motion]\n")
    };
    let mqtt = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\ntopic_prefix = \"home/cams\"\nnode_id = \"house\"\ndiscovery_prefix = \"ha\"\n",
        broker.port
    );
    let dir = tempfile::tempdir().unwrap();
    let data = format!(
        "[server]\ndata_dir = \"{}\"\n",
        dir.path().join("data").display()
    );
    let hub = common::start(&format!("{data}{mqtt}{}{}", camera("one"), camera("two"))).await;
    let log = || hub.log_tail(30);
    let mut sub = Subscriber::connect(broker.port, None).await;
    for id in ["one", "two"] {
        let topic = format!("ha/binary_sensor/house/{id}/config");
        let d = sub.find(&topic, LONG, log, |m| m.topic == topic).await;
        assert_eq!(d.json()["state_topic"], format!("home/cams/{id}/motion"));
        assert_eq!(d.json()["availability_topic"], "home/cams/status");
        assert_eq!(d.json()["unique_id"], format!("house_{id}_motion"));
    }
    sub.find("two's state", LONG, log, |m| {
        m.topic == "home/cams/two/motion"
    })
    .await;

    // two goes, three comes.
    std::fs::write(
        hub.config_path(),
        camhub_testkit::rewrite_listen(
            &format!("{data}{mqtt}{}{}", camera("one"), camera("three")),
            hub.port(),
        ),
    )
    .unwrap();
    let reloaded = reqwest::Client::new()
        .post(hub.url("/api/config/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200, "{}", reloaded.text().await.unwrap());
    sub.next("two's discovery removed", LONG, log, |m| {
        m.topic == "ha/binary_sensor/house/two/config" && m.payload.is_empty()
    })
    .await;
    sub.next("three's discovery", LONG, log, |m| {
        m.topic == "ha/binary_sensor/house/three/config" && !m.payload.is_empty()
    })
    .await;
    // A new subscriber finds two gone: nothing retained for it any more.
    let mut fresh = Subscriber::connect(broker.port, None).await;
    fresh
        .find("three's state", LONG, log, |m| {
            m.topic == "home/cams/three/motion"
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    fresh.drain();
    assert!(
        !fresh.all.iter().any(|m| m.topic.contains("/two/")),
        "{:?}",
        fresh.all
    );
}

/// A broker that refuses camhub's password, or none at all: camhub starts and serves as ever,
/// says why in the log, and the password is nowhere in it. The right password connects.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_or_no_broker_never_stops_camhub() {
    let password = "Wr0ng-pass-4711";
    let files = tempfile::tempdir().unwrap();
    let users = files.path().join("passwd");
    let made = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&users)
        .args(["camhub", "right-pass-0815"])
        .status()
        .expect("mosquitto_passwd (package mosquitto)");
    assert!(made.success());
    let broker = Broker::start(&format!(
        "allow_anonymous false\npassword_file {}\n",
        users.display()
    ))
    .await;

    let camera =
        "[[camera]]\nid = \"cam\"\nurl = \"demo:?width=320&height=240&fps=10\"\n[camera.motion]\n";
    let dir = tempfile::tempdir().unwrap();
    let data = format!(
        "[server]\ndata_dir = \"{}\"\n",
        dir.path().join("data").display()
    );
    let wrong = format!(
        "{data}{camera}[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nusername = \"camhub\"\npassword = \"{password}\"\n",
        broker.port
    );
    let nobody = format!(
        "{data}{camera}[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nusername = \"camhub\"\npassword = \"{password}\"\n",
        camhub_testkit::free_port()
    );
    for (config, why) in [
        (&wrong, "refused the user name or password"),
        (&nobody, "connection refused"),
    ] {
        let mut hub = common::start(config).await;
        let mut reader = MjpegReader::connect(&hub.url("/api/cameras/cam/stream.mjpeg"))
            .await
            .unwrap();
        for _ in 0..10 {
            reader
                .next_frame_within(Duration::from_secs(30))
                .await
                .unwrap();
        }
        let said = common::eventually(LONG, || async { hub.log().contains(why) }).await;
        assert!(said, "the log does not say \"{why}\":\n{}", hub.log());
        assert_eq!(common::get(&hub.url("/api/cameras")).await.status, 200);
        // Stopping does not wait for a broker that is not there.
        let status = hub.terminate().await;
        assert!(status.is_some_and(|s| s.success()), "{}", hub.log_tail(20));
        let log = hub.log();
        assert!(
            !log.contains(password),
            "the password is in the log:\n{log}"
        );
        assert!(!log.contains("4711"), "{log}");
    }

    // The right one connects and publishes.
    let right = wrong.replace(password, "right-pass-0815");
    let hub = common::start(&right).await;
    let mut sub = Subscriber::connect(broker.port, Some(("camhub", "right-pass-0815"))).await;
    sub.next(
        "online",
        LONG,
        || hub.log_tail(20),
        |m| m.topic == "camhub/status" && m.payload == "online",
    )
    .await;
}

/// `mqtts://` with a CA of our own in `ca_file`; without it (the built-in roots only) the
/// broker's certificate is refused.
#[tokio::test(flavor = "multi_thread")]
async fn mqtts_checks_the_broker_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let files = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let write = |name: &str, text: String| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_file = write("ca.pem", ca.pem());
    let cert_file = write("cert.pem", cert.pem());
    let key_file = write("key.pem", key.serialize_pem());
    let broker = Broker::start(&format!(
        "certfile {}\nkeyfile {}\n",
        cert_file.display(),
        key_file.display()
    ))
    .await;
    let camera =
        "[[camera]]\nid = \"cam\"\nurl = \"demo:?width=320&height=240&fps=5\"\n[camera.motion]\n";
    let dir = tempfile::tempdir().unwrap();
    let data = format!(
        "[server]\ndata_dir = \"{}\"\n",
        dir.path().join("data").display()
    );
    let mqtt = format!("[mqtt]\nurl = \"mqtts://127.0.0.1:{}\"\n", broker.port);

    // Without ca_file: refused, and camhub serves on.
    let hub = common::start(&format!("{data}{camera}{mqtt}")).await;
    let refused = common::eventually(LONG, || async {
        let log = hub.log();
        log.contains("broker mqtts://127.0.0.1") && log.contains("certificate")
    })
    .await;
    assert!(refused, "{}", hub.log());
    assert!(
        !hub.log().contains("connected to the broker"),
        "{}",
        hub.log()
    );
    drop(hub);

    // With it: connected.
    let hub = common::start(&format!(
        "{data}{camera}{mqtt}ca_file = \"{}\"\n",
        ca_file.display()
    ))
    .await;
    let connected = common::eventually(LONG, || async {
        hub.log()
            .contains("connected to the broker mqtts://127.0.0.1")
    })
    .await;
    assert!(connected, "{}\nbroker:\n{}", hub.log(), broker.log());
}
