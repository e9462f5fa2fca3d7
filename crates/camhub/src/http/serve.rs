//! The HTTP server loop: accepts connections, tunes their sockets, serves the app with hyper, and
//! shuts down gracefully with a deadline. camhub runs its own loop instead of `axum::serve` for
//! reasons that all come from endless MJPEG responses:
//! - hyper's write buffer is capped at its minimum (8 KiB) so a slow viewer holds at most about one
//!   frame inside camhub, not five (hyper's default queues up to ~400 KB of body chunks); over
//!   HTTP/2 each stream's send buffer is capped the same way, and under TLS rustls buffers at most
//!   [`TLS_BUFFER`] of records;
//! - a viewer that accepts no bytes for `stall_timeout` is disconnected: writes that make no progress
//!   fail ([`StallIo`], below TLS: it sees the socket), and the kernel gives up on unacknowledged
//!   data after the same time (TCP_USER_TIMEOUT) instead of buffering megabytes first;
//! - requests whose headers never finish time out, TLS handshakes too, and shutdown never waits
//!   more than a few seconds;
//! - connections are limited in total and per client address: one past a limit is closed at once
//!   (plain HTTP gets a short 503 first), before any task or buffer is spent on it, so existing
//!   viewers never slow down.
//!
//! With TLS ([`super::tls`]) the handshake runs in the connection's task (a client that says nothing
//! never holds up the accept loop) and ALPN picks the protocol: `h2` gets hyper's HTTP/2 server,
//! anything else HTTP/1.1. HTTP/2 does not advertise extended CONNECT (RFC 8441), so browsers open
//! WebSockets on an HTTP/1.1 connection of their own.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use camhub_config::IpNet;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};

use super::tls::Tls;

/// Kernel send buffer per connection: a few frames at most, so "queued for a viewer" stays small.
const SEND_BUFFER: usize = 256 * 1024;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open responses to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// hyper's HTTP/1 write buffer, and each HTTP/2 stream's send buffer.
const WRITE_BUFFER: usize = 8192;
/// Encrypted bytes rustls may hold for a connection beyond what the socket took.
pub const TLS_BUFFER: usize = 16 * 1024;
/// Concurrent requests on one HTTP/2 connection (a browser's grid of MJPEG `<img>`s shares one).
const H2_STREAMS: u32 = 128;
/// What a plain-HTTP connection past a limit is told before it is closed.
/// (The body ends where the connection does.)
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
Connection: close\r\n\r\n{\"error\":\"too many connections: a connection limit of this camhub \
is reached ([server] max_connections or max_connections_per_ip); try later\"}\n";

/// Bytes the kernel has accepted on this request's connection, for per-viewer queue accounting.
/// Set on HTTP/1 requests only: an HTTP/2 connection carries many viewers' streams at once.
#[derive(Clone, Debug)]
pub struct ConnWritten(pub Arc<AtomicU64>);

/// How [`serve`] serves.
pub struct Options {
    /// `[server] stall_timeout`.
    pub stall_timeout: Duration,
    /// `[server] max_connections`.
    pub max_connections: usize,
    /// `[server] max_connections_per_ip`.
    pub max_connections_per_ip: usize,
    /// Peers that count only toward `max_connections` (`[server] trusted_proxies`: every client of
    /// a reverse proxy arrives from its address).
    pub unlimited: Vec<IpNet>,
    /// HTTPS instead of HTTP.
    pub tls: Option<Arc<Tls>>,
}

impl Options {
    /// The options of a `[server]` table, with `tls` loaded by the caller ([`Tls::from_config`]).
    pub fn new(server: &camhub_config::Server, tls: Option<Arc<Tls>>) -> Options {
        Options {
            stall_timeout: server.stall_timeout,
            max_connections: server.max_connections,
            max_connections_per_ip: server.max_connections_per_ip,
            unlimited: server.trusted_proxies.clone(),
            tls,
        }
    }
}

/// Process-wide connection counters for `/metrics`.
static OPEN: AtomicU64 = AtomicU64::new(0);
static REFUSED_TOTAL: AtomicU64 = AtomicU64::new(0);
static REFUSED_PER_IP: AtomicU64 = AtomicU64::new(0);

/// Connection counters: open now, refused by `max_connections`, refused by
/// `max_connections_per_ip` (since start).
pub fn connection_counts() -> (u64, u64, u64) {
    (
        OPEN.load(Ordering::Relaxed),
        REFUSED_TOTAL.load(Ordering::Relaxed),
        REFUSED_PER_IP.load(Ordering::Relaxed),
    )
}

/// Open connections, in total and per address, against the limits.
struct Limits {
    max_total: usize,
    max_per_ip: usize,
    unlimited: Vec<IpNet>,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Which limit refused a connection.
enum Refused {
    Total,
    PerIp,
}

impl Limits {
    /// A slot for a connection from `ip`, released when dropped; `Err` names the limit reached.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let key = (!self.unlimited.iter().any(|n| n.contains(&ip))).then(|| address_key(ip));
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(Refused::Total);
        }
        if let Some(key) = key {
            let n = open.per_ip.entry(key).or_insert(0);
            if *n >= self.max_per_ip {
                return Err(Refused::PerIp);
            }
            *n += 1;
        }
        open.total += 1;
        OPEN.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            limits: self.clone(),
            key,
        })
    }
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    limits: Arc<Limits>,
    key: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(key) = self.key {
            if let Some(n) = open.per_ip.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    open.per_ip.remove(&key);
                }
            }
        }
    }
}

/// The address a per-address limit counts by: an IPv4 address (also when a dual-stack socket
/// writes it as `::ffff:a.b.c.d`), or an IPv6 address's /64 (one host, or one home network,
/// commonly has a whole /64 to pick addresses from).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Serves `app` on `listener` until `shutdown` becomes true, then gives open connections
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) {
    let stall_timeout = options.stall_timeout;
    let limits = Arc::new(Limits {
        max_total: within_file_limit(options.max_connections),
        max_per_ip: options.max_connections_per_ip,
        unlimited: options.unlimited,
        open: Mutex::new(Open::default()),
    });
    // Every connection task holds a clone; shutdown waits until only this one is left.
    let alive = Arc::new(());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let slot = match limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                let (counter, key) = match why {
                    Refused::Total => (&REFUSED_TOTAL, "max_connections"),
                    Refused::PerIp => (&REFUSED_PER_IP, "max_connections_per_ip"),
                };
                if counter.fetch_add(1, Ordering::Relaxed) == 0 {
                    warn!("refusing connections from {peer} and others past [server] {key} (counted in /metrics as camhub_connections_refused_total)");
                } else {
                    debug!(%peer, "connection refused: [server] {key} reached");
                }
                if options.tls.is_none() {
                    // Never waits: a socket that cannot take it now just gets closed.
                    let _ = stream.try_write(REFUSED);
                }
                continue;
            }
        };
        tune(&stream, stall_timeout);
        let local = stream.local_addr().ok();
        let written = Arc::new(AtomicU64::new(0));
        let io = StallIo {
            inner: stream,
            timeout: stall_timeout,
            deadline: None,
            written: written.clone(),
        };
        let conn = Conn {
            app: app.clone(),
            peer,
            local,
            written,
            stall_timeout,
            stop: shutdown.clone(),
        };
        let tls = options.tls.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let _slot = slot;
            match tls {
                None => conn.http1(io).await,
                Some(tls) => conn.tls(&tls, io).await,
            }
        });
    }
    drop(listener);
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while Arc::strong_count(&alive) > 1 {
        if Instant::now() >= deadline {
            warn!(
                "closing {} connection(s) still open after {SHUTDOWN_GRACE:?}",
                Arc::strong_count(&alive) - 1
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Files camhub keeps for other things than client connections (cameras, the store, logs).
const OTHER_FILES: u64 = 128;

/// `max_connections`, lowered (and logged) when the process may not open that many files: a
/// connection the kernel refuses to accept waits in the backlog; one refused here is told at once
/// and counted.
fn within_file_limit(max_connections: usize) -> usize {
    let Some(files) = open_files_limit() else {
        return max_connections;
    };
    let usable = usize::try_from(files.saturating_sub(OTHER_FILES)).unwrap_or(usize::MAX);
    if usable >= max_connections {
        return max_connections;
    }
    let usable = usable.max(1);
    tracing::info!(
        "[server] max_connections = {max_connections}, but camhub may open only {files} files: \
         at most {usable} connections are accepted (raise the limit with LimitNOFILE= in the \
         service, or ulimit -n)"
    );
    usable
}

/// The soft limit on open files (`Max open files` in /proc/self/limits), if known and finite.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// One accepted connection, about to be served.
struct Conn {
    app: Router,
    peer: SocketAddr,
    /// The address the client reached camhub at (WebRTC announces it as its candidate).
    local: Option<SocketAddr>,
    written: Arc<AtomicU64>,
    stall_timeout: Duration,
    stop: watch::Receiver<bool>,
}

/// Drives a hyper connection until it ends, or shuts it down gracefully when `$stop` turns true.
macro_rules! drive {
    ($conn:expr, $stop:expr, $peer:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        let mut stop = $stop;
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                // Endless responses end by themselves on shutdown; then the connection closes.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            debug!(peer = %$peer, "connection ended: {e}");
        }
    }};
}

impl Conn {
    /// The app as a hyper service: every request gets the client's address (and, over HTTP/1, the
    /// connection's byte counter).
    fn service(
        &self,
        with_written: bool,
    ) -> impl hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
    > + Clone
           + Send {
        let app = self.app.clone();
        let written = with_written.then(|| ConnWritten(self.written.clone()));
        let peer = self.peer;
        let local = self.local;
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            if let Some(l) = local {
                req.extensions_mut().insert(super::access::LocalAddr(l));
            }
            if let Some(w) = &written {
                req.extensions_mut().insert(w.clone());
            }
            req.extensions_mut().insert(super::access::ClientAddr(peer));
            tower::ServiceExt::oneshot(app.clone(), req)
        })
    }

    async fn http1<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(WRITE_BUFFER);
        let conn = builder
            .serve_connection(TokioIo::new(io), self.service(true))
            .with_upgrades();
        drive!(conn, self.stop.clone(), self.peer);
    }

    async fn http2<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_send_buf_size(WRITE_BUFFER)
            .max_concurrent_streams(H2_STREAMS)
            // A peer that answers no ping for stall_timeout is gone (idle connections included).
            .keep_alive_interval(self.stall_timeout)
            .keep_alive_timeout(self.stall_timeout);
        // No enable_connect_protocol(): advertised, Chromium sends its WebSockets as extended
        // CONNECT over this connection (RFC 8441), which the GET WebSocket routes do not take
        // (tests/tls.rs saw them fail); unadvertised, it opens an HTTP/1.1 connection for them.
        let conn = builder.serve_connection(TokioIo::new(io), self.service(false));
        drive!(conn, self.stop.clone(), self.peer);
    }

    /// The TLS handshake (bounded by [`HANDSHAKE_TIMEOUT`] and shutdown), then HTTP/2 or HTTP/1.1
    /// as ALPN chose.
    async fn tls(self, tls: &Tls, io: StallIo) {
        let mut stop = self.stop.clone();
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(io));
        let mut stream = tokio::select! {
            r = handshake => match r {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    debug!(peer = %self.peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    debug!(peer = %self.peer, "TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}");
                    return;
                }
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        stream.get_mut().1.set_buffer_limit(Some(TLS_BUFFER));
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            self.http2(stream).await;
        } else {
            self.http1(stream).await;
        }
    }
}

/// Low latency writes, a small send buffer, and a kernel-level stall timeout.
fn tune(stream: &TcpStream, stall_timeout: Duration) {
    // Frames are written whole; don't let Nagle hold back the last segment of each.
    let _ = stream.set_nodelay(true);
    let sock = socket2::SockRef::from(stream);
    let _ = sock.set_send_buffer_size(SEND_BUFFER);
    // Data unacknowledged for this long ends the connection (Linux), so a client that stops
    // reading is noticed after stall_timeout, not after the kernel buffered megabytes for it.
    let _ = sock.set_tcp_user_timeout(Some(stall_timeout));
}

/// A connection whose writes fail after `timeout` without progress, and which counts the bytes
/// the kernel accepted.
pub struct StallIo {
    inner: TcpStream,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    written: Arc<AtomicU64>,
}

impl StallIo {
    fn check(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(v) => {
                self.deadline = None;
                if let Ok(n) = v {
                    self.written.fetch_add(n as u64, Ordering::Relaxed);
                }
                Poll::Ready(v)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self.deadline.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(Instant::now() + timeout))
                });
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client accepted no data for the stall timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncRead for StallIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_total: usize, max_per_ip: usize, unlimited: &[&str]) -> Arc<Limits> {
        Arc::new(Limits {
            max_total,
            max_per_ip,
            unlimited: unlimited.iter().filter_map(|n| IpNet::parse(n)).collect(),
            open: Mutex::new(Open::default()),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn per_address_and_total_limits() {
        let l = limits(4, 2, &["10.0.0.1"]);
        let a1 = l.admit(ip("192.0.2.1")).ok();
        // The same address written as a dual-stack socket reports it.
        let a2 = l.admit(ip("::ffff:192.0.2.1")).ok();
        assert!(a1.is_some() && a2.is_some());
        assert!(matches!(l.admit(ip("192.0.2.1")), Err(Refused::PerIp)));
        // A trusted proxy counts only toward the total.
        let p: Vec<_> = (0..2)
            .filter_map(|_| l.admit(ip("10.0.0.1")).ok())
            .collect();
        assert_eq!(p.len(), 2);
        assert!(matches!(l.admit(ip("192.0.2.9")), Err(Refused::Total)));
        drop(a1);
        assert!(l.admit(ip("192.0.2.1")).is_ok());
        drop((a2, p));
        let open = l.open.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!((open.total, open.per_ip.len()), (0, 0));
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let l = limits(10, 1, &[]);
        let _a = l.admit(ip("2001:db8:1:2::1")).ok();
        assert!(matches!(
            l.admit(ip("2001:db8:1:2:ffff::9")),
            Err(Refused::PerIp)
        ));
        assert!(l.admit(ip("2001:db8:1:3::1")).is_ok());
    }

    #[test]
    fn the_refusal_is_a_whole_http_response() {
        let text = std::str::from_utf8(REFUSED).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains("Connection: close"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert!(json["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_connections_per_ip")));
    }

    #[test]
    fn the_file_limit_caps_max_connections() {
        // This machine's limit is whatever it is; the cap never exceeds the request and is ≥ 1.
        let n = within_file_limit(usize::MAX / 2);
        assert!((1..usize::MAX / 2).contains(&n));
        assert_eq!(within_file_limit(1), 1);
    }
}
