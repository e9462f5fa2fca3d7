//! RTP out: one H.264 (RFC 6184) or H.265 (RFC 7798) access unit, or one baseline JPEG (RFC 2435),
//! into RTP packets, the RTCP sender
//! report, and the SDP of such a stream. What camhub's RTSP server sends its clients; the packets of
//! one access unit are written back to back into one buffer, so a TCP client gets them in one
//! write (RFC 2326 §10.12 interleaving, `$`, channel, length) and a UDP client one datagram each.

use crate::annexb::{nal_units, Coding};

/// The largest RTP payload written (a 1500-byte Ethernet MTU minus IP, UDP and RTP headers, with
/// room for tunnels).
pub const MAX_PAYLOAD: usize = 1400;
/// Length of the RTP fixed header (no CSRCs, no extension).
const HEADER: usize = 12;

/// How each packet is framed in the output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Bare packets (UDP): [`Packetizer::packetize`] records where each one is.
    Datagram,
    /// RTSP interleaved: `$`, the channel, the length (u16 BE), then the packet.
    Interleaved(u8),
}

/// One RTP stream's sender state: SSRC, sequence number, payload type, and what was sent (for
/// sender reports).
#[derive(Debug, Clone)]
pub struct Packetizer {
    /// The stream's SSRC.
    pub ssrc: u32,
    /// The next packet's sequence number.
    pub seq: u16,
    /// The payload type the SDP announced.
    pub payload_type: u8,
    /// Packets sent so far (RTCP SR).
    pub packets: u32,
    /// Payload bytes sent so far (RTCP SR).
    pub octets: u32,
    framing: Framing,
}

impl Packetizer {
    /// A stream with this SSRC, first sequence number and payload type.
    pub fn new(ssrc: u32, seq: u16, payload_type: u8, framing: Framing) -> Packetizer {
        Packetizer {
            ssrc,
            seq,
            payload_type,
            packets: 0,
            octets: 0,
            framing,
        }
    }

    /// Appends the RTP packets of the Annex B access unit `au` with RTP time `ts` to `out`, and the
    /// byte range of each packet (its framing included) to `ranges`. Access unit delimiters are
    /// left out; NAL units larger than [`MAX_PAYLOAD`] are fragmented (FU-A / H.265 FU); the last
    /// packet has the marker bit. Returns the number of packets.
    pub fn packetize(
        &mut self,
        coding: Coding,
        au: &[u8],
        ts: u32,
        out: &mut Vec<u8>,
        ranges: &mut Vec<std::ops::Range<usize>>,
    ) -> usize {
        let nals: Vec<&[u8]> = nal_units(au)
            .filter(|n| !is_delimiter(coding, n) && n.len() > header_len(coding))
            .collect();
        let mut count = 0;
        for (i, nal) in nals.iter().enumerate() {
            let last_nal = i + 1 == nals.len();
            if nal.len() <= MAX_PAYLOAD {
                self.packet(out, ranges, ts, last_nal, &[], nal);
                count += 1;
                continue;
            }
            let hl = header_len(coding);
            let (fu_head, kind): (Vec<u8>, u8) = match coding {
                // FU indicator: the NAL's F and NRI bits, type 28.
                Coding::H264 => (vec![(nal[0] & 0xe0) | 28], nal[0] & 0x1f),
                // Payload header: the NAL's F bit, layer and TID, type 49.
                Coding::H265 => (
                    vec![(nal[0] & 0x81) | (49 << 1), nal[1]],
                    (nal[0] >> 1) & 0x3f,
                ),
            };
            let body = &nal[hl..];
            let room = MAX_PAYLOAD - fu_head.len() - 1;
            let mut chunks = body.chunks(room).peekable();
            let mut first = true;
            while let Some(chunk) = chunks.next() {
                let end = chunks.peek().is_none();
                let mut head = fu_head.clone();
                head.push(kind | if first { 0x80 } else { 0 } | if end { 0x40 } else { 0 });
                self.packet(out, ranges, ts, last_nal && end, &head, chunk);
                count += 1;
                first = false;
            }
        }
        count
    }

    /// Writes one packet: framing, header, `head` and `payload`.
    fn packet(
        &mut self,
        out: &mut Vec<u8>,
        ranges: &mut Vec<std::ops::Range<usize>>,
        ts: u32,
        marker: bool,
        head: &[u8],
        payload: &[u8],
    ) {
        let start = out.len();
        let len = HEADER + head.len() + payload.len();
        if let Framing::Interleaved(channel) = self.framing {
            out.push(b'$');
            out.push(channel);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        out.push(0x80);
        out.push(self.payload_type | if marker { 0x80 } else { 0 });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(head);
        out.extend_from_slice(payload);
        ranges.push(start..out.len());
        self.seq = self.seq.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self
            .octets
            .wrapping_add((head.len() + payload.len()) as u32);
    }

    /// An RTCP sender report (RFC 3550 §6.4.1, no report blocks) for wall-clock time `unix_us`
    /// (µs since the Unix epoch), which is RTP time `rtp_ts`; framed like the RTP packets, on the
    /// channel after theirs when interleaved.
    pub fn sender_report(&self, unix_us: u64, rtp_ts: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        if let Framing::Interleaved(channel) = self.framing {
            out.extend_from_slice(&[b'$', channel.wrapping_add(1), 0, 28]);
        }
        // NTP time: seconds since 1900, and a 32-bit binary fraction.
        let secs = unix_us / 1_000_000 + 2_208_988_800;
        let frac = ((unix_us % 1_000_000) << 32) / 1_000_000;
        out.extend_from_slice(&[0x80, 200, 0, 6]);
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&(secs as u32).to_be_bytes());
        out.extend_from_slice(&(frac as u32).to_be_bytes());
        out.extend_from_slice(&rtp_ts.to_be_bytes());
        out.extend_from_slice(&self.packets.to_be_bytes());
        out.extend_from_slice(&self.octets.to_be_bytes());
        out
    }
}

fn header_len(coding: Coding) -> usize {
    match coding {
        Coding::H264 => 1,
        Coding::H265 => 2,
    }
}

fn is_delimiter(coding: Coding, nal: &[u8]) -> bool {
    match coding {
        Coding::H264 => coding.nal_type(nal) == 9,
        Coding::H265 => coding.nal_type(nal) == 35,
    }
}

/// The SDP media description (`m=` section and its attributes) of a video stream with payload type
/// `pt`, from its parameter sets (NAL units without start codes): `sprop-parameter-sets` and
/// `profile-level-id` for H.264, `sprop-vps/sps/pps` for H.265. `control` is the track's URL
/// relative to the session's.
pub fn sdp_media(coding: Coding, pt: u8, parameter_sets: &[&[u8]], control: &str) -> String {
    let mut s = format!("m=video 0 RTP/AVP {pt}\r\nc=IN IP4 0.0.0.0\r\n");
    match coding {
        Coding::H264 => {
            s += &format!("a=rtpmap:{pt} H264/90000\r\n");
            let mut fmtp = format!("a=fmtp:{pt} packetization-mode=1");
            if let Some(sps) = parameter_sets.iter().find(|n| coding.is_sps(n)) {
                if sps.len() >= 4 {
                    fmtp += &format!(
                        ";profile-level-id={:02X}{:02X}{:02X}",
                        sps[1], sps[2], sps[3]
                    );
                }
            }
            let sets: Vec<String> = parameter_sets.iter().map(|n| base64(n)).collect();
            if !sets.is_empty() {
                fmtp += &format!(";sprop-parameter-sets={}", sets.join(","));
            }
            s += &fmtp;
            s += "\r\n";
        }
        Coding::H265 => {
            s += &format!("a=rtpmap:{pt} H265/90000\r\n");
            let mut parts = Vec::new();
            for (kind, name) in [(32, "sprop-vps"), (33, "sprop-sps"), (34, "sprop-pps")] {
                if let Some(n) = parameter_sets.iter().find(|n| coding.nal_type(n) == kind) {
                    parts.push(format!("{name}={}", base64(n)));
                }
            }
            if !parts.is_empty() {
                s += &format!("a=fmtp:{pt} {}\r\n", parts.join(";"));
            }
        }
    }
    s += &format!("a=control:{control}\r\n");
    s
}

/// Standard base64 with padding (RFC 4648), as SDP's `sprop-*` parameters carry it.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The RTP payload type of JPEG (RFC 3551, static).
pub const JPEG_PT: u8 = 26;

/// What RFC 2435 (RTP/JPEG) carries of one baseline JPEG: its type, size in 8-pixel blocks,
/// quantization tables, restart interval and entropy-coded scan. Huffman tables are not carried
/// (the receiver uses the standard ones), so a JPEG with other tables is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpJpeg<'a> {
    /// 0 (4:2:2) or 1 (4:2:0), plus 64 with restart markers.
    pub kind: u8,
    /// Width / 8, rounded up.
    pub width8: u8,
    /// Height / 8, rounded up.
    pub height8: u8,
    /// The luma then the chroma quantization table (8-bit, zigzag order as in DQT).
    pub tables: [u8; 128],
    /// The restart interval (DRI), 0 for none.
    pub restart: u16,
    /// The scan data, after the SOS header and up to (not including) EOI.
    pub scan: &'a [u8],
}

/// A frame header's width, height and (sampling factors, quantization table) of each component.
type Frame = (u16, u16, [(u8, u8); 3]);

/// Reads what RFC 2435 needs of a whole JPEG; the error says why it cannot be carried.
pub fn rtp_jpeg(data: &[u8]) -> Result<RtpJpeg<'_>, String> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err("not a JPEG".into());
    }
    let mut tables: [Option<[u8; 64]>; 4] = [None; 4];
    let mut sof: Option<Frame> = None;
    let mut restart = 0u16;
    let mut pos = 2;
    loop {
        while data.get(pos) == Some(&0xFF) && data.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let (Some(&ff), Some(&marker)) = (data.get(pos), data.get(pos + 1)) else {
            return Err("truncated before its image data".into());
        };
        if ff != 0xFF {
            return Err(format!("expected a marker at byte {pos}"));
        }
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            pos += 2;
            continue;
        }
        let len = match (data.get(pos + 2), data.get(pos + 3)) {
            (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return Err("truncated segment".into()),
        };
        let body = data
            .get(pos + 4..pos + 2 + len)
            .filter(|_| len >= 2)
            .ok_or("truncated segment")?;
        match marker {
            0xDB => {
                let mut b = body;
                while let Some((&pq_tq, rest)) = b.split_first() {
                    if pq_tq >> 4 != 0 {
                        return Err("16-bit quantization tables are not carried by RTP/JPEG".into());
                    }
                    let t = rest.get(..64).ok_or("truncated DQT")?;
                    let mut table = [0u8; 64];
                    table.copy_from_slice(t);
                    tables[usize::from(pq_tq & 3)] = Some(table);
                    b = &rest[64..];
                }
            }
            0xC4 => check_huffman(body)?,
            0xDD => {
                restart = body
                    .get(..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
                    .ok_or("truncated DRI")?;
            }
            0xC0 => {
                let [8, h0, h1, w0, w1, 3, c @ ..] = body else {
                    return Err(
                        "only 8-bit three-component (YCbCr) baseline JPEGs are carried by RTP/JPEG"
                            .into(),
                    );
                };
                let c = c.get(..9).ok_or("truncated SOF")?;
                let comps = [(c[1], c[2]), (c[4], c[5]), (c[7], c[8])];
                sof = Some((
                    u16::from_be_bytes([*w0, *w1]),
                    u16::from_be_bytes([*h0, *h1]),
                    comps,
                ));
            }
            0xC1..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => {
                return Err("only baseline JPEGs are carried by RTP/JPEG (this one is progressive or extended)".into());
            }
            0xDA => {
                let (w, h, comps) = sof.ok_or("no frame header before the image data")?;
                let kind = match (comps[0].0, comps[1].0, comps[2].0) {
                    (0x21, 0x11, 0x11) => 0,
                    (0x22, 0x11, 0x11) => 1,
                    _ => return Err("only 4:2:0 and 4:2:2 JPEGs are carried by RTP/JPEG".into()),
                };
                if w == 0 || h == 0 || w > 2040 || h > 2040 {
                    return Err(format!("{w}x{h} is beyond RTP/JPEG's 2040x2040"));
                }
                if comps[1].1 != comps[2].1 {
                    return Err(
                        "the two chroma components use different quantization tables".into(),
                    );
                }
                let luma =
                    tables[usize::from(comps[0].1 & 3)].ok_or("a quantization table is missing")?;
                let chroma =
                    tables[usize::from(comps[1].1 & 3)].ok_or("a quantization table is missing")?;
                let mut both = [0u8; 128];
                both[..64].copy_from_slice(&luma);
                both[64..].copy_from_slice(&chroma);
                let start = pos + 2 + len;
                let mut end = data.len();
                while end > start && data[end - 1] != 0xD9 {
                    end -= 1;
                }
                if end < start + 2 || data[end - 2] != 0xFF {
                    return Err("no end of image (truncated JPEG)".into());
                }
                return Ok(RtpJpeg {
                    kind: kind + if restart > 0 { 64 } else { 0 },
                    width8: w.div_ceil(8) as u8,
                    height8: h.div_ceil(8) as u8,
                    tables: both,
                    restart,
                    scan: &data[start..end - 2],
                });
            }
            _ => {}
        }
        pos += 2 + len;
    }
}

/// Standard Huffman tables (JPEG Annex K.3): (class, id, code counts, symbols).
const STANDARD_HUFFMAN: [(u8, u8, [u8; 16], &[u8]); 4] = [
    (
        0,
        0,
        [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    ),
    (
        0,
        1,
        [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    ),
    (
        1,
        0,
        [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
        &AC_LUMA,
    ),
    (
        1,
        1,
        [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
        &AC_CHROMA,
    ),
];

const AC_LUMA: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

const AC_CHROMA: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

/// Refuses a DHT segment that defines any table other than the standard ones (RFC 2435 receivers
/// decode with those).
fn check_huffman(mut body: &[u8]) -> Result<(), String> {
    while let Some((&tc_th, rest)) = body.split_first() {
        let counts = rest.get(..16).ok_or("truncated DHT")?;
        let n: usize = counts.iter().map(|c| usize::from(*c)).sum();
        let symbols = rest.get(16..16 + n).ok_or("truncated DHT")?;
        let standard = STANDARD_HUFFMAN
            .iter()
            .any(|(c, i, k, s)| tc_th == (c << 4 | i) && counts == k && symbols == *s);
        if !standard {
            return Err("its Huffman tables are not the standard ones (an encoder with optimised tables), which RTP/JPEG cannot carry".into());
        }
        body = &rest[16 + n..];
    }
    Ok(())
}

impl Packetizer {
    /// Appends the RFC 2435 packets of one JPEG (see [`rtp_jpeg`]) with RTP time `ts`, like
    /// [`Packetizer::packetize`]: the quantization tables in the first packet (Q = 255), a restart
    /// header in each with restart markers, the marker bit on the last. Returns the packets.
    pub fn packetize_jpeg(
        &mut self,
        j: &RtpJpeg<'_>,
        ts: u32,
        out: &mut Vec<u8>,
        ranges: &mut Vec<std::ops::Range<usize>>,
    ) -> usize {
        let mut offset = 0usize;
        let mut count = 0;
        loop {
            let mut head = Vec::with_capacity(8 + 4 + 4 + 128);
            head.push(0);
            head.extend_from_slice(&(offset as u32).to_be_bytes()[1..]);
            head.extend_from_slice(&[j.kind, 255, j.width8, j.height8]);
            if j.kind >= 64 {
                // Restart interval; F = L = 1 and count 0x3FFF: the packet holds whole intervals
                // or the receiver reassembles the frame first (camhub sends whole frames).
                head.extend_from_slice(&j.restart.to_be_bytes());
                head.extend_from_slice(&[0xFF, 0xFF]);
            }
            if offset == 0 {
                head.extend_from_slice(&[0, 0, 0, 128]);
                head.extend_from_slice(&j.tables);
            }
            let room = MAX_PAYLOAD - head.len();
            let end = (offset + room).min(j.scan.len());
            let last = end == j.scan.len();
            self.packet(out, ranges, ts, last, &head, &j.scan[offset..end]);
            count += 1;
            offset = end;
            if last {
                return count;
            }
        }
    }
}

/// The SDP media description of an RTP/JPEG stream.
pub fn sdp_media_jpeg(control: &str) -> String {
    format!(
        "m=video 0 RTP/AVP {JPEG_PT}\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:{JPEG_PT} JPEG/90000\r\na=control:{control}\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reassembles the NAL units of packets (the inverse of [`Packetizer::packetize`]).
    fn depacketize(coding: Coding, packets: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut fu: Option<Vec<u8>> = None;
        for p in packets {
            let payload = &p[HEADER..];
            let kind = coding.nal_type(payload);
            let fu_type = match coding {
                Coding::H264 => 28,
                Coding::H265 => 49,
            };
            if kind != fu_type {
                nals.push(payload.to_vec());
                continue;
            }
            let hl = header_len(coding);
            let fh = payload[hl];
            if fh & 0x80 != 0 {
                let mut nal = match coding {
                    Coding::H264 => vec![(payload[0] & 0xe0) | (fh & 0x1f)],
                    Coding::H265 => vec![(payload[0] & 0x81) | ((fh & 0x3f) << 1), payload[1]],
                };
                nal.extend_from_slice(&payload[hl + 1..]);
                fu = Some(nal);
            } else if let Some(nal) = fu.as_mut() {
                nal.extend_from_slice(&payload[hl + 1..]);
            }
            if fh & 0x40 != 0 {
                nals.extend(fu.take());
            }
        }
        nals
    }

    fn annexb(nals: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(n);
        }
        out
    }

    fn round_trip(coding: Coding, nals: Vec<Vec<u8>>, framing: Framing) {
        let mut p = Packetizer::new(0x1234_5678, 65534, 96, framing);
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        let n = p.packetize(coding, &annexb(&nals), 9000, &mut out, &mut ranges);
        assert_eq!(n, ranges.len());
        let skip = if framing == Framing::Datagram { 0 } else { 4 };
        let packets: Vec<&[u8]> = ranges.iter().map(|r| &out[r.start + skip..r.end]).collect();
        for (i, pk) in packets.iter().enumerate() {
            assert!(pk.len() <= HEADER + MAX_PAYLOAD);
            assert_eq!(pk[0], 0x80);
            assert_eq!(pk[1] & 0x7f, 96);
            assert_eq!(
                pk[1] & 0x80 != 0,
                i + 1 == packets.len(),
                "marker on the last only"
            );
            let seq = u16::from_be_bytes([pk[2], pk[3]]);
            assert_eq!(seq, 65534u16.wrapping_add(i as u16), "sequence wraps");
            assert_eq!(u32::from_be_bytes([pk[4], pk[5], pk[6], pk[7]]), 9000);
            if let Framing::Interleaved(ch) = framing {
                let r = &ranges[i];
                assert_eq!(out[r.start], b'$');
                assert_eq!(out[r.start + 1], ch);
                let len = u16::from_be_bytes([out[r.start + 2], out[r.start + 3]]) as usize;
                assert_eq!(len, pk.len());
            }
        }
        let delimiter = |n: &Vec<u8>| is_delimiter(coding, n);
        let want: Vec<Vec<u8>> = nals.into_iter().filter(|n| !delimiter(n)).collect();
        assert_eq!(depacketize(coding, &packets), want);
    }

    #[test]
    fn h264_small_and_fragmented_units_round_trip() {
        let sps = vec![0x67, 0x64, 0x00, 0x1f, 0xac];
        let pps = vec![0x68, 0xee, 0x3c, 0x80];
        let idr: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000u32).map(|i| (i % 251) as u8 | 1))
            .collect();
        for framing in [Framing::Datagram, Framing::Interleaved(4)] {
            round_trip(
                Coding::H264,
                vec![vec![0x09, 0xf0], sps.clone(), pps.clone(), idr.clone()],
                framing,
            );
        }
        // Exactly MAX_PAYLOAD fits one packet; one byte more is fragmented.
        let exact: Vec<u8> = std::iter::once(0x41)
            .chain(vec![7u8; MAX_PAYLOAD - 1])
            .collect();
        let over: Vec<u8> = std::iter::once(0x41)
            .chain(vec![7u8; MAX_PAYLOAD])
            .collect();
        round_trip(Coding::H264, vec![exact], Framing::Datagram);
        round_trip(Coding::H264, vec![over], Framing::Datagram);
    }

    #[test]
    fn h265_fragmentation_keeps_the_two_byte_header() {
        let vps = vec![0x40, 0x01, 0x0c];
        let idr: Vec<u8> = [0x26, 0x01]
            .into_iter()
            .chain((0..4000u32).map(|i| (i % 13) as u8 + 2))
            .collect();
        round_trip(
            Coding::H265,
            vec![vec![0x46, 0x01, 0x50], vps, idr],
            Framing::Datagram,
        );
    }

    #[test]
    fn sender_report_carries_ntp_and_counts() {
        let mut p = Packetizer::new(7, 0, 96, Framing::Interleaved(0));
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        p.packetize(
            Coding::H264,
            &[0, 0, 1, 0x41, 1, 2, 3],
            0,
            &mut out,
            &mut ranges,
        );
        let sr = p.sender_report(1_500_000, 4242);
        assert_eq!(&sr[..4], &[b'$', 1, 0, 28]);
        let sr = &sr[4..];
        assert_eq!(sr.len(), 28);
        assert_eq!(sr[1], 200);
        assert_eq!(
            u32::from_be_bytes([sr[8], sr[9], sr[10], sr[11]]),
            2_208_988_801
        );
        assert_eq!(
            u32::from_be_bytes([sr[12], sr[13], sr[14], sr[15]]),
            1 << 31
        );
        assert_eq!(u32::from_be_bytes([sr[16], sr[17], sr[18], sr[19]]), 4242);
        assert_eq!(u32::from_be_bytes([sr[20], sr[21], sr[22], sr[23]]), 1);
        assert_eq!(u32::from_be_bytes([sr[24], sr[25], sr[26], sr[27]]), 4);
    }

    #[test]
    fn sdp_names_the_profile_and_parameter_sets() {
        let sps: &[u8] = &[0x67, 0x64, 0x00, 0x1f];
        let pps: &[u8] = &[0x68, 0xee];
        let s = sdp_media(Coding::H264, 96, &[sps, pps], "trackID=0");
        assert!(s.contains("a=rtpmap:96 H264/90000"), "{s}");
        assert!(
            s.contains(
                "packetization-mode=1;profile-level-id=64001F;sprop-parameter-sets=Z2QAHw==,aO4="
            ),
            "{s}"
        );
        assert!(s.ends_with("a=control:trackID=0\r\n"));
        let h265 = sdp_media(Coding::H265, 96, &[&[0x40, 1], &[0x42, 1], &[0x44, 1]], "t");
        assert!(
            h265.contains("sprop-vps=QAE=;sprop-sps=QgE=;sprop-pps=RAE="),
            "{h265}"
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    /// A synthetic baseline JPEG: standard Huffman tables unless `huffman` is given, 4:2:0,
    /// `restart` (DRI) if not 0, and a scan of `scan_len` bytes.
    fn jpeg(huffman: Option<&[u8]>, sof: u8, restart: u16, scan_len: usize) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        let seg = |j: &mut Vec<u8>, marker: u8, body: &[u8]| {
            j.extend_from_slice(&[0xFF, marker]);
            j.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
            j.extend_from_slice(body);
        };
        let mut dqt = vec![0u8];
        dqt.extend(1..=64u8);
        dqt.push(1);
        dqt.extend(101..=164u8);
        seg(&mut j, 0xDB, &dqt);
        seg(
            &mut j,
            sof,
            &[8, 0, 180, 1, 64, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1],
        );
        let dht: Vec<u8> = match huffman {
            Some(h) => h.to_vec(),
            None => STANDARD_HUFFMAN
                .iter()
                .flat_map(|(c, i, k, v)| {
                    std::iter::once(c << 4 | i)
                        .chain(k.iter().copied())
                        .chain(v.iter().copied())
                })
                .collect(),
        };
        seg(&mut j, 0xC4, &dht);
        if restart > 0 {
            seg(&mut j, 0xDD, &restart.to_be_bytes());
        }
        seg(&mut j, 0xDA, &[3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]);
        j.extend((0..scan_len).map(|i| (i % 200) as u8 + 1));
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    #[test]
    fn a_baseline_jpeg_becomes_rfc_2435_packets() {
        let data = jpeg(None, 0xC0, 0, 5000);
        let j = rtp_jpeg(&data).expect("carried");
        assert_eq!((j.kind, j.width8, j.height8, j.restart), (1, 40, 23, 0));
        assert_eq!(&j.tables[..3], &[1, 2, 3]);
        assert_eq!(&j.tables[64..67], &[101, 102, 103]);
        assert_eq!(j.scan.len(), 5000);
        let mut p = Packetizer::new(1, 0, JPEG_PT, Framing::Datagram);
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        let n = p.packetize_jpeg(&j, 77, &mut out, &mut ranges);
        assert_eq!(n, ranges.len());
        let mut scan = Vec::new();
        for (i, r) in ranges.iter().enumerate() {
            let pk = &out[r.clone()];
            assert!(pk.len() <= HEADER + MAX_PAYLOAD);
            assert_eq!(pk[1] & 0x7f, JPEG_PT);
            assert_eq!(pk[1] & 0x80 != 0, i + 1 == n, "marker on the last only");
            let h = &pk[HEADER..];
            let offset = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            assert_eq!(offset, scan.len(), "fragments are contiguous");
            assert_eq!(&h[4..8], &[1, 255, 40, 23]);
            let body = if offset == 0 {
                assert_eq!(&h[8..12], &[0, 0, 0, 128]);
                assert_eq!(&h[12..140], &j.tables[..]);
                &h[140..]
            } else {
                &h[8..]
            };
            scan.extend_from_slice(body);
        }
        assert_eq!(scan, j.scan);

        // Restart markers: type + 64 and a restart header in every packet.
        let with_dri = jpeg(None, 0xC0, 10, 3000);
        let j = rtp_jpeg(&with_dri).expect("carried");
        assert_eq!((j.kind, j.restart), (65, 10));
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        p.packetize_jpeg(&j, 0, &mut out, &mut ranges);
        for r in &ranges {
            assert_eq!(
                &out[r.start + HEADER + 8..r.start + HEADER + 12],
                &[0, 10, 0xFF, 0xFF]
            );
        }
        assert!(sdp_media_jpeg("trackID=0").contains("a=rtpmap:26 JPEG/90000"));
    }

    #[test]
    fn jpegs_rtp_cannot_carry_are_refused_with_the_reason() {
        let mut odd = vec![0x00];
        odd.extend([0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        odd.extend([3, 4]);
        let e = rtp_jpeg(&jpeg(Some(&odd), 0xC0, 0, 100)).expect_err("optimised tables");
        assert!(e.contains("Huffman"), "{e}");
        let e = rtp_jpeg(&jpeg(None, 0xC2, 0, 100)).expect_err("progressive");
        assert!(e.contains("baseline"), "{e}");
        let mut cut = jpeg(None, 0xC0, 0, 100);
        cut.truncate(cut.len() - 2);
        assert!(rtp_jpeg(&cut).is_err());
        assert!(rtp_jpeg(b"\xFF\xD8").is_err());
        for n in 0..cut.len() {
            let _ = rtp_jpeg(&cut[..n]);
        }
    }
}
