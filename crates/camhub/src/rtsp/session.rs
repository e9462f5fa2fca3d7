//! The RTSP server's protocol logic, with no I/O: how bytes from a client become messages
//! ([`Framer`], bounded), what a request's URL names ([`Target`]), what a `Transport` header asks
//! for ([`parse_transport`]), and one connection's session state machine ([`Conn`]): a request in,
//! a response and an [`Effect`] out. The shell in [`super`] does the sockets, the camera lookups
//! and the authentication around it.

use camhub_media::annexb::Coding;
use rtsp_types::{headers, Message, Method, ParseError, Request, Response, StatusCode, Version};

/// The most bytes a client may send before its message is complete (headers and body): more is
/// answered 400 and the connection closed.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Seconds a session lives without a request (announced in the `Session` header).
pub const SESSION_TIMEOUT_S: u64 = 60;
/// The methods served, as `Public` lists them.
const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER";

/// One thing a client sent.
#[derive(Debug)]
pub enum Incoming {
    /// A request.
    Request(Box<Request<Vec<u8>>>),
    /// Interleaved data (RTCP receiver reports on TCP): a sign of life, nothing else.
    Data,
    /// A response (clients do not send them to servers; ignored).
    Response,
}

/// Why the byte stream cannot go on: answer 400 and close.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not an RTSP message.
    Garbage,
    /// More than [`MAX_MESSAGE`] bytes without a complete message.
    TooLarge,
}

/// Cuts a client's byte stream into messages, holding at most [`MAX_MESSAGE`] bytes of an
/// incomplete one.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Adds bytes read from the client.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held (an incomplete message).
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, FrameError> {
        // Blank lines between messages are allowed (keep-alive CRLFs some clients send).
        let blank = self
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.buf.drain(..blank);
        if self.buf.is_empty() {
            return Ok(None);
        }
        match Message::<Vec<u8>>::parse(&self.buf) {
            Ok((msg, used)) => {
                self.buf.drain(..used);
                Ok(Some(match msg {
                    Message::Request(r) => Incoming::Request(Box::new(r)),
                    Message::Data(_) => Incoming::Data,
                    Message::Response(_) => Incoming::Response,
                }))
            }
            Err(ParseError::Incomplete(_)) if self.buf.len() < MAX_MESSAGE => Ok(None),
            Err(ParseError::Incomplete(_)) => Err(FrameError::TooLarge),
            Err(ParseError::Error) => Err(FrameError::Garbage),
        }
    }
}

/// What a request's URL names: `rtsp://host:port/{camera}[/sub][/trackID=0][?token=…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The camera id.
    pub camera: String,
    /// The camera's substream (`/sub`).
    pub sub: bool,
    /// `?token=` (an API token, for clients that cannot send Basic credentials).
    pub token: Option<String>,
}

impl Target {
    /// The target of a request URL; `None` for `*` or a URL naming no camera.
    pub fn of(url: Option<&url::Url>) -> Option<Target> {
        let url = url?;
        let token = url
            .query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned());
        let mut parts: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
        if parts.last().is_some_and(|p| p.starts_with("trackID=")) {
            parts.pop();
        }
        let (camera, sub) = match parts.as_slice() {
            [camera] => (*camera, false),
            [camera, "sub"] => (*camera, true),
            _ => return None,
        };
        let camera = url::form_urlencoded::parse(format!("c={camera}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        Some(Target { camera, sub, token })
    }

    /// The stream's name in logs and the API (`front`, `front/sub`).
    pub fn name(&self) -> String {
        if self.sub {
            format!("{}/sub", self.camera)
        } else {
            self.camera.clone()
        }
    }
}

/// How a client wants its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Interleaved in the RTSP connection: RTP on `channel`, RTCP on `channel + 1`.
    Tcp {
        /// The RTP channel.
        channel: u8,
    },
    /// UDP to the client's address: RTP to `rtp`, RTCP to `rtcp`.
    Udp {
        /// The client's RTP port.
        rtp: u16,
        /// The client's RTCP port.
        rtcp: u16,
    },
}

/// The first transport of a `Transport` header that camhub serves (unicast RTP/AVP over UDP, or
/// interleaved over TCP); the error says what was asked and what is served.
pub fn parse_transport(header: &str) -> Result<Transport, String> {
    let mut seen = Vec::new();
    for spec in header.split(',') {
        let mut params = spec.split(';').map(str::trim);
        let proto = params.next().unwrap_or("").to_ascii_uppercase();
        let rest: Vec<&str> = params.collect();
        seen.push(proto.clone());
        if rest.iter().any(|p| p.eq_ignore_ascii_case("multicast")) {
            continue;
        }
        let value = |name: &str| {
            rest.iter().find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
        };
        let pair = |v: &str| -> Option<(u16, Option<u16>)> {
            match v.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, Some(b.parse().ok()?))),
                None => Some((v.parse().ok()?, None)),
            }
        };
        match proto.as_str() {
            "RTP/AVP/TCP" => {
                let channel = match value("interleaved") {
                    Some(v) => match pair(v) {
                        Some((a, _)) if a < 255 => a as u8,
                        _ => return Err(format!("bad interleaved channels \"{v}\"")),
                    },
                    None => 0,
                };
                return Ok(Transport::Tcp { channel });
            }
            "RTP/AVP" | "RTP/AVP/UDP" => {
                let Some(v) = value("client_port") else {
                    return Err("RTP/AVP over UDP needs client_port=RTP-RTCP".into());
                };
                match pair(v) {
                    Some((rtp, rtcp)) if rtp != 0 => {
                        let rtcp = rtcp.unwrap_or(rtp.wrapping_add(1));
                        return Ok(Transport::Udp { rtp, rtcp });
                    }
                    _ => return Err(format!("bad client_port \"{v}\"")),
                }
            }
            _ => {}
        }
    }
    Err(format!(
        "none of the transports asked for ({}) is served: camhub sends unicast RTP/AVP over UDP \
         or interleaved over TCP (RTP/AVP/TCP)",
        seen.join(", ")
    ))
}

/// What DESCRIBE and SETUP need to know of a stream.
#[derive(Debug, Clone)]
pub struct StreamDesc {
    /// Its coding; `None` for JPEG (RFC 2435).
    pub coding: Option<Coding>,
    /// Its parameter sets (NAL units without start codes), for the SDP.
    pub parameter_sets: Vec<Vec<u8>>,
}

/// A reply that ends a request with an error: its status and a short text for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status.
    pub status: StatusCode,
    /// Why, for the client's log (the response body, `text/plain`).
    pub why: String,
}

impl Refusal {
    /// A refusal with this status and reason.
    pub fn new(status: StatusCode, why: impl Into<String>) -> Refusal {
        Refusal {
            status,
            why: why.into(),
        }
    }
}

/// What the shell must do after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Start (or resume) sending `stream` to the client this way, from these RTP numbers.
    Play {
        /// Which stream.
        target: Target,
        /// How.
        transport: Transport,
        /// The SSRC.
        ssrc: u32,
        /// The first sequence number.
        seq: u16,
        /// The first RTP time.
        rtptime: u32,
    },
    /// Stop sending, keep the session (PAUSE).
    Pause,
    /// The session is gone (TEARDOWN): stop sending.
    Teardown,
}

/// State of the one session a connection may hold.
#[derive(Debug, Clone)]
struct Session {
    id: String,
    target: Target,
    transport: Transport,
    playing: bool,
    ssrc: u32,
}

/// One RTSP connection's protocol state: at most one session with one video track.
#[derive(Debug)]
pub struct Conn {
    session: Option<Session>,
    /// The server's shared UDP ports (RTP, RTCP), when it serves UDP.
    udp_ports: Option<(u16, u16)>,
    /// xorshift state for session ids, SSRCs and first sequence numbers.
    rand: u64,
    /// RTP numbers of the next play: seq, rtptime (the shell may move them on at each PLAY).
    next_rtp: (u16, u32),
}

impl Conn {
    /// A new connection; `seed` makes its session id and RTP numbers (non-zero randomness from the
    /// shell), `udp_ports` the server's UDP ports if it serves UDP.
    pub fn new(seed: u64, udp_ports: Option<(u16, u16)>) -> Conn {
        let mut c = Conn {
            session: None,
            udp_ports,
            rand: seed | 1,
            next_rtp: (0, 0),
        };
        c.next_rtp = (c.random() as u16, c.random() as u32);
        c
    }

    fn random(&mut self) -> u64 {
        self.rand ^= self.rand << 13;
        self.rand ^= self.rand >> 7;
        self.rand ^= self.rand << 17;
        self.rand
    }

    /// The session's target, when one exists.
    pub fn target(&self) -> Option<&Target> {
        self.session.as_ref().map(|s| &s.target)
    }

    /// Where the next play's RTP numbers continue from (after a PAUSE, the numbers sent so far).
    pub fn continue_rtp(&mut self, seq: u16, rtptime: u32) {
        self.next_rtp = (seq, rtptime);
    }

    /// The session is not playing after all (the shell could not start its sender).
    pub fn stop_playing(&mut self) {
        if let Some(s) = &mut self.session {
            s.playing = false;
        }
    }

    /// Answers `req`. `stream` is the described stream for DESCRIBE and SETUP (looked up by the
    /// shell, which answered any lookup error itself); `base` is the request URL as the client
    /// sent it, for `Content-Base`.
    pub fn handle(
        &mut self,
        req: &Request<Vec<u8>>,
        stream: Option<&StreamDesc>,
    ) -> (Response<Vec<u8>>, Effect) {
        match self.answer(req, stream) {
            Ok((resp, effect)) => (resp, effect),
            Err(r) => (refuse(req, &r), Effect::None),
        }
    }

    fn answer(
        &mut self,
        req: &Request<Vec<u8>>,
        stream: Option<&StreamDesc>,
    ) -> Result<(Response<Vec<u8>>, Effect), Refusal> {
        if req.version() != Version::V1_0 {
            return Err(Refusal::new(
                StatusCode::RTSPVersionNotSupported,
                "camhub speaks RTSP/1.0",
            ));
        }
        let target = Target::of(req.request_uri());
        match req.method() {
            Method::Options => Ok((
                ok(req).header(headers::PUBLIC, PUBLIC).build(Vec::new()),
                Effect::None,
            )),
            Method::Describe => {
                let (target, stream) = need(target, stream)?;
                let base = req
                    .request_uri()
                    .map(|u| {
                        let mut u = u.clone();
                        u.set_query(None);
                        let s = u.to_string();
                        if s.ends_with('/') {
                            s
                        } else {
                            s + "/"
                        }
                    })
                    .unwrap_or_default();
                let sets: Vec<&[u8]> = stream.parameter_sets.iter().map(Vec::as_slice).collect();
                let sdp = format!(
                    "v=0\r\no=- {} 1 IN IP4 0.0.0.0\r\ns=camhub {}\r\nt=0 0\r\na=tool:camhub\r\n\
                     a=range:npt=now-\r\n{}",
                    self.random() >> 12,
                    target.name(),
                    match stream.coding {
                        Some(c) => camhub_media::rtp::sdp_media(c, 96, &sets, "trackID=0"),
                        None => camhub_media::rtp::sdp_media_jpeg("trackID=0"),
                    }
                );
                Ok((
                    ok(req)
                        .header(headers::CONTENT_TYPE, "application/sdp")
                        .header(headers::CONTENT_BASE, base)
                        .build(sdp.into_bytes()),
                    Effect::None,
                ))
            }
            Method::Setup => {
                let (target, _) = need(target, stream)?;
                let spec = req
                    .header(&headers::TRANSPORT)
                    .map(|v| v.as_str())
                    .ok_or_else(|| {
                        Refusal::new(StatusCode::BadRequest, "SETUP needs a Transport header")
                    })?;
                let transport = parse_transport(spec)
                    .map_err(|e| Refusal::new(StatusCode::UnsupportedTransport, e))?;
                if matches!(transport, Transport::Udp { .. }) && self.udp_ports.is_none() {
                    return Err(Refusal::new(
                        StatusCode::UnsupportedTransport,
                        "this server sends no UDP; use RTP/AVP/TCP (ffmpeg: -rtsp_transport tcp)",
                    ));
                }
                if let Some(id) = session_id(req) {
                    match &self.session {
                        Some(s) if s.id == id => {}
                        _ => return Err(unknown_session(&id)),
                    }
                }
                if let Some(s) = &self.session {
                    if s.playing {
                        return Err(Refusal::new(
                            StatusCode::MethodNotValidInThisState,
                            "the session is playing: PAUSE or TEARDOWN it first",
                        ));
                    }
                    if s.target != target {
                        return Err(Refusal::new(
                            StatusCode::AggregateOperationNotAllowed,
                            "one session per connection: open another connection for another stream",
                        ));
                    }
                }
                let (id, ssrc) = match &self.session {
                    Some(s) => (s.id.clone(), s.ssrc),
                    None => (format!("{:016X}", self.random()), self.random() as u32),
                };
                let reply = match transport {
                    Transport::Tcp { channel } => format!(
                        "RTP/AVP/TCP;unicast;interleaved={}-{};ssrc={ssrc:08X}",
                        channel,
                        channel.wrapping_add(1)
                    ),
                    Transport::Udp { rtp, rtcp } => {
                        let (srtp, srtcp) = self.udp_ports.unwrap_or((0, 0));
                        format!(
                            "RTP/AVP;unicast;client_port={rtp}-{rtcp};server_port={srtp}-{srtcp};ssrc={ssrc:08X}"
                        )
                    }
                };
                self.session = Some(Session {
                    id: id.clone(),
                    target,
                    transport,
                    playing: false,
                    ssrc,
                });
                Ok((
                    ok(req)
                        .header(headers::TRANSPORT, reply)
                        .header(
                            headers::SESSION,
                            format!("{id};timeout={SESSION_TIMEOUT_S}"),
                        )
                        .build(Vec::new()),
                    Effect::None,
                ))
            }
            Method::Play => {
                let s = self.session_of(req)?;
                s.playing = true;
                let (id, target, transport, ssrc) =
                    (s.id.clone(), s.target.clone(), s.transport, s.ssrc);
                let (seq, rtptime) = self.next_rtp;
                let url = req
                    .request_uri()
                    .map(|u| {
                        let mut u = u.clone();
                        u.set_query(None);
                        let s = u.to_string();
                        if s.contains("trackID=") {
                            s
                        } else {
                            format!("{}/trackID=0", s.trim_end_matches('/'))
                        }
                    })
                    .unwrap_or_default();
                Ok((
                    ok(req)
                        .header(headers::SESSION, id)
                        .header(headers::RANGE, "npt=0.000-")
                        .header(
                            headers::RTP_INFO,
                            format!("url={url};seq={seq};rtptime={rtptime}"),
                        )
                        .build(Vec::new()),
                    Effect::Play {
                        target,
                        transport,
                        ssrc,
                        seq,
                        rtptime,
                    },
                ))
            }
            Method::Pause => {
                let s = self.session_of(req)?;
                s.playing = false;
                let id = s.id.clone();
                Ok((
                    ok(req).header(headers::SESSION, id).build(Vec::new()),
                    Effect::Pause,
                ))
            }
            Method::Teardown => {
                let s = self.session_of(req)?;
                let id = s.id.clone();
                self.session = None;
                Ok((
                    ok(req).header(headers::SESSION, id).build(Vec::new()),
                    Effect::Teardown,
                ))
            }
            Method::GetParameter | Method::SetParameter => {
                // A keep-alive: with a session, it must be this connection's.
                let mut b = ok(req);
                if session_id(req).is_some() {
                    let id = self.session_of(req)?.id.clone();
                    b = b.header(headers::SESSION, id);
                }
                Ok((b.build(Vec::new()), Effect::None))
            }
            _ => Err(Refusal::new(
                StatusCode::MethodNotAllowed,
                format!("served methods: {PUBLIC}"),
            )),
        }
    }

    fn session_of(&mut self, req: &Request<Vec<u8>>) -> Result<&mut Session, Refusal> {
        let Some(id) = session_id(req) else {
            return Err(Refusal::new(
                StatusCode::SessionNotFound,
                "no Session header: SETUP first",
            ));
        };
        match &mut self.session {
            Some(s) if s.id == id => Ok(s),
            _ => Err(unknown_session(&id)),
        }
    }
}

fn unknown_session(id: &str) -> Refusal {
    let shown: String = id.chars().take(32).collect();
    Refusal::new(
        StatusCode::SessionNotFound,
        format!(
            "no session \"{}\" on this connection",
            shown.escape_default()
        ),
    )
}

/// The session id of a request's `Session` header (without `;timeout=`).
fn session_id(req: &Request<Vec<u8>>) -> Option<String> {
    let v = req.header(&headers::SESSION)?.as_str();
    Some(v.split(';').next().unwrap_or("").trim().to_owned())
}

fn need(
    target: Option<Target>,
    stream: Option<&StreamDesc>,
) -> Result<(Target, &StreamDesc), Refusal> {
    match (target, stream) {
        (Some(t), Some(s)) => Ok((t, s)),
        _ => Err(Refusal::new(
            StatusCode::NotFound,
            "the URL names no camera: rtsp://HOST:PORT/{camera id}[/sub]",
        )),
    }
}

/// The CSeq of a request (echoed in its response), `0` when it has none.
fn cseq(req: &Request<Vec<u8>>) -> String {
    req.header(&headers::CSEQ)
        .map(|v| v.as_str().trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 16 && v.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| "0".into())
}

fn ok(req: &Request<Vec<u8>>) -> rtsp_types::ResponseBuilder {
    Response::builder(Version::V1_0, StatusCode::Ok)
        .header(headers::CSEQ, cseq(req))
        .header(headers::SERVER, "camhub")
}

/// The response refusing `req`.
pub fn refuse(req: &Request<Vec<u8>>, r: &Refusal) -> Response<Vec<u8>> {
    refusal(Some(cseq(req)), r)
}

/// A refusal's response; `cseq` when the request had one (or could be read).
pub fn refusal(cseq: Option<String>, r: &Refusal) -> Response<Vec<u8>> {
    let mut b = Response::builder(Version::V1_0, r.status)
        .header(headers::CSEQ, cseq.unwrap_or_else(|| "0".into()))
        .header(headers::SERVER, "camhub");
    if r.status == StatusCode::Unauthorized {
        b = b.header(headers::WWW_AUTHENTICATE, "Basic realm=\"camhub\"");
    }
    let mut body = r.why.clone().into_bytes();
    body.push(b'\n');
    b.header(headers::CONTENT_TYPE, "text/plain; charset=utf-8")
        .build(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Request<Vec<u8>> {
        let mut f = Framer::default();
        f.extend(text.as_bytes());
        match f.next_message() {
            Ok(Some(Incoming::Request(r))) => *r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn desc() -> StreamDesc {
        StreamDesc {
            coding: Some(Coding::H264),
            parameter_sets: vec![vec![0x67, 0x42, 0xc0, 0x1f], vec![0x68, 0xce]],
        }
    }

    fn text(resp: &Response<Vec<u8>>) -> String {
        let mut out = Vec::new();
        resp.write(&mut out).expect("serialises");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn a_whole_tcp_session() {
        let mut c = Conn::new(42, Some((6000, 6001)));
        let d = desc();
        let (r, _) = c.handle(
            &parse("OPTIONS rtsp://h:8554/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            None,
        );
        assert!(
            text(&r).contains("Public: OPTIONS, DESCRIBE"),
            "{}",
            text(&r)
        );
        let (r, _) = c.handle(
            &parse("DESCRIBE rtsp://h:8554/cam?token=x RTSP/1.0\r\nCSeq: 2\r\n\r\n"),
            Some(&d),
        );
        let t = text(&r);
        assert!(t.starts_with("RTSP/1.0 200"), "{t}");
        assert!(t.contains("CSeq: 2\r\n"), "{t}");
        assert!(t.contains("Content-Base: rtsp://h:8554/cam/\r\n"), "{t}");
        assert!(t.contains("profile-level-id=42C01F"), "{t}");
        let (r, e) = c.handle(
            &parse(
                "SETUP rtsp://h:8554/cam/trackID=0 RTSP/1.0\r\nCSeq: 3\r\n\
                 Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
            ),
            Some(&d),
        );
        assert_eq!(e, Effect::None);
        let t = text(&r);
        assert!(
            t.contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc="),
            "{t}"
        );
        let session = t
            .lines()
            .find_map(|l| l.strip_prefix("Session: "))
            .and_then(|v| v.split(';').next())
            .expect("a session")
            .to_owned();
        let (r, _) = c.handle(
            &parse("PLAY rtsp://h:8554/cam/ RTSP/1.0\r\nCSeq: 4\r\nSession: nope\r\n\r\n"),
            None,
        );
        assert!(text(&r).starts_with("RTSP/1.0 454"), "{}", text(&r));
        let (r, e) = c.handle(
            &parse(&format!(
                "PLAY rtsp://h:8554/cam/ RTSP/1.0\r\nCSeq: 5\r\nSession: {session}\r\n\r\n"
            )),
            None,
        );
        assert!(text(&r).contains("RTP-Info: url=rtsp://h:8554/cam/trackID=0;seq="));
        assert!(matches!(
            e,
            Effect::Play {
                transport: Transport::Tcp { channel: 0 },
                ..
            }
        ));
        // No new SETUP while playing.
        let (r, _) = c.handle(
            &parse(&format!(
                "SETUP rtsp://h:8554/cam/trackID=0 RTSP/1.0\r\nCSeq: 6\r\nSession: {session}\r\n\
                 Transport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n"
            )),
            Some(&d),
        );
        assert!(text(&r).starts_with("RTSP/1.0 455"), "{}", text(&r));
        let (r, e) = c.handle(
            &parse(&format!(
                "TEARDOWN rtsp://h:8554/cam/ RTSP/1.0\r\nCSeq: 7\r\nSession: {session}\r\n\r\n"
            )),
            None,
        );
        assert!(text(&r).starts_with("RTSP/1.0 200"));
        assert_eq!(e, Effect::Teardown);
        assert!(c.target().is_none());
    }

    #[test]
    fn udp_setup_names_the_server_ports() {
        let mut c = Conn::new(7, Some((6000, 6001)));
        let (r, _) = c.handle(
            &parse(
                "SETUP rtsp://h/cam/sub/trackID=0 RTSP/1.0\r\nCSeq: 1\r\n\
                 Transport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
            ),
            Some(&desc()),
        );
        let t = text(&r);
        assert!(
            t.contains("client_port=5000-5001;server_port=6000-6001"),
            "{t}"
        );
        assert_eq!(c.target().map(|t| t.name()), Some("cam/sub".into()));
        let mut no_udp = Conn::new(7, None);
        let (r, _) = no_udp.handle(
            &parse(
                "SETUP rtsp://h/cam RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;client_port=5000-5001\r\n\r\n",
            ),
            Some(&desc()),
        );
        assert!(text(&r).starts_with("RTSP/1.0 461"), "{}", text(&r));
    }

    #[test]
    fn transports() {
        assert_eq!(
            parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3"),
            Ok(Transport::Tcp { channel: 2 })
        );
        assert_eq!(
            parse_transport("RTP/AVP;multicast,RTP/AVP;unicast;client_port=10-11"),
            Ok(Transport::Udp { rtp: 10, rtcp: 11 })
        );
        assert_eq!(
            parse_transport("RTP/AVP;unicast;client_port=10"),
            Ok(Transport::Udp { rtp: 10, rtcp: 11 })
        );
        assert!(parse_transport("RTP/AVP;unicast").is_err());
        assert!(parse_transport("RTP/AVP;client_port=x-y").is_err());
        assert!(parse_transport("RTP/AVP/TCP;interleaved=255").is_err());
        let e = parse_transport("RAW/RAW/UDP;unicast").expect_err("refused");
        assert!(e.contains("RAW/RAW/UDP"), "{e}");
    }

    #[test]
    fn targets() {
        let t = |s: &str| Target::of(Some(&url::Url::parse(s).expect("url")));
        assert_eq!(
            t("rtsp://h:1/front?token=abc"),
            Some(Target {
                camera: "front".into(),
                sub: false,
                token: Some("abc".into())
            })
        );
        assert_eq!(t("rtsp://h/front/sub/trackID=0").map(|t| t.sub), Some(true));
        assert_eq!(t("rtsp://h/"), None);
        assert_eq!(t("rtsp://h/a/b/c"), None);
        assert_eq!(Target::of(None), None);
    }

    #[test]
    fn framer_bounds_and_garbage() {
        let mut f = Framer::default();
        f.extend(b"\r\nOPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n$\x01\x00\x02ab");
        assert!(matches!(f.next_message(), Ok(Some(Incoming::Request(_)))));
        assert!(matches!(f.next_message(), Ok(Some(Incoming::Data))));
        assert!(matches!(f.next_message(), Ok(None)));
        f.extend(b"OPTIONS * RTSP/1.0\r\nX: ");
        assert!(matches!(f.next_message(), Ok(None)));
        f.extend(&vec![b'a'; MAX_MESSAGE]);
        assert_eq!(f.next_message().err(), Some(FrameError::TooLarge));
        let mut g = Framer::default();
        g.extend(b"\x16\x03\x01 hello there\r\n\r\n");
        assert_eq!(g.next_message().err(), Some(FrameError::Garbage));
    }

    /// Feeds `bytes` in `chunks` to a framer and every request to a connection: nothing may
    /// panic, and the framer never holds more than one bounded message.
    fn drive(bytes: &[u8], chunk: usize) {
        let mut f = Framer::default();
        let mut c = Conn::new(99, Some((6000, 6001)));
        let d = desc();
        for piece in bytes.chunks(chunk.max(1)) {
            f.extend(piece);
            loop {
                match f.next_message() {
                    Ok(Some(Incoming::Request(r))) => {
                        let (resp, _) = c.handle(&r, Some(&d));
                        let _ = text(&resp);
                        let (resp, _) = c.handle(&r, None);
                        let _ = text(&resp);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            assert!(f.held() < MAX_MESSAGE + chunk.max(1));
        }
    }

    const VALID: &[&str] = &[
        "OPTIONS rtsp://h:8554/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        "DESCRIBE rtsp://h:8554/cam?token=abc RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n",
        "SETUP rtsp://h/cam/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
        "SETUP rtsp://h/cam/sub/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n",
        "PLAY rtsp://h/cam/ RTSP/1.0\r\nCSeq: 4\r\nSession: 0123456789ABCDEF\r\nRange: npt=0-\r\n\r\n",
        "GET_PARAMETER rtsp://h/cam RTSP/1.0\r\nCSeq: 5\r\nContent-Length: 3\r\n\r\nabc",
        "TEARDOWN rtsp://h/cam RTSP/1.0\r\nCSeq: 6\r\nSession: 1\r\n\r\n",
        "$\x00\x00\x04abcd",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn fuzz_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096),
                                chunk in 1usize..700) {
            drive(&bytes, chunk);
        }

        #[test]
        fn fuzz_mutated_requests(
            picks in proptest::collection::vec(0usize..VALID.len(), 1..6),
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY, 0u8..4), 0..12),
            chunk in 1usize..300,
        ) {
            let mut bytes: Vec<u8> = picks.iter().flat_map(|i| VALID[*i].bytes()).collect();
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at % bytes.len();
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    2 => { bytes.remove(i); }
                    _ => bytes.truncate(i),
                }
            }
            drive(&bytes, chunk);
        }

        #[test]
        fn fuzz_transport_headers(s in "[ -~]{0,200}") {
            let _ = parse_transport(&s);
        }
    }
}
