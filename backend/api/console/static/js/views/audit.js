// The audit trail: every change, by whom, what changed, when (GET /audit), newest first;
// filter by action, actor and target type, page through. The filters live in the hash.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { actionBadge, actorCell, cell, changesCell, hashQuery, pager, setHashQuery, table, targetCell, when } from "./common.js";

const LIMIT = 20;
export const ACTIONS = [
  "config.create", "config.update", "config.delete",
  "schedule.start", "schedule.pause", "schedule.resume", "schedule.stop", "schedule.reload",
  "run.now", "run.batch", "run.backfill",
  "user.create", "user.update",
  "token.create", "token.revoke",
  "channel.create", "channel.update", "channel.delete",
  "auth.lockout",
];
const TARGET_TYPES = ["config", "user", "token", "channel"];

function select(name, label, options, value) {
  // An action in the URL the list does not know yet (a later one) is still offered.
  const all = value && !options.includes(value) ? [...options, value] : options;
  return h(
    "label",
    { className: "filter" },
    label,
    h(
      "select",
      { name, id: `audit-${name}` },
      h("option", { value: "" }, "any"),
      all.map((option) => h("option", { value: option, selected: option === value }, option)),
    ),
  );
}

function row(event) {
  return h(
    "tr",
    { dataset: { auditId: event.id, auditAction: event.action } },
    cell("When", when(event.at)),
    cell("Who", actorCell(event)),
    cell("Action", actionBadge(event.action)),
    cell("Target", targetCell(event)),
    cell("Changes", changesCell(event)),
  );
}

export function auditPage() {
  const query = hashQuery();
  const state = {
    action: query.get("action") || "",
    actor: query.get("actor") || "",
    target_type: query.get("target_type") || "",
    offset: Number(query.get("offset")) || 0,
  };
  const results = h("div", { id: "audit-results" });
  let typingTimer = null;

  async function refresh() {
    const page = await api.get("/audit", { ...state, limit: LIMIT });
    setHashQuery("#/audit", Object.entries({ ...state, offset: state.offset || "" }));
    replace(
      results,
      table(["When", "Who", "Action", "Target", "Changes"], page.items.map(row), "No audit entries match."),
      pager(page, (offset) => {
        state.offset = offset;
        refresh();
      }, "entries"),
    );
  }

  async function load() {
    await refresh();
    const filters = h(
      "form",
      { className: "filters", id: "audit-filters", role: "search" },
      select("action", "Action", ACTIONS, state.action),
      h("label", { className: "filter" }, "Actor",
        h("input", { type: "search", name: "actor", id: "audit-actor", value: state.actor, placeholder: "username" })),
      select("target_type", "Target", TARGET_TYPES, state.target_type),
    );
    filters.addEventListener("submit", (event) => event.preventDefault());
    filters.addEventListener("input", (event) => {
      state[event.target.name] = event.target.value.trim();
      state.offset = 0;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(refresh, event.target.name === "actor" ? 300 : 0);
    });
    return h(
      "section",
      { id: "audit-page" },
      h("div", { className: "page-head" }, h("h1", {}, "Audit log")),
      h("p", { className: "muted" }, "Every change to configs, schedules, runs, users, tokens and channels: who, when, what changed. Newest first."),
      filters,
      results,
    );
  }

  return { load, refresh, stop: () => clearTimeout(typingTimer) };
}
