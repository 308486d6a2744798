// The JSON API client: the token pair lives in localStorage (so a reload stays signed in),
// goes only into the Authorization header (never a URL), and is refreshed shortly before
// the access token expires (a minute, or a fifth of a shorter lifetime), or once after a 401.

const KEY = "taskhub.console.tokens";
const BASE = "/api/v1";
const REFRESH_AHEAD_MS = 60_000;
const REFRESH_AHEAD_SHARE = 0.2;

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.fields = error.fields || [];
  }
}

let refreshTimer = null;
const signedOutListeners = [];

export function onSignedOut(listener) {
  signedOutListeners.push(listener);
}

function stored() {
  try {
    return JSON.parse(localStorage.getItem(KEY));
  } catch {
    return null;
  }
}

function store(pair) {
  localStorage.setItem(KEY, JSON.stringify({ ...pair, received_at: new Date().toISOString() }));
  scheduleRefresh();
}

function forget() {
  localStorage.removeItem(KEY);
  clearTimeout(refreshTimer);
}

export function isSignedIn() {
  return stored() !== null;
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const pair = stored();
  if (!pair) return;
  const expires = Date.parse(pair.expires_at);
  const lifetime = expires - Date.parse(pair.received_at || pair.expires_at);
  const ahead = Math.min(REFRESH_AHEAD_MS, lifetime * REFRESH_AHEAD_SHARE);
  const wait = Math.max(expires - ahead - Date.now(), 1000);
  refreshTimer = setTimeout(() => refresh(pair.access_token).catch(() => {}), wait);
}

function signedOut() {
  forget();
  for (const listener of signedOutListeners) listener();
}

async function post(path, body) {
  const response = await fetch(BASE + path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    credentials: "omit",
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

async function rotate(usedAccessToken) {
  // Another tab may have refreshed already: a refresh token works once, so reuse its pair.
  const pair = stored();
  if (!pair) throw new ApiError(401, null);
  if (pair.access_token !== usedAccessToken) return pair;
  try {
    const fresh = await post("/auth/refresh", { refresh_token: pair.refresh_token });
    store(fresh);
    return fresh;
  } catch (error) {
    if (error.status === 401) signedOut();
    throw error;
  }
}

/** A new pair; one refresh at a time across this browser's tabs (Web Locks where present). */
function refresh(usedAccessToken) {
  if (navigator.locks) {
    return navigator.locks.request("taskhub-console-refresh", () => rotate(usedAccessToken));
  }
  return rotate(usedAccessToken);
}

export async function signIn(username, password) {
  store(await post("/auth/login", { username, password }));
}

export async function signOut() {
  try {
    if (stored()) await request("POST", "/auth/logout");
  } finally {
    signedOut();
  }
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  const text = params.toString();
  return BASE + path + (text ? `?${text}` : "");
}

/** One API call with the access token; a 401 gets one refresh and one retry. */
export async function request(method, path, { query, body } = {}) {
  const send = (pair) => {
    const headers = { Authorization: `Bearer ${pair.access_token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
  };
  let pair = stored();
  if (!pair) {
    signedOut();
    throw new ApiError(401, null);
  }
  let response = await send(pair);
  if (response.status === 401) {
    pair = await refresh(pair.access_token);
    response = await send(pair);
    if (response.status === 401) signedOut();
  }
  // A 403 may mean the user's role changed since sign-in: the shell reads it again.
  if (response.status === 403) window.dispatchEvent(new CustomEvent("taskhub:forbidden"));
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, query) => request("GET", path, { query });

/** Health is public and answers 503 with a body when a dependency is down. */
export async function health() {
  const response = await fetch("/health", { credentials: "omit" });
  return response.json();
}

// Another tab signed out (tokens removed) or refreshed (a new pair): follow it.
window.addEventListener("storage", (event) => {
  if (event.key !== KEY) return;
  if (event.newValue === null) signedOut();
  else scheduleRefresh();
});

scheduleRefresh();
