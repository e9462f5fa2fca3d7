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

/// Where in a `[camera.motion]` table a warning points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MotionPlace {
    /// A key of the table (`fps`).
    Key(&'static str),
    /// Polygon N of `masks`.
    Mask(usize),
    /// Polygon N of `zones`.
    Zone(usize),
}

/// A warning about a `[camera.motion]` table, before it gets its place in the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MotionWarning {
    pub(crate) place: MotionPlace,
    pub(crate) message: String,
    pub(crate) fix: String,
}

/// Above this many pictures a second, motion detection costs CPU without catching more.
const USEFUL_FPS: f64 = 15.0;

/// The warnings about an enabled `[camera.motion]` table (a disabled one warns about nothing: its
/// values are not used): a detection rate that costs CPU for nothing, and polygons without area
/// (every point on one line), which mask or watch nothing.
pub(crate) fn motion_warnings(motion: &crate::Motion) -> Vec<MotionWarning> {
    let mut warnings = Vec::new();
    if !motion.enabled {
        return warnings;
    }
    if motion.fps > USEFUL_FPS {
        warnings.push(MotionWarning {
            place: MotionPlace::Key("fps"),
            message: format!(
                "detecting motion {} times a second costs CPU for nothing: 5 to 10 pictures a \
                 second catch anything that moves",
                motion.fps
            ),
            fix: "use fps = 10 (the default) or less".to_owned(),
        });
    }
    let polygons = [
        (
            &motion.masks,
            MotionPlace::Mask as fn(usize) -> MotionPlace,
            "masks nothing",
        ),
        (
            &motion.zones,
            MotionPlace::Zone as fn(usize) -> MotionPlace,
            "watches nothing",
        ),
    ];
    for (list, place, what) in polygons {
        for (i, polygon) in list.iter().enumerate() {
            if area(polygon) == 0.0 {
                warnings.push(MotionWarning {
                    place: place(i),
                    message: format!(
                        "this polygon has no area (its points are on one line): it {what}"
                    ),
                    fix: "give it 3 or more corners that are not on one line, like \
                          [[0, 0], [400, 0], [400, 200], [0, 200]] (pixels of the main picture)"
                        .to_owned(),
                });
            }
        }
    }
    warnings
}

/// The area of a polygon (shoelace formula; its corners in order, either way round).
fn area(polygon: &[[f64; 2]]) -> f64 {
    let n = polygon.len();
    let twice: f64 = (0..n)
        .map(|i| {
            let [x1, y1] = polygon[i];
            let [x2, y2] = polygon[(i + 1) % n];
            x1 * y2 - x2 * y1
        })
        .sum();
    (twice / 2.0).abs()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::source::classify;

    #[test]
    fn polygon_areas() {
        assert_eq!(area(&[[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]]), 8.0);
        assert_eq!(area(&[[0.0, 2.0], [4.0, 2.0], [4.0, 0.0], [0.0, 0.0]]), 8.0);
        assert_eq!(area(&[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]), 0.0);
        assert_eq!(area(&[[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]]), 0.0);
        assert_eq!(area(&[[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]]), 2.0);
    }

    #[test]
    fn motion_lints() {
        let quiet = crate::Motion::default();
        assert!(motion_warnings(&quiet).is_empty());
        let loud = crate::Motion {
            fps: 25.0,
            masks: vec![vec![[0.0, 0.0], [10.0, 10.0], [20.0, 20.0]]],
            zones: vec![
                vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]],
                vec![[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
            ],
            ..crate::Motion::default()
        };
        let places: Vec<MotionPlace> = motion_warnings(&loud).iter().map(|w| w.place).collect();
        assert_eq!(
            places,
            [
                MotionPlace::Key("fps"),
                MotionPlace::Mask(0),
                MotionPlace::Zone(1),
            ]
        );
        // The limits themselves are fine.
        let edge = crate::Motion {
            fps: 15.0,
            threshold: 1,
            ..crate::Motion::default()
        };
        assert!(motion_warnings(&edge).is_empty());
        // A disabled table is not used: nothing to warn about.
        let off = crate::Motion {
            enabled: false,
            ..loud
        };
        assert!(motion_warnings(&off).is_empty());
    }

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
