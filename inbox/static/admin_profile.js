// Admin: the number's WhatsApp business profile (what customers see when they tap its
// name) and its picture. Meta holds both: the form shows what Meta answered and sends
// only what the admin changed; a refusal is shown beside the field it names.
import { section, statusLine } from "./admin_parts.js";
import * as api from "./api.js";
import { clear, field, h, select } from "./el.js";
import { fieldErrors, outLink, textInput } from "./onboarding_parts.js";

// Meta's categories (the API's `vertical`), with the names WhatsApp shows for them.
const VERTICALS = [
  ["UNDEFINED", "Not set"],
  ["OTHER", "Other"],
  ["AUTO", "Automotive"],
  ["BEAUTY", "Beauty, spa and salon"],
  ["APPAREL", "Clothing and apparel"],
  ["EDU", "Education"],
  ["ENTERTAIN", "Entertainment"],
  ["EVENT_PLAN", "Event planning and service"],
  ["FINANCE", "Finance and banking"],
  ["GROCERY", "Food and grocery"],
  ["GOVT", "Public service"],
  ["HOTEL", "Hotel and lodging"],
  ["HEALTH", "Medical and health"],
  ["NONPROFIT", "Non-profit organisation"],
  ["PROF_SERVICES", "Professional services"],
  ["RETAIL", "Shopping and retail"],
  ["TRAVEL", "Travel and transportation"],
  ["RESTAURANT", "Restaurant"],
  ["ALCOHOL", "Alcoholic beverages"],
  ["ONLINE_GAMBLING", "Online gambling and gaming"],
  ["PHYSICAL_GAMBLING", "Gambling and gaming, not online"],
  ["OTC_DRUGS", "Over-the-counter drugs"],
];
const PICTURE_TYPES = "image/jpeg,image/png";
const NOT_REGISTERED = "This number is not registered with WhatsApp yet: its profile can be edited once it is.";

const sameList = (a, b) => a.length === b.length && a.every((value, i) => value === b[i]);

/** The picture Meta shows, served by Parley from its own origin (the page's CSP loads
 * images from Parley only; Meta's URL is on Meta's servers), and Meta's copy as a link. */
function pictureView(path) {
  const node = h("div", { class: "profile-picture" });
  let version = 0; // a new URL after each upload, past the browser's cache
  return {
    node,
    show(url) {
      version += 1;
      clear(
        node,
        url ? h("img", { src: `${path}/picture?v=${version}`, alt: "Profile picture", width: 96, height: 96 }) : null,
        url ? outLink(url, "Open the current picture") : h("p", { class: "none" }, "No profile picture yet."),
      );
    },
  };
}

/** "Set the channel's Meta app id first": the app whose Resumable Upload API takes the
 * picture. Hidden until the API asks for it; `onSaved()` after a save. */
function appIdForm(ctx, errors, onSaved) {
  const input = h("input", { type: "text", inputmode: "numeric", maxlength: 32, autocomplete: "off", value: ctx.channel.app_id ?? "" });
  const status = statusLine();
  const form = h(
    "form",
    { class: "inline-form app-id", hidden: true, novalidate: true },
    h("p", { class: "problem" }, "Set the channel's Meta app id first: the picture goes up through the app the number's token belongs to."),
    field("App id", input, { hint: "Digits, from the app's page in Meta's developer dashboard." }),
    h("button", { type: "submit" }, "Save app id"),
    status.node,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.clear();
    try {
      await api.patch(`/v1/channels/${api.seg(ctx.channel.id)}`, { app_id: input.value.trim() || null });
      await ctx.refreshChannels();
      form.hidden = true;
      onSaved();
    } catch (error) {
      if (!errors.refused(error, [["app_id", input]])) status.say(error.message, true);
    }
  });
  function ask() {
    form.hidden = false;
    input.focus();
  }
  return { node: form, ask };
}

export function profileAdmin(ctx) {
  const path = `/v1/channels/${api.seg(ctx.channel.id)}/profile`;
  const about = textInput(139);
  const address = textInput(256);
  const description = h("textarea", { rows: 3, maxlength: 512 });
  const email = textInput(128, "email");
  const websites = [textInput(256, "url"), textInput(256, "url")];
  const vertical = select(VERTICALS);
  const file = h("input", { type: "file", accept: PICTURE_TYPES });
  const errors = fieldErrors();
  const texts = { about, address, description, email };
  // Where the API's `field` points (the most precise name wins: onboarding_parts.js).
  const controls = [
    ...Object.entries(texts),
    ["websites", websites[0]],
    ["websites[0]", websites[0]],
    ["websites[1]", websites[1]],
    ["vertical", vertical],
    ["picture", file],
  ];
  const status = statusLine();
  const pictureStatus = statusLine();
  const picture = pictureView(path);
  const unregistered = h("p", { class: "problem", hidden: true }, NOT_REGISTERED);
  let current = null; // the profile as Meta last answered
  let waiting = null; // a picture refused for want of an app id, sent again once it is set
  const appId = appIdForm(ctx, errors, () => waiting && upload(waiting));

  const form = h(
    "form",
    { class: "settings", novalidate: true },
    field("About", about, { hint: "Under the name in WhatsApp: 1 to 139 characters." }),
    field("Address", address),
    field("Description", description, { hint: "Up to 512 characters." }),
    field("Email", email),
    field("Website 1", websites[0], { hint: "With http:// or https://" }),
    field("Website 2", websites[1]),
    field("Business category", vertical),
    h("button", { type: "submit", class: "primary" }, "Save profile"),
    status.node,
  );
  const pictureForm = h(
    "div",
    { class: "picture-part" },
    picture.node,
    field("Profile picture", file, { hint: "A JPEG or PNG of at least 192 × 192 pixels (640 × 640 is best), up to 5 MB; uploaded as soon as it is chosen." }),
    pictureStatus.node,
    appId.node,
  );

  function fill(profile) {
    current = profile;
    about.value = profile.about ?? "";
    address.value = profile.address ?? "";
    description.value = profile.description ?? "";
    email.value = profile.email ?? "";
    websites.forEach((input, i) => (input.value = profile.websites?.[i] ?? ""));
    const category = profile.vertical ?? "UNDEFINED";
    // A category Meta added since this list was written still shows, by its code.
    if (![...vertical.options].some((option) => option.value === category)) vertical.append(h("option", { value: category }, category));
    vertical.value = category;
    picture.show(profile.profile_picture_url);
  }

  // 409 not_active: Meta has no profile to show until the number is registered.
  function failed(error, said) {
    const inactive = error.code === "not_active";
    unregistered.hidden = !inactive;
    form.hidden = inactive;
    pictureForm.hidden = inactive;
    if (!inactive) said.say(error.message, true);
  }

  function changes() {
    const body = {};
    for (const [name, input] of Object.entries(texts)) {
      if (input.value.trim() !== (current[name] ?? "")) body[name] = input.value.trim();
    }
    const sites = websites.map((input) => input.value.trim()).filter(Boolean);
    if (!sameList(sites, current.websites ?? [])) body.websites = sites;
    if (vertical.value !== (current.vertical ?? "UNDEFINED")) body.vertical = vertical.value;
    return body;
  }

  async function load() {
    try {
      fill(await api.get(path));
    } catch (error) {
      failed(error, status);
    }
  }

  async function upload(chosen) {
    errors.hide(file);
    waiting = null;
    pictureStatus.say(`Uploading ${chosen.name}…`);
    try {
      const profile = await api.upload(`${path}/picture`, chosen, { method: "PUT" });
      // Only the picture: what is typed in the form and not saved yet stays.
      current = { ...current, profile_picture_url: profile.profile_picture_url };
      picture.show(current.profile_picture_url);
      pictureStatus.say("The new picture is set.");
    } catch (error) {
      pictureStatus.say("");
      if (error.code === "no_app_id") {
        waiting = chosen;
        appId.ask();
      } else if (!errors.refused(error, controls)) failed(error, pictureStatus);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.clear();
    if (!current) return status.say("The profile has not loaded: reload the page.", true);
    const body = changes();
    if (!Object.keys(body).length) return status.say("Nothing changed.");
    try {
      fill({ ...current, ...(await api.patch(path, body)) });
      status.say("Saved.");
    } catch (error) {
      if (errors.refused(error, controls)) status.say("Not saved: see the field marked.", true);
      else failed(error, status);
    }
  });
  file.addEventListener("change", () => {
    const [chosen] = file.files;
    file.value = ""; // choosing the same file again is a new try
    if (chosen) upload(chosen);
  });
  load();
  // No reload on a stream reconnect: Meta's profile is not on the change feed, and a
  // reload would overwrite what the admin is typing.
  return { node: section("Business profile", unregistered, pictureForm, form) };
}
