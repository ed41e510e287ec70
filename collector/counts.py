"""How many drawings there are of each label, split, status and source, with or
without strokes, kept by the database itself.

The dataset page and ``/api/dataset/stats/`` used to count the drawings table
with six ``GROUP BY`` scans a request: cheap at ten thousand drawings, a second
at a million. Triggers on the drawings table (migration ``collector/0010``) now
keep one row per (label, split, status, source) up to date in the same
transaction as every insert, update and delete — the ORM's bulk ``update()`` and
``delete()``, raw SQL and ``loaddata`` included, which no Python signal sees —
and the page reads those few hundred rows.

A flush (tests, ``restore`` into a fresh instance) empties both tables together;
the counts are never in a backup (they follow from the drawings it restores).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, models

KEY = ("label", "split", "status", "source", "pen")

SQLITE_TRIGGERS = [
    """CREATE TRIGGER collector_drawing_count_insert AFTER INSERT ON collector_drawing
    BEGIN
      INSERT INTO collector_drawingcount (label, split, status, source, pen, n)
      VALUES (NEW.label, NEW.split, NEW.status, NEW.source, NEW.strokes IS NOT NULL, 1)
      ON CONFLICT (label, split, status, source, pen) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER collector_drawing_count_delete AFTER DELETE ON collector_drawing
    BEGIN
      UPDATE collector_drawingcount SET n = n - 1 WHERE label = OLD.label AND split = OLD.split
        AND status = OLD.status AND source = OLD.source AND pen = (OLD.strokes IS NOT NULL);
    END""",
    """CREATE TRIGGER collector_drawing_count_update
    AFTER UPDATE OF label, split, status, source, strokes ON collector_drawing
    WHEN OLD.label IS NOT NEW.label OR OLD.split IS NOT NEW.split
      OR OLD.status IS NOT NEW.status OR OLD.source IS NOT NEW.source
      OR (OLD.strokes IS NULL) IS NOT (NEW.strokes IS NULL)
    BEGIN
      UPDATE collector_drawingcount SET n = n - 1 WHERE label = OLD.label AND split = OLD.split
        AND status = OLD.status AND source = OLD.source AND pen = (OLD.strokes IS NOT NULL);
      INSERT INTO collector_drawingcount (label, split, status, source, pen, n)
      VALUES (NEW.label, NEW.split, NEW.status, NEW.source, NEW.strokes IS NOT NULL, 1)
      ON CONFLICT (label, split, status, source, pen) DO UPDATE SET n = n + 1;
    END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS collector_drawing_count_insert",
    "DROP TRIGGER IF EXISTS collector_drawing_count_delete",
    "DROP TRIGGER IF EXISTS collector_drawing_count_update",
]

POSTGRES_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION collector_drawing_count() RETURNS trigger AS $$
    BEGIN
      IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE collector_drawingcount SET n = n - 1 WHERE label = OLD.label
          AND split = OLD.split AND status = OLD.status AND source = OLD.source
          AND pen = (OLD.strokes IS NOT NULL);
      END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO collector_drawingcount (label, split, status, source, pen, n)
        VALUES (NEW.label, NEW.split, NEW.status, NEW.source, NEW.strokes IS NOT NULL, 1)
        ON CONFLICT (label, split, status, source, pen)
        DO UPDATE SET n = collector_drawingcount.n + 1;
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER collector_drawing_count_insert_delete
    AFTER INSERT OR DELETE ON collector_drawing
    FOR EACH ROW EXECUTE FUNCTION collector_drawing_count()""",
    """CREATE TRIGGER collector_drawing_count_update
    AFTER UPDATE OF label, split, status, source, strokes ON collector_drawing FOR EACH ROW
    WHEN (OLD.label IS DISTINCT FROM NEW.label OR OLD.split IS DISTINCT FROM NEW.split
      OR OLD.status IS DISTINCT FROM NEW.status OR OLD.source IS DISTINCT FROM NEW.source
      OR (OLD.strokes IS NULL) IS DISTINCT FROM (NEW.strokes IS NULL))
    EXECUTE FUNCTION collector_drawing_count()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS collector_drawing_count_insert_delete ON collector_drawing",
    "DROP TRIGGER IF EXISTS collector_drawing_count_update ON collector_drawing",
    "DROP FUNCTION IF EXISTS collector_drawing_count()",
]

# ALTER TABLE refuses a table with checks still pending in the transaction (the
# deferred foreign keys of rows written before): they are made first.
POSTGRES_SWITCH = [
    "SET CONSTRAINTS ALL IMMEDIATE",
    "ALTER TABLE collector_drawing {switch} TRIGGER collector_drawing_count_insert_delete",
    "ALTER TABLE collector_drawing {switch} TRIGGER collector_drawing_count_update",
    "SET CONSTRAINTS ALL DEFERRED",
]
# Every count made again from the drawings there (when the triggers arrive, after a bulk load).
RECOUNT = [
    "DELETE FROM collector_drawingcount",
    """INSERT INTO collector_drawingcount (label, split, status, source, pen, n)
    SELECT label, split, status, source, strokes IS NOT NULL, COUNT(*) FROM collector_drawing
    GROUP BY label, split, status, source, strokes IS NOT NULL""",
]


def install(schema_editor) -> None:
    """Create the triggers for this database and count what is there (a migration)."""
    vendor = schema_editor.connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"No drawing-count triggers for {vendor}.")
    for statement in SQLITE_TRIGGERS if vendor == "sqlite" else POSTGRES_TRIGGERS:
        schema_editor.execute(statement)
    for statement in RECOUNT:
        schema_editor.execute(statement)


@contextmanager
def recounted_after() -> Iterator[None]:
    """For a bulk load inside a transaction (``restore``): the triggers off while
    the drawings go in, then every count made again in one ``GROUP BY``. A trigger
    a row costs more with every row of one long transaction: each update of a count
    row leaves a version that the transaction cannot prune and the next update
    walks past (a million drawings restored slowed from 2,000 rows a second to 590).
    DDL is transactional on both databases: a failed load rolls the triggers back
    with everything else."""
    if not connection.in_atomic_block:
        raise RuntimeError("recounted_after() belongs inside a transaction")
    if connection.vendor == "postgresql":
        off = [s.format(switch="DISABLE") for s in POSTGRES_SWITCH]
        on = [s.format(switch="ENABLE") for s in POSTGRES_SWITCH]
    else:
        off, on = SQLITE_DROP, SQLITE_TRIGGERS
    with connection.cursor() as cursor:
        for statement in off:
            cursor.execute(statement)
    yield
    with connection.cursor() as cursor:
        for statement in on + RECOUNT:
            cursor.execute(statement)


def uninstall(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for statement in SQLITE_DROP if vendor == "sqlite" else POSTGRES_DROP:
        schema_editor.execute(statement)


class DrawingCount(models.Model):
    """Drawings of one label, split, status and source (kept by triggers: never
    written by the application)."""

    label = models.PositiveSmallIntegerField()
    split = models.CharField(max_length=5)
    status = models.CharField(max_length=8)
    source = models.CharField(max_length=32)
    pen = models.BooleanField(help_text="the drawings have strokes")
    n = models.BigIntegerField(default=0)

    class Meta:
        app_label = "collector"
        constraints = [models.UniqueConstraint(fields=KEY, name="drawingcount_key")]

    def __str__(self) -> str:
        return f"{self.label}/{self.split}/{self.status}/{self.source}/{self.pen}: {self.n}"


def rows() -> list[tuple[int, str, str, str, bool, int]]:
    """Every (label, split, status, source, pen, count) with drawings."""
    return list(DrawingCount.objects.filter(n__gt=0).values_list(*KEY, "n"))


def total(**where) -> int:
    """How many drawings match ``where`` (fields of the key: ``status="approved"``,
    ``pen=True``): a sum over the kept counts, never a count of the drawings."""
    found = DrawingCount.objects.filter(n__gt=0, **where).aggregate(n=models.Sum("n"))["n"]
    return int(found or 0)


def sources() -> list[str]:
    """The sources drawings came from (for the admin's filter), from the kept counts."""
    return sorted(set(DrawingCount.objects.filter(n__gt=0).values_list("source", flat=True)))


class WriterCount(models.Model):
    """How many writers each split holds (``WriterSplit``): what a new writer's split
    is chosen from, read as three rows. Counting the writers' table instead was a
    scan of one row per writer on every new contributor's first drawing (tens of
    milliseconds at a hundred thousand contributors). Kept by
    ``WriterSplitManager.split_of`` in the transaction that adds the writer."""

    split = models.CharField(max_length=5, primary_key=True)
    writers = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.split}: {self.writers} writers"


def writers_per_split() -> dict[str, int]:
    return dict(WriterCount.objects.values_list("split", "writers"))


def count_writer(split: str) -> None:
    """One more writer in ``split`` (inside the transaction that adds them)."""
    if not WriterCount.objects.filter(split=split).update(writers=models.F("writers") + 1):
        WriterCount.objects.create(split=split, writers=1)
