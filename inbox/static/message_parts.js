// What a message carries besides its text: a file (shown inline when it is an image or
// audio the API serves inline, else offered as a download), a location, shared contact
// cards, the buttons or list an agent sent, and the message it quotes. Customer text
// (captions, file names, places, names) goes in as text only.
import { h, srOnly } from "./el.js";
import { coordinates, fileSize } from "./format.js";

// What the API serves inline (api/media.py INLINE_TYPES); anything else is a download.
const INLINE_IMAGES = new Set(["image/jpeg", "image/png", "image/webp", "image/gif"]);
const INLINE_AUDIO = new Set(["audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"]);
const KIND_NAMES = {
  image: "Photo",
  video: "Video",
  audio: "Audio",
  document: "Document",
  sticker: "Sticker",
};
const SPEAKERS = { inbound: "the customer", outbound: "us", system: "a notice" };

/** "Photo", "Voice message", "Document"... */
export function mediaName(media) {
  return media.voice ? "Voice message" : (KIND_NAMES[media.kind] ?? "File");
}

const baseType = (mime) => (mime ?? "").split(";")[0].trim().toLowerCase();

function download(media, name) {
  const label = media.filename || name;
  const size = fileSize(media.size);
  return h(
    "a",
    { class: "file", href: media.url, download: media.filename || "" },
    h("span", { class: "file-icon", "aria-hidden": "true" }, "⤓"),
    srOnly("Download "),
    h("span", { class: "file-name" }, label),
    size ? h("span", { class: "file-size" }, ` (${size})`) : null,
  );
}

/** The message's file in the state the API gives: fetching, stored or failed. */
export function mediaPart(media, caption) {
  const name = mediaName(media);
  if (media.state === "fetching" || (media.state === "stored" && !media.url)) {
    return h("p", { class: "media-pending" }, `${name}: being fetched from WhatsApp…`);
  }
  if (media.state === "failed") {
    return h("p", { class: "media-failed" }, `${name} could not be fetched: ${media.error || "no reason given"}`);
  }
  const mime = baseType(media.mime_type);
  if ((media.kind === "image" || media.kind === "sticker") && INLINE_IMAGES.has(mime)) {
    const alt = caption || (media.filename ? `${name}: ${media.filename}` : name);
    return h(
      "a",
      { class: `media-image ${media.kind}`, href: media.url, target: "_blank", rel: "noopener", title: "Open full size" },
      h("img", { src: media.url, alt, loading: "lazy", decoding: "async" }),
    );
  }
  if (media.kind === "audio" && INLINE_AUDIO.has(mime)) {
    return h(
      "div",
      { class: "media-audio" },
      h("audio", { controls: true, preload: "metadata", src: media.url, "aria-label": name }),
      download(media, name),
    );
  }
  return download(media, name);
}

/** A shared location: its name and address, and where it is (no map: no third party). */
export function placePart(place) {
  const known = place.latitude !== null && place.latitude !== undefined && place.longitude !== null && place.longitude !== undefined;
  return h(
    "div",
    { class: "place" },
    srOnly("Location: "),
    h("p", { class: "place-name" }, h("span", { "aria-hidden": "true" }, "📍 "), place.name || "Location"),
    place.address ? h("p", { class: "place-address" }, place.address) : null,
    known ? h("p", { class: "place-where" }, coordinates(place.latitude, place.longitude)) : null,
  );
}

/** Shared contact cards, each with its phones. */
export function cardsPart(cards) {
  return h(
    "ul",
    { class: "cards", "aria-label": cards.length === 1 ? "Shared contact" : "Shared contacts" },
    cards.map((card) =>
      h(
        "li",
        { class: "card" },
        h("p", { class: "card-name" }, card.name || "Unnamed contact"),
        card.phones.length
          ? h("ul", { class: "card-phones", "aria-label": "Phones" }, card.phones.map((phone) => h("li", {}, phone)))
          : h("p", { class: "none" }, "No phone"),
      ),
    ),
  );
}

/** The reply buttons or the list an agent sent, shown as such (not clickable here). */
export function interactivePart(interactive) {
  const choices = interactive.sections.length
    ? h(
        "div",
        { class: "choice-list" },
        h("p", { class: "list-button" }, srOnly("List, opened by the button "), `☰ ${interactive.button ?? "Choose"}`),
        interactive.sections.map((section) =>
          h(
            "div",
            { class: "choice-section" },
            section.title ? h("p", { class: "section-title" }, section.title) : null,
            h(
              "ul",
              { class: "choices", "aria-label": section.title ? `Rows of ${section.title}` : "Rows" },
              section.rows.map((row) =>
                h("li", {}, row.title, row.description ? h("span", { class: "choice-description" }, row.description) : null),
              ),
            ),
          ),
        ),
      )
    : h("ul", { class: "choices buttons", "aria-label": "Reply buttons" }, interactive.buttons.map((b) => h("li", {}, b.title)));
  return h(
    "div",
    { class: "interactive" },
    interactive.header ? h("p", { class: "interactive-header" }, interactive.header) : null,
    h("p", { class: "text" }, interactive.body),
    interactive.footer ? h("p", { class: "interactive-footer" }, interactive.footer) : null,
    choices,
  );
}

/**
 * The message this one quotes, above it: a button that shows the quoted message when
 * it is in the log (`goTo(id)` returns false when it is not), else plain text.
 */
export function quotePart(quoted, goTo) {
  const who = SPEAKERS[quoted.direction] ?? "a message";
  const content = [
    h("span", { class: "quote-who" }, `Replying to ${who}`),
    h("span", { class: "quote-text" }, quoted.preview),
  ];
  if (!goTo) return h("div", { class: "quote" }, content);
  return h(
    "button",
    { type: "button", class: "quote", title: "Show the quoted message", onclick: () => goTo(quoted.id) },
    content,
  );
}

/** Reactions on a message: the customer's and ours. */
export function reactionsPart(message) {
  if (!message.reaction && !message.business_reaction) return null;
  return h(
    "p",
    { class: "reactions" },
    message.reaction
      ? h("span", { class: "reaction", title: "The customer's reaction" }, srOnly("Customer's reaction: "), message.reaction)
      : null,
    message.business_reaction
      ? h("span", { class: "reaction ours", title: "Our reaction" }, srOnly("Our reaction: "), message.business_reaction)
      : null,
  );
}
