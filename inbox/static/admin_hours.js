// Admin: the channel's business hours (a time zone, periods per weekday, holidays), the
// reply a customer writing outside them gets once a conversation cycle, and the SLA
// targets, counted in those hours (minutes here, seconds in the API).
import { section, statusLine } from "./admin_parts.js";
import * as api from "./api.js";
import { checkbox, field, h } from "./el.js";

const DAYS = [
  ["mon", "Monday"],
  ["tue", "Tuesday"],
  ["wed", "Wednesday"],
  ["thu", "Thursday"],
  ["fri", "Friday"],
  ["sat", "Saturday"],
  ["sun", "Sunday"],
];
const list = (text) =>
  text
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean);

export function businessHoursAdmin(ctx) {
  const path = `/v1/channels/${api.seg(ctx.channel.id)}`;
  const hours = ctx.channel.business_hours;
  const reply = ctx.channel.out_of_hours_reply;
  const used = checkbox("Use business hours (otherwise always open)", Boolean(hours));
  const zone = h("input", {
    type: "text",
    value: hours?.time_zone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
    autocomplete: "off",
  });
  const days = DAYS.map(([key, label]) => {
    const input = h("input", { type: "text", value: (hours?.week?.[key] ?? []).join(", "), autocomplete: "off" });
    return { key, input, node: field(`${label} hours`, input, { hint: "e.g. 09:00-12:30, 13:30-17:30; empty: closed" }) };
  });
  const holidays = h("input", { type: "text", value: (hours?.holidays ?? []).join(", "), autocomplete: "off" });
  const country = h("input", { type: "text", value: hours?.holiday_country ?? "", maxlength: 2, autocomplete: "off" });
  const text = h("textarea", { rows: 3, maxlength: 4096 }, reply?.text ?? "");
  const sla = ctx.channel.sla;
  const minutes = (seconds) => (seconds == null ? "" : String(seconds / 60));
  const targetInput = (seconds) => h("input", { type: "number", min: 1, step: "any", value: minutes(seconds) });
  const firstTarget = targetInput(sla?.first_response_s);
  const nextTarget = targetInput(sla?.next_response_s);
  const resolveTarget = targetInput(sla?.resolution_s);
  const warnBefore = h("input", { type: "number", min: 0, step: "any", value: minutes(sla?.warn_before_s ?? 0) });
  const status = statusLine();
  const form = h(
    "form",
    { class: "settings" },
    used.node,
    field("Time zone", zone, { hint: "IANA, e.g. Europe/Amsterdam" }),
    days.map((day) => day.node),
    field("Holidays", holidays, { hint: "Dates closed, e.g. 2026-12-24, 2026-12-31" }),
    field("Public holidays of", country, { hint: "A country code, e.g. NL; empty: none" }),
    field("Out-of-hours reply", text, { hint: "Sent once a conversation to a customer writing outside hours; empty: none" }),
    field("First response target (minutes)", firstTarget, { hint: "In business hours; empty: none" }),
    field("Next response target (minutes)", nextTarget, { hint: "After the customer writes again; empty: none" }),
    field("Resolution target (minutes)", resolveTarget, { hint: "From the start of the conversation; empty: none" }),
    field("Warn before (minutes)", warnBefore, { hint: "How long before a target the warning comes; 0: none" }),
    h("button", { type: "submit", class: "primary" }, "Save business hours"),
    status.node,
  );
  function slaBody() {
    const seconds = (input) => (input.value === "" ? null : Math.round(Number(input.value) * 60));
    const targets = {
      first_response_s: seconds(firstTarget),
      next_response_s: seconds(nextTarget),
      resolution_s: seconds(resolveTarget),
      warn_before_s: seconds(warnBefore) ?? 0,
    };
    const any = targets.first_response_s ?? targets.next_response_s ?? targets.resolution_s;
    return any == null ? null : targets;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const week = Object.fromEntries(days.map((day) => [day.key, list(day.input.value)]));
    const body = {
      business_hours: used.input.checked
        ? {
            time_zone: zone.value.trim(),
            week,
            holidays: list(holidays.value),
            holiday_country: country.value.trim().toUpperCase() || null,
          }
        : null,
      out_of_hours_reply: text.value.trim() ? { text: text.value.trim() } : null,
      sla: slaBody(),
    };
    try {
      await api.patch(path, body);
      await ctx.refreshChannels();
      status.say("Saved.");
    } catch (error) {
      status.say(error.message, true);
    }
  });
  return { node: section("Business hours and SLA", form) };
}
