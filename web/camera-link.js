// camhub.CameraLink: the camera page's WebSocket to camhub (`api/cameras/{id}/ws`), kept open in
// every mode, and the judge of whether the link is alive. camhub sends a heartbeat every 2 s, so no
// message at all for `lostAfterMs` (5 s) means the link is lost — whatever the socket claims: a
// half-open TCP connection (a sleeping laptop, a dropped Wi-Fi, a frozen server) never closes by
// itself. Then: `onLost` once, the socket is dropped and opened again with capped exponential
// back-off (with jitter), and the first message afterwards calls `onRecovered`.
//
// The caller gets messages (`onText(string)`, `onBinary(ArrayBuffer)`), `onOpen` to send its mode,
// and `send(object)`. Nothing here touches the page.
'use strict';

(function () {
  /**
   * @param {{url: function(): string, lostAfterMs?: number, backoffMinMs?: number, backoffMaxMs?: number,
   *   onOpen?: function(), onText?: function(string), onBinary?: function(ArrayBuffer),
   *   onLost?: function(number), onRecovered?: function(number), onChange?: function()}} opts
   */
  function CameraLink(opts) {
    const lostAfter = opts.lostAfterMs || 5000;
    const backoffMin = opts.backoffMinMs || 1000;
    const backoffMax = opts.backoffMaxMs || 15000;
    const call = function (name) {
      const f = opts[name];
      if (typeof f !== 'function') return;
      f.apply(null, Array.prototype.slice.call(arguments, 1));
    };

    let sock = null;
    let sockStarted = 0;
    let attempts = 0;
    let timer = 0;
    let lastMessageAt = Date.now();   // the page's start counts: no link within 5 s is a lost link
    let lost = false;
    let lostSince = 0;
    let stopped = false;

    function connect() {
      clearTimeout(timer);
      timer = 0;
      if (stopped) return;
      let s;
      try {
        s = new WebSocket(opts.url());
      } catch (e) {
        retry();
        return;
      }
      sock = s;
      sockStarted = Date.now();
      s.binaryType = 'arraybuffer';
      s.onopen = function () {
        call('onOpen');
        call('onChange');
      };
      s.onmessage = function (ev) {
        lastMessageAt = Date.now();
        attempts = 0;
        if (lost) {
          lost = false;
          call('onRecovered', lostSince);
          call('onChange');
        }
        if (typeof ev.data === 'string') call('onText', ev.data);
        else call('onBinary', ev.data);
      };
      s.onerror = function () { /* onclose follows */ };
      s.onclose = function () {
        if (sock === s) retry();
      };
      call('onChange');
    }

    // Abandons the socket without waiting for a close handshake a dead link never finishes.
    function drop() {
      const s = sock;
      sock = null;
      if (!s) return;
      s.onopen = s.onmessage = s.onerror = s.onclose = null;
      try { s.close(); } catch (e) { /* already closed */ }
    }

    function retry() {
      drop();
      if (timer || stopped) return;
      const base = Math.min(backoffMax, backoffMin * Math.pow(2, attempts));
      attempts += 1;
      timer = setTimeout(connect, Math.round(base * (0.5 + Math.random() * 0.5)));
      call('onChange');
    }

    // The watchdog: a lost heartbeat raises the alarm once; a socket that brought nothing for as
    // long (or never opened) is dropped and tried again.
    const watchdog = setInterval(function () {
      if (stopped) return;
      const now = Date.now();
      if (!lost && now - lastMessageAt > lostAfter) {
        lost = true;
        lostSince = lastMessageAt;
        call('onLost', lostSince);
        call('onChange');
      }
      if (sock && now - Math.max(lastMessageAt, sockStarted) > lostAfter) retry();
    }, 500);

    connect();

    return {
      /** Sends a JSON message if the socket is open; false otherwise. */
      send: function (obj) {
        if (!sock || sock.readyState !== WebSocket.OPEN) return false;
        sock.send(JSON.stringify(obj));
        return true;
      },
      /** 'up', 'connecting' or 'lost'. */
      state: function () {
        if (lost) return 'lost';
        return sock && sock.readyState === WebSocket.OPEN ? 'up' : 'connecting';
      },
      /** When the last message came (ms since the epoch); while lost, since when. */
      lastMessageAt: function () { return lost ? lostSince : lastMessageAt; },
      /** Closes the link for good (the camera is gone). */
      stop: function () {
        stopped = true;
        clearInterval(watchdog);
        clearTimeout(timer);
        drop();
        call('onChange');
      },
    };
  }

  window.camhub = Object.assign(window.camhub || {}, { CameraLink });
})();
