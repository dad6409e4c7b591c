// Admin: the channel's routing (new conversations handed to available agents with room,
// up to a capacity each; minutes here, seconds in the API), and who may answer on it now,
// how available and how loaded.
import { section, statusLine } from "./admin_parts.js";
import * as api from "./api.js";
import { checkbox, field, h, uid } from "./el.js";
import { teamList } from "./team.js";

const DEFAULT_CAPACITY = 5; // the API's, for a channel without routing yet

export function routingAdmin(ctx) {
  const path = `/v1/channels/${api.seg(ctx.channel.id)}`;
  const routing = ctx.channel.routing;
  const used = checkbox("Route new conversations to available agents", Boolean(routing));
  used.input.setAttribute("role", "switch");
  const capacity = h("input", { type: "number", min: 1, max: 1000, step: 1, value: routing?.capacity ?? DEFAULT_CAPACITY });
  const after = routing?.reassign_after_s;
  const reassign = h("input", { type: "number", min: 1, step: "any", value: after == null ? "" : String(after / 60) });
  const releaseAll = checkbox(
    "When an agent goes offline, also release their open and pending conversations",
    routing?.release_all_when_offline ?? false,
  );
  const options = h(
    "fieldset",
    { class: "plain", disabled: !routing },
    h("legend", { class: "sr-only" }, "Routing options"),
    field("Conversations per agent", capacity, { hint: "Open conversations an agent holds on this channel at most: 1 to 1000" }),
    field("Reassign if unanswered after (minutes)", reassign, {
      hint: "To the next available agent when its assignee has not answered; empty: never",
    }),
    releaseAll.node,
    h("p", { class: "hint" }, "Otherwise only the conversations handed to them and not answered yet go back to New."),
  );
  used.input.addEventListener("change", () => {
    options.disabled = !used.input.checked;
  });
  const status = statusLine();
  // novalidate: the API says what does not fit, naming the field.
  const form = h(
    "form",
    { class: "settings", novalidate: true },
    used.node,
    options,
    h("button", { type: "submit", class: "primary" }, "Save routing"),
    status.node,
  );
  const heading = h("h4", { id: uid("agents"), class: "agents-heading" }, "Agents on this channel");
  const team = teamList(ctx, { labelledBy: heading.id });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body = { routing: null };
    if (used.input.checked) {
      if (capacity.value === "") {
        status.say("Give the conversations per agent: 1 to 1000.", true);
        capacity.focus();
        return;
      }
      body = {
        routing: {
          capacity: Number(capacity.value),
          reassign_after_s: reassign.value === "" ? null : Math.round(Number(reassign.value) * 60),
          release_all_when_offline: releaseAll.input.checked,
        },
      };
    }
    try {
      await api.patch(path, body);
      await ctx.refreshChannels();
      status.say("Saved.");
      team.load(); // the capacity shown beside each load
    } catch (error) {
      status.say(error.message, true);
    }
  });
  return {
    node: section(
      "Routing",
      form,
      heading,
      h("p", { class: "hint" }, "Availability, and Open conversations held here out of the capacity."),
      team.node,
    ),
    reload: team.load,
    onChange: team.onChange,
    destroy: team.destroy,
  };
}
