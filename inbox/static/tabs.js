// The queue tabs: role="tab" named exactly New, Open, Pending, Resolved; each count is
// shown beside its name but kept out of the name (aria-hidden), and given as the tab's
// description instead. Arrow keys, Home and End move between tabs and select.
import { clear, h, uid } from "./el.js";

export const QUEUES = [
  ["new", "New"],
  ["open", "Open"],
  ["pending", "Pending"],
  ["resolved", "Resolved"],
];

export function queueTabs({ selected = "new", onSelect }) {
  const tabs = new Map();
  const list = h("div", { class: "tabs", role: "tablist", "aria-label": "Queues" });
  const descriptions = h("div", { hidden: true });
  for (const [queue, label] of QUEUES) {
    const description = h("span", { id: uid("count-of") });
    const count = h("span", { class: "count", "aria-hidden": "true" });
    const tab = h(
      "button",
      {
        type: "button",
        role: "tab",
        id: uid(`tab-${queue}`),
        "data-queue": queue,
        "aria-describedby": description.id,
        onclick: () => choose(queue, false),
        onkeydown: (event) => move(event, queue),
      },
      h("span", { class: "tab-name" }, label),
      count,
    );
    tabs.set(queue, { tab, count, description });
    list.append(tab);
    descriptions.append(description);
  }

  function choose(queue, focus) {
    selected = queue;
    for (const [name, { tab }] of tabs) {
      tab.setAttribute("aria-selected", String(name === queue));
      tab.tabIndex = name === queue ? 0 : -1;
    }
    if (focus) tabs.get(queue).tab.focus();
    onSelect(queue);
  }

  function move(event, queue) {
    const names = QUEUES.map(([name]) => name);
    const at = names.indexOf(queue);
    const to = {
      ArrowRight: (at + 1) % names.length,
      ArrowLeft: (at - 1 + names.length) % names.length,
      Home: 0,
      End: names.length - 1,
    }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    choose(names[to], true);
  }

  for (const [name, { tab }] of tabs) {
    tab.setAttribute("aria-selected", String(name === selected));
    tab.tabIndex = name === selected ? 0 : -1;
  }

  return {
    node: h("div", {}, list, descriptions),
    get selected() {
      return selected;
    },
    tabId: (queue) => tabs.get(queue).tab.id,
    /** Show {new, open, pending, resolved}. */
    setCounts(counts) {
      for (const [name, { count, description }] of tabs) {
        const n = counts[name];
        clear(count, n === undefined ? "" : String(n));
        description.textContent =
          n === undefined ? "" : `${n} conversation${n === 1 ? "" : "s"}`;
      }
    },
  };
}
