//! The multipart parser on streams captured from real MJPEG servers (see testdata/make_testdata.sh):
//! every frame comes out whole, whatever the chunking and whatever boundary the caller was told.

mod common;

use camhub_media::jpeg::{looks_complete, parse_jpeg_header};
use camhub_media::multipart::{boundary_from_content_type, MultipartParser};
use common::{parse_chunks, parse_every_way, parts_by_content_length, split_at, testdata};

const ESP32_CT: &str = "multipart/x-mixed-replace;boundary=123456789000000000000987654321";

fn check_frames(parts: &[Vec<u8>], capture: &[u8], width: u32, height: u32) {
    assert_eq!(parts, parts_by_content_length(capture));
    for part in parts {
        assert!(looks_complete(part));
        let info = parse_jpeg_header(part).expect("frame header");
        assert_eq!((info.width, info.height), (width, height));
    }
}

#[test]
fn ffmpeg_mpjpeg_frames() {
    let capture = testdata("ffmpeg_mpjpeg.bin");
    let parts = parse_every_way(Some("ffmpeg"), &capture);
    assert_eq!(parts.len(), 3);
    check_frames(&parts, &capture, 320, 240);
}

#[test]
fn esp32cam_frames() {
    let capture = testdata("esp32cam_stream.bin");
    let boundary = boundary_from_content_type(ESP32_CT);
    let parts = parse_every_way(boundary.as_deref(), &capture);
    assert_eq!(parts.len(), 3);
    check_frames(&parts, &capture, 160, 120);
    assert_eq!(
        parse_jpeg_header(&parts[0]).map(|i| i.subsampling),
        Ok("422")
    );
}

#[test]
fn esp32cam_every_split_in_two() {
    let capture = testdata("esp32cam_stream.bin");
    let expected = parts_by_content_length(&capture);
    for cut in 0..=capture.len() {
        let parts = parse_chunks(
            Some("123456789000000000000987654321"),
            1 << 20,
            split_at(&capture, &[cut]),
        );
        assert_eq!(parts.as_ref(), Ok(&expected), "split at {cut}");
    }
}

#[test]
fn boundary_missing_or_wrong_in_content_type() {
    for capture in ["ffmpeg_mpjpeg.bin", "esp32cam_stream.bin"].map(testdata) {
        let expected = parts_by_content_length(&capture);
        for boundary in [None, Some("wrong"), Some("--ffmpeg"), Some("\"--wrong\"")] {
            assert_eq!(
                parse_every_way(boundary, &capture),
                expected,
                "boundary {boundary:?}"
            );
        }
    }
}

#[test]
fn real_boundary_is_learned_from_the_body() {
    let mut parser = MultipartParser::new(Some("wrong"), 1 << 20);
    parser.push(&testdata("ffmpeg_mpjpeg.bin"));
    assert!(parser.next_part().expect("no error").is_some());
    assert_eq!(parser.boundary(), Some("ffmpeg"));
}

#[test]
fn frames_are_emitted_as_soon_as_their_last_byte_arrives() {
    // Live latency: a frame must not wait for the next part's delimiter.
    for capture in ["ffmpeg_mpjpeg.bin", "esp32cam_stream.bin"].map(testdata) {
        let expected = parts_by_content_length(&capture);
        let first = &expected[0];
        let end = capture
            .windows(first.len())
            .position(|w| w == &first[..])
            .expect("frame")
            + first.len();
        let mut parser = MultipartParser::new(None, 1 << 20);
        parser.push(&capture[..end]);
        assert_eq!(parser.next_part().expect("no error").as_ref(), Some(first));
    }
}

#[test]
fn frames_too_large_are_refused() {
    let capture = testdata("ffmpeg_mpjpeg.bin");
    let limit = 4096; // every frame is about 6 KB
    let mut parser = MultipartParser::new(Some("ffmpeg"), limit);
    let mut result = Ok(None);
    for chunk in capture.chunks(1000) {
        parser.push(chunk);
        result = parser.next_part();
        if result.is_err() {
            break;
        }
        assert!(parser.buffered() <= limit + camhub_media::multipart::MAX_OVERHEAD);
    }
    let err = result.expect_err("a 6 KB frame exceeds a 4 KB limit");
    assert_eq!(
        err,
        camhub_media::multipart::MultipartError::PartTooLarge { limit }
    );
    assert!(err.to_string().contains("4096"), "{err}");
}
