// The conversation's messages, in and out: delivery ticks (queued, accepted, sent,
// delivered, read, played, failed with Meta's reason), the author of group messages,
// reactions, edits and deletions. Kept by message id, so a refresh adds what is new
// (announced by the log) and updates ticks in place.
import { clear, h, srOnly, svg } from "./el.js";
import { shortWhen, toMs, when } from "./format.js";

const TICKS = {
  queued: { label: "Queued", icon: "clock" },
  accepted: { label: "Accepted", icon: "one" },
  sent: { label: "Sent", icon: "one" },
  delivered: { label: "Delivered", icon: "two" },
  read: { label: "Read", icon: "two" },
  played: { label: "Played", icon: "two" },
  failed: { label: "Failed", icon: "failed" },
  unconfirmed: { label: "Unconfirmed", icon: "unknown" },
};
const ICONS = {
  clock: () => [
    svg("circle", { cx: 6, cy: 6, r: 4.5 }),
    svg("polyline", { points: "6,3.5 6,6 7.8,7.2" }),
  ],
  one: () => [svg("polyline", { points: "1.5,6.5 4.5,9.5 10.5,2.5" })],
  two: () => [
    svg("polyline", { points: "1.5,6.5 4.5,9.5 10.5,2.5" }),
    svg("polyline", { points: "7,9.5 7.5,9.5 13.5,2.5" }),
  ],
  failed: () => [
    svg("circle", { cx: 6, cy: 6, r: 4.5 }),
    svg("line", { x1: 6, y1: 3.5, x2: 6, y2: 6.5 }),
    svg("line", { x1: 6, y1: 8.3, x2: 6, y2: 8.4 }),
  ],
  unknown: () => [svg("circle", { cx: 6, cy: 6, r: 4.5 })],
};

function tick(status) {
  const spec = TICKS[status] ?? { label: status, icon: "unknown" };
  const icon = svg(
    "svg",
    { class: "tick-icon", viewBox: "0 0 15 12", width: 15, height: 12, "aria-hidden": "true", focusable: "false" },
    ICONS[spec.icon](),
  );
  return h("span", { class: `tick tick-${status}`, title: spec.label }, icon, h("span", { class: "tick-label" }, spec.label));
}

function body(message) {
  if (message.deleted) return h("p", { class: "text deleted" }, "This message was deleted.");
  if (message.text) return h("p", { class: "text" }, message.text);
  if (message.template) return h("p", { class: "text" }, `Template: ${message.template}`);
  return h("p", { class: "text kind" }, `[${message.type}]`);
}

const SPEAKER = { inbound: "Customer: ", outbound: "Sent: ", system: "Notice: " };

function fill(item, message) {
  const at = toMs(message.at);
  item.className = `msg ${message.direction}`;
  item.dataset.status = message.status ?? "";
  clear(
    item,
    message.author ? h("p", { class: "author" }, message.author) : null,
    srOnly(SPEAKER[message.direction] ?? ""),
    body(message),
    message.reaction
      ? h("p", { class: "reaction" }, srOnly("Customer's reaction: "), message.reaction)
      : null,
    message.status === "failed"
      ? h("p", { class: "failure" }, `Not delivered: ${message.error ?? "no reason given"}`)
      : null,
    h(
      "p",
      { class: "meta" },
      h("time", { datetime: new Date(at).toISOString(), title: when(at) }, shortWhen(at)),
      message.user ? h("span", {}, ` · ${message.user}`) : null,
      message.source === "business_app" ? h("span", {}, " · from the WhatsApp Business app") : null,
      message.edited ? h("span", { class: "mark" }, " · edited") : null,
      message.status ? tick(message.status) : null,
    ),
  );
}

export function messageLog() {
  const list = h("ol", { class: "messages", role: "log", "aria-label": "Messages", tabindex: "0" });
  const items = new Map(); // message id -> {node, key}
  let first = true;

  function update(messages) {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    const keep = new Set();
    let previous = null;
    for (const message of messages) {
      keep.add(message.id);
      let item = items.get(message.id);
      if (!item) {
        item = { node: h("li"), key: null };
        items.set(message.id, item);
      }
      const key = JSON.stringify(message);
      if (item.key !== key) {
        fill(item.node, message);
        item.key = key;
      }
      const place = previous ? previous.nextSibling : list.firstChild;
      if (place !== item.node) list.insertBefore(item.node, place);
      previous = item.node;
    }
    for (const [id, item] of items) {
      if (!keep.has(id)) {
        item.node.remove();
        items.delete(id);
      }
    }
    if (first || atBottom) list.scrollTop = list.scrollHeight;
    first = false;
  }

  return { node: list, update };
}
