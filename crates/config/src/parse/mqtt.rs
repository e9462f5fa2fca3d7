//! The `[mqtt]` table: the broker's URL taken apart (credentials refused there: they have keys of
//! their own, and the password never reaches an error), topic prefixes that are valid MQTT topic
//! levels, and Home Assistant's rules for ids.

use std::ops::Range;

use toml::de::DeValue;

use super::{in_file_order, Cx, Value};
use crate::Mqtt;
use camhub_media::redact::redact_url;

/// The keys of the `[mqtt]` table.
pub(crate) const MQTT_KEYS: &[&str] = &[
    "url",
    "username",
    "password",
    "topic_prefix",
    "client_id",
    "discovery",
    "discovery_prefix",
    "node_id",
    "ca_file",
];

/// How to write the broker's URL, for every message about it.
const URL_FIX: &str =
    "write the broker as url = \"mqtt://HOST:1883\" (or \"mqtts://HOST:8883\" for \
     TLS), with the user name and password as username = \"…\" and password = \"…\"";

/// Names people give the keys of `[mqtt]` elsewhere, and the key camhub wants.
const ALIASES: &[(&str, &str)] = &[
    ("host", "url"),
    ("broker", "url"),
    ("server", "url"),
    ("port", "url"),
    ("uri", "url"),
    ("user", "username"),
    ("login", "username"),
    ("pass", "password"),
    ("passwd", "password"),
    ("pwd", "password"),
    ("prefix", "topic_prefix"),
    ("base_topic", "topic_prefix"),
    ("topic", "topic_prefix"),
    ("clientid", "client_id"),
    ("ha_discovery", "discovery"),
    ("homeassistant", "discovery"),
    ("cafile", "ca_file"),
    ("ca_cert", "ca_file"),
    ("ca", "ca_file"),
];

/// The fix for an unknown key of `[mqtt]` that is another program's name for one of its keys.
pub(crate) fn alias_fix(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let (_, key) = ALIASES.iter().find(|(alias, _)| *alias == lower)?;
    Some(match *key {
        "url" => format!("the broker's address and port go in url: {URL_FIX}"),
        key => format!(
            "did you mean \"{key}\"? valid keys: {}",
            MQTT_KEYS.join(", ")
        ),
    })
}

impl Cx<'_> {
    /// The `[mqtt]` table; `None` when it has errors (they are recorded).
    pub(super) fn mqtt(&mut self, v: &Value<'_>) -> Option<Mqtt> {
        let DeValue::Table(table) = v.get_ref() else {
            let fix = "write [mqtt] (single brackets) on a line of its own, then its keys";
            self.wrong_type("mqtt", v, "a table", fix);
            return None;
        };
        let errors_before = self.errors.len();
        // url's parts: (host, port, tls), and where it was written.
        let mut broker: Option<(String, u16, bool, String)> = None;
        let mut url_seen = false;
        let mut mqtt = Mqtt::new("", "", 0, false);
        let mut password_at: Option<Range<usize>> = None;
        let mut ca_file_at: Option<Range<usize>> = None;
        for (key, value) in in_file_order(table) {
            let name = key.get_ref().as_ref();
            let path = format!("mqtt.{name}");
            let path = path.as_str();
            match name {
                "url" => {
                    url_seen = true;
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    broker = self.broker_url(path, value.span(), &s);
                }
                "username" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    if s.is_empty() || s.len() > 65_535 {
                        let fix = "write the user name the broker knows camhub by, or leave \
                                   username and password out for an anonymous connection";
                        self.error(value.span(), path, "username is empty or too long", fix);
                    } else {
                        mqtt.username = Some(s);
                    }
                }
                "password" => {
                    password_at = Some(value.span());
                    // The value is never quoted: the wrong-type message names only its type.
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    if s.len() > 65_535 {
                        let fix =
                            "use the password the broker has for username (at most 65535 bytes)";
                        self.error(value.span(), path, "password is too long", fix);
                    } else {
                        mqtt.password = Some(s);
                    }
                }
                "topic_prefix" | "discovery_prefix" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    if let Some(problem) = topic_problem(&s) {
                        let example = if name == "topic_prefix" {
                            "\"camhub\" or \"home/cameras\""
                        } else {
                            "\"homeassistant\" (Home Assistant's default)"
                        };
                        let fix = format!(
                            "use topic levels separated by / without + or #, and no / at \
                             either end, like {example}"
                        );
                        let message =
                            format!("invalid {name} \"{}\": {problem}", s.escape_default());
                        self.error(value.span(), path, message, fix);
                    } else if name == "topic_prefix" {
                        mqtt.topic_prefix = s;
                    } else {
                        mqtt.discovery_prefix = s;
                    }
                }
                "client_id" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    let valid =
                        (1..=128).contains(&s.len()) && s.chars().all(|c| c.is_ascii_graphic());
                    if valid {
                        mqtt.client_id = Some(s);
                    } else {
                        let fix = "use 1 to 128 letters, digits and punctuation without spaces, \
                                   like \"camhub-garage\" (some brokers take only 23), or leave \
                                   the key out for camhub-HOSTNAME";
                        let message = format!("invalid client_id \"{}\"", s.escape_default());
                        self.error(value.span(), path, message, fix);
                    }
                }
                "discovery" => mqtt.discovery = self.boolean(path, value).unwrap_or(mqtt.discovery),
                "node_id" => {
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    let valid = (1..=64).contains(&s.len())
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if valid {
                        mqtt.node_id = s;
                    } else {
                        let fix = "use 1 to 64 characters from a-z, A-Z, 0-9, _ and - (Home \
                                   Assistant's rule for a node id), like \"camhub\" or \"camhub-garage\"";
                        let message = format!("invalid node_id \"{}\"", s.escape_default());
                        self.error(value.span(), path, message, fix);
                    }
                }
                "ca_file" => {
                    ca_file_at = Some(value.span());
                    let Some(s) = self.string(path, value) else {
                        continue;
                    };
                    if s.trim().is_empty() {
                        let fix = "name a PEM file with the certificate of the CA that signed the \
                                   broker's, like \"/etc/camhub/mqtt-ca.pem\", or leave the key out \
                                   to trust the built-in roots";
                        self.error(value.span(), path, "ca_file is empty", fix);
                    } else {
                        mqtt.ca_file = Some(s.into());
                    }
                }
                _ => self.unknown_key(key, "mqtt.", MQTT_KEYS),
            }
        }
        if !url_seen {
            let fix = format!("add the broker: {URL_FIX}");
            self.error(v.span(), "mqtt.url", "missing required key \"url\"", fix);
        }
        if let (Some(at), None) = (&password_at, &mqtt.username) {
            if !table.iter().any(|(k, _)| k.get_ref() == "username") {
                let fix = "add username = \"…\" (MQTT sends a password only with a user name), \
                           or remove password for an anonymous connection";
                self.error(
                    at.clone(),
                    "mqtt.password",
                    "password is set but username is not",
                    fix,
                );
            }
        }
        if let (Some(at), Some((_, _, false, _))) = (&ca_file_at, &broker) {
            let fix = "use an mqtts:// URL for TLS, or remove ca_file";
            self.error(
                at.clone(),
                "mqtt.ca_file",
                "ca_file applies to mqtts:// URLs only",
                fix,
            );
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let (host, port, tls, url) = broker?;
        Some(Mqtt {
            url,
            host,
            port,
            tls,
            ..mqtt
        })
    }

    /// The broker's `url` taken apart: (host, port, tls, the URL as written). Errors are recorded
    /// with the URL redacted (a user name or password typed into it is never quoted).
    fn broker_url(
        &mut self,
        path: &str,
        at: Range<usize>,
        text: &str,
    ) -> Option<(String, u16, bool, String)> {
        let shown = redact_url(text);
        let fail = |cx: &mut Self, what: &str| {
            let message = format!("invalid broker URL \"{shown}\": {what}");
            cx.error(at.clone(), path, message, URL_FIX);
            None
        };
        let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let tls = match scheme.as_deref() {
            Some("mqtt" | "tcp") => false,
            Some("mqtts" | "ssl") => true,
            Some("ws" | "wss") => return fail(self, "MQTT over WebSocket is not supported"),
            Some(other) => {
                let what = format!(
                    "the scheme \"{}\" is not mqtt:// or mqtts://",
                    other.escape_default()
                );
                return fail(self, &what);
            }
            None => return fail(self, "it has no scheme (mqtt:// or mqtts://)"),
        };
        let url = match url::Url::parse(text) {
            Ok(u) => u,
            Err(e) => return fail(self, &e.to_string()),
        };
        if !url.username().is_empty() || url.password().is_some() {
            let message = format!("the broker URL \"{shown}\" holds a user name or password");
            let fix = "take them out of the URL and write them as username = \"…\" and \
                       password = \"…\" in [mqtt] (camhub never logs or shows the password)";
            self.error(at.clone(), path, message, fix);
            return None;
        }
        let (host, ipv6) = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => (d.to_owned(), false),
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), false),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), true),
            _ => return fail(self, "it has no host"),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return fail(self, "a broker URL has no path or query");
        }
        if ipv6 && tls {
            let message = "mqtts:// to an IPv6 address is not supported";
            let fix = "use the broker's host name (the one its certificate names), or mqtt://";
            self.error(at.clone(), path, message, fix);
            return None;
        }
        let port = match url.port() {
            Some(0) => return fail(self, "port 0"),
            Some(p) => p,
            None if tls => 8883,
            None => 1883,
        };
        Some((host, port, tls, text.to_owned()))
    }
}

/// What is wrong with a topic prefix, if anything: empty, a wildcard, a NUL, a `/` at either
/// end or an empty level, more than 1000 bytes.
fn topic_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("it is empty")
    } else if s.contains(['+', '#']) {
        Some("+ and # are wildcards, not allowed in a topic")
    } else if s.contains('\0') || s.chars().any(char::is_control) {
        Some("it holds a control character")
    } else if s.starts_with('/') || s.ends_with('/') || s.contains("//") {
        Some("it has an empty topic level (a / at an end, or //)")
    } else if s.len() > 1000 {
        Some("it is longer than 1000 bytes")
    } else {
        None
    }
}
