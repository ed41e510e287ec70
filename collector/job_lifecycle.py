"""The life cycle staff's background jobs share (an export, an import): queued →
running → ended, each step one conditional UPDATE, so two workers never both take
one and an ended job is never ended again."""

from __future__ import annotations

from django.utils import timezone


class JobLifecycle:
    """Methods for a model with ``status`` (its ``Status`` has QUEUED, RUNNING and
    FAILED), ``done``, ``total``, ``error`` and ``finished_at``."""

    def claim(self) -> bool:
        """Take a queued job; False when someone else has it (or had it)."""
        claimed = (
            type(self)
            .objects.filter(pk=self.pk, status=self.Status.QUEUED)
            .update(status=self.Status.RUNNING)
        )
        self.refresh_from_db()
        return bool(claimed)

    def report(self, done: int, total: int) -> None:
        """Drawings read so far, of how many."""
        type(self).objects.filter(pk=self.pk).update(done=done, total=total)

    def fail(self, error: str) -> None:
        self._end(self.Status.FAILED, error=error[:2000])

    def _end(self, status: str, **fields) -> None:
        type(self).objects.filter(pk=self.pk, status=self.Status.RUNNING).update(
            status=status, finished_at=timezone.now(), **fields
        )
        self.refresh_from_db()
