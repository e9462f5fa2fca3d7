//! The multipart parser on the framing quirks cameras are known for, each stream fed whole, byte by
//! byte and in random chunks.

mod common;

use camhub_media::multipart::{
    boundary_from_content_type, content_type, part_header, MultipartParser,
};
use common::{parse_every_way, sample_jpegs};

/// Builds a stream from (headers, body, trailer) pieces.
fn stream(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}

fn jpegs() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut j = sample_jpegs().into_iter();
    (
        j.next().unwrap_or_default(),
        j.next().unwrap_or_default(),
        j.next().unwrap_or_default(),
    )
}

#[test]
fn no_content_length() {
    let (a, b, c) = jpegs();
    let h = b"--frame\r\nContent-Type: image/jpeg\r\n\r\n";
    let input = stream(&[h, &a, b"\r\n", h, &b, b"\r\n", h, &c, b"\r\n"]);
    assert_eq!(parse_every_way(Some("frame"), &input), [a, b, c]);
}

#[test]
fn lf_only_lines() {
    let (a, b, _) = jpegs();
    let input = stream(&[
        b"--frame\nContent-Type: image/jpeg\n\n",
        &a,
        b"\n--frame\nContent-Type: image/jpeg\n\n",
        &b,
        b"\n",
    ]);
    assert_eq!(
        parse_every_way(Some("frame"), &input),
        [a.clone(), b.clone()]
    );
    let input = stream(&[
        b"--frame\nContent-Length: ",
        a.len().to_string().as_bytes(),
        b"\n\n",
        &a,
        b"\n--frame\n\n",
        &b,
    ]);
    assert_eq!(parse_every_way(Some("frame"), &input), [a, b]);
}

#[test]
fn extra_part_headers() {
    let (a, b, _) = jpegs();
    let part = |j: &[u8]| {
        format!(
            "--myboundary\r\nContent-Type: image/jpeg\r\nX-Timestamp: 1021.100000\r\nX-Frame: {}\r\ncontent-length:{}\r\nX-Odd:\r\nno colon here\r\n\r\n",
            j.len() % 7,
            j.len()
        )
        .into_bytes()
    };
    let input = stream(&[&part(&a), &a, b"\r\n", &part(&b), &b, b"\r\n"]);
    assert_eq!(parse_every_way(Some("myboundary"), &input), [a, b]);
}

#[test]
fn wrong_content_length_falls_back_to_the_jpeg_and_the_delimiter() {
    let (a, b, c) = jpegs();
    let part = |cl: String, j: &[u8]| {
        stream(&[
            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ",
            cl.as_bytes(),
            b"\r\n\r\n",
            j,
            b"\r\n",
        ])
    };
    let input = stream(&[
        &part((a.len() - 10).to_string(), &a),
        &part((b.len() + 50).to_string(), &b),
        &part("lots".to_string(), &c),
        &part("999999999999".to_string(), &a),
        &part(c.len().to_string(), &c),
    ]);
    assert_eq!(
        parse_every_way(Some("frame"), &input),
        [a.clone(), b, c.clone(), a, c]
    );
}

#[test]
fn garbage_between_parts_and_junk_before_the_image() {
    let (a, b, c) = jpegs();
    let input = stream(&[
        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n",
        b"--frame\r\nContent-Type: image/jpeg\r\n\r\n",
        b"\r\n\x00junk",
        &a,
        b"\r\n\x00\x01\x02 garbage line\r\n\xFF\xFF-- not it\r\n",
        b"--frame\r\n\r\n",
        &b,
        b"\r\nmore garbage without a line end",
        b"\r\n--frame\r\nContent-Length: ",
        (c.len() + 3).to_string().as_bytes(),
        b"\r\n\r\nxyz",
        &c,
        b"\r\n",
    ]);
    assert_eq!(parse_every_way(Some("frame"), &input), [a, b, c]);
}

#[test]
fn sensor_padding_after_eoi_is_trimmed() {
    // OV2640 frames can end in zero padding, counted in Content-Length.
    let (a, b, _) = jpegs();
    let padded = |j: &[u8]| stream(&[j, &[0u8; 7]]);
    let part = |j: &[u8]| {
        let body = padded(j);
        stream(&[
            b"\r\n--b\r\nContent-Type: image/jpeg\r\nContent-Length: ",
            body.len().to_string().as_bytes(),
            b"\r\n\r\n",
            &body,
        ])
    };
    let input = stream(&[&part(&a), &part(&b)]);
    assert_eq!(parse_every_way(Some("b"), &input), [a.clone(), b.clone()]);
    let input = stream(&[
        b"--b\r\n\r\n",
        &padded(&a),
        b"\r\n--b\r\n\r\n",
        &padded(&b),
        b"\r\n--b--\r\n",
    ]);
    assert_eq!(parse_every_way(Some("b"), &input), [a, b]);
}

#[test]
fn delimiters_with_and_without_dashes() {
    let (a, b, c) = jpegs();
    // The Content-Type says boundary="--myboundary" and the body uses "--myboundary" (strictly it
    // should be "----myboundary"); others omit the dashes in the body altogether.
    let ct = "multipart/x-mixed-replace; boundary=\"--myboundary\"";
    let boundary = boundary_from_content_type(ct);
    assert_eq!(boundary.as_deref(), Some("--myboundary"));
    let input = stream(&[
        b"--myboundary\r\n\r\n",
        &a,
        b"\r\n----myboundary\r\n\r\n",
        &b,
        b"\r\nmyboundary\r\n\r\n",
        &c,
        b"\r\n",
    ]);
    assert_eq!(
        parse_every_way(boundary.as_deref(), &input),
        [a.clone(), b.clone(), c.clone()]
    );
    let input = stream(&[b"myboundary\r\n\r\n", &a, b"\r\nmyboundary\r\n\r\n", &b]);
    assert_eq!(parse_every_way(Some("myboundary"), &input), [a, b]);
}

#[test]
fn parts_that_are_not_whole_jpegs_are_skipped() {
    let (a, b, _) = jpegs();
    let cut = &a[..a.len() / 2];
    let input = stream(&[
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n",
        b"--b\r\nContent-Type: image/jpeg\r\n\r\n",
        cut,
        b"\r\n--b\r\n\r\n\r\n--b\r\nContent-Type: image/jpeg\r\n\r\n",
        &b,
        b"\r\n--b--\r\n",
    ]);
    assert_eq!(parse_every_way(Some("b"), &input), [b]);
    let mut parser = MultipartParser::new(Some("b"), 1 << 20);
    parser.push(&input);
    while parser.next_part().expect("no error").is_some() {}
    assert!(parser.skipped_parts() >= 2, "{}", parser.skipped_parts());
}

#[test]
fn headers_may_be_missing() {
    let (a, b, _) = jpegs();
    let input = stream(&[b"--b\r\n", &a, b"\r\n--b\r\n", &b, b"\r\n"]);
    assert_eq!(parse_every_way(Some("b"), &input), [a, b]);
}

/// A JPEG whose APP1 segment holds a whole thumbnail JPEG (as EXIF does), so it contains an early
/// `FF D9` that must not end it.
fn jpeg_with_thumbnail(outer: &[u8], thumb: &[u8]) -> Vec<u8> {
    let len = u16::try_from(thumb.len() + 2).expect("small thumbnail");
    stream(&[
        &outer[..2],
        &[0xFF, 0xE1],
        &len.to_be_bytes(),
        thumb,
        &outer[2..],
    ])
}

#[test]
fn no_boundary_at_all_cuts_jpegs_by_markers() {
    let (a, b, c) = jpegs();
    let with_thumb = jpeg_with_thumbnail(&b, &a[..]);
    // Back to back, with junk around and a truncated frame in between.
    let input = stream(&[
        b"\x00\x01",
        &a,
        &with_thumb,
        b"junk\xFF",
        &c[..c.len() / 2],
        &c,
        b"\r\n",
    ]);
    assert_eq!(
        parse_every_way(None, &input),
        [a.clone(), with_thumb.clone(), c]
    );
    // A Content-Type boundary that never appears in the body changes nothing.
    let input = stream(&[&a, &with_thumb]);
    assert_eq!(parse_every_way(Some("frame"), &input), [a, with_thumb]);
}

#[test]
fn thumbnails_inside_multipart_parts() {
    let (a, b, _) = jpegs();
    let with_thumb = jpeg_with_thumbnail(&b, &a[..]);
    let input = stream(&[b"--b\r\n\r\n", &with_thumb, b"\r\n--b\r\n\r\n", &a, b"\r\n"]);
    assert_eq!(parse_every_way(Some("b"), &input), [with_thumb, a]);
}

#[test]
fn malformed_jpeg_structure_still_passes_between_delimiters() {
    // A decoder may cope with it; the framing is what matters here.
    let (a, ..) = jpegs();
    let odd = stream(&[&a[..2], b"\x12\x34", &a[2..]]);
    let input = stream(&[b"--b\r\n\r\n", &odd, b"\r\n--b\r\n"]);
    assert_eq!(
        parse_every_way(Some("b"), &input),
        std::slice::from_ref(&odd)
    );
    let input = stream(&[
        b"--b\r\nContent-Length: ",
        odd.len().to_string().as_bytes(),
        b"\r\n\r\n",
        &odd,
    ]);
    assert_eq!(parse_every_way(Some("b"), &input), [odd]);
}

#[test]
fn writer_output_parses_back() {
    let (a, b, c) = jpegs();
    let mut out = Vec::new();
    for j in [&a, &b, &c] {
        out.extend_from_slice(&part_header("camhub", j.len()));
        out.extend_from_slice(j);
        out.extend_from_slice(b"\r\n");
    }
    let ct = content_type("camhub");
    let boundary = boundary_from_content_type(&ct);
    assert_eq!(boundary.as_deref(), Some("camhub"));
    assert_eq!(parse_every_way(boundary.as_deref(), &out), [a, b, c]);
}

#[test]
fn oversized_parts_are_refused_in_every_mode() {
    let (a, ..) = jpegs();
    let limit = a.len() - 1;
    let cases: [(Option<&str>, Vec<u8>); 4] = [
        (
            Some("b"),
            stream(&[
                b"--b\r\nContent-Length: ",
                a.len().to_string().as_bytes(),
                b"\r\n\r\n",
                &a,
                b"\r\n--b\r\n",
            ]),
        ),
        (Some("b"), stream(&[b"--b\r\n\r\n", &a, b"\r\n--b\r\n"])),
        (None, a.clone()),
        // Never ends: an SOI followed by endless entropy-coded-looking data.
        (
            Some("b"),
            stream(&[
                b"--b\r\n\r\n\xFF\xD8\xFF\xDA\x00\x02",
                &vec![0x55; 3 * limit],
            ]),
        ),
    ];
    for (boundary, input) in cases {
        let result = common::parse_chunks(boundary, limit, input.chunks(997));
        assert_eq!(
            result,
            Err(camhub_media::multipart::MultipartError::PartTooLarge { limit }),
            "{boundary:?}"
        );
    }
}

#[test]
fn parser_resynchronises_after_an_error() {
    let (a, b, _) = jpegs();
    let mut parser = MultipartParser::new(Some("b"), b.len());
    parser.push(&stream(&[b"--b\r\n\r\n", &vec![0x55; 2 * b.len()]]));
    assert!(parser.next_part().is_err());
    assert_eq!(parser.buffered(), 0);
    parser.push(&stream(&[b"\r\n--b\r\n\r\n", &a, b"\r\n"]));
    assert_eq!(parser.next_part(), Ok(Some(a)));
}
