"""Fault: SQLite is busy (another process holds the write lock).

A contribution waits for the lock up to the configured timeout, then is refused
with a 503 that says nothing was saved — no row, no file — and the same request
succeeds once the lock is free. Predictions only read, so they keep working.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from django.db import connection

from classifier.registry import ensure_active_model
from collector.models import Drawing

from .conftest import data_url

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the lock is SQLite's; PostgreSQL has row locks"
)


def body(png: bytes, label: int) -> str:
    return json.dumps({"image": data_url(png), "label": label})


def stored_files(media: Path) -> list[Path]:
    return sorted(p for p in (media / "drawings").rglob("*.png")) if media.exists() else []


@pytest.fixture
def short_lock_timeout(transactional_db, monkeypatch):
    """Wait 0.3 s for the lock instead of the production default."""
    connection.close()
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.3)
    yield
    connection.close()


@pytest.fixture
def write_lock():
    """Another process' connection holding SQLite's write lock until released."""
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()


def test_a_contribution_while_the_database_is_locked_is_a_503_and_saves_nothing(
    short_lock_timeout, client, canvas_png, settings, request
):
    ensure_active_model()
    media = Path(settings.MEDIA_ROOT)
    first = client.post(
        "/api/drawings/", body(canvas_png(4, 0), 4), content_type="application/json"
    )
    assert first.status_code == 201

    holder = request.getfixturevalue("write_lock")
    refused = client.post(
        "/api/drawings/", body(canvas_png(7, 1), 7), content_type="application/json"
    )
    assert refused.status_code == 503
    assert refused.json() == {
        "error": "The database is busy right now; nothing was saved. Try again in a moment.",
        "code": "database_busy",
    }
    assert refused["Retry-After"] == "2"

    # Reads go on: WAL lets the page's predictions through while a writer holds the lock.
    predicted = client.post(
        "/api/predict/",
        json.dumps({"image": data_url(canvas_png(7, 1))}),
        content_type="application/json",
    )
    assert predicted.status_code == 200 and predicted.json()["digit"] == 7

    holder.execute("ROLLBACK")
    assert Drawing.objects.count() == 1 and len(stored_files(media)) == 1

    retried = client.post(
        "/api/drawings/", body(canvas_png(7, 1), 7), content_type="application/json"
    )
    assert retried.status_code == 201 and retried.json()["total"] == 2
    assert Drawing.objects.count() == 2
    assert [p.name for p in stored_files(media)] == sorted(
        f"{sha}.png" for sha in Drawing.objects.values_list("sha256", flat=True)
    )


def test_a_new_anonymous_session_under_the_lock_is_refused_the_same_way(
    short_lock_timeout, client, canvas_png, write_lock
):
    """The first contribution of a visitor writes their session row first."""
    refused = client.post(
        "/api/drawings/", body(canvas_png(2, 0), 2), content_type="application/json"
    )
    assert refused.status_code == 503 and refused.json()["code"] == "database_busy"
    write_lock.execute("ROLLBACK")
    assert Drawing.objects.count() == 0
