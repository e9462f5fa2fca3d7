// camhub's service worker. It exists for one reason: phones. Android Chrome shows a page's
// notifications only through a service worker (alerts.js falls back to it), and a tap on one should
// bring the camera page back. It caches nothing and handles no request, so the UI always comes from
// camhub as it is.
'use strict';

self.addEventListener('install', function () {
  self.skipWaiting();
});

self.addEventListener('activate', function (ev) {
  ev.waitUntil(self.clients.claim());
});

self.addEventListener('notificationclick', function (ev) {
  ev.notification.close();
  const data = ev.notification.data || {};
  const url = typeof data.url === 'string' ? data.url : self.registration.scope;
  ev.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (list) {
    for (const c of list) {
      if (c.url === url && typeof c.focus === 'function') return c.focus();
    }
    return self.clients.openWindow ? self.clients.openWindow(url) : undefined;
  }));
});
