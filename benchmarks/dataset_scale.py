"""What the dataset's pages cost as it grows, on PostgreSQL: the stats, the dataset
page, the admin's drawings list (each filter, ordering and a search) and a
contribution, at each size, with the growth from size to size.

    .venv/bin/python benchmarks/dataset_scale.py [--sizes 10000,100000]

Starts its own private PostgreSQL cluster (``deploy/with-postgres.sh``, port
55433, fsync on) and data folder. A pool of real drawings is added first through
the contribution path (pen digits by unseen writers and their stroke-space
variants, rendered by the one canvas renderer, with their strokes); the dataset
then grows in bulk (``bulk_create``, 5,000 rows a batch) with copies of the
pool's rows under new hashes: labels and strokes as drawn, 80/10/10 splits,
mostly approved (80 %, 15 % pending, 5 % rejected), from contributions,
corrections and imports, with the model's guesses (2 % disagreeing) and 5,000
senders, spread over a year. The copies share the pool's picture files, so what
is measured is the database's part, which is what grows.

Requests go through Django's test client in this process (no network), each
path timed ``--repeat`` times after one warm-up; p50 in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if not os.environ.get("DATABASE_URL"):  # a private cluster of our own, as the suite's
    env = {**os.environ, "DIGITS_TEST_PG_PORT": os.environ.get("DIGITS_BENCH_PG_PORT", "55433"),
           "DIGITS_PG_FSYNC": "on"}  # fmt: skip
    sys.exit(subprocess.call([str(ROOT / "deploy" / "with-postgres.sh"), sys.executable,
                              *sys.argv], env=env, cwd=ROOT))  # fmt: skip

os.environ.setdefault("DIGITS_DATA_DIR", tempfile.mkdtemp())
os.environ["DIGITS_CONTRIBUTE_RATE"] = "100000000/min"
os.environ["DIGITS_PREDICT_RATE"] = "100000000/min"
os.environ["DIGITS_DAILY_CONTRIBUTIONS"] = "100000000"

import base64  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import _django  # noqa: E402, F401
import numpy as np  # noqa: E402
from _server import percentile  # noqa: E402

POOL = 1500
BATCH = 5000
ADMIN = "/admin/collector/drawing/"
# The admin list as staff use it: each filter, ordering and a search.
ADMIN_VIEWS = {
    "first page": "",
    "status pending": "?status__exact=pending",
    "digit 7": "?label__exact=7",
    "test split": "?split__exact=test",
    "imported": "?source=import%3Apendigits",
    "model disagrees": "?disagrees=yes",
    "with strokes": "?strokes=yes",
    "oldest first": "?o=-9",
    "search a sender": "?q=addr%3Abench-17",
}


def timed(call, repeat: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50)


def pool_of_drawings() -> list:
    """Real drawings through the contribution path's storage (files, strokes)."""
    from classifier import canvas
    from collector.models import Drawing, NewDrawing
    from training import strokes as stroke_space
    from training.sources import pendigits as pen

    rng = np.random.default_rng(0)
    digits = [d for d in pen.load_pendigit_strokes() if d.writer in pen.PENDIGITS_TEST_WRITERS]
    made = []
    while len(made) < POOL:
        digit = digits[len(made) % len(digits)]
        drawn = canvas.fit_to_canvas(digit.strokes)
        if len(made) >= len(digits):
            drawn = canvas.fit_to_canvas(stroke_space.vary(drawn, rng)[0])
        strokes = canvas.parse_strokes(canvas.strokes_as_json(canvas.timed(drawn)))
        row, created = Drawing.objects.add(
            NewDrawing(canvas.render_canvas_png(strokes), digit.label, strokes=strokes)
        )
        if created:
            made.append(row)
    return made


def grow(pool: list, target: int, rng: np.random.Generator) -> None:
    """Add copies of the pool's rows until the dataset holds ``target`` drawings."""
    from datetime import timedelta

    from django.utils import timezone

    from collector.models import Drawing

    now = timezone.now()
    have = Drawing.objects.count()
    while have < target:
        n = min(BATCH, target - have)
        rows = []
        for i in range(n):
            base = pool[int(rng.integers(len(pool)))]
            status = rng.choice(["approved", "pending", "rejected"], p=[0.8, 0.15, 0.05])
            source = rng.choice(["canvas", "correction", "import:pendigits"], p=[0.6, 0.1, 0.3])
            guess = base.label if rng.random() > 0.02 else int(rng.integers(10))
            rows.append(Drawing(
                image=base.image.name, strokes=base.strokes,
                sha256=hashlib.sha256(f"bench-{have + i}".encode()).hexdigest(),
                label=base.label, source=source,
                writer="" if source != "import:pendigits" else f"w{int(rng.integers(3000))}",
                predicted_label=guess, predicted_confidence=float(rng.uniform(0.5, 1.0)),
                split=rng.choice(["train", "val", "test"], p=[0.8, 0.1, 0.1]), status=status,
                client="" if source.startswith("import") else f"addr:bench-{int(rng.integers(5000))}",
                fingerprint=base.fingerprint, stored_bytes=base.stored_bytes,
                approved_at=now if status == "approved" else None,
            ))  # fmt: skip
        made = Drawing.objects.bulk_create(rows)
        spread = [now - timedelta(seconds=int(s)) for s in rng.integers(0, 365 * 86400, len(made))]
        for row, when in zip(made, spread, strict=True):
            row.created_at = when
            if row.approved_at is not None:  # approved some time after it arrived
                row.approved_at = min(now, when + timedelta(hours=float(rng.uniform(1, 72))))
        Drawing.objects.bulk_update(made, ["created_at", "approved_at"], batch_size=BATCH)
        have += n
        print(f"  {have:,} drawings", end="\r", flush=True)
    print()


def recount_splits() -> None:
    """The split counter as contributions would have left it (the copies skipped it)."""
    from django.db.models import Count

    from collector.models import Drawing, SplitCounter

    for label in range(10):
        counts = dict(
            Drawing.objects.filter(label=label).values_list("split").annotate(n=Count("id"))
        )
        SplitCounter.objects.update_or_create(label=label, defaults=counts)


def measure(repeat: int, contributions: list[bytes], start: int) -> dict[str, float]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE collector_drawing")
    public, staff = Client(HTTP_HOST="localhost"), Client(HTTP_HOST="localhost")
    staff.force_login(get_user_model().objects.get(username="bench"))

    def get(client, url: str):
        def call() -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return call

    figures = {
        "GET /api/dataset/stats/": timed(get(public, "/api/dataset/stats/"), repeat),
        "the /dataset/ page": timed(get(public, "/dataset/"), repeat),
    }
    for name, query in ADMIN_VIEWS.items():
        figures[f"admin: {name}"] = timed(get(staff, ADMIN + query), repeat)
    sent = iter(contributions[start:])

    def contribute() -> None:
        body, label = next(sent)
        response = public.post("/api/drawings/", body, content_type="application/json",
                               REMOTE_ADDR=f"10.9.{label}.{int(time.time() * 1e6) % 250}")  # fmt: skip
        assert response.status_code == 201, response.content[:300]

    figures["POST /api/drawings/"] = timed(contribute, repeat)
    return figures


def slowest_queries(top: int = 3) -> None:
    """Where each page's time goes at the last size: its slowest SQL statements
    (with ``EXPLAIN``'s first line), so an index or a count to add is plain."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    staff = Client(HTTP_HOST="localhost")
    staff.force_login(get_user_model().objects.get(username="bench"))
    pages = {"/dataset/": "/dataset/", **{f"admin: {k}": ADMIN + q for k, q in ADMIN_VIEWS.items()}}
    for name, url in pages.items():
        staff.get(url)
        with CaptureQueriesContext(connection) as captured:
            staff.get(url)
        measured = [q for q in captured.captured_queries if not q["sql"].startswith("EXPLAIN")]
        ranked = sorted(measured, key=lambda q: -float(q["time"]))[:top]
        print(f"{name}:")
        for query in ranked:
            sql = query["sql"]
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + sql)
                plan = cursor.fetchone()[0]
            print(f"  {float(query['time']) * 1000:7.1f} ms  {sql[:110]}")
            print(f"             {plan[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--queries", action="store_true", help="print each page's slowest SQL")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from classifier import canvas
    from training.sources import pendigits as pen

    call_command("migrate", verbosity=0)
    call_command("ensure_model", verbosity=0)
    get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-1")
    started = time.perf_counter()
    pool = pool_of_drawings()
    print(f"pool: {len(pool)} drawings through the contribution path in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    # Contributions to time: unseen writers' digits, each a new picture.
    others = [d for d in pen.load_pendigit_strokes() if d.writer not in pen.PENDIGITS_TEST_WRITERS]
    contributions = []
    for digit in others[: (args.repeat + 1) * len(sizes) + 1]:
        strokes = canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(digit.strokes)))
        png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
        body = {"image": "data:image/png;base64," + base64.b64encode(png).decode(),
                "label": digit.label, "strokes": strokes}  # fmt: skip
        contributions.append((json.dumps(body), digit.label))

    rng = np.random.default_rng(1)
    table, used = {}, 0
    for size in sizes:
        started = time.perf_counter()
        grow(pool, size, rng)
        recount_splits()
        filled = time.perf_counter() - started
        table[size] = measure(args.repeat, contributions, used)
        used += args.repeat + 1
        print(f"{size:,} drawings (grown in {filled:.0f} s):")
        for name, ms in table[size].items():
            print(f"  {name:<32} p50 {ms:8.1f} ms")

    if args.queries:
        slowest_queries()
    print("\np50 in ms at each size, and the growth from the size before")
    names = list(next(iter(table.values())))
    print("| path | " + " | ".join(f"{s:,}" for s in sizes) + " |")
    print("| --- |" + " ---: |" * len(sizes))
    for name in names:
        cells = []
        for i, size in enumerate(sizes):
            value = table[size][name]
            growth = f" (×{value / table[sizes[i - 1]][name]:.1f})" if i else ""
            cells.append(f"{value:.1f}{growth}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
