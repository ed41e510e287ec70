"""Training yields the CPU to serving: a run on the same machine as the web
server must not slow predictions down.

Called first thing in a training process, before TensorFlow starts its thread
pools: Linux schedules each thread on its own, and threads inherit the policy of
the thread that creates them (so do the processes that build variant pools).
``DIGITS_TRAINING_PRIORITY``:

- ``idle`` (default): ``SCHED_IDLE``, the kernel runs training only on CPU time
  nothing else wants. Measured in ``benchmarks/predict_during_training.py``.
- ``nice``: niceness 19, for kernels without ``SCHED_IDLE``.
- ``normal``: leave it alone (a training-only host, a GPU worker).
"""

from __future__ import annotations

import logging
import os

from django.conf import settings

logger = logging.getLogger(__name__)


def lower() -> str:
    """Lower this process' CPU priority as configured; the policy now in force."""
    wanted = settings.DIGITS_TRAINING_PRIORITY
    if wanted == "normal":
        return "normal"
    if wanted == "idle" and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return "idle"
        except OSError as exc:
            logger.warning("SCHED_IDLE refused (%s); using niceness 19 instead", exc)
    try:
        os.nice(19 - os.nice(0))
    except OSError as exc:
        logger.warning("Could not lower the training priority: %s", exc)
        return "normal"
    return "nice"
