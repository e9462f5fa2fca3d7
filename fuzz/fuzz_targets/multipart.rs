//! Fuzzes the multipart MJPEG parser: any bytes, in any chunking, with any boundary and limit, must
//! never panic, and the buffer must stay within its documented bound.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run multipart -- -max_total_time=60`
//! (seed the corpus with `../crates/media/testdata/*.bin` for deeper coverage).
#![no_main]

use camhub_media::multipart::{MultipartParser, MAX_OVERHEAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the setup; the rest is the stream.
    let [mode, limit, chunk, stream @ ..] = data else {
        return;
    };
    let boundary = match mode % 4 {
        0 => None,
        1 => Some("123456789000000000000987654321"),
        2 => Some("--ffmpeg"),
        _ => Some("b"),
    };
    let max_part = usize::from(*limit) * 64;
    let chunk = usize::from(*chunk).max(1);
    let mut parser = MultipartParser::new(boundary, max_part);
    for piece in stream.chunks(chunk) {
        parser.push(piece);
        loop {
            match parser.next_part() {
                Ok(Some(part)) => {
                    assert!(part.len() <= max_part);
                    assert!(part.starts_with(&[0xFF, 0xD8]) && part.ends_with(&[0xFF, 0xD9]));
                }
                Ok(None) | Err(_) => break,
            }
        }
        assert!(parser.buffered() <= max_part + MAX_OVERHEAD);
    }
});
