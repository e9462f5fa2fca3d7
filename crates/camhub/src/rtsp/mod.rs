//! The RTSP server (`[server] rtsp_listen`): `rtsp://host:port/{id}` (and `/{id}/sub`) re-serves a
//! camera's own packets over RTP, interleaved in the connection (TCP) or as UDP datagrams, so an
//! NVR, VLC, Home Assistant or Frigate can record a camera while camhub keeps the camera's single
//! connection. Every playing session is a packet-tap consumer (no decode): it starts at the
//! cached GOP's keyframe, and a client that falls behind is moved to the newest keyframe by the
//! tap. The protocol logic is [`session`] (no I/O); this module is its shell: sockets, camera
//! lookups, authentication (Basic over the `[[user]]`s, or `?token=`), and the RTP sender.

pub mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camhub_media::annexb::Coding;
use camhub_media::fmp4::Timeline;
use camhub_media::rtp::{rtp_jpeg, Framing, Packetizer, JPEG_PT};
use rand::RngCore;
use rtsp_types::{headers, Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::auth::{Auth, Principal};
use crate::hub::outputs::{
    described_stream, unplayable, KeyframeGate, NotDescribed, OutputSession, PacketViewer,
};
use crate::hub::status::Metrics;
use crate::hub::taps::{Delivery, PacketSubscriber};
use crate::hub::{Camera, Hub};
use crate::udp::UdpOut;
use session::{
    refusal, Conn, Effect, FrameError, Framer, Incoming, Refusal, StreamDesc, Target, Transport,
};

/// How far behind the newest packet a client may fall before the tap moves it to the newest
/// keyframe (a recorder on a slow link loses a GOP rather than building a backlog).
const MAX_LAG: Duration = Duration::from_secs(2);
/// How long DESCRIBE waits for an idle camera to connect and send its parameter sets.
const DESCRIBE_WITHIN: Duration = Duration::from_secs(10);
/// RTCP sender reports, so clients can map RTP time to wall-clock time.
const SR_EVERY: Duration = Duration::from_secs(5);

/// What the server needs of the rest of camhub.
#[derive(Clone)]
pub struct Context {
    /// The cameras.
    pub hub: Arc<Hub>,
    /// Who may watch.
    pub auth: Arc<Auth>,
    /// A client that accepts no bytes for this long is disconnected (`[server] stall_timeout`).
    pub stall_timeout: Duration,
    /// Open RTSP connections at most (`[server] max_connections`).
    pub max_connections: usize,
}

/// The server's shared UDP sockets (RTP and RTCP on consecutive ports), for clients that ask for
/// UDP.
pub struct Udp {
    /// Sends each frame's datagrams to a client in batches (GSO).
    rtp: Arc<UdpOut>,
    rtcp: Arc<UdpOut>,
    ports: (u16, u16),
}

impl Udp {
    /// Binds an even port and the next one on `ip` (tries a few pairs).
    pub async fn bind(ip: IpAddr) -> std::io::Result<Udp> {
        let mut last = None;
        for _ in 0..32 {
            let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
            let port = rtp.local_addr()?.port();
            if port % 2 != 0 || port == u16::MAX {
                continue;
            }
            match UdpSocket::bind(SocketAddr::new(ip, port + 1)).await {
                Ok(rtcp) => {
                    return Ok(Udp {
                        rtp: Arc::new(UdpOut::new(rtp)?),
                        rtcp: Arc::new(UdpOut::new(rtcp)?),
                        ports: (port, port + 1),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free pair of UDP ports")))
    }

    /// The RTP and RTCP ports.
    pub fn ports(&self) -> (u16, u16) {
        self.ports
    }
}

/// Accepts RTSP connections on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    udp: Option<Udp>,
    ctx: Context,
    mut shutdown: watch::Receiver<bool>,
) {
    let udp = udp.map(Arc::new);
    if let Some(u) = &udp {
        // Clients send receiver reports and NAT punches to these: read and drop them, so the
        // socket buffers never fill.
        for sock in [u.rtp.clone(), u.rtcp.clone()] {
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    tokio::select! {
                        r = sock.recv(&mut buf) => if r.is_err() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        },
                        _ = stop.changed() => return,
                    }
                }
            });
        }
    }
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    warn!("rtsp: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        if open.fetch_add(1, Ordering::AcqRel) >= ctx.max_connections {
            open.fetch_sub(1, Ordering::AcqRel);
            debug!(%peer, "rtsp: connection refused: max_connections reached");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (ctx, udp, open, stop) = (ctx.clone(), udp.clone(), open.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut c = Connection::new(ctx, udp, peer);
            c.run(stream, stop).await;
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// One playing session's sender.
struct Player {
    camera: Arc<Camera>,
    sub: PacketSubscriber,
    /// `None`: JPEG (RFC 2435).
    coding: Option<Coding>,
    packetizer: Packetizer,
    transport: Transport,
    timeline: Timeline,
    rtp_base: u32,
    gate: KeyframeGate,
    /// The last RTP time sent and when (for sender reports).
    last: Option<(u32, Instant)>,
    /// Held for its Drop: the place under `max_viewers_per_camera` and the gauge.
    _viewer: PacketViewer,
    buf: Vec<u8>,
    ranges: Vec<std::ops::Range<usize>>,
}

/// One RTSP connection.
struct Connection {
    ctx: Context,
    udp: Option<Arc<Udp>>,
    peer: SocketAddr,
    conn: Conn,
    principal: Option<Principal>,
    player: Option<Player>,
    /// The session as the API lists it, from SETUP to TEARDOWN.
    listed: Option<Arc<OutputSession>>,
    last_request: Instant,
}

impl Connection {
    fn new(ctx: Context, udp: Option<Arc<Udp>>, peer: SocketAddr) -> Connection {
        let seed = rand::rng().next_u64();
        let ports = udp.as_ref().map(|u| u.ports);
        Connection {
            ctx,
            udp,
            peer,
            conn: Conn::new(seed, ports),
            principal: None,
            player: None,
            listed: None,
            last_request: Instant::now(),
        }
    }

    async fn run(&mut self, stream: TcpStream, mut shutdown: watch::Receiver<bool>) {
        let (mut rd, mut wr) = stream.into_split();
        let mut framer = Framer::default();
        let mut buf = vec![0u8; 4096];
        let mut tick = tokio::time::interval(SR_EVERY);
        loop {
            tokio::select! {
                r = rd.read(&mut buf) => {
                    let n = match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    framer.extend(&buf[..n]);
                    loop {
                        match framer.next_message() {
                            Ok(None) => break,
                            Ok(Some(Incoming::Request(req))) => {
                                self.last_request = Instant::now();
                                let resp = self.request(&req).await;
                                if !self.write(&mut wr, &resp).await {
                                    return;
                                }
                            }
                            Ok(Some(Incoming::Data | Incoming::Response)) => {
                                self.last_request = Instant::now();
                            }
                            Err(e) => {
                                let why = match e {
                                    FrameError::Garbage => "not an RTSP request",
                                    FrameError::TooLarge => "request too large",
                                };
                                debug!(peer = %self.peer, "rtsp: {why}; closing");
                                let r = refusal(None, &Refusal::new(StatusCode::BadRequest, why));
                                self.write(&mut wr, &r).await;
                                return;
                            }
                        }
                    }
                }
                d = next_packet(&mut self.player) => {
                    if !self.send(&mut wr, d).await {
                        return;
                    }
                }
                _ = tick.tick() => {
                    if !self.housekeeping(&mut wr).await {
                        return;
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Answers one request (authentication, lookups, then the state machine) and acts on it.
    async fn request(&mut self, req: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        let target = Target::of(req.request_uri());
        let method = req.method().clone();
        if method != Method::Options {
            if let Some(t) = &target {
                if let Err(r) = self.authorize(req, t).await {
                    return session::refuse(req, &r);
                }
            }
        }
        let stream = match (&method, &target) {
            (Method::Describe | Method::Setup, Some(t)) => match self.describe(t).await {
                Ok(d) => Some(d),
                Err(r) => return session::refuse(req, &r),
            },
            _ => None,
        };
        let (resp, effect) = self.conn.handle(req, stream.as_ref().map(|(_, d)| d));
        match effect {
            Effect::None if method == Method::Setup && resp.status() == StatusCode::Ok => {
                if self.listed.is_none() {
                    if let Some((camera, _)) = &stream {
                        self.listed =
                            Some(camera.sessions.open("rtsp", self.peer.to_string(), "ready"));
                    }
                }
            }
            Effect::None => {}
            Effect::Play {
                target,
                transport,
                ssrc,
                seq,
                rtptime,
            } => match self.play(&target, transport, ssrc, seq, rtptime).await {
                Ok(()) => {
                    info!(peer = %self.peer, camera = %target.name(), "rtsp: playing ({})",
                            match transport { Transport::Tcp { .. } => "tcp", Transport::Udp { .. } => "udp" });
                    if let Some(l) = &self.listed {
                        l.set_state("playing");
                    }
                }
                Err(r) => {
                    self.conn.stop_playing();
                    return session::refuse(req, &r);
                }
            },
            Effect::Pause => {
                self.stop();
                if let Some(l) = &self.listed {
                    l.set_state("paused");
                }
            }
            Effect::Teardown => {
                self.stop();
                self.listed = None;
                info!(peer = %self.peer, "rtsp: session torn down");
            }
        }
        resp
    }

    /// Who is asking, for camera `t`: login off, this connection's earlier proof, a `?token=`, or
    /// `Authorization: Basic` / `Bearer`.
    async fn authorize(&mut self, req: &Request<Vec<u8>>, t: &Target) -> Result<(), Refusal> {
        let auth = &self.ctx.auth;
        let principal = if !auth.enforced() {
            Principal::open()
        } else {
            let ip = self.peer.ip();
            if let Some(left) = auth.banned(ip) {
                return Err(Refusal::new(
                    StatusCode::Forbidden,
                    format!(
                        "too many failed logins from this address: try again in {} s",
                        left.as_secs() + 1
                    ),
                ));
            }
            let given = req
                .header(&headers::AUTHORIZATION)
                .map(|v| v.as_str().to_owned());
            let proof = match (&t.token, given) {
                (Some(token), _) => Some(auth.token(token)),
                (None, Some(value)) => Some(auth.authorization(&value).await),
                (None, None) => None,
            };
            match proof {
                Some(Some(p)) => {
                    auth.succeeded(ip);
                    self.principal = Some(p.clone());
                    p
                }
                Some(None) => {
                    let delay = auth.failed(ip);
                    tokio::time::sleep(delay).await;
                    return Err(Refusal::new(StatusCode::Unauthorized, "wrong credentials"));
                }
                None => match &self.principal {
                    Some(p) => p.clone(),
                    None => {
                        return Err(Refusal::new(
                            StatusCode::Unauthorized,
                            "login required: rtsp://USER:PASSWORD@host/… with a camhub user, or ?token= with an API token",
                        ))
                    }
                },
            }
        };
        if principal.can_see(&t.camera) {
            Ok(())
        } else {
            Err(no_camera(&t.camera))
        }
    }

    /// The camera stream `t` names and its description, once it has parameter sets: an idle
    /// camera is opened and waited for (at most [`DESCRIBE_WITHIN`]).
    async fn describe(&self, t: &Target) -> Result<(Arc<Camera>, StreamDesc), Refusal> {
        let camera = stream_of(&self.ctx.hub, t)?;
        match described_stream(&camera, MAX_LAG, DESCRIBE_WITHIN, true).await {
            Ok((None, _)) => {
                // RTP/JPEG carries only some JPEGs: look at one of this camera's.
                let mut sub = camera.subscribe_packets(MAX_LAG);
                let first = tokio::time::timeout(DESCRIBE_WITHIN, sub.next()).await;
                let d = first.map_err(|_| {
                    Refusal::new(
                        StatusCode::ServiceUnavailable,
                        format!(
                            "camera {} gave no picture within {} s",
                            camera.id(),
                            DESCRIBE_WITHIN.as_secs()
                        ),
                    )
                })?;
                if let Err(why) = rtp_jpeg(&d.packet.data) {
                    return Err(Refusal::new(
                        StatusCode::UnsupportedMediaType,
                        format!(
                            "camera {}'s JPEGs cannot be sent as RTP/JPEG (RFC 2435): {why}; set \
                             transcode = \"h264\" on the camera to serve it as H.264",
                            camera.id()
                        ),
                    ));
                }
                Ok((
                    camera,
                    StreamDesc {
                        coding: None,
                        parameter_sets: Vec::new(),
                    },
                ))
            }
            Ok((coding, params)) => {
                let parameter_sets = params.parameter_sets.iter().map(|b| b.to_vec()).collect();
                Ok((
                    camera,
                    StreamDesc {
                        coding,
                        parameter_sets,
                    },
                ))
            }
            Err(NotDescribed::Unplayable(why)) => {
                Err(Refusal::new(StatusCode::UnsupportedMediaType, why))
            }
            Err(NotDescribed::NoKeyframe(why)) => {
                Err(Refusal::new(StatusCode::ServiceUnavailable, why))
            }
        }
    }

    async fn play(
        &mut self,
        t: &Target,
        transport: Transport,
        ssrc: u32,
        seq: u16,
        rtptime: u32,
    ) -> Result<(), Refusal> {
        self.stop();
        let camera = stream_of(&self.ctx.hub, t)?;
        let viewer = PacketViewer::new(camera.clone(), |m| &m.rtsp_viewers)
            .map_err(|e| Refusal::new(StatusCode::ServiceUnavailable, e.message))?;
        let sub = camera.subscribe_player_packets(MAX_LAG);
        let codec = sub.params().map(|p| p.codec).unwrap_or_default();
        let coding = match Coding::from_name(&codec) {
            Some(c) => Some(c),
            None if codec == "mjpeg" => None,
            None => {
                return Err(Refusal::new(
                    StatusCode::UnsupportedMediaType,
                    unplayable(camera.id(), &codec),
                ))
            }
        };
        let framing = match transport {
            Transport::Tcp { channel } => Framing::Interleaved(channel),
            Transport::Udp { .. } => Framing::Datagram,
        };
        self.player = Some(Player {
            camera,
            sub,
            coding,
            packetizer: Packetizer::new(
                ssrc,
                seq,
                if coding.is_some() { 96 } else { JPEG_PT },
                framing,
            ),
            transport,
            timeline: Timeline::default(),
            rtp_base: rtptime,
            gate: KeyframeGate::default(),
            last: None,
            _viewer: viewer,
            buf: Vec::with_capacity(64 * 1024),
            ranges: Vec::new(),
        });
        Ok(())
    }

    /// Stops sending (PAUSE, TEARDOWN); a later PLAY goes on with the RTP numbers sent so far.
    fn stop(&mut self) {
        if let Some(p) = self.player.take() {
            let ts = p.last.map_or(p.rtp_base, |(ts, _)| ts.wrapping_add(3000));
            self.conn.continue_rtp(p.packetizer.seq, ts);
        }
    }

    /// Sends one delivery to the client; false when the connection must close.
    async fn send(&mut self, wr: &mut OwnedWriteHalf, d: Delivery) -> bool {
        let Some(p) = self.player.as_mut() else {
            return true;
        };
        p.camera.touch();
        let pk = &d.packet;
        match p.gate.admit(&d, &p.camera.metrics) {
            None => return true,
            Some(true) => p.timeline.rejoin(),
            Some(false) => {}
        }
        let (_, pts, _) = p.timeline.place(pk.dts, pk.pts);
        let ts = p.rtp_base.wrapping_add(pts as u32);
        p.buf.clear();
        p.ranges.clear();
        match p.coding {
            Some(c) => {
                p.packetizer
                    .packetize(c, &pk.data, ts, &mut p.buf, &mut p.ranges);
            }
            None => match rtp_jpeg(&pk.data) {
                Ok(j) => {
                    p.packetizer
                        .packetize_jpeg(&j, ts, &mut p.buf, &mut p.ranges);
                }
                // One JPEG RTP cannot carry (the camera changed encoder settings): skipped.
                Err(why) => {
                    debug!(peer = %self.peer, "rtsp: a JPEG skipped: {why}");
                    return true;
                }
            },
        }
        p.last = Some((ts, Instant::now()));
        let n = p.buf.len();
        let ok = match p.transport {
            Transport::Tcp { .. } => {
                let w = tokio::time::timeout(self.ctx.stall_timeout, wr.write_all(&p.buf)).await;
                matches!(w, Ok(Ok(())))
            }
            Transport::Udp { rtp, .. } => {
                let Some(udp) = &self.udp else { return false };
                let to = SocketAddr::new(self.peer.ip(), rtp);
                // The frame's datagrams lie end to end in `buf`: runs of equal size go in one
                // system call. A send error drops datagrams, as the network would.
                udp.rtp.send(to, &p.buf, &p.ranges).await;
                true
            }
        };
        Metrics::add(&p.camera.metrics.rtsp_bytes_out, n as u64);
        if let Some(l) = &self.listed {
            l.sent(n);
        }
        ok
    }

    /// Every [`SR_EVERY`]: a sender report, the end of a session whose camera was replaced by a
    /// reload, and the end of a silent UDP client. False when the connection must close.
    async fn housekeeping(&mut self, wr: &mut OwnedWriteHalf) -> bool {
        let Some(p) = self.player.as_ref() else {
            return true;
        };
        if p.camera.retired() {
            info!(peer = %self.peer, "rtsp: the camera was replaced or removed; closing the session");
            return false;
        }
        if matches!(p.transport, Transport::Udp { .. })
            && self.last_request.elapsed() > Duration::from_secs(2 * session::SESSION_TIMEOUT_S)
        {
            info!(peer = %self.peer, "rtsp: session timed out (no request)");
            return false;
        }
        let Some((ts, at)) = p.last else {
            return true;
        };
        let elapsed = at.elapsed();
        let rtp_now = ts.wrapping_add((elapsed.as_micros() as u64 * 9 / 100) as u32);
        let unix_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let sr = p.packetizer.sender_report(unix_us, rtp_now);
        match p.transport {
            Transport::Tcp { .. } => {
                let w = tokio::time::timeout(self.ctx.stall_timeout, wr.write_all(&sr)).await;
                matches!(w, Ok(Ok(())))
            }
            Transport::Udp { rtcp, .. } => {
                if let Some(udp) = &self.udp {
                    let _ = udp
                        .rtcp
                        .socket()
                        .send_to(&sr, SocketAddr::new(self.peer.ip(), rtcp))
                        .await;
                }
                true
            }
        }
    }

    /// Writes a response; false when the connection must close.
    async fn write(&self, wr: &mut OwnedWriteHalf, resp: &Response<Vec<u8>>) -> bool {
        let mut out = Vec::with_capacity(512);
        if resp.write(&mut out).is_err() {
            return false;
        }
        let w = tokio::time::timeout(self.ctx.stall_timeout, wr.write_all(&out)).await;
        matches!(w, Ok(Ok(())))
    }
}

/// The next packet of the playing session; never ready without one.
async fn next_packet(player: &mut Option<Player>) -> Delivery {
    match player {
        Some(p) => p.sub.next().await,
        None => std::future::pending().await,
    }
}

/// The camera stream a target names (the camera, or its substream).
fn stream_of(hub: &Hub, t: &Target) -> Result<Arc<Camera>, Refusal> {
    let camera = hub.camera(&t.camera).map_err(|_| no_camera(&t.camera))?;
    if !t.sub {
        return Ok(camera);
    }
    camera.substream.clone().ok_or_else(|| {
        Refusal::new(
            StatusCode::NotFound,
            format!("camera {} has no substream_url", t.camera),
        )
    })
}

fn no_camera(id: &str) -> Refusal {
    let shown: String = id.chars().take(64).collect();
    Refusal::new(
        StatusCode::NotFound,
        format!("no camera \"{}\"", shown.escape_default()),
    )
}
