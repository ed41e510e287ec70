"""Stratified splits: assigned once, per label, and right at every size."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from django.db import transaction

from collector import splits
from collector.models import SplitCounter


def test_largest_deficit_keeps_every_label_within_one_of_its_share():
    # given 2,000 inserts of one label, one at a time
    counts = Counter()
    for i in range(2000):
        sha = hashlib.sha256(str(i).encode()).hexdigest()
        counts[splits.choose_split(dict(counts), sha)] += 1
        n = i + 1
        # then after every single insert each split is within one drawing of its share
        for split, share in splits.shares().items():
            assert abs(counts[split] - share * n) < 1.0, (n, dict(counts))
    assert dict(counts) == {"train": 1600, "val": 200, "test": 200}


def test_ties_are_broken_by_the_drawing_hash_deterministically():
    # given counts where val and test are equally short of their share (0.9 each
    # after the next drawing; train is over by 0.8)
    tied = {"train": 8, "val": 0, "test": 0}
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(40)]
    # then the same drawing always goes to the same split, decided by its hash
    for sha in hashes:
        chosen = splits.choose_split(tied, sha)
        assert {splits.choose_split(tied, sha) for _ in range(5)} == {chosen}
        assert chosen == ("val", "test")[int(sha[:8], 16) % 2]
    # and different drawings go to either, never to the split over its share
    assert {splits.choose_split(tied, sha) for sha in hashes} == {"val", "test"}


@pytest.mark.django_db
def test_claims_are_counted_per_label_and_rolled_back_with_the_insert():
    with transaction.atomic():
        for i in range(10):
            SplitCounter.objects.claim(3, hashlib.sha256(str(i).encode()).hexdigest())
    counter = SplitCounter.objects.get(label=3)
    assert (counter.train, counter.val, counter.test) == (8, 1, 1)
    try:
        with transaction.atomic():
            SplitCounter.objects.claim(3, "0" * 64)
            raise RuntimeError("insert failed")
    except RuntimeError:
        pass
    counter.refresh_from_db()
    assert counter.train + counter.val + counter.test == 10


def test_configurable_shares(settings):
    settings.DIGITS_SPLIT_SHARES = {"train": 70, "val": 15, "test": 15}
    counts = Counter()
    for i in range(200):
        counts[splits.choose_split(dict(counts), hashlib.sha256(str(i).encode()).hexdigest())] += 1
    assert dict(counts) == {"train": 140, "val": 30, "test": 30}


@pytest.mark.django_db
def test_relabelling_keeps_the_split_and_moves_the_count():
    # given a drawing of label 1 counted in its split
    from collector.models import Drawing

    with transaction.atomic():
        split = SplitCounter.objects.claim(1, "a" * 64)
        drawing = Drawing.objects.create(image="x.png", sha256="a" * 64, label=1, split=split)
    # when it is relabelled as a 7
    assert drawing.relabel(7) is True
    assert drawing.relabel(7) is False  # already a 7: nothing moves
    # then the split stays and the count moved from 1 to 7
    drawing.refresh_from_db()
    assert (drawing.label, drawing.split) == (7, split)
    assert getattr(SplitCounter.objects.get(label=1), split) == 0
    assert getattr(SplitCounter.objects.get(label=7), split) == 1


@pytest.mark.django_db
def test_a_bulk_relabel_moves_every_count_at_once_and_keeps_the_splits(monkeypatch):
    # given 60 drawings of labels 1, 2 and 7 counted in their splits
    from collector import counts, models
    from collector.models import Drawing

    monkeypatch.setattr(models, "RELABEL_BATCH", 7)  # several UPDATEs
    made = []
    with transaction.atomic():
        for i in range(60):
            label = (1, 2, 7)[i % 3]
            sha = hashlib.sha256(str(i).encode()).hexdigest()
            split = SplitCounter.objects.claim(label, sha)
            made.append(Drawing.objects.create(image="x.png", sha256=sha, label=label, split=split))
    before = {d.pk: d.split for d in made}
    # when every 1 and 2 (and the 7s, already 7s) are relabelled as 7 at once
    changed = Drawing.relabel_all(Drawing.objects.all(), 7)
    # then the 40 that changed are named, their splits stayed, and the counters and
    # the kept counts say what the table says
    assert sorted(changed) == sorted(d.pk for d in made if d.label != 7)
    assert all(d.split == before[d.pk] for d in Drawing.objects.all())
    assert set(Drawing.objects.values_list("label", flat=True)) == {7}
    for label in (1, 2, 7):
        counter = SplitCounter.objects.get(label=label)
        table = Counter(Drawing.objects.filter(label=label).values_list("split", flat=True))
        assert (counter.train, counter.val, counter.test) == (
            table["train"],
            table["val"],
            table["test"],
        )
        assert counts.total(label=label) == sum(table.values())
    assert Drawing.relabel_all(Drawing.objects.all(), 7) == []


@pytest.mark.django_db
def test_a_writers_drawings_all_go_to_one_split_and_test_writers_are_unseen(
    client, active_model, canvas_png, settings
):
    """Contributors (one address each) are split by person: the gate's drawings-test
    set holds writers no candidate trained on."""
    import json

    from collector.models import Drawing, WriterSplit

    from .conftest import data_url, set_rates

    set_rates(settings, contributions=None)
    settings.DIGITS_NEAR_DUPLICATE_DISTANCE = 0.0
    # given 20 writers, each contributing three digits from an address of their own
    for writer in range(20):
        for k in range(3):
            response = client.post(
                "/api/drawings/",
                json.dumps({"image": data_url(canvas_png(k, writer)), "label": k}),
                content_type="application/json",
                REMOTE_ADDR=f"198.51.100.{writer + 1}",
            )
            assert response.status_code == 201, response.json()
    # then every writer's drawings share one split, the one recorded for them
    by_writer: dict[str, set] = {}
    for key, split in Drawing.objects.values_list("client", "split"):
        by_writer.setdefault(key, set()).add(split)
    assert len(by_writer) == 20 and all(len(s) == 1 for s in by_writer.values())
    recorded = dict(WriterSplit.objects.values_list("writer", "split"))
    assert {k: s.pop() for k, s in by_writer.items()} == recorded
    # and the writers are shared out as drawings are, 16 / 2 / 2, from the kept
    # writer counts (not a count of every writer), which say the same
    assert Counter(recorded.values()) == {"train": 16, "val": 2, "test": 2}
    from collector.counts import writers_per_split

    assert writers_per_split() == {"train": 16, "val": 2, "test": 2}


@pytest.mark.django_db
def test_drawings_without_a_known_writer_keep_the_per_label_rule(canvas_png):
    from collector.models import Drawing, NewDrawing

    for i in range(10):
        Drawing.objects.add(NewDrawing(canvas_png(4, i), 4))
    counter = SplitCounter.objects.get(label=4)
    assert (counter.train, counter.val, counter.test) == (8, 1, 1)


@pytest.mark.django_db
def test_an_imported_writer_is_one_person_across_their_drawings(canvas_png):
    from collector.models import Drawing, NewDrawing

    for i in range(6):
        Drawing.objects.add(NewDrawing(canvas_png(i, 2), i, source="import:x", writer="17"))
    assert Drawing.objects.values("split").distinct().count() == 1
