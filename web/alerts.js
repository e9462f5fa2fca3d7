// camhub alerts: what a page does to get the user's attention when something happens (motion starts,
// the link to camhub is lost) — a beep made by Web Audio (no sound file), a system notification, a
// vibration on phones — and the "Alerts" panel that sets them up. Pages call camhub.alerts.fire() and
// camhub.alerts.clear(); the in-page banner is the page's own (it always works).
//
// Browsers' rules this file lives with:
// - Sound: an AudioContext only plays after a user gesture on the page (autoplay policy). "Enable
//   alerts" (a click) creates and resumes it; until then a beep is skipped and reported as "blocked",
//   never thrown.
// - Notifications: need permission, asked for from a click, and a secure context (HTTPS or
//   localhost). Android Chrome shows them only through a service worker (sw.js), so the constructor's
//   TypeError falls back to it. iOS/iPadOS (16.4+) offers them only to a web app opened from the Home
//   Screen.
// - Vibration: navigator.vibrate exists on Android, not on iOS; Chrome ignores it before the first tap.
// - Screen wake lock (keep the screen on while watching): secure contexts only; released when the tab
//   is hidden, so it is asked for again when the tab shows.
//
// Test hook: camhub.alerts.log() lists every alert fired and what each output did.
'use strict';

(function () {
  const STORE_KEY = 'camhub.alerts';
  const LOG_MAX = 50;
  // Tones as [frequency Hz, start s, duration s]: two short high beeps for motion, a falling
  // three-tone for a lost link (heard as "something is wrong", not "something moved").
  const TONES = {
    motion: [[880, 0, 0.12], [880, 0.18, 0.12]],
    link: [[660, 0, 0.18], [494, 0.22, 0.18], [330, 0.44, 0.3]],
    test: [[660, 0, 0.1], [880, 0.14, 0.1]],
  };
  const VIBRATIONS = {
    motion: [200, 100, 200],
    link: [500, 200, 500],
    test: [100],
  };

  const settings = Object.assign({ sound: true, notify: true, vibrate: true, wake: false }, loadSettings());
  let audio = null;                 // the AudioContext, once made
  let worker = null;                // the service worker registration (notifications on Android)
  let wakeLock = null;
  const shown = new Map();          // tag -> Notification made by the constructor
  const fired = [];
  const listeners = [];

  function loadSettings() {
    try {
      const v = JSON.parse(localStorage.getItem(STORE_KEY) || '{}');
      return v && typeof v === 'object' ? v : {};
    } catch (e) {
      return {};
    }
  }

  function saveSettings() {
    try { localStorage.setItem(STORE_KEY, JSON.stringify(settings)); } catch (e) { /* private mode */ }
  }

  // ---------------------------------------------------------------- what this browser can do

  function isIos() {
    return /iPad|iPhone|iPod/.test(navigator.userAgent) ||
      (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
  }

  function isStandalone() {
    return navigator.standalone === true ||
      (typeof window.matchMedia === 'function' && window.matchMedia('(display-mode: standalone)').matches);
  }

  function audioClass() {
    return window.AudioContext || window.webkitAudioContext || null;
  }

  /** What each output can do now: {notify, sound, vibrate, wake}, each {state, text}. */
  function state() {
    let notify;
    if (!settings.notify) notify = { state: 'off', text: 'off' };
    else if (!('Notification' in window)) {
      notify = isIos() && !isStandalone()
        ? { state: 'unsupported', text: 'on iPhone and iPad only in the Home Screen app (iOS 16.4 or later)' }
        : { state: 'unsupported', text: 'not supported by this browser' };
    } else if (!window.isSecureContext) {
      notify = { state: 'insecure', text: 'need HTTPS (or localhost)' };
    } else if (Notification.permission === 'granted') notify = { state: 'on', text: 'on' };
    else if (Notification.permission === 'denied') {
      notify = { state: 'denied', text: 'blocked — allow notifications for this site in the browser settings' };
    } else notify = { state: 'ask', text: 'not allowed yet — press Enable alerts' };

    let sound;
    if (!settings.sound) sound = { state: 'off', text: 'off' };
    else if (!audioClass()) sound = { state: 'unsupported', text: 'not supported by this browser' };
    else if (audio && audio.state === 'running') sound = { state: 'on', text: 'on' };
    else sound = { state: 'blocked', text: 'needs a click — press Enable alerts' };

    let vibrate;
    if (!settings.vibrate) vibrate = { state: 'off', text: 'off' };
    else if (typeof navigator.vibrate !== 'function') {
      vibrate = { state: 'unsupported', text: isIos() ? 'not on iPhone or iPad' : 'not on this device' };
    } else vibrate = { state: 'on', text: 'on (phones and tablets)' };

    let wake;
    if (!settings.wake) wake = { state: 'off', text: 'off' };
    else if (!('wakeLock' in navigator)) wake = { state: 'unsupported', text: 'not supported here' };
    else if (wakeLock) wake = { state: 'on', text: 'on' };
    else wake = { state: 'waiting', text: 'asked for while the page shows' };

    return { notify, sound, vibrate, wake, ios: isIos(), standalone: isStandalone() };
  }

  function changed() {
    renderPanel();
    for (const f of listeners) {
      try { f(state()); } catch (e) { /* a listener's problem */ }
    }
  }

  // ---------------------------------------------------------------- outputs

  // A short beep from an oscillator. Never throws: a context the browser keeps suspended (no user
  // gesture yet) skips the beep — scheduled tones would otherwise all play, late, at the next click.
  function beep(kind) {
    if (!settings.sound) return 'off';
    const AC = audioClass();
    if (!AC) return 'unsupported';
    try {
      if (!audio) audio = new AC();
      if (audio.state !== 'running') {
        const p = audio.resume();
        if (p && typeof p.catch === 'function') p.catch(function () { /* still no gesture */ });
        if (audio.state !== 'running') return 'blocked';
      }
      const t0 = audio.currentTime + 0.02;
      for (const [freq, start, dur] of TONES[kind] || TONES.motion) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = 'square';
        osc.frequency.setValueAtTime(freq, t0 + start);
        gain.gain.setValueAtTime(0.0001, t0 + start);
        gain.gain.exponentialRampToValueAtTime(0.2, t0 + start + 0.01);
        gain.gain.exponentialRampToValueAtTime(0.0001, t0 + start + dur);
        osc.connect(gain);
        gain.connect(audio.destination);
        osc.start(t0 + start);
        osc.stop(t0 + start + dur + 0.02);
      }
      return 'played';
    } catch (e) {
      return 'error: ' + e.message;
    }
  }

  function notify(opts) {
    if (!settings.notify) return 'off';
    if (!('Notification' in window)) return 'unsupported';
    if (Notification.permission !== 'granted') return 'not allowed (' + Notification.permission + ')';
    const options = { body: opts.body || '', tag: opts.tag, renotify: !!opts.tag, data: { url: opts.url || location.href } };
    if (opts.requireInteraction) options.requireInteraction = true;
    try {
      const n = new Notification(opts.title, options);
      n.onclick = function () {
        try { window.focus(); } catch (e) { /* not allowed */ }
        n.close();
      };
      if (opts.tag) {
        const old = shown.get(opts.tag);
        if (old && old !== n) old.close();
        shown.set(opts.tag, n);
      }
      return 'shown';
    } catch (e) {
      // Android Chrome: "Illegal constructor" — only a service worker may show one.
      if (worker && typeof worker.showNotification === 'function') {
        worker.showNotification(opts.title, options).catch(function () { /* permission changed */ });
        return 'shown (service worker)';
      }
      return 'error: ' + e.message;
    }
  }

  function vibrate(kind) {
    if (!settings.vibrate) return 'off';
    if (typeof navigator.vibrate !== 'function') return 'unsupported';
    try {
      return navigator.vibrate(VIBRATIONS[kind] || VIBRATIONS.motion) ? 'done' : 'refused';
    } catch (e) {
      return 'error: ' + e.message;
    }
  }

  /**
   * Raises an alert through every output the user has on: {kind: 'motion' | 'link' | 'test', title,
   * body, tag, url}. Returns (and logs) what each output did.
   */
  function fire(alert) {
    const kind = alert.kind || 'motion';
    const entry = {
      kind,
      title: alert.title,
      body: alert.body || '',
      tag: alert.tag || null,
      at: Date.now(),
      sound: beep(kind),
      notification: notify(alert),
      vibration: vibrate(kind),
    };
    fired.push(entry);
    if (fired.length > LOG_MAX) fired.shift();
    return entry;
  }

  /** Takes back the notification with this tag (the condition it told of is over). */
  function clear(tag) {
    const n = shown.get(tag);
    if (n) {
      shown.delete(tag);
      try { n.close(); } catch (e) { /* gone */ }
    }
    if (worker && typeof worker.getNotifications === 'function') {
      worker.getNotifications({ tag }).then(function (list) {
        for (const x of list) x.close();
      }, function () { /* none */ });
    }
  }

  // ---------------------------------------------------------------- setting up (from a click)

  /** Asks for what needs a user gesture: call it from a click handler. */
  async function enable() {
    const AC = audioClass();
    if (AC && settings.sound) {
      try {
        if (!audio) audio = new AC();
        // Resumed inside the gesture; a silent tick also unlocks iOS's audio.
        const p = audio.resume();
        const o = audio.createOscillator();
        const g = audio.createGain();
        g.gain.value = 0.0001;
        o.connect(g);
        g.connect(audio.destination);
        o.start();
        o.stop(audio.currentTime + 0.01);
        if (p) await p.catch(function () { /* refused */ });
      } catch (e) { /* no audio here */ }
    }
    if (settings.notify && 'Notification' in window && window.isSecureContext &&
        Notification.permission === 'default') {
      try {
        await Notification.requestPermission();
      } catch (e) {
        // Old Safari: callback form only.
        await new Promise(function (done) { Notification.requestPermission(done); });
      }
    }
    registerWorker();
    if (settings.wake) await lockScreen();
    changed();
    return state();
  }

  function registerWorker() {
    if (worker || !('serviceWorker' in navigator) || !window.isSecureContext) return;
    navigator.serviceWorker.register('sw.js').then(function (reg) {
      worker = reg;
    }, function () { /* no worker: the constructor is all there is */ });
  }

  async function lockScreen() {
    if (!settings.wake || wakeLock || !('wakeLock' in navigator) || document.visibilityState !== 'visible') return;
    try {
      wakeLock = await navigator.wakeLock.request('screen');
      wakeLock.addEventListener('release', function () {
        wakeLock = null;
        changed();
      });
    } catch (e) {
      wakeLock = null;
    }
  }

  function unlockScreen() {
    if (wakeLock) {
      const w = wakeLock;
      wakeLock = null;
      w.release().catch(function () { /* already released */ });
    }
  }

  document.addEventListener('visibilitychange', function () {
    // The browser releases the lock when the tab hides; take it again when it shows.
    if (document.visibilityState === 'visible') lockScreen().then(changed);
  });

  // ---------------------------------------------------------------- the panel

  const $ = function (id) { return document.getElementById(id); };

  function renderPanel() {
    if (!$('alerts-panel')) return;
    const s = state();
    for (const key of ['notify', 'sound', 'vibrate', 'wake']) {
      const dd = document.querySelector('#alerts-state dd[data-alert="' + key + '"]');
      if (!dd) continue;
      dd.textContent = s[key].text;
      dd.className = { on: 'ok', denied: 'bad', insecure: 'bad', ask: 'warn', blocked: 'warn' }[s[key].state] || '';
    }
    for (const key of ['sound', 'notify', 'vibrate', 'wake']) {
      const box = $('alerts-' + key);
      if (box) box.checked = !!settings[key];
    }
    const ios = $('alerts-ios');
    if (ios) ios.hidden = !s.ios;
    const btn = $('alerts-enable');
    if (btn) {
      const ready = (s.sound.state !== 'blocked') && (s.notify.state !== 'ask');
      btn.textContent = ready ? 'Alerts enabled' : 'Enable alerts';
      btn.classList.toggle('primary', !ready);
    }
  }

  function setUpPanel() {
    if (!$('alerts-panel')) return;
    $('alerts-enable').addEventListener('click', function () { enable(); });
    const test = $('alerts-test');
    if (test) {
      test.addEventListener('click', async function () {
        await enable();
        fire({ kind: 'test', title: 'camhub test alert', body: 'This is how an alert looks and sounds.', tag: 'camhub-test' });
      });
    }
    for (const key of ['sound', 'notify', 'vibrate', 'wake']) {
      const box = $('alerts-' + key);
      if (!box) continue;
      box.addEventListener('change', function () {
        settings[key] = box.checked;
        saveSettings();
        if (key === 'wake') {
          if (box.checked) lockScreen().then(changed);
          else unlockScreen();
        }
        changed();
      });
    }
    renderPanel();
  }

  // Permission changes made in the browser's own settings show up here without a reload.
  if (navigator.permissions && typeof navigator.permissions.query === 'function') {
    navigator.permissions.query({ name: 'notifications' }).then(function (status) {
      status.onchange = changed;
    }, function () { /* not queryable */ });
  }

  // A worker registered earlier (Android) is there to use without a click; none is made here.
  if ('serviceWorker' in navigator && window.isSecureContext) {
    navigator.serviceWorker.getRegistration().then(function (reg) {
      if (reg) worker = reg;
    }, function () { /* none */ });
  }

  window.camhub = Object.assign(window.camhub || {}, {
    alerts: {
      fire,
      clear,
      enable,
      state,
      /** Every alert fired on this page (newest last), with what each output did. */
      log: function () { return fired.slice(); },
      onchange: function (f) { listeners.push(f); },
    },
  });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', setUpPanel);
  else setUpPanel();
  if (settings.wake) lockScreen().then(changed);
})();
