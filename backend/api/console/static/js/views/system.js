// System status: GET /tasks/status (reachability and counts) and the public GET /health.

import * as api from "../api.js";
import { badge, h, replace } from "../dom.js";
import { localTime, percent } from "../format.js";

function checks(title, results) {
  return h(
    "section",
    { className: "card" },
    h("h2", {}, title),
    h("dl", { className: "fields" }, Object.entries(results).map(([name, outcome]) => [
      h("dt", {}, name),
      h("dd", {}, badge(outcome === "ok" ? "ok" : outcome, outcome === "ok" ? "ok" : "failed")),
    ])),
  );
}

function number(value) {
  return value === null || value === undefined ? h("span", { className: "muted" }, "unknown") : String(value);
}

export function systemPage() {
  const body = h("div", { id: "system" });

  async function refresh() {
    const [status, health] = await Promise.all([api.get("/tasks/status"), api.health()]);
    replace(
      body,
      h("div", { className: "columns" },
        h("section", { className: "card" },
          h("h2", {}, "Counts"),
          h("dl", { className: "fields" },
            h("dt", {}, "Task configs"), h("dd", {}, number(status.configs)),
            h("dt", {}, "Active schedules"), h("dd", {}, number(status.active_schedules)),
            h("dt", {}, "Runs in flight"), h("dd", { id: "runs-in-flight" }, number(status.runs_in_flight)),
            h("dt", {}, "Runs in the last hour"), h("dd", {}, number(status.runs_last_hour)),
            h("dt", {}, "Success rate, last hour"), h("dd", {}, percent(status.success_rate_last_hour)))),
        checks("Reachable from the API (/tasks/status)", status.checks),
        checks(`Health (/health): ${health.status}`, health.checks)),
      h("p", { className: "muted" }, `Updated ${localTime(new Date().toISOString())}; refreshes every few seconds.`),
    );
  }

  async function load() {
    await refresh();
    return h("section", {}, h("h1", {}, "System"), body);
  }

  return { load, refresh };
}
