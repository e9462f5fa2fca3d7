//! `GET /api/cameras/{id}/frame.raw` (issue 11's HTTP frame API) against the real binary and the
//! test RTSP server: raw BGR, RGB, gray and I420 pixels of the size asked for, the test pattern's
//! bars in the right colours and in full range (black 0, white 255), the size and layout in the
//! headers; a JPEG camera (the server's /mjpeg) too; bad parameters are JSON 400s.
#![allow(clippy::unwrap_used)]

mod common;

use camhub_testkit::{KnownColor, RtspServer, RtspServerOptions, COLOR_TOLERANCE};

fn header(got: &common::Got, name: &str) -> String {
    got.header(name)
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// `rgb` (packed RGB, `w` x `h`) has every bar of the test pattern within the tolerance.
fn bars_ok(rgb: &[u8], w: u32, h: u32) {
    for bar in RtspServer::BARS {
        bar.check(rgb, w, h, COLOR_TOLERANCE).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_pixels_in_every_format_with_their_layout() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&format!(
        "[[camera]]\nid = \"cam\"\nurl = \"{}\"\n\n[[camera]]\nid = \"mj\"\nurl = \"{}\"\n",
        rtsp.url("/h264"),
        rtsp.url("/mjpeg")
    ))
    .await;
    for id in ["cam", "mj"] {
        // BGR, OpenCV's order (the default): swapped back to RGB, the bars are right.
        let got = common::get(&hub.url(&format!("/api/cameras/{id}/frame.raw?width=320"))).await;
        assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
        assert_eq!(header(&got, "content-type"), "application/octet-stream");
        let (w, h) = (320u32, 180u32);
        assert_eq!(header(&got, "x-width"), "320");
        assert_eq!(header(&got, "x-height"), "180");
        assert_eq!(header(&got, "x-stride"), "960");
        assert_eq!(header(&got, "x-format"), "bgr");
        assert!(header(&got, "x-frame-seq").parse::<u64>().unwrap() > 0);
        assert!(header(&got, "x-frame-timestamp").parse::<u64>().unwrap() > 1_600_000_000_000);
        assert_eq!(got.body.len(), (w * h * 3) as usize);
        let rgb: Vec<u8> = got
            .body
            .chunks(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        bars_ok(&rgb, w, h);

        let got =
            common::get(&hub.url(&format!("/api/cameras/{id}/frame.raw?height=90&format=rgb")))
                .await;
        assert_eq!(
            (header(&got, "x-width"), header(&got, "x-height")),
            ("160".into(), "90".into())
        );
        bars_ok(&got.body, 160, 90);

        // Gray: luma only, full range.
        let got = common::get(&hub.url(&format!(
            "/api/cameras/{id}/frame.raw?width=320&format=gray"
        )))
        .await;
        assert_eq!(got.body.len(), (w * h) as usize);
        assert_eq!(header(&got, "x-stride"), "320");
        let white = camhub_testkit::RTSP_WHITE;
        let at = |c: &KnownColor| {
            ((c.y * f64::from(h)) as u32 * w + (c.x * f64::from(w)) as u32) as usize
        };
        assert!(
            got.body[at(&white)] > 235,
            "white luma {}",
            got.body[at(&white)]
        );
        assert!(got.body[at(&camhub_testkit::RTSP_BLACK)] < 20);

        // I420: the three planes back to back, stride = width.
        let got = common::get(&hub.url(&format!(
            "/api/cameras/{id}/frame.raw?width=320&format=yuv420"
        )))
        .await;
        assert_eq!(got.body.len(), (w * h + 2 * (w / 2) * (h / 2)) as usize);
        assert!(got.body[at(&white)] > 235);
        let cb = &got.body[(w * h) as usize..];
        let white_chroma = ((white.y * f64::from(h / 2)) as u32 * (w / 2)
            + (white.x * f64::from(w / 2)) as u32) as usize;
        assert!(
            (i32::from(cb[white_chroma]) - 128).abs() < 10,
            "white is grey in chroma"
        );
    }
    // Bad parameters: JSON errors naming them, before the camera is woken.
    for (q, says) in [
        ("format=png", "format=png"),
        ("width=0", "width"),
        ("size=3", "unknown parameter"),
    ] {
        let got = common::get(&hub.url(&format!("/api/cameras/cam/frame.raw?{q}"))).await;
        assert_eq!(got.status, 400, "{q}");
        assert!(
            got.json()["error"].as_str().unwrap().contains(says),
            "{q}: {}",
            got.text()
        );
    }
    let got = common::get(&hub.url("/api/cameras/nope/frame.raw")).await;
    assert_eq!(got.status, 404);
}
