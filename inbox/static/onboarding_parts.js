// Pieces the onboarding sections share: links out to Meta's pages, and a 422's message
// shown beside the control its `field` names ("about", "websites[1]", "buttons[0].url"):
// under the control, in its description (aria-describedby) and with aria-invalid, so a
// screen reader reads why with the field itself.
import { h, uid } from "./el.js";

/** A one-line input of at most `maxlength` characters, not filled in by the browser. */
export const textInput = (maxlength, type = "text") => h("input", { type, maxlength, autocomplete: "off" });

/** An http(s) URL as given, else null: a link never runs a `javascript:` URL. */
export function webUrl(value) {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol) ? value : null;
  } catch {
    return null;
  }
}

/** A link that opens Meta's page in a new tab; plain text when the URL is not http(s). */
export function outLink(url, text) {
  const href = webUrl(url ?? "");
  return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, text) : text;
}

/**
 * The control registered for an API field: that exact name, else the longest registered
 * name it lies under ("body.examples[2]" falls back to "body.examples"), else null.
 */
export function controlFor(controls, name) {
  let found = null;
  let length = -1;
  for (const [key, control] of controls) {
    const under = name === key || name.startsWith(`${key}.`) || name.startsWith(`${key}[`);
    if (under && key.length > length) {
      found = control;
      length = key.length;
    }
  }
  return found;
}

/** api.js adds " (field)" to a refusal's message; beside the field it is noise. */
function withoutField(error) {
  const suffix = ` (${error.field})`;
  return error.message.endsWith(suffix) ? error.message.slice(0, -suffix.length) : error.message;
}

export function fieldErrors() {
  const shown = new Map(); // control -> its message node

  function hide(control) {
    const node = shown.get(control);
    if (!node) return;
    node.remove();
    shown.delete(control);
    control.removeAttribute("aria-invalid");
    const rest = (control.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => id && id !== node.id);
    if (rest.length) control.setAttribute("aria-describedby", rest.join(" "));
    else control.removeAttribute("aria-describedby");
  }

  function show(control, message) {
    hide(control);
    const node = h("small", { id: uid("error"), class: "field-error" }, message);
    control.after(node);
    shown.set(control, node);
    control.setAttribute("aria-invalid", "true");
    // First in the description: why it was refused matters more than the hint.
    const ids = (control.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean);
    control.setAttribute("aria-describedby", [node.id, ...ids].join(" "));
    // Typing again takes the mark away: the next answer decides.
    control.addEventListener("input", () => hide(control), { once: true });
  }

  return {
    show,
    hide,
    clear: () => [...shown.keys()].forEach(hide),
    /** Marks the control `error.field` names among `controls` ([[name, control]]);
     * false when none is registered for it. Focus moves there. */
    refused(error, controls) {
      const control = error.field ? controlFor(controls, error.field) : null;
      if (!control) return false;
      show(control, withoutField(error));
      control.focus();
      return true;
    },
  };
}
