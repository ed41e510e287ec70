// The drawing pad: Pointer Events in, a 256×256 RGBA PNG out, live predictions back.
//
// Strokes are kept as points in 256×256 canvas units. The visible canvas is
// redrawn from them at the screen's pixel density (crisp on high-DPI screens,
// any CSS size), and the PNG sent to the server is rendered from the same
// strokes on an offscreen 256×256 canvas: one drawing, two resolutions.
(() => {
  "use strict";

  const pad = document.getElementById("pad");
  const frame = pad.parentElement;
  const SIZE = Number(pad.dataset.size);
  const STROKE = Number(pad.dataset.stroke);
  const THRESHOLD = Number(pad.dataset.threshold);
  const ENDPOINT = pad.dataset.endpoint;
  const DEBOUNCE_MS = 120;

  const result = document.getElementById("result");
  const digitEl = document.getElementById("prediction-digit");
  const textEl = document.getElementById("prediction-text");
  const confidenceEl = document.getElementById("prediction-confidence");
  const inputImg = document.getElementById("model-input");
  const inputEmpty = document.getElementById("model-input-empty");
  const undoButton = document.getElementById("undo");
  const clearButton = document.getElementById("clear");
  const bars = Array.from(document.querySelectorAll("#bars li"));

  const strokes = []; // each: array of [x, y] in canvas units
  let active = null; // the stroke being drawn, and its pointer
  let activePointer = null;
  let debounceTimer = null;
  let requestSeq = 0; // newest request sent
  let inFlight = 0;
  let queued = false; // a change arrived while a request was in flight
  // Bumped on every change; an answer is shown with the version it answers, so
  // anyone (people, tests) can tell a current answer from a stale one.
  let drawingVersion = 0;

  // --- rendering ------------------------------------------------------------
  function paint(ctx, scale) {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    ctx.setTransform(scale, 0, 0, scale, 0, 0);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = STROKE;
    ctx.strokeStyle = "#000";
    ctx.fillStyle = "#000";
    for (const stroke of strokes) {
      if (stroke.length === 1) {
        ctx.beginPath();
        ctx.arc(stroke[0][0], stroke[0][1], STROKE / 2, 0, Math.PI * 2);
        ctx.fill();
        continue;
      }
      ctx.beginPath();
      ctx.moveTo(stroke[0][0], stroke[0][1]);
      for (let i = 1; i < stroke.length; i++) ctx.lineTo(stroke[i][0], stroke[i][1]);
      ctx.stroke();
    }
  }

  function resizeBacking() {
    const rect = pad.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const px = Math.max(SIZE, Math.round(rect.width * dpr));
    if (pad.width !== px) {
      pad.width = px;
      pad.height = px;
    }
    redraw();
  }

  function changed() {
    drawingVersion++;
    pad.dataset.version = String(drawingVersion);
    redraw();
  }

  function redraw() {
    paint(pad.getContext("2d"), pad.width / SIZE);
    frame.classList.toggle("has-ink", strokes.length > 0);
    undoButton.disabled = strokes.length === 0;
    clearButton.disabled = strokes.length === 0;
  }

  function exportPng() {
    const off = document.createElement("canvas");
    off.width = SIZE;
    off.height = SIZE;
    paint(off.getContext("2d"), 1);
    return off.toDataURL("image/png");
  }

  // --- input ----------------------------------------------------------------
  function toCanvas(event) {
    const rect = pad.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) / rect.width) * SIZE,
      ((event.clientY - rect.top) / rect.height) * SIZE,
    ];
  }

  pad.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || active) return;
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    activePointer = event.pointerId;
    active = [toCanvas(event)];
    strokes.push(active);
    changed();
  });

  pad.addEventListener("pointermove", (event) => {
    if (!active || event.pointerId !== activePointer) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) active.push(toCanvas(e));
    changed();
    schedulePrediction(DEBOUNCE_MS);
  });

  function endStroke(event) {
    if (!active || event.pointerId !== activePointer) return;
    active = null;
    activePointer = null;
    schedulePrediction(0);
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  // No scrolling, zooming or text selection while a finger draws.
  pad.addEventListener("touchstart", (e) => e.preventDefault(), { passive: false });
  pad.addEventListener("contextmenu", (e) => e.preventDefault());

  function undo() {
    if (!strokes.length) return;
    strokes.pop();
    active = null;
    changed();
    schedulePrediction(0);
  }

  function clear() {
    strokes.length = 0;
    active = null;
    changed();
    schedulePrediction(0);
  }

  undoButton.addEventListener("click", undo);
  clearButton.addEventListener("click", clear);
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
    } else if (event.key === "Escape") {
      clear();
    }
  });

  // --- prediction -----------------------------------------------------------
  function schedulePrediction(delay) {
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(predict, delay);
  }

  async function predict() {
    const version = drawingVersion;
    if (!strokes.length) {
      requestSeq++; // any answer still in flight is now stale
      showIdle();
      result.dataset.version = String(version);
      return;
    }
    if (inFlight) {
      queued = true; // one request at a time; send the newest drawing next
      return;
    }
    const seq = ++requestSeq;
    inFlight++;
    result.dataset.state = "pending";
    try {
      const response = await fetch(ENDPOINT, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ image: exportPng(), include_input: true }),
      });
      const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
      if (seq !== requestSeq) return;
      result.dataset.version = String(version);
      if (response.ok) showPrediction(body);
      else if (body.code === "blank_drawing") showIdle("Keep drawing — that is too little ink to read.");
      else showError(body.error || `The server answered ${response.status}.`);
    } catch (err) {
      if (seq === requestSeq) showError("Cannot reach the server. Check your connection and draw again.");
    } finally {
      inFlight--;
      if (queued) {
        queued = false;
        predict();
      } else if (seq === requestSeq && result.dataset.state === "pending") {
        result.dataset.state = "ready";
      }
    }
  }

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
    result.dataset.state = "idle";
    result.classList.remove("unsure");
    digitEl.textContent = "?";
    textEl.textContent = message || "Draw a digit to see what the model thinks.";
    confidenceEl.textContent = "";
    result.dataset.digit = "";
    setBars(null);
    inputImg.hidden = true;
    inputEmpty.hidden = false;
  }

  function showError(message) {
    result.dataset.state = "error";
    result.classList.remove("unsure");
    digitEl.textContent = "!";
    textEl.textContent = message;
    confidenceEl.textContent = "";
    result.dataset.digit = "";
  }

  function showPrediction(body) {
    const sure = body.confidence >= THRESHOLD;
    result.dataset.state = "ready";
    result.dataset.digit = String(body.digit);
    result.classList.toggle("unsure", !sure);
    digitEl.textContent = String(body.digit);
    if (sure) {
      textEl.textContent = `It's a ${body.digit}.`;
    } else {
      const ranked = body.probabilities.map((p, d) => [p, d]).sort((a, b) => b[0] - a[0]);
      textEl.textContent = `Not sure — a ${ranked[0][1]} or a ${ranked[1][1]}?`;
    }
    confidenceEl.textContent = `${(body.confidence * 100).toFixed(1)}% confident · model v${body.model_version}`;
    setBars(body.probabilities);
    if (body.input) {
      inputImg.src = body.input;
      inputImg.hidden = false;
      inputEmpty.hidden = true;
    }
  }

  window.addEventListener("resize", resizeBacking);
  resizeBacking();
  showIdle();
})();
