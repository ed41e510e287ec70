"""What one client may add to the dataset: a daily quota, a cap on drawings waiting
for review, and no near-copies of their own drawings.

The rate limit (``digits_site.limits``) spreads a client's contributions over
time; these bound what they add up to, from the database itself, so they hold
when Redis is down and on every web server. A contributor drawing for fun adds
a few dozen a day; the defaults are far above that and far below a script's
thousands a minute.

Near-duplicates are judged by how alike the ink looks (``collector.likeness``):
changing pixels of the PNG, moving, rescaling or slightly turning the drawing,
or a thicker pen, defeats the content hash but not this.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from collector import likeness
from collector.models import Drawing

# A client's most recent drawings compared against (all of them, for any real one).
COMPARED = 2000


class QuotaExceeded(Exception):
    """The client may not add more now; the message says why and until when."""

    code = "quota_exceeded"


def check_allowed(client: str, adding_bytes: int = 0) -> None:
    """Raise :class:`QuotaExceeded` if ``client`` has used its day's quota (in
    drawings, or in bytes with the ``adding_bytes`` of the one being added) or has
    too many drawings waiting for review. Called once before the work on a
    drawing, and again inside its insert's transaction, with the client's lock
    held (``Drawing.objects.add``), which is what makes the bounds exact."""
    if not client:
        return
    mine = Drawing.objects.filter(client=client)
    daily = settings.DIGITS_DAILY_CONTRIBUTIONS
    today = mine.filter(created_at__gte=timezone.now() - timedelta(days=1))
    if today.count() >= daily:
        raise QuotaExceeded(
            f"Thank you! You have added {daily} drawings in the last 24 hours, which is "
            "the most we take from one person in a day. Come back tomorrow."
        )
    most = settings.DIGITS_DAILY_CONTRIBUTION_BYTES
    if adding_bytes and (today.aggregate(n=Sum("stored_bytes"))["n"] or 0) + adding_bytes > most:
        raise QuotaExceeded(
            f"Thank you! Your drawings of the last 24 hours take {most // 1_000_000} MB, "
            "the most we store for one person in a day. Come back tomorrow."
        )
    waiting = settings.DIGITS_PENDING_PER_CLIENT
    if mine.filter(status=Drawing.Status.PENDING).count() >= waiting:
        raise QuotaExceeded(
            f"{waiting} of your drawings are waiting for review; new ones are welcome "
            "once some of them have been looked at."
        )


class NearCopy(Exception):
    """The client's own stored drawing looks the same as the one being added."""

    def __init__(self, drawing: Drawing):
        super().__init__(f"a near-copy of drawing {drawing.pk}")
        self.drawing = drawing


def admission(client: str, ink: np.ndarray, model_input: np.ndarray) -> Callable[[int], None]:
    """What ``Drawing.objects.add`` checks of a contribution inside its insert's
    transaction, with the client's lock held: not a near-copy of the client's own
    drawings (raises :class:`NearCopy` with it), then the quotas. Checked there,
    not before, so that near-copies sent at once are caught as exactly as the
    quotas are kept: the first is stored and the others find it."""

    def admit(adding_bytes: int) -> None:
        copy = near_duplicate(client, ink, model_input)
        if copy is not None:
            raise NearCopy(copy)
        check_allowed(client, adding_bytes)

    return admit


def near_duplicate(client: str, ink: np.ndarray, model_input: np.ndarray) -> Drawing | None:
    """The client's own stored drawing that looks the same as this one (its ink and
    model input), if any: moved, rescaled, turned a few degrees or redrawn with
    another pen width (``collector.likeness``)."""
    most = settings.DIGITS_NEAR_DUPLICATE_DISTANCE
    if not client or most < 0:
        return None
    rows = list(
        Drawing.objects.filter(client=client, fingerprint__isnull=False)
        .order_by("-created_at")
        .values_list("pk", "fingerprint")[:COMPARED]
    )
    prints = [(pk, bytes(f)) for pk, f in rows]
    current = [(pk, f) for pk, f in prints if len(f) != likeness.LEGACY_BYTES]
    legacy = [(pk, f) for pk, f in prints if len(f) == likeness.LEGACY_BYTES]
    matches = []
    if current:
        far = likeness.distances(ink, [f for _, f in current])
        matches += [pk for (pk, _), d in zip(current, far, strict=True) if d <= most]
    if legacy:
        bits = likeness.legacy_distances(model_input, [f for _, f in legacy])
        matches += [
            pk for (pk, _), d in zip(legacy, bits, strict=True) if d <= likeness.LEGACY_BITS
        ]
    return (
        Drawing.objects.filter(pk__in=matches).order_by("-created_at").first() if matches else None
    )


def reject_pending_from(clients: set[str]) -> int:
    """Reject every pending drawing of these clients (the admin's action); how many."""
    clients = {c for c in clients if c}
    if not clients:
        return 0
    return Drawing.objects.filter(client__in=clients, status=Drawing.Status.PENDING).update(
        status=Drawing.Status.REJECTED
    )
