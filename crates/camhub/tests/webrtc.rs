//! WebRTC (WHEP) in headless Chromium: the camera page's automatic player is WebRTC on an H.264
//! camera, it plays the camera's own stream at its size from a clean first frame, nothing is
//! decoded, the peer is listed and counted while it plays and is gone once the page lets it go
//! (WHEP DELETE); a camera WebRTC cannot carry falls back with the reason; the WHEP endpoint
//! answers bad offers and unknown sessions with errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use camhub_testkit::{Camhub, Chromium, RtspServer, RtspServerOptions, RTSP_BLACK, RTSP_WHITE};
use common::{camera, eventually, get, metric};
use serde_json::Value;

fn config(rtsp: &RtspServer) -> String {
    format!(
        "[[camera]]\nid = \"cam\"\nurl = \"{}\"\n\n\
         [[camera]]\nid = \"hevc\"\nurl = \"{}\"\n\n\
         [[camera]]\nid = \"demo\"\nurl = \"demo:?width=320&height=180&fps=10\"\n",
        rtsp.url("/h264"),
        rtsp.url("/h265")
    )
}

async fn webrtc_viewers(hub: &Camhub, id: &str) -> f64 {
    let text = get(&hub.url("/metrics")).await.text();
    let prefix = format!("camhub_packet_viewers{{camera=\"{id}\",kind=\"webrtc\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{text}"))
}

/// Records, from the page, the first video frame it presents: its size, how many frames the
/// browser had presented by then, and the mean colour around each of `points` (fractions).
const HOOK_FIRST_FRAME: &str = r#"(function () {
  window.firstFrame = null;
  const v = document.getElementById('video');
  v.requestVideoFrameCallback(function (now, meta) {
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0);
    const at = function (fx, fy) {
      const x = Math.max(0, Math.round(fx * c.width) - 2), y = Math.max(0, Math.round(fy * c.height) - 2);
      const d = g.getImageData(x, y, 5, 5).data;
      let r = 0, gg = 0, b = 0;
      for (let i = 0; i < d.length; i += 4) { r += d[i]; gg += d[i + 1]; b += d[i + 2]; }
      const n = d.length / 4;
      return [Math.round(r / n), Math.round(gg / n), Math.round(b / n)];
    };
    window.firstFrame = { width: c.width, height: c.height, presented: meta.presentedFrames,
      white: at(WX, WY), black: at(BX, BY) };
  });
  return true;
})()"#;

#[tokio::test]
async fn the_camera_page_plays_the_camera_over_webrtc() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;
    assert!(
        hub.log().contains("WebRTC on UDP 127.0.0.1:"),
        "{}",
        hub.log_tail(20)
    );
    let mut browser = Chromium::start().await;

    // The page opens with the picture off; the hook is in place before WebRTC starts.
    browser
        .open(&hub.url("/cameras/cam?player=webrtc&mode=off"))
        .await;
    let hook = HOOK_FIRST_FRAME
        .replace("WX", &RTSP_WHITE.x.to_string())
        .replace("WY", &RTSP_WHITE.y.to_string())
        .replace("BX", &RTSP_BLACK.x.to_string())
        .replace("BY", &RTSP_BLACK.y.to_string());
    assert_eq!(browser.eval(&hook).await, true);
    browser
        .eval("document.querySelector('#mode-switch button[data-mode=live]').click(), true")
        .await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().player === 'webrtc' && camhub.cameraPage().webrtc && \
         camhub.cameraPage().webrtc.width === 640 && camhub.cameraPage().webrtc.currentTime > 0.5 \
         && window.firstFrame !== null",
        40,
        "the page plays the camera over WebRTC",
    )
    .await;
    let first = browser.eval("window.firstFrame").await;
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(640), Some(360)),
        "{first}"
    );
    // The hook was in place before the stream started (the picture was off), so this is the first
    // frame the page composed. It is a whole picture (a stream started on a P-frame shows grey or
    // smeared blocks until the next keyframe): the pattern's white and black patches are there.
    let near = |got: &Value, want: (u8, u8, u8)| {
        let c: Vec<i64> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        [want.0, want.1, want.2]
            .iter()
            .zip(&c)
            .all(|(w, g)| (i64::from(*w) - g).abs() <= 40)
    };
    assert!(
        near(&first["white"], RTSP_WHITE.rgb),
        "first frame: {first}"
    );
    assert!(
        near(&first["black"], RTSP_BLACK.rgb),
        "first frame: {first}"
    );

    let page = browser.eval("camhub.cameraPage()").await;
    assert_eq!(page["webrtc"]["height"], 360, "{page}");
    assert_eq!(page["webrtc"]["connection"], "connected", "{page}");
    let t0 = page["webrtc"]["currentTime"].as_f64().unwrap();
    common::expect_camera_page(
        &mut browser,
        &hub,
        &format!("camhub.cameraPage().webrtc.currentTime > {t0} + 1.5"),
        30,
        "playback advances",
    )
    .await;
    let label = browser
        .eval("document.getElementById('player-label').textContent")
        .await;
    assert_eq!(label, "WebRTC · H.264");
    assert_eq!(webrtc_viewers(&hub, "cam").await, 1.0);
    let api = camera(&hub, "cam").await;
    let sessions = api["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{api}");
    assert_eq!(sessions[0]["kind"], "webrtc", "{api}");
    assert_eq!(sessions[0]["state"], "playing", "{api}");
    assert!(sessions[0]["bytes"].as_u64().unwrap() > 10_000, "{api}");
    // (No decode check here: the page with the picture off showed a snapshot, which decodes.
    // The WHEP client test below checks that WebRTC itself decodes nothing.)

    // Another player: the page closes its peer connection and DELETEs its WHEP session, and
    // everything the peer held goes.
    browser
        .eval(
            "(function () { const s = document.getElementById('player'); s.value = 'mjpeg'; \
             s.dispatchEvent(new Event('change')); return true; })()",
        )
        .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            webrtc_viewers(&hub, "cam").await == 0.0
                && camera(&hub, "cam").await["sessions"]
                    .as_array()
                    .is_some_and(|s| s.is_empty())
        })
        .await,
        "the peer is gone after DELETE: {}\nlog:\n{}",
        camera(&hub, "cam").await,
        hub.log_tail(20)
    );
    // The browser's close (DTLS close_notify) or the page's DELETE, whichever came first.
    assert!(
        hub.log().contains("webrtc: peer gone"),
        "{}",
        hub.log_tail(20)
    );

    // Automatic choice: WebRTC on an H.264 camera.
    browser.open(&hub.url("/cameras/cam")).await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().player === 'webrtc' && camhub.cameraPage().webrtc && \
         camhub.cameraPage().webrtc.currentTime > 0.5",
        40,
        "the automatic player is WebRTC",
    )
    .await;

    // A camera WebRTC cannot carry (the drawn demo): automatic falls back, saying why.
    browser.open(&hub.url("/cameras/demo")).await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().player === 'mjpeg' && camhub.cameraPage().webrtcRefused.includes('demo') \
         && document.getElementById('stream').naturalWidth > 0",
        30,
        "the demo falls back to MJPEG",
    )
    .await;
    // H.265 is not sent over WebRTC: the offer is refused with what to do.
    browser.open(&hub.url("/cameras/hevc")).await;
    common::expect_camera_page(
        &mut browser,
        &hub,
        "camhub.cameraPage().webrtcRefused.includes('transcode')",
        30,
        "an H.265 camera is refused for WebRTC",
    )
    .await;
}

#[tokio::test]
async fn the_whep_endpoint_refuses_what_it_cannot_answer() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let hub = common::start(&config(&rtsp)).await;
    let client = reqwest::Client::new();
    let post = |id: &str, ct: &str, body: &str| {
        client
            .post(hub.url(&format!("/api/cameras/{id}/whep")))
            .header("Content-Type", ct.to_owned())
            .body(body.to_owned())
            .send()
    };
    let r = post("cam", "application/sdp", "v=0\r\nnonsense\r\n")
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{:?}", r.text().await);
    let r = post("cam", "text/plain", "v=0\r\n").await.unwrap();
    assert_eq!(r.status(), 415);
    let r = post("nope", "application/sdp", "v=0\r\n").await.unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .delete(hub.url("/api/cameras/cam/whep/12345"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .patch(hub.url("/api/cameras/cam/whep/12345"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405, "trickle ICE is not supported");
    let r = client
        .request(reqwest::Method::OPTIONS, hub.url("/api/cameras/cam/whep"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers().get("accept-post").and_then(|v| v.to_str().ok()),
        Some("application/sdp")
    );
    assert_eq!(webrtc_viewers(&hub, "cam").await, 0.0);
}

/// Runs a str0m client over `sock` until `on` says it is done (true) or `limit` passes (false).
fn drive(
    rtc: &mut str0m::Rtc,
    sock: &std::net::UdpSocket,
    limit: Duration,
    mut on: impl FnMut(&mut str0m::Rtc, str0m::Event) -> bool,
) -> bool {
    use str0m::net::{Protocol, Receive};
    use str0m::{Input, Output};
    let end = std::time::Instant::now() + limit;
    let local = sock.local_addr().unwrap();
    let mut buf = vec![0u8; 2048];
    loop {
        let timeout = loop {
            match rtc.poll_output().unwrap() {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = sock.send_to(&t.contents, t.destination);
                }
                Output::Event(e) => {
                    if on(rtc, e) {
                        return true;
                    }
                }
            }
        };
        let now = std::time::Instant::now();
        if now > end {
            return false;
        }
        let wait = timeout
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(1), Duration::from_millis(20));
        sock.set_read_timeout(Some(wait)).unwrap();
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Ok(r) = Receive::new(Protocol::Udp, from, local, &buf[..n]) {
                    rtc.handle_input(Input::Receive(std::time::Instant::now(), r))
                        .unwrap();
                }
            }
            Err(_) => rtc
                .handle_input(Input::Timeout(std::time::Instant::now()))
                .unwrap(),
        }
    }
}

/// A WHEP client that is not a browser (str0m over UDP): it starts on a keyframe, and a keyframe
/// request (PLI) brings a keyframe at once, long before the camera's next one (its GOP is 20 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_whep_client_starts_on_a_keyframe_and_a_pli_brings_one_at_once() {
    use str0m::change::SdpAnswer;
    use str0m::format::CodecExtra;
    use str0m::media::{Direction, KeyframeRequestKind, MediaKind};
    use str0m::{Candidate, Event, Rtc};

    let rtsp = RtspServer::start(RtspServerOptions::default().with_gop(300)).await;
    let hub = common::start(&config(&rtsp)).await;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_h264(true)
        .build(std::time::Instant::now());
    rtc.add_local_candidate(Candidate::host(sock.local_addr().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let r = reqwest::Client::new()
        .post(hub.url("/api/cameras/cam/whep"))
        .header("Content-Type", "application/sdp")
        .body(offer.to_sdp_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/api/cameras/cam/whep/"), "{location}");
    assert_eq!(r.headers()["content-type"], "application/sdp");
    let answer = SdpAnswer::from_sdp_string(&r.text().await.unwrap()).unwrap();
    rtc.sdp_api().accept_answer(pending, answer).unwrap();

    let (rtc, frames) = tokio::task::spawn_blocking(move || {
        let mut rtc = rtc;
        // (keyframe, when) of every frame received.
        let mut frames: Vec<(bool, std::time::Instant)> = Vec::new();
        let mut asked: Option<std::time::Instant> = None;
        let done = drive(&mut rtc, &sock, Duration::from_secs(40), |rtc, e| {
            let Event::MediaData(m) = e else {
                return false;
            };
            let key = matches!(m.codec_extra, CodecExtra::H264(x) if x.is_keyframe);
            let now = std::time::Instant::now();
            frames.push((key, now));
            // Two seconds of frames after the start, then one PLI.
            if asked.is_none() && now - frames[0].1 > Duration::from_secs(2) {
                asked = Some(now);
                rtc.writer(mid)
                    .unwrap()
                    .request_keyframe(None, KeyframeRequestKind::Pli)
                    .unwrap();
            }
            asked.is_some_and(|t| key && now > t)
        });
        assert!(done, "no keyframe after the PLI: {} frames", frames.len());
        (rtc, frames)
    })
    .await
    .unwrap();
    drop(rtc);
    assert!(frames[0].0, "the first frame is a keyframe");
    let start = frames[0].1;
    let (_, answered) = frames.last().copied().unwrap();
    let before: Vec<_> = frames
        .iter()
        .filter(|(k, t)| *k && *t > start + Duration::from_millis(500) && *t < answered)
        .collect();
    assert!(
        before.is_empty(),
        "no keyframe of the camera's own between the start and the PLI"
    );
    let asked_at = frames
        .iter()
        .find(|(_, t)| *t > start + Duration::from_secs(2))
        .map(|(_, t)| *t)
        .unwrap();
    assert!(
        answered - asked_at < Duration::from_secs(2),
        "the keyframe came {:?} after the PLI",
        answered - asked_at
    );
    assert!(metric(&hub, "camhub_webrtc_keyframe_requests_total", "cam").await >= 1.0);
    assert_eq!(webrtc_viewers(&hub, "cam").await, 1.0);
    let r = reqwest::Client::new()
        .delete(hub.url(&location))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(webrtc_viewers(&hub, "cam").await, 0.0);
    assert_eq!(
        metric(&hub, "camhub_decode_seconds_total", "cam").await,
        0.0
    );
}
