//! Fuzzes JPEG header inspection: any bytes must give a result or an error, never a panic.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run jpeg_header -- -max_total_time=60`
#![no_main]

use camhub_media::jpeg::{looks_complete, parse_jpeg_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = parse_jpeg_header(data) {
        assert!(info.width > 0 && info.height > 0);
    }
    let _ = looks_complete(data);
});
