//! Credential redaction for camera URLs. Every URL that reaches a log line, an API response, an error
//! message or the UI goes through [`redact_url`] first: camera URLs carry passwords in the userinfo
//! (`rtsp://admin:secret@host/...`), on Xiongmai and some others in the path or query
//! (`/user=admin&password=secret&channel=1`), and `ffmpeg:` inputs carry a whole URL of their own
//! (`ffmpeg:rtmp://user:secret@host/live`), whose scheme is not a secret.

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
/// A secret value runs to the next `&` or `;` — a `#`, `?` or `/` typed into a password does not end it
/// — so a password is hidden whole even when it was not percent-encoded. An `ffmpeg:` input that is a
/// URL is redacted as a URL of its own, keeping its scheme.
///
/// It works on raw text, so malformed URLs are redacted too (they are the ones that end up in error
/// messages).
///
/// ```
/// use camhub_media::redact::redact_url;
/// assert_eq!(redact_url("rtsp://admin:s3cret@10.0.0.5:554/Streaming/Channels/101"),
///            "rtsp://***:***@10.0.0.5:554/Streaming/Channels/101");
/// assert_eq!(redact_url("rtsp://10.0.0.7:554/user=admin&password=hu#nter2&channel=1&stream=0.sdp"),
///            "rtsp://10.0.0.7:554/user=***&password=***&channel=1&stream=0.sdp");
/// assert_eq!(redact_url("ffmpeg:rtmp://cam:s3cret@10.0.0.9/live"),
///            "ffmpeg:rtmp://***:***@10.0.0.9/live");
/// ```
pub fn redact_url(url: &str) -> String {
    if let Some((outer, inner)) = split_nested(url) {
        return format!("{outer}{}", redact_url(inner));
    }
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

/// Splits `ffmpeg:rtmp://…` (a scheme whose whole rest is another URL) into `ffmpeg:` and the inner
/// URL, so that the inner URL's scheme is not mistaken for a user name.
fn split_nested(url: &str) -> Option<(&str, &str)> {
    let colon = url.find(':')?;
    let (outer, inner) = url.split_at(colon + 1);
    (is_scheme(&outer[..colon]) && inner.find("://").is_some_and(|i| is_scheme(&inner[..i])))
        .then_some((outer, inner))
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
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
/// hidden rather than shown as part of a path; so is one holding an unencoded `?` or `#`, when an `@`
/// follows it before anything that looks like a path or a query (`admin:hu#nter2@host`).
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    let query = rest.find(['?', '#']).unwrap_or(rest.len());
    let at = rest[..query].rfind('@').or_else(|| {
        let at = query + rest[query..].find('@')?;
        (!rest[query..at].contains(['/', '=', '&'])).then_some(at)
    });
    match at {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    }
}

/// The `key=value` pairs of a path and query: `(start, end)` of each secret value in `text`. Pairs
/// start after `&`, `;`, `/`, `?` or `#`; a secret value runs to the next `&` or `;`, so a `#`, `?` or
/// `/` typed into a password stays part of it.
fn secret_values(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let token_end = rest.find(['&', ';', '/', '?', '#']).unwrap_or(rest.len());
        let next = match rest[..token_end].split_once('=') {
            Some((key, _)) if is_secret_key(key) => {
                let start = pos + key.len() + 1;
                let end = text[start..]
                    .find(['&', ';'])
                    .map_or(text.len(), |e| start + e);
                found.push((start, end));
                end
            }
            _ => pos + token_end,
        };
        // Step over the separator (all separators are one byte).
        pos = next + 1;
    }
    found
}

/// Redacts the values of secret `key=value` pairs (see [`secret_values`]).
fn redact_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in secret_values(text) {
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// The `#` or `?` that cuts a secret value in a URL's path short, if any: Xiongmai-style URLs carry
/// the password in the path (`/user=admin&password=hu#nter2&channel=1`), and an unencoded `#` there
/// turns the rest of the password and everything after it into a fragment the camera never sees
/// (a `?`, into a query). Such a URL "works" with a wrong password; it is almost surely a password
/// that should have been percent-encoded (`#` is `%23`, `?` is `%3F`).
///
/// A `?` that starts a query of `key=value` pairs (`…/stream=0.sdp?real_stream` or `…?channel=1`) and
/// a value that holds pairs itself (Xiongmai's `user=admin_password=x_channel=1` form) do not count.
///
/// ```
/// use camhub_media::redact::cut_secret;
/// assert_eq!(cut_secret("rtsp://h/user=admin&password=hu#nter2&channel=1"), Some('#'));
/// assert_eq!(cut_secret("rtsp://h/user=admin&password=hu?nter2&channel=1"), Some('?'));
/// assert_eq!(cut_secret("rtsp://h/user=admin&password=hu%23nter2&channel=1"), None);
/// assert_eq!(cut_secret("http://h/snap.cgi?user=admin&pwd=hu?nter2"), None); // inside a query: sent as is
/// ```
pub fn cut_secret(url: &str) -> Option<char> {
    if let Some((_, inner)) = split_nested(url) {
        return cut_secret(inner);
    }
    let (_, rest) = split_scheme(url);
    let (_, tail) = split_userinfo(rest);
    let first_query = tail.find('?');
    [tail.find('#'), first_query]
        .into_iter()
        .flatten()
        .find(|&cut| {
            // The pair the cut ends: from the last separator before it.
            let before = &tail[..cut];
            let separators: &[char] = if Some(cut) == first_query {
                &['&', ';', '/']
            } else {
                &['&', ';', '/', '?']
            };
            let pair = before.rsplit(separators).next().unwrap_or(before);
            let Some((key, value)) = pair.split_once('=') else {
                return false;
            };
            let after = &tail[cut + 1..];
            let next = after.split(['&', ';', '#']).next().unwrap_or(after);
            is_secret_key(key)
                && !value.is_empty()
                && !value.contains('=')
                && !next.is_empty()
                && !next.contains('=')
        })
        .map(|cut| if Some(cut) == first_query { '?' } else { '#' })
}

/// Replaces every occurrence of each secret in `text` by `***`. Used on error messages from libraries
/// (retina, reqwest, FFmpeg) that may quote the URL they were given, in whatever form, and on log
/// lines. Longer secrets go first, so that a short one (a user name) inside a longer one (a password)
/// cannot leave the rest of the longer one behind.
pub fn scrub_secrets(text: &str, secrets: &[String]) -> String {
    let mut by_length: Vec<&String> = secrets.iter().filter(|s| s.len() >= 2).collect();
    by_length.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for s in by_length {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

/// The secrets in a URL (userinfo user and password, and secret pair values, percent-decoded and raw),
/// for [`scrub_secrets`]. The scheme of an `ffmpeg:` input is not one.
pub fn secrets_of(url: &str) -> Vec<String> {
    if let Some((_, inner)) = split_nested(url) {
        return secrets_of(inner);
    }
    let mut found = Vec::new();
    let (_, rest) = split_scheme(url);
    let (userinfo, tail) = split_userinfo(rest);
    if let Some(userinfo) = userinfo {
        found.push(userinfo.to_owned());
        for part in userinfo.splitn(2, ':') {
            found.push(part.to_owned());
        }
    }
    for (start, end) in secret_values(tail) {
        found.push(tail[start..end].to_owned());
    }
    let decoded: Vec<String> = found.iter().map(|s| percent_decode(s)).collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    found.sort();
    found.dedup();
    found
}

/// Decodes `%XX` escapes (`p%40ss` → `p@ss`); anything else, including a malformed escape, is kept as
/// it is. For credentials taken from a URL, which protocol clients want decoded.
///
/// ```
/// assert_eq!(camhub_media::redact::percent_decode("p%40ss%2"), "p@ss%2");
/// ```
pub fn percent_decode(s: &str) -> String {
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
    fn ffmpeg_inputs_keep_their_scheme() {
        let url = "ffmpeg:rtmp://camuser:pw9x@10.0.0.9:1935/live?token=tk9x&res=hd";
        assert_eq!(
            redact_url(url),
            "ffmpeg:rtmp://***:***@10.0.0.9:1935/live?token=***&res=hd"
        );
        let secrets = secrets_of(url);
        for s in ["camuser", "pw9x", "camuser:pw9x", "tk9x"] {
            assert!(secrets.contains(&s.to_owned()), "{s} missing: {secrets:?}");
        }
        for not in ["rtmp", "ffmpeg", "ffmpeg:rtmp", "rtmp://camuser"] {
            assert!(
                !secrets.iter().any(|s| s.contains(not)),
                "{not}: {secrets:?}"
            );
        }
        // A camera called "rtmp" stays readable in a log line scrubbed with these secrets.
        assert_eq!(
            scrub_secrets("camera{id=rtmp}: pw9x refused for camuser", &secrets),
            "camera{id=rtmp}: *** refused for ***"
        );
        assert_eq!(redact_url("ffmpeg:/dev/video0"), "ffmpeg:/dev/video0");
        assert_eq!(
            redact_url("ffmpeg:rtsps://a:b@h:322/x"),
            "ffmpeg:rtsps://***:***@h:322/x"
        );
    }

    #[test]
    fn query_credentials_are_redacted_whole() {
        for (url, shown) in [
            (
                "rtsp://h:554/user=admin&password=hu#nter2&channel=1&stream=0.sdp",
                "rtsp://h:554/user=***&password=***&channel=1&stream=0.sdp",
            ),
            (
                "rtsp://h:554/user=admin&password=hu?nter2&channel=1",
                "rtsp://h:554/user=***&password=***&channel=1",
            ),
            (
                "http://h/snap.cgi?pwd=hu/nter2;chn=1",
                "http://h/snap.cgi?pwd=***;chn=1",
            ),
            (
                "rtsp://h:554/user=admin_password=hunter2_channel=1_stream=0.sdp?real_stream",
                "rtsp://h:554/user=***",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            let secrets = secrets_of(url);
            let scrubbed = scrub_secrets(url, &secrets);
            assert!(!scrubbed.contains("nter2"), "{url}: {scrubbed}");
        }
    }

    #[test]
    fn unencoded_hash_or_question_mark_in_a_userinfo_password_is_hidden() {
        for url in ["rtsp://admin:hu#nter2@h/x", "rtsp://admin:hu?nter2@h/x"] {
            let r = redact_url(url);
            assert_eq!(r, "rtsp://***:***@h/x", "{url}");
            assert!(!scrub_secrets(url, &secrets_of(url)).contains("nter2"));
        }
    }

    #[test]
    fn cut_secrets_are_found() {
        for (url, cut) in [
            ("rtsp://h/user=admin&password=hu#nter2&channel=1", Some('#')),
            ("rtsp://h/user=admin&password=hu?nter2&channel=1", Some('?')),
            ("rtsp://h/user=ad#min&password=x", Some('#')),
            ("http://h/snap.cgi?user=admin&pwd=hu#nter2", Some('#')),
            ("ffmpeg:rtsp://h/user=a&password=hu#nter2", Some('#')),
            ("rtsp://h/user=admin&password=hu%23nter2&channel=1", None),
            (
                "rtsp://h/user=admin&password=pw&channel=1&stream=0.sdp?",
                None,
            ),
            (
                "rtsp://h/user=admin&password=pw&stream=0.sdp?real_stream",
                None,
            ),
            (
                "rtsp://h/user=admin_password=pw_channel=1_stream=0.sdp?real_stream",
                None,
            ),
            ("rtsp://h/user=admin&password=pw?channel=1", None),
            ("http://h/snap.cgi?user=admin&pwd=hu?nter2", None),
            ("http://h/a#frag", None),
            ("rtsp://h/x", None),
            ("", None),
        ] {
            assert_eq!(cut_secret(url), cut, "{url}");
        }
    }

    #[test]
    fn a_short_secret_inside_a_longer_one_leaves_nothing_behind() {
        let url = "rtsp://ad:adm1n-s3cret@h/x";
        let clean = scrub_secrets("login ad:adm1n-s3cret and adm1n-s3cret", &secrets_of(url));
        assert!(
            !clean.contains("s3cret") && !clean.contains("m1n"),
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
            "password=",
            "x/password=é#",
            "ffmpeg:",
            "ffmpeg:a://",
            "a?#@",
            "pwd=?",
        ] {
            let _ = redact_url(s);
            let _ = secrets_of(s);
            let _ = cut_secret(s);
        }
    }
}
