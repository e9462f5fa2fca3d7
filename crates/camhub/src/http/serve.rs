//! The HTTP server loop: accepts connections, tunes their sockets, serves the app with hyper, and
//! shuts down gracefully with a deadline. camhub runs its own loop instead of `axum::serve` for
//! three reasons that all come from endless MJPEG responses:
//! - hyper's write buffer is capped at its minimum (8 KiB) so a slow viewer holds at most about one
//!   frame inside camhub, not five (hyper's default queues up to ~400 KB of body chunks);
//! - a viewer that accepts no bytes for `stall_timeout` is disconnected: writes that make no progress
//!   fail ([`StallIo`]), and the kernel gives up on unacknowledged data after the same time
//!   (TCP_USER_TIMEOUT) instead of buffering megabytes first;
//! - requests whose headers never finish time out, and shutdown never waits more than a few seconds.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};

/// Kernel send buffer per connection: a few frames at most, so "queued for a viewer" stays small.
const SEND_BUFFER: usize = 256 * 1024;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open responses to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Bytes the kernel has accepted on this request's connection, for per-viewer queue accounting.
#[derive(Clone, Debug)]
pub struct ConnWritten(pub Arc<AtomicU64>);

/// Serves `app` on `listener` until `shutdown` becomes true, then gives open connections
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stall_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
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
        tune(&stream, stall_timeout);
        let written = Arc::new(AtomicU64::new(0));
        let io = TokioIo::new(StallIo {
            inner: stream,
            timeout: stall_timeout,
            deadline: None,
            written: written.clone(),
        });
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnWritten(written.clone()));
                req.extensions_mut().insert(super::access::ClientAddr(peer));
                tower::ServiceExt::oneshot(app.clone(), req)
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(8192);
        let mut stop = shutdown.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let conn = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    // Endless responses end by themselves on shutdown; then the connection closes.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(%peer, "connection ended: {e}");
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
