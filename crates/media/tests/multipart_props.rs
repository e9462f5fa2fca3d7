//! Property tests for the multipart parser: hostile input never panics and never grows the buffer
//! past its bound; well-formed streams in any of the styles cameras use always give back exactly the
//! JPEGs that went in, however they are chunked.

mod common;

use camhub_media::multipart::{MultipartParser, MAX_OVERHEAD};
use common::{sample_jpegs, split_at};
use proptest::prelude::*;

/// Feeds all chunks, draining after each and carrying on after errors; checks the bound throughout.
fn feed_hostile(boundary: Option<&str>, max_part: usize, chunks: &[&[u8]]) -> usize {
    let mut parser = MultipartParser::new(boundary, max_part);
    let mut parts = 0;
    for chunk in chunks {
        parser.push(chunk);
        while let Ok(Some(part)) = parser.next_part() {
            assert!(part.len() <= max_part);
            assert!(part.starts_with(&[0xFF, 0xD8]) && part.ends_with(&[0xFF, 0xD9]));
            parts += 1;
        }
        assert!(
            parser.buffered() <= max_part + MAX_OVERHEAD,
            "buffered {} with max_part {max_part}",
            parser.buffered()
        );
    }
    parts
}

/// Pieces that steer the parser into its interesting states, mixed with random bytes.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        Just(b"--b\r\n".to_vec()),
        Just(b"\r\n--b\r\n".to_vec()),
        Just(b"b\n".to_vec()),
        Just(b"--other\r\n".to_vec()),
        Just(b"--b--\r\n".to_vec()),
        Just(b"Content-Type: image/jpeg\r\n".to_vec()),
        (0usize..300).prop_map(|n| format!("Content-Length: {n}\r\n").into_bytes()),
        Just(b"\r\n\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(vec![0xFF, 0xD8]),
        Just(vec![0xFF, 0xD9]),
        Just(vec![0xFF, 0xDA, 0x00, 0x02]),
        Just(vec![0xFF, 0xE0, 0x00, 0x10]),
        Just(vec![0xFF, 0x00, 0xFF, 0xD0, 0xFF]),
        Just(vec![b'-'; 40]),
    ]
}

fn chunking(len: usize, cuts: &[usize]) -> Vec<usize> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// How one part is framed.
#[derive(Debug, Clone)]
struct Style {
    jpeg: usize,
    content_length: Option<i64>, // offset added to the true length, if a header is sent
    lf_only: bool,
    extra_headers: bool,
    headers: bool,
    junk_before: Vec<u8>,
    padding: usize,
    garbage_after: Vec<u8>,
}

prop_compose! {
    fn style()(
        jpeg in 0usize..3,
        content_length in prop_oneof![Just(None), Just(Some(0)), (-20i64..40).prop_map(Some)],
        lf_only in any::<bool>(),
        extra_headers in any::<bool>(),
        headers in prop_oneof![4 => Just(true), 1 => Just(false)],
        // Junk must not itself contain an SOI, or it would be part of the image.
        junk_before in proptest::collection::vec(0u8..0xFF, 0..5),
        padding in 0usize..4,
        // Garbage between parts: anything without a line end (so it cannot form a delimiter line).
        garbage_after in proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..30),
    ) -> Style {
        Style { jpeg, content_length, lf_only, extra_headers, headers, junk_before, padding, garbage_after }
    }
}

fn build(styles: &[Style], jpegs: &[Vec<u8>], leading_crlf: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for s in styles {
        let nl: &[u8] = if s.lf_only { b"\n" } else { b"\r\n" };
        let jpeg = &jpegs[s.jpeg];
        let body: Vec<u8> = [&s.junk_before[..], jpeg, &vec![0u8; s.padding]].concat();
        if leading_crlf {
            out.extend_from_slice(nl);
        }
        out.extend_from_slice(b"--123456789000000000000987654321");
        out.extend_from_slice(nl);
        if s.headers {
            out.extend_from_slice(b"Content-Type: image/jpeg");
            out.extend_from_slice(nl);
            if let Some(delta) = s.content_length {
                let n = (body.len() as i64 + delta).max(0);
                out.extend_from_slice(format!("Content-Length: {n}").as_bytes());
                out.extend_from_slice(nl);
            }
            if s.extra_headers {
                out.extend_from_slice(b"X-Timestamp: 1021.100000");
                out.extend_from_slice(nl);
            }
            out.extend_from_slice(nl);
        } else {
            // Without headers nothing may come between the delimiter and the image.
            out.extend_from_slice(&body[s.junk_before.len()..]);
            if !leading_crlf {
                out.extend_from_slice(nl);
            }
            out.extend_from_slice(&s.garbage_after);
            out.extend_from_slice(nl);
            continue;
        }
        out.extend_from_slice(&body);
        if !leading_crlf {
            out.extend_from_slice(nl);
        }
        out.extend_from_slice(&s.garbage_after);
        out.extend_from_slice(nl);
    }
    out
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        boundary in prop_oneof![Just(None), Just(Some("b")), Just(Some("--b")), Just(Some(""))],
        max_part in 0usize..3000,
    ) {
        let cuts = chunking(data.len(), &cuts);
        feed_hostile(boundary, max_part, &split_at(&data, &cuts));
    }

    #[test]
    fn token_soup_never_panics_and_stays_bounded(
        tokens in proptest::collection::vec(token(), 0..200),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        boundary in prop_oneof![Just(None), Just(Some("b")), Just(Some("other"))],
        max_part in 0usize..400,
    ) {
        let data = tokens.concat();
        let cuts = chunking(data.len(), &cuts);
        feed_hostile(boundary, max_part, &split_at(&data, &cuts));
    }

    #[test]
    fn mutated_captures_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..20),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        max_part in 1000usize..10_000,
    ) {
        let mut data = common::testdata("esp32cam_stream.bin");
        for (at, byte, kind) in edits {
            let at = at % data.len();
            match kind {
                0 => data[at] = byte,
                1 => data.insert(at, byte),
                _ => { data.remove(at); }
            }
        }
        let cuts = chunking(data.len(), &cuts);
        feed_hostile(Some("123456789000000000000987654321"), max_part, &split_at(&data, &cuts));
    }

    #[test]
    fn well_formed_streams_give_back_their_jpegs(
        styles in proptest::collection::vec(style(), 1..6),
        leading_crlf in any::<bool>(),
        boundary in prop_oneof![Just(None), Just(Some("123456789000000000000987654321")), Just(Some("wrong"))],
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let jpegs = sample_jpegs();
        let input = build(&styles, &jpegs, leading_crlf);
        let cuts = chunking(input.len(), &cuts);
        let parts = common::parse_chunks(boundary, 1 << 20, split_at(&input, &cuts)).expect("no error");
        let expected: Vec<Vec<u8>> = styles.iter().map(|s| jpegs[s.jpeg].clone()).collect();
        prop_assert_eq!(parts, expected);
    }
}
