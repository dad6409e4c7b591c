// The reply box (contributors and up): free text, a file with the text as its caption,
// or an approved template with its variables. Free-form messages only within WhatsApp's
// 24-hour window; once it has closed, only a template. "Reply" on a message quotes it in
// the next reply (Escape or "Cancel reply" drops the quote). Saved replies go in at the
// cursor; Enter sends, Shift+Enter starts a new line. While the agent types, the customer
// sees a typing indicator: at most one request every 20 s. It lives as long as its
// conversation is open, so live updates never wipe what an agent is typing.
import * as api from "./api.js";
import { field, h } from "./el.js";
import { ago, shortWhen, toMs } from "./format.js";
import { templateForm } from "./template_form.js";
import { fileUpload } from "./upload.js";

const WINDOW_MS = 24 * 3600 * 1000;
const TYPING_EVERY_MS = 20000; // WhatsApp shows the indicator for up to 25 s
const CAPTIONED = new Set(["image", "video", "document"]); // parley/whatsapp.py CAPTIONED
const QUOTED = { inbound: "the customer", outbound: "us" };

/**
 * send(body, {onError}) -> Promise<boolean>: body is a reply as POST .../replies takes
 * it; onError(ApiError) when it is refused. typing(): the agent is typing.
 */
export function composerView(ctx, { send, typing }) {
  const base = `/v1/channels/${api.seg(ctx.channel.id)}`;
  const reply = h("textarea", { rows: 3, maxlength: 4096, placeholder: "Write a reply…" });
  const saved = h("select", {}, h("option", { value: "" }, "Saved replies…"));
  const savedField = field("Insert saved text", saved, { hideLabel: true });
  const windowNote = h("p", { class: "window-note" });
  const quoteText = h("span", { class: "quote-text" });
  const quoteWho = h("span", { class: "quote-who" });
  const cancelQuote = h("button", { type: "button", class: "quiet small" }, "Cancel reply");
  const quoteBanner = h(
    "div",
    { class: "replying", hidden: true },
    h("div", { class: "quote", role: "status" }, quoteWho, quoteText),
    cancelQuote,
  );
  const attachment = fileUpload({
    channelPath: base,
    label: "Attach file",
    removeLabel: "Remove attachment",
    onChange: attachmentChanged,
  });
  const captionNote = h("p", { class: "hint", hidden: true });
  const templates = templateForm({
    channelPath: base,
    loadTemplates: async () => (await api.get(`${base}/templates`)).templates,
    onChange: () => setMode(),
    onError: (message) => ctx.error(message),
  });
  const modeButton = h("button", { type: "button", class: "quiet" });
  const sendButton = h("button", { type: "submit", class: "primary" }, "Send");
  const textPart = h(
    "div",
    { class: "text-part" },
    field("Reply", reply, { hideLabel: true, hint: "Enter sends; Shift+Enter starts a new line." }),
    captionNote,
  );
  const templatePart = h("div", { hidden: true }, templates.node);
  const node = h(
    "form",
    { class: "composer" },
    windowNote,
    quoteBanner,
    textPart,
    templatePart,
    h("div", { class: "composer-actions" }, attachment.node, savedField, modeButton, sendButton),
  );
  const savedTexts = new Map();
  let mode = "text";
  let wantTemplate = false; // the agent chose a template while free text is allowed
  let lastCustomer = null;
  let closedAt = undefined; // lastCustomer when the API said the window had closed
  let quoting = null; // the message the next reply quotes
  let lastTyping = 0;
  let busy = false;

  reply.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && quoting) {
      event.preventDefault();
      unquote();
    }
  });
  reply.addEventListener("input", () => {
    const now = Date.now();
    if (reply.value.trim() && now - lastTyping >= TYPING_EVERY_MS) {
      lastTyping = now;
      typing();
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
  modeButton.addEventListener("click", () => {
    wantTemplate = mode === "text";
    setMode();
    focus();
  });
  cancelQuote.addEventListener("click", () => {
    unquote();
    focus();
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

  function attachmentChanged() {
    const file = attachment.value;
    captionNote.hidden = !file;
    if (file) {
      captionNote.textContent = CAPTIONED.has(file.kind)
        ? `The text is sent as the ${file.kind}'s caption.`
        : `WhatsApp shows no caption on a ${file.kind}: any text goes as a message of its own after it.`;
    }
    reply.placeholder = file && CAPTIONED.has(file.kind) ? "Add a caption (optional)…" : "Write a reply…";
  }

  const windowOpen = () =>
    lastCustomer !== null && Date.now() - lastCustomer <= WINDOW_MS && closedAt !== lastCustomer;

  function setMode() {
    const open = windowOpen();
    mode = open && !wantTemplate ? "text" : "template";
    textPart.hidden = mode !== "text";
    attachment.node.hidden = mode !== "text";
    templatePart.hidden = mode !== "template";
    savedField.hidden = mode !== "text" || savedTexts.size === 0;
    modeButton.hidden = !open;
    modeButton.textContent = mode === "text" ? "Use a template" : "Write a message";
    if (open) {
      const until = `until ${shortWhen(lastCustomer + WINDOW_MS)} (24 hours after the customer's last message)`;
      windowNote.textContent = mode === "text" ? `Free text allowed ${until}.` : `Sending an approved template; free text is allowed ${until}.`;
    } else {
      windowNote.textContent =
        lastCustomer === null
          ? "The customer has not written yet: WhatsApp allows only an approved template."
          : `The customer last wrote ${ago(lastCustomer)} ago, more than 24 hours: WhatsApp allows only an approved template now.`;
    }
    if (mode === "template") {
      templates.load();
      sendButton.disabled = busy || !templates.available;
    } else {
      sendButton.disabled = busy;
    }
  }

  function quote(message) {
    quoting = message;
    quoteWho.textContent = `Replying to ${QUOTED[message.direction] ?? "a message"}`;
    quoteText.textContent = message.preview;
    quoteBanner.hidden = false;
    focus();
  }

  function unquote() {
    quoting = null;
    quoteBanner.hidden = true;
  }

  // The replies this send makes: a file and its caption (or, where WhatsApp shows no
  // caption, the text after it), text, or a template; null when there is nothing to send.
  function bodies() {
    if (mode === "template") {
      const body = templates.body();
      return body ? [body] : null;
    }
    const text = reply.value.trim();
    const file = attachment.value;
    if (attachment.busy) {
      ctx.notice("The file is still uploading: send it once it is ready.");
      return null;
    }
    if (!file && !text) {
      reply.focus();
      return null;
    }
    if (!file) return [{ text }];
    const sent = { key: file.key };
    if (file.kind === "document" && file.filename) sent.filename = file.filename;
    if (CAPTIONED.has(file.kind)) return [text ? { attachment: sent, text } : { attachment: sent }];
    return text ? [{ attachment: sent }, { text }] : [{ attachment: sent }];
  }

  async function submit() {
    if (busy) return;
    const replies = bodies();
    if (!replies) return;
    if (quoting) replies[0].reply_to = quoting.id;
    busy = true;
    sendButton.disabled = true;
    reply.readOnly = true;
    attachment.disable(true);
    try {
      for (const body of replies) {
        const onError = (error) => body.template && templates.refused(error);
        if (!(await send(body, { onError }))) break;
        if (body.reply_to) unquote();
        if (body.attachment) attachment.clear();
        if (body.text) reply.value = "";
        if (body.template) templates.reset();
      }
    } finally {
      busy = false;
      reply.readOnly = false;
      attachment.disable(false);
      setMode();
      if (!node.contains(document.activeElement) || document.activeElement === sendButton) focus();
    }
  }

  function focus() {
    if (mode === "text") reply.focus();
    else templates.focus();
  }

  loadSaved();
  return {
    node,
    focus,
    quote,
    /** Whether free-form messages (and reactions) may go now. */
    get windowOpen() {
      return windowOpen();
    },
    /** The conversation as shown: picks free text or a template by the window. */
    update(view) {
      lastCustomer = toMs(view.last_customer_message_at);
      setMode();
    },
    /** The API said the window has closed (409 template_required). */
    requireTemplate() {
      closedAt = lastCustomer; // the server's clock decides
      setMode();
    },
  };
}
