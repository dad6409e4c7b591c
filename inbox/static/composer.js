// The reply box (contributors and up): free text within WhatsApp's 24-hour window, an
// approved template once it has closed; saved replies go in at the cursor. Enter
// sends, Shift+Enter starts a new line. It lives as long as its conversation is open,
// so live updates never wipe what an agent is typing.
import * as api from "./api.js";
import { clear, field, h } from "./el.js";
import { ago, shortWhen, toMs } from "./format.js";

const WINDOW_MS = 24 * 3600 * 1000;

/** send(body) -> Promise<boolean>: body is {text} or {template, language}. */
export function composerView(ctx, { send }) {
  const base = `/v1/channels/${api.seg(ctx.channel.id)}`;
  const reply = h("textarea", { rows: 3, maxlength: 4096, placeholder: "Write a reply…" });
  const saved = h("select", {}, h("option", { value: "" }, "Saved replies…"));
  const savedField = field("Insert saved text", saved, { hideLabel: true });
  const windowNote = h("p", { class: "window-note" });
  const template = h("select");
  const sendButton = h("button", { type: "submit", class: "primary" }, "Send");
  const textPart = h(
    "div",
    { class: "text-part" },
    field("Reply", reply, { hideLabel: true, hint: "Enter sends; Shift+Enter starts a new line." }),
  );
  const templatePart = h("div", { class: "template-part", hidden: true }, field("Template", template));
  const node = h(
    "form",
    { class: "composer" },
    windowNote,
    textPart,
    templatePart,
    h("div", { class: "composer-actions" }, savedField, sendButton),
  );
  const savedTexts = new Map();
  let approved = [];
  let templatesLoaded = false;
  let mode = "text";
  let lastCustomer = null;
  let closedAt = undefined; // lastCustomer when the API said the window had closed
  let busy = false;

  reply.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  node.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  saved.addEventListener("change", () => {
    const text = savedTexts.get(saved.value);
    saved.value = "";
    if (text === undefined) return;
    reply.setRangeText(text, reply.selectionStart, reply.selectionEnd, "end");
    reply.focus();
  });

  async function loadSaved() {
    try {
      const found = await api.get(`${base}/saved-replies`);
      for (const { name, text } of found.saved_replies) savedTexts.set(name, text);
      saved.append(...found.saved_replies.map(({ name }) => h("option", { value: name }, name)));
    } catch (error) {
      ctx.error(error.message);
    }
    savedField.hidden = mode !== "text" || savedTexts.size === 0;
  }

  async function loadTemplates() {
    templatesLoaded = true;
    try {
      const found = await api.get(`${base}/templates`);
      approved = found.templates.filter((t) => t.status === "APPROVED");
    } catch (error) {
      ctx.error(error.message);
    }
    clear(
      template,
      approved.length
        ? approved.map((t, i) => h("option", { value: String(i) }, `${t.name} (${t.language}) · ${t.category.toLowerCase()}`))
        : h("option", { value: "" }, "No approved template on this channel"),
    );
    sendButton.disabled = mode === "template" && !approved.length;
  }

  function setMode(next) {
    mode = next;
    textPart.hidden = next !== "text";
    templatePart.hidden = next !== "template";
    savedField.hidden = next !== "text" || savedTexts.size === 0;
    if (next === "text") {
      sendButton.disabled = false;
      windowNote.textContent = `Free text allowed until ${shortWhen(lastCustomer + WINDOW_MS)} (24 hours after the customer's last message).`;
    } else {
      windowNote.textContent =
        lastCustomer === null
          ? "The customer has not written yet: WhatsApp allows only an approved template."
          : `The customer last wrote ${ago(lastCustomer)} ago, more than 24 hours: WhatsApp allows only an approved template now.`;
      if (!templatesLoaded) loadTemplates();
      else sendButton.disabled = !approved.length;
    }
  }

  async function submit() {
    if (busy) return;
    let body;
    if (mode === "text") {
      const text = reply.value.trim();
      if (!text) return reply.focus();
      body = { text };
    } else {
      const chosen = approved[Number(template.value)];
      if (!chosen || template.value === "") return template.focus();
      body = { template: chosen.name, language: chosen.language };
    }
    busy = true;
    sendButton.disabled = true;
    reply.readOnly = true;
    try {
      if (await send(body)) {
        if (mode === "text") reply.value = "";
      }
    } finally {
      busy = false;
      reply.readOnly = false;
      sendButton.disabled = mode === "template" && !approved.length;
      (mode === "text" ? reply : template).focus();
    }
  }

  loadSaved();
  return {
    node,
    focus: () => (mode === "text" ? reply : template).focus(),
    /** The conversation as shown: picks free text or a template by the window. */
    update(view) {
      lastCustomer = toMs(view.last_customer_message_at);
      const open =
        lastCustomer !== null && Date.now() - lastCustomer <= WINDOW_MS && closedAt !== lastCustomer;
      setMode(open ? "text" : "template");
    },
    /** The API said the window has closed (409 template_required). */
    requireTemplate() {
      closedAt = lastCustomer; // the server's clock decides
      setMode("template");
    },
  };
}
