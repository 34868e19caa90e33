// A tag's trend in SVG: bucket means as a line, min/max as a band, live values after the last
// bucket, the registry setpoints as dashed lines and the alarm's raise time as a marker.

import { esc } from "./plan.js";
import { t } from "./i18n.js";

const SEVERITY = { l1: 1, l: 1, h: 1, l2: 2, ll: 2, hh: 2 };

/** Bucket width so that a range gives about 360 points (at least 1 s). */
export function everyFor(rangeS) {
  const nice = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  const want = rangeS / 360;
  return nice.find((n) => n >= want) || 3600;
}

function niceTicks(lo, hi, count) {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

function hhmm(ms, withSeconds) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return withSeconds
    ? `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
    : `${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function fmtNum(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/**
 * @param {HTMLElement} host
 * @param {object} d { points, live, setpoints, eu, startMs, endMs, everyS, raisedMs, message }
 */
export function drawTrend(host, d) {
  const w = Math.max(host.clientWidth, 300);
  const h = Math.max(host.clientHeight, 160);
  if (d.message) {
    host.innerHTML =
      `<svg viewBox="0 0 ${w} ${h}"><text class="msg" x="${w / 2}" y="${h / 2}" ` +
      `text-anchor="middle" font-size="16">${esc(d.message)}</text></svg>`;
    return;
  }
  const m = { l: 64, r: 58, t: 12, b: 26 };
  const pw = w - m.l - m.r;
  const ph = h - m.t - m.b;
  const pts = (d.points || []).filter((p) => Number.isFinite(p.value));
  const live = (d.live || []).filter((p) => Number.isFinite(p.value) && p.ts >= d.startMs);
  const sps = Object.entries(d.setpoints || {}).filter(([, v]) => Number.isFinite(v));
  const values = [];
  for (const p of pts) {
    values.push(p.value);
    if (Number.isFinite(p.min)) values.push(p.min);
    if (Number.isFinite(p.max)) values.push(p.max);
  }
  for (const p of live) values.push(p.value);
  for (const [, v] of sps) values.push(v);
  if (!pts.length && !live.length) {
    drawTrend(host, { message: t("trend.nodata") });
    return;
  }
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const padV = (hi - lo) * 0.08;
  lo -= padV;
  hi += padV;
  const x = (ts) => m.l + ((ts - d.startMs) / (d.endMs - d.startMs)) * pw;
  const y = (v) => m.t + (1 - (v - lo) / (hi - lo)) * ph;
  const parts = [];

  // axes and grid
  parts.push('<g class="axis">');
  for (const v of niceTicks(lo, hi, 5)) {
    parts.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${y(v)}" y2="${y(v)}"></line>` +
        `<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${esc(fmtNum(v))}</text>`,
    );
  }
  const spanMs = d.endMs - d.startMs;
  const stepMs = [60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3]
    .find((s) => spanMs / s <= 7) || 21600e3;
  for (let ts = Math.ceil(d.startMs / stepMs) * stepMs; ts <= d.endMs; ts += stepMs) {
    parts.push(
      `<line x1="${x(ts)}" x2="${x(ts)}" y1="${m.t}" y2="${m.t + ph}"></line>` +
        `<text x="${x(ts)}" y="${h - 6}" text-anchor="middle">${hhmm(ts, stepMs < 60e3)}</text>`,
    );
  }
  parts.push(`<text x="${m.l - 6}" y="${m.t + 10}" text-anchor="end">${esc(d.eu || "")}</text>`);
  parts.push("</g>");

  // min/max band and the mean line, broken where buckets are missing
  const gap = (d.everyS || 1) * 1000 * 2.5;
  const runs = [];
  let run = [];
  for (const p of pts) {
    if (run.length && p.ts - run[run.length - 1].ts > gap) {
      runs.push(run);
      run = [];
    }
    run.push(p);
  }
  if (run.length) runs.push(run);
  for (const r of runs) {
    if (r.length > 1 && r.every((p) => Number.isFinite(p.min) && Number.isFinite(p.max))) {
      const top = r.map((p) => `${x(p.ts)},${y(p.max)}`);
      const bottom = r.map((p) => `${x(p.ts)},${y(p.min)}`).reverse();
      parts.push(`<polygon class="band" points="${[...top, ...bottom].join(" ")}"></polygon>`);
    }
    if (r.length === 1) {
      parts.push(`<circle class="series-point" cx="${x(r[0].ts)}" cy="${y(r[0].value)}" r="3"></circle>`);
    } else {
      parts.push(`<polyline class="series" points="${r.map((p) => `${x(p.ts)},${y(p.value)}`).join(" ")}"></polyline>`);
    }
  }
  const lastTs = pts.length ? pts[pts.length - 1].ts : -Infinity;
  const after = live.filter((p) => p.ts > lastTs);
  if (after.length) {
    const chain = pts.length ? [pts[pts.length - 1], ...after] : after;
    parts.push(
      `<polyline class="series-live" points="${chain.map((p) => `${x(p.ts)},${y(p.value)}`).join(" ")}"></polyline>`,
    );
    const end = after[after.length - 1];
    parts.push(`<circle class="series-live-end" cx="${x(end.ts)}" cy="${y(end.value)}" r="4"></circle>`);
  }

  // setpoints
  for (const [key, v] of sps) {
    const sev = SEVERITY[key] || 1;
    parts.push(
      `<g class="sp sev-${sev}" data-setpoint="${esc(key)}">` +
        `<line x1="${m.l}" x2="${m.l + pw}" y1="${y(v)}" y2="${y(v)}"></line>` +
        `<text x="${m.l + pw + 4}" y="${y(v) + 4}">${esc(key.toUpperCase())} ${esc(fmtNum(v))}</text></g>`,
    );
  }

  // when the alarm was raised
  if (Number.isFinite(d.raisedMs) && d.raisedMs >= d.startMs && d.raisedMs <= d.endMs) {
    const rx = x(d.raisedMs);
    parts.push(
      `<line class="raised-mark" x1="${rx}" x2="${rx}" y1="${m.t}" y2="${m.t + ph}"></line>` +
        `<text class="raised-label" x="${rx > m.l + pw * 0.8 ? rx - 4 : rx + 4}" y="${m.t + 12}" ` +
        `text-anchor="${rx > m.l + pw * 0.8 ? "end" : "start"}">${esc(t("trend.raised"))} ${hhmm(d.raisedMs, true)}</text>`,
    );
  }
  host.innerHTML = `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none">${parts.join("")}</svg>`;
}
