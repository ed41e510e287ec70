// A drawing's strokes in the admin: replayed in the order they were drawn, at an
// even pace along the pen's path (the recorded timing is never read: a tablet's
// ten points a second and a mouse's hundred replay alike), or stepped through
// point by point with the slider.
(() => {
  "use strict";

  function mount(box) {
    const canvas = box.querySelector("canvas");
    const slider = box.querySelector("input[type=range]");
    const button = box.querySelector("button");
    const said = box.querySelector("span");
    const strokes = JSON.parse(canvas.dataset.strokes);
    const width = Number(canvas.dataset.width);
    const ctx = canvas.getContext("2d");
    const total = strokes.reduce((n, s) => n + s.length, 0);
    let frame = null;

    // The first `count` points, in the order drawn.
    function draw(count) {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.lineWidth = width;
      ctx.strokeStyle = "#111";
      let left = count;
      let current = 0;
      strokes.forEach((stroke, index) => {
        if (left <= 0) return;
        const shown = stroke.slice(0, left);
        left -= shown.length;
        current = index + 1;
        ctx.beginPath();
        ctx.moveTo(shown[0][0], shown[0][1]);
        shown.forEach(([x, y]) => ctx.lineTo(x, y));
        // A dot (one point) is drawn as a tiny segment so the round cap shows.
        if (shown.length === 1) ctx.lineTo(shown[0][0] + 0.01, shown[0][1]);
        ctx.stroke();
      });
      slider.value = String(count);
      said.textContent = count
        ? `stroke ${current} of ${strokes.length} · point ${count} of ${total}`
        : `${strokes.length} stroke(s), ${total} points`;
    }

    // Point by point at an even speed along the path: each point is shown when
    // the replay has covered the path length up to it.
    function replay() {
      cancelAnimationFrame(frame);
      const along = [];
      let length = 0;
      strokes.forEach((stroke) => {
        stroke.forEach(([x, y], i) => {
          if (i) length += Math.hypot(x - stroke[i - 1][0], y - stroke[i - 1][1]);
          along.push(length);
        });
      });
      const seconds = Math.min(3, 0.6 + length / 600);
      const started = performance.now();
      const step = (now) => {
        const covered = (length * (now - started)) / (seconds * 1000);
        let count = 0;
        while (count < total && along[count] <= covered) count += 1;
        draw(Math.max(1, count));
        if (count < total) frame = requestAnimationFrame(step);
      };
      frame = requestAnimationFrame(step);
    }

    slider.addEventListener("input", () => {
      cancelAnimationFrame(frame);
      draw(Number(slider.value));
    });
    button.addEventListener("click", replay);
    draw(total);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".pen-replay").forEach(mount);
  });
})();
