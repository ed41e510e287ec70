// The contribute page: draw the digit asked for (or pick one), see the model's
// guess, add it to the dataset, and get the next digit we need most.
(() => {
  "use strict";

  const result = document.getElementById("result");
  const guess = document.getElementById("guess");
  const submit = document.getElementById("submit");
  const picker = document.getElementById("picker");
  const targetEl = document.getElementById("target-digit");
  const placeholder = document.getElementById("pad-placeholder");
  const thanks = document.getElementById("thanks");
  const totalEl = document.getElementById("dataset-total");
  let needed = picker.dataset.needed.split(",").map(Number);
  let target = Number(targetEl.textContent);
  const cap = (text) => text.charAt(0).toUpperCase() + text.slice(1);
  let lastResult = null; // the model's latest answer for the drawing on the pad
  const announce = Digits.settledAnnouncer(document.getElementById("announce"));

  // The guess against the digit asked for: said again when the digit changes,
  // so picking the digit the model saw never leaves "if you drew a 9…".
  function showGuess() {
    if (!lastResult) return;
    const body = lastResult;
    const match = body.digit === target;
    guess.textContent = match
      ? `${cap(Digits.aDigit(body.digit))} (${(body.confidence * 100).toFixed(0)}%) — looks right.`
      : `${cap(Digits.aDigit(body.digit))}? (${(body.confidence * 100).toFixed(0)}%) — if you drew ${Digits.aDigit(target)}, add it anyway: those teach the most.`;
    announce(guess.textContent);
  }

  const pad = Digits.mountPad(result, {
    onChange({ empty }) {
      submit.disabled = empty;
      if (!empty) thanks.hidden = true;
    },
    onResult(body) {
      lastResult = body;
      showGuess();
    },
    onIdle(message) {
      lastResult = null;
      guess.textContent = message || "Start drawing…";
      announce(message || "");
    },
    onError(message) {
      guess.textContent = message;
      announce(message);
    },
  });

  function setTarget(digit) {
    target = digit;
    targetEl.textContent = String(digit);
    placeholder.textContent = `draw ${Digits.aDigit(digit)}`;
    picker.querySelectorAll("button").forEach((b) => {
      const checked = Number(b.dataset.digit) === digit;
      b.setAttribute("aria-checked", String(checked));
      b.tabIndex = checked ? 0 : -1; // a radio group is one tab stop
    });
    showGuess();
  }

  picker.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-digit]");
    if (button) setTarget(Number(button.dataset.digit));
  });

  // Arrow keys move the choice, as in any radio group (Home and End: 0 and 9).
  picker.addEventListener("keydown", (event) => {
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    let digit;
    if (event.key in moves) digit = (target + moves[event.key] + 10) % 10;
    else if (event.key === "Home") digit = 0;
    else if (event.key === "End") digit = 9;
    else return;
    event.preventDefault();
    setTarget(digit);
    picker.querySelector(`button[data-digit="${digit}"]`).focus();
  });
  setTarget(target);

  submit.addEventListener("click", async () => {
    if (pad.isEmpty()) return;
    submit.disabled = true;
    thanks.hidden = false;
    thanks.textContent = "Saving…";
    try {
      const { ok, status, body } = await Digits.postJson(picker.dataset.endpoint, {
        image: pad.exportPng(),
        strokes: pad.exportStrokes(),
        label: target,
      });
      if (!ok) {
        thanks.textContent = body.error || `Not saved (error ${status}).`;
        submit.disabled = false;
        return;
      }
      totalEl.textContent = String(body.total);
      // Say what the server's check found: a new drawing, this very picture, or
      // one very like a drawing this browser sent moments ago.
      const already = {
        same_picture: "We already had exactly this picture — nothing new was added.",
        your_near_copy: `This is very like ${Digits.aDigit(body.label)} you sent a moment ago, so it was not added again. Try drawing it another way!`,
      };
      thanks.textContent =
        status === 201
          ? `Thank you! Your ${body.label} is drawing #${body.total} in the dataset.`
          : already[body.duplicate_of] || already.same_picture;
      thanks.dataset.saved = String(body.id);
      thanks.scrollIntoView({ block: "nearest", behavior: "smooth" });
      // Next, ask for the digit we need most (rotate so we do not repeat).
      needed = needed.filter((d) => d !== body.label).concat([body.label]);
      setTarget(needed[0]);
      pad.clear();
    } catch (err) {
      thanks.textContent = "Cannot reach the server; nothing was saved. Try again.";
      submit.disabled = false;
    }
  });

  setTarget(target);
  submit.disabled = true;
})();
