// The control-room console: a page of the gateway's own API (same origin, the session cookie
// of POST /api/v1/login, the CSRF token on every write), live over GET /api/v1/events (SSE).
// Views by the address's hash: #/overview, #/wall, #/site/ID, #/incidents, #/incident/ID,
// #/warnings, #/admin. Every text from the gateway goes into the page as text, never as HTML.
'use strict';
(function () {
  const I18N = window.HRS_I18N;
  const S = {
    me: null, lang: 'zh-CN', tz: 'Asia/Shanghai', csrf: sessionStorage.getItem('hrs_csrf'),
    sites: [], siteById: new Map(), alerts: new Map(), es: null, stream: 'connecting',
    audio: null, armed: false, view: null, timer: null, fmt: null,
  };
  const $ = (id) => document.getElementById(id);
  const main = $('main');

  // --- words and times ---------------------------------------------------------------
  function t(key) {
    const table = I18N[S.lang] || I18N['zh-CN'];
    return table[key] !== undefined ? table[key] : I18N['zh-CN'][key] !== undefined ? I18N['zh-CN'][key] : key;
  }
  function tt(group, key) {
    if (key === null || key === undefined) return '';
    const g = (I18N[S.lang] || {})[group] || {};
    const z = I18N['zh-CN'][group] || {};
    return g[key] || (S.lang === 'en' ? key : z[key]) || key;
  }
  function setFormat() {
    S.fmt = new Intl.DateTimeFormat(S.lang === 'en' ? 'en-GB' : 'zh-CN', {
      timeZone: S.tz, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
    });
  }
  // A time of the API (RFC 3339) in the configured zone (Beijing time by default).
  function when(v) {
    if (!v) return '';
    const d = new Date(v);
    return isNaN(d) ? String(v) : S.fmt.format(d);
  }
  function zoneName() { return S.tz === 'Asia/Shanghai' ? t('tz_beijing') : S.tz; }

  // --- the DOM, as text ----------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v); else el.setAttribute(k, v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return el;
  }
  function show(...kids) { main.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false)); }
  const sevBadge = (s) => h('span', { class: 'badge sev-' + s, 'data-severity': s }, tt('sev', s));
  const stBadge = (s) => h('span', { class: 'badge st-' + s, 'data-state': s }, tt('st', s));
  const overdueBadge = (i) => (i && i.overdue === true ? h('span', { class: 'badge overdue', 'data-overdue': 'true' }, t('overdue')) : null);
  function siteName(id) { const s = S.siteById.get(id); return s && s.name ? s.name + ' (' + id + ')' : id; }
  function translateStatic() {
    document.querySelectorAll('[data-t]').forEach((el) => { el.textContent = t(el.dataset.t); });
    document.title = t('title');
    document.documentElement.lang = S.lang;
    $('lang').textContent = S.lang === 'en' ? '中文' : 'English';
    renderSound(); renderStream();
    const me = S.me;
    if (me) {
      $('who').textContent = me.user + ' · ' + tt('roles', me.role) + ' · ' + (me.scopes || '') + (me.open ? ' · ' + t('open_mode') : '');
      $('zone').textContent = zoneName();
    }
  }

  // --- the API -------------------------------------------------------------------------
  class ApiError extends Error { constructor(status, msg) { super(msg); this.status = status; } }
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && S.csrf) headers['X-CSRF-Token'] = S.csrf;
    const r = await fetch(path, { method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    // A session that ended, or a tab that lost its CSRF token (a new tab): log in again.
    const csrfLost = r.status === 403 && data && /X-CSRF-Token/.test(data.error || '');
    if ((r.status === 401 && path !== '/api/v1/login') || csrfLost) { showLogin(); }
    if (!r.ok) throw new ApiError(r.status, (data && data.error) || text || r.statusText);
    return data;
  }
  const get = (p) => api('GET', p);
  const post = (p, b) => api('POST', p, b === undefined ? {} : b);
  function errorText(e) {
    if (e.status === 404) return t('not_found') + ': ' + e.message;
    if (e.status === 403) return t('forbidden') + ': ' + e.message;
    return e.message || String(e);
  }
  async function loadSites() {
    S.sites = await get('/api/v1/sites');
    S.siteById = new Map(S.sites.map((s) => [s.id, s]));
  }

  // --- login and start -------------------------------------------------------------------
  function showLogin() {
    stopStream();
    $('top').hidden = true; $('alerts').hidden = true; main.replaceChildren();
    $('login').hidden = false;
    $('login-form').reset();
    translateStatic();
    $('login-user').focus();
  }
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('login-error').textContent = '';
    try {
      const r = await api('POST', '/api/v1/login', { user: $('login-user').value, password: $('login-password').value });
      S.csrf = r.csrf_token; sessionStorage.setItem('hrs_csrf', S.csrf);
      $('login-password').value = '';
      await start();
    } catch (err) {
      $('login-error').textContent = t('login_failed') + ': ' + err.message;
    }
  });
  $('logout').addEventListener('click', async () => {
    try { await post('/api/v1/logout'); } catch (_) { /* the session may be gone already */ }
    sessionStorage.removeItem('hrs_csrf'); S.csrf = null; S.me = null;
    showLogin();
  });
  $('lang').addEventListener('click', () => {
    S.lang = S.lang === 'en' ? 'zh-CN' : 'en';
    localStorage.setItem('hrs_lang', S.lang);
    setFormat(); translateStatic(); route();
  });

  async function start() {
    let me;
    try { me = await get('/api/v1/me'); } catch (e) { if (e.status !== 401) showError(e); return; }
    S.me = me;
    // The gateway's severity and state words (one table for the console, messages, exports).
    for (const [lang, w] of Object.entries(me.words || {})) {
      if (!I18N[lang]) continue;
      if (w.severity) I18N[lang].sev = w.severity;
      if (w.state) I18N[lang].st = w.state;
    }
    S.lang = localStorage.getItem('hrs_lang') || me.language || 'zh-CN';
    S.tz = me.time_zone || 'Asia/Shanghai';
    setFormat();
    $('login').hidden = true; $('top').hidden = false;
    $('who').dataset.user = me.user;
    $('logout').hidden = !!me.open;
    $('nav-admin').hidden = me.role !== 'admin';
    translateStatic();
    try { await loadSites(); } catch (e) { showError(e); return; }
    await seedAlerts();
    startStream();
    route();
  }
  function showError(e) { show(h('p', { class: 'error' }, errorText(e))); }

  // --- live: the event stream, the critical cue, the sound -----------------------------------
  function startStream() {
    stopStream();
    const es = new EventSource('/api/v1/events');
    S.es = es;
    setStream('connecting');
    es.onopen = () => setStream('ok');
    es.onerror = () => {
      setStream('broken');
      // A refused stream (a session that ended) is not retried by the browser: start again.
      if (es.readyState === EventSource.CLOSED) setTimeout(() => { if (S.es === es && S.me) start(); }, 5000);
    };
    es.addEventListener('incident', (m) => { try { onEvent(JSON.parse(m.data)); } catch (err) { console.error(err); } });
    es.addEventListener('resync', () => { seedAlerts(); if (S.view && S.view.refresh) S.view.refresh(); });
  }
  function stopStream() { if (S.es) { S.es.close(); S.es = null; } }
  function setStream(st) { S.stream = st; renderStream(); }
  function renderStream() {
    const el = $('stream');
    el.className = 'stream ' + S.stream;
    el.dataset.state = S.stream;
    el.textContent = t(S.stream === 'ok' ? 'stream_ok' : S.stream === 'broken' ? 'stream_broken' : 'stream_connecting');
  }
  function needsCue(i) { return i.severity === 'critical' && i.state === 'active' && !i.acked_at; }
  async function seedAlerts() {
    try {
      const open = await get('/api/v1/incidents?state=active&severity=critical&limit=1000');
      S.alerts = new Map(open.filter(needsCue).map((i) => [i.id, i]));
      renderAlerts();
    } catch (_) { /* shown by the views */ }
  }
  // An event of the stream is the incident as it stands now with the event's fields
  // (`event`, `event_id`, `at`, `by`) beside it; the views get {event, incident}.
  function onEvent(raw) {
    const i = raw.incident || raw;
    if (!i || !i.id || !i.site) return;
    const ev = { event: raw.event, at: raw.at, by: raw.by, incident: i };
    const isNew = !S.alerts.has(i.id) && needsCue(i);
    if (needsCue(i)) S.alerts.set(i.id, i); else S.alerts.delete(i.id);
    renderAlerts();
    if (isNew) beep();
    if (S.view && S.view.onEvent) S.view.onEvent(ev);
  }
  function renderAlerts() {
    const el = $('alerts');
    el.hidden = S.alerts.size === 0;
    el.replaceChildren(h('strong', {}, t('new_critical') + ' (' + S.alerts.size + '): '),
      ...[...S.alerts.values()].map((i) => h('span', { class: 'item', 'data-incident': i.id },
        siteName(i.site), ' · ', i.message || i.rule, ' · ', when(i.raised_at), ' ',
        h('a', { href: '#/incident/' + encodeURIComponent(i.id) }, t('view')))));
  }
  $('sound').addEventListener('click', () => {
    // Browsers let a page sound only after a click: this click arms it.
    if (S.armed) { S.armed = false; } else {
      S.audio = S.audio || new (window.AudioContext || window.webkitAudioContext)();
      S.audio.resume(); S.armed = true; beep();
    }
    renderSound();
  });
  function renderSound() {
    $('sound').textContent = S.armed ? t('sound_armed') + ' · ' + t('sound_off') : t('sound_arm');
    $('sound').dataset.armed = S.armed ? 'true' : 'false';
  }
  function beep() {
    if (!S.armed || !S.audio) return;
    const a = S.audio, now = a.currentTime;
    for (let k = 0; k < 3; k++) {
      const o = a.createOscillator(), g = a.createGain();
      o.frequency.value = k % 2 ? 660 : 880; o.connect(g); g.connect(a.destination);
      g.gain.setValueAtTime(0.25, now + k * 0.35); g.gain.setValueAtTime(0, now + k * 0.35 + 0.25);
      o.start(now + k * 0.35); o.stop(now + k * 0.35 + 0.3);
    }
  }
  // While a critical incident waits for its acknowledgement, the sound comes back.
  setInterval(() => { if (S.alerts.size) beep(); }, 20000);

  // --- views ---------------------------------------------------------------------------
  function route() {
    if (!S.me) return;
    clearInterval(S.timer); S.timer = null; S.view = null;
    // A view's late answers must not draw over the view that replaced it.
    S.gen = (S.gen || 0) + 1;
    const [, name, arg] = (location.hash || '#/overview').split('/');
    const id = arg ? decodeURIComponent(arg) : null;
    document.body.classList.toggle('wall', name === 'wall');
    document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('here', a.getAttribute('href') === '#/' + name));
    const views = { overview, wall: overview, site, incidents, incident, warnings, admin };
    const v = views[name] || overview;
    v(id);
  }
  window.addEventListener('hashchange', route);
  function every(ms, f) { S.timer = setInterval(f, ms); }

  // Overview: every site in scope, worst first, and where they are.
  const SEVS = ['critical', 'alarm', 'warning', 'info'];
  async function overview() {
    const gen = S.gen;
    const refresh = async () => {
      let incs, warns, vehicles;
      try {
        await loadSites();
        [incs, warns, vehicles] = await Promise.all([get('/api/v1/incidents?state=open&limit=1000'), get('/api/v1/weather/warnings'),
          get('/api/v1/positions').then((r) => r.positions).catch(() => [])]);
      } catch (e) { if (gen === S.gen) showError(e); return; }
      const rows = S.sites.map((s) => {
        const counts = Object.fromEntries(SEVS.map((k) => [k, 0]));
        incs.filter((i) => i.site === s.id).forEach((i) => { counts[i.severity] = (counts[i.severity] || 0) + 1; });
        const ws = warns.filter((w) => (w.sites || []).some((x) => (x.site || x) === s.id));
        return { s, counts, ws };
      });
      const key = (r) => [r.counts.critical, r.counts.alarm, r.s.online ? 0 : 1, r.counts.warning, r.ws.length, -r.s.completeness];
      rows.sort((a, b) => { const ka = key(a), kb = key(b); for (let k = 0; k < ka.length; k++) if (ka[k] !== kb[k]) return kb[k] - ka[k]; return a.s.id < b.s.id ? -1 : 1; });
      const worst = (r) => (r.counts.critical ? 'critical' : r.counts.alarm ? 'alarm' : !r.s.online ? 'offline' : r.counts.warning ? 'warning' : 'ok');
      const cards = rows.map((r) => h('div', { class: 'card w-' + worst(r), 'data-site': r.s.id,
        onclick: () => { location.hash = '#/site/' + encodeURIComponent(r.s.id); } },
        h('div', { class: 'title' }, r.s.name || r.s.id),
        h('div', { class: 'dim' }, r.s.id, ' · ', tt('cat', r.s.category), ' · ', r.s.region_name || r.s.region || ''),
        h('div', { class: 'row' }, h('span', { class: r.s.online ? 'on' : 'off' }, r.s.online ? t('online') : t('offline')),
          ' · ', t('completeness'), ' ', Math.round((r.s.completeness || 0) * 1000) / 10, '%'),
        h('div', { class: 'row' }, t('open_incidents'), ': ',
          SEVS.some((k) => r.counts[k]) ? SEVS.filter((k) => r.counts[k]).map((k) => h('span', { class: 'badge sev-' + k }, tt('sev', k), ' ', r.counts[k])) : t('none')),
        r.ws.length ? h('div', { class: 'row' }, t('warnings_badge'), ': ', r.ws.map((w) => h('span', { class: 'badge wl-' + w.level, title: w.headline || w.event }, tt('wl', w.level), ' ', w.event))) : null,
        h('div', { class: 'row dim' }, t('last_seen'), ' ', when(r.s.last_seen))));
      if (gen !== S.gen) return;
      show(h('h1', {}, t('sites'), ' (', S.sites.length, ')'),
        h('div', { class: 'layout' }, h('div', { class: 'grid', id: 'site-cards' }, cards),
          h('div', { class: 'panel' }, h('h2', {}, t('position_plot')), plot(rows.map((r) => ({ s: r.s, worst: worst(r) })), vehicles),
            h('p', { class: 'dim' }, t('no_position')))));
    };
    S.view = { refresh, onEvent: debounce(refresh, 500) };
    await refresh();
    every(10000, refresh);
  }
  function debounce(f, ms) { let tm = null; return () => { clearTimeout(tm); tm = setTimeout(f, ms); }; }

  // The sites' positions, and the vehicles' last ones, on plain axes of longitude and
  // latitude: no tiles, no boundaries.
  function plot(items, vehicles) {
    const pts = items.filter((x) => typeof x.s.lat === 'number' && typeof x.s.lon === 'number');
    const W = 600, H = 420, pad = 40;
    const el = svg('svg', { class: 'plot', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': t('position_plot') });
    const lons = pts.map((p) => p.s.lon).concat(vehicles.map((v) => v.lon));
    const lats = pts.map((p) => p.s.lat).concat(vehicles.map((v) => v.lat));
    if (!lons.length) return el;
    let [x0, x1] = [Math.min(...lons), Math.max(...lons)];
    let [y0, y1] = [Math.min(...lats), Math.max(...lats)];
    const span = Math.max(x1 - x0, y1 - y0, 0.2) * 0.6;
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, k = Math.cos((cy * Math.PI) / 180) || 1;
    [x0, x1, y0, y1] = [cx - span / k, cx + span / k, cy - span, cy + span];
    const sc = Math.min((W - 2 * pad) / ((x1 - x0) * k), (H - 2 * pad) / (y1 - y0));
    const X = (lon) => W / 2 + (lon - cx) * k * sc, Y = (lat) => H / 2 - (lat - cy) * sc;
    const step = niceStep((y1 - y0) * (document.body.classList.contains('wall') ? 2 : 1));
    for (let v = Math.ceil(y0 / step) * step; v <= y1; v += step) {
      el.append(svg('line', { class: 'grat', x1: 0, x2: W, y1: Y(v), y2: Y(v) }), svg('text', { x: 2, y: Y(v) - 2 }, v.toFixed(2) + '°N'));
    }
    for (let v = Math.ceil(x0 / step) * step; v <= x1; v += step) {
      if (X(v) < 0 || X(v) > W) continue;
      el.append(svg('line', { class: 'grat', y1: 0, y2: H, x1: X(v), x2: X(v) }), svg('text', { x: X(v) + 2, y: H - 4 }, v.toFixed(2) + '°E'));
    }
    const colour = { critical: '#ff3b3b', alarm: '#ff8c1a', warning: '#ffd21a', offline: '#7f8c8d', ok: '#2ecc71' };
    for (const p of pts) {
      const go = () => { location.hash = '#/site/' + encodeURIComponent(p.s.id); };
      el.append(svg('circle', { cx: X(p.s.lon), cy: Y(p.s.lat), r: p.worst === 'ok' ? 7 : 10, fill: colour[p.worst], 'data-site': p.s.id, onclick: go },
        svg('title', {}, (p.s.name || p.s.id) + ' ' + p.s.lat + ', ' + p.s.lon)));
      const right = X(p.s.lon) > W * 0.6;
      el.append(svg('text', { class: 'label', x: X(p.s.lon) + (right ? -12 : 12), y: Y(p.s.lat) + 4, 'text-anchor': right ? 'end' : 'start' }, p.s.name || p.s.id));
    }
    // A vehicle: a small triangle, grey when its position is not good; to its company's page.
    for (const v of vehicles) {
      const x = X(v.lon), y = Y(v.lat), go = () => { location.hash = '#/site/' + encodeURIComponent(v.site); };
      el.append(svg('polygon', { class: 'vehicle' + (v.quality && v.quality !== 'good' ? ' stale' : ''), points: `${x},${y - 6} ${x - 5},${y + 4} ${x + 5},${y + 4}`,
        'data-vehicle': v.point, 'data-site': v.site, onclick: go },
      svg('title', {}, (v.name || v.point) + ' · ' + siteName(v.site) + (v.speed_kmh !== undefined && v.speed_kmh !== null ? ' · ' + v.speed_kmh + ' km/h' : '') + ' · ' + when(v.ts))));
    }
    return el;
  }
  function niceStep(range) {
    const raw = range / 5, p = Math.pow(10, Math.floor(Math.log10(raw)));
    return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || raw;
  }

  // A site: its points, live, each with its trend; its open incidents.
  async function site(id) {
    const gen = S.gen;
    const refresh = async () => {
      let pts, incs, lv;
      const base = '/api/v1/sites/' + encodeURIComponent(id);
      try {
        [pts, incs, lv] = await Promise.all([get(base + '/points'),
          get('/api/v1/incidents?state=open&limit=200&site=' + encodeURIComponent(id)),
          get(base + '/levels').catch(() => [])]);
      } catch (e) { if (gen === S.gen) showError(e); return; }
      const levelsOf = new Map(lv.map((x) => [x.point, x.levels]));
      const s = S.siteById.get(id) || { id };
      const canvases = [];
      const rows = pts.map((p) => {
        const c = h('canvas', { class: 'trend', width: 320, height: 64, 'data-point': p.point });
        canvases.push([p, c]);
        return h('tr', { 'data-point': p.point }, h('td', {}, p.point, h('div', { class: 'dim' }, p.name || '')),
          h('td', {}, tt('q', p.quantity)), h('td', { title: p.location || '' }, p.location_text || p.location || ''),
          h('td', { class: 'value' }, fmtValue(p.value)), h('td', {}, p.unit || ''),
          h('td', { class: 'q-' + (p.quality || '') }, tt('qual', p.quality)), h('td', {}, when(p.ts)),
          h('td', { class: 'levels' }, levelBadges(levelsOf.get(p.point) || [], p.unit)), h('td', {}, c));
      });
      if (gen !== S.gen) return;
      show(h('p', {}, h('a', { href: '#/overview' }, '← ', t('back'))),
        h('h1', {}, s.name || id, ' ', h('span', { class: 'dim' }, id, ' · ', tt('cat', s.category), ' · ', s.region_name || s.region || '')),
        h('div', { class: 'panel' }, h('h2', {}, t('open_incidents')), incidentTable(incs)),
        h('div', { class: 'panel' }, h('h2', {}, t('points'), ' · ', t('trend')),
          h('table', {}, h('tr', {}, ['point', 'quantity', 'location', 'value', 'unit', 'quality', 'time', 'levels', 'trend'].map((k) => h('th', {}, k === 'trend' ? '' : t(k)))), rows)));
      for (const [p, c] of canvases) {
        get(base + '/points/' + encodeURIComponent(p.point) + '/trend')
          .then((tr) => drawTrend(c, tr.samples)).catch(() => drawTrend(c, []));
      }
    };
    S.view = { refresh, onEvent: (ev) => { if (ev.incident.site === id) refresh(); } };
    await refresh();
    every(5000, refresh);
  }
  // The levels a point is judged against now: severity, label and value; the open one
  // stands out, one a warning tightened says so, one that holds only under a warning is dim.
  function levelBadges(levels, unit) {
    if (!levels.length) return '—';
    return levels.map((l) => h('div', { class: 'level' + (l.open ? ' open' : '') + (l.applies ? '' : ' dim'),
      'data-level': l.label, 'data-rule': l.rule, 'data-raise': String(l.raise), 'data-open': String(l.open),
      title: l.rule + (l.tightened ? ' · ' + t('tightened') : '') + (l.applies ? '' : ' · ' + t('not_applying')) },
    h('span', { class: 'badge sev-' + l.severity }, tt('sev', l.severity)), ' ', l.label_text || l.label, ' ',
    (l.side === 'high' ? (l.inclusive ? '≥' : '>') : (l.inclusive ? '≤' : '<')), fmtValue(l.raise), unit ? ' ' + unit : '',
    l.tightened ? h('span', { class: 'dim' }, ' (' + t('tightened') + ')') : null));
  }
  function fmtValue(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number') return String(Math.round(v * 1000) / 1000);
    if (typeof v === 'boolean') return v ? '1' : '0';
    if (typeof v === 'object' && v.lat !== undefined) return v.lat.toFixed(5) + ', ' + v.lon.toFixed(5);
    return JSON.stringify(v);
  }
  function drawTrend(c, samples) {
    const g = c.getContext('2d'), W = c.width, H = c.height;
    g.clearRect(0, 0, W, H);
    g.fillStyle = '#93a4b5'; g.font = '11px sans-serif';
    if (!samples.length) { g.fillText(t('no_trend'), 6, H / 2); return; }
    const ts = samples.map((s) => Date.parse(s.ts)), vs = samples.map((s) => s.value);
    const t1 = ts[ts.length - 1], t0 = Math.min(ts[0], t1 - 3600e3);
    let lo = Math.min(...vs), hi = Math.max(...vs);
    if (hi === lo) { hi += 1; lo -= 1; }
    const X = (x) => ((x - t0) / (t1 - t0 || 1)) * (W - 50), Y = (v) => H - 6 - ((v - lo) / (hi - lo)) * (H - 12);
    g.strokeStyle = '#4aa3ff'; g.lineWidth = 1.5; g.beginPath();
    samples.forEach((s, k) => { const x = X(ts[k]), y = Y(vs[k]); if (k) g.lineTo(x, y); else g.moveTo(x, y); });
    g.stroke();
    g.fillText(fmtValue(hi), W - 46, 11); g.fillText(fmtValue(lo), W - 46, H - 3);
  }

  // Incidents: open and recent, filtered; live.
  function incidentTable(list) {
    if (!list.length) return h('p', { class: 'dim' }, t('none'));
    return h('table', { class: 'incidents' },
      h('tr', {}, ['severity', 'state', 'site', 'rule', 'message', 'raised_at', 'acked_by', 'assigned_to'].map((k) => h('th', {}, t(k)))),
      list.map((i) => h('tr', { class: 'link', 'data-incident': i.id, 'data-state': i.state,
        onclick: () => { location.hash = '#/incident/' + encodeURIComponent(i.id); } },
        h('td', {}, sevBadge(i.severity), overdueBadge(i)), h('td', {}, stBadge(i.state), i.shelved_until ? h('span', { class: 'dim' }, ' ', t('shelve')) : null),
        h('td', {}, siteName(i.site)), h('td', {}, i.rule), h('td', {}, i.message),
        h('td', {}, when(i.raised_at)), h('td', {}, i.acked_by || ''), h('td', {}, i.assigned_to || ''))));
  }
  const F = { state: 'open', severity: '', site: '', region: '', rule: '' };
  async function incidents() {
    const gen = S.gen;
    const regions = [...new Map(S.sites.filter((s) => s.region).map((s) => [s.region, s.region_name || s.region])).entries()];
    const sel = (name, opts) => h('select', { id: 'f-' + name, onchange: (e) => { F[name] = e.target.value; refresh(); } },
      opts.map(([v, label]) => h('option', { value: v, selected: F[name] === v }, label)));
    const filters = h('div', { class: 'filters' },
      h('label', {}, t('state'), sel('state', [['open', t('state_open')], ['', t('all')], ...['active', 'acknowledged', 'cleared', 'closed'].map((s) => [s, tt('st', s)])])),
      h('label', {}, t('severity'), sel('severity', [['', t('all')], ...SEVS.map((s) => [s, tt('sev', s)])])),
      h('label', {}, t('site'), sel('site', [['', t('all')], ...S.sites.map((s) => [s.id, siteName(s.id)])])),
      h('label', {}, t('region'), sel('region', [['', t('all')], ...regions])),
      h('label', {}, t('rule'), h('input', { id: 'f-rule', value: F.rule, onchange: (e) => { F.rule = e.target.value.trim(); refresh(); } })));
    const box = h('div', { id: 'incident-list' });
    show(h('h1', {}, t('open_and_recent')), filters, h('div', { class: 'panel' }, box));
    let list = [];
    const matches = (i) => (!F.severity || i.severity === F.severity) && (!F.site || i.site === F.site) &&
      (!F.rule || i.rule === F.rule) && (!F.region || (S.siteById.get(i.site) || {}).region === F.region) &&
      (F.state === '' || (F.state === 'open' ? i.state !== 'closed' : i.state === F.state));
    const draw = () => box.replaceChildren(incidentTable(list.filter(matches)));
    async function refresh() {
      const q = new URLSearchParams({ limit: '200' });
      for (const k of ['state', 'severity', 'site', 'rule']) if (F[k]) q.set(k, F[k]);
      try { list = await get('/api/v1/incidents?' + q); } catch (e) { box.replaceChildren(h('p', { class: 'error' }, errorText(e))); return; }
      draw();
    }
    S.view = {
      refresh,
      onEvent: (ev) => {
        // The event carries the incident as it stands now: put it in place, newest first.
        const i = ev.incident;
        list = [i, ...list.filter((x) => x.id !== i.id)].sort((a, b) => (a.raised_at < b.raised_at ? 1 : -1));
        draw();
      },
    };
    await refresh();
  }

  // One incident: what it is, what can be done, everything that happened to it.
  async function incident(id) {
    const gen = S.gen;
    const url = '/api/v1/incidents/' + encodeURIComponent(id);
    const refresh = async (msg) => {
      let i;
      try { i = await get(url); } catch (e) { if (gen === S.gen) showError(e); return; }
      const canAct = S.me.role === 'operator' || S.me.role === 'admin';
      const out = h('p', { id: 'action-result', class: msg && msg.ok ? 'okmsg' : 'error' }, msg ? msg.text : '');
      const act = (what, body) => async (e) => {
        e.preventDefault();
        try { await post(url + '/' + what, body()); await refresh({ ok: true, text: t(what) + ' · ' + t('done') }); } catch (err) { out.className = 'error'; out.textContent = t(what) + ' · ' + t('failed') + ': ' + errorText(err); }
      };
      const field = (idn, label, attrs) => h('label', {}, label, h('input', Object.assign({ id: idn }, attrs || {})));
      const val = (idn) => document.getElementById(idn).value.trim();
      const durations = [[15, 'minutes'], [30, 'minutes'], [60, 'hours'], [120, 'hours'], [240, 'hours'], [480, 'hours'], [1440, 'hours']];
      const actions = !canAct ? null : h('div', { class: 'panel actions' },
        i.state === 'active' ? h('form', { class: 'inline', id: 'form-ack', onsubmit: act('ack', () => (val('ack-note') ? { note: val('ack-note') } : {})) },
          field('ack-note', t('ack_note')), h('button', { type: 'submit', id: 'do-ack' }, t('ack'))) : null,
        h('form', { class: 'inline', id: 'form-comment', onsubmit: act('comment', () => ({ text: val('comment-text') })) },
          field('comment-text', t('comment_text'), { required: true, size: 40 }), h('button', { type: 'submit', id: 'do-comment' }, t('comment'))),
        i.state === 'closed' ? null : h('form', { class: 'inline', id: 'form-assign', onsubmit: act('assign', () => ({ assignee: val('assignee') })) },
          field('assignee', t('assignee'), { required: true, value: i.assigned_to || '' }), h('button', { type: 'submit', id: 'do-assign' }, t('assign'))),
        i.state !== 'closed' && !i.shelved_until ? h('form', { class: 'inline', id: 'form-shelve', onsubmit: act('shelve', () => ({ reason: val('shelve-reason'), duration_ms: Number(val('shelve-duration')) * 60000 })) },
          field('shelve-reason', t('reason'), { required: true, size: 30 }),
          h('label', {}, t('duration'), h('select', { id: 'shelve-duration' }, durations.map(([m, u]) => h('option', { value: m }, u === 'minutes' ? m + ' ' + t('minutes') : m / 60 + ' ' + t('hours'))))),
          h('button', { type: 'submit', id: 'do-shelve' }, t('shelve'))) : null,
        i.shelved_until ? h('form', { class: 'inline', id: 'form-unshelve', onsubmit: act('unshelve', () => ({})) }, h('button', { type: 'submit', id: 'do-unshelve' }, t('unshelve'))) : null,
        i.state === 'cleared' ? h('form', { class: 'inline', id: 'form-close', onsubmit: act('close', () => ({ note: val('close-note') })) },
          field('close-note', t('disposal_note'), { required: true, size: 40 }), h('button', { type: 'submit', id: 'do-close', class: 'danger' }, t('close'))) : null,
        out);
      const facts = [['severity', sevBadge(i.severity)], ['state', [stBadge(i.state), overdueBadge(i)]], ['site', h('a', { href: '#/site/' + encodeURIComponent(i.site) }, siteName(i.site))],
        ['rule', i.rule + ' (' + i.rule_version + ')'], ['point', i.point || ''], ['value', fmtValue(i.value) + (i.threshold !== null && i.threshold !== undefined ? ' / ' + i.threshold : '')],
        ['raised_at', when(i.raised_at)], ['acked_by', i.acked_by ? i.acked_by + ' · ' + when(i.acked_at) : ''],
        ['assigned_to', i.assigned_to || ''], ['shelved_until', when(i.shelved_until)],
        ['closed_by', i.closed_by ? i.closed_by + ' · ' + when(i.closed_at) : ''], ['note', i.note || '']];
      if (gen !== S.gen) return;
      show(h('p', {}, h('a', { href: '#/incidents' }, '← ', t('incidents'))),
        h('h1', { id: 'incident-title', 'data-incident': i.id, 'data-state': i.state }, sevBadge(i.severity), ' ', i.message),
        h('div', { class: 'panel' }, h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, t(k)), h('dd', { 'data-fact': k }, v)]))),
        actions,
        h('div', { class: 'panel' }, h('h2', {}, t('history'), ' (', zoneName(), ')'),
          h('table', { id: 'history' }, h('tr', {}, ['time', 'event', 'by', 'state', 'severity', 'message'].map((k) => h('th', {}, t(k)))),
            (i.history || []).map((e) => h('tr', { 'data-event': e.event }, h('td', {}, when(e.at)), h('td', {}, tt('ev', e.event), e.tier ? ' · ' + e.tier : ''),
              h('td', {}, e.by || ''), h('td', {}, stBadge(e.state)), h('td', {}, sevBadge(e.severity)), h('td', {}, e.note || e.message || ''))))));
    };
    S.view = { refresh, onEvent: (ev) => { if (ev.incident.id === id && !document.activeElement.matches('input, select')) refresh(); } };
    await refresh();
  }

  // Active warnings with the sites they touch.
  async function warnings() {
    const gen = S.gen;
    const refresh = async () => {
      let list;
      try { list = await get('/api/v1/weather/warnings'); } catch (e) { if (gen === S.gen) showError(e); return; }
      if (gen !== S.gen) return;
      show(h('h1', {}, t('warnings')), h('div', { class: 'panel' }, !list.length ? h('p', { class: 'dim' }, t('no_warnings')) :
        h('table', { id: 'warnings' }, h('tr', {}, ['level', 'event', 'area', 'expires', 'sites_touched'].map((k) => h('th', {}, t(k)))),
          list.map((w) => h('tr', { 'data-warning': w.id }, h('td', {}, h('span', { class: 'badge wl-' + w.level }, tt('wl', w.level))),
            h('td', {}, w.event, w.magnitude ? ' · ' + t('magnitude') + ' ' + w.magnitude : '', h('div', { class: 'dim' }, w.headline || '', ' ', w.sender_name || w.sender || '')),
            h('td', {}, (w.region_names || []).map((n, k) => n || (w.regions || [])[k]).join('、'), (w.circles || []).length || (w.polygons || []).length ? h('div', { class: 'dim' }, (w.circles || []).length + (w.polygons || []).length, ' ⌖') : null),
            h('td', {}, when(w.expires)),
            h('td', {}, (w.sites || []).map((x) => { const sid = x.site || x; return h('div', {}, h('a', { href: '#/site/' + encodeURIComponent(sid) }, siteName(sid))); })))))));
    };
    S.view = { refresh };
    await refresh();
    every(30000, refresh);
  }

  // Admin: users and tokens of the caller's grant.
  async function admin() {
    const gen = S.gen;
    const refresh = async (shown) => {
      let users, tokens;
      try { [users, tokens] = await Promise.all([get('/api/v1/users'), get('/api/v1/tokens')]); } catch (e) { if (gen === S.gen) showError(e); return; }
      const out = h('p', { id: 'admin-result', class: 'error' });
      const val = (idn) => document.getElementById(idn).value.trim();
      const roleSel = (idn) => h('select', { id: idn }, ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r }, tt('roles', r))));
      const run = (f) => async (e) => { e.preventDefault(); try { await f(); } catch (err) { out.textContent = errorText(err); } };
      const table = (list, kind) => h('table', { id: kind + '-table' },
        h('tr', {}, ['name', 'role', 'scopes', 'state', 'created_at', 'created_by', ''].map((k) => h('th', {}, k ? t(k) : ''))),
        list.map((p) => h('tr', { 'data-name': p.name }, h('td', {}, p.name), h('td', {}, tt('roles', p.role)), h('td', {}, p.scopes),
          h('td', {}, p.disabled ? t(kind === 'users' ? 'disabled' : 'revoked') : t('active')), h('td', {}, when(p.created_at)), h('td', {}, p.created_by || ''),
          h('td', {}, p.disabled ? null : h('button', { class: 'danger', onclick: run(async () => {
            await post('/api/v1/' + kind + '/' + encodeURIComponent(p.name) + (kind === 'users' ? '/disable' : '/revoke')); await refresh();
          }) }, t(kind === 'users' ? 'disable' : 'revoke'))))));
      if (gen !== S.gen) return;
      show(h('h1', {}, t('nav_admin')), out,
        shown ? h('div', { class: 'panel' }, h('p', {}, t('token_once')), h('div', { class: 'token', id: 'new-token' }, shown)) : null,
        h('div', { class: 'panel' }, h('h2', {}, t('users')), table(users, 'users'),
          h('form', { class: 'inline', id: 'form-user', onsubmit: run(async () => {
            await post('/api/v1/users', { name: val('u-name'), role: val('u-role'), scopes: val('u-scopes'), password: document.getElementById('u-password').value });
            await refresh();
          }) }, h('label', {}, t('name'), h('input', { id: 'u-name', required: true })), h('label', {}, t('role'), roleSel('u-role')),
          h('label', {}, t('scopes'), h('input', { id: 'u-scopes', required: true, placeholder: t('scopes_hint') })),
          h('label', {}, t('password'), h('input', { id: 'u-password', type: 'password', required: true, autocomplete: 'new-password' })),
          h('button', { type: 'submit' }, t('create_user')))),
        h('div', { class: 'panel' }, h('h2', {}, t('tokens')), table(tokens, 'tokens'),
          h('form', { class: 'inline', id: 'form-token', onsubmit: run(async () => {
            const r = await post('/api/v1/tokens', { name: val('k-name'), role: val('k-role'), scopes: val('k-scopes') });
            await refresh(r.token);
          }) }, h('label', {}, t('name'), h('input', { id: 'k-name', required: true })), h('label', {}, t('role'), roleSel('k-role')),
          h('label', {}, t('scopes'), h('input', { id: 'k-scopes', required: true, placeholder: t('scopes_hint') })),
          h('button', { type: 'submit' }, t('create_token')))));
    };
    S.view = { refresh: () => refresh() };
    await refresh();
  }

  start();
})();
