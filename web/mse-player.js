// camhub.MsePlayer: the camera's own H.264 / H.265 in a <video>, through Media Source Extensions fed
// by api/cameras/{id}/mse (no transcoding on the server). The protocol is in docs/api.md.
//
// - Instant start: the server sends the cached GOP from its keyframe at once; once it is buffered the
//   player jumps to its newest frame, so the first picture is the newest one, not a GOP-old one.
// - Live edge, always: after every append, a position more than JUMP_S behind the newest buffered
//   frame jumps to the target behind it. Closer than that, playback runs faster in proportion to how
//   far it is behind the target (up to MAX_RATE), and at normal speed once it is back: every stall on
//   a late frame adds its wait to the delay for good, and only a faster pace takes it back out. (A
//   speed-up only past a fixed threshold let the delay settle anywhere below it: 63 to 302 ms in
//   benches/webrtc_latency.py.) The target starts at TARGET_S; STALLS_TO_RAISE stalls within CALM_MS
//   raise it by STALL_STEP_S (up to MAX_TARGET_S), so a jittery link (Wi-Fi) gets a cushion instead
//   of freezing again and again, while a single late frame on a busy machine (a frame's wait, once)
//   does not cost every later frame 50 ms; CALM_MS without a stall lowers it again, 10 ms a second. The server moves a connection that falls behind to its newest
//   keyframe, on one continuous timeline, so the buffer never has holes to stall on. What has been
//   played is removed (bounded memory).
// - iPhone Safari (iOS 17.1+) has no MediaSource, only ManagedMediaSource: used where MediaSource is
//   missing (it needs disableRemotePlayback and appends only between startstreaming/endstreaming).
// - The distance to the live edge is reported to the server every 2 s ({"type": "edge"}) for
//   /metrics.
'use strict';

(function () {
  // What the client offers: the server picks the camera's own codec if its family is among these.
  const CANDIDATES = [
    'avc1.42E01E', 'avc1.4D401F', 'avc1.640028', 'avc1.640033',
    'hvc1.1.6.L120.90', 'hvc1.1.6.L153.B0', 'hev1.1.6.L120.90',
  ];
  const TARGET_S = 0.1;      // where a jump lands and the speed-up aims, behind the newest buffered frame
  const MAX_TARGET_S = 0.5;  // the most cushion stalls can add to it
  const STALL_STEP_S = 0.05; // added to the target by a run of stalls
  const STALLS_TO_RAISE = 3; // stalls within CALM_MS that make a run
  const CALM_MS = 10000;     // no stall for this long: the target comes down again
  const JUMP_S = 0.8;        // further behind than this: jump
  const SLACK_S = 0.03;      // speed up only once this far past TARGET_S (a frame's jitter is normal)
  const MAX_RATE = 1.25;     // fastest catch-up pace: a 0.25 s excess is gone in about a second
  const KEEP_S = 10;         // buffered history kept behind the playing position
  const REPORT_MS = 2000;

  function sourceClass() {
    return window.MediaSource || window.ManagedMediaSource || null;
  }

  /** Codec strings this browser can play through MSE (empty: no MSE at all). */
  function playable() {
    const MS = sourceClass();
    if (!MS || typeof MS.isTypeSupported !== 'function') return [];
    return CANDIDATES.filter(function (c) {
      try { return MS.isTypeSupported('video/mp4; codecs="' + c + '"'); } catch (e) { return false; }
    });
  }

  function MsePlayer(opts) {
    const video = opts.video;
    const onInfo = opts.onInfo || function () {};
    const onError = opts.onError || function () {};
    const onStatus = opts.onStatus || function () {};
    let ws = null;
    let ms = null;
    let sb = null;
    let objectUrl = null;
    let queue = [];
    let codec = null;
    let size = null;
    let streaming = true;        // ManagedMediaSource: appends allowed
    let stopped = true;
    let jumps = 0;
    let appended = 0;
    let delay = null;
    let reportTimer = 0;
    let firstFrameAt = 0;
    let startedAt = 0;
    let anchors = [];             // [{t, unix}]: when camhub received the keyframe at timeline t
    let target = TARGET_S;        // s behind the newest buffered frame to play at
    let stalls = 0;               // waits for data while playing
    let recentStalls = [];        // performance.now() of the stalls within CALM_MS
    let calmFrom = 0;             // performance.now() of the last stall (or the last step down)

    // fatal: this camera cannot be played this way (the server said so, or the browser refused
    // the codec); otherwise the connection broke and trying again may work.
    function fail(text, fatal) {
      if (stopped) return;
      stop();
      onError(text, !!fatal);
    }

    function liveEdge() {
      const b = video.buffered;
      if (!b || b.length === 0) return;
      const end = b.end(b.length - 1);
      const start = b.start(b.length - 1);
      const t = video.currentTime;
      const now = performance.now();
      if (target > TARGET_S && now - calmFrom > CALM_MS) {
        target = Math.max(TARGET_S, target - 0.01);
        calmFrom += 1000;
      }
      if (t < start || end - t > JUMP_S) {
        video.currentTime = Math.max(start, end - target);
        jumps += 1;
      }
      delay = Math.max(0, end - video.currentTime);
      const rate = catchUpRate(delay, video.playbackRate);
      if (video.playbackRate !== rate) video.playbackRate = rate;
      if (video.paused) video.play().catch(function () { /* autoplay: muted, so allowed */ });
    }

    // The pace for a position `behind` s from the newest buffered frame: 5 % faster for every 50 ms
    // past the target (steps, so the rate is not set anew after every frame). Once faster, it stays
    // faster until the target is reached; at normal speed, it waits for SLACK_S more.
    function catchUpRate(behind, now) {
      const excess = behind - target;
      if (excess <= 0 || (now <= 1 && excess <= SLACK_S)) return 1.0;
      return Math.min(MAX_RATE, 1 + Math.ceil(excess * 20) / 20);
    }

    // How long ago camhub received the frame playing now (seconds): the true distance from live.
    function latency() {
      const t = video.currentTime;
      let a = null;
      for (const x of anchors) if (x.t <= t + 0.001) a = x;
      if (!a) return null;
      return Math.max(0, (Date.now() - (a.unix + (t - a.t) * 1000)) / 1000);
    }

    function trim() {
      const b = video.buffered;
      if (!sb || sb.updating || !b || b.length === 0) return false;
      const behind = video.currentTime - KEEP_S;
      if (b.start(0) < behind - 1) {
        try { sb.remove(0, behind); return true; } catch (e) { return false; }
      }
      return false;
    }

    function pump() {
      if (!sb || sb.updating || stopped) return;
      if (queue.length === 0) {
        trim();
        return;
      }
      if (!streaming) return;
      const data = queue.shift();
      try {
        sb.appendBuffer(data);
        appended += 1;
      } catch (e) {
        if (e.name === 'QuotaExceededError') {
          queue.unshift(data);
          if (!trim()) fail('The browser has no room for more video: ' + e.message, false);
          return;
        }
        fail('The browser refused the video (' + e.message + ')', true);
      }
    }

    // Playback ran out of data (not a seek of our own): the link is jitterier than the target allows.
    function onWaiting() {
      if (stopped || !firstFrameAt || video.seeking) return;
      stalls += 1;
      const now = performance.now();
      calmFrom = now;
      recentStalls = recentStalls.filter(function (t) { return now - t < CALM_MS; });
      recentStalls.push(now);
      if (recentStalls.length >= STALLS_TO_RAISE) {
        target = Math.min(MAX_TARGET_S, target + STALL_STEP_S);
        recentStalls = [];
      }
    }

    function onUpdateEnd() {
      if (stopped) return;
      if (!firstFrameAt && video.buffered.length > 0) firstFrameAt = performance.now();
      liveEdge();
      pump();
    }

    function setCodec(msg) {
      const type = 'video/mp4; codecs="' + msg.codec + '"';
      size = msg.width && msg.height ? [msg.width, msg.height] : null;
      try {
        if (!sb) {
          sb = ms.addSourceBuffer(type);
          sb.mode = 'segments';
          sb.addEventListener('updateend', onUpdateEnd);
          sb.addEventListener('error', function () { fail('The browser could not decode the video', true); });
        } else if (msg.codec !== codec && typeof sb.changeType === 'function') {
          sb.changeType(type);
        }
      } catch (e) {
        fail('This browser cannot play ' + msg.codec + ' (' + e.message + ')', true);
        return;
      }
      codec = msg.codec;
      onInfo({ codec: codec, width: size && size[0], height: size && size[1] });
    }

    function onMessage(ev) {
      if (typeof ev.data === 'string') {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg.type === 'mse') setCodec(msg);
        else if (msg.type === 'time') {
          anchors.push({ t: msg.t, unix: msg.unix_ms });
          if (anchors.length > 8) anchors.shift();
        }
        else if (msg.type === 'error') fail(msg.error || 'the server refused the video', true);
        else if (msg.type === 'status') onStatus(msg);
        return;
      }
      queue.push(ev.data);
      pump();
    }

    function openSocket() {
      const url = new URL(opts.url, document.baseURI);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      ws = new WebSocket(url.toString());
      ws.binaryType = 'arraybuffer';
      ws.onopen = function () {
        ws.send(JSON.stringify({ type: 'mse', codecs: playable() }));
      };
      ws.onmessage = onMessage;
      ws.onclose = function () {
        if (!stopped) fail('The video connection closed', false);
      };
      reportTimer = setInterval(function () {
        if (ws && ws.readyState === WebSocket.OPEN && delay !== null) {
          const l = latency();
          ws.send(JSON.stringify({
            type: 'edge', delay: Math.round(delay * 1000) / 1000,
            latency: l === null ? null : Math.round(l * 1000) / 1000,
          }));
        }
      }, REPORT_MS);
    }

    function start() {
      const MS = sourceClass();
      if (!MS) {
        onError('This browser has no Media Source Extensions', true);
        return;
      }
      stop();
      stopped = false;
      startedAt = performance.now();
      firstFrameAt = 0;
      ms = new MS();
      const managed = !window.MediaSource;
      streaming = !managed;
      if (managed) {
        video.disableRemotePlayback = true;
        ms.addEventListener('startstreaming', function () { streaming = true; pump(); });
        ms.addEventListener('endstreaming', function () { streaming = false; });
      }
      video.muted = true;
      video.playsInline = true;
      target = TARGET_S;
      stalls = 0;
      recentStalls = [];
      video.addEventListener('waiting', onWaiting);
      video.onerror = function () {
        fail('The browser could not play the video' + (video.error && video.error.message ? ' (' + video.error.message + ')' : ''), true);
      };
      ms.addEventListener('sourceopen', openSocket, { once: true });
      objectUrl = URL.createObjectURL(ms);
      video.src = objectUrl;
    }

    function stop() {
      stopped = true;
      video.removeEventListener('waiting', onWaiting);
      clearInterval(reportTimer);
      reportTimer = 0;
      if (ws) {
        ws.onclose = null;
        ws.onmessage = null;
        try { ws.close(); } catch (e) { /* closed already */ }
      }
      ws = null;
      queue = [];
      anchors = [];
      sb = null;
      ms = null;
      codec = null;
      delay = null;
      if (objectUrl) {
        URL.revokeObjectURL(objectUrl);
        objectUrl = null;
        video.removeAttribute('src');
        video.load();
      }
    }

    return {
      start,
      stop,
      /** {codec, width, height, delay: s behind the newest buffered frame, latency: s since camhub
       *  received the frame playing now, jumps, appended, firstFrameMs, target: s behind the newest
       *  buffered frame it aims at, stalls}. */
      summary: function () {
        return {
          codec,
          width: video.videoWidth,
          height: video.videoHeight,
          delay,
          latency: latency(),
          jumps,
          appended,
          target,
          stalls,
          currentTime: video.currentTime,
          firstFrameMs: firstFrameAt ? Math.round(firstFrameAt - startedAt) : null,
        };
      },
    };
  }

  window.camhub = Object.assign(window.camhub || {}, { MsePlayer, msePlayable: playable });
})();
