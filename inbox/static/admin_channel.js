// Admin: the selected channel's settings (display name, auto-assign, auto-resolve
// periods, send rate) and its saved replies.
import { section, statusLine } from "./admin_parts.js";
import * as api from "./api.js";
import { checkbox, clear, field, h } from "./el.js";

const PERIOD_HINT = '"90s", "15m", "12h", "30d" or "off"';

export function channelSettings(ctx) {
  const channel = ctx.channel;
  const path = `/v1/channels/${api.seg(channel.id)}`;
  const name = h("input", { type: "text", value: channel.display_name, maxlength: 255, required: true });
  const autoAssign = checkbox("Assign a conversation to the agent who first replies", channel.auto_assign);
  const newAfter = h("input", { type: "text", value: channel.auto_resolve_new, autocomplete: "off" });
  const pendingAfter = h("input", { type: "text", value: channel.auto_resolve_pending, autocomplete: "off" });
  const rate = h("input", { type: "number", min: 1, max: 10000, value: channel.send_rate ?? "" });
  const status = statusLine();
  const form = h(
    "form",
    { class: "settings" },
    field("Display name", name, { hint: "Shown in the channel selector." }),
    autoAssign.node,
    field("Resolve new conversations after", newAfter, { hint: PERIOD_HINT }),
    field("Resolve pending conversations after", pendingAfter, { hint: PERIOD_HINT }),
    field("Send rate", rate, { hint: "Replies a second at most; empty for no limit." }),
    h("button", { type: "submit", class: "primary" }, "Save settings"),
    status.node,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const current = ctx.channel;
    const body = {};
    if (name.value.trim() !== current.display_name) body.display_name = name.value;
    if (autoAssign.input.checked !== current.auto_assign) body.auto_assign = autoAssign.input.checked;
    if (newAfter.value.trim() !== current.auto_resolve_new) body.auto_resolve_new = newAfter.value.trim();
    if (pendingAfter.value.trim() !== current.auto_resolve_pending) {
      body.auto_resolve_pending = pendingAfter.value.trim();
    }
    const sendRate = rate.value === "" ? null : Number(rate.value);
    if (sendRate !== current.send_rate) body.send_rate = sendRate;
    if (!Object.keys(body).length) return status.say("Nothing changed.");
    try {
      const saved = await api.patch(path, body);
      name.value = saved.display_name;
      newAfter.value = saved.auto_resolve_new;
      pendingAfter.value = saved.auto_resolve_pending;
      await ctx.refreshChannels(); // the selector shows the new name
      status.say("Saved.");
    } catch (error) {
      status.say(error.message, true);
    }
  });
  return { node: section("Channel settings", h("p", { class: "hint" }, `WhatsApp number id ${channel.id}`), form) };
}

export function savedRepliesAdmin(ctx) {
  const path = `/v1/channels/${api.seg(ctx.channel.id)}/saved-replies`;
  const list = h("ul", { class: "plain-list" });
  const name = h("input", { type: "text", maxlength: 64, required: true, pattern: "[\\w .\\-]{1,64}", autocomplete: "off" });
  const text = h("textarea", { rows: 3, maxlength: 4096, required: true });
  const status = statusLine();
  const form = h(
    "form",
    { class: "stacked" },
    field("Title", name, { hint: "Letters, digits, spaces, '.', '-' or '_'. An existing name is replaced." }),
    field("Saved text", text),
    h("button", { type: "submit" }, "Keep saved reply"),
    status.node,
  );

  async function load() {
    try {
      const found = await api.get(path);
      clear(
        list,
        found.saved_replies.length
          ? found.saved_replies.map((saved) =>
              h(
                "li",
                {},
                h("strong", {}, saved.name),
                h("span", { class: "saved-text" }, saved.text),
                h("button", { type: "button", class: "quiet", "aria-label": `Remove saved reply ${saved.name}`, onclick: () => remove(saved.name) }, "Remove"),
              ),
            )
          : h("li", { class: "none" }, "No saved replies yet."),
      );
    } catch (error) {
      ctx.error(error.message);
    }
  }

  async function remove(savedName) {
    try {
      await api.del(`${path}/${api.seg(savedName)}`);
      status.say(`Removed ${savedName}.`);
      load();
    } catch (error) {
      status.say(error.message, true);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.put(`${path}/${api.seg(name.value.trim())}`, { text: text.value });
      status.say(`Kept ${name.value.trim()}.`);
      name.value = "";
      text.value = "";
      load();
    } catch (error) {
      status.say(error.message, true);
    }
  });
  load();
  return { node: section("Saved replies", list, form) };
}
