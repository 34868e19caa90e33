// The park plan: enterprises as blocks, hazard sources as discs coloured by their worst alarm
// tier (red / orange / yellow / blue, from GET /api/v1/plant), drawn in SVG from the plant's
// coordinates (metres, x east, y north).

import { lang, t } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";
export const TIERS = ["red", "orange", "yellow", "blue"];

export function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function localName(item) {
  if (!item) return "";
  if (lang() === "en" && item.name_en) return item.name_en;
  return item.name || item.id || "";
}

/** Positions for hazard sources without coordinates: a grid right of everything else. */
function positions(plant) {
  const known = [];
  const missing = [];
  for (const ent of plant.enterprises || []) {
    for (const hs of ent.hazard_sources || []) {
      if (Number.isFinite(hs.x) && Number.isFinite(hs.y)) known.push(hs);
      else missing.push(hs);
    }
  }
  const pos = new Map(known.map((hs) => [hs.id, { x: hs.x, y: hs.y }]));
  if (missing.length) {
    const maxX = known.length ? Math.max(...known.map((h) => h.x)) : 0;
    const minY = known.length ? Math.min(...known.map((h) => h.y)) : 0;
    const cols = Math.ceil(Math.sqrt(missing.length));
    missing.forEach((hs, i) => {
      pos.set(hs.id, { x: maxX + 200 + (i % cols) * 150, y: minY + Math.floor(i / cols) * 150 });
    });
  }
  return pos;
}

/**
 * Draw the plan into `host`.
 * @param {object} plant GET /api/v1/plant
 * @param {object} opts { unackSources: Set, selected: string|null, onSelect(hsId) }
 */
export function drawPlan(host, plant, opts) {
  const pos = positions(plant);
  const points = [...pos.values()];
  if (!points.length) {
    host.innerHTML = "";
    return;
  }
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const span = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys), 200);
  const pad = span * 0.06;
  const r = span * 0.021;
  const font = span * 0.024;
  const blocks = [];
  for (const ent of plant.enterprises || []) {
    const mine = (ent.hazard_sources || []).map((hs) => pos.get(hs.id)).filter(Boolean);
    if (!mine.length) continue;
    const x0 = Math.min(...mine.map((p) => p.x)) - pad;
    const x1 = Math.max(...mine.map((p) => p.x)) + pad;
    const y0 = Math.min(...mine.map((p) => p.y)) - pad;
    const y1 = Math.max(...mine.map((p) => p.y)) + pad + font * 1.6; // room for the name
    blocks.push({ ent, x0, x1, y0, y1 });
  }
  const minX = Math.min(...blocks.map((b) => b.x0)) - pad * 0.5;
  const maxX = Math.max(...blocks.map((b) => b.x1)) + pad * 0.5;
  const minY = Math.min(...blocks.map((b) => b.y0)) - pad * 0.5;
  const maxY = Math.max(...blocks.map((b) => b.y1)) + pad * 0.5;
  const sy = (y) => maxY - y + minY; // north up

  const parts = [];
  for (const { ent, x0, x1, y0, y1 } of blocks) {
    const offline = ent.online === false;
    parts.push(
      `<g class="plan-ent${offline ? " offline" : ""}" data-enterprise="${esc(ent.id)}">` +
        `<rect x="${x0}" y="${sy(y1)}" width="${x1 - x0}" height="${y1 - y0}" rx="${pad * 0.3}"></rect>` +
        `<text x="${x0 + pad * 0.3}" y="${sy(y1) + font * 1.2}" font-size="${font}">${esc(localName(ent))}` +
        `${offline ? ` (${esc(t("plan.offline"))})` : ""}</text></g>`,
    );
  }
  for (const ent of plant.enterprises || []) {
    for (const hs of ent.hazard_sources || []) {
      const p = pos.get(hs.id);
      const tier = TIERS.includes(hs.worst_tier) ? hs.worst_tier : "none";
      const grade = Number(hs.grade);
      const radius = r * (grade === 1 ? 1.3 : grade === 2 ? 1.15 : 1);
      const classes = ["hs"];
      if (opts.unackSources && opts.unackSources.has(hs.id)) classes.push("unack");
      if (opts.selected === hs.id) classes.push("selected");
      const count = Number(hs.active_alarms) || 0;
      const title = [
        `${localName(hs)} (${hs.id})`,
        Number.isFinite(grade) && grade > 0 ? t("plan.grade", { grade }) : "",
        t(tier === "none" ? "tier.none" : `tier.${tier}`),
        count ? `${t("counts.total")}: ${count}` : "",
      ]
        .filter(Boolean)
        .join("\n");
      parts.push(
        `<g class="${classes.join(" ")}" data-hs="${esc(hs.id)}" data-tier="${tier}" tabindex="0" role="button">` +
          `<title>${esc(title)}</title>` +
          `<circle class="ring" cx="${p.x}" cy="${sy(p.y)}" r="${radius * 1.45}"></circle>` +
          `<circle class="dot" cx="${p.x}" cy="${sy(p.y)}" r="${radius}"></circle>` +
          (count
            ? `<text class="count" x="${p.x}" y="${sy(p.y) + font * 0.35}" font-size="${font}" text-anchor="middle">${count}</text>`
            : "") +
          `<text class="label" x="${p.x}" y="${sy(p.y) + radius + font * 1.05}" font-size="${font * (tier === "none" ? 0.7 : 0.9)}" text-anchor="middle">${esc(localName(hs))}</text>` +
          `</g>`,
      );
    }
  }
  host.innerHTML =
    `<svg xmlns="${SVG_NS}" viewBox="${minX} ${minY} ${maxX - minX} ${maxY - minY}" ` +
    `preserveAspectRatio="xMidYMid meet" role="img" aria-label="${esc(t("panel.plan"))}">${parts.join("")}</svg>`;
  for (const g of host.querySelectorAll(".hs")) {
    const pick = () => opts.onSelect && opts.onSelect(g.dataset.hs);
    g.addEventListener("click", pick);
    g.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") pick();
    });
  }
}

export function legendHtml() {
  return [...TIERS, "none"]
    .map((tier) => `<span><i class="tier-dot t-${tier}"></i>${esc(t(`tier.${tier}`))}</span>`)
    .join("");
}
