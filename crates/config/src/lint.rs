//! Warnings: values that are valid but almost certainly not what the user meant — the mistakes
//! newcomers make when they copy an example. A warning never stops camhub (`camhub check --strict`
//! makes it fail the check); each says what to write instead.

use crate::source::Scheme;

/// A warning about one URL, before it gets its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlWarning {
    pub(crate) message: String,
    pub(crate) fix: String,
}

/// Host names that examples and camera manuals use as stand-ins for a real address.
const PLACEHOLDER_HOSTS: &[&str] = &[
    "ip",
    "host",
    "hostname",
    "address",
    "ip_address",
    "ip-address",
    "ipaddress",
    "camera_ip",
    "camera-ip",
    "cameraip",
    "cam_ip",
    "cam-ip",
    "camera_host",
    "camera-host",
    "your_ip",
    "your-ip",
    "yourip",
    "your_camera_ip",
    "device_ip",
    "esp32_ip",
    "esp32-ip",
    "example.com",
    "camera.example.com",
];

/// Whether a host is a stand-in left from an example: one of the usual words (`IP`, `HOST`,
/// `CAMERA_IP`…, any case), or an address with `x` for digits (`192.168.1.x`, `x.x.x.x`,
/// `192.168.1.xxx`).
pub(crate) fn is_placeholder_host(host: &str) -> bool {
    let lower = host.to_ascii_lowercase();
    if PLACEHOLDER_HOSTS.contains(&lower.as_str()) {
        return true;
    }
    let parts: Vec<&str> = lower.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'x'))
        && parts.iter().any(|p| p.contains('x'))
}

/// The warnings about a `url` / `substream_url` (`raw`, as written) that parsed as `scheme`: a
/// placeholder host, and an ESP32-CAM stream URL without its port.
pub(crate) fn url_warnings(raw: &str, scheme: &Scheme) -> Vec<UrlWarning> {
    let parsed = match scheme {
        Scheme::Rtsp(url) | Scheme::Http { url, .. } => url.clone(),
        Scheme::Ffmpeg { input } if input.contains("://") => match url::Url::parse(input) {
            Ok(url) => url,
            Err(_) => return Vec::new(),
        },
        Scheme::Ffmpeg { .. } | Scheme::Demo { .. } => return Vec::new(),
    };
    let mut warnings = Vec::new();
    if let Some(host) = parsed.host_str().filter(|h| is_placeholder_host(h)) {
        warnings.push(UrlWarning {
            message: format!("the host \"{host}\" looks like a placeholder left from an example"),
            fix: "put the camera's IP address or host name there, e.g. 192.168.1.64 \
                  (the camera's app or your router's client list shows it)"
                .to_owned(),
        });
    }
    // The ESP32-CAM example sketch (CameraWebServer) serves its page and snapshots on port 80 and
    // the MJPEG stream on port 81: `http://IP/stream` answers 404 or nothing.
    // The `url` crate drops a written default port (`:80`), so the port is looked for in the text:
    // `http://host:80/stream` is a deliberate choice.
    if matches!(scheme, Scheme::Http { tls: false, .. })
        && parsed.port().is_none()
        && !has_written_port(raw)
        && parsed.path() == "/stream"
    {
        let host = parsed.host_str().unwrap_or("HOST");
        warnings.push(UrlWarning {
            message: "an http:// URL with the path /stream and no port: an ESP32-CAM serves its \
                      stream on port 81, not 80"
                .to_owned(),
            fix: format!(
                "if this is an ESP32-CAM, write \"http://{host}:81/stream\" \
                 (or \"http://{host}/capture\" for snapshots)"
            ),
        });
    }
    warnings
}

/// Whether the authority of a URL as written ends in `:PORT` (after any `user:password@`).
fn has_written_port(raw: &str) -> bool {
    let Some((_, rest)) = raw.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    // An IPv6 literal holds colons of its own: only a colon after its `]` starts a port.
    let after_host = host_port.rsplit(']').next().unwrap_or("");
    after_host.contains(':')
}

/// Camera keys newcomers write for credentials, which camhub takes in the URL instead.
pub(crate) const CREDENTIAL_KEYS: &[&str] = &[
    "user", "username", "login", "password", "pass", "passwd", "pwd",
];

/// The fix for a credential key in a `[[camera]]`.
pub(crate) const CREDENTIAL_FIX: &str =
    "put the user name and password in the URL: url = \"rtsp://USER:PASSWORD@HOST:554/path\" \
     (percent-encode @ : / ? # in them: @ is %40, : is %3A, / is %2F, ? is %3F, # is %23); \
     camhub never shows them in logs, the API or the UI";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::source::classify;

    #[test]
    fn placeholders() {
        for host in [
            "IP",
            "host",
            "CAMERA_IP",
            "x.x.x.x",
            "192.168.1.x",
            "192.168.1.XXX",
        ] {
            assert!(is_placeholder_host(host), "{host}");
        }
        for host in [
            "192.168.1.64",
            "cam1",
            "frontdoor.lan",
            "x",
            "ipcam",
            "10.0.0.x1y",
            "hostess",
        ] {
            assert!(!is_placeholder_host(host), "{host}");
        }
    }

    fn warnings(url: &str) -> Vec<UrlWarning> {
        url_warnings(url, &classify(url).unwrap())
    }

    #[test]
    fn esp32_stream_without_port() {
        let w = warnings("http://192.168.1.50/stream");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].fix.contains("\"http://192.168.1.50:81/stream\""),
            "{w:?}"
        );
        assert!(warnings("http://192.168.1.50:81/stream").is_empty());
        assert!(warnings("http://192.168.1.50:80/stream").is_empty());
        assert!(warnings("https://cam.lan/stream").is_empty());
        assert!(warnings("http://192.168.1.50/capture").is_empty());
        assert!(warnings("http://user:p@ss@192.168.1.50:80/stream").is_empty());
        assert_eq!(warnings("http://user:pw@192.168.1.50/stream").len(), 1);
        assert_eq!(warnings("http://[fe80::1]/stream").len(), 1);
        assert!(warnings("http://[fe80::1]:80/stream").is_empty());
    }

    #[test]
    fn placeholder_hosts_in_every_kind_of_url() {
        assert_eq!(
            warnings("rtsp://admin:pw@IP:554/Streaming/Channels/101").len(),
            1
        );
        assert_eq!(warnings("ffmpeg:rtmp://HOST/live").len(), 1);
        // A placeholder ESP32 URL gets both warnings.
        assert_eq!(warnings("http://IP/stream").len(), 2);
        assert!(warnings("ffmpeg:/dev/video0").is_empty());
        assert!(warnings("demo:").is_empty());
    }
}
