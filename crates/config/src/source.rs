//! Classifies `url` / `substream_url` values by scheme and checks them (both take the same kinds of
//! URL). Every message quotes the URL redacted, never as written: URLs carry passwords.

use camhub_media::redact::{cut_secret, redact_url};

/// The fix for a URL whose scheme camhub does not take.
pub(crate) const SCHEMES_FIX: &str = "use rtsp://, http://, https://, ffmpeg:INPUT or demo: \
     (other inputs FFmpeg opens go through ffmpeg:, e.g. \"ffmpeg:rtmp://host/live\" or \"ffmpeg:rtsps://host/path\")";

/// A URL that passed its checks, by kind; network URLs as the `url` crate parsed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `rtsp://`.
    Rtsp(url::Url),
    /// `http://` or `https://`.
    Http {
        /// `https://`.
        tls: bool,
        /// The parsed URL.
        url: url::Url,
    },
    /// `ffmpeg:INPUT`.
    Ffmpeg {
        /// What follows `ffmpeg:`.
        input: String,
    },
    /// `demo:` with its picture size and rate.
    Demo {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Frames per second.
        fps: u32,
    },
}

/// Why a URL was refused: a message and how to fix it, both with the URL redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlError {
    pub(crate) message: String,
    pub(crate) fix: String,
}

fn err(message: String, fix: impl Into<String>) -> UrlError {
    UrlError {
        message,
        fix: fix.into(),
    }
}

/// How a URL is quoted in an error message: redacted, and more bluntly than [`redact_url`] because
/// the URLs that reach error messages are the malformed ones, which a generic redactor can misread (a
/// password holding an unencoded `/` or `?` ends the authority early). Everything between `://` and
/// the last `@` goes; a URL without `://` is not quoted at all, only its scheme.
pub(crate) fn quoted(url: &str) -> String {
    let redacted = redact_url(url);
    let Some(i) = redacted
        .find("://")
        .filter(|&i| scheme_of(url).is_some_and(|s| s.len() == i))
    else {
        return match scheme_of(url) {
            Some(scheme) => format!("starting with \"{scheme}:\""),
            None => "(not shown)".to_owned(),
        };
    };
    let (head, rest) = redacted.split_at(i + 3);
    match rest.rfind('@') {
        Some(at) => format!("\"{head}***{}\"", &rest[at..]),
        None => format!("\"{redacted}\""),
    }
}

/// Checks a camera's `url` or `substream_url`.
pub(crate) fn classify(url: &str) -> Result<Scheme, UrlError> {
    let redacted = quoted(url);
    if url.trim().is_empty() {
        return Err(err("the URL is empty".into(), SCHEMES_FIX));
    }
    if url.trim() != url {
        return Err(err(
            "the URL has leading or trailing spaces".to_owned(),
            "remove the spaces inside the quotes",
        ));
    }
    let Some(scheme) = scheme_of(url) else {
        return Err(err("the URL has no scheme".to_owned(), SCHEMES_FIX));
    };
    let rest = &url[scheme.len() + 1..];
    match scheme.to_ascii_lowercase().as_str() {
        "rtsp" => network(url, &redacted, Kind::Rtsp).map(Scheme::Rtsp),
        "http" => network(url, &redacted, Kind::Http).map(|url| Scheme::Http { tls: false, url }),
        "https" => network(url, &redacted, Kind::Http).map(|url| Scheme::Http { tls: true, url }),
        // retina, camhub's RTSP client, speaks no TLS: accepting the URL would give a camera that can
        // never connect. FFmpeg can.
        "rtsps" => Err(err(
            format!(
                "camhub's RTSP client cannot open rtsps:// (RTSP over TLS) URLs like {redacted}"
            ),
            match redacted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                Some(shown) => format!("open it through FFmpeg instead: \"ffmpeg:{shown}\""),
                None => "open it through FFmpeg instead: \"ffmpeg:rtsps://…\"".to_owned(),
            },
        )),
        "ffmpeg" if rest.trim().is_empty() => Err(err(
            "\"ffmpeg:\" needs an input after the colon".into(),
            "write it like \"ffmpeg:/dev/video0\" or \"ffmpeg:/path/clip.mp4\"",
        )),
        "ffmpeg" => Ok(Scheme::Ffmpeg {
            input: rest.to_owned(),
        }),
        // Demo URLs hold no secrets; quoting them whole makes a typo in the query easy to spot.
        "demo" => demo(rest, &format!("\"{}\"", redact_url(url))),
        _ => Err(err(
            format!("unsupported URL scheme \"{scheme}:\""),
            SCHEMES_FIX,
        )),
    }
}

/// The scheme (without `:`), if the text starts with `ALPHA *(ALPHA / DIGIT / "+" / "-" / ".") ":"`.
fn scheme_of(url: &str) -> Option<&str> {
    let colon = url.find(':')?;
    let scheme = &url[..colon];
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))).then_some(scheme)
}

/// Which network client a URL is for, to pick the example in messages.
enum Kind {
    Rtsp,
    Http,
}

/// The fix for a character a password must not hold as it is.
const ENCODE_FIX: &str =
    "percent-encode @ : / ? # in a user name or password: @ is %40, : is %3A, / is %2F, ? is %3F, # is %23";

fn network(url: &str, redacted: &str, kind: Kind) -> Result<url::Url, UrlError> {
    let example = match kind {
        Kind::Rtsp => "rtsp://user:password@192.168.1.64:554/path",
        Kind::Http => "http://user:password@192.168.1.50:81/stream",
    };
    let parsed = url::Url::parse(url).map_err(|e| {
        err(
            format!("invalid URL {redacted}: {e}"),
            format!("write it like \"{example}\" ({ENCODE_FIX})"),
        )
    })?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(err(
            format!("URL {redacted} has no host"),
            format!("put the camera's address after \"://\", like \"{example}\""),
        ));
    }
    // Xiongmai-style URLs carry the password in the path, where an unencoded `#` or `?` silently cuts
    // it short: the URL parses, and the camera gets a wrong password and a mangled path.
    if let Some(c) = cut_secret(url) {
        let what = if c == '#' {
            "turns the rest of the URL into a fragment, which is never sent to the camera"
        } else {
            "starts a query in the middle of it"
        };
        let encoded = if c == '#' { "%23" } else { "%3F" };
        return Err(err(
            format!("a \"{c}\" inside a password or user value in URL {redacted} {what}"),
            format!("percent-encode it: write {c} as {encoded} (and # as %23, ? as %3F, & as %26 anywhere in the value)"),
        ));
    }
    Ok(parsed)
}

/// Parses what follows `demo:`: nothing, or `?width=W&height=H&fps=F` (any subset, any order).
fn demo(rest: &str, redacted: &str) -> Result<Scheme, UrlError> {
    const FIX: &str = "write \"demo:\" or \"demo:?width=1280&height=720&fps=25\" \
         (width even, 16 to 3840; height even, 16 to 2160; fps 1 to 60)";
    let (mut width, mut height, mut fps) = (None, None, None);
    let query = match rest.strip_prefix('?') {
        Some(q) => q,
        None if rest.is_empty() => "",
        None => return Err(err(format!("invalid demo URL {redacted}"), FIX)),
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(err(format!("\"{pair}\" in demo URL has no value"), FIX));
        };
        let (slot, min, max, even) = match key {
            "width" => (&mut width, 16, 3840, true),
            "height" => (&mut height, 16, 2160, true),
            "fps" => (&mut fps, 1, 60, false),
            _ => {
                return Err(err(
                    format!("unknown demo URL parameter \"{key}\" (valid: width, height, fps)"),
                    FIX,
                ))
            }
        };
        if slot.is_some() {
            return Err(err(
                format!("demo URL parameter \"{key}\" is given twice"),
                FIX,
            ));
        }
        let n: u32 = value
            .parse()
            .map_err(|_| err(format!("invalid {key} \"{value}\" in demo URL"), FIX))?;
        if n < min || n > max || (even && !n.is_multiple_of(2)) {
            let even = if even { "an even number " } else { "" };
            return Err(err(
                format!("{key}={n} in demo URL is out of range"),
                format!("use {even}from {min} to {max}"),
            ));
        }
        *slot = Some(n);
    }
    Ok(Scheme::Demo {
        width: width.unwrap_or(1280),
        height: height.unwrap_or(720),
        fps: fps.unwrap_or(25),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let rtsp = |u: &str| matches!(classify(u), Ok(Scheme::Rtsp(url)) if url.as_str() == u);
        assert!(rtsp("rtsp://h/x"));
        assert!(matches!(classify("RTSP://h/x"), Ok(Scheme::Rtsp(_))));
        assert!(matches!(
            classify("http://h:81/stream"),
            Ok(Scheme::Http { tls: false, .. })
        ));
        assert!(matches!(
            classify("https://h/capture"),
            Ok(Scheme::Http { tls: true, .. })
        ));
        assert_eq!(
            classify("ffmpeg:/dev/video0"),
            Ok(Scheme::Ffmpeg {
                input: "/dev/video0".into()
            })
        );
        assert_eq!(
            classify("ffmpeg:rtmp://u:p@h/live"),
            Ok(Scheme::Ffmpeg {
                input: "rtmp://u:p@h/live".into()
            })
        );
    }

    #[test]
    fn demo_query() {
        let d = |w, h, f| {
            Ok(Scheme::Demo {
                width: w,
                height: h,
                fps: f,
            })
        };
        assert_eq!(classify("demo:"), d(1280, 720, 25));
        assert_eq!(classify("demo:?"), d(1280, 720, 25));
        assert_eq!(
            classify("demo:?width=640&height=360&fps=10"),
            d(640, 360, 10)
        );
        assert_eq!(classify("demo:?fps=60&width=16"), d(16, 720, 60));
        assert_eq!(
            classify("demo:?width=3840&height=2160&fps=1"),
            d(3840, 2160, 1)
        );
        for bad in [
            "demo:foo",
            "demo://x",
            "demo:?width=641",
            "demo:?width=14",
            "demo:?width=3842",
            "demo:?height=2162",
            "demo:?fps=0",
            "demo:?fps=61",
            "demo:?fps=ten",
            "demo:?fps",
            "demo:?size=10",
            "demo:?fps=10&fps=20",
            "demo:?width=-2",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
        let e = classify("demo:?width=641").unwrap_err();
        assert_eq!(e.message, "width=641 in demo URL is out of range");
        assert_eq!(e.fix, "use an even number from 16 to 3840");
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            " rtsp://h/x",
            "rtmp://h/live",
            "192.168.1.5:554/stream",
            "/dev/video0",
            "ffmpeg:",
            "ffmpeg:  ",
            "rtsp://",
            "rtsp:///x",
            "http://",
            "http://h:99999/",
            "rtsp://a:b@:554/x",
        ] {
            assert!(classify(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rtsps_is_refused_with_the_ffmpeg_fix() {
        let e = classify("rtsps://admin:hunter2@h:322/x").unwrap_err();
        assert!(e.message.contains("rtsps://"), "{}", e.message);
        assert_eq!(
            e.fix,
            "open it through FFmpeg instead: \"ffmpeg:rtsps://***@h:322/x\""
        );
        assert!(matches!(
            classify("ffmpeg:rtsps://admin:hunter2@h:322/x"),
            Ok(Scheme::Ffmpeg { .. })
        ));
    }

    #[test]
    fn a_hash_or_question_mark_cutting_a_path_password_is_refused() {
        for (bad, encoded) in [
            ("rtsp://h:554/user=admin&password=hu#nter2&channel=1", "%23"),
            ("rtsp://h:554/user=admin&password=hu?nter2&channel=1", "%3F"),
            ("http://h/snap.cgi?user=admin&pwd=hu#nter2", "%23"),
        ] {
            let e = classify(bad).unwrap_err();
            assert!(e.fix.contains(encoded), "{bad}: {}", e.fix);
            assert!(
                !e.message.contains("nter2") && !e.message.contains("admin"),
                "{}",
                e.message
            );
        }
        for good in [
            "rtsp://h:554/user=admin&password=hu%23nter2&channel=1&stream=0.sdp",
            "rtsp://h:554/user=admin&password=pw&channel=1&stream=0.sdp?",
            "rtsp://h:554/user=admin_password=pw_channel=1_stream=0.sdp?real_stream",
            "http://h/snap.cgi?user=admin&pwd=hu?nter2",
        ] {
            assert!(classify(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn messages_never_hold_the_password() {
        for bad in [
            "rtmp://admin:hunter2@h/live",
            "rtsp://admin:hunter2@:554/x",
            "rtsp://admin:hunter2@h:99999/x",
            "http://admin:hunter2@h:abc/x",
            "rtsp://admin:hunter2@",
            " rtsp://admin:hunter2@h/x",
            "rtsp://h:99999/user=admin&password=hunter2&channel=1",
            "foo:user=admin&password=hunter2",
            "rtsp:/admin:hunter2@host/x",
            "rtsp:admin:hunter2@host/x",
            "rtsp://admin:hun/ter2@host:554/x",
            "http://admin:hun?ter2@host/x",
            "rtsp://admin:hun#ter2@host/x",
        ] {
            let e = classify(bad).unwrap_err();
            for secret in ["hunter2", "hun", "ter2"] {
                assert!(!e.message.contains(secret), "{bad}: {}", e.message);
                assert!(!e.fix.contains(secret), "{bad}: {}", e.fix);
            }
        }
    }
}
