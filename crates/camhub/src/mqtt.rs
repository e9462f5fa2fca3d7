//! `[mqtt]`: each camera's motion published to an MQTT broker, for Home Assistant and scripts.
//!
//! Topics (`P` is `topic_prefix`, `D` `discovery_prefix`, `N` `node_id`, `CAM` a camera id):
//! - `P/status` — `online` once connected, `offline` at a clean shutdown and as the Last Will
//!   (retained);
//! - `P/CAM/motion` — `ON` / `OFF` (retained), for each camera with `[camera.motion] enabled`;
//! - `P/CAM/event` — a JSON document when an event starts and when it ends (not retained): the
//!   per-camera WebSocket's event fields plus `camera` and `type` (`start` / `end`);
//! - `D/binary_sensor/N/CAM/config` — Home Assistant's MQTT discovery (retained), one motion
//!   sensor per camera; a camera taken out by a reload gets an empty retained config (HA removes
//!   the sensor).
//!
//! Two tasks: `mqtt/connection` drives the client's event loop (connect, reconnect with capped
//! back-off), `mqtt` follows the hub's cameras (it re-lists them every second, so cameras a
//! reload added, replaced or removed are picked up) and watches each one's
//! [`MotionState`](crate::hub::motion::MotionState). A broker that is down, slow or gone never
//! holds anything up: messages go into the client's bounded queue with `try_publish`, and one
//! that does not fit, or that would be sent while there is no connection, is dropped and counted
//! ([`MqttStats::dropped`], and a debug line). What matters survives: on every (re)connection
//! discovery, `online` and each camera's current state are published again, so the retained
//! state is right whatever happened while the broker was away. Events that happened meanwhile
//! are not replayed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use camhub_media::backoff::Backoff;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn, Instrument};

use crate::hub::motion::{EventInfo, MotionState};
use crate::hub::{Camera, Hub};

/// Messages the client's queue holds at most (a full one drops, never waits). Enough for a full
/// republish of dozens of cameras.
const QUEUE: usize = 256;
/// How often the camera list is looked at again (reloads), and what could not be queued is tried
/// again.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// Reconnect back-off: from 1 s, doubling, at most 30 s (±50 % jitter).
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that lasted this long resets the back-off (and the log's memory of failures).
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Keep-alive: a broker that vanished without closing the connection is noticed within about
/// twice this; the broker sends the Last Will after 1.5 times it without a word from camhub.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Connect (TCP, TLS and CONNACK) and flush timeout, in seconds.
const CONNECT_TIMEOUT_S: u64 = 5;
const ONLINE: &str = "online";
const OFFLINE: &str = "offline";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Counters of the publisher, for logs and `/metrics`.
#[derive(Debug, Default)]
pub struct MqttStats {
    /// Connected to the broker now.
    pub connected: AtomicBool,
    /// Successful connections so far (the first one included).
    pub connections: AtomicU64,
    /// Messages handed to the client's queue.
    pub published: AtomicU64,
    /// Messages dropped: the queue was full, or there was no connection to send them on.
    pub dropped: AtomicU64,
}

/// The running publisher; [`Publisher::shutdown`] says goodbye to the broker.
pub struct Publisher {
    stats: Arc<MqttStats>,
    stop: watch::Sender<bool>,
    publisher: JoinHandle<()>,
    connection: JoinHandle<()>,
}

/// The connection as the publisher sees it: up or not, and which connection (each successful
/// connect counts one up, so the publisher republishes once per connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Link {
    up: bool,
    generation: u64,
}

/// The topics of one config.
#[derive(Debug, Clone)]
struct Topics {
    prefix: String,
    discovery: Option<(String, String)>,
}

impl Topics {
    fn new(config: &camhub_config::Mqtt) -> Topics {
        Topics {
            prefix: config.topic_prefix.clone(),
            discovery: config
                .discovery
                .then(|| (config.discovery_prefix.clone(), config.node_id.clone())),
        }
    }

    fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    fn motion(&self, camera: &str) -> String {
        format!("{}/{camera}/motion", self.prefix)
    }

    fn event(&self, camera: &str) -> String {
        format!("{}/{camera}/event", self.prefix)
    }

    /// `D/binary_sensor/N/CAM/config`, when discovery is on.
    fn discovery(&self, camera: &str) -> Option<String> {
        self.discovery
            .as_ref()
            .map(|(prefix, node)| format!("{prefix}/binary_sensor/{node}/{camera}/config"))
    }
}

impl Publisher {
    /// Starts publishing the motion of `hub`'s cameras as `config` says. Call inside the tokio
    /// runtime. Fails only for what the config names on this machine (an unreadable or empty
    /// `ca_file`); a broker that cannot be reached is retried in the background.
    pub fn start(config: &camhub_config::Mqtt, hub: Arc<Hub>) -> Result<Publisher, String> {
        let client_id = config.client_id.clone().unwrap_or_else(default_client_id);
        // rumqttc joins host and port as "host:port": an IPv6 address needs its brackets.
        let host = if config.host.contains(':') {
            format!("[{}]", config.host)
        } else {
            config.host.clone()
        };
        let topics = Topics::new(config);
        let mut options = MqttOptions::new(client_id.clone(), host, config.port);
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(256 * 1024, 64 * 1024)
            .set_last_will(LastWill::new(
                topics.status(),
                OFFLINE,
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(user) = &config.username {
            options.set_credentials(user.clone(), config.password.clone().unwrap_or_default());
        }
        if config.tls {
            let tls = tls_config(config.ca_file.as_deref())?;
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
        }
        let (client, mut events) = AsyncClient::new(options, QUEUE);
        let mut network = events.network_options();
        network.set_connection_timeout(CONNECT_TIMEOUT_S);
        events.set_network_options(network);

        let stats = Arc::new(MqttStats::default());
        let (stop, stop_rx) = watch::channel(false);
        let (link_tx, link_rx) = watch::channel(Link::default());
        let span = tracing::info_span!("mqtt");
        span.in_scope(|| {
            info!(
                "publishing motion to the broker {} as client id \"{client_id}\"",
                config.url
            );
        });
        let connection = tokio::spawn(
            drive(
                events,
                config.url.clone(),
                link_tx,
                stop_rx.clone(),
                stats.clone(),
            )
            .instrument(span.clone()),
        );
        let state = State {
            client,
            topics,
            hub,
            stats: stats.clone(),
            link: Link::default(),
            online_sent: false,
            cameras: BTreeMap::new(),
            forget: BTreeSet::new(),
        };
        let publisher = tokio::spawn(state.run(link_rx, stop_rx).instrument(span));
        Ok(Publisher {
            stats,
            stop,
            publisher,
            connection,
        })
    }

    /// The publisher's counters.
    pub fn stats(&self) -> Arc<MqttStats> {
        self.stats.clone()
    }

    /// Publishes `offline` (retained) and disconnects cleanly, waiting at most `limit` for the
    /// broker; without a connection it just stops.
    pub async fn shutdown(self, limit: Duration) {
        let _ = self.stop.send(true);
        let _ = self.publisher.await;
        let abort = self.connection.abort_handle();
        if tokio::time::timeout(limit, self.connection).await.is_err() {
            abort.abort();
            debug!("mqtt: the broker did not take the goodbye within {limit:?}");
        }
    }
}

/// `camhub-HOSTNAME` (the host name cut to letters, digits, `-`, `_` and `.`), or `camhub`.
fn default_client_id() -> String {
    let name = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    client_id_for(&name)
}

fn client_id_for(hostname: &str) -> String {
    let host: String = hostname
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    if host.is_empty() {
        "camhub".to_owned()
    } else {
        format!("camhub-{host}")
    }
}

/// The TLS settings of `mqtts://`: ring (the provider the rest of camhub uses), the broker's
/// certificate checked against `ca_file`'s certificates or, without one, Mozilla's roots (built
/// in, like those of `https://` cameras).
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "[mqtt] ca_file {}: {e} — name a readable PEM file with the certificate of \
                     the CA that signed the broker's",
                    path.display()
                )
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    format!("[mqtt] ca_file {} is not valid PEM ({e})", path.display())
                })?;
                roots.add(cert).map_err(|e| {
                    format!(
                        "[mqtt] ca_file {} holds a certificate rustls cannot use ({e})",
                        path.display()
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "[mqtt] ca_file {} has no certificate — it must be PEM text with \
                     -----BEGIN CERTIFICATE----- blocks",
                    path.display()
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS for [mqtt]: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The connection task: polls the client's event loop, which connects, sends what was queued and
/// keeps the connection alive; after a failure it waits (capped back-off) and polls again, which
/// reconnects. Ends after the clean disconnect of a shutdown, or at shutdown without a connection.
async fn drive(
    mut events: EventLoop,
    url: String,
    link: watch::Sender<Link>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<MqttStats>,
) {
    let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
    // The last failure logged at warn, so a broker that stays away is one line, not one a minute.
    let mut last_logged: Option<String> = None;
    // When the connection came up: one that drops soon after (a broker that kicks camhub out at
    // once, another client with the same id) keeps backing off and is not logged again.
    let mut up_since: Option<tokio::time::Instant> = None;
    // The last connection dropped before STABLE_AFTER, and nothing else failed since.
    let mut flapping = false;
    loop {
        let up = link.borrow().up;
        let polled = tokio::select! {
            polled = events.poll() => polled,
            // Only while not connected: a connected loop runs until the goodbye is sent.
            _ = stop.wait_for(|s| *s), if !up => return,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                up_since = Some(tokio::time::Instant::now());
                let generation = stats.connections.fetch_add(1, Ordering::SeqCst) + 1;
                stats.connected.store(true, Ordering::SeqCst);
                if !flapping {
                    info!("connected to the broker {url}");
                } else {
                    debug!("connected to the broker {url}");
                }
                link.send_replace(Link {
                    up: true,
                    generation,
                });
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                stats.connected.store(false, Ordering::SeqCst);
                link.send_modify(|l| l.up = false);
                debug!("disconnected from the broker");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let was_up = link.borrow().up;
                stats.connected.store(false, Ordering::SeqCst);
                link.send_modify(|l| l.up = false);
                if *stop.borrow() {
                    return;
                }
                match up_since.take() {
                    Some(t) if t.elapsed() >= STABLE_AFTER => {
                        backoff.reset();
                        last_logged = None;
                        flapping = false;
                    }
                    Some(_) => flapping = true,
                    None => flapping = false,
                }
                let delay = backoff.next_delay(rand::random::<f64>());
                let what = describe(&e, was_up);
                let message = format!(
                    "broker {url}: {what}; retrying in {:.0}s",
                    delay.as_secs_f64().max(1.0)
                );
                if last_logged.as_deref() == Some(what.as_str()) {
                    debug!("{message}");
                } else {
                    warn!("{message}");
                    last_logged = Some(what);
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    }
}

/// A connection failure in words for the log (rumqttc's own are terse); never holds a credential
/// (the client's errors do not carry them, and the log scrubs the password anyway).
fn describe(e: &ConnectionError, was_up: bool) -> String {
    let lost = if was_up { "connection lost: " } else { "" };
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => "the broker refused the user name or password (check [mqtt] username and password)"
            .to_owned(),
        ConnectionError::ConnectionRefused(ConnectReturnCode::BadClientId) => {
            "the broker refused the client id (set [mqtt] client_id)".to_owned()
        }
        ConnectionError::ConnectionRefused(code) => format!("the broker refused: {code:?}"),
        ConnectionError::NetworkTimeout => {
            "no answer from the broker (connect timed out)".to_owned()
        }
        ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is the broker running, on this port?)".to_owned()
        }
        other => format!("{lost}{other}"),
    }
}

/// One camera the publisher follows.
struct Tracked {
    /// Kept so that the camera's motion state stays subscribable (and its sender alive).
    cam: Arc<Camera>,
    rx: watch::Receiver<MotionState>,
    starts_seen: u64,
    active_seen: bool,
    /// The state queued for the broker on this connection (None: nothing yet, or a failed try).
    sent_active: Option<bool>,
    /// The camera name whose discovery config was queued on this connection.
    announced: Option<String>,
}

/// The publisher task's state.
struct State {
    client: AsyncClient,
    topics: Topics,
    hub: Arc<Hub>,
    stats: Arc<MqttStats>,
    link: Link,
    /// `online` was queued on this connection.
    online_sent: bool,
    /// Cameras with motion enabled, by id.
    cameras: BTreeMap<String, Tracked>,
    /// Cameras taken out while there was no connection: their retained topics are cleared at the
    /// next one.
    forget: BTreeSet<String>,
}

/// What woke the publisher.
enum Wake {
    Motion,
    Link(Option<Link>),
    Tick,
    Stop,
}

impl State {
    async fn run(mut self, mut link: watch::Receiver<Link>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = tokio::select! {
                () = any_changed(&mut self.cameras) => Wake::Motion,
                r = link.changed() => Wake::Link(r.ok().map(|()| *link.borrow_and_update())),
                _ = tick.tick() => Wake::Tick,
                _ = stop.wait_for(|s| *s) => Wake::Stop,
            };
            match wake {
                Wake::Stop => {
                    self.goodbye();
                    return;
                }
                Wake::Link(None) => return,
                Wake::Link(Some(l)) => {
                    if l.up && l.generation != self.link.generation {
                        // A new connection (clean session): the broker has nothing of ours.
                        self.online_sent = false;
                        for t in self.cameras.values_mut() {
                            t.sent_active = None;
                            t.announced = None;
                        }
                    }
                    self.link = l;
                }
                Wake::Tick => self.follow_cameras(),
                Wake::Motion => {}
            }
            self.sync();
        }
    }

    /// Takes up the hub's current cameras with motion enabled: new ones and ones a reload
    /// replaced (a new `Camera`) are subscribed to; removed ones are forgotten (their retained
    /// topics cleared).
    fn follow_cameras(&mut self) {
        let now: BTreeMap<String, Arc<Camera>> = self
            .hub
            .cameras()
            .into_iter()
            .filter(|c| c.motion.enabled())
            .map(|c| (c.id().to_owned(), c))
            .collect();
        let gone: Vec<String> = self
            .cameras
            .keys()
            .filter(|id| !now.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            self.cameras.remove(&id);
            debug!(camera = %id, "camera taken out: its topics are cleared");
            self.forget.insert(id);
        }
        for (id, cam) in now {
            self.forget.remove(&id);
            match self.cameras.get_mut(&id) {
                Some(t) if Arc::ptr_eq(&t.cam, &cam) => {}
                Some(t) => {
                    // Replaced by a reload: the new camera's state, compared with what the broker
                    // was told (its detector starts without an event).
                    let mut rx = cam.motion.state.subscribe();
                    let m = rx.borrow_and_update().clone();
                    t.cam = cam;
                    t.rx = rx;
                    t.starts_seen = m.starts;
                    t.active_seen = m.active;
                    t.announced = None;
                }
                None => {
                    let mut rx = cam.motion.state.subscribe();
                    let m = rx.borrow_and_update().clone();
                    self.cameras.insert(
                        id,
                        Tracked {
                            cam,
                            rx,
                            starts_seen: m.starts,
                            active_seen: m.active,
                            sent_active: None,
                            announced: None,
                        },
                    );
                }
            }
        }
    }

    /// Publishes what changed, and (on a connection) whatever the broker has not been given yet:
    /// `online`, removals, discovery configs, states.
    fn sync(&mut self) {
        let up = self.link.up;
        if up && !self.online_sent {
            self.online_sent = self.publish(&self.topics.status(), true, ONLINE.into());
        }
        if up {
            let forget = std::mem::take(&mut self.forget);
            for id in forget {
                let mut ok = true;
                if let Some(topic) = self.topics.discovery(&id) {
                    ok &= self.publish(&topic, true, Vec::new());
                }
                ok &= self.publish(&self.topics.motion(&id), true, Vec::new());
                if !ok {
                    self.forget.insert(id);
                }
            }
        }
        let ids: Vec<String> = self.cameras.keys().cloned().collect();
        for id in ids {
            self.sync_camera(&id, up);
        }
    }

    fn sync_camera(&mut self, id: &str, up: bool) {
        let Some(t) = self.cameras.get_mut(id) else {
            return;
        };
        let m = t.rx.borrow_and_update().clone();
        let name = t.cam.config.name.clone();
        // The event documents this change calls for, in order: a start (with ON), an end (with
        // OFF). A start and its end between two looks still give both.
        let mut docs: Vec<(&str, EventInfo)> = Vec::new();
        if let Some(e) = &m.event {
            if m.starts > t.starts_seen {
                let at_start = EventInfo {
                    end_ms: None,
                    ..e.clone()
                };
                docs.push(("start", at_start));
                if !m.active {
                    docs.push(("end", e.clone()));
                }
            } else if t.active_seen && !m.active {
                docs.push(("end", e.clone()));
            }
        }
        t.starts_seen = m.starts;
        t.active_seen = m.active;
        let announced = t.announced.clone();
        let sent_active = t.sent_active;
        if !up {
            if !docs.is_empty() {
                self.stats
                    .dropped
                    .fetch_add(docs.len() as u64, Ordering::Relaxed);
                debug!(camera = %id, "no connection to the broker: motion event not sent (the state follows at the next connection)");
            }
            return;
        }
        let mut announced_now = announced.clone();
        if let Some(topic) = self.topics.discovery(id) {
            if announced.as_deref() != Some(name.as_str()) {
                let config = discovery_config(&self.topics, id, &name);
                announced_now = self
                    .publish(&topic, true, config.to_string().into_bytes())
                    .then_some(name);
            }
        }
        let mut sent = sent_active;
        for (kind, event) in &docs {
            let doc = event_document(id, kind, event);
            self.publish(&self.topics.event(id), false, doc.to_string().into_bytes());
            let on = *kind == "start";
            sent = self
                .publish(&self.topics.motion(id), true, on_off(on).into())
                .then_some(on);
        }
        if sent != Some(m.active) {
            sent = self
                .publish(&self.topics.motion(id), true, on_off(m.active).into())
                .then_some(m.active);
        }
        if let Some(t) = self.cameras.get_mut(id) {
            t.announced = announced_now;
            t.sent_active = sent;
        }
    }

    /// Queues one message (QoS 1); false, counted and logged at debug, when the queue is full.
    fn publish(&self, topic: &str, retain: bool, payload: Vec<u8>) -> bool {
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            Ok(()) => {
                self.stats.published.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                debug!("queue full: {topic} dropped (what is retained is sent again)");
                false
            }
        }
    }

    /// At shutdown, on a connection: `offline` (retained; a clean disconnect sends no Last Will)
    /// and the disconnect.
    fn goodbye(&self) {
        if self.link.up {
            self.publish(&self.topics.status(), true, OFFLINE.into());
            let _ = self.client.try_disconnect();
        }
    }
}

/// Resolves when any followed camera's motion state changed; never when there are none.
async fn any_changed(cameras: &mut BTreeMap<String, Tracked>) {
    if cameras.is_empty() {
        return std::future::pending().await;
    }
    // A closed channel (never while the Camera is held) is taken as a change: the next look
    // drops the camera.
    let _ =
        futures::future::select_all(cameras.values_mut().map(|t| Box::pin(t.rx.changed()))).await;
}

fn on_off(on: bool) -> &'static str {
    if on {
        "ON"
    } else {
        "OFF"
    }
}

/// The event document of `P/CAM/event`: the per-camera WebSocket's event fields (see
/// `docs/api.md`), with `camera` and `type`.
fn event_document(camera: &str, kind: &str, e: &EventInfo) -> Value {
    let mut doc = e.to_json();
    if let Some(fields) = doc.as_object_mut() {
        fields.insert("type".into(), Value::from(kind));
        fields.insert("camera".into(), Value::from(camera));
    }
    doc
}

/// Home Assistant's discovery config of a camera's motion sensor: the entity is "NAME Motion",
/// on a device of its own per camera.
fn discovery_config(topics: &Topics, camera: &str, name: &str) -> Value {
    let node = topics.discovery.as_ref().map_or("camhub", |(_, n)| n);
    json!({
        "name": "Motion",
        "unique_id": format!("{node}_{camera}_motion"),
        "state_topic": topics.motion(camera),
        "payload_on": "ON",
        "payload_off": "OFF",
        "device_class": "motion",
        "availability_topic": topics.status(),
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "json_attributes_topic": topics.event(camera),
        "qos": 1,
        "device": {
            "identifiers": [format!("{node}_{camera}")],
            "name": name,
            "manufacturer": "camhub",
            "model": "camhub camera",
            "sw_version": VERSION,
        },
        "origin": {
            "name": "camhub",
            "sw_version": VERSION,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use camhub_media::motion::Rect;

    fn config(text: &str) -> camhub_config::Mqtt {
        camhub_config::parse(&format!("[mqtt]\n{text}\n"), "c.toml")
            .unwrap()
            .mqtt
            .unwrap()
    }

    #[test]
    fn topics_follow_the_prefixes() {
        let t = Topics::new(&config("url = \"mqtt://h\""));
        assert_eq!(t.status(), "camhub/status");
        assert_eq!(t.motion("door"), "camhub/door/motion");
        assert_eq!(t.event("door"), "camhub/door/event");
        assert_eq!(
            t.discovery("door").as_deref(),
            Some("homeassistant/binary_sensor/camhub/door/config")
        );
        let t = Topics::new(&config(
            "url = \"mqtt://h\"\ntopic_prefix = \"home/cams\"\ndiscovery_prefix = \"ha\"\nnode_id = \"garage\"",
        ));
        assert_eq!(t.motion("door"), "home/cams/door/motion");
        assert_eq!(
            t.discovery("door").as_deref(),
            Some("ha/binary_sensor/garage/door/config")
        );
        let t = Topics::new(&config("url = \"mqtt://h\"\ndiscovery = false"));
        assert_eq!(t.discovery("door"), None);
    }

    #[test]
    fn discovery_names_a_motion_sensor_on_the_camera_device() {
        let t = Topics::new(&config("url = \"mqtt://h\"\nnode_id = \"n1\""));
        let c = discovery_config(&t, "door", "Front door");
        assert_eq!(c["unique_id"], "n1_door_motion");
        assert_eq!(c["device_class"], "motion");
        assert_eq!(c["state_topic"], "camhub/door/motion");
        assert_eq!(c["availability_topic"], "camhub/status");
        assert_eq!(c["payload_not_available"], "offline");
        assert_eq!(c["device"]["identifiers"][0], "n1_door");
        assert_eq!(c["device"]["name"], "Front door");
        assert_eq!(c["device"]["sw_version"], VERSION);
    }

    #[test]
    fn the_event_document_is_the_websockets_event_with_camera_and_type() {
        let e = EventInfo {
            id: Some(7),
            start_ms: 1_700_000_000_000,
            end_ms: Some(1_700_000_012_500),
            media_start_ms: 4000,
            media_at_ms: 16500,
            peak_score: 3.5,
            peak_box: Some(Rect {
                x: 0.25,
                y: 0.5,
                w: 0.125,
                h: 0.25,
            }),
        };
        let mut doc = event_document("door", "end", &e);
        assert_eq!(doc["type"], "end");
        assert_eq!(doc["camera"], "door");
        let map = doc.as_object_mut().unwrap();
        map.remove("type");
        map.remove("camera");
        assert_eq!(doc, e.to_json());
    }

    #[test]
    fn client_ids_from_host_names() {
        assert_eq!(client_id_for("nvr-01\n"), "camhub-nvr-01");
        assert_eq!(client_id_for("büro pc"), "camhub-bropc");
        assert_eq!(client_id_for(""), "camhub");
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let e = tls_config(Some(&empty)).unwrap_err();
        assert!(e.contains("has no certificate"), "{e}");
        let e = tls_config(Some(&dir.path().join("missing.pem"))).unwrap_err();
        assert!(
            e.contains("missing.pem") && e.contains("readable PEM"),
            "{e}"
        );
        let made = rcgen::generate_simple_self_signed(vec!["broker.lan".into()]).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, made.cert.pem()).unwrap();
        assert!(tls_config(Some(&ca)).is_ok());
        assert!(tls_config(None).is_ok());
    }
}
