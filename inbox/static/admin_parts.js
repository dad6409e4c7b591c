// Pieces the admin sections share.
import { h, uid } from "./el.js";

/** A section: <section aria-labelledby> with its heading. */
export function section(title, ...children) {
  const heading = h("h3", { id: uid("section") }, title);
  return h("section", { class: "admin-section", "aria-labelledby": heading.id }, heading, ...children);
}

/** A status line for one form: role=status, so what happened is announced. */
export function statusLine() {
  const node = h("p", { class: "form-status", role: "status" });
  return {
    node,
    say(text, bad = false) {
      node.textContent = text;
      node.classList.toggle("bad", bad);
    },
  };
}
