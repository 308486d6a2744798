// Alert deliveries (GET /notifications/deliveries): one event to one channel, newest first;
// filter by status, channel and config, page through. The filters live in the hash
// (`#/deliveries?status=failed&channel_id=2`), so the Channels page and a config link here.

import * as api from "../api.js";
import { badge, h, replace } from "../dom.js";
import { json } from "../format.js";
import { cell, hashQuery, pager, setHashQuery, table, when } from "./common.js";

const LIMIT = 20;
const CONFIGS_LIMIT = 100; // the API's page limit: the config filter offers these by name
const STATUSES = ["pending", "delivered", "failed"];
const STATUS_KIND = { pending: "paused", delivered: "ok", failed: "failed" };

function select(name, label, options, value) {
  // A value from the address the options lack (a config beyond the first 100) is kept.
  const all = value && !options.some(([option]) => option === value) ? [...options, [value, `#${value}`]] : options;
  return h(
    "label",
    { className: "filter" },
    label,
    h(
      "select",
      { name, id: `deliveries-${name}` },
      h("option", { value: "" }, "any"),
      all.map(([option, text]) => h("option", { value: option, selected: option === value }, text)),
    ),
  );
}

function configCell(delivery) {
  const config = delivery.payload?.config;
  if (!delivery.config_id) return h("span", { className: "muted" }, "—");
  return h("a", { href: `#/configs/${delivery.config_id}` }, config?.name || `#${delivery.config_id}`);
}

function channelCell(delivery, channels) {
  if (delivery.channel_id === null) return h("span", { className: "muted" }, "deleted channel");
  const channel = channels.get(delivery.channel_id);
  return channel
    ? h("span", {}, channel.name, h("small", {}, ` ${channel.kind}`))
    : `#${delivery.channel_id}`;
}

function outcomeCell(delivery) {
  const parts = [
    badge(delivery.status, STATUS_KIND[delivery.status]),
    delivery.last_status ? h("small", {}, ` HTTP ${delivery.last_status}`) : null,
  ];
  if (delivery.last_error) {
    parts.push(h("div", { className: "clip delivery-error", title: delivery.last_error }, delivery.last_error));
  }
  return h("span", {}, parts);
}

function timesCell(delivery) {
  if (delivery.status === "delivered") return h("span", {}, h("small", {}, "delivered "), when(delivery.delivered_at));
  if (delivery.status === "pending") return h("span", {}, h("small", {}, "next attempt "), when(delivery.next_attempt_at));
  return h("span", { className: "muted" }, "no more attempts");
}

function row(delivery, channels) {
  return h(
    "tr",
    { dataset: { deliveryId: delivery.id, status: delivery.status, event: delivery.event } },
    cell("Created", when(delivery.created_at)),
    cell("Event", h("span", { className: `event event-alert-${delivery.event}` }, delivery.event)),
    cell("Config", configCell(delivery)),
    cell("Channel", channelCell(delivery, channels)),
    cell("Status", outcomeCell(delivery)),
    cell("Attempts", String(delivery.attempts)),
    cell("When", timesCell(delivery)),
    cell("Payload", h("details", { className: "payload" },
      h("summary", {}, "JSON"),
      h("pre", {}, json(delivery.payload)))),
  );
}

export function deliveriesPage() {
  const query = hashQuery();
  const state = {
    status: query.get("status") || "",
    channel_id: query.get("channel_id") || "",
    config_id: query.get("config_id") || "",
    offset: Number(query.get("offset")) || 0,
  };
  const results = h("div", { id: "delivery-results" });
  let channels = new Map();
  const opened = new Set(); // delivery ids whose payload is unfolded, kept across refreshes

  async function refresh() {
    const [page, list] = await Promise.all([
      api.get("/notifications/deliveries", { ...state, limit: LIMIT }),
      api.get("/notifications/channels"),
    ]);
    channels = new Map(list.map((channel) => [channel.id, channel]));
    setHashQuery("#/deliveries", Object.entries({ ...state, offset: state.offset || "" }));
    const rows = page.items.map((delivery) => row(delivery, channels));
    for (const node of rows) {
      const fold = node.querySelector("details");
      const id = node.dataset.deliveryId;
      fold.open = opened.has(id);
      fold.addEventListener("toggle", () => (fold.open ? opened.add(id) : opened.delete(id)));
    }
    replace(
      results,
      table(["Created", "Event", "Config", "Channel", "Status", "Attempts", "When", "Payload"], rows, "No deliveries match."),
      pager(page, (offset) => {
        state.offset = offset;
        refresh();
      }, "deliveries"),
    );
  }

  async function load() {
    const [, configs] = await Promise.all([
      refresh(),
      api.get("/tasks/configs", { limit: CONFIGS_LIMIT }),
    ]);
    const byName = [...configs.items].sort((a, b) => a.name.localeCompare(b.name));
    const filters = h(
      "form",
      { className: "filters", id: "delivery-filters", role: "search" },
      select("status", "Status", STATUSES.map((status) => [status, status]), state.status),
      select("channel_id", "Channel", [...channels.values()].map((c) => [String(c.id), `${c.name} (${c.kind})`]), state.channel_id),
      select("config_id", "Config", byName.map((c) => [String(c.id), c.name]), state.config_id),
    );
    filters.addEventListener("submit", (event) => event.preventDefault());
    filters.addEventListener("change", (event) => {
      state[event.target.name] = event.target.value;
      state.offset = 0;
      refresh();
    });
    return h(
      "section",
      { id: "deliveries-page" },
      h("div", { className: "page-head" }, h("h1", {}, "Alert deliveries")),
      h("p", { className: "muted" },
        "Every alert event sent to every channel, newest first: pending ones are retried with backoff ",
        "(3 attempts over about a minute; a 4xx answer is final). Channel tests are not listed."),
      filters,
      results,
    );
  }

  return { load, refresh };
}
