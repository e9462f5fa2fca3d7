//! [`SnapshotServer`]: a small HTTP/1.1 camera of our own on tokio — JPEG snapshots with optional basic or
//! digest auth, and multipart streams that real cameras get wrong (huge parts, silence, odd boundaries).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use md5::{Digest as _, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The realm in digest and basic challenges.
const REALM: &str = "camhub-testkit";
/// Bytes the first part of [`SnapshotMode::MultipartHuge`] declares and sends.
pub const HUGE_PART_BYTES: u64 = 100 * 1024 * 1024;
/// Request heads larger than this are refused.
const MAX_HEAD: usize = 16 * 1024;

/// What a [`SnapshotServer`] serves at `/capture` and `/stream` (both paths serve the same mode).
#[derive(Debug, Clone)]
pub enum SnapshotMode {
    /// `image/jpeg` with Content-Length, keep-alive (a snapshot URL such as an ESP32-CAM's `/capture`).
    Jpeg(Vec<u8>),
    /// `multipart/x-mixed-replace; boundary=hugeframe` whose first part declares `Content-Length: 104857600`
    /// and sends that many bytes (`FF D8` then zeros), streamed, never allocated.
    MultipartHuge,
    /// A multipart response with one valid JPEG part, then silence on an open socket, forever.
    SilentMultipart(Vec<u8>),
    /// A quirky camera: the JPEGs looped at `fps`, parts without Content-Length, and the body's boundary
    /// (`--quirkycamera`) differs from the one in the Content-Type (`boundary=camhubquirk`).
    Multipart {
        /// Frames, sent in order and looped.
        jpegs: Vec<Vec<u8>>,
        /// Frames per second.
        fps: u32,
    },
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Basic(String, String),
    Digest(String, String),
}

struct State {
    mode: Mutex<SnapshotMode>,
    auth: Mutex<Auth>,
    nonces: Mutex<HashSet<String>>,
    nonce_counter: AtomicU64,
    requests: AtomicUsize,
    served: AtomicUsize,
    unauthorized: AtomicUsize,
    parts: AtomicUsize,
}

/// A tiny HTTP/1.1 server on 127.0.0.1 serving a [`SnapshotMode`]; stopped on `Drop`.
///
/// ```no_run
/// # async fn demo() {
/// use camhub_testkit::{ffmpeg_jpegs, SnapshotServer, SnapshotMode};
/// let jpeg = ffmpeg_jpegs(1, 320, 240).remove(0);
/// let camera = SnapshotServer::start(jpeg).await.with_digest("admin", "secret");
/// let url = camera.url(); // http://127.0.0.1:PORT/capture
/// // ... camhub polls it ...
/// assert!(camera.served() >= 1);
/// let quirky = SnapshotServer::start_mode(SnapshotMode::Multipart { jpegs: ffmpeg_jpegs(5, 320, 240), fps: 10 }).await;
/// let stream_url = quirky.url(); // http://127.0.0.1:PORT/stream
/// # }
/// ```
pub struct SnapshotServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl SnapshotServer {
    /// Serves `jpeg` as `image/jpeg` at `/capture`, without auth.
    pub async fn start(jpeg: Vec<u8>) -> SnapshotServer {
        Self::start_mode(SnapshotMode::Jpeg(jpeg)).await
    }

    /// Serves `mode` on a free port.
    pub async fn start_mode(mode: SnapshotMode) -> SnapshotServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for SnapshotServer");
        let addr = listener.local_addr().expect("SnapshotServer local address");
        let state = Arc::new(State {
            mode: Mutex::new(mode),
            auth: Mutex::new(Auth::None),
            nonces: Mutex::default(),
            nonce_counter: AtomicU64::new(0),
            requests: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            unauthorized: AtomicUsize::new(0),
            parts: AtomicUsize::new(0),
        });
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set, so aborting the accept task closes them all.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            connections.spawn(serve_connection(stream, accept_state.clone()));
                        }
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        SnapshotServer { addr, state, task }
    }

    /// Requires HTTP basic auth from now on.
    pub fn with_basic(self, user: &str, password: &str) -> Self {
        *self.state.auth.lock().expect("auth lock") = Auth::Basic(user.into(), password.into());
        self
    }

    /// Requires HTTP digest auth (RFC 7616, MD5, `qop="auth"`) from now on.
    pub fn with_digest(self, user: &str, password: &str) -> Self {
        *self.state.auth.lock().expect("auth lock") = Auth::Digest(user.into(), password.into());
        self
    }

    /// Replaces what is served (e.g. a new snapshot so a poller sees the picture change).
    pub fn set_mode(&self, mode: SnapshotMode) {
        *self.state.mode.lock().expect("mode lock") = mode;
    }

    /// `http://127.0.0.1:PORT/capture` in [`SnapshotMode::Jpeg`], `http://127.0.0.1:PORT/stream` otherwise.
    pub fn url(&self) -> String {
        let path = match *self.state.mode.lock().expect("mode lock") {
            SnapshotMode::Jpeg(_) => "/capture",
            _ => "/stream",
        };
        format!("http://{}{path}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every HTTP request received, including those answered 401 or 404.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests answered 200 (a snapshot or a multipart stream was served).
    pub fn served(&self) -> usize {
        self.state.served.load(Ordering::SeqCst)
    }

    /// Requests answered 401.
    pub fn unauthorized(&self) -> usize {
        self.state.unauthorized.load(Ordering::SeqCst)
    }

    /// Multipart parts written so far, over all connections.
    pub fn parts_sent(&self) -> usize {
        self.state.parts.load(Ordering::SeqCst)
    }
}

impl Drop for SnapshotServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request head; None on EOF, error or an oversized head. Bodies are not expected (GET only).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split_whitespace();
            let method = first.next()?.to_owned();
            let target = first.next()?.to_owned();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            return Some(Request {
                method,
                target,
                headers,
            });
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn serve_connection(mut stream: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    while let Some(request) = read_head(&mut stream, &mut buf).await {
        state.requests.fetch_add(1, Ordering::SeqCst);
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let path = request.target.split('?').next().unwrap_or_default();
        if !matches!(path, "/capture" | "/stream" | "/") {
            let body = b"{\"error\":\"not found\"}";
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if write_all(&mut stream, &[head.as_bytes(), body])
                .await
                .is_err()
                || close
            {
                return;
            }
            continue;
        }
        if let Some(challenge) = check_auth(&state, &request) {
            state.unauthorized.fetch_add(1, Ordering::SeqCst);
            let body = b"unauthorized";
            let head = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Type: text/plain\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            if write_all(&mut stream, &[head.as_bytes(), body])
                .await
                .is_err()
                || close
            {
                return;
            }
            continue;
        }
        state.served.fetch_add(1, Ordering::SeqCst);
        let mode = state.mode.lock().expect("mode lock").clone();
        match mode {
            SnapshotMode::Jpeg(jpeg) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n\r\n",
                    jpeg.len()
                );
                if write_all(&mut stream, &[head.as_bytes(), &jpeg])
                    .await
                    .is_err()
                    || close
                {
                    return;
                }
            }
            SnapshotMode::MultipartHuge => return serve_huge(stream, &state).await,
            SnapshotMode::SilentMultipart(jpeg) => {
                return serve_silent(stream, &state, &jpeg).await
            }
            SnapshotMode::Multipart { jpegs, fps } => {
                return serve_quirky(stream, &state, &jpegs, fps).await
            }
        }
    }
}

async fn write_all(stream: &mut TcpStream, pieces: &[&[u8]]) -> std::io::Result<()> {
    for piece in pieces {
        stream.write_all(piece).await?;
    }
    Ok(())
}

const MULTIPART_OK: &str = "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: close\r\n";

async fn serve_huge(mut stream: TcpStream, state: &State) {
    let head = format!(
        "{MULTIPART_OK}Content-Type: multipart/x-mixed-replace; boundary=hugeframe\r\n\r\n\
         --hugeframe\r\nContent-Type: image/jpeg\r\nContent-Length: {HUGE_PART_BYTES}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    state.parts.fetch_add(1, Ordering::SeqCst);
    let mut chunk = vec![0u8; 64 * 1024];
    chunk[0] = 0xFF;
    chunk[1] = 0xD8;
    let mut left = HUGE_PART_BYTES;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if stream.write_all(&chunk[..n]).await.is_err() {
            return;
        }
        chunk[0] = 0;
        chunk[1] = 0;
        left -= n as u64;
    }
    let _ = stream.write_all(b"\r\n--hugeframe--\r\n").await;
}

async fn serve_silent(mut stream: TcpStream, state: &State, jpeg: &[u8]) {
    let head = format!(
        "{MULTIPART_OK}Content-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n\
         --frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    );
    if write_all(&mut stream, &[head.as_bytes(), jpeg, b"\r\n"])
        .await
        .is_err()
    {
        return;
    }
    state.parts.fetch_add(1, Ordering::SeqCst);
    // Silent, socket open, until the client goes away (a read then returns 0 or an error).
    let mut sink = [0u8; 1024];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

async fn serve_quirky(mut stream: TcpStream, state: &State, jpegs: &[Vec<u8>], fps: u32) {
    let head = format!(
        "{MULTIPART_OK}Content-Type: multipart/x-mixed-replace;boundary=camhubquirk\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() || jpegs.is_empty() {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(fps.max(1))));
    for jpeg in jpegs.iter().cycle() {
        ticker.tick().await;
        let part_head = b"--quirkycamera\r\nContent-Type: image/jpeg\r\n\r\n";
        if write_all(&mut stream, &[part_head, jpeg, b"\r\n"])
            .await
            .is_err()
        {
            return;
        }
        state.parts.fetch_add(1, Ordering::SeqCst);
    }
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// None when the request may pass; otherwise the `WWW-Authenticate` challenge to send with a 401.
fn check_auth(state: &State, request: &Request) -> Option<String> {
    let auth = state.auth.lock().expect("auth lock").clone();
    let given = request.header("authorization").unwrap_or_default();
    match auth {
        Auth::None => None,
        Auth::Basic(user, password) => {
            let ok = given
                .strip_prefix("Basic ")
                .and_then(|b64| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .ok()
                })
                .is_some_and(|raw| raw == format!("{user}:{password}").as_bytes());
            (!ok).then(|| format!("Basic realm=\"{REALM}\""))
        }
        Auth::Digest(user, password) => {
            let ok = given.strip_prefix("Digest ").is_some_and(|params| {
                digest_ok(state, request, &parse_params(params), &user, &password)
            });
            if ok {
                return None;
            }
            let n = state.nonce_counter.fetch_add(1, Ordering::SeqCst);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let nonce = md5_hex(&format!("{now}:{n}:{REALM}"));
            state
                .nonces
                .lock()
                .expect("nonce lock")
                .insert(nonce.clone());
            Some(format!(
                "Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{nonce}\", opaque=\"{}\"",
                md5_hex("opaque")
            ))
        }
    }
}

/// RFC 7616 §3.4.1 with MD5: response = MD5(HA1:nonce:nc:cnonce:qop:HA2), or the RFC 2069 form without qop.
fn digest_ok(
    state: &State,
    request: &Request,
    p: &[(String, String)],
    user: &str,
    password: &str,
) -> bool {
    let get = |k: &str| {
        p.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) = (
        get("username"),
        get("realm"),
        get("nonce"),
        get("uri"),
        get("response"),
    ) else {
        return false;
    };
    if username != user || realm != REALM || uri != request.target {
        return false;
    }
    if get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("MD5")) {
        return false;
    }
    if !state.nonces.lock().expect("nonce lock").contains(nonce) {
        return false;
    }
    let ha1 = md5_hex(&format!("{user}:{REALM}:{password}"));
    let ha2 = md5_hex(&format!("{}:{uri}", request.method));
    let expected = match get("qop") {
        Some("auth") => {
            let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                return false;
            };
            md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
        }
        Some(_) => return false,
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    };
    expected.eq_ignore_ascii_case(response)
}

/// Parses `k=v, k="v, with comma"` auth parameters.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            v.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((key, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_and_bare_params() {
        let p =
            parse_params(r#"username="a,b", realm="r", nc=00000001, qop=auth, uri="/capture?x=1""#);
        let want = [
            ("username", "a,b"),
            ("realm", "r"),
            ("nc", "00000001"),
            ("qop", "auth"),
            ("uri", "/capture?x=1"),
        ];
        assert_eq!(p.len(), want.len());
        for ((k, v), (wk, wv)) in p.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }

    #[test]
    fn md5_matches_rfc_example() {
        // RFC 2617 §3.5: HA1 for Mufasa / testrealm@host.com / Circle Of Life.
        assert_eq!(
            md5_hex("Mufasa:testrealm@host.com:Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }
}
