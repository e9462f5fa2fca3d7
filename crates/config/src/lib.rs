//! camhub's configuration: the TOML schema (documented key by key in `docs/config.md`), its
//! validation, and load errors that name the key, the line and the fix. Pure: it parses text and
//! never opens a socket; `load` is the only function that touches the file system.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod duration;
pub mod edit;
mod error;
pub mod import;
mod lint;
mod net;
mod parse;
mod size;
mod source;

pub use camhub_media::layout::Layout;
use camhub_media::redact::{redact_url, REDACTED};
pub use camhub_media::warp::{Crop, Perspective, Rotation, Transform};

pub use error::{ConfigError, ConfigErrors};
pub(crate) use parse::CAMERA_KEYS;

/// Parses a duration as the config writes it (`"30s"`, `"7d"`, `"1m30s"`); `None` when it is not
/// one. For APIs that take durations in the config's form.
pub fn parse_duration(text: &str) -> Option<Duration> {
    duration::parse_duration(text)
}

/// Parses and validates a whole config file's text. `origin` is the file name used in messages.
///
/// Every problem is reported, not only the first: TOML syntax errors (one, where the parser stopped),
/// unknown keys (with the closest valid key), wrong types, values out of range, bad URLs (quoted
/// redacted), duplicate camera ids, options that do not apply to a camera's kind of URL.
///
/// ```
/// let config = camhub_config::parse("[[camera]]\nid = \"door\"\nurl = \"demo:\"\n", "camhub.toml").unwrap();
/// assert_eq!(config.cameras[0].name, "door");
///
/// let errors = camhub_config::parse("[[camera]]\nid = \"door\"\nurl = \"demo:\"\nidle_timeout = \"30 sex\"\n", "camhub.toml")
///     .unwrap_err();
/// assert_eq!(errors.to_string(), "camhub.toml:4:16: camera[0].idle_timeout: invalid duration \"30 sex\" \
///     — use a duration like \"30s\", \"500ms\" or \"2m\"");
/// ```
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    parse::parse(text, origin, &Probe::default())
}

/// [`parse`], asking `probe` what only the running program can know (which input formats its
/// FFmpeg has), so those mistakes become warnings with a line too.
pub fn parse_with(text: &str, origin: &str, probe: &Probe<'_>) -> Result<Config, ConfigErrors> {
    parse::parse(text, origin, probe)
}

/// Reads and parses a file. An unreadable file (missing, no permission, not UTF-8) is one
/// [`ConfigError`] naming the path and the OS error, with no line; a missing one says "not found"
/// with the absolute path that was tried (a relative path is relative to the directory camhub was
/// started in, which a service or a script may not make obvious).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, &Probe::default())
}

/// [`load`] with a [`Probe`], see [`parse_with`].
pub fn load_with(path: &Path, probe: &Probe<'_>) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    let unreadable = |message: String, fix: String| {
        Err(ConfigErrors(vec![ConfigError {
            origin: origin.clone(),
            line: None,
            column: None,
            key: String::new(),
            message,
            fix,
        }]))
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse::parse(&text, &origin, probe),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let tried = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            unreadable(
                format!("config file not found (tried {})", tried.display()),
                "check the path (a relative path is relative to the directory camhub was \
                 started in), or start camhub without --config for the built-in demo camera"
                    .to_owned(),
            )
        }
        Err(e) => unreadable(
            format!("cannot read the config file: {e}"),
            "check the path, its permissions, and that it is UTF-8 text".to_owned(),
        ),
    }
}

/// What the config crate asks of the program that loads a config, which it cannot know itself
/// (it never calls FFmpeg). The default knows nothing and so warns about nothing.
pub struct Probe<'a> {
    /// Whether FFmpeg has an input format (demuxer) of this name; an unknown `input_format` is a
    /// warning.
    pub has_input_format: &'a dyn Fn(&str) -> bool,
}

impl Default for Probe<'_> {
    fn default() -> Self {
        Probe {
            has_input_format: &|_| true,
        }
    }
}

impl Config {
    /// The built-in config used with no `--config`: the default [`Server`] and one camera, id `demo`,
    /// name "Demo camera", url `demo:` (the test pattern, 1280×720 at 25 fps).
    pub fn demo() -> Config {
        let url = "demo:".to_owned();
        Config {
            server: Server::default(),
            cameras: vec![Camera {
                id: "demo".to_owned(),
                name: "Demo camera".to_owned(),
                source: parse::source_spec(
                    url,
                    source::Scheme::Demo {
                        width: 1280,
                        height: 720,
                        fps: 25,
                    },
                    &mut parse::KindOptions::default(),
                ),
                substream: None,
                idle_timeout: Duration::from_secs(30),
                always_on: false,
                watchdog: Duration::from_secs(10),
                decode_threads: 1,
                enabled: true,
                motion: None,
                transcode: None,
                transform: Transform::default(),
            }],
            users: Vec::new(),
            events: Events::default(),
            mqtt: None,
            warnings: Vec::new(),
        }
    }

    /// Whether requests must say who they are: some `[[user]]` exists and `[server] auth` is not
    /// `"none"`. (A config that needs users and has none does not parse: listening beyond loopback
    /// with no user is refused.)
    pub fn auth_enforced(&self) -> bool {
        self.server.auth != AuthMode::None && !self.users.is_empty()
    }
}

impl Default for Server {
    /// Loopback only (`127.0.0.1:8080`), `camhub-data`, 10 s snapshot wait, 8 variants, 20 s stall,
    /// plain HTTP, 1024 connections (64 per address), 100 viewers per camera.
    fn default() -> Self {
        Server {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("camhub-data"),
            snapshot_timeout: Duration::from_secs(10),
            max_variants: 8,
            max_raw_sizes: 8,
            stall_timeout: Duration::from_secs(20),
            auth: AuthMode::Auto,
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            session_lifetime: Duration::from_secs(7 * 86_400),
            login_attempts: 10,
            ban_time: Duration::from_secs(15 * 60),
            metrics: MetricsAccess::Auth,
            tls_cert: None,
            tls_key: None,
            max_connections: 1024,
            max_connections_per_ip: 64,
            max_viewers_per_camera: 100,
            base_path: String::new(),
            rtsp_listen: None,
            webrtc_listen: WebrtcListen::Default,
            webrtc_candidates: Vec::new(),
            ice_servers: Vec::new(),
        }
    }
}

/// A whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The `[server]` table.
    pub server: Server,
    /// The `[[camera]]` tables, in file order.
    pub cameras: Vec<Camera>,
    /// The `[[user]]` tables, in file order.
    pub users: Vec<User>,
    /// The `[events]` table: how long motion events are kept, and how much room they may take.
    pub events: Events,
    /// The `[mqtt]` table: motion published to an MQTT broker; `None` without the table.
    pub mqtt: Option<Mqtt>,
    /// Values that are valid but almost certainly a mistake (a placeholder host left from an
    /// example, an ESP32-CAM stream URL without `:81`, an `input_format` FFmpeg does not know), in
    /// file order, shaped like errors (place, key, message, fix). They never stop camhub;
    /// `camhub check --strict` fails on them.
    pub warnings: Vec<ConfigError>,
}

/// The `[server]` table: where and how camhub serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// `listen`: address to bind (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// `data_dir`: where the SQLite store and event snapshots live (default `camhub-data`).
    pub data_dir: PathBuf,
    /// `snapshot_timeout`: how long `frame.jpeg` waits for an idle camera's first frame (default 10 s).
    pub snapshot_timeout: Duration,
    /// `max_variants`: distinct (size, quality) JPEG variants per camera (default 8).
    pub max_variants: usize,
    /// `max_raw_sizes`: distinct (size, format) raw-pixel outputs per camera for programs
    /// (`frame.raw`, `/frames`, the Python and C libraries; default 8).
    pub max_raw_sizes: usize,
    /// `stall_timeout`: a viewer that accepts no bytes for this long is disconnected (default 20 s).
    pub stall_timeout: Duration,
    /// `auth`: who may watch (default `"auto"`: login when users exist).
    pub auth: AuthMode,
    /// `trusted_proxies`: addresses (or `addr/prefix` networks) of reverse proxies whose
    /// `X-Forwarded-For` is believed, for bans, limits and logs (default none).
    pub trusted_proxies: Vec<IpNet>,
    /// `allowed_origins`: other web origins (`https://ha.example:8123`) allowed to open WebSockets
    /// and send changes with a user's cookie; camhub's own origin always is (default none).
    pub allowed_origins: Vec<String>,
    /// `session_lifetime`: how long a login lasts (default 7 days).
    pub session_lifetime: Duration,
    /// `login_attempts`: failed logins from one address before it is banned; half as many start
    /// slowing its answers down (default 10).
    pub login_attempts: usize,
    /// `ban_time`: how long a banned address is refused (default 15 minutes).
    pub ban_time: Duration,
    /// `metrics`: who may read `/metrics` (default `"auth"`).
    pub metrics: MetricsAccess,
    /// `tls_cert`: PEM certificate chain (server certificate first); with `tls_key`, camhub serves
    /// HTTPS (HTTP/2 and HTTP/1.1) instead of HTTP on `listen`. Set with `tls_key` or not at all.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: the PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `max_connections`: open client connections at most; more are closed at once (default 1024).
    pub max_connections: usize,
    /// `max_connections_per_ip`: open connections from one address at most (an IPv6 client counts
    /// by its /64); connections from `trusted_proxies` count only toward `max_connections`
    /// (default 64).
    pub max_connections_per_ip: usize,
    /// `max_viewers_per_camera`: live MJPEG, WebSocket and snapshot viewers of one camera at most;
    /// one more gets a 503 (default 100).
    pub max_viewers_per_camera: usize,
    /// `base_path`: serve everything under this path prefix (`"/camhub"`), for a reverse proxy
    /// that forwards a sub-path; normalised without a trailing `/` (default `""`: the root).
    pub base_path: String,
    /// `rtsp_listen`: where the RTSP server listens (`rtsp://host:port/{id}` re-serves each
    /// camera's own stream); `None` (the default): no RTSP server.
    pub rtsp_listen: Option<SocketAddr>,
    /// `webrtc_listen`: the UDP address WebRTC peers share (default: `listen`'s address, port 8555).
    pub webrtc_listen: WebrtcListen,
    /// `webrtc_candidates`: more addresses to offer browsers for WebRTC (a NAT's public address, a
    /// container host's), besides the one each browser reached camhub at.
    pub webrtc_candidates: Vec<IpAddr>,
    /// `ice_servers`: STUN/TURN servers told to WebRTC clients (WHEP `Link` headers).
    pub ice_servers: Vec<String>,
}

/// `[server] webrtc_listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebrtcListen {
    /// Not set: `listen`'s address, UDP port 8555; when it is taken, camhub runs without WebRTC
    /// (players fall back to MSE) and says so in the log.
    Default,
    /// `"off"`: no WebRTC.
    Off,
    /// This address; camhub does not start when it cannot be bound.
    At(SocketAddr),
}

impl WebrtcListen {
    /// The default UDP port.
    pub const DEFAULT_PORT: u16 = 8555;
}

/// `[server] auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// `"auto"` (default): login is required when `[[user]]`s exist; with none, camhub serves only on
    /// a loopback `listen` address and refuses any other.
    Auto,
    /// `"users"`: login is required; at least one `[[user]]` must exist.
    Users,
    /// `"none"`: no login even beyond loopback (logged as a warning, shown as a banner in the UI).
    None,
}

/// `[server] metrics`: who may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAccess {
    /// `"auth"` (default): an admin, or a token made for metrics (like any route when auth is off).
    Auth,
    /// `"open"`: anyone who reaches camhub, for a Prometheus without credentials.
    Open,
}

/// An IP network, `addr/prefix` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network address (host bits may be set; they are ignored).
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

/// One `[[user]]`: who may log in, and what they may see.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// `name`: the login name.
    pub name: String,
    /// `password_hash`: an argon2id PHC string (`$argon2id$v=19$m=…`) made by `camhub hash-password`.
    pub password_hash: String,
    /// `role`: what the user may do.
    pub role: Role,
    /// `cameras`: the only camera ids the user may see; `None` = all.
    pub cameras: Option<Vec<String>>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password_hash", &REDACTED)
            .field("role", &self.role)
            .field("cameras", &self.cameras)
            .finish()
    }
}

/// A user's or token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything: all cameras they are allowed, tokens, metrics, configuration.
    Admin,
    /// Watching their cameras: pages, the API's camera routes, streams, snapshots, WebSockets.
    Viewer,
}

impl Role {
    /// The name as written in the config and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

/// One `[[camera]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    /// `id`: `[a-z0-9_-]{1,64}`, unique; used in URLs.
    pub id: String,
    /// `name`: display name (default: the id).
    pub name: String,
    /// `url`: the main stream.
    pub source: SourceSpec,
    /// `substream_url`: an optional low-resolution stream of the same camera.
    pub substream: Option<SourceSpec>,
    /// `idle_timeout`: close the upstream when no consumer took a frame for this long (default 30 s).
    pub idle_timeout: Duration,
    /// `always_on`: keep the upstream open with no consumers (default false).
    pub always_on: bool,
    /// `watchdog`: reconnect when no frame arrived for this long while connected (default 10 s).
    pub watchdog: Duration,
    /// `decode_threads`: 1 = one thread (lowest latency, default); N > 1 = N frame threads; 0 = auto.
    pub decode_threads: usize,
    /// `enabled`: `false` keeps the camera in the file but out of service (default true).
    pub enabled: bool,
    /// `[camera.motion]`: motion detection; `None` when the camera has no such table.
    pub motion: Option<Motion>,
    /// `transcode`: re-encode the camera's pictures for players that need a codec it does not
    /// send (`"h264"`); `None` serves its own stream.
    pub transcode: Option<Transcode>,
    /// `rotate`, `flip`, `perspective`, `crop` and `transform_size`: the camera's geometry,
    /// applied to its decoded pictures (the identity when none is set).
    pub transform: Transform,
}

/// `transcode`: what a camera's pictures are re-encoded to for MSE, `stream.mp4` and HLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transcode {
    /// H.264 (libx264, low latency): what every browser plays.
    H264,
}

impl Camera {
    /// Whether `other` connects to its camera the same way: every setting but `name` and `motion`
    /// is equal. A reload that finds only those changed can apply them to the running camera
    /// (rename it, restart its motion detector) without closing its connection and its viewers'
    /// streams; any other change needs a new connection.
    ///
    /// ```
    /// let a = camhub_config::parse("[[camera]]\nid = \"a\"\nurl = \"demo:\"\n", "c.toml").unwrap();
    /// let b = camhub_config::parse(
    ///     "[[camera]]\nid = \"a\"\nname = \"Door\"\nurl = \"demo:\"\n[camera.motion]\nthreshold = 30\n",
    ///     "c.toml",
    /// )
    /// .unwrap();
    /// assert!(a.cameras[0].same_connection(&b.cameras[0]));
    /// assert_ne!(a.cameras[0], b.cameras[0]);
    /// ```
    pub fn same_connection(&self, other: &Camera) -> bool {
        // Spelled out field by field, so a new field cannot be forgotten here: it fails to build
        // until it is placed on one side or the other.
        let Camera {
            id,
            name: _,
            source,
            substream,
            idle_timeout,
            always_on,
            watchdog,
            decode_threads,
            enabled,
            motion: _,
            transcode,
            transform,
        } = self;
        *id == other.id
            && *source == other.source
            && *substream == other.substream
            && *idle_timeout == other.idle_timeout
            && *always_on == other.always_on
            && *watchdog == other.watchdog
            && *decode_threads == other.decode_threads
            && *enabled == other.enabled
            && *transcode == other.transcode
            && *transform == other.transform
    }
}

/// `[camera.motion]`: motion detection of one camera.
///
/// Polygons are in pixels of the camera's main picture (`url`), `[x, y]` from its top left corner;
/// camhub scales them to the stream it analyses (the substream when there is one). The picture's
/// size is not known when the config is read, so points beyond it are kept as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Motion {
    /// `enabled`: detect motion (default true: writing the table turns detection on).
    pub enabled: bool,
    /// `threshold`: how much a pixel's brightness (luma, 0–255) must change to count as changed
    /// (1–255, default 20).
    pub threshold: u8,
    /// `min_area`: percent of the picture that must change for motion (above 0, at most 100;
    /// default 0.5).
    pub min_area: f64,
    /// `masks`: polygons whose pixels are ignored (default none).
    pub masks: Vec<Vec<[f64; 2]>>,
    /// `zones`: when any, only pixels inside them count (default none: the whole picture).
    pub zones: Vec<Vec<[f64; 2]>>,
    /// `start_after`: how long motion must last before an event starts (at most 1 minute,
    /// default 0.2 s).
    pub start_after: Duration,
    /// `end_after`: how long without motion ends an event (above 0, at most 1 hour; default 10 s).
    pub end_after: Duration,
    /// `light_switch`: ignore a sudden change of the whole picture's brightness (a light switched
    /// on, the camera's night mode) (default true).
    pub light_switch: bool,
    /// `fps`: pictures analysed per second (above 0, at most 30; default 10).
    pub fps: f64,
    /// `frames`: pictures stored per event besides its best snapshot (0–50, default 5).
    pub frames: u32,
}

impl Default for Motion {
    /// What an empty `[camera.motion]` means: enabled, threshold 20, 0.5 % of the picture, no masks
    /// or zones, 0.2 s to start, 10 s to end, light switches ignored, 10 fps, 5 frames.
    fn default() -> Self {
        Motion {
            enabled: true,
            threshold: 20,
            min_area: 0.5,
            masks: Vec::new(),
            zones: Vec::new(),
            start_after: Duration::from_millis(200),
            end_after: Duration::from_secs(10),
            light_switch: true,
            fps: 10.0,
            frames: 5,
        }
    }
}

/// The `[events]` table: the storage of motion events (in `data_dir/events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// `retention`: events older than this are deleted (at least 1 hour, default 30 days).
    pub retention: Duration,
    /// `max_size`: bytes the events may take at most; the oldest go first (at least 10 MB,
    /// default 2 GB = 2 000 000 000 bytes).
    pub max_size: u64,
}

impl Default for Events {
    /// 30 days, 2 GB.
    fn default() -> Self {
        Events {
            retention: Duration::from_secs(30 * 86_400),
            max_size: 2_000_000_000,
        }
    }
}

/// The `[mqtt]` table: each camera's motion published to an MQTT broker (state, events, Home
/// Assistant discovery). The broker's address is taken apart once, here; the password is never
/// shown: `Debug` writes `***` for it, and [`secrets`](Self::secrets) is what the log scrubber
/// removes.
///
/// ```
/// let c = camhub_config::parse(
///     "[mqtt]\nurl = \"mqtts://broker.lan\"\nusername = \"camhub\"\npassword = \"s3cret\"\n",
///     "c.toml",
/// )
/// .unwrap();
/// let mqtt = c.mqtt.as_ref().unwrap();
/// assert_eq!((mqtt.host.as_str(), mqtt.port, mqtt.tls), ("broker.lan", 8883, true));
/// assert_eq!(mqtt.topic_prefix, "camhub");
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Mqtt {
    /// `url`: the broker as written, `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` (it holds no
    /// credentials: those are refused in the URL).
    pub url: String,
    /// The broker's host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// The broker's port (default 1883, or 8883 for `mqtts://`).
    pub port: u16,
    /// `mqtts://`: TLS (rustls), the broker's certificate checked against `ca_file` or, without
    /// one, against the built-in Mozilla roots.
    pub tls: bool,
    /// `username` (default none: an anonymous connection).
    pub username: Option<String>,
    /// `password` (default none; needs `username`). Never logged or shown.
    pub password: Option<String>,
    /// `topic_prefix`: the first levels of camhub's topics (default `camhub`).
    pub topic_prefix: String,
    /// `client_id`: the MQTT client id; `None` = `camhub-HOSTNAME`, worked out at run time.
    pub client_id: Option<String>,
    /// `discovery`: publish Home Assistant MQTT discovery configs (default true).
    pub discovery: bool,
    /// `discovery_prefix`: Home Assistant's discovery prefix (default `homeassistant`).
    pub discovery_prefix: String,
    /// `node_id`: the discovery node id, part of every entity's `unique_id` (default `camhub`).
    pub node_id: String,
    /// `ca_file`: PEM certificate(s) to trust for `mqtts://` instead of the built-in roots (a
    /// broker with a certificate of its own CA).
    pub ca_file: Option<PathBuf>,
}

impl Mqtt {
    /// `[mqtt]` with only `url` set (to `url`, whose `host`, `port` and `tls` are given apart).
    pub fn new(url: &str, host: &str, port: u16, tls: bool) -> Mqtt {
        Mqtt {
            url: url.to_owned(),
            host: host.to_owned(),
            port,
            tls,
            username: None,
            password: None,
            topic_prefix: "camhub".to_owned(),
            client_id: None,
            discovery: true,
            discovery_prefix: "homeassistant".to_owned(),
            node_id: "camhub".to_owned(),
            ca_file: None,
        }
    }

    /// What a log or error scrubber must remove: the password, if any.
    pub fn secrets(&self) -> Vec<String> {
        self.password
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect()
    }
}

impl fmt::Debug for Mqtt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mqtt")
            .field("url", &self.url)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .field("topic_prefix", &self.topic_prefix)
            .field("client_id", &self.client_id)
            .field("discovery", &self.discovery)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("node_id", &self.node_id)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Where a stream comes from, parsed from a `url` / `substream_url` value: the one place a camera
/// URL is taken apart. Sources connect with [`url_without_credentials`](Self::url_without_credentials)
/// and [`credentials`](Self::credentials) (or the `ffmpeg:` input, which FFmpeg wants whole); logs, the
/// API and the UI show [`redacted`](Self::redacted); [`secrets`](Self::secrets) is what log and error
/// scrubbing removes from whatever a library printed.
///
/// `Debug` shows the redacted form only, never a user name or password:
///
/// ```
/// let c = camhub_config::parse("[[camera]]\nid = \"a\"\nurl = \"rtsp://admin:pa%40ss@h/x\"\n", "c.toml").unwrap();
/// let spec = &c.cameras[0].source;
/// assert_eq!(spec.url_without_credentials, "rtsp://h/x");
/// let creds = spec.credentials.as_ref().unwrap();
/// assert_eq!((creds.user.as_str(), creds.password.as_str()), ("admin", "pa@ss"));
/// assert_eq!(spec.redacted, "rtsp://***:***@h/x");
/// let shown = format!("{c:?}");
/// assert!(shown.contains("rtsp://***:***@h/x"), "{shown}");
/// assert!(!shown.contains("admin") && !shown.contains("pa@ss") && !shown.contains("pa%40ss"));
/// ```
#[derive(Clone, PartialEq)]
pub struct SourceSpec {
    /// What kind of source and its kind-specific options.
    pub kind: SourceKind,
    /// The URL exactly as written (may hold credentials: never log or serve it).
    pub url: String,
    /// For `rtsp://` and `http(s)://`: the URL without its `user:password@` part, as the `url` crate
    /// writes it (what the protocol clients connect to, with [`credentials`](Self::credentials) apart).
    /// Credentials in the path or query (Xiongmai's `password=`) stay: the camera reads them there.
    /// For `ffmpeg:` inputs that are URLs, `ffmpeg:` and the input without its userinfo; otherwise the
    /// URL as written. Never log or serve it either.
    pub url_without_credentials: String,
    /// The URL's `user:password@` part (of the input, for `ffmpeg:rtmp://user:password@…`),
    /// percent-decoded (`p%40ss` → `p@ss`).
    pub credentials: Option<Credentials>,
    /// The URL with credentials replaced by `***`: safe for logs, API and UI.
    pub redacted: String,
    /// Every secret in the URL, raw and percent-decoded, as written and as the `url` crate re-writes
    /// the URL: what a log or error scrubber replaces by `***`.
    pub secrets: Vec<String>,
}

impl fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceSpec")
            .field("kind", &self.kind)
            .field("redacted", &self.redacted)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// A user name and password taken from a URL's userinfo, percent-decoded. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (may be empty, as in `rtsp://:password@host/`).
    pub user: String,
    /// The password (empty when the URL has none).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &REDACTED)
            .field("password", &REDACTED)
            .finish()
    }
}

/// The kind of a source, with the options that apply to it. `Debug` shows an `ffmpeg:` input redacted
/// and only the names of its `input_options` (an option such as `headers` may carry a login).
#[derive(Clone, PartialEq)]
pub enum SourceKind {
    /// `rtsp://` (retina cannot open `rtsps://`: that is `ffmpeg:rtsps://…`).
    Rtsp {
        /// `transport`: TCP interleaved (default) or UDP.
        transport: RtspTransport,
    },
    /// `http://` or `https://`: MJPEG multipart or JPEG snapshots, told apart by Content-Type.
    Http {
        /// `poll_interval`: force snapshot polling at this interval.
        poll_interval: Option<Duration>,
        /// `insecure_tls`: accept self-signed / invalid certificates for https.
        insecure_tls: bool,
    },
    /// `ffmpeg:INPUT`: anything libavformat opens.
    Ffmpeg {
        /// The input after `ffmpeg:` (a path, `/dev/video0`, `rtmp://…`).
        input: String,
        /// `input_format`: libavformat demuxer name (`-f`), e.g. `v4l2`.
        format: Option<String>,
        /// `input_options`: demuxer options (`-video_size 1280x720` → `video_size = "1280x720"`).
        options: BTreeMap<String, String>,
        /// `loop_file`: loop a file forever (files are always read at their native rate).
        loop_file: bool,
    },
    /// A `[[composite]]`: other cameras' pictures combined (it has no URL of its own; `url`
    /// reads `composite:` and its inputs).
    Composite(Composite),
    /// `demo:` or `demo:?width=1280&height=720&fps=25`: the built-in test pattern.
    Demo {
        /// Picture width (default 1280).
        width: u32,
        /// Picture height (default 720).
        height: u32,
        /// Frames per second (default 25).
        fps: u32,
    },
}

impl fmt::Debug for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceKind::Rtsp { transport } => f
                .debug_struct("Rtsp")
                .field("transport", transport)
                .finish(),
            SourceKind::Http {
                poll_interval,
                insecure_tls,
            } => f
                .debug_struct("Http")
                .field("poll_interval", poll_interval)
                .field("insecure_tls", insecure_tls)
                .finish(),
            SourceKind::Ffmpeg {
                input,
                format,
                options,
                loop_file,
            } => f
                .debug_struct("Ffmpeg")
                .field("input", &redact_url(input))
                .field("format", format)
                .field("options", &options.keys().collect::<Vec<_>>())
                .field("loop_file", loop_file)
                .finish(),
            SourceKind::Composite(c) => c.fmt(f),
            SourceKind::Demo { width, height, fps } => f
                .debug_struct("Demo")
                .field("width", width)
                .field("height", height)
                .field("fps", fps)
                .finish(),
        }
    }
}

/// A `[[composite]]`'s own keys: how its inputs' pictures are combined.
#[derive(Debug, Clone, PartialEq)]
pub struct Composite {
    /// `layout`: how the tiles are placed.
    pub layout: Layout,
    /// `inputs`: camera ids, in the order they are placed (left to right, top to bottom).
    pub inputs: Vec<String>,
    /// `cuts`: per input id, `[front, back]`: the columns (rows for `vstack`) of its picture kept,
    /// `front` included, `back` not (seed 004's `concat_x`).
    pub cuts: BTreeMap<String, [u32; 2]>,
    /// `width`: the output width (default: what the tiles add up to).
    pub width: Option<u32>,
    /// `height`: the output height (default: the tallest tile's, for `hstack`).
    pub height: Option<u32>,
    /// `fps`: pictures a second the composite makes (1–60, default 10).
    pub fps: u32,
    /// `stale_after`: an input with no new picture for this long shows as "no signal" (default 3 s).
    pub stale_after: Duration,
}

/// RTSP lower transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtspTransport {
    /// RTP interleaved in the RTSP TCP connection (default; works through NAT and firewalls).
    Tcp,
    /// RTP over UDP.
    Udp,
}
