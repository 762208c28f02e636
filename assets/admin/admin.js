// enginelabs-2api admin page: plain JS, no framework. Talks to /admin/api/* with the session
// cookie (sent by the browser; never readable here: HttpOnly). State-changing calls carry
// X-Admin-Request: 1, which the server requires of cookie sessions (CSRF).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  const method = opts.method || "GET";
  if (method !== "GET") headers["X-Admin-Request"] = "1";
  if (opts.json !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: opts.json !== undefined ? JSON.stringify(opts.json) : undefined,
  });
  if (resp.status === 401) {
    location.reload(); // the session ended: back to the login form
    throw new Error("logged out");
  }
  return resp;
}

async function apiJson(path, opts) {
  const resp = await api(path, opts);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const msg = (body.error && body.error.message) || `HTTP ${resp.status}`;
    throw new Error(msg);
  }
  return body;
}

// ---------- tabs ----------
const TABS = ["overview", "accounts", "playground", "settings"];
let timer = null;

function show(tab) {
  if (!TABS.includes(tab)) tab = "overview";
  for (const t of TABS) {
    $(`#view-${t}`).hidden = t !== tab;
    $(`nav a[data-tab="${t}"]`).classList.toggle("active", t === tab);
  }
  clearInterval(timer);
  timer = null;
  if (tab === "overview") { loadOverview(); timer = setInterval(loadOverview, 5000); }
  if (tab === "accounts") { loadAccounts(); timer = setInterval(loadAccounts, 5000); }
  if (tab === "playground") loadModels();
  if (tab === "settings") loadSettings();
}

window.addEventListener("hashchange", () => show(location.hash.slice(1)));

// ---------- overview ----------
function fmtDuration(secs) {
  const d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600),
    m = Math.floor(secs % 3600 / 60), s = secs % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

const ms = (v) => (v == null ? "-" : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(2)} s`);

async function loadOverview() {
  try {
    const o = await apiJson("/admin/api/overview?minutes=5");
    const t = o.traffic;
    $("#ov-uptime").textContent = fmtDuration(o.uptime_secs);
    $("#ov-version").textContent = o.version;
    $("#ov-rpm").textContent = t.requests_per_minute.toFixed(1);
    $("#ov-errors").textContent = `${(t.error_rate * 100).toFixed(1)} %`;
    $("#ov-ttfb").textContent = `${ms(t.ttfb_p50_ms)} / ${ms(t.ttfb_p95_ms)}`;
    $("#ov-accounts").textContent = `${o.accounts.active} / ${o.accounts.total}`;
    $("#ov-protocol").textContent = o.upstream_protocol;
    $("#ov-store").textContent = o.store_backend;
    $("#ov-context").textContent = String(o.context_turns);
    drawChart(t.points);
  } catch (e) {
    console.warn(e);
  }
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function drawChart(points) {
  const c = $("#chart");
  c.replaceChildren();
  const W = 600, H = 180, L = 34, R = 40, T = 8, B = 18;
  const w = W - L - R, h = H - T - B;
  const n = points.length || 1;
  const maxReq = Math.max(1, ...points.map((p) => p.requests));
  const maxMs = Math.max(1, ...points.map((p) => p.ttfb_p95_ms || 0));
  for (let i = 0; i <= 4; i++) {
    const y = T + h * i / 4;
    c.append(svg("line", { x1: L, x2: L + w, y1: y, y2: y, class: "grid" }));
  }
  const lab = (x, y, text, anchor) => {
    const t = svg("text", { x, y, class: "axis", "text-anchor": anchor });
    t.textContent = text;
    c.append(t);
  };
  lab(L - 4, T + 8, String(maxReq), "end");
  lab(L - 4, T + h, "0", "end");
  lab(L + w + 4, T + 8, ms(maxMs), "start");
  lab(L, H - 4, "-5 min", "start");
  lab(L + w, H - 4, "now", "end");
  const bw = w / n;
  points.forEach((p, i) => {
    const x = L + i * bw;
    const rh = h * p.requests / maxReq;
    if (p.requests) c.append(svg("rect", { x: x + 1, y: T + h - rh, width: Math.max(1, bw - 2), height: rh, class: "bar-req" }));
    const eh = h * p.errors / maxReq;
    if (p.errors) c.append(svg("rect", { x: x + 1, y: T + h - eh, width: Math.max(1, bw - 2), height: eh, class: "bar-err" }));
  });
  for (const [key, cls] of [["ttfb_p50_ms", "p50"], ["ttfb_p95_ms", "p95"]]) {
    let d = "";
    points.forEach((p, i) => {
      if (p[key] == null) return;
      const x = L + i * bw + bw / 2, y = T + h - h * p[key] / maxMs;
      d += `${d ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
      c.append(svg("circle", { cx: x, cy: y, r: 3, class: `dot-${cls}` }));
    });
    if (d) c.append(svg("path", { d, class: `line-${cls}` }));
  }
}

// ---------- accounts ----------
function ago(msEpoch) {
  if (!msEpoch) return "never";
  const s = Math.max(0, Math.round((Date.now() - msEpoch) / 1000));
  return `${fmtDuration(s)} ago`;
}

function credits(q) {
  if (!q) return "-";
  const used = q.used == null ? "?" : q.used;
  const limit = q.limit == null ? "?" : q.limit;
  let s = `${used} / ${limit} today`;
  if (q.weekly_limit != null) s += ` (week ${q.weekly_limit})`;
  if (q.exhausted) s += " exhausted (resets with the upstream's daily quota)";
  return s;
}

async function loadAccounts() {
  let data;
  try {
    data = await apiJson("/admin/api/accounts");
  } catch (e) {
    return;
  }
  const body = $("#accounts-table tbody");
  body.replaceChildren();
  for (const a of data.data) {
    const state = el("span", { class: `state state-${a.state}`, text: a.state });
    const stateCell = el("td", { "data-label": "State" }, state);
    if (a.reason) stateCell.append(el("div", { class: "muted small", text: a.reason }));
    if (a.cooling_for_secs) stateCell.append(el("div", { class: "muted small", text: `for ${fmtDuration(a.cooling_for_secs)}` }));
    if (a.breaker && a.breaker !== "closed") stateCell.append(el("div", { class: "muted small", text: `breaker ${a.breaker}` }));
    const actions = el("td", { "data-label": "Actions" });
    const act = (label, cls, fn) => {
      const b = el("button", { type: "button", class: `small ${cls}`, "data-action": label.toLowerCase() }, label);
      b.addEventListener("click", async () => {
        b.disabled = true;
        try { await fn(); } catch (e) { alert(`${label}: ${e.message}`); }
        loadAccounts();
      });
      actions.append(b);
    };
    const id = encodeURIComponent(a.id);
    if (a.state === "disabled") act("Enable", "ghost", () => apiJson(`/admin/api/accounts/${id}/enable`, { method: "POST" }));
    else act("Disable", "ghost", () => apiJson(`/admin/api/accounts/${id}/disable`, { method: "POST" }));
    act("Check", "ghost", () => apiJson(`/admin/api/accounts/${id}/check`, { method: "POST" }));
    act("Remove", "danger", async () => {
      if (!confirm(`Remove account ${a.label}?`)) return;
      await apiJson(`/admin/api/accounts/${id}`, { method: "DELETE" });
    });
    body.append(el("tr", { "data-id": a.id, "data-label-name": a.label },
      el("td", { "data-label": "Label", class: "wrap", text: `${a.label}${a.origin === "admin" ? " (added here)" : ""}` }),
      el("td", { "data-label": "Clerk user", class: "wrap", text: a.kind === "cli" ? "(cto login)" : (a.user_id || "(not discovered yet)") }),
      stateCell,
      el("td", { "data-label": "Model", text: a.model || "-" }),
      el("td", { "data-label": "In flight", text: `${a.in_flight} / ${a.limit}` }),
      el("td", { "data-label": "Credits", text: credits(a.quota) }),
      el("td", { "data-label": "Last error", class: "wrap", text: a.last_error || "-" }),
      el("td", { "data-label": "Last success", text: ago(a.last_success_ms) }),
      actions));
  }
  $("#accounts-queued").textContent = `${data.data.length} account(s), ${data.queued} request(s) waiting for a slot.`;
}

$("#add-kind").addEventListener("change", () => {
  $("#add-secret-label").innerHTML = $("#add-kind").value === "cookie"
    ? "Cookie of a logged-in cto.new browser session (the whole <code>Cookie:</code> header or the <code>__client</code> value)"
    : "Refresh token from <code>cto login</code> (or the whole JSON of <code>~/.cto/credentials</code>)";
});

$("#add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = $("#add-result");
  const secret = $("#add-cookie").value.trim();
  const kind = $("#add-kind").value;
  const label = $("#add-label").value.trim();
  out.className = "muted";
  out.textContent = "Validating...";
  $("#add-submit").disabled = true;
  try {
    const body = { [kind]: secret };
    if (label) body.label = label;
    const v = await apiJson("/admin/api/accounts", { method: "POST", json: body });
    out.className = "ok";
    out.textContent = v.kind === "cli"
      ? `Added ${v.label}: cto login ${v.id}, state ${v.state}.`
      : `Added ${v.label}: Clerk user ${v.user_id || "?"}, state ${v.state}.`;
    $("#add-cookie").value = "";
    $("#add-label").value = "";
  } catch (e) {
    out.className = "error";
    out.textContent = `Refused: ${e.message}`;
  } finally {
    $("#add-submit").disabled = false;
    loadAccounts();
  }
});

// ---------- playground ----------
let history = [];
let modelsLoaded = false;

async function loadModels() {
  if (modelsLoaded) return;
  try {
    const m = await apiJson("/admin/api/models");
    const sel = $("#pg-model");
    sel.replaceChildren(...m.data.map((x) => el("option", { value: x.id, text: x.id })));
    modelsLoaded = true;
  } catch (e) {
    $("#pg-status").textContent = `Could not load models: ${e.message}`;
  }
}

function bubble(role, text) {
  const b = el("div", { class: `msg ${role}` }, el("span", { class: "who", text: role === "user" ? "You" : "Assistant" }));
  const t = el("div", { class: "text", text });
  b.append(t);
  $("#pg-transcript").append(b);
  return b;
}

// Reads an SSE body with fetch + ReadableStream; calls onData with each `data:` payload.
async function readSse(resp, onData) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (data) onData(data);
    }
  }
}

$("#pg-new").addEventListener("click", () => {
  history = [];
  $("#pg-transcript").replaceChildren();
  $("#pg-status").textContent = "New conversation.";
});

$("#pg-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("#pg-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  history.push({ role: "user", content: text });
  bubble("user", text);
  const b = el("div", { class: "msg assistant" }, el("span", { class: "who", text: "Assistant" }));
  const details = el("details", { class: "reasoning" }, el("summary", { text: "Reasoning" }));
  const reasoningText = el("div", { class: "reasoning-text" });
  details.append(reasoningText);
  details.hidden = true;
  const answer = el("div", { class: "answer" });
  b.append(details, answer);
  $("#pg-transcript").append(b);
  const status = $("#pg-status");
  status.textContent = "Waiting for the first token...";
  $("#pg-send").disabled = true;
  let content = "";
  try {
    const resp = await api("/admin/api/chat", {
      method: "POST",
      json: { model: $("#pg-model").value, messages: history, stream: true },
    });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || `HTTP ${resp.status}`);
    }
    status.textContent = "Streaming...";
    await readSse(resp, (data) => {
      if (data === "[DONE]") return;
      let chunk;
      try { chunk = JSON.parse(data); } catch { return; }
      if (chunk.error) throw new Error(chunk.error.message || "stream error");
      const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
      if (delta.reasoning_content) {
        details.hidden = false;
        reasoningText.textContent += delta.reasoning_content;
      }
      if (delta.content) {
        content += delta.content;
        answer.textContent = content;
      }
    });
    history.push({ role: "assistant", content });
    b.classList.add("done");
    status.textContent = `Done. ${history.length} messages in this conversation.`;
  } catch (e) {
    history.pop();
    answer.append(el("p", { class: "error", text: `Error: ${e.message}` }));
    status.textContent = "";
  } finally {
    $("#pg-send").disabled = false;
  }
});

// ---------- settings ----------
function flatten(obj, prefix, out) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out.push([key, Array.isArray(v) ? v.map((x) => (x && typeof x === "object" ? Object.entries(x).map(([a, b]) => `${a}=${b}`).join(" ") : x)).join(", ") : v == null ? "(unset)" : String(v)]);
  }
  return out;
}

async function loadSettings() {
  try {
    const s = await apiJson("/admin/api/settings");
    const body = $("#settings-table tbody");
    body.replaceChildren(...flatten(s, "", []).map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: v }))));
  } catch (e) {
    console.warn(e);
  }
}

show(location.hash.slice(1));
