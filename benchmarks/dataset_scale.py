"""What the dataset's pages cost as it grows, on PostgreSQL: the stats, the dataset
page, the admin's drawings list (each filter, ordering and a search) and a
contribution, at each size, with the growth from size to size.

    .venv/bin/python benchmarks/dataset_scale.py [--sizes 10000,100000] [--only loading,backup]

Starts its own private PostgreSQL cluster (``deploy/with-postgres.sh``, port
55433, fsync on) and data folder. A pool of real drawings is added first through
the contribution path (pen digits by unseen writers and their stroke-space
variants, rendered by the one canvas renderer, with their strokes); the dataset
then grows with copies of the pool's rows, 5,000 a batch, stored as an import
stores its drawings (``Drawing.objects.store_many``), each its own file (the
picture with a chunk naming the copy) with its model input kept beside it:
labels and strokes as drawn, 80/10/10 splits,
mostly approved (80 %, 15 % pending, 5 % rejected), from contributions,
corrections and imports, with the model's guesses (2 % disagreeing) and 5,000
senders, spread over a year.

Requests go through Django's test client in this process (no network), each
path timed ``--repeat`` times after one warm-up; p50 in milliseconds.

Then, at each size, the work that is not a request (wall time, once):

- the admin's bulk actions on a selection of ``--bulk`` pending drawings
  (approve, reject, relabel: the admin's own action functions, history
  included), the dataset put back afterwards;
- every export format, each in a process of its own (as the background worker
  runs it) for at most ``--export-seconds``: drawings per second and the
  process's peak memory (RSS, sampled every 0.2 s);
- scoring ``--score`` drawings with the active model (``collector.scoring``),
  drawings per second, and finding every drawing that needs a score;
- training's loading phase, for ``finetune`` and ``default`` (the drawings' part
  of both views: the image view's pool, validation and test drawings, the pen
  view's strokes), each in a process of its own: seconds and peak memory. The
  copies' cached inputs are put in the item cache as the background worker puts
  a contribution's there when it arrives (the pool's own, built once), so a run
  renders nothing: the first run after the dataset grew reads each new
  drawing's file once and packs it (``training.sources.cache.Pack``), the next
  run reads the packs alone; both are timed;
- contributions racing through the API from threads on their own connections,
  as the suite's concurrency tests race them on small data: 60 new drawings of
  one digit from six senders at once (the split counter must still equal the
  table), one drawing sent eight times at once (stored once), twelve from one
  sender over a daily quota of five (five stored), and four near-copies from one
  sender (one stored); ``1`` where each held;
- ``manage.py backup`` of the whole instance and ``manage.py restore`` of it into
  a fresh one (a new database in the same cluster, an empty data folder), each a
  process of its own: seconds and peak memory (``--no-backup`` skips them).
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

if not os.environ.get("DIGITS_DATA_DIR"):  # its own, gone at exit (13 GB at a million)
    import atexit
    import shutil

    os.environ["DIGITS_DATA_DIR"] = tempfile.mkdtemp(prefix="digits-scale-")
    atexit.register(shutil.rmtree, os.environ["DIGITS_DATA_DIR"], ignore_errors=True)
os.environ["DIGITS_CONTRIBUTE_RATE"] = "100000000/min"
os.environ["DIGITS_PREDICT_RATE"] = "100000000/min"
os.environ["DIGITS_DAILY_CONTRIBUTIONS"] = "100000000"

import base64  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402

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


def copy_png(png: bytes, number: int) -> bytes:
    """The same picture as another file: a text chunk naming the copy before IEND."""
    data = b"digits-bench\x00" + str(number).encode()
    chunk = len(data).to_bytes(4, "big") + b"tEXt" + data
    chunk += zlib.crc32(b"tEXt" + data).to_bytes(4, "big")
    return png[:-12] + chunk + png[-12:]


def grow(pool: list, target: int, rng: np.random.Generator) -> None:
    """Add copies of the pool's rows until the dataset holds ``target`` drawings,
    stored as an import stores its drawings (``Drawing.objects.store_many``: the
    files, each split counted, one INSERT a batch, the model inputs kept beside
    them): each a file of its own (the pool's picture with a chunk naming the copy,
    so its hash is its own and every reader's check passes)."""
    from datetime import timedelta

    from django.utils import timezone

    from collector import dataset
    from collector.models import Drawing

    now = timezone.now()
    have = Drawing.objects.count()
    cached = pool_items(pool)
    pngs = [dataset.read_image(row) for row in pool]
    inputs = [x.astype(np.float32) / 255.0 for x in dataset.model_inputs_of(pool)]
    while have < target:
        n = min(BATCH, target - have)
        rows, pictures, kept, bases = [], [], [], []
        for i in range(n):
            index = int(rng.integers(len(pool)))
            bases.append(index)
            base = pool[index]
            pictures.append(copy_png(pngs[index], have + i))
            kept.append(inputs[index])
            status = rng.choice(["approved", "pending", "rejected"], p=[0.8, 0.15, 0.05])
            source = rng.choice(["canvas", "correction", "import:pendigits"], p=[0.6, 0.1, 0.3])
            guess = base.label if rng.random() > 0.02 else int(rng.integers(10))
            rows.append(Drawing(
                sha256=hashlib.sha256(pictures[-1]).hexdigest(), strokes=base.strokes,
                label=base.label, source=source,
                writer="" if source != "import:pendigits" else f"w{int(rng.integers(3000))}",
                predicted_label=guess, predicted_confidence=float(rng.uniform(0.5, 1.0)),
                split=rng.choice(["train", "val", "test"], p=[0.8, 0.1, 0.1]), status=status,
                client="" if source.startswith("import") else f"addr:bench-{int(rng.integers(5000))}",
                fingerprint=base.fingerprint, stored_bytes=len(pictures[-1]),
                approved_at=now if status == "approved" else None,
            ))  # fmt: skip
        made = Drawing.objects.store_many(
            rows, pictures, forced=[row.split for row in rows], inputs=kept
        )
        keep_items(made, bases, cached)
        spread = [now - timedelta(seconds=int(s)) for s in rng.integers(0, 365 * 86400, len(made))]
        for row, when in zip(made, spread, strict=True):
            row.created_at = when
            if row.approved_at is not None:  # approved some time after it arrived
                row.approved_at = min(now, when + timedelta(hours=float(rng.uniform(1, 72))))
        Drawing.objects.bulk_update(made, ["created_at", "approved_at"], batch_size=BATCH)
        have += n
        print(f"  {have:,} drawings", end="\r", flush=True)
    print()


# The presets whose loading phase is measured (their drawings' part).
LOADING_PRESETS = ("finetune", "default")
# What --only can choose, in the order they run at each size.
GROUPS = ("pages", "bulk", "exports", "scoring", "loading", "races", "backup")


def _item_keys() -> list[tuple]:
    """(config, variants) of every cached-input entry a measured preset reads."""
    from training.config import preset_config
    from training.sources import drawings as drawing_source

    keys = []
    for preset in LOADING_PRESETS:
        config = preset_config(preset)
        keys += [(config, drawing_source.variant_count(config)), (config, 1)]
    return keys


def pool_items(pool: list) -> list[dict]:
    """Each pool drawing's cached inputs (the files' bytes) per entry, as a training
    drawing (``"train"``: its variants, per preset) and as a validation or test one
    (its picture), built once by the code a run uses
    (``training.sources.drawings.prepared_inputs``)."""
    from training.sources import drawings as drawing_source
    from training.sources.cache import item_file

    files: list[dict] = [{"train": {}, "other": {}} for _ in pool]
    for config, count in _item_keys():
        drawing_source.prepared_inputs(pool, count, config)
        key = drawing_source.item_key(count, config)
        for i, row in enumerate(pool):
            path = item_file("drawings", key, drawing_source.item_name(row))
            files[i]["train" if count > 1 else "other"][key] = path.read_bytes()
    return files


def keep_items(made: list, bases: list[int], files: list[dict]) -> None:
    """The approved copies' cached inputs, as the background worker would have left
    them (a copy's inputs are its original's: the same picture and strokes)."""
    from training.sources import drawings as drawing_source
    from training.sources.cache import item_file

    for row, base in zip(made, bases, strict=True):
        if row.status != "approved":
            continue
        name = drawing_source.item_name(row)
        for key, data in files[base]["train" if row.split == "train" else "other"].items():
            path = item_file("drawings", key, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def loading_child(preset: str) -> None:
    """In a process of its own: a run's loading of the drawings, both views."""
    from training import pen_data
    from training.config import preset_config
    from training.sources import drawings as drawing_source

    config = preset_config(preset)
    started = time.perf_counter()
    part = drawing_source.part(config, np.random.default_rng(config.seed), lambda *a: None)
    pictures = time.perf_counter() - started
    pen = pen_data.load_pen_data(config)
    read = sum(len(p) for p in part.pools) + sum(len(v) for v in part.val)
    print(pictures, time.perf_counter() - started - pictures, read, len(pen.train), flush=True)


def loading(preset: str) -> dict[str, float]:
    """A run's loading of the drawings (``preset``), twice: the first run after the
    dataset grew (it packs the inputs that arrived: the item cache's files, read
    once), then the next run (the packs alone): seconds, peak memory."""
    import psutil

    figures = {}
    for run in ("first run", "next run"):
        child = subprocess.Popen([sys.executable, __file__, "--loading-child", preset],
                                 stdout=subprocess.PIPE, text=True, env=os.environ)  # fmt: skip
        process, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            peak = max(peak, peak_rss(process))
            time.sleep(0.2)
        out = child.stdout.read().split()
        if child.returncode or len(out) < 4:
            raise RuntimeError(f"loading {preset} failed ({child.returncode})")
        pictures, strokes, read, pen_train = (float(v) for v in out[-4:])
        figures.update({f"{preset}: {run}, pictures (s)": pictures,
                        f"{preset}: {run}, strokes (s)": strokes,
                        f"{preset}: {run}, peak memory (MB)": peak / 2**20})  # fmt: skip
    figures[f"{preset}: drawings read, pictures (count)"] = read
    figures[f"{preset}: drawings read, strokes (count)"] = pen_train
    return figures


def measure(
    repeat: int, contributions: list[bytes], start: int, show_statements: bool = False
) -> dict[str, float]:
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

    statements: dict[str, list[float]] = {}

    def timing(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            statements.setdefault(" ".join(sql.split())[:100], []).append(elapsed)

    if show_statements:  # where a contribution's time goes, statement by statement
        with connection.execute_wrapper(timing):
            figures["POST /api/drawings/"] = timed(contribute, repeat)
        ranked = sorted(statements.items(), key=lambda kv: -sum(kv[1]))[:8]
        print("  a contribution's slowest statements (ms a contribution, mean; times run):")
        for sql, times in ranked:
            share = sum(times) / (repeat + 1)
            print(f"  {share:7.2f}  x{len(times) / (repeat + 1):.0f}  {sql}")
    else:
        figures["POST /api/drawings/"] = timed(contribute, repeat)
    return figures


def bulk_actions(n: int) -> dict[str, float]:
    """Seconds for the admin's approve, reject and relabel actions on ``n`` pending
    drawings (as "select all" in a filtered list hands them over); put back after."""
    from django.contrib import admin as django_admin
    from django.contrib.auth import get_user_model
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.test import RequestFactory

    from collector.models import Drawing

    model_admin = django_admin.site._registry[Drawing]
    request = RequestFactory().post(ADMIN + "?status__exact=pending")
    request.user = get_user_model().objects.get(username="bench")
    request._messages = CookieStorage(request)
    pending = Drawing.objects.filter(status="pending").order_by("pk")
    ids = list(pending.values_list("pk", flat=True)[:n])
    labels = dict(Drawing.objects.filter(pk__in=ids).values_list("pk", "label"))
    relabel = model_admin.get_actions(request)["relabel_as_3"][0]
    figures = {"admin: drawings selected (count)": len(ids)}
    actions = {"approve": model_admin.approve, "reject": model_admin.reject,
               "relabel": lambda request, queryset: relabel(model_admin, request, queryset)}  # fmt: skip
    for name, action in actions.items():
        started = time.perf_counter()
        action(request, Drawing.objects.filter(pk__in=ids))
        figures[f"admin: {name} the selection (s)"] = time.perf_counter() - started
    for label in range(10):  # put the dataset back as it was
        mine = [pk for pk, was in labels.items() if was == label]
        Drawing.relabel_all(Drawing.objects.filter(pk__in=mine), label)
    Drawing.objects.filter(pk__in=ids).update(status="pending", approved_at=None)
    return figures


def export_child(fmt: str) -> None:
    """In a process of its own: write one export, printing its progress."""
    from collector import exports

    def progress(done: int, total: int) -> None:
        print(done, total, time.perf_counter(), flush=True)

    with tempfile.TemporaryFile() as out:
        exports.write(out, fmt, "all", progress)


def peak_rss(process) -> int:
    """A process's resident memory with its children's (a command's own workers)."""
    import psutil

    try:
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


def export_rate(fmt: str, seconds: float) -> tuple[float, float, bool]:
    """(drawings/s, peak RSS in MB, finished) of one export, stopped after ``seconds``."""
    import psutil

    child = subprocess.Popen([sys.executable, __file__, "--export-child", fmt],
                             stdout=subprocess.PIPE, text=True, env=os.environ)  # fmt: skip
    process, peak, lines = psutil.Process(child.pid), 0, []
    reader = threading.Thread(target=lambda: lines.extend(child.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + seconds
    while child.poll() is None and time.monotonic() < deadline:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    finished = child.poll() is not None
    if not finished:
        child.kill()
    child.wait()
    reader.join(timeout=5)
    progress = [tuple(float(v) for v in line.split()) for line in lines if line.strip()]
    if len(progress) < 2:
        return 0.0, peak / 2**20, finished
    (first, _, t0), (last, _, t1) = progress[0], progress[-1]
    return (last - first) / max(t1 - t0, 1e-9), peak / 2**20, finished


def managed(args: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one ``manage.py`` command run to its end."""
    import psutil

    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *args, "--verbosity", "0"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    process, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, peak_rss(process))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    if child.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)}: {child.stderr.read()[-2000:]!r}")
    return seconds, peak / 2**20


def contribution_body(strokes, label: int) -> str:
    from classifier import canvas

    png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
    return json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode(),
                       "label": label, "strokes": strokes})  # fmt: skip


def racing(bodies: list[tuple[str, str]]) -> list[int]:
    """POST each ``(body, sender)`` to the contribution API, all released together
    from threads of their own (each its own database connection); the statuses."""
    from django.db import connections
    from django.test import Client

    barrier = threading.Barrier(len(bodies))
    statuses = [0] * len(bodies)

    def send(i: int) -> None:
        body, sender = bodies[i]
        client = Client(HTTP_HOST="localhost")
        try:
            barrier.wait()
            statuses[i] = client.post("/api/drawings/", body, content_type="application/json",
                                      REMOTE_ADDR=sender).status_code  # fmt: skip
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return statuses


def concurrency(digits: list, round_: int) -> dict[str, float]:
    """The suite's races again at this size, through the API: 1 where each held."""
    from collections import Counter

    from django.test import override_settings

    from classifier import canvas
    from collector.models import Drawing, SplitCounter

    def drawn(digit, shift: float = 0.0) -> list:
        strokes = canvas.fit_to_canvas(digit.strokes)
        moved = [s + np.array([shift, shift]) for s in strokes]
        return canvas.strokes_as_json(canvas.timed(moved))

    def splits(label: int) -> Counter:
        return Counter(Drawing.objects.filter(label=label).values_list("split", flat=True))

    label = 4
    fours = [d for d in digits if d.label == label]
    before, counted = splits(label), SplitCounter.objects.get(label=label)
    was = (counted.train, counted.val, counted.test)
    net = f"10.{round_ + 1}"  # senders of their own in each round (quotas are per day)
    started = time.perf_counter()
    sixty = [
        (contribution_body(drawn(d), label), f"{net}.1.{i % 6}") for i, d in enumerate(fours[:60])
    ]
    statuses = racing(sixty)
    after, counted = splits(label), SplitCounter.objects.get(label=label)
    grew = [after[s] - before[s] for s in ("train", "val", "test")]
    moved = [
        now - then
        for now, then in zip((counted.train, counted.val, counted.test), was, strict=True)
    ]
    counter_exact = statuses.count(201) == 60 and grew == moved and sum(grew) == 60
    same = contribution_body(drawn(fours[60]), label)
    statuses = racing([(same, f"{net}.2.{i}") for i in range(8)])
    sha = Drawing.objects.order_by("-id").values_list("sha256", flat=True)[0]
    once = statuses.count(201) == 1 and Drawing.objects.filter(sha256=sha).count() == 1
    with override_settings(DIGITS_DAILY_CONTRIBUTIONS=5):
        twelve = [(contribution_body(drawn(d), d.label), f"{net}.3.1") for d in digits[100:112]]
        statuses = racing(twelve)
    # Exactly five stored; the rest over the quota or already in (the same picture
    # as one of the sixty, or a near-copy of the sender's own: nothing stored).
    quota = statuses.count(201) == 5 and statuses.count(429) + statuses.count(200) == 7
    if not quota:
        print(f"  races: the quota race answered {sorted(statuses)}")
    copies = [
        (contribution_body(drawn(fours[61], shift), label), f"{net}.4.1") for shift in (0, 1, 2, 3)
    ]
    statuses = racing(copies)
    near = statuses.count(201) == 1 and statuses.count(200) == 3
    if not near:
        print(f"  races: the near-copies race answered {sorted(statuses)}")
    return {"races: split counter exact (1 = held)": float(counter_exact),
            "races: one drawing stored once (1 = held)": float(once),
            "races: daily quota exact (1 = held)": float(quota),
            "races: near-copies stored once (1 = held)": float(near),
            "races: all four (s)": time.perf_counter() - started}  # fmt: skip


def backup_and_restore(size: int) -> dict[str, float]:
    """``manage.py backup`` of this instance, then ``manage.py restore`` of it into a
    fresh one: a database of its own in the same cluster and an empty data folder."""
    import shutil
    from urllib.parse import urlsplit, urlunsplit

    from django.db import connection

    folder = Path(tempfile.mkdtemp(prefix="digits-backup-"))
    archive = folder / "backup.zip"
    try:
        backup = managed(["backup", str(archive)], dict(os.environ))
        name = f"restored_{size}"
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        url = urlsplit(os.environ["DATABASE_URL"])
        env = {**os.environ, "DATABASE_URL": urlunsplit(url._replace(path=f"/{name}")),
               "DIGITS_DATA_DIR": str(folder / "fresh")}  # fmt: skip
        restore = managed(["restore", str(archive)], env)
        size_mb = archive.stat().st_size / 2**20
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE "{name}"')
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"backup (s)": backup[0], "backup: peak memory (MB)": backup[1],
            "backup: archive (MB)": size_mb,
            "restore into a fresh instance (s)": restore[0],
            "restore: peak memory (MB)": restore[1]}  # fmt: skip


def scoring(n: int) -> dict[str, float]:
    """Drawings scored per second, and seconds to find every drawing needing a score."""
    from classifier import runtime
    from collector import scoring as scores
    from collector.models import Drawing

    version = runtime.active_model().version_id
    started = time.perf_counter()
    needing = list(scores.needing_scores(version).values_list("pk", flat=True))
    found = time.perf_counter() - started
    chosen = needing[:n]
    started = time.perf_counter()
    scored = scores.score(Drawing.objects.filter(pk__in=chosen))
    rate = scored / (time.perf_counter() - started)
    Drawing.objects.filter(pk__in=chosen).update(model_version=None)  # as they were
    return {"scoring (drawings/s)": rate, "finding every drawing to score (s)": found}


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
    parser.add_argument("--bulk", type=int, default=10000)
    parser.add_argument("--export-seconds", type=float, default=60.0)
    parser.add_argument("--score", type=int, default=5000)
    parser.add_argument("--no-backup", action="store_true", help="skip backup and restore")
    parser.add_argument("--only", default=",".join(GROUPS),
                        help=f"what to measure at each size, of {','.join(GROUPS)}")  # fmt: skip
    parser.add_argument("--export-child", help=argparse.SUPPRESS)
    parser.add_argument("--loading-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(args.export_child)
        return
    if args.loading_child:
        loading_child(args.loading_child)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    only = set(args.only.split(","))
    if only - set(GROUPS):
        parser.error(f"--only takes {', '.join(GROUPS)}")

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from classifier import canvas
    from collector import exports
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
    # Digits for each size's races, new to the dataset each time.
    first = (args.repeat + 1) * len(sizes) + 1
    racers = {
        size: others[first + 1500 * k : first + 1500 * (k + 1)] for k, size in enumerate(sizes)
    }

    rng = np.random.default_rng(1)
    table, used = {}, 0
    for size in sizes:
        started = time.perf_counter()
        grow(pool, size, rng)
        filled = time.perf_counter() - started
        table[size] = {}
        if "pages" in only:
            table[size].update(measure(args.repeat, contributions, used, args.queries))
            used += args.repeat + 1
        if "bulk" in only:
            table[size].update(bulk_actions(args.bulk))
        for fmt in exports.FORMATS if "exports" in only else ():
            rate, peak, finished = export_rate(fmt, args.export_seconds)
            table[size][f"export {fmt} (drawings/s)"] = rate
            table[size][f"export {fmt}: peak memory (MB)"] = peak
            if not finished:
                print(f"  (export {fmt} stopped after {args.export_seconds:.0f} s)")
        if "scoring" in only:
            table[size].update(scoring(args.score))
        for preset in LOADING_PRESETS if "loading" in only else ():
            table[size].update(loading(preset))
        if "races" in only:
            table[size].update(concurrency(racers[size], sizes.index(size)))
        if "backup" in only and not args.no_backup:
            table[size].update(backup_and_restore(size))
        table[size]["filling (s)"] = filled
        print(f"{size:,} drawings (grown in {filled:.0f} s):")
        for name, value in table[size].items():
            unit = "" if "(" in name else " ms (p50)"
            print(f"  {name:<44} {value:10.1f}{unit}")

    if args.queries:
        slowest_queries()
    print("\nat each size (p50 in ms unless the path says), and the growth from the size before")
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
