"""Writes that race: each test starts its writers together (a barrier), on their own
database connections, and checks what is left. On SQLite writers take turns (one
IMMEDIATE transaction at a time); on PostgreSQL (CI's second run) they truly
overlap and row locks decide: these are the tests that tell the two apart."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from classifier.models import ModelVersion, Promotion
from classifier.registry import BOOTSTRAP_DIR, register_directory
from collector.models import Drawing, NewDrawing, SplitCounter
from training.models import TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)


def at_once(jobs: list[Callable[[], object]], timeout: float = 120) -> list[object]:
    """Run the jobs in threads released together; their results (or exceptions), in
    order. Fails on a job still running after ``timeout`` seconds (a deadlock)."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = jobs[i]()
        except BaseException as exc:  # reported to the test, not lost in the thread
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a writer never finished: a deadlock?"
    return results


def test_the_split_counter_stays_exact_under_concurrent_inserts(canvas_png):
    # given 100 different drawings of a 3 (and 20 of a 5), sent by 6 writers at once
    images = [(canvas_png(3, i), 3) for i in range(100)] + [
        (canvas_png(5, i), 5) for i in range(20)
    ]
    batches = [images[i::6] for i in range(6)]

    def send(batch):
        return [Drawing.objects.add(NewDrawing(png, label))[1] for png, label in batch]

    results = at_once([lambda b=b: send(b) for b in batches])
    # then nothing failed, every drawing is stored once, and each label's splits
    # are exactly 80/10/10, in the rows and in the counter alike
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(sum(created) for created in results) == 120
    for label, n in ((3, 100), (5, 20)):
        rows = Counter(Drawing.objects.filter(label=label).values_list("split", flat=True))
        assert rows == {"train": n * 8 // 10, "val": n // 10, "test": n // 10}, (label, rows)
        counter = SplitCounter.objects.get(label=label)
        assert (counter.train, counter.val, counter.test) == (
            rows["train"],
            rows["val"],
            rows["test"],
        )


def test_the_same_drawing_sent_at_once_is_stored_once(canvas_png):
    png = canvas_png(7, 3)
    results = at_once([lambda: Drawing.objects.add(NewDrawing(png, 7)) for _ in range(8)])
    assert not [r for r in results if isinstance(r, BaseException)], results
    drawings = {drawing.pk for drawing, _ in results}
    assert len(drawings) == 1 and sum(created for _, created in results) == 1
    assert Drawing.objects.count() == 1
    counter = SplitCounter.objects.get(label=7)
    assert counter.train + counter.val + counter.test == 1
    files = [p for p in Path(settings.MEDIA_ROOT, "drawings").rglob("*") if p.is_file()]
    assert len(files) == 1, files


def test_a_queued_run_is_claimed_by_exactly_one_worker():
    for _ in range(5):  # five runs, each raced for by eight workers
        run = TrainingRun.objects.create()
        claims = at_once(
            [lambda i=i, pk=run.pk: TrainingRun.objects.get(pk=pk).claim(f"w{i}") for i in range(8)]
        )
        assert claims.count(True) == 1 and claims.count(False) == 7, claims
        run.refresh_from_db()
        assert run.status == TrainingRun.Status.RUNNING
        assert run.worker == f"w{claims.index(True)}"


def test_a_promotion_racing_a_rollback_leaves_one_version_serving(active_model):
    # given v1 (bootstrap) then v2 serving, and a new candidate v3
    for _ in range(5):
        v2 = register_directory(BOOTSTRAP_DIR, activate=True, note="v2")
        v3 = register_directory(BOOTSTRAP_DIR, activate=False, note="v3")
        back = ModelVersion.rollback_target()
        assert back is not None
        # when staff promote v3 while someone rolls back to the previous version
        results = at_once(
            [
                lambda n=v3: ModelVersion.objects.get(pk=n.pk).promote(reason="new"),
                lambda b=back: ModelVersion.objects.get(pk=b.pk).promote(reason="rollback"),
            ]
        )
        assert not [r for r in results if isinstance(r, BaseException)], results
        # then exactly one version serves: the one promoted last
        serving = list(ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE))
        assert len(serving) == 1, serving
        last = Promotion.objects.order_by("-created_at", "-pk").first()
        assert serving[0].pk == last.version_id
        # and each promotion names the one that served just before it
        first, second = Promotion.objects.order_by("-created_at", "-pk")[:2][::-1]
        assert second.previous_id == first.version_id
        assert first.previous_id == v2.pk


def test_near_copies_sent_at_once_by_one_client_are_stored_once(active_model, canvas_png):
    """The near-copy check runs under the client's lock in the insert's transaction
    (``collector.abuse.admission``), as the quota does: checked before it, four
    near-copies sent together all found nothing yet and were all stored."""
    import json

    from django.test import Client

    from .conftest import data_url

    copies = [
        canvas_png(7, 3, size) if i else canvas_png(7, 3)
        for i, size in enumerate((0, 194, 188, 182))
    ]
    assert len(set(copies)) == 4  # four pictures: the content hash tells them apart

    def send(png: bytes):
        response = Client().post("/api/drawings/", json.dumps({"image": data_url(png), "label": 7}),
                                 content_type="application/json", REMOTE_ADDR="198.51.100.7")  # fmt: skip
        return response.status_code, response.json().get("duplicate_of")

    answers = at_once([lambda png=png: send(png) for png in copies])
    assert sorted(answers, key=str) == sorted(
        [(201, None)] + [(200, "your_near_copy")] * 3, key=str
    ), answers
    assert Drawing.objects.count() == 1
