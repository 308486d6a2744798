// The signed-in user and what their role may do: viewer < operator < admin, as in the API's
// access table (backend/api/access.py). The console hides what the role cannot do; the API
// still decides (a 403 names the role needed).

export const ROLES = ["viewer", "operator", "admin"];

let user = null;

export function setUser(me) {
  user = me;
}

export function currentUser() {
  return user;
}

export function rank(role) {
  return ROLES.indexOf(role);
}

/** Whether the signed-in user's role is `role` or above. */
export function can(role) {
  return user !== null && rank(user.role) >= 0 && rank(user.role) >= rank(role);
}

// What each part of the console needs (the API's rule for the routes it calls).
export const NEEDS = {
  run: "operator", // run now, batch run, cancel a run
  schedule: "operator", // start, pause, resume, stop, reload
  edit: "admin", // create, update, delete configs
  allTokens: "admin", // everyone's API tokens
  channels: "admin", // create, test and delete notification channels
};
