// The inbox screen: search, queue tabs with live counts, the conversation list (oldest
// first by default) kept current from the stream, the team's availability and load at
// its foot, and the open conversation beside it (on a phone: instead of it).
import * as api from "./api.js";
import { conversationView } from "./conversation.js";
import { clear, field, h, select, uid } from "./el.js";
import { ago, customerLabel, toMs, when } from "./format.js";
import { QUEUES, queueTabs } from "./tabs.js";
import { teamPanel } from "./team.js";

const PAGE = 50;
const SEARCH_DELAY_MS = 300;
const QUEUE_NAMES = Object.fromEntries(QUEUES);

function rowOf(summary) {
  return {
    customer: summary.customer,
    queue: summary.queue,
    assignee: summary.assignee,
    at: toMs(summary.last_activity_at),
    preview: summary.preview,
  };
}

export function inboxView(ctx) {
  const channel = ctx.channel;
  const base = channel ? `/v1/channels/${api.seg(channel.id)}` : null;
  const state = { queue: "new", order: "oldest", rows: [], next: null, counts: {}, search: "" };
  let generation = 0;
  let missed = null; // while the list loads: the changes that came meanwhile
  let searchTimer = null;

  const tabs = queueTabs({
    onSelect(queue) {
      state.queue = queue;
      load();
    },
  });
  const list = h("ul", { class: "rows" });
  const empty = h("p", { class: "empty" });
  const more = h("button", { type: "button", class: "more", hidden: true, onclick: loadMore }, "Load more");
  const panel = h("div", { class: "panel", role: "tabpanel", id: uid("queue-panel") }, list, empty, more);
  const results = h("div", { class: "results", hidden: true });
  const search = h("input", { type: "search", placeholder: "Name, phone or username", autocomplete: "off" });
  const order = select([["oldest", "Oldest first"], ["newest", "Newest first"]], "oldest");
  const conversation = conversationView(ctx, { onBack: closeConversation });
  const team = channel ? teamPanel(ctx) : null;
  const listPane = h(
    "section",
    { class: "list-pane", "aria-label": "Conversations" },
    h(
      "form",
      {
        role: "search",
        class: "search",
        onsubmit(event) {
          event.preventDefault();
          runSearch();
        },
      },
      field("Search", search, { hideLabel: true }),
    ),
    tabs.node,
    field("Order", order, { inline: true }),
    panel,
    results,
    team?.node,
  );
  const node = h("div", { class: "inbox" }, listPane, conversation.node);

  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, SEARCH_DELAY_MS);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && search.value) clearSearch();
  });
  order.addEventListener("change", () => {
    state.order = order.value;
    load();
  });

  function compare(a, b) {
    const sign = state.order === "oldest" ? 1 : -1;
    return sign * (a.at - b.at) || a.customer.id.localeCompare(b.customer.id);
  }

  function rowNode(row, { showQueue = false } = {}) {
    const open = conversation.customer === row.customer.id;
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: "row",
          "data-customer": row.customer.id,
          "aria-current": open ? "true" : null,
          onclick: () => openConversation(row.customer.id),
        },
        h("span", { class: "who" }, customerLabel(row.customer)),
        h(
          "time",
          { class: "age", datetime: new Date(row.at).toISOString(), "data-ago": row.at, title: when(row.at) },
          ago(row.at),
        ),
        h("span", { class: "preview" }, row.preview ?? ""),
        showQueue ? h("span", { class: `badge queue-${row.queue}` }, QUEUE_NAMES[row.queue]) : null,
        row.assignee ? h("span", { class: "assignee" }, `→ ${row.assignee}`) : null,
      ),
    );
  }

  // Re-render the rows; focus stays on the row it was on.
  function render() {
    const focused = document.activeElement?.closest?.(".list-pane [data-customer]")?.dataset.customer;
    clear(list, state.rows.map((row) => rowNode(row)));
    empty.textContent = state.rows.length ? "" : `Nothing in ${QUEUE_NAMES[state.queue]}.`;
    more.hidden = !state.next;
    panel.setAttribute("aria-labelledby", tabs.tabId(state.queue));
    tabs.setCounts(state.counts);
    if (focused) list.querySelector(`[data-customer="${CSS.escape(focused)}"]`)?.focus();
  }

  async function load() {
    if (!base) {
      empty.textContent = "You see no channel yet: an admin gives you a role on one.";
      return;
    }
    const mine = ++generation;
    missed = [];
    const query = `queue=${state.queue}&order=${state.order}&limit=${PAGE}`;
    try {
      const [page, counts] = await Promise.all([
        api.get(`${base}/conversations?${query}`),
        api.get(`${base}/queues`),
      ]);
      if (mine !== generation) return; // another tab was chosen meanwhile
      const during = missed;
      missed = null;
      state.rows = page.conversations.map(rowOf);
      state.next = page.next_cursor;
      state.counts = counts;
      // The answer may have been read before changes the stream brought meanwhile: put
      // them in again (a row is set to its change, so twice is as once), and ask for
      // the counts again, since a change's move may or may not be in them.
      for (const change of during) updateRow(change);
      render();
      if (during.some((change) => change.was !== change.queue)) refreshCounts(mine);
    } catch (error) {
      if (mine === generation) missed = null;
      ctx.error(error.message);
    }
  }

  async function refreshCounts(mine) {
    try {
      const counts = await api.get(`${base}/queues`);
      if (mine !== generation) return;
      state.counts = counts;
      tabs.setCounts(counts);
    } catch (error) {
      ctx.error(error.message);
    }
  }

  async function loadMore() {
    const mine = generation;
    try {
      const query = `queue=${state.queue}&order=${state.order}&limit=${PAGE}&cursor=${encodeURIComponent(state.next)}`;
      const page = await api.get(`${base}/conversations?${query}`);
      if (mine !== generation) return;
      const byId = new Map(state.rows.map((row) => [row.customer.id, row]));
      for (const summary of page.conversations) byId.set(summary.customer.id, rowOf(summary));
      state.rows = [...byId.values()].sort(compare);
      state.next = page.next_cursor;
      render();
    } catch (error) {
      ctx.error(error.message);
    }
  }

  async function runSearch() {
    clearTimeout(searchTimer);
    const q = search.value.trim();
    state.search = q;
    panel.hidden = Boolean(q);
    results.hidden = !q;
    if (!q || !base) {
      clear(results);
      return;
    }
    try {
      const found = await api.get(`${base}/search?q=${encodeURIComponent(q)}`);
      if (state.search !== q) return;
      const rows = found.conversations.map(rowOf);
      clear(
        results,
        h("h2", { class: "results-title" }, `Search: ${q}`),
        rows.length
          ? h("ul", { class: "rows" }, rows.map((row) => rowNode(row, { showQueue: true })))
          : h("p", { class: "empty" }, "No conversation matches."),
        h("button", { type: "button", class: "quiet", onclick: clearSearch }, "Clear search"),
      );
    } catch (error) {
      ctx.error(error.message);
    }
  }

  function clearSearch() {
    search.value = "";
    runSearch();
    search.focus();
  }

  function openConversation(customer) {
    node.classList.add("showing");
    conversation.open(customer);
    for (const button of listPane.querySelectorAll("[data-customer]")) {
      button.toggleAttribute("aria-current", button.dataset.customer === customer);
    }
  }

  function closeConversation() {
    const customer = conversation.customer;
    node.classList.remove("showing");
    conversation.close();
    for (const button of listPane.querySelectorAll("[aria-current]")) button.removeAttribute("aria-current");
    const row = customer && listPane.querySelector(`[data-customer="${CSS.escape(customer)}"]`);
    (row ?? search).focus();
  }

  // One change of this channel: counts (was -> queue), the row, the open conversation.
  function onChange(change) {
    missed?.push(change);
    if (change.was !== change.queue) {
      if (change.was && state.counts[change.was] > 0) state.counts[change.was] -= 1;
      state.counts[change.queue] = (state.counts[change.queue] ?? 0) + 1;
    }
    updateRow(change);
    render();
    if (change.kind === "customer.message" && conversation.customer !== change.customer) {
      const who = change.customer_name || change.customer;
      ctx.announce(`New message from ${who} in ${QUEUE_NAMES[change.queue]}.`);
    }
    if (state.search && results.querySelector(`[data-customer="${CSS.escape(change.customer)}"]`)) runSearch();
    conversation.onChange(change);
    team?.onChange(change);
  }

  // The row of a change's conversation: out of the list, or in it where it sorts.
  function updateRow(change) {
    const at = state.rows.findIndex((row) => row.customer.id === change.customer);
    const old = at >= 0 ? state.rows[at] : null;
    if (old) state.rows.splice(at, 1);
    if (change.queue === state.queue) {
      const customer = { ...(old?.customer ?? { id: change.customer }) };
      if (change.customer_name) customer.name = change.customer_name;
      const row = {
        customer,
        queue: change.queue,
        assignee: change.assignee,
        at: toMs(change.last_activity_at),
        preview: change.preview ?? old?.preview ?? null,
      };
      const last = state.rows.at(-1);
      // Not loaded yet: it sorts after the last loaded row and more pages remain.
      const unloaded = !old && state.next && last && compare(row, last) > 0;
      if (!unloaded) state.rows.splice(sortedIndex(row), 0, row);
    }
  }

  function sortedIndex(row) {
    const at = state.rows.findIndex((other) => compare(row, other) < 0);
    return at < 0 ? state.rows.length : at;
  }

  function reload() {
    load();
    if (state.search) runSearch();
    conversation.reload();
    team?.load();
  }

  tabs.setCounts({});
  load();
  function destroy() {
    clearTimeout(searchTimer);
    conversation.close();
    team?.destroy();
  }

  return { node, onChange, reload, destroy };
}
