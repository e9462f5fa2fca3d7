//! Frames for programs, as a library: a [`Reader`] gives the newest picture of one camera as
//! pixels, at the size and in the format asked, and never a backlog. The Python package
//! (`python/`) and the C library (`crates/capi`) are thin layers over it.
//!
//! - [`Reader::open`] runs camhub's own hub in this process: the same sources, taps and shared
//!   conversions as the server ([`crate::hub::raw`]), on a small tokio runtime and the camera's own
//!   decode thread. Not a second ingest path.
//! - [`Reader::connect`] reads from a running camhub over its `/frames` WebSocket (raw pixels,
//!   for loopback; or `jpeg`, for a network, decoded here).
//!
//! Reading is pulled: [`Reader::read`] waits only until a picture newer than the last one this
//! handle returned exists, then returns the newest; [`Reader::latest`] never waits for a new one.
//! Several threads may read one handle; each gets the newest picture (possibly the same one). The
//! API blocks: call it from threads, not from async tasks.

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::ErrorKind;
use crate::hub::raw::{Converter, PixelFormat, RawFrame, RawKey};
use crate::hub::status::{FailureKind, State};
use crate::hub::{Camera, Hub};

/// What went wrong, broadly: the Python exceptions and the C error codes follow these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramesErrorKind {
    /// A bad argument (size, format, URL, config).
    BadArgument,
    /// The camera (for `open`) or the hub (for `connect`) refused the credentials or token.
    Auth,
    /// No camera with that id.
    NotFound,
    /// The camera or the hub cannot be reached, or has no picture (the message says why).
    Unavailable,
    /// No newer picture within the time given.
    Timeout,
    /// The camera already serves as many distinct raw sizes as it may (`max_raw_sizes`).
    TooMany,
    /// The reader was closed.
    Closed,
    /// A failure inside camhub.
    Internal,
}

/// An error with a kind and a message for the user (no credentials in it).
#[derive(Debug, Clone)]
pub struct FramesError {
    /// The kind.
    pub kind: FramesErrorKind,
    /// What happened and what to do.
    pub message: String,
}

impl FramesError {
    fn new(kind: FramesErrorKind, message: impl Into<String>) -> FramesError {
        FramesError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FramesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FramesError {}

impl From<crate::Error> for FramesError {
    fn from(e: crate::Error) -> FramesError {
        let kind = match e.kind {
            ErrorKind::BadRequest => FramesErrorKind::BadArgument,
            ErrorKind::NotFound => FramesErrorKind::NotFound,
            ErrorKind::Unauthorized | ErrorKind::Forbidden => FramesErrorKind::Auth,
            ErrorKind::TooMany => FramesErrorKind::TooMany,
            ErrorKind::Unavailable | ErrorKind::UnsupportedMedia => FramesErrorKind::Unavailable,
            ErrorKind::Internal => FramesErrorKind::Internal,
        };
        FramesError::new(kind, e.message)
    }
}

/// How [`Reader::connect`] carries pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Raw pixels as asked (fastest on loopback; 1080p BGR is 6 MB a picture).
    Raw,
    /// A JPEG of the picture at the size asked, decoded here into the format asked: for a network.
    Jpeg,
}

/// One picture as a reader gets it.
#[derive(Debug, Clone)]
pub struct ReadFrame {
    /// The pixels and what they are.
    pub raw: Arc<RawFrame>,
    /// Pictures the camera produced since the last one this handle returned, that it did not get.
    pub skipped: u64,
}

/// A camera's newest pictures for a program. See the module docs.
pub struct Reader {
    inner: Inner,
    /// The sequence number of the newest picture this handle returned.
    last_seq: AtomicU64,
    closed: AtomicBool,
}

enum Inner {
    Local(Local),
    Remote(Box<Remote>),
}

/// Longest a picture request waits in one go (a `read` without a timeout loops over these).
const WAIT_SLICE: Duration = Duration::from_millis(500);

impl Reader {
    /// Opens `source` (any camera URL camhub takes: `rtsp://`, `http://`, `ffmpeg:`, `demo:`…) in
    /// this process, with more camera keys as TOML lines in `camera_keys` (e.g. `rotate = 90`), and
    /// waits up to `timeout` for its first picture. A camera that refuses the credentials is
    /// [`FramesErrorKind::Auth`]; one that cannot be reached, [`FramesErrorKind::Unavailable`].
    pub fn open(source: &str, camera_keys: &str, timeout: Duration) -> Result<Reader, FramesError> {
        let url = toml::Value::String(source.to_owned()).to_string();
        let text = format!("[[camera]]\nid = \"camera\"\nurl = {url}\n{camera_keys}\n");
        let config = camhub_config::parse(&text, "camhub.open()")
            .map_err(|e| FramesError::new(FramesErrorKind::BadArgument, e.to_string()))?;
        Reader::local(&config, "camera", timeout)
    }

    /// Opens camera `camera` of the camhub config file `path` in this process (its transform,
    /// substream and credentials included) and waits up to `timeout` for its first picture.
    pub fn open_config(
        path: &Path,
        camera: &str,
        timeout: Duration,
    ) -> Result<Reader, FramesError> {
        let config = camhub_config::load(path)
            .map_err(|e| FramesError::new(FramesErrorKind::BadArgument, e.to_string()))?;
        Reader::local(&config, camera, timeout)
    }

    fn local(
        config: &camhub_config::Config,
        camera: &str,
        timeout: Duration,
    ) -> Result<Reader, FramesError> {
        let local = Local::start(config, camera)?;
        let reader = Reader {
            inner: Inner::Local(local),
            last_seq: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        };
        if let Inner::Local(l) = &reader.inner {
            // A camera that gives no picture is closed again (dropping the reader closes it), not
            // left retrying in the background.
            l.first_picture(timeout)?;
        }
        Ok(reader)
    }

    /// Reads camera `camera` from the camhub at `base` (`http://host:8080`, with its base path if it
    /// has one), with an API token if it needs a login. Checks the camera and the token at once:
    /// a wrong token is [`FramesErrorKind::Auth`], an unknown id [`FramesErrorKind::NotFound`], a
    /// hub that does not answer [`FramesErrorKind::Unavailable`].
    pub fn connect(
        base: &str,
        camera: &str,
        token: Option<&str>,
        transport: Transport,
    ) -> Result<Reader, FramesError> {
        let remote = Remote::new(base, camera, token, transport)?;
        // Check the address, the token and the camera now rather than at the first read.
        remote.check()?;
        Ok(Reader {
            inner: Inner::Remote(Box::new(remote)),
            last_seq: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// The newest picture newer than the last one this handle returned, waiting up to `timeout`
    /// for one (None: no limit).
    pub fn read(&self, key: RawKey, timeout: Option<Duration>) -> Result<ReadFrame, FramesError> {
        self.check_open()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let raw = match &self.inner {
            Inner::Local(l) => l.read(key, &self.last_seq, deadline, &self.closed)?,
            Inner::Remote(r) => r.read(key, deadline, &self.closed)?,
        };
        Ok(self.returned(raw))
    }

    /// The newest picture now, returned before or not (None before the first one). Never waits for
    /// a new picture (a hub reached with `connect` is asked once).
    pub fn latest(&self, key: RawKey) -> Result<Option<ReadFrame>, FramesError> {
        self.check_open()?;
        let raw = match &self.inner {
            Inner::Local(l) => l.latest(key)?,
            Inner::Remote(r) => r.latest(key)?,
        };
        Ok(raw.map(|r| self.returned(r)))
    }

    /// The sequence number of the newest picture the camera has now (in-process readers; None for a
    /// hub reached with `connect`): how far a returned frame is behind, in frames, without
    /// converting anything.
    pub fn newest_seq(&self) -> Option<u64> {
        match &self.inner {
            Inner::Local(l) => l.camera.decode.pictures.peek().map(|f| f.seq),
            Inner::Remote(_) => None,
        }
    }

    /// The camera's state and the reason, as the API shows them (`streaming`, `retrying:
    /// connection refused`…).
    pub fn status(&self) -> String {
        match &self.inner {
            Inner::Local(l) => l.status_text(),
            Inner::Remote(r) => r.last_status(),
        }
    }

    /// Closes the reader: the camera's connection closes (in-process; an RTSP session is torn
    /// down) or the WebSocket does. Reads after this fail with [`FramesErrorKind::Closed`], and
    /// reads waiting in other threads return with it. Dropping the reader closes it too.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        match &self.inner {
            Inner::Local(l) => l.close(),
            Inner::Remote(r) => r.close(),
        }
    }

    fn check_open(&self) -> Result<(), FramesError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(closed_error());
        }
        Ok(())
    }

    fn returned(&self, raw: Arc<RawFrame>) -> ReadFrame {
        let before = self.last_seq.fetch_max(raw.seq, Ordering::SeqCst);
        let skipped = if before == 0 || raw.seq <= before {
            0
        } else {
            raw.seq - before - 1
        };
        ReadFrame { raw, skipped }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.close();
    }
}

fn closed_error() -> FramesError {
    FramesError::new(FramesErrorKind::Closed, "the reader is closed")
}

/// The tokio runtime of every in-process reader: one per process, never dropped. A camera's RTSP
/// TEARDOWN may outlive the reader that closed it (retina finishes it in the background, and waits
/// for pending ones when the next camera closes); a runtime per reader would cancel it, and the next
/// close would find it gone.
fn runtime() -> Result<&'static tokio::runtime::Runtime, FramesError> {
    static RUNTIME: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("camhub-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            FramesError::new(
                FramesErrorKind::Internal,
                format!("cannot start threads: {e}"),
            )
        })
}

/// camhub's hub in this process, for one camera.
struct Local {
    runtime: &'static tokio::runtime::Runtime,
    hub: Arc<Hub>,
    camera: Arc<Camera>,
    /// Keeps decoding going while the handle lives.
    _pictures: Mutex<Option<crate::hub::taps::PictureSubscriber>>,
    /// Set when the handle closes: the task that keeps the camera wanted ends.
    stop: Arc<AtomicBool>,
}

impl Local {
    fn start(config: &camhub_config::Config, id: &str) -> Result<Local, FramesError> {
        // FFmpeg's own log lines would land on the program's stderr: camhub reports errors itself.
        camhub_codec::init();
        let runtime = runtime()?;
        let _inside = runtime.enter();
        let hub = Hub::new(config);
        let camera = hub.camera(id)?;
        let pictures = camera.subscribe_pictures();
        // The camera stays wanted while the handle lives, read or not (a program that reads now
        // and then must not find the connection closed by `idle_timeout`).
        let stop = Arc::new(AtomicBool::new(false));
        let (cam, stopped) = (camera.clone(), stop.clone());
        runtime.spawn(async move {
            while !stopped.load(Ordering::SeqCst) {
                cam.touch();
                cam.ensure_running();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        drop(_inside);
        Ok(Local {
            runtime,
            hub,
            camera,
            _pictures: Mutex::new(Some(pictures)),
            stop,
        })
    }

    /// Waits for the first picture; fails early when the camera's first attempt fails.
    fn first_picture(&self, timeout: Duration) -> Result<(), FramesError> {
        let deadline = Instant::now() + timeout;
        let tap = &self.camera.decode.pictures;
        loop {
            if tap.wait_after(0, Duration::from_millis(50)).is_some() {
                return Ok(());
            }
            let st = self.camera.status.borrow().clone();
            if st.state == State::Retrying || Instant::now() >= deadline {
                let why = st
                    .reason
                    .clone()
                    .or(st.last_error.clone())
                    .unwrap_or_else(|| format!("state: {}", st.state.name()));
                let kind = match st.error_kind {
                    Some(FailureKind::Auth) => FramesErrorKind::Auth,
                    _ if st.state == State::Retrying => FramesErrorKind::Unavailable,
                    _ => FramesErrorKind::Timeout,
                };
                return Err(FramesError::new(
                    kind,
                    format!("camera \"{}\" gave no picture ({why})", self.camera.id()),
                ));
            }
        }
    }

    fn read(
        &self,
        key: RawKey,
        last_seq: &AtomicU64,
        deadline: Option<Instant>,
        closed: &AtomicBool,
    ) -> Result<Arc<RawFrame>, FramesError> {
        let tap = &self.camera.decode.pictures;
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(WAIT_SLICE),
                None => WAIT_SLICE,
            };
            if let Some(frame) = tap.wait_after(last_seq.load(Ordering::SeqCst), slice) {
                return Ok(self.camera.raw.get(&frame, key)?);
            }
            if closed.load(Ordering::SeqCst) {
                return Err(closed_error());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let st = self.camera.status.borrow().clone();
                let kind = if st.state == State::Streaming {
                    FramesErrorKind::Timeout
                } else {
                    FramesErrorKind::Unavailable
                };
                return Err(FramesError::new(
                    kind,
                    format!("no new picture in time; camera {}", self.status_text()),
                ));
            }
        }
    }

    fn latest(&self, key: RawKey) -> Result<Option<Arc<RawFrame>>, FramesError> {
        match self.camera.decode.pictures.peek() {
            Some(frame) => Ok(Some(self.camera.raw.get(&frame, key)?)),
            None => Ok(None),
        }
    }

    fn status_text(&self) -> String {
        let st = self.camera.status.borrow().clone();
        match st.reason.or(st.last_error) {
            Some(why) if st.state != State::Streaming => format!("{}: {why}", st.state.name()),
            _ => st.state.name().to_owned(),
        }
    }

    fn close(&self) {
        self.stop.store(true, Ordering::SeqCst);
        *self._pictures.lock().unwrap_or_else(|p| p.into_inner()) = None;
        // Reads waiting in other threads see the handle closed when their wait slice ends (at most
        // WAIT_SLICE): `wait_after` waits out its slice, a `wake` would not end it sooner.
        // Closes the connection (an RTSP session gets its TEARDOWN), waiting for it, unless this
        // is an async task (a reader dropped in one), which must not block: then in the background.
        let hub = self.hub.clone();
        let shutdown = async move { hub.shutdown(Duration::from_secs(2)).await };
        if tokio::runtime::Handle::try_current().is_ok() {
            self.runtime.spawn(shutdown);
        } else {
            self.runtime.block_on(shutdown);
        }
    }
}

/// A camera of a running camhub, read over `/frames`.
struct Remote {
    /// `ws://host:port/base/api/cameras/{id}/frames`.
    url: url::Url,
    token: Option<String>,
    transport: Transport,
    /// One socket per (size, format) in use.
    sockets: Mutex<Vec<(RawKey, Socket)>>,
    /// JPEG decoding for [`Transport::Jpeg`].
    converter: Mutex<Converter>,
    status: Mutex<String>,
}

type Socket = tungstenite::WebSocket<TcpStream>;

/// How long the hub may take to answer beyond the wait asked for.
const ANSWER_SLACK: Duration = Duration::from_secs(5);

impl Remote {
    fn new(
        base: &str,
        camera: &str,
        token: Option<&str>,
        transport: Transport,
    ) -> Result<Remote, FramesError> {
        let bad = |why: String| FramesError::new(FramesErrorKind::BadArgument, why);
        let mut base = url::Url::parse(base).map_err(|e| {
            bad(format!(
                "{base:?} is not a URL ({e}); write http://host:8080"
            ))
        })?;
        match base.scheme() {
            "http" => {}
            "https" => {
                return Err(bad(
                    "https:// hubs are not supported by connect() yet: use the hub's plain HTTP \
                     address on loopback or the LAN, or open() the camera in-process"
                        .into(),
                ))
            }
            other => {
                return Err(bad(format!(
                    "{other}:// is not a hub address; write http://host:8080"
                )))
            }
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let segment: String = url::form_urlencoded::byte_serialize(camera.as_bytes()).collect();
        let mut url = base
            .join(&format!("api/cameras/{segment}/frames"))
            .map_err(|e| bad(format!("cannot build the camera's address: {e}")))?;
        url.set_scheme("ws")
            .map_err(|_| bad("cannot use ws://".into()))?;
        Ok(Remote {
            url,
            token: token.map(str::to_owned),
            transport,
            sockets: Mutex::new(Vec::new()),
            converter: Mutex::new(Converter::new()),
            status: Mutex::new(String::from("unknown")),
        })
    }

    /// Opens the socket of the full-size BGR picture: the WebSocket handshake checks the address,
    /// the token and the camera, and carries the hub's own message when one is wrong.
    fn check(&self) -> Result<(), FramesError> {
        let key = RawKey {
            width: None,
            height: None,
            format: PixelFormat::Bgr,
        };
        let socket = self.connect_socket(key)?;
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key, socket));
        Ok(())
    }

    fn socket_for(
        sockets: &mut Vec<(RawKey, Socket)>,
        key: RawKey,
        make: impl FnOnce() -> Result<Socket, FramesError>,
    ) -> Result<&mut Socket, FramesError> {
        let i = match sockets.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                sockets.push((key, make()?));
                sockets.len() - 1
            }
        };
        Ok(&mut sockets[i].1)
    }

    fn connect_socket(&self, key: RawKey) -> Result<Socket, FramesError> {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(w) = key.width {
                q.append_pair("width", &w.to_string());
            }
            if let Some(h) = key.height {
                q.append_pair("height", &h.to_string());
            }
            let format = match self.transport {
                Transport::Raw => key.format,
                Transport::Jpeg => PixelFormat::Jpeg,
            };
            q.append_pair("format", format.name());
        }
        let stream = tcp(&url)?;
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(url.as_str())
            .map_err(|e| FramesError::new(FramesErrorKind::BadArgument, e.to_string()))?;
        if let Some(t) = &self.token {
            let value = format!("Bearer {t}").parse().map_err(|_| {
                FramesError::new(
                    FramesErrorKind::BadArgument,
                    "the token has characters a header cannot carry",
                )
            })?;
            request.headers_mut().insert("Authorization", value);
        }
        match tungstenite::client::client(request, stream) {
            Ok((socket, _)) => Ok(socket),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let body = response.body().clone().unwrap_or_default();
                Err(http_error(response.status().as_u16(), &body))
            }
            Err(e) => Err(FramesError::new(
                FramesErrorKind::Unavailable,
                format!("the hub did not open the WebSocket: {e}"),
            )),
        }
    }

    /// Asks (`next` waiting up to `wait`, or `latest`) on the socket of `key` and returns the
    /// answer: a picture, or None when the hub had none in time.
    fn ask(
        &self,
        key: RawKey,
        kind: &str,
        wait: Duration,
    ) -> Result<Option<Arc<RawFrame>>, FramesError> {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.ask_on(&mut sockets, key, kind, wait);
        if result
            .as_ref()
            .is_err_and(|e| e.kind == FramesErrorKind::Unavailable)
        {
            // A broken socket is opened again at the next read.
            sockets.retain(|(k, _)| *k != key);
        }
        result
    }

    fn ask_on(
        &self,
        sockets: &mut Vec<(RawKey, Socket)>,
        key: RawKey,
        kind: &str,
        wait: Duration,
    ) -> Result<Option<Arc<RawFrame>>, FramesError> {
        let socket = Remote::socket_for(sockets, key, || self.connect_socket(key))?;
        let lost = |e: tungstenite::Error| {
            FramesError::new(FramesErrorKind::Unavailable, format!("lost the hub: {e}"))
        };
        let request = serde_json::json!({"type": kind, "timeout_ms": wait.as_millis() as u64});
        socket
            .send(tungstenite::Message::Text(request.to_string().into()))
            .map_err(lost)?;
        let _ = socket.get_ref().set_read_timeout(Some(wait + ANSWER_SLACK));
        loop {
            match socket.read().map_err(lost)? {
                tungstenite::Message::Binary(data) => return self.picture(data, key).map(Some),
                tungstenite::Message::Text(text) => {
                    let v: serde_json::Value =
                        serde_json::from_str(text.as_str()).unwrap_or_default();
                    let state = v["state"].as_str().unwrap_or("unknown");
                    let status = match v["reason"].as_str() {
                        Some(why) => format!("{state}: {why}"),
                        None => state.to_owned(),
                    };
                    match v["type"].as_str() {
                        Some("timeout") | Some("none") => {
                            *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
                            return Ok(None);
                        }
                        _ => {
                            let error =
                                v["error"].as_str().unwrap_or("the hub refused the request");
                            let kind = if error.contains("max_raw_sizes") {
                                FramesErrorKind::TooMany
                            } else {
                                FramesErrorKind::Internal
                            };
                            return Err(FramesError::new(kind, error.to_owned()));
                        }
                    }
                }
                tungstenite::Message::Close(_) => {
                    return Err(FramesError::new(
                        FramesErrorKind::Unavailable,
                        "the hub closed the connection",
                    ))
                }
                _ => continue,
            }
        }
    }

    /// A `/frames` binary message as a picture of `key`'s format.
    fn picture(&self, message: Bytes, key: RawKey) -> Result<Arc<RawFrame>, FramesError> {
        let bad = |why: &str| {
            FramesError::new(
                FramesErrorKind::Internal,
                format!("a bad picture message from the hub: {why}"),
            )
        };
        let n = message
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("too short"))? as usize;
        let header: serde_json::Value = message
            .get(4..4 + n)
            .and_then(|h| serde_json::from_slice(h).ok())
            .ok_or_else(|| bad("no header"))?;
        let pixels = message.slice(4 + n..);
        let num = |k: &str| header[k].as_u64();
        let (Some(width), Some(height), Some(seq)) = (num("width"), num("height"), num("seq"))
        else {
            return Err(bad("the header lacks the size or the sequence number"));
        };
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = "streaming".into();
        let mut raw = RawFrame {
            seq,
            unix_ms: num("timestamp").unwrap_or(0),
            received: Instant::now(),
            pts: header["pts"].as_i64(),
            width: width as u32,
            height: height as u32,
            format: key.format,
            data: pixels,
        };
        if header["format"].as_str() == Some("jpeg") && key.format != PixelFormat::Jpeg {
            let mut converter = self.converter.lock().unwrap_or_else(|p| p.into_inner());
            let (w, h, data) = converter
                .decode_jpeg(&raw.data, key.format)
                .map_err(|e| bad(&e))?;
            (raw.width, raw.height, raw.data) = (w, h, data);
        } else if key.format.len(raw.width, raw.height) != Some(raw.data.len())
            && key.format != PixelFormat::Jpeg
        {
            return Err(bad("the pixels do not match the size"));
        }
        // The age of a remote picture runs from when camhub received it, by the wall clock.
        let age = Duration::from_millis(crate::hub::unix_ms().saturating_sub(raw.unix_ms));
        raw.received = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        Ok(Arc::new(raw))
    }

    fn read(
        &self,
        key: RawKey,
        deadline: Option<Instant>,
        closed: &AtomicBool,
    ) -> Result<Arc<RawFrame>, FramesError> {
        loop {
            let wait = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(10)),
                None => Duration::from_secs(10),
            };
            if let Some(raw) = self.ask(key, "next", wait)? {
                return Ok(raw);
            }
            if closed.load(Ordering::SeqCst) {
                return Err(closed_error());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let status = self.last_status();
                let kind = if status == "streaming" {
                    FramesErrorKind::Timeout
                } else {
                    FramesErrorKind::Unavailable
                };
                return Err(FramesError::new(
                    kind,
                    format!("no new picture in time; camera {status}"),
                ));
            }
        }
    }

    fn latest(&self, key: RawKey) -> Result<Option<Arc<RawFrame>>, FramesError> {
        self.ask(key, "latest", Duration::ZERO)
    }

    fn last_status(&self) -> String {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn close(&self) {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        for (_, mut s) in sockets.drain(..) {
            let _ = s.close(None);
            let _ = s.flush();
        }
    }
}

/// A TCP connection to `url`'s host, with a connect timeout.
fn tcp(url: &url::Url) -> Result<TcpStream, FramesError> {
    let unreachable = |why: String| FramesError::new(FramesErrorKind::Unavailable, why);
    let addrs = url.socket_addrs(|| Some(80)).map_err(|e| {
        unreachable(format!(
            "cannot resolve {}: {e}",
            url.host_str().unwrap_or("?")
        ))
    })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(format!("cannot reach the hub at {addr}: {e}")),
        }
    }
    Err(unreachable(last.unwrap_or_else(|| {
        "the hub's address resolves to nothing".into()
    })))
}

/// An error answer of the hub, with its own message.
fn http_error(status: u16, body: &[u8]) -> FramesError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let kind = match status {
        401 | 403 => FramesErrorKind::Auth,
        404 => FramesErrorKind::NotFound,
        400 => FramesErrorKind::BadArgument,
        429 => FramesErrorKind::TooMany,
        _ => FramesErrorKind::Unavailable,
    };
    FramesError::new(kind, format!("the hub answered {status}: {message}"))
}
