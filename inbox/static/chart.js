// Bar charts as inline SVG (createElementNS): one group of bars per day, one bar per
// series, a y axis with a few ticks, and the same numbers as a table for screen readers
// and for reading exact values.
import { h, svg, uid } from "./el.js";

const WIDTH = 520;
const HEIGHT = 240;
const MARGIN = { top: 12, right: 8, bottom: 30, left: 70 };
const MOST_TICKS = 4;
const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;
/** Steps for counts (whole numbers) and for durations in seconds (round times). */
export const COUNT_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000];
export const DURATION_STEPS = [
  1, 2, 5, 10, 15, 30, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY,
];

// The axis: the smallest step that covers `max` in at most MOST_TICKS steps.
function axis(max, steps) {
  let step = steps.find((s) => s * MOST_TICKS >= max);
  if (step === undefined) {
    const last = steps.at(-1);
    step = Math.ceil(max / MOST_TICKS / last) * last;
  }
  const count = Math.max(1, Math.ceil(max / step));
  return { step, top: count * step, count };
}

/**
 * A <figure>: title, an SVG bar chart, a legend, and a table of the values.
 * labels: one per group (days); series: [{name, values, className}]; format(value).
 */
export function barChart({ title, description, labels, series, format = String, steps = COUNT_STEPS }) {
  const titleId = uid("chart-title");
  const descId = uid("chart-desc");
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const { step, top, count } = axis(Math.max(0, ...values), steps);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (value) => MARGIN.top + plotH - (value / top) * plotH;
  const band = plotW / Math.max(1, labels.length);
  const barW = (band * 0.7) / series.length;
  const every = Math.ceil(labels.length / 10); // at most ~10 x labels

  const grid = [];
  for (let i = 0; i <= count; i += 1) {
    const value = step * i;
    grid.push(
      svg("line", { class: "grid", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value) }),
      svg("text", { class: "axis", x: MARGIN.left - 6, y: y(value) + 4, "text-anchor": "end" }, format(value)),
    );
  }
  const bars = [];
  labels.forEach((label, i) => {
    const x0 = MARGIN.left + i * band + band * 0.15;
    series.forEach((s, j) => {
      const value = s.values[i];
      if (value === null || value === undefined) return;
      const top_ = y(value);
      bars.push(
        svg(
          "rect",
          { class: `bar ${s.className}`, x: x0 + j * barW, y: top_, width: Math.max(1, barW - 1), height: Math.max(0, MARGIN.top + plotH - top_) },
          svg("title", {}, `${label} · ${s.name}: ${format(value)}`),
        ),
      );
    });
    if (i % every === 0) {
      bars.push(
        svg("text", { class: "axis", x: MARGIN.left + i * band + band / 2, y: HEIGHT - 8, "text-anchor": "middle" }, label.slice(5)),
      );
    }
  });

  const chart = svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": `${titleId} ${descId}`, preserveAspectRatio: "xMidYMid meet" },
    svg("title", { id: titleId }, title),
    svg("desc", { id: descId }, description),
    grid,
    svg("line", { class: "baseline", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(0), y2: y(0) }),
    bars,
  );
  const legend = h(
    "ul",
    { class: "legend" },
    series.map((s) => h("li", {}, h("span", { class: `swatch ${s.className}`, "aria-hidden": "true" }), s.name)),
  );
  const table = h(
    "table",
    {},
    h("caption", { class: "sr-only" }, title),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day"), series.map((s) => h("th", { scope: "col" }, s.name)))),
    h(
      "tbody",
      {},
      labels.map((label, i) =>
        h("tr", {}, h("th", { scope: "row" }, label), series.map((s) => h("td", {}, s.values[i] === null ? "–" : format(s.values[i])))),
      ),
    ),
  );
  return h(
    "figure",
    { class: "chart-figure" },
    h("figcaption", {}, title),
    chart,
    legend,
    h("details", {}, h("summary", {}, "The numbers"), table),
  );
}
