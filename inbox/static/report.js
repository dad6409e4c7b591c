// The channel's report (supervisors and admins): the range's totals and, per day,
// conversations opened and resolved, and first-response and resolution times (median
// and p90), as inline SVG charts.
import * as api from "./api.js";
import { DURATION_STEPS, barChart } from "./chart.js";
import { clear, field, h } from "./el.js";
import { duration } from "./format.js";
import { QUEUES } from "./tabs.js";

const DAY_MS = 86400000;
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

function totals(report) {
  const t = report.total;
  const rows = [
    ["Opened", String(t.opened)],
    ["Replies", String(t.replies)],
    ["Resolved", String(t.resolved)],
    ["Resolved automatically", String(t.auto_resolved)],
    ["First response, median", duration(t.first_response.median_s)],
    ["First response, p90", duration(t.first_response.p90_s)],
    ["Resolution, median", duration(t.resolution.median_s)],
    ["Resolution, p90", duration(t.resolution.p90_s)],
    ...QUEUES.map(([queue, label]) => [`${label} now`, String(report.queues[queue] ?? 0)]),
  ];
  return h("dl", { class: "totals" }, rows.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))));
}

function timesChart(title, days, key) {
  const median = days.map((d) => d[key].median_s);
  const p90 = days.map((d) => d[key].p90_s);
  const measured = days.reduce((n, d) => n + d[key].count, 0);
  return barChart({
    title,
    description: `Median and 90th percentile per day, from ${measured} measured conversations.`,
    labels: days.map((d) => d.date),
    series: [
      { name: "Median", values: median, className: "s1" },
      { name: "p90", values: p90, className: "s2" },
    ],
    format: duration,
    steps: DURATION_STEPS,
  });
}

export function reportView(ctx) {
  const channel = ctx.channel;
  const today = Date.now();
  const from = h("input", { type: "date", value: isoDay(today - 6 * DAY_MS), required: true });
  const to = h("input", { type: "date", value: isoDay(today), required: true });
  const out = h("div", { class: "report-body", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "report-range" },
    field("From", from, { inline: true }),
    field("To", to, { inline: true }),
    h("button", { type: "submit", class: "primary" }, "Show report"),
  );
  const node = h(
    "section",
    { class: "report", "aria-labelledby": "report-title" },
    h("h2", { id: "report-title" }, `Report: ${channel.display_name}`),
    h("p", { class: "hint" }, "Days are UTC. Times are from a customer's first message to the first reply, and to resolution."),
    form,
    out,
  );

  async function load() {
    const query = `from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`;
    try {
      const report = await api.get(`/v1/channels/${api.seg(channel.id)}/report?${query}`);
      const days = report.days;
      const opened = barChart({
        title: "Conversations per day",
        description: `Opened and resolved per day, ${report.start} to ${report.end}: ${report.total.opened} opened, ${report.total.resolved} resolved.`,
        labels: days.map((d) => d.date),
        series: [
          { name: "Opened", values: days.map((d) => d.opened), className: "s1" },
          { name: "Resolved", values: days.map((d) => d.resolved), className: "s3" },
        ],
      });
      clear(
        out,
        h("h3", {}, `${report.start} to ${report.end}`),
        totals(report),
        h(
          "div",
          { class: "charts" },
          opened,
          timesChart("First response time", days, "first_response"),
          timesChart("Resolution time", days, "resolution"),
        ),
      );
    } catch (error) {
      ctx.error(error.message);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
  return { node, reload: load };
}
