// "Snooze", then until when: the conversation waits in Pending and comes back (to Open
// when someone holds it, else New) at that time, or as soon as the customer writes. The
// time is the agent's own (a datetime-local field), sent to the API in UTC.
import { field, h, uid } from "./el.js";

const HOUR_MS = 3600 * 1000;

/** The value a datetime-local field takes for `date`, in the browser's time zone. */
function localValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Tomorrow at 09:00, the usual "until tomorrow morning". */
function tomorrowMorning(now) {
  const next = new Date(now.getTime() + 24 * HOUR_MS);
  next.setHours(9, 0, 0, 0);
  return next;
}

/** snooze(isoUntil) -> Promise<boolean>. */
export function snoozeControl({ snooze }) {
  const until = h("input", { type: "datetime-local", required: true });
  const confirm = h("button", { type: "submit", class: "primary" }, "Snooze until then");
  const picker = h(
    "form",
    { class: "assign-picker snooze-picker", id: uid("snooze"), hidden: true },
    field("Snooze until", until),
    confirm,
    h("button", { type: "button", onclick: () => hide(true) }, "Cancel"),
  );
  const button = h(
    "button",
    { type: "button", "aria-expanded": "false", "aria-controls": picker.id, onclick: toggle },
    "Snooze",
  );

  function hide(focus) {
    picker.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (focus) button.focus();
  }

  function toggle() {
    if (!picker.hidden) return hide(false);
    const now = new Date();
    until.min = localValue(now);
    until.value = localValue(tomorrowMorning(now));
    picker.hidden = false;
    button.setAttribute("aria-expanded", "true");
    until.focus();
  }

  picker.addEventListener("submit", async (event) => {
    event.preventDefault();
    const when = new Date(until.value); // datetime-local: the browser's time zone
    if (Number.isNaN(when.getTime())) return;
    confirm.disabled = true;
    const ok = await snooze(when.toISOString());
    confirm.disabled = false;
    if (ok) hide(true);
  });

  return { button, picker };
}

/** "snoozed until Tue 1 Dec, 09:00" in the browser's language and time zone. */
export function snoozedUntil(iso) {
  const when = new Date(iso);
  const words = when.toLocaleString(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
  return `snoozed until ${words}`;
}
