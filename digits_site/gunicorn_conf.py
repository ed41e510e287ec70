"""gunicorn's settings for every web server we start: ``make run`` (``manage.py
serve``), ``docker-compose.yml``, the Dockerfile and the benchmarks.

``gunicorn -c python:digits_site.gunicorn_conf digits_site.wsgi:application``

Async (gevent) workers, measured against the alternatives with
``benchmarks/slow_clients.py`` and ``benchmarks/predict_latency.py``: a sync
worker is one socket, so five clients that send their headers a line every two
seconds held all five workers and nobody else was answered. A gevent worker
waits on up to ``worker_connections`` sockets at once and only runs a request
once its bytes are in, so slow clients cost a little memory each, not a worker.
It also keeps connections alive between requests, which made a prediction
faster end to end (p50 2.2 ms against 2.8 to 3.5 ms for sync workers, 2.6 ms for
threads). Predictions are a millisecond of CPU that never waits on I/O, so
cooperative scheduling costs them nothing.

Anything here can still be overridden on the command line or through
``GUNICORN_CMD_ARGS``; ``WEB_CONCURRENCY`` sets the number of workers.
"""

import os

wsgi_app = "digits_site.wsgi:application"
worker_class = "digits_site.web_worker.Worker"  # gevent, connections bounded per address
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
# Connections each worker holds at once (slow or idle ones included); within the
# default limit of 1,024 open files per process.
worker_connections = int(os.environ.get("DIGITS_WORKER_CONNECTIONS", "900"))
keepalive = 5
timeout = 30
graceful_timeout = 10
# Requests larger than this are refused before Django sees them (a JSON 4xx).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
