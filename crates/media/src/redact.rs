//! Credential redaction for camera URLs. Every URL that reaches a log line, an API response, an error
//! message or the UI goes through [`redact_url`] first: camera URLs carry passwords in the userinfo
//! (`rtsp://admin:secret@host/...`) and, on Xiongmai and some others, in the path or query
//! (`/user=admin&password=secret&channel=1`).

/// Keys whose values are secrets wherever they appear in a URL's path or query (case-insensitive).
const SECRET_KEYS: &[&str] = &[
    "password",
    "pass",
    "passwd",
    "pwd",
    "token",
    "auth",
    "key",
    "secret",
    "apikey",
    "api_key",
    "access_token",
    "user",
    "username",
    "usr",
    "login",
];

/// The replacement text for a redacted secret.
pub const REDACTED: &str = "***";

/// Returns `url` with every credential replaced by `***`: the userinfo (`user:pass@`) and the value of
/// any `key=value` pair in the path or query whose key names a secret (`password=`, `user=`, `token=`…).
///
/// It works on raw text, so malformed URLs are redacted too (they are the ones that end up in error
/// messages).
///
/// ```
/// use camhub_media::redact::redact_url;
/// assert_eq!(redact_url("rtsp://admin:s3cret@10.0.0.5:554/Streaming/Channels/101"),
///            "rtsp://***:***@10.0.0.5:554/Streaming/Channels/101");
/// assert_eq!(redact_url("rtsp://10.0.0.7:554/user=admin&password=hunter2&channel=1&stream=0.sdp"),
///            "rtsp://10.0.0.7:554/user=***&password=***&channel=1&stream=0.sdp");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = split_scheme(url);
    let (userinfo, authority_and_tail) = split_userinfo(rest);
    let auth_end = authority_and_tail
        .find(['/', '?', '#'])
        .unwrap_or(authority_and_tail.len());
    let (authority, tail) = authority_and_tail.split_at(auth_end);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    if let Some(userinfo) = userinfo {
        out.push_str(REDACTED);
        if userinfo.contains(':') {
            out.push(':');
            out.push_str(REDACTED);
        }
        out.push('@');
    }
    out.push_str(authority);
    out.push_str(&redact_pairs(tail));
    out
}

/// Splits `scheme:` plus any slashes from the rest. Tolerates typos such as `rtsp:/host` — those
/// URLs end up in error messages too.
fn split_scheme(url: &str) -> (&str, &str) {
    let Some(colon) = url.find(':') else {
        return ("", url);
    };
    let scheme = &url[..colon];
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return ("", url);
    }
    let after = &url[colon + 1..];
    let slashes = after.len() - after.trim_start_matches('/').len();
    if slashes == 0 && !after.contains('@') {
        // `host:port/...` or `ffmpeg:/dev/video0`-style: no authority to look for.
        return ("", url);
    }
    url.split_at(colon + 1 + slashes)
}

/// Splits the userinfo off: everything before the last `@` that comes before the query. A password
/// holding an unencoded `/` (invalid, but typed by users) is still treated as userinfo, so it is
/// hidden rather than shown as part of a path.
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    let query = rest.find(['?', '#']).unwrap_or(rest.len());
    match rest[..query].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    }
}

/// Redacts the values of secret `key=value` pairs; pairs are separated by `&`, `;`, `/`, `?` or `#`.
fn redact_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['&', ';', '/', '?', '#']).unwrap_or(rest.len());
        let (pair, after) = rest.split_at(end);
        match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => {
                out.push_str(key);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
        if let Some(sep) = after.chars().next() {
            out.push(sep);
            rest = &after[sep.len_utf8()..];
        } else {
            rest = after;
        }
    }
    out
}

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// Replaces every occurrence of each secret in `text` by `***`. Used on error messages from libraries
/// (retina, reqwest, FFmpeg) that may quote the URL they were given, in whatever form.
pub fn scrub_secrets(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 2) {
        out = out.replace(s.as_str(), REDACTED);
    }
    out
}

/// The secrets in a URL (userinfo user and password, and secret pair values, percent-decoded and raw),
/// for [`scrub_secrets`].
pub fn secrets_of(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (_, rest) = split_scheme(url);
    let (userinfo, tail) = split_userinfo(rest);
    if let Some(userinfo) = userinfo {
        found.push(userinfo.to_owned());
        for part in userinfo.splitn(2, ':') {
            found.push(part.to_owned());
        }
    }
    for pair in tail.split(['&', ';', '/', '?', '#']) {
        if let Some((key, value)) = pair.split_once('=') {
            if is_secret_key(key) {
                found.push(value.to_owned());
            }
        }
    }
    let decoded: Vec<String> = found.iter().map(|s| percent_decode(s)).collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    found.sort();
    found.dedup();
    found
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_with_and_without_password() {
        assert_eq!(redact_url("http://u:p@h/x"), "http://***:***@h/x");
        assert_eq!(redact_url("http://tok@h/x"), "http://***@h/x");
        assert_eq!(redact_url("http://h:81/stream"), "http://h:81/stream");
    }

    #[test]
    fn password_with_at_sign_is_fully_hidden() {
        let r = redact_url("rtsp://admin:p@ss@10.0.0.1/ch1");
        assert!(!r.contains("p@ss") && !r.contains("ss@"), "{r}");
        assert!(r.ends_with("@10.0.0.1/ch1"));
    }

    #[test]
    fn typos_and_unencoded_slashes_do_not_leak() {
        for url in [
            "rtsp:/admin:pw9x@h/x",
            "rtsp://admin:pa/ss9x@h/x",
            "rtsp:admin:pw9x@h/x",
        ] {
            let r = redact_url(url);
            assert!(!r.contains("pw9x") && !r.contains("ss9x"), "{url} -> {r}");
            let secrets = secrets_of(url);
            assert!(
                !scrub_secrets(url, &secrets).contains("9x"),
                "{url}: {secrets:?}"
            );
        }
        assert_eq!(redact_url("ffmpeg:/dev/video0"), "ffmpeg:/dev/video0");
        assert_eq!(redact_url("demo:?width=640"), "demo:?width=640");
        assert_eq!(redact_url("http://cam/a?next=x@y"), "http://cam/a?next=x@y");
    }

    #[test]
    fn query_secrets() {
        assert_eq!(
            redact_url("http://cam/snap.cgi?user=admin&pwd=x1&chn=1"),
            "http://cam/snap.cgi?user=***&pwd=***&chn=1"
        );
    }

    #[test]
    fn secrets_are_collected_and_scrubbed() {
        let url = "rtsp://admin:pa%40ss@h/user=bob&password=zz9&channel=1";
        let secrets = secrets_of(url);
        for s in ["admin", "pa%40ss", "pa@ss", "bob", "zz9"] {
            assert!(
                secrets.contains(&s.to_owned()),
                "{s} missing from {secrets:?}"
            );
        }
        let msg = format!("could not connect to {url} (pa@ss rejected)");
        let clean = scrub_secrets(&msg, &secrets);
        assert!(
            !clean.contains("pa@ss") && !clean.contains("zz9"),
            "{clean}"
        );
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "://",
            "@",
            "a@b@c",
            "%",
            "%4",
            "%zz",
            "x=%",
            "rtsp://:@/",
            "é@ü/p=ö",
        ] {
            let _ = redact_url(s);
            let _ = secrets_of(s);
        }
    }
}
