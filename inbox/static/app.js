// The page's entry: the session, the top bar (channel selector, screens, sign out), the
// live stream, and which screen shows. Screens are {node, onChange?, reload?, destroy?}.
import { adminView } from "./admin.js";
import * as api from "./api.js";
import { availabilityControl } from "./availability.js";
import { clear, field, h } from "./el.js";
import { refreshAges } from "./format.js";
import { inboxView } from "./inbox.js";
import { reportView } from "./report.js";
import { atLeast } from "./roles.js";
import { showSignIn } from "./signin.js";
import { openStream } from "./stream.js";

const root = document.getElementById("app");
const CHANNEL_KEY = "parley.channel";
// Whether this browser signed in last (not a secret: the session is an HttpOnly cookie).
// It spares a first visit a 401 from asking for a session that cannot exist.
const SIGNED_IN_KEY = "parley.signed-in";
const AGES_EVERY_MS = 30000; // re-words "5 min" as the clock moves; no network
const NOTICE_MS = 6000;
const SCREENS = [
  { name: "inbox", label: "Inbox", allowed: () => true, make: inboxView },
  {
    name: "report",
    label: "Report",
    allowed: (ctx) => atLeast(ctx.channel?.role, "supervisor"),
    make: reportView,
  },
  { name: "admin", label: "Admin", allowed: (ctx) => ctx.me.admin, make: adminView },
];
const LIVE_TEXT = { live: "Live", reconnecting: "Reconnecting…", offline: "Offline" };

let ctx = null;
let stream = null;
let screen = null;
let screenName = "inbox";
let shell = null;

function buildShell() {
  const channel = h("select", { onchange: () => switchChannel(channel.value) });
  const nav = h("nav", { class: "screens", "aria-label": "Screens" });
  const live = h("span", { class: "live", role: "status", "data-state": "offline" }, "Connecting…");
  const alerts = h("div", { class: "alerts", role: "alert" });
  const notice = h("div", { class: "notice", role: "status" });
  const announcer = h("div", { class: "sr-only", "aria-live": "polite" });
  const main = h("main", { id: "main", tabindex: "-1" });
  const availability = availabilityControl({ onError: (message) => ctx.error(message) });
  const header = h(
    "header",
    { class: "topbar" },
    h("h1", { class: "brand" }, "Parley"),
    field("Channel", channel, { inline: true }),
    nav,
    h("span", { class: "spacer" }),
    live,
    availability.node,
    h("span", { class: "who", title: "Signed in as" }, ctx.me.id),
    h("button", { type: "button", class: "quiet", onclick: signOut }, "Sign out"),
  );
  root.replaceChildren(header, alerts, notice, announcer, main);
  shell = { channel, nav, live, availability, alerts, notice, announcer, main };
}

function makeContext(user) {
  let noticeTimer = null;
  return {
    me: user,
    channels: [],
    channel: null,
    error(message) {
      clear(
        shell.alerts,
        h("p", {}, message),
        h("button", { type: "button", class: "quiet", onclick: () => clear(shell.alerts) }, "Dismiss"),
      );
    },
    clearError() {
      clear(shell.alerts);
    },
    notice(message) {
      clearTimeout(noticeTimer);
      shell.notice.textContent = message;
      noticeTimer = setTimeout(() => clear(shell.notice), NOTICE_MS);
    },
    announce(message) {
      shell.announcer.textContent = message;
    },
    async refreshChannels() {
      const { channels } = await api.get("/v1/channels");
      const wanted = ctx.channel?.id ?? localStorage.getItem(CHANNEL_KEY);
      ctx.channels = channels;
      ctx.channel = channels.find((c) => c.id === wanted) ?? channels[0] ?? null;
      renderChannels();
      renderNav();
    },
  };
}

function renderChannels() {
  clear(
    shell.channel,
    ctx.channels.map((c) =>
      h("option", { value: c.id, selected: c.id === ctx.channel?.id }, c.display_name),
    ),
  );
  shell.channel.disabled = ctx.channels.length === 0;
}

function renderNav() {
  clear(
    shell.nav,
    SCREENS.filter((s) => s.allowed(ctx)).map((s) =>
      h(
        "button",
        {
          type: "button",
          class: "screen",
          "aria-current": s.name === screenName ? "page" : null,
          onclick: () => show(s.name, { focus: true }),
        },
        s.label,
      ),
    ),
  );
}

function show(name, { focus = false } = {}) {
  const wanted = SCREENS.find((s) => s.name === name && s.allowed(ctx)) ?? SCREENS[0];
  screen?.destroy?.();
  screenName = wanted.name;
  ctx.clearError();
  screen = wanted.make(ctx);
  clear(shell.main, screen.node);
  renderNav();
  if (focus) shell.main.focus();
}

function switchChannel(id) {
  ctx.channel = ctx.channels.find((c) => c.id === id) ?? null;
  if (ctx.channel) localStorage.setItem(CHANNEL_KEY, ctx.channel.id);
  show(screenName);
}

async function stillSignedIn() {
  try {
    await api.get(api.SESSION);
    return true;
  } catch (error) {
    if (error.status !== 401) return true; // not answering: keep trying
    signedOut("Your session has ended: sign in again.");
    return false;
  }
}

function startStream() {
  stream = openStream({
    change(change) {
      if (change.channel === ctx?.channel?.id) screen?.onChange?.(change);
    },
    reset(reset) {
      if (reset.channel === ctx?.channel?.id) screen?.reload?.();
    },
    ready({ resumed, first }) {
      // A new connection that could not resume may have missed changes.
      if (!first && !resumed) screen?.reload?.();
      // Away long enough, Parley may have set the user offline meanwhile.
      shell.availability.refresh();
    },
    status(state) {
      shell.live.textContent = LIVE_TEXT[state];
      shell.live.dataset.state = state;
    },
    stillSignedIn,
  });
}

async function start(session) {
  localStorage.setItem(SIGNED_IN_KEY, "1");
  api.setCsrf(session.csrf);
  ctx = makeContext(session.user);
  buildShell();
  try {
    await ctx.refreshChannels();
  } catch (error) {
    ctx.error(error.message);
  }
  startStream();
  show("inbox", { focus: true });
}

function signedOut(message) {
  if (!ctx) return;
  localStorage.removeItem(SIGNED_IN_KEY);
  stream?.close();
  screen?.destroy?.();
  ctx = null;
  stream = null;
  screen = null;
  screenName = "inbox";
  api.setCsrf(null);
  showSignIn(root, { message, onSignedIn: start });
}

async function signOut() {
  try {
    await api.del(api.SESSION);
  } catch (error) {
    if (error.status !== 401) {
      ctx.error(`Could not sign out: ${error.message}`);
      return;
    }
  }
  signedOut("You have signed out.");
}

async function boot() {
  api.whenUnauthorized(() => signedOut("Your session has ended: sign in again."));
  setInterval(() => refreshAges(), AGES_EVERY_MS);
  if (!localStorage.getItem(SIGNED_IN_KEY)) {
    showSignIn(root, { onSignedIn: start });
    return;
  }
  try {
    await start(await api.get(api.SESSION));
  } catch (error) {
    if (error.status === 401) localStorage.removeItem(SIGNED_IN_KEY);
    showSignIn(root, { message: error.status === 401 ? "" : error.message, onSignedIn: start });
  }
}

boot();
