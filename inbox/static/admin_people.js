// Admin: users (create; a new token, shown once; their own capacity across channels) and
// teams (create; members).
import { section, statusLine } from "./admin_parts.js";
import * as api from "./api.js";
import { checkbox, clear, field, h } from "./el.js";

const ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9._@\\-]{0,63}";
const ID_HINT = "Letters, digits and . _ @ -, up to 64 characters.";
const CAPACITY_HINT =
  "Capacity: the Open conversations a user may hold across all channels together, saved as you leave the field or press Enter; empty: none of their own (each channel's routing capacity still applies).";

// A token is shown once: in a read-only field with a copy button, until "Done".
function tokenPanel(place, user, token) {
  const input = h("input", { type: "text", readonly: true, value: token, class: "token-value" });
  const said = h("p", { role: "status", class: "form-status" });
  const copy = async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(token);
      said.textContent = "Copied.";
    } catch {
      said.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  };
  clear(
    place,
    h(
      "div",
      { class: "token-once" },
      h("p", {}, h("strong", {}, `The token for ${user}, shown only this once. `), "Copy it now and hand it over safely: Parley keeps only its digest."),
      field(`Token for ${user}`, input),
      h("button", { type: "button", onclick: copy }, "Copy"),
      h("button", { type: "button", class: "quiet", onclick: () => clear(place) }, "Done"),
      said,
    ),
  );
  input.focus();
  input.select();
}

export function usersAdmin(ctx, directory) {
  const rows = h("tbody");
  const tokenPlace = h("div");
  const id = h("input", { type: "text", required: true, pattern: ID_PATTERN, autocomplete: "off" });
  const name = h("input", { type: "text", required: true, maxlength: 255, autocomplete: "off" });
  const admin = checkbox("Admin (manages users, teams, channels and grants)");
  const status = statusLine();
  const form = h(
    "form",
    { class: "stacked" },
    h("h4", {}, "New user"),
    field("User ID", id, { hint: ID_HINT }),
    field("Name", name),
    admin.node,
    h("button", { type: "submit", class: "primary" }, "Create user"),
    status.node,
  );

  // Each user's own capacity across channels: read with the user list (`total_capacity`),
  // set with PUT /v1/users/{id}/capacity.
  const capacities = new Map(); // user id -> total_capacity (null: none), as last saved
  const capacityStatus = statusLine();

  // Saved as the admin leaves the field or presses Enter (as the access table's roles
  // are saved as they are chosen); one save at a time per user, the last value wins.
  function capacityForm(user, known) {
    const input = h("input", { type: "number", min: 0, max: 1000, step: 1, class: "capacity", value: known ?? "" });
    let saving = Promise.resolve();
    const save = () => {
      saving = saving.then(async () => {
        const total = input.value === "" ? null : Number(input.value);
        if (capacities.has(user) && total === capacities.get(user)) return;
        try {
          const saved = await api.put(`/v1/users/${api.seg(user)}/capacity`, { total_capacity: total });
          capacities.set(user, saved.total_capacity);
          capacityStatus.say(`Capacity of ${user}: ${saved.total_capacity ?? "none"}.`);
        } catch (error) {
          capacityStatus.say(error.message, true);
        }
      });
    };
    input.addEventListener("change", save);
    const node = h(
      "form",
      {
        class: "capacity-form",
        novalidate: true,
        onsubmit(event) {
          event.preventDefault();
          save();
        },
      },
      field(`Capacity across channels of ${user}`, input, { hideLabel: true, inline: true }),
    );
    return { node, input };
  }

  async function rotate(user) {
    try {
      const made = await api.post(`/v1/users/${api.seg(user)}/token`);
      tokenPanel(tokenPlace, user, made.token);
    } catch (error) {
      status.say(error.message, true);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await api.post("/v1/users", { id: id.value.trim(), name: name.value.trim(), admin: admin.input.checked });
      status.say(`Created ${made.id}.`);
      id.value = "";
      name.value = "";
      admin.input.checked = false;
      tokenPanel(tokenPlace, made.id, made.token);
      directory.load();
    } catch (error) {
      status.say(error.message, true);
    }
  });

  directory.subscribe(() => {
    clear(
      rows,
      directory.users.map((user) => {
        capacities.set(user.id, user.total_capacity ?? null);
        const capacity = capacityForm(user.id, user.total_capacity);
        return h(
          "tr",
          {},
          h("th", { scope: "row" }, user.id),
          h("td", {}, user.name),
          h("td", {}, user.admin ? "yes" : "no"),
          h("td", {}, user.teams.join(", ")),
          h("td", {}, capacity.node),
          h("td", {}, h("button", { type: "button", class: "quiet", "aria-label": `New token for ${user.id}`, onclick: () => rotate(user.id) }, "New token")),
        );
      }),
    );
  });
  const table = h(
    "table",
    { class: "grid-table users-table" },
    h("thead", {}, h("tr", {}, ["User", "Name", "Admin", "Teams", "Capacity", "Token"].map((t) => h("th", { scope: "col" }, t)))),
    rows,
  );
  return {
    node: section(
      "Users",
      h("div", { class: "scroll-x" }, table),
      h("p", { class: "hint" }, CAPACITY_HINT),
      capacityStatus.node,
      tokenPlace,
      form,
    ),
  };
}

export function teamsAdmin(ctx, directory) {
  const list = h("ul", { class: "teams" });
  const id = h("input", { type: "text", required: true, pattern: ID_PATTERN, autocomplete: "off" });
  const name = h("input", { type: "text", required: true, maxlength: 255, autocomplete: "off" });
  const status = statusLine();
  const form = h(
    "form",
    { class: "stacked" },
    h("h4", {}, "New team"),
    field("Team ID", id, { hint: ID_HINT }),
    field("Team name", name),
    h("button", { type: "submit", class: "primary" }, "Create team"),
    status.node,
  );

  async function change(method, team, user) {
    try {
      await api.request(method, `/v1/teams/${api.seg(team)}/members/${api.seg(user)}`);
      status.say(method === "PUT" ? `Added ${user} to ${team}.` : `Removed ${user} from ${team}.`);
      directory.load();
    } catch (error) {
      status.say(error.message, true);
    }
  }

  function teamItem(team) {
    const others = directory.users.filter((user) => !team.members.includes(user.id));
    const pick = h("select", {}, others.map((user) => h("option", { value: user.id }, `${user.name} (${user.id})`)));
    return h(
      "li",
      {},
      h("p", {}, h("strong", {}, team.name), ` (${team.id})`),
      h(
        "ul",
        { class: "members" },
        team.members.length
          ? team.members.map((user) =>
              h("li", {}, user, " ", h("button", { type: "button", class: "quiet", "aria-label": `Remove ${user} from ${team.id}`, onclick: () => change("DELETE", team.id, user) }, "Remove")),
            )
          : h("li", { class: "none" }, "No members yet."),
      ),
      others.length
        ? h(
            "form",
            {
              class: "inline-form",
              onsubmit(event) {
                event.preventDefault();
                change("PUT", team.id, pick.value);
              },
            },
            field(`Add a member to ${team.id}`, pick, { hideLabel: true }),
            h("button", { type: "submit", "aria-label": `Add member to ${team.id}` }, "Add member"),
          )
        : null,
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.post("/v1/teams", { id: id.value.trim(), name: name.value.trim() });
      status.say(`Created ${id.value.trim()}.`);
      id.value = "";
      name.value = "";
      directory.load();
    } catch (error) {
      status.say(error.message, true);
    }
  });
  directory.subscribe(() => {
    clear(list, directory.teams.length ? directory.teams.map(teamItem) : h("li", { class: "none" }, "No teams yet."));
  });
  return { node: section("Teams", list, form) };
}
