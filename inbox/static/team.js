// Who may answer on the channel, how available and how loaded each is (GET
// /v1/channels/{id}/agents): "ana.silva · online · 3/5", the Open conversations they hold
// here out of the channel's routing capacity (only the count without routing). Read
// again when the channel's changes move or assign conversations, when the user sets
// their own availability, and every minute (others' availability is not on the stream).
import * as api from "./api.js";
import { clear, h, srOnly } from "./el.js";

const SOON_MS = 300; // changes come in bursts: one read after them
const EVERY_MS = 60000;
const ORDER = { online: 0, away: 1, offline: 2 };
// The changes that may move someone's load: a queue move shows as was != queue.
const ASSIGNING = new Set(["agent.assign", "agent.unassign", "agent.reply", "route", "release"]);
export const AVAILABILITY_EVENT = "parley:availability";

function load(agent) {
  const parts = [];
  if (agent.capacity == null) {
    parts.push(h("span", { class: "agent-load" }, `${agent.open} open`));
  } else {
    parts.push(
      h(
        "span",
        { class: "agent-load", "data-full": agent.open >= agent.capacity ? "true" : null },
        h("span", { "aria-hidden": "true" }, `${agent.open}/${agent.capacity}`),
        srOnly(`${agent.open} open of ${agent.capacity}`),
      ),
    );
  }
  if (agent.total_capacity != null) {
    parts.push(
      " · ",
      h(
        "span",
        { class: "agent-total" },
        h("span", { "aria-hidden": "true" }, `${agent.total_open}/${agent.total_capacity} overall`),
        srOnly(`${agent.total_open} open of ${agent.total_capacity} across channels`),
      ),
    );
  }
  return parts;
}

/**
 * The list of `ctx.channel`'s agents: {node, summary, load(), onChange(change),
 * destroy()}. `summary` is a text node kept as "2 of 5 online". `label` names the list
 * (a string, or the id of an element naming it).
 */
export function teamList(ctx, { label = "Team", labelledBy = null } = {}) {
  const channel = ctx.channel;
  const node = h("ul", {
    class: "team-list",
    "aria-label": labelledBy ? null : label,
    "aria-labelledby": labelledBy,
  });
  const summary = document.createTextNode("");
  let generation = 0;
  let soon = null;
  let done = false;

  function render(agents) {
    const sorted = [...agents].sort(
      (a, b) =>
        (ORDER[a.availability.status] ?? 3) - (ORDER[b.availability.status] ?? 3) || a.id.localeCompare(b.id),
    );
    clear(
      node,
      sorted.length
        ? sorted.map((agent) =>
            h(
              "li",
              { class: "agent", "data-user": agent.id, "data-status": agent.availability.status },
              h("span", { class: "presence", "aria-hidden": "true" }),
              h("span", { class: "agent-name", title: agent.name }, agent.id),
              agent.id === ctx.me.id ? h("span", { class: "agent-you" }, " (you)") : null,
              ` · ${agent.availability.status} · `,
              load(agent),
            ),
          )
        : h("li", { class: "none" }, "Nobody may answer here yet."),
    );
    const online = agents.filter((agent) => agent.availability.status === "online").length;
    summary.textContent = `${online} of ${agents.length} online`;
  }

  async function read() {
    if (!channel || done) return;
    const mine = ++generation;
    try {
      const agents = await api.get(`/v1/channels/${api.seg(channel.id)}/agents`);
      if (mine === generation && !done) render(agents);
    } catch (error) {
      if (mine === generation && !done) {
        clear(node, h("li", { class: "none" }, `Could not read the team: ${error.message}`));
        summary.textContent = "";
      }
    }
  }

  function readSoon() {
    clearTimeout(soon);
    soon = setTimeout(read, SOON_MS);
  }

  const every = setInterval(read, EVERY_MS);
  document.addEventListener(AVAILABILITY_EVENT, readSoon);
  read();

  return {
    node,
    summary,
    load: read,
    /** One change of the channel: read again if it may have moved a load. */
    onChange(change) {
      if (change.was !== change.queue || ASSIGNING.has(change.kind)) readSoon();
    },
    destroy() {
      done = true;
      clearTimeout(soon);
      clearInterval(every);
      document.removeEventListener(AVAILABILITY_EVENT, readSoon);
    },
  };
}

const OPEN_KEY = "parley.team-open";

/** The inbox's Team panel: a disclosure at the foot of the list, open unless closed. */
export function teamPanel(ctx) {
  const list = teamList(ctx, { label: "Team" });
  const node = h(
    "details",
    {
      class: "team-panel",
      open: localStorage.getItem(OPEN_KEY) !== "0",
      ontoggle: () => localStorage.setItem(OPEN_KEY, node.open ? "1" : "0"),
    },
    h("summary", {}, h("span", { class: "team-title" }, "Team"), " ", h("span", { class: "team-summary" }, list.summary)),
    list.node,
  );
  return { ...list, node };
}
