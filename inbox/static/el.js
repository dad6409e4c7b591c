// A tiny element helper. Text always goes into the page as text (text nodes and
// textContent), never as HTML: customer text cannot become markup.

const SVG_NS = "http://www.w3.org/2000/svg";
// Set as properties (their live state), not as attributes.
const PROPERTIES = new Set(["value", "checked", "selected", "indeterminate"]);
let counter = 0;

/** A fresh id for label/description links. */
export function uid(prefix = "id") {
  counter += 1;
  return `${prefix}-${counter}`;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * h("button", {type: "button", onclick}, "Send"): an element. Props: `class`, `text`,
 * `on<event>` listeners, value/checked/selected as properties, everything else an
 * attribute (true: present, null/false/undefined: absent).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "innerHTML" || key === "outerHTML") throw new Error("no HTML here");
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (PROPERTIES.has(key)) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

/** An SVG element (createElementNS); attributes as given, children as for h(). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

/** Empty `node`, then append `children`. */
export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Text for screen readers only. */
export function srOnly(text) {
  return h("span", { class: "sr-only" }, text);
}

/**
 * A labelled control: <div class="field"><label for=id>text</label>control</div>.
 * `hideLabel` keeps the name for assistive technology while hiding the text.
 */
export function field(text, control, { hideLabel = false, hint = null, inline = false } = {}) {
  if (!control.id) control.id = uid("field");
  const label = h("label", { for: control.id, class: hideLabel ? "sr-only" : null }, text);
  let hintNode = null;
  if (hint) {
    hintNode = h("small", { id: uid("hint"), class: "hint" }, hint);
    control.setAttribute("aria-describedby", hintNode.id);
  }
  return h("div", { class: inline ? "field inline" : "field" }, label, control, hintNode);
}

/** A <select> with [value, label] options; `selected` picks one. */
export function select(options, selected = null, props = {}) {
  return h(
    "select",
    props,
    options.map(([value, label]) => h("option", { value, selected: value === selected }, label)),
  );
}

/** A checkbox with its label after it: {node, input}. */
export function checkbox(text, checked = false) {
  const input = h("input", { type: "checkbox", id: uid("check"), checked });
  return { node: h("div", { class: "check" }, input, h("label", { for: input.id }, text)), input };
}
