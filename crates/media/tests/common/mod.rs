//! Helpers shared by the integration tests: test data, and feeding a parser in many chunkings.
#![allow(dead_code)] // each test file uses a different subset

use camhub_media::multipart::{MultipartParser, MAX_OVERHEAD};

/// A file from `crates/media/testdata/`.
pub fn testdata(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Small deterministic pseudo-random numbers (xorshift), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Feeds `chunks` one by one, draining after each, checking the memory bound; returns the parts.
pub fn parse_chunks<'a>(
    boundary: Option<&str>,
    max_part: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Vec<u8>>, camhub_media::multipart::MultipartError> {
    let mut parser = MultipartParser::new(boundary, max_part);
    let mut parts = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(part) = parser.next_part()? {
            parts.push(part);
        }
        assert!(
            parser.buffered() <= max_part + MAX_OVERHEAD,
            "buffered {}",
            parser.buffered()
        );
    }
    Ok(parts)
}

/// `input` cut into pieces at `cuts` (sorted offsets).
pub fn split_at<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut prev = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        pieces.push(&input[prev..c]);
        prev = c;
    }
    pieces
}

/// Parses `input` whole, byte by byte and in 50 random chunkings, asserts that all give the same
/// parts, and returns them.
pub fn parse_every_way(boundary: Option<&str>, input: &[u8]) -> Vec<Vec<u8>> {
    let max_part = 1 << 20;
    let whole = parse_chunks(boundary, max_part, [input]).expect("whole");
    let bytewise = parse_chunks(boundary, max_part, input.chunks(1)).expect("byte by byte");
    assert_eq!(
        bytewise, whole,
        "byte-by-byte feeding differs from feeding at once"
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ input.len() as u64);
    for round in 0..50 {
        let mut cuts: Vec<usize> = (0..1 + rng.below(40))
            .map(|_| rng.below(input.len() + 1))
            .collect();
        cuts.sort_unstable();
        let parts = parse_chunks(boundary, max_part, split_at(input, &cuts)).expect("chunked");
        assert_eq!(parts, whole, "chunking #{round} at {cuts:?} differs");
    }
    whole
}

/// The JPEGs of a well-formed capture, cut out by their Content-Length headers (an independent,
/// non-incremental reading to compare the parser with).
pub fn parts_by_content_length(capture: &[u8]) -> Vec<Vec<u8>> {
    let find = |needle: &[u8], from: usize| {
        capture[from..]
            .windows(needle.len())
            .position(|w| w.eq_ignore_ascii_case(needle))
            .map(|i| i + from)
    };
    let mut parts = Vec::new();
    let mut at = 0;
    while let Some(i) = find(b"content-length:", at) {
        let start = i + "content-length:".len();
        let line_end = find(b"\n", start).expect("header line end");
        let len: usize = std::str::from_utf8(&capture[start..line_end])
            .expect("ascii")
            .trim()
            .parse()
            .expect("length");
        let body = find(b"\r\n\r\n", line_end - 1).expect("blank line") + 4;
        parts.push(capture[body..body + len].to_vec());
        at = body + len;
    }
    parts
}

/// Real JPEGs from the test data, smallest first.
pub fn sample_jpegs() -> Vec<Vec<u8>> {
    [
        "testsrc2_160x120_gray.jpg",
        "testsrc2_320x240_420.jpg",
        "testsrc2_320x240_422.jpg",
    ]
    .iter()
    .map(|n| testdata(n))
    .collect()
}
