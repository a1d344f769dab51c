// corral's dashboard: the apps table with live CPU/memory charts, timeline, logs, alerts, jobs.
// Vanilla JS, no build step.  It talks to the API of the web process it came from (same origin).
"use strict";
const $ = (sel) => document.querySelector(sel);
const state = {csrf: "", role: "", ops: {}, series: {}, selected: "", source: null, rowsKey: ""};
const POINTS = 60;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

async function api(path, body) {
  const opts = {credentials: "same-origin", headers: {}};
  if (body !== undefined) {
    opts.method = "POST";
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
    opts.headers["X-Corral-CSRF"] = state.csrf;
  }
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({error: res.statusText}));
  if (res.status === 401) { showLogin(data.error); throw new Error(data.error); }
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function showLogin(message) {
  $("#main").hidden = true; $("#logout").hidden = true; $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  if (state.source) { state.source.close(); state.source = null; }
}

async function login(token) {
  const res = await fetch("/api/login", {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({token})});
  const data = await res.json().catch(() => ({}));
  if (!res.ok) { showLogin(data.error || "the token is not valid"); return false; }
  return true;
}

async function start() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { history.replaceState(null, "", location.pathname); if (!await login(decodeURIComponent(m[1]))) return; }
  let session;
  try { session = await api("/api/session"); } catch (e) { return; }
  state.csrf = session.csrf; state.role = session.role;
  state.ops = await api("/api/ops");
  $("#role").textContent = session.role;
  $("#login").hidden = true; $("#main").hidden = false; $("#logout").hidden = false;
  $("#jobs-box").hidden = !state.ops["/api/jobs"];
  await loadHistory();
  await refreshApps();
  connect();
  refreshAlerts(); refreshJobs();
  if (state.timers) return;
  state.timers = true;
  setInterval(refreshApps, 5000);
  setInterval(() => { if ($("#follow").checked) refreshLogs(); }, 2000);
  setInterval(() => { refreshAlerts(); refreshJobs(); }, 15000);
}

// -- the apps table and its charts ------------------------------------------------------------
const fmtBytes = (n) => n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + " GB" : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MB" : Math.round(n / 1024) + " KB";
const fmtAge = (t) => { if (!t) return ""; const s = Math.max(0, Date.now() / 1000 - t); return s < 60 ? Math.round(s) + "s" : s < 3600 ? Math.round(s / 60) + "m" : s < 86400 ? Math.round(s / 3600) + "h" : Math.round(s / 86400) + "d"; };

function chart(kind, key) {
  const pts = (state.series[key] || []).map((p) => kind === "cpu" ? p[1] : p[2]);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", kind); svg.setAttribute("viewBox", "0 0 120 24"); svg.setAttribute("data-points", pts.length);
  // cpu: 0 to 100 % (or more: several cores); memory: its own range, so growth shows
  const max = Math.max(kind === "cpu" ? 100 : 1, ...pts);
  const min = kind === "cpu" || !pts.length ? 0 : Math.min(...pts) * 0.9;
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts.map((v, i) => `${(i * 120 / Math.max(1, pts.length - 1)).toFixed(1)},${(23 - (v - min) * 22 / Math.max(1, max - min)).toFixed(1)}`).join(" "));
  svg.append(line);
  const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
  title.textContent = pts.length ? (kind === "cpu" ? pts[pts.length - 1] + "%" : fmtBytes(pts[pts.length - 1])) : "no samples yet";
  svg.append(title);
  return svg;
}

function addPoint(key, ts, cpu, rss) {
  const s = state.series[key] || (state.series[key] = []);
  s.push([ts, cpu, rss]);
  if (s.length > POINTS) s.splice(0, s.length - POINTS);
}

async function loadHistory() {
  try {
    const report = await api("/api/metrics?since=600");
    for (const [key, pts] of Object.entries(report.history.instances || {})) state.series[key] = pts.slice(-POINTS);
  } catch (e) { /* monitoring off: the charts fill from the stream */ }
}

function actionButton(action, row) {
  const b = el("button", {"data-action": action, "data-app": row.name, textContent: action});
  b.onclick = () => act(b, action, row);
  return b;
}

async function act(button, action, row) {
  if (!button.classList.contains("confirm")) {   // first click asks, the second acts
    button.classList.add("confirm"); button.textContent = action + "?";
    if (action === "scale") button.before(el("input", {class: "count", value: "+1", size: 4, title: "N, +N or -N"}));
    state.paused = true;   // the table is not redrawn while a question is open
    setTimeout(() => { state.paused = false; }, 8000);
    return;
  }
  state.paused = false;
  button.classList.remove("confirm"); button.textContent = action;
  const args = {target: row.name};
  if (action === "scale") {
    const input = button.parentNode.querySelector("input.count");
    args.count = input ? input.value.trim() : "";
    if (input) input.remove();
  }
  $("#action-result").textContent = `${action} ${row.name}...`;
  try {
    await api("/api/" + action, args);
    $("#action-result").textContent = `${action} ${row.name}: done`;
  } catch (e) { $("#action-result").textContent = `${action} ${row.name}: ${e.message}`; }
  refreshApps();
}

async function refreshApps() {
  if (state.paused) return;
  let rows;
  try { rows = await api("/api/apps"); } catch (e) { return; }
  if (state.paused) return;   // a question opened while the list was on its way
  const body = $("#apps tbody");
  body.replaceChildren(...rows.map((r) => {
    const key = `${r.name}:${r.instance}`;
    const acts = el("td", {class: "acts"});
    if (state.role === "full") {
      for (const a of ["restart", "reload", "stop", "scale", "rollback"]) if (state.ops["/api/" + a]) acts.append(actionButton(a, r));
      if (r.status === "stopped" && state.ops["/api/start"]) acts.append(actionButton("start", r));
    }
    return el("tr", {"data-app": r.name, "data-instance": r.instance},
      el("td", {}, r.id ?? ""), el("td", {}, r.name), el("td", {}, r.instance), el("td", {class: "pid"}, r.pid ?? ""),
      el("td", {class: r.status}, r.status), el("td", {class: "num"}, r.restarts), el("td", {}, fmtAge(r.started_at)),
      el("td", {class: "num"}, (r.cpu_percent ?? 0) + "%"), el("td", {class: "num"}, fmtBytes(r.memory_bytes || 0)),
      el("td", {}, chart("cpu", key)), el("td", {}, chart("mem", key)), acts);
  }));
  const names = [...new Set(rows.map((r) => r.name))];
  if (names.join() !== state.rowsKey) {
    state.rowsKey = names.join();
    $("#pick").replaceChildren(...names.map((n) => el("option", {value: n, textContent: n})));
    if (!names.includes(state.selected)) select(names[0] || ""); else $("#pick").value = state.selected;
  }
}

function redrawCharts() {
  for (const tr of document.querySelectorAll("#apps tbody tr")) {
    const key = `${tr.dataset.app}:${tr.dataset.instance}`;
    tr.children[9].replaceChildren(chart("cpu", key));
    tr.children[10].replaceChildren(chart("mem", key));
  }
}

// -- the live stream ---------------------------------------------------------------------------
function connect() {
  const source = new EventSource("/api/stream?metrics=2");
  state.source = source;
  source.onopen = () => { $("#live").textContent = "live"; $("#live").className = "on"; };
  source.onerror = () => { $("#live").textContent = "reconnecting"; $("#live").className = "off"; };
  source.addEventListener("metrics", (m) => {
    const data = JSON.parse(m.data);
    for (const i of data.instances || []) addPoint(`${i.app}:${i.instance}`, data.now, i.cpu ?? i.cpu_percent ?? 0, i.rss ?? i.memory ?? 0);
    redrawCharts();
  });
  source.addEventListener("event", (m) => {
    const ev = JSON.parse(m.data);
    if (ev.app === state.selected) $("#timeline").prepend(eventItem(ev));
    if (ev.kind === "alert") refreshAlerts();
    clearTimeout(state.pending); state.pending = setTimeout(refreshApps, 200);
  });
}

// -- the selected app: timeline and logs --------------------------------------------------------
function select(name) {
  state.selected = name; $("#pick").value = name;
  refreshTimeline(); refreshLogs();
}

function eventItem(ev) {
  const when = new Date(ev.ts * 1000).toLocaleTimeString();
  const item = el("li", {class: ev.kind === "alert" || ev.kind === "crash" ? "crash" : ""},
    `${when} ${ev.app}[${ev.instance ?? "-"}] ${ev.kind}: ${ev.message}`);
  const d = (ev.data && (ev.data.details || ev.data)) || {};
  if (d.exc_type || d.classification) {
    item.append(el("div", {}, `${d.exc_type || ""}: ${d.message || ""} (${d.classification || ""})`));
    if (d.frames) item.append(el("div", {class: "frames"}, d.frames.join("\n")));
  }
  return item;
}

async function refreshTimeline() {
  if (!state.selected) return;
  try {
    const events = await api(`/api/events?target=${encodeURIComponent(state.selected)}&limit=100`);
    $("#timeline").replaceChildren(...events.reverse().map(eventItem));
  } catch (e) { $("#timeline").replaceChildren(el("li", {class: "error"}, e.message)); }
}

async function refreshLogs() {
  if (!state.selected) return;
  const q = new URLSearchParams({target: state.selected, lines: "200", grep: $("#grep").value});
  try {
    const lines = await api("/api/logs?" + q);
    const pre = $("#logs");
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = lines.map((l) => `${l.stream === "err" ? "err" : "out"} | ${l.line}`).join("\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  } catch (e) { $("#logs").textContent = e.message; }
}

async function refreshAlerts() {
  try {
    const data = await api("/api/alerts?limit=30");
    const list = Array.isArray(data) ? data : (data.alerts || []);
    $("#alerts").replaceChildren(...list.map((a) => el("li", {}, `${a.ts ? new Date(a.ts * 1000).toLocaleString() + " " : ""}${a.severity || ""} ${a.title || a.message || JSON.stringify(a)}`)));
  } catch (e) { $("#alerts").replaceChildren(el("li", {class: "error"}, e.message)); }
}

async function refreshJobs() {
  if (!state.ops["/api/jobs"]) return;
  try { $("#jobs").textContent = JSON.stringify(await api("/api/jobs"), null, 1); } catch (e) { $("#jobs").textContent = e.message; }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#host").textContent = location.host;
  $("#login-form").onsubmit = async (e) => {
    e.preventDefault();
    if (await login($("#token").value.trim())) { $("#token").value = ""; start(); }
  };
  $("#logout").onclick = async () => { await fetch("/api/logout", {method: "POST", credentials: "same-origin"}); showLogin(""); };
  $("#pick").onchange = () => select($("#pick").value);
  $("#grep").oninput = () => refreshLogs();
  start();
});
