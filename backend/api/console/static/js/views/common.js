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

export function setHashQuery(path, params) {
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
