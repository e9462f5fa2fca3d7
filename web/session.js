// Who is logged in, on every page: shows the user and a logout button in the top bar, a banner
// when login is off on purpose (auth = "none"), and sends the browser to the login page when the
// session ends. Exposes `camhub.csrf()` for requests that change something.
(function () {
  'use strict';
  window.camhub = window.camhub || {};
  let csrf = null;
  window.camhub.csrf = () => csrf;

  function toLogin() {
    location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
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
      const resp = await window.fetch('/api/session', { cache: 'no-store' });
      if (!resp.ok) return;
      s = await resp.json();
    } catch (e) {
      return;
    }
    csrf = s.csrf || null;
    const bar = document.querySelector('.topbar');
    if (s.user && bar) {
      const box = document.createElement('span');
      box.className = 'session';
      const who = document.createElement('span');
      who.className = 'session-user';
      who.textContent = s.user + (s.role === 'admin' ? ' (admin)' : '');
      const out = document.createElement('button');
      out.type = 'button';
      out.className = 'session-logout';
      out.textContent = 'Log out';
      out.addEventListener('click', async () => {
        await window.fetch('/api/logout', { method: 'POST' });
        toLogin();
      });
      if (s.role === 'admin') {
        const settings = document.createElement('a');
        settings.href = '/settings';
        settings.className = 'session-settings';
        settings.textContent = 'Settings';
        box.append(settings);
      }
      box.append(who, out);
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
  }
  load();
})();
