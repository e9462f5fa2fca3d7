//! JPEG helpers against the real ffmpeg CLI.

use camhub_testkit::{
    decode_jpeg_rgb, ffmpeg_jpegs, ffprobe_size, jpeg_size, pixel, try_decode_jpeg_rgb,
};

#[test]
fn jpegs_differ_and_decode_to_their_size() {
    let jpegs = ffmpeg_jpegs(3, 320, 240);
    assert_eq!(jpegs.len(), 3);
    assert!(
        jpegs[0] != jpegs[1] && jpegs[1] != jpegs[2],
        "testsrc2 frames differ"
    );
    for jpeg in &jpegs {
        assert_eq!(jpeg_size(jpeg), Some((320, 240)));
        let (w, h, rgb) = decode_jpeg_rgb(jpeg);
        assert_eq!((w, h, rgb.len()), (320, 240, 320 * 240 * 3));
        let _ = pixel(&rgb, w, 319, 239);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("a.jpg");
    std::fs::write(&path, &jpegs[0]).expect("write");
    assert_eq!(ffprobe_size(path.to_str().expect("utf-8")), Ok((320, 240)));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(try_decode_jpeg_rgb(b"not a jpeg").is_err());
    assert_eq!(jpeg_size(&[0xFF, 0xD8, 0xFF]), None);
    assert!(ffprobe_size("/nonexistent.jpg").is_err());
}
