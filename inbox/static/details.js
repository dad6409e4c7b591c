// The conversation's side panel: who the customer is, tags, topics and notes, each
// with a small form to add one (every role may annotate).
import { clear, field, h } from "./el.js";
import { customerLabel, toMs, when } from "./format.js";

function addForm(label, button, placeholder, submit, { multiline = false } = {}) {
  const input = multiline
    ? h("textarea", { rows: 2, maxlength: 4096, placeholder })
    : h("input", { type: "text", maxlength: 100, placeholder, autocomplete: "off" });
  const action = h("button", { type: "submit" }, button);
  const form = h("form", { class: "add" }, field(label, input, { hideLabel: true }), action);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      input.focus();
      return;
    }
    action.disabled = true;
    try {
      if (await submit(value)) input.value = "";
    } finally {
      action.disabled = false;
    }
  });
  return form;
}

function facts(view) {
  const customer = view.customer;
  const rows = [
    ["Name", customer.name],
    ["Phone", customer.phone ? `+${customer.phone}` : null],
    ["Username", customer.username ? `@${customer.username.replace(/^@/, "")}` : null],
    ["WhatsApp user id", customer.user_id],
    ["Group", customer.group_id],
    ["Parley id", customer.id],
    ["Opened", when(toMs(view.opened_at))],
    ["First response", view.first_response_at ? when(toMs(view.first_response_at)) : "not yet"],
    ["Marketing", customer.marketing_opt_out ? "opted out" : null],
  ];
  return rows
    .filter(([, value]) => value)
    .flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]);
}

/** add(kind, body) -> Promise<boolean>: kind is "tags", "topics" or "notes". */
export function detailsPanel({ add }) {
  const info = h("dl", { class: "facts" });
  const tags = h("ul", { class: "chips" });
  const topics = h("ul", { class: "chips" });
  const notes = h("ol", { class: "notes" });
  const node = h(
    "aside",
    { class: "details", "aria-label": "Details" },
    h("h3", {}, "Customer"),
    info,
    h("h3", {}, "Tags"),
    tags,
    addForm("Tag", "Add tag", "New tag", (tag) => add("tags", { tag })),
    h("h3", {}, "Topics"),
    topics,
    addForm("Topic", "Add topic", "New topic", (topic) => add("topics", { topic })),
    h("h3", {}, "Notes"),
    notes,
    addForm("Note", "Add note", "A note for the team", (text) => add("notes", { text }), {
      multiline: true,
    }),
  );

  function update(view) {
    clear(info, facts(view));
    clear(tags, view.tags.length ? view.tags.map((t) => h("li", { class: "chip" }, t)) : h("li", { class: "none" }, "None"));
    clear(topics, view.topics.length ? view.topics.map((t) => h("li", { class: "chip" }, t)) : h("li", { class: "none" }, "None"));
    clear(
      notes,
      view.notes.length
        ? view.notes.map((note) =>
            h(
              "li",
              {},
              h("p", { class: "note-text" }, note.text),
              h("p", { class: "meta" }, `${note.user} · ${when(toMs(note.at))}`),
            ),
          )
        : h("li", { class: "none" }, "None"),
    );
    node.setAttribute("aria-label", `Details of ${customerLabel(view.customer)}`);
  }

  return { node, update };
}
