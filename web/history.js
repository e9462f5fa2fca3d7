// camhub motion history (`/history`, `/history?camera={id}`): a bar chart of motion over a range
// (`api/events/histogram`: per bucket the seconds of motion — the bar — and the events that started —
// the number), the events of a bar with their snapshots (`api/events`, paged with `next_before`), and
// an event's pictures in a viewer.
//
// Buckets are UTC minutes, hours or days (the server's); labels are in the browser's local time. The
// choices (camera, range, bucket, custom from/to, open event) live in the query string, so a reload or
// a shared link shows the same. Server strings only go through textContent.
//
// Test hook: camhub.history() summarises the bars, the listed events and the viewer.
'use strict';

(function () {
  const RANGES = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };
  const BUCKET_MS = { minute: 60e3, hour: 3600e3, day: 86400e3 };
  const DEFAULT_BUCKET = { '1h': 'minute', '24h': 'hour', '7d': 'hour', '30d': 'day' };
  const MAX_BUCKETS = 5000;           // the server's limit per request
  const COMFORTABLE_BARS = 400;       // the default bucket for a custom range stays under this
  const PAGE = 24;                    // events per page
  const REFRESH_MS = 60000;           // a "last …" range follows the clock
  const PLAY_MS = 700;

  const $ = function (id) { return document.getElementById(id); };
  const cameraSel = $('camera');
  const rangeSel = $('range');
  const bucketSel = $('bucket');
  const fromIn = $('from');
  const toIn = $('to');
  const customBox = $('custom-range');
  const messageEl = $('message');
  const summaryEl = $('summary');
  const barsEl = $('bars');
  const axisEl = $('axis');
  const ymaxEl = $('chart-ymax');
  const noteEl = $('chart-note');
  const periodEl = $('period');
  const periodTitle = $('period-title');
  const eventsEl = $('events');
  const eventsEmpty = $('events-empty');
  const moreBtn = $('more');
  const viewer = $('viewer');
  const viewerImg = $('viewer-img');
  const viewerTitle = $('viewer-title');
  const viewerInfo = $('viewer-info');
  const viewerOpen = $('viewer-open');
  const strip = $('strip');
  const playBtn = $('viewer-play');

  const names = new Map();            // camera id -> name
  let chart = null;                   // the last histogram answer, with the range asked
  let selected = null;                // start_ms of the chosen bar
  let period = null;                  // {from, to, camera, next, events: [...]} listed under the chart
  let loadSeq = 0;                    // answers to older requests are dropped
  let listSeq = 0;
  let view = null;                    // {event, pictures: [{url, label}], index}
  let playTimer = 0;
  let histograms = 0;                 // histograms drawn (test hook)

  // ---------------------------------------------------------------- helpers

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function showMessage(text, isError) {
    messageEl.textContent = text;
    messageEl.className = 'message' + (isError ? ' error' : '');
    messageEl.hidden = false;
  }

  function clearMessage() {
    messageEl.hidden = true;
    messageEl.textContent = '';
  }

  const errorOf = window.camhub.errorOf;

  async function getJson(url) {
    const resp = await fetch(url, { cache: 'no-store' });
    if (!resp.ok) throw new Error(await errorOf(resp));
    return resp.json();
  }

  function pad(n) { return String(n).padStart(2, '0'); }

  // A datetime-local input's value for a moment (local time, minutes).
  function localInput(ms) {
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' +
      pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  function hhmm(ms) {
    const d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  function dayLabel(ms) {
    return new Date(ms).toLocaleDateString(undefined, { weekday: 'short', month: 'short', day: 'numeric' });
  }

  function timeLabel(ms) {
    return new Date(ms).toLocaleTimeString();
  }

  function duration(seconds) {
    const s = Math.round(seconds);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + pad(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + pad(Math.floor((s % 3600) / 60)) + ' min';
  }

  function cameraName(id) {
    return names.get(id) || id;
  }

  // The period a bucket covers, in words: "Tue, Dec 2 14:00 – 15:00".
  function bucketWords(start, bucket) {
    const end = start + BUCKET_MS[bucket];
    if (bucket === 'day') return dayLabel(start) + ' ' + hhmm(start) + ' – ' + dayLabel(end) + ' ' + hhmm(end);
    return dayLabel(start) + ' ' + hhmm(start) + ' – ' + hhmm(end);
  }

  // ---------------------------------------------------------------- the choices

  function bucketCount(from, to, bucket) {
    const b = BUCKET_MS[bucket];
    const start = Math.floor(from / b) * b;
    return Math.ceil((to - start) / b);
  }

  // The range asked for now: {from, to, relative} in ms, or an error.
  function currentRange() {
    const r = rangeSel.value;
    if (r !== 'custom') {
      const to = Date.now();
      return { from: to - RANGES[r], to, relative: true };
    }
    const from = fromIn.value ? new Date(fromIn.value).getTime() : NaN;
    const to = toIn.value ? new Date(toIn.value).getTime() : NaN;
    if (!isFinite(from) || !isFinite(to)) return { error: 'Choose both a start and an end.' };
    if (from >= to) return { error: 'The start must be before the end.' };
    return { from, to, relative: false };
  }

  // Buckets that would make more than the server's 5000 bars are not offered; the chosen one moves
  // to the range's default when it becomes impossible.
  function fitBucket(keepChoice) {
    const range = currentRange();
    if (range.error) return;
    for (const o of bucketSel.options) {
      o.disabled = bucketCount(range.from, range.to, o.value) > MAX_BUCKETS;
    }
    let want = bucketSel.value;
    if (!keepChoice || bucketSel.selectedOptions[0].disabled) {
      want = DEFAULT_BUCKET[rangeSel.value];
      if (!want) {
        want = ['minute', 'hour', 'day'].find(function (b) {
          return bucketCount(range.from, range.to, b) <= COMFORTABLE_BARS;
        }) || 'day';
      }
    }
    bucketSel.value = want;
  }

  function saveQuery() {
    const q = new URLSearchParams();
    if (cameraSel.value) q.set('camera', cameraSel.value);
    if (rangeSel.value !== '24h') q.set('range', rangeSel.value);
    if (bucketSel.value !== DEFAULT_BUCKET[rangeSel.value]) q.set('bucket', bucketSel.value);
    if (rangeSel.value === 'custom') {
      const r = currentRange();
      if (!r.error) {
        q.set('from', new Date(r.from).toISOString());
        q.set('to', new Date(r.to).toISOString());
      }
    }
    if (view && view.event) q.set('event', String(view.event.id));
    const qs = q.toString();
    history.replaceState(null, '', location.pathname + (qs ? '?' + qs : ''));
  }

  function restoreQuery() {
    const q = new URLSearchParams(location.search);
    const range = q.get('range');
    if (range && (RANGES[range] || range === 'custom')) rangeSel.value = range;
    if (rangeSel.value === 'custom') {
      const from = Date.parse(q.get('from') || '');
      const to = Date.parse(q.get('to') || '');
      const now = Date.now();
      fromIn.value = localInput(isFinite(from) ? from : now - 86400e3);
      toIn.value = localInput(isFinite(to) ? to : now);
    }
    customBox.hidden = rangeSel.value !== 'custom';
    const bucket = q.get('bucket');
    if (bucket && BUCKET_MS[bucket]) bucketSel.value = bucket;
    fitBucket(!!bucket);
  }

  cameraSel.addEventListener('change', function () {
    updateCameraLink();
    load(true);
  });
  rangeSel.addEventListener('change', function () {
    if (rangeSel.value === 'custom' && (!fromIn.value || !toIn.value)) {
      // Start from what was shown.
      const shown = chart ? { from: chart.askedFrom, to: chart.askedTo } : { from: Date.now() - 86400e3, to: Date.now() };
      fromIn.value = localInput(shown.from);
      toIn.value = localInput(shown.to);
    }
    customBox.hidden = rangeSel.value !== 'custom';
    fitBucket(false);
    load(true);
  });
  bucketSel.addEventListener('change', function () { load(true); });
  for (const input of [fromIn, toIn]) {
    input.addEventListener('change', function () {
      fitBucket(true);
      load(true);
    });
  }
  $('controls').addEventListener('submit', function (ev) {
    ev.preventDefault();
    load(false);
  });

  function updateCameraLink() {
    const link = $('camera-link');
    const id = cameraSel.value;
    link.hidden = !id;
    if (id) {
      link.href = 'cameras/' + encodeURIComponent(id);
      link.textContent = cameraName(id) + ' live';
    }
    $('title').textContent = 'Motion history' + (id ? ' — ' + cameraName(id) : '');
    document.title = 'Motion history' + (id ? ' — ' + cameraName(id) : '') + ' — camhub';
  }

  // ---------------------------------------------------------------- the chart

  async function load(choicesChanged) {
    const range = currentRange();
    if (range.error) {
      showMessage(range.error, true);
      return;
    }
    const bucket = bucketSel.value;
    if (bucketCount(range.from, range.to, bucket) > MAX_BUCKETS) {
      showMessage('That is more than ' + MAX_BUCKETS + ' bars: choose a larger bucket or a shorter range.', true);
      return;
    }
    saveQuery();
    const q = new URLSearchParams({ bucket, from: String(Math.round(range.from)), to: String(Math.round(range.to)) });
    if (cameraSel.value) q.set('camera', cameraSel.value);
    const seq = ++loadSeq;
    summaryEl.textContent = 'Loading…';
    try {
      const h = await getJson('api/events/histogram?' + q.toString());
      if (seq !== loadSeq) return;
      clearMessage();
      h.askedFrom = range.from;
      h.askedTo = range.to;
      h.camera = cameraSel.value;
      chart = h;
      if (choicesChanged) {
        selected = null;
        periodEl.hidden = true;
      }
      drawChart();
    } catch (e) {
      if (seq !== loadSeq) return;
      summaryEl.textContent = '';
      showMessage('Cannot load the motion history: ' + e.message, true);
    }
  }

  function drawChart() {
    const h = chart;
    const buckets = Array.isArray(h.buckets) ? h.buckets : [];
    const bucket = h.bucket;
    let maxSeconds = 0;
    let totalEvents = 0;
    let totalSeconds = 0;
    for (const b of buckets) {
      maxSeconds = Math.max(maxSeconds, b.motion_seconds || 0);
      totalEvents += b.events || 0;
      totalSeconds += b.motion_seconds || 0;
    }
    const n = buckets.length;
    barsEl.replaceChildren();
    axisEl.replaceChildren();
    barsEl.classList.toggle('dense', n > 120);
    const labelCounts = n <= 72;
    buckets.forEach(function (b) {
      const bar = el('button', 'bar');
      bar.type = 'button';
      bar.dataset.start = String(b.start_ms);
      bar.dataset.events = String(b.events || 0);
      bar.dataset.seconds = String(b.motion_seconds || 0);
      const words = bucketWords(b.start_ms, bucket) + ': ' + (b.events || 0) +
        ((b.events || 0) === 1 ? ' event, ' : ' events, ') + duration(b.motion_seconds || 0) + ' of motion';
      bar.title = words;
      bar.setAttribute('aria-label', words);
      bar.setAttribute('aria-pressed', String(selected === b.start_ms));
      const fill = el('span', 'bar-fill');
      let pct = maxSeconds > 0 ? (b.motion_seconds || 0) / maxSeconds * 100 : 0;
      if ((b.events || b.motion_seconds) && pct < 3) pct = 3;   // a short event still shows
      fill.style.height = pct + '%';
      bar.append(fill);
      if (labelCounts && b.events) {
        const count = el('span', 'bar-count', b.events);
        count.style.bottom = pct + '%';
        bar.append(count);
      }
      if (!b.events && !b.motion_seconds) bar.classList.add('empty');
      bar.addEventListener('click', function () { selectBucket(b.start_ms); });
      barsEl.append(bar);
    });

    // About eight labels along the time axis, in local time.
    const every = Math.max(1, Math.ceil(n / 8));
    const longRange = n > 0 && buckets[n - 1].start_ms - buckets[0].start_ms >= 86400e3;
    for (let i = 0; i < n; i += every) {
      const ms = buckets[i].start_ms;
      let text;
      if (bucket === 'day') text = new Date(ms).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
      else if (bucket === 'hour' && longRange) text = dayLabel(ms).replace(/,.*/, '') + ' ' + hhmm(ms);
      else text = hhmm(ms);
      const tick = el('span', 'tick', text);
      tick.style.left = (i / n * 100) + '%';
      axisEl.append(tick);
    }
    ymaxEl.textContent = maxSeconds > 0 ? duration(maxSeconds) + ' per ' + bucket : '';

    const who = h.camera ? cameraName(h.camera) : 'all cameras';
    summaryEl.textContent = totalEvents + (totalEvents === 1 ? ' motion event' : ' motion events') + ', ' +
      duration(totalSeconds) + ' of motion — ' + who + ', ' + dayLabel(h.askedFrom) + ' ' + hhmm(h.askedFrom) +
      ' – ' + dayLabel(h.askedTo) + ' ' + hhmm(h.askedTo);
    let note = '';
    if (n === 0) {
      note = 'No motion events are stored: give a camera a [camera.motion] table in the config to record them.';
    } else if (totalEvents === 0 && totalSeconds === 0) {
      note = 'No motion in this range.';
    } else {
      note = 'Choose a bar to see its events.';
    }
    if (bucket === 'day' && new Date().getTimezoneOffset() !== 0) {
      const now = new Date();
      const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
      note += ' Days are UTC days (they start at ' + hhmm(midnight) + ' your time).';
    }
    noteEl.textContent = note;
    histograms += 1;
    barsEl.dataset.drawn = String(histograms);
  }

  function selectBucket(start) {
    if (!chart) return;
    selected = start;
    for (const bar of barsEl.children) {
      bar.setAttribute('aria-pressed', String(Number(bar.dataset.start) === start));
    }
    const from = start;
    const to = start + BUCKET_MS[chart.bucket];
    period = { from, to, camera: chart.camera, next: null, events: [] };
    periodTitle.textContent = 'Motion ' + bucketWords(start, chart.bucket) +
      (chart.camera ? ' — ' + cameraName(chart.camera) : '');
    periodEl.hidden = false;
    eventsEl.replaceChildren();
    eventsEmpty.hidden = true;
    moreBtn.hidden = true;
    loadEvents();
  }

  // ---------------------------------------------------------------- a period's events

  async function loadEvents() {
    const p = period;
    if (!p) return;
    const q = new URLSearchParams({ from: String(p.from), to: String(p.to), limit: String(PAGE) });
    if (p.camera) q.set('camera', p.camera);
    if (p.next !== null) q.set('before', String(p.next));
    const seq = ++listSeq;
    moreBtn.disabled = true;
    try {
      const page = await getJson('api/events?' + q.toString());
      if (seq !== listSeq || p !== period) return;
      const list = Array.isArray(page.events) ? page.events : [];
      for (const e of list) {
        p.events.push(e);
        eventsEl.append(eventCard(e));
      }
      p.next = typeof page.next_before === 'number' ? page.next_before : null;
      moreBtn.hidden = p.next === null;
      eventsEmpty.hidden = p.events.length > 0;
    } catch (e) {
      if (seq === listSeq) showMessage('Cannot list the events: ' + e.message, true);
    } finally {
      moreBtn.disabled = false;
    }
  }

  moreBtn.addEventListener('click', loadEvents);

  function eventCard(e) {
    const card = el('button', 'event-card');
    card.type = 'button';
    card.dataset.event = String(e.id);
    const picture = e.snapshot || (Array.isArray(e.frames) && e.frames[0]) || null;
    if (picture) {
      const img = el('img', 'event-thumb');
      img.loading = 'lazy';
      img.alt = 'Motion on ' + cameraName(e.camera) + ' at ' + timeLabel(e.start_ms);
      img.src = picture;
      card.append(img);
    } else {
      card.append(el('span', 'event-thumb no-picture', 'no picture'));
    }
    const meta = el('span', 'event-meta');
    meta.append(el('span', 'event-time', timeLabel(e.start_ms)));
    meta.append(el('span', 'event-camera', cameraName(e.camera)));
    const facts = [];
    facts.push(e.end_ms === null ? 'ongoing' : duration((e.duration_ms || 0) / 1000));
    if (typeof e.peak_score === 'number') facts.push('peak ' + (Math.round(e.peak_score * 10) / 10) + ' %');
    const count = Array.isArray(e.frames) ? e.frames.length : 0;
    facts.push(count + (count === 1 ? ' picture' : ' pictures'));
    meta.append(el('span', 'event-facts', facts.join(' · ')));
    card.append(meta);
    card.addEventListener('click', function () { openEvent(e); });
    return card;
  }

  // ---------------------------------------------------------------- the event viewer

  function openEvent(e) {
    const pictures = [];
    if (e.snapshot) pictures.push({ url: e.snapshot, label: 'peak' });
    (Array.isArray(e.frames) ? e.frames : []).forEach(function (url, i) {
      pictures.push({ url, label: String(i + 1) });
    });
    view = { event: e, pictures, index: 0 };
    viewerTitle.textContent = 'Motion on ' + cameraName(e.camera) + ', ' + dayLabel(e.start_ms) + ' ' +
      timeLabel(e.start_ms);
    const facts = [e.end_ms === null ? 'ongoing' : 'lasted ' + duration((e.duration_ms || 0) / 1000)];
    if (typeof e.peak_score === 'number') facts.push('largest change ' + (Math.round(e.peak_score * 10) / 10) + ' % of the picture');
    facts.push('event #' + e.id);
    viewerInfo.textContent = facts.join(' · ');
    strip.replaceChildren();
    pictures.forEach(function (p, i) {
      const b = el('button', 'strip-item');
      b.type = 'button';
      b.dataset.index = String(i);
      const img = el('img', 'strip-img');
      img.loading = 'lazy';
      img.alt = p.label === 'peak' ? 'Largest change' : 'Picture ' + p.label;
      img.src = p.url;
      b.append(img, el('span', 'strip-label', p.label));
      b.addEventListener('click', function () { show(i); });
      strip.append(b);
    });
    playBtn.disabled = pictures.length < 2;
    stopPlay();
    show(0);
    if (!viewer.open) {
      if (typeof viewer.showModal === 'function') viewer.showModal();
      else viewer.setAttribute('open', '');
    }
    saveQuery();
  }

  function show(i) {
    if (!view || view.pictures.length === 0) {
      viewerImg.removeAttribute('src');
      viewerOpen.hidden = true;
      return;
    }
    const n = view.pictures.length;
    view.index = ((i % n) + n) % n;
    const p = view.pictures[view.index];
    viewerImg.src = p.url;
    viewerOpen.href = p.url;
    viewerOpen.hidden = false;
    for (const b of strip.children) b.setAttribute('aria-current', String(Number(b.dataset.index) === view.index));
  }

  function stopPlay() {
    clearInterval(playTimer);
    playTimer = 0;
    playBtn.textContent = 'Play';
  }

  playBtn.addEventListener('click', function () {
    if (playTimer) {
      stopPlay();
      return;
    }
    // The frames in time order (the peak snapshot is left out).
    const first = view && view.pictures.length > 1 && view.pictures[0].label === 'peak' ? 1 : 0;
    if (view.index < first) show(first);
    playTimer = setInterval(function () {
      const next = view.index + 1 >= view.pictures.length ? first : view.index + 1;
      show(next);
    }, PLAY_MS);
    playBtn.textContent = 'Pause';
  });

  $('viewer-prev').addEventListener('click', function () { stopPlay(); show(view.index - 1); });
  $('viewer-next').addEventListener('click', function () { stopPlay(); show(view.index + 1); });
  $('viewer-close').addEventListener('click', function () { viewer.close(); });
  viewer.addEventListener('close', function () {
    stopPlay();
    view = null;
    viewer.removeAttribute('open');
    saveQuery();
  });
  viewer.addEventListener('keydown', function (ev) {
    if (!view) return;
    if (ev.key === 'ArrowLeft') { stopPlay(); show(view.index - 1); }
    if (ev.key === 'ArrowRight') { stopPlay(); show(view.index + 1); }
  });

  // `?event=ID`, the link of a motion alert: open that event.
  async function openLinkedEvent(idText) {
    if (!idText || !/^\d+$/.test(idText)) return;
    try {
      const e = await getJson('api/events/' + idText);
      openEvent(e);
    } catch (err) {
      showMessage('Event #' + idText + ': ' + err.message, true);
    }
  }

  // ---------------------------------------------------------------- start

  async function loadCameras() {
    const wanted = new URLSearchParams(location.search).get('camera') || '';
    try {
      const list = await getJson('api/cameras');
      for (const c of Array.isArray(list) ? list : []) {
        if (!c || typeof c.id !== 'string') continue;
        names.set(c.id, c.name || c.id);
        const o = el('option', null, c.name && c.name !== c.id ? c.name + ' (' + c.id + ')' : c.id);
        o.value = c.id;
        cameraSel.append(o);
      }
    } catch (e) {
      showMessage('Cannot load the camera list: ' + e.message, true);
    }
    if (wanted) {
      if (!names.has(wanted)) {
        // Not (or no longer) a camera of the config: its stored events can still be asked for.
        const o = el('option', null, wanted + ' (not configured)');
        o.value = wanted;
        cameraSel.append(o);
      }
      cameraSel.value = wanted;
    }
    updateCameraLink();
  }

  async function start() {
    const linked = new URLSearchParams(location.search).get('event');   // before load() rewrites the query
    restoreQuery();
    await loadCameras();
    await load(true);
    await openLinkedEvent(linked);
    setInterval(function () {
      if (document.visibilityState === 'visible' && rangeSel.value !== 'custom') load(false);
    }, REFRESH_MS);
  }

  // session.js put the login helpers here first.
  window.camhub = Object.assign(window.camhub || {}, {
    /** The page's state, for the headless browser tests. */
    history: function () {
      return {
        drawn: histograms,
        bucket: chart ? chart.bucket : null,
        bars: Array.from(barsEl.children).map(function (b) {
          return { start: Number(b.dataset.start), events: Number(b.dataset.events), seconds: Number(b.dataset.seconds) };
        }),
        selected,
        events: period ? period.events.map(function (e) { return e.id; }) : [],
        more: !moreBtn.hidden,
        viewer: view ? { event: view.event.id, index: view.index, pictures: view.pictures.length } : null,
      };
    },
  });

  start();
})();
