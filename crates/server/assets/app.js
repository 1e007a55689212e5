// The Conveyor dashboard: plain JS, no framework, no build step, nothing from another origin.
// It asks for an API key (kept in sessionStorage), then polls the operations API every 2 s.
// Every value the server sends is written with textContent (never as HTML).

import { $, el, DASH, present, fmtCount, fmtSecs, fmtTime, pick, syncRows } from "./dom.js";
import { drawBars, drawThroughput, drawLatency } from "./charts.js";

const POLL_MS = 2000;
const ANALYTICS_EVERY = 5; // polls between two analytics reads
const DEAD_PAGE = 50;

const state = {
  key: sessionStorage.getItem("conveyor.key") || "",
  namespace: sessionStorage.getItem("conveyor.namespace") || "",
  analyticsKey: sessionStorage.getItem("conveyor.analyticsKey") || "",
  ops: null,
  queues: [],
  activity: new Map(), // queue id -> activity object from GET /v1/activity
  activityRoute: true, // false once GET /v1/activity answered 404
  selected: sessionStorage.getItem("conveyor.selected") || "",
  deadCursor: null,
  deadExtra: false,
  openHistories: new Set(),
  ticks: 0,
  timer: null,
  busy: false,
};

// ---- the API ----

class ApiFailure extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

/** `method path` with `key` (the session's by default); the JSON answer, or ApiFailure. */
async function api(method, path, body, key) {
  const headers = { Authorization: `Bearer ${key || state.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  if (!response.ok) {
    const message = (json && json.error) || text || response.statusText;
    const field = json && json.field ? ` (${json.field})` : "";
    throw new ApiFailure(response.status, `${method} ${path}: ${response.status} ${message}${field}`, json && json.field);
  }
  return json;
}

/** `path` with `params` (absent / empty ones left out) and the operator's namespace. */
function opsPath(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (present(value) && value !== "") query.set(name, value);
  }
  if (state.namespace && state.ops && state.ops.role === "operator") query.set("namespace", state.namespace);
  const q = query.toString();
  return q ? `${path}?${q}` : path;
}

const queueId = (q) => `${q.event_type}:${q.routing_key || ""}${q.subscription ? `#${q.subscription}` : ""}`;
const queueLabel = (q) => `${q.event_type}${q.routing_key ? ` / ${q.routing_key}` : ""}${q.subscription ? ` #${q.subscription}` : ""}`;
const queuePath = (q, tail, extra) =>
  opsPath(`/v1/queues/${encodeURIComponent(q.event_type)}${tail}`, { routing_key: q.routing_key, subscription: q.subscription, ...extra });
const readOnly = () => !state.ops || state.ops.read_only || state.ops.role !== "operator";

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

// ---- sign in / out ----

async function signIn() {
  try {
    state.ops = await api("GET", "/v1/ops" + (state.namespace ? `?namespace=${encodeURIComponent(state.namespace)}` : ""));
  } catch (e) {
    state.ops = null;
    showError(e.status === 401 ? "Unknown API key." : e.message);
    showLogin();
    return;
  }
  showError("");
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("whoami").hidden = false;
  $("ops-namespace").textContent = state.ops.namespace;
  $("ops-role").textContent = state.ops.role;
  $("ops-read-only").hidden = !readOnly();
  document.body.dataset.readOnly = String(readOnly());
  for (const node of document.querySelectorAll(".mutating")) node.hidden = readOnly();
  if (!state.analyticsKey && state.ops.role === "tenant") state.analyticsKey = state.key;
  $("analytics-key").value = state.analyticsKey;
  state.ticks = 0;
  await tick();
  if (state.timer) clearInterval(state.timer);
  state.timer = setInterval(tick, POLL_MS);
}

function showLogin() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  $("login").hidden = false;
  $("dashboard").hidden = true;
  $("whoami").hidden = true;
  $("api-key").value = "";
  $("namespace-input").value = state.namespace;
}

function signOut() {
  for (const name of ["key", "namespace", "analyticsKey", "selected"]) sessionStorage.removeItem(`conveyor.${name}`);
  Object.assign(state, { key: "", namespace: "", analyticsKey: "", ops: null, selected: "" });
  showError("");
  showLogin();
}

// ---- polling ----

async function tick() {
  if (state.busy || !state.ops) return;
  state.busy = true;
  try {
    const body = await api("GET", opsPath("/v1/queues"));
    state.queues = (body && body.queues) || [];
    await loadActivity();
    renderQueues();
    await refreshSelected();
    if (state.ticks % ANALYTICS_EVERY === 0) await refreshAnalytics();
    $("last-update").textContent = `updated ${new Date().toLocaleTimeString("en-GB")}`;
    showError("");
  } catch (e) {
    if (e.status === 401) {
      signOut();
      showError("The API key is no longer accepted.");
    } else {
      showError(e.message);
    }
  } finally {
    state.ticks += 1;
    state.busy = false;
  }
}

/** Per-queue activity when the server has a separate route for it (else it is in QueueStats). */
async function loadActivity() {
  if (!state.activityRoute || state.queues.every((q) => present(q.activity))) return;
  try {
    const body = await api("GET", opsPath("/v1/activity"));
    const rows = Array.isArray(body) ? body : (body && (body.activity || body.queues)) || [];
    state.activity = new Map(rows.filter((r) => r && r.queue).map((r) => [queueId(r.queue), r]));
  } catch (e) {
    // optional: a server without the route, or a key it refuses, just shows "–"
    if (e.status === 404 || e.status === 405) state.activityRoute = false;
  }
}

const activityOf = (q) => q.activity || state.activity.get(queueId(q.queue)) || {};

// ---- the queues table ----

const COLUMNS = [
  ["due", (q) => fmtCount(q.due)],
  ["scheduled", (q) => fmtCount(q.scheduled)],
  ["in_flight", (q) => (present(q.max_in_flight) ? `${fmtCount(q.in_flight)} / ${fmtCount(q.max_in_flight)}` : fmtCount(q.in_flight))],
  ["retrying", (q) => fmtCount(q.retrying)],
  ["dead", (q) => fmtCount(q.dead)],
  ["waiting", (q) => fmtCount(q.waiting)],
  ["parked_keys", (q) => fmtCount(q.parked_keys)],
  ["delivered", (q) => fmtCount(q.delivered)],
  ["enqueued_total", (q) => fmtCount(q.enqueued_total)],
  ["completed_total", (q) => fmtCount(q.completed_total)],
  ["failed_total", (q) => fmtCount(q.failed_total)],
  ["dead_total", (q) => fmtCount(q.dead_total)],
  ["oldest_due_age_secs", (q) => (q.due ? fmtSecs(q.oldest_due_age_secs) : DASH)],
  ["workers", (q) => fmtCount(pick(q, "workers") ?? pick(activityOf(q), "workers", "live_workers"))],
  ["paused", (q) => (q.paused ? "paused" : "running")],
];

function renderQueues() {
  const queues = [...state.queues].sort((a, b) => queueId(a.queue).localeCompare(queueId(b.queue)));
  $("queues-empty").hidden = queues.length > 0;
  syncRows(
    $("queues").tBodies[0],
    queues,
    (q) => queueId(q.queue),
    (q) => {
      const tr = el("tr", {
        "data-queue": queueId(q.queue),
        "data-event-type": q.queue.event_type,
        "data-routing-key": q.queue.routing_key || "",
      });
      const name = el("button", { type: "button", class: "link", "data-action": "select" }, queueLabel(q.queue));
      name.addEventListener("click", () => select(queueId(q.queue)));
      tr.append(el("td", {}, name));
      for (const [field] of COLUMNS) tr.append(el("td", { "data-field": field }));
      tr.append(el("td", { class: "actions" }));
      return tr;
    },
    (tr, q) => {
      tr.classList.toggle("selected", queueId(q.queue) === state.selected);
      tr.classList.toggle("paused", !!q.paused);
      for (const [field, show] of COLUMNS) {
        const td = tr.querySelector(`td[data-field="${field}"]`);
        td.textContent = show(q);
        const raw = field === "workers" ? pick(q, "workers") ?? pick(activityOf(q), "workers", "live_workers") : q[field];
        if (present(raw)) td.dataset.value = String(raw);
        else delete td.dataset.value;
      }
      const actions = tr.querySelector("td.actions");
      const action = q.paused ? "resume" : "pause";
      const current = actions.querySelector("button");
      if (readOnly()) {
        actions.replaceChildren();
      } else if (!current || current.dataset.action !== action) {
        const button = el("button", { type: "button", "data-action": action }, q.paused ? "Resume" : "Pause");
        button.addEventListener("click", () => mutate("POST", queuePath(q.queue, `/${action}`)));
        actions.replaceChildren(button);
      }
    },
  );
}

function select(id) {
  state.selected = id;
  sessionStorage.setItem("conveyor.selected", id);
  state.deadCursor = null;
  state.deadExtra = false;
  $("dead-letters").tBodies[0].replaceChildren();
  renderQueues();
  refreshSelected().catch((e) => showError(e.message));
}

const selectedQueue = () => state.queues.find((q) => queueId(q.queue) === state.selected);

/** Run a mutating request, show its answer's failure if any, then refresh at once. */
async function mutate(method, path, body) {
  try {
    const answer = await api(method, path, body);
    await tick();
    return answer;
  } catch (e) {
    showError(e.message);
    return null;
  }
}

// ---- the selected queue: charts, dead letters, parked keys ----

async function refreshSelected() {
  const q = selectedQueue();
  $("queue-detail").hidden = !q;
  if (!q) return;
  $("selected-queue").textContent = queueLabel(q.queue);
  $("queue-detail").dataset.queue = queueId(q.queue);
  drawThroughput($("chart-throughput"), activityOf(q));
  drawLatency($("chart-latency"), activityOf(q));
  const [dead, parked] = await Promise.all([
    state.deadExtra ? null : api("GET", dlPath(q, null)),
    api("GET", queuePath(q.queue, "/parked-keys", { limit: 100 })),
  ]);
  if (dead) {
    renderDeadLetters(q, dead.dead_letters || [], false);
    state.deadCursor = dead.next_cursor || null;
    $("dead-letters-more").hidden = !state.deadCursor;
  }
  renderParked(q, (parked && parked.parked_keys) || []);
}

function dlPath(q, cursor) {
  return opsPath("/v1/dead-letters", {
    queue: q.queue.event_type,
    routing_key: q.queue.routing_key,
    subscription: q.queue.subscription,
    cursor,
    limit: DEAD_PAGE,
  });
}

async function moreDeadLetters() {
  const q = selectedQueue();
  if (!q || !state.deadCursor) return;
  try {
    const page = await api("GET", dlPath(q, state.deadCursor));
    state.deadExtra = true;
    renderDeadLetters(q, page.dead_letters || [], true);
    state.deadCursor = page.next_cursor || null;
    $("dead-letters-more").hidden = !state.deadCursor;
  } catch (e) {
    showError(e.message);
  }
}

function renderDeadLetters(q, letters, append) {
  const tbody = $("dead-letters").tBodies[0];
  const items = append ? [...tbody.children].map((tr) => tr._letter).concat(letters) : letters;
  $("dead-letters-empty").hidden = items.length > 0;
  syncRows(
    tbody,
    items,
    (d) => String(d.id),
    (d) => {
      const tr = el("tr", { "data-event-id": d.id });
      const history = el("details", { class: "history" });
      history.addEventListener("toggle", () => {
        if (history.open) state.openHistories.add(d.id);
        else state.openHistories.delete(d.id);
      });
      tr.append(
        el("td", {}, String(d.id)),
        el("td", { "data-field": "attempts" }),
        el("td", { "data-field": "died_at" }),
        el("td", { "data-field": "last_error", class: "error-text" }),
        el("td", {}, history),
        el("td", { class: "actions" }),
      );
      const actions = tr.querySelector("td.actions");
      const show = el("button", { type: "button", "data-action": "show" }, "Show");
      show.addEventListener("click", () => showEvent(d.id));
      actions.append(show);
      if (!readOnly()) {
        const replay = el("button", { type: "button", "data-action": "replay" }, "Replay");
        replay.addEventListener("click", () => mutate("POST", opsPath("/v1/events/replay"), { ids: [d.id] }));
        actions.append(replay);
      }
      return tr;
    },
    (tr, d) => {
      tr._letter = d;
      tr.querySelector('[data-field="attempts"]').textContent = fmtCount(d.attempts);
      tr.querySelector('[data-field="died_at"]').textContent = fmtTime(d.died_at);
      tr.querySelector('[data-field="last_error"]').textContent = d.last_error || DASH;
      const history = tr.querySelector("details");
      const errors = d.errors || [];
      history.open = state.openHistories.has(d.id);
      history.replaceChildren(
        el("summary", {}, `${errors.length} error${errors.length === 1 ? "" : "s"}`),
        el("ol", {}, ...errors.map((e) =>
          el("li", { "data-attempt": e.attempt }, `#${e.attempt} ${fmtTime(e.at)}${e.worker ? ` (${e.worker})` : ""}: ${e.error}`))),
      );
    },
  );
}

function renderParked(q, keys) {
  $("parked-keys-empty").hidden = keys.length > 0;
  syncRows(
    $("parked-keys").tBodies[0],
    keys,
    (k) => k.ordering_key,
    (k) => {
      const tr = el("tr", { "data-ordering-key": k.ordering_key },
        el("td", {}, k.ordering_key), el("td", {}, String(k.event_id)), el("td", {}, fmtTime(k.parked_at)),
        el("td", { class: "actions" }));
      if (!readOnly()) {
        const skip = el("button", { type: "button", "data-action": "skip" }, "Skip");
        skip.addEventListener("click", () =>
          mutate("POST", queuePath(q.queue, `/parked-keys/${encodeURIComponent(k.ordering_key)}/skip`)));
        tr.querySelector("td.actions").append(skip);
      }
      return tr;
    },
    () => {},
  );
}

// ---- one event ----

async function showEvent(id) {
  $("event-id").value = String(id);
  const path = opsPath(`/v1/events/${encodeURIComponent(String(id).trim())}`);
  try {
    const record = await api("GET", path);
    $("event-summary").hidden = false;
    $("event-status").textContent = record.status || DASH;
    $("event-status").dataset.status = record.status || "";
    $("event-queue").textContent = record.queue ? queueLabel(record.queue) : DASH;
    $("event-attempts").textContent = fmtCount(record.attempts);
    $("event-json").hidden = false;
    $("event-json").textContent = JSON.stringify(record, null, 2);
    renderEventActions(record);
    showError("");
  } catch (e) {
    $("event-summary").hidden = true;
    $("event-json").hidden = true;
    showError(e.message);
  }
}

/** Replay (dead or cancelled) or cancel (not finished) the shown event, operators only. */
function renderEventActions(record) {
  document.querySelector("#event-lookup .actions")?.remove();
  if (readOnly()) return;
  const actions = el("div", { class: "actions toolbar" });
  const again = () => showEvent(record.id);
  if (record.status === "dead" || record.status === "cancelled") {
    const replay = el("button", { type: "button", id: "event-replay" }, "Replay");
    replay.addEventListener("click", async () => { await mutate("POST", opsPath("/v1/events/replay"), { ids: [record.id] }); again(); });
    actions.append(replay);
  } else if (record.status !== "delivered") {
    const reason = el("input", { type: "text", id: "cancel-reason", placeholder: "reason (optional)", maxlength: 1000 });
    const cancel = el("button", { type: "button", id: "event-cancel", class: "danger" }, "Cancel");
    cancel.addEventListener("click", async () => {
      const body = { ids: [record.id] };
      if (reason.value.trim()) body.reason = reason.value.trim();
      await mutate("POST", opsPath("/v1/events/cancel"), body);
      again();
    });
    actions.append(reason, cancel);
  }
  $("event-summary").after(actions);
}

// ---- pipeline analytics (tenant routes) ----

async function refreshAnalytics() {
  const key = state.analyticsKey;
  $("analytics-body").hidden = !key;
  if (!key) return;
  const days = [];
  for (let i = 6; i >= 0; i--) days.push(new Date(Date.now() - i * 86400000).toISOString().slice(0, 10));
  const perDay = new Map(days.map((d) => [d, 0]));
  let cursor = null;
  for (let page = 0; page < 10; page++) {
    const body = await api("GET", `/v1/analytics/events/daily?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, undefined, key);
    for (const row of body.data || []) perDay.set(row.day, (perDay.get(row.day) || 0) + row.count);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  drawBars($("chart-daily"), days.map((d) => d.slice(5)), [{ name: "events", cls: "ok", values: days.map((d) => perDay.get(d)) }]);
  const types = await api("GET", "/v1/analytics/event-types", undefined, key);
  syncRows($("event-types").tBodies[0], (types.data || []).slice(0, 10), (t) => t.event_type,
    (t) => el("tr", { "data-event-type": t.event_type }, el("td", {}, t.event_type), el("td", { "data-field": "count" })),
    (tr, t) => {
      const td = tr.querySelector('[data-field="count"]');
      td.textContent = fmtCount(t.count);
      td.dataset.value = String(t.count);
    });
}

// ---- wiring ----

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("api-key").value.trim();
    state.namespace = $("namespace-input").value.trim();
    sessionStorage.setItem("conveyor.key", state.key);
    sessionStorage.setItem("conveyor.namespace", state.namespace);
    signIn();
  });
  $("sign-out").addEventListener("click", signOut);
  $("event-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showEvent($("event-id").value);
  });
  $("analytics-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.analyticsKey = $("analytics-key").value.trim();
    sessionStorage.setItem("conveyor.analyticsKey", state.analyticsKey);
    refreshAnalytics().catch((e) => showError(e.message));
  });
  $("dead-letters-more").addEventListener("click", moreDeadLetters);
  $("replay-all").addEventListener("click", async () => {
    const q = selectedQueue();
    if (q && confirm(`Replay every dead letter of ${queueLabel(q.queue)}?`)) await mutate("POST", queuePath(q.queue, "/replay"));
  });
  $("purge").addEventListener("click", async () => {
    const q = selectedQueue();
    if (q && confirm(`Delete every dead letter of ${queueLabel(q.queue)}? This cannot be undone.`)) await mutate("POST", queuePath(q.queue, "/purge"));
  });
  if (state.key) signIn();
  else showLogin();
});
