//! The web UI in headless Chromium, and the grid's WebSocket protocol (`/api/ws`) spoken directly.
//!
//! Browsers open at most 6 HTTP/1.1 connections per host, so a grid of more than 6 MJPEG `<img>`s cannot
//! all play; the grid page carries every camera over one WebSocket. These tests show 8 cameras playing.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use camhub_testkit::{decode_jpeg_rgb, jpeg_size, Chromium, KnownColor, COLOR_TOLERANCE};
use common::{camera, start};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// More cameras than a browser's 6 connections per host.
const CAMERAS: usize = 8;

/// `cam1`..`camN`, each a small demo pattern (cheap to draw and encode on a shared machine).
fn demo_cameras(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "[[camera]]\nid = \"cam{i}\"\nname = \"Camera {i}\"\n\
                 url = \"demo:?width=320&height=180&fps=10\"\n\n"
            )
        })
        .collect()
}

/// Saves a screenshot to `dir`; with `CAMHUB_TEST_ARTIFACTS=DIR` set, a copy is kept there to look at.
async fn screenshot(browser: &mut Chromium, dir: &Path, name: &str) {
    let path = dir.join(name);
    browser.screenshot(&path).await;
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 1000, "{}: only {size} bytes", path.display());
    if let Ok(keep) = std::env::var("CAMHUB_TEST_ARTIFACTS") {
        std::fs::create_dir_all(&keep).unwrap();
        let kept = Path::new(&keep).join(name);
        std::fs::copy(&path, &kept).unwrap();
        eprintln!("screenshot kept at {}", kept.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grid_plays_more_than_six_cameras_and_the_camera_page_streams() {
    let hub = start(&demo_cameras(CAMERAS)).await;
    let shots = tempfile::Builder::new()
        .prefix("camhub-ui-")
        .tempdir()
        .unwrap();
    let mut browser = Chromium::start().await;
    browser.open(&hub.url("/")).await;

    let tiles_ready = format!(
        "(() => {{ const t = window.camhub && window.camhub.tiles(); if (!t) return false; \
         const v = Object.values(t); \
         return v.length === {CAMERAS} && v.every(x => x.loaded && x.frames > 0); }})()"
    );
    let ready = browser
        .wait_until(&tiles_ready, Duration::from_secs(45))
        .await;
    assert!(
        ready,
        "not every tile shows a picture: {}\nlog:\n{}",
        browser.eval("window.camhub && window.camhub.tiles()").await,
        hub.log_tail(30)
    );
    let dom_tiles = browser
        .eval("document.querySelectorAll('#grid [data-camera]').length")
        .await;
    assert_eq!(dom_tiles, CAMERAS, "one tile per camera");

    // Every tile keeps changing: frames shown and sequence numbers both advance.
    let first = browser.eval("window.camhub.tiles()").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = browser.eval("window.camhub.tiles()").await;
    for i in 1..=CAMERAS {
        let id = format!("cam{i}");
        let (a, b) = (&first[&id], &second[&id]);
        assert!(
            b["frames"].as_u64() > a["frames"].as_u64(),
            "{id} did not change in 3 s: {a} -> {b}\nall: {second}"
        );
        assert!(
            b["seq"].as_u64() > a["seq"].as_u64(),
            "{id}: seq {a} -> {b}"
        );
        assert_eq!(b["loaded"], true, "{id}: {b}");
        // The DOM hooks agree with window.camhub.
        let frames = browser
            .eval(&format!(
                "Number(document.querySelector('[data-camera=\"{id}\"]').dataset.frames)"
            ))
            .await;
        assert!(frames.as_u64() >= b["frames"].as_u64(), "{id}: {frames}");
    }
    // One WebSocket subscription per camera, not one connection each.
    for i in 1..=CAMERAS {
        let api = camera(&hub, &format!("cam{i}")).await;
        assert_eq!(api["state"], "streaming", "{api}");
        assert_eq!(api["viewers"], 1, "{api}");
    }
    let linked = browser.eval("window.camhub.connected()").await;
    assert_eq!(linked, true);
    screenshot(&mut browser, shots.path(), "grid.png").await;

    // One camera's page: the MJPEG stream plays and the status panel says so.
    browser.open(&hub.url("/cameras/cam1")).await;
    let streaming = browser
        .wait_until(
            "document.getElementById('stream').naturalWidth > 0 && \
             document.querySelector('#status dd[data-field=\"state\"]').textContent.trim() \
             === 'streaming'",
            Duration::from_secs(30),
        )
        .await;
    assert!(
        streaming,
        "stream {} wide, state {:?}\nlog:\n{}",
        browser
            .eval("document.getElementById('stream').naturalWidth")
            .await,
        browser
            .eval("document.querySelector('#status dd[data-field=\"state\"]').textContent")
            .await,
        hub.log_tail(30)
    );
    let width = browser
        .eval("document.getElementById('stream').naturalWidth")
        .await;
    assert_eq!(width, 320, "the native size by default");
    // The page's stream is the camera's one viewer (the grid's WebSocket closed when we left it), and
    // the status panel, refreshed every 2 s, catches up with that.
    let one_viewer = browser
        .wait_until(
            "document.querySelector('#status dd[data-field=\"viewers\"]').textContent.trim() === '1'",
            Duration::from_secs(10),
        )
        .await;
    assert!(
        one_viewer,
        "status panel viewers {:?}; API: {}",
        browser
            .eval("document.querySelector('#status dd[data-field=\"viewers\"]').textContent")
            .await,
        camera(&hub, "cam1").await
    );
    assert_eq!(camera(&hub, "cam1").await["viewers"], 1);
    screenshot(&mut browser, shots.path(), "camera.png").await;
}

/// The next WebSocket message within `timeout`.
async fn next_message<S>(ws: &mut S, timeout: Duration) -> Message
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    match tokio::time::timeout(timeout, ws.next()).await {
        Ok(Some(Ok(m))) => m,
        Ok(Some(Err(e))) => panic!("WebSocket error: {e}"),
        Ok(None) => panic!("the server closed the WebSocket"),
        Err(_) => panic!("no WebSocket message within {timeout:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grid_websocket_protocol_works_without_a_browser() {
    let hub = start(&demo_cameras(2)).await;
    let url = format!("ws://127.0.0.1:{}/api/ws", hub.port());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let connected = Instant::now();
    let subscribe = json!({"subscribe": [{"camera": "cam1", "width": 160}, {"camera": "nope"}]});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();

    let mut status: Option<Value> = None;
    let mut motion: Option<Value> = None;
    let mut error: Option<Value> = None;
    let mut header: Option<Value> = None;
    let mut heartbeats: Vec<Duration> = Vec::new();
    let mut seqs: Vec<u64> = Vec::new();
    let mut jpegs: Vec<Vec<u8>> = Vec::new();
    // Long enough for two heartbeat periods (5 s) after the one sent on connect.
    while connected.elapsed() < Duration::from_secs(12) {
        match next_message(&mut ws, Duration::from_secs(6)).await {
            Message::Text(text) => {
                let msg: Value = serde_json::from_str(text.as_str()).unwrap();
                assert!(
                    header.is_none(),
                    "{msg} came between a frame header and its JPEG ({header:?})"
                );
                match msg["type"].as_str() {
                    Some("status") => {
                        assert_eq!(msg["camera"], "cam1", "{msg}");
                        assert!(msg["state"].is_string(), "{msg}");
                        status.get_or_insert(msg);
                    }
                    Some("error") => {
                        assert!(error.is_none(), "a second error: {msg}");
                        error = Some(msg);
                    }
                    Some("heartbeat") => {
                        assert!(msg["ts"].as_u64().is_some(), "{msg}");
                        heartbeats.push(connected.elapsed());
                    }
                    // Once at subscription: no motion detection on a demo camera, nothing moving.
                    Some("motion") => {
                        assert_eq!(msg["camera"], "cam1", "{msg}");
                        assert_eq!(msg["active"], false, "{msg}");
                        assert!(motion.is_none(), "a second motion message: {msg}");
                        motion = Some(msg);
                    }
                    Some("frame") => {
                        assert!(
                            status.is_some() && motion.is_some(),
                            "a frame before cam1's status and motion messages: {msg}"
                        );
                        assert_eq!(msg["camera"], "cam1", "{msg}");
                        header = Some(msg);
                    }
                    _ => panic!("unexpected message {msg}"),
                }
            }
            Message::Binary(data) => {
                let h = header
                    .take()
                    .unwrap_or_else(|| panic!("a binary message without a frame header"));
                assert_eq!(h["size"].as_u64(), Some(data.len() as u64), "{h}");
                assert_eq!(jpeg_size(&data), Some((160, 90)), "{h}");
                assert_eq!(
                    (h["width"].as_u64(), h["height"].as_u64()),
                    (Some(160), Some(90))
                );
                let seq = h["seq"].as_u64().unwrap();
                if let Some(last) = seqs.last() {
                    assert!(seq > *last, "seq went from {last} to {seq}");
                }
                seqs.push(seq);
                jpegs.push(data.to_vec());
            }
            Message::Close(c) => panic!("the server closed the WebSocket: {c:?}"),
            _ => {}
        }
    }

    let status = status.expect("a status message for cam1");
    let error = error.expect("an error message for the unknown camera");
    assert_eq!(error["camera"], "nope", "{error}");
    assert!(
        error["error"].as_str().unwrap_or("").contains("nope"),
        "{error}"
    );
    // The demo camera runs at 10 fps; over ~12 s nearly all of them arrive.
    assert!(
        seqs.len() >= 50,
        "only {} frames: {seqs:?}; status {status}\nlog:\n{}",
        seqs.len(),
        hub.log_tail(20)
    );
    // Heartbeats: the first soon after connecting, then every 5 s.
    assert!(heartbeats.len() >= 2, "heartbeats at {heartbeats:?}");
    let mut previous = Duration::ZERO;
    for at in &heartbeats {
        assert!(
            *at - previous <= Duration::from_secs(6),
            "heartbeats at {heartbeats:?}"
        );
        previous = *at;
    }
    // The JPEGs are real pictures and the picture moves.
    let (w, h, _) = decode_jpeg_rgb(&jpegs[0]);
    assert_eq!((w, h), (160, 90));
    let (w, h, _) = decode_jpeg_rgb(jpegs.last().unwrap());
    assert_eq!((w, h), (160, 90));
    assert_ne!(jpegs.first(), jpegs.last(), "the picture never changed");
    eprintln!(
        "{} frames (seq {}..{}), heartbeats at {heartbeats:?}",
        seqs.len(),
        seqs[0],
        seqs[seqs.len() - 1]
    );
}

/// The demo pattern's eight colour bars, left to right, as full-range RGB (`BAR_RGB` in
/// crates/media/src/draw.rs); they fill the top two thirds of the picture.
const DEMO_BARS: [(&str, (u8, u8, u8)); 8] = [
    ("white bar", (255, 255, 255)),
    ("yellow bar", (255, 255, 0)),
    ("cyan bar", (0, 255, 255)),
    ("green bar", (0, 255, 0)),
    ("magenta bar", (255, 0, 255)),
    ("red bar", (255, 0, 0)),
    ("blue bar", (0, 0, 255)),
    ("black bar", (0, 0, 0)),
];
/// Screenshots taken, and the pause between them: several seconds of a live page.
const BLINK_SHOTS: usize = 15;
const BLINK_PAUSE: Duration = Duration::from_millis(300);
/// How many times a page is loaded to look at its first frames.
const FIRST_FRAME_LOADS: usize = 5;

/// Where the pictures of the elements matching `selector` are on the page, in device pixels: the
/// element's box narrowed to its `object-fit: contain` picture. One `{name, x, y, w, h}` per element.
async fn picture_rects(browser: &mut Chromium, selector: &str) -> Vec<Value> {
    let js = format!(
        "(() => {{ const dpr = window.devicePixelRatio || 1; \
         return Array.from(document.querySelectorAll({selector:?})).map(e => {{ \
           const r = e.getBoundingClientRect(); \
           const nw = e.tagName === 'CANVAS' ? e.width : e.naturalWidth; \
           const nh = e.tagName === 'CANVAS' ? e.height : e.naturalHeight; \
           let w = r.width, h = r.height; \
           if (nw > 0 && nh > 0) {{ const s = Math.min(r.width / nw, r.height / nh); w = nw * s; h = nh * s; }} \
           const owner = e.closest('[data-camera]'); \
           return {{ name: owner ? owner.dataset.camera : e.id, x: (r.x + (r.width - w) / 2) * dpr, \
                    y: (r.y + (r.height - h) / 2) * dpr, w: w * dpr, h: h * dpr }}; }}); }})()"
    );
    let rects = browser.eval(&js).await;
    rects.as_array().cloned().unwrap_or_default()
}

/// What is wrong with one screenshot: every picture in `rects` (from [`picture_rects`]) must show
/// the demo pattern's eight bars; a picture that is black, grey, half drawn or missing does not.
fn wrong_pictures(shot: &[u8], rects: &[Value]) -> Vec<String> {
    let (width, height, rgb) = decode_jpeg_rgb(shot);
    let mut wrong = Vec::new();
    for rect in rects {
        let f = |k: &str| rect[k].as_f64().unwrap();
        let (x, y, w, h) = (f("x"), f("y"), f("w"), f("h"));
        let mut bad_bars = Vec::new();
        // Bar centres, a third of the way down: far from bar edges and from the moving box.
        for (i, (name, colour)) in DEMO_BARS.iter().enumerate() {
            let px = x + w * (i as f64 + 0.5) / 8.0;
            let py = y + h / 3.0;
            assert!(
                px < f64::from(width) && py < f64::from(height),
                "{} is outside the {width}x{height} screenshot: {rect}",
                rect["name"]
            );
            let point = KnownColor {
                name,
                x: px / f64::from(width),
                y: py / f64::from(height),
                rgb: *colour,
            };
            if let Err(e) = point.check(&rgb, width, height, COLOR_TOLERANCE) {
                bad_bars.push(e);
            }
        }
        if let Some(first) = bad_bars.first() {
            wrong.push(format!(
                "{}: {} of 8 bars wrong, first {first}",
                rect["name"],
                bad_bars.len()
            ));
        }
    }
    wrong
}

/// Keeps a screenshot that showed a problem in `CAMHUB_TEST_ARTIFACTS`, when that is set.
fn keep_wrong_shot(shot: &[u8], name: &str) {
    if let Ok(dir) = std::env::var("CAMHUB_TEST_ARTIFACTS") {
        std::fs::create_dir_all(&dir).unwrap();
        let path = Path::new(&dir).join(name);
        std::fs::write(&path, shot).unwrap();
        eprintln!("wrong screenshot kept at {}", path.display());
    }
}

/// Takes [`BLINK_SHOTS`] screenshots [`BLINK_PAUSE`] apart and checks each with [`wrong_pictures`].
/// Returns the problems found (empty when every shot was right).
async fn blank_pictures(browser: &mut Chromium, rects: &[Value], artifacts: &str) -> Vec<String> {
    let mut shots = Vec::new();
    for _ in 0..BLINK_SHOTS {
        shots.push(browser.screenshot_jpeg().await);
        tokio::time::sleep(BLINK_PAUSE).await;
    }
    let mut problems = Vec::new();
    for (n, shot) in shots.iter().enumerate() {
        let wrong = wrong_pictures(shot, rects);
        if !wrong.is_empty() {
            problems.push(format!("screenshot {n}: {}", wrong.join("; ")));
            keep_wrong_shot(shot, &format!("{artifacts}-{n}.jpg"));
        }
    }
    problems
}

/// Loads `url` [`FIRST_FRAME_LOADS`] times and, each time, takes a screenshot the moment `shown` (a
/// JavaScript expression) says the page shows its first frames: from then on the picture must be on
/// screen, not a black box still waiting for its decode. Returns the problems found.
async fn first_frames_blank(
    browser: &mut Chromium,
    url: &str,
    shown: &str,
    selector: &str,
    artifacts: &str,
) -> Vec<String> {
    // Polls inside the page (every task, not every 100 ms over DevTools), so the screenshot follows
    // the first frame closely; false after 30 s.
    let wait = format!(
        "new Promise(done => {{ const until = Date.now() + 30000; \
         const poll = () => {{ let ok = false; try {{ ok = ({shown}); }} catch (e) {{}} \
           if (ok) done(true); else if (Date.now() > until) done(false); else setTimeout(poll, 0); }}; \
         poll(); }})"
    );
    let mut problems = Vec::new();
    for n in 0..FIRST_FRAME_LOADS {
        browser.open(url).await;
        let ready = browser.eval(&wait).await;
        assert_eq!(ready, true, "{url} showed no frame within 30 s");
        let shot = browser.screenshot_jpeg().await;
        let rects = picture_rects(browser, selector).await;
        let wrong = wrong_pictures(&shot, &rects);
        if !wrong.is_empty() {
            problems.push(format!("load {n}, first frame: {}", wrong.join("; ")));
            keep_wrong_shot(&shot, &format!("{artifacts}-first-{n}.jpg"));
        }
    }
    problems
}

/// Issue 5, part 2 item 11: a tile never shows a blank or half-loaded image between frames. The
/// grid as a new user first sees it: the built-in demo camera (1280×720 at 25 fps) in one tile as
/// wide as the window. (Swapping an `<img>`'s src showed that tile black in most screenshots, at its
/// first frame and while playing; smaller tiles blinked less often.)
#[tokio::test(flavor = "multi_thread")]
async fn the_grid_never_blinks() {
    let config = "[[camera]]\nid = \"demo\"\nname = \"Demo camera\"\nurl = \"demo:\"\n";
    let hub = start(config).await;
    let mut browser = Chromium::start().await;
    let url = hub.url("/");
    // The moment a new user opens the page: every tile says it shows a frame.
    let first_frames = "(() => { const t = window.camhub && window.camhub.tiles(); \
         const v = t ? Object.values(t) : []; return v.length > 0 && v.every(x => x.frames > 0); })()";
    let mut problems =
        first_frames_blank(&mut browser, &url, first_frames, "#grid .tile-img", "grid").await;

    // Then, while the grid plays, at any moment.
    let playing = "(() => { const t = window.camhub && window.camhub.tiles(); if (!t) return false; \
         const v = Object.values(t); return v.length === 1 && v.every(x => x.loaded && x.frames > 10); })()";
    let ready = browser.wait_until(playing, Duration::from_secs(45)).await;
    assert!(
        ready,
        "the grid does not play: {}\nlog:\n{}",
        browser.eval("window.camhub && window.camhub.tiles()").await,
        hub.log_tail(30)
    );
    let rects = picture_rects(&mut browser, "#grid .tile-img").await;
    assert_eq!(rects.len(), 1, "one tile, one picture: {rects:?}");
    let frames_before = browser.eval("window.camhub.tiles()").await;

    problems.extend(blank_pictures(&mut browser, &rects, "grid").await);

    // The tile was live all along (a frozen picture would pass the colour check trivially).
    let frames_after = browser.eval("window.camhub.tiles()").await;
    assert!(
        frames_after["demo"]["frames"].as_u64() > frames_before["demo"]["frames"].as_u64(),
        "the tile stopped: {} -> {}",
        frames_before["demo"],
        frames_after["demo"]
    );
    assert!(
        problems.is_empty(),
        "{} of {} screenshots of the grid show a tile that is not the camera's picture:\n{}",
        problems.len(),
        FIRST_FRAME_LOADS + BLINK_SHOTS,
        problems.join("\n")
    );
}

/// The single-camera page shows every frame of its MJPEG stream without a blank in between too.
#[tokio::test(flavor = "multi_thread")]
async fn the_camera_page_never_blinks() {
    let hub = start("[[camera]]\nid = \"demo\"\nurl = \"demo:\"\n").await;
    let mut browser = Chromium::start().await;
    let url = hub.url("/cameras/demo");
    let first_frame = "document.getElementById('stream').naturalWidth > 0";
    let mut problems =
        first_frames_blank(&mut browser, &url, first_frame, "#stream", "camera").await;
    // Let the status panel settle the layout, then watch the stream play.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rects = picture_rects(&mut browser, "#stream").await;
    assert_eq!(rects.len(), 1, "{rects:?}");
    problems.extend(blank_pictures(&mut browser, &rects, "camera").await);
    assert!(
        problems.is_empty(),
        "{} of {} screenshots of the camera page do not show the picture:\n{}",
        problems.len(),
        FIRST_FRAME_LOADS + BLINK_SHOTS,
        problems.join("\n")
    );
}

/// With users configured, the browser is sent to the login page, logs in through the form (CSP
/// on: every script of the UI is an external file), sees only the cameras the user may watch,
/// and logs out again.
#[tokio::test(flavor = "multi_thread")]
async fn login_page_grid_for_a_restricted_viewer_and_logout() {
    let hash = camhub::auth::hash_password("pw for ui").unwrap();
    let config = format!(
        "{}[[user]]\nname = \"viewer\"\npassword_hash = \"{hash}\"\ncameras = [\"cam1\"]\n",
        demo_cameras(2)
    );
    let hub = start(&config).await;
    let mut browser = Chromium::start().await;
    browser.open(&hub.url("/")).await;
    assert!(
        browser
            .wait_until("location.pathname === '/login'", Duration::from_secs(15))
            .await,
        "not sent to the login page: {}",
        browser.eval("location.href").await
    );
    browser
        .eval(
            "document.getElementById('name').value = 'viewer'; \
             document.getElementById('password').value = 'pw for ui'; \
             document.getElementById('login').submit(); true",
        )
        .await;
    let shows_cam1 =
        "(() => { const t = window.camhub && window.camhub.tiles && window.camhub.tiles(); \
         return location.pathname === '/' && !!t && !!t.cam1 && t.cam1.loaded && !t.cam2; })()";
    assert!(
        browser
            .wait_until(shows_cam1, Duration::from_secs(45))
            .await,
        "the grid did not show cam1 alone: {} at {}\nlog:\n{}",
        browser
            .eval("window.camhub && window.camhub.tiles && window.camhub.tiles()")
            .await,
        browser
            .eval("location.href + ' ' + document.body.innerText")
            .await,
        hub.log_tail(20)
    );
    assert!(
        browser
            .wait_until(
                "(document.querySelector('.session-user') || {}).textContent === 'viewer'",
                Duration::from_secs(10)
            )
            .await
    );
    browser
        .eval("document.querySelector('.session-logout').click(); true")
        .await;
    assert!(
        browser
            .wait_until("location.pathname === '/login'", Duration::from_secs(15))
            .await
    );
    assert!(
        hub.log().contains("logged out user=viewer"),
        "{}",
        hub.log_tail(10)
    );
    // The login page stays (it leaves only for a live session).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(browser.eval("location.pathname").await, "/login");
    let status = browser
        .eval("fetch('/api/session').then(r => r.status)")
        .await;
    assert_eq!(status, 401, "the session outlived the logout");
}

/// An admin makes an API token on the settings page, a program uses it, and the admin revokes it
/// there.
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_makes_and_revokes_a_token_in_the_settings_page() {
    let hash = camhub::auth::hash_password("admin pw").unwrap();
    let config = format!(
        "{}[[user]]\nname = \"boss\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n",
        demo_cameras(2)
    );
    let hub = start(&config).await;
    let mut browser = Chromium::start().await;
    browser.open(&hub.url("/login?next=%2Fsettings")).await;
    browser
        .eval(
            "document.getElementById('name').value = 'boss'; \
             document.getElementById('password').value = 'admin pw'; \
             document.getElementById('login').submit(); true",
        )
        .await;
    let form_ready = "(() => { const s = document.getElementById('tokens-section'); \
         return location.pathname === '/settings' && !!s && !s.hidden && \
         document.querySelectorAll('#token-cameras input').length === 2; })()";
    assert!(
        browser
            .wait_until(form_ready, Duration::from_secs(20))
            .await,
        "{}",
        browser
            .eval("location.href + ' ' + document.body.innerText")
            .await
    );
    browser
        .eval(
            "document.getElementById('token-name').value = 'script'; \
             document.querySelector('#token-cameras input[value=\"cam2\"]').checked = true; \
             document.getElementById('token-form').requestSubmit(); true",
        )
        .await;
    assert!(
        browser
            .wait_until(
                "document.getElementById('token-secret').textContent.startsWith('chb_') && \
                 document.querySelectorAll('#tokens tr').length === 1",
                Duration::from_secs(10)
            )
            .await,
        "{}",
        browser.eval("document.body.innerText").await
    );
    let token = browser
        .eval("document.getElementById('token-secret').textContent")
        .await;
    let token = token.as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let snap = |id: &str| {
        http.get(hub.url(&format!("/api/cameras/{id}/frame.jpeg?token={token}")))
            .send()
    };
    assert_eq!(snap("cam2").await.unwrap().status(), 200);
    assert_eq!(snap("cam1").await.unwrap().status(), 403);
    browser
        .eval("document.querySelector('#tokens button').click(); true")
        .await;
    assert!(
        browser
            .wait_until(
                "document.querySelectorAll('#tokens tr.token-gone').length === 1",
                Duration::from_secs(10)
            )
            .await
    );
    assert_eq!(snap("cam2").await.unwrap().status(), 401);
}

/// Logs `user` in through the login page, which then sends the browser to `next`.
async fn log_in(browser: &mut Chromium, hub: &camhub_testkit::Camhub, next: &str, pw: &str) {
    browser.open(&hub.url(&format!("/login?next={next}"))).await;
    browser
        .eval(&format!(
            "document.getElementById('name').value = 'boss'; \
             document.getElementById('password').value = '{pw}'; \
             document.getElementById('login').submit(); true"
        ))
        .await;
}

/// Waits for `js` to be true, or fails with `what`, the page's text and the log's tail.
async fn expect_page(
    browser: &mut Chromium,
    hub: &camhub_testkit::Camhub,
    js: &str,
    timeout: Duration,
    what: &str,
) {
    // A page still loading may lack an element yet: that is "not yet", not a failure.
    let check =
        format!("(() => {{ try {{ return ({js}) === true; }} catch (e) {{ return false; }} }})()");
    if !browser.wait_until(&check, timeout).await {
        panic!(
            "{what}: `{js}` is not true after {timeout:?}\npage {}:\n{}\nlog:\n{}",
            browser.eval("location.href").await,
            browser.eval("document.body.innerText").await,
            hub.log_tail(30)
        );
    }
}

/// Sets form fields by id (values are JSON strings or booleans for checkboxes) and tells the form.
async fn fill(browser: &mut Chromium, fields: &[(&str, Value)]) {
    let mut js = String::new();
    for (id, value) in fields {
        let prop = if value.is_boolean() {
            "checked"
        } else {
            "value"
        };
        js.push_str(&format!(
            "document.getElementById('{id}').{prop} = {value}; \
             document.getElementById('{id}').dispatchEvent(new Event('input', {{bubbles: true}})); "
        ));
    }
    js.push_str("true");
    browser.eval(&js).await;
}

/// The file's text.
fn config_text(hub: &camhub_testkit::Camhub) -> String {
    std::fs::read_to_string(hub.config_path()).unwrap()
}

/// An admin adds a camera on the settings page, tests its connection (the picture's size shows),
/// saves it and sees it on the grid; renames it; disables it (it leaves the grid, stays in the
/// file); deletes it (it leaves the file).
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_adds_edits_disables_and_deletes_a_camera_in_the_settings_page() {
    let hash = camhub::auth::hash_password("admin pw").unwrap();
    let config = format!(
        "# The UI test's cameras\n{}[[user]]\nname = \"boss\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n",
        demo_cameras(1)
    );
    let hub = start(&config).await;
    let mut browser = Chromium::start().await;
    log_in(&mut browser, &hub, "settings", "admin pw").await;
    expect_page(
        &mut browser,
        &hub,
        "location.pathname === '/settings' && !document.getElementById('cameras-section').hidden && \
         !!document.querySelector('#camera-list tr[data-camera=\"cam1\"]')",
        Duration::from_secs(20),
        "the settings page lists the file's cameras",
    )
    .await;

    // Add a camera: test its connection first.
    browser
        .eval("document.getElementById('camera-add').click(); true")
        .await;
    fill(
        &mut browser,
        &[
            ("cf-id", json!("garage")),
            ("cf-name", json!("Garage")),
            ("cf-url", json!("demo:?width=320&height=180&fps=5")),
        ],
    )
    .await;
    browser
        .eval("document.getElementById('cf-test').click(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "document.getElementById('cf-test-result').dataset.ok === 'true' && \
         document.getElementById('cf-test-result').textContent.includes('320×180')",
        Duration::from_secs(30),
        "test connection shows the picture's size",
    )
    .await;
    let shots = tempfile::Builder::new()
        .prefix("camhub-ui-")
        .tempdir()
        .unwrap();
    screenshot(&mut browser, shots.path(), "settings-camera-form.png").await;
    browser
        .eval("document.getElementById('camera-form').requestSubmit(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "document.getElementById('camera-form').hidden && \
         document.getElementById('camera-result').textContent.includes('added: garage') && \
         !!document.querySelector('#camera-list tr[data-camera=\"garage\"]')",
        Duration::from_secs(20),
        "the new camera is saved and listed",
    )
    .await;
    let text = config_text(&hub);
    assert!(
        text.starts_with("# The UI test's cameras\n") && text.contains("id = \"garage\""),
        "{text}"
    );
    // The list shows it running once someone watches: the grid.
    browser.open(&hub.url("/")).await;
    expect_page(
        &mut browser,
        &hub,
        "(() => { const t = window.camhub && window.camhub.tiles && window.camhub.tiles(); \
         return !!t && !!t.garage && t.garage.loaded && !!t.cam1; })()",
        Duration::from_secs(45),
        "the grid shows the new camera",
    )
    .await;

    // Rename it.
    browser.open(&hub.url("/settings")).await;
    expect_page(
        &mut browser,
        &hub,
        "!!document.querySelector('#camera-list tr[data-camera=\"garage\"] .camera-edit')",
        Duration::from_secs(20),
        "the settings page again",
    )
    .await;
    browser
        .eval(
            "document.querySelector('#camera-list tr[data-camera=\"garage\"] .camera-edit').click(); \
             true",
        )
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('cf-url').value")
            .await,
        "demo:?width=320&height=180&fps=5"
    );
    fill(&mut browser, &[("cf-name", json!("Garage door"))]).await;
    browser
        .eval("document.getElementById('camera-form').requestSubmit(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "document.getElementById('camera-result').textContent.includes('restarted: garage') && \
         document.querySelector('#camera-list tr[data-camera=\"garage\"]').textContent.includes('Garage door')",
        Duration::from_secs(20),
        "the renamed camera is saved",
    )
    .await;
    assert!(config_text(&hub).contains("name = \"Garage door\""));
    let listed = browser
        .eval("fetch('api/cameras/garage').then(r => r.json())")
        .await;
    assert_eq!(listed["name"], "Garage door", "{listed}");

    // Disable it: it stays in the file, out of service.
    browser
        .eval(
            "document.querySelector('#camera-list tr[data-camera=\"garage\"] .camera-toggle').click(); \
             true",
        )
        .await;
    expect_page(
        &mut browser,
        &hub,
        "document.querySelector('#camera-list tr[data-camera=\"garage\"]').dataset.enabled === 'false' && \
         document.getElementById('camera-result').textContent.includes('removed: garage')",
        Duration::from_secs(20),
        "the camera is disabled",
    )
    .await;
    screenshot(&mut browser, shots.path(), "settings-cameras.png").await;
    let text = config_text(&hub);
    assert!(
        text.contains("id = \"garage\"") && text.contains("enabled = false"),
        "{text}"
    );
    browser.open(&hub.url("/")).await;
    expect_page(
        &mut browser,
        &hub,
        "(() => { const t = window.camhub && window.camhub.tiles && window.camhub.tiles(); \
         return !!t && !t.garage && !!t.cam1 && t.cam1.loaded; })()",
        Duration::from_secs(45),
        "the disabled camera left the grid",
    )
    .await;

    // Delete it, confirming on the page.
    browser.open(&hub.url("/settings")).await;
    expect_page(
        &mut browser,
        &hub,
        "!!document.querySelector('#camera-list tr[data-camera=\"garage\"] .camera-delete')",
        Duration::from_secs(20),
        "the settings page again",
    )
    .await;
    browser
        .eval(
            "document.querySelector('#camera-list tr[data-camera=\"garage\"] .camera-delete').click(); \
             true",
        )
        .await;
    // Nothing happens before the confirmation.
    assert!(config_text(&hub).contains("id = \"garage\""));
    browser
        .eval(
            "document.querySelector('#camera-list tr[data-camera=\"garage\"] .camera-delete-confirm').click(); \
             true",
        )
        .await;
    expect_page(
        &mut browser,
        &hub,
        "!document.querySelector('#camera-list tr[data-camera=\"garage\"]') && \
         !!document.querySelector('#camera-list tr[data-camera=\"cam1\"]') && \
         document.getElementById('camera-result').textContent.includes('Deleted')",
        Duration::from_secs(20),
        "the camera is deleted",
    )
    .await;
    let text = config_text(&hub);
    assert!(
        !text.contains("garage") && text.contains("id = \"cam1\""),
        "{text}"
    );
}

/// Without login (every local user is an admin): a camera with a password is edited through the
/// form that shows it as ***; "test connection" says why it fails; a bad value is refused with
/// the file's line and leaves the file alone; fixed, it is saved with the password kept. The
/// password never reaches the page.
#[tokio::test(flavor = "multi_thread")]
async fn the_camera_form_shows_errors_with_lines_and_keeps_a_masked_password() {
    let config = "# Cameras\n[[camera]]\nid = \"door\"\nname = \"Front door\"\n\
                  url = \"rtsp://admin:s3cret@127.0.0.1:9/Streaming/Channels/101\"   # unplugged\n\
                  enabled = false\n";
    let hub = start(config).await;
    let mut browser = Chromium::start().await;
    // The grid links to the settings page for admins.
    browser.open(&hub.url("/")).await;
    expect_page(
        &mut browser,
        &hub,
        "!!document.querySelector('.session-settings')",
        Duration::from_secs(20),
        "the grid links to the settings page",
    )
    .await;
    browser
        .eval("document.querySelector('.session-settings').click(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "location.pathname === '/settings' && \
         !!document.querySelector('#camera-list tr[data-camera=\"door\"] .camera-edit')",
        Duration::from_secs(20),
        "the settings page lists the door camera",
    )
    .await;
    browser
        .eval(
            "document.querySelector('#camera-list tr[data-camera=\"door\"] .camera-edit').click(); \
             true",
        )
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('cf-url').value")
            .await,
        "rtsp://***:***@127.0.0.1:9/Streaming/Channels/101"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('cf-enabled').checked")
            .await,
        false
    );
    let note = browser
        .eval("document.getElementById('cf-url-note').textContent")
        .await;
    assert!(
        note.as_str().unwrap().contains("leave them to keep"),
        "{note}"
    );

    // Test connection with the stored password: nothing listens on port 9.
    browser
        .eval("document.getElementById('cf-test').click(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "document.getElementById('cf-test-result').dataset.ok === 'false' && \
         document.getElementById('cf-test-result').textContent.includes('refused')",
        Duration::from_secs(30),
        "test connection says the connection was refused",
    )
    .await;

    // A bad value: refused with the file's line, the file stays as it was.
    let before = config_text(&hub);
    browser
        .eval("document.getElementById('cf-advanced').open = true; true")
        .await;
    fill(&mut browser, &[("cf-idle_timeout", json!("30 sex"))]).await;
    browser
        .eval("document.getElementById('camera-form').requestSubmit(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "!document.getElementById('cf-problem').hidden && \
         /camhub\\.toml:\\d+:\\d+: camera\\[0\\]\\.idle_timeout: invalid duration \"30 sex\"/\
         .test(document.getElementById('cf-problem-list').textContent)",
        Duration::from_secs(20),
        "the error with its line is shown next to the form",
    )
    .await;
    let shots = tempfile::Builder::new()
        .prefix("camhub-ui-")
        .tempdir()
        .unwrap();
    screenshot(&mut browser, shots.path(), "settings-camera-error.png").await;
    assert!(
        !browser
            .eval("document.getElementById('camera-form').hidden")
            .await
            .as_bool()
            .unwrap(),
        "the form stays open to fix"
    );
    assert_eq!(config_text(&hub), before, "the file changed");

    // Fixed, and the camera put in service: saved with the stored password and the comment.
    fill(
        &mut browser,
        &[
            ("cf-idle_timeout", json!("1m")),
            ("cf-enabled", json!(true)),
        ],
    )
    .await;
    browser
        .eval("document.getElementById('camera-form').requestSubmit(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "document.getElementById('camera-form').hidden && \
         document.getElementById('camera-result').textContent.includes('added: door') && \
         document.querySelector('#camera-list tr[data-camera=\"door\"]').dataset.enabled === 'true'",
        Duration::from_secs(20),
        "the fixed camera is saved and in service",
    )
    .await;
    let text = config_text(&hub);
    assert!(
        text.contains(
            "url = \"rtsp://admin:s3cret@127.0.0.1:9/Streaming/Channels/101\"   # unplugged"
        ) && text.contains("idle_timeout = \"1m\"")
            && !text.contains("enabled"),
        "{text}"
    );
    // The password never reached the page.
    let seen = browser
        .eval(
            "document.documentElement.outerHTML + [...document.querySelectorAll('input')]\
             .map(i => i.value).join(' ')",
        )
        .await;
    assert!(!seen.as_str().unwrap().contains("s3cret"));

    // A new camera cannot borrow a hidden password: a URL copied with its *** is refused.
    let before = config_text(&hub);
    browser
        .eval("document.getElementById('camera-add').click(); true")
        .await;
    fill(
        &mut browser,
        &[
            ("cf-id", json!("copy")),
            (
                "cf-url",
                json!("rtsp://***:***@127.0.0.1:9/Streaming/Channels/101"),
            ),
        ],
    )
    .await;
    browser
        .eval("document.getElementById('camera-form').requestSubmit(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "!document.getElementById('cf-problem').hidden && \
         document.getElementById('cf-problem-text').textContent.includes('***')",
        Duration::from_secs(10),
        "a masked URL for a new camera is refused",
    )
    .await;
    assert_eq!(config_text(&hub), before);
}

/// Every URL of the UI is relative to the pages' `<base href="/">` (which camhub rewrites when it
/// is served under a prefix): no root-relative `href`, `src` or `action`, and the scripts ask no
/// root-relative API path.
#[test]
fn the_ui_names_no_root_relative_url() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&web).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if name.ends_with(".html") {
            let head = text.split("</head>").next().unwrap();
            if !head.contains("<base href=\"/\">") {
                problems.push(format!("{name}: no <base href=\"/\"> in <head>"));
            }
        }
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let bad = ["href=\"/", "src=\"/", "action=\"/"]
                .iter()
                .any(|p| line.contains(p) && !line.contains("<base href=\"/\">"))
                || (name.ends_with(".js")
                    && ["'/api", "'/cameras", "'/login", "'/settings", "\"/api"]
                        .iter()
                        .any(|p| code.contains(p)));
            if bad {
                problems.push(format!("{name}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Under `[server] base_path` (behind a reverse proxy): the grid plays over its WebSocket, a tile
/// opens the camera page, which streams, and its back link returns to the grid; the settings page
/// adds a camera.
#[tokio::test(flavor = "multi_thread")]
async fn the_ui_works_under_a_path_prefix() {
    let config = format!("[server]\nbase_path = \"/camhub\"\n\n{}", demo_cameras(2));
    let hub = start(&config).await;
    let mut browser = Chromium::start().await;
    browser.open(&hub.url("/camhub/")).await;
    let grid = "(() => { const t = window.camhub && window.camhub.tiles && window.camhub.tiles(); \
                return location.pathname.startsWith('/camhub') && !!t && !!t.cam1 && t.cam1.loaded && \
                !!t.cam2 && t.cam2.loaded; })()";
    expect_page(
        &mut browser,
        &hub,
        grid,
        Duration::from_secs(45),
        "the grid plays",
    )
    .await;
    browser
        .eval("document.querySelector('[data-camera=\"cam1\"] .tile-name').click(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "location.pathname === '/camhub/cameras/cam1' && \
         document.getElementById('stream').naturalWidth === 320 && \
         document.getElementById('stream').src.startsWith(location.origin + '/camhub/api/cameras/cam1/')",
        Duration::from_secs(30),
        "the camera page streams",
    )
    .await;
    browser
        .eval("document.querySelector('.back').click(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        grid,
        Duration::from_secs(45),
        "back on the grid",
    )
    .await;
    browser
        .eval("document.querySelector('.session-settings').click(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "location.pathname === '/camhub/settings' && \
         !!document.querySelector('#camera-list tr[data-camera=\"cam2\"]')",
        Duration::from_secs(20),
        "the settings page",
    )
    .await;
    browser
        .eval("document.getElementById('camera-add').click(); true")
        .await;
    fill(
        &mut browser,
        &[
            ("cf-id", json!("garage")),
            ("cf-url", json!("demo:?width=320&height=180&fps=5")),
        ],
    )
    .await;
    browser
        .eval("document.getElementById('camera-form').requestSubmit(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "!!document.querySelector('#camera-list tr[data-camera=\"garage\"]')",
        Duration::from_secs(20),
        "the camera is added",
    )
    .await;
    assert!(config_text(&hub).contains("id = \"garage\""));
}

/// Under `[server] base_path` with login: a camera page sends the browser to the prefix's login
/// page and back after logging in; logging out of the settings page and in again returns there.
#[tokio::test(flavor = "multi_thread")]
async fn login_returns_to_the_page_under_a_path_prefix() {
    let hash = camhub::auth::hash_password("admin pw").unwrap();
    let config = format!(
        "[server]\nbase_path = \"/camhub\"\n\n{}[[user]]\nname = \"boss\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n",
        demo_cameras(2)
    );
    let hub = start(&config).await;
    let mut browser = Chromium::start().await;
    let log_in = "document.getElementById('name').value = 'boss'; \
                  document.getElementById('password').value = 'admin pw'; \
                  document.getElementById('login').submit(); true";
    browser
        .open(&hub.url("/camhub/cameras/cam2?width=320"))
        .await;
    expect_page(
        &mut browser,
        &hub,
        "location.pathname === '/camhub/login' && \
         document.getElementById('next').value === '/camhub/cameras/cam2?width=320'",
        Duration::from_secs(15),
        "sent to the login page",
    )
    .await;
    browser.eval(log_in).await;
    expect_page(
        &mut browser,
        &hub,
        "location.pathname === '/camhub/cameras/cam2' && \
         document.getElementById('stream').naturalWidth === 320",
        Duration::from_secs(30),
        "back on the camera page",
    )
    .await;
    expect_page(
        &mut browser,
        &hub,
        "!!document.querySelector('.session-settings')",
        Duration::from_secs(15),
        "the settings link",
    )
    .await;
    browser
        .eval("document.querySelector('.session-settings').click(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "location.pathname === '/camhub/settings' && \
         !!document.querySelector('#camera-list tr[data-camera=\"cam1\"]') && \
         !!document.querySelector('.session-logout')",
        Duration::from_secs(20),
        "the settings page",
    )
    .await;
    browser
        .eval("document.querySelector('.session-logout').click(); true")
        .await;
    expect_page(
        &mut browser,
        &hub,
        "location.pathname === '/camhub/login' && \
         new URLSearchParams(location.search).get('next') === 'settings' && \
         document.getElementById('next').value === '/camhub/settings'",
        Duration::from_secs(15),
        "logged out to the login page",
    )
    .await;
    browser.eval(log_in).await;
    expect_page(
        &mut browser,
        &hub,
        "location.pathname === '/camhub/settings' && \
         !!document.querySelector('#camera-list tr[data-camera=\"cam1\"]')",
        Duration::from_secs(20),
        "back on the settings page",
    )
    .await;
}
