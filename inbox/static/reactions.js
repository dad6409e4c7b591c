// The actions on one message, for those who may reply: "Reply" (quote it in the next
// reply) and "React", which opens a small fixed set of emoji; the one we reacted with is
// pressed, and choosing it again takes the reaction back. Escape closes the set.
import { h, uid } from "./el.js";

export const EMOJI = [
  ["👍", "Thumbs up"],
  ["❤️", "Red heart"],
  ["😂", "Face with tears of joy"],
  ["😮", "Surprised face"],
  ["😢", "Crying face"],
  ["🙏", "Folded hands"],
];

/**
 * {reply(), react(emoji) -> Promise<boolean>}; `describedBy`: the id of the message's
 * text, so each "Reply" says which message; `reactable`: whether it may get a reaction.
 * Returns {node, picker, update(reaction, canReact)}: `picker` (the emoji, hidden until
 * "React") goes inside the message, `node` (the buttons) beside it.
 */
export function messageActions({ reply, react, describedBy, reactable }) {
  const picker = h("div", { class: "emoji-picker", role: "group", "aria-label": "Reactions", id: uid("emoji"), hidden: true });
  const buttons = EMOJI.map(([emoji, name]) =>
    h(
      "button",
      {
        type: "button",
        class: "emoji",
        "aria-label": name,
        "aria-pressed": "false",
        title: name,
        onclick: () => choose(emoji),
      },
      emoji,
    ),
  );
  picker.append(...buttons);
  const replyButton = h(
    "button",
    { type: "button", class: "quiet small", "aria-describedby": describedBy, onclick: reply },
    "Reply",
  );
  const reactButton = reactable
    ? h(
        "button",
        {
          type: "button",
          class: "quiet small",
          "aria-expanded": "false",
          "aria-controls": picker.id,
          "aria-describedby": describedBy,
          onclick: toggle,
        },
        "React",
      )
    : null;
  const node = h("div", { class: "msg-actions" }, replyButton, reactButton);
  let current = "";

  picker.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close(true);
    }
  });

  function toggle() {
    if (!picker.hidden) return close(false);
    picker.hidden = false;
    reactButton.setAttribute("aria-expanded", "true");
    (buttons.find((b) => b.getAttribute("aria-pressed") === "true") ?? buttons[0]).focus();
  }

  function close(focus) {
    picker.hidden = true;
    reactButton?.setAttribute("aria-expanded", "false");
    if (focus) reactButton?.focus();
  }

  async function choose(emoji) {
    for (const button of buttons) button.disabled = true;
    try {
      if (await react(emoji === current ? "" : emoji)) close(true);
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  }

  return {
    node,
    picker: reactable ? picker : null,
    /** Our reaction now, and whether reacting is allowed (WhatsApp's 24-hour window). */
    update(reaction, canReact) {
      current = reaction ?? "";
      EMOJI.forEach(([emoji], i) => buttons[i].setAttribute("aria-pressed", String(emoji === current)));
      if (reactButton) {
        reactButton.disabled = !canReact;
        if (canReact) reactButton.removeAttribute("title");
        else reactButton.title = "Reactions need the customer to have written in the last 24 hours";
        if (!canReact) close(false);
      }
    },
  };
}
