// The template picker: the channel's approved templates and, for the chosen one, an
// input for each variable a send must give (the API's `variables`: "header_text",
// "header_media:<kind>", "body:<n>", "button:<index>"), with a preview of the message as
// the customer will read it. body() is the reply's {template, language, parameters}.
import { clear, field, h } from "./el.js";
import { fileUpload } from "./upload.js";

const VARIABLE = /\{\{\s*(\d+)\s*\}\}/;

function component(template, type) {
  return (template.components ?? []).find((c) => String(c.type ?? "").toUpperCase() === type) ?? null;
}

/** `text` with each {{n}} as its value, marked; an empty value shows as {{n}}. */
function filled(text, values) {
  return String(text ?? "")
    .split(VARIABLE)
    .map((part, i) => {
      if (i % 2 === 0) return part;
      const value = values[Number(part) - 1] ?? "";
      return h("mark", { class: value ? "filled" : "missing" }, value || `{{${part}}}`);
    });
}

/**
 * `channelPath`: /v1/channels/{channel}; `loadTemplates()` -> Promise of the channel's
 * templates; `onChange()` when the choice changes; `onError(message)` when the templates
 * could not be loaded (once: load() is done once).
 */
export function templateForm({ channelPath, loadTemplates, onChange = () => {}, onError = () => {} }) {
  const select = h("select");
  const fields = h("div", { class: "template-fields" });
  const preview = h("figure", { class: "template-preview" });
  const problem = h("p", { class: "composer-error", role: "alert" });
  const node = h("div", { class: "template-part" }, field("Template", select), fields, preview, problem);
  let approved = [];
  let loaded = null;
  let inputs = null; // the chosen template's {template, headerText, headerMedia, body: [], buttons: Map}

  select.addEventListener("change", render);

  function load() {
    loaded ??= (async () => {
      try {
        approved = (await loadTemplates()).filter((t) => t.status === "APPROVED");
      } catch (error) {
        clear(select, h("option", { value: "" }, "The templates could not be loaded"));
        onError(error.message);
        return;
      }
      clear(
        select,
        approved.length
          ? approved.map((t, i) => h("option", { value: String(i) }, `${t.name} (${t.language}) · ${t.category.toLowerCase()}`))
          : h("option", { value: "" }, "No approved template on this channel"),
      );
      render();
    })();
    return loaded;
  }

  function text(label, hint, maxlength) {
    const input = h("input", { type: "text", maxlength, autocomplete: "off" });
    input.addEventListener("input", () => {
      input.removeAttribute("aria-invalid");
      problem.textContent = "";
      showPreview();
    });
    fields.append(field(label, input, { hint }));
    return input;
  }

  function render() {
    const template = approved[Number(select.value)];
    clear(fields);
    problem.textContent = "";
    inputs = template ? { template, headerText: null, headerMedia: null, body: [], buttons: new Map() } : null;
    if (!template) {
      showPreview();
      return onChange();
    }
    const header = component(template, "HEADER");
    const buttons = component(template, "BUTTONS")?.buttons ?? [];
    for (const variable of template.variables ?? []) {
      const [what, detail] = variable.split(":");
      if (what === "header_text") {
        inputs.headerText = text("Header variable", `Header: ${header?.text ?? ""}`, 60);
      } else if (what === "header_media") {
        inputs.headerMedia = fileUpload({
          channelPath,
          label: `Header ${detail}`,
          removeLabel: `Remove header ${detail}`,
          kind: detail,
          onChange: showPreview,
        });
        fields.append(h("div", { class: "field" }, h("span", { class: "field-title" }, `The header is a ${detail}`), inputs.headerMedia.node));
      } else if (what === "body") {
        for (let n = 1; n <= Number(detail); n += 1) {
          inputs.body.push(text(`Body variable ${n}`, null, 1024));
        }
      } else if (what === "button") {
        const index = Number(detail);
        const button = buttons[index] ?? {};
        inputs.buttons.set(index, text(`Link of button “${button.text ?? index + 1}”`, `Fills in ${button.url ?? "the link"}`, 2000));
      }
    }
    if (!fields.childElementCount) fields.append(h("p", { class: "hint" }, "This template has no variables: it is sent as it is."));
    showPreview();
    onChange();
  }

  function showPreview() {
    if (!inputs) return clear(preview);
    const { template } = inputs;
    const header = component(template, "HEADER");
    const body = component(template, "BODY");
    const footer = component(template, "FOOTER");
    const buttons = component(template, "BUTTONS")?.buttons ?? [];
    const media = inputs.headerMedia?.value;
    let top = null;
    if (inputs.headerMedia) {
      top = h("p", { class: "preview-media" }, media ? `[${media.kind}: ${media.filename ?? "uploaded"}]` : `[${String(header?.format ?? "").toLowerCase()} to upload]`);
    } else if (header?.text) {
      top = h("p", { class: "preview-header" }, filled(header.text, [inputs.headerText?.value.trim() ?? ""]));
    }
    clear(
      preview,
      h("figcaption", {}, "Preview"),
      top,
      body ? h("p", { class: "preview-body" }, filled(body.text, inputs.body.map((input) => input.value.trim()))) : null,
      footer?.text ? h("p", { class: "preview-footer" }, footer.text) : null,
      buttons.length ? h("ul", { class: "choices buttons", "aria-label": "Template buttons" }, buttons.map((b) => h("li", {}, b.text ?? ""))) : null,
    );
  }

  /** Every input of the template, in order, with where the API names it. */
  function named() {
    if (!inputs) return [];
    const all = [];
    if (inputs.headerText) all.push(["parameters.header_text", inputs.headerText]);
    if (inputs.headerMedia) all.push(["parameters.header_media", inputs.headerMedia]);
    inputs.body.forEach((input, i) => all.push([`parameters.body[${i}]`, input]));
    for (const [index, input] of inputs.buttons) all.push([`parameters.buttons.${index}`, input]);
    return all;
  }

  function invalid(control, message) {
    problem.textContent = message;
    if (control instanceof HTMLElement) control.setAttribute("aria-invalid", "true");
    control.focus();
    return null;
  }

  /** The reply's body, or null (the first input to fix has focus and a message says why). */
  function body() {
    problem.textContent = "";
    if (!inputs) return invalid(select, "Choose a template.");
    const { template } = inputs;
    if (inputs.headerMedia?.busy) return invalid(inputs.headerMedia, "Wait for the header file to finish uploading.");
    for (const [, control] of named()) {
      const empty = control instanceof HTMLElement ? !control.value.trim() : !control.value;
      if (empty) return invalid(control, "Fill in every variable of the template first.");
    }
    const chosen = { template: template.name, language: template.language };
    if (!(template.variables ?? []).length) return chosen;
    const parameters = { body: inputs.body.map((input) => input.value.trim()) };
    if (inputs.headerText) parameters.header_text = inputs.headerText.value.trim();
    if (inputs.headerMedia) {
      const media = inputs.headerMedia.value;
      parameters.header_media = media.kind === "document" && media.filename ? { key: media.key, filename: media.filename } : { key: media.key };
    }
    if (inputs.buttons.size) {
      parameters.buttons = Object.fromEntries([...inputs.buttons].map(([index, input]) => [String(index), input.value.trim()]));
    }
    return { ...chosen, parameters };
  }

  return {
    node,
    load,
    body,
    get available() {
      return approved.length > 0;
    },
    focus: () => (inputs?.body[0] ?? inputs?.headerText ?? select).focus(),
    /** The API refused a variable: mark its input. */
    refused(error) {
      const found = named().find(([name]) => error.field === name || error.field?.startsWith(`${name}.`));
      if (found) invalid(found[1], error.message);
    },
    /** Sent: the values go, the choice of template stays. */
    reset() {
      for (const [, control] of named()) {
        if (control instanceof HTMLElement) control.value = "";
        else control.clear();
      }
      problem.textContent = "";
      showPreview();
    },
  };
}
