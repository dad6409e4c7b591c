// Admin: the channel's message templates and where Meta's review of each stands; a
// re-sync from the business account; deleting one (here and at Meta, after a confirm on
// the page: the page opens no dialogs); and writing a new one for review
// (template_writer.js).
import { section, statusLine } from "./admin_parts.js";
import * as api from "./api.js";
import { clear, h, uid } from "./el.js";
import { outLink } from "./onboarding_parts.js";
import { templateWriter } from "./template_writer.js";

// Meta's word on a template that is not sendable comes with a reason worth showing.
const WITH_REASON = new Set(["REJECTED", "PAUSED"]);

function templateLine(template, remove) {
  const id = `${template.name} (${template.language})`;
  const actions = h("span", { class: "template-actions" });
  // The focus follows the buttons as they swap, on the safe choice first.
  function ask() {
    const keep = h("button", { type: "button", class: "quiet small", "aria-label": `Keep ${id}`, onclick: () => idle().focus() }, "Keep");
    clear(
      actions,
      h("span", {}, "Delete it here and at Meta?"),
      h("button", { type: "button", class: "danger small", "aria-label": `Confirm deleting ${id}`, onclick: () => remove(template) }, "Delete"),
      keep,
    );
    keep.focus();
  }
  function idle() {
    const button = h("button", { type: "button", class: "quiet small", "aria-label": `Delete ${id}`, onclick: ask }, "Delete");
    clear(actions, button);
    return button;
  }
  idle();
  const reason = WITH_REASON.has(template.status) && template.reason && template.reason !== "NONE" ? template.reason : null;
  return h(
    "li",
    { class: "template-line" },
    h("strong", { class: "template-name" }, template.name),
    h("span", { class: "template-meta" }, `${template.language} · ${template.category.toLowerCase()}`),
    h("span", { class: "template-status", "data-status": template.status }, template.status),
    reason ? h("span", { class: "template-reason" }, reason) : null,
    actions,
  );
}

export function templatesAdmin(ctx) {
  const path = `/v1/channels/${api.seg(ctx.channel.id)}/templates`;
  const heading = h("h4", { id: uid("templates") }, "Templates on this channel");
  const list = h("ul", { class: "plain-list template-list", "aria-labelledby": heading.id });
  const sync = h("button", { type: "button" }, "Re-sync from Meta");
  const status = statusLine();
  const manage = h("span", {}, "WhatsApp Manager");
  const elsewhere = h(
    "p",
    { class: "hint" },
    "Authentication templates, and templates whose header is an image, video or document, are made in ",
    manage,
    "; “Re-sync from Meta” then brings them here.",
  );
  const writer = templateWriter({ path, note: elsewhere, onCreated: () => load() });

  async function load() {
    try {
      const { templates } = await api.get(path);
      clear(list, templates.length ? templates.map((t) => templateLine(t, remove)) : h("li", { class: "none" }, "No templates yet."));
    } catch (error) {
      status.say(error.message, true);
    }
  }

  async function remove(template) {
    const id = `${template.name} (${template.language})`;
    try {
      await api.del(`${path}/${api.seg(template.name)}/${api.seg(template.language)}`);
      status.say(`Deleted ${id}.`);
    } catch (error) {
      status.say(error.message, true);
    }
    load();
  }

  sync.addEventListener("click", async () => {
    sync.disabled = true;
    status.say("Reading the business account's templates…");
    try {
      const synced = await api.post(`${path}/sync`);
      const count = `${synced.templates} template${synced.templates === 1 ? "" : "s"}`;
      status.say(`Re-synced: ${count} from business account ${synced.waba_id}.`);
      await load();
    } catch (error) {
      status.say(error.message, true);
    } finally {
      sync.disabled = false;
    }
  });
  load();
  return {
    node: section(
      "Templates",
      heading,
      list,
      h("div", { class: "inline-form" }, sync),
      status.node,
      writer.node,
    ),
    reload: load,
    /** Where WhatsApp Manager is: the standing's manage_url, once read. */
    setManageUrl: (url) => manage.replaceChildren(outLink(url, "WhatsApp Manager")),
  };
}
