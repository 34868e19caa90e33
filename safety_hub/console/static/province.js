// Province mode's drill-down below the park list (docs/province.md, "Console"): the chosen park's
// enterprises, each with its hazard sources, their worst open warning tier, open warnings and
// latest readings. It reads GET /api/v1/province/parks/{park} (the enterprise list with tiers)
// and GET /api/v1/province/parks/{park}/readings (the latest reading per point code).

import { t } from "./i18n.js";
import { esc } from "./plan.js";
import { fmtNum } from "./trend.js";

const pad2 = (n) => String(n).padStart(2, "0");

function fmtStamp(ms) {
  if (!Number.isFinite(ms)) return "—";
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
  );
}

const tierOf = (tier) => esc(tier || "none");

function readingsHtml(readings) {
  if (!readings.length) return `<p class="prov-none">${esc(t("province.noReadings"))}</p>`;
  const rows = [...readings]
    .sort((a, b) => String(a.tag).localeCompare(String(b.tag)))
    .map((r) => {
      const value = typeof r.value === "number" ? fmtNum(r.value) : String(r.value ?? "—");
      const quality = r.quality || "good";
      return (
        `<tr data-tag="${esc(r.tag)}" data-quality="${esc(quality)}">` +
        `<td class="p-tag">${esc(r.tag)}</td>` +
        `<td class="p-val">${esc(value)} <span class="sub">${esc(r.eu || "")}</span></td>` +
        `<td class="p-q">${quality === "good" ? "" : esc(t(`province.quality.${quality}`))}</td>` +
        `<td class="p-time">${esc(fmtStamp(r.ts_ms))}</td></tr>`
      );
    })
    .join("");
  return `<table class="prov-readings"><tbody>${rows}</tbody></table>`;
}

function hazardSourceHtml(hs, readings) {
  const grade = hs.grade ? ` <span class="sub">${esc(t("province.grade", { n: hs.grade }))}</span>` : "";
  return (
    `<div class="prov-hs" data-hazard-source="${esc(hs.hazard_source)}" data-tier="${tierOf(hs.worst_tier)}">` +
    `<h5><span class="dot"></span>${esc(hs.hazard_source)} ${esc(hs.name || "")}${grade} ` +
    `<span class="open">${esc(t("province.open", { n: hs.open_warnings }))}</span></h5>` +
    readingsHtml(readings) +
    "</div>"
  );
}

/** Readings of one enterprise by hazard source code ("" outside every hazard source). */
function groupReadings(readings) {
  const byEnt = new Map();
  for (const r of readings) {
    const ent = String(r.enterprise ?? "");
    if (!byEnt.has(ent)) byEnt.set(ent, new Map());
    const byHs = byEnt.get(ent);
    const hs = String(r.hazard_source ?? "");
    if (!byHs.has(hs)) byHs.set(hs, []);
    byHs.get(hs).push(r);
  }
  return byEnt;
}

/** The drill-down of ``park`` (the detail answer) with its ``readings`` (the readings list). */
export function parkDetailHtml(park, readings) {
  const byEnt = groupReadings(readings);
  const enterprises = [...park.enterprise_list];
  const listed = new Set(enterprises.map((e) => e.enterprise));
  for (const code of [...byEnt.keys()].sort()) {
    if (!listed.has(code)) {
      enterprises.push({ enterprise: code, name: null, worst_tier: null, open_warnings: 0, hazard_sources: [] });
    }
  }
  const body = enterprises
    .map((ent) => {
      const mine = byEnt.get(ent.enterprise) || new Map();
      const known = new Set(ent.hazard_sources.map((h) => h.hazard_source));
      const sources = ent.hazard_sources.map((hs) => hazardSourceHtml(hs, mine.get(hs.hazard_source) || []));
      const others = [...mine.entries()].filter(([hs]) => !known.has(hs)).flatMap(([, list]) => list);
      if (others.length) {
        sources.push(
          `<div class="prov-hs prov-other" data-hazard-source="" data-tier="none">` +
            `<h5>${esc(t("province.other"))}</h5>${readingsHtml(others)}</div>`,
        );
      }
      return (
        `<section class="prov-ent" data-enterprise="${esc(ent.enterprise)}" data-tier="${tierOf(ent.worst_tier)}">` +
        `<h4><span class="dot"></span>${esc(ent.enterprise)} ${esc(ent.name || "")} ` +
        `<span class="open">${esc(t("province.open", { n: ent.open_warnings }))}</span></h4>` +
        sources.join("") +
        "</section>"
      );
    })
    .join("");
  return (
    `<div class="prov-head" data-tier="${tierOf(park.worst_tier)}">` +
    `<h3><span class="dot"></span>${esc(t("province.detail", { park: park.park }))}</h3>` +
    `<span class="link">${esc(t(`province.link.${park.link}`))}</span>` +
    `<button type="button" class="btn btn-ghost" data-prov-close>${esc(t("province.close"))}</button></div>` +
    (body || `<p class="prov-none">${esc(t("province.noEnterprises"))}</p>`)
  );
}
