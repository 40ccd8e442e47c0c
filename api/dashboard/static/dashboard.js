// Quartiere dashboard: fetches the JSON endpoints named in the page's config with the key kept in
// sessionStorage and draws inline SVG charts. No libraries, no CDN; data is only ever put into the
// page as text (textContent), never as HTML.
"use strict";

const CONFIG = JSON.parse(document.getElementById("config").textContent);
const KEY_ITEM = "quartiere.apiKey";
const SITE_ITEM = "quartiere.site";
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f5fa8", "#c2571a", "#2a8a3e", "#8a3ea8", "#a8931f"];
const MINUTE_MS = 60000;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- time and numbers ------------------------------------------------------------------------

const dateTime = new Intl.DateTimeFormat("en-GB", {
  timeZone: CONFIG.timezone, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
});
const clockTime = new Intl.DateTimeFormat("en-GB", { timeZone: CONFIG.timezone, hour: "2-digit", minute: "2-digit" });

function local(iso) {
  return iso ? dateTime.format(new Date(iso)) : "-";
}

function age(iso) {
  const minutes = Math.round((Date.now() - Date.parse(iso)) / MINUTE_MS);
  if (minutes < 0) return "in " + (-minutes < 120 ? -minutes + " min" : (-minutes / 60).toFixed(1) + " h");
  if (minutes < 120) return minutes + " min ago";
  if (minutes < 2880) return (minutes / 60).toFixed(1) + " h ago";
  return (minutes / 1440).toFixed(1) + " days ago";
}

function num(v, digits) {
  return typeof v === "number" && isFinite(v) ? v.toFixed(digits === undefined ? 1 : digits) : "-";
}

// --- fetching --------------------------------------------------------------------------------

function endpoint(name, site, params) {
  const path = CONFIG.endpoints[name].replace("{site}", encodeURIComponent(site));
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  return CONFIG.prefix + path + query;
}

async function getJson(name, site, params) {
  const key = sessionStorage.getItem(KEY_ITEM) || "";
  const response = await fetch(endpoint(name, site, params), {
    headers: { "X-API-Key": key, Accept: "application/json" },
    cache: "no-store",
  });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try {
      const body = await response.json();
      if (body && body.detail !== undefined) {
        message += ": " + (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
      }
    } catch (e) {
      // not JSON: the status line says enough
    }
    throw new ApiError(response.status, message);
  }
  return response.json();
}

// --- DOM helpers -----------------------------------------------------------------------------

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function show(panelId, ...nodes) {
  const panel = document.getElementById(panelId);
  panel.replaceChildren(...nodes);
}

function message(text, cls) {
  return el("p", { class: cls || "muted" }, text);
}

function table(head, rows) {
  const t = el("table");
  const tr = el("tr");
  head.forEach((h) => tr.appendChild(el("th", {}, h)));
  t.appendChild(tr);
  rows.forEach((row) => {
    const r = el("tr");
    row.forEach((cell) => r.appendChild(el("td", typeof cell === "number" ? { class: "num" } : {}, String(cell))));
    t.appendChild(r);
  });
  return t;
}

// --- charts ----------------------------------------------------------------------------------

// spec: {title, unit, t0: ms, stepMs, series: [{name, values, color, dashed, points}], band: {lower, upper, name}}
// A value i covers [t0 + i*step, t0 + (i+1)*step) and is drawn as a step, unless `points` (an
// instantaneous value at t0 + i*step, e.g. a state of charge) where it is drawn as a line.
function chart(spec) {
  const W = 760, H = 230, L = 56, R = 12, T = 12, B = 40;
  const all = [];
  let n = 0;
  spec.series.forEach((s) => { n = Math.max(n, s.points ? s.values.length - 1 : s.values.length); all.push(...s.values); });
  if (spec.band) {
    n = Math.max(n, spec.band.lower.length);
    all.push(...spec.band.lower, ...spec.band.upper);
  }
  const finite = all.filter((v) => typeof v === "number" && isFinite(v));
  const figure = el("figure");
  figure.appendChild(el("figcaption", {}, spec.title + " (" + spec.unit + ")"));
  if (!finite.length || n < 1) {
    figure.appendChild(message("no values"));
    return figure;
  }
  let lo = Math.min(0, ...finite), hi = Math.max(0, ...finite);
  if (hi - lo < 1e-9) hi = lo + 1;
  const pad = (hi - lo) * 0.05;
  lo -= lo < 0 ? pad : 0;
  hi += pad;
  const t1 = spec.t0 + n * spec.stepMs;
  const x = (t) => L + ((t - spec.t0) / (t1 - spec.t0)) * (W - L - R);
  const y = (v) => T + ((hi - v) / (hi - lo)) * (H - T - B);
  const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img" });
  svg.appendChild(svgEl("title", {}, spec.title));

  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.appendChild(svgEl("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, num(v, Math.abs(hi - lo) < 5 ? 2 : 1)));
  }
  const hours = (t1 - spec.t0) / 3600000;
  const tickMs = (hours <= 6 ? 1 : hours <= 26 ? 3 : hours <= 50 ? 6 : 24) * 3600000;
  for (let t = Math.ceil(spec.t0 / tickMs) * tickMs; t <= t1; t += tickMs) {
    svg.appendChild(svgEl("line", { x1: x(t), x2: x(t), y1: T, y2: H - B, class: "grid" }));
    const label = hours > 26 || clockTime.format(new Date(t)) === "00:00" ? dateTime.format(new Date(t)) : clockTime.format(new Date(t));
    svg.appendChild(svgEl("text", { x: x(t), y: H - B + 14, "text-anchor": "middle" }, label));
  }
  svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "axis" }));

  if (spec.band) {
    for (const d of bandPaths(spec.band.lower, spec.band.upper, spec.t0, spec.stepMs, x, y)) {
      svg.appendChild(svgEl("path", { d: d, fill: spec.band.color || "#1f5fa8", "fill-opacity": 0.18, stroke: "none" }));
    }
  }
  spec.series.forEach((s) => {
    const d = s.points ? linePath(s.values, spec.t0, spec.stepMs, x, y) : stepPath(s.values, spec.t0, spec.stepMs, x, y);
    const attrs = { d: d, fill: "none", stroke: s.color, "stroke-width": 1.6 };
    if (s.dashed) attrs["stroke-dasharray"] = "6 4";
    svg.appendChild(svgEl("path", attrs));
  });
  const now = Date.now();
  if (now >= spec.t0 && now <= t1) {
    svg.appendChild(svgEl("line", { x1: x(now), x2: x(now), y1: T, y2: H - B, class: "now" }));
  }
  let lx = L;
  const legend = spec.series.map((s) => [s.name, s.color, s.dashed]);
  if (spec.band) legend.push([spec.band.name, spec.band.color || "#1f5fa8", false, true]);
  legend.forEach(([name, color, dashed, area]) => {
    const attrs = area
      ? { x: lx, y: H - 14, width: 18, height: 8, fill: color, "fill-opacity": 0.25 }
      : { x: lx, y: H - 11, width: 18, height: 2, fill: color };
    svg.appendChild(svgEl("rect", attrs));
    if (dashed) svg.lastChild.setAttribute("fill-opacity", 0.6);
    svg.appendChild(svgEl("text", { x: lx + 22, y: H - 6 }, name));
    lx += 34 + name.length * 6.5;
  });
  figure.appendChild(svg);
  return figure;
}

function ok(v) {
  return typeof v === "number" && isFinite(v);
}

function stepPath(values, t0, stepMs, x, y) {
  let d = "", open = false;
  values.forEach((v, i) => {
    if (!ok(v)) { open = false; return; }
    const a = x(t0 + i * stepMs), b = x(t0 + (i + 1) * stepMs), yy = y(v).toFixed(1);
    d += (open ? "L" : "M") + a.toFixed(1) + " " + yy + "L" + b.toFixed(1) + " " + yy;
    open = true;
  });
  return d;
}

function linePath(values, t0, stepMs, x, y) {
  let d = "", open = false;
  values.forEach((v, i) => {
    if (!ok(v)) { open = false; return; }
    d += (open ? "L" : "M") + x(t0 + i * stepMs).toFixed(1) + " " + y(v).toFixed(1);
    open = true;
  });
  return d;
}

// one closed polygon per run of intervals where both bounds are known
function bandPaths(lower, upper, t0, stepMs, x, y) {
  const paths = [];
  let run = [];
  const flush = () => {
    if (!run.length) return;
    let top = "", bottom = "";
    run.forEach((i) => {
      const a = x(t0 + i * stepMs).toFixed(1), b = x(t0 + (i + 1) * stepMs).toFixed(1);
      top += (top ? "L" : "M") + a + " " + y(upper[i]).toFixed(1) + "L" + b + " " + y(upper[i]).toFixed(1);
    });
    run.slice().reverse().forEach((i) => {
      const a = x(t0 + i * stepMs).toFixed(1), b = x(t0 + (i + 1) * stepMs).toFixed(1);
      bottom += "L" + b + " " + y(lower[i]).toFixed(1) + "L" + a + " " + y(lower[i]).toFixed(1);
    });
    paths.push(top + bottom + "Z");
    run = [];
  };
  lower.forEach((v, i) => { if (ok(v) && ok(upper[i])) run.push(i); else flush(); });
  flush();
  return paths;
}

// --- panels ----------------------------------------------------------------------------------

function asList(v, n) {
  if (Array.isArray(v)) return v;
  return typeof v === "number" ? new Array(n).fill(v) : [];
}

async function showPlan(site) {
  let latest;
  try {
    latest = await getJson("latest_plan", site);
  } catch (e) {
    show("plan", message("Plan: " + e.message, "error"));
    show("connections", message("needs a plan: " + e.message, "muted"));
    show("batteries", message("needs a plan: " + e.message, "muted"));
    return null;
  }
  const plan = latest.plan || {};
  const rows = [
    ["status", latest.status],
    ["stale", latest.stale ? "yes: " + (latest.stale_reason || "(no reason given)") : "no"],
    ["computed", local(latest.computed_at) + " (" + age(latest.computed_at) + ")"],
    ["horizon", local(latest.start) + " to " + local(latest.end)],
    ["ends", (Date.parse(latest.end) <= Date.now() ? "ended " : "") + age(latest.end)],
    ["trigger", latest.trigger],
    ["objective", num(latest.objective_eur, 2) + " EUR"],
    ["plan id", latest.plan_id],
  ];
  const nodes = [table(["", ""], rows)];
  const state = latest.stale || latest.status !== "optimal" ? "warn" : "ok";
  nodes.unshift(el("p", { class: state }, latest.stale ? "Stale plan: " + latest.stale_reason : "Plan " + latest.status));
  try {
    const list = await getJson("plans", site, { limit: 5 });
    nodes.push(el("h3", {}, "Latest runs"));
    nodes.push(table(["computed", "status", "stale", "message"],
      list.plans.map((p) => [local(p.computed_at), p.status, p.stale ? "yes" : "no", p.message || ""])));
  } catch (e) {
    nodes.push(message("Runs: " + e.message, "error"));
  }
  show("plan", ...nodes);

  const t0 = Date.parse(plan.start || latest.start);
  const stepMs = (plan.resolution_min || 15) * MINUTE_MS;
  const n = (plan.intervals || []).length;
  const figures = Object.entries(plan.connections || {}).map(([id, c], k) => chart({
    title: "Connection " + id, unit: "kW", t0: t0, stepMs: stepMs,
    series: [
      { name: "import", values: asList(c.import_kw, n), color: COLORS[k % COLORS.length] },
      { name: "import limit", values: asList(c.limit_import_kw, n), color: "#a40000", dashed: true },
      { name: "export", values: asList(c.export_kw, n).map((v) => (ok(v) ? -v : v)), color: "#2a8a3e" },
    ],
  }));
  show("connections", ...(figures.length ? figures : [message("the plan has no connections")]));

  const batteries = Object.entries(plan.assets || {}).filter(([, a]) => a.type === "battery");
  const socFigures = batteries.map(([id, a], k) => chart({
    title: "Battery " + id + (a.connection ? " at " + a.connection : ""), unit: "kWh", t0: t0, stepMs: stepMs,
    series: [{ name: "state of charge (start of interval)", values: a.soc_kwh || [], color: COLORS[k % COLORS.length], points: true }],
  }));
  show("batteries", ...(socFigures.length ? socFigures : [message("no batteries in this plan")]));
  return latest;
}

async function showSetpoints(site) {
  try {
    const sp = await getJson("setpoints", site, { horizon: 4 });
    const head = ["asset", "type", "connection", ...sp.intervals.map((t) => clockTime.format(new Date(t)))];
    const rows = Object.entries(sp.assets).map(([id, a]) => [id, a.type, a.connection || "", ...a.power_kw.map((v) => num(v, 2))]);
    const state = el("p", { class: sp.stale ? "warn" : "ok" },
      (sp.stale ? "Stale: " + sp.stale_reason + ". " : "") + "Valid until " + local(sp.valid_until) + ", plan " + sp.plan_id);
    show("setpoints", state, table(head, rows));
  } catch (e) {
    show("setpoints", message("Set-points: " + e.message, "error"));
  }
}

function pickLevels(stored) {
  const want = [0.1, 0.5, 0.9];
  if (want.every((q) => stored.includes(q))) return want;
  if (!stored.length) return [];
  const median = stored.reduce((a, b) => (Math.abs(b - 0.5) < Math.abs(a - 0.5) ? b : a));
  return [...new Set([stored[0], median, stored[stored.length - 1]])].sort((a, b) => a - b);
}

async function forecastFigure(site, target, plan) {
  const levels = pickLevels(target.quantiles);
  let start = plan ? plan.start : null, end = plan ? plan.end : null;
  const latestWindow = () => {
    const e = Date.parse(target.end);
    return [new Date(Math.max(Date.parse(target.start), e - 48 * 3600000)).toISOString(), target.end];
  };
  if (!start) [start, end] = latestWindow();
  const params = (s, e) => ({ target: target.target, quantity: target.quantity, start: s, end: e, quantiles: levels.join(",") });
  let f;
  try {
    f = await getJson("forecast", site, params(start, end));
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404 || !plan) throw e;
    [start, end] = latestWindow(); // nothing over the plan's horizon: show the latest stored
    f = await getJson("forecast", site, params(start, end));
  }
  const column = (j) => f.intervals.map((iv) => iv.values[j]);
  const mid = f.quantiles.length === 3 ? 1 : Math.floor(f.quantiles.length / 2);
  const last = f.quantiles.length - 1;
  const runs = f.runs.map((r) => r.model + " issued " + local(r.issued_at)).join("; ");
  const spec = {
    title: target.target + " [" + runs + "]", unit: f.unit, t0: Date.parse(f.start), stepMs: f.resolution_min * MINUTE_MS,
    series: [{ name: "median (q" + f.quantiles[mid] + ")", values: column(mid), color: COLORS[0] }],
  };
  if (last > 0) {
    spec.band = { lower: column(0), upper: column(last), name: "q" + f.quantiles[0] + " to q" + f.quantiles[last] };
  }
  return chart(spec);
}

async function showForecasts(site, plan) {
  let listing;
  try {
    listing = await getJson("forecast_targets", site);
  } catch (e) {
    show("forecasts", message("Forecasts: " + e.message, "error"));
    return;
  }
  const wanted = listing.targets.filter((t) => t.target === "site" || t.target.startsWith("pv:"));
  wanted.sort((a, b) => (a.target === "site" ? -1 : b.target === "site" ? 1 : a.target.localeCompare(b.target)));
  if (!wanted.length) {
    show("forecasts", message("no load or PV forecasts stored for this site"));
    return;
  }
  const nodes = [];
  for (const target of wanted) {
    try {
      nodes.push(await forecastFigure(site, target, plan));
    } catch (e) {
      nodes.push(message(target.target + ": " + e.message, "error"));
    }
  }
  show("forecasts", ...nodes);
}

// --- wiring ----------------------------------------------------------------------------------

let busy = false;

async function refresh() {
  const site = document.getElementById("site").value.trim();
  const status = document.getElementById("status");
  if (!site || !sessionStorage.getItem(KEY_ITEM)) {
    status.textContent = "Enter an API key and a site.";
    return;
  }
  if (busy) return;
  busy = true;
  status.textContent = "Loading " + site + " ...";
  try {
    const [latest] = await Promise.all([showPlan(site), showSetpoints(site)]);
    await showForecasts(site, latest);
    status.textContent = "Updated " + clockTime.format(new Date()) + " (Europe/Berlin).";
  } catch (e) {
    status.textContent = "Error: " + e.message;
  } finally {
    busy = false;
  }
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = document.getElementById("key").value.trim();
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  document.getElementById("key").value = "";
  sessionStorage.setItem(SITE_ITEM, document.getElementById("site").value.trim());
  refresh();
});

document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_ITEM);
  document.getElementById("status").textContent = "Key forgotten.";
});

let timer = null;
document.getElementById("auto").addEventListener("change", (event) => {
  if (timer !== null) clearInterval(timer);
  timer = event.target.checked ? setInterval(refresh, MINUTE_MS) : null;
});

const savedSite = sessionStorage.getItem(SITE_ITEM);
if (savedSite) document.getElementById("site").value = savedSite;
if (sessionStorage.getItem(KEY_ITEM)) {
  document.getElementById("key").placeholder = "(key kept for this tab)";
  refresh();
}
