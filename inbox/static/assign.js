// "Assign", then whom: the channel's users who may reply (an admin sees them all, from
// the channel's grants; anyone else may take it themselves), or nobody (unassign).
import * as api from "./api.js";
import { clear, field, h, uid } from "./el.js";
import { atLeast } from "./roles.js";

const NOBODY = "";

/** Who may be assigned on ctx.channel: [{id, name}]. */
async function candidates(ctx) {
  if (!ctx.me.admin) return [{ id: ctx.me.id, name: "you" }];
  const [users, access] = await Promise.all([
    api.get("/v1/users"),
    api.get(`/v1/channels/${api.seg(ctx.channel.id)}/access`),
  ]);
  const reply = (role) => atLeast(role, "contributor");
  const mayReply = (user) =>
    user.admin ||
    reply(access.users[user.id]) ||
    user.teams.some((team) => reply(access.teams[team])) ||
    reply(access.all_users) ||
    (user.teams.length > 0 && reply(access.all_teams));
  // The bootstrap admin is no user of the directory, so it cannot be an assignee.
  return users.filter(mayReply).map((user) => ({ id: user.id, name: user.name }));
}

/** assign(user) and unassign() -> Promise<boolean>. */
export function assignControl(ctx, { assign, unassign }) {
  let assignee = null;
  const choice = h("select");
  const confirm = h("button", { type: "submit", class: "primary" }, "Confirm");
  const picker = h(
    "form",
    { class: "assign-picker", id: uid("assign"), hidden: true },
    field("Assign to", choice),
    confirm,
    h("button", { type: "button", onclick: () => hide(true) }, "Cancel"),
  );
  const button = h(
    "button",
    { type: "button", "aria-expanded": "false", "aria-controls": picker.id, onclick: toggle },
    "Assign",
  );

  function hide(focus) {
    picker.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (focus) button.focus();
  }

  async function toggle() {
    if (!picker.hidden) return hide(false);
    picker.hidden = false;
    button.setAttribute("aria-expanded", "true");
    confirm.disabled = true;
    clear(choice, h("option", { value: NOBODY }, "Loading…"));
    let people = [];
    try {
      people = await candidates(ctx);
    } catch (error) {
      ctx.error(error.message);
    }
    const options = people.map((p) =>
      h("option", { value: p.id, selected: p.id === ctx.me.id }, p.id === p.name ? p.id : `${p.name} (${p.id})`),
    );
    if (assignee) options.push(h("option", { value: NOBODY }, `Nobody (unassign ${assignee})`));
    clear(choice, options.length ? options : h("option", { value: NOBODY }, "Nobody here may reply"));
    confirm.disabled = !options.length;
    choice.focus();
  }

  picker.addEventListener("submit", async (event) => {
    event.preventDefault();
    confirm.disabled = true;
    const ok = choice.value === NOBODY ? await unassign() : await assign(choice.value);
    confirm.disabled = false;
    if (ok) hide(true);
  });

  return {
    button,
    picker,
    update(next) {
      assignee = next;
    },
  };
}
