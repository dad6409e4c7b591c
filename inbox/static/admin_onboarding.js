// Admin: onboarding a number the rest of the way, after registration: its business
// profile, its standing with Meta (name review, quality, messaging limit, badge) and its
// templates. What only Meta's own tools can do (changing the display name, requesting
// the badge, authentication and media templates) is said plainly, with a link there.
import { section, statusLine } from "./admin_parts.js";
import { profileAdmin } from "./admin_profile.js";
import { templatesAdmin } from "./admin_templates_review.js";
import * as api from "./api.js";
import { clear, h } from "./el.js";
import { toMs, when } from "./format.js";
import { outLink } from "./onboarding_parts.js";

const NOT_READ = "not read yet";
const NAME_REVIEW = { APPROVED: "Approved", PENDING_REVIEW: "Pending review", DECLINED: "Declined" };
const QUALITY = { GREEN: "Green (high)", YELLOW: "Yellow (medium)", RED: "Red (low)", UNKNOWN: "Unknown" };
const BADGE_REQUEST = { NOT_STARTED: "not requested", PENDING: "requested, under review", APPROVED: "approved", REJECTED: "request rejected" };

// Each fact as words; null (never read, and no webhook said) as NOT_READ.
const shown = (value, words = {}) => (value === null || value === undefined ? NOT_READ : (words[value] ?? value));

function limit(tier) {
  if (!tier) return NOT_READ;
  if (tier === "TIER_UNLIMITED") return "Unlimited";
  return tier.startsWith("TIER_") ? `${tier.slice(5)} customers a day (conversations the business starts)` : tier;
}

function badge(standing) {
  if (standing.official_business_account === true) return "Verified badge";
  if (standing.official_business_account === null && !standing.oba_status) return NOT_READ;
  return `No badge: ${shown(standing.oba_status, BADGE_REQUEST)}`;
}

function nameReview(standing) {
  const status = shown(standing.name_status, NAME_REVIEW);
  return standing.requested_name ? `${status} (“${standing.requested_name}”)` : status;
}

// What an admin must act on, as the API lists it: each an alert, in words.
function problemText(problem, standing) {
  if (problem === "name_declined") {
    const name = standing.requested_name ? ` “${standing.requested_name}”` : "";
    const reason = standing.name_rejection_reason ?? "Meta gave no reason";
    return `Meta declined the display name${name}: ${reason}. Nothing can be sent from this number until a new name is approved.`;
  }
  if (problem === "quality_red") return "The quality rating is RED: the messaging limit is at risk.";
  return problem;
}

function facts(standing) {
  const rows = [
    ["Verified name", shown(standing.verified_name)],
    ["Display number", shown(standing.display_phone_number)],
    ["Name review", nameReview(standing)],
    ["Quality", shown(standing.quality_rating, QUALITY)],
    ["Messaging limit", limit(standing.messaging_limit)],
    ["Verified badge", badge(standing)],
    ["Last read from Meta", standing.refreshed_at == null ? NOT_READ : when(toMs(standing.refreshed_at))],
  ];
  return h("dl", { class: "facts standing-facts" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

/** The number's standing; `onLinks(answer)` with each answer (its manage_url). */
export function standingAdmin(ctx, { onLinks = () => {} } = {}) {
  const path = `/v1/channels/${api.seg(ctx.channel.id)}/standing`;
  const problems = h("div", { class: "problems" });
  const body = h("div", {}, h("p", { class: "none" }, "Loading…"));
  const links = h("p", { class: "hint" });
  const refresh = h("button", { type: "button" }, "Refresh from Meta");
  const status = statusLine();

  function render(answer) {
    const { standing } = answer;
    clear(problems, answer.problems.map((problem) => h("p", { class: "problem", role: "alert" }, problemText(problem, standing))));
    clear(body, facts(standing));
    clear(
      links,
      "Changing the display name and requesting the verified badge happen in ",
      outLink(answer.manage_url, "WhatsApp Manager"),
      ". ",
      outLink(answer.badge_help_url, "What the badge needs"),
    );
    onLinks(answer);
  }

  async function load() {
    try {
      render(await api.get(path));
    } catch (error) {
      status.say(error.message, true);
    }
  }

  refresh.addEventListener("click", async () => {
    refresh.disabled = true;
    status.say("Reading from Meta…");
    try {
      render(await api.post(`${path}/refresh`));
      status.say("Read from Meta just now.");
    } catch (error) {
      status.say(error.code === "not_active" ? "This number is not registered with WhatsApp yet." : error.message, true);
    } finally {
      refresh.disabled = false;
    }
  });
  load();
  return { node: section("Number standing", problems, body, links, refresh, status.node), reload: load };
}

/** The three onboarding sections of the selected channel, in the admin grid's order. */
export function onboardingAdmin(ctx) {
  const templates = templatesAdmin(ctx);
  const standing = standingAdmin(ctx, { onLinks: (answer) => templates.setManageUrl(answer.manage_url) });
  return [profileAdmin(ctx), standing, templates];
}
