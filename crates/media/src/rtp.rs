//! RTP out: one H.264 (RFC 6184) or H.265 (RFC 7798) access unit into RTP packets, the RTCP sender
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
}
