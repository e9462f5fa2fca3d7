// camhub camera page (`/cameras/{id}`): one camera in one of three modes, with motion boxes, motion
// and lost-link alerts, a snapshot download, and a status panel refreshed from /api/cameras every 2 s.
//
// - Live: the MJPEG stream in an <img> at the chosen size / quality / fps (every frame).
// - Detect: the picture updates only while something moves (JPEGs over the camera WebSocket); in
//   between, the last picture stays, marked "quiet — nothing moving".
// - Off: no pictures; the status, the motion state and the alerts go on.
// In every mode the camera WebSocket (`api/cameras/{id}/ws`) is open: it brings motion starts, boxes
// and ends, and a heartbeat every 2 s. No message for 5 s means the link is lost: alert (banner,
// beep, notification, vibration through alerts.js), reconnect with capped back-off, and take the
// alert back when messages come again.
//
// Server strings (names, reasons, errors) only ever go through textContent, never innerHTML.
// The chosen mode and size/quality/fps live in the page's query string, so a reload or a shared link
// keeps them; the mode is also remembered per camera in this browser.
//
// Test hook: camhub.cameraPage() summarises the mode, the link, the motion state and the pictures.
'use strict';

(function () {
  const STATUS_MS = 2000;
  const LINK_LOST_MS = 5000;          // heartbeats come every 2 s: no message for this long = lost
  const LINK_BACKOFF_MIN_MS = 1000;
  const LINK_BACKOFF_MAX_MS = 15000;
  const BOXES_STALE_MS = 3000;        // boxes with no newer word for this long are taken down
  const MODES = ['live', 'detect', 'off'];
  const WS_MODE = { live: 'off', detect: 'motion', off: 'off' };

  const pageOpenedAt = Date.now();
  const id = cameraIdFromLocation();
  const api = 'api/cameras/' + encodeURIComponent(id);
  const modeKey = 'camhub.mode.' + id;

  const $ = function (sel) { return document.getElementById(sel); };
  const streamImg = $('stream');
  const videoEl = $('video');
  const playerSel = $('player');
  const playerLabel = $('player-label');
  const still = $('still');
  const mediaEl = $('viewer-media');
  const boxesEl = $('boxes');
  const pictureStateEl = $('picture-state');
  const sizeSel = $('size');
  const qualitySel = $('quality');
  const fpsSel = $('fps');
  const snapBtn = $('snapshot');
  // The controls apply as they change; Enter must not submit (and reload) the page.
  $('controls').addEventListener('submit', function (ev) { ev.preventDefault(); });
  const streamLink = $('stream-link');
  const messageEl = $('message');
  const bannerEl = $('banner');
  const titleEl = $('title');
  const pillEl = $('state-pill');
  const motionPill = $('motion-pill');
  const updatedEl = $('updated');
  const snapBox = $('snapshot-result');
  const snapLink = $('snapshot-link');
  const snapThumb = $('snapshot-thumb');
  const snapInfo = $('snapshot-info');
  const motionAlert = $('motion-alert');
  const motionAlertText = $('motion-alert-text');
  const motionAlertLink = $('motion-alert-link');
  const linkAlert = $('link-alert');
  const linkAlertText = $('link-alert-text');

  let cam = null;                 // last status from /api/cameras
  let streamRetryTimer = 0;
  let streamRetries = 0;
  let serverDown = false;
  let snapshotUrl = null;
  let mode = 'live';
  let playerWanted = '';          // '' (auto), 'webrtc', 'mse', 'hls' or 'mjpeg': ?player= or the Player menu
  let playerUsed = 'mjpeg';       // what shows the live picture now
  let playerWhy = '';             // why MJPEG, when MSE was not used
  let webrtcRefused = '';         // auto: the server or the connection said WebRTC cannot play it
  let rtc = null;                 // the running WebrtcPlayer
  let rtcInfo = null;             // {codec, width, height} of its picture
  let mseRefused = '';            // auto: the server or browser said MSE cannot play this camera
  let hlsRefused = '';            // auto: the browser's HLS player could not play this camera
  let mse = null;                 // the running MsePlayer
  let mseInfo = null;             // {codec, width, height} from the server

  function cameraIdFromLocation() {
    // /cameras/{id} (served by camhub); camera.html?id=... also works for local development.
    const m = location.pathname.match(/\/cameras\/([^/]+)\/?$/);
    if (m) {
      try { return decodeURIComponent(m[1]); } catch (e) { return m[1]; }
    }
    return new URLSearchParams(location.search).get('id') || '';
  }

  function cameraName() {
    return (cam && cam.name) || id;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString();
  }

  // ---------------------------------------------------------------- settings

  function restoreSettings() {
    const q = new URLSearchParams(location.search);
    setSelect(sizeSel, q.get('width'));
    setSelect(qualitySel, q.get('quality'));
    setSelect(fpsSel, q.get('fps'));
    let m = q.get('mode');
    if (!MODES.includes(m)) {
      try { m = localStorage.getItem(modeKey); } catch (e) { m = null; }
    }
    mode = MODES.includes(m) ? m : 'live';
    const p = q.get('player');
    playerWanted = ['webrtc', 'mse', 'hls', 'mjpeg'].includes(p) ? p : '';
    playerSel.value = playerWanted;
  }

  function setSelect(sel, value) {
    if (value === null) return;
    for (const o of sel.options) {
      if (o.value === value) { sel.value = value; return; }
    }
  }

  function saveSettings() {
    const q = new URLSearchParams(location.search);
    for (const [k, sel] of [['width', sizeSel], ['quality', qualitySel], ['fps', fpsSel]]) {
      if (sel.value) q.set(k, sel.value); else q.delete(k);
    }
    if (mode !== 'live') q.set('mode', mode); else q.delete('mode');
    if (playerWanted) q.set('player', playerWanted); else q.delete('player');
    const qs = q.toString();
    history.replaceState(null, '', location.pathname + (qs ? '?' + qs : ''));
  }

  function query(withFps) {
    const q = new URLSearchParams();
    if (sizeSel.value) q.set('width', sizeSel.value);
    q.set('quality', qualitySel.value);
    if (withFps && fpsSel.value) q.set('fps', fpsSel.value);
    return q.toString();
  }

  function streamUrl() { return api + '/stream.mjpeg?' + query(true); }
  function frameUrl() { return api + '/frame.jpeg?' + query(false); }

  // ---------------------------------------------------------------- messages

  function showMessage(text, isError) {
    messageEl.textContent = text;
    messageEl.className = 'message' + (isError ? ' error' : '');
    messageEl.hidden = false;
  }

  function clearMessage() {
    messageEl.hidden = true;
    messageEl.textContent = '';
  }

  const errorOf = window.camhub.errorOf;

  // ---------------------------------------------------------------- live stream (MJPEG)

  function startStream() {
    clearTimeout(streamRetryTimer);
    streamRetryTimer = 0;
    const url = streamUrl();
    streamLink.href = url;
    streamLink.textContent = 'Stream URL';
    // Dropping the old src first makes the browser close the previous multipart connection, so the
    // server releases that variant before the new one is asked for.
    streamImg.removeAttribute('src');
    stopMse();
    if (mode !== 'live' || document.visibilityState === 'hidden') return;
    if (wantWebrtc()) {
      startWebrtc();
      return;
    }
    if (wantMse()) {
      startMse();
      return;
    }
    if (wantHls()) {
      startHls();
      return;
    }
    usePlayer('mjpeg');
    streamImg.src = url;
  }

  function stopStream() {
    clearTimeout(streamRetryTimer);
    streamRetryTimer = 0;
    streamImg.removeAttribute('src');
    stopMse();
  }

  // ---------------------------------------------------------------- live video (WebRTC)

  // Auto: WebRTC first (the lowest delay), until the server or the network says it cannot be had
  // for this camera (a JPEG camera, H.265, UDP blocked) — then MSE, and so on.
  function wantWebrtc() {
    if (playerWanted === 'webrtc') return true;
    if (playerWanted || webrtcRefused) return false;
    return window.camhub.webrtcAvailable();
  }

  function startWebrtc() {
    usePlayer('webrtc');
    streamLink.href = api + '/stream.mp4';
    rtc = window.camhub.WebrtcPlayer({
      video: videoEl,
      url: api + '/whep',
      onInfo: function (info) {
        rtcInfo = info;
        streamRetries = 0;
        if (messageEl.dataset.source === 'stream') clearMessage();
        renderPlayer();
      },
      onError: function (text, fatal) {
        rtc = null;
        if (fatal && playerWanted !== 'webrtc') {
          webrtcRefused = text;
          startStream();
          return;
        }
        const delay = Math.min(15000, 1000 * Math.pow(2, streamRetries));
        streamRetries += 1;
        showMessage('Video (WebRTC): ' + text + ' — retrying in ' + Math.round(delay / 1000) + ' s.', true);
        messageEl.dataset.source = 'stream';
        streamRetryTimer = setTimeout(startStream, delay);
      },
    });
    rtc.start();
  }

  function stopWebrtc() {
    if (rtc) rtc.stop();
    rtc = null;
    rtcInfo = null;
  }

  // ---------------------------------------------------------------- live video (MSE)

  // Auto: MSE where the browser has it, until the server says this camera has nothing it can
  // play (a JPEG camera, the demo) — then MJPEG, and the label says why.
  function wantMse() {
    if (playerWanted === 'hls') return false;
    if (playerWanted === 'mjpeg') {
      playerWhy = 'chosen';
      return false;
    }
    if (!window.camhub.msePlayable().length) {
      playerWhy = 'this browser plays no H.264 through MSE';
      return false;
    }
    if (playerWanted === 'mse') return true;
    if (mseRefused) {
      playerWhy = mseRefused;
      return false;
    }
    return true;
  }

  function startMse() {
    usePlayer('mse');
    streamLink.href = api + '/stream.mp4';
    mse = window.camhub.MsePlayer({
      video: videoEl,
      url: api + '/mse',
      onInfo: function (info) {
        mseInfo = info;
        streamRetries = 0;
        if (messageEl.dataset.source === 'stream') clearMessage();
        renderPlayer();
      },
      onError: function (text, fatal) {
        mse = null;
        if (fatal && playerWanted !== 'mse') {
          mseRefused = text;
          startStream();
          return;
        }
        const delay = Math.min(15000, 1000 * Math.pow(2, streamRetries));
        streamRetries += 1;
        showMessage('Video (MSE): ' + text + ' — retrying in ' + Math.round(delay / 1000) + ' s.', true);
        messageEl.dataset.source = 'stream';
        streamRetryTimer = setTimeout(startStream, delay);
      },
    });
    mse.start();
  }

  function stopMse() {
    stopWebrtc();
    if (mse) mse.stop();
    mse = null;
    mseInfo = null;
    if (playerUsed === 'hls' && videoEl.getAttribute('src')) {
      videoEl.removeAttribute('src');
      videoEl.load();
    }
  }

  // ---------------------------------------------------------------- live video (native HLS)

  // Browsers without MSE but with their own HLS player (older iPhones): the camera's LL-HLS.
  function nativeHls() {
    return typeof videoEl.canPlayType === 'function' &&
      videoEl.canPlayType('application/vnd.apple.mpegurl') !== '';
  }

  function wantHls() {
    if (playerWanted === 'hls') return true;
    if (playerWanted === 'mjpeg' || hlsRefused || !nativeHls()) return false;
    return true;
  }

  function startHls() {
    usePlayer('hls');
    const url = api + '/hls/index.m3u8';
    streamLink.href = url;
    videoEl.muted = true;
    videoEl.playsInline = true;
    videoEl.onerror = function () {
      if (playerUsed !== 'hls') return;
      const why = 'this browser cannot play the HLS stream' +
        (videoEl.error && videoEl.error.message ? ' (' + videoEl.error.message + ')' : '');
      if (playerWanted === 'hls') {
        showMessage('Video (HLS): ' + why, true);
        messageEl.dataset.source = 'stream';
        return;
      }
      hlsRefused = why;
      playerWhy = why;
      startStream();
    };
    videoEl.src = url;
    videoEl.play().catch(function () { /* muted autoplay is allowed */ });
  }

  function usePlayer(kind) {
    playerUsed = kind;
    if (kind !== 'mjpeg') playerWhy = '';
    picture.setPlayer(kind === 'mjpeg' ? 'img' : 'video');
    renderPlayer();
  }

  function renderPlayer() {
    playerLabel.dataset.player = playerUsed;
    if (playerUsed === 'webrtc') {
      playerLabel.textContent = 'WebRTC' + (rtcInfo ? ' · ' + rtcInfo.codec : '');
      playerLabel.title = "The camera's own video over WebRTC, the lowest delay (no transcoding)";
    } else if (playerUsed === 'mse') {
      playerLabel.textContent = 'MSE' + (mseInfo ? ' · ' + mseInfo.codec : '');
      playerLabel.title = "The camera's own video, played by the browser (no transcoding)";
    } else if (playerUsed === 'hls') {
      playerLabel.textContent = 'HLS';
      playerLabel.title = "The camera's own video through the browser's HLS player (no transcoding)";
    } else {
      playerLabel.textContent = 'MJPEG';
      playerLabel.title = 'JPEG pictures' + (playerWhy ? ': ' + playerWhy : '');
    }
  }

  playerSel.addEventListener('change', function () {
    playerWanted = playerSel.value;
    webrtcRefused = '';
    mseRefused = '';
    hlsRefused = '';
    streamRetries = 0;
    saveSettings();
    startStream();
  });

  streamImg.addEventListener('load', function () {
    streamRetries = 0;
    if (!messageEl.classList.contains('error') || messageEl.dataset.source === 'stream') clearMessage();
  });

  streamImg.addEventListener('error', function () {
    if (!streamImg.getAttribute('src')) return;      // we removed it ourselves
    diagnoseStream(streamImg.getAttribute('src'));
  });

  // An <img> cannot tell why a stream failed; ask the same URL with fetch to read the JSON error,
  // and drop the connection as soon as the headers say it would have worked.
  async function diagnoseStream(url) {
    let text = 'The stream stopped';
    let status = 0;
    const ctl = new AbortController();
    try {
      const resp = await fetch(url, { signal: ctl.signal, cache: 'no-store' });
      status = resp.status;
      if (!resp.ok) text = await errorOf(resp);
      else text = 'The stream was interrupted';
      ctl.abort();
    } catch (e) {
      if (e.name !== 'AbortError') text = 'Cannot reach camhub (' + e.message + ')';
    }
    if (streamImg.getAttribute('src') !== url) return; // settings changed meanwhile
    if (status === 400 || status === 404) {
      // Retrying the same request cannot help: say so and wait for the user to change something.
      showMessage(text + (status === 400 ? ' — choose another setting.' : ''), true);
      messageEl.dataset.source = 'stream';
      stopStream();
      return;
    }
    const delay = Math.min(15000, 1000 * Math.pow(2, streamRetries));
    streamRetries += 1;
    showMessage(text + ' — retrying in ' + Math.round(delay / 1000) + ' s.', true);
    messageEl.dataset.source = 'stream';
    stopStream();
    streamRetryTimer = setTimeout(startStream, delay);
  }

  for (const sel of [sizeSel, qualitySel, fpsSel]) {
    sel.addEventListener('change', function () {
      saveSettings();
      streamRetries = 0;
      if (playerUsed !== 'mse') startStream();
      sendMode();
    });
  }

  document.addEventListener('visibilitychange', function () {
    // A hidden tab holds no stream open, so an unwatched camera can go idle. The camera WebSocket
    // stays: alerts must come while the tab is in the background too.
    if (document.visibilityState === 'hidden') stopStream();
    else startStream();
  });

  // ---------------------------------------------------------------- picture and modes

  const picture = window.camhub.CameraPicture({
    media: mediaEl, img: streamImg, video: videoEl, still: still, boxes: boxesEl,
  });
  let boxesAt = 0;

  // Leaving live: the stream's current frame stays on screen as the still picture; without one
  // (the page opened in detect or off mode), one snapshot shows what the camera sees.
  function keepPicture() {
    if (picture.keepLiveFrame() || picture.hasStill()) return;
    fetch(frameUrl(), { cache: 'no-store' }).then(function (resp) {
      return resp.ok ? resp.blob() : null;
    }).then(function (blob) {
      if (blob && mode !== 'live') return picture.showSnapshot(blob);
      return null;
    }).catch(function () { /* the status panel tells why */ });
  }

  function setMode(m) {
    if (!MODES.includes(m)) return;
    const was = mode;
    mode = m;
    try { localStorage.setItem(modeKey, m); } catch (e) { /* private mode */ }
    saveSettings();
    if (m === 'live') {
      streamRetries = 0;
      startStream();
    } else {
      if (was === 'live') keepPicture();
      stopStream();
      if (messageEl.dataset.source === 'stream') clearMessage();
    }
    sendMode();
    renderMode();
  }

  for (const b of document.querySelectorAll('#mode-switch button')) {
    b.addEventListener('click', function () { setMode(b.dataset.mode); });
  }

  function renderMode() {
    mediaEl.dataset.mode = mode;
    picture.setLive(mode === 'live');
    for (const b of document.querySelectorAll('#mode-switch button')) {
      b.setAttribute('aria-pressed', String(b.dataset.mode === mode));
    }
    renderMotion();
  }

  function showBoxes(list) {
    boxesAt = Date.now();
    picture.showBoxes(list);
  }

  // Boxes with no newer word for a while are taken down (the motion message stream paused).
  setInterval(function () {
    if (picture.summary().boxes && Date.now() - boxesAt > BOXES_STALE_MS) picture.showBoxes([]);
  }, 1000);

  // ---------------------------------------------------------------- motion state and alerts

  const motion = {
    known: false,         // a mode or heartbeat message said how detection stands
    enabled: false,       // [camera.motion] enabled: detection runs always, events are stored
    detecting: false,
    active: false,
    event: null,          // the current or last event
    lastStart: 0,
    lastEnd: 0,
    starts: 0,            // motion starts seen on this page
  };

  function renderMotion() {
    const linkLost = link !== null && link.state() === 'lost';
    let pill = 'motion: off';
    let pillState = 'off';
    if (!motion.known) { pill = 'motion: …'; pillState = 'unknown'; }
    else if (motion.active) { pill = 'motion'; pillState = 'active'; }
    else if (motion.detecting) { pill = 'quiet'; pillState = 'quiet'; }
    motionPill.textContent = pill;
    motionPill.dataset.motion = pillState;
    motionPill.title = motion.detecting ? 'Motion detection runs' :
      'Motion detection is not running' + (motion.enabled ? '' : ' (no [camera.motion]; Detect mode runs it for this page)');

    let text;
    let state;
    if (linkLost) {
      text = 'connection lost — reconnecting…';
      state = 'lost';
    } else if (mode === 'live') {
      text = motion.active ? 'live · motion' : 'live';
      state = motion.active ? 'motion' : 'live';
    } else if (mode === 'off') {
      text = 'off — no pictures' + (motion.active ? ' · motion' : '');
      state = motion.active ? 'motion' : 'off';
    } else if (motion.active) {
      text = 'motion';
      state = 'motion';
    } else {
      text = motion.detecting || !motion.known ? 'quiet — nothing moving' : 'detector starting…';
      if (motion.lastEnd) text += ' · last motion ' + clock(motion.lastEnd);
      state = 'quiet';
    }
    pictureStateEl.textContent = text;
    pictureStateEl.dataset.state = state;
    mediaEl.classList.toggle('motion-active', motion.active);
    mediaEl.classList.toggle('link-lost', linkLost);

    let detector = 'not running';
    if (motion.detecting) {
      detector = motion.enabled ? 'detecting (camera config; events stored)' : 'detecting (for this page; nothing stored)';
    } else if (motion.known && !motion.enabled) detector = 'off — choose Detect, or set [camera.motion]';
    setField('motion', motion.known ? detector : null, motion.active ? 'bad' : (motion.detecting ? 'ok' : ''));
    let last = null;
    if (motion.active) last = 'now (since ' + clock(motion.lastStart) + ')';
    else if (motion.lastEnd) last = clock(motion.lastEnd) + ' (' + new Date(motion.lastEnd).toLocaleDateString() + ')';
    setField('last_motion', last, motion.active ? 'bad' : '');
    document.title = (motion.active ? '● ' : '') + (linkLost ? '⚠ ' : '') + cameraName() + ' — camhub';
  }

  function eventStartMs(e) {
    return e && typeof e.start_ms === 'number' ? e.start_ms : Date.now();
  }

  function onMotionStart(e) {
    motion.active = true;
    motion.event = e || null;
    motion.lastStart = eventStartMs(e);
    motion.starts += 1;
    if (e && Array.isArray(e.box)) showBoxes([e.box]);
    const at = clock(motion.lastStart);
    motionAlertText.textContent = 'Motion on ' + cameraName() + ' at ' + at;
    setEventLink(e);
    motionAlert.hidden = false;
    window.camhub.alerts.fire({
      kind: 'motion',
      title: 'Motion: ' + cameraName(),
      body: 'Something moves since ' + at + '.',
      tag: 'camhub-motion-' + id,
      url: location.href,
    });
    renderMotion();
  }

  function onMotionEnd(e) {
    motion.active = false;
    if (e) motion.event = e;
    motion.lastEnd = e && typeof e.end_ms === 'number' ? e.end_ms : Date.now();
    showBoxes([]);
    if (!motionAlert.hidden && e && typeof e.start_ms === 'number') {
      const secs = Math.max(0, Math.round((motion.lastEnd - e.start_ms) / 1000));
      motionAlertText.textContent = 'Motion on ' + cameraName() + ' ' + clock(e.start_ms) + ' – ' +
        clock(motion.lastEnd) + ' (' + secs + ' s)';
      setEventLink(e);
    }
    renderMotion();
  }

  function setEventLink(e) {
    if (e && typeof e.id === 'number') {
      motionAlertLink.href = 'history?camera=' + encodeURIComponent(id) + '&event=' + e.id;
      motionAlertLink.textContent = 'Event #' + e.id;
      motionAlertLink.hidden = false;
    } else {
      motionAlertLink.hidden = true;
    }
  }

  $('motion-alert-dismiss').addEventListener('click', function () {
    motionAlert.hidden = true;
    window.camhub.alerts.clear('camhub-motion-' + id);
  });

  // ---------------------------------------------------------------- the camera WebSocket

  let link = null;

  function wsUrl() {
    // Relative to the page's <base href> (camhub may be served under a prefix), as ws: or wss:.
    const url = new URL(api + '/ws', document.baseURI);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    // Start in the page's mode: a page in live or off never starts the detector for a moment.
    url.searchParams.set('mode', WS_MODE[mode]);
    return url.href;
  }

  function sendMode() {
    if (!link) return;
    const m = { mode: WS_MODE[mode], quality: Number(qualitySel.value) };
    if (sizeSel.value) m.width = Number(sizeSel.value);
    if (fpsSel.value) m.fps = Number(fpsSel.value);
    link.send(m);
  }

  function onLinkLost(since) {
    linkAlertText.textContent = 'Connection to camhub lost at ' + clock(since) + ' (no word for ' +
      Math.round(LINK_LOST_MS / 1000) + ' s) — no alert can come until it is back. Reconnecting…';
    linkAlert.hidden = false;
    bannerEl.hidden = true;       // the same news twice is noise
    window.camhub.alerts.fire({
      kind: 'link',
      title: 'camhub: connection lost',
      body: cameraName() + ': no word from camhub since ' + clock(since) + '. Reconnecting…',
      tag: 'camhub-link-' + id,
      url: location.href,
      requireInteraction: true,
    });
    renderMotion();
  }

  function onLinkRecovered(since) {
    window.camhub.alerts.clear('camhub-link-' + id);
    linkAlert.hidden = true;
    showMessage('Connection to camhub is back (lost ' + clock(since) + ' – ' + clock(Date.now()) + ').', false);
    messageEl.dataset.source = 'link';
    setTimeout(function () {
      if (messageEl.dataset.source === 'link' && link.state() !== 'lost') clearMessage();
    }, 8000);
    if (serverDown) {
      serverDown = false;
      startStream();
    }
    renderMotion();
  }

  function renderLink() {
    if (!link) return;
    const state = link.state();
    let text = 'connecting…';
    let cls = 'warn';
    if (state === 'lost') { text = 'lost since ' + clock(link.lastMessageAt()) + ' — reconnecting'; cls = 'bad'; }
    else if (state === 'up') { text = 'up (heartbeat every 2 s)'; cls = 'ok'; }
    setField('link', text, cls);
  }

  function onLinkText(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'mode':
        motion.known = true;
        motion.enabled = !!msg.motion_enabled;
        motion.detecting = !!msg.detecting;
        if (msg.active && !motion.active) {
          // Motion that started while this page was away (a reconnect): alert; motion that was
          // already going on when the page opened: show it, quietly.
          const e = msg.event;
          const isNew = e && typeof e.start_ms === 'number' && e.start_ms > pageOpenedAt &&
            !(motion.event && motion.event.start_ms === e.start_ms);
          if (isNew) onMotionStart(e);
          else {
            motion.active = true;
            motion.event = e || null;
            motion.lastStart = eventStartMs(e);
          }
        } else if (!msg.active && motion.active) {
          onMotionEnd(msg.event);
        } else if (msg.event) {
          motion.event = msg.event;
          if (typeof msg.event.end_ms === 'number') motion.lastEnd = msg.event.end_ms;
        }
        renderMotion();
        break;
      case 'heartbeat':
        motion.known = true;
        motion.detecting = !!msg.detecting;
        if (!msg.active && motion.active) onMotionEnd(null);
        renderMotion();
        break;
      case 'status':
        if (cam) {
          const s = Object.assign({}, cam, msg);
          delete s.type;
          delete s.camera;
          cam = s;
          renderStatus(cam);
        }
        break;
      case 'motion_start':
        onMotionStart(msg.event);
        break;
      case 'motion':
        if (!motion.active) {
          motion.active = true;
          motion.lastStart = Date.now();
          renderMotion();
        }
        showBoxes(msg.boxes);
        break;
      case 'motion_end':
        onMotionEnd(msg.event);
        break;
      case 'error':
        showMessage(String(msg.error || 'error'), true);
        messageEl.dataset.source = 'link';
        break;
      default:
        break;
    }
  }

  function openLink() {
    link = window.camhub.CameraLink({
      url: wsUrl,
      lostAfterMs: LINK_LOST_MS,
      backoffMinMs: LINK_BACKOFF_MIN_MS,
      backoffMaxMs: LINK_BACKOFF_MAX_MS,
      onOpen: sendMode,
      onText: onLinkText,
      onBinary: function (data) {
        if (mode === 'detect') picture.offer(data);
      },
      onLost: onLinkLost,
      onRecovered: onLinkRecovered,
      onChange: renderLink,
    });
  }

  // ---------------------------------------------------------------- snapshot

  function timestamp(d) {
    const p = function (n, w) { return String(n).padStart(w || 2, '0'); };
    return d.getFullYear() + p(d.getMonth() + 1) + p(d.getDate()) + '-' +
      p(d.getHours()) + p(d.getMinutes()) + p(d.getSeconds());
  }

  function safeFilePart(s) {
    return String(s).replace(/[^A-Za-z0-9_-]+/g, '_') || 'camera';
  }

  snapBtn.addEventListener('click', async function () {
    snapBtn.disabled = true;
    const old = snapBtn.textContent;
    snapBtn.textContent = 'Taking snapshot…';
    try {
      const resp = await fetch(frameUrl(), { cache: 'no-store' });
      if (!resp.ok) {
        showMessage('Snapshot failed: ' + await errorOf(resp), true);
        messageEl.dataset.source = 'snapshot';
        return;
      }
      const age = resp.headers.get('X-Frame-Age-Ms');
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const name = safeFilePart(id) + '-' + timestamp(new Date()) + '.jpg';
      snapThumb.onload = function () {
        snapInfo.textContent = name + ' · ' + snapThumb.naturalWidth + '×' + snapThumb.naturalHeight +
          ' · ' + Math.round(blob.size / 1024) + ' KB' + (age !== null ? ' · frame ' + age + ' ms old' : '') +
          ' — click to save again';
      };
      snapThumb.src = url;
      snapLink.href = url;
      snapLink.download = name;
      snapInfo.textContent = name;
      snapBox.hidden = false;
      if (snapshotUrl) URL.revokeObjectURL(snapshotUrl);   // the previous snapshot's link is replaced
      snapshotUrl = url;
      const a = document.createElement('a');
      a.href = url;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      if (messageEl.dataset.source === 'snapshot') clearMessage();
    } catch (e) {
      showMessage('Snapshot failed: cannot reach camhub (' + e.message + ')', true);
      messageEl.dataset.source = 'snapshot';
    } finally {
      snapBtn.disabled = false;
      snapBtn.textContent = old;
    }
  });

  // ---------------------------------------------------------------- status

  // What each failure kind from the API means to a user.
  const FAILURE_KINDS = {
    auth: 'wrong user name or password (auth)',
    refused: 'nothing listens at that address (refused)',
    timeout: 'no answer (timeout)',
    not_found: 'wrong path or file (not_found)',
    unreachable: 'host unreachable (unreachable)',
    unsupported_codec: 'unsupported codec (unsupported_codec)',
    protocol: 'camera or network error (protocol)',
  };

  function setField(name, value, cls) {
    const dd = document.querySelector('#status dd[data-field="' + name + '"]');
    if (!dd) return;
    dd.textContent = value === null || value === undefined || value === '' ? '–' : String(value);
    dd.className = (name === 'url' || name === 'substream_url' ? 'mono ' : '') + (cls || '');
  }

  function renderStatus(c) {
    const state = c.state || 'idle';
    titleEl.textContent = c.name || c.id || id;
    titleEl.title = id;
    pillEl.textContent = state;
    pillEl.dataset.state = state;
    const stateCls = { streaming: 'ok', connecting: 'warn', retrying: 'bad' }[state] || '';
    setField('state', state, stateCls);
    setField('reason', c.reason, c.reason ? 'bad' : '');
    setField('codec', c.codec);
    setField('resolution', c.width && c.height ? c.width + '×' + c.height : null);
    setField('fps', typeof c.fps === 'number' ? (Math.round(c.fps * 10) / 10) : null);
    setField('viewers', c.viewers);
    setField('reconnects', c.reconnects);
    setField('last_error', c.last_error, c.last_error ? 'bad' : '');
    setField('error_kind', c.error_kind ? (FAILURE_KINDS[c.error_kind] || c.error_kind) : null,
      c.error_kind ? 'bad' : '');
    setField('last_frame_age_ms', typeof c.last_frame_age_ms === 'number' ? c.last_frame_age_ms + ' ms' : null);
    setField('url', c.url);
    setField('substream_url', c.substream_url);
    renderMotion();

    // No overlay here: while the camera is down, the MJPEG stream itself carries camhub's labelled
    // "reconnecting…" placeholder (name, state, reason); covering it would say the same thing twice.
  }

  async function refreshStatus() {
    try {
      const resp = await fetch('api/cameras', { cache: 'no-store' });
      if (!resp.ok) throw new Error(await errorOf(resp));
      const list = await resp.json();
      const c = Array.isArray(list) ? list.find(function (x) { return x && x.id === id; }) : null;
      bannerEl.hidden = true;
      if (serverDown) {
        // camhub came back (restart): the old multipart connection is gone, open a new one.
        serverDown = false;
        startStream();
      }
      if (!c) {
        cam = null;
        titleEl.textContent = id || '(no camera id)';
        showMessage('Unknown camera "' + id + '". It is not in the configuration; go back to the grid.', true);
        messageEl.dataset.source = 'status';
        stopStream();
        return;
      }
      if (!cam && messageEl.dataset.source === 'status') {
        clearMessage();
        startStream();
      }
      cam = c;
      renderStatus(c);
      updatedEl.textContent = 'Updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      serverDown = true;
      if (!link || link.state() !== 'lost') {
        bannerEl.textContent = 'Cannot reach camhub: ' + e.message + ' — retrying…';
        bannerEl.hidden = false;
      }
    }
  }

  // ---------------------------------------------------------------- start

  titleEl.textContent = id || '(no camera id)';
  document.title = (id || 'camera') + ' — camhub';
  $('history-link').href = 'history?camera=' + encodeURIComponent(id);
  $('calibrate-link').href = 'cameras/' + encodeURIComponent(id) + '/calibrate';
  restoreSettings();
  renderMode();
  if (id) {
    cam = {};           // assume it exists until /api/cameras says otherwise
    startStream();
    if (mode !== 'live') keepPicture();
    openLink();
  }
  refreshStatus();
  setInterval(function () {
    if (document.visibilityState !== 'hidden') refreshStatus();
  }, STATUS_MS);

  // session.js put the login helpers here first; alerts.js the alerts.
  window.camhub = Object.assign(window.camhub || {}, {
    /** The page's state, for the headless browser tests. */
    cameraPage: function () {
      return Object.assign({
        mode,
        link: link ? link.state() : 'none',
        motion: {
          known: motion.known,
          enabled: motion.enabled,
          detecting: motion.detecting,
          active: motion.active,
          starts: motion.starts,
          event: motion.event && typeof motion.event.id === 'number' ? motion.event.id : null,
        },
        alerts: window.camhub.alerts.log(),
        player: playerUsed,
        playerWhy,
        webrtcRefused,
        webrtc: rtc ? {
          codec: rtcInfo ? rtcInfo.codec : null,
          width: videoEl.videoWidth,
          height: videoEl.videoHeight,
          currentTime: videoEl.currentTime,
          connection: rtc.connection() ? rtc.connection().connectionState : 'closed',
        } : null,
        mse: mse ? mse.summary() : null,
      }, picture.summary());
    },
  });
})();
