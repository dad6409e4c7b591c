// How things read: customers, ages, times and durations.

/** A customer's name, else their phone, username or Parley id. */
export function customerLabel(customer) {
  if (customer.name) return customer.name;
  if (customer.phone) return `+${customer.phone}`;
  if (customer.username) return `@${customer.username.replace(/^@/, "")}`;
  return customer.id;
}

/** Milliseconds from the API's ISO time or the stream's Unix seconds (null stays). */
export function toMs(value) {
  if (value === null || value === undefined) return null;
  return typeof value === "number" ? value * 1000 : Date.parse(value);
}

/** "now", "5 min", "3 h", "2 d": how long ago `ms` was. */
export function ago(ms, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - ms) / 1000));
  if (seconds < 60) return "now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

/** A local date and time. */
export function when(ms) {
  return new Date(ms).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

/** A clock time today, else a short date and time. */
export function shortWhen(ms) {
  const date = new Date(ms);
  const today = new Date();
  if (date.toDateString() === today.toDateString()) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return date.toLocaleString([], {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** "45 s", "12 min", "3 h 20 min", "2 d 4 h"; "–" for none. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) {
    const minutes = Math.round((s % 3600) / 60);
    return minutes ? `${Math.floor(s / 3600)} h ${minutes} min` : `${Math.floor(s / 3600)} h`;
  }
  const hours = Math.round((s % 86400) / 3600);
  return hours ? `${Math.floor(s / 86400)} d ${hours} h` : `${Math.floor(s / 86400)} d`;
}

/** Refresh every "how long ago" under `root` (no network: the clock moved). */
export function refreshAges(root = document) {
  for (const node of root.querySelectorAll("time[data-ago]")) {
    node.textContent = ago(Number(node.dataset.ago));
  }
}

/** "820 bytes", "12 KB", "3.4 MB": a file's size; "" when unknown. */
export function fileSize(bytes) {
  if (bytes === null || bytes === undefined) return "";
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** "37.44216° N, 122.16154° W". */
export function coordinates(latitude, longitude) {
  const part = (value, positive, negative) =>
    `${Math.abs(value).toFixed(5)}° ${value < 0 ? negative : positive}`;
  return `${part(latitude, "N", "S")}, ${part(longitude, "E", "W")}`;
}
