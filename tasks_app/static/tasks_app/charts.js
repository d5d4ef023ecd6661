"use strict";
// The status page's live charts: GET /api/charts (tasks_app/charts.py: one
// sample per step of the gateway's metrics, the last 15 minutes) drawn with
// uPlot, asked again just after each step ends. `window.wwCharts` holds the
// last series read and the plots, for a person's console and the UI tests.
(function () {
  const OUTCOMES = [
    ["succeeded", "#16a34a"],
    ["failed", "#dc2626"],
    ["timed_out", "#f59e0b"],
    ["cancelled", "#6b7280"],
    ["lost", "#7c2d12"],  // attempts lost (no answer, the worker gone): their runs are tried again or fail
  ];
  const HEIGHT = 130;
  const state = { data: null, plots: {}, polls: 0 };
  window.wwCharts = state;

  const hhmm = (s) => new Date(s * 1000).toISOString().slice(11, 16);
  const axes = (unit) => [
    // uPlot picks round minutes (tzDate below puts them in UTC); written 24-hour, as the page's times.
    { space: 70, font: "11px system-ui", values: (u, splits) => splits.map(hhmm) },
    { size: 50, label: unit, labelSize: 14, labelFont: "11px system-ui", font: "11px system-ui" },
  ];
  const line = (label, stroke, extra) =>
    // uPlot's own rule for points: drawn while samples are sparse (a lone
    // sample shows as a dot), left out once they crowd the line.
    Object.assign({ label, stroke, width: 1.5, spanGaps: false }, extra);
  const time = { label: "UTC", value: (u, s) => (s == null ? "—" : new Date(s * 1000).toISOString().slice(11, 19)) };
  const fixed = (digits) => (u, v) => (v == null ? "—" : v.toFixed(digits));

  // Each chart: its series after the time axis, and how its columns come out of the JSON.
  const CHARTS = {
    runs: {
      unit: "runs/s",
      series: OUTCOMES.map(([name, colour]) =>
        line(name.replace("_", " "), colour, { value: fixed(2), paths: uPlot.paths.stepped({ align: -1 }) })),
      columns: (d) => OUTCOMES.map(([name]) => d.ended[name].map((n) => n / d.step)),
    },
    lateness: {
      unit: "ms",
      // A step without runs has no lateness, so a busy step between quiet ones is a lone dot: always drawn.
      series: [["p50", "#2563eb"], ["p99", "#9333ea"]].map(([label, colour]) =>
        line(label, colour, { value: fixed(1), points: { show: true, size: 4, fill: colour } })),
      columns: (d) => [d.lateness_p50, d.lateness_p99].map((c) => c.map((s) => (s == null ? null : s * 1000))),
    },
    queue: {
      unit: "runs",
      series: [line("queued", "#0f766e", { value: fixed(0), fill: "rgba(15,118,110,.1)" })],
      columns: (d) => [d.queue_depth],
    },
    workers: {
      unit: "workers",
      series: [line("connected", "#1d4ed8", { value: fixed(0), paths: uPlot.paths.stepped({ align: 1 }) })],
      columns: (d) => [d.workers],
    },
  };

  function make(name, box) {
    const spec = CHARTS[name];
    const opts = {
      width: box.clientWidth,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),  // the page's times are UTC
      height: HEIGHT,
      series: [time, ...spec.series],
      axes: axes(spec.unit),
      scales: {
        x: { range: () => windowRange() },
        y: { range: (u, min, max) => [0, Math.max(max || 0, 1) * 1.1] },
      },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    };
    return new uPlot(opts, [[], ...spec.series.map(() => [])], box);
  }

  // The x axis is always the last 15 minutes, up to the newest sample (or
  // now), and half a step past it so the newest dot is not cut in half.
  function windowRange() {
    const d = state.data;
    const step = d ? d.step : 5;
    const end = d && d.at.length ? d.at[d.at.length - 1] : Date.now() / 1000;
    return [end - step * (d ? d.points : 180), end + step / 2];
  }

  function draw(d) {
    state.data = d;
    for (const [name, spec] of Object.entries(CHARTS)) {
      state.plots[name].setData([d.at, ...spec.columns(d)]);
    }
    const note = document.getElementById("charts-note");
    note.firstChild.textContent = d.sampled
      ? `(a sample every ${d.step} s, ${d.at.length} of ${d.points} so far, from this gateway's `
      : "(nothing to chart: this process runs no scheduler; the gateway's own page has the charts of its ";
  }

  async function poll() {
    try {
      const response = await fetch("/api/charts", { headers: { Accept: "application/json" } });
      if (response.ok) draw(await response.json());
    } catch (err) {
      console.warn("charts refresh failed", err);
    } finally {
      state.polls += 1;
      // Just after the gateway's next sample (they fall on multiples of the step).
      const step = (state.data ? state.data.step : 5) * 1000;
      setTimeout(poll, step - (Date.now() % step) + 300);
    }
  }

  function start() {
    for (const box of document.querySelectorAll("#charts .chart")) {
      state.plots[box.dataset.chart] = make(box.dataset.chart, box);
    }
    window.addEventListener("resize", () => {
      for (const [name, plot] of Object.entries(state.plots)) {
        const box = document.querySelector(`#charts .chart[data-chart="${name}"]`);
        plot.setSize({ width: box.clientWidth, height: HEIGHT });
      }
    });
    poll();
  }

  start();
})();
