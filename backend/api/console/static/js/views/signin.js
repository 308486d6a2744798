// Sign in with the API's login (username or email + password), and the page a signed-in
// user sees where their role does not reach.

import * as api from "../api.js";
import { h } from "../dom.js";

export function signInPage(onSignedIn) {
  const error = h("p", { className: "alert", hidden: true, role: "alert" });
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password", name: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const submit = h("button", { type: "submit", className: "primary" }, "Sign in");
  const form = h(
    "form",
    { className: "card signin", id: "signin-form" },
    h("h1", {}, "Sign in"),
    error,
    h("label", { htmlFor: "username" }, "Username or email"),
    username,
    h("label", { htmlFor: "password" }, "Password"),
    password,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await api.signIn(username.value.trim(), password.value);
      await onSignedIn();
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  queueMicrotask(() => username.focus());
  return form;
}

/** A page the signed-in role may not use (the API would answer 403 to its calls). */
export function notAllowedPage(user, needs) {
  return h(
    "section",
    { className: "card not-allowed", id: "not-allowed" },
    h("h1", {}, "Not allowed"),
    h(
      "p",
      {},
      `You are signed in as ${user ? user.username : "a user"}, with the ${user ? user.role : "unknown"} role. `,
      `This page needs the ${needs} role or higher.`,
    ),
    h("p", {}, h("a", { href: "#/configs" }, "‹ All configs"), " — or ask an administrator for a higher role."),
  );
}
