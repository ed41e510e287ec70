"""WSGI entry point (gunicorn digits_site.wsgi), behind the front door's body limit."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
django_application = get_wsgi_application()

from digits_site.front import Front  # noqa: E402 (reads settings: after Django's setup)

application = Front(django_application)
