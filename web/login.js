// The login page: a plain form post to /api/login (it works without this script). The script
// fills in where to go back to, says why the last attempt failed, and skips the form when the
// browser is already logged in (a link from another site arrives without the SameSite=Strict
// cookie; a same-origin request then carries it).
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  // `next` is a path relative to the page's <base href> (`cameras/door`, from the UI's scripts) or an
  // absolute one (`/cameras/door`, from the server's redirect); either way it becomes an absolute
  // path on this site, which is what POST /api/login takes. Anything else goes to the grid.
  function target(next) {
    const home = new URL('./', document.baseURI).pathname;
    if (!next || next.includes('\\')) return home;
    let url;
    try {
      url = new URL(next, document.baseURI);
    } catch (e) {
      return home;
    }
    if (url.origin !== location.origin || url.pathname === location.pathname) return home;
    return url.pathname + url.search;
  }
  const safe = target(params.get('next'));
  document.getElementById('next').value = safe;
  const reasons = {
    wrong: 'Wrong user name or password.',
    banned: 'Too many failed logins from this address. Try again later.',
    bad: 'Enter a user name and a password.',
  };
  const error = params.get('error');
  if (error) {
    const el = document.getElementById('error');
    el.textContent = reasons[error] || 'Login failed.';
    el.hidden = false;
  }
  fetch('api/session', { headers: { 'X-Camhub-UI': '1' }, cache: 'no-store' })
    .then((resp) => (resp.ok ? resp.json() : null))
    .then((s) => {
      if (s && (s.user || s.auth !== 'users')) location.replace(safe);
    })
    .catch(() => {});
})();
