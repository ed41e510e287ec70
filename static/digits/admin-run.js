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

  function left(seconds) {
    if (!seconds) return "";
    const s = Math.ceil(seconds);
    return s >= 90 ? ` · about ${Math.round(s / 60)} min left` : ` · about ${s} s left`;
  }

  // Loading (before the first epoch): the step, its counts and its own ETA. Then
  // training: percent, epoch and the ETA of the whole run; then testing and export.
  // The bar follows whichever phase is on.
  function showProgress(run) {
    const loading = run.status === "running" && run.phase === "loading";
    const eta = run.status === "running" ? left(run.eta_seconds) : "";
    let percent;
    let line;
    if (loading) {
      percent = run.phase_total ? Math.floor((run.phase_done / run.phase_total) * 100) : null;
      const counts = run.phase_total ? ` ${run.phase_done.toLocaleString()} of ${run.phase_total.toLocaleString()}` : "";
      line = `Loading data: ${run.phase_detail}${counts}${eta}`;
    } else if (run.status === "running" && run.phase === "testing") {
      percent = 100;
      line = `Training done · testing and exporting the model${eta}`;
    } else {
      percent = Math.round(run.progress * 100);
      const epoch = run.steps_per_epoch ? ` · epoch ${run.epoch} of ${run.epochs}` : "";
      line = `${percent}%${epoch}${eta}`;
    }
    if (bar) {
      if (percent === null) bar.removeAttribute("value"); // a step without counts: indeterminate
      else bar.value = percent;
      bar.dataset.status = run.status;
      bar.dataset.phase = loading ? "loading" : "training";
    }
    if (text) text.textContent = line;
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
