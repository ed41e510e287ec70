"""The flywheel, end to end: does contributing a style teach the model to read it?

    python benchmarks/flywheel.py [--style NAME] [--contributors 12]

On a fresh instance started as ``make run`` starts it (web, Celery worker,
embedded Redis, the committed bootstrap model):

1. measure every style (``training.allographs``: trained styles and the probes
   kept out of training) on held-out writers' digits, through the predict API,
   and pick the one the served model reads worst (or ``--style``);
2. some *other* writers (training writers) contribute that style through the
   API, with their strokes, plus a few ordinary digits each, as people do;
   the ones the model gets wrong are sent as corrections;
3. staff approve them in the admin and start the ``finetune`` preset through
   the staff API; the real worker trains, the gate judges, the site hot-swaps;
4. the style is measured again on the held-out writers, and the gate's own
   before → after on every standard test set (same images, same run) printed.

Figures are for this machine; the loop time runs from the first contribution
to the first prediction answered by the new version.
"""

from __future__ import annotations

import argparse
import base64
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import _django  # noqa: F401
import numpy as np
from _server import ROOT, running_app

from classifier import canvas
from training import allographs
from training.sources import pendigits as pen_source

BATCH = 64


class Site:
    """The running instance, spoken to over HTTP only."""

    def __init__(self, host: str, port: int):
        self.base = f"http://{host}:{port}"
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.token = ""

    def call(self, method: str, path: str, payload=None, *, form=None, staff=False):
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = self.base + path
        if staff:
            headers["Authorization"] = f"Token {self.token}"
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with self.opener.open(request, timeout=60) as response:
                body = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def csrf(self) -> str:
        return next(c.value for c in self.cookies if c.name == "csrftoken")


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def styled(style, digits, seed: int) -> list[tuple[list, bytes]]:
    """Each digit written in ``style`` and drawn, whole, on the canvas as a person
    would: (strokes as the page records them, PNG)."""
    rng = np.random.default_rng(seed)
    out = []
    for digit in digits:
        made = style.make(canvas.fit_to_canvas(digit.strokes), rng)
        strokes = canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(made, y_up=False), 8.0))
        out.append((strokes, canvas.render_canvas_png(canvas.parse_strokes(strokes))))
    return out


def accuracy(site: Site, pngs: list[bytes], label: int) -> tuple[float, int]:
    correct, version = 0, None
    for i in range(0, len(pngs), BATCH):
        status, body = site.call(
            "POST", "/api/predict/batch/", {"images": [data_url(p) for p in pngs[i : i + BATCH]]}
        )
        assert status == 200, body
        version = body["model_version"]
        correct += sum(r.get("digit") == label for r in body["results"])
    return correct / len(pngs), version


def staff_token(env: dict) -> str:
    manage = [sys.executable, str(ROOT / "manage.py")]
    env = {**env, "DJANGO_SUPERUSER_PASSWORD": "flywheel-staff-pass"}
    subprocess.run(
        [*manage, "createsuperuser", "--noinput", "--username", "flywheel", "--email", "f@x.org"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    out = subprocess.run(
        [*manage, "drf_create_token", "flywheel"], env=env, check=True, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    return re.search(r"[0-9a-f]{40}", out).group(0)


def approve_all(site: Site, ids: list[int]) -> None:
    """Approve every pending drawing as staff do: the admin's "approve" action."""
    site.call("GET", "/admin/login/")
    status, _ = site.call(
        "POST", "/admin/login/?next=/admin/",
        form={"username": "flywheel", "password": "flywheel-staff-pass",
              "csrfmiddlewaretoken": site.csrf(), "next": "/admin/"},
    )  # fmt: skip
    status, _ = site.call(
        "POST", "/admin/collector/drawing/?status__exact=pending",
        form={"action": "approve", "select_across": "1", "index": "0",
              "_selected_action": ids[:1], "csrfmiddlewaretoken": site.csrf()},
    )  # fmt: skip
    assert status in (200, 302), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", choices=sorted(allographs.ALL_STYLES), default=None)
    parser.add_argument("--contributors", type=int, default=12)
    parser.add_argument("--others-per-digit", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    digits = pen_source.load_pendigit_strokes()
    judged = [d for d in digits if d.writer in pen_source.PENDIGITS_TEST_WRITERS]
    held_out = pen_source.PENDIGITS_TEST_WRITERS | pen_source.PENDIGITS_VAL_WRITERS
    train_writers = sorted({d.writer for d in digits} - held_out)
    contributors = set(train_writers[: args.contributors])

    with tempfile.TemporaryDirectory() as data_dir:
        # The twelve writers share one loopback address here, so the per-client
        # rate, daily quota and pending cap are lifted (collector.abuse).
        env = {**os.environ, "DIGITS_DATA_DIR": data_dir, "DIGITS_CONTRIBUTE_RATE": "1000000/min",
               "DIGITS_DAILY_CONTRIBUTIONS": "1000000", "DIGITS_PENDING_PER_CLIENT": "1000000",
               "DIGITS_AUTO_APPROVE": "0", "DIGITS_MODEL_CHECK_SECONDS": "2",
               "DIGITS_WARM_CACHES": "1"}  # as `make run`: the fresh instance warms up  # fmt: skip
        with running_app(env=env, data_dir=data_dir, worker=True) as (host, port):
            site = Site(host, port)
            site.token = staff_token({**env, "DIGITS_RUN_WORKER": "1"})

            # 1. What the served model misreads.
            print("styles on held-out writers, before (through /api/predict/batch/):")
            before = {}
            for index, style in enumerate(allographs.ALL_STYLES.values()):
                own = [d for d in judged if d.label == style.digit]
                pngs = [png for _, png in styled(style, own, 1000 + index)]
                before[style.name], version = accuracy(site, pngs, style.digit)
                kind = "probe" if style.name in allographs.PROBES else "style"
                print(f"  {kind}:{style.name:28} {before[style.name] * 100:6.2f}%  n={len(pngs)}")
            name = args.style or min(before, key=before.get)
            style = allographs.ALL_STYLES[name]
            print(f"\nthe served model (v{version}) reads '{name}' ({style.description}) worst: "
                  f"{before[name] * 100:.2f}%")  # fmt: skip

            # 2. Other writers contribute it, with their strokes, through the API.
            started = time.monotonic()
            mine = [d for d in digits if d.writer in contributors]
            contributions = [(s, p, style.digit) for s, p in styled(
                style, [d for d in mine if d.label == style.digit], 7)]  # fmt: skip
            plain = allographs.Style("plain", -1, lambda strokes, rng: strokes, "as written")
            for label in range(10):
                if label == style.digit:
                    continue
                for writer in sorted(contributors):
                    own = [d for d in mine if d.writer == writer and d.label == label]
                    for s, p in styled(plain, own[: args.others_per_digit], 0):
                        contributions.append((s, p, label))
            ids, corrections = [], 0
            for strokes, png, label in contributions:
                status, answer = site.call("POST", "/api/predict/", {"image": data_url(png)})
                wrong = status == 200 and answer["digit"] != label
                corrections += wrong
                status, body = site.call(
                    "POST", "/api/drawings/",
                    {"image": data_url(png), "label": label, "strokes": strokes,
                     "source": "correction" if wrong else "canvas"},
                )  # fmt: skip
                assert status in (200, 201), body
                ids.append(body["id"])
            styled_count = sum(1 for _, _, label in contributions if label == style.digit)
            print(f"\n{len(contributions)} contributions by {len(contributors)} other writers "
                  f"({styled_count} in the style, {corrections} sent as corrections) in "
                  f"{time.monotonic() - started:.0f} s")  # fmt: skip

            # 3. Staff approve them and fine-tune through the worker.
            approve_all(site, ids)
            status, stats = site.call("GET", "/api/dataset/stats/")
            print(f"approved in the admin: {stats['by_status']}")
            status, run = site.call("POST", "/api/training-runs/", {"preset": "finetune"},
                                    staff=True)  # fmt: skip
            assert status == 202, run
            last = ""
            while run["status"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(5)
                status, run = site.call("GET", f"/api/training-runs/{run['id']}/", staff=True)
                line = (run.get("log_tail") or "").strip().splitlines()[-1:] or [""]
                if line[0] != last:
                    last = line[0]
                    print(f"  [{time.monotonic() - started:5.0f} s] {last}")
                if time.monotonic() - started > args.timeout:
                    sys.exit("timed out waiting for the run")
            if run["status"] != "succeeded":
                sys.exit(f"the run {run['status']}: {run.get('error')}")
            new_version = run["model_version"]
            print(f"gate: {'passed' if run['gate']['passed'] else 'REJECTED'}"
                  + "".join(f"\n  {r}" for r in run["gate"]["reasons"]))  # fmt: skip
            # Wait for the hot swap: the next answers come from the new version.
            while run["gate"]["passed"]:
                status, answer = site.call("POST", "/api/predict/",
                                           {"image": data_url(contributions[0][1])})  # fmt: skip
                if answer.get("model_version") == new_version:
                    break
                time.sleep(0.5)
            loop = time.monotonic() - started
            print(f"contribute → finetune → gate → served: {loop / 60:.1f} min")

            # 4. The same style by the held-out writers, and every standard test set.
            print(f"\nbefore → after (v{version} → v{new_version}):")
            pngs = [png for _, png in styled(style, [d for d in judged if d.label == style.digit],
                                              1000 + list(allographs.ALL_STYLES).index(name))]  # fmt: skip
            after, served = accuracy(site, pngs, style.digit)
            print(f"  {name} by held-out writers (API, v{served}): "
                  f"{before[name] * 100:.2f}% → {after * 100:.2f}%")  # fmt: skip
            print(f"  gate: {run['gate']['summary']}")
            for verdict in run["gate"]["sets"]:
                if verdict["active"] is not None and not verdict["name"].startswith("style:"):
                    active = verdict["active"]
                    print(f"  {verdict['name']:36} {active['accuracy'] * 100:6.2f}% → "
                          f"{verdict['candidate'] * 100:6.2f}%  (n={verdict['n']}, "
                          f"+{active['gained']}/−{active['lost']}, p={active['p_worse']:.2g}, "
                          f"{'judged' if verdict['judged'] else 'shown'})")  # fmt: skip


if __name__ == "__main__":
    main()
