// camhub.CameraPicture: what the camera page shows — the live picture (the MJPEG <img>, or the MSE
// <video> playing the camera's own H.264), or a still <canvas> that
// only changes when a JPEG comes (detect mode: only while something moves) and otherwise keeps the
// last picture — and the motion boxes drawn over whichever of the two shows.
//
// - Newest frame only: a JPEG that arrives while the previous one decodes replaces the waiting one.
// - No blank between frames: each JPEG is decoded off-screen (createImageBitmap) and drawn in one
//   step, as on the grid.
// - Boxes are normalized [x, y, w, h] (fractions of the picture); their layer is placed over exactly
//   the picture as shown (the element's box narrowed to its `object-fit: contain` picture), so they
//   land on what moves at any size. CSP allows no inline style attribute; positions are set through
//   element.style, which it allows.
'use strict';

(function () {
  function CameraPicture(els) {
    const media = els.media;
    const img = els.img;
    const video = els.video || null;
    const still = els.still;
    let player = img;             // which element shows live: img (MJPEG) or video (MSE)
    const layer = els.boxes;
    const ctx = still.getContext('2d');
    let live = true;
    let frames = 0;
    let decoding = false;
    let next = null;
    let boxes = [];
    let boxesSeen = 0;

    // A decoded picture of JPEG bytes (a Blob), drawable on a canvas.
    function decode(blob) {
      if (typeof window.createImageBitmap === 'function') return window.createImageBitmap(blob);
      const url = URL.createObjectURL(blob);
      const im = new Image();
      im.src = url;
      return im.decode().then(function () {
        URL.revokeObjectURL(url);
        return im;
      }, function (e) {
        URL.revokeObjectURL(url);
        throw e;
      });
    }

    function draw(bitmap) {
      if (still.width !== bitmap.width || still.height !== bitmap.height) {
        still.width = bitmap.width;
        still.height = bitmap.height;
      }
      ctx.drawImage(bitmap, 0, 0);
      if (typeof bitmap.close === 'function') bitmap.close();
      place();
    }

    async function drain() {
      decoding = true;
      while (next) {
        const blob = next;
        next = null;
        try {
          const bitmap = await decode(blob);
          if (live) {
            if (typeof bitmap.close === 'function') bitmap.close();
            continue;
          }
          draw(bitmap);
          frames += 1;
          still.dataset.frames = String(frames);
        } catch (e) { /* a broken JPEG: the picture shown stays */ }
      }
      decoding = false;
    }

    function clamp01(v) { return Math.min(1, Math.max(0, v)); }

    function naturalSize(el) {
      if (el === still) return [still.width, still.height];
      if (el === video) return [video.videoWidth, video.videoHeight];
      return [img.naturalWidth, img.naturalHeight];
    }

    function place() {
      const el = live ? player : still;
      const [nw, nh] = naturalSize(el);
      const host = media.getBoundingClientRect();
      const r = el.getBoundingClientRect();
      let x = r.left - host.left - media.clientLeft;
      let y = r.top - host.top - media.clientTop;
      let w = r.width;
      let h = r.height;
      if (nw > 0 && nh > 0 && w > 0 && h > 0) {
        const s = Math.min(w / nw, h / nh);
        x += (w - nw * s) / 2;
        y += (h - nh * s) / 2;
        w = nw * s;
        h = nh * s;
      }
      layer.style.left = x + 'px';
      layer.style.top = y + 'px';
      layer.style.width = w + 'px';
      layer.style.height = h + 'px';
    }

    if (window.ResizeObserver) new ResizeObserver(place).observe(media);
    window.addEventListener('resize', place);
    img.addEventListener('load', place);
    if (video) video.addEventListener('resize', place);

    function showLive() {
      img.hidden = !(live && player === img);
      if (video) video.hidden = !(live && player === video);
      still.hidden = live;
    }

    return {
      /** Shows the live <img> (true) or the still canvas (false). */
      setLive: function (on) {
        live = !!on;
        showLive();
        place();
      },
      /** Which element shows the live picture: 'video' (MSE) or 'img' (MJPEG). */
      setPlayer: function (which) {
        player = which === 'video' && video ? video : img;
        showLive();
        place();
      },
      /** A JPEG (ArrayBuffer or Blob) for the still picture. */
      offer: function (data) {
        next = data instanceof Blob ? data : new Blob([data], { type: 'image/jpeg' });
        if (!decoding) drain();
      },
      /** Keeps the live stream's current frame as the still picture; false when there is none. */
      keepLiveFrame: function () {
        const [w, h] = naturalSize(player);
        if (!(w > 0 && h > 0 && player.getAttribute('src'))) return false;
        try {
          still.width = w;
          still.height = h;
          ctx.drawImage(player, 0, 0);
          return true;
        } catch (e) {
          return false;
        }
      },
      /** Whether the still canvas holds a picture. */
      hasStill: function () { return still.width > 0 && still.height > 0; },
      /** Draws a JPEG Blob as the still picture unless frames came meanwhile (one snapshot). */
      showSnapshot: function (blob) {
        return decode(blob).then(function (bitmap) {
          if (frames > 0 || live) {
            if (typeof bitmap.close === 'function') bitmap.close();
            return;
          }
          draw(bitmap);
        });
      },
      /** Draws these normalized [x, y, w, h] boxes (an empty list takes them down). */
      showBoxes: function (list) {
        boxes = Array.isArray(list) ? list.filter(function (b) {
          return Array.isArray(b) && b.length === 4 &&
            b.every(function (v) { return typeof v === 'number' && isFinite(v); });
        }) : [];
        boxesSeen = Math.max(boxesSeen, boxes.length);
        while (layer.childElementCount > boxes.length) layer.lastElementChild.remove();
        while (layer.childElementCount < boxes.length) layer.append(document.createElement('div'));
        boxes.forEach(function (b, i) {
          const d = layer.children[i];
          d.className = 'motion-box';
          d.style.left = (clamp01(b[0]) * 100) + '%';
          d.style.top = (clamp01(b[1]) * 100) + '%';
          d.style.width = (clamp01(b[2]) * 100) + '%';
          d.style.height = (clamp01(b[3]) * 100) + '%';
        });
        place();
      },
      place,
      /** {frames: JPEGs drawn, still: canvas width, boxes: shown now, boxesSeen: most at once}. */
      summary: function () {
        return { frames, stillWidth: still.width, boxes: boxes.length, boxesSeen };
      },
    };
  }

  window.camhub = Object.assign(window.camhub || {}, { CameraPicture });
})();
