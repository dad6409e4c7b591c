// The admin screen: the selected channel's settings, business hours, routing, saved
// replies, onboarding with Meta (business profile, standing, templates) and grants, and
// the users and teams of the whole installation. Sections share one view of the
// directory (users and teams), reloaded after each change to it; the routing section's
// agents follow the channel's changes.
import { accessAdmin } from "./admin_access.js";
import { channelSettings, savedRepliesAdmin } from "./admin_channel.js";
import { businessHoursAdmin } from "./admin_hours.js";
import { onboardingAdmin } from "./admin_onboarding.js";
import { teamsAdmin, usersAdmin } from "./admin_people.js";
import { routingAdmin } from "./admin_routing.js";
import * as api from "./api.js";
import { h } from "./el.js";

function directoryOf(ctx) {
  const listeners = [];
  const directory = {
    users: [],
    teams: [],
    async load() {
      try {
        const [users, teams] = await Promise.all([api.get("/v1/users"), api.get("/v1/teams")]);
        directory.users = users;
        directory.teams = teams;
        for (const listener of listeners) listener();
      } catch (error) {
        ctx.error(error.message);
      }
    },
    subscribe(listener) {
      listeners.push(listener);
    },
  };
  return directory;
}

export function adminView(ctx) {
  const directory = directoryOf(ctx);
  const parts = [];
  if (ctx.channel) {
    parts.push(
      channelSettings(ctx),
      businessHoursAdmin(ctx),
      routingAdmin(ctx),
      savedRepliesAdmin(ctx),
      ...onboardingAdmin(ctx),
      accessAdmin(ctx, directory),
    );
  }
  parts.push(usersAdmin(ctx, directory), teamsAdmin(ctx, directory));
  const node = h(
    "div",
    { class: "admin" },
    h("h2", {}, "Admin"),
    ctx.channel ? null : h("p", {}, "No channel yet: channel settings show once there is one."),
    h("div", { class: "admin-grid" }, parts.map((part) => part.node)),
  );
  directory.load();
  return {
    node,
    reload() {
      directory.load();
      for (const part of parts) part.reload?.();
    },
    onChange: (change) => parts.forEach((part) => part.onChange?.(change)),
    destroy: () => parts.forEach((part) => part.destroy?.()),
  };
}
