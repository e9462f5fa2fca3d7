// camhub grid page (`/`): every camera as a live tile, all of them over ONE WebSocket (`/api/ws`),
// because browsers allow only 6 HTTP/1.1 connections per host and a grid may show 16 cameras.
//
// Rules this file keeps:
// - Server strings (names, reasons, errors) only ever go through textContent / attributes, never innerHTML.
// - Latest frame only: a tile decodes at most one JPEG at a time; frames that arrive meanwhile replace
//   each other, so a slow device skips frames instead of queueing them.
// - A tile never blinks: each JPEG is decoded off-screen (createImageBitmap) and only then drawn onto
//   the tile's canvas in one step, so the picture on screen is always a whole frame, and the previous
//   one stays until then. Swapping an <img>'s src per frame instead left a 1280-wide tile black in
//   Chromium's screenshots (tests/ui.rs: the_grid_never_blinks).
// - A link that says nothing for 12 s (no frame, no heartbeat) is dead: show a banner and reconnect.
// - Motion: the server tells each camera's motion starts and ends (`{"type":"motion"}`); a tile shows a
//   "motion" badge while it lasts, and when the last motion was.
//
// Test hooks: each tile has data-camera, data-seq (seq of the frame shown), data-frames (frames shown),
// data-motion (active, quiet or off) and its picture is the <canvas> of class "tile-img";
// window.camhub.tiles() summarises them.
'use strict';

(function () {
  const WIDTH_STEPS = [320, 480, 640, 960, 1280];
  const STALE_LINK_MS = 12000;        // no message at all for this long: the link is dead
  const POLL_MS = 5000;               // /api/cameras fallback refresh
  const RESIZE_DEBOUNCE_MS = 300;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;

  const params = new URLSearchParams(location.search);
  const QUALITY = clampInt(params.get('quality'), 1, 100, 70);
  const FPS = params.has('fps') ? Math.max(0, Number(params.get('fps')) || 0) : 0; // 0 = uncapped

  const gridEl = document.getElementById('grid');
  const bannerEl = document.getElementById('banner');
  const emptyEl = document.getElementById('empty');
  const summaryEl = document.getElementById('summary');
  const linkStateEl = document.getElementById('link-state');

  /** id -> tile record; Map keeps the server's camera order. */
  const tiles = new Map();

  let ws = null;
  let wsEverOpened = false;
  let attempts = 0;
  let reconnectTimer = 0;
  let lastMessageAt = 0;
  let pendingFrame = null;            // the header of the binary message that comes next
  let lastSubscription = '';
  let hidden = document.visibilityState === 'hidden';

  function clampInt(v, lo, hi, dflt) {
    const n = parseInt(v, 10);
    return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : dflt;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function cameraHref(id) {
    return 'cameras/' + encodeURIComponent(id);
  }

  // ---------------------------------------------------------------- tiles

  function createTile(cam) {
    const root = el('article', 'tile');
    root.dataset.camera = cam.id;
    root.dataset.seq = '';
    root.dataset.frames = '0';
    root.dataset.state = cam.state || 'idle';

    const media = el('a', 'tile-media');
    media.href = cameraHref(cam.id);
    media.setAttribute('aria-label', 'Open camera ' + (cam.name || cam.id));
    // A canvas, not an <img>: it keeps showing the last frame drawn until the next one is drawn.
    const canvas = el('canvas', 'tile-img');
    canvas.width = 0;
    canvas.height = 0;
    canvas.setAttribute('aria-hidden', 'true');
    const overlay = el('div', 'overlay');
    const overlayTitle = el('span', 'overlay-title');
    const overlayReason = el('span', 'overlay-reason');
    overlay.append(overlayTitle, overlayReason);
    const motionBadge = el('span', 'motion-badge', 'motion');
    motionBadge.hidden = true;
    media.append(canvas, overlay, motionBadge);

    const head = el('div', 'tile-head');
    const name = el('a', 'tile-name');
    name.href = cameraHref(cam.id);
    const badge = el('span', 'badge');
    const dot = el('span', 'dot');
    const stateText = el('span', 'badge-state');
    badge.append(dot, stateText);
    head.append(name, badge);

    const info = el('div', 'tile-info');
    const details = el('span', 'tile-details');
    const err = el('span', 'tile-error');
    const lastMotion = el('a', 'tile-motion');
    lastMotion.href = 'history?camera=' + encodeURIComponent(cam.id);
    info.append(details, err, lastMotion);

    root.append(media, head, info);

    const tile = {
      id: cam.id,
      cam: Object.assign({}, cam),
      root, media, canvas, overlay, overlayTitle, overlayReason, name, stateText, details, err,
      motionBadge, lastMotion,
      context: canvas.getContext('2d'),
      motion: { active: false, detecting: false, last: 0, since: 0 },
      wsError: null,       // error the WebSocket reported for this subscription
      seq: null,
      frames: 0,
      decoding: false,     // a JPEG of this tile is being decoded off-screen
      next: null,          // newest frame waiting for the current decode to finish
      gone: false,         // the tile was removed: a decode that finishes later draws nothing
    };
    renderTile(tile);
    renderMotion(tile);
    if (window.ResizeObserver) resizeObserver.observe(media);
    return tile;
  }

  function destroyTile(tile) {
    if (window.ResizeObserver) resizeObserver.unobserve(tile.media);
    tile.next = null;
    tile.gone = true;
    tile.root.remove();
  }

  const STATUS_KEYS = ['name', 'url', 'substream_url', 'state', 'reason', 'codec', 'width', 'height',
    'fps', 'viewers', 'reconnects', 'last_error', 'error_kind', 'last_frame_age_ms'];

  // What each failure kind from the API means to a user, shown before the message.
  const FAILURE_KINDS = {
    auth: 'wrong user name or password',
    refused: 'nothing listens at that address',
    timeout: 'no answer',
    not_found: 'wrong path or file',
    unreachable: 'host unreachable',
    unsupported_codec: 'unsupported codec',
    protocol: 'camera error',
  };

  function withKind(kind, message) {
    const label = FAILURE_KINDS[kind];
    return label && message ? label + ': ' + message : message;
  }

  function mergeStatus(tile, msg) {
    for (const k of STATUS_KEYS) {
      if (Object.prototype.hasOwnProperty.call(msg, k)) tile.cam[k] = msg[k];
    }
    renderTile(tile);
  }

  function fmtFps(fps) {
    if (typeof fps !== 'number' || !isFinite(fps)) return null;
    return (fps >= 10 ? Math.round(fps) : Math.round(fps * 10) / 10) + ' fps';
  }

  function renderTile(tile) {
    const c = tile.cam;
    const state = c.state || 'idle';
    tile.root.dataset.state = state;
    tile.name.textContent = c.name || c.id;
    tile.name.title = c.id;
    tile.stateText.textContent = state;

    const parts = [];
    if (c.width && c.height) parts.push(c.width + '×' + c.height);
    const f = fmtFps(c.fps);
    if (f) parts.push(f);
    if (c.codec) parts.push(String(c.codec));
    if (typeof c.viewers === 'number') parts.push(c.viewers + (c.viewers === 1 ? ' viewer' : ' viewers'));
    tile.details.textContent = parts.join(' · ');

    const problem = tile.wsError || withKind(c.error_kind, c.reason || c.last_error || '');
    tile.err.textContent = problem;
    tile.err.title = problem;

    // Overlay: not streaming (keep the last frame, dimmed), or no frame yet.
    let title = '';
    let reason = '';
    if (tile.wsError) {
      title = 'error';
      reason = tile.wsError;
    } else if (state === 'retrying') {
      title = 'reconnecting…';
      reason = withKind(c.error_kind, c.reason || c.last_error || '');
    } else if (state === 'connecting') {
      title = 'connecting…';
      reason = c.reason || '';
    } else if (state === 'idle' && tile.frames === 0) {
      title = 'starting…';
    } else if (state === 'streaming' && tile.frames === 0) {
      title = 'waiting for video…';
    } else if (state !== 'streaming' && state !== 'idle') {
      title = state;
      reason = c.reason || '';
    }
    const down = tile.wsError !== null || (state !== 'streaming' && state !== 'idle');
    tile.root.classList.toggle('tile--down', down);
    tile.overlay.hidden = title === '';
    tile.overlayTitle.textContent = title;
    tile.overlayReason.textContent = reason;
  }

  // The camera's motion as the server told it: {active, detecting, event} (event: the current or
  // last one, with start_ms and end_ms).
  function mergeMotion(tile, msg) {
    const m = tile.motion;
    const e = msg.event && typeof msg.event === 'object' ? msg.event : null;
    m.active = !!msg.active;
    m.detecting = !!msg.detecting;
    if (m.active) m.since = e && typeof e.start_ms === 'number' ? e.start_ms : Date.now();
    const last = e ? (typeof e.end_ms === 'number' ? e.end_ms : e.start_ms) : null;
    if (typeof last === 'number') m.last = Math.max(m.last, last);
    else if (m.active) m.last = Date.now();
    renderMotion(tile);
  }

  function hhmm(ms) {
    const d = new Date(ms);
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }

  function renderMotion(tile) {
    const m = tile.motion;
    tile.root.dataset.motion = m.active ? 'active' : (m.detecting ? 'quiet' : 'off');
    tile.root.classList.toggle('tile--motion', m.active);
    tile.motionBadge.hidden = !m.active;
    tile.motionBadge.title = m.active ? 'Motion since ' + new Date(m.since).toLocaleTimeString() : '';
    if (m.last) {
      const d = new Date(m.last);
      const today = d.toDateString() === new Date().toDateString();
      tile.lastMotion.textContent = m.active ? 'motion now' : 'last motion ' + (today ? hhmm(m.last) : d.toLocaleDateString() + ' ' + hhmm(m.last));
      tile.lastMotion.title = 'Last motion ' + d.toLocaleString() + ' — open the motion history';
    } else {
      tile.lastMotion.textContent = '';
      tile.lastMotion.title = '';
    }
  }

  // A frame arrived for this tile: it becomes the newest waiting frame (replacing an older one that
  // was never decoded), and is decoded at once unless the tile is still decoding the previous one.
  function offerFrame(tile, meta, data) {
    tile.next = { meta, data };
    if (!tile.decoding) decodeFrames(tile);
  }

  // Decodes the tile's newest waiting frame off-screen and draws it, until none waits. The frame on
  // screen stays untouched while the next one decodes; a broken JPEG is skipped and leaves it there.
  async function decodeFrames(tile) {
    tile.decoding = true;
    while (tile.next && !tile.gone) {
      const f = tile.next;
      tile.next = null;
      let picture = null;
      try {
        picture = await decodeJpeg(f.data);
      } catch (e) {
        continue;
      }
      if (tile.gone) {
        release(picture);
        break;
      }
      drawFrame(tile, picture, f.meta);
    }
    tile.decoding = false;
  }

  // A decoded picture of JPEG bytes, drawable on a canvas. createImageBitmap decodes off the main
  // thread; browsers without it decode a detached Image (img.decode()) instead.
  function decodeJpeg(data) {
    const blob = new Blob([data], { type: 'image/jpeg' });
    if (typeof window.createImageBitmap === 'function') return window.createImageBitmap(blob);
    const url = URL.createObjectURL(blob);
    const img = new Image();
    img.src = url;
    return img.decode().then(function () {
      URL.revokeObjectURL(url);
      return img;
    }, function (e) {
      URL.revokeObjectURL(url);
      throw e;
    });
  }

  function release(picture) {
    if (picture && typeof picture.close === 'function') picture.close();
  }

  // Replaces the tile's picture with a decoded one in one step: resizing a canvas clears it, but the
  // new frame is drawn in the same task, before the browser paints.
  function drawFrame(tile, picture, meta) {
    const c = tile.canvas;
    if (c.width !== picture.width || c.height !== picture.height) {
      c.width = picture.width;
      c.height = picture.height;
    }
    tile.context.drawImage(picture, 0, 0);
    release(picture);
    tile.seq = meta.seq;
    tile.frames += 1;
    tile.root.dataset.seq = String(meta.seq);
    tile.root.dataset.frames = String(tile.frames);
    if (tile.frames === 1 || tile.wsError) {
      tile.wsError = null;
      renderTile(tile);
    }
  }

  // ---------------------------------------------------------------- subscription

  // The width to ask for: the picture's displayed width in device pixels, rounded up to a step so
  // that tiles of slightly different sizes share one server-side JPEG variant.
  function wantedWidth(tile) {
    const r = tile.media.getBoundingClientRect();
    let cssW = r.width;
    const c = tile.cam;
    if (c.width && c.height && r.height > 0) {
      // object-fit: contain -> a tall picture is limited by the box height
      cssW = Math.min(r.width, r.height * (c.width / c.height));
    }
    const px = cssW * (window.devicePixelRatio || 1);
    if (!(px > 0)) return WIDTH_STEPS[2];
    for (const s of WIDTH_STEPS) if (s >= px * 0.95) return s;
    return WIDTH_STEPS[WIDTH_STEPS.length - 1];
  }

  function subscription() {
    if (hidden) return [];
    const subs = [];
    for (const tile of tiles.values()) {
      const s = { camera: tile.id, width: wantedWidth(tile), quality: QUALITY };
      if (FPS > 0) s.fps = FPS;
      subs.push(s);
    }
    return subs;
  }

  function sendSubscription(force) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify({ subscribe: subscription() });
    if (!force && text === lastSubscription) return;
    lastSubscription = text;
    ws.send(text);
  }

  let resizeTimer = 0;
  function scheduleResubscribe() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { sendSubscription(false); }, RESIZE_DEBOUNCE_MS);
  }
  const resizeObserver = window.ResizeObserver ? new ResizeObserver(scheduleResubscribe) : null;
  window.addEventListener('resize', scheduleResubscribe);

  document.addEventListener('visibilitychange', function () {
    // A background tab needs no pictures; the server stops encoding for it (and the camera may idle).
    hidden = document.visibilityState === 'hidden';
    sendSubscription(false);
  });

  // ---------------------------------------------------------------- WebSocket

  function wsUrl() {
    // Relative to the page's <base href> (camhub may be served under a prefix), as ws: or wss:.
    const url = new URL('api/ws', document.baseURI);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
  }

  function setLinkState(text, cls) {
    linkStateEl.textContent = text;
    linkStateEl.className = 'link-state ' + (cls || '');
  }

  function showBanner(text) {
    bannerEl.textContent = text;
    bannerEl.hidden = false;
    document.body.classList.add('offline');
  }

  function hideBanner() {
    bannerEl.hidden = true;
    document.body.classList.remove('offline');
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect('cannot open WebSocket: ' + e.message);
      return;
    }
    ws = sock;
    sock.binaryType = 'arraybuffer';
    pendingFrame = null;
    lastMessageAt = Date.now();       // the connect attempt itself is bounded by the same watchdog
    setLinkState(wsEverOpened ? 'reconnecting…' : 'connecting…', 'warn');

    sock.onopen = function () {
      wsEverOpened = true;
      lastMessageAt = Date.now();
      setLinkState('live', 'ok');
      sendSubscription(true);
    };
    sock.onmessage = function (ev) {
      lastMessageAt = Date.now();
      if (attempts !== 0 || !bannerEl.hidden) {
        attempts = 0;
        hideBanner();
      }
      if (typeof ev.data === 'string') onText(ev.data);
      else onBinary(ev.data);
    };
    sock.onerror = function () { /* onclose follows and handles it */ };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      const why = ev.code === 1000 || ev.code === 1005 ? 'closed by the server' :
        'closed (code ' + ev.code + (ev.reason ? ': ' + ev.reason : '') + ')';
      scheduleReconnect(why);
    };
  }

  // Abandon the current socket without waiting for a close handshake a dead link will never finish.
  function dropSocket() {
    const sock = ws;
    ws = null;
    pendingFrame = null;
    lastSubscription = '';
    if (!sock) return;
    sock.onopen = sock.onmessage = sock.onerror = sock.onclose = null;
    try { sock.close(); } catch (e) { /* already closed */ }
  }

  function scheduleReconnect(why) {
    dropSocket();
    if (reconnectTimer) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempts));
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    attempts += 1;
    showBanner('Connection lost (' + why + ') — reconnecting in ' + Math.max(1, Math.round(delay / 1000)) + ' s…');
    setLinkState('offline', 'bad');
    reconnectTimer = setTimeout(connect, delay);
  }

  function onText(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'frame':
        pendingFrame = msg;
        break;
      case 'status': {
        const tile = tiles.get(msg.camera);
        if (tile) {
          mergeStatus(tile, msg);
          updateSummary();
        }
        break;
      }
      case 'motion': {
        const tile = tiles.get(msg.camera);
        if (tile) mergeMotion(tile, msg);
        break;
      }
      case 'error': {
        const tile = msg.camera !== undefined ? tiles.get(msg.camera) : undefined;
        if (tile) {
          tile.wsError = String(msg.error || 'error');
          renderTile(tile);
        } else {
          console.warn('camhub: server error', msg.error);
        }
        break;
      }
      case 'heartbeat':
      default:
        break;
    }
  }

  function onBinary(data) {
    const meta = pendingFrame;
    pendingFrame = null;
    if (!meta) return;                   // a binary message without its header: ignore it
    const tile = tiles.get(meta.camera);
    if (tile) offerFrame(tile, meta, data);
  }

  setInterval(function () {
    if (!ws) return;
    if (Date.now() - lastMessageAt > STALE_LINK_MS) {
      scheduleReconnect('no data for ' + Math.round(STALE_LINK_MS / 1000) + ' s');
    }
  }, 1000);

  // ---------------------------------------------------------------- camera list

  function applyCameraList(list) {
    const seen = new Set();
    let changed = false;
    for (const cam of list) {
      if (!cam || typeof cam.id !== 'string') continue;
      seen.add(cam.id);
      let tile = tiles.get(cam.id);
      if (!tile) {
        tile = createTile(cam);
        tiles.set(cam.id, tile);
        changed = true;
      } else {
        mergeStatus(tile, cam);
      }
    }
    for (const [id, tile] of tiles) {
      if (!seen.has(id)) {
        destroyTile(tile);
        tiles.delete(id);
        changed = true;
      }
    }
    if (changed) {
      // Keep DOM order equal to the server's order.
      for (const cam of list) {
        const t = cam && tiles.get(cam.id);
        if (t) gridEl.appendChild(t.root);
      }
      gridEl.dataset.count = String(tiles.size);
      gridEl.style.setProperty('--cols', String(columnsFor(tiles.size)));
      sendSubscription(false);
    }
    emptyEl.hidden = tiles.size !== 0;
    if (tiles.size === 0) emptyEl.textContent = 'No cameras configured. Add [[camera]] sections to camhub.toml.';
    updateSummary();
  }

  function updateSummary() {
    let streaming = 0;
    for (const t of tiles.values()) if (t.cam.state === 'streaming') streaming += 1;
    summaryEl.textContent = tiles.size + (tiles.size === 1 ? ' camera' : ' cameras') +
      (tiles.size ? ' · ' + streaming + ' streaming' : '');
  }

  // Preferred column count on wide screens, so that 9 or 16 cameras fit as 3×3 / 4×4.
  function columnsFor(n) {
    if (n <= 1) return 1;
    if (n <= 4) return 2;
    if (n <= 9) return 3;
    if (n <= 16) return 4;
    return 5;
  }

  let listFailures = 0;
  async function refreshCameras() {
    try {
      const resp = await fetch('api/cameras', { cache: 'no-store' });
      if (!resp.ok) {
        let detail = resp.status + ' ' + resp.statusText;
        try {
          const body = await resp.json();
          if (body && body.error) detail = String(body.error);
        } catch (e) { /* not JSON */ }
        throw new Error(detail);
      }
      const list = await resp.json();
      if (!Array.isArray(list)) throw new Error('unexpected /api/cameras response');
      listFailures = 0;
      applyCameraList(list);
      return true;
    } catch (e) {
      listFailures += 1;
      if (tiles.size === 0) {
        emptyEl.hidden = false;
        emptyEl.textContent = 'Cannot load the camera list: ' + e.message + ' — retrying…';
      } else if (listFailures >= 2 && bannerEl.hidden && !window.camhub.connected()) {
        showBanner('Cannot reach the server: ' + e.message);
      }
      return false;
    }
  }

  async function start() {
    await refreshCameras();
    connect();
    setInterval(refreshCameras, POLL_MS);
  }

  // session.js put the login helpers here first.
  window.camhub = Object.assign(window.camhub || {}, {
    /** {id: {seq, frames, loaded, motion}} for every tile — used by the headless browser tests. */
    tiles: function () {
      const out = {};
      for (const [id, t] of tiles) {
        out[id] = {
          seq: t.seq,
          frames: t.frames,
          loaded: t.frames > 0 && t.canvas.width > 0,
          motion: t.motion.active,
          lastMotion: t.motion.last || null,
        };
      }
      return out;
    },
    /** true while the WebSocket is open. */
    connected: function () {
      return !!ws && ws.readyState === WebSocket.OPEN;
    },
  });

  start();
})();
