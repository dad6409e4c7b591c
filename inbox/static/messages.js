// The conversation's messages, in and out: delivery ticks (queued, accepted, sent,
// delivered, read, played, failed with Meta's reason), the author of group messages,
// files, places, contact cards, an agent's buttons or list, the message a reply quotes,
// reactions, edits and deletions. Kept by message id, so a refresh adds what is new
// (announced by the log) and updates ticks in place; each message's actions (reply,
// react) stay put across refreshes, so focus on them survives.
import { clear, h, srOnly, svg, uid } from "./el.js";
import { shortWhen, toMs, when } from "./format.js";
import { cardsPart, interactivePart, mediaPart, placePart, quotePart, reactionsPart } from "./message_parts.js";
import { messageActions } from "./reactions.js";

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

function body(message, id) {
  if (message.deleted) return h("div", { class: "body", id }, h("p", { class: "text deleted" }, "This message was deleted."));
  const text = message.text ? h("p", { class: "text" }, message.text) : null;
  const parts = [
    message.media ? mediaPart(message.media, message.text) : null,
    message.place ? placePart(message.place) : null,
    message.cards?.length ? cardsPart(message.cards) : null,
    message.interactive ? interactivePart(message.interactive) : null,
  ];
  // A place's or a card's text is its name, shown already; a file's is its caption.
  if (!message.place && !message.cards?.length && !message.interactive) parts.push(text);
  if (!parts.some(Boolean)) {
    parts.push(
      message.template
        ? h("p", { class: "text" }, `Template: ${message.template}`)
        : h("p", { class: "text kind" }, message.preview || `[${message.type}]`),
    );
  }
  return h("div", { class: "body", id }, parts);
}

const SPEAKER = { inbound: "Customer: ", outbound: "Sent: ", system: "Notice: " };

/** Whether WhatsApp knows the message, so that a reply may quote it. */
const quotable = (message) =>
  !message.deleted &&
  (message.direction === "inbound" || (message.direction === "outbound" && Boolean(message.wamid)));

function fill(content, message, { bodyId, quoteTarget }) {
  const at = toMs(message.at);
  let quote = null;
  if (message.quoted) quote = quotePart(message.quoted, quoteTarget);
  else if (message.reply_to) quote = h("div", { class: "quote" }, h("span", { class: "quote-who" }, "Replying to an earlier message"));
  clear(
    content,
    message.author ? h("p", { class: "author" }, message.author) : null,
    srOnly(SPEAKER[message.direction] ?? ""),
    quote,
    body(message, bodyId),
    reactionsPart(message),
    message.status === "failed"
      ? h("p", { class: "failure" }, `Not delivered: ${message.error ?? "no reason given"}`)
      : null,
    h(
      "p",
      { class: "meta" },
      h("time", { datetime: new Date(at).toISOString(), title: when(at) }, shortWhen(at)),
      message.user ? h("span", {}, ` · ${message.user}`) : null,
      message.source === "business_app" ? h("span", {}, " · from the WhatsApp Business app") : null,
      message.source === "out_of_hours" ? h("span", {}, " · sent automatically, out of hours") : null,
      message.edited ? h("span", { class: "mark" }, " · edited") : null,
      message.status ? tick(message.status) : null,
    ),
  );
}

/**
 * `actions` (for those who may reply, else null): reply(message) and
 * react(message, emoji) -> Promise<boolean>.
 */
export function messageLog({ actions = null } = {}) {
  const list = h("ol", { class: "messages", role: "log", "aria-label": "Messages", tabindex: "0" });
  const items = new Map(); // message id -> {node, content, bodyId, bar, key, message}
  let first = true;

  function goTo(id) {
    const item = items.get(id);
    if (!item) return;
    item.node.scrollIntoView({ block: "center" });
    item.node.focus();
  }

  function itemFor(message) {
    let item = items.get(message.id);
    if (!item) {
      const content = h("div", { class: "msg-content" });
      item = { node: h("li", { tabindex: "-1" }, content), content, bodyId: uid("msg"), bar: null, key: null, message };
      items.set(message.id, item);
    }
    item.message = message;
    if (actions && !item.bar && quotable(message)) {
      const mine = item;
      item.bar = messageActions({
        reply: () => actions.reply(mine.message),
        react: (emoji) => actions.react(mine.message, emoji),
        describedBy: item.bodyId,
        reactable: message.direction === "inbound",
      });
      item.node.append(item.bar.node);
      if (item.bar.picker) item.node.append(item.bar.picker);
    }
    return item;
  }

  /** The messages as the API gives them; `canReact`: within WhatsApp's window. */
  function update(messages, { canReact = true } = {}) {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    const keep = new Set();
    let previous = null;
    for (const message of messages) {
      keep.add(message.id);
      const item = itemFor(message);
      const quoted = message.quoted && items.has(message.quoted.id) ? goTo : null;
      const key = JSON.stringify([message, Boolean(quoted)]);
      if (item.key !== key) {
        item.node.className = `msg ${message.direction}`;
        item.node.dataset.status = message.status ?? "";
        fill(item.content, message, { bodyId: item.bodyId, quoteTarget: quoted });
        item.key = key;
      }
      item.bar?.update(message.business_reaction, canReact);
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
