"""The pages a curator and the public open most read an index, not the whole
drawings table: every SQL statement of the stats, the dataset page and the
admin's list (first page, each filter and ordering, a search) is EXPLAINed on
PostgreSQL over 150,000 drawings, and none may plan a sequential scan of it;
nor may the question an ndjson import asks of every line.

The million lives in ``benchmarks/dataset_scale.py``; here the table is large
enough for the planner to prefer what it would prefer at a million (a seq scan
of a few hundred rows is its right choice, of 150,000 a defect)."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

ROWS = 150_000
ADMIN = "/admin/collector/drawing/"
PAGES = [
    "/api/dataset/stats/",
    "/dataset/",
    ADMIN,
    ADMIN + "?status__exact=pending",
    ADMIN + "?label__exact=7",
    ADMIN + "?split__exact=test",
    ADMIN + "?source=import%3Apendigits",
    ADMIN + "?disagrees=yes",
    ADMIN + "?o=-9",
    ADMIN + "?status__exact=approved&label__exact=3",
    ADMIN + "?q=addr%3Aplan-17",
    ADMIN + "?q=" + "ab" * 32,  # a sha256
]

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="query plans are PostgreSQL's"
)


def fill(rows: int) -> None:
    """``rows`` drawings in one INSERT (the counting triggers run as for any)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO collector_drawing (image, strokes, sha256, label, source, writer,
                predicted_label, predicted_confidence, split, status, session_key, client,
                stored_bytes, created_at, approved_at)
            SELECT 'drawings/x/' || i || '.png',
                   CASE WHEN i %% 3 = 0 THEN NULL ELSE '[[[1, 2, 0]]]'::jsonb END,
                   md5(i::text) || md5((i + 1)::text), i %% 10,
                   CASE WHEN i %% 10 < 6 THEN 'canvas' WHEN i %% 10 = 6 THEN 'correction'
                        ELSE 'import:pendigits' END,
                   '', CASE WHEN i %% 50 = 0 THEN (i + 1) %% 10 ELSE i %% 10 END,
                   0.5 + (i %% 50) / 100.0,
                   CASE WHEN i %% 10 < 8 THEN 'train' WHEN i %% 10 = 8 THEN 'val' ELSE 'test' END,
                   CASE WHEN i %% 20 < 16 THEN 'approved' WHEN i %% 20 < 19 THEN 'pending'
                        ELSE 'rejected' END,
                   '', 'addr:plan-' || (i %% 5000), 2000,
                   now() - (i %% 365) * interval '1 day',
                   now() - (i %% 9000) * interval '1 minute'
            FROM generate_series(1, %s) AS i
            """,
            [rows],
        )
        cursor.execute("ANALYZE collector_drawing")


def sequential_scans(plan: dict) -> list[str]:
    """The plan's sequential scans of the drawings table."""
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") == "collector_drawing":
        found.append(plan.get("Filter", "(no filter)"))
    for child in plan.get("Plans", []):
        found += sequential_scans(child)
    return found


def test_no_page_scans_the_drawings_table(db, staff_client):
    from classifier.registry import ensure_active_model

    ensure_active_model()
    fill(ROWS)
    problems = []
    for url in PAGES:
        with CaptureQueriesContext(connection) as captured:
            response = staff_client.get(url)
        assert response.status_code == 200, url
        statements = [q["sql"] for q in captured.captured_queries]
        assert any("collector_drawing" in sql for sql in statements), url
        for sql in statements:
            if "collector_drawing" not in sql or not sql.lstrip().upper().startswith("SELECT"):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            for scan in sequential_scans(plan[0]["Plan"]):
                problems.append(f"{url}: {sql[:160]} — Seq Scan, {scan}")
    # and an ndjson import's question for each line: are these strokes stored already?
    import numpy as np

    from collector import imports

    strokes = [np.array([[10.0, 20.0, 0.0], [30.0, 40.0, 10.0]])]
    with CaptureQueriesContext(connection) as captured:
        assert not imports.already_stored("", strokes)
    for query in captured.captured_queries:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + query["sql"])
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        for scan in sequential_scans(plan[0]["Plan"]):
            problems.append(f"already_stored: {query['sql'][:160]} — Seq Scan, {scan}")
    assert not problems, "\n".join(problems)
