// The IoN dashboard: one server-sent event stream (/api/live) brings the broker's status and the
// spike events it accepted since the previous frame; everything is drawn here, with bounded
// history (the browser's memory stays flat however long the page is open).
"use strict";

const RASTER_WINDOW_S = 10;
const TRACE_WINDOW_S = 120;
const MAX_EVENTS_PER_LAB = 40000;
const MAX_TRACE_POINTS = 2000;
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

const state = {
  frames: 0,
  eventsReceived: 0,
  eventsDrawn: 0,
  labs: new Map(),      // name -> {events: [[t_ns, ch]], maxCh, color, prev: {in, out, t}}
  clock: new Map(),     // name -> [[t_ns, offset_ns, bound_ns]]
  weights: new Map(),   // "node #k" -> [[t_ns, w]]
  samples: new Map(),   // "node ch k" -> [[t_ns, value]]: neuromodulator samples, none thinned
  last: null,
};
window.ionDashboard = state;  // read by the browser test

const $ = (id) => document.getElementById(id);
const fmt = (v, d = 0) => (v === undefined || v === null || !isFinite(v) ? "–" : Number(v).toFixed(d));

function lab(name, i) {
  if (!state.labs.has(name)) {
    state.labs.set(name, { events: [], maxCh: 0, color: COLORS[i % COLORS.length], prev: null, rateIn: 0, rateOut: 0 });
  }
  return state.labs.get(name);
}

function pushBounded(arr, item, max) {
  arr.push(item);
  if (arr.length > max) arr.splice(0, arr.length - max);
}

function onFrame(frame) {
  const s = frame.status;
  const now = s.network_ns;
  state.frames++;
  state.last = frame;
  s.nodes.forEach((n, i) => {
    const l = lab(n.name, i);
    const ev = frame.events[n.name];
    if (ev) {
      for (let k = 0; k < ev.us.length; k++) {
        l.events.push([ev.t0 + ev.us[k] * 1000, ev.ch[k]]);
        if (ev.ch[k] > l.maxCh) l.maxCh = ev.ch[k];
      }
      state.eventsReceived += ev.us.length;
      if (l.events.length > MAX_EVENTS_PER_LAB) l.events.splice(0, l.events.length - MAX_EVENTS_PER_LAB);
    }
    if (l.prev && now > l.prev.t) {
      const dt = (now - l.prev.t) / 1e9;
      // Smoothed over about a second of frames, so that bursts do not make the figures jump.
      l.rateIn = 0.75 * l.rateIn + 0.25 * ((n.events_in - l.prev.in) / dt);    // the lab sent
      l.rateOut = 0.75 * l.rateOut + 0.25 * ((n.events_out - l.prev.out) / dt); // the lab was sent
    }
    l.prev = { in: n.events_in, out: n.events_out, t: now };
    if (n.clock_synced) {
      if (!state.clock.has(n.name)) state.clock.set(n.name, []);
      pushBounded(state.clock.get(n.name), [now, n.clock_offset_ns, n.clock_uncertainty_ns], MAX_TRACE_POINTS);
    }
    const sm = (frame.samples || {})[n.name];
    if (sm) {
      for (let k = 0; k < sm.us.length; k++) {
        const key = `${n.name} ch ${sm.ch[k]}`;
        if (!state.samples.has(key)) state.samples.set(key, []);
        if (sm.v[k] !== null) pushBounded(state.samples.get(key), [sm.t0 + sm.us[k] * 1000, sm.v[k]], MAX_TRACE_POINTS);
      }
    }
    (n.weights || []).forEach((w, k) => {
      if (w === null) return;
      const key = `${n.name} #${k}`;
      if (!state.weights.has(key)) state.weights.set(key, []);
      pushBounded(state.weights.get(key), [now, w], MAX_TRACE_POINTS);
    });
  });
  render(frame);
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function renderTable(s) {
  const body = $("counters").querySelector("tbody");
  body.replaceChildren();
  for (const n of s.nodes) {
    const l = lab(n.name, 0);
    const tr = document.createElement("tr");
    tr.dataset.node = n.name;
    cell(tr, n.name);
    cell(tr, n.kind);
    cell(tr, n.connected ? "up" : "down", n.connected ? "up" : "down");
    cell(tr, fmt(l.rateIn));
    cell(tr, fmt(l.rateOut));
    // A broken promise shows in red: late (after the deadline, or handed over beyond the
    // playout's precision), lost, dropped, gaps, rejected, device trouble.
    const late = n.late_events === undefined ? undefined : n.late_events + (n.playout_overrun || 0);
    for (const v of [late, n.lost_events, n.dropped_events, n.lost_upstream_batches, n.rejected]) {
      cell(tr, v === undefined ? "–" : String(v), v > 0 ? "bad counter" : "counter");
    }
    const trouble = cell(tr, n.device_trouble === undefined ? "–" : String(n.device_trouble),
                         n.device_trouble > 0 ? "bad counter" : "counter");
    const parts = (n.trouble_counters || []).map((k) => `${k} ${(n.driver_counters || {})[k] ?? 0}`);
    trouble.title = parts.length ? parts.join(", ") : "this driver declares no trouble counters";
    cell(tr, n.ingress_latency_count > 0 ? fmt(n.ingress_latency_p99_ns / 1e6, 2) + " ms" : "–");
    cell(tr, n.clock_synced ? `${fmt(n.clock_offset_ns / 1e3, 1)} ± ${fmt(n.clock_uncertainty_ns / 1e3, 1)} µs` : "not synced");
    body.appendChild(tr);
  }
  const rejects = Object.entries(s.rejects);
  const refused = Object.entries(s.security.refused || {}).filter(([, c]) => c > 0);
  const r = $("rejects");
  r.textContent = [
    rejects.length ? "rejected messages: " + rejects.map(([k, v]) => `${k} ${v}`).join(", ") : "no rejected messages",
    refused.length ? "refused connections: " + refused.map(([k, v]) => `${k} ${v}`).join(", ") : "",
  ].filter(Boolean).join(" · ");
  r.className = rejects.length || refused.length ? "note bad" : "note";
}

function canvasFor(container, id, height) {
  let c = document.getElementById(id);
  if (!c) {
    c = document.createElement("canvas");
    c.id = id;
    c.width = 1200;
    c.height = height;
    container.appendChild(c);
  }
  return c;
}

function renderRasters(s) {
  const box = $("rasters");
  const now = s.network_ns;
  const start = now - RASTER_WINDOW_S * 1e9;
  let drawn = 0;
  s.nodes.forEach((n) => {
    const l = state.labs.get(n.name);
    if (!l || (l.events.length === 0 && n.events_in === 0)) return;
    let row = document.getElementById("raster-row-" + n.name);
    if (!row) {
      row = document.createElement("div");
      row.className = "raster";
      row.id = "raster-row-" + n.name;
      const label = document.createElement("div");
      label.className = "label";
      row.appendChild(label);
      box.appendChild(row);
    }
    // A row per channel that has fired this session, in channel order (a chip with 5 active
    // neurons out of 256 gets 5 rows, not a strip), 4 px each, between 48 and 260 px.
    if (!l.active) l.active = new Set();
    for (const [, ch] of l.events) l.active.add(ch);
    const chans = Array.from(l.active).sort((a, b) => a - b);
    const index = new Map(chans.map((ch, i) => [ch, i]));
    const rows = Math.max(1, chans.length);
    const AXIS = 14;  // px under the rows for the time labels
    const LEFT = 44;  // px left of the rows for the channel labels
    const height = Math.min(260, Math.max(48, rows * 4)) + AXIS;
    const c = canvasFor(row, "raster-" + n.name, height);
    if (c.height !== height) c.height = height;
    const g = c.getContext("2d");
    g.clearRect(0, 0, c.width, c.height);
    const plotW = c.width - LEFT, plotH = c.height - AXIS;
    g.strokeStyle = "#eef";
    g.fillStyle = "#666";
    g.font = "11px sans-serif";
    for (let sec = 0; sec <= RASTER_WINDOW_S; sec++) {
      const x = LEFT + (sec / RASTER_WINDOW_S) * plotW;
      g.beginPath(); g.moveTo(x, 0); g.lineTo(x, plotH); g.stroke();
      if (sec % 2 === 0) {
        const ago = RASTER_WINDOW_S - sec;
        g.textAlign = sec === 0 ? "left" : sec === RASTER_WINDOW_S ? "right" : "center";
        g.fillText(ago === 0 ? "now" : `−${ago} s`, x, c.height - 2);
      }
    }
    g.textAlign = "right";  // channel numbers of the bottom and top rows
    if (chans.length > 0) g.fillText(`ch ${chans[0]}`, LEFT - 4, plotH - 1);
    if (chans.length > 1) g.fillText(`ch ${chans[chans.length - 1]}`, LEFT - 4, 10);
    g.fillStyle = l.color;
    const h = plotH / rows;
    let here = 0;
    for (const [t, ch] of l.events) {
      if (t < start) continue;
      const x = LEFT + ((t - start) / (RASTER_WINDOW_S * 1e9)) * plotW;
      g.fillRect(x, plotH - (index.get(ch) + 1) * h, 1.5, Math.max(1, h - 0.5));
      here++;
    }
    c.dataset.eventsDrawn = String(here);
    c.dataset.rows = String(chans.length);
    drawn += here;
    row.querySelector(".label").innerHTML = "";
    const name = document.createElement("b");
    name.textContent = n.name;
    const rate = document.createElement("span");
    rate.className = "rate";
    rate.textContent = `${fmt(l.rateIn)} ev/s · ${chans.length} active of ${n.topology_channels || l.maxCh + 1} ch`;
    row.querySelector(".label").append(name, rate);
  });
  state.eventsDrawn = drawn;
  box.dataset.eventsDrawn = String(drawn);
}

// Lines over network time; `band` draws y ± band as a shaded area (the clock's stated bound).
function plotTraces(canvas, series, opts) {
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 56, B = 18;
  g.clearRect(0, 0, W, H);
  const now = state.last ? state.last.status.network_ns : 0;
  const start = now - TRACE_WINDOW_S * 1e9;
  let lo = Infinity, hi = -Infinity;
  for (const [, pts] of series) {
    for (const p of pts) {
      if (p[0] < start) continue;
      const band = opts.band ? p[2] : 0;
      lo = Math.min(lo, p[1] - band); hi = Math.max(hi, p[1] + band);
    }
  }
  if (!isFinite(lo)) { g.fillStyle = "#999"; g.fillText(opts.empty, L, H / 2); return; }
  if (hi - lo < opts.minSpan) { const m = (hi + lo) / 2; lo = m - opts.minSpan / 2; hi = m + opts.minSpan / 2; }
  const X = (t) => L + ((t - start) / (TRACE_WINDOW_S * 1e9)) * (W - L - 4);
  const Y = (v) => H - B - ((v - lo) / (hi - lo)) * (H - B - 6);
  g.fillStyle = "#667"; g.font = "11px sans-serif";
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    g.fillText(opts.label(v), 2, Y(v) + 4);
    g.strokeStyle = "#eef"; g.beginPath(); g.moveTo(L, Y(v)); g.lineTo(W, Y(v)); g.stroke();
  }
  g.fillText(`−${TRACE_WINDOW_S} s`, L, H - 4);
  g.fillText("now", W - 28, H - 4);
  const legend = [];
  let i = 0;
  for (const [name, pts] of series) {
    const color = COLORS[i++ % COLORS.length];
    legend.push([name, color]);
    const vis = pts.filter((p) => p[0] >= start);
    if (vis.length === 0) continue;
    if (opts.band) {
      g.fillStyle = color + "33";
      g.beginPath();
      vis.forEach((p, k) => (k ? g.lineTo(X(p[0]), Y(p[1] + p[2])) : g.moveTo(X(p[0]), Y(p[1] + p[2]))));
      for (let k = vis.length - 1; k >= 0; k--) g.lineTo(X(vis[k][0]), Y(vis[k][1] - vis[k][2]));
      g.closePath(); g.fill();
    }
    g.strokeStyle = color; g.lineWidth = 1.5; g.beginPath();
    vis.forEach((p, k) => (k ? g.lineTo(X(p[0]), Y(p[1])) : g.moveTo(X(p[0]), Y(p[1]))));
    g.stroke(); g.lineWidth = 1;
  }
  $(opts.legend).innerHTML = legend.map(([n, c]) => `<span><i style="background:${c}"></i>${n.replace(/[<&]/g, "")}</span>`).join("");
}

// One histogram per link: cumulative counts at `bounds` (ns) and a total, drawn as counts per bucket.
function latencyFigure(box, id, caption, le, count, bounds, color) {
  let fig = document.getElementById(id);
  if (!fig) {
    fig = document.createElement("figure");
    fig.id = id;
    fig.appendChild(document.createElement("figcaption"));
    const c = document.createElement("canvas");
    c.width = 420; c.height = 130;
    fig.appendChild(c);
    box.appendChild(fig);
  }
  fig.querySelector("figcaption").textContent = caption;
  const counts = le.map((c, k) => c - (k ? le[k - 1] : 0));
  counts.push(count - le[le.length - 1]);
  const c = fig.querySelector("canvas");
  const g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const top = Math.max(1, ...counts);
  const w = c.width / counts.length;
  g.font = "10px sans-serif";
  let labelEnd = -Infinity;  // a label that would touch the previous one is left out
  counts.forEach((v, k) => {
    const h = (v / top) * (c.height - 28);
    g.fillStyle = color;
    g.fillRect(k * w + 2, c.height - 16 - h, w - 4, h);
    g.fillStyle = "#667";
    const edge = k < bounds.length ? bounds[k] / 1e6 : Infinity;  // ms
    const text = edge === Infinity ? ">" : edge >= 1000 ? `${edge / 1000}s` : `${edge}`;
    const x = k * w + w / 2 - g.measureText(text).width / 2;
    if (x > labelEnd + 3) {
      g.fillText(text, x, c.height - 4);
      labelEnd = x + g.measureText(text).width;
    }
  });
}

// The bucket bound holding the 99th percentile (an upper bound, to the bucket resolution).
function p99Bound(le, count, bounds) {
  for (let k = 0; k < le.length; k++) if (le[k] >= 0.99 * count) return `≤ ${fmt(bounds[k] / 1e6, bounds[k] < 1e6 ? 2 : 0)} ms`;
  return "> 10 s";
}

function renderLatency(s) {
  const box = $("latency");
  const bounds = s.latency_bounds_ns;
  // End to end per link, as each target measures it: what the connection delays must cover.
  for (const l of s.links || []) {
    if (!l.count) continue;
    latencyFigure(box, `link-${l.from}-${l.to}`,
      `${l.from} → ${l.to} (end to end): mean ${fmt(l.sum_ns / l.count / 1e6, 2)} ms · p99 ${p99Bound(l.le, l.count, bounds)} · ${l.count} events`,
      l.le, l.count, bounds, lab(l.from, 0).color);
  }
  for (const n of s.nodes) {
    if (!n.ingress_latency_count) continue;
    latencyFigure(box, "lat-" + n.name,
      `${n.name} → broker: p50 ${fmt(n.ingress_latency_p50_ns / 1e6, 2)} ms · p99 ${fmt(n.ingress_latency_p99_ns / 1e6, 2)} ms · max ${fmt(n.ingress_latency_max_ns / 1e6, 2)} ms · ${n.ingress_latency_count} events`,
      n.ingress_latency_le, n.ingress_latency_count, bounds, lab(n.name, 0).color + "99");
  }
}

function render(frame) {
  const s = frame.status;
  renderTable(s);
  renderRasters(s);
  plotTraces($("clock"), state.clock, {
    band: true, minSpan: 200e3, empty: "no node has network time yet", legend: "clock-legend",
    label: (v) => `${(v / 1e3).toFixed(0)} µs`,
  });
  plotTraces($("weights"), state.weights, {
    band: false, minSpan: 0.05, empty: "no synapse has reported a weight", legend: "weights-legend",
    label: (v) => v.toFixed(3),
  });
  plotTraces($("samples"), state.samples, {
    band: false, minSpan: 1e-6, empty: "no neuromodulator stream", legend: "samples-legend",
    label: (v) => v.toPrecision(3),
  });
  renderLatency(s);
  const sec = s.security;
  const secEl = $("security");
  secEl.textContent = sec.curve ? `CURVE · ${sec.allowed_keys} keys` : sec.insecure ? "INSECURE: plaintext" : "plaintext (local only)";
  secEl.className = "pill " + (sec.curve ? "ok" : sec.insecure ? "bad" : "");
  $("uptime").textContent = `up ${fmt((s.network_ns - s.anchor_network_ns) / 1e9)} s`;
  $("http-note").textContent = `${state.frames} frames · ${state.eventsReceived} events received · ` +
    `${frame.http.live_clients} live viewer(s); the broker thinned ${frame.http.events_thinned} events and skipped ${frame.http.frames_skipped} frames for slow viewers`;
}

function connect() {
  const es = new EventSource("/api/live");
  es.onopen = () => { $("link-state").textContent = "live"; $("link-state").className = "pill ok"; };
  es.onmessage = (m) => onFrame(JSON.parse(m.data));
  es.onerror = () => { $("link-state").textContent = "reconnecting…"; $("link-state").className = "pill off"; };
}
$("raster-window").textContent = RASTER_WINDOW_S;
connect();
