// Choosing a file and uploading it at once (POST /v1/channels/{channel}/uploads, the file
// as the body), with its progress, the API's refusal in its own words, and a way to
// cancel or remove it. The file input stays hidden behind a named button that opens the
// browser's file chooser. What is sent later is the upload's key, never the file.
import * as api from "./api.js";
import { h } from "./el.js";
import { fileSize } from "./format.js";

const FILENAME_MAX = 240; // the API's limit, without / \ " or line breaks
const safeName = (name) => name.replace(/[/\\"\r\n\0]/g, "_").slice(0, FILENAME_MAX) || "file";

/**
 * `channelPath`: /v1/channels/{channel}; `label`: the button's name ("Attach file");
 * `kind`: what the file must be sent as (image, video, document...), else what its type
 * says; `onChange()` after every change of state. Returns {node, value, busy, clear(),
 * focus(), disable(flag)}: `value` is the API's answer {key, kind, mime_type, size,
 * filename} once uploaded.
 */
export function fileUpload({ channelPath, label, removeLabel, kind = null, accept = null, onChange = () => {} }) {
  const input = h("input", { type: "file", hidden: true, accept, "aria-label": label });
  const choose = h("button", { type: "button", class: "attach" }, h("span", { "aria-hidden": "true" }, "📎 "), label);
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": `${label}: upload progress` });
  const status = h("span", { class: "upload-status", role: "status" });
  const remove = h("button", { type: "button", class: "quiet small", hidden: true }, removeLabel);
  const problem = h("p", { class: "upload-error", role: "alert" });
  const node = h("div", { class: "upload" }, h("div", { class: "upload-row" }, choose, input, progress, status, remove), problem);
  let uploaded = null;
  let pending = null; // the AbortController of the upload under way

  choose.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const [file] = input.files;
    input.value = "";
    if (file) start(file);
  });
  remove.addEventListener("click", () => {
    reset();
    choose.focus();
  });

  function reset() {
    pending?.abort();
    pending = null;
    uploaded = null;
    progress.hidden = true;
    status.textContent = "";
    problem.textContent = "";
    remove.hidden = true;
    onChange();
  }

  async function start(file) {
    reset();
    const name = safeName(file.name);
    const controller = new AbortController();
    pending = controller;
    progress.value = 0;
    progress.hidden = false;
    status.textContent = `Uploading ${name}…`;
    remove.textContent = "Cancel upload";
    remove.hidden = false;
    onChange();
    const query = new URLSearchParams({ filename: name });
    if (kind) query.set("kind", kind);
    try {
      const answer = await api.upload(`${channelPath}/uploads?${query}`, file, {
        onProgress: (done) => {
          progress.value = done;
        },
        signal: controller.signal,
      });
      if (pending !== controller) return;
      uploaded = answer;
      status.textContent = `${answer.filename ?? name} · ${fileSize(answer.size)} · ready to send`;
      remove.textContent = removeLabel;
    } catch (error) {
      if (pending !== controller) return;
      status.textContent = "";
      remove.hidden = true;
      if (error.code !== "aborted") problem.textContent = `${name} was not uploaded: ${error.message}`;
    } finally {
      if (pending === controller) {
        pending = null;
        progress.hidden = true;
        onChange();
      }
    }
  }

  return {
    node,
    get value() {
      return uploaded;
    },
    get busy() {
      return pending !== null;
    },
    clear: reset,
    focus: () => choose.focus(),
    disable(flag) {
      choose.disabled = flag;
      remove.disabled = flag;
    },
  };
}
