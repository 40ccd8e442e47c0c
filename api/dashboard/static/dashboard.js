// Quartiere dashboard: signs in with an API key (the service keeps it in an HttpOnly session
// cookie), fetches the compact JSON of /dashboard/api/... and draws Plotly charts. Time axes are in
// real time (UTC instants) with Europe/Berlin tick labels and hover times, so DST days are right.
// Data is only ever put into the page as text (textContent), never as HTML.
"use strict";

const CONFIG = JSON.parse(document.getElementById("config").textContent);
const TZ = CONFIG.timezone;
const API = "/dashboard/api";
const HOUR_MS = 3600000;
const COLORS = { inflexible_load: "#7f7f7f", heat_pump: "#c2571a", ev_charger: "#8a3ea8", battery: "#1f5fa8", pv: "#e0b000" };
const state = { me: null, site: null, page: location.hash.slice(1) || "overview" };

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (!r.ok) {
    let detail = r.statusText;
    try { const j = await r.json(); detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* not JSON */ }
    throw new ApiError(r.status, detail);
  }
  return (r.headers.get("content-type") || "").includes("json") ? r.json() : r.text();
}

function $(id) { return document.getElementById(id); }
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}
function num(v, digits) { return typeof v === "number" && isFinite(v) ? v.toFixed(digits === undefined ? 1 : digits) : "-"; }

// --- Europe/Berlin time ----------------------------------------------------------------------

const parts = new Intl.DateTimeFormat("en-GB", {
  timeZone: TZ, weekday: "short", year: "numeric", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  hourCycle: "h23", timeZoneName: "short",
});
function local(ms) {
  const p = {};
  for (const x of parts.formatToParts(new Date(ms))) p[x.type] = x.value;
  return p;
}
function localText(ms) {
  const p = local(ms);
  return `${p.weekday} ${p.day}.${p.month}. ${p.hour}:${p.minute} ${p.timeZoneName}`;
}
function berlinTicks(t0, t1) {
  const span = (t1 - t0) / HOUR_MS;
  const step = [1, 2, 3, 6, 12, 24, 48].find((s) => span / s <= 8) || 96;
  const vals = [], text = [];
  let lastDay = null;
  for (let t = Math.ceil(t0 / HOUR_MS) * HOUR_MS; t <= t1; t += HOUR_MS) {
    const p = local(t);
    const hour = Number(p.hour);
    if (p.minute !== "00" || hour % Math.min(step, 24) !== 0) continue;
    if (step > 24 && lastDay !== null && (t - vals[vals.length - 1]) < step * HOUR_MS - 2 * HOUR_MS) continue;
    const day = `${p.day}.${p.month}.`;
    vals.push(t);
    text.push(day !== lastDay ? `${p.hour}:00<br>${p.weekday} ${day}` : `${p.hour}:00`);
    lastDay = day;
  }
  return { tickvals: vals, ticktext: text };
}
function times(d) {
  const xs = [];
  for (let i = 0; i < d.n; i++) xs.push(d.t0_ms + i * d.step_min * 60000);
  return xs;
}

// --- charts ----------------------------------------------------------------------------------

function layout(title, yTitle, xs, nowMs, range) {
  const ticks = range ? berlinTicks(range[0], range[1]) : berlinTicks(xs[0], xs[xs.length - 1]);
  const shapes = [];
  if (nowMs >= xs[0] && nowMs <= xs[xs.length - 1] + HOUR_MS) {
    shapes.push({ type: "line", x0: nowMs, x1: nowMs, yref: "paper", y0: 0, y1: 1, line: { color: "#b3261e", width: 1.5, dash: "dot" } });
  }
  return {
    title: { text: title, font: { size: 14 } },
    margin: { l: 55, r: 70, t: 36, b: 40 },
    xaxis: { type: "linear", title: { text: "Europe/Berlin", font: { size: 11 } }, tickmode: "array", range, ...ticks },
    yaxis: { title: { text: yTitle, font: { size: 12 } }, zeroline: true },
    legend: { orientation: "h", x: 0, y: -0.22, yanchor: "top" },
    hovermode: "x unified",
    shapes,
    annotations: shapes.length ? [{ x: nowMs, yref: "paper", y: 1, text: "now", showarrow: false, font: { color: "#b3261e", size: 11 } }] : [],
  };
}
function trace(name, xs, ys, unit, extra) {
  return Object.assign({
    type: "scatter", mode: "lines", name, x: xs, y: ys, line: { shape: "hv" },
    customdata: xs.map(localText), hovertemplate: `%{customdata}<br>${name}: %{y:.2f} ${unit}<extra></extra>`,
  }, extra || {});
}
function plot(div, traces, lay) {
  lay.height = div.clientHeight || 340;
  Plotly.newPlot(div, traces, lay, { responsive: true, displaylogo: false });
  div.on("plotly_relayout", (ev) => {  // zoom: Berlin ticks for the new range
    const a = ev["xaxis.range[0]"], b = ev["xaxis.range[1]"];
    if (a !== undefined && b !== undefined) Plotly.relayout(div, { "xaxis.tickvals": berlinTicks(a, b).tickvals, "xaxis.ticktext": berlinTicks(a, b).ticktext });
    else if (ev["xaxis.autorange"]) {
      const xs = traces.flatMap((tr) => [tr.x[0], tr.x[tr.x.length - 1]]);
      const t = berlinTicks(Math.min(...xs), Math.max(...xs));
      Plotly.relayout(div, { "xaxis.tickvals": t.tickvals, "xaxis.ticktext": t.ticktext });
    }
  });
}

// --- pages -----------------------------------------------------------------------------------

function card(parent, label, value, cls, title) {
  const c = el("div", null, "card" + (cls ? " " + cls : ""));
  c.append(el("span", label, "muted"), el("b", value));
  if (title) c.title = title;
  parent.append(c);
  return c;
}
function ageText(s) {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

async function overview() {
  const o = await api(`${API}/sites/${encodeURIComponent(state.site)}/overview`);
  const box = $("status");
  box.replaceChildren();
  card(box, "plan", o.status, o.status === "optimal" ? "ok" : "bad");
  card(box, "computed", `${ageText(o.age_s)} ago`, "", localText(Date.parse(o.computed_at)));
  const staleCard = card(box, "stale?", o.stale ? "stale" : "fresh", o.stale ? "bad" : "ok");
  if (o.stale) staleCard.append(el("span", o.stale_reason, "muted"));
  card(box, "horizon", `${localText(Date.parse(o.start))} – ${localText(Date.parse(o.end))}`);
  card(box, "service clock now", localText(Date.parse(o.now)));
  card(box, "next run", o.next_run ? localText(Date.parse(o.next_run)) : "scheduler off");
  const k = o.horizon_kpis;
  card(box, "cost (horizon)", `${num(k.cost_eur, 2)} EUR`);
  card(box, "CO2 (horizon)", `${num(k.co2_kg, 1)} kg`);
  const viol = card(box, "violations", String(o.violations.length), o.violations.length ? "bad" : "ok");
  const dim = card(box, "§14a dimmings", String(o.dimming.length), o.dimming.length ? "bad" : "ok");
  viol.id = "violations-card"; dim.id = "dimmings-card";

  const t = el("table");
  const head = el("tr");
  const cols = ["day", "intervals", "cost EUR", "CO2 kg", "import kWh", "export kWh", "PV kWh", "curtailed kWh", "self-sufficiency",
    "peak import vs limit (kW)"];
  for (const c of cols) head.append(el("th", c));
  t.append(head);
  for (const d of o.days) {
    const r = el("tr");
    r.append(el("td", `${d.label} (${d.date})`), el("td", d.intervals), el("td", num(d.cost_eur, 2)), el("td", num(d.co2_kg)),
      el("td", num(d.import_kwh)), el("td", num(d.export_kwh)),
      el("td", num(d.pv_kwh)), el("td", num(d.curtailed_kwh)), el("td", d.self_sufficiency === null ? "-" : `${num(100 * d.self_sufficiency, 0)} %`));
    const peaks = el("td");
    for (const [cid, p] of Object.entries(d.peaks)) peaks.append(el("div", `${cid}: ${num(p.peak_import_kw)} / ${num(p.limit_kw)}`, p.over ? "over" : ""));
    r.append(peaks);
    t.append(r);
  }
  const extra = [k.peak_charge_eur, k.throughput_cost_eur].some((v) => v) ?
    `; on top over the horizon: peak charge ${num(k.peak_charge_eur, 2)} EUR, battery wear ${num(k.throughput_cost_eur, 2)} EUR` : "";
  const note = el("p", `Cost per day: energy, grid fees and CO2 price, less feed-in${extra}.`, "muted");
  note.id = "kpis-note";
  $("kpis").replaceChildren(t, note);
  const lists = $("lists");
  lists.replaceChildren();
  for (const [name, items] of [["Violations", o.violations], ["§14a dimmings", o.dimming], ["Warnings", o.warnings]]) {
    const d = el("details");
    d.append(el("summary", `${name} (${items.length})`));
    const ul = el("ul");
    for (const it of items) ul.append(el("li", typeof it === "string" ? it : JSON.stringify(it)));
    d.append(ul);
    lists.append(d);
  }
  viol.addEventListener("click", () => { lists.children[0].open = true; lists.children[0].scrollIntoView(); });
  dim.addEventListener("click", () => { lists.children[1].open = true; lists.children[1].scrollIntoView(); });
}

async function grid() {
  const g = await api(`${API}/sites/${encodeURIComponent(state.site)}/grid`);
  const xs = times(g);
  const box = $("grid-charts");
  box.replaceChildren();
  const past = times(g.measured);
  const all = past.concat(xs);
  const span = xs[xs.length - 1] - xs[0];
  const shown = [Math.max(all[0], xs[0] - Math.max(6 * HOUR_MS, span)), xs[xs.length - 1]];  // the plan and as long before
  for (const [cid, c] of Object.entries(g.connections)) {
    const div = el("div", null, "chart");
    div.dataset.connection = cid;
    box.append(div);
    plot(div, [
      trace("measured import", past, g.measured.connections[cid], "kW", { line: { shape: "hv", color: "#444", width: 1 } }),
      trace("planned import", xs, c.import_kw, "kW", { line: { shape: "hv", color: "#1f5fa8" } }),
      trace("planned export", xs, c.export_kw.map((v) => -v), "kW", { line: { shape: "hv", color: "#8a3ea8" } }),
      trace("import limit", xs, c.limit_import_kw, "kW", { line: { shape: "hv", dash: "dash", color: "#b3261e" } }),
      trace("export limit", xs, c.limit_export_kw.map((v) => -v), "kW", { line: { shape: "hv", dash: "dash", color: "#e08a00" } }),
      trace("marginal price", xs, c.marginal_price_eur_per_kwh, "EUR/kWh", { yaxis: "y2", line: { shape: "hv", color: "#2a8a3e", width: 1 } }),
    ], Object.assign(layout(`Transformer ${cid}: grid exchange (export < 0)`, "kW", all, g.now_ms, shown), {
      yaxis2: { title: { text: "EUR/kWh", font: { size: 12 } }, overlaying: "y", side: "right", showgrid: false, tickformat: ".3f" },
    }));
    if (Object.keys(c.feeders).length) feederChart(box, cid, c.feeders, xs, g.now_ms);
  }
}

const FEEDER_COLORS = ["#1f5fa8", "#8a3ea8", "#2a8a3e", "#c2571a", "#7f7f7f", "#e0b000"];
function feederChart(box, cid, feeders, xs, nowMs) {
  const div = el("div", null, "chart");
  div.dataset.feedersOf = cid;
  box.append(div);
  const ends = [xs[0], xs[xs.length - 1]];
  const traces = Object.entries(feeders).flatMap(([fid, f], i) => {
    const color = FEEDER_COLORS[i % FEEDER_COLORS.length];
    return [
      trace(`${fid} net draw`, xs, f.net_kw, "kW", { line: { shape: "hv", color } }),
      trace(`${fid} limits`, ends, [f.limit_import_kw, f.limit_import_kw], "kW", { line: { dash: "dash", color, width: 1 }, legendgroup: fid }),
      trace(`${fid} export limit`, ends, [-f.limit_export_kw, -f.limit_export_kw], "kW",
        { line: { dash: "dash", color, width: 1 }, legendgroup: fid, showlegend: false }),
    ];
  });
  plot(div, traces, layout(`Transformer ${cid}: feeders' planned net draw (fed back < 0) and limits`, "kW", xs, nowMs));
}

async function assets() {
  const sel = $("asset-filter");
  const q = sel.value ? `?asset=${encodeURIComponent(sel.value)}` : "";
  const a = await api(`${API}/sites/${encodeURIComponent(state.site)}/assets${q}`);
  if (sel.options.length === 1) {
    for (const it of a.assets) sel.append(new Option(`${it.id} (${it.type})`, it.id));
  }
  const xs = times(a);
  const traces = a.asset
    ? [trace(`${a.asset.id} (${a.asset.type})`, xs, a.asset.power_kw, "kW")]
    : a.groups.map((g) => trace(`${g.label} (${g.count})`, xs, g.power_kw, "kW",
      { stackgroup: g.type === "pv" || g.type === "battery" ? "supply" : "demand", line: { shape: "hv", width: 0.5, color: COLORS[g.type] } }));
  plot($("assets-chart"), traces, layout(a.asset ? `Asset ${a.asset.id}` : "Planned power by asset type (stacked; < 0 feeds in)", "kW", xs, a.now_ms));
  $("sp-csv").href = `${API}/sites/${encodeURIComponent(state.site)}/setpoints.csv`;
  $("sp-table").replaceChildren();
  delete document.body.dataset.setpoints;
  if ($("setpoints").open) await loadSetpoints();
}

// the set-point table (every asset and interval: a few hundred KB on a big site) is fetched only
// when its collapsed section is opened
async function loadSetpoints() {
  if ($("sp-table").rows.length || document.body.dataset.setpoints === "loading") return;
  document.body.dataset.setpoints = "loading";
  try {
    setpointTable(await api($("sp-csv").href));
  } catch (e) {
    $("sp-table").replaceChildren(el("caption", `set-points: ${e.message}`));
  }
  document.body.dataset.setpoints = "loaded";
}

function setpointTable(text) {
  const lines = text.trim().split("\n").slice(1).map((l) => l.split(","));
  const byAsset = new Map();
  const starts = [];
  for (const [t, asset, type, conn, v] of lines) {
    if (!byAsset.has(asset)) byAsset.set(asset, { type, conn, values: [] });
    byAsset.get(asset).values.push(Number(v));
    if (byAsset.size === 1) starts.push(Date.parse(t));
  }
  const table = $("sp-table");
  const head = el("tr");
  head.append(el("th", "asset"), el("th", "type"), el("th", "transformer"));
  for (const t of starts) head.append(el("th", `${localText(t).split(" ").slice(2).join(" ")} (kW)`));
  table.replaceChildren(head);
  for (const [asset, a] of byAsset) {
    const r = el("tr");
    r.dataset.search = `${asset} ${a.type} ${a.conn}`.toLowerCase();
    r.append(el("td", asset), el("td", a.type), el("td", a.conn));
    for (const v of a.values) r.append(el("td", num(v, 2)));
    table.append(r);
  }
}

async function performance() {
  const k = await api(`${API}/sites/${encodeURIComponent(state.site)}/performance`);
  $("perf-title").textContent = `Realised against planned, ${localText(Date.parse(k.start))} – ${localText(Date.parse(k.end))}`;
  const box = $("perf-totals");
  box.replaceChildren();
  card(box, "evaluated intervals", `${k.evaluated_intervals} of ${k.intervals}`);
  card(box, "import", k.totals.import_kwh === null ? "not measured" : `${num(k.totals.import_kwh)} kWh`).id = "perf-import";
  card(box, "cost", k.totals.cost_eur === null ? "not priced" : `${num(k.totals.cost_eur, 2)} EUR`);
  card(box, "intervals above limit", String(k.totals.intervals_above_limit), k.totals.intervals_above_limit ? "bad" : "ok");
  card(box, "kWh above limit", k.totals.kwh_above_limit === null ? "-" : `${num(k.totals.kwh_above_limit, 2)} kWh`);
  card(box, "§14a dimming", `${k.dimming.intervals} intervals, ${num(k.dimming.dimmed_kwh || 0)} kWh`);
  const rows = Object.entries(k.connections);
  const t = el("table");
  t.id = "perf-table";
  if (rows.length) {
    const fields = Object.keys(rows[0][1]);
    const head = el("tr");
    head.append(el("th", "transformer"), ...fields.map((f) => el("th", f.replace(/_/g, " "))));
    t.append(head);
    for (const [cid, c] of rows) {
      const r = el("tr");
      r.append(el("td", cid), ...fields.map((f) => el("td", typeof c[f] === "number" ? num(c[f], 2) : c[f] === null ? "-" : String(c[f]))));
      t.append(r);
    }
  } else {
    t.append(el("caption", "nothing evaluated in this period"));
  }
  $("perf-connections").replaceChildren(t);
}

async function forecasts() {
  const sel = $("fc-target");
  const q = sel.value ? `?${new URLSearchParams(JSON.parse(sel.value))}` : "";
  const f = await api(`${API}/sites/${encodeURIComponent(state.site)}/forecasts${q}`);
  if (!sel.options.length) {
    for (const t of f.targets) sel.append(new Option(`${t.target} (${t.unit})`, JSON.stringify({ target: t.target, quantity: t.quantity })));
  }
  $("fc-none").hidden = !!f.forecast;
  $("fc-chart").hidden = !f.forecast;
  if (!f.forecast) return;
  const d = f.forecast;
  const xs = times(d);
  const lo = d.values[0], hi = d.values[d.values.length - 1];
  const mid = d.levels.indexOf(0.5) >= 0 ? d.values[d.levels.indexOf(0.5)] : d.values[Math.floor(d.values.length / 2)];
  const pct = (x) => `${Math.round(100 * x)} %`;
  const band = `${pct(d.levels[0])}–${pct(d.levels[d.levels.length - 1])}`;
  plot($("fc-chart"), [
    trace(`${pct(d.levels[0])}`, xs, lo, d.unit, { line: { shape: "hv", width: 0, color: "#1f5fa8" }, showlegend: false }),
    trace(`${band} band`, xs, hi, d.unit, { fill: "tonexty", fillcolor: "rgba(31,95,168,0.2)", line: { shape: "hv", width: 0, color: "#1f5fa8" } }),
    trace("median", xs, mid, d.unit, { line: { shape: "hv", color: "#1f5fa8" } }),
  ], layout(`Forecast of ${d.target} (${d.unit}), ${band} band`, d.unit, xs, d.now_ms));
  sel.value = JSON.stringify({ target: d.target, quantity: d.quantity });
}

// --- scenarios (planner) ---------------------------------------------------------------------

const JSON_CHOICE = "__json__";
const POLL_MS = 1500;
//: KPIs the sweep table shows (the downloads hold every KPI)
const SWEEP_COLUMNS = ["cost_eur", "co2_kg", "import_kwh", "peak_import_kw", "hours_above_limit_h", "self_sufficiency"];
const UNITS = { eur: "EUR", kwh: "kWh", kw: "kW", kg: "kg", h: "h" };
const sc = { poll: 0, run: null, sweep: null };
//: KPIs where more is better (the change bars are green when they grow)
const MORE_IS_BETTER = /^(self_sufficiency|self_consumption|feed_in_revenue_eur|pv_generation_kwh)$/;

function kpiUnit(kpi) {
  const base = kpi.split(".")[0];
  if (/self_(sufficiency|consumption)$/.test(base)) return "share";
  const m = base.match(/_(eur|kwh|kw|kg|h)$/);
  return m ? UNITS[m[1]] : "count";
}
function siteApi(path) { return `${API}/sites/${encodeURIComponent(state.site)}${path}`; }
function errorText(e) {
  if (!(e instanceof ApiError)) return String(e);
  try {  // 422: the API's items, each naming the edit and field
    const items = JSON.parse(e.message);
    if (Array.isArray(items)) return `${e.status}: ` + items.map((i) => `${(i.loc || []).slice(1).join(".")}: ${i.msg}`).join("; ");
  } catch (x) { /* a plain message */ }
  return `${e.status}: ${e.message}`;
}
function link(id, href) { const a = $(id); a.href = href || "#"; a.hidden = !href; }
function table(id, head, rows) {
  const t = $(id);
  const h = el("tr");
  for (const c of head) h.append(el("th", c));
  t.replaceChildren(h);
  for (const cells of rows) {
    const r = el("tr");
    for (const c of cells) r.append(c instanceof Node ? c : el("td", c));
    t.append(r);
  }
  return t;
}

async function scenarios() {
  const [s, f] = await Promise.all([api(siteApi("/scenarios")), api(siteApi("/scenario-files"))]);
  const sel = $("sc-file");
  const chosen = sel.value;
  sel.replaceChildren(...f.files.map((x) => new Option(`${x.file} (${x.kind}${x.description ? ": " + x.description : ""})`, x.file)),
    new Option("edits as JSON (below)", JSON_CHOICE));
  if (chosen) sel.value = chosen;
  $("sc-json").hidden = sel.value !== JSON_CHOICE;
  sel.dataset.kinds = JSON.stringify(Object.fromEntries(f.files.map((x) => [x.file, x.kind])));
  runList(s);
  if (sc.sweep) await showSweep(sc.sweep);
  else if (sc.run) await showRun(sc.run);
}

function runList(s) {
  const rows = s.runs.map((run) => {
    const cells = s.fields.map((f) => el("td", f.endsWith("_at") && run[f] ? localText(Date.parse(run[f])) : run[f] === null ? "-" : run[f],
      f === "message" ? "trunc" : ""));
    cells.find((c, i) => s.fields[i] === "message").title = run.message || "";
    return cells;
  });
  const tb = el("table");
  tb.id = "sc-table";
  const h = el("tr");
  for (const f of s.fields) h.append(el("th", f.replace(/_/g, " ")));
  tb.append(h);
  s.runs.forEach((run, i) => {
    const r = el("tr", null, "pick" + (run.run_id === sc.run ? " current" : ""));
    r.dataset.run = run.run_id;
    r.append(...rows[i]);
    r.addEventListener("click", () => { sc.sweep = null; showRun(run.run_id); });
    tb.append(r);
  });
  if (!s.runs.length) tb.append(el("caption", "No scenario runs yet: choose a file or type edits above and run."));
  $("sc-runs").replaceChildren(tb);
}

function stopPolling() { clearTimeout(sc.poll); sc.poll = 0; }
function progress(text, done, total) {
  $("sc-progress").textContent = text;
  const bar = $("sc-bar");
  bar.hidden = total === undefined;
  if (total !== undefined) { bar.max = total; bar.value = done; }
}

async function submitScenario(ev) {
  ev.preventDefault();
  stopPolling();
  const choice = $("sc-file").value;
  let body;
  if (choice === JSON_CHOICE) {
    try { body = { scenario: JSON.parse($("sc-json").value) }; } catch (e) { showError(`JSON: ${e.message}`); return; }
  } else {
    body = { file: choice };
  }
  showError("");
  $("sc-run").disabled = true;
  try {
    const r = await api(siteApi("/scenarios"), {
      method: "POST", headers: { "Content-Type": "application/json", "X-Requested-With": "quartiere-dashboard" }, body: JSON.stringify(body),
    });
    sc.sweep = r.sweep; sc.run = r.sweep ? null : r.run_ids[0];
    document.body.dataset.scenario = "running";
    if (r.sweep) await showSweep(r.sweep); else await showRun(r.run_ids[0]);
    runList(await api(siteApi("/scenarios")));
  } catch (e) {
    showError(errorText(e));
    document.body.dataset.scenario = "refused";
  } finally {
    $("sc-run").disabled = false;
  }
}

async function showRun(runId) {
  stopPolling();
  sc.run = runId;
  const r = await api(siteApi(`/scenarios/${encodeURIComponent(runId)}`));
  for (const tr of document.querySelectorAll("#sc-table tr[data-run]")) tr.classList.toggle("current", tr.dataset.run === runId);
  $("sc-sweep").hidden = true;
  const started = Date.parse(r.started_at || r.submitted_at);
  if (r.active) {
    const s = Math.max(0, Math.round((Date.now() - started) / 1000));
    progress(`${r.name}: ${r.status}${r.status === "running" ? `, ${s} s` : " (waiting for the runs before it)"}`);
    sc.poll = setTimeout(() => { if (state.page === "scenarios" && sc.run === runId) showRun(runId).catch((e) => showError(errorText(e))); }, POLL_MS);
    return;
  }
  progress(`${r.name}: ${r.status}${r.scenario_status ? ` (${r.scenario_status})` : ""}${r.message ? ` – ${r.message}` : ""}`);
  document.body.dataset.scenario = r.status;
  drawComparison(r);
  if (state.page === "scenarios") runList(await api(siteApi("/scenarios")));
}

function drawComparison(r) {
  const box = $("sc-result");
  box.hidden = !r.comparison.length;
  if (!r.comparison.length) return;
  $("sc-result-title").textContent = `${r.name} against the baseline`;
  const rows = r.comparison.filter((c) => c.delta_rel !== null && c.kpi !== "weight");
  const ys = rows.map((c) => c.kpi);
  const pct = rows.map((c) => 100 * c.delta_rel);
  const delta = $("sc-delta-chart");
  delta.style.height = `${Math.max(260, 22 * rows.length + 90)}px`;
  plotBars(delta, [{
    type: "bar", orientation: "h", y: ys, x: pct, name: "change",
    marker: { color: rows.map((c, i) => ((pct[i] > 0) !== MORE_IS_BETTER.test(c.kpi) ? "#b3261e" : "#2a8a3e")) },
    customdata: rows.map((c) => [num(c.baseline, 2), num(c.value, 2), num(c.delta, 2), kpiUnit(c.kpi)]),
    hovertemplate: "%{y}: %{x:.1f} %<br>baseline %{customdata[0]} %{customdata[3]}, scenario %{customdata[1]} (%{customdata[2]})<extra></extra>",
  }], { title: { text: "Change against the baseline (%; green: better)", font: { size: 14 } }, xaxis: { title: { text: "%" }, zeroline: true },
    yaxis: { automargin: true, autorange: "reversed" }, margin: { l: 10, r: 20, t: 36, b: 40 } });
  const unitSel = $("sc-unit");
  const units = [...new Set(r.comparison.map((c) => kpiUnit(c.kpi)))];
  const keep = unitSel.value;
  unitSel.replaceChildren(...units.map((u) => new Option(u, u)));
  unitSel.value = units.includes(keep) ? keep : units.includes("EUR") ? "EUR" : units[0];
  drawUnitBars(r);
  unitSel.onchange = () => drawUnitBars(r);
  table("sc-cmp", ["KPI", "baseline", "scenario", "change", "change %"], r.comparison.map((c) => [
    c.kpi, num(c.baseline, 2), num(c.value, 2), num(c.delta, 2), c.delta_rel === null ? "-" : `${num(100 * c.delta_rel, 1)} %`]));
  link("sc-cmp-csv", r.exports["comparison.csv"]); link("sc-cmp-parquet", r.exports["comparison.parquet"]);
  link("sc-res-csv", r.exports["results.csv"]); link("sc-res-parquet", r.exports["results.parquet"]);
}

function drawUnitBars(r) {
  const unit = $("sc-unit").value;
  const rows = r.comparison.filter((c) => kpiUnit(c.kpi) === unit && c.kpi !== "weight");
  const xs = rows.map((c) => c.kpi);
  const hover = `%{x}: %{y:.2f} ${unit}<extra>%{fullData.name}</extra>`;
  plotBars($("sc-bars-chart"), [
    { type: "bar", name: "baseline", x: xs, y: rows.map((c) => c.baseline), marker: { color: "#7f7f7f" }, hovertemplate: hover },
    { type: "bar", name: "scenario", x: xs, y: rows.map((c) => c.value), marker: { color: "#1f5fa8" }, hovertemplate: hover },
  ], { title: { text: `Baseline and scenario, KPIs in ${unit}`, font: { size: 14 } }, barmode: "group",
    yaxis: { title: { text: unit } }, xaxis: { automargin: true, tickangle: -30 }, legend: { orientation: "h", y: 1.12 },
    margin: { l: 55, r: 10, t: 36, b: 40 } });
}

function plotBars(div, traces, lay) {
  lay.height = div.clientHeight || 340;
  Plotly.newPlot(div, traces, lay, { responsive: true, displaylogo: false });
}

async function showSweep(file) {
  stopPolling();
  sc.sweep = file;
  const w = await api(`${siteApi("/sweep")}?file=${encodeURIComponent(file)}`);
  $("sc-result").hidden = true;
  $("sc-sweep").hidden = false;
  const total = w.cases.length;
  $("sc-sweep-title").textContent = `Sweep ${w.file}: ${w.finished} of ${total} cases finished`;
  progress(`${w.file}: ${w.finished} of ${total} cases finished`, w.finished, total);
  const kSel = $("sw-kpi");
  const keep = kSel.value;
  kSel.replaceChildren(...w.kpis.filter((k) => k !== "weight").map((k) => new Option(k, k)));
  if (w.kpis.includes(keep)) kSel.value = keep; else if (w.kpis.includes("cost_eur")) kSel.value = "cost_eur";
  drawSweep(w);
  kSel.onchange = () => drawSweep(w);
  link("sw-csv", w.exports.csv); link("sw-parquet", w.exports.parquet);
  if (w.cases.some((c) => c.status === "queued" || c.status === "running")) {
    sc.poll = setTimeout(() => { if (state.page === "scenarios" && sc.sweep === file) showSweep(file).catch((e) => showError(errorText(e))); }, POLL_MS);
  } else {
    runList(await api(siteApi("/scenarios")));
    document.body.dataset.scenario = "sweep-done";
  }
}

function drawSweep(w) {
  const kpi = $("sw-kpi").value;
  const names = Object.keys(w.parameters);
  const [px, py] = [names[0], names[1]];
  const xs = px ? w.parameters[px] : [""];
  const ys = py ? w.parameters[py] : [""];
  const z = ys.map(() => xs.map(() => null));
  const labels = ys.map(() => xs.map(() => ""));
  for (const c of w.cases) {
    const xi = px ? xs.indexOf(c[`param.${px}`]) : 0, yi = py ? ys.indexOf(c[`param.${py}`]) : 0;
    if (xi < 0 || yi < 0) continue;  // an explicit case off the grid: in the table only
    z[yi][xi] = kpi ? c[`${kpi}.delta`] : null;
    labels[yi][xi] = c.case;
  }
  const unit = kpi ? kpiUnit(kpi) : "";
  const heat = $("sw-heat");
  heat.hidden = !names.length;
  if (names.length) {
    plotBars(heat, [{
      type: "heatmap", x: xs.map(String), y: ys.map(String), z, customdata: labels, colorscale: "RdBu", reversescale: MORE_IS_BETTER.test(kpi), zmid: 0,  // Plotly's RdBu: low = blue
      texttemplate: "%{z:.1f}", hovertemplate: `${px}=%{x}${py ? `, ${py}=%{y}` : ""}<br>%{customdata}<br>${kpi} change: %{z:.2f} ${unit}<extra></extra>`,
      colorbar: { title: { text: unit } },
    }], { title: { text: `${kpi}: change against the baseline (${unit}; blue: better)`, font: { size: 14 } },
      xaxis: { title: { text: px }, type: "category" }, yaxis: { title: { text: py || "" }, type: "category" },
      margin: { l: 60, r: 10, t: 36, b: 50 } });
  }
  const shown = [kpi, ...SWEEP_COLUMNS.filter((k) => k !== kpi)].filter((k) => k && w.kpis.includes(k));
  const head = ["case", "status", ...shown.flatMap((k) => [`${k}`, "change"]), "message"];
  const t = table("sw-table", head, w.cases.map((c) => {
    const msg = el("td", c.message || "", "trunc");
    msg.title = c.message || "";
    return [c.case, c.status, ...shown.flatMap((k) => [num(c[k], 2), num(c[`${k}.delta`], 2)]), msg];
  }));
  t.dataset.kpis = String(w.kpis.length);
}

const PAGES = { overview, grid, assets, forecasts, performance, scenarios };

async function show(page) {
  state.page = page;
  if (location.hash !== `#${page}`) history.replaceState(null, "", `#${page}`);  // a link to this page
  for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-current", b.dataset.page === page ? "page" : "false");
  for (const p of document.querySelectorAll(".page")) p.hidden = p.id !== `page-${page}`;
  showError("");
  try {
    await PAGES[page]();
    document.body.dataset.loaded = page;
  } catch (e) {
    showError(e instanceof ApiError ? `${e.status}: ${e.message}` : String(e));
    document.body.dataset.loaded = `${page}-error`;
  }
}

async function start() {
  try {
    state.me = await api(`${API}/me`);
    if (!state.me.signed_in) throw new ApiError(401, "not signed in");
  } catch (e) {
    $("login").hidden = false;
    $("nav").hidden = true;
    for (const p of document.querySelectorAll(".page")) p.hidden = true;
    document.body.dataset.loaded = "login";
    return;
  }
  $("login").hidden = true;
  $("nav").hidden = false;
  $("who").textContent = `role: ${state.me.role}`;
  $("replan").hidden = !state.me.can_replan;
  for (const b of document.querySelectorAll(".tab")) b.hidden = !state.me.pages.includes(b.dataset.page);
  const sel = $("site");
  sel.replaceChildren(...state.me.sites.map((s) => new Option(s, s)));
  if (!state.me.sites.length) {
    showError("This key may not see any site's plans here.");
    document.body.dataset.loaded = "no-site";
    return;
  }
  state.site = state.me.sites[0];
  await show(state.me.pages.includes(state.page) ? state.page : state.me.pages[0]);
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("/dashboard/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ key: $("key").value }) });
    $("key").value = "";
    showError("");
    await start();
  } catch (e) {
    showError(e instanceof ApiError && e.status === 401 ? "Wrong or revoked API key." : `Sign-in failed: ${e.message}`);
    document.body.dataset.loaded = "login-error";
  }
});
$("signout").addEventListener("click", async () => { await api("/dashboard/session", { method: "DELETE" }); await start(); });
$("replan").addEventListener("click", async () => {
  try {
    const job = await api(`${API}/sites/${encodeURIComponent(state.site)}/replan`, { method: "POST", headers: { "X-Requested-With": "quartiere-dashboard" } });
    showError("");
    $("who").textContent = `role: ${state.me.role}; re-plan ${job.status}`;
  } catch (e) {
    showError(`${e.status}: ${e.message}`);
  }
});
for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => show(b.dataset.page));
$("site").addEventListener("change", () => {
  state.site = $("site").value;
  stopPolling();
  sc.run = sc.sweep = null;
  $("sc-result").hidden = $("sc-sweep").hidden = true;
  $("asset-filter").length = 1;
  $("fc-target").length = 0;
  show(state.page);
});
$("asset-filter").addEventListener("change", () => show("assets"));
$("setpoints").addEventListener("toggle", () => { if ($("setpoints").open) loadSetpoints(); });
$("fc-target").addEventListener("change", () => show("forecasts"));
$("sc-form").addEventListener("submit", submitScenario);
$("sc-file").addEventListener("change", () => { $("sc-json").hidden = $("sc-file").value !== JSON_CHOICE; });
$("sp-filter").addEventListener("input", () => {
  const q = $("sp-filter").value.toLowerCase();
  for (const r of $("sp-table").querySelectorAll("tr[data-search]")) r.hidden = !r.dataset.search.includes(q);
});
start();
