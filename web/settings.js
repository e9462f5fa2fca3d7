// The settings page (admins): the cameras of the config file (list, add, edit, test connection,
// disable / enable, delete, reload the file) and API tokens (list, make, revoke). Requests go
// through session.js's fetch, which adds the CSRF token and sends the browser to the login page
// when the session ends. Every URL is relative to the page's <base href> (camhub may be served
// under a prefix).
//
// Server strings (names, URLs, errors) only ever go through textContent, never innerHTML.
//
// Test hooks: each camera row is a <tr data-camera="ID" data-enabled="true|false"> whose live state
// cell has data-state; #camera-result (what a change did), #camera-problem / #cf-problem (what went
// wrong, each error of the file a <li>), #cf-test-result with data-ok after "Test connection".
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const when = (ms) => (ms ? new Date(ms).toLocaleString() : '—');
  const LIVE_MS = 3000;

  // What each failure kind from the API means to a user (as on the grid).
  const FAILURE_KINDS = {
    auth: 'wrong user name or password',
    refused: 'nothing listens at that address',
    timeout: 'no answer',
    not_found: 'wrong path or file',
    unreachable: 'host unreachable',
    unsupported_codec: 'unsupported codec',
    protocol: 'camera error',
  };
  const CODECS = { h264: 'H.264', h265: 'H.265', hevc: 'H.265', mjpeg: 'MJPEG', demo: 'demo pattern' };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function cell(text, cls) {
    return el('td', cls, text);
  }

  function button(text, cls, onClick) {
    const b = el('button', cls, text);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  /** The JSON body of a response, or null. */
  async function jsonOf(resp) {
    try {
      return await resp.json();
    } catch (e) {
      return null;
    }
  }

  const errorOf = window.camhub.errorOf;

  /** Sends `body` as JSON; answers {ok, status, body}. A network failure is a status of 0. */
  async function send(method, url, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(url, init);
    } catch (e) {
      return { ok: false, status: 0, body: { error: 'cannot reach camhub: ' + e.message, errors: [] } };
    }
    const parsed = await jsonOf(resp);
    return {
      ok: resp.ok,
      status: resp.status,
      body: parsed || { error: resp.status + ' ' + resp.statusText, errors: [] },
    };
  }

  // ================================================================ cameras

  let fileCameras = [];           // the file's [[camera]] tables, as GET api/config/cameras lists them
  let live = new Map();           // id -> entry of GET api/cameras (running cameras)
  let editing = null;             // the camera (as listed) the form edits; null while adding

  /** Shows a problem in `prefix`-problem: a sentence and the file's errors, one a line. */
  function showProblem(prefix, body, lead) {
    const box = $(prefix + '-problem');
    const list = $(prefix + '-problem-list');
    list.textContent = '';
    if (!body) {
      box.hidden = true;
      return;
    }
    const errors = Array.isArray(body.errors) ? body.errors : [];
    $(prefix + '-problem-text').textContent = errors.length
      ? (lead || 'Nothing was changed. ') + (errors.length === 1 ? 'The error:' : 'The errors:')
      : String(body.error || 'failed');
    for (const e of errors) list.append(el('li', null, e));
    list.hidden = errors.length === 0;
    box.hidden = false;
    box.scrollIntoView({ block: 'nearest' });
  }

  /** What a change or reload did, from its answer: {cameras: {added, restarted, removed, unchanged}, restart_needed, warnings}. */
  function describeOutcome(what, o) {
    const c = (o && o.cameras) || {};
    const names = (list) => (list && list.length ? list.join(', ') : '–');
    const lines = [
      what + ' Cameras added: ' + names(c.added) + ' · restarted: ' + names(c.restarted) +
        ' · removed: ' + names(c.removed) + ' · unchanged: ' + names(c.unchanged) + '.',
    ];
    if (o && o.restart_needed && o.restart_needed.length) {
      lines.push('Restart camhub to apply [server] ' + o.restart_needed.join(', ') + '.');
    }
    for (const w of (o && o.warnings) || []) lines.push(w);
    return lines;
  }

  function showResult(lines) {
    const box = $('camera-result');
    box.textContent = '';
    if (!lines) {
      box.hidden = true;
      return;
    }
    for (const line of lines) box.append(el('p', null, line));
    box.hidden = false;
  }

  function liveText(c, enabled) {
    const l = live.get(c.id);
    if (!l) return { state: enabled ? 'absent' : 'disabled', text: enabled ? 'not running — reload the file?' : '—' };
    const parts = [l.state];
    if (l.state === 'streaming' && l.width && l.height) parts.push(l.width + '×' + l.height);
    if (l.state === 'retrying' || l.state === 'failed') {
      const kind = FAILURE_KINDS[l.error_kind] || l.error_kind;
      if (kind) parts.push(kind);
    }
    return { state: l.state, text: parts.join(' · ') };
  }

  function renderCameras() {
    const body = $('camera-list');
    body.textContent = '';
    for (const c of fileCameras) {
      const enabled = c.enabled !== false;
      const tr = el('tr');
      tr.dataset.camera = String(c.id);
      tr.dataset.enabled = String(enabled);
      if (!enabled) tr.className = 'camera-disabled';
      const url = el('td', 'mono camera-url');
      url.append(el('span', null, c.url || ''));
      if (c.substream_url) url.append(el('br'), el('span', 'settings-note', 'sub: ' + c.substream_url));
      const now = liveText(c, enabled);
      const state = cell(now.text, 'camera-live');
      state.dataset.state = now.state;
      tr.append(
        cell(c.id, 'mono'),
        cell(c.name || c.id),
        url,
        cell(enabled ? 'yes' : 'disabled', 'camera-enabled'),
        state,
        actionsCell(c, enabled),
      );
      body.append(tr);
    }
    $('camera-none').hidden = fileCameras.length !== 0;
  }

  function actionsCell(c, enabled) {
    const td = el('td', 'row-actions');
    td.append(
      button('Edit', 'camera-edit', () => openForm(c)),
      button(enabled ? 'Disable' : 'Enable', 'camera-toggle', () => setEnabled(c, !enabled)),
      button('Delete', 'camera-delete', () => confirmDelete(td, c, enabled)),
    );
    return td;
  }

  // Delete asks first, in the row itself.
  function confirmDelete(td, c, enabled) {
    td.textContent = '';
    td.append(
      el('span', 'confirm-text', 'Delete "' + c.id + '" from the file?'),
      button('Yes, delete', 'camera-delete-confirm', () => removeCamera(c)),
      button('Keep it', 'camera-delete-cancel', () => td.replaceWith(actionsCell(c, enabled))),
    );
  }

  async function loadLive() {
    try {
      const resp = await fetch('api/cameras', { cache: 'no-store' });
      if (!resp.ok) return;
      const list = await resp.json();
      live = new Map(list.map((c) => [c.id, c]));
    } catch (e) {
      return;
    }
    // Only the state cells change: a row whose delete is being confirmed stays as it is.
    for (const tr of $('camera-list').children) {
      const c = fileCameras.find((x) => String(x.id) === tr.dataset.camera);
      const td = tr.querySelector('.camera-live');
      if (!c || !td) continue;
      const now = liveText(c, tr.dataset.enabled === 'true');
      td.textContent = now.text;
      td.dataset.state = now.state;
    }
  }

  /** Loads the file's cameras; false when this user may not (not an admin). */
  async function loadCameras() {
    const resp = await fetch('api/config/cameras', { cache: 'no-store' });
    if (resp.status === 403) return false;
    if (!resp.ok) {
      showProblem('camera', await jsonOf(resp) || { error: await errorOf(resp) });
      return true;
    }
    const data = await resp.json();
    fileCameras = Array.isArray(data.cameras) ? data.cameras : [];
    $('config-file-note').textContent = data.file
      ? 'The cameras of ' + data.file + '. A change is checked like camhub check, written to the file ' +
        '(its comments kept, the previous version beside it as .bak) and applied at once: only the ' +
        'camera that changed restarts.'
      : 'camhub runs its built-in demo camera (it was started without --config). The first camera ' +
        'saved here replaces the demo and creates camhub.toml in data_dir ([server] data_dir, ' +
        'camhub-data by default), which camhub reads again when it restarts in the same directory.';
    $('config-reload').hidden = !data.file;
    await loadLive();
    renderCameras();
    return true;
  }

  // The config keys the form sets, in the order a new camera is written.
  const KEYS = ['id', 'name', 'url', 'substream_url', 'enabled', 'idle_timeout', 'always_on', 'watchdog',
    'decode_threads', 'transport', 'poll_interval', 'insecure_tls', 'input_format', 'input_options', 'loop_file'];
  const ADVANCED = KEYS.slice(5);

  /** `value` as it was in the file when the text is unchanged (so 30 stays 30, not "30"). */
  function unchanged(orig, value) {
    return orig !== undefined && orig !== null && typeof orig !== 'object' && String(orig) === value;
  }

  function kindsOf(urls) {
    const kinds = new Set();
    for (const u of urls) {
      const s = u.trim().toLowerCase();
      if (s.startsWith('rtsp://')) kinds.add('rtsp');
      else if (s.startsWith('http://') || s.startsWith('https://')) kinds.add('http');
      else if (s.startsWith('ffmpeg:')) kinds.add('ffmpeg');
    }
    return kinds;
  }

  // The options of a kind of URL show for that kind (and whenever they hold a value).
  function updateKindOptions() {
    const urls = [$('cf-url').value, $('cf-substream_url').value];
    const kinds = kindsOf(urls);
    const any = urls.every((u) => !u.trim());
    for (const fs of document.querySelectorAll('.kind-options')) {
      let set = false;
      for (const input of fs.querySelectorAll('input, select, textarea')) {
        if (input.type === 'checkbox' ? input.checked : input.value.trim() !== '') set = true;
      }
      fs.hidden = !(any || set || kinds.has(fs.dataset.kind));
    }
    for (const key of ['url', 'substream_url']) {
      const v = $('cf-' + key).value;
      $('cf-' + key + '-note').textContent = v.includes('***')
        ? 'The *** stand for the stored user name and password: leave them to keep those, or type ' +
          'user:password@ in their place to change them.'
        : key === 'url'
          ? 'A user name and password go in the URL: rtsp://user:password@host/… (write @ in a password as %40).'
          : '';
    }
  }

  function openForm(c) {
    editing = c || null;
    const cam = c || {};
    const form = $('camera-form');
    form.reset();
    $('camera-form-title').textContent = c ? 'Edit camera "' + c.id + '"' : 'Add camera';
    for (const key of ['id', 'name', 'url', 'substream_url', 'idle_timeout', 'watchdog', 'decode_threads',
      'poll_interval', 'input_format']) {
      const v = cam[key];
      $('cf-' + key).value = v === undefined || v === null ? '' : String(v);
    }
    for (const key of ['always_on', 'insecure_tls', 'loop_file']) $('cf-' + key).checked = cam[key] === true;
    $('cf-enabled').checked = cam.enabled !== false;
    const transport = $('cf-transport');
    if (cam.transport !== undefined && ![...transport.options].some((o) => o.value === String(cam.transport))) {
      transport.append(el('option', null, String(cam.transport)));
    }
    transport.value = cam.transport === undefined ? '' : String(cam.transport);
    const opts = cam.input_options;
    $('cf-input_options').value = opts && typeof opts === 'object'
      ? Object.entries(opts).map(([k, v]) => k + ' = ' + v).join('\n')
      : opts === undefined ? '' : String(opts);
    $('cf-advanced').open = ADVANCED.some((k) => cam[k] !== undefined && k !== 'enabled');
    $('cf-test-result').hidden = true;
    showProblem('cf', null);
    showResult(null);
    updateKindOptions();
    form.hidden = false;
    form.scrollIntoView({ block: 'nearest' });
    $(c ? 'cf-name' : 'cf-id').focus();
  }

  function closeForm() {
    $('camera-form').hidden = true;
    editing = null;
  }

  /** The camera the form describes, as config keys; only keys the user set. Throws on a form mistake. */
  function formBody() {
    const orig = editing || {};
    const out = {};
    const text = (key) => $('cf-' + key).value.trim();
    const setText = (key) => {
      const v = text(key);
      if (v) out[key] = unchanged(orig[key], v) ? orig[key] : v;
    };
    // Durations and counts: a bare number is written as a number (seconds), like the file would.
    const setNumberish = (key) => {
      const v = text(key);
      if (!v) return;
      if (unchanged(orig[key], v)) out[key] = orig[key];
      else out[key] = /^-?\d+$/.test(v) ? Number(v) : v;
    };
    // A box left unticked removes the key (the default is false), unless the file said false.
    const setFlag = (key) => {
      if ($('cf-' + key).checked) out[key] = true;
      else if (orig[key] === false) out[key] = false;
    };
    out.id = text('id');
    if (!editing) {
      for (const key of ['url', 'substream_url']) {
        if (text(key).includes('***')) {
          throw new Error(key + ': *** stands for a password camhub keeps hidden; a new camera needs the ' +
            'real user name and password in its URL');
        }
      }
    }
    setText('name');
    setText('url');
    setText('substream_url');
    if (!$('cf-enabled').checked) out.enabled = false;
    else if (orig.enabled === true) out.enabled = true;
    setNumberish('idle_timeout');
    setFlag('always_on');
    setNumberish('watchdog');
    setNumberish('decode_threads');
    if ($('cf-transport').value) out.transport = $('cf-transport').value;
    setNumberish('poll_interval');
    setFlag('insecure_tls');
    setText('input_format');
    const options = parseOptions($('cf-input_options').value, orig.input_options);
    if (options) out.input_options = options;
    setFlag('loop_file');
    return out;
  }

  /** `option = value` lines as a table; values unchanged from the file keep their type. */
  function parseOptions(textValue, orig) {
    const out = {};
    let any = false;
    const lines = textValue.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (!line || line.startsWith('#')) continue;
      const eq = line.indexOf('=');
      if (eq <= 0) throw new Error('input_options, line ' + (i + 1) + ': write it as option = value, like video_size = 1280x720');
      const key = line.slice(0, eq).trim();
      let value = line.slice(eq + 1).trim();
      const quoted = value.match(/^"(.*)"$/) || value.match(/^'(.*)'$/);
      if (quoted) value = quoted[1];
      const before = orig && typeof orig === 'object' ? orig[key] : undefined;
      out[key] = unchanged(before, value) ? before : value;
      any = true;
    }
    return any ? out : null;
  }

  function busy(btn, text) {
    const old = btn.textContent;
    btn.disabled = true;
    btn.textContent = text;
    return () => {
      btn.disabled = false;
      btn.textContent = old;
    };
  }

  async function save(ev) {
    ev.preventDefault();
    showProblem('cf', null);
    let body;
    try {
      body = formBody();
    } catch (e) {
      showProblem('cf', { error: e.message });
      return;
    }
    const done = busy($('cf-save'), 'Saving…');
    const r = editing
      ? await send('PUT', 'api/config/cameras/' + encodeURIComponent(editing.id), body)
      : await send('POST', 'api/config/cameras', body);
    done();
    if (!r.ok) {
      showProblem('cf', r.body);
      return;
    }
    const what = editing ? 'Saved "' + body.id + '".' : 'Added "' + body.id + '".';
    closeForm();
    await loadCameras();
    showResult(describeOutcome(what, r.body));
    refreshTokenCameras();
  }

  function describeTest(t) {
    if (t.ok) {
      const parts = [CODECS[t.codec] || t.codec || 'picture'];
      if (t.width && t.height) parts.push(t.width + '×' + t.height);
      if (typeof t.fps === 'number' && t.fps > 0) parts.push((t.fps >= 10 ? Math.round(t.fps) : Math.round(t.fps * 10) / 10) + ' fps');
      return 'Connected: ' + parts.join(' ');
    }
    const kind = t.error_kind ? (FAILURE_KINDS[t.error_kind] || t.error_kind) : null;
    return 'Failed' + (t.error_kind ? ' (' + t.error_kind + (kind !== t.error_kind ? ': ' + kind : '') + ')' : '') +
      (t.error ? ': ' + t.error : '');
  }

  async function testConnection() {
    showProblem('cf', null);
    const out = $('cf-test-result');
    out.hidden = true;
    delete out.dataset.ok;
    let body;
    try {
      body = formBody();
    } catch (e) {
      showProblem('cf', { error: e.message });
      return;
    }
    // The camera being edited: a URL still showing *** is tried with its stored credentials.
    if (editing) body.id = editing.id;
    else if (!body.id) delete body.id;
    const done = busy($('cf-test'), 'Testing… (up to 15 s)');
    const r = await send('POST', 'api/config/test', body);
    done();
    if (!r.ok) {
      // The form's own check: "the form:4:16: camera[0].idle_timeout: …" says idle_timeout: ….
      const errors = (r.body.errors || []).map((e) => String(e).replace(/^the form:\d+:\d+: camera\[\d+\]\./, ''));
      showProblem('cf', { error: r.body.error, errors }, 'Not tried: the settings have errors. ');
      return;
    }
    out.textContent = describeTest(r.body);
    out.dataset.ok = String(!!r.body.ok);
    out.classList.toggle('error', !r.body.ok);
    out.hidden = false;
    out.scrollIntoView({ block: 'nearest' });
  }

  async function setEnabled(c, enabled) {
    showProblem('camera', null);
    showResult(null);
    const body = Object.assign({}, c);
    if (enabled) delete body.enabled;
    else body.enabled = false;
    const r = await send('PUT', 'api/config/cameras/' + encodeURIComponent(c.id), body);
    if (!r.ok) {
      showProblem('camera', r.body);
      return;
    }
    if (editing && editing.id === c.id) closeForm();
    await loadCameras();
    showResult(describeOutcome((enabled ? 'Enabled "' : 'Disabled "') + c.id + '".', r.body));
    refreshTokenCameras();
  }

  async function removeCamera(c) {
    showProblem('camera', null);
    showResult(null);
    const r = await send('DELETE', 'api/config/cameras/' + encodeURIComponent(c.id));
    if (!r.ok) {
      showProblem('camera', r.body);
      await loadCameras();
      return;
    }
    if (editing && editing.id === c.id) closeForm();
    await loadCameras();
    showResult(describeOutcome('Deleted "' + c.id + '" from the file.', r.body));
    refreshTokenCameras();
  }

  async function reloadFile() {
    showProblem('camera', null);
    showResult(null);
    const done = busy($('config-reload'), 'Reloading…');
    const r = await send('POST', 'api/config/reload');
    done();
    if (!r.ok) {
      showProblem('camera', r.body);
      return;
    }
    await loadCameras();
    showResult(describeOutcome('Reloaded the config file.', r.body));
    refreshTokenCameras();
  }

  $('camera-add').addEventListener('click', () => openForm(null));
  $('config-reload').addEventListener('click', reloadFile);
  $('camera-form').addEventListener('submit', save);
  $('cf-test').addEventListener('click', testConnection);
  $('cf-cancel').addEventListener('click', closeForm);
  $('camera-form').addEventListener('input', updateKindOptions);

  // ================================================================ API tokens

  function showError(text) {
    $('token-error').textContent = text;
    $('token-error').hidden = !text;
  }

  async function loadTokens() {
    const resp = await fetch('api/tokens', { cache: 'no-store' });
    if (resp.status === 403) return false;
    if (!resp.ok) {
      showError(await errorOf(resp));
      return true;
    }
    const now = Date.now();
    const body = $('tokens');
    body.textContent = '';
    for (const t of await resp.json()) {
      const tr = document.createElement('tr');
      tr.dataset.token = String(t.id);
      const gone = t.revoked_ms || (t.expires_ms && t.expires_ms <= now);
      if (gone) tr.className = 'token-gone';
      tr.append(
        cell(t.name),
        cell(t.role),
        cell(t.cameras ? t.cameras.join(', ') : 'all'),
        cell(when(t.created_ms) + ' by ' + t.created_by),
        cell(t.revoked_ms ? 'revoked ' + when(t.revoked_ms) : when(t.expires_ms)),
        cell(when(t.last_used_ms)),
      );
      const td = document.createElement('td');
      if (!gone) {
        td.append(button('Revoke', null, async () => {
          const r = await fetch('api/tokens/' + t.id, { method: 'DELETE' });
          if (!r.ok) showError(await errorOf(r));
          loadTokens();
        }));
      }
      tr.append(td);
      body.append(tr);
    }
    return true;
  }

  // The token form's camera boxes: the running cameras (ticks kept across refreshes).
  async function refreshTokenCameras() {
    const resp = await fetch('api/cameras', { cache: 'no-store' });
    if (!resp.ok) return;
    const box = $('token-cameras');
    const ticked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
    for (const label of box.querySelectorAll('label')) label.remove();
    for (const c of await resp.json()) {
      const label = document.createElement('label');
      const tick = document.createElement('input');
      tick.type = 'checkbox';
      tick.value = c.id;
      tick.checked = ticked.has(c.id);
      label.append(tick, ' ' + c.name);
      box.append(label);
    }
  }

  $('token-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('');
    const cameras = [...$('token-cameras').querySelectorAll('input:checked')].map((i) => i.value);
    const body = { name: $('token-name').value, role: $('token-role').value };
    if (cameras.length) body.cameras = cameras;
    if ($('token-expiry').value) body.expires_in = $('token-expiry').value;
    const resp = await fetch('api/tokens', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!resp.ok) {
      showError(await errorOf(resp));
      return;
    }
    const made = await resp.json();
    $('token-secret').textContent = made.token;
    const cam = (made.cameras && made.cameras[0]) || '{id}';
    $('token-example').textContent = 'For example: ' +
      new URL('api/cameras/' + cam + '/stream.mjpeg?width=640&token=' + made.token, document.baseURI).href;
    $('token-made').hidden = false;
    $('token-form').reset();
    loadTokens();
  });

  // ================================================================ start

  (async () => {
    // The CSRF token comes with the session: changes wait for it.
    await (window.camhub && window.camhub.session);
    const cameras = await loadCameras();
    if (cameras) {
      $('cameras-section').hidden = false;
      setInterval(loadLive, LIVE_MS);
    }
    if (await loadTokens()) {
      $('tokens-section').hidden = false;
      refreshTokenCameras();
    }
    $('not-admin').hidden = cameras;
  })();
})();
