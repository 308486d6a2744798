// API tokens for scripts and pipelines: create one (its secret is shown once, here, with a
// copy button), list them, revoke one. Admins may list every user's (GET /tokens?all=true).

import * as api from "../api.js";
import { badge, h, replace } from "../dom.js";
import { localTime } from "../format.js";
import { NEEDS, ROLES, can, currentUser, rank } from "../roles.js";
import { cell, pager, table, when } from "./common.js";

const LIMIT = 20;
const EXPIRY_DAYS = [7, 30, 90, 180, 365];
const DEFAULT_EXPIRY = 90; // the API's default

function tokenStatus(token, now = Date.now()) {
  if (token.revoked_at) return "revoked";
  if (token.expires_at && Date.parse(token.expires_at) <= now) return "expired";
  return "active";
}

const STATUS_KIND = { active: "ok", expired: "paused", revoked: "failed" };

/** The secret of a token just created: shown once, with a copy button. */
function secretCard(created, onDone) {
  const secret = h("input", {
    id: "new-token-secret", className: "mono secret", readOnly: true, value: created.token,
    "aria-label": "The new token",
  });
  secret.addEventListener("focus", () => secret.select());
  const copied = h("span", { id: "new-token-copied", className: "muted", "aria-live": "polite" });
  const copy = h("button", {
    type: "button",
    id: "new-token-copy",
    className: "primary",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(created.token);
        copied.textContent = "Copied to the clipboard.";
      } catch {
        // No clipboard access (an insecure origin, a refused permission): select it instead.
        secret.focus();
        secret.select();
        copied.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
      }
    },
  }, "Copy");
  const done = h("button", { type: "button", id: "new-token-done", onclick: onDone }, "Done");
  return h(
    "section",
    { className: "card secret-card", id: "new-token" },
    h("h2", {}, `Token “${created.name}” created`),
    h("p", { className: "alert alert-warn", role: "alert" },
      h("strong", {}, "Copy it now: you will not see it again. "),
      "Taskhub keeps only a hash of it; a lost token cannot be shown, only revoked and replaced."),
    h("div", { className: "secret-row" }, secret, copy),
    copied,
    h("p", { className: "hint" },
      "Send it as ", h("code", {}, "Authorization: Bearer thk_…"), `. It acts with the ${created.role} role `,
      "(or yours, if yours becomes lower)",
      created.expires_at ? ` until ${localTime(created.expires_at)}.` : " and never expires."),
    h("div", { className: "actions" }, done),
  );
}

export function tokensPage() {
  const admin = can(NEEDS.allTokens);
  const me = currentUser();
  const state = { all: false, offset: 0 };
  const flash = h("div", { id: "tokens-flash", "aria-live": "polite" });
  const secretSlot = h("div", {});
  const list = h("div", { id: "token-list" });
  let usernames = null; // user id -> username, for an admin's view of everyone's tokens

  function say(text, kind = "info") {
    replace(flash, h("p", { className: `alert alert-${kind}` }, text));
  }

  async function userNames() {
    if (usernames) return usernames;
    const page = await api.get("/users", { limit: 100 });
    usernames = new Map(page.items.map((user) => [user.id, user.username]));
    return usernames;
  }

  async function revoke(token) {
    if (!confirm(`Revoke the token “${token.name}” (${token.prefix}…)? Requests with it are refused from now on.`)) return;
    try {
      await api.request("DELETE", `/tokens/${token.id}`);
      say(`Token “${token.name}” revoked.`, "ok");
      await refresh();
    } catch (error) {
      if (error.status === 401) return;
      say(`Revoke: ${error.message}`, "error");
    }
  }

  function row(token, names) {
    const status = tokenStatus(token);
    const owner = names ? names.get(token.user_id) || `user #${token.user_id}` : null;
    return h(
      "tr",
      { dataset: { tokenId: token.id, status } },
      cell("Name", h("strong", {}, token.name)),
      names ? cell("User", owner) : null,
      cell("Token", h("code", {}, `${token.prefix}…`)),
      cell("Role", h("span", { className: `role role-${token.role}` }, token.role)),
      cell("Created", when(token.created_at)),
      cell("Expires", token.expires_at ? when(token.expires_at) : h("span", { className: "muted" }, "never")),
      cell("Last used", token.last_used_at ? when(token.last_used_at) : h("span", { className: "muted" }, "never")),
      cell("Status", badge(status, STATUS_KIND[status])),
      cell("", status === "revoked" ? null : h("button", {
        type: "button", className: "danger", dataset: { action: "revoke" }, onclick: () => revoke(token),
      }, "Revoke")),
    );
  }

  async function refresh() {
    const all = admin && state.all;
    const [page, names] = await Promise.all([
      api.get("/tokens", { all: all ? "true" : "", limit: LIMIT, offset: state.offset }),
      all ? userNames() : null,
    ]);
    const headers = ["Name", ...(names ? ["User"] : []), "Token", "Role", "Created", "Expires", "Last used", "Status", ""];
    replace(
      list,
      table(headers, page.items.map((token) => row(token, names)), all ? "No API tokens yet." : "You have no API tokens yet."),
      pager(page, (offset) => {
        state.offset = offset;
        refresh();
      }, "tokens"),
    );
  }

  function createForm() {
    const errors = h("div", { className: "alert", id: "token-form-errors", role: "alert", hidden: true });
    const name = h("input", { id: "token-name", name: "name", required: true, maxLength: 200, placeholder: "ci-deploy" });
    const role = h("select", { id: "token-role", name: "role" },
      ROLES.filter((r) => rank(r) <= rank(me.role)).map((r) => h("option", { value: r, selected: r === me.role }, r)));
    const expiry = h("select", { id: "token-expiry", name: "expires_in_days" },
      EXPIRY_DAYS.map((days) => h("option", { value: String(days), selected: days === DEFAULT_EXPIRY }, `${days} days`)),
      h("option", { value: "never" }, "never"));
    const submit = h("button", { type: "submit", className: "primary" }, "Create token");
    const form = h(
      "form",
      { className: "card token-form", id: "token-form", noValidate: true },
      h("h2", {}, "New API token"),
      errors,
      h("div", { className: "inline-fields" },
        h("div", { className: "field grow" }, h("label", { htmlFor: name.id }, "Name"), name),
        h("div", { className: "field" }, h("label", { htmlFor: role.id }, "Role"), role),
        h("div", { className: "field" }, h("label", { htmlFor: expiry.id }, "Expires after"), expiry)),
      h("small", { className: "hint" }, "A token's role can be yours or lower. Its secret is shown once, right after creating it."),
      h("div", { className: "actions" }, submit),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errors.hidden = true;
      if (!name.value.trim()) {
        replace(errors, "Give the token a name (what it is for: ci, backup script…).");
        errors.hidden = false;
        name.focus();
        return;
      }
      submit.disabled = true;
      try {
        const created = await api.request("POST", "/tokens", {
          body: {
            name: name.value.trim(),
            role: role.value,
            expires_in_days: expiry.value === "never" ? null : Number(expiry.value),
          },
        });
        name.value = "";
        replace(flash);
        replace(secretSlot, secretCard(created, () => replace(secretSlot)));
        document.getElementById("new-token-secret")?.focus();
        state.offset = 0;
        await refresh();
      } catch (error) {
        if (error.status === 401) return;
        replace(errors, error.message,
          error.fields.length ? h("ul", {}, error.fields.map((f) => h("li", {}, `${f.loc.slice(1).join(".")}: ${f.msg}`))) : null);
        errors.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  async function load() {
    await refresh();
    let toggle = null;
    if (admin) {
      const all = h("input", { type: "checkbox", id: "tokens-all", name: "all" });
      all.addEventListener("change", () => {
        state.all = all.checked;
        state.offset = 0;
        refresh().catch((error) => say(error.message, "error"));
      });
      toggle = h("label", { className: "check", htmlFor: all.id }, all, " All users");
    }
    return h(
      "section",
      { id: "tokens-page" },
      h("div", { className: "page-head" }, h("h1", {}, "API tokens")),
      h("p", { className: "muted" },
        "Long-lived bearer tokens for scripts and pipelines, instead of a password. ",
        "Revoke one and it is refused on the next request."),
      createForm(),
      secretSlot,
      flash,
      h("section", { className: "card" },
        h("div", { className: "section-head" }, h("h2", {}, admin ? "Tokens" : "Your tokens"), toggle),
        list),
    );
  }

  return { load, refresh };
}
