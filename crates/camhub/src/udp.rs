//! Batched UDP for the media outputs that send over UDP (RTSP's UDP transport, WebRTC).
//!
//! A video frame leaves as a run of RTP datagrams to one receiver, all of one size but the last
//! (FU-A / FU fragments of a slice). One `sendto` each made a UDP viewer cost 2.4× a TCP one
//! (benches/RESULTS.md). [`UdpOut::send`] hands such a run to the kernel in one `sendmsg` with
//! UDP GSO (generic segmentation offload, Linux ≥ 4.18): the kernel or the NIC cuts it into the
//! same datagrams the receiver would have got one by one. Where GSO is missing (an old kernel, a
//! driver that refuses it) it falls back to one datagram per call, by itself.
//!
//! The system calls are `quinn-udp`'s (the workspace denies `unsafe`). It also turns UDP GRO on
//! for the socket, so a socket that is read as well must be read through [`UdpOut::recv`], which
//! splits coalesced datagrams again.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::ops::Range;

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The most bytes one GSO send carries: its datagrams must fit in one IP packet of 64 KiB.
const MAX_BATCH_BYTES: usize = 60_000;

/// A UDP socket with batched sending (and GRO-aware receiving).
pub struct UdpOut {
    socket: UdpSocket,
    state: UdpSocketState,
}

/// What one [`UdpOut::send`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams handed to the kernel.
    pub datagrams: usize,
    /// Datagrams lost to a full send buffer or a send error (as the network would lose them).
    pub dropped: usize,
    /// System calls made.
    pub calls: usize,
}

impl UdpOut {
    /// Takes `socket` over (it must be registered with the current tokio runtime).
    pub fn new(socket: UdpSocket) -> io::Result<UdpOut> {
        let state = UdpSocketState::new((&socket).into())?;
        Ok(UdpOut { socket, state })
    }

    /// The socket, for its address and for plain sends.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// How many datagrams one system call may carry (1 without GSO).
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Sends the datagrams at `ranges` of `buf` to `to`, batching runs of equal size, without
    /// waiting: a full send buffer drops what does not fit.
    pub fn try_send(&self, to: SocketAddr, buf: &[u8], ranges: &[Range<usize>]) -> Sent {
        let mut sent = Sent::default();
        for (span, segment) in runs(ranges, self.max_segments(), MAX_BATCH_BYTES) {
            self.try_span(to, &buf[span], segment, &mut sent);
        }
        sent
    }

    /// As [`UdpOut::try_send`], but waits for room in the send buffer.
    pub async fn send(&self, to: SocketAddr, buf: &[u8], ranges: &[Range<usize>]) -> Sent {
        let mut sent = Sent::default();
        for (span, segment) in runs(ranges, self.max_segments(), MAX_BATCH_BYTES) {
            let contents = &buf[span];
            let t = transmit(to, contents, segment);
            sent.calls += 1;
            let r = self
                .socket
                .async_io(Interest::WRITABLE, || {
                    self.state.try_send((&self.socket).into(), &t)
                })
                .await;
            self.settle(r, to, contents, segment, &mut sent);
        }
        sent
    }

    /// Receives one datagram, or several coalesced by GRO (then `meta.stride` apart), into `buf`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        let mut meta = [RecvMeta::default()];
        self.socket
            .async_io(Interest::READABLE, || {
                let mut bufs = [IoSliceMut::new(&mut *buf)];
                self.state.recv((&self.socket).into(), &mut bufs, &mut meta)
            })
            .await?;
        Ok(meta[0])
    }

    fn try_span(&self, to: SocketAddr, contents: &[u8], segment: usize, sent: &mut Sent) {
        let t = transmit(to, contents, segment);
        sent.calls += 1;
        let r = self.socket.try_io(Interest::WRITABLE, || {
            self.state.try_send((&self.socket).into(), &t)
        });
        self.settle(r, to, contents, segment, sent);
    }

    /// Counts a send's outcome; a batch that failed for another reason than a full buffer (GSO
    /// refused: quinn-udp then stops offering it) is sent again one datagram at a time.
    fn settle(
        &self,
        r: io::Result<()>,
        to: SocketAddr,
        contents: &[u8],
        segment: usize,
        sent: &mut Sent,
    ) {
        let n = contents.len().div_ceil(segment.max(1));
        match r {
            Ok(()) => sent.datagrams += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || n == 1 => sent.dropped += n,
            Err(_) => {
                for one in contents.chunks(segment.max(1)) {
                    self.try_span(to, one, one.len(), sent);
                }
            }
        }
    }
}

fn transmit(to: SocketAddr, contents: &[u8], segment: usize) -> Transmit<'_> {
    Transmit {
        destination: to,
        ecn: None,
        contents,
        segment_size: (contents.len() > segment).then_some(segment),
        src_ip: None,
    }
}

/// Groups datagrams laid end to end (`ranges` of one buffer) into runs one GSO send can carry:
/// consecutive and touching, all of the first one's size except a shorter last one, at most
/// `max_segments` and `max_bytes`. Yields each run's byte span and its segment size.
pub fn runs(
    ranges: &[Range<usize>],
    max_segments: usize,
    max_bytes: usize,
) -> impl Iterator<Item = (Range<usize>, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let first = ranges.get(i)?;
        let size = first.len();
        let mut end = first.end;
        let mut count = 1;
        i += 1;
        while let Some(next) = ranges.get(i) {
            let fits = count < max_segments
                && next.start == end
                && next.len() <= size
                && next.end - first.start <= max_bytes;
            if !fits || size == 0 {
                break;
            }
            end = next.end;
            count += 1;
            i += 1;
            if next.len() < size {
                break; // only the last datagram of a GSO send may be shorter
            }
        }
        Some((first.start..end, size))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laid(sizes: &[usize]) -> Vec<Range<usize>> {
        let mut at = 0;
        sizes
            .iter()
            .map(|&s| {
                at += s;
                at - s..at
            })
            .collect()
    }

    fn sizes_of(ranges: &[Range<usize>], max: usize, bytes: usize) -> Vec<(usize, usize)> {
        runs(ranges, max, bytes)
            .map(|(span, seg)| (span.len(), seg))
            .collect()
    }

    #[test]
    fn a_frame_is_two_runs() {
        // SPS and PPS (a shorter last datagram may end a run), then a slice in FU-A fragments of
        // 1200 and a short last one.
        let r = laid(&[20, 8, 1200, 1200, 1200, 300]);
        assert_eq!(
            sizes_of(&r, 64, MAX_BATCH_BYTES),
            vec![(28, 20), (3900, 1200)]
        );
    }

    #[test]
    fn runs_end_at_a_bigger_datagram_a_gap_or_the_limits() {
        assert_eq!(
            sizes_of(&laid(&[100, 100, 200, 200]), 64, 10_000),
            vec![(200, 100), (400, 200)]
        );
        // A shorter one ends the run it joins.
        assert_eq!(
            sizes_of(&laid(&[100, 50, 50]), 64, 10_000),
            vec![(150, 100), (50, 50)]
        );
        // Not touching: interleaved framing or a gap.
        let gap = vec![0..10, 12..22];
        assert_eq!(sizes_of(&gap, 64, 10_000), vec![(10, 10), (10, 10)]);
        // Segment and byte limits.
        assert_eq!(
            sizes_of(&laid(&[10; 5]), 2, 10_000),
            vec![(20, 10), (20, 10), (10, 10)]
        );
        assert_eq!(sizes_of(&laid(&[10; 5]), 64, 30), vec![(30, 10), (20, 10)]);
        // Without GSO every datagram is its own.
        assert_eq!(sizes_of(&laid(&[10; 3]), 1, 10_000).len(), 3);
        assert_eq!(sizes_of(&[], 64, 10_000), vec![]);
    }

    #[test]
    fn every_datagram_is_in_exactly_one_run() {
        let sizes = [5, 5, 5, 3, 7, 7, 1, 9, 9, 9, 9, 2, 2, 2];
        let r = laid(&sizes);
        for max in [1, 2, 3, 64] {
            let mut at = 0;
            for (span, seg) in runs(&r, max, 25) {
                assert_eq!(span.start, at);
                at = span.end;
                assert!(span.len().div_ceil(seg) <= max);
            }
            assert_eq!(at, sizes.iter().sum::<usize>());
        }
    }

    /// The kernel's part: a batch sent through GSO on loopback arrives as the same datagrams,
    /// in order, at a plain socket.
    #[tokio::test]
    async fn a_batch_arrives_as_its_datagrams() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let to = rx.local_addr().expect("addr");
        let out = UdpOut::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind")).expect("state");
        let sizes = [20, 8, 1200, 1200, 1200, 300];
        let ranges = laid(&sizes);
        let buf: Vec<u8> = (0..ranges.last().map_or(0, |r| r.end))
            .map(|i| (i % 251) as u8)
            .collect();
        let sent = out.send(to, &buf, &ranges).await;
        assert_eq!(sent.datagrams, sizes.len(), "{sent:?}");
        assert_eq!(sent.dropped, 0);
        if out.max_segments() > 1 {
            assert_eq!(sent.calls, 2, "one call per run: {sent:?}");
        }
        let mut got = vec![0u8; 2048];
        for r in &ranges {
            let n = rx.recv(&mut got).expect("a datagram");
            assert_eq!(&got[..n], &buf[r.clone()]);
        }
        // And the same through try_send.
        let sent = out.try_send(to, &buf, &ranges);
        assert_eq!(sent.datagrams + sent.dropped, sizes.len());
        for r in ranges.iter().take(sent.datagrams) {
            let n = rx.recv(&mut got).expect("a datagram");
            assert_eq!(n, r.len());
        }
    }

    /// GRO on the receiving side: datagrams coalesced by the kernel come back apart.
    #[tokio::test]
    async fn recv_reports_the_stride_of_coalesced_datagrams() {
        let a = UdpOut::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind")).expect("state");
        let b = UdpOut::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind")).expect("state");
        let to = b.socket().local_addr().expect("addr");
        let ranges = laid(&[500, 500, 500]);
        let buf = vec![7u8; 1500];
        a.send(to, &buf, &ranges).await;
        let mut got = vec![0u8; 65536];
        let mut seen = 0;
        while seen < 1500 {
            let meta = tokio::time::timeout(std::time::Duration::from_secs(5), b.recv(&mut got))
                .await
                .expect("in time")
                .expect("recv");
            assert_eq!(meta.stride, 500, "{meta:?}");
            assert_eq!(meta.len % 500, 0);
            seen += meta.len;
        }
        assert_eq!(seen, 1500);
    }
}
