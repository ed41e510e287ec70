"""Training yields the CPU to serving: a run on the same machine as the web
server must not slow predictions down.

Called first thing in a training process, before TensorFlow starts its thread
pools. Linux schedules each thread on its own and new threads (and processes,
such as the ones that render variant pools) inherit their creator's policy and
CPU mask; the threads that already exist are changed one by one as well.
``DIGITS_TRAINING_PRIORITY``:

- ``idle`` (default): ``SCHED_IDLE``, the kernel runs training only on CPU time
  nothing else wants;
- ``nice``: niceness 19, for kernels without ``SCHED_IDLE``;
- ``normal``: leave it alone (a training-only host, a GPU worker).

With ``idle`` or ``nice`` the run also leaves ``DIGITS_TRAINING_SPARE_CPUS``
(default 1) of the machine's CPUs to serving. Priority alone was not enough,
measured by ``benchmarks/predict_during_training.py`` on 2 cores: the kernel
does not preempt a training thread while it runs kernel code (page faults,
pipes to the rendering processes, memory), and prediction p99 still rose 1.4 to
1.9× during a run. With one CPU kept free it rose 1.28× (2.16× at normal
priority). TensorFlow and the rendering pool size themselves to the CPUs they
may use.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings

logger = logging.getLogger(__name__)


def _threads() -> list[int]:
    """This process' thread ids (the policy and CPU mask are per thread on Linux)."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _spare_cpus() -> set[int] | None:
    """The CPUs training may use, or None to leave the mask alone."""
    spare = settings.DIGITS_TRAINING_SPARE_CPUS
    if not spare or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) <= spare:
        return None  # keep at least one CPU for training itself
    return set(allowed[spare:])  # serving keeps the first CPUs


def _set_idle(threads: list[int]) -> bool:
    if not hasattr(os, "SCHED_IDLE"):
        return False
    try:
        for tid in threads:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except OSError as exc:
        logger.warning("SCHED_IDLE refused (%s); using niceness 19 instead", exc)
        return False
    return True


def _set_nice(threads: list[int]) -> bool:
    try:
        for tid in threads:
            os.setpriority(os.PRIO_PROCESS, tid, 19)  # per thread on Linux
    except OSError as exc:
        logger.warning("Could not lower the training priority: %s", exc)
        return False
    return True


def lower(*, spare_cpus: bool = True) -> str:
    """Lower this process' CPU priority as configured and (unless ``spare_cpus`` is
    False: a short start-up warm-up that may use every CPU at the lowest priority)
    leave the spare CPUs to serving; the policy now in force (``idle``, ``nice`` or
    ``normal``)."""
    if settings.DIGITS_TRAINING_PRIORITY == "normal":
        return "normal"
    threads = _threads()
    cpus = _spare_cpus() if spare_cpus else None
    if cpus is not None:
        try:
            for tid in threads:
                os.sched_setaffinity(tid, cpus)
        except OSError as exc:
            logger.warning("Could not leave CPUs to serving: %s", exc)
    if settings.DIGITS_TRAINING_PRIORITY == "idle" and _set_idle(threads):
        return "idle"
    return "nice" if _set_nice(threads) else "normal"
