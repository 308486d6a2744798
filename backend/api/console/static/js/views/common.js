// Pieces several views share: status badges, last-run cells, pagers, query state in the hash.

import { badge, h } from "../dom.js";
import { fromNow, localTime, percent } from "../format.js";

export function statusBadge(status) {
  return badge(status, status);
}

export function outcomeBadge(isSuccess) {
  if (isSuccess === null || isSuccess === undefined) return h("span", { className: "muted" }, "never ran");
  return isSuccess ? badge("succeeded", "ok") : badge("failed", "failed");
}

export function nextRun(iso) {
  if (!iso) return h("span", { className: "muted" }, "—");
  return h("span", { className: "when" }, localTime(iso), h("small", {}, fromNow(iso)));
}

export function lastRun(stats) {
  if (!stats || !stats.last_run_at) return outcomeBadge(null);
  return h(
    "span",
    { className: "when" },
    outcomeBadge(stats.last_run_success),
    h("small", { title: localTime(stats.last_run_at) }, fromNow(stats.last_run_at)),
  );
}

export function successRate(stats) {
  if (!stats || !stats.total_runs) return h("span", { className: "muted" }, "—");
  return h("span", {}, percent(stats.success_rate), h("small", {}, ` of ${stats.total_runs}`));
}

/** "21–40 of 57" with previous/next buttons; `go(offset)` moves. */
export function pager({ total, limit, offset }, go, label = "items") {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return h(
    "div",
    { className: "pager" },
    h("button", { type: "button", disabled: offset === 0, onclick: () => go(Math.max(offset - limit, 0)) }, "‹ Previous"),
    h("span", {}, `${first}–${last} of ${total} ${label}`),
    h("button", { type: "button", disabled: last >= total, onclick: () => go(offset + limit) }, "Next ›"),
  );
}

export function hashQuery() {
  const hash = location.hash;
  const at = hash.indexOf("?");
  return new URLSearchParams(at === -1 ? "" : hash.slice(at + 1));
}

/** A list's filters into the address, while that list is still the page shown: a refresh
 * answered after the user moved on must not write its address over the new page's (a reload
 * would then show the list). */
export function setHashQuery(path, params) {
  if ((location.hash || "#/configs").split("?")[0] !== path) return;
  const clean = new URLSearchParams();
  for (const [name, value] of params) if (value) clean.set(name, value);
  const text = clean.toString();
  history.replaceState(null, "", `${path}${text ? `?${text}` : ""}`);
}

export function table(headers, rows, emptyText) {
  if (!rows.length) return h("p", { className: "muted empty" }, emptyText);
  return h(
    "table",
    { className: "grid" },
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", {}, title)))),
    h("tbody", {}, rows),
  );
}

/** A table cell that shows its column name before the value on narrow screens. */
export function cell(label, ...children) {
  return h("td", { dataset: { label } }, ...children);
}

/** A time with "5 min ago" under it. */
export function when(iso) {
  return h("span", { className: "when" }, localTime(iso), h("small", {}, fromNow(iso)));
}

// --- the audit trail -------------------------------------------------------------------

// Actions whose `changes` are `{field: [old, new]}`; the others hold a state (the created
// object, the last state of a deleted one, a schedule's new status, a run's task id).
const DIFF_ACTION = /\.(update|revoke)$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const INLINE_FIELDS = 4; // a longer state (a created or deleted config) folds away

function valueText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return ISO_TIME.test(value) ? localTime(value) : value;
  return JSON.stringify(value);
}

function value(text, raw) {
  return h("span", { className: "value", title: typeof raw === "string" ? raw : JSON.stringify(raw) ?? "" }, text);
}

/** One line per field: "priority: 5 → 8" for an update, "password: changed", "name: nightly". */
export function changeLines(event) {
  const changes = event.changes;
  if (changes === null || typeof changes !== "object" || Array.isArray(changes)) {
    return changes === null || changes === undefined ? [] : [h("li", {}, valueText(changes))];
  }
  const diff = DIFF_ACTION.test(event.action);
  return Object.entries(changes).map(([field, change]) => {
    const parts = diff && Array.isArray(change) && change.length === 2
      ? [value(valueText(change[0]), change[0]), " → ", value(valueText(change[1]), change[1])]
      : [value(valueText(change), change)];
    return h("li", { className: "change", dataset: { field } }, h("code", {}, field), ": ", parts);
  });
}

export function changesCell(event) {
  const lines = changeLines(event);
  if (!lines.length) return h("span", { className: "muted" }, "—");
  if (lines.length <= INLINE_FIELDS) return h("ul", { className: "changes" }, lines);
  return h(
    "details",
    { className: "changes" },
    h("summary", {}, `${lines.length} fields`),
    h("ul", { className: "changes" }, lines),
  );
}

export function actorCell(event) {
  if (!event.actor) return h("span", { className: "muted" }, "system");
  return h(
    "span",
    { className: "actor" },
    event.actor,
    event.actor_token_id ? h("small", {}, ` via API token #${event.actor_token_id}`) : null,
  );
}

export function targetCell(event) {
  const name = event.target_name || (event.target_id ? `#${event.target_id}` : "");
  let label = name;
  if (event.target_type === "config" && event.target_id) label = h("a", { href: `#/configs/${event.target_id}` }, name);
  if (event.target_type === "channel" && event.action !== "channel.delete") label = h("a", { href: "#/channels" }, name);
  return h("span", {}, h("small", {}, `${event.target_type} `), label);
}

export function actionBadge(action) {
  const kind = action.split(".")[0];
  return h("code", { className: `audit-action audit-${kind}` }, action);
}

/** A schedule's next runs (GET .../next-runs, POST /tasks/schedules/preview) as a list:
 * each run's time (and its nominal time when jitter moved it), then the excluded ones. */
export function previewList(preview, id) {
  const limit = preview.remaining_runs === null ? null
    : h("p", { className: "hint" }, `max_runs leaves ${preview.remaining_runs} run${preview.remaining_runs === 1 ? "" : "s"}`);
  const runs = preview.runs.length
    ? h("ol", { className: "next-runs" }, preview.runs.map((run) => h("li", {},
      localTime(run.at),
      run.at === run.nominal ? null : h("small", { className: "muted" }, ` · nominal ${localTime(run.nominal)}`))))
    : h("p", { className: "muted" }, "No runs to come: the schedule ends first.");
  const skipped = preview.skipped.length
    ? h("p", { className: "hint" }, "Skipped (excluded days): ", preview.skipped.map((s) => localTime(s.nominal)).join(", "))
    : null;
  return h("div", { id, className: "preview" },
    preview.active ? null : h("p", { className: "hint" }, "Not active: the runs a start now would give."),
    runs, skipped, limit);
}
