// The dashboard's charts: hand-drawn SVG bars (no library).

import { svgEl, DASH, pick } from "./dom.js";


/** Bars of `series` ([{name, cls, values}]) over `labels`, stacked or side by side. */
export function drawBars(svg, labels, series, { stacked = false, unit = "", every = 1 } = {}) {
  const [W, H, left, bottom, top] = [600, 200, 44, 22, 16];
  svg.replaceChildren();
  const totals = labels.map((_, i) =>
    stacked ? series.reduce((s, x) => s + (x.values[i] || 0), 0) : Math.max(0, ...series.map((x) => x.values[i] || 0)));
  const max = Math.max(...totals, 0);
  if (!labels.length || max === 0) {
    svg.append(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "no-data" }, labels.length ? "no events" : DASH));
    svg.dataset.empty = "true";
    return;
  }
  delete svg.dataset.empty;
  const plotH = H - bottom - top;
  const slot = (W - left) / labels.length;
  const perBar = stacked ? slot * 0.8 : (slot * 0.8) / series.length;
  svg.append(
    svgEl("line", { x1: left, y1: top, x2: left, y2: H - bottom, class: "axis" }),
    svgEl("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, class: "axis" }),
    svgEl("text", { x: left - 4, y: top + 4, "text-anchor": "end", class: "tick" }, `${+max.toPrecision(3)}${unit}`),
    svgEl("text", { x: left - 4, y: H - bottom, "text-anchor": "end", class: "tick" }, "0"),
  );
  labels.forEach((label, i) => {
    let base = H - bottom;
    series.forEach((s, j) => {
      const v = s.values[i] || 0;
      const h = (v / max) * plotH;
      const x = left + i * slot + slot * 0.1 + (stacked ? 0 : j * perBar);
      const y = stacked ? base - h : H - bottom - h;
      if (stacked) base -= h;
      const rect = svgEl("rect", { x, y, width: Math.max(perBar - 1, 1), height: h, class: `bar ${s.cls}`, "data-series": s.name, "data-value": v });
      rect.append(svgEl("title", {}, `${label} ${s.name}: ${+v.toPrecision(4)}${unit}`));
      svg.append(rect);
    });
    if (i % every === 0) {
      svg.append(svgEl("text", { x: left + i * slot + slot / 2, y: H - 6, "text-anchor": "middle", class: "tick" }, label));
    }
  });
  series.forEach((s, j) => {
    svg.append(svgEl("rect", { x: W - 90, y: 4 + j * 12, width: 8, height: 8, class: `bar ${s.cls}` }));
    svg.append(svgEl("text", { x: W - 78, y: 12 + j * 12, class: "tick" }, s.name));
  });
}

export function drawThroughput(svg, activity) {
  const minutes = pick(activity, "per_minute", "throughput") || [];
  const label = (m) => (m.minute ? new Date(m.minute).toISOString().slice(11, 16) : "");
  drawBars(svg, minutes.map(label), [
    { name: "completed", cls: "ok", values: minutes.map((m) => m.completed || 0) },
    { name: "failed", cls: "bad", values: minutes.map((m) => m.failed || 0) },
  ], { stacked: true, every: 10 });
}

export function drawLatency(svg, activity) {
  const part = (name) => pick(activity, name, `latency.${name}`) || {};
  const [wait, run] = [part("wait"), part("run")];
  const has = [wait, run].some((p) => ["p50", "p95", "p99"].some((k) => typeof p[k] === "number"));
  drawBars(svg, has ? ["wait", "run"] : [], ["p50", "p95", "p99"].map((k, j) => ({
    name: k, cls: `p${j}`, values: [wait[k], run[k]].map((v) => (typeof v === "number" ? v : 0)),
  })), { unit: " s" });
}
