"""Following a run while it trains: what a caller hears (:class:`Callback`), how
long is left (:class:`RemainingTime`), Keras' callbacks translated to ours, and
where the time went (:class:`Phases`).

Imports Keras: only workers and commands import it, never a web process.
"""

from __future__ import annotations

import time

import keras


class TrainingCancelled(Exception):
    """Raised between batches when the caller's callback asked to stop."""


class Callback:
    """What a caller hears while a model trains; override what you need.

    ``model`` is the Keras model being trained (set before the first batch), for
    callers that look at it between epochs, such as the learning-speed benchmark.
    ``eta_seconds`` is the estimated time left to the end of the run, testing and
    export included (:class:`RemainingTime`), kept current before each call.
    """

    model: keras.Model | None = None
    eta_seconds: float | None = None

    def on_batch(self, epoch: int, step: int, steps_per_epoch: int, logs: dict) -> None:
        """After every batch; callers throttle their own writes."""

    def on_epoch(self, epoch: int, logs: dict) -> None:
        """After every epoch; ``logs`` may be extended (it becomes the history)."""

    def on_testing(self) -> None:
        """Training is over; the model is being exported and tested (``eta_seconds``)."""

    def on_log(self, message: str) -> None:
        """A line for the run's log (the pen view's epochs and figures)."""

    def should_stop(self) -> bool:
        """Asked between batches: True ends training with :class:`TrainingCancelled`."""
        return False


class RemainingTime:
    """How long the run has left, from what it has measured so far.

    A training step's time is measured from the end of the first step on (the
    first one traces and compiles the step: seconds that never recur), so the
    estimate is right from the first epoch's first few batches. Validation is
    timed at each epoch's end and counted for the epochs left; until the first one
    it is estimated from the step time (a forward pass is about a third of a
    training step). Testing and export after the last epoch are estimated the same
    way, from the images they score, plus the conversion to the served artifact.
    Early stopping can only make the run shorter than the estimate.
    """

    EXPORT_SECONDS = 6.0  # TFLite conversion, saving and the report's plots, measured

    def __init__(
        self, epochs: int, steps_per_epoch: int, batch_size: int, val_images: int, test_images: int
    ):
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.val_images = val_images
        self.test_images = test_images
        self.first_step_end: float | None = None
        self.steps_timed = 0
        self.step_seconds: float | None = None
        self.validation_seconds: list[float] = []

    def step_done(self, now: float) -> None:
        if self.first_step_end is None:
            self.first_step_end = now
            return
        self.steps_timed += 1
        self.step_seconds = (now - self.first_step_end) / self.steps_timed

    def pause(self, seconds: float) -> None:
        """Time between steps that is not training (validation, callbacks): not a step's."""
        if self.first_step_end is not None:
            self.first_step_end += seconds

    def validated(self, seconds: float) -> None:
        self.validation_seconds.append(seconds)
        self.pause(seconds)

    def _scoring_seconds(self, images: int) -> float:
        if self.validation_seconds and self.val_images:
            return (
                sum(self.validation_seconds)
                / len(self.validation_seconds)
                / self.val_images
                * images
            )
        return (self.step_seconds or 0.0) / self.batch_size / 3 * images

    def finishing_seconds(self) -> float:
        """Testing and export: the served artifact and the Keras model each score every
        test set, the artifact also the validation set, and the gate scores the active
        model on the test sets again."""
        return self.EXPORT_SECONDS + self._scoring_seconds(3 * self.test_images + self.val_images)

    def estimate(self, epoch: int, step: int) -> float | None:
        """Seconds left after ``step`` of ``epoch`` (1-based); None before it can tell."""
        if self.step_seconds is None:
            return None
        steps_left = (self.epochs - epoch) * self.steps_per_epoch + self.steps_per_epoch - step
        validations_left = self.epochs - epoch + (1 if step < self.steps_per_epoch else 0)
        if step == self.steps_per_epoch and len(self.validation_seconds) < epoch:
            validations_left += 1  # this epoch's validation is still to come
        return (
            steps_left * self.step_seconds
            + validations_left * self._scoring_seconds(self.val_images)
            + self.finishing_seconds()
        )


class KerasBridge(keras.callbacks.Callback):
    """Keras' callback protocol, translated to :class:`Callback` (1-based epochs)."""

    def __init__(
        self, callback: Callback, steps_per_epoch: int, started: float, remaining: RemainingTime
    ):
        super().__init__()
        self.callback = callback
        self.steps_per_epoch = steps_per_epoch
        self.started = started
        self.remaining = remaining
        self.current_epoch = 1
        self.epoch_seconds: list[float] = []
        self.validation_started: float | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        self.remaining.step_done(time.monotonic())
        self.callback.eta_seconds = self.remaining.estimate(self.current_epoch, batch + 1)
        self.callback.on_batch(
            self.current_epoch, batch + 1, self.steps_per_epoch, dict(logs or {})
        )
        if self.callback.should_stop():
            raise TrainingCancelled("Cancelled on request.")

    def on_test_begin(self, logs=None):
        self.validation_started = time.monotonic()

    def on_test_end(self, logs=None):
        if self.validation_started is not None:
            self.remaining.validated(time.monotonic() - self.validation_started)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.monotonic() - self.started)
        paused = time.monotonic()
        self.callback.eta_seconds = self.remaining.estimate(epoch + 1, self.steps_per_epoch)
        self.callback.on_epoch(epoch + 1, logs if logs is not None else {})
        # The caller's own work between epochs (a benchmark scoring test sets) is not a step's.
        self.remaining.pause(time.monotonic() - paused)


class Phases:
    """Wall-clock seconds of each step of a run, for ``metrics.json``: where the time goes."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self.last, 2)
        self.last = now
