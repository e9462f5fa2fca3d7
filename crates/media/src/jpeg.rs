//! JPEG header inspection without decoding: the frame size and chroma layout from the SOF segment,
//! a cheap "is this a whole JPEG" check, and (crate-internal) a resumable walker that finds where a
//! JPEG ends inside a byte stream — used by the multipart parser to cut frames out of MJPEG streams.
//!
//! Everything here reads untrusted camera bytes: truncated or garbage input is an `Err`, never a
//! panic, and nothing reads past the slice it is given.

use std::fmt;

/// What [`parse_jpeg_header`] learned from a JPEG's frame header (SOF0, SOF1 or SOF2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Number of colour components: 1 for greyscale, 3 for YCbCr.
    pub components: u8,
    /// Chroma layout: "420", "422", "444", "gray" or "other" (e.g. 4:4:0, 4:1:1, CMYK).
    pub subsampling: &'static str,
}

/// Why [`parse_jpeg_header`] could not read a JPEG header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JpegError {
    /// The data does not start with the SOI marker `FF D8`.
    NotJpeg,
    /// The data ended inside the headers, before the frame header was complete.
    Truncated,
    /// A byte that should have started a marker (`FF xx`) did not, at this offset.
    BadMarker {
        /// Offset in the data.
        offset: usize,
    },
    /// A segment length field smaller than 2, or a frame header too short for its component count.
    BadSegment {
        /// Offset of the segment's marker in the data.
        offset: usize,
    },
    /// The image data (SOS) or the end (EOI) came before any frame header.
    NoFrameHeader,
    /// A frame header of a coding process other than baseline, extended or progressive Huffman
    /// (lossless, hierarchical or arithmetic coding), which browsers and most decoders refuse.
    Unsupported {
        /// The SOF marker's second byte, e.g. `0xC3` for lossless.
        marker: u8,
    },
    /// The frame header says width or height 0 (height defined later by a DNL marker is not supported).
    ZeroSize,
}

impl fmt::Display for JpegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JpegError::NotJpeg => f.write_str("not a JPEG: data does not start with FF D8"),
            JpegError::Truncated => f.write_str("JPEG truncated before its frame header ended"),
            JpegError::BadMarker { offset } => {
                write!(f, "corrupt JPEG: expected a marker at byte {offset}")
            }
            JpegError::BadSegment { offset } => {
                write!(f, "corrupt JPEG: bad segment length at byte {offset}")
            }
            JpegError::NoFrameHeader => {
                f.write_str("corrupt JPEG: no SOF frame header before the image data")
            }
            JpegError::Unsupported { marker } => write!(
                f,
                "unsupported JPEG coding process (marker FF {marker:02X}); only baseline, extended \
                 and progressive Huffman JPEGs are supported"
            ),
            JpegError::ZeroSize => f.write_str("JPEG frame header says width or height 0"),
        }
    }
}

impl std::error::Error for JpegError {}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// Markers that stand alone, without a length field: TEM, RST0..RST7, SOI, EOI.
fn is_standalone(marker: u8) -> bool {
    matches!(marker, 0x01 | 0xD0..=0xD9)
}

/// Reads the frame header (SOF0, SOF1 or SOF2) of a JPEG, skipping APPn, COM, DQT, DHT, DRI and any
/// other segment by its length. Only the headers are read; the image data need not be present.
pub fn parse_jpeg_header(data: &[u8]) -> Result<JpegInfo, JpegError> {
    if data.len() < 2 {
        return Err(if data.first().is_none_or(|&b| b == 0xFF) {
            JpegError::Truncated
        } else {
            JpegError::NotJpeg
        });
    }
    if data[0] != 0xFF || data[1] != SOI {
        return Err(JpegError::NotJpeg);
    }
    let mut pos = 2;
    loop {
        let Some(&first) = data.get(pos) else {
            return Err(JpegError::Truncated);
        };
        if first != 0xFF {
            return Err(JpegError::BadMarker { offset: pos });
        }
        // Any number of 0xFF fill bytes may precede a marker.
        let mut m = pos + 1;
        while data.get(m) == Some(&0xFF) {
            m += 1;
        }
        let Some(&marker) = data.get(m) else {
            return Err(JpegError::Truncated);
        };
        let seg = m - 1; // offset of the FF that introduces this marker
        if marker == 0x00 {
            return Err(JpegError::BadMarker { offset: seg });
        }
        if is_standalone(marker) {
            if marker == EOI || marker == SOI {
                return Err(JpegError::NoFrameHeader);
            }
            pos = m + 1;
            continue;
        }
        let len = match (data.get(m + 1), data.get(m + 2)) {
            (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return Err(JpegError::Truncated),
        };
        if len < 2 {
            return Err(JpegError::BadSegment { offset: seg });
        }
        let body_start = m + 3;
        let body_end = m + 1 + len;
        match marker {
            0xC0..=0xC2 => {
                let body = data.get(body_start..body_end).ok_or(JpegError::Truncated)?;
                return parse_sof(body, seg);
            }
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(JpegError::Unsupported { marker });
            }
            SOS => return Err(JpegError::NoFrameHeader),
            _ => pos = body_end,
        }
    }
}

/// Parses a SOF segment body: precision, height, width, component count, then 3 bytes per component.
fn parse_sof(body: &[u8], offset: usize) -> Result<JpegInfo, JpegError> {
    let [_precision, h0, h1, w0, w1, n, rest @ ..] = body else {
        return Err(JpegError::BadSegment { offset });
    };
    let height = u32::from(u16::from_be_bytes([*h0, *h1]));
    let width = u32::from(u16::from_be_bytes([*w0, *w1]));
    if width == 0 || height == 0 {
        return Err(JpegError::ZeroSize);
    }
    let components = *n;
    let specs = rest
        .get(..usize::from(components) * 3)
        .ok_or(JpegError::BadSegment { offset })?;
    // Sampling factors (horizontal, vertical) per component.
    let factors: Vec<(u8, u8)> = specs
        .chunks_exact(3)
        .map(|c| (c[1] >> 4, c[1] & 0x0F))
        .collect();
    Ok(JpegInfo {
        width,
        height,
        components,
        subsampling: subsampling_name(&factors),
    })
}

fn subsampling_name(factors: &[(u8, u8)]) -> &'static str {
    match factors {
        [_] => "gray",
        [(yh, yv), c1, c2] if c1 == c2 && c1.0 > 0 && c1.1 > 0 => {
            let (ch, cv) = *c1;
            if yh % ch != 0 || yv % cv != 0 {
                return "other";
            }
            match (yh / ch, yv / cv) {
                (2, 2) => "420",
                (2, 1) => "422",
                (1, 1) => "444",
                _ => "other",
            }
        }
        _ => "other",
    }
}

/// True if `data` starts with SOI (`FF D8`) and ends with EOI (`FF D9`), allowing trailing padding of
/// `0x00`, CR and LF bytes after the EOI (some camera sensors pad frames to a multiple of 4 bytes).
/// A cheap check for a truncated transfer; it does not validate what lies between.
pub fn looks_complete(data: &[u8]) -> bool {
    let trimmed = trim_padding(data);
    trimmed.len() >= 4 && trimmed.starts_with(&[0xFF, SOI]) && trimmed.ends_with(&[0xFF, EOI])
}

/// `data` without trailing `0x00`, CR and LF bytes.
pub(crate) fn trim_padding(data: &[u8]) -> &[u8] {
    let end = data
        .iter()
        .rposition(|&b| !matches!(b, 0x00 | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    &data[..end]
}

/// Result of [`JpegEnd::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// The JPEG ends (just after its EOI) at this offset.
    Complete(usize),
    /// Not finished: feed the same data with more bytes appended.
    NeedMore,
    /// Not a well-formed JPEG marker structure (or a second SOI inside: the frame was cut short).
    Invalid,
}

/// Finds where a JPEG that starts at offset 0 ends, by walking its segments by their lengths and
/// scanning entropy-coded data for the next marker — so an embedded EXIF thumbnail's `FF D9` does not
/// end it early. Resumable: call [`JpegEnd::advance`] again with the same data plus more bytes, and it
/// continues where it stopped, so the total work is linear in the JPEG's size.
#[derive(Debug, Clone, Default)]
pub(crate) struct JpegEnd {
    /// Offset of the next unread byte.
    pos: usize,
    /// Inside entropy-coded data (after an SOS header): scanning for a marker.
    in_scan: bool,
}

impl JpegEnd {
    /// Continues walking `data`, which must start with the same bytes as at the previous call.
    pub(crate) fn advance(&mut self, data: &[u8]) -> Walk {
        if self.pos == 0 {
            match data {
                [0xFF, SOI, ..] => self.pos = 2,
                [0xFF] | [] => return Walk::NeedMore,
                _ => return Walk::Invalid,
            }
        }
        loop {
            if self.in_scan {
                // Entropy-coded data: FF 00 is a stuffed FF, FF D0..D7 a restart marker, FF FF fill;
                // any other FF xx is the next marker.
                let Some(rel) = data
                    .get(self.pos..)
                    .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
                else {
                    self.pos = data.len().max(self.pos);
                    return Walk::NeedMore;
                };
                let ff = self.pos + rel;
                let Some(&next) = data.get(ff + 1) else {
                    self.pos = ff;
                    return Walk::NeedMore;
                };
                if matches!(next, 0x00 | 0xD0..=0xD7 | 0xFF) {
                    self.pos = ff + 1;
                    continue;
                }
                self.pos = ff;
                self.in_scan = false;
            }
            let Some(&first) = data.get(self.pos) else {
                return Walk::NeedMore;
            };
            if first != 0xFF {
                return Walk::Invalid;
            }
            let Some(&marker) = data.get(self.pos + 1) else {
                return Walk::NeedMore;
            };
            match marker {
                0xFF => self.pos += 1, // fill byte
                EOI => return Walk::Complete(self.pos + 2),
                SOI | 0x00 => return Walk::Invalid,
                m if is_standalone(m) => self.pos += 2,
                m => {
                    let (Some(&hi), Some(&lo)) = (data.get(self.pos + 2), data.get(self.pos + 3))
                    else {
                        return Walk::NeedMore;
                    };
                    let len = usize::from(u16::from_be_bytes([hi, lo]));
                    if len < 2 {
                        return Walk::Invalid;
                    }
                    let end = self.pos + 2 + len;
                    if end > data.len() {
                        return Walk::NeedMore;
                    }
                    self.pos = end;
                    self.in_scan = m == SOS;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walker_skips_embedded_thumbnail_eoi() {
        // SOI, APP1 containing a whole "thumbnail" JPEG, SOS with stuffed FF 00 and RST, EOI.
        let mut jpeg = vec![
            0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 0xFF, 0xD8, 0xFF, 0xD9, 0x00, 0x00,
        ];
        jpeg.extend_from_slice(&[
            0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56,
        ]);
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        let mut walker = JpegEnd::default();
        assert_eq!(walker.advance(&jpeg), Walk::Complete(jpeg.len()));
        // Byte by byte gives the same answer, only at the end.
        let mut walker = JpegEnd::default();
        for n in 0..jpeg.len() {
            assert_eq!(walker.advance(&jpeg[..n]), Walk::NeedMore, "at {n}");
        }
        assert_eq!(walker.advance(&jpeg), Walk::Complete(jpeg.len()));
    }

    #[test]
    fn walker_rejects_second_soi() {
        let data = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0xD8];
        assert_eq!(JpegEnd::default().advance(&data), Walk::Invalid);
    }

    #[test]
    fn subsampling_names() {
        assert_eq!(subsampling_name(&[(1, 1)]), "gray");
        assert_eq!(subsampling_name(&[(2, 2), (1, 1), (1, 1)]), "420");
        assert_eq!(subsampling_name(&[(2, 1), (1, 1), (1, 1)]), "422");
        assert_eq!(subsampling_name(&[(1, 1), (1, 1), (1, 1)]), "444");
        assert_eq!(subsampling_name(&[(1, 2), (1, 1), (1, 1)]), "other");
        assert_eq!(subsampling_name(&[(2, 2), (0, 0), (0, 0)]), "other");
        assert_eq!(subsampling_name(&[(1, 1); 4]), "other");
    }
}
