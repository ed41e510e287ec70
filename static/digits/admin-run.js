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

  async function poll() {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return setTimeout(poll, 3000);
      const run = await response.json();
      const percent = Math.round(run.progress * 100);
      if (bar) {
        bar.value = percent;
        bar.dataset.status = run.status;
      }
      if (text) {
        const eta = run.eta_seconds && run.status === "running" ? ` · about ${Math.ceil(run.eta_seconds)} s left` : "";
        const epoch = run.steps_per_epoch ? ` · epoch ${run.epoch}/${run.epochs}` : "";
        text.textContent = `${percent}%${epoch}${eta}`;
      }
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
