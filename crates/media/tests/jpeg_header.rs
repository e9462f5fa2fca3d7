//! JPEG header inspection on real ffmpeg-made JPEGs, and on every truncation and corruption of them.

mod common;

use camhub_media::jpeg::{looks_complete, parse_jpeg_header, JpegError, JpegInfo};
use common::testdata;
use proptest::prelude::*;

#[test]
fn real_jpegs() {
    let cases = [
        ("testsrc2_320x240_420.jpg", 320, 240, 3, "420"),
        ("testsrc2_320x240_422.jpg", 320, 240, 3, "422"),
        ("testsrc2_320x240_444.jpg", 320, 240, 3, "444"),
        ("testsrc2_160x120_gray.jpg", 160, 120, 1, "gray"),
    ];
    for (name, width, height, components, subsampling) in cases {
        let data = testdata(name);
        let info = parse_jpeg_header(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            info,
            JpegInfo {
                width,
                height,
                components,
                subsampling
            },
            "{name}"
        );
        assert!(looks_complete(&data), "{name}");
    }
}

#[test]
fn every_truncation_is_an_error_or_still_has_the_header() {
    let data = testdata("testsrc2_320x240_420.jpg");
    let mut errors = 0;
    for n in 0..data.len() {
        match parse_jpeg_header(&data[..n]) {
            Ok(info) => assert_eq!((info.width, info.height), (320, 240)),
            Err(e) => {
                errors += 1;
                assert!(!e.to_string().is_empty());
            }
        }
        assert!(
            !looks_complete(&data[..n]),
            "truncated at {n} looks complete"
        );
    }
    assert!(errors > 100, "only {errors} truncations failed");
    assert_eq!(parse_jpeg_header(&data[..10]), Err(JpegError::Truncated));
}

#[test]
fn looks_complete_allows_padding_only() {
    let data = testdata("testsrc2_160x120_gray.jpg");
    let padded = [&data[..], b"\r\n\0\0"].concat();
    assert!(looks_complete(&padded));
    let trailing = [&data[..], b"x"].concat();
    assert!(!looks_complete(&trailing));
    assert!(!looks_complete(&[0xFF, 0xD8, 0xFF, 0xD9][1..]));
    assert!(looks_complete(&[0xFF, 0xD8, 0xFF, 0xD9]));
    assert!(!looks_complete(&[0xFF, 0xD8, 0xD9]));
    assert!(!looks_complete(b""));
}

#[test]
fn specific_errors() {
    assert_eq!(parse_jpeg_header(b"GIF89a"), Err(JpegError::NotJpeg));
    assert_eq!(
        parse_jpeg_header(&[0xFF, 0xD8, 0x00]),
        Err(JpegError::BadMarker { offset: 2 })
    );
    assert_eq!(
        parse_jpeg_header(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]),
        Err(JpegError::BadSegment { offset: 2 })
    );
    assert_eq!(
        parse_jpeg_header(&[0xFF, 0xD8, 0xFF, 0xD9]),
        Err(JpegError::NoFrameHeader)
    );
    assert_eq!(
        parse_jpeg_header(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]),
        Err(JpegError::NoFrameHeader)
    );
    // Lossless (SOF3) and arithmetic (SOF9) are reported as unsupported.
    assert_eq!(
        parse_jpeg_header(&[0xFF, 0xD8, 0xFF, 0xC3, 0x00, 0x0B]),
        Err(JpegError::Unsupported { marker: 0xC3 })
    );
    assert_eq!(
        parse_jpeg_header(&[0xFF, 0xD8, 0xFF, 0xC9, 0x00, 0x0B]),
        Err(JpegError::Unsupported { marker: 0xC9 })
    );
    let sof = |h: u16, w: u16| {
        let mut d = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
        d.extend_from_slice(&h.to_be_bytes());
        d.extend_from_slice(&w.to_be_bytes());
        d.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
        d
    };
    assert_eq!(parse_jpeg_header(&sof(0, 10)), Err(JpegError::ZeroSize));
    let info = parse_jpeg_header(&sof(65535, 65535)).expect("maximal size");
    assert_eq!(
        (info.width, info.height, info.subsampling),
        (65535, 65535, "gray")
    );
    // A component count larger than the segment holds.
    let mut bad = sof(8, 8);
    bad[11] = 3;
    assert_eq!(
        parse_jpeg_header(&bad),
        Err(JpegError::BadSegment { offset: 2 })
    );
    // Fill bytes before a marker are allowed.
    let mut filled = sof(8, 16);
    filled.insert(2, 0xFF);
    assert_eq!(parse_jpeg_header(&filled).map(|i| i.width), Ok(16));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_jpeg_header(&data);
        let _ = looks_complete(&data);
        let with_soi = [&[0xFF, 0xD8][..], &data].concat();
        let _ = parse_jpeg_header(&with_soi);
    }

    #[test]
    fn corrupted_real_jpegs_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut data = testdata("testsrc2_320x240_422.jpg");
        for (at, byte) in edits {
            let at = at % 700; // the headers, where the parser looks
            data[at] = byte;
        }
        data.truncate(cut % (data.len() + 1));
        if let Ok(info) = parse_jpeg_header(&data) {
            prop_assert!(info.width > 0 && info.height > 0);
        }
    }
}
