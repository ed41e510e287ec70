// The drawing pad and live prediction, shared by the draw and contribute pages.
//
// Strokes are kept as points in 256×256 canvas units, each [x, y, t] with t in
// milliseconds since the drawing's first point, exactly as pointer events arrive
// (coalesced events included, nothing thinned): contributions send them with the
// PNG, so training can vary how the pen moved. The visible canvas is
// redrawn from them at the screen's pixel density (crisp on high-DPI screens,
// any CSS size), and the PNG sent to the server is rendered from the same
// strokes on an offscreen 256×256 canvas: one drawing, two resolutions.
(() => {
  "use strict";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // POST JSON; answers {ok, status, body} and never throws for HTTP errors.
  async function postJson(url, payload) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(payload),
    });
    const body = await response.json().catch(() => ({ error: `The server answered ${response.status}.` }));
    return { ok: response.ok, status: response.status, body };
  }

  function DigitPad(canvas, { onChange } = {}) {
    const SIZE = Number(canvas.dataset.size);
    const STROKE = Number(canvas.dataset.stroke);
    const PIECE_MARGIN = Number(canvas.dataset.pieceMargin);
    const frame = canvas.parentElement;
    const strokes = [];
    let active = null;
    let activePointer = null;
    let version = 0;
    let startedAt = null; // performance.now() at the drawing's first point
    // What the server accepts (classifier/canvas.py, through the template's data-
    // attributes); a longer drawing is still sent, as a picture only.
    const LIMITS = {
      strokes: Number(canvas.dataset.maxStrokes),
      pointsPerStroke: Number(canvas.dataset.maxPointsPerStroke),
      points: Number(canvas.dataset.maxPoints),
    };

    // (left, top): the pad's point drawn at the context's corner (a piece of it).
    function paint(ctx, scale, left = 0, top = 0) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
      ctx.setTransform(scale, 0, 0, scale, -left * scale, -top * scale);
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.lineWidth = STROKE;
      ctx.strokeStyle = "#000";
      ctx.fillStyle = "#000";
      for (const stroke of strokes) {
        ctx.beginPath();
        if (stroke.length === 1) {
          ctx.arc(stroke[0][0], stroke[0][1], STROKE / 2, 0, Math.PI * 2);
          ctx.fill();
          continue;
        }
        ctx.moveTo(stroke[0][0], stroke[0][1]);
        for (let i = 1; i < stroke.length; i++) ctx.lineTo(stroke[i][0], stroke[i][1]);
        ctx.stroke();
      }
    }

    function redraw() {
      paint(canvas.getContext("2d"), canvas.width / SIZE);
      frame.classList.toggle("has-ink", strokes.length > 0);
    }

    function changed(final) {
      version++;
      canvas.dataset.version = String(version);
      redraw();
      if (onChange) onChange({ final, empty: strokes.length === 0 });
    }

    function resizeBacking() {
      const rect = canvas.getBoundingClientRect();
      const px = Math.max(SIZE, Math.round(rect.width * (window.devicePixelRatio || 1)));
      if (canvas.width !== px) {
        canvas.width = px;
        canvas.height = px;
      }
      redraw();
    }

    function toCanvas(event) {
      const rect = canvas.getBoundingClientRect();
      if (startedAt === null) startedAt = event.timeStamp;
      return [
        ((event.clientX - rect.left) / rect.width) * SIZE,
        ((event.clientY - rect.top) / rect.height) * SIZE,
        Math.max(0, event.timeStamp - startedAt),
      ];
    }

    canvas.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || active) return;
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      activePointer = event.pointerId;
      active = [toCanvas(event)];
      strokes.push(active);
      changed(false);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!active || event.pointerId !== activePointer) return;
      event.preventDefault();
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      for (const e of events.length ? events : [event]) active.push(toCanvas(e));
      changed(false);
    });
    function endStroke(event) {
      if (!active || event.pointerId !== activePointer) return;
      active = null;
      activePointer = null;
      changed(true);
    }
    canvas.addEventListener("pointerup", endStroke);
    canvas.addEventListener("pointercancel", endStroke);
    // No scrolling, zooming or text selection while a finger draws.
    canvas.addEventListener("touchstart", (e) => e.preventDefault(), { passive: false });
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    window.addEventListener("resize", resizeBacking);
    resizeBacking();

    return {
      get version() {
        return version;
      },
      isEmpty: () => strokes.length === 0,
      undo() {
        if (!strokes.length) return;
        strokes.pop();
        active = null;
        changed(true);
      },
      clear() {
        if (!strokes.length) return;
        strokes.length = 0;
        active = null;
        startedAt = null;
        changed(true);
      },
      // How big the ink is for its pen: the longer side of the drawn box (the pen's
      // width included) in pen widths. The server refuses less than the template's
      // data-min-span-to-stroke as a blob (preprocessing.ink_to_model_input), so the
      // page does not ask for it.
      spanInPens() {
        if (!strokes.length) return 0;
        let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
        for (const stroke of strokes) {
          for (const [x, y] of stroke) {
            x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
          }
        }
        return (Math.max(x1 - x0, y1 - y0) + STROKE) / STROKE;
      },
      // The strokes as the API takes them ([x, y, t], 0.1 px, whole ms, clamped to
      // the canvas), or null when the drawing is over the server's limits.
      exportStrokes() {
        const total = strokes.reduce((n, s) => n + s.length, 0);
        if (!strokes.length || strokes.length > LIMITS.strokes || total > LIMITS.points) return null;
        if (strokes.some((s) => s.length > LIMITS.pointsPerStroke)) return null;
        const clamp = (v) => Math.round(Math.min(SIZE, Math.max(0, v)) * 10) / 10;
        let last = 0;
        return strokes.map((stroke) =>
          stroke.map(([x, y, t]) => {
            last = Math.max(last, Math.round(t)); // never backwards, even across strokes
            return [clamp(x), clamp(y), last];
          }),
        );
      },
      exportPng() {
        const off = document.createElement("canvas");
        off.width = SIZE;
        off.height = SIZE;
        paint(off.getContext("2d"), 1);
        return off.toDataURL("image/png");
      },
      // For a live prediction: only the part of the pad with ink, and where it lies
      // (the API's "canvas" field): the server puts it back on a blank pad and
      // answers as for the whole one, with a quarter of the pixels to decode. The
      // box is classifier/canvas.py's ink_box: the points, the pen's half width
      // and the template's data-piece-margin px, in whole pixels on the pad.
      exportPiece() {
        let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
        for (const stroke of strokes) {
          for (const [x, y] of stroke) {
            x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
          }
        }
        const reach = STROKE / 2 + PIECE_MARGIN;
        const clip = (v) => Math.min(SIZE, Math.max(0, v));
        const left = clip(Math.floor(x0 - reach)), top = clip(Math.floor(y0 - reach));
        const width = clip(Math.ceil(x1 + reach)) - left;
        const height = clip(Math.ceil(y1 + reach)) - top;
        if (!(width >= 8 && height >= 8)) return { image: this.exportPng() };
        const off = document.createElement("canvas");
        off.width = width;
        off.height = height;
        paint(off.getContext("2d"), 1, left, top);
        return {
          image: off.toDataURL("image/png"),
          canvas: { left, top, width: SIZE, height: SIZE },
        };
      },
    };
  }

  // Live predictions for a pad: while the pen moves, at most one request every
  // `intervalMs` (a slow stroke is answered as it grows, not only at pen-up); at
  // once on pen-up; one request in flight at a time, and the latest drawing is
  // what is sent (the pad is read when the request goes, not when it was due).
  // Every answer is tagged with the drawing version it answers (`data-version`
  // on `resultEl`), so stale answers never show.
  // Answers that mean "not a digit yet" rather than an error: the page waits for more ink.
  const IDLE_MESSAGES = {
    blank_drawing: "Keep drawing — that is too little ink to read.",
    too_small: "Keep drawing, or draw bigger — that is too small to read yet.",
  };

  function LivePrediction(pad, resultEl, { endpoint, onResult, onIdle, onError, intervalMs = 120 }) {
    let timer = null;
    let seq = 0;
    let inFlight = false;
    let queued = false;

    const minSpan = Number(document.getElementById("pad").dataset.minSpanToStroke) || 0;

    async function run() {
      const version = pad.version;
      const span = pad.isEmpty() ? 0 : pad.spanInPens();
      if (span < minSpan) {
        // Nothing yet, a dot, or ink too small to be more than a blob: no question
        // to the server (its answer would be a refusal), a word to the person.
        seq++; // an answer still in flight is now stale
        resultEl.dataset.state = "idle";
        resultEl.dataset.version = String(version);
        if (pad.isEmpty()) onIdle();
        else onIdle(span < 2 ? IDLE_MESSAGES.blank_drawing : IDLE_MESSAGES.too_small);
        return;
      }
      if (inFlight) {
        queued = true;
        return;
      }
      const mine = ++seq;
      inFlight = true;
      resultEl.dataset.state = "pending";
      try {
        // The strokes too (null past the API's limits: then the picture alone is read).
        const strokes = pad.exportStrokes();
        const request = { ...pad.exportPiece(), include_input: true };
        if (strokes) request.strokes = strokes;
        const { ok, body } = await postJson(endpoint, request);
        if (mine !== seq) return;
        resultEl.dataset.version = String(version);
        resultEl.dataset.state = ok ? "ready" : IDLE_MESSAGES[body.code] ? "idle" : "error";
        if (ok) onResult(body);
        else if (IDLE_MESSAGES[body.code]) onIdle(IDLE_MESSAGES[body.code]);
        else onError(body.error || "The server could not read the drawing.");
      } catch (err) {
        if (mine === seq) {
          resultEl.dataset.state = "error";
          resultEl.dataset.version = String(version);
          onError("Cannot reach the server. Check your connection and draw again.");
        }
      } finally {
        inFlight = false;
        if (queued) {
          queued = false;
          run();
        }
      }
    }

    function fire() {
      timer = null;
      run();
    }

    return {
      // `final` (pen-up, undo, clear): now. Otherwise: when the interval is up,
      // unless a request is already due (it will carry this change too).
      schedule(final) {
        if (final) {
          clearTimeout(timer);
          fire();
        } else if (timer === null) {
          timer = setTimeout(fire, intervalMs);
        }
      },
    };
  }

  // Undo and Clear as buttons and as keys (Ctrl/Cmd+Z, Esc), disabled on an
  // empty pad. Call ``sync()`` from the pad's onChange.
  function bindUndoClear(pad, undoButton, clearButton) {
    undoButton.addEventListener("click", () => pad.undo());
    clearButton.addEventListener("click", () => pad.clear());
    document.addEventListener("keydown", (event) => {
      if (event.target.closest && event.target.closest("input, textarea, select")) return;
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
        event.preventDefault();
        pad.undo();
      } else if (event.key === "Escape") {
        pad.clear();
      }
    });
    function sync() {
      undoButton.disabled = pad.isEmpty();
      clearButton.disabled = pad.isEmpty();
    }
    sync();
    return { sync };
  }

  // One wiring for every page with the pad partial (templates/includes/pad.html):
  // the pad, Undo/Clear, and live predictions into `resultEl`. `onChange` hears
  // every change after the controls are synced; the rest go to LivePrediction.
  function mountPad(resultEl, { onChange, onResult, onIdle, onError } = {}) {
    const canvas = document.getElementById("pad");
    let controls = null;
    let live = null;
    const pad = DigitPad(canvas, {
      onChange(change) {
        controls.sync();
        if (onChange) onChange(change);
        live.schedule(change.final);
      },
    });
    controls = bindUndoClear(pad, document.getElementById("undo"), document.getElementById("clear"));
    live = LivePrediction(pad, resultEl, { endpoint: canvas.dataset.endpoint, onResult, onIdle, onError });
    return pad;
  }

  // A live region that speaks once an answer settles (nothing new for a moment),
  // not at every answer while a digit is being drawn: 22 announcements for one 8
  // before. Returns announce(text); an empty text cancels what was pending.
  function settledAnnouncer(region, settleMs = 700) {
    let pending = null;
    return (text) => {
      clearTimeout(pending);
      if (!text) return;
      pending = setTimeout(() => {
        if (region.textContent !== text) region.textContent = text;
      }, settleMs);
    };
  }

  // "a 7", "an 8": the article English wants before a digit's name.
  function aDigit(digit) {
    return `${Number(digit) === 8 ? "an" : "a"} ${digit}`;
  }

  window.Digits = { mountPad, postJson, aDigit, settledAnnouncer };
})();
