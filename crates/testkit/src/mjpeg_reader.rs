//! MJPEG clients: [`MjpegReader`] pulls JPEG frames from a `multipart/x-mixed-replace` response,
//! [`FrameCounter`] counts them in the background, and [`StalledClient`] connects and never reads.
//!
//! Splitting is deliberately independent of camhub's parser: a part's `Content-Length` is used when the
//! part headers give one, otherwise the frame runs from the JPEG SOI (`FF D8`) to the next EOI (`FF D9`).

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use socket2::{Domain, Socket, Type};

/// A frame or buffered header larger than this is an error (a broken stream must not eat the test's RAM).
const MAX_FRAME: usize = 32 * 1024 * 1024;

type BodyStream = futures::stream::BoxStream<'static, reqwest::Result<Bytes>>;

/// Reads JPEG frames from an MJPEG (multipart/x-mixed-replace) HTTP response.
///
/// ```no_run
/// # async fn demo(url: &str) {
/// let mut reader = camhub_testkit::MjpegReader::connect(url).await.expect("MJPEG stream");
/// let first = reader.next_frame().await.expect("a frame").expect("no error");
/// let (w, h, rgb) = camhub_testkit::decode_jpeg_rgb(&first);
/// assert_eq!(reader.frames(), 1);
/// # }
/// ```
pub struct MjpegReader {
    body: BodyStream,
    content_type: String,
    buf: BytesMut,
    frames: u64,
    bytes: u64,
}

impl MjpegReader {
    /// GETs `url`; an error unless the status is 200 and the Content-Type is `multipart/*`.
    pub async fn connect(url: &str) -> Result<MjpegReader, String> {
        let response = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!("GET {url}: status {status}: {body}"));
        }
        if !content_type.to_ascii_lowercase().starts_with("multipart/") {
            return Err(format!(
                "GET {url}: Content-Type {content_type:?} is not multipart"
            ));
        }
        Ok(MjpegReader {
            body: response.bytes_stream().boxed(),
            content_type,
            buf: BytesMut::new(),
            frames: 0,
            bytes: 0,
        })
    }

    /// The response's Content-Type.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Frames returned so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Body bytes received so far (frames, part headers and boundaries).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next JPEG; None when the stream ended cleanly, `Some(Err)` on a network error or a frame over
    /// 32 MiB.
    pub async fn next_frame(&mut self) -> Option<Result<Bytes, String>> {
        loop {
            match self.split() {
                Ok(Some(frame)) => {
                    self.frames += 1;
                    return Some(Ok(frame));
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.bytes += chunk.len() as u64;
                    self.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Some(Err(format!("reading MJPEG body: {e}"))),
                None => return None,
            }
        }
    }

    /// [`next_frame`](Self::next_frame) with a timeout; `Err` also on timeout or end of stream.
    pub async fn next_frame_within(&mut self, timeout: Duration) -> Result<Bytes, String> {
        match tokio::time::timeout(timeout, self.next_frame()).await {
            Ok(Some(result)) => result,
            Ok(None) => Err("MJPEG stream ended".into()),
            Err(_) => Err(format!("no MJPEG frame within {timeout:?}")),
        }
    }

    /// Takes one complete frame out of the buffer if there is one.
    fn split(&mut self) -> Result<Option<Bytes>, String> {
        let Some(soi) = find(&self.buf, &[0xFF, 0xD8], 0) else {
            if self.buf.len() > MAX_FRAME {
                return Err(format!("{} bytes without a JPEG start", self.buf.len()));
            }
            return Ok(None);
        };
        let end = match content_length(&self.buf[..soi]) {
            Some(len) if len > MAX_FRAME => {
                return Err(format!(
                    "part declares {len} bytes, over the {MAX_FRAME} bound"
                ))
            }
            Some(len) => (self.buf.len() >= soi + len).then_some(soi + len),
            None => find(&self.buf, &[0xFF, 0xD9], soi + 2).map(|eoi| eoi + 2),
        };
        match end {
            Some(end) => {
                self.buf.advance(soi);
                Ok(Some(self.buf.split_to(end - soi).freeze()))
            }
            None if self.buf.len() - soi > MAX_FRAME => {
                Err(format!("frame over {MAX_FRAME} bytes"))
            }
            None => Ok(None),
        }
    }

    /// Spawns a task that reads this stream to its end, counting frames (see [`FrameCounter`]).
    pub fn count_in_background(mut self) -> FrameCounter {
        let frames = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let last = Arc::new(Mutex::new(None));
        let error = Arc::new(Mutex::new(None));
        let (f, b, l, e) = (frames.clone(), bytes.clone(), last.clone(), error.clone());
        let task = tokio::spawn(async move {
            while let Some(result) = self.next_frame().await {
                match result {
                    Ok(frame) => {
                        b.store(self.bytes, Ordering::SeqCst);
                        *l.lock().expect("last frame lock") = Some(frame);
                        f.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(err) => {
                        *e.lock().expect("error lock") = Some(err);
                        return;
                    }
                }
            }
            *e.lock().expect("error lock") = Some("stream ended".into());
        });
        FrameCounter {
            frames,
            bytes,
            last,
            error,
            task,
        }
    }
}

/// Position of `needle` in `hay` at or after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A `Content-Length` in the part headers just before a frame (the last one in `head`).
fn content_length(head: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(head);
    text.lines()
        .rev()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        })
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// A background MJPEG viewer that counts frames (for "healthy viewers got ≥ 95 % of frames" tests).
/// The reading task is aborted on `Drop`.
///
/// ```no_run
/// # async fn demo(url: &str) {
/// let viewer = camhub_testkit::MjpegReader::connect(url).await.expect("stream").count_in_background();
/// tokio::time::sleep(std::time::Duration::from_secs(5)).await;
/// assert!(viewer.frames() > 10, "{:?}", viewer.error());
/// # }
/// ```
pub struct FrameCounter {
    frames: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    last: Arc<Mutex<Option<Bytes>>>,
    error: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FrameCounter {
    /// Frames received so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::SeqCst)
    }

    /// Body bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// The newest frame.
    pub fn last_frame(&self) -> Option<Bytes> {
        self.last.lock().expect("last frame lock").clone()
    }

    /// Why reading stopped ("stream ended" or an error), None while it runs.
    pub fn error(&self) -> Option<String> {
        self.error.lock().expect("error lock").clone()
    }

    /// Stops reading and closes the connection.
    pub fn stop(self) {}
}

impl Drop for FrameCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A raw TCP client that sends `GET` with a small receive buffer and then never reads: the slowest viewer
/// possible. The connection closes on `Drop`.
///
/// ```no_run
/// let stalled = camhub_testkit::StalledClient::connect("http://127.0.0.1:8080/api/cameras/a/stream.mjpeg", 4096)
///     .expect("connect");
/// // ... the server's buffers for it must stay bounded ...
/// drop(stalled);
/// ```
pub struct StalledClient {
    socket: Socket,
    peer: SocketAddr,
}

impl StalledClient {
    /// Connects to an `http://host:port/path` URL with `SO_RCVBUF` set to `rcvbuf` bytes before the
    /// connection is made (so the TCP window stays small), and sends the request.
    pub fn connect(url: &str, rcvbuf: usize) -> std::io::Result<StalledClient> {
        let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg);
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| invalid(format!("not an http:// URL: {url}")))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let with_port = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let peer = with_port
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| invalid(format!("cannot resolve {authority}")))?;
        let socket = Socket::new(Domain::for_address(peer), Type::STREAM, None)?;
        socket.set_recv_buffer_size(rcvbuf)?;
        socket.connect_timeout(&peer.into(), Duration::from_secs(5))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: camhub-testkit-stalled\r\n\r\n");
        (&socket).write_all(request.as_bytes())?;
        Ok(StalledClient { socket, peer })
    }

    /// The receive buffer the kernel granted (Linux doubles the request, with a minimum).
    pub fn recv_buffer_size(&self) -> std::io::Result<usize> {
        self.socket.recv_buffer_size()
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// This client's local address (to find it in server-side metrics or logs).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| std::io::Error::other("not an IP socket"))
    }
}
