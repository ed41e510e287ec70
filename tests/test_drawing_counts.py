"""The drawing counts the database keeps (``collector.counts``): right after every
kind of write (inserts, the ORM's bulk updates and deletes, relabels, raw SQL),
what the dataset page and its API read, and a migration that goes both ways."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count

from collector import dataset
from collector.models import Drawing, DrawingCount, NewDrawing


def scanned() -> Counter:
    """The counts the slow way: a GROUP BY over the drawings table."""
    rows = Drawing.objects.values_list("label", "split", "status", "source").annotate(n=Count("id"))
    return Counter({tuple(row[:4]): row[4] for row in rows.order_by()})


def kept() -> Counter:
    found = Counter()
    for *key, _pen, n in dataset.counts.rows():
        found[tuple(key)] += n
    return found


def pen_counts_right() -> bool:
    return dataset.counts.total(pen=True) == Drawing.objects.filter(strokes__isnull=False).count()


def test_every_kind_of_write_keeps_the_counts_right(db, canvas_png):
    made = [Drawing.objects.add(NewDrawing(canvas_png(d % 10, d), d % 10))[0] for d in range(14)]
    Drawing.objects.add(NewDrawing(canvas_png(3, 99), 3, source="import:pendigits"))
    assert kept() == scanned() and sum(kept().values()) == 15
    # the admin's bulk actions (one UPDATE), a relabel, a changed source
    Drawing.objects.filter(label__in=(1, 2, 3)).update(status="approved")
    Drawing.objects.filter(label=4).update(status="rejected")
    made[5].relabel(8)
    Drawing.objects.filter(pk=made[6].pk).update(source="correction")
    assert kept() == scanned()
    # strokes given to a drawing, and taken away
    Drawing.objects.filter(pk=made[7].pk).update(strokes=[[[1, 2, 0], [30, 40, 10]]])
    assert pen_counts_right() and dataset.counts.total(pen=True) == 1
    Drawing.objects.filter(pk=made[7].pk).update(strokes=None)
    assert pen_counts_right() and dataset.counts.total(pen=True) == 0
    # an update that changes nothing counted, and raw SQL the ORM never sees
    Drawing.objects.filter(label=8).update(predicted_label=8, predicted_confidence=0.9)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE collector_drawing SET status = 'pending' WHERE label = 2")
    assert kept() == scanned()
    # deletes, one and many
    made[0].delete()
    Drawing.objects.filter(label__in=(7, 9)).delete()
    assert kept() == scanned() and sum(kept().values()) == Drawing.objects.count()
    assert (
        dataset.counts.total(status="approved") == Drawing.objects.filter(status="approved").count()
    )


def test_the_dataset_page_reads_the_kept_counts(db, client, canvas_png):
    for index, (label, status, source) in enumerate(
        [(1, "approved", "canvas"), (1, "pending", "canvas"),
         (2, "rejected", "correction"), (5, "approved", "import:x")]
    ):  # fmt: skip
        Drawing.objects.add(NewDrawing(canvas_png(label, index), label, status=status,
                                       source=source))  # fmt: skip
    stats = client.get("/api/dataset/stats/").json()
    assert (stats["total"], stats["contributed"], stats["imported"]) == (4, 3, 1)
    assert stats["by_label"]["1"] == 2 and stats["by_label"]["0"] == 0
    assert stats["by_status"] == {"pending": 1, "approved": 2, "rejected": 1}
    assert stats["by_source"] == {"canvas": 2, "correction": 1, "import:x": 1}
    assert sum(sum(splits.values()) for splits in stats["by_label_split"].values()) == 4
    # a rejected drawing is not usable: 2 has none, so it is among the most needed
    assert dataset.digits_most_needed()[:2] == [0, 2]
    # the page reads the counts, not the drawings table
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Drawing.objects, "values_list", None)
        assert client.get("/dataset/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_counts_migration_goes_both_ways_and_counts_what_is_there(canvas_png):
    Drawing.objects.add(NewDrawing(canvas_png(6), 6))
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("collector", "0009_datasetimport")])
        executor.loader.build_graph()
        # without the triggers, a new drawing is not counted by anyone
        Drawing.objects.add(NewDrawing(canvas_png(7), 7))
        executor.migrate([("collector", "0010_drawing_counts")])
        executor.loader.build_graph()
        assert kept() == scanned() and sum(kept().values()) == 2  # both, counted once
        Drawing.objects.filter(label=7).update(status="approved")
        assert kept() == scanned()
        assert DrawingCount.objects.filter(n__gt=0).count() == 2  # 7 pending: a row at 0
    finally:  # the later migrations again, for the tests after this one
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_admin_list_searches_exactly_and_counts_long_lists_by_estimate(
    staff_client, canvas_png, monkeypatch
):
    from collector import curation

    made = [Drawing.objects.add(NewDrawing(canvas_png(d, d), d))[0] for d in range(3)]
    Drawing.objects.filter(pk=made[1].pk).update(client="addr:abc123", writer="w7")
    for term, expected in [("addr:abc123", made[1]), ("w7", made[1]), (made[2].sha256, made[2])]:
        page = staff_client.get("/admin/collector/drawing/", {"q": term})
        shown = page.context["cl"].result_list
        assert page.status_code == 200 and list(shown) == [expected], term
    # a part of a hash finds nothing (matches are exact, along the indexes)
    page = staff_client.get("/admin/collector/drawing/", {"q": made[2].sha256[:10]})
    assert list(page.context["cl"].result_list) == []
    # past the threshold the list is counted by the planner's estimate on PostgreSQL
    monkeypatch.setattr(curation, "ESTIMATE_ABOVE", 0)
    page = staff_client.get("/admin/collector/drawing/", {"label__exact": "1"})
    assert page.status_code == 200 and list(page.context["cl"].result_list) == [made[1]]
    counted = page.context["cl"].result_count
    assert counted == 1 if connection.vendor == "sqlite" else counted >= 1
    # the digit and source filters offer what there is without asking the drawings
    assert b"label__exact=9" in page.content and b"source=canvas" in page.content


def test_a_bulk_load_counts_once_at_the_end_and_the_triggers_come_back(db, canvas_png):
    """``restore`` loads with the triggers off and counts once after: right at the
    end, the triggers on again, and on again after a load that failed."""
    from django.db import transaction

    counts = dataset.counts
    Drawing.objects.add(NewDrawing(canvas_png(1, 0), 1))
    with transaction.atomic(), counts.recounted_after():
        for d in range(1, 6):
            Drawing.objects.add(NewDrawing(canvas_png(d, d), d))
        Drawing.objects.filter(label=2).update(status="approved")
        assert counts.total() == 1  # not counted meanwhile
    assert kept() == scanned() and counts.total() == 6
    Drawing.objects.add(NewDrawing(canvas_png(7, 7), 7))
    assert counts.total() == 7  # counted again, by the triggers
    failing = pytest.raises(RuntimeError, match="load failed")
    with failing, transaction.atomic(), counts.recounted_after():
        Drawing.objects.add(NewDrawing(canvas_png(8, 8), 8))
        raise RuntimeError("the load failed")
    Drawing.objects.add(NewDrawing(canvas_png(9, 9), 9))
    assert kept() == scanned() and counts.total() == 8 and pen_counts_right()
