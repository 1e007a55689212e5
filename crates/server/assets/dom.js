// DOM and formatting helpers of the dashboard: elements built without HTML parsing, values
// formatted with "–" for whatever the server does not (yet) send, rows kept by key.

export const SVG_NS = "http://www.w3.org/2000/svg";

export const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// ---- formatting: "–" for whatever the server does not (yet) send ----

export const DASH = "–";
export const present = (v) => v !== undefined && v !== null;
export const fmtCount = (v) => (typeof v === "number" ? v.toLocaleString("en-US") : DASH);

export function fmtSecs(v) {
  if (typeof v !== "number" || !isFinite(v)) return DASH;
  if (v < 1) return `${Math.round(v * 1000)} ms`;
  if (v < 60) return `${v.toFixed(1)} s`;
  const s = Math.round(v);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function fmtTime(v) {
  if (!v) return DASH;
  const d = new Date(v);
  return isNaN(d) ? String(v) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** The first present value among `paths` ("a.b.c") of `obj`. */
export function pick(obj, ...paths) {
  for (const path of paths) {
    let v = obj;
    for (const part of path.split(".")) v = v === undefined || v === null ? undefined : v[part];
    if (present(v)) return v;
  }
  return undefined;
}

/** Keep `tbody`'s rows in step with `items` by key, reusing rows (a row under the mouse or
 *  the test's cursor survives a refresh). */
export function syncRows(tbody, items, keyOf, create, update) {
  const existing = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    let tr = existing.get(key);
    if (tr) existing.delete(key);
    else {
      tr = create(item);
      tr.dataset.key = key;
    }
    update(tr, item);
    const next = previous ? previous.nextSibling : tbody.firstChild;
    if (next !== tr) tbody.insertBefore(tr, next);
    previous = tr;
  }
  for (const tr of existing.values()) tr.remove();
}
