// camhub camera page (`/cameras/{id}`): one camera's MJPEG stream at a chosen size / quality / fps,
// a snapshot download, and a status panel refreshed from /api/cameras every 2 s.
//
// Server strings (names, reasons, errors) only ever go through textContent, never innerHTML.
// The chosen size/quality/fps live in the page's query string, so a reload or a shared link keeps them.
'use strict';

(function () {
  const STATUS_MS = 2000;

  const id = cameraIdFromLocation();
  const api = 'api/cameras/' + encodeURIComponent(id);

  const $ = function (sel) { return document.getElementById(sel); };
  const streamImg = $('stream');
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
  const updatedEl = $('updated');
  const snapBox = $('snapshot-result');
  const snapLink = $('snapshot-link');
  const snapThumb = $('snapshot-thumb');
  const snapInfo = $('snapshot-info');

  let cam = null;                 // last status from /api/cameras
  let streamRetryTimer = 0;
  let streamRetries = 0;
  let serverDown = false;
  let snapshotUrl = null;

  function cameraIdFromLocation() {
    // /cameras/{id} (served by camhub); camera.html?id=... also works for local development.
    const m = location.pathname.match(/\/cameras\/([^/]+)\/?$/);
    if (m) {
      try { return decodeURIComponent(m[1]); } catch (e) { return m[1]; }
    }
    return new URLSearchParams(location.search).get('id') || '';
  }

  // ---------------------------------------------------------------- settings

  function restoreSettings() {
    const q = new URLSearchParams(location.search);
    setSelect(sizeSel, q.get('width'));
    setSelect(qualitySel, q.get('quality'));
    setSelect(fpsSel, q.get('fps'));
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

  // The readable error of a failed response: the server's {"error": "..."} if there is one.
  async function errorOf(resp) {
    let text = '';
    try {
      text = await resp.text();
      const body = JSON.parse(text);
      if (body && typeof body.error === 'string') return body.error + ' (HTTP ' + resp.status + ')';
    } catch (e) { /* not JSON */ }
    text = text.trim().slice(0, 200);
    return 'HTTP ' + resp.status + (resp.statusText ? ' ' + resp.statusText : '') + (text ? ': ' + text : '');
  }

  // ---------------------------------------------------------------- stream

  function startStream() {
    clearTimeout(streamRetryTimer);
    streamRetryTimer = 0;
    const url = streamUrl();
    streamLink.href = url;
    streamLink.textContent = 'Stream URL';
    // Dropping the old src first makes the browser close the previous multipart connection, so the
    // server releases that variant before the new one is asked for.
    streamImg.removeAttribute('src');
    if (document.visibilityState === 'hidden') return;
    streamImg.src = url;
  }

  function stopStream() {
    clearTimeout(streamRetryTimer);
    streamRetryTimer = 0;
    streamImg.removeAttribute('src');
  }

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
      startStream();
    });
  }

  document.addEventListener('visibilitychange', function () {
    // A hidden tab holds no stream open, so an unwatched camera can go idle.
    if (document.visibilityState === 'hidden') stopStream();
    else startStream();
  });

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
    document.title = (c.name || c.id) + ' — camhub';
    titleEl.textContent = c.name || c.id;
    titleEl.title = c.id;
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
      bannerEl.textContent = 'Cannot reach camhub: ' + e.message + ' — retrying…';
      bannerEl.hidden = false;
    }
  }

  // ---------------------------------------------------------------- start

  titleEl.textContent = id || '(no camera id)';
  document.title = (id || 'camera') + ' — camhub';
  restoreSettings();
  if (id) {
    cam = {};           // assume it exists until /api/cameras says otherwise
    startStream();
  }
  refreshStatus();
  setInterval(function () {
    if (document.visibilityState !== 'hidden') refreshStatus();
  }, STATUS_MS);
})();
