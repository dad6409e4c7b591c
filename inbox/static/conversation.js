// One conversation: who, where it stands, its messages, details and actions (move to
// pending, resolve, assign; reply, quote and react for contributors and up). It is
// fetched again once per change the stream brings for it; action answers carrying the
// conversation are shown at once (a customer's file that arrives is a change too).
// Opening it marks the customer's last message read (contributors and
// up, once per opening: the API's `read`).
import * as api from "./api.js";
import { assignControl } from "./assign.js";
import { composerView } from "./composer.js";
import { detailsPanel } from "./details.js";
import { clear, h } from "./el.js";
import { customerLabel } from "./format.js";
import { messageLog } from "./messages.js";
import { atLeast } from "./roles.js";
import { snoozeControl, snoozedUntil } from "./snooze.js";

const QUEUE = { new: "New", open: "Open", pending: "Pending", resolved: "Resolved" };

const SLA_TARGET = { first_response: "first response", next_response: "next response", resolution: "resolution" };

/** "first response due 10:30", "first response due soon (10:30)", "first response missed". */
function slaText(deadline) {
  const name = SLA_TARGET[deadline.target] ?? deadline.target;
  if (deadline.breached) return `${name} missed`;
  const at = new Date(deadline.due).toLocaleString(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });
  return deadline.warned ? `${name} due soon (${at})` : `${name} due ${at}`;
}

function placeholder() {
  return h("div", { class: "placeholder" }, h("p", {}, "Choose a conversation from the list."));
}

export function conversationView(ctx, { onBack }) {
  const channel = ctx.channel;
  const node = h("section", { class: "conversation-pane", "aria-label": "Conversation" }, placeholder());
  let customer = null; // Parley's id of the open conversation's customer
  let shown = null; // the conversation as shown
  let parts = null;
  let epoch = 0; // one per opened conversation: late answers for another are dropped
  let fetching = null;
  let again = false;
  const applied = new Set(); // ids of actions whose answer is shown already

  const path = (suffix = "") =>
    `/v1/conversations/${api.seg(channel.id)}/${api.seg(customer)}${suffix}`;

  async function act(method, suffix, body, button = null, { onError = null } = {}) {
    const mine = epoch;
    if (button) button.disabled = true;
    try {
      const result = await api.request(method, path(suffix), body);
      ctx.clearError();
      if (result?.conversation) {
        applied.add(result.event_id);
        if (mine === epoch && (!shown || result.conversation.version > shown.version)) {
          update(result.conversation);
        }
        if (result.outcome === "ignored") ctx.notice(`Nothing changed: ${result.reason}`);
      } else {
        ctx.notice("Parley has it; it shows here once applied.");
      }
      return true;
    } catch (error) {
      ctx.error(error.message);
      onError?.(error);
      if (error.code === "template_required" && mine === epoch) parts?.composer?.requireTemplate();
      return false;
    } finally {
      if (button) button.disabled = false;
    }
  }

  function build() {
    const heading = h("h2", { tabindex: "-1" });
    const ids = h("p", { class: "ids" });
    const where = h("p", { class: "where" });
    const move = h("button", { type: "button" }, "Move to pending");
    const resolve = h("button", { type: "button" }, "Resolve");
    move.addEventListener("click", () => act("POST", "/move", { queue: "pending" }, move));
    resolve.addEventListener("click", () => act("POST", "/move", { queue: "resolved" }, resolve));
    // Whoever may move a conversation to pending may snooze it (the API's rule).
    const snooze = snoozeControl({ snooze: (until) => act("POST", "/snooze", { until }) });
    const assign = atLeast(channel.role, "contributor")
      ? assignControl(ctx, {
          assign: (user) => act("PUT", "/assignee", { user }),
          unassign: () => act("DELETE", "/assignee"),
        })
      : null;
    const composer = atLeast(channel.role, "contributor")
      ? composerView(ctx, {
          send: (body, options) => act("POST", "/replies", body, null, options),
          typing: () => signal("/typing"),
        })
      : null;
    const log = messageLog({
      actions: composer && {
        reply: (message) => composer.quote(message),
        react: (message, emoji) => act("POST", "/reactions", { message: message.id, emoji }),
      },
    });
    const details = detailsPanel({ add: (kind, body) => act("POST", `/${kind}`, body) });
    const viewer = composer
      ? null
      : h("p", { class: "viewer-note" }, "As a viewer you can read, tag, note and move conversations; replying needs the contributor role.");
    const node = h(
      "div",
      { class: "conversation" },
      h(
        "header",
        { class: "conv-head" },
        h("button", { type: "button", class: "back quiet", onclick: onBack }, "Back to list"),
        h("div", { class: "conv-title" }, heading, ids, where),
        h("div", { class: "actions", role: "group", "aria-label": "Actions" }, move, snooze.button, resolve, assign?.button),
        snooze.picker,
        assign?.picker,
      ),
      h("div", { class: "conv-body" }, h("div", { class: "thread" }, log.node, composer?.node ?? viewer), details.node),
    );
    return { node, heading, ids, where, move, snooze, resolve, assign, log, details, composer };
  }

  function update(view) {
    shown = view;
    const c = view.customer;
    parts.heading.textContent = customerLabel(c);
    const known = [c.phone && `+${c.phone}`, c.username && `@${c.username.replace(/^@/, "")}`];
    parts.ids.textContent = known.filter((v) => v && v !== customerLabel(c)).join(" · ");
    const state = [QUEUE[view.queue]];
    if (view.snoozed_until) state.push(snoozedUntil(view.snoozed_until));
    for (const deadline of view.sla ?? []) state.push(slaText(deadline));
    state.push(view.assignee ? `assigned to ${view.assignee}` : "unassigned");
    parts.where.textContent = state.join(" · ");
    parts.where.dataset.queue = view.queue;
    parts.move.hidden = view.queue === "pending";
    parts.resolve.hidden = view.queue === "resolved";
    parts.snooze.button.hidden = view.queue === "resolved";
    parts.assign?.update(view.assignee);
    parts.composer?.update(view);
    parts.log.update(view.messages, { canReact: parts.composer?.windowOpen ?? false });
    parts.details.update(view);
  }

  // A read receipt or typing indicator: nothing to tell the agent if it does not go.
  async function signal(suffix) {
    const mine = epoch;
    try {
      const result = await api.post(path(suffix));
      if (result?.conversation) {
        applied.add(result.event_id);
        if (mine === epoch && (!shown || result.conversation.version > shown.version)) update(result.conversation);
      }
    } catch {
      // not shown: the agent did not ask for it, and the conversation is unchanged
    }
  }

  async function refresh() {
    if (fetching === epoch) {
      again = true; // one more fetch when this one is done
      return;
    }
    const mine = epoch;
    fetching = mine;
    try {
      do {
        again = false;
        const view = await api.get(path());
        if (mine !== epoch) return;
        update(view);
      } while (again && mine === epoch);
    } catch (error) {
      if (mine === epoch) ctx.error(error.message);
    } finally {
      if (fetching === mine) fetching = null;
    }
  }

  async function open(id) {
    if (id === customer && parts) {
      (parts.composer ?? { focus: () => parts.heading.focus() }).focus();
      return;
    }
    epoch += 1;
    again = false;
    customer = id;
    shown = null;
    parts = build();
    clear(node, parts.node);
    await refresh();
    if (customer === id && parts?.composer && shown?.last_customer_message_at) signal("/read");
    if (customer === id && parts) {
      if (parts.composer && matchMedia("(min-width: 761px)").matches) parts.composer.focus();
      else parts.heading.focus();
    }
  }

  function close() {
    epoch += 1;
    customer = null;
    shown = null;
    parts = null;
    clear(node, placeholder());
  }

  function onChange(change) {
    if (change.customer !== customer || !parts) return;
    if (shown && change.version < shown.version) return;
    if (shown && change.version === shown.version && applied.has(change.event)) return;
    refresh();
  }

  return {
    node,
    open,
    close,
    onChange,
    reload: () => customer && refresh(),
    get customer() {
      return customer;
    },
  };
}
