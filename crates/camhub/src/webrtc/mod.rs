//! WebRTC to browsers (WHEP): each camera's own H.264 passed through to any number of peers, the
//! lowest-latency player camhub has. [`str0m`] holds each peer's protocol state (ICE-lite, DTLS,
//! SRTP, RTP packetization, RTCP); this module is the shell around it: one tokio task owns the one
//! UDP socket every peer shares (ICE multiplexing: a datagram goes to the peer whose ICE
//! credentials or address it matches) and all the peers, and feeds them packets from the camera's
//! packet tap (nothing decoded).
//!
//! A viewer never starts on a P-frame: when its connection is up it is subscribed to the tap,
//! which starts it at the cached GOP's keyframe at once; the GOP goes out back to back with RTP
//! times a tick apart (time stamps are the send time, not the camera's), so the browser decodes it
//! at once and shows the newest picture, then live frames follow at their own pace. A keyframe
//! request (PLI/FIR) is answered the same way, from the cached keyframe, at most once a second.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camhub_media::annexb::Coding;
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::error::{Error, ErrorKind};
use crate::hub::outputs::{KeyframeGate, OutputSession, PacketViewer};
use crate::hub::status::Metrics;
use crate::hub::taps::Delivery;
use crate::hub::Camera;
use crate::udp::UdpOut;

/// How far behind the newest packet a peer may fall before the tap moves it to the newest
/// keyframe: a WebRTC player shows what arrives, so anything older is only delay.
const MAX_LAG: Duration = Duration::from_millis(1000);
/// A peer that has not connected (ICE + DTLS) this long after its offer is dropped.
const CONNECT_WITHIN: Duration = Duration::from_secs(20);
/// Keyframe requests closer together than this are answered once.
const KEYFRAME_EVERY: Duration = Duration::from_secs(1);
/// The longest the driver sleeps (housekeeping: retired cameras, connect timeouts).
const TICK: Duration = Duration::from_millis(500);

/// What one WHEP offer needs.
pub struct Offer {
    /// The camera.
    pub camera: Arc<Camera>,
    /// Its H.264 `profile-level-id` (from the SPS), the only one offered back.
    pub profile_level_id: u32,
    /// The browser's SDP offer.
    pub sdp: String,
    /// The address the browser reached camhub's HTTP server at (offered as a candidate when
    /// the UDP socket is bound to all addresses).
    pub local_ip: Option<IpAddr>,
    /// The browser's address (for the API's session list).
    pub peer: SocketAddr,
}

enum Command {
    Offer(Box<Offer>, oneshot::Sender<Result<(u64, String), Error>>),
    Delete(String, u64, oneshot::Sender<bool>),
}

/// The running WebRTC service: where peers are created and deleted.
pub struct WebRtc {
    commands: mpsc::Sender<Command>,
    addr: SocketAddr,
    /// `[server] ice_servers`, told to clients (WHEP `Link` headers).
    pub ice_servers: Vec<String>,
}

impl WebRtc {
    /// Binds the shared UDP socket at `bind` and starts the driver task until `shutdown`.
    /// `candidates` are extra addresses announced to every browser (NAT, containers).
    pub async fn start(
        bind: SocketAddr,
        candidates: Vec<IpAddr>,
        ice_servers: Vec<String>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<WebRtc> {
        let socket = UdpOut::new(UdpSocket::bind(bind).await?)?;
        let addr = socket.socket().local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let (ptx, prx) = mpsc::channel(1024);
        let driver = Driver {
            socket,
            port: addr.port(),
            bound_ip: addr.ip(),
            candidates,
            peers: HashMap::new(),
            packets_tx: ptx,
            batch: Batch::default(),
        };
        tokio::spawn(driver.run(rx, prx, shutdown));
        Ok(WebRtc {
            commands: tx,
            addr,
            ice_servers,
        })
    }

    /// The UDP address peers are served from.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers an offer: the session number (for its `Location`) and the SDP answer.
    pub async fn offer(&self, offer: Offer) -> Result<(u64, String), Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Offer(Box::new(offer), tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Ends session `id` of camera `camera` (WHEP `DELETE`); false when there is none.
    pub async fn delete(&self, camera: &str, id: u64) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Delete(camera.to_owned(), id, tx))
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

fn stopped() -> Error {
    Error::new(ErrorKind::Unavailable, "camhub is shutting down")
}

/// One browser.
struct Peer {
    rtc: Rtc,
    camera: Arc<Camera>,
    mid: Mid,
    pt: Pt,
    /// The local candidate address datagrams are handed to str0m with.
    local: SocketAddr,
    created: Instant,
    connected: bool,
    /// Bumped at each (re)subscription: deliveries of an older one are dropped.
    epoch: u64,
    forwarder: Option<JoinHandle<()>>,
    gate: KeyframeGate,
    last_ts: u64,
    next_timeout: Instant,
    last_keyframe_request: Option<Instant>,
    session: Arc<OutputSession>,
    /// Held for its Drop: the place under `max_viewers_per_camera` and the gauge.
    _viewer: PacketViewer,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(f) = self.forwarder.take() {
            f.abort();
        }
        self.rtc.disconnect();
    }
}

/// A delivery for peer `.0`, subscription `.1`.
type Routed = (u64, u64, Delivery);

/// Datagrams drained from one peer, sent together (one GSO send per run of equal size).
#[derive(Default)]
struct Batch {
    to: Option<SocketAddr>,
    buf: Vec<u8>,
    ranges: Vec<Range<usize>>,
}

struct Driver {
    socket: UdpOut,
    port: u16,
    bound_ip: IpAddr,
    candidates: Vec<IpAddr>,
    peers: HashMap<u64, Peer>,
    packets_tx: mpsc::Sender<Routed>,
    batch: Batch,
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut packets: mpsc::Receiver<Routed>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // Room for datagrams the kernel coalesced (GRO, up to 64 KiB).
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let now = Instant::now();
            let wake = self
                .peers
                .values()
                .map(|p| p.next_timeout)
                .min()
                .unwrap_or(now + TICK)
                .clamp(now, now + TICK);
            tokio::select! {
                r = self.socket.recv(&mut buf) => match r {
                    Ok(meta) => {
                        for one in buf[..meta.len].chunks(meta.stride.max(1)) {
                            self.datagram(meta.addr, one);
                        }
                    }
                    Err(e) => {
                        // ICMP port unreachable and the like surface here: not fatal.
                        debug!("webrtc: recv: {e}");
                    }
                },
                c = commands.recv() => match c {
                    Some(Command::Offer(offer, reply)) => {
                        let _ = reply.send(self.offer(*offer));
                    }
                    Some(Command::Delete(camera, id, reply)) => {
                        let found = self.peers.get(&id).is_some_and(|p| p.camera.id() == camera);
                        if found {
                            self.remove(id, "deleted (WHEP DELETE)");
                        }
                        let _ = reply.send(found);
                    }
                    None => return,
                },
                Some((id, epoch, d)) = packets.recv() => self.packet(id, epoch, d),
                _ = tokio::time::sleep_until(wake.into()) => self.timeouts(),
                _ = shutdown.changed() => {
                    self.peers.clear();
                    return;
                }
            }
        }
    }

    fn offer(&mut self, o: Offer) -> Result<(u64, String), Error> {
        let bad = |e: String| Error::new(ErrorKind::BadRequest, format!("bad SDP offer: {e}"));
        let sdp = SdpOffer::from_sdp_string(&o.sdp).map_err(|e| bad(e.to_string()))?;
        let viewer = PacketViewer::new(o.camera.clone(), |m| &m.webrtc_viewers)?;
        let now = Instant::now();
        let mut config = Rtc::builder().set_ice_lite(true).clear_codecs();
        // Opus is accepted (and never sent) so that an offer with audio first keeps its first
        // m-section, which carries the candidates.
        config = config.enable_opus(true, false);
        config
            .codec_config()
            .add_h264(102.into(), None, true, o.profile_level_id);
        let mut rtc = config.build(now);
        let mut ips: Vec<IpAddr> = Vec::new();
        if self.bound_ip.is_unspecified() {
            ips.extend(o.local_ip);
        } else {
            ips.push(self.bound_ip);
        }
        for ip in &self.candidates {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        let mut local = None;
        for ip in ips {
            let addr = SocketAddr::new(ip, self.port);
            if let Ok(c) = Candidate::host(addr, "udp") {
                rtc.add_local_candidate(c);
                local.get_or_insert(addr);
            }
        }
        let Some(local) = local else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "no address to offer the browser for WebRTC: set [server] webrtc_candidates to \
                 the address browsers reach camhub at",
            ));
        };
        let answer = rtc
            .sdp_api()
            .accept_offer(sdp)
            .map_err(|e| bad(e.to_string()))?;
        let mid = video_mids(&o.sdp).into_iter().find(|m| {
            rtc.media(*m)
                .is_some_and(|md| md.kind() == MediaKind::Video && md.direction().is_sending())
        });
        let pt = mid.and_then(|mid| {
            rtc.writer(mid)?.payload_params().find_map(|p| {
                let s = p.spec();
                (s.codec == Codec::H264 && s.format.packetization_mode == Some(1)).then(|| p.pt())
            })
        });
        let (Some(mid), Some(pt)) = (mid, pt) else {
            return Err(Error::new(
                ErrorKind::UnsupportedMedia,
                format!(
                    "the offer has no video this camera can be sent as: camera {} sends H.264 \
                     profile-level-id {:06x} (packetization-mode 1), and the offer lacks it",
                    o.camera.id(),
                    o.profile_level_id
                ),
            ));
        };
        rtc.handle_input(Input::Timeout(now))
            .map_err(|e| Error::new(ErrorKind::Internal, format!("webrtc: {e}")))?;
        // Unguessable: a session's number is what its DELETE needs.
        let id = loop {
            let n = rand::random::<u64>() >> 11;
            if n != 0 && !self.peers.contains_key(&n) {
                break n;
            }
        };
        let session = o
            .camera
            .sessions
            .open("webrtc", o.peer.to_string(), "connecting");
        let peer = Peer {
            rtc,
            camera: o.camera,
            mid,
            pt,
            local,
            created: now,
            connected: false,
            epoch: 0,
            forwarder: None,
            gate: KeyframeGate::default(),
            last_ts: 0,
            next_timeout: now,
            last_keyframe_request: None,
            session,
            _viewer: viewer,
        };
        info!(camera = %peer.camera.id(), peer = %o.peer, session = id, "webrtc: offer answered");
        self.peers.insert(id, peer);
        self.drain(id);
        Ok((id, answer.to_sdp_string()))
    }

    /// Hands a datagram to the peer it belongs to.
    fn datagram(&mut self, from: SocketAddr, data: &[u8]) {
        let now = Instant::now();
        let mut owner = None;
        for (id, p) in &self.peers {
            let Ok(r) = Receive::new(Protocol::Udp, from, p.local, data) else {
                return; // not STUN, DTLS, RTP or RTCP
            };
            if p.rtc.accepts(&Input::Receive(now, r)) {
                owner = Some(*id);
                break;
            }
        }
        let Some(id) = owner else {
            return;
        };
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let Ok(r) = Receive::new(Protocol::Udp, from, p.local, data) else {
            return;
        };
        if let Err(e) = p.rtc.handle_input(Input::Receive(now, r)) {
            debug!("webrtc: peer {id}: {e}");
            self.remove(id, "protocol error");
            return;
        }
        self.drain(id);
    }

    /// Sends one delivery to peer `id`, if it is of its current subscription.
    fn packet(&mut self, id: u64, epoch: u64, d: Delivery) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if p.epoch != epoch || !p.connected {
            return;
        }
        if p.gate.admit(&d, &p.camera.metrics).is_none() {
            return;
        }
        let pk = &d.packet;
        // RTP time is the send time: a burst (the cached GOP) goes out a tick apart, so it is
        // shown at once; live frames keep their real spacing.
        let now = Instant::now();
        let ts = ((now - p.created).as_micros() as u64 * 9 / 100).max(p.last_ts + 1);
        p.last_ts = ts;
        let Some(w) = p.rtc.writer(p.mid) else {
            return;
        };
        let data: Arc<[u8]> = Arc::from(&pk.data[..]);
        if let Err(e) = w.write(p.pt, now, MediaTime::from_90khz(ts), data) {
            debug!("webrtc: peer {id}: write: {e}");
            self.remove(id, "write failed");
            return;
        }
        // The packets leave on the next timeout pass.
        if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
            debug!("webrtc: peer {id}: {e}");
            self.remove(id, "protocol error");
            return;
        }
        self.drain(id);
    }

    /// Runs every peer's due timers, and drops peers that never connected or whose camera was
    /// replaced.
    fn timeouts(&mut self) {
        let now = Instant::now();
        let mut gone = Vec::new();
        let due: Vec<u64> = self
            .peers
            .iter()
            .filter_map(|(id, p)| {
                if p.camera.retired() {
                    gone.push((*id, "the camera was replaced or removed"));
                    None
                } else if !p.connected && now - p.created > CONNECT_WITHIN {
                    gone.push((*id, "no connection within 20 s (ICE or DTLS failed)"));
                    None
                } else {
                    (p.next_timeout <= now).then_some(*id)
                }
            })
            .collect();
        for (id, why) in gone {
            self.remove(id, why);
        }
        for id in due {
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                debug!("webrtc: peer {id}: {e}");
                self.remove(id, "protocol error");
                continue;
            }
            self.drain(id);
        }
    }

    /// Drains peer `id`'s output: datagrams to send, events, its next timeout. The datagrams
    /// leave together at the end.
    fn drain(&mut self, id: u64) {
        self.drain_outputs(id);
        self.flush();
    }

    fn drain_outputs(&mut self, id: u64) {
        loop {
            let Some(p) = self.peers.get_mut(&id) else {
                return;
            };
            if !p.rtc.is_alive() {
                self.remove(id, "closed");
                return;
            }
            let out = match p.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    debug!("webrtc: peer {id}: {e}");
                    self.remove(id, "protocol error");
                    return;
                }
            };
            match out {
                Output::Timeout(t) => {
                    p.next_timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    p.session.sent(t.contents.len());
                    Metrics::add(&p.camera.metrics.webrtc_bytes_out, t.contents.len() as u64);
                    if self.batch.to != Some(t.destination) {
                        self.flush();
                        self.batch.to = Some(t.destination);
                    }
                    let start = self.batch.buf.len();
                    self.batch.buf.extend_from_slice(&t.contents);
                    self.batch.ranges.push(start..self.batch.buf.len());
                }
                Output::Event(e) => {
                    if let Some(why) = self.event(id, e) {
                        self.remove(id, why);
                        return;
                    }
                }
            }
        }
    }

    /// Sends the batched datagrams. Never waits on the socket: a full send buffer loses them, as
    /// the network would, and RTP recovers.
    fn flush(&mut self) {
        if let Some(to) = self.batch.to.take() {
            self.socket
                .try_send(to, &self.batch.buf, &self.batch.ranges);
        }
        self.batch.buf.clear();
        self.batch.ranges.clear();
    }

    /// Acts on one event of peer `id`; the reason when the peer is to go.
    fn event(&mut self, id: u64, e: Event) -> Option<&'static str> {
        let tx = self.packets_tx.clone();
        let p = self.peers.get_mut(&id)?;
        match e {
            Event::Connected => {
                p.connected = true;
                p.session.set_state("playing");
                info!(camera = %p.camera.id(), session = id, "webrtc: connected");
                p.subscribe(id, tx);
                None
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                Some("ICE disconnected (the browser went away)")
            }
            Event::Closed => Some("closed by the browser"),
            Event::KeyframeRequest(_) => {
                Metrics::add(&p.camera.metrics.webrtc_keyframe_requests, 1);
                let now = Instant::now();
                if p.connected
                    && p.last_keyframe_request
                        .is_none_or(|t| now - t >= KEYFRAME_EVERY)
                {
                    p.last_keyframe_request = Some(now);
                    p.subscribe(id, tx);
                }
                None
            }
            _ => None,
        }
    }

    fn remove(&mut self, id: u64, why: &str) {
        if let Some(p) = self.peers.remove(&id) {
            info!(camera = %p.camera.id(), session = id, "webrtc: peer gone: {why}");
        }
    }
}

impl Peer {
    /// (Re)subscribes to the camera's packets: the tap starts the new subscription at its cached
    /// keyframe, and deliveries of the old one are dropped.
    fn subscribe(&mut self, id: u64, tx: mpsc::Sender<Routed>) {
        if let Some(f) = self.forwarder.take() {
            f.abort();
        }
        self.epoch += 1;
        self.gate.restart();
        let epoch = self.epoch;
        let camera = self.camera.clone();
        let mut sub = camera.subscribe_player_packets(MAX_LAG);
        self.forwarder = Some(tokio::spawn(async move {
            loop {
                let d = sub.next().await;
                camera.touch();
                if tx.send((id, epoch, d)).await.is_err() {
                    return;
                }
            }
        }));
    }
}

/// The `a=mid:` of each `m=video` section of an SDP.
fn video_mids(sdp: &str) -> Vec<Mid> {
    let mut out = Vec::new();
    let mut video = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            video = m.starts_with("video ");
        } else if let (true, Some(mid)) = (video, line.strip_prefix("a=mid:")) {
            out.push(Mid::from(mid));
        }
    }
    out
}

/// The `profile-level-id` of an H.264 stream, from its SPS (among `parameter_sets`).
pub fn profile_level_id(parameter_sets: &[bytes::Bytes]) -> Option<u32> {
    parameter_sets
        .iter()
        .find(|n| Coding::H264.is_sps(n) && n.len() >= 4)
        .map(|s| (u32::from(s[1]) << 16) | (u32::from(s[2]) << 8) | u32::from(s[3]))
}

/// Warns about a WebRTC service that could not start, once.
pub fn warn_off(why: &str) {
    warn!("WebRTC is off: {why}; browsers get MSE instead");
}
