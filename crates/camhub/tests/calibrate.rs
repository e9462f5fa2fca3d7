//! The calibration page (issue 7) in headless Chromium: the camera's untransformed picture
//! (`source.jpeg`), four clicks on its corners, and the config block the page writes: the corners
//! in picture pixels (after the camera's own rotation), the output size, the picture size. The
//! block is then checked by the config parser, as a user would paste it.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use camhub_testkit::{jpeg_size, Chromium};
use serde_json::json;

/// Clicks at picture pixel (x, y) of the page's source canvas.
async fn click(browser: &mut Chromium, x: f64, y: f64) {
    let at = browser
        .eval(&format!(
            "(() => {{ const c = document.getElementById('source'); const r = c.getBoundingClientRect(); \
             return [r.left + {x} * r.width / c.width, r.top + {y} * r.height / c.height]; }})()"
        ))
        .await;
    let (cx, cy) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
    for kind in ["mousePressed", "mouseReleased"] {
        browser
            .call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": cx, "y": cy, "button": "left", "clickCount": 1}),
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn four_clicks_make_the_config_block() {
    // A rotated camera that already has a crop: source.jpeg is its picture before either.
    let hub = common::start(
        "[[camera]]\nid = \"wall\"\nurl = \"demo:?width=640&height=360&fps=5\"\nrotate = 90\ncrop = [0, 0, 100, 100]\n",
    )
    .await;
    let shot = common::get(&hub.url("/api/cameras/wall/source.jpeg")).await;
    assert_eq!(shot.status, 200);
    assert_eq!(
        jpeg_size(&shot.body),
        Some((640, 360)),
        "the picture before rotate and crop"
    );
    let framed = common::get(&hub.url("/api/cameras/wall/frame.jpeg")).await;
    assert_eq!(jpeg_size(&framed.body), Some((100, 100)));

    let mut browser = Chromium::start().await;
    // A screen large enough to show the picture at its own size: a click is then exactly a pixel.
    browser
        .call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 1600, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
    browser.open(&hub.url("/cameras/wall/calibrate")).await;
    let ready = browser
        .wait_until(
            "window.camhub && window.camhub.calibrate.state.ready",
            Duration::from_secs(30),
        )
        .await;
    assert!(
        ready,
        "the picture never loaded; log:\n{}",
        hub.log_tail(20)
    );
    // Turned 90°, the picture is 360 wide and 640 high.
    let size = browser
        .eval("[document.getElementById('source').width, document.getElementById('source').height]")
        .await;
    assert_eq!(size, json!([360, 640]));
    // Top-left, bottom-left, bottom-right, top-right.
    for (x, y) in [(30.0, 40.0), (20.0, 600.0), (340.0, 620.0), (330.0, 60.0)] {
        click(&mut browser, x, y).await;
    }
    let block = browser
        .eval("document.getElementById('config').textContent")
        .await;
    let block = block.as_str().unwrap().to_owned();
    // Output size: the longer of each pair of opposite sides.
    let w = (320f64.hypot(20.0)).max(300f64.hypot(20.0)).round();
    let h = (560f64.hypot(10.0)).max(560f64.hypot(10.0)).round();
    assert_eq!(
        block,
        format!(
            "rotate = 90\nperspective = {{ corners = [[30, 40], [20, 600], [340, 620], [330, 60]], width = {w}, height = {h} }}\ntransform_size = [360, 640]"
        )
    );
    // The warped preview is drawn, and the block is a valid camera table.
    let warped = browser
        .eval("document.getElementById('warped').width")
        .await;
    assert!(warped.as_u64().unwrap() > 0);
    let toml = format!("[[camera]]\nid = \"wall\"\nurl = \"demo:\"\n{block}\n");
    let config = camhub_config::parse(&toml, "pasted").unwrap();
    let p = config.cameras[0].transform.perspective.unwrap();
    assert_eq!(
        p.corners,
        [[30.0, 40.0], [20.0, 600.0], [340.0, 620.0], [330.0, 60.0]]
    );
    // The output size can be typed in.
    browser
        .eval("(() => { const i = document.getElementById('out-width'); i.value = '400'; i.dispatchEvent(new Event('input')); })()")
        .await;
    let block = browser
        .eval("document.getElementById('config').textContent")
        .await;
    assert!(block.as_str().unwrap().contains("width = 400,"), "{block}");
}
