"""The flywheel on real writers: do continental writers' contributions teach the
model to read people like them?

    python benchmarks/flywheel_real.py [--contributors 30] [--timeout 1800]

On a fresh instance started as ``make run`` starts it (web, Celery worker,
embedded Redis, the committed bootstrap model):

1. the 20 held-out UJI writers (``training.sources.ujipen``'s test writers, the
   gate's ``ujipen`` set: Spanish writers, continental 1s and crossed 7s) are read
   through the predict API, digit by digit;
2. the UJI training writers contribute everything they wrote, each from an
   address of their own, with their strokes, through ``POST /api/drawings/``, as
   the page sends them; what the model gets wrong goes in as a correction;
3. staff approve them in the admin and start ``finetune`` through the staff API;
   the real worker trains, the gate judges, the site hot-swaps;
4. the held-out writers are read again; the gate's own before → after on every
   test set (same images, same run: MNIST, the held-out pen writers, …) and its
   verdict are printed, with the time of each phase of the loop.

Contributors and judged writers never overlap. The gate's rules are statistics,
not tuned to this benchmark.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time

import _django  # noqa: F401
from _server import running_app
from flywheel import Site, approve_all, data_url, staff_token

from classifier import canvas
from training.sources import ujipen

BATCH = 64


def page_drawing(digit) -> tuple[list, bytes]:
    """The strokes as the page records them and the PNG it sends."""
    strokes = canvas.strokes_as_json(canvas.timed(ujipen.on_canvas(digit), 8.0))
    return strokes, canvas.render_canvas_png(canvas.parse_strokes(strokes))


def per_digit(
    site: Site, drawings: list[tuple[int, bytes, list]], with_strokes: bool = True
) -> tuple[dict[int, float], int]:
    """Accuracy per digit through ``/api/predict/batch/`` (with the page's strokes,
    as the page sends them, or the picture alone), and the answering version."""
    right, total, version = [0] * 10, [0] * 10, None
    for i in range(0, len(drawings), BATCH):
        chunk = drawings[i : i + BATCH]
        body = {"images": [data_url(png) for _, png, _ in chunk]}
        if with_strokes:
            body["strokes"] = [strokes for _, _, strokes in chunk]
        status, body = site.call("POST", "/api/predict/batch/", body)
        assert status == 200, body
        version = body["model_version"]
        for (label, _, _), result in zip(chunk, body["results"], strict=True):
            total[label] += 1
            right[label] += result.get("digit") == label
    scores = {label: right[label] / total[label] for label in range(10) if total[label]}
    scores[-1] = sum(right) / sum(total)
    return scores, version


def contribute(port: int, writer_index: int, strokes, png: bytes, label: int, source: str) -> dict:
    """One contribution from the writer's own loopback address (127.0.1.x)."""
    address = f"127.0.{1 + writer_index // 250}.{1 + writer_index % 250}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60,
                                            source_address=(address, 0))  # fmt: skip
    body = json.dumps({"image": data_url(png), "label": label, "strokes": strokes,
                       "source": source})  # fmt: skip
    connection.request("POST", "/api/drawings/", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status in (200, 201), answer
    return answer


def finetune(site: Site, png: bytes, timeout: float) -> dict:
    """Start ``finetune`` through the staff API, print its phases, wait for its end
    and, if the gate promoted it, for the web to answer with it."""
    started = time.monotonic()
    status, run = site.call("POST", "/api/training-runs/", {"preset": "finetune"}, staff=True)
    assert status == 202, run
    seen: set[str] = set()
    while run["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(3)
        status, run = site.call("GET", f"/api/training-runs/{run['id']}/", staff=True)
        phase = run.get("phase") or run["status"]
        if phase not in seen:
            seen.add(phase)
            print(f"  [{time.monotonic() - started:5.0f} s] {phase}: {run['progress_text']}")
        if time.monotonic() - started > timeout:
            sys.exit("timed out waiting for the run")
    if run["status"] != "succeeded":
        sys.exit(f"the run {run['status']}: {run.get('error')}")
    print(f"gate: {run['gate']['summary']}")
    print("  the run's log:\n" + "\n".join(f"    {line}" for line in run["log_tail"].splitlines()))
    while run["gate"]["passed"]:  # the hot swap: answers from the new version
        _, answer = site.call("POST", "/api/predict/", {"image": data_url(png)})
        if answer.get("model_version") == run["model_version"]:
            break
        time.sleep(0.5)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contributors", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    digits = ujipen.load_ujipen_strokes()
    judged = [d for d in digits if ujipen.role(d.writer) == "test"]
    writers = sorted({d.writer for d in digits if ujipen.role(d.writer) == "train"})
    contributors = writers[: args.contributors]
    judged_drawings = [(d.label, *reversed(page_drawing(d))) for d in judged]

    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "DIGITS_DATA_DIR": data_dir, "DIGITS_CONTRIBUTE_RATE": "1000000/min",
               "DIGITS_AUTO_APPROVE": "0", "DIGITS_MODEL_CHECK_SECONDS": "2",
               "DIGITS_WARM_CACHES": "1"}  # as `make run`: the fresh instance warms up  # fmt: skip
        with running_app(env=env, data_dir=data_dir, worker=True) as (host, port):
            site = Site(host, port)
            site.token = staff_token({**env, "DIGITS_RUN_WORKER": "1"})
            before, version = per_digit(site, judged_drawings)
            picture_before, _ = per_digit(site, judged_drawings, with_strokes=False)
            print(f"{len(judged_drawings)} digits by {len({d.writer for d in judged})} held-out "
                  f"UJI writers, read by v{version}: {before[-1] * 100:.2f}% with their strokes, "
                  f"{picture_before[-1] * 100:.2f}% from the picture alone")  # fmt: skip

            # 2. The training writers contribute everything they wrote.
            phases: dict[str, float] = {}
            started = time.monotonic()
            ids, corrections, duplicates = [], 0, 0
            for index, writer in enumerate(contributors):
                for digit in (d for d in digits if d.writer == writer):
                    strokes, png = page_drawing(digit)
                    status, answer = site.call("POST", "/api/predict/", {"image": data_url(png)})
                    wrong = status == 200 and answer["digit"] != digit.label
                    corrections += wrong
                    body = contribute(port, index, strokes, png, digit.label,
                                      "correction" if wrong else "canvas")  # fmt: skip
                    duplicates += body["duplicate"]
                    ids.append(body["id"])
            phases["contribute"] = time.monotonic() - started
            print(f"{len(ids)} contributions by {len(contributors)} writers ({corrections} as "
                  f"corrections, {duplicates} answered as duplicates) in "
                  f"{phases['contribute']:.0f} s")  # fmt: skip

            # 3. Staff approve them and fine-tune through the worker.
            mark = time.monotonic()
            approve_all(site, ids)
            phases["approve"] = time.monotonic() - mark
            mark = time.monotonic()
            run = finetune(site, png, args.timeout)
            phases["finetune, gate and hot swap"] = time.monotonic() - mark
            loop = time.monotonic() - started
            after, served = per_digit(site, judged_drawings)
            picture_after, _ = per_digit(site, judged_drawings, with_strokes=False)
            # The same loop on the now warm instance: a second fine-tune at once.
            mark = time.monotonic()
            again = finetune(site, png, args.timeout)
            warm = time.monotonic() - mark

    print(f"\nheld-out UJI writers, per digit (v{version} → v{served}):")
    for label in range(10):
        print(f"  {label}: {before[label] * 100:6.2f}% → {after[label] * 100:6.2f}%")
    print(f"  all: {before[-1] * 100:6.2f}% → {after[-1] * 100:6.2f}% (the picture alone: "
          f"{picture_before[-1] * 100:.2f}% → {picture_after[-1] * 100:.2f}%)")  # fmt: skip
    print("\nthe gate, on the same images in the run (serving → candidate):")
    for verdict in run["gate"]["sets"]:
        active = verdict["active"]
        if active is None or verdict["name"].startswith("style:"):
            continue
        print(f"  {verdict['name']:24} {active['accuracy'] * 100:6.2f}% → "
              f"{verdict['candidate'] * 100:6.2f}%  n={verdict['n']:5}  "
              f"+{active['gained']}/−{active['lost']}  p(worse)={active['p_worse']:.2g}  "
              f"{'judged' if verdict['judged'] else 'shown'}: {verdict['result']}")  # fmt: skip
    print("\nthe loop, phase by phase: "
          + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items())
          + f"; contribute → served {loop / 60:.1f} min on the fresh instance")  # fmt: skip
    print(
        f"a second finetune on the warm instance: started → judged "
        f"{'and served' if again['gate']['passed'] else '(rejected)'} in {warm / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
