// One config: its fields and live state, the actions its status (and the signed-in role)
// allows, run now, the executions (newest first, paged, filter by outcome), a duration chart,
// its schedule history and its changes (the audit trail: who, when, field: old → new).

import * as api from "../api.js";
import { durationChart } from "../chart.js";
import { h, replace } from "../dom.js";
import { duration, fromNow, json, localTime, percent } from "../format.js";
import { NEEDS, can } from "../roles.js";
import {
  actionBadge, actorCell, cell, changesCell, lastRun, nextRun, outcomeBadge, pager, previewList, statusBadge, table, when,
} from "./common.js";

const EXECUTIONS_LIMIT = 10;
const CHART_RUNS = 100;
const HISTORY_LIMIT = 20;
const CHANGES_LIMIT = 10;
const NEXT_RUNS = 10;
const OVERLAP_WORDS = {
  skip: "skip a scheduled run while one is in flight",
  allow: "allow overlapping runs",
  buffer_one: "buffer one: run it as soon as the one in flight ends",
  cancel_other: "cancel the run in flight and start the new one",
};
const NOTE_MAX = 500; // the API's limit for a note on an action
const NOTED_ACTIONS = ["pause", "resume", "stop"]; // the actions that take a note

/** The schedule actions that fit a status (the API answers 409 to the others). */
export function actionsFor(config) {
  if (config.scheduler_type === "manual") return [];
  return {
    inactive: ["start"],
    active: ["pause", "stop", "reload"],
    paused: ["resume", "stop"],
    completed: ["start"],
  }[config.schedule_status] || [];
}

function definition(pairs) {
  return h("dl", { className: "fields" }, pairs.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

/** The alert rules in words, the channels named (and linked to the Channels page). */
function alertsText(alerts, channels) {
  if (!alerts) return h("span", { className: "muted" }, "none");
  const names = alerts.channel_ids.map((channelId) => {
    const channel = channels.get(channelId);
    return channel ? `${channel.name} (${channel.kind})` : `channel #${channelId}`;
  });
  const failures = alerts.after_consecutive_failures || 1;
  return h(
    "span",
    { id: "alerts-words" },
    `On ${alerts.on.join(", ")} → ${names.join(", ")}`,
    alerts.on.includes("failure") && failures > 1 ? h("small", {}, ` · once ${failures} fail in a row`) : null,
    alerts.late_after_seconds ? h("small", {}, ` · late after ${alerts.late_after_seconds} s`) : null,
  );
}

function details(config, channels) {
  return definition([
    ["Task type", h("code", {}, config.task_type)],
    ["Schedule", h("span", { id: "schedule-words" }, config.schedule_description)],
    ["Schedule config", h("code", {}, `${config.scheduler_type} ${JSON.stringify(config.schedule_config)}`)],
    ["Status", statusBadge(config.schedule_status)],
    ["Next run", h("span", { id: "next-run" }, nextRun(config.next_run_at))],
    ["Parameters", h("pre", {}, json(config.parameters))],
    ["Max retries", config.max_retries],
    ["Timeout", `${config.timeout_seconds} s`],
    ["Priority", h("span", { id: "priority" }, String(config.priority))],
    ["Overlap policy", OVERLAP_WORDS[config.overlap_policy] || config.overlap_policy],
    ["Description", config.description || h("span", { className: "muted" }, "—")],
    ["Alerts", h("span", {}, alertsText(config.alerts, channels), " ",
      h("a", { href: `#/deliveries?config_id=${config.id}`, id: "config-deliveries" }, "deliveries"))],
    ["Pause on failure", h("span", { id: "pause-after" }, config.pause_after_failures
      ? `after ${config.pause_after_failures} failed scheduled run${config.pause_after_failures === 1 ? "" : "s"} in a row`
      : "never")],
    ["Created", localTime(config.created_at)],
    ["Updated", localTime(config.updated_at)],
    ["ID", config.id],
  ]);
}

function statsBlock(stats) {
  return definition([
    ["Runs", stats.total_runs],
    ["Success rate", percent(stats.success_rate)],
    ["Last run", lastRun(stats)],
    ["Average duration", duration(stats.avg_duration_seconds)],
    ["95th percentile", duration(stats.p95_duration_seconds)],
    ["Last success", localTime(stats.last_success_at)],
    ["Last failure", localTime(stats.last_failure_at)],
    ["Failures in a row", h("span", {
      id: "consecutive-failures", className: stats.consecutive_failures ? "bad" : "",
    }, String(stats.consecutive_failures ?? 0))],
    ["Last error", stats.last_error
      ? h("span", { id: "last-error", className: "clip", title: stats.last_error }, stats.last_error)
      : h("span", { id: "last-error", className: "muted" }, "—")],
  ]);
}

function executionRow(run) {
  const outcome = run.is_success ? JSON.stringify(run.result) : run.error_message;
  return h(
    "tr",
    { dataset: { taskId: run.task_id } },
    cell("Started", h("span", { className: "when" }, localTime(run.started_at), h("small", {}, fromNow(run.started_at)))),
    cell("Outcome", outcomeBadge(run.is_success)),
    cell("Duration", duration(run.duration_seconds)),
    cell("Trigger", run.trigger),
    cell("Attempts", run.attempts),
    cell("Result or error", h("span", { className: "clip", title: outcome || "" }, outcome || "—")),
  );
}

function historyRow(event) {
  const { event: name, at, ...rest } = event;
  const extra = Object.entries(rest).map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
  return h(
    "tr",
    {},
    cell("When", h("span", { className: "when" }, localTime(at), h("small", {}, fromNow(at)))),
    cell("Event", h("span", { className: `event event-${name}` }, name)),
    cell("Details", h("span", { className: "clip", title: extra.join(", ") }, extra.join(", ") || "—")),
  );
}

function changeRow(event) {
  return h(
    "tr",
    { dataset: { auditId: event.id, auditAction: event.action } },
    cell("When", when(event.at)),
    cell("Who", actorCell(event)),
    cell("Action", actionBadge(event.action)),
    cell("Changes", changesCell(event)),
  );
}

export function configPage(id) {
  const base = `/tasks/configs/${id}`;
  const state = { offset: 0, is_success: "", changesOffset: 0 };
  const pending = new Map(); // task id -> live state, for runs started here
  const parts = {
    head: h("div", { className: "page-head" }),
    flash: h("div", { id: "flash", "aria-live": "polite" }),
    note: h("div", { id: "schedule-note-box" }),
    details: h("div", {}),
    stats: h("div", {}),
    nextRuns: h("div", { id: "next-runs" }),
    chart: h("div", {}),
    executions: h("div", { id: "executions" }),
    history: h("div", { id: "history" }),
    changes: h("div", { id: "changes" }),
  };

  function flash(text, kind = "info") {
    replace(parts.flash, h("p", { className: `alert alert-${kind}` }, text));
  }

  async function act(label, call) {
    try {
      await call();
      await refresh();
    } catch (error) {
      if (error.status === 401) return;
      flash(`${label}: ${error.message}`, "error");
    }
  }

  // The optional note for pause, resume and stop: built once, so a refresh (every few
  // seconds) never takes away what is being typed; shown while one of those actions fits.
  const noteInput = h("input", {
    id: "action-note", name: "note", maxLength: NOTE_MAX, className: "grow",
    placeholder: "why (optional): kept as the schedule's note until the next action",
  });
  const noteField = h("div", { className: "note-field", id: "action-note-field", hidden: true },
    h("label", { htmlFor: noteInput.id }, "Note for pause, resume or stop"), noteInput);

  function buttons(config) {
    // Only what the signed-in role may do: operators run and steer the schedule, admins edit.
    const allowed = can(NEEDS.schedule) ? actionsFor(config) : [];
    noteField.hidden = !allowed.some((action) => NOTED_ACTIONS.includes(action));
    const actions = allowed.map((action) =>
      h("button", {
        type: "button",
        dataset: { action },
        onclick: () => act(action, async () => {
          const note = NOTED_ACTIONS.includes(action) ? noteInput.value.trim() : "";
          await api.request("POST", `${base}/actions/${action}`, note ? { body: { note } } : {});
          if (note) noteInput.value = "";
          flash(`Schedule ${action === "stop" ? "stopped" : `${action}${action.endsWith("e") ? "d" : "ed"}`}.`);
        }),
      }, action[0].toUpperCase() + action.slice(1)));
    const runNow = can(NEEDS.run) && h("button", {
      type: "button",
      className: "primary",
      dataset: { action: "run" },
      onclick: () => act("Run now", async () => {
        const queued = await api.request("POST", `${base}/run`);
        pending.set(queued.task_id, { state: "queued" });
        flash(`Run ${queued.task_id.slice(0, 8)} queued.`);
      }),
    }, "Run now");
    const editable = can(NEEDS.edit);
    const edit = editable && h("a", { href: `#/configs/${id}/edit`, className: "button", dataset: { action: "edit" } }, "Edit");
    const remove = editable && h("button", {
      type: "button",
      className: "danger",
      dataset: { action: "delete" },
      onclick: () => {
        if (!confirm(`Delete "${config.name}"? Its schedule stops; its run records stay.`)) return;
        act("Delete", async () => {
          await api.request("DELETE", base);
          window.dispatchEvent(new CustomEvent("taskhub:navigate", { detail: "#/configs" }));
        });
      },
    }, "Delete");
    return h("div", { className: "actions" }, runNow, actions, edit, remove);
  }

  async function livePending() {
    // Runs started from this page: queued -> running -> gone once their record is listed.
    const entries = await Promise.all(
      [...pending.keys()].map(async (taskId) => [taskId, await api.get(`/tasks/executions/${taskId}`)]),
    );
    for (const [taskId, run] of entries) {
      if (run.state === "finished") {
        pending.delete(taskId);
        flash(`Run ${taskId.slice(0, 8)} ${run.is_success ? "succeeded" : "failed"} in ${duration(run.duration_seconds)}.`, run.is_success ? "ok" : "error");
      } else {
        pending.set(taskId, run);
        flash(`Run ${taskId.slice(0, 8)} is ${run.state}${run.started_at ? `, started ${fromNow(run.started_at)}` : ""}.`);
      }
    }
  }

  async function refresh() {
    const [config, runs, chartRuns, history, changes, channels, upcoming] = await Promise.all([
      api.get(base, { include_stats: true }),
      api.get(`${base}/executions`, { limit: EXECUTIONS_LIMIT, offset: state.offset, is_success: state.is_success }),
      api.get(`${base}/executions`, { limit: CHART_RUNS }),
      api.get(`${base}/history`, { limit: HISTORY_LIMIT }),
      api.get(`${base}/audit`, { limit: CHANGES_LIMIT, offset: state.changesOffset }),
      api.get("/notifications/channels"),
      api.get(`${base}/next-runs`, { count: NEXT_RUNS }),
      livePending(),
    ]);
    document.title = `${config.name} · Taskhub`;
    replace(parts.head, h("h1", {}, config.name, " ", statusBadge(config.schedule_status)), buttons(config));
    replace(parts.note, config.schedule_note
      ? h("p", { className: "alert alert-warn schedule-note", role: "note" },
        h("strong", {}, "Note: "), h("span", { id: "schedule-note" }, config.schedule_note))
      : null);
    replace(parts.details, details(config, new Map(channels.map((c) => [c.id, c]))));
    replace(parts.stats, statsBlock(config.stats));
    replace(parts.nextRuns, config.scheduler_type === "manual"
      ? h("p", { className: "muted" }, "Manual: only run by hand.")
      : previewList(upcoming, "next-runs-list"));
    replace(parts.chart, durationChart([...chartRuns.items].reverse()));
    replace(
      parts.executions,
      table(["Started", "Outcome", "Duration", "Trigger", "Attempts", "Result or error"], runs.items.map(executionRow), "No runs match."),
      pager(runs, (offset) => {
        state.offset = offset;
        refresh();
      }, "runs"),
    );
    replace(parts.history, table(["When", "Event", "Details"], history.items.map(historyRow), "No events yet."));
    replace(
      parts.changes,
      table(["When", "Who", "Action", "Changes"], changes.items.map(changeRow), "No changes recorded."),
      changes.total > CHANGES_LIMIT ? pager(changes, (offset) => {
        state.changesOffset = offset;
        refresh();
      }, "changes") : null,
    );
  }

  async function load() {
    await refresh();
    const filter = h(
      "select",
      { id: "executions-filter", name: "is_success" },
      h("option", { value: "" }, "all runs"),
      h("option", { value: "true" }, "succeeded"),
      h("option", { value: "false" }, "failed"),
    );
    filter.addEventListener("change", () => {
      state.is_success = filter.value;
      state.offset = 0;
      refresh();
    });
    return h(
      "article",
      { className: "config-page", id: "config-page" },
      h("p", { className: "crumbs" }, h("a", { href: "#/configs" }, "‹ All configs")),
      parts.head,
      noteField,
      parts.note,
      parts.flash,
      h("div", { className: "columns" },
        h("section", { className: "card" }, h("h2", {}, "Configuration"), parts.details),
        h("section", { className: "card" }, h("h2", {}, "Runs"), parts.stats, parts.chart)),
      h("section", { className: "card" },
        h("div", { className: "section-head" }, h("h2", {}, "Executions"), h("label", {}, "Show ", filter)),
        parts.executions),
      h("section", { className: "card" }, h("h2", {}, `Next ${NEXT_RUNS} runs`), parts.nextRuns),
      h("section", { className: "card" }, h("h2", {}, "Schedule history"), parts.history),
      h("section", { className: "card" }, h("h2", {}, "Changes"), parts.changes),
    );
  }

  return { load, refresh };
}
