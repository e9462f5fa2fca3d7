//! MJPEG over HTTP: an incremental parser for `multipart/x-mixed-replace` streams as cameras really
//! send them (ESP32-CAM, Axis, `ffmpeg -f mpjpeg`, …), and the bytes to write to serve one.
//!
//! The parser owns the framing quirks: parts with or without `Content-Length`, delimiters with or
//! without the leading `--`, a body that uses another boundary than its Content-Type announced, no
//! boundary at all (then JPEGs are cut out by their SOI/EOI markers), extra part headers, LF-only
//! lines and garbage between parts. It never does I/O and never buffers more than one part plus a
//! small constant ([`MAX_OVERHEAD`]), whatever the camera sends.

use crate::jpeg::{trim_padding, JpegEnd, Walk};
use std::fmt;

/// Bytes a [`MultipartParser`] may hold beyond `max_part`: room for a part's headers, a delimiter line
/// or a line of garbage. After [`MultipartParser::next_part`] has returned `Ok(None)` or `Err`,
/// [`MultipartParser::buffered`] is at most `max_part + MAX_OVERHEAD`.
pub const MAX_OVERHEAD: usize = MAX_HEADERS + 1024;

/// Longest boundary accepted (RFC 2046 allows 70; cameras stay well under this).
const MAX_BOUNDARY: usize = 200;
/// Longest header section of one part.
const MAX_HEADERS: usize = 8 * 1024;
/// Longest line looked at while searching for the first delimiter.
const MAX_LINE: usize = 1024;
/// Bytes allowed after the boundary on a delimiter line: an optional closing `--` and whitespace.
const MAX_DELIM_TAIL: usize = 16;
/// Extra body bytes allowed beyond `max_part` when a part is cut at the next delimiter: the CRLF,
/// dashes and boundary of that delimiter line have to be read to know the part has ended.
const DELIM_SLACK: usize = MAX_BOUNDARY + MAX_DELIM_TAIL + 16;

const SOI: [u8; 2] = [0xFF, 0xD8];

/// Why [`MultipartParser::next_part`] gave up; the caller should drop the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultipartError {
    /// A part grew past the parser's `max_part` bytes without ending.
    PartTooLarge {
        /// The `max_part` the parser was created with.
        limit: usize,
    },
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultipartError::PartTooLarge { limit } => write!(
                f,
                "MJPEG part larger than the {limit}-byte limit (not an MJPEG stream, or frames \
                 too large for the configured limit)"
            ),
        }
    }
}

impl std::error::Error for MultipartError {}

/// Incremental parser for a `multipart/x-mixed-replace` MJPEG stream: push bytes as they arrive, pull
/// whole JPEGs out.
///
/// Usage contract: after each [`push`](Self::push), call [`next_part`](Self::next_part) until it
/// returns `Ok(None)`; then [`buffered`](Self::buffered) is at most `max_part + MAX_OVERHEAD`, however
/// hostile the input. `Err(PartTooLarge)` means the stream is unusable: drop the connection. (The
/// parser stays usable — it discards its buffer and resynchronises at the next delimiter — but a
/// camera that sent one oversized part will usually send more.)
///
/// Each returned part is exactly one JPEG, from its SOI (`FF D8`) to its EOI (`FF D9`): leading junk
/// in the part body and trailing CR/LF/NUL padding are removed, and parts that do not hold a whole
/// JPEG (text parts, frames cut short) are skipped and counted in
/// [`skipped_parts`](Self::skipped_parts).
///
/// How a part's end is found, whichever comes first: the JPEG's own structure (segments walked by
/// their lengths, so an EXIF thumbnail's EOI does not end it), which emits a frame as soon as its
/// last byte arrives even if `Content-Length` is wrong or missing; the part's `Content-Length`, when
/// no larger than `max_part` and its bytes end in an EOI (this passes JPEGs whose structure the walk
/// rejects); the next delimiter line, when the part between holds an SOI … EOI. Without any delimiter before the first JPEG, the stream is
/// treated as back-to-back JPEGs and everything between them is ignored.
///
/// ```
/// use camhub_media::multipart::{part_header, MultipartParser};
///
/// let jpeg = [0xFF, 0xD8, 0xFF, 0xD9];
/// let mut stream = part_header("frame", jpeg.len());
/// stream.extend_from_slice(&jpeg);
/// stream.extend_from_slice(b"\r\n");
///
/// let mut parser = MultipartParser::new(Some("frame"), 1 << 20);
/// parser.push(&stream);
/// assert_eq!(parser.next_part().unwrap(), Some(jpeg.to_vec()));
/// assert_eq!(parser.next_part().unwrap(), None);
/// ```
#[derive(Debug, Clone)]
pub struct MultipartParser {
    buf: Vec<u8>,
    max_part: usize,
    /// Boundary without leading dashes: from the Content-Type until the body shows the real one.
    token: Option<Vec<u8>>,
    state: State,
    skipped: u64,
}

#[derive(Debug, Clone)]
enum State {
    /// Before the first delimiter: looking line by line for one (or for a JPEG, meaning there is none).
    Probe,
    /// Looking for the next delimiter line; anything before it is discarded.
    Delimiter,
    /// Reading a part's header lines (`header_bytes` read so far).
    Headers {
        content_length: Option<usize>,
        header_bytes: usize,
    },
    /// Reading a part's body, which starts at `buf[0]`.
    Body(BodyScan),
    /// No multipart framing: JPEGs are cut out by their markers.
    Bare { walker: Option<JpegEnd> },
}

/// Progress through one part body, kept between calls so that scanning stays linear.
#[derive(Debug, Clone, Default)]
struct BodyScan {
    /// Declared length, if sane and not yet found to be wrong.
    content_length: Option<usize>,
    /// Offset of the JPEG's SOI in the body, once found.
    soi: Option<usize>,
    /// Where the search for SOI resumes.
    soi_from: usize,
    /// Where the search for the next delimiter resumes.
    delim_from: usize,
    walker: JpegEnd,
    /// The walker found the JPEG malformed: rely on the delimiter alone.
    walker_failed: bool,
}

/// One step of the state machine.
enum Step {
    Part(Vec<u8>),
    Again,
    NeedMore,
}

impl MultipartParser {
    /// A parser for a stream whose Content-Type carried `boundary` (with or without leading `--`,
    /// possibly quoted; see [`boundary_from_content_type`]), or `None` if it had none. Parts larger
    /// than `max_part` bytes are an error.
    pub fn new(boundary: Option<&str>, max_part: usize) -> Self {
        MultipartParser {
            buf: Vec::new(),
            max_part,
            token: boundary.and_then(normalize_boundary),
            state: State::Probe,
            skipped: 0,
        }
    }

    /// Feeds bytes as they arrive from the socket. Nothing is parsed until
    /// [`next_part`](Self::next_part) is called.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete JPEG, `Ok(None)` if more bytes are needed, or `Err` if a part exceeded
    /// `max_part` (the error says so; the caller drops the connection).
    pub fn next_part(&mut self) -> Result<Option<Vec<u8>>, MultipartError> {
        loop {
            let step = match self.state {
                State::Probe => self.probe(),
                State::Delimiter => self.seek_delimiter(),
                State::Headers { .. } => self.headers(),
                State::Body(_) => self.body(),
                State::Bare { .. } => self.bare(),
            };
            match step {
                Ok(Step::Part(part)) => return Ok(Some(part)),
                Ok(Step::Again) => {}
                Ok(Step::NeedMore) => return Ok(None),
                Err(e) => {
                    self.buf.clear();
                    self.state = match self.state {
                        State::Bare { .. } => State::Bare { walker: None },
                        _ if self.token.is_some() => State::Delimiter,
                        _ => State::Probe,
                    };
                    return Err(e);
                }
            }
        }
    }

    /// Bytes currently buffered. At most `max_part + MAX_OVERHEAD` once
    /// [`next_part`](Self::next_part) has returned `Ok(None)` or `Err`.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Parts skipped so far because they did not hold a whole JPEG (cut short, or not an image).
    pub fn skipped_parts(&self) -> u64 {
        self.skipped
    }

    /// The boundary in use, without leading dashes: the one from the Content-Type, or the one the body
    /// actually uses once seen. `None` before any is known, or when the stream has no delimiters.
    pub fn boundary(&self) -> Option<&str> {
        match self.state {
            State::Bare { .. } => None,
            _ => self
                .token
                .as_deref()
                .and_then(|t| std::str::from_utf8(t).ok()),
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    fn discard(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// Before the first delimiter: a delimiter line fixes the boundary (adopting the body's own if it
    /// differs from the Content-Type's); a JPEG before any delimiter means there is no framing.
    fn probe(&mut self) -> Result<Step, MultipartError> {
        let Some(lf) = self.buf.iter().position(|&b| b == b'\n') else {
            if let Some(soi) = find(&self.buf, &SOI, 0) {
                self.discard(soi);
                self.state = State::Bare { walker: None };
                return Ok(Step::Again);
            }
            if self.buf.len() > MAX_LINE {
                // A line this long is not a delimiter; keep a trailing FF, which may start an SOI.
                self.discard(self.buf.len() - 1);
            }
            return Ok(Step::NeedMore);
        };
        let line = &self.buf[..lf];
        if let Some(soi) = find(line, &SOI, 0) {
            self.discard(soi);
            self.state = State::Bare { walker: None };
            return Ok(Step::Again);
        }
        let line = trim_ascii_end(line);
        let configured = self
            .token
            .as_deref()
            .is_some_and(|t| is_delimiter_line(line, t));
        if !configured {
            if let Some(adopted) = line.strip_prefix(b"--").and_then(boundary_of_line) {
                self.token = Some(adopted.to_vec());
            } else {
                self.discard(lf + 1);
                return Ok(Step::Again);
            }
        }
        self.discard(lf + 1);
        self.state = State::Headers {
            content_length: None,
            header_bytes: 0,
        };
        Ok(Step::Again)
    }

    /// Skips to just after the next delimiter line.
    fn seek_delimiter(&mut self) -> Result<Step, MultipartError> {
        let Some(token) = self.token.as_deref() else {
            self.state = State::Probe;
            return Ok(Step::Again);
        };
        match find_delimiter(&self.buf, token, 0, false) {
            Delim::Found { line_end, .. } => {
                self.discard(line_end);
                self.state = State::Headers {
                    content_length: None,
                    header_bytes: 0,
                };
                Ok(Step::Again)
            }
            Delim::NotYet { resume } => {
                self.discard(resume);
                Ok(Step::NeedMore)
            }
        }
    }

    /// Reads header lines up to the blank line (or up to an SOI, for cameras that send none).
    fn headers(&mut self) -> Result<Step, MultipartError> {
        let State::Headers {
            mut content_length,
            mut header_bytes,
        } = self.state
        else {
            return Ok(Step::Again);
        };
        loop {
            // A JPEG may follow a delimiter without headers or a blank line.
            let lf = self.buf.iter().position(|&b| b == b'\n');
            if let Some(soi) = find(&self.buf[..lf.unwrap_or(self.buf.len())], &SOI, 0) {
                self.discard(soi);
                break;
            }
            let Some(lf) = lf else {
                if header_bytes + self.buf.len() > MAX_HEADERS {
                    self.skipped += 1;
                    self.buf.clear();
                    self.state = State::Delimiter;
                    return Ok(Step::Again);
                }
                self.state = State::Headers {
                    content_length,
                    header_bytes,
                };
                return Ok(Step::NeedMore);
            };
            let line = self.buf[..lf].trim_ascii();
            header_bytes += lf + 1;
            if line.is_empty() {
                self.discard(lf + 1);
                break;
            }
            if self
                .token
                .as_deref()
                .is_some_and(|t| is_delimiter_line(line, t))
            {
                // An empty part: start over with the next one's headers.
                content_length = None;
                header_bytes = 0;
            } else if let Some(n) = parse_content_length(line) {
                content_length = Some(n);
            }
            self.discard(lf + 1);
            if header_bytes > MAX_HEADERS {
                self.skipped += 1;
                self.state = State::Delimiter;
                return Ok(Step::Again);
            }
        }
        self.state = State::Body(BodyScan {
            content_length: content_length.filter(|&n| n <= self.max_part),
            ..BodyScan::default()
        });
        Ok(Step::Again)
    }

    fn body(&mut self) -> Result<Step, MultipartError> {
        let State::Body(scan) = &mut self.state else {
            return Ok(Step::Again);
        };
        let buf = &self.buf;
        // 1. Trust a sane Content-Length once its bytes are in, if they end in an EOI.
        if let Some(declared) = scan.content_length.and_then(|n| buf.get(..n)) {
            if let Some((start, len)) = whole_jpeg(declared) {
                let part = buf[start..start + len].to_vec();
                self.discard(declared.len());
                self.state = State::Delimiter;
                return Ok(Step::Part(part));
            }
            scan.content_length = None;
        }
        // 2. Where the next delimiter is, if it has arrived: the part cannot extend past it.
        let token = self.token.as_deref().unwrap_or_default();
        let delim = match find_delimiter(buf, token, scan.delim_from, true) {
            Delim::Found { line_start, .. } => Some(line_start),
            Delim::NotYet { resume } => {
                scan.delim_from = resume;
                None
            }
        };
        let limit = delim.unwrap_or(buf.len());
        // 3. Find the SOI (anything before it is junk) and walk the JPEG's structure to its end.
        if scan.soi.is_none() {
            match find(&buf[..limit], &SOI, scan.soi_from) {
                Some(at) => scan.soi = Some(at),
                None => scan.soi_from = limit.saturating_sub(1),
            }
        }
        if let (Some(soi), false) = (scan.soi, scan.walker_failed) {
            match scan.walker.advance(&buf[soi..limit]) {
                Walk::Complete(len) => {
                    if len > self.max_part {
                        return Err(self.too_large());
                    }
                    let part = buf[soi..soi + len].to_vec();
                    self.discard(soi + len);
                    self.state = State::Delimiter;
                    return Ok(Step::Part(part));
                }
                Walk::Invalid => scan.walker_failed = true,
                Walk::NeedMore => {}
            }
        }
        // 4. Cut at the delimiter, keeping the part only if it is a whole JPEG.
        if let Some(end) = delim {
            let jpeg = scan
                .soi
                .and_then(|soi| whole_jpeg(&buf[soi..end]).map(|(start, len)| (soi + start, len)));
            let step = match jpeg {
                Some((_, len)) if len > self.max_part => return Err(self.too_large()),
                Some((start, len)) => Step::Part(buf[start..start + len].to_vec()),
                None => {
                    self.skipped += 1;
                    Step::Again
                }
            };
            self.discard(end);
            self.state = State::Delimiter;
            return Ok(step);
        }
        // Still waiting for the declared length (at most max_part), or for an end that fits.
        if scan.content_length.is_none() && buf.len() > self.max_part + DELIM_SLACK {
            return Err(self.too_large());
        }
        Ok(Step::NeedMore)
    }

    /// No framing: find an SOI, walk to its EOI, repeat; whatever lies between JPEGs is dropped.
    fn bare(&mut self) -> Result<Step, MultipartError> {
        let State::Bare { walker } = &mut self.state else {
            return Ok(Step::Again);
        };
        let Some(w) = walker else {
            match find(&self.buf, &SOI, 0) {
                Some(at) => {
                    *walker = Some(JpegEnd::default());
                    self.discard(at);
                    return Ok(Step::Again);
                }
                None => {
                    let keep = usize::from(self.buf.last() == Some(&0xFF));
                    self.discard(self.buf.len() - keep);
                    return Ok(Step::NeedMore);
                }
            }
        };
        match w.advance(&self.buf) {
            Walk::Complete(len) if len > self.max_part => Err(self.too_large()),
            Walk::Complete(len) => {
                *walker = None;
                Ok(Step::Part(self.take(len)))
            }
            Walk::Invalid => {
                // Drop this SOI; a later one (perhaps the one that made this invalid) may be whole.
                *walker = None;
                self.skipped += 1;
                self.discard(SOI.len());
                Ok(Step::Again)
            }
            Walk::NeedMore if self.buf.len() > self.max_part => Err(self.too_large()),
            Walk::NeedMore => Ok(Step::NeedMore),
        }
    }

    fn too_large(&self) -> MultipartError {
        MultipartError::PartTooLarge {
            limit: self.max_part,
        }
    }
}

/// Where [`find_delimiter`] got to.
enum Delim {
    /// A delimiter line: it starts (at its dashes) at `line_start` and the next line at `line_end`.
    Found { line_start: usize, line_end: usize },
    /// None complete yet; nothing before `resume` can start one.
    NotYet { resume: usize },
}

/// Finds a delimiter line for `token` in `buf` from `from` on: optional dashes, the token, optional
/// `--` (the closing delimiter) and blanks, then a line end. With `anchored`, the dashes must start a
/// line (or `buf`), as inside a part body, where the token could otherwise appear by chance.
fn find_delimiter(buf: &[u8], token: &[u8], from: usize, anchored: bool) -> Delim {
    if token.is_empty() {
        return Delim::NotYet { resume: buf.len() };
    }
    let mut at = from;
    while let Some(i) = find(buf, token, at) {
        at = i + 1;
        let dashes = buf[..i].iter().rev().take_while(|&&b| b == b'-').count();
        let line_start = i - dashes;
        if anchored && line_start > 0 && buf[line_start - 1] != b'\n' {
            continue;
        }
        let tail = &buf[i + token.len()..];
        let tail = tail.strip_prefix(b"--").unwrap_or(tail);
        let blanks = tail
            .iter()
            .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\r'))
            .count();
        match tail.get(blanks) {
            Some(b'\n') => {
                let line_end = buf.len() - tail.len() + blanks + 1;
                return Delim::Found {
                    line_start,
                    line_end,
                };
            }
            None if blanks <= MAX_DELIM_TAIL && tail.len() <= MAX_DELIM_TAIL => {
                // Undecided until more arrives; an anchored search must see the dashes again.
                let resume = if anchored { line_start } else { i };
                return Delim::NotYet { resume };
            }
            _ => {}
        }
    }
    Delim::NotYet {
        resume: buf
            .len()
            .saturating_sub(token.len() + 1)
            .max(from.min(buf.len())),
    }
}

/// True if `line` (without its line end) is a delimiter for `token`: dashes, token, optional `--`.
fn is_delimiter_line(line: &[u8], token: &[u8]) -> bool {
    let rest = trim_dashes(line.trim_ascii());
    rest == token || rest.strip_suffix(b"--") == Some(token)
}

/// The boundary named by a line that started with `--` (already stripped), if it can be one.
fn boundary_of_line(rest: &[u8]) -> Option<&[u8]> {
    let rest = trim_dashes(rest.trim_ascii_end());
    let rest = rest.strip_suffix(b"--").unwrap_or(rest);
    let ok =
        !rest.is_empty() && rest.len() <= MAX_BOUNDARY && rest.iter().all(|b| b.is_ascii_graphic());
    ok.then_some(rest)
}

fn trim_dashes(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b'-').count();
    &s[n..]
}

fn trim_ascii_end(s: &[u8]) -> &[u8] {
    s.trim_ascii_end()
}

/// The boundary as the parser searches for it: unquoted, without leading dashes.
fn normalize_boundary(b: &str) -> Option<Vec<u8>> {
    let b = b.trim();
    let b = b
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(b);
    let token = b.trim_start_matches('-').as_bytes();
    let ok = !token.is_empty()
        && token.len() <= MAX_BOUNDARY
        && token.iter().all(|&b| b.is_ascii_graphic() || b == b' ');
    ok.then(|| token.to_vec())
}

/// `Content-Length: N` (any case) → N.
fn parse_content_length(line: &[u8]) -> Option<usize> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
    if !name.eq_ignore_ascii_case(b"content-length") {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The whole JPEG in a part body: (offset of SOI, length through EOI), after dropping junk before
/// the SOI and CR/LF/NUL padding after the EOI.
fn whole_jpeg(body: &[u8]) -> Option<(usize, usize)> {
    let start = find(body, &SOI, 0)?;
    let jpeg = trim_padding(&body[start..]);
    (jpeg.len() >= 4 && jpeg.ends_with(&[0xFF, 0xD9])).then_some((start, jpeg.len()))
}

/// First occurrence of `needle` in `hay` at or after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let rest = hay.get(from..)?;
    if needle.is_empty() || rest.len() < needle.len() {
        return None;
    }
    rest.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The `boundary` parameter of a Content-Type such as `multipart/x-mixed-replace; boundary="--foo"`:
/// unquoted (backslash escapes resolved), otherwise as given — leading dashes included, which
/// [`MultipartParser::new`] accepts either way. `None` if absent or empty.
pub fn boundary_from_content_type(ct: &str) -> Option<String> {
    let (_, mut params) = ct.split_once(';')?;
    loop {
        params = params.trim_start_matches(|c: char| c == ';' || c.is_ascii_whitespace());
        if params.is_empty() {
            return None;
        }
        let name_end = params.find(['=', ';']).unwrap_or(params.len());
        let name = params[..name_end].trim();
        params = &params[name_end..];
        let value = match params.strip_prefix('=') {
            None => String::new(),
            Some(rest) => {
                let rest = rest.trim_start();
                let (value, after) = match rest.strip_prefix('"') {
                    Some(quoted) => unquote(quoted),
                    None => {
                        let end = rest.find(';').unwrap_or(rest.len());
                        (rest[..end].trim().to_string(), &rest[end..])
                    }
                };
                params = after;
                value
            }
        };
        if name.eq_ignore_ascii_case("boundary") {
            return (!value.is_empty()).then_some(value);
        }
    }
}

/// Reads a quoted string's content (after the opening quote): (value, rest after the closing quote).
fn unquote(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &s[i + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
}

/// The bytes to write before one JPEG of `len` bytes in a `multipart/x-mixed-replace` response:
/// `--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\r\n`. The caller then
/// writes the JPEG itself followed by `\r\n` (that CRLF begins the next delimiter, so the response
/// is `part_header, jpeg, "\r\n", part_header, jpeg, "\r\n", …`). `boundary` is the string given in
/// the response's Content-Type (see [`content_type`]), without the `--` this function adds.
pub fn part_header(boundary: &str, len: usize) -> Vec<u8> {
    format!("--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\r\n")
        .into_bytes()
}

/// The Content-Type of an MJPEG response whose parts are written with [`part_header`]:
/// `multipart/x-mixed-replace; boundary={boundary}`.
pub fn content_type(boundary: &str) -> String {
    format!("multipart/x-mixed-replace; boundary={boundary}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_parameter_forms() {
        let b = |ct: &str| boundary_from_content_type(ct);
        assert_eq!(
            b("multipart/x-mixed-replace;boundary=123456789000000000000987654321").as_deref(),
            Some("123456789000000000000987654321")
        );
        assert_eq!(
            b("multipart/x-mixed-replace; boundary=\"--foo\"").as_deref(),
            Some("--foo")
        );
        assert_eq!(
            b("multipart/x-mixed-replace; charset=x; Boundary = ffmpeg ; a=b").as_deref(),
            Some("ffmpeg")
        );
        assert_eq!(
            b("multipart/x-mixed-replace; boundary=\"a;b\\\"c\"").as_deref(),
            Some("a;b\"c")
        );
        assert_eq!(
            b("multipart/x-mixed-replace; x=\"boundary=no\"; boundary=yes").as_deref(),
            Some("yes")
        );
        assert_eq!(b("multipart/x-mixed-replace"), None);
        assert_eq!(b("multipart/x-mixed-replace; boundary="), None);
        assert_eq!(b("multipart/x-mixed-replace; boundary=\"\""), None);
        assert_eq!(b("image/jpeg; q"), None);
    }

    #[test]
    fn normalized_boundaries() {
        assert_eq!(normalize_boundary("--foo").as_deref(), Some(&b"foo"[..]));
        assert_eq!(
            normalize_boundary("\"--foo\"").as_deref(),
            Some(&b"foo"[..])
        );
        assert_eq!(normalize_boundary("foo").as_deref(), Some(&b"foo"[..]));
        assert_eq!(normalize_boundary("----"), None);
        assert_eq!(normalize_boundary("a\r\nb"), None);
    }

    #[test]
    fn delimiter_lines() {
        assert!(is_delimiter_line(b"--foo", b"foo"));
        assert!(is_delimiter_line(b"foo", b"foo"));
        assert!(is_delimiter_line(b"--foo--", b"foo"));
        assert!(is_delimiter_line(b"----foo \t", b"foo"));
        assert!(!is_delimiter_line(b"--foobar", b"foo"));
        assert!(!is_delimiter_line(b"x--foo", b"foo"));
    }

    #[test]
    fn content_length_header() {
        assert_eq!(parse_content_length(b"Content-Length: 12"), Some(12));
        assert_eq!(parse_content_length(b"content-length:7 "), Some(7));
        assert_eq!(parse_content_length(b"Content-Length: -1"), None);
        assert_eq!(
            parse_content_length(b"Content-Length: 99999999999999999999999"),
            None
        );
        assert_eq!(parse_content_length(b"X-Content-Length: 5"), None);
    }

    #[test]
    fn writer_output() {
        assert_eq!(
            part_header("ffmpeg", 6138),
            b"--ffmpeg\r\nContent-Type: image/jpeg\r\nContent-Length: 6138\r\n\r\n".to_vec()
        );
        assert_eq!(content_type("b"), "multipart/x-mixed-replace; boundary=b");
    }
}
