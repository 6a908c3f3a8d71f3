// voxflow dashboard: polls the admin API (no build step, no dependencies).
// An admin token, when the engine requires one, is given once as #token=... in the URL and
// kept in sessionStorage, so it never appears in server logs or later links.
"use strict";

const POLL_LISTS_MS = 1000;
const POLL_TIMELINE_MS = 400;
const OK_OUTCOMES = new Set(["ok", "no_action", "sent", "buffered"]);

const state = { selected: null, liveIds: new Set(), simulatedIds: new Set(), timelineKey: "" };

function token() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("voxflow-admin-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("voxflow-admin-token");
}

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

function showError(error) {
  document.getElementById("error").textContent = error ? String(error.message || error) : "";
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function clock(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString();
}

// The fields a reader looks for first (the terminal view picks the same ones).
function detail(payload) {
  if (payload === null || payload === undefined) return "";
  if (typeof payload !== "object") return String(payload);
  for (const key of ["text", "ssml", "digit", "target_phone_number", "error", "reason"]) {
    if (payload[key] !== undefined && payload[key] !== null) return `${key}=${payload[key]}`;
  }
  const rest = Object.fromEntries(
    Object.entries(payload).filter(([k]) => !["type", "session", "session_id"].includes(k)));
  return Object.keys(rest).length ? JSON.stringify(rest).slice(0, 100) : "";
}

function select(callId) {
  state.selected = callId;
  state.timelineKey = "";
  refreshLists();
  refreshTimeline();
}

function renderLive(live) {
  const list = document.getElementById("live-calls");
  list.replaceChildren();
  state.liveIds = new Set(live.map((c) => c.call_id));
  state.simulatedIds = new Set(live.filter((c) => c.simulated).map((c) => c.call_id));
  if (!live.length) list.append(el("li", "no live calls", "empty"));
  for (const call of live) {
    const item = el("li", `${call.from_number} → ${call.to_number}` +
      (call.simulated ? " (simulated)" : ""));
    item.dataset.callId = call.call_id;
    item.title = call.call_id;
    if (call.call_id === state.selected) item.classList.add("selected");
    item.addEventListener("click", () => select(call.call_id));
    list.append(item);
  }
}

function renderRecent(recent) {
  const body = document.querySelector("#recent-calls tbody");
  body.replaceChildren();
  if (!recent.length) {
    const row = el("tr");
    const cell = el("td", "no calls recorded yet", "empty");
    cell.colSpan = 5;
    row.append(cell);
    body.append(row);
  }
  for (const call of recent) {
    const row = el("tr");
    row.dataset.callId = call.call_id;
    row.title = call.call_id;
    if (call.call_id === state.selected) row.classList.add("selected");
    row.append(el("td", clock(call.started_at)), el("td", call.from_number),
      el("td", call.to_number), el("td", call.transport),
      el("td", call.end_reason === null ? "live" : call.end_reason));
    row.addEventListener("click", () => select(call.call_id));
    body.append(row);
  }
}

function renderControls() {
  const live = state.liveIds.has(state.selected);
  const simulated = state.simulatedIds.has(state.selected);
  for (const key of document.querySelectorAll("#keypad .key")) key.disabled = !simulated;
  document.getElementById("hangup").disabled = !live;
  const pill = document.getElementById("call-state");
  pill.textContent = state.selected ? (live ? (simulated ? "live · simulated" : "live") : "ended")
    : "";
  pill.className = live ? "pill live" : "pill";
}

// Deliveries of one call are serial: the n-th delivery answers the n-th event, so an event's
// row can show how long the assistant took to answer it.
function eventLatencies(entries) {
  const waiting = [];
  const latency = new Map();
  for (const entry of entries) {
    if (entry.kind === "event") waiting.push(entry.seq);
    else if (entry.kind === "delivery" && entry.type !== "push" && waiting.length) {
      latency.set(waiting.shift(), entry);
    }
  }
  return latency;
}

function renderTimeline(data) {
  const call = data.call;
  document.getElementById("call-title").textContent = call
    ? `${call.from_number || "?"} → ${call.to_number || "?"}`
    : data.call_id;
  document.getElementById("call-title").title = data.call_id;
  const body = document.querySelector("#timeline tbody");
  const key = `${data.timeline.length}:${data.live}`;
  if (key === state.timelineKey) return;  // unchanged: keep the DOM (and any selection) stable
  state.timelineKey = key;
  body.replaceChildren();
  const answered = eventLatencies(data.timeline);
  for (const entry of data.timeline) {
    const row = el("tr", null, `kind-${entry.kind}`);
    row.dataset.kind = entry.kind;
    row.dataset.type = entry.type;
    const delivery = answered.get(entry.seq);
    const latencyMs = entry.latency_ms ?? (delivery ? delivery.latency_ms : null);
    const outcome = entry.outcome ?? (delivery ? delivery.outcome : null);
    const outcomeCell = el("td", outcome ?? "");
    if (outcome && !OK_OUTCOMES.has(outcome)) outcomeCell.className = "outcome-bad";
    row.append(
      el("td", `+${entry.offset_s.toFixed(3)} s`, "num"),
      el("td", entry.kind),
      el("td", entry.type),
      el("td", entry.secret ? `${detail(entry.payload)} (masked)` : detail(entry.payload)),
      outcomeCell,
      el("td", latencyMs === null ? "" : `${latencyMs.toFixed(1)} ms`, "num"),
    );
    body.append(row);
  }
}

async function refreshLists() {
  try {
    const [health, calls] = await Promise.all([api("/health"), api("/api/calls")]);
    const pill = document.getElementById("health");
    pill.textContent = `${health.status} · ${health.live_calls} live`;
    pill.className = health.status === "ok" ? "pill ok" : "pill bad";
    renderLive(calls.live);
    renderRecent(calls.recent);
    renderControls();
    showError(null);
  } catch (error) {
    document.getElementById("health").className = "pill bad";
    showError(error);
  }
}

async function refreshTimeline() {
  if (!state.selected) return;
  const callId = state.selected;
  try {
    const data = await api(`/api/calls/${encodeURIComponent(callId)}`);
    if (callId === state.selected) renderTimeline(data);
  } catch (error) {
    showError(error);
  }
}

async function startSimulatedCall() {
  try {
    const { call_id: callId } = await api("/api/simulated-calls", { method: "POST", body: "{}" });
    state.liveIds.add(callId);
    state.simulatedIds.add(callId);
    select(callId);
  } catch (error) {
    showError(error);
  }
}

async function pressKey(digit) {
  if (!state.selected) return;
  try {
    await api(`/api/calls/${encodeURIComponent(state.selected)}/dtmf`,
      { method: "POST", body: JSON.stringify({ digit }) });
    refreshTimeline();
  } catch (error) {
    showError(error);
  }
}

async function hangUp() {
  if (!state.selected) return;
  try {
    await api(`/api/calls/${encodeURIComponent(state.selected)}/hangup`, { method: "POST" });
  } catch (error) {
    showError(error);
  }
}

document.getElementById("start-sim").addEventListener("click", startSimulatedCall);
document.getElementById("hangup").addEventListener("click", hangUp);
for (const key of document.querySelectorAll("#keypad .key")) {
  key.addEventListener("click", () => pressKey(key.dataset.key));
}
renderControls();
refreshLists();
setInterval(refreshLists, POLL_LISTS_MS);
setInterval(refreshTimeline, POLL_TIMELINE_MS);
