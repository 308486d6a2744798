// Notification channels (GET/POST /notifications/channels): where alerts go. Everyone reads
// the list; admins create one (the inputs follow its kind), send it a test event now (the
// outcome shown in its row) and delete one (the API refuses with 409 while a config's alert
// rules use it, and the console shows its message). Secrets read back as "***".

import * as api from "../api.js";
import { badge, h, replace } from "../dom.js";
import { NEEDS, can } from "../roles.js";
import { cell, table, when } from "./common.js";
import { clearErrors, field, showErrors } from "./form.js";

const MASK = "***"; // what the API shows of a write-only secret
export const KINDS = {
  webhook: "Webhook: POST the event as JSON",
  slack: "Slack: an incoming-webhook message",
  email: "E-mail over the server's SMTP",
};

/** "X-Team: ops" lines -> {"X-Team": "ops"}; a line without a colon is an error. */
function parseHeaders(text, errors) {
  const headers = {};
  for (const [index, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const at = line.indexOf(":");
    if (at <= 0) {
      errors.push({ loc: ["config", "headers"], msg: `line ${index + 1}: write it as Name: value` });
      continue;
    }
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}

function kindFields(kind) {
  if (kind === "webhook") {
    const url = h("input", { type: "url", placeholder: "https://hooks.example.com/taskhub", className: "mono" });
    const secret = h("input", { type: "password", autocomplete: "new-password" });
    const headers = h("textarea", { rows: 2, className: "mono", placeholder: "X-Team: ops" });
    return {
      fields: [
        field("config.url", "URL", url, "http or https; a 2xx answer counts as delivered"),
        field("config.secret", "Signing secret (optional)", secret,
          "signs each body: X-Taskhub-Signature: sha256=<HMAC-SHA256 hex>; write-only, read back as ***"),
        field("config.headers", "Extra headers (optional)", headers, "one a line: Name: value"),
      ],
      read: (errors) => {
        const config = { url: url.value.trim(), headers: parseHeaders(headers.value, errors) };
        if (secret.value) config.secret = secret.value;
        return config;
      },
    };
  }
  if (kind === "slack") {
    const url = h("input", { type: "url", placeholder: "https://hooks.slack.com/services/…", className: "mono" });
    return {
      fields: [field("config.webhook_url", "Slack incoming-webhook URL", url, "write-only: read back as ***")],
      read: () => ({ webhook_url: url.value.trim() }),
    };
  }
  const to = h("input", { placeholder: "ops@example.com, oncall@example.com" });
  return {
    fields: [field("config.to", "To", to, "addresses, separated by commas; the server needs SMTP_HOST set")],
    read: () => ({ to: to.value.split(/[,;\s]+/).filter(Boolean) }),
  };
}

/** Where the channel sends, as far as a read shows it. */
function target(channel) {
  const config = channel.config || {};
  if (channel.kind === "webhook") {
    return h("span", {},
      h("code", { className: "clip", title: config.url }, config.url),
      config.secret === MASK ? h("small", {}, " · signed") : null,
      Object.keys(config.headers || {}).length ? h("small", {}, ` · headers ${Object.keys(config.headers).join(", ")}`) : null);
  }
  if (channel.kind === "slack") return h("span", { className: "muted" }, "Slack webhook (secret)");
  return h("span", {}, (config.to || []).join(", "));
}

function outcome(result) {
  if (!result) return h("span", { className: "muted" }, "—");
  if (result.sending) return h("span", { className: "muted" }, "sending…");
  const detail = [result.status ? `HTTP ${result.status}` : null, result.error].filter(Boolean).join(": ");
  return h(
    "span",
    { className: "test-outcome", dataset: { delivered: String(result.delivered) } },
    result.delivered ? badge("delivered", "ok") : badge("not delivered", "failed"),
    detail ? h("small", { className: "clip", title: detail }, ` ${detail}`) : null,
  );
}

export function channelsPage() {
  const admin = can(NEEDS.channels);
  const flash = h("div", { id: "channels-flash", "aria-live": "polite" });
  const list = h("div", { id: "channel-list" });
  const tested = new Map(); // channel id -> the last test's outcome, kept across refreshes

  function say(text, kind = "info") {
    replace(flash, h("p", { className: `alert alert-${kind}` }, text));
  }

  async function test(channel) {
    tested.set(channel.id, { sending: true });
    await refresh();
    try {
      tested.set(channel.id, await api.request("POST", `/notifications/channels/${channel.id}/test`));
    } catch (error) {
      tested.delete(channel.id);
      if (error.status !== 401) say(`Test: ${error.message}`, "error");
    }
    await refresh();
  }

  async function remove(channel) {
    if (!confirm(`Delete the channel “${channel.name}”? Its delivery records stay.`)) return;
    try {
      await api.request("DELETE", `/notifications/channels/${channel.id}`);
      tested.delete(channel.id);
      say(`Channel “${channel.name}” deleted.`, "ok");
    } catch (error) {
      if (error.status === 401) return;
      say(`Delete: ${error.message}`, "error");
    }
    await refresh();
  }

  function row(channel) {
    return h(
      "tr",
      { dataset: { channelId: channel.id, kind: channel.kind } },
      cell("Name", h("strong", {}, channel.name)),
      cell("Kind", h("code", {}, channel.kind)),
      cell("Sends to", target(channel)),
      cell("Created", when(channel.created_at)),
      cell("Last test", outcome(tested.get(channel.id))),
      cell("", h("div", { className: "actions" },
        h("a", { href: `#/deliveries?channel_id=${channel.id}` }, "Deliveries"),
        admin && h("button", {
          type: "button", dataset: { action: "test" }, disabled: tested.get(channel.id)?.sending,
          onclick: () => test(channel),
        }, "Send test"),
        admin && h("button", {
          type: "button", className: "danger", dataset: { action: "delete" }, onclick: () => remove(channel),
        }, "Delete"))),
    );
  }

  async function refresh() {
    const channels = await api.get("/notifications/channels");
    replace(
      list,
      table(["Name", "Kind", "Sends to", "Created", "Last test", ""], channels.map(row), "No channels yet."),
    );
  }

  function createForm() {
    const summary = h("div", { className: "alert", id: "channel-form-errors", role: "alert", hidden: true });
    const name = h("input", { required: true, maxLength: 200, placeholder: "ops-hook" });
    const kind = h("select", {}, Object.entries(KINDS).map(([value, label]) => h("option", { value }, label)));
    const kindBox = h("div", { className: "kind-fields", id: "channel-kind-fields" });
    let inputs;
    function build() {
      inputs = kindFields(kind.value);
      replace(kindBox, inputs.fields);
    }
    kind.addEventListener("change", build);
    build();
    const submit = h("button", { type: "submit", className: "primary" }, "Create channel");
    const form = h(
      "form",
      { className: "card channel-form", id: "channel-form", noValidate: true },
      h("h2", {}, "New channel"),
      summary,
      h("div", { className: "inline-fields" },
        field("name", "Name", name),
        field("kind", "Kind", kind)),
      kindBox,
      h("div", { className: "actions" }, submit),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form, summary);
      const errors = [];
      const body = { name: name.value.trim(), kind: kind.value, config: inputs.read(errors) };
      if (errors.length) {
        showErrors(form, summary, "Please fix the marked fields.", errors);
        return;
      }
      submit.disabled = true;
      try {
        const created = await api.request("POST", "/notifications/channels", { body });
        name.value = "";
        build();
        say(`Channel “${created.name}” created. Send it a test to check it works.`, "ok");
        await refresh();
      } catch (error) {
        if (error.status === 401) return;
        showErrors(form, summary, error.message, error.fields || []);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  async function load() {
    await refresh();
    return h(
      "section",
      { id: "channels-page" },
      h("div", { className: "page-head" }, h("h1", {}, "Notification channels")),
      h("p", { className: "muted" },
        "Where alerts go. A config's alert settings (in its form) pick the channels and the events: ",
        "failure, recovery, missed, late, paused. ",
        admin ? "A test sends a test event now, outside the delivery queue." : "Admins add, test and delete channels."),
      admin ? createForm() : null,
      flash,
      h("section", { className: "card" }, h("h2", {}, "Channels"), list),
    );
  }

  return { load, refresh };
}
