//! The docs name only paths that exist: every camhub URL path in `README.md` and `docs/*.md` is
//! requested from the real camhub binary (its real router), with the camera id replaced by one the
//! test config has, and must be answered — a GET with a 2xx (or, for a path the router has only for
//! other methods, its "no such method" answer), a path named after a method (`POST /api/login`)
//! with anything but "no such route" for that method, a WebSocket path (`/ws`, `/mse`, `/frames`) with the answer to a GET
//! without an upgrade and then a real upgrade (101). A path that comes with a later issue is in
//! [`PLANNED`]: the docs may name it only on a line that says it is planned, and it must still be
//! a 404 (when it lands, take it out of the list and its docs are tested like the rest).
//!
//! What counts as a camhub path, wherever it stands (code blocks, tables, inline code, prose):
//! - the path of an `http(s)://` or `ws(s)://` URL on camhub's default port 8080
//!   (`http://127.0.0.1:8080/...`, `http://HOST:8080/...`), on a host named after it
//!   (`https://camhub.lan/...`), or on [`CAMHUB_MACHINE`], the address the docs give camhub's machine
//!   (where the reverse proxy serves it); camera URLs (`:81`, `:554`, other addresses) are not;
//! - a path after an HTTP method (`GET /api/ws`);
//! - a path that starts with one of camhub's top-level names ([`ROOTS`]) after a space, quote,
//!   backtick, bracket or `|` (`` `/healthz` ``, `'/api/ws'`, `location = /api/ws`) — never a file
//!   path like `/var/lib/camhub` or a camera's `/stream`.
//!
//! A path with an ellipsis (`/api/cameras/{id}/…`) is a prefix, not a path, and is skipped. In a
//! query only numeric values are kept (`?width=640&fps=…` is requested as `?width=640`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The camera every camera id in the docs is replaced with.
const CAMERA: &str = "demo";
/// The camera for paths that serve a camera's own encoded stream (the demo has none): an H.264
/// camera on the test's RTSP server.
const H264_CAMERA: &str = "h264";
/// Last segments of the paths that serve a camera's own encoded stream.
const PACKET_PATHS: &[&str] = &["/stream.mp4", "/mse", "/hls/index.m3u8"];
/// The motion event every event id in the docs is replaced with (the test stores it, with a
/// snapshot and two frames, before camhub starts).
const EVENT: &str = "1";

/// The test's camhub: one small demo camera; enough variants for every size the docs ask for.
const CONFIG: &str = r#"
[server]
max_variants = 64

[[camera]]
id = "demo"
url = "demo:?width=640&height=360&fps=10"
"#;

/// The address the docs give camhub's machine (a reverse proxy in front of camhub listens there).
/// Camera examples use other addresses.
const CAMHUB_MACHINE: &str = "192.168.1.10";

/// Top-level names of camhub's routes (and planned ones) that mark a bare path as camhub's.
const ROOTS: &[&str] = &["/api", "/cameras", "/healthz", "/metrics", "/history"];

/// Paths of later issues the docs may name (on a line that says "planned" or "later"), and which
/// camhub must not serve yet. `{id}` is a camera id.
const PLANNED: &[(&str, &str)] = &[];

/// Words that mark a line naming a planned path.
const PLANNED_MARKERS: &[&str] = &["planned", "later"];

/// One camhub path named in a doc.
#[derive(Debug, Clone)]
struct Mention {
    /// The doc, relative to the repository (`docs/api.md`).
    file: String,
    /// 1-based line.
    line: usize,
    /// The method the doc names before the path (`POST /api/login`), if any.
    method: Option<&'static str>,
    /// The path as written (`/api/cameras/{id}/frame.jpeg?width=…`).
    raw: String,
    /// The whole line, to look for a "planned" marker.
    text: String,
}

/// Characters that end a path token.
fn ends_token(c: char) -> bool {
    c.is_whitespace() || "`'\"()<>|[]*,;\\".contains(c)
}

/// Characters after which a bare path may start.
fn starts_token(c: char) -> bool {
    c.is_whitespace() || "`'\"([|=,>".contains(c)
}

/// The token at the start of `s`, without trailing sentence punctuation.
fn token(s: &str) -> &str {
    let end = s.find(ends_token).unwrap_or(s.len());
    s[..end].trim_end_matches(['.', ':', '!', '?'])
}

/// Whether a URL's authority (`user@host:port`) is camhub: its default port, a host named after
/// it, or the docs' address of its machine (a reverse proxy in front of it).
fn is_camhub(authority: &str) -> bool {
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    host_port.ends_with(":8080")
        || host_port.to_ascii_lowercase().contains("camhub")
        || host == CAMHUB_MACHINE
}

/// HTTP methods the docs write before a path.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// The camhub paths named on one line of a doc, as written, each once, with the method written
/// before it (`POST /api/login`), if any.
fn paths_in_line(line: &str) -> BTreeSet<(Option<&'static str>, String)> {
    let mut found = BTreeSet::new();
    // URLs to camhub.
    for (at, _) in line.match_indices("://") {
        let scheme_start = line[..at]
            .rfind(|c: char| !c.is_ascii_alphabetic())
            .map_or(0, |p| p + 1);
        let scheme = line[scheme_start..at].to_ascii_lowercase();
        if !["http", "https", "ws", "wss"].contains(&scheme.as_str()) {
            continue;
        }
        let rest = token(&line[at + 3..]);
        if let Some(slash) = rest.find('/') {
            if is_camhub(&rest[..slash]) {
                found.insert((None, rest[slash..].to_owned()));
            }
        }
    }
    let boundary_before = |at: usize| line[..at].chars().next_back().is_none_or(starts_token);
    // The method written just before `at`, as in `POST /api/login`.
    let method_before = |at: usize| {
        let before = line[..at].strip_suffix(' ')?;
        METHODS
            .iter()
            .copied()
            .find(|m| before.ends_with(m) && boundary_before(before.len() - m.len()))
    };
    // Paths after an HTTP method, and bare paths under camhub's top-level names.
    for (at, _) in line.match_indices('/') {
        if let Some(method) = method_before(at) {
            found.insert((Some(method), token(&line[at..]).to_owned()));
            continue;
        }
        let rest = &line[at..];
        let root = ROOTS.iter().find(|root| {
            rest.strip_prefix(*root).is_some_and(|after| {
                after
                    .chars()
                    .next()
                    .is_none_or(|c| c == '/' || c == '?' || ends_token(c))
            })
        });
        if root.is_some() && boundary_before(at) {
            found.insert((None, token(rest).to_owned()));
        }
    }
    found.retain(|(_, p)| p.starts_with('/'));
    found
}

/// Every camhub path named in `text`, with its line.
fn mentions(file: &str, text: &str) -> Vec<Mention> {
    text.lines()
        .enumerate()
        .flat_map(|(i, line)| {
            paths_in_line(line)
                .into_iter()
                .map(move |(method, raw)| Mention {
                    file: file.to_owned(),
                    line: i + 1,
                    method,
                    raw,
                    text: line.to_owned(),
                })
        })
        .collect()
}

/// The request that tests a path as written: the camera id (the segment after `cameras`, and any
/// `{placeholder}`) becomes [`CAMERA`]; only numeric query parameters are kept. `None` for a
/// prefix with an ellipsis.
fn request_for(raw: &str) -> Option<String> {
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    if path.contains('…') || path.contains("...") {
        return None;
    }
    let mut segments: Vec<String> = Vec::new();
    for segment in path.split('/') {
        let after = |name: &str| segments.last().is_some_and(|s| s == name);
        let placeholder = segment.starts_with('{') && segment.ends_with('}');
        let next = if after("events") && (placeholder || segment.parse::<u64>().is_ok()) {
            EVENT.to_owned()
        } else if (after("cameras") && !segment.is_empty()) || placeholder {
            CAMERA.to_owned()
        } else {
            // A frame number (`frames/{n}.jpeg`) is the event's first frame.
            segment.replace("{n}", "0")
        };
        segments.push(next);
    }
    let mut request = segments.join("/");
    if PACKET_PATHS.iter().any(|p| request.ends_with(p)) {
        request = request.replace(
            &format!("/cameras/{CAMERA}/"),
            &format!("/cameras/{H264_CAMERA}/"),
        );
    }
    let params: Vec<&str> = query
        .split('&')
        .filter(|kv| {
            kv.split_once('=')
                .is_some_and(|(k, v)| !k.is_empty() && v.parse::<f64>().is_ok())
        })
        .collect();
    if !params.is_empty() {
        request.push('?');
        request.push_str(&params.join("&"));
    }
    Some(request)
}

/// The path part of a request.
fn path_of(request: &str) -> &str {
    request.split('?').next().unwrap_or(request)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `README.md` and every `docs/*.md`, as (name relative to the repository, text).
fn docs() -> Vec<(String, String)> {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, text)
        })
        .collect()
}

/// A request's status and, when it is not a success, its body (a success may be an endless MJPEG
/// stream: only its headers are read).
async fn answer(client: &reqwest::Client, method: &str, url: &str) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = client
        .request(method.clone(), url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    if response.status().is_success() {
        return (status, String::new());
    }
    let body = response.text().await.unwrap_or_default();
    (status, body)
}

/// Stores motion event [`EVENT`] of camera [`CAMERA`] in `data_dir`, with a snapshot and two frames,
/// as camhub's motion detection would have.
fn store_an_event(data_dir: &Path) {
    let store = camhub_store::Store::open_dir(data_dir).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now - 60_000;
    let id = store.event_start(CAMERA, start, 3.0, None).unwrap();
    assert_eq!(id.to_string(), EVENT);
    let jpegs = camhub_testkit::ffmpeg_jpegs(3, 160, 90);
    let dir = data_dir.join("events").join(CAMERA);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (n, jpeg) in jpegs.iter().enumerate() {
        std::fs::write(dir.join(format!("{n}.jpg")), jpeg).unwrap();
        files.push((format!("{CAMERA}/{n}.jpg"), jpeg.len() as i64));
    }
    store
        .event_update(
            id,
            &camhub_store::EventUpdate {
                last_ms: start + 5_000,
                snapshot: Some(files[0].clone()),
                add_frames: files[1..].to_vec(),
                ..Default::default()
            },
        )
        .unwrap();
    store.event_end(id, start + 5_000).unwrap();
}

/// A 404 of the router itself (no route, or no such UI file), not of a handler.
fn is_router_404(status: u16, body: &str) -> bool {
    status == 404 && (body.contains("no such page or endpoint") || body.contains("no such file"))
}

/// The answer to a method the route does not have (camhub's access check answers it before axum's
/// 405 could).
fn is_wrong_method(status: u16, body: &str) -> bool {
    status == 405 || (status == 403 && body.contains("no access rule"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_path_the_docs_name_exists() {
    let all: Vec<Mention> = docs()
        .iter()
        .flat_map(|(file, text)| mentions(file, text))
        .collect();
    // The extraction itself works: these are named in the docs today, in different forms.
    let named = |file: &str, raw: &str| all.iter().any(|m| m.file == file && m.raw == raw);
    for (file, raw) in [
        ("README.md", "/api/ws"),
        ("README.md", "/"),
        ("docs/api.md", "/api/cameras/{id}/frame.jpeg"),
        ("docs/api.md", "/api/cameras/demo/frame.jpeg?width=1280"),
        ("docs/api.md", "/healthz"),
    ] {
        assert!(named(file, raw), "{raw} not found in {file}: {all:#?}");
    }

    let planned: BTreeMap<String, &str> = PLANNED
        .iter()
        .map(|(p, why)| (request_for(p).unwrap(), *why))
        .collect();
    let mut problems = Vec::new();
    // Each distinct (method, request) once, with every place that names it.
    let mut requests: BTreeMap<(Option<&str>, String), Vec<&Mention>> = BTreeMap::new();
    for m in &all {
        let Some(request) = request_for(&m.raw) else {
            continue;
        };
        if let Some(why) = planned.get(path_of(&request)) {
            let lower = m.text.to_lowercase();
            if !PLANNED_MARKERS.iter().any(|w| lower.contains(w)) {
                problems.push(format!(
                    "{}:{}: {} comes with {why}: say so on that line (\"planned\") or leave it out",
                    m.file, m.line, m.raw
                ));
            }
            continue;
        }
        let method = m.method.filter(|&x| x != "GET" && x != "HEAD");
        requests.entry((method, request)).or_default().push(m);
    }
    assert!(
        requests.len() >= 10,
        "only {} distinct paths found: {requests:#?}",
        requests.len()
    );

    // The list, for `cargo test --test docs -- --nocapture`.
    for ((method, request), places) in &requests {
        eprintln!(
            "{} {request}  ({} mention(s))",
            method.unwrap_or("GET"),
            places.len()
        );
    }
    let data = tempfile::tempdir().unwrap();
    store_an_event(data.path());
    let rtsp =
        camhub_testkit::RtspServer::start(camhub_testkit::RtspServerOptions::default()).await;
    let config = format!(
        "{}\n[[camera]]\nid = \"{H264_CAMERA}\"\nurl = \"{}\"\n",
        CONFIG.replace(
            "[server]\n",
            &format!("[server]\ndata_dir = \"{}\"\n", data.path().display()),
        ),
        rtsp.url("/h264")
    );
    let hub = common::start(&config).await;
    // Redirects are answers too (a login form's 303): look at them, do not follow them.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for ((method, request), places) in &requests {
        let where_ = places
            .iter()
            .map(|m| {
                let method = m.method.map(|x| format!("{x} ")).unwrap_or_default();
                format!("{}:{}: {method}{}", m.file, m.line, m.raw)
            })
            .collect::<Vec<_>>()
            .join("\n  ");
        let url = hub.url(request);
        if let Some(method) = method {
            // The doc names the method: the route must have it. No body is sent, so the handler
            // may refuse the request; only the router's "no such route / method" is wrong.
            let (status, body) = answer(&client, method, &url).await;
            if is_router_404(status, &body) || is_wrong_method(status, &body) {
                problems.push(format!(
                    "{where_}\n  {method} {request} answered {status} (no such route for {method}): {body}"
                ));
            }
            continue;
        }
        let (status, body) = answer(&client, "GET", &url).await;
        if ["/ws", "/mse", "/frames"]
            .iter()
            .any(|end| path_of(request).ends_with(end))
        {
            // A GET without the upgrade headers is refused by the WebSocket handler, not the router.
            if status == 404 || !body.to_lowercase().contains("upgrade") {
                problems.push(format!(
                    "{where_}\n  GET {request} without an upgrade answered {status}: {body}"
                ));
                continue;
            }
            let ws_url = url.replacen("http://", "ws://", 1);
            match tokio_tungstenite::connect_async(ws_url.as_str()).await {
                Ok((_, response)) => assert_eq!(response.status().as_u16(), 101),
                Err(e) => problems.push(format!(
                    "{where_}\n  WebSocket {request} did not upgrade: {e}"
                )),
            }
        } else if !(200..300).contains(&status) && !is_wrong_method(status, &body) {
            // A path named without a method (a URL) may be one the router has for other methods
            // only (`curl -d … /api/login`): it exists. Anything else must be a success.
            let router = if is_router_404(status, &body) {
                " (no such route)"
            } else {
                ""
            };
            problems.push(format!(
                "{where_}\n  GET {request} answered {status}{router}: {body}"
            ));
        }
    }
    // Planned paths are not served yet; when one is, it leaves PLANNED and gets tested above.
    for (path, why) in &planned {
        let (status, body) = answer(&client, "GET", &hub.url(path)).await;
        if !is_router_404(status, &body) {
            problems.push(format!(
                "{path} ({why}) now answers {status}: remove it from PLANNED in {}",
                file!()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the docs name paths camhub does not serve as written:\n{}\n\ncamhub log:\n{}",
        problems.join("\n"),
        hub.log_tail(20)
    );
}

/// GitHub's anchor for a heading: lower case; letters, digits, `-`, `_` and spaces kept (so
/// backticks, `/`, `.`, `—` go); spaces become `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of a doc outside its fenced code blocks, with their numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut in_code = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code {
            out.push((i + 1, line));
        }
    }
    out
}

/// The anchors of a doc's headings, with GitHub's `-1`, `-2`… for repeated ones.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if hashes == 0 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let s = slug(&line[hashes..]);
        let n = seen.entry(s.clone()).or_default();
        out.insert(if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        });
        *n += 1;
    }
    out
}

#[test]
fn every_link_between_the_docs_resolves() {
    let root = repo_root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, text) in docs() {
        let dir = root.join(&file).parent().unwrap().to_path_buf();
        for (line_no, line) in prose(&text) {
            for (at, _) in line.match_indices("](") {
                let rest = &line[at + 2..];
                let Some(end) = rest.find(')') else { continue };
                let target = &rest[..end];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let linked = if path.is_empty() {
                    root.join(&file)
                } else {
                    dir.join(path)
                };
                checked += 1;
                if !linked.exists() {
                    problems.push(format!("{file}:{line_no}: {target}: no such file"));
                    continue;
                }
                if !anchor.is_empty() && linked.extension().is_some_and(|e| e == "md") {
                    let linked_text = std::fs::read_to_string(&linked).unwrap();
                    if !anchors(&linked_text).contains(anchor) {
                        problems.push(format!(
                            "{file}:{line_no}: {target}: no heading with the anchor #{anchor}"
                        ));
                    }
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} links found");
    assert!(
        problems.is_empty(),
        "broken links in the docs:\n{}",
        problems.join("\n")
    );
}

#[test]
fn anchors_are_github_s() {
    let text = "# camhub\n## `GET /api/ws` — one WebSocket\n```sh\n# not a heading\n```\n\
                ### Python: read it\n## What `listen = \"0.0.0.0:8080\"` exposes\n### Python: read it\n";
    let a: Vec<String> = anchors(text).into_iter().collect();
    assert_eq!(
        a,
        [
            "camhub",
            "get-apiws--one-websocket",
            "python-read-it",
            "python-read-it-1",
            "what-listen--00008080-exposes",
        ]
    );
}

#[test]
fn paths_are_found_in_every_form_the_docs_use() {
    let found = |line: &str| {
        paths_in_line(line)
            .into_iter()
            .map(|(_, path)| path)
            .collect::<Vec<_>>()
    };
    // URLs in code, quotes, autolinks, markdown links and YAML; camhub's port or a proxy's name.
    assert_eq!(
        found("curl -s 'http://127.0.0.1:8080/api/cameras/demo/frame.jpeg?width=320' | x"),
        ["/api/cameras/demo/frame.jpeg?width=320"]
    );
    assert_eq!(found("Then open <http://127.0.0.1:8080/>."), ["/"]);
    assert_eq!(
        found("see [it](http://HOST:8080/cameras/frontdoor)."),
        ["/cameras/frontdoor"]
    );
    assert_eq!(
        found("mjpeg_url: http://HOST:8080/api/cameras/esp32/stream.mjpeg?width=640&fps=5"),
        ["/api/cameras/esp32/stream.mjpeg?width=640&fps=5"]
    );
    assert_eq!(
        found("curl -u alice https://camhub.lan/healthz"),
        ["/healthz"]
    );
    assert_eq!(
        found("open `http://192.168.1.10/` or 'https://192.168.1.10/api/cameras'"),
        ["/", "/api/cameras"]
    );
    assert_eq!(
        found(r#"const ws = new WebSocket(proto + location.host + '/api/ws');"#),
        ["/api/ws"]
    );
    // Tables and inline code, a method before the path, nginx locations.
    assert_eq!(
        found("| `/metrics`, `/healthz` | Prometheus metrics, liveness |"),
        ["/healthz", "/metrics"]
    );
    assert_eq!(
        found("| page | `GET /cameras/{id}` | one camera |"),
        ["/cameras/{id}"]
    );
    assert_eq!(found("client  GET /  (the grid)"), ["/"]);
    assert_eq!(found("    location = /api/ws {"), ["/api/ws"]);
    // The method before a path is kept: it is what the route must have.
    let with_methods: Vec<_> = paths_in_line(
        "[`GET /login`, `POST /api/login`, `DELETE /api/tokens/{id}`](#authentication), `/api/session`",
    )
    .into_iter()
    .collect();
    assert_eq!(
        with_methods,
        [
            (None, "/api/session".to_owned()),
            (Some("DELETE"), "/api/tokens/{id}".to_owned()),
            (Some("GET"), "/login".to_owned()),
            (Some("POST"), "/api/login".to_owned()),
        ]
    );
    // Not camhub: camera URLs, file paths, the proxy's upstream without a path, other words.
    for line in [
        "url = \"http://192.168.1.50:81/stream\"",
        "url = \"http://192.168.1.100/capture\"",
        "url = \"rtsp://admin:PASS@IP:554/Streaming/Channels/101\"",
        "an ESP32-CAM's `/stream` and `/capture`",
        "data in `/var/lib/camhub`, config in `/etc/camhub/camhub.toml`, `/dev/video0`",
        "proxy_pass http://127.0.0.1:8080;",
        "see /apiary and /metricsfoo",
        "web/app.js and crates/camhub/src/http/mod.rs",
    ] {
        assert_eq!(found(line), Vec::<String>::new(), "{line}");
    }
}

#[test]
fn requests_use_the_test_camera_and_concrete_parameters() {
    let r = |raw: &str| request_for(raw);
    assert_eq!(
        r("/api/cameras/{id}/stream.mjpeg?width=…&fps=…").as_deref(),
        Some("/api/cameras/demo/stream.mjpeg")
    );
    assert_eq!(
        r("/api/cameras/frontdoor/stream.mjpeg?width=640&fps=0.2").as_deref(),
        Some("/api/cameras/demo/stream.mjpeg?width=640&fps=0.2")
    );
    assert_eq!(
        r("/api/cameras/{id}/frame.jpeg?width=&height=&quality=").as_deref(),
        Some("/api/cameras/demo/frame.jpeg")
    );
    assert_eq!(r("/cameras/{id}").as_deref(), Some("/cameras/demo"));
    assert_eq!(r("/api/cameras").as_deref(), Some("/api/cameras"));
    assert_eq!(r("/api/cameras/{id}/…"), None);
    // A misspelt parameter is kept, so the request shows the mistake.
    assert_eq!(
        r("/api/cameras/x/frame.jpeg?widht=640").as_deref(),
        Some("/api/cameras/demo/frame.jpeg?widht=640")
    );
}
