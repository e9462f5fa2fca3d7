// Who is logged in, on every page: shows the user and a logout button in the top bar, a banner
// when login is off on purpose (auth = "none"), and sends the browser to the login page when the
// session ends. Exposes `camhub.csrf()` for requests that change something, and `camhub.session`, a
// promise of `GET api/session`'s answer (null when it failed).
(function () {
  'use strict';
  window.camhub = window.camhub || {};
  let csrf = null;
  window.camhub.csrf = () => csrf;

  // This page's path relative to the <base href> (camhub may be served under a prefix), like
  // `cameras/door?width=640`: what the login page's `next` takes.
  function here() {
    const base = new URL('./', document.baseURI).pathname;
    let path = location.pathname;
    if (path + '/' === base) path = '';               // the grid at /prefix (no slash)
    else if (path.startsWith(base)) path = path.slice(base.length);
    else path = path.replace(/^\/+/, '');
    return path + location.search;
  }

  function toLogin() {
    const next = here();
    location.href = new URL('login' + (next ? '?next=' + encodeURIComponent(next) : ''), document.baseURI).href;
  }
  window.camhub.toLogin = toLogin;

  // Every request of the UI says so: a 401 then comes without a Basic challenge, and leads here.
  const plainFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const opts = Object.assign({}, init || {});
    const headers = new Headers(opts.headers || {});
    headers.set('X-Camhub-UI', '1');
    if (csrf && opts.method && !['GET', 'HEAD'].includes(opts.method.toUpperCase())) {
      headers.set('X-CSRF-Token', csrf);
    }
    opts.headers = headers;
    const resp = await plainFetch(input, opts);
    if (resp.status === 401) toLogin();
    return resp;
  };

  async function load() {
    let s;
    try {
      const resp = await window.fetch('api/session', { cache: 'no-store' });
      if (!resp.ok) return null;
      s = await resp.json();
    } catch (e) {
      return null;
    }
    csrf = s.csrf || null;
    const bar = document.querySelector('.topbar');
    // Admins get a link to the settings page (everyone is an admin while login is off).
    if ((s.user || s.role === 'admin') && bar) {
      const box = document.createElement('span');
      box.className = 'session';
      if (s.role === 'admin') {
        const settings = document.createElement('a');
        settings.href = 'settings';
        settings.className = 'session-settings';
        settings.textContent = 'Settings';
        box.append(settings);
      }
      if (s.user) {
        const who = document.createElement('span');
        who.className = 'session-user';
        who.textContent = s.user + (s.role === 'admin' ? ' (admin)' : '');
        const out = document.createElement('button');
        out.type = 'button';
        out.className = 'session-logout';
        out.textContent = 'Log out';
        out.addEventListener('click', async () => {
          await window.fetch('api/logout', { method: 'POST' });
          toLogin();
        });
        box.append(who, out);
      }
      bar.append(box);
    }
    if (s.auth === 'none') {
      const note = document.createElement('div');
      note.className = 'banner banner-open';
      note.id = 'auth-banner';
      note.setAttribute('role', 'note');
      note.textContent =
        'Login is off (auth = "none"): anyone who can reach this address can watch every camera.';
      if (bar) bar.after(note);
    }
    return s;
  }
  // The readable error of a failed response, for every page: the server's {"error": "..."} when it
  // sent one, otherwise the status and the start of the body.
  window.camhub.errorOf = async function (resp) {
    let text = '';
    try {
      text = await resp.text();
      const body = JSON.parse(text);
      if (body && typeof body.error === 'string') return body.error + ' (HTTP ' + resp.status + ')';
    } catch (e) { /* not JSON, or the body was read already */ }
    text = text.trim().slice(0, 200);
    return 'HTTP ' + resp.status + (resp.statusText ? ' ' + resp.statusText : '') + (text ? ': ' + text : '');
  };

  // The session (or null): pages that change something wait for it, so the CSRF token is there.
  window.camhub.session = load();
})();
