// The console shell: routes by the URL hash, shows the view, and polls it every few seconds
// so new runs and schedule changes appear without a reload.

import * as api from "./api.js";
import { h, replace } from "./dom.js";
import { configList } from "./views/list.js";
import { configPage } from "./views/config.js";
import { configForm } from "./views/form.js";
import { systemPage } from "./views/system.js";
import { tokensPage } from "./views/tokens.js";
import { auditPage } from "./views/audit.js";
import { channelsPage } from "./views/channels.js";
import { deliveriesPage } from "./views/deliveries.js";
import { signInPage, notAllowedPage } from "./views/signin.js";
import { NEEDS, can, rank, setUser } from "./roles.js";

const POLL_MS = 3000;
const SECTIONS = ["system", "tokens", "audit", "channels", "deliveries"]; // top-bar links besides configs
const main = document.getElementById("view");
const nav = document.getElementById("nav");

let me = null; // the signed-in user (GET /users/me)
let current = null; // { refresh(), stop() } of the view on screen
let pollTimer = null;
let generation = 0; // bumps on every navigation, so a slow load never paints a stale view
let notice = null; // a message for the next view painted (the role changed)

// [pattern, view, the least role the page is for (its API calls need it)]
const ROUTES = [
  [/^#\/configs\/new$/, () => configForm(null), NEEDS.edit],
  [/^#\/configs\/(\d+)\/edit$/, (id) => configForm(Number(id)), NEEDS.edit],
  [/^#\/configs\/(\d+)$/, (id) => configPage(Number(id))],
  [/^#\/system$/, () => systemPage()],
  [/^#\/tokens$/, () => tokensPage()],
  [/^#\/audit(?:\?.*)?$/, () => auditPage()],
  [/^#\/channels$/, () => channelsPage()],
  [/^#\/deliveries(?:\?.*)?$/, () => deliveriesPage()],
  [/^#\/configs(?:\?.*)?$/, () => configList()],
];

function route() {
  const hash = location.hash || "#/configs";
  for (const [pattern, view, needs] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    if (needs && !can(needs)) return { load: async () => notAllowedPage(me, needs) };
    return view(...match.slice(1));
  }
  return configList();
}

function markNav() {
  const hash = location.hash || "#/configs";
  const section = hash.match(/^#\/(\w+)/)?.[1];
  const active = hash === "#/configs/new" ? "new" : SECTIONS.includes(section) ? section : "configs";
  for (const link of nav.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === active);
  }
}

/** The user name and role in the top bar; links the role cannot use are hidden. */
function showUser() {
  document.getElementById("whoami").textContent = me.username;
  const role = document.getElementById("role");
  role.textContent = me.role;
  role.className = `role role-${me.role}`;
  role.title = `Your role: ${me.role}`;
  for (const link of nav.querySelectorAll("[data-needs]")) link.hidden = !can(link.dataset.needs);
}

function stopView() {
  clearTimeout(pollTimer);
  if (current && current.stop) current.stop();
  current = null;
}

function poll(view, mine) {
  pollTimer = setTimeout(async () => {
    if (mine !== generation) return;
    if (document.visibilityState === "visible") {
      try {
        await view.refresh();
      } catch (error) {
        showError(error);
      }
    }
    if (mine === generation) poll(view, mine);
  }, POLL_MS);
}

function showError(error) {
  if (error instanceof api.ApiError && error.status === 401) return; // signed out: handled
  const box = document.getElementById("global-error") || h("p", { id: "global-error", className: "alert" });
  box.textContent = error.message || String(error);
  if (!box.isConnected) main.prepend(box);
}

function show(node) {
  replace(main, node);
}

async function render() {
  stopView();
  const mine = ++generation;
  if (!api.isSignedIn()) {
    nav.hidden = true;
    me = null;
    setUser(null);
    show(signInPage(async () => { await loadMe(); render(); }));
    return;
  }
  try {
    if (!me) await loadMe();
    if (mine !== generation) return;
    nav.hidden = false;
    showUser();
    markNav();
    const view = route();
    const node = await view.load();
    if (mine !== generation) return;
    show(node);
    if (notice) {
      main.prepend(h("p", { id: "role-changed", className: "alert alert-warn", role: "status" }, notice));
      notice = null;
    }
    current = view;
    if (view.refresh) poll(view, mine);
  } catch (error) {
    if (mine === generation) showError(error);
  }
}

async function loadMe() {
  me = await api.get("/users/me");
  setUser(me);
}

let rechecking = false;
async function recheckRole() {
  if (rechecking || !me) return;
  rechecking = true;
  const before = me.role;
  try {
    await loadMe();
    if (rank(me.role) !== rank(before)) {
      notice = `Your role is now ${me.role} (it was ${before}): the console shows what it allows.`;
      render();
    }
  } catch {
    // signed out, or the API is away: the next poll tells
  } finally {
    rechecking = false;
  }
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await api.signOut();
  } catch (error) {
    showError(error);
  }
});

api.onSignedOut(() => render());
window.addEventListener("hashchange", () => render());
window.addEventListener("unhandledrejection", (event) => {
  showError(event.reason);
});

// A 403 from the API (api.js): the role may have changed since sign-in; read it again, and
// render again when it did, so the page shows what the role now allows.
window.addEventListener("taskhub:forbidden", () => recheckRole());

// Views call this after an action that moves to another page or changes the data.
window.addEventListener("taskhub:navigate", (event) => {
  if (location.hash === event.detail) render();
  else location.hash = event.detail;
});

render();
