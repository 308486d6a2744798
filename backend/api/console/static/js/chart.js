// Run durations over time as an inline SVG: one dot per run (green succeeded, red failed),
// x = start time, y = duration. Drawn here, no chart library needed for a scatter plot.

import { h, s } from "./dom.js";
import { duration, localTime } from "./format.js";

const W = 720;
const H = 200;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

export function durationChart(runs) {
  if (!runs.length) return h("p", { className: "muted empty" }, "No runs yet.");
  const times = runs.map((run) => Date.parse(run.started_at));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const span = Math.max(t1 - t0, 1);
  const yMax = niceMax(Math.max(...runs.map((run) => run.duration_seconds)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + (runs.length === 1 ? plotW / 2 : ((t - t0) / span) * plotW);
  const y = (d) => PAD.top + plotH - (d / yMax) * plotH;

  const grid = [0, 0.5, 1].map((f) => [
    s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(f * yMax), y2: y(f * yMax), class: "chart-grid" }),
    s("text", { x: PAD.left - 6, y: y(f * yMax) + 4, "text-anchor": "end", class: "chart-label" }, duration(f * yMax)),
  ]);
  const dots = runs.map((run) =>
    s(
      "circle",
      {
        cx: x(Date.parse(run.started_at)).toFixed(1),
        cy: y(run.duration_seconds).toFixed(1),
        r: 4,
        class: run.is_success ? "dot dot-ok" : "dot dot-failed",
      },
      s("title", {}, `${localTime(run.started_at)}: ${run.is_success ? "succeeded" : "failed"} in ${duration(run.duration_seconds)}`),
    ),
  );
  const axis = [
    s("text", { x: PAD.left, y: H - 8, class: "chart-label" }, localTime(new Date(t0).toISOString())),
    s("text", { x: W - PAD.right, y: H - 8, "text-anchor": "end", class: "chart-label" }, localTime(new Date(t1).toISOString())),
  ];
  const ok = runs.filter((run) => run.is_success).length;
  return h(
    "figure",
    { className: "chart" },
    s(
      "svg",
      { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Run durations over time", id: "duration-chart" },
      grid,
      dots,
      axis,
    ),
    h(
      "figcaption",
      {},
      h("span", { className: "legend legend-ok" }, `${ok} succeeded`),
      h("span", { className: "legend legend-failed" }, `${runs.length - ok} failed`),
      h("span", { className: "muted" }, ` · last ${runs.length} runs, duration by start time`),
    ),
  );
}
