// The draw page: live answers, the probabilities, what the model saw, and
// "Wrong? It's a …" to keep the drawings the model gets wrong (and to correct
// one's own correction while it waits for review).
(() => {
  "use strict";

  const result = document.getElementById("result");
  const digitEl = document.getElementById("prediction-digit");
  const textEl = document.getElementById("prediction-text");
  const confidenceEl = document.getElementById("prediction-confidence");
  const inputImg = document.getElementById("model-input");
  const inputEmpty = document.getElementById("model-input-empty");
  const bars = Array.from(document.querySelectorAll("#bars li"));
  const correction = document.getElementById("correction");
  const correctionNote = document.getElementById("correction-note");
  const announce = Digits.settledAnnouncer(document.getElementById("announce"));

  const pad = Digits.mountPad(result, {
    onChange() {
      correctionNote.textContent = "";
    },
    onResult: showPrediction,
    onIdle: showIdle,
    onError: showError,
  });

  function setBars(probabilities) {
    const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
    bars.forEach((li, d) => {
      const p = probabilities ? probabilities[d] : 0;
      li.querySelector(".bar-fill").style.width = `${(p * 100).toFixed(1)}%`;
      li.querySelector(".bar-value").textContent = probabilities ? `${(p * 100).toFixed(1)}%` : "–";
      li.classList.toggle("top", d === top);
      li.setAttribute("aria-label", probabilities ? `${d}: ${(p * 100).toFixed(0)} percent` : `${d}`);
    });
  }

  function showIdle(message) {
    result.classList.remove("unsure");
    result.dataset.digit = "";
    digitEl.textContent = "?";
    textEl.textContent = message || "Draw a digit to see what the model thinks.";
    confidenceEl.textContent = "";
    announce(message || "");
    setBars(null);
    inputImg.hidden = true;
    inputEmpty.hidden = false;
    correction.hidden = true;
  }

  function showError(message) {
    result.classList.remove("unsure");
    result.dataset.digit = "";
    digitEl.textContent = "!";
    textEl.textContent = message;
    announce(message);
    confidenceEl.textContent = "";
    correction.hidden = true;
  }

  function showPrediction(body) {
    const sure = body.sure; // the server's threshold, one definition
    result.dataset.digit = String(body.digit);
    result.classList.toggle("unsure", !sure);
    digitEl.textContent = String(body.digit);
    if (sure) {
      textEl.textContent = `It's ${Digits.aDigit(body.digit)}.`;
    } else {
      const ranked = body.probabilities.map((p, d) => [p, d]).sort((a, b) => b[0] - a[0]);
      textEl.textContent = `Not sure — ${Digits.aDigit(ranked[0][1])} or ${Digits.aDigit(ranked[1][1])}?`;
    }
    const read = (body.views || []).includes("pen") ? "picture and pen" : "picture";
    confidenceEl.textContent = `${(body.confidence * 100).toFixed(1)}% confident · model v${body.model_version} · read the ${read}`;
    announce(`${textEl.textContent} ${(body.confidence * 100).toFixed(0)} percent confident.`);
    result.dataset.views = (body.views || ["image"]).join(" ");
    setBars(body.probabilities);
    if (body.input) {
      inputImg.src = body.input;
      inputImg.hidden = false;
      inputEmpty.hidden = true;
    }
    correction.hidden = false;
    disableChoice(body.digit);
  }

  // The digit already said (the model's answer, or the label the server kept) is not offered.
  function disableChoice(digit) {
    correction.querySelectorAll("button").forEach((b) => {
      b.disabled = Number(b.dataset.digit) === digit;
    });
  }

  // What the server kept, in words: it may differ from the button pressed (the same
  // picture was already in the dataset, labelled by someone else or reviewed).
  function savedNote(body, asked) {
    const kept = Digits.aDigit(body.label);
    if (body.relabelled) return `Changed: saved as ${kept} now — thanks for checking.`;
    if (!body.duplicate) {
      // Only approved drawings are trained on: say so while it waits for review.
      return body.status === "approved"
        ? `Thanks! Saved as ${kept} — the next model learns from it.`
        : `Thanks! Saved as ${kept}. Once staff approve it, the next model learns from it.`;
    }
    if (body.label === asked) return `Already saved as ${kept} — thanks.`;
    return `This drawing is already in the dataset as ${kept}; it was not changed. A curator reviews the dataset.`;
  }

  // "Wrong? It's a …": store the drawing with the right label (source "correction").
  correction.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-digit]");
    if (!button || pad.isEmpty()) return;
    const label = Number(button.dataset.digit);
    correctionNote.textContent = "Saving…";
    try {
      const { ok, body } = await Digits.postJson(correction.dataset.endpoint, {
        image: pad.exportPng(),
        strokes: pad.exportStrokes(),
        label,
        source: "correction",
      });
      correctionNote.textContent = ok ? savedNote(body, label) : body.error || "Could not save the drawing.";
      if (ok) disableChoice(body.label);
    } catch (err) {
      correctionNote.textContent = "Cannot reach the server; nothing was saved.";
    }
  });

  showIdle();
})();
