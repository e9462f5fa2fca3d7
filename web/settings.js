// The settings page: API tokens (list, make, revoke) for admins. Requests go through session.js's
// fetch, which adds the CSRF token and sends the browser to the login page when the session ends.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const when = (ms) => (ms ? new Date(ms).toLocaleString() : '—');

  function showError(text) {
    $('token-error').textContent = text;
    $('token-error').hidden = !text;
  }

  async function errorOf(resp) {
    try {
      return (await resp.json()).error || resp.statusText;
    } catch (e) {
      return resp.statusText;
    }
  }

  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  async function loadTokens() {
    const resp = await fetch('/api/tokens', { cache: 'no-store' });
    if (resp.status === 403) {
      $('not-admin').hidden = false;
      return false;
    }
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
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = 'Revoke';
        b.addEventListener('click', async () => {
          const r = await fetch('/api/tokens/' + t.id, { method: 'DELETE' });
          if (!r.ok) showError(await errorOf(r));
          loadTokens();
        });
        td.append(b);
      }
      tr.append(td);
      body.append(tr);
    }
    return true;
  }

  async function loadCameras() {
    const resp = await fetch('/api/cameras', { cache: 'no-store' });
    if (!resp.ok) return;
    const box = $('token-cameras');
    for (const c of await resp.json()) {
      const label = document.createElement('label');
      const tick = document.createElement('input');
      tick.type = 'checkbox';
      tick.value = c.id;
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
    const resp = await fetch('/api/tokens', {
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
    $('token-example').textContent =
      'For example: ' + location.origin + '/api/cameras/' + cam + '/stream.mjpeg?width=640&token=' + made.token;
    $('token-made').hidden = false;
    $('token-form').reset();
    loadTokens();
  });

  (async () => {
    if (await loadTokens()) {
      $('tokens-section').hidden = false;
      loadCameras();
    }
  })();
})();
