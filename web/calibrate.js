// The calibration page (/cameras/{id}/calibrate): the camera's picture as it sends it
// (source.jpeg), turned by the camera's own rotate/flip as camhub does, four clicks for a
// perspective's corners (top-left, bottom-left, bottom-right, top-right: seed 004's order), the
// warped result beside it (the same homography as camhub, drawn here), and the config block to
// copy. The picture refreshes while the page is open, so the warp is checked on a live view.
'use strict';
(function () {
  const ORDER = ['top-left', 'bottom-left', 'bottom-right', 'top-right'];
  const PREVIEW_MAX = 640;
  const $ = (id) => document.getElementById(id);
  const m = location.pathname.match(/\/cameras\/([^/]+)\/calibrate\/?$/);
  const id = m ? decodeURIComponent(m[1]) : '';
  const state = {
    ready: false, rotate: 0, flipH: false, flipV: false, corners: [], width: 0, height: 0,
    pictures: 0, outW: null, outH: null,
  };
  const source = $('source');
  const warped = $('warped');
  let pixels = null; // the rotated picture's ImageData

  function banner(text) {
    $('banner').textContent = text;
    $('banner').hidden = !text;
  }

  // Draws `img` into the source canvas turned as camhub turns it: rotate clockwise, then flip.
  function drawRotated(img) {
    const [w, h] = [img.naturalWidth, img.naturalHeight];
    const swap = state.rotate === 90 || state.rotate === 270;
    const [rw, rh] = swap ? [h, w] : [w, h];
    if (source.width !== rw || source.height !== rh) {
      source.width = rw;
      source.height = rh;
    }
    const ctx = source.getContext('2d');
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.translate(state.flipH ? rw : 0, state.flipV ? rh : 0);
    ctx.scale(state.flipH ? -1 : 1, state.flipV ? -1 : 1);
    ctx.translate(rw / 2, rh / 2);
    ctx.rotate((state.rotate * Math.PI) / 180);
    ctx.drawImage(img, -w / 2, -h / 2);
    ctx.restore();
    pixels = ctx.getImageData(0, 0, rw, rh);
    state.width = rw;
    state.height = rh;
  }

  // The homography taking src[i] to dst[i] (four pairs), as 9 numbers; null when degenerate.
  function homography(src, dst) {
    const a = [];
    for (let i = 0; i < 4; i++) {
      const [x, y] = src[i];
      const [u, v] = dst[i];
      a.push([x, y, 1, 0, 0, 0, -u * x, -u * y, u]);
      a.push([0, 0, 0, x, y, 1, -v * x, -v * y, v]);
    }
    for (let c = 0; c < 8; c++) {
      let p = c;
      for (let r = c + 1; r < 8; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
      if (Math.abs(a[p][c]) < 1e-12) return null;
      [a[c], a[p]] = [a[p], a[c]];
      for (let r = 0; r < 8; r++) {
        if (r === c) continue;
        const f = a[r][c] / a[c][c];
        for (let k = c; k < 9; k++) a[r][k] -= f * a[c][k];
      }
    }
    const h = a.map((row, i) => row[8] / row[i]);
    return [...h, 1];
  }

  function outputSize() {
    const c = state.corners;
    const d = (p, q) => Math.hypot(p[0] - q[0], p[1] - q[1]);
    const autoW = Math.round(Math.max(d(c[0], c[3]), d(c[1], c[2])));
    const autoH = Math.round(Math.max(d(c[0], c[1]), d(c[3], c[2])));
    return [state.outW || Math.max(16, autoW), state.outH || Math.max(16, autoH)];
  }

  // The warped picture, sampled bilinearly like camhub (output pixel -> source point).
  function drawWarped() {
    if (state.corners.length !== 4 || !pixels) return;
    const [ow, oh] = outputSize();
    const k = Math.min(1, PREVIEW_MAX / ow);
    const [pw, ph] = [Math.max(1, Math.round(ow * k)), Math.max(1, Math.round(oh * k))];
    const h = homography([[0, 0], [0, oh], [ow, oh], [ow, 0]], state.corners);
    if (!h) {
      banner('These corners do not make a quadrilateral: three of them are on one line.');
      return;
    }
    banner('');
    warped.width = pw;
    warped.height = ph;
    const ctx = warped.getContext('2d');
    const out = ctx.createImageData(pw, ph);
    const { width: sw, height: sh, data: s } = pixels;
    for (let v = 0; v < ph; v++) {
      for (let u = 0; u < pw; u++) {
        const [x0, y0] = [u / k, v / k];
        const w = h[6] * x0 + h[7] * y0 + h[8];
        const x = (h[0] * x0 + h[1] * y0 + h[2]) / w;
        const y = (h[3] * x0 + h[4] * y0 + h[5]) / w;
        const o = (v * pw + u) * 4;
        out.data[o + 3] = 255;
        if (!(x >= -0.5 && x <= sw - 0.5 && y >= -0.5 && y <= sh - 0.5)) continue;
        const xc = Math.min(Math.max(x, 0), sw - 1);
        const yc = Math.min(Math.max(y, 0), sh - 1);
        const xi = Math.min(Math.floor(xc), sw - 2);
        const yi = Math.min(Math.floor(yc), sh - 2);
        const fx = xc - xi;
        const fy = yc - yi;
        const i = (yi * sw + xi) * 4;
        for (let ch = 0; ch < 3; ch++) {
          const top = s[i + ch] * (1 - fx) + s[i + 4 + ch] * fx;
          const bottom = s[i + sw * 4 + ch] * (1 - fx) + s[i + sw * 4 + 4 + ch] * fx;
          out.data[o + ch] = top * (1 - fy) + bottom * fy;
        }
      }
    }
    ctx.putImageData(out, 0, 0);
  }

  function drawMarks() {
    const ctx = source.getContext('2d');
    if (pixels) ctx.putImageData(pixels, 0, 0);
    const r = Math.max(4, Math.round(source.width / 160));
    ctx.lineWidth = Math.max(2, r / 2);
    ctx.strokeStyle = '#ffd400';
    ctx.fillStyle = '#ffd400';
    ctx.font = `${r * 3}px sans-serif`;
    ctx.beginPath();
    state.corners.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (state.corners.length === 4) ctx.closePath();
    ctx.stroke();
    state.corners.forEach(([x, y], i) => {
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillText(String(i + 1), x + r * 1.5, y - r);
    });
  }

  // The config block: the camera's own rotate/flip, the corners, the output size, and the size
  // the corners were placed on (so a resolution change keeps the warp).
  function configBlock() {
    if (state.corners.length !== 4) return '';
    const [ow, oh] = outputSize();
    const lines = [];
    if (state.rotate) lines.push(`rotate = ${state.rotate}`);
    const flip = state.flipH && state.flipV ? 'both' : state.flipH ? 'horizontal' : state.flipV ? 'vertical' : '';
    if (flip) lines.push(`flip = "${flip}"`);
    const pts = state.corners.map(([x, y]) => `[${Math.round(x)}, ${Math.round(y)}]`).join(', ');
    lines.push(`perspective = { corners = [${pts}], width = ${ow}, height = ${oh} }`);
    lines.push(`transform_size = [${state.width}, ${state.height}]`);
    return lines.join('\n');
  }

  function update() {
    drawMarks();
    drawWarped();
    const n = state.corners.length;
    $('prompt').textContent = n < 4
      ? `Click the ${ORDER[n]} corner of the area to straighten (${n + 1} of 4).`
      : 'Done: check the warped result, adjust the output size, and copy the block. Click again to start over.';
    if (n === 4) {
      const [ow, oh] = outputSize();
      $('out-width').placeholder = ow;
      $('out-height').placeholder = oh;
    }
    $('config').textContent = configBlock();
    $('copy').disabled = n !== 4;
  }

  source.addEventListener('click', (ev) => {
    const rect = source.getBoundingClientRect();
    const x = ((ev.clientX - rect.left) * source.width) / rect.width;
    const y = ((ev.clientY - rect.top) * source.height) / rect.height;
    if (state.corners.length === 4) state.corners = [];
    state.corners.push([x, y]);
    update();
  });
  $('reset').addEventListener('click', () => {
    state.corners = [];
    update();
  });
  for (const [input, key] of [['out-width', 'outW'], ['out-height', 'outH']]) {
    $(input).addEventListener('input', () => {
      const v = parseInt($(input).value, 10);
      state[key] = v >= 16 && v <= 16384 ? v : null;
      update();
    });
  }
  $('copy').addEventListener('click', async () => {
    const text = configBlock();
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents($('config'));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      document.execCommand('copy');
    }
    $('copied').hidden = false;
    setTimeout(() => { $('copied').hidden = true; }, 1500);
  });

  function loadPicture() {
    const img = new Image();
    img.onload = () => {
      drawRotated(img);
      state.pictures += 1;
      state.ready = true;
      update();
    };
    img.onerror = () => {
      fetch(`api/cameras/${encodeURIComponent(id)}/source.jpeg`)
        .then((r) => r.json())
        .then((e) => banner(e.error || 'The camera sends no picture.'))
        .catch(() => banner('The camera sends no picture.'));
    };
    img.src = `api/cameras/${encodeURIComponent(id)}/source.jpeg?t=${Date.now()}`;
  }

  async function start() {
    $('back').href = `cameras/${encodeURIComponent(id)}`;
    const r = await fetch(`api/cameras/${encodeURIComponent(id)}`);
    if (!r.ok) {
      banner((await r.json().catch(() => ({}))).error || `No camera "${id}".`);
      return;
    }
    const cam = await r.json();
    $('title').textContent = `Calibrate ${cam.name}`;
    const t = cam.transform || {};
    state.rotate = t.rotate || 0;
    state.flipH = t.flip === 'horizontal' || t.flip === 'both';
    state.flipV = t.flip === 'vertical' || t.flip === 'both';
    loadPicture();
    setInterval(() => {
      if ($('live').checked && !document.hidden) loadPicture();
    }, 2000);
  }

  window.camhub = Object.assign(window.camhub || {}, {
    calibrate: { state, config: configBlock },
  });
  start();
})();
