// The API client: same-origin JSON with the session cookie; every request that changes
// anything carries the session's CSRF token; errors become ApiError with a message an
// agent can act on. The CSRF token lives in this module only, never in storage.

let csrf = null;
let onUnauthorized = null;
export const SESSION = "/v1/session";

export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function setCsrf(token) {
  csrf = token;
}

/** Called (once per failing request) when the session has ended: sign in again. */
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

/** Encode one path segment. */
export const seg = (value) => encodeURIComponent(value);

function describe(status, error) {
  const said = error.message ?? "";
  const where = error.field ? ` (${error.field})` : "";
  if (status === 401) return "Your session has ended: sign in again.";
  if (status === 403 && error.code === "csrf_failed") {
    return "The request was refused as cross-site: reload the page.";
  }
  if (status === 403) return `Your role does not allow this: ${said}`;
  if (status === 503) return `Parley could not do it just now; nothing was changed. ${said}`;
  if (status >= 500) return `Parley failed (HTTP ${status}); try again.`;
  return `${said || `HTTP ${status}`}${where}`;
}

function parse(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// The ApiError of a failed answer; a 401 outside sign-in ends the session.
function failure(path, status, data) {
  const error = data?.error ?? {};
  const failed = new ApiError(
    status,
    error.code ?? `http_${status}`,
    describe(status, error),
    error.field ?? null,
  );
  if (status === 401 && path !== SESSION && onUnauthorized) onUnauthorized(failed);
  return failed;
}

const NO_ANSWER = "Parley did not answer: check the connection and try again.";

/** fetch one API call; resolves to the parsed JSON body (null for 204). */
export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrf) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network", NO_ANSWER);
  }
  const data = parse(response.status === 204 ? "" : await response.text());
  if (!response.ok) throw failure(path, response.status, data);
  return data;
}

/**
 * POST (or `method`) a file as the request's body (its type as Content-Type), as the
 * uploads and the profile picture endpoints take it. XMLHttpRequest, since fetch reports no upload progress:
 * onProgress(fraction) as it goes. `signal` aborts it (rejects with code "aborted").
 */
export function upload(path, file, { onProgress = null, signal = null, method = "POST" } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      const data = parse(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(failure(path, xhr.status, data));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", NO_ANSWER)));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "The upload was cancelled.")));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(file);
  });
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body ?? {});
export const put = (path, body) => request("PUT", path, body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);
