// The alarm console: the active alarm list, the park plan, counts, an alarm's detail with its
// trend and journal, operator actions, live updates from the hub's SSE stream (with a fallback
// poll) and audible annunciation. No build step: plain ES modules served by the hub.

import { Api, ApiError, Stream, initialToken, storeToken } from "./api.js";
import { applyStatic, initLang, lang, setLang, t } from "./i18n.js";
import { drawPlan, esc, legendHtml, localName } from "./plan.js";
import { parkDetailHtml } from "./province.js";
import { Annunciator } from "./sound.js";
import { drawTrend, everyFor, fmtNum } from "./trend.js";

const PRIORITIES = ["critical", "high", "medium", "low"];
const PRIO_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
const SHOWN = new Set(["unacknowledged", "acknowledged", "rtn_unacknowledged", "latched"]);
const HIDDEN = new Set(["shelved", "suppressed", "out_of_service"]);
const POLL_LIVE_S = 30; // full refresh while the stream is up
const POLL_DOWN_S = 5; // while it is down
const ACTIONS = ["acknowledge", "reset", "shelve", "unshelve", "out-of-service", "return-to-service", "dispose"];
// The closed loop (docs/console.md): tiers yellow and above need a disposal record per episode.
const DISPOSAL_PRIORITIES = new Set(["critical", "high", "medium"]);

const $ = (id) => document.getElementById(id);

const S = {
  api: null,
  stream: null,
  me: null,
  plant: null,
  entById: new Map(),
  hsById: new Map(),
  tags: new Map(), // "enterprise|tag" -> tag
  alarms: new Map(), // id -> alarm, every alarm not normal
  firstOuts: new Set(),
  lastSeq: new Map(), // alarm id -> last event seq applied
  latest: new Map(), // "enterprise|tag" -> {ts, value, quality}
  loaded: false,
  view: "active",
  unackOnly: false,
  filter: null, // {kind: "hs"|"ent", id}
  expanded: new Set(), // ids of parent alarms whose grouped children are shown under them
  detail: null, // {id, alarm, journal}
  trend: null, // {enterprise, tag, rangeS, points, live, everyS, startMs, endMs, message}
  reachable: true,
  unreachableSince: 0,
  unreachableError: "",
  session: 0, // bumped at every sign-in and sign-out: late work of an ended session is dropped
  streamUp: false, // the current session's stream has opened and not failed since
  streamDownSince: Date.now(),
  refreshTimer: null,
  pollTimer: null,
  action: null, // {id, act}
  provinceParks: null, // the park list as last loaded (province mode; null: not in it)
  provincePark: null, // the park whose drill-down is open
  provinceDetail: null, // {park, readings} as last loaded for it
  provinceLoads: 0, // bumped per drill-down load: a late answer for another park is dropped
};

const annunciator = new Annunciator((state) => {
  document.body.dataset.sound = state;
  renderSoundButtons();
});

// ---- helpers --------------------------------------------------------------------------------

const pad2 = (n) => String(n).padStart(2, "0");

function fmtTime(ms, full = false) {
  if (!Number.isFinite(ms)) return "—";
  const d = new Date(ms);
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  const date = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  if (full) return `${date} ${time}`;
  const now = new Date();
  return d.toDateString() === now.toDateString() ? time : `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${time}`;
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return t("time.ago.s", { n: s });
  if (s < 3600) return t("time.ago.m", { n: Math.floor(s / 60) });
  if (s < 86400) return t("time.ago.h", { n: Math.floor(s / 3600) });
  return t("time.ago.d", { n: Math.floor(s / 86400) });
}

const tagKey = (enterprise, tag) => `${enterprise}|${tag}`;

function entName(id) {
  const ent = S.entById.get(id);
  return ent ? localName(ent) : id;
}

function hsName(id) {
  if (!id) return "—";
  const hs = S.hsById.get(id);
  return hs ? localName(hs) : id;
}

function waitsForAck(a) {
  return !a.acknowledged && (a.state === "unacknowledged" || a.state === "rtn_unacknowledged" || a.state === "latched");
}

/** Sounds: an active alarm not yet acknowledged, or a latched one (gas, SIS) not acknowledged. */
function sounds(a) {
  return !a.acknowledged && (a.state === "unacknowledged" || a.state === "latched");
}

function stateKey(a) {
  if (a.state === "latched") return a.acknowledged ? "latched.acked" : "latched.unacked";
  return a.state;
}

function summary(a) {
  return lang() === "en" && a.summary_en ? a.summary_en : a.summary;
}

/** A warning of tier yellow or above that annunciated and has no disposal record yet. */
function needsDisposal(a) {
  return DISPOSAL_PRIORITIES.has(a.priority) && a.raised_ms != null && !a.disposal;
}

/** Time since the last annunciation, as h:mm:ss (it grows: tick() repaints it). */
function ageText(sinceMs) {
  const s = Math.max(0, Math.floor((Date.now() - sinceMs) / 1000));
  const h = Math.floor(s / 3600);
  return `${h}:${pad2(Math.floor((s % 3600) / 60))}:${pad2(s % 60)}`;
}

function disposalText(d) {
  return t("detail.disposal.info", {
    category: t(`dispcat.${d.category}`),
    text: d.text,
    by: d.by,
    time: fmtTime(d.at_ms, true),
  });
}

function canAct() {
  return S.me && (S.me.role === "operator" || S.me.role === "admin");
}

/** Which actions the state allows (the hub decides; this only greys out buttons). */
function allowed(a, act) {
  switch (act) {
    case "acknowledge":
      return waitsForAck(a);
    case "reset":
      return a.latched && a.acknowledged && (a.state === "acknowledged" || a.state === "latched");
    case "shelve":
      return a.state !== "shelved" && a.state !== "out_of_service";
    case "unshelve":
      return a.state === "shelved";
    case "out-of-service":
      return a.state !== "out_of_service";
    case "return-to-service":
      return a.state === "out_of_service";
    case "dispose":
      return needsDisposal(a);
    default:
      return false;
  }
}

function toast(text, error = false) {
  const el = document.createElement("div");
  el.className = `toast${error ? " error" : ""}`;
  el.textContent = text;
  $("toasts").append(el);
  setTimeout(() => el.remove(), error ? 8000 : 4000);
}

// ---- data -----------------------------------------------------------------------------------

function setPlant(plant) {
  S.plant = plant;
  S.entById = new Map();
  S.hsById = new Map();
  for (const ent of plant.enterprises || []) {
    S.entById.set(ent.id, ent);
    for (const hs of ent.hazard_sources || []) S.hsById.set(hs.id, { ...hs, enterprise: ent.id });
  }
}

/**
 * The first-out of each hazard source. The hub pins each source's first-out on top of its
 * list; an explicit `first_out` flag wins when the API gives one, else the first alarm of each
 * source in the API's order is its first-out.
 */
function firstOutsOf(list) {
  const out = new Set();
  if (list.some((a) => typeof a.first_out === "boolean")) {
    for (const a of list) if (a.first_out) out.add(a.id);
    return out;
  }
  const seen = new Set();
  for (const a of list) {
    if (!a.hazard_source || seen.has(a.hazard_source)) continue;
    seen.add(a.hazard_source);
    if (SHOWN.has(a.state)) out.add(a.id);
  }
  return out;
}

function applyAlarmList(list) {
  const next = new Map();
  let annunciated = false;
  for (const a of list) {
    const prev = S.alarms.get(a.id);
    // A stream event newer than this answer wins (the answer may have left before it).
    if (prev && (prev.changed_ms ?? 0) > (a.changed_ms ?? 0)) {
      next.set(a.id, prev);
      continue;
    }
    if (S.loaded && sounds(a) && (!prev || (a.count ?? 0) > (prev.count ?? 0))) annunciated = true;
    next.set(a.id, a);
  }
  S.alarms = next;
  S.firstOuts = firstOutsOf(list);
  S.loaded = true;
  if (annunciated) annunciator.annunciate();
}

function upsertAlarm(a) {
  const prev = S.alarms.get(a.id);
  if (prev && (prev.changed_ms ?? 0) > (a.changed_ms ?? 0)) return;
  if (a.state === "normal" && !a.disposal_overdue) S.alarms.delete(a.id);
  else S.alarms.set(a.id, a);
  if (S.detail && S.detail.id === a.id) S.detail.alarm = a;
}

async function loadAll() {
  const session = S.session;
  const api = S.api;
  const [plant, shown, overdue] = await Promise.all([api.plant(), api.alarms(), api.overdue()]);
  const ids = new Set(shown.map((a) => a.id));
  const alarms = [...shown, ...overdue.filter((a) => !ids.has(a.id))]; // overdue after clear too
  if (S.session !== session) return; // signed out (or in as someone else) meanwhile
  setPlant(plant);
  applyAlarmList(alarms);
  api.system().then((sys) => renderNode(sys.ha), () => renderNode(null)); // never holds the list up
  api.provinceParks().then(
    (prov) => {
      renderProvince(prov.parks);
      if (S.provincePark) loadProvincePark(S.provincePark);
    },
    () => renderProvince(null),
  );
  if (!S.tags.size) {
    const tags = await api.tags();
    if (S.session !== session) return;
    S.tags = new Map(tags.map((tg) => [tagKey(tg.enterprise, tg.tag), tg]));
  }
  renderAll();
}

function scheduleRefresh(delay = 400) {
  clearTimeout(S.refreshTimer);
  S.refreshTimer = setTimeout(() => {
    loadAll().catch(handleLoadError);
  }, delay);
}

function handleLoadError(err) {
  if (err instanceof ApiError && err.status === 401) return; // the token prompt is up
  if (err instanceof ApiError && err.status === 403) toast(t("error.forbidden", { error: err.message }), true);
  console.warn("refresh failed", err);
}

function pollLoop() {
  clearTimeout(S.pollTimer);
  const session = S.session;
  const wait = (S.streamUp ? POLL_LIVE_S : POLL_DOWN_S) * 1000;
  S.pollTimer = setTimeout(async () => {
    try {
      await loadAll();
      if (!S.streamUp && S.detail) await loadJournal();
    } catch (err) {
      handleLoadError(err);
    }
    // A sign-out while this poll was waiting for the hub stopped the loop: it stays stopped
    // (the next sign-in starts its own).
    if (S.session === session) pollLoop();
  }, wait);
}

// ---- stream ---------------------------------------------------------------------------------

function onAlarmEvent(ev) {
  const a = ev.alarm;
  if (!a || typeof a.id !== "number") return;
  if (typeof ev.seq === "number") {
    if (ev.seq <= (S.lastSeq.get(a.id) ?? 0)) return; // a repeat (at-least-once delivery)
    S.lastSeq.set(a.id, ev.seq);
  }
  upsertAlarm(a);
  if (ev.annunciated) annunciator.annunciate();
  renderAlarms();
  renderCounts();
  if (S.detail && S.detail.id === a.id) {
    renderDetail();
    loadJournal();
  }
  scheduleRefresh(); // first-outs and plan colours come from the hub
}

function onValueEvent(v) {
  if (!v || !v.enterprise || !v.tag) return;
  const key = tagKey(v.enterprise, v.tag);
  const point = { ts: v.ts, value: v.value, quality: v.quality };
  const prev = S.latest.get(key);
  if (!prev || prev.ts <= point.ts) S.latest.set(key, point);
  for (const cell of document.querySelectorAll(`[data-live="${CSS.escape(key)}"]`)) {
    cell.textContent = fmtNum(point.value);
  }
  const tr = S.trend;
  if (tr && tagKey(tr.enterprise, tr.tag) === key && Number.isFinite(point.value)) {
    tr.live.push(point);
    if (tr.live.length > 5000) tr.live.splice(0, tr.live.length - 5000);
    renderLiveValue();
    throttledTrend();
  }
}

/**
 * The connection indicator (body[data-conn]) and what the banner counts from: "live" only while
 * this session's stream is open; "connecting" from sign-in until it first opens or fails.
 */
function setConn(state) {
  S.streamUp = state === "live";
  if (!S.streamUp) S.streamDownSince = Date.now();
  document.body.dataset.conn = state;
  renderConn();
}

function onStreamState(up) {
  setConn(up ? "live" : "down");
  if (up) scheduleRefresh(50); // catch up on anything missed while down
  pollLoop();
}

// ---- rendering ------------------------------------------------------------------------------

function visibleAlarms() {
  if (S.view === "overdue") return overdueAlarms();
  const wanted = S.view === "active" ? SHOWN : HIDDEN;
  let list = [...S.alarms.values()].filter((a) => wanted.has(a.state));
  if (S.unackOnly) list = list.filter(waitsForAck);
  if (S.filter && S.filter.kind === "hs") list = list.filter((a) => a.hazard_source === S.filter.id);
  if (S.filter && S.filter.kind === "ent") list = list.filter((a) => a.enterprise === S.filter.id);
  const fo = (a) => (S.firstOuts.has(a.id) ? 1 : 0);
  list.sort(
    (a, b) =>
      fo(b) - fo(a) ||
      (PRIO_RANK[a.priority] ?? 9) - (PRIO_RANK[b.priority] ?? 9) ||
      Number(waitsForAck(b)) - Number(waitsForAck(a)) ||
      (b.raised_ms ?? b.changed_ms ?? 0) - (a.raised_ms ?? a.changed_ms ?? 0) ||
      b.id - a.id,
  );
  return list;
}

/** Warnings past their disposal time limit, not disposed (any state), the oldest first. */
function overdueAlarms() {
  let list = [...S.alarms.values()].filter((a) => a.disposal_overdue);
  if (S.filter && S.filter.kind === "hs") list = list.filter((a) => a.hazard_source === S.filter.id);
  if (S.filter && S.filter.kind === "ent") list = list.filter((a) => a.enterprise === S.filter.id);
  return list.sort((a, b) => (a.raised_ms ?? 0) - (b.raised_ms ?? 0) || a.id - b.id);
}

function disposalBadgeHtml(a) {
  if (a.disposal) {
    return `<span class="badge-disp" title="${esc(disposalText(a.disposal))}">${esc(t("alarms.disposed"))}</span>`;
  }
  if (a.disposal_overdue) {
    return (
      `<span class="badge-overdue" title="${esc(t("alarms.overdue.title"))}">${esc(t("alarms.overdue"))} ` +
      `<span class="age" data-since="${a.raised_ms}">${esc(ageText(a.raised_ms))}</span></span>`
    );
  }
  return "";
}

/**
 * Root-cause groups (docs/console.md): the alarms grouped under a parent (their `labels.parent`
 * is its key), by parent key. Children are suppressed, so they are not rows of the active list
 * themselves: the parent's row shows their count and expands to them.
 */
function groupsByParent() {
  const groups = new Map();
  for (const a of S.alarms.values()) {
    const parent = a.labels && a.labels.parent;
    if (!parent) continue;
    if (!groups.has(parent)) groups.set(parent, []);
    groups.get(parent).push(a);
  }
  for (const kids of groups.values()) kids.sort((x, y) => x.id - y.id);
  return groups;
}

function groupButtonHtml(a, kids) {
  if (!kids.length) return "";
  const open = S.expanded.has(a.id);
  return (
    `<button type="button" class="btn btn-sm btn-group" data-group="${a.id}" aria-expanded="${open}" ` +
    `title="${esc(t("alarms.group.title", { n: kids.length }))}">` +
    `${open ? "▾" : "▸"} <span class="group-count">${kids.length}</span></button>`
  );
}

function childRowHtml(c) {
  return (
    `<tr class="child prio-${esc(c.priority)}${c.active ? "" : " inactive"}" data-alarm-id="${c.id}" ` +
    `data-state="${esc(c.state)}" data-parent="${esc(c.labels.parent)}">` +
    `<td class="c-prio"></td>` +
    `<td class="c-time">${esc(fmtTime(c.active_since_ms ?? c.changed_ms))}</td>` +
    `<td class="c-where">${esc(hsName(c.hazard_source))}</td>` +
    `<td class="c-tag">↳ ${esc(c.tag || c.zone || "—")}</td>` +
    `<td class="c-desc">${esc(summary(c))}<span class="sub">${esc(c.alert)}</span></td>` +
    `<td class="c-val">${Number.isFinite(c.value) ? esc(fmtNum(c.value)) : ""}</td>` +
    `<td class="c-state"><span class="state s-${esc(stateKey(c).replace(".", "-"))}">${esc(t(`state.${stateKey(c)}`))}</span></td>` +
    `<td class="c-act"></td></tr>`
  );
}

function rowHtml(a, kids = []) {
  const classes = [`prio-${a.priority}`];
  if (waitsForAck(a)) classes.push("unack");
  if (S.firstOuts.has(a.id)) classes.push("first-out");
  if (!a.active) classes.push("inactive");
  if (a.disposal_overdue) classes.push("overdue");
  if (S.detail && S.detail.id === a.id) classes.push("selected");
  const where = a.tag || a.zone || "—";
  const live = a.tag ? S.latest.get(tagKey(a.enterprise, a.tag)) : null;
  const liveHtml = a.tag
    ? `<span data-live="${esc(tagKey(a.enterprise, a.tag))}">${esc(fmtNum(live ? live.value : a.value))}</span>`
    : Number.isFinite(a.value)
      ? esc(fmtNum(a.value))
      : "";
  const eu = a.tag ? (S.tags.get(tagKey(a.enterprise, a.tag)) || {}).eu || "" : "";
  const fo = S.firstOuts.has(a.id)
    ? `<span class="badge-fo" title="${esc(t("alarms.firstout.title"))}">${esc(t("alarms.firstout"))}</span>`
    : "";
  const ackBtn =
    canAct() && allowed(a, "acknowledge")
      ? `<button type="button" class="btn btn-sm btn-ack" data-act="acknowledge" title="${esc(t("action.acknowledge"))}">${esc(t("action.ack.short"))}</button>`
      : "";
  return (
    `<tr class="${classes.join(" ")}" data-alarm-id="${a.id}" data-state="${esc(a.state)}" ` +
    `data-priority="${esc(a.priority)}" data-acknowledged="${a.acknowledged}">` +
    `<td class="c-prio"><span class="prio">${esc(t(`prio.${a.priority}`))}</span>${fo}${disposalBadgeHtml(a)}</td>` +
    `<td class="c-time">${esc(fmtTime(a.raised_ms ?? a.changed_ms))}</td>` +
    `<td class="c-where" title="${esc(hsName(a.hazard_source))} · ${esc(entName(a.enterprise))}">` +
    `${esc(hsName(a.hazard_source))}<span class="sub">${esc(entName(a.enterprise))}</span></td>` +
    `<td class="c-tag">${esc(where)}</td>` +
    `<td class="c-desc">${esc(summary(a))}${groupButtonHtml(a, kids)}<span class="sub">${esc(a.alert)} · ${esc(t(`class.${a.alarm_class}`))}</span>` +
    returnsHtml(a) +
    "</td>" +
    `<td class="c-val">${liveHtml} ${esc(eu)}` +
    (Number.isFinite(a.setpoint) ? `<span class="sub">${esc(t("col.setpoint"))} ${esc(fmtNum(a.setpoint))}</span>` : "") +
    "</td>" +
    `<td class="c-state"><span class="state s-${esc(stateKey(a).replace(".", "-"))}">${esc(t(`state.${stateKey(a)}`))}</span></td>` +
    `<td class="c-act">${ackBtn}</td></tr>`
  );
}

// A latched alarm whose condition came back before its reset: how often, and when last. The
// returns do not annunciate (docs/alarms.md, Latching), so the row says so instead.
function returnsText(a) {
  if (!(a.returns > 0)) return "";
  return t("alarms.returns", { n: a.returns, last: fmtTime(a.last_active_ms) });
}

function returnsHtml(a) {
  const text = returnsText(a);
  return text ? `<span class="sub returns" data-returns="${a.returns}">${esc(text)}</span>` : "";
}

function oosText(oos) {
  const key = oos.source === "registry" ? "detail.oos.registry" : "detail.oos.info";
  return t(key, { by: oos.by, reason: oos.reason, since: fmtTime(oos.since_ms, true) });
}

function renderAlarms() {
  const list = visibleAlarms();
  const groups = groupsByParent();
  $("alarm-rows").innerHTML = list
    .map((a) => {
      const kids = groups.get(a.key) || [];
      const open = kids.length && S.expanded.has(a.id);
      return rowHtml(a, kids) + (open ? kids.map(childRowHtml).join("") : "");
    })
    .join("");
  const empty = $("alarms-empty");
  empty.hidden = list.length > 0;
  empty.textContent = t({ active: "alarms.empty", hidden: "alarms.hidden.empty" }[S.view] || "alarms.overdue.empty");
  const all = [...S.alarms.values()];
  $("count-overdue").textContent = all.filter((a) => a.disposal_overdue).length;
  $("count-active").textContent = all.filter((a) => SHOWN.has(a.state)).length;
  $("count-hidden").textContent = all.filter((a) => HIDDEN.has(a.state)).length;
  const chip = $("filter-chip");
  chip.hidden = !S.filter;
  if (S.filter) {
    const name = S.filter.kind === "hs" ? hsName(S.filter.id) : entName(S.filter.id);
    $("filter-chip-text").textContent = t(S.filter.kind === "hs" ? "filter.hs" : "filter.ent", { name });
  }
  updateSound();
}

function updateSound() {
  let best = null;
  for (const a of S.alarms.values()) {
    if (!sounds(a)) continue;
    if (best === null || PRIO_RANK[a.priority] < PRIO_RANK[best]) best = a.priority;
  }
  annunciator.setWaiting(best);
  const waiting = [...S.alarms.values()].filter(waitsForAck).length;
  document.title = `${waiting ? `(${waiting}) ` : ""}${t("app.short")} · safety-hub`;
}

function renderTopCounts() {
  const shown = [...S.alarms.values()].filter((a) => SHOWN.has(a.state));
  const by = Object.fromEntries(PRIORITIES.map((p) => [p, 0]));
  for (const a of shown) by[a.priority] = (by[a.priority] ?? 0) + 1;
  const unack = shown.filter(waitsForAck).length;
  const cell = (cls, n, label) =>
    `<div class="top-count ${cls}${n ? "" : " zero"}" data-count="${cls}"><span class="n">${n}</span><span class="l">${esc(label)}</span></div>`;
  $("top-counts").innerHTML =
    cell("unack", unack, t("counts.unack.short")) +
    PRIORITIES.map((p) => cell(`p-${p}`, by[p], t(`prio.${p}`))).join("");
}

function renderCounts() {
  renderTopCounts();
  const shown = [...S.alarms.values()].filter((a) => SHOWN.has(a.state));
  const byEnt = new Map();
  const byHs = new Map();
  const bump = (map, id, a) => {
    const c = map.get(id) || { total: 0, unack: 0, critical: 0, high: 0, medium: 0, low: 0 };
    c.total += 1;
    if (waitsForAck(a)) c.unack += 1;
    c[a.priority] = (c[a.priority] ?? 0) + 1;
    map.set(id, c);
  };
  for (const a of shown) {
    bump(byEnt, a.enterprise, a);
    if (a.hazard_source) bump(byHs, a.hazard_source, a);
  }
  const num = (n, cls = "") => `<td class="n ${cls}${n ? "" : " zero"}">${n}</td>`;
  const head =
    `<tr><th></th><th>${esc(t("counts.total"))}</th><th title="${esc(t("counts.unack"))}">${esc(t("counts.unack.short"))}</th>` +
    PRIORITIES.map((p) => `<th>${esc(t(`prio.${p}`))}</th>`).join("") +
    "</tr>";
  const row = (kind, id, name, c, dot = "") =>
    `<tr class="click" data-filter-kind="${kind}" data-filter-id="${esc(id)}"><td>${dot}${esc(name)}</td>` +
    num(c.total) +
    num(c.unack) +
    PRIORITIES.map((p) => num(c[p], `p-${p}`)).join("") +
    "</tr>";
  const ents = [...S.entById.keys()];
  for (const id of byEnt.keys()) if (!ents.includes(id)) ents.push(id);
  const zero = { total: 0, unack: 0, critical: 0, high: 0, medium: 0, low: 0 };
  const entRows = ents
    .map((id) => row("ent", id, entName(id), byEnt.get(id) || zero))
    .join("");
  const hsIds = [...byHs.keys()].sort(
    (a, b) => byHs.get(b).total - byHs.get(a).total || a.localeCompare(b),
  );
  const hsRows = hsIds
    .map((id) => {
      const hs = S.hsById.get(id);
      const tier = hs && hs.worst_tier ? hs.worst_tier : "none";
      return row("hs", id, hsName(id), byHs.get(id), `<i class="tier-dot t-${tier}"></i>`);
    })
    .join("");
  $("counts").innerHTML =
    `<div><h3>${esc(t("counts.enterprise"))}</h3><table class="count-table" id="counts-enterprise">${head}${entRows}</table></div>` +
    `<div><h3>${esc(t("counts.hazard"))}</h3>` +
    (hsRows
      ? `<table class="count-table" id="counts-hazard">${head}${hsRows}</table>`
      : `<p class="none">${esc(t("counts.none"))}</p>`) +
    "</div>";
}

function renderPlan() {
  if (!S.plant) return;
  const unackSources = new Set(
    [...S.alarms.values()].filter((a) => waitsForAck(a) && a.hazard_source).map((a) => a.hazard_source),
  );
  drawPlan($("plan"), S.plant, {
    unackSources,
    selected: S.filter && S.filter.kind === "hs" ? S.filter.id : null,
    onSelect: (id) => setFilter(S.filter && S.filter.kind === "hs" && S.filter.id === id ? null : { kind: "hs", id }),
  });
  $("plan-legend").innerHTML = legendHtml();
  const park = S.plant.name_en && lang() === "en" ? S.plant.name_en : S.plant.name;
  $("park-name").textContent = park || "";
}

/** Province mode: the parks above the plan, worst open tier first (hidden otherwise). */
function renderProvince(parks) {
  S.provinceParks = parks;
  const el = $("province-parks");
  if (!parks) {
    el.hidden = true;
    if (S.provincePark) loadProvincePark(null);
    return;
  }
  const rank = { red: 4, orange: 3, yellow: 2, blue: 1 };
  const sorted = [...parks].sort((a, b) => (rank[b.worst_tier] || 0) - (rank[a.worst_tier] || 0));
  el.innerHTML =
    `<h3>${esc(t("province.parks"))}</h3><ul>` +
    sorted
      .map(
        (p) =>
          `<li class="park" data-park="${esc(p.park)}" data-tier="${esc(p.worst_tier || "none")}" data-link="${esc(p.link)}" ` +
          `role="button" tabindex="0" aria-pressed="${p.park === S.provincePark}">` +
          `<span class="dot"></span><b>${esc(p.park)}</b> ` +
          `<span class="open">${esc(t("province.open", { n: p.open_warnings }))}</span> ` +
          `<span class="link">${esc(t(`province.link.${p.link}`))}</span></li>`,
      )
      .join("") +
    "</ul>";
  el.hidden = false;
}

/** Open (or refresh) a park's drill-down below the park list; null closes it. */
function loadProvincePark(code) {
  S.provincePark = code;
  for (const li of $("province-parks").querySelectorAll("li[data-park]")) {
    li.setAttribute("aria-pressed", String(li.dataset.park === code));
  }
  const load = ++S.provinceLoads;
  if (!code) {
    S.provinceDetail = null;
    renderProvinceDetail();
    return;
  }
  const path = encodeURIComponent(code);
  Promise.all([S.api.provincePark(path), S.api.provinceReadings(path)]).then(
    ([park, readings]) => {
      if (load !== S.provinceLoads) return; // another park was chosen meanwhile
      S.provinceDetail = { park, readings: readings.readings };
      renderProvinceDetail();
    },
    (err) => {
      if (load !== S.provinceLoads) return;
      console.warn("province park", code, err);
      S.provinceDetail = null;
      if (err instanceof ApiError && err.status === 404) S.provincePark = null; // the park is gone
      renderProvinceDetail();
    },
  );
}

function renderProvinceDetail() {
  const el = $("province-detail");
  const detail = S.provinceDetail;
  if (!detail) {
    el.hidden = true;
    el.innerHTML = "";
    return;
  }
  el.innerHTML = parkDetailHtml(detail.park, detail.readings);
  el.dataset.park = detail.park.park;
  el.hidden = false;
}

/** The node of a redundant pair this console talks to, and its role (hidden for a lone hub). */
function renderNode(ha) {
  const el = $("node");
  if (!ha || !ha.enabled) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.dataset.haRole = ha.role;
  const since = ha.since ? ` · ${t("ha.since")} ${fmtTime(Date.parse(ha.since))}` : "";
  let text = `${ha.node_id} · ${t(`ha.role.${ha.role}`)}`;
  if (ha.role === "active") text += since;
  else text += ` · ${t("ha.active")}: ${ha.active_node || t("ha.none")}${ha.active_node ? since : ""}`;
  el.textContent = text;
  el.title = ha.active_api_url ? `${t("ha.active")}: ${ha.active_node} ${ha.active_api_url}` : "";
}

function renderUser() {
  const me = S.me;
  document.body.dataset.role = me ? me.role : "";
  if (!me) {
    $("user").textContent = "";
    return;
  }
  const scope = me.enterprise ? entName(me.enterprise) : t("user.scope.all");
  $("user").innerHTML = `<b>${esc(me.user)}</b> · ${esc(t(`user.role.${me.role}`))} · ${esc(scope)}`;
}

function renderConn() {
  const state = document.body.dataset.conn;
  $("conn-text").textContent = t(state === "live" || state === "connecting" ? `conn.${state}` : "conn.down");
}

function renderBanner() {
  const banner = $("banner");
  let text = "";
  if (!S.reachable) {
    text = t("banner.api", { since: ago(S.unreachableSince), error: S.unreachableError });
  } else if (S.me && !S.streamUp && Date.now() - S.streamDownSince > 2000) {
    text = t("banner.stream", { since: ago(S.streamDownSince), poll: POLL_DOWN_S });
  }
  banner.hidden = !text;
  banner.textContent = text;
}

function renderSoundButtons() {
  const state = document.body.dataset.sound;
  $("btn-sound-enable").hidden = state !== "blocked";
  $("silence-text").textContent = state === "silenced" ? t("sound.silenced") : t("sound.silence");
  $("btn-silence").disabled = state === "off" || state === "silenced";
}

function renderAll() {
  renderUser();
  renderAlarms();
  renderCounts();
  renderPlan();
  renderConn();
  renderBanner();
  renderSoundButtons();
  if (S.detail) renderDetail();
  if (S.provinceParks) renderProvince(S.provinceParks); // the language may have changed
  if (S.provinceDetail) renderProvinceDetail();
}

function setFilter(filter) {
  S.filter = filter;
  renderAlarms();
  renderPlan();
}

// ---- detail drawer --------------------------------------------------------------------------

async function openDetail(id) {
  const alarm = S.alarms.get(id) || null;
  S.detail = { id, alarm, journal: null };
  $("drawer").hidden = false;
  renderAlarms();
  renderDetail();
  try {
    if (!alarm) S.detail.alarm = await S.api.json(`/api/v1/alarms/${id}`);
    renderDetail();
  } catch (err) {
    toast(err.message, true);
  }
  await loadJournal();
  const a = S.detail && S.detail.alarm;
  if (a) openTrend(a);
}

function closeDetail() {
  S.detail = null;
  S.trend = null;
  $("drawer").hidden = true;
  renderAlarms();
}

function factsHtml(a) {
  const rows = [
    ["detail.id", `#${a.id}`],
    ["detail.alert", a.alert],
    ["detail.class", t(`class.${a.alarm_class}`)],
    ["detail.level", a.level ? t("detail.level.n", { n: a.level }) : "—"],
    ["detail.enterprise", entName(a.enterprise)],
    ["detail.hazard", a.hazard_source ? `${hsName(a.hazard_source)} (${a.hazard_source})` : "—"],
    [a.tag ? "detail.tag" : "detail.zone", a.tag || a.zone || "—"],
    ["detail.state", t(`state.${stateKey(a)}`)],
    ["detail.value", fmtNum(a.value)],
    ["detail.setpoint", fmtNum(a.setpoint)],
    ["detail.active", t(a.active ? "detail.active.yes" : "detail.active.no")],
    ["detail.latched", t(a.latched ? "detail.yes" : "detail.no")],
    ["detail.raised", fmtTime(a.raised_ms, true)],
    ["detail.first", fmtTime(a.first_raised_ms, true)],
    [
      "detail.acked",
      a.acknowledged_by
        ? t("detail.acked.by", { user: a.acknowledged_by, time: fmtTime(a.acknowledged_ms, true) })
        : "—",
    ],
    ["detail.cleared", fmtTime(a.cleared_ms, true)],
    ["detail.count", String(a.count ?? "—")],
    ["detail.returns", returnsText(a) || "—"],
    ["detail.delay", `${a.on_delay_s ?? 0} s`],
  ];
  if (a.shelved) {
    rows.push([
      "detail.shelved",
      t("detail.shelved.info", { by: a.shelved.by, reason: a.shelved.reason, until: fmtTime(a.shelved.until_ms, true) }),
    ]);
  }
  if (a.out_of_service) rows.push(["detail.oos", oosText(a.out_of_service)]);
  if (DISPOSAL_PRIORITIES.has(a.priority) && a.raised_ms != null) {
    rows.push(["detail.disposal", a.disposal ? disposalText(a.disposal) : t("detail.disposal.none")]);
    const due = a.disposal_due_ms != null ? fmtTime(a.disposal_due_ms, true) : t("detail.disposal.nolimit");
    const late = a.disposal_overdue_ms != null ? t("detail.disposal.late", { time: fmtTime(a.disposal_overdue_ms, true) }) : "";
    rows.push(["detail.disposal.due", due + late]);
  }
  if (Number.isFinite(a.active_since_ms) && Number.isFinite(a.arrived_ms) && a.arrived_ms - a.active_since_ms >= 2000) {
    // late data: the event happened before it reached the hub
    rows.push([
      "detail.since",
      t("detail.since.info", { since: fmtTime(a.active_since_ms, true), arrived: fmtTime(a.arrived_ms, true) }),
    ]);
  }
  if (a.suppressed_by && a.suppressed_by.length) rows.push(["detail.suppressed", a.suppressed_by.join(", ")]);
  const parent = a.labels && a.labels.parent;
  if (parent) {
    const p = [...S.alarms.values()].find((x) => x.key === parent);
    rows.push(["detail.parent", p ? `${summary(p)} (#${p.id})` : parent]);
  }
  const kids = groupsByParent().get(a.key);
  if (kids) rows.push(["detail.children", String(kids.length)]);
  return rows.map(([k, v]) => `<dt>${esc(t(k))}</dt><dd>${esc(v)}</dd>`).join("");
}

function renderDetail() {
  if (!S.detail) return;
  const a = S.detail.alarm;
  if (!a) {
    $("detail-summary").textContent = t("detail.loading");
    $("detail-facts").innerHTML = "";
    $("detail-actions").innerHTML = "";
    return;
  }
  const box = $("detail-summary");
  box.className = `detail-summary${waitsForAck(a) ? " unack" : ""}`;
  box.dataset.state = a.state;
  box.innerHTML =
    `<span class="prio p-${esc(a.priority)}">${esc(t(`prio.${a.priority}`))}</span>` +
    `<span>${esc(summary(a))}${S.firstOuts.has(a.id) ? ` <span class="badge-fo">${esc(t("alarms.firstout"))}</span>` : ""}</span>`;
  $("detail-facts").innerHTML = factsHtml(a);
  const actions = $("detail-actions");
  if (!canAct()) {
    actions.innerHTML = "";
    actions.hidden = true;
  } else {
    actions.hidden = false;
    actions.innerHTML = ACTIONS.map((act) => {
      const ok = allowed(a, act);
      const cls = act === "acknowledge" ? "btn btn-ack" : "btn";
      return (
        `<button type="button" class="${cls}" data-act="${act}"${ok ? "" : " disabled"} ` +
        `title="${esc(ok ? "" : t(`action.why.${act}`))}">${esc(t(`action.${act}`))}</button>`
      );
    }).join("");
  }
  renderJournal();
}

async function loadJournal() {
  const d = S.detail;
  if (!d) return;
  try {
    const rows = await S.api.journal(d.id);
    if (S.detail === d) {
      d.journal = rows;
      renderJournal();
    }
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) toast(err.message, true);
  }
}

function renderJournal() {
  const d = S.detail;
  const body = $("journal-rows");
  if (!d || !d.journal) {
    body.innerHTML = `<tr><td colspan="6">${esc(t("detail.loading"))}</td></tr>`;
    return;
  }
  if (!d.journal.length) {
    body.innerHTML = `<tr><td colspan="6">${esc(t("journal.empty"))}</td></tr>`;
    return;
  }
  body.innerHTML = [...d.journal]
    .reverse()
    .map((e) => {
      const ts = e.ts_ms ?? e.ts;
      const from = e.from_state ? t(`state.${e.from_state}`) : "";
      const to = e.to_state ? t(`state.${e.to_state}`) : "";
      const who = e.user || t("journal.system");
      return (
        `<tr class="${e.user ? "j-operator" : ""}" data-action="${esc(e.action)}" data-user="${esc(e.user || "")}">` +
        `<td class="t">${esc(fmtTime(ts, true))}</td>` +
        `<td>${esc(t(`jact.${e.action}`))}</td>` +
        `<td>${esc(from)} → ${esc(to)}</td>` +
        `<td class="j-user">${esc(who)}</td>` +
        `<td class="j-comment">${esc(e.comment || "")}</td>` +
        `<td>${esc(fmtNum(e.value))}</td></tr>`
      );
    })
    .join("");
}

// ---- trend ----------------------------------------------------------------------------------

function tagsNear(a) {
  const mine = [...S.tags.values()].filter(
    (tg) =>
      tg.enterprise === a.enterprise &&
      (a.hazard_source ? tg.hazard_source === a.hazard_source : true),
  );
  mine.sort((x, y) => x.tag.localeCompare(y.tag));
  return mine;
}

function openTrend(a) {
  let tag = a.tag;
  if (!tag && a.zone) {
    const inZone = [...S.tags.values()].find((tg) => tg.enterprise === a.enterprise && tg.zone === a.zone);
    tag = inZone ? inZone.tag : null;
  }
  const options = tagsNear(a);
  if (tag && !options.some((tg) => tg.tag === tag)) {
    const own = S.tags.get(tagKey(a.enterprise, tag));
    if (own) options.unshift(own);
  }
  if (!tag && options.length) tag = options[0].tag;
  const select = $("trend-tag");
  select.innerHTML = options
    .map((tg) => `<option value="${esc(tg.tag)}"${tg.tag === tag ? " selected" : ""}>${esc(tg.tag)}${tg.name ? ` ${esc(tg.name)}` : ""}</option>`)
    .join("");
  const rangeS = Number($("trend-range").value) || 3600;
  if (!tag) {
    S.trend = null;
    drawTrend($("trend-chart"), { message: t("trend.nodata") });
    return;
  }
  loadTrend(a.enterprise, tag, rangeS);
}

async function loadTrend(enterprise, tag, rangeS) {
  const endMs = Date.now() + 1000;
  const startMs = endMs - rangeS * 1000;
  const everyS = everyFor(rangeS);
  const prevLive = S.trend && S.trend.enterprise === enterprise && S.trend.tag === tag ? S.trend.live : [];
  const tr = { enterprise, tag, rangeS, everyS, startMs, endMs, points: [], live: prevLive, message: null, loadedAt: Date.now() };
  S.trend = tr;
  renderLiveValue();
  try {
    const [hist, latest] = await Promise.all([
      S.api.history(enterprise, tag, startMs, endMs, everyS),
      S.api.latest(enterprise, tag).catch(() => null),
    ]);
    if (S.trend !== tr) return;
    tr.points = hist.points || [];
    if (latest && latest.has_value) {
      const key = tagKey(enterprise, tag);
      const prev = S.latest.get(key);
      if (!prev || prev.ts <= latest.ts) S.latest.set(key, { ts: latest.ts, value: latest.value, quality: latest.quality });
    }
    const lastBucket = tr.points.length ? tr.points[tr.points.length - 1].ts : 0;
    tr.live = tr.live.filter((p) => p.ts > lastBucket);
  } catch (err) {
    if (S.trend !== tr) return;
    tr.message = t("trend.error", { error: err.message });
  }
  renderLiveValue();
  paintTrend();
}

function paintTrend() {
  const tr = S.trend;
  if (!tr || $("drawer").hidden) return;
  if (Date.now() - tr.loadedAt > 60000) {
    loadTrend(tr.enterprise, tr.tag, tr.rangeS); // the window moves on: fresh buckets
    return;
  }
  const info = S.tags.get(tagKey(tr.enterprise, tr.tag)) || {};
  $("trend-note").textContent = t("trend.every", { every: tr.everyS });
  const endMs = Date.now() + 1000;
  const a = S.detail && S.detail.alarm;
  drawTrend($("trend-chart"), {
    points: tr.points,
    live: tr.live,
    setpoints: info.setpoints || {},
    eu: info.eu,
    startMs: endMs - tr.rangeS * 1000,
    endMs,
    everyS: tr.everyS,
    // the trend is in event time: the condition's onset, else the (hub-time) annunciation
    raisedMs: a && a.tag === tr.tag ? (a.active_since_ms ?? a.event_ts_ms ?? a.raised_ms) : null,
    message: tr.message,
  });
}

let trendTimer = null;
function throttledTrend() {
  if (trendTimer) return;
  trendTimer = setTimeout(() => {
    trendTimer = null;
    paintTrend();
  }, 1000);
}

function renderLiveValue() {
  const tr = S.trend;
  const el = $("trend-live");
  if (!tr) {
    el.textContent = "";
    return;
  }
  const info = S.tags.get(tagKey(tr.enterprise, tr.tag)) || {};
  const v = S.latest.get(tagKey(tr.enterprise, tr.tag));
  el.textContent = v ? `${t("detail.live")}: ${fmtNum(v.value)} ${info.eu || ""} (${fmtTime(v.ts)})` : "";
}

// ---- actions --------------------------------------------------------------------------------

function openAction(id, act) {
  const a = S.alarms.get(id) || (S.detail && S.detail.id === id ? S.detail.alarm : null);
  if (!a) return;
  if (!canAct()) {
    toast(t("action.denied"), true);
    return;
  }
  S.action = { id, act };
  $("action-title").textContent = t("dialog.title", { action: t(`action.${act}`), id });
  $("action-summary").textContent = `${t(`prio.${a.priority}`)} · ${summary(a)}`;
  const needsReason = act === "shelve" || act === "out-of-service";
  const dispose = act === "dispose";
  $("field-reason").hidden = !needsReason;
  $("field-duration").hidden = act !== "shelve";
  $("field-disposal").hidden = !dispose;
  $("field-comment").hidden = dispose;
  $("dispose-category").value = "real_release";
  $("dispose-text").value = "";
  $("action-reason").value = "";
  $("action-comment").value = "";
  $("action-error").textContent = "";
  $("action-ok").disabled = false;
  updateUntil();
  const dialog = $("action-dialog");
  dialog.dataset.act = act;
  dialog.showModal();
  (needsReason ? $("action-reason") : dispose ? $("dispose-category") : $("action-comment")).focus();
}

function updateUntil() {
  const s = Number($("action-duration").value);
  $("action-until").textContent = t("dialog.until", { time: fmtTime(Date.now() + s * 1000, true) });
}

async function submitAction() {
  const pending = S.action;
  if (!pending) return;
  const { id, act } = pending;
  const comment = $("action-comment").value.trim();
  const reason = $("action-reason").value.trim();
  const body = {};
  if (comment) body.comment = comment;
  if (act === "shelve" || act === "out-of-service") {
    if (!reason) {
      $("action-error").textContent = t("dialog.required");
      $("action-reason").focus();
      return;
    }
    body.reason = reason;
  }
  if (act === "shelve") body.duration_s = Number($("action-duration").value);
  if (act === "dispose") {
    const text = $("dispose-text").value.trim();
    if (!text) {
      $("action-error").textContent = t("dialog.disposal.required");
      $("dispose-text").focus();
      return;
    }
    delete body.comment;
    body.category = $("dispose-category").value;
    body.text = text;
  }
  $("action-ok").disabled = true;
  try {
    const alarm = await S.api.act(id, act, body);
    upsertAlarm(alarm);
    S.action = null;
    $("action-dialog").close();
    toast(t(`action.done.${act}`, { id }));
    renderAlarms();
    renderCounts();
    if (S.detail && S.detail.id === id) {
      renderDetail();
      loadJournal();
    }
    scheduleRefresh(100);
  } catch (err) {
    $("action-error").textContent = t("action.failed", { error: err.message });
    $("action-ok").disabled = false;
  }
}

// ---- sign-in --------------------------------------------------------------------------------

/**
 * Ends the live session: no stream, no poll, no pending refresh, and the indicator no longer
 * says live (the stream that made it live is gone; the next one must open first).
 */
function stopLive() {
  S.session += 1;
  if (S.stream) S.stream.stop();
  S.stream = null;
  clearTimeout(S.pollTimer);
  clearTimeout(S.refreshTimer);
  setConn("down");
}

function askToken(message = "") {
  stopLive();
  const dialog = $("token-dialog");
  $("token-error").textContent = message;
  $("token-submit").disabled = false;
  if (!dialog.open) dialog.showModal();
  $("token-input").focus();
}

function makeApi(token) {
  const api = new Api(token, {
    onUnauthorized: () => {
      // A late 401 for a token already replaced (the wrong one tried before the right one)
      // must not sign the new session out.
      if (S.api !== api) return;
      storeToken(null);
      S.me = null;
      renderUser();
      askToken(t("token.bad"));
    },
    onReachable: (ok, error) => {
      if (ok === S.reachable) return;
      S.reachable = ok;
      if (!ok) {
        S.unreachableSince = Date.now();
        S.unreachableError = error || "";
      }
      renderBanner();
    },
  });
  return api;
}

async function signIn(token) {
  stopLive(); // whatever was live belonged to the last session
  setConn("connecting"); // until this session's stream opens or fails
  const session = S.session;
  const api = makeApi(token);
  S.api = api;
  S.me = await api.me();
  storeToken(token);
  renderUser();
  await loadAll();
  if (S.session !== session) throw new Error("signed out while signing in");
  S.stream = new Stream(api.streamUrl(), {
    onAlarm: onAlarmEvent,
    onValue: onValueEvent,
    onState: onStreamState,
  });
  S.stream.start();
  pollLoop();
}

async function submitToken() {
  const token = $("token-input").value.trim();
  if (!token) return;
  $("token-submit").disabled = true;
  $("token-error").textContent = t("token.checking");
  try {
    await signIn(token);
    $("token-dialog").close();
    $("token-input").value = "";
  } catch (err) {
    $("token-error").textContent = err instanceof ApiError && err.status === 401 ? t("token.bad") : err.message;
    $("token-submit").disabled = false;
  }
}

// ---- wiring ---------------------------------------------------------------------------------

function wire() {
  $("btn-lang").addEventListener("click", () => {
    setLang(lang() === "zh" ? "en" : "zh");
    applyStatic();
    renderAll();
    renderLiveValue();
    if (S.trend) paintTrend();
  });
  $("btn-silence").addEventListener("click", () => annunciator.silence());
  $("btn-sound-enable").addEventListener("click", () => annunciator.unblock());
  $("btn-logout").addEventListener("click", () => {
    storeToken(null);
    S.me = null;
    renderUser();
    askToken();
  });
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      S.view = tab.dataset.view;
      for (const other of document.querySelectorAll(".tab")) {
        other.classList.toggle("active", other === tab);
        other.setAttribute("aria-selected", String(other === tab));
      }
      renderAlarms();
    });
  }
  $("filter-unack").addEventListener("change", (ev) => {
    S.unackOnly = ev.target.checked;
    renderAlarms();
  });
  $("filter-clear").addEventListener("click", () => setFilter(null));
  const choosePark = (ev) => {
    const li = ev.target.closest("li[data-park]");
    if (li) loadProvincePark(li.dataset.park === S.provincePark ? null : li.dataset.park);
  };
  $("province-parks").addEventListener("click", choosePark);
  $("province-parks").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      choosePark(ev);
    }
  });
  $("province-detail").addEventListener("click", (ev) => {
    if (ev.target.closest("[data-prov-close]")) loadProvincePark(null);
  });
  $("alarm-rows").addEventListener("click", (ev) => {
    const group = ev.target.closest("button[data-group]");
    if (group) {
      const parentId = Number(group.dataset.group);
      if (!S.expanded.delete(parentId)) S.expanded.add(parentId);
      renderAlarms();
      return;
    }
    const row = ev.target.closest("tr[data-alarm-id]");
    if (!row) return;
    const id = Number(row.dataset.alarmId);
    const btn = ev.target.closest("button[data-act]");
    if (btn) openAction(id, btn.dataset.act);
    else openDetail(id);
  });
  $("counts").addEventListener("click", (ev) => {
    const row = ev.target.closest("tr[data-filter-kind]");
    if (!row) return;
    const { filterKind: kind, filterId: id } = row.dataset;
    const same = S.filter && S.filter.kind === kind && S.filter.id === id;
    setFilter(same ? null : { kind, id });
  });
  $("detail-actions").addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-act]");
    if (btn && S.detail) openAction(S.detail.id, btn.dataset.act);
  });
  $("drawer-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !$("drawer").hidden && !document.querySelector("dialog[open]")) closeDetail();
  });
  $("trend-tag").addEventListener("change", (ev) => {
    const a = S.detail && S.detail.alarm;
    if (a) loadTrend(a.enterprise, ev.target.value, Number($("trend-range").value));
  });
  $("trend-range").addEventListener("change", (ev) => {
    if (S.trend) loadTrend(S.trend.enterprise, S.trend.tag, Number(ev.target.value));
  });
  $("action-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    submitAction();
  });
  $("action-cancel").addEventListener("click", () => {
    S.action = null;
    $("action-dialog").close();
  });
  $("action-duration").addEventListener("change", updateUntil);
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    submitToken();
  });
  $("token-dialog").addEventListener("cancel", (ev) => ev.preventDefault()); // no way around it
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      renderPlan();
      paintTrend();
    }, 200);
  });
}

function tick() {
  $("clock").textContent = fmtTime(Date.now(), true);
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = ageText(Number(el.dataset.since));
  renderBanner();
}

async function main() {
  initLang();
  applyStatic();
  wire();
  tick();
  setInterval(tick, 1000);
  renderSoundButtons();
  const token = initialToken();
  if (!token) {
    askToken();
    return;
  }
  try {
    await signIn(token);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // askToken() already ran
    askToken(err.message);
  }
}

main();
