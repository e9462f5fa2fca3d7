//! The motion parts of the web UI in headless Chromium, against the real binary: the history page
//! over a store filled before camhub starts (bars per hour, a bar's events with their snapshots,
//! paging, an event's pictures), the camera page's alerts (banner and system notification) when
//! motion starts in a synthetic scene and when the heartbeat stops (camhub frozen with SIGSTOP) and
//! comes back, detect mode's pictures and boxes, and the grid's motion badge.
//!
//! Notifications are granted through DevTools (`Browser.grantPermissions`) and recorded by a
//! `window.Notification` stand-in installed before the page's scripts run, so the test reads what
//! the page showed and closed. Screenshots go to `CAMHUB_TEST_ARTIFACTS` when that is set.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use camhub_store::{EventBox, EventUpdate, Store};
use camhub_testkit::{ffmpeg_jpegs, Action, Camhub, Chromium, Cue, Scene};
use serde_json::{json, Value};

const HOUR_MS: i64 = 3_600_000;

/// Records every notification the page makes (title, body, tag) in `window.__notes` and every one
/// it closes (by tag) in `window.__closed`, instead of showing them.
const NOTIFICATION_RECORDER: &str = r#"
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notes = [];
  window.__closed = [];
  class Recorded extends EventTarget {
    constructor(title, options) {
      super();
      this.title = title;
      this.body = (options && options.body) || '';
      this.tag = (options && options.tag) || '';
      this.onclick = null;
      window.__notes.push({ title: this.title, body: this.body, tag: this.tag });
    }
    close() { window.__closed.push(this.tag); }
    static get permission() { return Real.permission; }
    static requestPermission(cb) { return Real.requestPermission(cb); }
  }
  window.Notification = Recorded;
})();
"#;

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

/// Waits until `js` is true, or panics with `what`, the page's own summary (`state`, a JavaScript
/// expression) and camhub's log.
async fn expect(
    browser: &mut Chromium,
    hub: &Camhub,
    js: &str,
    secs: u64,
    what: &str,
    state: &str,
) {
    if !browser.wait_until(js, Duration::from_secs(secs)).await {
        let now = browser.try_eval(state).await.unwrap_or(Value::Null);
        panic!(
            "{what}: not within {secs} s\npage: {now}\nlog:\n{}",
            hub.log_tail(40)
        );
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// One stored event: start, length, and how many frames besides its snapshot.
struct Stored {
    start: i64,
    ms: i64,
    frames: usize,
}

/// Fills `data_dir`'s store with `events` of camera `cam` the way camhub stores them: a record,
/// its snapshot and frames as JPEG files under `events/` (paths relative to it), then its end.
/// Returns the ids in the order given.
fn fill_store(data_dir: &Path, events: &[Stored]) -> Vec<i64> {
    let store = Store::open_dir(data_dir).unwrap();
    let pictures = ffmpeg_jpegs(8, 320, 180);
    let dir = data_dir.join("events").join("cam");
    std::fs::create_dir_all(&dir).unwrap();
    let mut ids = Vec::new();
    for (n, e) in events.iter().enumerate() {
        let bx = EventBox {
            x: 0.2,
            y: 0.3,
            w: 0.25,
            h: 0.2,
        };
        let id = store.event_start("cam", e.start, 2.5, Some(bx)).unwrap();
        let write = |name: String, k: usize| {
            let jpeg = &pictures[(n + k) % pictures.len()];
            std::fs::write(dir.join(&name), jpeg).unwrap();
            (format!("cam/{name}"), i64::try_from(jpeg.len()).unwrap())
        };
        let snapshot = write(format!("{id}-snapshot.jpg"), 0);
        let frames = (0..e.frames)
            .map(|k| write(format!("{id}-{k}.jpg"), k + 1))
            .collect();
        store
            .event_update(
                id,
                &EventUpdate {
                    last_ms: e.start + e.ms,
                    peak: Some((4.0 + n as f64, Some(bx))),
                    snapshot: Some(snapshot),
                    add_frames: frames,
                    remove_frames: Vec::new(),
                },
            )
            .unwrap();
        store.event_end(id, e.start + e.ms).unwrap();
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn history_shows_bars_for_stored_events_and_a_bars_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Whole past hours, so each event's bucket is known: two events 5 h ago, a burst of 26 three
    // hours ago (more than a page), one 2 h ago.
    let hour = now_ms().div_euclid(HOUR_MS) * HOUR_MS;
    let five = hour - 5 * HOUR_MS;
    let three = hour - 3 * HOUR_MS;
    let two = hour - 2 * HOUR_MS;
    let mut events = vec![
        Stored {
            start: five + 10 * 60_000,
            ms: 12_000,
            frames: 2,
        },
        Stored {
            start: five + 20 * 60_000,
            ms: 30_000,
            frames: 3,
        },
        Stored {
            start: two + 30 * 60_000,
            ms: 8_000,
            frames: 1,
        },
    ];
    for k in 0..26 {
        events.push(Stored {
            start: three + k * 60_000,
            ms: 5_000,
            frames: 0,
        });
    }
    let ids = fill_store(&data, &events);
    let config = format!(
        "[server]\ndata_dir = \"{}\"\n\n[[camera]]\nid = \"cam\"\nname = \"Porch\"\n\
         url = \"demo:?width=320&height=180&fps=5\"\n",
        data.display()
    );
    let hub = common::start(&config).await;
    let shots = tempfile::Builder::new()
        .prefix("camhub-ui-motion-")
        .tempdir()
        .unwrap();
    let mut browser = Chromium::start().await;
    browser.open(&hub.url("/history?camera=cam")).await;
    let state = "window.camhub && window.camhub.history && window.camhub.history()";
    expect(
        &mut browser,
        &hub,
        "!!(window.camhub && window.camhub.history && window.camhub.history().drawn > 0)",
        20,
        "the chart is drawn",
        state,
    )
    .await;
    let h = browser.eval(state).await;
    assert_eq!(h["bucket"], "hour", "24 h by hour is the default: {h}");
    assert_eq!(
        browser
            .eval("document.getElementById('camera').value")
            .await,
        "cam",
        "?camera= chooses the camera"
    );
    let bars = h["bars"].as_array().unwrap();
    assert!(
        (24..=25).contains(&bars.len()),
        "24 h in hours: {} bars",
        bars.len()
    );
    let with_events: Vec<(i64, u64, f64)> = bars
        .iter()
        .filter(|b| b["events"].as_u64().unwrap() > 0)
        .map(|b| {
            (
                b["start"].as_i64().unwrap(),
                b["events"].as_u64().unwrap(),
                b["seconds"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        with_events,
        vec![(five, 2, 42.0), (three, 26, 130.0), (two, 1, 8.0)],
        "bars with events (start, events, seconds of motion)"
    );
    // In the DOM: a bar per bucket, the tallest is the burst, every non-empty bar has its count.
    let dom = browser
        .eval(
            "(() => { const bars = Array.from(document.querySelectorAll('#bars .bar')); \
             return { n: bars.length, \
               counts: bars.filter(b => b.querySelector('.bar-count')).map(b => b.querySelector('.bar-count').textContent), \
               heights: bars.filter(b => b.dataset.events !== '0').map(b => b.querySelector('.bar-fill').getBoundingClientRect().height), \
               summary: document.getElementById('summary').textContent }; })()",
        )
        .await;
    assert_eq!(dom["n"].as_u64().unwrap() as usize, bars.len(), "{dom}");
    assert_eq!(dom["counts"], json!(["2", "26", "1"]), "{dom}");
    let heights: Vec<f64> = dom["heights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        heights[1] > heights[0] && heights[0] > heights[2] && heights[2] > 0.0,
        "bar heights follow the seconds of motion: {dom}"
    );
    assert!(
        dom["summary"]
            .as_str()
            .unwrap()
            .starts_with("29 motion events"),
        "{dom}"
    );
    screenshot(&mut browser, shots.path(), "history.png").await;

    // A bar's events, newest first, each with its snapshot loaded.
    browser
        .eval(&format!(
            "document.querySelector('#bars .bar[data-start=\"{five}\"]').click(); true"
        ))
        .await;
    let loaded = "(() => { const cards = document.querySelectorAll('#events .event-card'); \
                  return cards.length === 2 && Array.from(cards).every(c => { \
                    const img = c.querySelector('img.event-thumb'); \
                    return img && img.complete && img.naturalWidth === 320; }); })()";
    expect(
        &mut browser,
        &hub,
        loaded,
        20,
        "the bar's two events with their snapshots",
        state,
    )
    .await;
    let listed = browser.eval(state).await;
    assert_eq!(listed["events"], json!([ids[1], ids[0]]), "{listed}");
    assert_eq!(listed["more"], false, "{listed}");
    assert_eq!(
        browser
            .eval("document.querySelector('#bars .bar[aria-pressed=\"true\"]').dataset.start")
            .await,
        five.to_string()
    );
    screenshot(&mut browser, shots.path(), "history-period.png").await;

    // An event's pictures: the snapshot first, then its frames.
    browser
        .eval(&format!(
            "document.querySelector('#events .event-card[data-event=\"{}\"]').click(); true",
            ids[1]
        ))
        .await;
    expect(
        &mut browser,
        &hub,
        "document.getElementById('viewer').open && document.getElementById('viewer-img').complete && \
         document.getElementById('viewer-img').naturalWidth === 320 && \
         document.querySelectorAll('#strip .strip-item').length === 4",
        20,
        "the event viewer with the snapshot and three frames",
        state,
    )
    .await;
    assert!(
        browser
            .eval("location.search")
            .await
            .as_str()
            .unwrap()
            .contains(&format!("event={}", ids[1])),
        "the open event is in the URL"
    );
    browser
        .eval("document.getElementById('viewer-next').click(); true")
        .await;
    expect(
        &mut browser,
        &hub,
        "window.camhub.history().viewer.index === 1 && \
         document.getElementById('viewer-img').src.endsWith('/frames/0.jpeg') && \
         document.getElementById('viewer-img').complete && \
         document.getElementById('viewer-img').naturalWidth === 320",
        20,
        "the next picture is the first frame",
        state,
    )
    .await;
    screenshot(&mut browser, shots.path(), "history-event.png").await;
    browser
        .eval("document.getElementById('viewer-close').click(); true")
        .await;

    // More events than a page: "Load more" brings the rest.
    browser
        .eval(&format!(
            "document.querySelector('#bars .bar[data-start=\"{three}\"]').click(); true"
        ))
        .await;
    expect(
        &mut browser,
        &hub,
        "window.camhub.history().events.length === 24 && window.camhub.history().more",
        20,
        "a first page of 24 events",
        state,
    )
    .await;
    browser
        .eval("document.getElementById('more').click(); true")
        .await;
    expect(
        &mut browser,
        &hub,
        "window.camhub.history().events.length === 26 && !window.camhub.history().more && \
         document.querySelectorAll('#events .event-card').length === 26",
        20,
        "all 26 events after Load more",
        state,
    )
    .await;

    // A motion alert's link opens its event.
    browser
        .open(&hub.url(&format!("/history?camera=cam&event={}", ids[2])))
        .await;
    expect(
        &mut browser,
        &hub,
        &format!(
            "!!(window.camhub.history && window.camhub.history().viewer && \
             window.camhub.history().viewer.event === {})",
            ids[2]
        ),
        20,
        "?event= opens that event",
        state,
    )
    .await;
}

/// A 10 s scene, looped: 2 s quiet, a dark object crossing for 4 s, 4 s quiet.
async fn motion_camhub(dir: &Path) -> Camhub {
    let scene = Scene {
        width: 640,
        height: 360,
        fps: 25,
        frames: 250,
        noise: 4.0,
        cues: vec![Cue {
            from: 50,
            to: 150,
            action: Action::Object {
                w: 128,
                h: 96,
                x0: 20,
                y0: 120,
                x1: 480,
                y1: 160,
            },
        }],
    };
    let file = dir.join("scene.mp4");
    scene.render(&file);
    let config = format!(
        "[server]\ndata_dir = \"{data}\"\n\n[[camera]]\nid = \"cam\"\nname = \"Yard\"\n\
         url = \"ffmpeg:{file}\"\nloop_file = true\n[camera.motion]\nend_after = \"1s\"\n",
        data = dir.join("data").display(),
        file = file.display()
    );
    common::start(&config).await
}

/// Sends SIGSTOP to camhub and SIGCONT when dropped (also when the test fails meanwhile).
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Frozen {
        signal(pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_camera_page_alerts_on_motion_and_on_a_lost_link() {
    let dir = tempfile::tempdir().unwrap();
    let hub = motion_camhub(dir.path()).await;
    let shots = tempfile::Builder::new()
        .prefix("camhub-ui-motion-")
        .tempdir()
        .unwrap();
    let mut browser = Chromium::start().await;
    browser
        .call(
            "Browser.grantPermissions",
            json!({"permissions": ["notifications"], "origin": hub.base_url()}),
        )
        .await;
    browser
        .call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": NOTIFICATION_RECORDER }),
        )
        .await;
    browser.open(&hub.url("/cameras/cam?mode=detect")).await;
    let state = "window.camhub && window.camhub.cameraPage && \
                 Object.assign(window.camhub.cameraPage(), { notes: window.__notes, closed: window.__closed, \
                   alertState: window.camhub.alerts.state(), \
                   pictureState: document.getElementById('picture-state').textContent })";
    expect(
        &mut browser,
        &hub,
        "!!(window.camhub && window.camhub.cameraPage && window.camhub.cameraPage().link === 'up' && \
            window.camhub.cameraPage().motion.detecting)",
        20,
        "the camera WebSocket is up and detecting",
        state,
    )
    .await;
    assert_eq!(
        browser
            .eval("document.getElementById('history-link').getAttribute('href')")
            .await,
        "history?camera=cam"
    );
    // "Enable alerts" is a click: with a user gesture, the permission question and the audio
    // context are allowed (the permission is already granted through DevTools).
    let clicked = browser
        .call(
            "Runtime.evaluate",
            json!({"expression": "document.getElementById('alerts-enable').click(); true",
                   "userGesture": true, "awaitPromise": true}),
        )
        .await;
    assert!(clicked.get("exceptionDetails").is_none(), "{clicked}");
    expect(
        &mut browser,
        &hub,
        "window.camhub.alerts.state().notify.state === 'on' && \
         document.querySelector('#alerts-state dd[data-alert=\"notify\"]').textContent === 'on'",
        10,
        "notifications are on",
        state,
    )
    .await;

    // Motion starts: the in-page alert with its time and event link, and a notification.
    expect(
        &mut browser,
        &hub,
        "!document.getElementById('motion-alert').hidden && \
         window.__notes.some(n => n.title === 'Motion: Yard' && n.tag === 'camhub-motion-cam')",
        60,
        "a motion alert and its notification",
        state,
    )
    .await;
    let page = browser.eval(state).await;
    let text = browser
        .eval("document.getElementById('motion-alert-text').textContent")
        .await;
    assert!(
        text.as_str().unwrap().starts_with("Motion on Yard at "),
        "{text}"
    );
    let event = page["motion"]["event"].as_i64().expect("a stored event");
    assert_eq!(
        browser
            .eval("document.getElementById('motion-alert-link').getAttribute('href')")
            .await,
        format!("history?camera=cam&event={event}")
    );
    let fired = page["alerts"].as_array().unwrap();
    let motion_alert = fired
        .iter()
        .find(|a| a["kind"] == "motion")
        .unwrap_or_else(|| panic!("no motion alert logged: {page}"));
    assert_eq!(motion_alert["notification"], "shown", "{motion_alert}");
    // The beep never throws: it played, or the browser kept the audio suspended.
    let sound = motion_alert["sound"].as_str().unwrap();
    assert!(sound == "played" || sound == "blocked", "{motion_alert}");
    // Vibration: done, or refused when the motion came before the click (Chrome wants a tap first).
    let vibration = motion_alert["vibration"].as_str().unwrap();
    assert!(
        ["done", "refused", "unsupported"].contains(&vibration),
        "{motion_alert}"
    );

    // Detect mode: pictures and boxes while it moves.
    expect(
        &mut browser,
        &hub,
        "window.camhub.cameraPage().frames > 0 && window.camhub.cameraPage().boxesSeen > 0",
        30,
        "pictures and boxes during motion",
        state,
    )
    .await;
    expect(
        &mut browser,
        &hub,
        "window.camhub.cameraPage().motion.active && window.camhub.cameraPage().boxes > 0 && \
         document.querySelectorAll('#boxes .motion-box').length > 0",
        40,
        "boxes drawn over the picture",
        state,
    )
    .await;
    screenshot(&mut browser, shots.path(), "camera-motion.png").await;
    // Then quiet: the last picture stays, marked so, and no picture comes while it lasts.
    expect(
        &mut browser,
        &hub,
        "!window.camhub.cameraPage().motion.active && \
         document.getElementById('picture-state').dataset.state === 'quiet' && \
         document.getElementById('picture-state').textContent.startsWith('quiet — nothing moving') && \
         document.getElementById('still').width === 640 && \
         document.querySelectorAll('#boxes .motion-box').length === 0",
        30,
        "quiet after the motion, with the last picture kept",
        state,
    )
    .await;
    // A JPEG that arrived just before motion_end may still be decoding (createImageBitmap is
    // asynchronous) when the page shows "quiet": count from after it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quiet = browser.eval(state).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still_quiet = browser.eval(state).await;
    if !still_quiet["motion"]["active"].as_bool().unwrap()
        && still_quiet["motion"]["starts"] == quiet["motion"]["starts"]
    {
        assert_eq!(
            still_quiet["frames"], quiet["frames"],
            "no picture while nothing moves"
        );
    }
    screenshot(&mut browser, shots.path(), "camera-quiet.png").await;

    // The heartbeat stops (camhub frozen): after 5 s without a word, the lost-link alert.
    let frozen = Frozen::new(hub.pid());
    expect(
        &mut browser,
        &hub,
        "window.camhub.cameraPage().link === 'lost' && !document.getElementById('link-alert').hidden && \
         window.__notes.some(n => n.title === 'camhub: connection lost' && n.tag === 'camhub-link-cam')",
        30,
        "a connection-lost alert and its notification",
        state,
    )
    .await;
    let page = browser.eval(state).await;
    let lost = page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "link")
        .cloned()
        .unwrap();
    assert_eq!(lost["notification"], "shown", "{lost}");
    screenshot(&mut browser, shots.path(), "camera-lost.png").await;

    // camhub answers again: the page reconnects and takes the alert back.
    drop(frozen);
    expect(
        &mut browser,
        &hub,
        "window.camhub.cameraPage().link === 'up' && document.getElementById('link-alert').hidden && \
         window.__closed.includes('camhub-link-cam')",
        45,
        "the link is back and the alert is gone",
        state,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grid_shows_a_motion_badge_while_something_moves() {
    let dir = tempfile::tempdir().unwrap();
    let hub = motion_camhub(dir.path()).await;
    let shots = tempfile::Builder::new()
        .prefix("camhub-ui-motion-")
        .tempdir()
        .unwrap();
    let mut browser = Chromium::start().await;
    browser.open(&hub.url("/")).await;
    let state = "(() => { const t = document.querySelector('[data-camera=\"cam\"]'); \
                 return { tiles: window.camhub && window.camhub.tiles && window.camhub.tiles(), \
                   motion: t && t.dataset.motion, badge: t && !t.querySelector('.motion-badge').hidden, \
                   last: t && t.querySelector('.tile-motion').textContent }; })()";
    assert_eq!(
        browser
            .eval("document.getElementById('history-link').getAttribute('href')")
            .await,
        "history"
    );
    expect(
        &mut browser,
        &hub,
        "(() => { const t = document.querySelector('[data-camera=\"cam\"]'); \
           return !!t && t.dataset.motion === 'active' && !t.querySelector('.motion-badge').hidden && \
             window.camhub.tiles().cam.motion === true && window.camhub.tiles().cam.loaded; })()",
        60,
        "the tile's motion badge",
        state,
    )
    .await;
    screenshot(&mut browser, shots.path(), "grid-motion.png").await;
    expect(
        &mut browser,
        &hub,
        "(() => { const t = document.querySelector('[data-camera=\"cam\"]'); \
           return t.dataset.motion === 'quiet' && t.querySelector('.motion-badge').hidden && \
             t.querySelector('.tile-motion').textContent.startsWith('last motion '); })()",
        30,
        "the badge goes when the motion ends, and the last motion's time stays",
        state,
    )
    .await;
}
