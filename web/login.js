// The login page: a plain form post to /api/login (it works without this script). The script
// fills in where to go back to, says why the last attempt failed, and skips the form when the
// browser is already logged in (a link from another site arrives without the SameSite=Strict
// cookie; a same-origin request then carries it).
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const next = params.get('next') || '/';
  const safe = next.startsWith('/') && !next.startsWith('//') && !next.includes('\\') ? next : '/';
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
  fetch('/api/session', { headers: { 'X-Camhub-UI': '1' }, cache: 'no-store' })
    .then((resp) => (resp.ok ? resp.json() : null))
    .then((s) => {
      if (s && (s.user || s.auth !== 'users')) location.replace(safe);
    })
    .catch(() => {});
})();
