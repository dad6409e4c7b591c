// Admin: who may do what on the selected channel: grants to users and teams, and the
// all-users / all-teams switches (a user's role is the highest that applies).
import { section, statusLine } from "./admin_parts.js";
import * as api from "./api.js";
import { clear, field, h, select } from "./el.js";
import { GRANT_ROLES } from "./roles.js";

const ROLE_OPTIONS = GRANT_ROLES.map((role) => [role, role]);
const SWITCH_OPTIONS = [["", "off"], ...ROLE_OPTIONS];

export function accessAdmin(ctx, directory) {
  const channel = ctx.channel;
  const path = `/v1/channels/${api.seg(channel.id)}`;
  const status = statusLine();
  const allUsers = select(SWITCH_OPTIONS, channel.all_users ?? "");
  const allTeams = select(SWITCH_OPTIONS, channel.all_teams ?? "");
  const userRows = h("tbody");
  const teamRows = h("tbody");
  const grantUser = h("select");
  const grantUserRole = select(ROLE_OPTIONS, "contributor");
  const grantTeam = h("select");
  const grantTeamRole = select(ROLE_OPTIONS, "contributor");
  let access = null;

  async function run(method, suffix, body, done) {
    try {
      access = await api.request(method, `${path}${suffix}`, body);
      status.say(done);
      render();
    } catch (error) {
      status.say(error.message, true);
    }
  }

  async function setSwitch(name, value) {
    try {
      await api.patch(path, { [name]: value || null });
      status.say(`Every ${name === "all_users" ? "user" : "team member"} now: ${value || "no role from this switch"}.`);
      await ctx.refreshChannels();
    } catch (error) {
      status.say(error.message, true);
    }
  }
  allUsers.addEventListener("change", () => setSwitch("all_users", allUsers.value));
  allTeams.addEventListener("change", () => setSwitch("all_teams", allTeams.value));

  function grantRows(grants, kind) {
    const entries = Object.entries(grants);
    if (!entries.length) return h("tr", {}, h("td", { colspan: 3, class: "none" }, `No ${kind} grants.`));
    return entries.map(([who, role]) => {
      const roleSelect = select(ROLE_OPTIONS, role, { "aria-label": `Role of ${who}` });
      const url = `/access/${kind}s/${api.seg(who)}`;
      roleSelect.addEventListener("change", () => run("PUT", url, { role: roleSelect.value }, `${who} is now ${roleSelect.value}.`));
      return h(
        "tr",
        {},
        h("th", { scope: "row" }, who),
        h("td", {}, roleSelect),
        h("td", {}, h("button", { type: "button", class: "quiet", "aria-label": `Remove the grant of ${who}`, onclick: () => run("DELETE", url, undefined, `${who}'s grant removed.`) }, "Remove")),
      );
    });
  }

  function render() {
    if (access) {
      clear(userRows, grantRows(access.users, "user"));
      clear(teamRows, grantRows(access.teams, "team"));
      allUsers.value = access.all_users ?? "";
      allTeams.value = access.all_teams ?? "";
    }
    clear(grantUser, directory.users.map((u) => h("option", { value: u.id }, `${u.name} (${u.id})`)));
    clear(grantTeam, directory.teams.map((t) => h("option", { value: t.id }, `${t.name} (${t.id})`)));
  }

  function grantForm(pick, role, kind, label) {
    const form = h(
      "form",
      { class: "inline-form" },
      field(label, pick, { inline: true }),
      field(`Role for the ${kind}`, role, { inline: true }),
      h("button", { type: "submit" }, kind === "user" ? "Grant" : "Grant to team"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!pick.value) return status.say(`Create a ${kind} first.`, true);
      run("PUT", `/access/${kind}s/${api.seg(pick.value)}`, { role: role.value }, `${pick.value} is now ${role.value}.`);
    });
    return form;
  }

  const table = (rows, who) =>
    h("table", { class: "grid-table" }, h("thead", {}, h("tr", {}, [who, "Role", ""].map((t) => h("th", { scope: "col" }, t)))), rows);

  api
    .get(`${path}/access`)
    .then((found) => {
      access = found;
      render();
    })
    .catch((error) => ctx.error(error.message));
  directory.subscribe(render);
  return {
    node: section(
      "Access to this channel",
      h("div", { class: "switches" }, field("All users", allUsers, { inline: true }), field("All teams", allTeams, { inline: true })),
      h("h4", {}, "Users"),
      table(userRows, "User"),
      grantForm(grantUser, grantUserRole, "user", "User to grant"),
      h("h4", {}, "Teams"),
      table(teamRows, "Team"),
      grantForm(grantTeam, grantTeamRole, "team", "Team to grant"),
      status.node,
    ),
  };
}
