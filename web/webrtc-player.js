// camhub.WebrtcPlayer: the camera's own H.264 in a <video> over WebRTC (WHEP: POST the offer to
// api/cameras/{id}/whep, DELETE the Location it answers when done). The lowest delay camhub has: the
// browser shows frames as they arrive, with no buffer to keep. The server starts the peer at the
// cached keyframe, so the first picture comes at once. The protocol is in docs/api.md.
//
// - Candidates go in the offer (gathering waits up to GATHER_MS): camhub does not take trickle ICE.
// - A connection that is not up within CONNECT_MS, fails, or stays disconnected for LOST_MS is an
//   error: fatal (the page falls back to MSE) unless it had played before (then it retries).
'use strict';

(function () {
  const GATHER_MS = 1500;
  const CONNECT_MS = 10000;
  const LOST_MS = 4000;

  /** Whether this browser has WebRTC at all. */
  function available() {
    return typeof window.RTCPeerConnection === 'function';
  }

  // Resolves when ICE gathering is complete, or after GATHER_MS (what is gathered by then goes).
  function gathered(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise(function (resolve) {
      const timer = setTimeout(resolve, GATHER_MS);
      pc.addEventListener('icegatheringstatechange', function () {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  function WebrtcPlayer(opts) {
    const video = opts.video;
    const onInfo = opts.onInfo || function () {};
    const onError = opts.onError || function () {};
    let pc = null;
    let session = null;          // the Location to DELETE
    let stopped = true;
    let played = false;
    let connectTimer = 0;
    let lostTimer = 0;

    function fail(text, fatal) {
      if (stopped) return;
      stop();
      onError(text, fatal && !played);
    }

    function onFrame() {
      if (stopped || !video.videoWidth) return;
      played = true;
      onInfo({ codec: 'H.264', width: video.videoWidth, height: video.videoHeight });
    }

    async function start() {
      stopped = false;
      played = false;
      try {
        pc = new RTCPeerConnection({ iceServers: [] });
        pc.addTransceiver('video', { direction: 'recvonly' });
        pc.ontrack = function (e) {
          video.srcObject = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
          video.muted = true;
          video.playsInline = true;
          video.play().catch(function () { /* muted autoplay is allowed */ });
        };
        pc.onconnectionstatechange = function () {
          if (stopped || !pc) return;
          const s = pc.connectionState;
          if (s === 'connected') {
            clearTimeout(connectTimer);
            clearTimeout(lostTimer);
            lostTimer = 0;
          } else if (s === 'failed') {
            fail('the WebRTC connection failed (is UDP to camhub blocked?)', true);
          } else if (s === 'disconnected' && !lostTimer) {
            lostTimer = setTimeout(function () {
              fail('the WebRTC connection was lost', false);
            }, LOST_MS);
          }
        };
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        await gathered(pc);
        if (stopped) return;
        const resp = await window.fetch(opts.url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/sdp' },
          body: pc.localDescription.sdp,
          cache: 'no-store',
        });
        if (stopped) {
          const where = resp.headers.get('Location');
          if (resp.status === 201 && where) window.fetch(where, { method: 'DELETE' }).catch(function () {});
          return;
        }
        if (resp.status !== 201) {
          // 415 / 503: this camera cannot be played this way; others are worth a retry.
          fail(await window.camhub.errorOf(resp), resp.status === 415 || resp.status === 503 || resp.status === 404);
          return;
        }
        session = resp.headers.get('Location');
        const answer = await resp.text();
        if (stopped) return;
        await pc.setRemoteDescription({ type: 'answer', sdp: answer });
        connectTimer = setTimeout(function () {
          if (pc && pc.connectionState !== 'connected') {
            fail('no WebRTC connection within ' + CONNECT_MS / 1000 + ' s (is UDP to camhub blocked?)', true);
          }
        }, CONNECT_MS);
      } catch (e) {
        fail('WebRTC: ' + (e && e.message ? e.message : String(e)), true);
      }
    }

    function stop() {
      stopped = true;
      clearTimeout(connectTimer);
      clearTimeout(lostTimer);
      lostTimer = 0;
      if (pc) {
        pc.ontrack = null;
        pc.onconnectionstatechange = null;
        pc.close();
      }
      pc = null;
      if (session) {
        window.fetch(session, { method: 'DELETE', keepalive: true }).catch(function () {});
      }
      session = null;
      if (video.srcObject) video.srcObject = null;
    }

    video.addEventListener('loadeddata', onFrame);
    video.addEventListener('resize', onFrame);

    return {
      start: start,
      stop: function () {
        stop();
        video.removeEventListener('loadeddata', onFrame);
        video.removeEventListener('resize', onFrame);
      },
      /** The peer connection (for statistics), while it runs. */
      connection: function () { return pc; },
    };
  }

  window.camhub = window.camhub || {};
  window.camhub.WebrtcPlayer = WebrtcPlayer;
  window.camhub.webrtcAvailable = available;
})();
