"""A progress bar per step for long commands (backup, restore), on standard error."""

from __future__ import annotations

from tqdm import tqdm


class ProgressBars:
    """Called as ``progress(step, done, total)``: one bar per step, closed when the
    next step starts or the block ends."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.step: str | None = None
        self.bar: tqdm | None = None

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __call__(self, step: str, done: int, total: int) -> None:
        if self.quiet:
            return
        if step != self.step:
            self._close()
            self.step = step
            unit = "file" if "files" in step else "object" if "database" in step else "step"
            self.bar = tqdm(total=total, desc=step, unit=unit, leave=True)
        self.bar.update(done - self.bar.n)
