// Tilecast's live dashboard page: opens the dashboard's stream (Server-Sent Events, PostHog's wire format) and
// draws the dashboard as its messages arrive. One module, no dependencies, no build step.
//
// Safety: every label, breakdown value, name and cell is data someone sent, so data is only ever written with
// textContent and SVG text nodes, never as markup; text tiles go through this module's own small Markdown
// subset, which builds DOM nodes (links only to http(s) targets). Styles are set through the CSSOM
// (`element.style.setProperty`), which the page's Content-Security-Policy allows.

const SVG_NS = "http://www.w3.org/2000/svg";

// The default data color theme (one color per series, in turn).
export const DEFAULT_PALETTE = [
  "#1d4aff", "#621da6", "#42827e", "#ce0e74", "#f14f58", "#7c440e", "#529a0a", "#0476fb",
  "#fe729e", "#35416b", "#41cbc4", "#b64b02", "#e4a604", "#a56eff", "#30d5c8",
];

// A signed-in viewer's date ranges ("": the dashboard's own filters).
const DATE_RANGES = [
  ["", "Dashboard's range"],
  ["-24h", "Last 24 hours"],
  ["-7d", "Last 7 days"],
  ["-14d", "Last 14 days"],
  ["-30d", "Last 30 days"],
  ["-90d", "Last 90 days"],
];

const TIME_SERIES = new Set([
  "ActionsLineGraph", "ActionsLineGraphCumulative", "ActionsBar", "ActionsUnstackedBar", "ActionsStackedBar",
  "ActionsAreaGraph",
]);
const AS_TABLE = {
  ActionsTable: null,
  ActionsBarValue: null,
  ActionsPie: "A pie chart, shown as a table.",
  WorldMap: "A world map, shown as a table.",
  CalendarHeatmap: "A calendar heatmap, shown as a table.",
};

// --- numbers -------------------------------------------------------------------------------------------------

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const percentFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

/** A number for people: thousands separators, at most 2 decimals; "–" for what is not a finite number. */
export function formatNumber(value) {
  const n = typeof value === "number" ? value : Number(value);
  if (value === null || value === undefined || value === "" || !Number.isFinite(n)) return "–";
  return numberFormat.format(n);
}

function formatPercent(value) {
  return `${percentFormat.format(value)}%`;
}

// --- DOM helpers (text only) -------------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

// --- Markdown (a small subset, built as DOM nodes) ---------------------------------------------------------

function safeHref(raw) {
  try {
    const url = new URL(raw, document.baseURI);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

const INLINE = [
  { kind: "code", re: /`([^`\n]+)`/ },
  { kind: "link", re: /\[([^\]\n]+)\]\(((?:[^()\s]|\([^()\s]*\))+)\)/ },
  { kind: "strong", re: /\*\*(?=\S)([^\n]*?\S)\*\*/ },
  { kind: "strong", re: /__(?=\S)([^\n]*?\S)__/ },
  { kind: "em", re: /\*(?=\S)([^*\n]*?\S)\*/ },
  { kind: "em", re: /(?<![\w])_(?=\S)([^_\n]*?\S)_(?![\w])/ },
];

/** Inline Markdown (code, links, strong, emphasis) appended to `parent` as nodes. */
function appendInline(parent, text, depth = 0) {
  let rest = text;
  while (rest) {
    let best = null;
    for (const rule of INLINE) {
      const m = rule.re.exec(rest);
      if (m && (best === null || m.index < best.m.index)) best = { rule, m };
    }
    if (best === null || depth > 8) {
      parent.appendChild(document.createTextNode(rest));
      return;
    }
    const { rule, m } = best;
    if (m.index > 0) parent.appendChild(document.createTextNode(rest.slice(0, m.index)));
    if (rule.kind === "code") {
      parent.appendChild(el("code", null, m[1]));
    } else if (rule.kind === "link") {
      const href = safeHref(m[2]);
      if (href === null) {
        appendInline(parent, m[1], depth + 1);
      } else {
        const a = el("a");
        a.href = href;
        a.rel = "noopener noreferrer nofollow";
        a.target = "_blank";
        appendInline(a, m[1], depth + 1);
        parent.appendChild(a);
      }
    } else {
      const node = el(rule.kind);
      appendInline(node, m[1], depth + 1);
      parent.appendChild(node);
    }
    rest = rest.slice(m.index + m[0].length);
  }
}

/** A Markdown subset (headings, paragraphs, lists, fenced code, inline code, emphasis, http(s) links) as a
 * DocumentFragment. No HTML passes through: `<b>` in the text stays the text `<b>`. */
export function renderMarkdown(source) {
  const out = document.createDocumentFragment();
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  let paragraph = [];
  let list = null;
  const flushParagraph = () => {
    if (paragraph.length) {
      const p = el("p");
      appendInline(p, paragraph.join(" "));
      out.appendChild(p);
      paragraph = [];
    }
  };
  const flushList = () => {
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*```/.test(line)) {
      flushParagraph();
      flushList();
      const code = [];
      i++;
      while (i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i++]);
      const pre = el("pre");
      pre.appendChild(el("code", null, code.join("\n")));
      out.appendChild(pre);
      continue;
    }
    const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      flushParagraph();
      flushList();
      const level = Math.min(heading[1].length + 2, 6);
      const h = el(`h${level}`, "tc-md-heading");
      appendInline(h, heading[2]);
      out.appendChild(h);
      continue;
    }
    const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d{1,9}[.)]\s+(.*)$/.exec(line);
    if (bullet || numbered) {
      flushParagraph();
      const tag = bullet ? "ul" : "ol";
      if (list === null || list.tagName.toLowerCase() !== tag) {
        list = el(tag);
        out.appendChild(list);
      }
      const li = el("li");
      appendInline(li, (bullet || numbered)[1]);
      list.appendChild(li);
      continue;
    }
    if (!line.trim()) {
      flushParagraph();
      flushList();
      continue;
    }
    flushList();
    paragraph.push(line.trim());
  }
  flushParagraph();
  return out;
}

// --- results -------------------------------------------------------------------------------------------------

const DRAWN_KINDS = new Set([
  "TrendsQuery", "FunnelsQuery", "RetentionQuery", "LifecycleQuery", "StickinessQuery", "HogQLQuery",
]);

function displayOf(insight) {
  const source = queryOf(insight);
  return source?.trendsFilter?.display || insight?.filters?.display || "ActionsLineGraph";
}

function seriesLabel(result) {
  let label = result.label ?? result.action?.name ?? "Series";
  const bv = result.breakdown_value;
  if (bv !== undefined && bv !== null && String(label) !== String(bv)) {
    label = `${label} – ${Array.isArray(bv) ? bv.join(", ") : bv}`;
  }
  if (result.compare_label === "previous") label = `${label} (previous)`;
  return String(label);
}

function totalOf(result) {
  if (typeof result.aggregated_value === "number") return result.aggregated_value;
  if (typeof result.count === "number") return result.count;
  return (result.data || []).reduce((a, b) => a + (Number(b) || 0), 0);
}

/** Colors by position among current series; a previous period's series takes its current's color. */
function assignColors(results, palette) {
  let current = 0;
  let previous = 0;
  return results.map((r) => {
    const index = r.compare_label === "previous" ? previous++ : current++;
    return palette[index % palette.length];
  });
}

// --- charts --------------------------------------------------------------------------------------------------

function niceStep(range, count) {
  const raw = range / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  const unit = raw / power;
  const nice = unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 2.5 ? 2.5 : unit <= 5 ? 5 : 10;
  return nice * power;
}

function yTicks(min, max, count, integer = false) {
  if (min === max) max = min + 1;
  let step = niceStep(max - min, count);
  if (integer && !Number.isInteger(step)) step = step < 1 ? 1 : Math.floor(step);
  const start = Math.floor(min / step) * step;
  const end = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const LABEL_CHAR_WIDTH = 6.6; // about the advance of one character of an 11px tick label

/** Where each x label goes: evenly spread, never overlapping, the first and last buckets labelled.
 * Returns [index, x, anchor] triples. */
function xTickPlacements(labels, length, xAt, width) {
  const extent = (i) => {
    const half = (String(labels[i] ?? i + 1).length * LABEL_CHAR_WIDTH) / 2;
    const x = xAt(i);
    if (x - half < 2) return { i, x: Math.max(x - 4, 2), anchor: "start", left: x - 4, right: x - 4 + 2 * half };
    if (x + half > width - 2) {
      const end = Math.min(x + 4, width - 2);
      return { i, x: end, anchor: "end", left: end - 2 * half, right: end };
    }
    return { i, x, anchor: "middle", left: x - half, right: x + half };
  };
  if (!length) return [];
  const widest = Math.max(...Array.from({ length }, (_, i) => String(labels[i] ?? i + 1).length));
  const spacing = widest * LABEL_CHAR_WIDTH + 14;
  const span = Math.abs(xAt(length - 1) - xAt(0));
  const step = Math.max(1, Math.ceil((length - 1) / Math.max(Math.floor(span / spacing), 1)));
  // The smallest regular step whose labels do not overlap.
  const fits = (ticks) => ticks.every((t, k) => k === 0 || ticks[k - 1].right + 8 <= t.left);
  let out = [extent(0)];
  for (let s = step; s < length; s++) {
    const ticks = [];
    for (let i = 0; i < length; i += s) ticks.push(extent(i));
    if (fits(ticks)) {
      out = ticks;
      break;
    }
  }
  const last = extent(length - 1);
  if (out[out.length - 1].i !== last.i) {
    while (out.length > 1 && out[out.length - 1].right + 8 > last.left) out.pop();
    if (out[out.length - 1].right + 8 <= last.left) out.push(last);
  }
  return out;
}

/** A trends chart (`kind`: "line", "area", "bar" or "stacked" bars) of `results` into `host`, sized to it.
 * `opts.format` writes the values (ticks, tooltips; `formatNumber` by default); `opts.titles` names each
 * bucket in the tooltip when its x label is too short to; `opts.integer` keeps the y ticks whole (counts). */
function drawTrendChart(host, results, colors, kind, opts = {}) {
  clear(host);
  const fmt = opts.format || formatNumber;
  const bars = kind === "bar" || kind === "stacked";
  const width = Math.max(host.clientWidth, 240);
  const height = Math.max(host.clientHeight, 160);
  const labels = (results.find((r) => Array.isArray(r.labels))?.labels ||
    results.find((r) => Array.isArray(r.days))?.days || []).map(String);
  const length = Math.max(labels.length, ...results.map((r) => (r.data || []).length), 0);
  let values = results.flatMap((r) => (r.data || []).map(Number).filter(Number.isFinite));
  if (kind === "stacked") {
    // The extent is that of each bucket's sums: positives stack up from zero, negatives down.
    values = Array.from({ length }, (_, i) => {
      const at = results.map((r) => Number((r.data || [])[i])).filter(Number.isFinite);
      return [at.filter((v) => v > 0).reduce((a, b) => a + b, 0), at.filter((v) => v < 0).reduce((a, b) => a + b, 0)];
    }).flat();
  }
  const ticks = yTicks(Math.min(0, ...values), Math.max(0, ...values), Math.max(2, Math.floor(height / 50)), opts.integer);
  const yMin = ticks[0];
  const yMax = ticks[ticks.length - 1];
  const tickTexts = ticks.map(fmt);
  const left = 12 + 7 * Math.max(...tickTexts.map((t) => t.length));
  const margin = { top: 10, right: 14, bottom: 26, left };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const band = plotW / Math.max(length, 1);
  const xAt = bars
    ? (i) => margin.left + band * (i + 0.5)
    : (i) => margin.left + (length <= 1 ? plotW / 2 : (plotW * i) / (length - 1));
  const yAt = (v) => margin.top + plotH - ((v - yMin) / (yMax - yMin || 1)) * plotH;

  const svg = svgEl("svg", {
    class: `tc-chart tc-chart-${kind}`,
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
  });
  svg.appendChild(svgEl("title", {}, results.map(seriesLabel).join(", ")));

  // Axes: horizontal grid lines with the y tick labels, x tick labels under the plot.
  const axes = svgEl("g", { class: "tc-axes" });
  for (let i = 0; i < ticks.length; i++) {
    const y = yAt(ticks[i]);
    axes.appendChild(svgEl("line", {
      class: ticks[i] === 0 ? "tc-grid-line tc-zero" : "tc-grid-line",
      x1: margin.left, x2: width - margin.right, y1: y, y2: y,
    }));
    axes.appendChild(svgEl("text", {
      class: "tc-tick tc-y-tick", x: margin.left - 6, y: y + 4, "text-anchor": "end",
    }, tickTexts[i]));
  }
  for (const tick of xTickPlacements(labels, length, xAt, width)) {
    axes.appendChild(svgEl("text", {
      class: "tc-tick tc-x-tick", x: tick.x, y: height - 8, "text-anchor": tick.anchor,
    }, labels[tick.i] ?? String(tick.i + 1)));
  }
  svg.appendChild(axes);

  const plot = svgEl("g", { class: "tc-plot" });
  const dense = length > 45;
  const stackUp = new Array(length).fill(0);
  const stackDown = new Array(length).fill(0);
  results.forEach((result, s) => {
    const data = (result.data || []).map(Number);
    const previous = result.compare_label === "previous";
    const group = svgEl("g", {
      class: `tc-series${previous ? " tc-previous" : ""}${dense ? " tc-dense" : ""}`,
      "data-series": s,
      stroke: colors[s],
      fill: colors[s],
    });
    if (kind === "bar") {
      const barW = (band * 0.8) / results.length;
      data.forEach((v, i) => {
        const value = Number.isFinite(v) ? v : 0;
        const y = yAt(Math.max(value, 0));
        const rect = svgEl("rect", {
          class: "tc-bar",
          x: margin.left + band * i + band * 0.1 + barW * s,
          y,
          width: Math.max(barW - 1, 1),
          height: Math.max(Math.abs(yAt(value) - yAt(0)), value === 0 ? 0 : 1),
        });
        rect.appendChild(svgEl("title", {}, `${seriesLabel(result)} · ${labels[i] ?? ""}: ${fmt(v)}`));
        group.appendChild(rect);
      });
    } else if (kind === "stacked") {
      const barW = Math.max(band * 0.7, 1);
      data.forEach((v, i) => {
        const value = Number.isFinite(v) ? v : 0;
        const stack = value < 0 ? stackDown : stackUp;
        const from = stack[i];
        const to = from + value;
        stack[i] = to;
        const rect = svgEl("rect", {
          class: `tc-bar ${value < 0 ? "tc-below" : "tc-above"}`,
          x: margin.left + band * i + (band - barW) / 2,
          y: yAt(Math.max(from, to)),
          width: barW,
          height: Math.abs(yAt(to) - yAt(from)),
        });
        rect.appendChild(svgEl("title", {}, `${seriesLabel(result)} · ${labels[i] ?? ""}: ${fmt(v)}`));
        group.appendChild(rect);
      });
    } else {
      const points = data.map((v, i) => [xAt(i), yAt(Number.isFinite(v) ? v : 0)]);
      const d = points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
      if (kind === "area" && points.length) {
        const base = yAt(Math.max(yMin, 0)).toFixed(1);
        const area = `${d}L${points[points.length - 1][0].toFixed(1)},${base}L${points[0][0].toFixed(1)},${base}Z`;
        group.appendChild(svgEl("path", { class: "tc-area", d: area }));
      }
      group.appendChild(svgEl("path", { class: "tc-line", d }));
      points.forEach(([x, y], i) => {
        const point = svgEl("circle", { class: "tc-point", cx: x.toFixed(1), cy: y.toFixed(1), r: 3 });
        point.appendChild(svgEl("title", {}, `${seriesLabel(result)} · ${labels[i] ?? ""}: ${fmt(data[i])}`));
        group.appendChild(point);
      });
    }
    plot.appendChild(group);
  });
  svg.appendChild(plot);

  // Hover: a guide at the nearest bucket and a box with every series' value there.
  const guide = svgEl("line", { class: "tc-guide", y1: margin.top, y2: margin.top + plotH, x1: 0, x2: 0 });
  guide.setAttribute("visibility", "hidden");
  svg.appendChild(guide);
  const overlay = svgEl("rect", {
    class: "tc-overlay", x: margin.left, y: margin.top, width: Math.max(plotW, 1), height: Math.max(plotH, 1),
  });
  svg.appendChild(overlay);
  host.appendChild(svg);
  const tip = el("div", "tc-tooltip");
  tip.hidden = true;
  host.appendChild(tip);

  const indexAt = (clientX) => {
    const box = svg.getBoundingClientRect();
    const x = clientX - box.left;
    const i = bars
      ? Math.floor((x - margin.left) / band)
      : Math.round(((x - margin.left) / (plotW || 1)) * (length - 1));
    return Math.min(Math.max(i, 0), Math.max(length - 1, 0));
  };
  overlay.addEventListener("pointermove", (event) => {
    if (!length) return;
    const i = indexAt(event.clientX);
    const x = xAt(i);
    guide.setAttribute("x1", x);
    guide.setAttribute("x2", x);
    guide.setAttribute("visibility", "visible");
    for (const node of svg.querySelectorAll(".tc-hot")) node.classList.remove("tc-hot");
    for (const group of svg.querySelectorAll(".tc-series")) {
      const marks = group.querySelectorAll(".tc-point, .tc-bar");
      if (marks[i]) marks[i].classList.add("tc-hot");
    }
    clear(tip);
    tip.appendChild(el("div", "tc-tooltip-title", opts.titles?.[i] ?? labels[i] ?? ""));
    results.forEach((result, s) => {
      const row = el("div", "tc-tooltip-row");
      const swatch = el("span", "tc-swatch");
      swatch.style.setProperty("--swatch", colors[s]);
      row.append(swatch, el("span", "tc-tooltip-label", seriesLabel(result)),
        el("span", "tc-tooltip-value", fmt((result.data || [])[i])));
      tip.appendChild(row);
    });
    tip.hidden = false;
    const flip = x > width / 2;
    tip.style.setProperty("left", flip ? "auto" : `${x + 12}px`);
    tip.style.setProperty("right", flip ? `${width - x + 12}px` : "auto");
    tip.style.setProperty("top", `${margin.top}px`);
  });
  overlay.addEventListener("pointerleave", () => {
    guide.setAttribute("visibility", "hidden");
    for (const node of svg.querySelectorAll(".tc-hot")) node.classList.remove("tc-hot");
    tip.hidden = true;
  });
}

function legend(results, colors) {
  const list = el("ul", "tc-legend");
  results.forEach((result, s) => {
    const item = el("li", result.compare_label === "previous" ? "tc-legend-item tc-previous" : "tc-legend-item");
    const swatch = el("span", "tc-swatch");
    swatch.style.setProperty("--swatch", colors[s]);
    item.append(swatch, el("span", "tc-legend-label", seriesLabel(result)));
    list.appendChild(item);
  });
  return list;
}

function detailsTable(results) {
  const table = el("table", "tc-table tc-details");
  const head = el("tr");
  head.append(el("th", null, "Series"), el("th", "tc-num", "Total"));
  table.appendChild(el("thead")).appendChild(head);
  const body = el("tbody");
  for (const result of results) {
    const row = el("tr");
    row.append(el("td", null, seriesLabel(result)), el("td", "tc-num", formatNumber(totalOf(result))));
    body.appendChild(row);
  }
  table.appendChild(body);
  return table;
}

/** A chart of series with its legend (and, when asked, the details table). `chart` may set the `kind`
 * ("line", "area", "bar", "stacked"), the `colors`, and what `drawTrendChart` takes (`format`, `titles`). */
function drawTrends(body, results, display, palette, options, chart = {}) {
  const kind = chart.kind || (display.includes("Bar") ? "bar" : display === "ActionsAreaGraph" ? "area" : "line");
  const colors = chart.colors || assignColors(results, palette);
  const host = el("div", "tc-chart-host");
  body.appendChild(host);
  if (options.legend && chart.legend !== false) body.appendChild(legend(results, colors));
  if (options.detailed && chart.details !== false) body.appendChild(detailsTable(results));
  let drawnSize = "";
  const draw = () => {
    const size = `${host.clientWidth}x${host.clientHeight}`;
    if (size === drawnSize) return;
    drawnSize = size;
    drawTrendChart(host, results, colors, kind, chart);
  };
  draw();
  if (typeof ResizeObserver === "function") {
    let pending = false;
    new ResizeObserver(() => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        draw();
      });
    }).observe(host);
  }
}

function drawNumber(body, results) {
  const current = results.find((r) => r.compare_label !== "previous") || results[0];
  const previous = results.find((r) => r.compare_label === "previous");
  const box = el("div", "tc-number");
  const value = totalOf(current);
  box.appendChild(el("div", "tc-number-value", formatNumber(value)));
  if (previous) {
    const before = totalOf(previous);
    let text;
    let trend = "flat";
    if (before === 0) {
      text = value === 0 ? "No change from the previous period" : "Up from 0 in the previous period";
      trend = value === 0 ? "flat" : "up";
    } else {
      const change = ((value - before) / Math.abs(before)) * 100;
      trend = change > 0 ? "up" : change < 0 ? "down" : "flat";
      const arrow = trend === "up" ? "▲" : trend === "down" ? "▼" : "=";
      text = `${arrow} ${formatPercent(Math.abs(change))} from the previous period (${formatNumber(before)})`;
    }
    box.appendChild(el("div", `tc-number-change tc-${trend}`, text));
  }
  box.appendChild(el("div", "tc-number-label", seriesLabel({ ...current, compare_label: undefined })));
  body.appendChild(box);
}

function drawTable(body, results, display, palette) {
  const note = AS_TABLE[display];
  if (note) body.appendChild(el("p", "tc-note", note));
  const rows = results
    .map((r) => ({ label: seriesLabel(r), value: totalOf(r) }))
    .sort((a, b) => (b.value || 0) - (a.value || 0));
  const max = Math.max(...rows.map((r) => Math.abs(r.value) || 0), 0);
  const table = el("table", "tc-table tc-breakdown");
  const head = el("tr");
  head.append(el("th", null, "Breakdown"), el("th", "tc-num", "Value"));
  table.appendChild(el("thead")).appendChild(head);
  const tbody = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    const valueCell = el("td", "tc-num");
    const bar = el("span", "tc-value-bar");
    bar.style.setProperty("width", `${max ? (Math.abs(row.value) / max) * 100 : 0}%`);
    bar.style.setProperty("background-color", palette[0]);
    valueCell.append(bar, el("span", "tc-value-text", formatNumber(row.value)));
    tr.append(el("td", "tc-label", row.label), valueCell);
    tbody.appendChild(tr);
  }
  table.appendChild(tbody);
  body.appendChild(table);
}

// --- funnels, retention, lifecycle, stickiness -------------------------------------------------------------

/** The insight's query: an InsightVizNode's source, or the query itself. */
function queryOf(insight) {
  const query = insight?.query;
  if (query && typeof query === "object" && query.source && typeof query.source === "object") return query.source;
  return query && typeof query === "object" ? query : null;
}

/** What a tile draws: a trends display, or the kind's own drawing. */
function vizOf(insight) {
  const source = queryOf(insight);
  switch (source?.kind) {
    case "FunnelsQuery":
      return `Funnel-${FUNNEL_VIZ.has(source.funnelsFilter?.funnelVizType) ? source.funnelsFilter.funnelVizType : "steps"}`;
    case "RetentionQuery":
      return "RetentionTable";
    case "LifecycleQuery":
      return "LifecycleBars";
    case "StickinessQuery":
      return "StickinessBars";
    default:
      return displayOf(insight);
  }
}

const FUNNEL_VIZ = new Set(["steps", "trends", "time_to_convert"]);

/** A duration in seconds for people, in at most two units: "45s", "5m 3s", "2h 5m", "3d 4h". */
export function formatDuration(seconds) {
  const n = typeof seconds === "number" ? seconds : Number(seconds);
  if (seconds === null || seconds === undefined || seconds === "" || !Number.isFinite(n)) return "–";
  let rest = Math.round(Math.abs(n));
  const sign = n < 0 ? "-" : "";
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count || parts.length || size === 1) parts.push([count, unit]);
  }
  const [first, second] = parts;
  const text = second && second[0] ? `${first[0]}${first[1]} ${second[0]}${second[1]}` : `${first[0]}${first[1]}`;
  return sign + text;
}

function percentOrDash(value) {
  const n = Number(value);
  return value === null || value === undefined || !Number.isFinite(n) ? "–" : formatPercent(n);
}

/** count as a percentage of `of` (0 when `of` is 0). */
function rate(count, of) {
  const c = Number(count) || 0;
  const o = Number(of) || 0;
  return o > 0 ? (c / o) * 100 : 0;
}

/** A breakdown value as text: lists joined, a missing value (`""`, null) as "None". */
function breakdownText(value) {
  const one = (v) => (v === "" || v === null || v === undefined ? "None" : String(v));
  return Array.isArray(value) ? (value.length ? value.map(one).join(", ") : "None") : one(value);
}

function stepName(step, index) {
  if (!step || typeof step !== "object") return `Step ${index + 1}`;
  const name = step.custom_name ?? step.name ?? (step.action_id === null ? "All events" : step.action_id);
  return name === null || name === undefined || name === "" ? `Step ${index + 1}` : String(name);
}

/** Funnel steps as horizontal bars: per step its name, count and conversion from the first step and from
 * the previous one; a breakdown draws one bar per value in each step, with a legend. */
function drawFunnelSteps(body, results, palette, options) {
  const broken = results.some(Array.isArray);
  const groups = broken ? results.filter(Array.isArray) : [results.filter((s) => s && typeof s === "object")];
  const stepCount = Math.max(0, ...groups.map((g) => g.length));
  if (!stepCount) {
    body.appendChild(el("p", "tc-note", "No data for this period."));
    return;
  }
  const colors = groups.map((_, g) => palette[g % palette.length]);
  const countAt = (group, k) => Number(group[k]?.count) || 0;
  const totals = Array.from({ length: stepCount }, (_, k) => groups.reduce((a, g) => a + countAt(g, k), 0));

  const box = el("div", "tc-funnel");
  const summary = el("p", "tc-funnel-summary");
  summary.append(
    el("span", "tc-funnel-total", formatPercent(rate(totals[stepCount - 1], totals[0]))),
    document.createTextNode(` of ${formatNumber(totals[0])} converted from the first step to the last`),
  );
  box.appendChild(summary);

  const list = el("ol", "tc-funnel-steps");
  for (let k = 0; k < stepCount; k++) {
    const item = el("li", "tc-funnel-step");
    item.dataset.step = String(k);
    const head = el("div", "tc-funnel-step-head");
    const reference = groups.find((g) => g[k])?.[k];
    head.append(el("span", "tc-funnel-step-index", k + 1), el("span", "tc-funnel-step-name", stepName(reference, k)));
    if (broken) head.appendChild(el("span", "tc-funnel-step-total", formatNumber(totals[k])));
    item.appendChild(head);
    groups.forEach((group, g) => {
      const count = countAt(group, k);
      const fromFirst = k === 0 ? (count ? 100 : 0) : rate(count, countAt(group, 0));
      const fromPrevious = k === 0 ? fromFirst : rate(count, countAt(group, k - 1));
      const row = el("div", "tc-funnel-row");
      row.dataset.series = String(g);
      const track = el("div", "tc-funnel-track");
      const bar = el("span", "tc-funnel-bar");
      bar.style.setProperty("width", `${Math.min(Math.max(fromFirst, 0), 100)}%`);
      bar.style.setProperty("background-color", colors[g]);
      const name = broken ? `${breakdownText(group[0]?.breakdown_value ?? group[0]?.breakdown)} · ` : "";
      track.title = `${name}${stepName(group[k] || reference, k)}: ${formatNumber(count)}`;
      track.appendChild(bar);
      const figures = el("div", "tc-funnel-figures");
      figures.appendChild(el("span", "tc-funnel-count", formatNumber(count)));
      figures.appendChild(el("span", "tc-funnel-rate", formatPercent(fromFirst)));
      if (k > 0) {
        figures.appendChild(el("span", "tc-funnel-rate-previous", `${formatPercent(fromPrevious)} from previous`));
        const dropped = countAt(group, k - 1) - count;
        if (!broken && dropped > 0) figures.appendChild(el("span", "tc-funnel-dropped", `${formatNumber(dropped)} dropped off`));
        const time = group[k]?.average_conversion_time;
        if (!broken && typeof time === "number") figures.appendChild(el("span", "tc-funnel-time", `avg ${formatDuration(time)}`));
      }
      row.append(track, figures);
      item.appendChild(row);
    });
    list.appendChild(item);
  }
  box.appendChild(list);
  body.appendChild(box);
  if (broken && options.legend) {
    body.appendChild(legend(groups.map((group) => ({ label: breakdownText(group[0]?.breakdown_value ?? group[0]?.breakdown) })), colors));
  }
}

/** A funnel's conversion rate over time: the trends line chart, in percent. */
function drawFunnelTrends(body, results, palette, options) {
  const series = results
    .filter((r) => r && typeof r === "object")
    .map((r) => ({
      label: r.breakdown_value === undefined ? "Conversion rate" : breakdownText(r.breakdown_value),
      compare_label: r.compare_label,
      data: r.data,
      labels: r.labels,
      days: r.days,
    }));
  drawTrends(body, series, "ActionsLineGraph", palette, options, {
    kind: "line", format: percentOrDash, details: false, legend: series.length > 1,
  });
}

/** Time to convert: a histogram of the bins ([seconds, actors]) with durations on the axis, and the average. */
function drawTimeToConvert(body, result, palette, options) {
  const ttc = Array.isArray(result) ? result.find((r) => r && r.compare_label !== "previous") || result[0] : result;
  const bins = (Array.isArray(ttc?.bins) ? ttc.bins : []).filter((b) => Array.isArray(b) && b.length >= 2);
  const summary = el("p", "tc-funnel-summary");
  summary.append(
    document.createTextNode("Average time to convert: "),
    el("span", "tc-ttc-average", formatDuration(ttc?.average_conversion_time)),
  );
  if (typeof ttc?.median_conversion_time === "number") {
    summary.append(document.createTextNode(" · median "), el("span", "tc-ttc-median", formatDuration(ttc.median_conversion_time)));
  }
  body.appendChild(summary);
  if (!bins.length || bins.every((b) => !Number(b[1]))) {
    body.appendChild(el("p", "tc-note", "No conversions in this period."));
    return;
  }
  const labels = bins.map((b) => formatDuration(b[0]));
  const titles = bins.map((b, i) => (i + 1 < bins.length
    ? `${formatDuration(b[0])} to ${formatDuration(bins[i + 1][0])}`
    : `${formatDuration(b[0])} or more`));
  const series = [{ label: "Conversions", data: bins.map((b) => Number(b[1]) || 0), labels }];
  drawTrends(body, series, "ActionsBar", palette, options, { kind: "bar", titles, legend: false, details: false, integer: true });
}

function drawFunnel(body, result, source, palette, options) {
  const viz = source.funnelsFilter?.funnelVizType;
  if (viz === "time_to_convert") drawTimeToConvert(body, result, palette, options);
  else if (viz === "trends") drawFunnelTrends(body, result, palette, options);
  else drawFunnelSteps(body, result, palette, options);
}

const RETENTION_PERIODS = { Hour: 3600e3, Day: 86400e3, Week: 7 * 86400e3 };

/** [r, g, b] of a `#rgb` or `#rrggbb` color, or the default accent. */
function rgbOf(color) {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(String(color || "").trim());
  if (!m) return [29, 74, 255];
  const hex = m[1].length === 3 ? [...m[1]].map((c) => c + c).join("") : m[1];
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function shade(cell, percent, rgb) {
  const p = Math.min(Math.max(Number(percent) || 0, 0), 100) / 100;
  cell.style.setProperty("background-color", `rgba(${rgb.join(", ")}, ${(0.04 + 0.86 * p).toFixed(3)})`);
  if (p >= 0.5) cell.classList.add("tc-dark");
}

/** A cohort's period start as people read it (the wall time the server wrote, whatever its offset). */
function cohortLabel(row, period) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?/.exec(String(row.date ?? ""));
  if (!m) return String(row.label ?? "");
  const day = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  // The year only when it is not this one, as PostHog does.
  const year = Number(m[1]) === new Date().getFullYear() ? {} : { year: "numeric" };
  const format = period === "Month"
    ? { month: "short", year: "numeric", timeZone: "UTC" }
    : { month: "short", day: "numeric", ...year, timeZone: "UTC" };
  const text = new Intl.DateTimeFormat(undefined, format).format(day);
  return period === "Hour" ? `${text}, ${m[4] ?? "00"}:${m[5] ?? "00"}` : text;
}

/** Whether a cohort's period `k` starts after now (PostHog leaves those cells empty). */
function inFuture(row, k, period, now) {
  const start = Date.parse(String(row.date ?? ""));
  if (!Number.isFinite(start)) return false;
  if (period === "Month") {
    const at = new Date(start);
    at.setUTCMonth(at.getUTCMonth() + k);
    return at.getTime() > now;
  }
  return start + k * (RETENTION_PERIODS[period] || RETENTION_PERIODS.Day) > now;
}

/** Retention: one cohort table per breakdown value; a cell's shade is its percentage (of the cohort's size,
 * or of the previous period with `retentionReference: "previous"`), with a mean row on top. */
function drawRetention(body, results, source, palette) {
  const filter = source.retentionFilter || {};
  const period = ["Hour", "Day", "Week", "Month"].includes(filter.period) ? filter.period : "Day";
  const previous = filter.retentionReference === "previous";
  const meanKind = ["simple", "weighted", "none"].includes(filter.meanRetentionCalculation)
    ? filter.meanRetentionCalculation
    : "simple";
  const rgb = rgbOf(palette[0]);
  const now = Date.now();
  const groups = [];
  const byValue = new Map();
  for (const row of results) {
    if (!row || typeof row !== "object" || !Array.isArray(row.values)) continue;
    const key = JSON.stringify(row.breakdown_value ?? null);
    if (!byValue.has(key)) {
      const group = { value: row.breakdown_value ?? null, rows: [] };
      byValue.set(key, group);
      groups.push(group);
    }
    byValue.get(key).rows.push(row);
  }
  const broken = groups.length > 1 || (groups.length === 1 && groups[0].value !== null);
  for (const group of groups) {
    const width = Math.max(...group.rows.map((r) => r.values.length));
    const percents = group.rows.map((row) => row.values.map((cell, k) => {
      const count = Number(cell?.count) || 0;
      if (k === 0) return count ? 100 : 0;
      return rate(count, previous ? row.values[k - 1]?.count : row.values[0]?.count);
    }));
    const sizes = group.rows.map((row) => Number(row.values[0]?.count) || 0);
    const wrap = el("section", "tc-retention");
    if (broken) wrap.appendChild(el("h3", "tc-retention-breakdown", breakdownText(group.value)));
    const table = el("table", "tc-table tc-retention-table");
    const head = el("tr");
    head.append(el("th", null, "Cohort"), el("th", "tc-num", "Size"));
    for (let k = 0; k < width; k++) {
      const label = group.rows.find((r) => r.values[k]?.label)?.values[k].label ?? `${period} ${k}`;
      head.appendChild(el("th", "tc-num", label));
    }
    table.appendChild(el("thead")).appendChild(head);
    const tbody = el("tbody");
    if (meanKind !== "none" && group.rows.length > 1) {
      const tr = el("tr", "tc-retention-mean");
      tr.append(el("td", "tc-retention-cohort", "Mean"), el("td", "tc-num", formatNumber(sizes.reduce((a, b) => a + b, 0))));
      for (let k = 0; k < width; k++) {
        const use = group.rows
          .map((row, r) => ({ row, r }))
          .filter(({ row, r }) => sizes[r] > 0 && k < row.values.length && !inFuture(row, k, period, now));
        const td = el("td", "tc-num tc-retention-cell");
        if (use.length) {
          const weight = use.reduce((a, { r }) => a + sizes[r], 0);
          const mean = meanKind === "weighted"
            ? use.reduce((a, { r }) => a + percents[r][k] * sizes[r], 0) / (weight || 1)
            : use.reduce((a, { r }) => a + percents[r][k], 0) / use.length;
          td.textContent = formatPercent(mean);
          td.dataset.percent = String(mean);
          shade(td, mean, rgb);
        }
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    group.rows.forEach((row, r) => {
      const tr = el("tr", "tc-retention-row");
      tr.append(el("td", "tc-retention-cohort", cohortLabel(row, period)), el("td", "tc-num tc-retention-size", formatNumber(sizes[r])));
      for (let k = 0; k < width; k++) {
        const cell = row.values[k];
        if (!cell || inFuture(row, k, period, now)) {
          tr.appendChild(el("td", "tc-num tc-retention-cell tc-retention-future"));
          continue;
        }
        const td = el("td", "tc-num tc-retention-cell", formatPercent(percents[r][k]));
        td.dataset.percent = String(percents[r][k]);
        td.title = `${formatNumber(cell.count)} of ${formatNumber(sizes[r])}`;
        shade(td, percents[r][k], rgb);
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    wrap.appendChild(table);
    body.appendChild(wrap);
  }
}

// PostHog-like colors per lifecycle status, and its order.
const LIFECYCLE = {
  new: { name: "New", color: "#1d4aff" },
  returning: { name: "Returning", color: "#529a0a" },
  resurrecting: { name: "Resurrecting", color: "#a56eff" },
  dormant: { name: "Dormant", color: "#f14f58" },
};

/** Lifecycle: stacked bars around zero, new, returning and resurrecting above and dormant (negative) below. */
function drawLifecycle(body, results, source, palette, options) {
  const toggled = source.lifecycleFilter?.toggledLifecycles;
  const shown = results.filter((r) => r && typeof r === "object" &&
    (!Array.isArray(toggled) || !(r.status in LIFECYCLE) || toggled.includes(r.status)));
  const series = shown.map((r) => (r.status in LIFECYCLE ? { ...r, label: LIFECYCLE[r.status].name } : r));
  const colors = shown.map((r, i) => LIFECYCLE[r.status]?.color ?? palette[i % palette.length]);
  drawTrends(body, series, "ActionsStackedBar", palette, options, { kind: "stacked", colors, integer: true });
}

function errorBox(title, message) {
  const box = el("div", "tc-error");
  box.setAttribute("role", "alert");
  box.appendChild(el("strong", null, title));
  if (message) box.appendChild(el("p", null, message));
  return box;
}

/** The body of one tile, drawn from its JSON. */
function drawTileBody(body, tile, palette, options) {
  if (tile.text) {
    body.classList.add("tc-markdown");
    body.appendChild(renderMarkdown(tile.text.body));
    return;
  }
  const insight = tile.insight;
  if (tile.error) {
    const err = tile.error;
    const message = typeof err === "string" ? err : [err.type, err.message].filter(Boolean).join(": ");
    body.appendChild(errorBox("This insight could not be computed.", message));
    return;
  }
  if (!insight) {
    body.appendChild(el("p", "tc-note", "Nothing to show."));
    return;
  }
  const results = insight.result;
  const source = queryOf(insight);
  const kind = source?.kind;
  if (kind && !DRAWN_KINDS.has(kind)) {
    body.appendChild(el("p", "tc-note", `${kind} insights are not drawn on this page.`));
    return;
  }
  if (kind === "FunnelsQuery" && source.funnelsFilter?.funnelVizType === "time_to_convert") {
    if (results && typeof results === "object") drawTimeToConvert(body, results, palette, options);
    else body.appendChild(el("p", "tc-note", "Not computed yet."));
    return;
  }
  if (!Array.isArray(results)) {
    body.appendChild(el("p", "tc-note", "Not computed yet."));
    return;
  }
  if (!results.length) {
    body.appendChild(el("p", "tc-note", "No data for this period."));
    return;
  }
  if (kind === "HogQLQuery") return drawSql(body, insight, palette, options);
  if (kind === "FunnelsQuery") return drawFunnel(body, results, source, palette, options);
  if (kind === "RetentionQuery") return drawRetention(body, results, source, palette);
  if (kind === "LifecycleQuery") return drawLifecycle(body, results, source, palette, options);
  if (kind === "StickinessQuery") return drawTrends(body, results, "ActionsBar", palette, options, { kind: "bar", integer: true });
  const display = displayOf(insight);
  if (display === "BoldNumber") drawNumber(body, results);
  else if (display in AS_TABLE) drawTable(body, results, display, palette);
  else drawTrends(body, results, TIME_SERIES.has(display) ? display : "ActionsLineGraph", palette, options);
}

// --- SQL insights --------------------------------------------------------------------------------------------

/** Rows drawn as a table at most; the rest is counted under it. */
const SQL_TABLE_ROWS = 100;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function sqlCell(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Which columns hold numbers only (and at least one), and which hold dates only. */
function sqlColumnKinds(columns, rows) {
  const every = (index, test) => {
    const values = rows.map((row) => row[index]).filter((v) => v !== null && v !== undefined);
    return values.length > 0 && values.every(test);
  };
  return columns.map((_, i) => ({
    numeric: every(i, (v) => typeof v === "number" && Number.isFinite(v)),
    date: every(i, (v) => typeof v === "string" && ISO_DATE.test(v)),
  }));
}

/** PostHog's choice when a visualization names no display: date and number over several rows → line; a
 * single number → the number; any number → bars; else the table. */
function autoDisplay(kinds, rows) {
  const numeric = kinds.filter((k) => k.numeric).length;
  if (numeric && kinds.some((k) => k.date) && rows.length > 1) return "ActionsLineGraph";
  if (numeric === 1 && kinds.length === 1) return "BoldNumber";
  return numeric ? "ActionsBar" : "ActionsTable";
}

function sqlTable(body, columns, rows, hasMore, kinds) {
  const wrap = el("div", "tc-sql-table");
  const table = el("table", "tc-table tc-sql");
  const head = el("tr");
  columns.forEach((name, i) => head.appendChild(el("th", kinds[i]?.numeric ? "tc-num" : null, name)));
  table.appendChild(el("thead")).appendChild(head);
  const tbody = el("tbody");
  for (const row of rows.slice(0, SQL_TABLE_ROWS)) {
    const tr = el("tr");
    row.forEach((value) => tr.appendChild(el("td", typeof value === "number" ? "tc-num" : null, sqlCell(value))));
    tbody.appendChild(tr);
  }
  table.appendChild(tbody);
  wrap.appendChild(table);
  body.appendChild(wrap);
  const more = rows.length - SQL_TABLE_ROWS;
  if (more > 0 || hasMore) {
    body.appendChild(el("p", "tc-note", more > 0 ? `${formatNumber(more)} more rows not shown.` : "More rows exist."));
  }
}

/** A SQL insight (HogQLQuery): a `DataVisualizationNode` as its chart (its `display` and `chartSettings`'
 * axes, or PostHog's automatic choice), anything else as a table of its columns and rows. */
function drawSql(body, insight, palette, options) {
  const columns = (Array.isArray(insight.columns) ? insight.columns : []).map(String);
  const rows = insight.result.filter(Array.isArray);
  const viz = insight.query?.kind === "DataVisualizationNode" ? insight.query : null;
  const kinds = sqlColumnKinds(columns, rows);
  const display = viz ? viz.display || autoDisplay(kinds, rows) : "ActionsTable";
  const settings = viz?.chartSettings || {};
  const named = (axis) => columns.indexOf(String(axis?.column ?? ""));
  let x = named(settings.xAxis);
  if (x < 0) x = kinds.findIndex((k) => !k.numeric);
  let ys = (Array.isArray(settings.yAxis) ? settings.yAxis : []).map(named).filter((i) => i >= 0);
  if (!ys.length) ys = kinds.map((k, i) => (k.numeric && i !== x ? i : -1)).filter((i) => i >= 0);
  if (display === "ActionsTable" || display in AS_TABLE || !ys.length) {
    sqlTable(body, columns, rows, insight.hasMore === true, kinds);
    return;
  }
  const labelOf = (i) => {
    const axis = (settings.yAxis || []).find((a) => String(a?.column) === columns[i]);
    return axis?.settings?.display?.label || columns[i];
  };
  const labels = rows.map((row, r) => (x >= 0 ? sqlCell(row[x]) : String(r + 1)));
  const series = ys.map((i) => {
    const data = rows.map((row) => (typeof row[i] === "number" ? row[i] : 0));
    return { label: labelOf(i), data, labels, count: data.reduce((a, b) => a + b, 0) };
  });
  if (display === "BoldNumber") {
    drawNumber(body, [{ label: series[0].label, aggregated_value: rows.length ? series[0].data[0] : null }]);
    return;
  }
  drawTrends(body, series, TIME_SERIES.has(display) ? display : "ActionsLineGraph", palette, options);
}

// --- the page ------------------------------------------------------------------------------------------------

export class DashboardPage {
  constructor(root, streamUrl, options = {}) {
    this.root = root;
    this.streamUrl = streamUrl;
    this.options = { legend: true, ...options };
    this.palette = Array.isArray(this.options.colors) && this.options.colors.length
      ? this.options.colors
      : DEFAULT_PALETTE;
    this.grid = root.querySelector(".tc-grid");
    this.progress = root.querySelector(".tc-progress");
    this.progressBar = root.querySelector(".tc-progress-bar");
    this.connection = root.querySelector(".tc-connection");
    this.tiles = new Map(); // tile id → its element
    this.shown = new Map(); // tile id → the tile's JSON as drawn
    this.waiting = null; // resolves the promise of `restart`
    this.received = new Set(); // tile ids drawn or failed
    this.complete = false;
    this.source = null;
    if (this.options.noHeader) root.querySelector(".tc-header").hidden = true;
    if (this.options.whitelabel) root.querySelector(".tc-footer").hidden = true;
    if (this.options.controls) this.drawControls();
  }

  /** A signed-in viewer's toolbar: a date range (`filters_override`) and a refresh (`force_blocking`), each
   * opening the stream again. */
  drawControls() {
    const bar = el("div", "tc-toolbar");
    const back = el("a", "tc-back", "← All dashboards");
    back.href = "/";
    const label = el("label", "tc-range-label", "Date range ");
    const select = el("select", "tc-range");
    for (const [value, text] of DATE_RANGES) {
      const option = el("option", null, text);
      option.value = value;
      select.appendChild(option);
    }
    label.appendChild(select);
    const refresh = el("button", "tc-refresh tc-secondary", "Refresh");
    refresh.type = "button";
    // "What changed?" compares the dashboard's own tiles (their saved range) before and after a refresh.
    const changed = el("button", "tc-what-changed tc-secondary", "What changed?");
    changed.type = "button";
    const allowChanged = () => {
      changed.disabled = select.value !== "";
      changed.title = changed.disabled
        ? "Compares the dashboard's own range: choose \"Dashboard's range\" first."
        : "Refresh every tile and say what changed.";
    };
    allowChanged();
    select.addEventListener("change", () => {
      allowChanged();
      this.restart({ dateFrom: select.value });
    });
    refresh.addEventListener("click", () => this.restart({ dateFrom: select.value, refresh: true }));
    changed.addEventListener("click", async () => {
      changed.disabled = true;
      select.disabled = true;
      try {
        await this.whatChanged();
      } finally {
        select.disabled = false;
        allowChanged();
      }
    });
    bar.append(back, label, refresh, changed);
    this.root.querySelector(".tc-status").before(bar);
  }

  /** The tiles as shown now, as `snapshot`'s `client_results` (tiles with a result only). */
  clientResults() {
    const found = {};
    for (const [id, tile] of this.shown) {
      const result = tile.insight?.result;
      const empty = result === null || result === undefined ||
        (typeof result === "object" && Object.keys(result).length === 0);
      if (tile.error || empty) continue;
      const insight = tile.insight;
      found[String(id)] = { insight_name: insight.name || insight.derived_name || "Untitled insight", data: result };
    }
    return found;
  }

  /** POST JSON to one of this dashboard's actions (next to its stream: `snapshot/`, ...); the answer's JSON. */
  async post(action, body) {
    const url = new URL(`../${action}`, new URL(this.streamUrl, window.location.href));
    const response = await fetch(url.pathname, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      answer = null;
    }
    if (!response.ok) throw new Error(answer?.error || answer?.detail || `The server answered ${response.status}.`);
    return answer;
  }

  /** Snapshot the tiles as shown, refresh them all (`force_blocking`), then show what changed. */
  async whatChanged() {
    const panel = this.changesPanel();
    panel.dataset.state = "working";
    this.changesMessage(panel, "Refreshing every tile to see what changed…");
    try {
      const shown = this.clientResults();
      const snapshot = await this.post("snapshot/", Object.keys(shown).length ? { client_results: shown } : {});
      if (!(await this.restart({ refresh: true }))) throw new Error("The dashboard could not be refreshed.");
      const analysis = await this.post("analyze_refresh_result/", { cache_key: snapshot.cache_key });
      this.drawChanges(panel, analysis);
      panel.dataset.state = "done";
    } catch (exc) {
      this.changesMessage(panel, `What changed could not be worked out: ${exc?.message || exc}`);
      panel.dataset.state = "failed";
    }
  }

  changesPanel() {
    let panel = this.root.querySelector(".tc-changes");
    if (!panel) {
      panel = el("section", "tc-changes tc-card");
      panel.setAttribute("aria-live", "polite");
      panel.setAttribute("aria-label", "What changed");
      this.root.querySelector(".tc-status").before(panel);
    }
    panel.hidden = false;
    return panel;
  }

  changesHead(panel) {
    clear(panel);
    const head = el("div", "tc-changes-head");
    head.appendChild(el("h2", "tc-changes-title", "What changed"));
    const close = el("button", "tc-changes-close tc-secondary", "Close");
    close.type = "button";
    close.addEventListener("click", () => {
      panel.hidden = true;
    });
    head.appendChild(close);
    panel.appendChild(head);
  }

  changesMessage(panel, text) {
    this.changesHead(panel);
    panel.appendChild(el("p", "tc-changes-message", text));
  }

  /** `analyze_refresh_result`'s answer: its summary, one line per bullet, and a table of every change. */
  drawChanges(panel, analysis) {
    this.changesHead(panel);
    const lines = String(analysis?.result ?? "").split("\n").filter((line) => line.trim());
    const bullets = lines.filter((line) => line.startsWith("- "));
    if (bullets.length) {
      const list = el("ul", "tc-changes-summary");
      for (const line of bullets) list.appendChild(el("li", null, line.slice(2)));
      panel.appendChild(list);
    } else {
      panel.appendChild(el("p", "tc-changes-message", lines.join(" ")));
    }
    const changes = Array.isArray(analysis?.changes) ? analysis.changes : [];
    if (!changes.length) return;
    const wrap = el("div", "tc-table-wrap");
    const table = el("table", "tc-table tc-changes-table");
    const head = el("tr");
    for (const name of ["Tile", "Series", "Before", "After", "Change", "%"]) head.appendChild(el("th", null, name));
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    for (const change of changes) {
      const series = Array.isArray(change.series) && change.series.length ? change.series : [null];
      for (const s of series) {
        const tr = el("tr", `tc-change tc-change-${change.kind}`);
        const delta = s === null || s.delta === null
          ? change.kind === "changed" ? (s?.before === null ? "new" : "removed") : change.kind
          : `${s.delta > 0 ? "+" : ""}${formatNumber(s.delta)}`;
        const pct = s && s.pct_change !== null ? `${s.pct_change > 0 ? "+" : ""}${formatPercent(s.pct_change)}` : "";
        tr.append(
          el("td", "tc-label", change.insight_name),
          el("td", "tc-label", s ? s.label : ""),
          el("td", "tc-num", s && s.before !== null ? formatNumber(s.before) : "–"),
          el("td", "tc-num", s && s.after !== null ? formatNumber(s.after) : "–"),
          el("td", "tc-num", delta),
          el("td", "tc-num", pct),
        );
        body.appendChild(tr);
      }
    }
    table.appendChild(body);
    wrap.appendChild(table);
    panel.appendChild(wrap);
  }

  /** The stream's URL with the toolbar's choices. */
  urlFor({ dateFrom = "", refresh = false } = {}) {
    const url = new URL(this.streamUrl, window.location.href);
    if (dateFrom) url.searchParams.set("filters_override", JSON.stringify({ date_from: dateFrom }));
    if (refresh) url.searchParams.set("refresh", "force_blocking");
    return url.pathname + url.search;
  }

  /** Close the stream, forget the tiles, and draw the dashboard again from a new stream. Resolves true once
   * it is complete, false if it fails or another restart replaces it. */
  restart(choices) {
    if (this.source) this.source.close();
    this.settle(false);
    const done = new Promise((resolve) => {
      this.waiting = resolve;
    });
    this.tiles.clear();
    this.shown.clear();
    this.received.clear();
    this.complete = false;
    clear(this.grid);
    const box = this.root.querySelector(".tc-fatal");
    box.hidden = true;
    box.textContent = "";
    delete this.root.dataset.stream;
    this.start(this.urlFor(choices));
    return done;
  }

  settle(ok) {
    if (this.waiting) this.waiting(ok);
    this.waiting = null;
  }

  setState(state, text) {
    this.root.dataset.state = state;
    this.connection.textContent = text || "";
  }

  start(url = this.streamUrl) {
    this.setState("connecting", "Connecting…");
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", () => {
      if (!this.complete) this.setState("streaming", "");
    });
    source.addEventListener("error", () => {
      if (this.complete) return;
      if (source.readyState === EventSource.CLOSED) {
        this.fail("The dashboard's stream could not be opened.");
      } else {
        this.setState("reconnecting", "Connection lost — reconnecting…");
      }
    });
    source.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.handle(message);
    });
    this.updateProgress();
  }

  handle(message) {
    if (!message || typeof message !== "object") return;
    switch (message.type) {
      case "metadata":
        this.drawMetadata(message.dashboard || {});
        break;
      case "tile":
        if (message.tile) this.drawTile(message.tile, message.order);
        break;
      case "error":
        if (message.tile_id !== undefined && message.tile_id !== null) this.tileFailed(message.tile_id, message.error);
        else this.fail(message.error || "The stream failed.");
        break;
      case "complete":
        this.finish();
        break;
      default:
        break;
    }
  }

  drawMetadata(dashboard) {
    const header = this.root.querySelector(".tc-header");
    header.querySelector(".tc-title").textContent = dashboard.name || "Untitled dashboard";
    if (dashboard.name) document.title = String(dashboard.name);
    const description = header.querySelector(".tc-description");
    description.textContent = dashboard.description || "";
    description.hidden = !dashboard.description;
    const tags = header.querySelector(".tc-tags");
    clear(tags);
    for (const tag of Array.isArray(dashboard.tags) ? dashboard.tags : []) tags.appendChild(el("li", "tc-tag", tag));
    tags.hidden = !tags.firstChild;
    const tiles = Array.isArray(dashboard.tiles) ? dashboard.tiles : [];
    tiles.forEach((tile, i) => this.drawTile(tile, tile.order ?? i));
    if (this.root.dataset.state === "connecting") this.setState("streaming", "");
  }

  tileElement(id) {
    let node = this.tiles.get(id);
    if (!node) {
      node = el("article", "tc-tile");
      node.dataset.tileId = String(id);
      this.tiles.set(id, node);
      this.grid.appendChild(node);
    }
    return node;
  }

  place(node, tile, order) {
    const sm = tile.layouts?.sm;
    const xs = tile.layouts?.xs;
    const int = (v, d) => (Number.isInteger(v) && v >= 0 ? v : d);
    if (sm) {
      const x = Math.min(int(sm.x, 0), 11);
      const w = Math.min(Math.max(int(sm.w, 6), 1), 12 - x);
      node.style.setProperty("--sm-col", `${x + 1} / span ${w}`);
      node.style.setProperty("--sm-row", `${int(sm.y, 0) + 1} / span ${Math.max(int(sm.h, 5), 1)}`);
    }
    node.style.setProperty("--xs-order", String(int(xs?.y, int(order, 0))));
    node.style.setProperty("--xs-h", String(Math.max(int(xs?.h ?? sm?.h, 5), 1)));
    node.dataset.order = String(order ?? "");
  }

  drawTile(tile, order) {
    if (tile === null || typeof tile !== "object" || tile.id === undefined) return;
    const node = this.tileElement(tile.id);
    this.shown.set(tile.id, tile);
    clear(node);
    node.className = "tc-tile";
    this.place(node, tile, order);
    const insight = tile.insight;
    if (tile.text) node.classList.add("tc-text-tile");
    if (tile.transparent_background) node.classList.add("tc-transparent");
    if (insight) {
      const head = el("header", "tc-tile-header");
      head.appendChild(el("h2", "tc-tile-title", insight.name || insight.derived_name || "Untitled insight"));
      if (insight.description && tile.show_description !== false) {
        head.appendChild(el("p", "tc-tile-description", insight.description));
      }
      node.appendChild(head);
      node.dataset.display = tile.error ? "error" : vizOf(insight);
    }
    const body = el("div", "tc-tile-body");
    node.appendChild(body);
    try {
      drawTileBody(body, tile, this.palette, this.options);
    } catch (exc) {
      clear(body);
      body.appendChild(errorBox("This tile could not be drawn.", String(exc && exc.message ? exc.message : exc)));
    }
    if (tile.error) node.classList.add("tc-failed");
    this.received.add(tile.id);
    this.updateProgress();
  }

  tileFailed(id, error) {
    const node = this.tileElement(id);
    node.classList.add("tc-failed");
    let body = node.querySelector(".tc-tile-body");
    if (!body) {
      body = el("div", "tc-tile-body");
      node.appendChild(body);
    }
    clear(body);
    body.appendChild(errorBox("This tile could not be loaded.", typeof error === "string" ? error : ""));
    this.received.add(id);
    this.updateProgress();
  }

  updateProgress() {
    const done = this.received.size;
    const expected = this.complete ? done : this.options.expectedTiles;
    const total = Number.isInteger(expected) && expected >= done ? expected : null;
    const noun = (n) => (n === 1 ? "tile" : "tiles");
    this.progress.textContent = total === null
      ? `${done} ${noun(done)} so far`
      : `${done} of ${total} ${noun(total)}`;
    if (total !== null) {
      this.progressBar.max = Math.max(total, 1);
      this.progressBar.value = total === 0 ? 1 : done;
    } else {
      this.progressBar.removeAttribute("value");
    }
    this.progressBar.hidden = this.complete;
  }

  finish() {
    this.complete = true;
    this.close();
    this.setState("complete", "");
    this.updateProgress();
    this.settle(true);
  }

  fail(message) {
    this.close();
    const box = this.root.querySelector(".tc-fatal");
    box.textContent = String(message);
    box.hidden = false;
    this.progressBar.hidden = true;
    this.setState("failed", "Stopped.");
    this.settle(false);
  }

  close() {
    if (this.source) this.source.close();
    this.root.dataset.stream = "closed";
  }
}

/** A share's JWT given in the address (after an unlock) is not left in the address bar or the history: the
 * stream's URL carries it. */
function forgetGrantInAddress() {
  const here = new URL(window.location.href);
  if (!here.searchParams.has("sharing_access_token")) return;
  here.searchParams.delete("sharing_access_token");
  window.history.replaceState(null, "", here.pathname + here.search + here.hash);
}

/** Starts the page whose root element carries `data-stream-url` and `data-options` (JSON). */
export function start(root = document.getElementById("tilecast-dashboard")) {
  if (!root) return null;
  forgetGrantInAddress();
  let options = {};
  try {
    options = JSON.parse(root.dataset.options || "{}") || {};
  } catch {
    options = {};
  }
  const page = new DashboardPage(root, root.dataset.streamUrl, options);
  window.tilecastDashboard = page;
  page.start();
  return page;
}

start();
