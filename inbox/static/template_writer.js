// The "New template" form of the admin's templates section: a template written here and
// submitted for Meta's review (POST /v1/channels/{channel}/templates). Meta wants an
// example of every variable, so one example input per {{n}} of the body (and of the
// header) appears as the text is typed. The API checks Meta's rules and names the part
// that breaks one; its message is shown beside that input.
import { statusLine } from "./admin_parts.js";
import * as api from "./api.js";
import { clear, field, h, select } from "./el.js";
import { fieldErrors, textInput } from "./onboarding_parts.js";

const BUTTONS_MAX = 10;
const VARIABLE = /\{\{\s*([^{}]*?)\s*\}\}/g; // as the API reads them
const BUTTON_TYPES = [
  ["QUICK_REPLY", "Quick reply"],
  ["URL", "Link"],
  ["PHONE_NUMBER", "Phone number"],
];
const CATEGORIES = [
  ["UTILITY", "Utility"],
  ["MARKETING", "Marketing"],
];

/** The numbers of the {{n}} in `value`, each once, smallest first. A {{name}} is not
 * one: the API refuses it, naming the text. */
function variables(value) {
  const names = [...value.matchAll(VARIABLE)].map((match) => match[1]).filter((name) => /^\d+$/.test(name));
  return [...new Set(names.map(Number))].sort((a, b) => a - b);
}

/** One example input per variable of a text, kept by number while the text changes. */
function examplesOf(label) {
  const node = h("div", { class: "examples" });
  const inputs = new Map(); // n -> its input, kept while {{n}} comes and goes
  let numbers = [];
  return {
    node,
    update(value) {
      const now = variables(value);
      if (now.join() === numbers.join()) return;
      numbers = now;
      clear(node, numbers.map((n) => {
        if (!inputs.has(n)) inputs.set(n, textInput(200));
        return field(label(n), inputs.get(n));
      }));
    },
    get inputs() {
      return numbers.map((n) => inputs.get(n));
    },
    values() {
      return numbers.map((n) => inputs.get(n).value.trim());
    },
    reset() {
      inputs.clear();
      numbers = [];
      clear(node);
    },
  };
}

/** A button of the template; render(index) draws it as "Button <index + 1>". */
function buttonRow(onRemove) {
  const type = select(BUTTON_TYPES);
  const label = textInput(25);
  const url = textInput(2000, "url");
  const example = textInput(2000, "url");
  const phone = textInput(20, "tel");
  const node = h("fieldset", { class: "plain button-row" });
  let parts = {};

  function show() {
    parts.url.hidden = type.value !== "URL";
    parts.example.hidden = type.value !== "URL" || !url.value.includes("{{");
    parts.phone.hidden = type.value !== "PHONE_NUMBER";
  }
  type.addEventListener("change", show);
  url.addEventListener("input", show);

  function render(index) {
    const n = index + 1;
    parts = {
      url: field(`Link of button ${n}`, url, { hint: "http(s); it may end in {{1}}, filled in per message." }),
      example: field(`Example link of button ${n}`, example, { hint: "The link with {{1}} filled in." }),
      phone: field(`Phone number of button ${n}`, phone, { hint: "With the country code, e.g. +15550100." }),
    };
    clear(
      node,
      h("legend", {}, `Button ${n}`),
      field(`Type of button ${n}`, type),
      field(`Text of button ${n}`, label, { hint: "Up to 25 characters." }),
      parts.url,
      parts.example,
      parts.phone,
      h("button", { type: "button", class: "quiet small", onclick: onRemove }, `Remove button ${n}`),
    );
    show();
  }

  function body() {
    const button = { type: type.value, text: label.value.trim() };
    if (type.value === "URL") {
      button.url = url.value.trim();
      if (button.url.includes("{{")) button.example = example.value.trim();
    } else if (type.value === "PHONE_NUMBER") button.phone_number = phone.value.trim();
    return button;
  }

  const controls = (i) => [
    [`buttons[${i}]`, type],
    [`buttons[${i}].type`, type],
    [`buttons[${i}].text`, label],
    [`buttons[${i}].url`, url],
    [`buttons[${i}].example`, example],
    [`buttons[${i}].phone_number`, phone],
  ];
  return { node, type, render, body, controls, focus: () => type.focus() };
}

/** `path`: the channel's templates; `note`: shown under the heading; `onCreated(template)`
 * once the API took one. */
export function templateWriter({ path, note = null, onCreated }) {
  const name = textInput(512);
  const language = Object.assign(textInput(6), { value: "en_US" });
  const category = select(CATEGORIES);
  const header = textInput(60);
  const headerExamples = examplesOf((n) => `Example of {{${n}}} in the header`);
  const body = h("textarea", { rows: 4, maxlength: 1024 });
  const bodyExamples = examplesOf((n) => `Example of {{${n}}} in the body`);
  const footer = textInput(60);
  const rows = [];
  const buttons = h("div", { class: "button-rows" });
  const add = h("button", { type: "button" }, "Add button");
  const errors = fieldErrors();
  const status = statusLine();
  const form = h(
    "form",
    { class: "stacked template-writer", novalidate: true },
    h("h4", {}, "New template"),
    note,
    field("Template name", name, { hint: "Lowercase letters, digits and underscores, e.g. order_update." }),
    field("Language", language, { hint: "A code like en or en_US." }),
    field("Category", category),
    field("Header", header, { hint: "Optional, text only: up to 60 characters and one variable, {{1}}." }),
    headerExamples.node,
    field("Body", body, { hint: "Up to 1,024 characters. Variables are {{1}}, {{2}}, … in order; Meta wants an example of each." }),
    bodyExamples.node,
    field("Footer", footer, { hint: "Optional: up to 60 characters, no variables." }),
    h(
      "fieldset",
      { class: "plain buttons-part" },
      h("legend", {}, "Buttons"),
      buttons,
      add,
      h("small", { class: "hint" }, " Up to 10: quick replies, at most 2 links and 1 phone number."),
    ),
    h("button", { type: "submit", class: "primary" }, "Submit for review"),
    status.node,
  );

  function renderRows() {
    rows.forEach((row, i) => row.render(i));
    clear(buttons, rows.map((row) => row.node));
    add.disabled = rows.length >= BUTTONS_MAX;
  }

  add.addEventListener("click", () => {
    const row = buttonRow(() => {
      rows.splice(rows.indexOf(row), 1);
      renderRows();
      add.focus();
    });
    rows.push(row);
    renderRows();
    row.focus();
  });
  header.addEventListener("input", () => headerExamples.update(header.value));
  body.addEventListener("input", () => bodyExamples.update(body.value));

  function submission() {
    const template = {
      name: name.value.trim(),
      language: language.value.trim(),
      category: category.value,
      body: { text: body.value.trim(), examples: bodyExamples.values() },
    };
    if (header.value.trim()) {
      template.header = { text: header.value.trim() };
      if (headerExamples.inputs.length) template.header.example = headerExamples.values()[0];
    }
    if (footer.value.trim()) template.footer = footer.value.trim();
    if (rows.length) template.buttons = rows.map((row) => row.body());
    return template;
  }

  // Where the API's `field` points: the most precise name first wins (onboarding_parts).
  function controls() {
    const named = [
      ["name", name],
      ["language", language],
      ["category", category],
      ["header", header],
      ["header.example", headerExamples.inputs[0] ?? header],
      ["body", body],
      ["body.examples", bodyExamples.inputs[0] ?? body],
      ...bodyExamples.inputs.map((input, i) => [`body.examples[${i}]`, input]),
      ["footer", footer],
      ...rows.flatMap((row, i) => row.controls(i)),
    ];
    return rows.length ? [...named, ["buttons", rows[0].type]] : named;
  }

  function reset() {
    for (const input of [name, header, body, footer]) input.value = "";
    headerExamples.reset();
    bodyExamples.reset();
    rows.length = 0;
    renderRows();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.clear();
    status.say("");
    try {
      const template = await api.post(path, submission());
      reset();
      status.say(`Submitted ${template.name} (${template.language}) for Meta's review: ${template.status}.`);
      await onCreated(template);
    } catch (error) {
      if (errors.refused(error, controls())) status.say("Not submitted: see the field marked.", true);
      else status.say(error.message, true);
    }
  });
  return { node: form };
}
