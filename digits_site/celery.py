"""The Celery app: reads ``CELERY_*`` settings and finds each app's ``tasks.py``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")

app = Celery("digits")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
