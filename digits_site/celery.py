"""The Celery app: reads ``CELERY_*`` settings and finds each app's ``tasks.py``;
and ``send``, the one way a task is queued."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")

app = Celery("digits")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class BrokerUnavailable(RuntimeError):
    """The task queue cannot be reached; nothing was queued."""


def send(task, *args) -> None:
    """Queue ``task(*args)``, trying the broker twice at most (a request must not
    hang on a Redis that is down). Raises :class:`BrokerUnavailable`."""
    from kombu.exceptions import OperationalError

    try:
        task.apply_async(
            args=list(args),
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5},
        )
    except (OperationalError, OSError, ConnectionError) as exc:
        raise BrokerUnavailable(str(exc)) from exc
