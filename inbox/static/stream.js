// The live stream (GET /v1/stream, docs/inbox.md): one EventSource for every channel the
// user sees. The browser reconnects by itself and resumes with Last-Event-ID. Only when
// it gives up (an HTTP error answer, e.g. the session ended) do we ask `stillSignedIn`
// and, if so, open a new one that resumes from the last id seen.

const FIRST_RETRY_MS = 2000;
const LAST_RETRY_MS = 60000;

function parse(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return null;
  }
}

/**
 * Handlers: change(data), reset(data), ready({channels, resumed, first}),
 * status("live" | "reconnecting" | "offline"), stillSignedIn() -> Promise<boolean>.
 * Returns { close() }.
 */
export function openStream(handlers) {
  let source = null;
  let lastId = "";
  let first = true;
  let stopped = false;
  let retry = null;
  let delay = FIRST_RETRY_MS;

  function connect() {
    const url = lastId ? `/v1/stream?last_event_id=${encodeURIComponent(lastId)}` : "/v1/stream";
    source = new EventSource(url);
    source.addEventListener("ready", (event) => {
      delay = FIRST_RETRY_MS;
      const data = parse(event) ?? {};
      handlers.status?.("live");
      handlers.ready?.({ ...data, resumed: Boolean(lastId), first });
      first = false;
    });
    source.addEventListener("change", (event) => {
      if (event.lastEventId) lastId = event.lastEventId;
      const data = parse(event);
      if (data) handlers.change?.(data);
    });
    source.addEventListener("reset", (event) => {
      if (event.lastEventId) lastId = event.lastEventId;
      const data = parse(event);
      if (data) handlers.reset?.(data);
    });
    source.addEventListener("error", () => {
      if (stopped) return;
      if (source.readyState !== EventSource.CLOSED) {
        handlers.status?.("reconnecting"); // EventSource retries by itself
        return;
      }
      handlers.status?.("offline");
      retry = setTimeout(async () => {
        if (stopped) return;
        if (await handlers.stillSignedIn()) connect();
      }, delay);
      delay = Math.min(delay * 2, LAST_RETRY_MS);
    });
  }

  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(retry);
      source?.close();
    },
  };
}
