// cryptomon dashboard: one page over the JSON API. Live through /api/events (server-sent
// events); where they do not arrive (API Gateway buffers responses), it polls instead.
"use strict";

const LC = window.LightweightCharts;
const POLL_MS = 15000;
const SSE_PATIENCE_MS = 6000;

const ui = {
  asOf: document.getElementById("as-of"),
  live: document.getElementById("live"),
  metric: document.getElementById("metric"),
  intervals: document.getElementById("intervals"),
  ranges: document.getElementById("ranges"),
  chart: document.getElementById("chart"),
  title: document.getElementById("chart-title"),
  volatilityRankBox: document.getElementById("volatility-rank-box"),
  volatilityRank: document.getElementById("volatility-rank"),
  rank: document.getElementById("rank"),
  rankLabel: document.getElementById("rank-label"),
  rankNote: document.getElementById("rank-note"),
  last: document.getElementById("stat-last"),
  change: document.getElementById("stat-change"),
  stats: document.getElementById("stats"),
  alerts: document.getElementById("alerts"),
  alertsCount: document.getElementById("alerts-count"),
  events: document.getElementById("alert-events"),
  eventsCount: document.getElementById("events-count"),
  health: document.getElementById("health"),
  spreads: document.getElementById("spreads"),
  series: document.getElementById("series"),
  filter: document.getElementById("filter"),
};

const state = {
  summary: null,
  metrics: [],
  selected: null,
  interval: "5m",
  range: "24h",
  sort: { key: "pair", dir: 1 },
  chart: null,
  plot: null,
  plotKind: null,
  pollTimer: null,
  drawSeq: 0,
  // Stored alert events of the configured rules (/api/alerts), by key.
  events: new Map(),
  markers: null,
};
const MAX_EVENTS_SHOWN = 50;

// ---------- formatting ----------

function fmtNum(v, digits = 6) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  const abs = Math.abs(v);
  if (abs >= 1e6) return new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 2 }).format(v);
  if (abs >= 1000) return v.toLocaleString(undefined, { maximumFractionDigits: 2 });
  return v.toLocaleString(undefined, { maximumSignificantDigits: digits });
}
function fmtPct(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return (v > 0 ? "+" : "") + v.toFixed(2) + " %";
}
function fmtRank(v) {
  return v === null || v === undefined ? "–" : (v * 100).toFixed(0) + "th pct";
}
// A rank with its position among the `ranked` series it was taken over.
function fmtRankOf(v, ranked) {
  return v === null || v === undefined ? "–" : `${fmtRank(v)} · ${Math.round(v * ranked)} of ${ranked}`;
}
function signClass(v) {
  return v > 0 ? "up" : v < 0 ? "down" : "";
}
function fmtAge(secs) {
  if (secs === null || secs === undefined) return "–";
  if (secs < 90) return secs + " s ago";
  if (secs < 5400) return Math.round(secs / 60) + " min ago";
  if (secs < 172800) return Math.round(secs / 3600) + " h ago";
  return Math.round(secs / 86400) + " d ago";
}
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function cell(text, cls = "") {
  return el("td", { class: cls }, text);
}

// ---------- API ----------

async function api(path) {
  // `no-cache`: revalidate with the ETag; an unchanged answer is a cheap 304.
  const r = await fetch(path, { cache: "no-cache", headers: { Accept: "application/json" } });
  if (!r.ok) {
    let message = r.status + " " + r.statusText;
    try { message = (await r.json()).error || message; } catch (_) { /* not JSON */ }
    const err = new Error(message);
    err.status = r.status;
    throw err;
  }
  return r.json();
}

// ---------- chart ----------

function chartColors() {
  const css = getComputedStyle(document.documentElement);
  return {
    text: css.getPropertyValue("--muted").trim() || "#8b9bb0",
    line: css.getPropertyValue("--line").trim() || "#223041",
    accent: css.getPropertyValue("--accent").trim() || "#2dd4bf",
    up: css.getPropertyValue("--up").trim() || "#22c55e",
    down: css.getPropertyValue("--down").trim() || "#ef4444",
  };
}

function ensureChart() {
  if (state.chart) return state.chart;
  const c = chartColors();
  state.chart = LC.createChart(ui.chart, {
    autoSize: true,
    layout: { background: { color: "transparent" }, textColor: c.text, attributionLogo: true },
    grid: { vertLines: { color: c.line }, horzLines: { color: c.line } },
    rightPriceScale: { borderColor: c.line },
    timeScale: { borderColor: c.line, timeVisible: true, secondsVisible: false },
    crosshair: { mode: LC.CrosshairMode.Normal },
    localization: { priceFormatter: (p) => fmtNum(p) },
  });
  return state.chart;
}

function setPlot(kind) {
  const chart = ensureChart();
  if (state.plot && state.plotKind === kind) return state.plot;
  if (state.plot) chart.removeSeries(state.plot);
  const c = chartColors();
  state.plot = kind === "candles"
    ? chart.addSeries(LC.CandlestickSeries, {
        upColor: c.up, downColor: c.down, wickUpColor: c.up, wickDownColor: c.down, borderVisible: false,
      })
    : chart.addSeries(LC.AreaSeries, {
        lineColor: c.accent, topColor: c.accent + "55", bottomColor: c.accent + "05", lineWidth: 2,
      });
  state.plotKind = kind;
  return state.plot;
}

const unix = (t) => Math.floor(Date.parse(t) / 1000);

const INTERVAL_SECS = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400 };
// Each range's length and its default interval; "all" starts at the epoch, which the API counts
// from the first stored day.
const RANGES = {
  "24h": { secs: 86400, interval: "5m" },
  "7d": { secs: 7 * 86400, interval: "1h" },
  "30d": { secs: 30 * 86400, interval: "1h" },
  all: { secs: null, interval: "1d" },
};
// The API's cap on the candles of one answer (docs/api.md).
const MAX_CANDLES = 5000;

// The query of the selected range: none for the last 24 h (the window's own, cached view).
function rangeQuery() {
  const r = RANGES[state.range];
  if (state.range === "24h" || !state.summary) return "";
  const to = state.summary.as_of;
  const from = r.secs === null
    ? "1970-01-01T00:00:00Z"
    : new Date((unix(to) - r.secs) * 1000).toISOString().replace(".000Z", "Z");
  return `&from=${from}&to=${to}`;
}

// Intervals whose candles over the range would pass the cap are disabled.
function markIntervals() {
  const secs = RANGES[state.range].secs;
  for (const b of ui.intervals.querySelectorAll("button[data-interval]")) {
    b.disabled = secs !== null && secs / INTERVAL_SECS[b.dataset.interval] > MAX_CANDLES;
    b.setAttribute("aria-pressed", String(b.dataset.interval === state.interval));
  }
}

async function drawSelected() {
  const m = state.metrics.find((x) => x.id === state.selected);
  if (!m) return;
  const seq = ++state.drawSeq;
  const isPrice = m.measure === "price";
  ui.intervals.hidden = !isPrice;
  ui.ranges.hidden = !isPrice;
  try {
    const detailP = api("/api/metrics/" + encodeURIComponent(m.id));
    const candlesP = isPrice
      ? api(`/api/candles?source=${encodeURIComponent(m.source)}&pair=${encodeURIComponent(m.pair)}&interval=${state.interval}${rangeQuery()}`)
      : null;
    const [detail, candles] = await Promise.all([detailP, candlesP]);
    if (seq !== state.drawSeq) return; // a newer selection won the race
    let n;
    if (isPrice) {
      const data = candles.candles.map((k) => ({ time: unix(k.t), open: k.o, high: k.h, low: k.l, close: k.c }));
      setPlot("candles").setData(data);
      n = data.length;
    } else {
      const data = detail.points.map((p) => ({ time: unix(p.t), value: p.v }));
      setPlot("line").setData(data);
      n = data.length;
    }
    state.chart.timeScale().fitContent();
    drawMarkers();
    renderDetail(detail);
    // Hooks for the end-to-end test: what is drawn, and how much.
    document.body.dataset.chartMetric = m.id;
    document.body.dataset.chartPoints = String(n);
    document.body.dataset.chartInterval = isPrice ? state.interval : "";
    document.body.dataset.chartRange = isPrice ? state.range : "24h";
    document.body.dataset.chartFirst = n ? String(isPrice ? candles.candles[0].t : detail.points[0].t) : "";
  } catch (e) {
    if (seq !== state.drawSeq) return;
    ui.stats.replaceChildren(el("div", { class: "muted" }, "Cannot load " + m.id + ": " + e.message));
  }
}

function renderDetail(d) {
  const unit = d.measure === "price" ? "" : " " + d.pair.split("-")[0];
  ui.title.textContent = `${d.pair} · ${d.source} · ${d.measure}`;
  ui.last.textContent = fmtNum(d.stats.last) + unit;
  ui.change.textContent = fmtPct(d.stats.change_pct);
  ui.change.className = "big " + signClass(d.stats.change_pct);
  // Volatility compares markets whatever their price; the std ranks are absolute, so a price's
  // favours the expensive assets and is labelled so.
  const isPrice = d.measure === "price";
  ui.volatilityRankBox.hidden = !isPrice;
  ui.volatilityRank.textContent = fmtRankOf(d.volatility_rank, d.volatility_ranked);
  ui.rankLabel.textContent = isPrice ? "Price-std rank" : "Volume-std rank";
  ui.rankNote.hidden = !isPrice;
  ui.rank.textContent = fmtRankOf(d.rank, d.ranked);
  const s = d.stats;
  const rows = [
    ["Samples", s.samples], ["First", fmtNum(s.first)], ["High", fmtNum(s.high)], ["Low", fmtNum(s.low)],
    ["Mean", fmtNum(s.mean)], ["Std", fmtNum(s.std)],
  ];
  if (d.measure === "price") {
    rows.push(
      ["Volatility", fmtPct(s.volatility_pct).replace("+", "")], ["Max drawdown", fmtPct(s.max_drawdown_pct).replace("+", "")],
      ["RSI 14", fmtNum(s.rsi_14, 4)], ["SMA 60", fmtNum(s.sma_60)], ["EMA 60", fmtNum(s.ema_60)], ["Gaps", s.gaps ?? "–"],
    );
  }
  ui.stats.replaceChildren(...rows.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
}

// ---------- picker ----------

function renderPicker() {
  const byPair = new Map();
  for (const m of state.metrics) {
    if (!byPair.has(m.pair)) byPair.set(m.pair, []);
    byPair.get(m.pair).push(m);
  }
  const groups = [...byPair.keys()].sort().map((pair) =>
    el("optgroup", { label: pair }, ...byPair.get(pair).map((m) =>
      el("option", { value: m.id }, `${m.pair} · ${m.source} · ${m.measure}`))));
  ui.metric.replaceChildren(...groups);
  if (!state.metrics.some((m) => m.id === state.selected)) {
    const fromHash = decodeURIComponent(location.hash.replace(/^#/, ""));
    const first = state.metrics.find((m) => m.measure === "price") || state.metrics[0];
    state.selected = state.metrics.some((m) => m.id === fromHash) ? fromHash : first && first.id;
  }
  if (state.selected) ui.metric.value = state.selected;
}

function select(id) {
  if (!id || id === state.selected) return;
  state.selected = id;
  ui.metric.value = id;
  history.replaceState(null, "", "#" + encodeURIComponent(id));
  markSelectedRow();
  drawSelected();
}

// ---------- tables ----------

function renderSeries() {
  const s = state.summary;
  if (!s) return;
  const q = ui.filter.value.trim().toUpperCase();
  const { key, dir } = state.sort;
  const rows = s.series
    .filter((r) => !q || r.pair.includes(q) || r.source.toUpperCase().includes(q))
    .sort((a, b) => {
      const x = a[key], y = b[key];
      if (x === y) return 0;
      // Nulls last, whatever the direction (a field an older summary lacks counts as null).
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    });
  ui.series.tBodies[0].replaceChildren(...rows.map((r) => {
    const id = `${r.source}:${r.pair}:price`;
    return el("tr", { "data-id": id, onclick: () => select(id) },
      cell(r.pair), cell(r.source), cell(fmtNum(r.last), "num"),
      cell(fmtPct(r.change_pct), "num " + signClass(r.change_pct)),
      cell(fmtNum(r.high), "num"), cell(fmtNum(r.low), "num"),
      cell(fmtPct(r.volatility_pct).replace("+", ""), "num"), cell(fmtRank(r.volatility_rank), "num"),
      cell(fmtRank(r.price_rank), "num"), cell(fmtRank(r.volume_rank), "num"));
  }));
  for (const th of ui.series.tHead.rows[0].cells) {
    th.setAttribute("aria-sort", th.dataset.key === key ? (dir > 0 ? "ascending" : "descending") : "none");
  }
  markSelectedRow();
}

function markSelectedRow() {
  for (const tr of ui.series.tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.id === state.selected);
}

function renderSpreads() {
  const spreads = state.summary ? state.summary.spreads : [];
  if (!spreads.length) {
    ui.spreads.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No pair is quoted by two sources.")));
    return;
  }
  const sorted = [...spreads].sort((a, b) => b.spread_bps - a.spread_bps);
  const quote = (v, source) => el("td", { class: "num" }, fmtNum(v), el("small", { class: "muted" }, source));
  ui.spreads.replaceChildren(...sorted.map((s) => el("tr", {},
    cell(s.pair), cell(s.sources, "num"), quote(s.min, s.min_source), quote(s.max, s.max_source),
    cell(s.spread_bps.toFixed(1) + " bp", "num"))));
}

function renderAlerts() {
  const alerts = state.summary ? state.summary.alerts : [];
  ui.alertsCount.textContent = alerts.length ? `(${alerts.length})` : "";
  if (!alerts.length) {
    ui.alerts.replaceChildren(el("li", { class: "muted" }, "No alert at the latest tick."));
    return;
  }
  ui.alerts.replaceChildren(...alerts.map((a) => {
    const id = `${a.source}:${a.pair}:${a.measure}`;
    return el("li", {},
      el("button", { type: "button", onclick: () => select(id) }, `${a.pair} · ${a.source} · ${a.measure}`),
      el("span", { class: "num warn" }, `${a.ratio.toFixed(1)}× the 1 h mean`));
  }));
}

// The metric an event is about, if it is about one series' measure.
const eventMetric = (e) => (e.source && e.pair && e.measure ? `${e.source}:${e.pair}:${e.measure}` : null);

function renderEvents() {
  const events = [...state.events.values()].sort((a, b) => (a.tick < b.tick ? 1 : a.tick > b.tick ? -1 : 0));
  ui.eventsCount.textContent = events.length ? `(${events.length})` : "";
  document.body.dataset.alertEvents = String(events.length);
  if (!events.length) {
    ui.events.replaceChildren(el("li", { class: "muted" }, "No rule event. Rules are set in the config's [alerts]."));
    return;
  }
  ui.events.replaceChildren(...events.slice(0, MAX_EVENTS_SHOWN).map((e) => {
    const what = [e.pair, e.source, e.measure].filter(Boolean).join(" · ");
    const id = eventMetric(e);
    const label = `${e.rule}: ${what}`;
    const detail = e.status === "fired"
      ? `${fmtNum(e.value)} vs ${fmtNum(e.reference)} (${e.ratio.toFixed(2)}×)`
      : "resolved";
    return el("li", { "data-key": e.key },
      el("span", {}, el("span", { class: "badge " + (e.status === "fired" ? "down" : "up") }, e.status), " ",
        id ? el("button", { type: "button", onclick: () => select(id) }, label) : label),
      el("span", { class: "num" }, detail, " ", el("time", { class: "when", datetime: e.tick }, e.tick.slice(11, 16))));
  }));
}

// Marks the selected metric's rule events on the chart, at their tick (a candle's start when
// the chart shows candles).
function drawMarkers() {
  if (!state.plot || !LC.createSeriesMarkers) return;
  const step = state.plotKind === "candles" ? INTERVAL_SECS[state.interval] || 60 : 60;
  const c = chartColors();
  const markers = [...state.events.values()]
    .filter((e) => eventMetric(e) === state.selected)
    .map((e) => {
      const fired = e.status === "fired";
      return {
        time: Math.floor(unix(e.tick) / step) * step,
        position: fired ? "aboveBar" : "belowBar",
        shape: fired ? "arrowDown" : "circle",
        color: fired ? c.down : c.up,
        text: fired ? e.rule : "",
      };
    })
    .sort((a, b) => a.time - b.time);
  if (state.markers && state.markersPlot === state.plot) state.markers.setMarkers(markers);
  else {
    state.markers = LC.createSeriesMarkers(state.plot, markers);
    state.markersPlot = state.plot;
  }
  document.body.dataset.chartMarkers = String(markers.length);
}

function addEvents(events) {
  for (const e of events) state.events.set(e.key, e);
  renderEvents();
  drawMarkers();
}

async function loadEvents() {
  try {
    addEvents((await api("/api/alerts")).events);
  } catch (e) {
    console.warn("alert events:", e.message);
  }
}

async function renderHealth() {
  try {
    const h = await api("/api/health");
    ui.health.replaceChildren(...h.sources.map((s) => el("tr", {},
      cell(s.source), cell(s.series, "num"), cell(fmtAge(s.age_secs)),
      el("td", {}, el("span", { class: "badge " + (s.stale ? "down" : "up") }, s.stale ? "stale" : "fresh")))));
    if (!h.sources.length) ui.health.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No data yet.")));
  } catch (e) {
    ui.health.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "muted" }, e.message)));
  }
}

// ---------- updates ----------

async function applySummary(summary) {
  const fresh = !state.summary || state.summary.as_of !== summary.as_of;
  state.summary = summary;
  ui.asOf.textContent = summary.as_of.replace("T", " ").replace("Z", " UTC");
  ui.asOf.setAttribute("datetime", summary.as_of);
  if (fresh || !state.metrics.length) {
    state.metrics = await api("/api/metrics");
    renderPicker();
  }
  renderSeries();
  renderSpreads();
  renderAlerts();
  renderHealth();
  if (fresh) loadEvents();
  if (fresh || document.body.dataset.chartMetric !== state.selected) await drawSelected();
}

function setLive(mode, text) {
  ui.live.className = "live " + mode;
  ui.live.textContent = text;
}

async function poll() {
  try {
    await applySummary(await api("/api/summary"));
    if (!ui.live.classList.contains("on")) setLive("polling", "polling every " + POLL_MS / 1000 + " s");
  } catch (e) {
    setLive("off", e.status === 503 ? "waiting for data" : "offline");
  }
}

function startPolling() {
  if (state.pollTimer) return;
  setLive("polling", "polling every " + POLL_MS / 1000 + " s");
  poll();
  state.pollTimer = setInterval(poll, POLL_MS);
}

function startEvents() {
  if (!window.EventSource) return startPolling();
  const source = new EventSource("/api/events");
  let heard = false;
  // No event in time (a buffering proxy, a Lambda behind API Gateway): poll instead.
  const patience = setTimeout(() => { if (!heard) { source.close(); startPolling(); } }, SSE_PATIENCE_MS);
  source.addEventListener("summary", (e) => {
    heard = true;
    clearTimeout(patience);
    if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = null; }
    setLive("on", "live");
    applySummary(JSON.parse(e.data)).catch((err) => console.error(err));
  });
  source.addEventListener("alert", (e) => {
    try { addEvents([JSON.parse(e.data)]); } catch (err) { console.error(err); }
  });
  source.onerror = () => {
    if (heard) setLive("polling", "reconnecting…"); // EventSource retries by itself
  };
}

// ---------- wiring ----------

ui.metric.addEventListener("change", () => select(ui.metric.value));
ui.intervals.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-interval]");
  if (!b) return;
  state.interval = b.dataset.interval;
  markIntervals();
  drawSelected();
});
ui.ranges.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-range]");
  if (!b) return;
  state.range = b.dataset.range;
  state.interval = RANGES[state.range].interval;
  for (const x of ui.ranges.querySelectorAll("button")) x.setAttribute("aria-pressed", String(x === b));
  markIntervals();
  drawSelected();
});
ui.series.tHead.addEventListener("click", (e) => {
  const th = e.target.closest("th[data-key]");
  if (!th) return;
  const key = th.dataset.key;
  state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : (["pair", "source"].includes(key) ? 1 : -1) };
  renderSeries();
});
ui.filter.addEventListener("input", renderSeries);
setInterval(renderHealth, 30000);

poll().then(startEvents);
