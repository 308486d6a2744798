// Create or edit a config. The parameter inputs are built from the task type's JSON schema
// (GET /tasks/types); the API validates, and its 422 field errors are shown beside the
// fields they name (`loc` ["body", "parameters", "seconds"] -> the "parameters.seconds" field).

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { previewList } from "./common.js";

const SCHEDULER_TYPES = {
  cron: "Cron expression",
  interval: "Every fixed interval",
  date: "Once, at a date and time",
  manual: "Manual: only when run by hand",
};
const INTERVAL_UNITS = ["days", "hours", "minutes", "seconds"];
const OVERLAP_POLICIES = [
  ["skip", "skip a scheduled run while one is in flight"],
  ["allow", "allow overlapping runs"],
  ["buffer_one", "buffer one: run it as soon as the one in flight ends"],
  ["cancel_other", "cancel the run in flight and start the new one"],
];
const PREVIEW_COUNT = 5;
const PREVIEW_DELAY_MS = 300; // after the last keystroke

export function field(key, label, input, hint) {
  if (!input.id) input.id = `field-${key.replaceAll(".", "-")}`;
  input.name = key;
  return h(
    "div",
    { className: "field", dataset: { field: key } },
    input.type === "checkbox"
      ? h("label", { className: "check", htmlFor: input.id }, input, ` ${label}`)
      : [h("label", { htmlFor: input.id }, label), input],
    hint ? h("small", { className: "hint" }, hint) : null,
    h("p", { className: "field-error", hidden: true }),
  );
}

export function numberInput(value, { min, max, integer } = {}) {
  return h("input", { type: "number", value: value ?? "", min, max, step: integer ? 1 : "any", inputMode: "decimal" });
}

// --- parameters from the JSON schema -----------------------------------------------------

function resolve(schema, root) {
  if (schema && schema.$ref) return root.$defs[schema.$ref.split("/").pop()] || {};
  return schema || {};
}

/** The property with `anyOf [X, null]` unwrapped to X (nullable). */
function unwrap(prop, root) {
  const own = resolve(prop, root);
  if (!own.anyOf) return own;
  const variants = own.anyOf.map((v) => resolve(v, root)).filter((v) => v.type !== "null");
  return variants.length === 1 ? { ...variants[0], ...own, anyOf: undefined } : own;
}

function kindOf(prop) {
  if (prop.type === "boolean") return "boolean";
  if (prop.type === "integer" || prop.type === "number") return "number";
  if (prop.type === "string" && prop.enum) return "choice";
  if (prop.type === "string") return "text";
  return "json"; // objects, arrays, any JSON value
}

function paramInput(kind, prop, value) {
  switch (kind) {
    case "boolean":
      return h("input", { type: "checkbox", checked: Boolean(value ?? prop.default) });
    case "number":
      return numberInput(value, {
        min: prop.minimum ?? prop.exclusiveMinimum, max: prop.maximum, integer: prop.type === "integer",
      });
    case "choice":
      return h("select", {}, prop.enum.map((option) => h("option", { value: option, selected: option === (value ?? prop.default) }, option)));
    case "text":
      return h("input", { type: prop.format === "uri" ? "url" : "text", value: value ?? "", maxLength: prop.maxLength });
    default:
      return h("textarea", { rows: 3, className: "mono", placeholder: "JSON" }, value === undefined || value === null ? "" : JSON.stringify(value, null, 2));
  }
}

function hintFor(prop, required) {
  const parts = [];
  if (prop.description) parts.push(prop.description);
  if (prop.default !== undefined && prop.default !== null) parts.push(`default ${JSON.stringify(prop.default)}`);
  if (prop.minimum !== undefined && prop.maximum !== undefined) {
    parts.push(`${prop.minimum} to ${prop.maximum}`);
  } else {
    const bounds = [["≥", prop.minimum], [">", prop.exclusiveMinimum], ["≤", prop.maximum], ["<", prop.exclusiveMaximum]];
    const given = bounds.filter(([, bound]) => bound !== undefined).map(([sign, bound]) => `${sign} ${bound}`);
    if (given.length) parts.push(given.join(", "));
  }
  if (required) parts.push("required");
  return parts.join(" · ");
}

function parameterFields(taskType, values) {
  const root = taskType.parameters_schema;
  const required = new Set(root.required || []);
  const readers = [];
  const fields = Object.entries(root.properties || {}).map(([name, raw]) => {
    const prop = unwrap(raw, root);
    const kind = kindOf(prop);
    const input = paramInput(kind, prop, values[name]);
    readers.push({ name, kind, prop, input });
    return field(`parameters.${name}`, prop.title || name, input, hintFor(prop, required.has(name)));
  });
  /** The parameters to send: empty inputs and booleans at their default are left out. */
  function read(errors) {
    const params = {};
    for (const { name, kind, prop, input } of readers) {
      if (kind === "boolean") {
        if (input.checked !== Boolean(prop.default)) params[name] = input.checked;
      } else if (input.value.trim() === "") {
        continue;
      } else if (kind === "number") {
        params[name] = Number(input.value);
      } else if (kind === "json") {
        try {
          params[name] = JSON.parse(input.value);
        } catch {
          errors.push({ loc: ["body", "parameters", name], msg: "Not valid JSON" });
        }
      } else {
        params[name] = input.value;
      }
    }
    return params;
  }
  return { fields, read };
}

// --- schedule ----------------------------------------------------------------------------

function cronExpression(config) {
  if (config.cron_expression) return config.cron_expression;
  const parts = ["minute", "hour", "day", "month", "day_of_week"].map((name) => config[name] || "*");
  return config.minute || config.hour ? parts.join(" ") : "";
}

function localInputValue(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  return new Date(moment.getTime() - moment.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
}

/** "2026-12-25, 2026-12-24..2027-01-01" <-> the `exclude` list of days and ranges. */
function excludeText(entries) {
  return (entries || []).map((e) => (typeof e === "string" ? e : `${e.from}..${e.to}`)).join(", ");
}

function excludeList(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean).map((part) => {
    const [from, to] = part.split("..").map((day) => day.trim());
    return to === undefined ? from : { from, to };
  });
}

/** start_at, end_at, max_runs, jitter_seconds and exclude: cron and interval only. */
function optionFields(config) {
  const start = h("input", { type: "datetime-local", step: 1, value: localInputValue(config.start_at) });
  const end = h("input", { type: "datetime-local", step: 1, value: localInputValue(config.end_at) });
  const maxRuns = numberInput(config.max_runs, { min: 1, max: 1000000, integer: true });
  const jitter = numberInput(config.jitter_seconds || "", { min: 0, max: 3600, integer: true });
  const exclude = h("input", { value: excludeText(config.exclude), placeholder: "2026-12-25, 2026-12-24..2027-01-01", className: "mono" });
  maxRuns.placeholder = "no limit";
  return {
    fields: [
      h("div", { className: "inline-fields" },
        field("schedule_config.start_at", "Not before (your local time)", start),
        field("schedule_config.end_at", "Not after (your local time)", end)),
      h("div", { className: "inline-fields" },
        field("schedule_config.max_runs", "Max runs", maxRuns, "then the schedule completes; empty: no limit"),
        field("schedule_config.jitter_seconds", "Jitter (s)", jitter, "0 to 3600: each fire is delayed by up to this much")),
      field("schedule_config.exclude", "Skip these days", exclude, "dates and ranges (from..to, inclusive), comma-separated, in the schedule's time zone"),
    ],
    read() {
      const options = {};
      if (start.value) options.start_at = new Date(start.value).toISOString();
      if (end.value) options.end_at = new Date(end.value).toISOString();
      if (maxRuns.value !== "") options.max_runs = Number(maxRuns.value);
      if (jitter.value !== "" && Number(jitter.value) !== 0) options.jitter_seconds = Number(jitter.value);
      const days = excludeList(exclude.value);
      if (days.length) options.exclude = days;
      return options;
    },
  };
}

function scheduleFields(type, config) {
  const own = ownScheduleFields(type, config);
  if (type !== "cron" && type !== "interval") return own;
  const options = optionFields(config);
  return {
    fields: [...own.fields, h("div", { className: "schedule-options" }, options.fields)],
    read: () => ({ ...own.read(), ...options.read() }),
  };
}

function ownScheduleFields(type, config) {
  if (type === "cron") {
    const expression = h("input", { value: cronExpression(config), placeholder: "0 2 * * *", className: "mono" });
    const zone = h("input", { value: config.timezone || "UTC", list: "timezones" });
    const zones = h("datalist", { id: "timezones" }, (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : []).map((name) => h("option", { value: name })));
    return {
      fields: [
        field("schedule_config.cron_expression", "Cron expression", expression, "minute hour day month weekday, e.g. 0 2 * * * (02:00 daily); @hourly, @daily, @weekly"),
        field("schedule_config.timezone", "Time zone", zone, "IANA name, e.g. Europe/Berlin"),
        zones,
      ],
      read: () => ({ cron_expression: expression.value.trim(), timezone: zone.value.trim() || "UTC" }),
    };
  }
  if (type === "interval") {
    const inputs = INTERVAL_UNITS.map((unit) => [unit, numberInput(config[unit], { min: 0, integer: true })]);
    return {
      fields: [h("div", { className: "inline-fields" }, inputs.map(([unit, input]) => field(`schedule_config.${unit}`, unit, input)))],
      read: () => Object.fromEntries(inputs.filter(([, input]) => input.value !== "").map(([unit, input]) => [unit, Number(input.value)])),
    };
  }
  if (type === "date") {
    const when = h("input", { type: "datetime-local", step: 1, value: localInputValue(config.run_date) });
    return {
      fields: [field("schedule_config.run_date", "Run at (your local time)", when)],
      read: () => (when.value ? { run_date: new Date(when.value).toISOString() } : {}),
    };
  }
  return { fields: [h("p", { className: "muted" }, "Never scheduled: start runs with Run now.")], read: () => ({}) };
}

// --- alerts and pause on failure ---------------------------------------------------------

export const ALERT_EVENTS = {
  failure: "a run failed (after its retries)",
  recovery: "the first success after a notified failure",
  missed: "the scheduler missed fires",
  late: "a scheduled run has no result some time after its fire time",
  paused: "the schedule paused itself after failures",
};
const DEFAULT_EVENTS = ["failure", "recovery"]; // the API's default for `on`

/** Checkboxes for a list field (`alerts.channel_ids`, `alerts.on`): one error slot for all. */
function checkboxGroup(key, legend, options, chosen, empty) {
  const boxes = options.map(([value, label, title]) => {
    const input = h("input", {
      type: "checkbox", name: key, value: String(value), checked: chosen.includes(value),
      id: `field-${key.replaceAll(".", "-")}-${value}`,
    });
    return { value, input, node: h("label", { className: "check", htmlFor: input.id, title }, input, ` ${label}`) };
  });
  const box = h(
    "fieldset",
    { className: "field choices", dataset: { field: key } },
    h("legend", {}, legend),
    boxes.length ? h("div", { className: "choice-list" }, boxes.map((b) => b.node)) : empty,
    h("p", { className: "field-error", hidden: true }),
  );
  return { box, boxes, read: () => boxes.filter((b) => b.input.checked).map((b) => b.value) };
}

function alertFields(config, channels) {
  const rules = config.alerts;
  const enabled = h("input", { type: "checkbox", checked: Boolean(rules), id: "field-alerts-enabled" });
  const channelGroup = checkboxGroup(
    "alerts.channel_ids", "Send to",
    channels.map((c) => [c.id, `${c.name} (${c.kind})`]),
    rules?.channel_ids || [],
    h("p", { className: "hint" }, "No channels yet: create one on the ", h("a", { href: "#/channels" }, "Channels"), " page first."),
  );
  const eventGroup = checkboxGroup(
    "alerts.on", "When",
    Object.entries(ALERT_EVENTS).map(([event, words]) => [event, `${event}: ${words}`]),
    rules?.on || DEFAULT_EVENTS,
  );
  const after = numberInput(rules?.after_consecutive_failures ?? 1, { min: 1, max: 100, integer: true });
  const late = numberInput(rules?.late_after_seconds, { min: 1, max: 86400, integer: true });
  const lateHint = h("small", { className: "hint" });
  const lateBox = eventGroup.boxes.find((b) => b.value === "late").input;
  function showLateHint() {
    late.required = lateBox.checked;
    lateHint.textContent = lateBox.checked
      ? "1 to 86400 · required for late"
      : "1 to 86400 · used by late (dead-man's switch)";
  }
  lateBox.addEventListener("change", showLateHint);
  showLateHint();
  const lateField = field("alerts.late_after_seconds", "Late after (s)", late);
  lateField.insertBefore(lateHint, lateField.querySelector(".field-error"));
  const settings = h(
    "div",
    { className: "alert-settings", id: "alert-settings" },
    channelGroup.box,
    eventGroup.box,
    h("div", { className: "inline-fields" },
      field("alerts.after_consecutive_failures", "Failures in a row before alerting", after,
        "1 to 100; then one alert per further failure"),
      lateField),
  );
  const showSettings = () => { settings.hidden = !enabled.checked; };
  enabled.addEventListener("change", showSettings);
  showSettings();

  const pause = numberInput(config.pause_after_failures, { min: 1, max: 100, integer: true });
  pause.placeholder = "never";
  const box = h(
    "fieldset",
    { className: "field", dataset: { field: "alerts" }, id: "alerts-box" },
    h("legend", {}, "Alerts and failure handling"),
    field("alerts_enabled", "Send alerts for this config", enabled),
    settings,
    h("p", { className: "field-error", hidden: true }),
    field("pause_after_failures", "Pause after failures", pause,
      "1 to 100 failed scheduled runs in a row pause the schedule (with a note saying why); empty: never"),
  );
  function read() {
    const body = { pause_after_failures: pause.value === "" ? null : Number(pause.value) };
    if (!enabled.checked) return { ...body, alerts: null };
    const alerts = {
      channel_ids: channelGroup.read(),
      on: eventGroup.read(),
      late_after_seconds: late.value === "" ? null : Number(late.value),
    };
    if (after.value !== "") alerts.after_consecutive_failures = Number(after.value);
    return { ...body, alerts };
  }
  return { box, read };
}

// --- errors ------------------------------------------------------------------------------

export function clearErrors(form, summary) {
  for (const node of form.querySelectorAll(".field-error")) node.hidden = true;
  for (const node of form.querySelectorAll(".invalid")) node.classList.remove("invalid");
  summary.hidden = true;
}

/** Each error beside the most specific field its `loc` names; the rest in the summary. */
export function showErrors(form, summary, message, errors) {
  const unplaced = [];
  for (const error of errors) {
    const path = error.loc.slice(error.loc[0] === "body" ? 1 : 0).map(String);
    let target = null;
    for (let length = path.length; length > 0 && !target; length--) {
      target = form.querySelector(`[data-field="${CSS.escape(path.slice(0, length).join("."))}"]`);
    }
    if (!target) {
      unplaced.push(`${path.join(".")}: ${error.msg}`);
      continue;
    }
    target.classList.add("invalid");
    const slot = target.querySelector(":scope > .field-error");
    slot.textContent = slot.hidden ? error.msg : `${slot.textContent}; ${error.msg}`;
    slot.hidden = false;
  }
  replace(summary, message, unplaced.length ? h("ul", {}, unplaced.map((text) => h("li", {}, text))) : null);
  summary.hidden = false;
  const first = form.querySelector(".invalid input, .invalid select, .invalid textarea");
  if (first) first.focus();
}

// --- the form ----------------------------------------------------------------------------

export function configForm(id) {
  async function load() {
    const [types, config, channels] = await Promise.all([
      api.get("/tasks/types"),
      id === null ? null : api.get(`/tasks/configs/${id}`),
      api.get("/notifications/channels"),
    ]);
    const current = config || { task_type: types[0]?.name, scheduler_type: "cron", schedule_config: {}, parameters: {} };
    const byName = Object.fromEntries(types.map((t) => [t.name, t]));

    const name = h("input", { value: current.name || "", required: true, maxLength: 200 });
    const description = h("textarea", { rows: 2 }, current.description || "");
    const taskType = h("select", {}, types.map((t) => h("option", { value: t.name, selected: t.name === current.task_type }, t.name)));
    const schedulerType = h("select", {}, Object.entries(SCHEDULER_TYPES).map(([value, label]) => h("option", { value, selected: value === current.scheduler_type }, label)));
    const maxRetries = numberInput(current.max_retries, { min: 0, max: 10, integer: true });
    const timeout = numberInput(current.timeout_seconds, { min: 1, max: 86400, integer: true });
    const priority = numberInput(current.priority, { min: 0, max: 9, integer: true });
    const overlap = h("select", {}, OVERLAP_POLICIES
      .map(([value, label]) => h("option", { value, selected: value === (current.overlap_policy || "skip") }, label)));
    const autoStart = h("input", { type: "checkbox", id: "field-auto-start" });
    const alerts = alertFields(current, channels);

    const typeHelp = h("p", { className: "hint" });
    const paramsBox = h("fieldset", { className: "field", dataset: { field: "parameters" } });
    const scheduleBox = h("fieldset", { className: "field", dataset: { field: "schedule_config" } });
    let params;
    let schedule;
    function buildParams(values) {
      const chosen = byName[taskType.value];
      typeHelp.textContent = chosen ? chosen.description : "";
      params = chosen ? parameterFields(chosen, values) : { fields: [], read: () => ({}) };
      replace(paramsBox, h("legend", {}, "Parameters"), typeHelp, params.fields, h("p", { className: "field-error", hidden: true }));
    }
    const preview = h("div", { className: "field schedule-preview", id: "schedule-preview", "aria-live": "polite" });
    let previewTimer = null;
    let previewed = 0; // answers may arrive out of order: only the newest is shown
    async function showPreview() {
      const asked = ++previewed;
      const body = { scheduler_type: schedulerType.value, schedule_config: schedule.read(), count: PREVIEW_COUNT };
      let shown;
      try {
        shown = previewList(await api.request("POST", "/tasks/schedules/preview", { body }), "schedule-preview-runs");
      } catch (error) {
        if (error.status === 401) return;
        const reasons = (error.fields || []).map((f) => `${f.loc.slice(2).join(".") || "schedule"}: ${f.msg}`);
        shown = h("p", { className: "muted", id: "schedule-preview-runs" }, reasons.length ? reasons.join("; ") : error.message);
      }
      if (asked === previewed) replace(preview, h("h3", {}, `Next ${PREVIEW_COUNT} runs`), shown);
    }
    function previewSoon() {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(showPreview, PREVIEW_DELAY_MS);
    }
    scheduleBox.addEventListener("input", previewSoon);
    scheduleBox.addEventListener("change", previewSoon);
    function buildSchedule(values) {
      schedule = scheduleFields(schedulerType.value, values);
      replace(scheduleBox, h("legend", {}, "Schedule"), schedule.fields, h("p", { className: "field-error", hidden: true }));
      if (schedulerType.value === "manual") replace(preview);
      else previewSoon();
    }
    buildParams(current.parameters);
    buildSchedule(current.schedule_config);
    taskType.addEventListener("change", () => buildParams({}));
    schedulerType.addEventListener("change", () => buildSchedule({}));

    const summary = h("div", { className: "alert", id: "form-errors", role: "alert", hidden: true });
    const submit = h("button", { type: "submit", className: "primary" }, config ? "Save changes" : "Create config");
    const form = h(
      "form",
      { className: "card config-form", id: "config-form", noValidate: true },
      summary,
      field("name", "Name", name),
      field("description", "Description", description),
      field("task_type", "Task type", taskType),
      paramsBox,
      field("scheduler_type", "Schedule type", schedulerType),
      scheduleBox,
      preview,
      h("div", { className: "inline-fields" },
        field("max_retries", "Max retries", maxRetries, "0 to 10"),
        field("timeout_seconds", "Timeout (s)", timeout, "1 to 86400"),
        field("priority", "Priority", priority, "0 (low) to 9 (high)")),
      field("overlap_policy", "Overlap", overlap),
      alerts.box,
      config ? null : field("auto_start", "Start the schedule after creating it", autoStart),
      h("div", { className: "actions" }, submit, h("a", { href: config ? `#/configs/${id}` : "#/configs", className: "button" }, "Cancel")),
    );

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form, summary);
      const errors = [];
      const body = {
        name: name.value.trim(),
        description: description.value.trim() || null,
        task_type: taskType.value,
        scheduler_type: schedulerType.value,
        schedule_config: schedule.read(),
        parameters: params.read(errors),
        overlap_policy: overlap.value,
        ...alerts.read(),
      };
      for (const [key, input] of [["max_retries", maxRetries], ["timeout_seconds", timeout], ["priority", priority]]) {
        if (input.value !== "") body[key] = Number(input.value);
      }
      if (errors.length) {
        showErrors(form, summary, "Please fix the marked fields.", errors);
        return;
      }
      submit.disabled = true;
      try {
        const saved = config
          ? await api.request("PATCH", `/tasks/configs/${id}`, { body })
          : await api.request("POST", `/tasks/configs${autoStart.checked ? "?auto_start=true" : ""}`, { body });
        window.dispatchEvent(new CustomEvent("taskhub:navigate", { detail: `#/configs/${saved.id}` }));
      } catch (error) {
        if (error.status === 401) return;
        showErrors(form, summary, error.message, error.fields || []);
      } finally {
        submit.disabled = false;
      }
    });

    return h("section", {},
      h("p", { className: "crumbs" }, h("a", { href: config ? `#/configs/${id}` : "#/configs" }, config ? `‹ ${config.name}` : "‹ All configs")),
      h("h1", {}, config ? `Edit ${config.name}` : "New task config"),
      form);
  }

  return { load };
}
