// The config list: filters, search and paging of GET /tasks/configs, with execution stats.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { NEEDS, can } from "../roles.js";
import { cell, hashQuery, lastRun, nextRun, pager, setHashQuery, statusBadge, successRate, table } from "./common.js";

const LIMIT = 20;
const SCHEDULER_TYPES = ["cron", "interval", "date", "manual"];
const STATUSES = ["active", "paused", "inactive", "completed"];

function select(name, label, options, value) {
  return h(
    "label",
    { className: "filter" },
    label,
    h(
      "select",
      { name, id: `filter-${name}` },
      h("option", { value: "" }, "any"),
      options.map((option) => h("option", { value: option, selected: option === value }, option)),
    ),
  );
}

function row(config) {
  return h(
    "tr",
    { dataset: { configId: config.id } },
    cell("Name", h("a", { href: `#/configs/${config.id}`, className: "config-link" }, config.name)),
    cell("Type", h("code", {}, config.task_type)),
    cell("Schedule", config.schedule_description),
    cell("Status", statusBadge(config.schedule_status)),
    cell("Next run", nextRun(config.next_run_at)),
    cell("Last run", lastRun(config.stats)),
    cell("Success rate", successRate(config.stats)),
  );
}

export function configList() {
  const query = hashQuery();
  const state = {
    search: query.get("search") || "",
    task_type: query.get("task_type") || "",
    scheduler_type: query.get("scheduler_type") || "",
    schedule_status: query.get("schedule_status") || "",
    offset: Number(query.get("offset")) || 0,
  };
  const results = h("div", { id: "config-results" });
  let searchTimer = null;

  async function refresh() {
    const page = await api.get("/tasks/configs", { ...state, limit: LIMIT, include_stats: true });
    setHashQuery("#/configs", Object.entries({ ...state, offset: state.offset || "" }));
    replace(
      results,
      table(
        ["Name", "Type", "Schedule", "Status", "Next run", "Last run", "Success rate"],
        page.items.map(row),
        "No task configs match.",
      ),
      pager(page, (offset) => {
        state.offset = offset;
        refresh();
      }, "configs"),
    );
  }

  async function load() {
    const types = await api.get("/tasks/types");
    const filters = h(
      "form",
      { className: "filters", id: "config-filters", role: "search" },
      h("label", { className: "filter grow" }, "Search",
        h("input", { type: "search", name: "search", id: "filter-search", value: state.search, placeholder: "name or description" })),
      select("task_type", "Task type", types.map((t) => t.name), state.task_type),
      select("scheduler_type", "Schedule", SCHEDULER_TYPES, state.scheduler_type),
      select("schedule_status", "Status", STATUSES, state.schedule_status),
    );
    filters.addEventListener("submit", (event) => event.preventDefault());
    filters.addEventListener("input", (event) => {
      state[event.target.name] = event.target.value;
      state.offset = 0;
      clearTimeout(searchTimer);
      searchTimer = setTimeout(refresh, event.target.name === "search" ? 300 : 0);
    });
    await refresh();
    return h(
      "section",
      {},
      h("div", { className: "page-head" },
        h("h1", {}, "Task configs"),
        can(NEEDS.edit) ? h("a", { href: "#/configs/new", className: "button primary" }, "New config") : null),
      filters,
      results,
    );
  }

  return { load, refresh, stop: () => clearTimeout(searchTimer) };
}
