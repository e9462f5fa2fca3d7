//! Walks toml's spanned document tree (`toml::de::DeTable`) key by key, converting and checking each
//! value, and collecting every error with its place instead of stopping at the first one (which is
//! what a serde `Deserialize` with `deny_unknown_fields` would do).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::duration::{format_duration, parse_duration, DURATION_FIX};
use crate::error::{ConfigError, ConfigErrors, LineIndex};
use crate::lint::{motion_warnings, url_warnings, MotionPlace, CREDENTIAL_FIX, CREDENTIAL_KEYS};
use crate::size::{format_size, parse_size, SIZE_FIX};
use crate::source::{classify, Scheme};
use crate::{
    AuthMode, Camera, Config, Credentials, Events, IpNet, MetricsAccess, Motion, Probe, Role,
    RtspTransport, Server, SourceKind, SourceSpec, User, WebrtcListen,
};
use camhub_media::redact::{percent_decode, redact_url, secrets_of};

mod composite;
mod mqtt;
mod transform;

use mqtt::MQTT_KEYS;
use transform::{TransformKeys, TRANSFORM_KEYS};

type Key<'i> = Spanned<Cow<'i, str>>;
type Value<'i> = Spanned<DeValue<'i>>;
/// A polygon of `masks` or `zones`: its corners, `[x, y]` in pixels.
type Polygon = Vec<[f64; 2]>;

const TOP_KEYS: &[&str] = &["server", "camera", "composite", "user", "events", "mqtt"];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "snapshot_timeout",
    "max_variants",
    "max_raw_sizes",
    "stall_timeout",
    "auth",
    "trusted_proxies",
    "allowed_origins",
    "session_lifetime",
    "login_attempts",
    "ban_time",
    "metrics",
    "tls_cert",
    "tls_key",
    "max_connections",
    "max_connections_per_ip",
    "max_viewers_per_camera",
    "base_path",
    "rtsp_listen",
    "webrtc_listen",
    "webrtc_candidates",
    "ice_servers",
];
const USER_KEYS: &[&str] = &["name", "password_hash", "role", "cameras"];
const EVENTS_KEYS: &[&str] = &["retention", "max_size"];
/// The keys of a `[camera.motion]` table.
const MOTION_KEYS: &[&str] = &[
    "enabled",
    "threshold",
    "min_area",
    "masks",
    "zones",
    "start_after",
    "end_after",
    "light_switch",
    "fps",
    "frames",
];
/// How to write a `[camera.motion]` table, for every message about its place or type.
const MOTION_FIX: &str =
    "write [camera.motion] on a line of its own after the camera's keys, then \
     its keys (threshold = 20, …), or motion = { enabled = true } among the camera's keys";
/// How to write `masks` and `zones`, for every message about their shape.
const POLYGON_FIX: &str = "write a list of polygons, each a list of 3 or more [x, y] corners in \
     pixels of the camera's main picture, like [[[0, 0], [640, 0], [640, 120], [0, 120]]]";
/// How to make a `password_hash`, for every message about one.
const HASH_FIX: &str = "make one with `camhub hash-password` (it reads the password from stdin or \
     asks for it) and paste its output: password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$…\"";
pub(crate) const CAMERA_KEYS: &[&str] = &[
    "id",
    "name",
    "url",
    "substream_url",
    "idle_timeout",
    "always_on",
    "watchdog",
    "decode_threads",
    "transcode",
    "enabled",
    "transport",
    "poll_interval",
    "insecure_tls",
    "input_format",
    "input_options",
    "loop_file",
    "motion",
    "rotate",
    "flip",
    "crop",
    "perspective",
    "transform_size",
];

const SYNTAX_FIX: &str =
    "fix the TOML syntax here: strings need double quotes, tables are written \
     [server] and [[camera]] (see docs/config.md)";
const ID_FIX: &str = "use 1 to 64 characters from a-z, 0-9, _ and -, like \"front-door\"";

/// Parses and validates a whole file; see [`crate::parse`].
pub(crate) fn parse(text: &str, origin: &str, probe: &Probe<'_>) -> Result<Config, ConfigErrors> {
    let mut cx = Cx {
        origin,
        lines: LineIndex::new(text),
        errors: Vec::new(),
        warnings: Vec::new(),
        probe,
    };
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let at = e.span().map_or(0..0, |s| s);
            cx.error(at, "", format!("invalid TOML: {}", e.message()), SYNTAX_FIX);
            return Err(cx.finish());
        }
    };
    let mut server = Server::default();
    let mut cameras = Vec::new();
    let mut users = Vec::new();
    let mut events = Events::default();
    let mut mqtt = None;
    let mut composites = Vec::new();
    let mut spans = ServerSpans::default();
    for (key, value) in in_file_order(root.get_ref()) {
        match key.get_ref().as_ref() {
            "server" => server = cx.server(value, &mut spans),
            "camera" => cameras = cx.cameras(value),
            "composite" => composites = cx.composites(value),
            "user" => users = cx.users(value),
            "events" => events = cx.events(value),
            "mqtt" => mqtt = cx.mqtt(value),
            _ => cx.unknown_key(key, "", TOP_KEYS),
        }
    }
    cx.add_composites(&mut cameras, composites);
    // A [[user]] with errors has its own messages; "no user" would be one too many.
    let user_tables = root.get_ref().contains_key("user");
    cx.check_access(&server, &spans, &cameras, &users, user_tables);
    let users = cx.composite_access(&cameras, users);
    if cx.errors.is_empty() {
        let mut warnings = cx.warnings;
        warnings.sort_by_key(|w| (w.line.unwrap_or(0), w.column.unwrap_or(0)));
        Ok(Config {
            server,
            cameras,
            users,
            events,
            mqtt,
            warnings,
        })
    } else {
        Err(cx.finish())
    }
}

/// A table's entries in the order they appear in the file (the map itself is sorted by name).
fn in_file_order<'a, 'i>(table: &'a DeTable<'i>) -> Vec<(&'a Key<'i>, &'a Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date/time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn to_i64(v: &toml::de::DeInteger<'_>) -> Option<i64> {
    i64::from_str_radix(v.as_str(), v.radix()).ok()
}

/// The closest valid key to an unknown one, if close enough to be a likely typo.
fn closest<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    valid
        .iter()
        .map(|v| (edit_distance(&key, v), *v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev_diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev_diag + cost);
            prev_diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// What a camera's url is, for "only applies to …" messages.
fn label(s: &Scheme) -> &'static str {
    match s {
        Scheme::Rtsp(_) => "an rtsp:// URL",
        Scheme::Http { tls: false, .. } => "an http:// URL",
        Scheme::Http { tls: true, .. } => "an https:// URL",
        Scheme::Ffmpeg { .. } => "an ffmpeg: input",
        Scheme::Demo { .. } => "the demo: pattern",
    }
}

/// The parse context: where errors and warnings go, how byte offsets become lines, and what the
/// caller can tell about the machine.
struct Cx<'a> {
    origin: &'a str,
    lines: LineIndex<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    probe: &'a Probe<'a>,
}

/// Where the `[server]` keys that later checks point at were written.
#[derive(Default)]
struct ServerSpans {
    listen: Option<Range<usize>>,
    rtsp_listen: Option<Range<usize>>,
    auth: Option<Range<usize>>,
}

/// The camera keys that depend on the URL kind, kept with the span of their key until the URLs are
/// known.
#[derive(Default)]
pub(crate) struct KindOptions {
    transport: Option<(RtspTransport, Range<usize>)>,
    poll_interval: Option<(Duration, Range<usize>)>,
    insecure_tls: Option<(bool, Range<usize>)>,
    input_format: Option<(String, Range<usize>)>,
    input_options: Option<(BTreeMap<String, String>, Range<usize>)>,
    loop_file: Option<(bool, Range<usize>)>,
}

impl Cx<'_> {
    fn error(
        &mut self,
        at: Range<usize>,
        key: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let e = self.at(at, key, message.into(), fix.into());
        self.errors.push(e);
    }

    fn warn(
        &mut self,
        at: Range<usize>,
        key: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let w = self.at(at, key, message.into(), fix.into());
        self.warnings.push(w);
    }

    fn at(&self, at: Range<usize>, key: &str, message: String, fix: String) -> ConfigError {
        let (line, column) = self.lines.position(at.start);
        ConfigError {
            origin: self.origin.to_owned(),
            line: Some(line),
            column: Some(column),
            key: key.to_owned(),
            message,
            fix,
        }
    }

    fn finish(mut self) -> ConfigErrors {
        self.errors
            .sort_by_key(|e| (e.line.unwrap_or(0), e.column.unwrap_or(0)));
        ConfigErrors(self.errors)
    }

    fn line_of(&self, at: &Range<usize>) -> usize {
        self.lines.position(at.start).0
    }

    fn unknown_key(&mut self, key: &Key<'_>, prefix: &str, valid: &[&str]) {
        let name = key.get_ref().as_ref();
        let path = format!("{prefix}{name}");
        let list = valid.join(", ");
        let lower = name.to_ascii_lowercase();
        let in_motion = prefix.ends_with(".motion.");
        // [mqtt]'s own keys (url, username and password are other tables' too).
        let mqtt_only = MQTT_KEYS.contains(&lower.as_str())
            && !["url", "username", "password"].contains(&lower.as_str());
        let fix = if prefix == "mqtt." {
            match mqtt::alias_fix(name) {
                Some(fix) => fix,
                None => match closest(name, valid) {
                    Some(best) => format!("did you mean \"{best}\"? valid keys: {list}"),
                    None => format!("valid keys: {list}"),
                },
            }
        } else if (prefix.is_empty() || prefix == "server.") && mqtt_only {
            format!(
                "\"{name}\" is an [mqtt] key: put it after an [mqtt] line; valid keys here: {list}"
            )
        } else if (prefix.is_empty() || prefix == "server.") && lower == "motion" {
            format!("motion belongs to a camera: {MOTION_FIX}")
        } else if in_motion && CAMERA_KEYS.contains(&lower.as_str()) {
            // Every key after a [camera.motion] line is the table's, up to the next table.
            format!(
                "\"{name}\" is a camera key, not a motion key: every key after a [camera.motion] \
                 line belongs to it (up to the next [table]), so move {name} above that line; \
                 valid motion keys: {list}"
            )
        } else if (prefix.is_empty() || prefix == "server.")
            && EVENTS_KEYS.contains(&lower.as_str())
        {
            format!("\"{name}\" is an events key: put it after an [events] line; valid keys here: {list}")
        } else if prefix.starts_with("camera")
            && !in_motion
            && MOTION_KEYS.contains(&lower.as_str())
        {
            format!(
                "\"{name}\" is a motion key: put it after a [camera.motion] line (below the \
                 camera's keys), or write motion = {{ {name} = … }}"
            )
        } else if prefix.is_empty() && CAMERA_KEYS.contains(&lower.as_str()) {
            format!("\"{name}\" is a camera key: put it after a [[camera]] line; valid top-level keys: {list}")
        } else if prefix.is_empty() && SERVER_KEYS.contains(&lower.as_str()) {
            format!("\"{name}\" is a server key: put it after the [server] line; valid top-level keys: {list}")
        } else if prefix.starts_with("camera")
            && !in_motion
            && SERVER_KEYS.contains(&lower.as_str())
        {
            format!("\"{name}\" is a [server] key, not a camera key; valid camera keys: {list}")
        } else if prefix.starts_with("camera")
            && !in_motion
            && CREDENTIAL_KEYS.contains(&lower.as_str())
        {
            CREDENTIAL_FIX.to_owned()
        } else if prefix == "server." && CAMERA_KEYS.contains(&lower.as_str()) {
            format!("\"{name}\" is a camera key: put it after a [[camera]] line; valid server keys: {list}")
        } else if let Some(best) = closest(name, valid) {
            format!("did you mean \"{best}\"? valid keys: {list}")
        } else {
            format!("valid keys: {list}")
        };
        self.error(key.span(), &path, format!("unknown key \"{name}\""), fix);
    }

    fn wrong_type(&mut self, path: &str, v: &Value<'_>, expected: &str, fix: &str) {
        let found = type_name(v.get_ref());
        self.error(
            v.span(),
            path,
            format!("expected {expected}, found {found}"),
            fix,
        );
    }

    fn string(&mut self, path: &str, v: &Value<'_>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(path, v, "a string", "put the value in double quotes");
                None
            }
        }
    }

    fn boolean(&mut self, path: &str, v: &Value<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(path, v, "a boolean", "use true or false, without quotes");
                None
            }
        }
    }

    fn integer(&mut self, path: &str, v: &Value<'_>, min: i64, max: i64) -> Option<usize> {
        let DeValue::Integer(i) = v.get_ref() else {
            let fix = format!("use a whole number from {min} to {max}, without quotes");
            self.wrong_type(path, v, "an integer", &fix);
            return None;
        };
        match to_i64(i).filter(|n| (min..=max).contains(n)) {
            Some(n) => usize::try_from(n).ok(),
            None => {
                let fix = format!("use a whole number from {min} to {max}");
                self.error(v.span(), path, format!("{i} is out of range"), fix);
                None
            }
        }
    }

    fn duration(
        &mut self,
        path: &str,
        v: &Value<'_>,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let (d, shown) = match v.get_ref() {
            DeValue::String(s) => match parse_duration(s) {
                Some(d) => (d, format!("\"{s}\"")),
                None => {
                    self.error(
                        v.span(),
                        path,
                        format!("invalid duration \"{s}\""),
                        DURATION_FIX,
                    );
                    return None;
                }
            },
            DeValue::Integer(i) => match to_i64(i).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => (Duration::from_secs(n), format!("{i} (seconds)")),
                None => {
                    self.error(
                        v.span(),
                        path,
                        format!("invalid duration {i}"),
                        DURATION_FIX,
                    );
                    return None;
                }
            },
            _ => {
                self.wrong_type(path, v, "a duration", DURATION_FIX);
                return None;
            }
        };
        if d < min || d > max {
            let fix = format!(
                "use a duration from {} to {}",
                format_duration(min),
                format_duration(max)
            );
            self.error(
                v.span(),
                path,
                format!("duration {shown} is out of range"),
                fix,
            );
            return None;
        }
        Some(d)
    }

    fn server(&mut self, v: &Value<'_>, spans: &mut ServerSpans) -> Server {
        let mut server = Server::default();
        let DeValue::Table(table) = v.get_ref() else {
            let fix = "write [server] (single brackets) on a line of its own, then its keys";
            self.wrong_type("server", v, "a table", fix);
            return server;
        };
        // Where tls_cert and tls_key were set, for the "both or neither" check.
        let mut tls_spans: (Option<Range<usize>>, Option<Range<usize>>) = (None, None);
        for (key, value) in in_file_order(table) {
            let name = key.get_ref().as_ref();
            let path = format!("server.{name}");
            let path = path.as_str();
            match name {
                "listen" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    match s.parse() {
                        Ok(addr) => {
                            server.listen = addr;
                            spans.listen = Some(value.span());
                        }
                        Err(_) => self.error(
                            value.span(),
                            path,
                            format!("invalid socket address \"{s}\""),
                            "use an IP address and a port, like \"127.0.0.1:8080\", \"0.0.0.0:8080\" or \"[::]:8080\"",
                        ),
                    }
                }
                "webrtc_listen" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    if s == "off" {
                        server.webrtc_listen = WebrtcListen::Off;
                        continue;
                    }
                    match s.parse() {
                        Ok(addr) => server.webrtc_listen = WebrtcListen::At(addr),
                        Err(_) => self.error(
                            value.span(),
                            path,
                            format!("invalid socket address \"{s}\""),
                            "use an IP address and a UDP port, like \"0.0.0.0:8555\", or \"off\" for no WebRTC",
                        ),
                    }
                }
                "webrtc_candidates" => {
                    let Some(items) = self.string_list(path, value) else {
                        continue;
                    };
                    for (item, at) in items {
                        match item.parse::<IpAddr>() {
                            Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() => {
                                server.webrtc_candidates.push(ip)
                            }
                            _ => self.error(
                                at,
                                path,
                                format!("invalid address \"{item}\""),
                                "list the IP addresses browsers reach camhub at, like [\"192.168.1.10\", \"203.0.113.7\"]",
                            ),
                        }
                    }
                }
                "ice_servers" => {
                    let Some(items) = self.string_list(path, value) else {
                        continue;
                    };
                    for (item, at) in items {
                        let scheme = item.split(':').next().unwrap_or("");
                        if matches!(scheme, "stun" | "turn" | "turns")
                            && item.len() > scheme.len() + 1
                        {
                            server.ice_servers.push(item);
                        } else {
                            self.error(
                                at,
                                path,
                                format!("invalid ICE server \"{item}\""),
                                "write stun:HOST:PORT or turn:HOST:PORT, like \"stun:stun.l.google.com:19302\"",
                            );
                        }
                    }
                }
                "rtsp_listen" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    match s.parse() {
                        Ok(addr) => {
                            server.rtsp_listen = Some(addr);
                            spans.rtsp_listen = Some(value.span());
                        }
                        Err(_) => self.error(
                            value.span(),
                            path,
                            format!("invalid socket address \"{s}\""),
                            "use an IP address and a port, like \"127.0.0.1:8554\" or \"0.0.0.0:8554\" (or leave rtsp_listen out: no RTSP server)",
                        ),
                    }
                }
                "data_dir" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    if s.trim().is_empty() {
                        let fix = "name a directory, like \"camhub-data\" or \"/var/lib/camhub\"";
                        self.error(value.span(), path, "data_dir is empty", fix);
                    } else {
                        server.data_dir = s.into();
                    }
                }
                "snapshot_timeout" => {
                    let (min, max) = (Duration::from_millis(100), Duration::from_secs(120));
                    if let Some(d) = self.duration(path, value, min, max) {
                        server.snapshot_timeout = d;
                    }
                }
                "max_variants" => {
                    if let Some(n) = self.integer(path, value, 1, 64) {
                        server.max_variants = n;
                    }
                }
                "max_raw_sizes" => {
                    if let Some(n) = self.integer(path, value, 1, 64) {
                        server.max_raw_sizes = n;
                    }
                }
                "stall_timeout" => {
                    let (min, max) = (Duration::from_secs(1), Duration::from_secs(600));
                    if let Some(d) = self.duration(path, value, min, max) {
                        server.stall_timeout = d;
                    }
                }
                "auth" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    server.auth = match s.as_str() {
                        "auto" => AuthMode::Auto,
                        "users" => AuthMode::Users,
                        "none" => AuthMode::None,
                        _ => {
                            let fix = "use \"auto\" (login when [[user]]s exist), \"users\" \
                                       (always login) or \"none\" (never)";
                            self.error(value.span(), path, format!("invalid auth \"{s}\""), fix);
                            continue;
                        }
                    };
                    spans.auth = Some(value.span());
                }
                "trusted_proxies" => {
                    let Some(items) = self.string_list(path, value) else {
                        continue;
                    };
                    for (item, at) in items {
                        match IpNet::parse(&item) {
                            Some(net) => server.trusted_proxies.push(net),
                            None => self.error(
                                at,
                                path,
                                format!("invalid address \"{item}\""),
                                "use IP addresses or networks, like \"127.0.0.1\", \"10.0.0.0/8\" or \"fd00::/8\"",
                            ),
                        }
                    }
                }
                "allowed_origins" => {
                    let Some(items) = self.string_list(path, value) else {
                        continue;
                    };
                    for (item, at) in items {
                        match origin(&item) {
                            Some(o) => server.allowed_origins.push(o),
                            None => self.error(
                                at,
                                path,
                                format!("invalid origin \"{item}\""),
                                "write scheme, host and port only, like \"https://ha.example.com:8123\"",
                            ),
                        }
                    }
                }
                "session_lifetime" => {
                    let (min, max) = (Duration::from_secs(1), Duration::from_secs(365 * 86_400));
                    if let Some(d) = self.duration(path, value, min, max) {
                        server.session_lifetime = d;
                    }
                }
                "login_attempts" => {
                    if let Some(n) = self.integer(path, value, 1, 1000) {
                        server.login_attempts = n;
                    }
                }
                "ban_time" => {
                    let (min, max) = (Duration::from_secs(1), Duration::from_secs(7 * 86_400));
                    if let Some(d) = self.duration(path, value, min, max) {
                        server.ban_time = d;
                    }
                }
                "metrics" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    match s.as_str() {
                        "auth" => server.metrics = MetricsAccess::Auth,
                        "open" => server.metrics = MetricsAccess::Open,
                        _ => {
                            let fix =
                                "use \"auth\" (admins and metrics tokens) or \"open\" (anyone)";
                            self.error(value.span(), path, format!("invalid metrics \"{s}\""), fix);
                        }
                    }
                }
                "tls_cert" | "tls_key" => {
                    // Present, even if invalid: its own error says what is wrong with it.
                    if name == "tls_cert" {
                        tls_spans.0 = Some(value.span());
                    } else {
                        tls_spans.1 = Some(value.span());
                    }
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    if s.trim().is_empty() {
                        let fix = "name a PEM file, like \"/etc/camhub/cert.pem\", or remove \
                                   tls_cert and tls_key to serve plain HTTP";
                        self.error(value.span(), path, format!("{name} is empty"), fix);
                    } else if name == "tls_cert" {
                        server.tls_cert = Some(s.into());
                    } else {
                        server.tls_key = Some(s.into());
                    }
                }
                "max_connections" => {
                    if let Some(n) = self.integer(path, value, 1, 1_000_000) {
                        server.max_connections = n;
                    }
                }
                "max_connections_per_ip" => {
                    if let Some(n) = self.integer(path, value, 1, 1_000_000) {
                        server.max_connections_per_ip = n;
                    }
                }
                "max_viewers_per_camera" => {
                    if let Some(n) = self.integer(path, value, 1, 1_000_000) {
                        server.max_viewers_per_camera = n;
                    }
                }
                "base_path" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    let trimmed = s.trim_end_matches('/');
                    let valid = trimmed.is_empty()
                        || (trimmed.starts_with('/')
                            && !trimmed.contains("//")
                            && trimmed
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b)));
                    if valid {
                        server.base_path = trimmed.to_owned();
                    } else {
                        let fix =
                            "write a path like \"/camhub\" (letters, digits, - _ . ~ and /), \
                                   or leave the key out to serve at the root";
                        self.error(
                            value.span(),
                            path,
                            format!("invalid base_path \"{s}\""),
                            fix,
                        );
                    }
                }
                _ => self.unknown_key(key, "server.", SERVER_KEYS),
            }
        }
        // A certificate without its key (or the reverse) cannot serve HTTPS; serving plain HTTP
        // instead would surprise whoever set one of them.
        match tls_spans {
            (Some(at), None) => self.error(
                at,
                "server.tls_key",
                "tls_cert is set but tls_key is not",
                "add tls_key = \"/path/to/key.pem\" (the certificate's private key, PEM) to \
                 [server], or remove tls_cert to serve plain HTTP",
            ),
            (None, Some(at)) => self.error(
                at,
                "server.tls_cert",
                "tls_key is set but tls_cert is not",
                "add tls_cert = \"/path/to/cert.pem\" (the certificate chain, PEM) to [server], \
                 or remove tls_key to serve plain HTTP",
            ),
            _ => {}
        }
        server
    }

    fn cameras(&mut self, v: &Value<'_>) -> Vec<Camera> {
        let items = match v.get_ref() {
            DeValue::Array(items) => items,
            DeValue::Table(_) => {
                let fix = "write [[camera]] (double brackets), once before each camera's keys";
                self.error(v.span(), "camera", "camera must be a list of tables", fix);
                return Vec::new();
            }
            _ => {
                let fix = "write [[camera]] (double brackets), once before each camera's keys";
                self.wrong_type("camera", v, "a list of tables", fix);
                return Vec::new();
            }
        };
        // id → line of its first use, for duplicate messages that name both lines.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut cameras = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(camera) = self.camera(index, item, &mut seen) {
                cameras.push(camera);
            }
        }
        cameras
    }

    /// A list of strings, each with its place; `None` (error recorded) for anything else.
    fn string_list(&mut self, path: &str, v: &Value<'_>) -> Option<Vec<(String, Range<usize>)>> {
        let fix = "write a list of strings, like [\"a\", \"b\"]";
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(path, v, "a list of strings", fix);
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span())),
                _ => {
                    self.wrong_type(path, item, "a string", fix);
                    return None;
                }
            }
        }
        Some(out)
    }

    /// The `[[user]]` tables, each with the span of its `cameras` value (checked against the camera
    /// ids once all are known).
    fn users(&mut self, v: &Value<'_>) -> Vec<(User, Option<Range<usize>>)> {
        let fix = "write [[user]] (double brackets), once before each user's keys";
        let items = match v.get_ref() {
            DeValue::Array(items) => items,
            _ => {
                self.wrong_type("user", v, "a list of tables", fix);
                return Vec::new();
            }
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut users = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(user) = self.user(index, item, &mut seen) {
                users.push(user);
            }
        }
        users
    }

    fn user(
        &mut self,
        index: usize,
        v: &Value<'_>,
        seen: &mut HashMap<String, usize>,
    ) -> Option<(User, Option<Range<usize>>)> {
        let prefix = format!("user[{index}].");
        let DeValue::Table(table) = v.get_ref() else {
            let fix = "write [[user]] (double brackets), once before each user's keys";
            self.wrong_type(&format!("user[{index}]"), v, "a table", fix);
            return None;
        };
        let errors_before = self.errors.len();
        let mut name = None;
        let mut hash = None;
        let mut role = None;
        let mut cameras = None;
        for (key, value) in in_file_order(table) {
            let key_name = key.get_ref().as_ref();
            let path = format!("{prefix}{key_name}");
            let path = path.as_str();
            match key_name {
                "name" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    let valid = s
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
                    if s.is_empty() || s.len() > 64 || !valid {
                        let fix = "use 1 to 64 characters from a-z, A-Z, 0-9 and . _ @ -";
                        self.error(
                            value.span(),
                            path,
                            format!("invalid user name \"{s}\""),
                            fix,
                        );
                        continue;
                    }
                    let line = self.line_of(&value.span());
                    if let Some(first) = seen.get(&s) {
                        let message = format!("duplicate user \"{s}\" (first on line {first})");
                        self.error(
                            value.span(),
                            path,
                            message,
                            "give every user a different name",
                        );
                        continue;
                    }
                    seen.insert(s.clone(), line);
                    name = Some(s);
                }
                "password_hash" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    // Only the form is checked here; the hash itself is verified at login.
                    if !s.starts_with("$argon2id$") || s.split('$').count() != 6 {
                        // The value may be a password typed in by mistake: never quote it.
                        self.error(value.span(), path, "not an argon2id hash", HASH_FIX);
                        continue;
                    }
                    hash = Some(s);
                }
                "role" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    role = match s.as_str() {
                        "admin" => Some(Role::Admin),
                        "viewer" => Some(Role::Viewer),
                        _ => {
                            let fix = "use \"admin\" (everything) or \"viewer\" (watch only)";
                            self.error(value.span(), path, format!("invalid role \"{s}\""), fix);
                            continue;
                        }
                    };
                }
                "cameras" => {
                    cameras = self
                        .string_list(path, value)
                        .map(|items| (items.into_iter().map(|(s, _)| s).collect(), value.span()));
                }
                "password" => {
                    let message = "camhub stores no passwords, only their hashes";
                    self.error(
                        key.span(),
                        path,
                        message,
                        format!("replace it by {HASH_FIX}"),
                    );
                }
                _ => self.unknown_key(key, &prefix, USER_KEYS),
            }
        }
        let header = v.span();
        for (key, what) in [("name", name.is_some()), ("password_hash", hash.is_some())] {
            if !what && !table.iter().any(|(k, _)| k.get_ref() == key) {
                let fix = match key {
                    "name" => "add a line like name = \"alice\"".to_owned(),
                    _ => format!("add one: {HASH_FIX}"),
                };
                let message = format!("missing required key \"{key}\"");
                self.error(header.clone(), &format!("{prefix}{key}"), message, fix);
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let (cameras, cameras_at) = match cameras {
            Some((c, at)) => (Some(c), Some(at)),
            None => (None, None),
        };
        Some((
            User {
                name: name?,
                password_hash: hash?,
                role: role.unwrap_or(Role::Viewer),
                cameras,
            },
            cameras_at,
        ))
    }

    /// Checks across tables: users' camera lists name real cameras, and camhub is never served
    /// beyond loopback without a login unless the config says so.
    fn check_access(
        &mut self,
        server: &Server,
        spans: &ServerSpans,
        cameras: &[Camera],
        users: &[(User, Option<Range<usize>>)],
        user_tables: bool,
    ) {
        for (index, (user, at)) in users.iter().enumerate() {
            let (Some(list), Some(at)) = (&user.cameras, at) else {
                continue;
            };
            for id in list {
                if !cameras.iter().any(|c| &c.id == id) {
                    let known: Vec<&str> = cameras.iter().map(|c| c.id.as_str()).collect();
                    let fix = format!("use ids of [[camera]]s: {}", known.join(", "));
                    let message = format!("unknown camera id \"{id}\"");
                    self.error(at.clone(), &format!("user[{index}].cameras"), message, fix);
                }
            }
        }
        if user_tables || server.auth == AuthMode::None {
            return;
        }
        if server.auth == AuthMode::Users {
            let at = spans.auth.clone().unwrap_or(0..0);
            let fix = format!("add a [[user]]: {HASH_FIX}");
            self.error(
                at,
                "server.auth",
                "auth = \"users\" but there is no [[user]]",
                fix,
            );
        } else if let Some((addr, at, key)) = [
            (Some(server.listen), spans.listen.clone(), "server.listen"),
            (
                server.rtsp_listen,
                spans.rtsp_listen.clone(),
                "server.rtsp_listen",
            ),
        ]
        .into_iter()
        .find_map(|(a, at, key)| a.filter(|a| !a.ip().is_loopback()).map(|a| (a, at, key)))
        {
            let at = at.unwrap_or(0..0);
            let message = format!(
                "listening on {addr} (beyond this machine) with no [[user]]: anyone who reaches it could watch every camera"
            );
            let fix = format!(
                "add a user — [[user]] name = \"admin\" role = \"admin\" and a password_hash: {HASH_FIX}; \
                 or, to serve without login anyway, set auth = \"none\" in [server]"
            );
            self.error(at, key, message, fix);
        }
    }

    /// One `[[camera]]`; `None` when it had errors (they are recorded).
    fn camera(
        &mut self,
        index: usize,
        v: &Value<'_>,
        seen: &mut HashMap<String, usize>,
    ) -> Option<Camera> {
        let prefix = format!("camera[{index}].");
        let DeValue::Table(table) = v.get_ref() else {
            let fix = "write [[camera]] (double brackets), once before each camera's keys";
            self.wrong_type(&format!("camera[{index}]"), v, "a table", fix);
            return None;
        };
        let errors_before = self.errors.len();
        let mut id = None;
        let mut name = None;
        let mut url: Option<(String, Range<usize>)> = None;
        let mut substream: Option<(String, Range<usize>)> = None;
        let mut idle_timeout = Duration::from_secs(30);
        let mut always_on = false;
        let mut watchdog = Duration::from_secs(10);
        let mut decode_threads = 1;
        let mut transcode = None;
        let mut enabled = true;
        let mut motion = None;
        let mut geometry = TransformKeys::default();
        let mut opts = KindOptions::default();

        for (key, value) in in_file_order(table) {
            let key_name = key.get_ref().as_ref();
            let path = format!("{prefix}{key_name}");
            let path = path.as_str();
            let key_span = key.span();
            match key_name {
                "id" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    let valid_chars = s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    });
                    if s.is_empty() || s.len() > 64 || !valid_chars {
                        self.error(
                            value.span(),
                            path,
                            format!("invalid camera id \"{s}\""),
                            ID_FIX,
                        );
                        continue;
                    }
                    let line = self.line_of(&value.span());
                    if let Some(first) = seen.get(&s) {
                        let message =
                            format!("duplicate camera id \"{s}\" (first used on line {first})");
                        self.error(
                            value.span(),
                            path,
                            message,
                            "give every camera a different id",
                        );
                    } else {
                        seen.insert(s.clone(), line);
                    }
                    id = Some(s);
                }
                "name" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    if s.trim().is_empty() {
                        let fix = "write a name, or leave the key out to use the id";
                        self.error(value.span(), path, "name is empty", fix);
                    } else {
                        name = Some(s);
                    }
                }
                "url" => url = self.string(path, value).map(|s| (s, value.span())),
                "substream_url" => substream = self.string(path, value).map(|s| (s, value.span())),
                "idle_timeout" => {
                    let (min, max) = (Duration::from_secs(1), Duration::from_secs(24 * 3600));
                    if let Some(d) = self.duration(path, value, min, max) {
                        idle_timeout = d;
                    }
                }
                "always_on" => always_on = self.boolean(path, value).unwrap_or(always_on),
                "enabled" => enabled = self.boolean(path, value).unwrap_or(enabled),
                "watchdog" => {
                    let (min, max) = (Duration::from_secs(1), Duration::from_secs(600));
                    if let Some(d) = self.duration(path, value, min, max) {
                        watchdog = d;
                    }
                }
                "decode_threads" => {
                    decode_threads = self.integer(path, value, 0, 16).unwrap_or(decode_threads);
                }
                "transcode" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    match s.as_str() {
                        "h264" => transcode = Some(crate::Transcode::H264),
                        _ => {
                            let message = format!("invalid transcode \"{s}\"");
                            self.error(
                                value.span(),
                                path,
                                message,
                                "use \"h264\" (or leave transcode out to serve the camera's own stream)",
                            );
                        }
                    }
                }
                "transport" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    let t = match s.as_str() {
                        "tcp" => RtspTransport::Tcp,
                        "udp" => RtspTransport::Udp,
                        _ => {
                            let message = format!("invalid transport \"{s}\"");
                            self.error(value.span(), path, message, "use \"tcp\" or \"udp\"");
                            continue;
                        }
                    };
                    opts.transport = Some((t, key_span));
                }
                "poll_interval" => {
                    let (min, max) = (Duration::from_millis(50), Duration::from_secs(3600));
                    if let Some(d) = self.duration(path, value, min, max) {
                        opts.poll_interval = Some((d, key_span));
                    }
                }
                "insecure_tls" => {
                    opts.insecure_tls = self.boolean(path, value).map(|b| (b, key_span));
                }
                "input_format" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    if s.trim().is_empty() {
                        let fix =
                            "name a libavformat input format like \"v4l2\", or leave the key out";
                        self.error(value.span(), path, "input_format is empty", fix);
                    } else {
                        if !(self.probe.has_input_format)(&s) {
                            let message = format!("this FFmpeg has no input format named \"{s}\"");
                            let fix = "use a name from `ffmpeg -hide_banner -formats` (column D), \
                                       like \"v4l2\" for a USB webcam, or leave the key out to let \
                                       FFmpeg guess";
                            self.warn(value.span(), path, message, fix);
                        }
                        opts.input_format = Some((s, key_span));
                    }
                }
                "input_options" => {
                    opts.input_options = self.input_options(path, value).map(|o| (o, key_span));
                }
                "loop_file" => opts.loop_file = self.boolean(path, value).map(|b| (b, key_span)),
                "motion" => motion = self.motion(path, value),
                k if TRANSFORM_KEYS.contains(&k) => {
                    self.transform_key(&mut geometry, k, path, value);
                }
                _ => self.unknown_key(key, &prefix, CAMERA_KEYS),
            }
        }

        let header = v.span();
        if id.is_none() && !table.iter().any(|(k, _)| k.get_ref() == "id") {
            let fix = "add a line like id = \"frontdoor\" ([a-z0-9_-], unique)";
            self.error(
                header.clone(),
                &format!("{prefix}id"),
                "missing required key \"id\"",
                fix,
            );
        }
        let main = match &url {
            Some((u, at)) => match classify(u) {
                Ok(s) => {
                    self.url_warnings(at, &format!("{prefix}url"), u, &s);
                    Some(s)
                }
                Err(e) => {
                    self.error(at.clone(), &format!("{prefix}url"), e.message, e.fix);
                    None
                }
            },
            None => {
                if !table.iter().any(|(k, _)| k.get_ref() == "url") {
                    let fix =
                        "add a line like url = \"rtsp://user:password@192.168.1.64:554/path\" \
                               (URL formats: docs/config.md)";
                    self.error(
                        header,
                        &format!("{prefix}url"),
                        "missing required key \"url\"",
                        fix,
                    );
                }
                None
            }
        };
        let sub = match &substream {
            Some((u, at)) => match classify(u) {
                Ok(s) => {
                    self.url_warnings(at, &format!("{prefix}substream_url"), u, &s);
                    Some(Some(s))
                }
                Err(e) => {
                    self.error(
                        at.clone(),
                        &format!("{prefix}substream_url"),
                        e.message,
                        e.fix,
                    );
                    None
                }
            },
            None => Some(None),
        };
        // The options that depend on the kind of URL are only checked once both URLs are known.
        let (Some(main), Some(sub)) = (main, sub) else {
            return None;
        };
        self.check_kind_options(&prefix, &main, sub.as_ref(), &opts);
        self.check_transform(&prefix, &geometry);
        if self.errors.len() > errors_before {
            return None;
        }
        let id = id?;
        let (url, _) = url?;
        let source = source_spec(url, main, &mut opts);
        let substream = match (substream, sub) {
            (Some((u, _)), Some(s)) => Some(source_spec(u, s, &mut opts)),
            _ => None,
        };
        Some(Camera {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            source,
            substream,
            idle_timeout,
            always_on,
            watchdog,
            decode_threads,
            enabled,
            motion,
            transcode,
            transform: geometry.transform,
        })
    }

    /// A number (integer or float) above 0 and at most `max`; `example` is a good value to show.
    fn positive_number(
        &mut self,
        path: &str,
        v: &Value<'_>,
        max: f64,
        example: &str,
    ) -> Option<f64> {
        let fix = format!("use a number above 0 and at most {max}, like {example}");
        let (n, shown) = match v.get_ref() {
            DeValue::Integer(i) => (to_i64(i).map(|n| n as f64), i.to_string()),
            DeValue::Float(f) => (f.as_str().parse::<f64>().ok(), f.to_string()),
            _ => {
                self.wrong_type(path, v, "a number", &format!("{fix}, without quotes"));
                return None;
            }
        };
        match n.filter(|n| n.is_finite() && *n > 0.0 && *n <= max) {
            Some(n) => Some(n),
            None => {
                self.error(v.span(), path, format!("{shown} is out of range"), fix);
                None
            }
        }
    }

    /// `masks` or `zones`: a list of polygons, each a list of 3 or more `[x, y]` points of numbers
    /// that are finite and not negative. `None` (errors recorded) for anything else; the span of
    /// each polygon comes with it, for warnings.
    fn polygons(&mut self, path: &str, v: &Value<'_>) -> Option<Vec<(Polygon, Range<usize>)>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(path, v, "a list of polygons", POLYGON_FIX);
            return None;
        };
        // One polygon's corners without the list around them: the likeliest mistake, said once.
        let is_number =
            |v: &Value<'_>| matches!(v.get_ref(), DeValue::Integer(_) | DeValue::Float(_));
        let is_point = |v: &Value<'_>| match v.get_ref() {
            DeValue::Array(xy) => xy.len() == 2 && xy.iter().all(is_number),
            _ => false,
        };
        if !items.is_empty() && items.iter().all(is_point) {
            let message = "a list of points where a list of polygons goes";
            let fix = "put the points in one more pair of brackets to make them one polygon, like \
                       [[[0, 0], [640, 0], [640, 120]]]";
            self.error(v.span(), path, message, fix);
            return None;
        }
        let errors_before = self.errors.len();
        let mut polygons = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let polygon_path = format!("{path}[{i}]");
            let DeValue::Array(points) = item.get_ref() else {
                self.wrong_type(
                    &polygon_path,
                    item,
                    "a polygon (a list of [x, y] points)",
                    POLYGON_FIX,
                );
                continue;
            };
            if points.len() < 3 {
                let message = format!(
                    "a polygon needs 3 or more corners, this one has {}",
                    points.len()
                );
                self.error(item.span(), &polygon_path, message, POLYGON_FIX);
                continue;
            }
            let mut polygon = Vec::new();
            for (j, point) in points.iter().enumerate() {
                let point_path = format!("{polygon_path}[{j}]");
                let xy = match point.get_ref() {
                    DeValue::Array(xy) if xy.len() == 2 => xy,
                    DeValue::Array(xy) => {
                        let message =
                            format!("a point is [x, y], two numbers; this one has {}", xy.len());
                        self.error(point.span(), &point_path, message, POLYGON_FIX);
                        continue;
                    }
                    _ => {
                        self.wrong_type(&point_path, point, "an [x, y] point", POLYGON_FIX);
                        continue;
                    }
                };
                let x = self.coordinate(&point_path, &xy[0]);
                let y = self.coordinate(&point_path, &xy[1]);
                if let (Some(x), Some(y)) = (x, y) {
                    polygon.push([x, y]);
                }
            }
            polygons.push((polygon, item.span()));
        }
        (self.errors.len() == errors_before).then_some(polygons)
    }

    /// One coordinate of a polygon's point: a number of pixels, finite and not negative.
    fn coordinate(&mut self, path: &str, v: &Value<'_>) -> Option<f64> {
        let fix =
            "write pixels of the main picture from its top left corner, numbers of 0 or more \
                   without quotes, like [320, 180]";
        let (n, shown) = match v.get_ref() {
            DeValue::Integer(i) => (to_i64(i).map(|n| n as f64), i.to_string()),
            DeValue::Float(f) => (f.as_str().parse::<f64>().ok(), f.to_string()),
            _ => {
                self.wrong_type(path, v, "a number", fix);
                return None;
            }
        };
        match n {
            Some(n) if n.is_finite() && n >= 0.0 => Some(n),
            Some(n) if n < 0.0 => {
                self.error(v.span(), path, format!("{shown} is negative"), fix);
                None
            }
            _ => {
                self.error(
                    v.span(),
                    path,
                    format!("{shown} is not a number of pixels"),
                    fix,
                );
                None
            }
        }
    }

    /// A camera's `[camera.motion]` (or `motion = { … }`) table; `path` is `camera[N].motion`.
    /// `None` when it had errors (they are recorded).
    fn motion(&mut self, path: &str, v: &Value<'_>) -> Option<Motion> {
        let DeValue::Table(table) = v.get_ref() else {
            self.wrong_type(path, v, "a table", MOTION_FIX);
            return None;
        };
        let prefix = format!("{path}.");
        let errors_before = self.errors.len();
        let mut motion = Motion::default();
        // Where each key's value was written, for warnings.
        let mut spans: HashMap<&'static str, Range<usize>> = HashMap::new();
        let mut mask_spans = Vec::new();
        let mut zone_spans = Vec::new();
        for (key, value) in in_file_order(table) {
            let name = key.get_ref().as_ref();
            let path = format!("{prefix}{name}");
            let path = path.as_str();
            if let Some(known) = MOTION_KEYS.iter().copied().find(|k| *k == name) {
                spans.insert(known, value.span());
            }
            match name {
                "enabled" => motion.enabled = self.boolean(path, value).unwrap_or(motion.enabled),
                "threshold" => {
                    let n = self.integer(path, value, 1, 255);
                    if let Some(n) = n.and_then(|n| u8::try_from(n).ok()) {
                        motion.threshold = n;
                    }
                }
                "min_area" => {
                    if let Some(n) =
                        self.positive_number(path, value, 100.0, "0.5 (percent of the picture)")
                    {
                        motion.min_area = n;
                    }
                }
                "masks" | "zones" => {
                    let Some(list) = self.polygons(path, value) else {
                        continue;
                    };
                    let (polygons, at): (Vec<_>, Vec<_>) = list.into_iter().unzip();
                    if name == "masks" {
                        motion.masks = polygons;
                        mask_spans = at;
                    } else {
                        motion.zones = polygons;
                        zone_spans = at;
                    }
                }
                "start_after" => {
                    let (min, max) = (Duration::ZERO, Duration::from_secs(60));
                    if let Some(d) = self.duration(path, value, min, max) {
                        motion.start_after = d;
                    }
                }
                "end_after" => {
                    let (min, max) = (Duration::from_millis(1), Duration::from_secs(3600));
                    if let Some(d) = self.duration(path, value, min, max) {
                        motion.end_after = d;
                    }
                }
                "light_switch" => {
                    motion.light_switch = self.boolean(path, value).unwrap_or(motion.light_switch);
                }
                "fps" => {
                    if let Some(n) = self.positive_number(path, value, 30.0, "10") {
                        motion.fps = n;
                    }
                }
                "frames" => {
                    let n = self.integer(path, value, 0, 50);
                    if let Some(n) = n.and_then(|n| u32::try_from(n).ok()) {
                        motion.frames = n;
                    }
                }
                _ => self.unknown_key(key, &prefix, MOTION_KEYS),
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        for w in motion_warnings(&motion) {
            let (at, key) = match w.place {
                MotionPlace::Key(key) => (spans.get(key).cloned(), key.to_owned()),
                MotionPlace::Mask(i) => (mask_spans.get(i).cloned(), format!("masks[{i}]")),
                MotionPlace::Zone(i) => (zone_spans.get(i).cloned(), format!("zones[{i}]")),
            };
            let at = at.unwrap_or_else(|| v.span());
            self.warn(at, &format!("{prefix}{key}"), w.message, w.fix);
        }
        Some(motion)
    }

    /// The `[events]` table.
    fn events(&mut self, v: &Value<'_>) -> Events {
        let mut events = Events::default();
        let DeValue::Table(table) = v.get_ref() else {
            let fix = "write [events] (single brackets) on a line of its own, then its keys";
            self.wrong_type("events", v, "a table", fix);
            return events;
        };
        for (key, value) in in_file_order(table) {
            let name = key.get_ref().as_ref();
            let path = format!("events.{name}");
            let path = path.as_str();
            match name {
                "retention" => {
                    let (min, max) = (
                        Duration::from_secs(3600),
                        Duration::from_secs(3650 * 86_400),
                    );
                    if let Some(d) = self.duration(path, value, min, max) {
                        events.retention = d;
                    }
                }
                "max_size" => {
                    if let Some(n) = self.size(path, value, 10_000_000) {
                        events.max_size = n;
                    }
                }
                _ => self.unknown_key(key, "events.", EVENTS_KEYS),
            }
        }
        events
    }

    /// A size (`"2GB"`, `"1.5GiB"`, or an integer of bytes) of at least `min` bytes.
    fn size(&mut self, path: &str, v: &Value<'_>, min: u64) -> Option<u64> {
        let (n, shown) = match v.get_ref() {
            DeValue::String(s) => match parse_size(s) {
                Some(n) => (n, format!("\"{s}\"")),
                None => {
                    self.error(v.span(), path, format!("invalid size \"{s}\""), SIZE_FIX);
                    return None;
                }
            },
            DeValue::Integer(i) => match to_i64(i).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => (n, format!("{i} (bytes)")),
                None => {
                    self.error(v.span(), path, format!("invalid size {i}"), SIZE_FIX);
                    return None;
                }
            },
            _ => {
                self.wrong_type(path, v, "a size", SIZE_FIX);
                return None;
            }
        };
        if n < min {
            let fix = format!(
                "use {} or more, like \"2GB\" (kB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, \
                 TiB powers of 1024)",
                format_size(min)
            );
            self.error(v.span(), path, format!("size {shown} is too small"), fix);
            return None;
        }
        Some(n)
    }

    fn url_warnings(&mut self, at: &Range<usize>, path: &str, raw: &str, scheme: &Scheme) {
        for w in url_warnings(raw, scheme) {
            self.warn(at.clone(), path, w.message, w.fix);
        }
    }

    /// Refuses options that do not apply to the camera's kind of URL, so none is silently ignored.
    fn check_kind_options(
        &mut self,
        prefix: &str,
        main: &Scheme,
        sub: Option<&Scheme>,
        opts: &KindOptions,
    ) {
        let either = |f: fn(&Scheme) -> bool| f(main) || sub.is_some_and(f);
        let what = |kinds: &str| match sub {
            Some(_) => format!("remove it: neither url nor substream_url is {kinds}"),
            None => format!("remove it: this camera's url is {}", label(main)),
        };
        if let Some((_, at)) = &opts.transport {
            if !either(|s| matches!(s, Scheme::Rtsp(_))) {
                let message = "transport applies to rtsp:// URLs only";
                self.error(
                    at.clone(),
                    &format!("{prefix}transport"),
                    message,
                    what("rtsp://"),
                );
            }
        }
        if let Some((_, at)) = &opts.poll_interval {
            if !either(|s| matches!(s, Scheme::Http { .. })) {
                let message = "poll_interval applies to http:// and https:// URLs only";
                self.error(
                    at.clone(),
                    &format!("{prefix}poll_interval"),
                    message,
                    what("http(s)://"),
                );
            }
        }
        if let Some((_, at)) = &opts.insecure_tls {
            if !either(|s| matches!(s, Scheme::Http { tls: true, .. })) {
                let message = "insecure_tls applies to https:// URLs only";
                self.error(
                    at.clone(),
                    &format!("{prefix}insecure_tls"),
                    message,
                    what("https://"),
                );
            }
        }
        let ffmpeg_only = [
            ("input_format", opts.input_format.as_ref().map(|o| &o.1)),
            ("input_options", opts.input_options.as_ref().map(|o| &o.1)),
            ("loop_file", opts.loop_file.as_ref().map(|o| &o.1)),
        ];
        for (key, at) in ffmpeg_only {
            if let (Some(at), false) = (at, either(|s| matches!(s, Scheme::Ffmpeg { .. }))) {
                let message = format!("{key} applies to ffmpeg: URLs only");
                self.error(
                    at.clone(),
                    &format!("{prefix}{key}"),
                    message,
                    what("ffmpeg:"),
                );
            }
        }
    }

    fn input_options(&mut self, path: &str, v: &Value<'_>) -> Option<BTreeMap<String, String>> {
        let DeValue::Table(table) = v.get_ref() else {
            let fix = "write input_options = { video_size = \"1280x720\", framerate = 30 }";
            self.wrong_type(path, v, "a table", fix);
            return None;
        };
        let mut options = BTreeMap::new();
        let mut ok = true;
        for (key, value) in in_file_order(table) {
            let text = match value.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Integer(i) => to_i64(i).map_or_else(|| i.to_string(), |n| n.to_string()),
                DeValue::Float(f) => f.as_str().to_owned(),
                DeValue::Boolean(b) => if *b { "1" } else { "0" }.to_owned(),
                _ => {
                    let option_path = format!("{path}.{}", key.get_ref());
                    let fix = "give each option a string, number or boolean value";
                    self.wrong_type(&option_path, value, "a string, number or boolean", fix);
                    ok = false;
                    continue;
                }
            };
            options.insert(key.get_ref().to_string(), text);
        }
        ok.then_some(options)
    }
}

/// An origin as browsers send it (`scheme://host[:port]`, lower case, no path), or `None`.
fn origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let bare = matches!(url.path(), "" | "/") && url.query().is_none() && url.fragment().is_none();
    let ok = matches!(url.scheme(), "http" | "https") && url.username().is_empty() && bare;
    ok.then(|| url.origin().ascii_serialization())
}

/// Builds the source with the options of its kind, and takes its URL apart once: what sources
/// connect with, the credentials, the redacted form and the secrets to scrub.
pub(crate) fn source_spec(url: String, scheme: Scheme, opts: &mut KindOptions) -> SourceSpec {
    let mut secrets = secrets_of(&url);
    let (kind, parsed) = match scheme {
        Scheme::Rtsp(parsed) => (
            SourceKind::Rtsp {
                transport: opts.transport.as_ref().map_or(RtspTransport::Tcp, |t| t.0),
            },
            Some(parsed),
        ),
        Scheme::Http { tls, url: parsed } => (
            SourceKind::Http {
                poll_interval: opts.poll_interval.as_ref().map(|p| p.0),
                insecure_tls: tls && opts.insecure_tls.as_ref().is_some_and(|t| t.0),
            },
            Some(parsed),
        ),
        Scheme::Ffmpeg { input } => {
            // An input that is a URL (rtmp://, rtsps://, http://) has credentials of its own; FFmpeg
            // takes them in the URL, but they are still secrets to scrub.
            let parsed = input
                .contains("://")
                .then(|| url::Url::parse(&input).ok())
                .flatten();
            let kind = SourceKind::Ffmpeg {
                input,
                // Both URLs of a camera may be ffmpeg: inputs: each gets the options.
                format: opts.input_format.as_ref().map(|f| f.0.clone()),
                options: opts
                    .input_options
                    .as_ref()
                    .map(|o| o.0.clone())
                    .unwrap_or_default(),
                loop_file: opts.loop_file.as_ref().is_some_and(|l| l.0),
            };
            (kind, parsed)
        }
        Scheme::Demo { width, height, fps } => (SourceKind::Demo { width, height, fps }, None),
    };
    let mut credentials = None;
    let mut url_without_credentials = url.clone();
    if let Some(mut parsed) = parsed {
        // Libraries quote the URL as the `url` crate re-writes it (`{` or a space percent-encoded).
        secrets.extend(secrets_of(parsed.as_str()));
        if !parsed.username().is_empty() || parsed.password().is_some() {
            credentials = Some(Credentials {
                user: percent_decode(parsed.username()),
                password: percent_decode(parsed.password().unwrap_or("")),
            });
        }
        // Clearing the userinfo only fails for URLs that cannot have one, which have none to clear.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        url_without_credentials = match kind {
            SourceKind::Ffmpeg { .. } => format!("ffmpeg:{parsed}"),
            _ => parsed.into(),
        };
    }
    if let Some(c) = &credentials {
        secrets.extend([c.user.clone(), c.password.clone()]);
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    SourceSpec {
        kind,
        redacted: redact_url(&url),
        url,
        url_without_credentials,
        credentials,
        secrets,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("idle_timout", CAMERA_KEYS), Some("idle_timeout"));
        assert_eq!(closest("URL", CAMERA_KEYS), Some("url"));
        assert_eq!(closest("substream", CAMERA_KEYS), None);
        assert_eq!(closest("listn", SERVER_KEYS), Some("listen"));
        assert_eq!(closest("cameras", TOP_KEYS), Some("camera"));
        assert_eq!(closest("zzzzzzz", CAMERA_KEYS), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
