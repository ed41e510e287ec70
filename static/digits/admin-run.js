// The admin's training-run page: poll the run's API and update the progress bar,
// status, log and device; reload once the run ends, to show the report and gate.
// Configured by its <script> tag: data-url (the run's API) and data-status.
(() => {
  "use strict";

  const script = document.currentScript;
  const url = script.dataset.url;
  const FINISHED = ["succeeded", "failed", "cancelled"];
  const bar = document.querySelector("progress.run-progress");
  const text = document.querySelector(".run-progress-text");
  const field = (name) => document.querySelector(`.field-${name} .readonly`);

  const heading = document.querySelector("#content > h2");

  // The run's own words and bar value (TrainingRun.progress_text / progress_percent):
  // loading with counts, the epoch, or testing, with the time left.
  function showProgress(run) {
    if (bar) {
      if (run.progress_percent === null) bar.removeAttribute("value"); // indeterminate
      else bar.value = run.progress_percent;
      bar.dataset.status = run.status;
      bar.dataset.phase = run.status === "running" && run.phase === "loading" ? "loading" : "training";
    }
    if (text) text.textContent = run.progress_text;
  }

  async function poll() {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return setTimeout(poll, 3000);
      const run = await response.json();
      showProgress(run);
      if (heading) heading.textContent = `run ${run.id} (${run.architecture}, ${run.status})`;
      if (field("status")) field("status").textContent = run.status;
      if (field("log_tail")) field("log_tail").textContent = run.log_tail;
      if (field("device") && run.device) field("device").textContent = run.device;
      if (FINISHED.includes(run.status)) {
        document.body.dataset.runFinished = run.status;
        setTimeout(() => window.location.reload(), 800);
        return;
      }
    } catch (err) {
      /* the server may be restarting: keep trying */
    }
    setTimeout(poll, 1000);
  }

  if (FINISHED.includes(script.dataset.status)) document.body.dataset.runFinished = script.dataset.status;
  else poll();
})();
