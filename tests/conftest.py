"""Shared fixtures: real datasets from ../shared, the committed bootstrap model,
canvas PNGs rendered from real pen strokes, tiny training data, and Chromium
(signed in as staff where a test needs it)."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def data_url(png: bytes) -> str:
    """An image as the page sends it: ``data:image/png;base64,…``."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def wait_for(predicate, timeout: float, what: str):
    """``predicate()``'s first true value, asked every quarter second; an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def database_url() -> str:
    """This test run's database as a ``DATABASE_URL``, for the processes a test
    starts (workers, servers) to share it: SQLite's file, or the test database on
    the PostgreSQL server the suite runs against."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = f"{quote(db['USER'], safe='')}:{quote(db['PASSWORD'] or '', safe='')}"
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


# Another instance's data folder → its database on the PostgreSQL server.
_instance_databases: dict[str, str] = {}


def instance_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of another Digits instance with ``data_dir`` as its data
    folder and a database of its own, empty at first: SQLite in that folder, or,
    when the suite runs on PostgreSQL, a new database on the same server (the same
    one for the same folder; dropped when the session ends)."""
    import uuid

    from django.db import connection

    # No cache warm-up at start: minutes of rendering would compete with the tests.
    env = {**os.environ, "DIGITS_DATA_DIR": str(data_dir), "DIGITS_WARM_CACHES": "0", **extra}
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
        return env
    name = _instance_databases.get(str(data_dir))
    if name is None:
        name = f"digits_instance_{uuid.uuid4().hex[:12]}"
        with _maintenance_connection() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        _instance_databases[str(data_dir)] = name
    env["DATABASE_URL"] = database_url().rsplit("/", 1)[0] + "/" + name
    return env


def _maintenance_connection():
    """An autocommit connection to the server's ``postgres`` database (CREATE and
    DROP DATABASE cannot run in a transaction, nor in the database they name)."""
    import psycopg
    from django.db import connection

    db = connection.settings_dict
    return psycopg.connect(
        dbname="postgres", user=db["USER"], password=db["PASSWORD"], host=db["HOST"],
        port=db["PORT"], autocommit=True,
    )  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def _drop_instance_databases(django_db_setup):
    yield
    if _instance_databases:
        with _maintenance_connection() as admin:
            for name in _instance_databases.values():
                _drop_database(admin, name)


def _drop_database(admin, name: str, tries: int = 20) -> None:
    """Drop another instance's database, its sessions ended. ``WITH (FORCE)`` refuses
    to end a session our role may not signal: on PostgreSQL 15 that is an autovacuum
    worker that happens to be cleaning that database (it runs as the superuser), so
    a plain ``DROP DATABASE``, which stops autovacuum itself, is tried as well, and
    both again a moment later."""
    import psycopg

    for attempt in range(tries):
        for force in (" WITH (FORCE)", ""):
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
                return
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
                if attempt == tries - 1 and not force:
                    raise
        time.sleep(0.5)


@pytest.fixture(scope="session", autouse=True)
def _datasets_from_files_only():
    """Tests read datasets from files, never from the network (see settings)."""
    from django.conf import settings

    assert settings.DIGITS_MNIST_DIR and Path(settings.DIGITS_MNIST_DIR).is_dir(), (
        "Set DIGITS_MNIST_DIR to the folder with MNIST's four .gz files."
    )


@pytest.fixture(scope="session", autouse=True)
def limits_redis(tmp_path_factory):
    """A real redis-server (the embedded one) for the rate limits, as in production;
    yields its URL, which subprocesses get as REDIS_URL."""
    from django.conf import settings

    from operations import services

    folder = tmp_path_factory.mktemp("limits-redis")
    process = services.start_embedded_redis(folder / "redis.sock", folder)
    previous = settings.REDIS_URL
    settings.REDIS_URL = f"redis+socket://{folder / 'redis.sock'}"
    try:
        yield settings.REDIS_URL
    finally:
        settings.REDIS_URL = previous
        services.stop(process)


def set_rates(settings, **rates: str | None) -> None:
    """Change rate limits for one test (``settings`` is pytest-django's fixture)."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test writes model artifacts and drawings into its own folder, starts
    with no model loaded in this process, and with every rate-limit count at zero.
    Runs executed in this process (eager tasks) leave its priority and CPUs alone:
    ``training.priority`` would otherwise lower the test process itself, and every
    server and browser it starts afterwards (tests/test_training_priority.py and the
    real workers check the lowering)."""
    from classifier import runtime
    from digits_site import limits

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DIGITS_ITEM_CACHE_DIR = tmp_path / "item-cache"  # drawings' inputs go with them
    settings.DIGITS_MODEL_CHECK_SECONDS = 0
    settings.DIGITS_TRAINING_PRIORITY = "normal"
    runtime.reset()
    limits.counters.reset()
    yield
    runtime.reset()


@pytest.fixture
def active_model(db):
    """The committed bootstrap model, registered exactly as ``make run`` does."""
    from classifier.registry import ensure_active_model

    version, created = ensure_active_model()
    assert created
    return version


@pytest.fixture(scope="session")
def pen_digits():
    from training.sources import pendigits as pen_source

    return pen_source.load_pendigit_strokes()


@pytest.fixture(scope="session")
def unseen_pen_digits(pen_digits):
    """Digits by writers no shipped model trained on, two per class per writer at most."""
    from training.sources import pendigits as pen_source

    chosen, seen = [], {}
    for digit in pen_digits:
        if digit.writer not in pen_source.PENDIGITS_TEST_WRITERS:
            continue
        key = (digit.writer, digit.label)
        if seen.get(key, 0) < 2:
            seen[key] = seen.get(key, 0) + 1
            chosen.append(digit)
    return chosen


@pytest.fixture
def canvas_png(pen_digits):
    """A function: (label, index) → the canvas PNG that a person the models never
    saw sends when drawing that digit."""
    from classifier import canvas
    from training.sources import pendigits as pen_source

    by_label: dict[int, list] = {}
    for digit in pen_digits:
        if digit.writer not in pen_source.PENDIGITS_TEST_WRITERS:
            continue
        by_label.setdefault(digit.label, []).append(digit)

    def make(label: int = 7, index: int = 0, size: float = canvas.DEFAULT_RENDER_SIZE) -> bytes:
        return canvas.render_strokes(by_label[label][index].strokes, size)

    return make


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_superuser(
        "admin", "admin@example.com", "a-password-for-tests-only"
    )


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def eager_celery():
    """Tasks run in this process (unit speed); the real worker has its own tests."""
    from digits_site.celery import app

    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


@pytest.fixture
def tiny_run_config():
    """A run that trains in seconds: the MLP on 2,000 MNIST digits, one epoch."""
    return {
        "architecture": "mlp",
        "epochs": 1,
        "limit": 2000,
        "use_pendigits": False,
        "use_drawings": False,
        "augment": False,
    }


@pytest.fixture
def lenient_gate(settings):
    """Floors a one-epoch model can reach, and any loss against the active model
    tolerated: a tiny test model cannot match the bootstrap (test_gate.py judges
    the real rules)."""
    settings.DIGITS_GATE_FLOORS = {"mnist-test": 0.5, "default": 0.5}
    settings.DIGITS_GATE_MIN_EFFECT = settings.DIGITS_GATE_MIN_EFFECT_SYNTHETIC = 1.0
    settings.DIGITS_GATE_DRIFT = 1.0


def use_broker(url: str) -> None:
    """Point this process' Celery app at a broker (pools are bound to a URL)."""
    from digits_site.celery import app

    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


class WorkerStack:
    """What ``make run`` starts besides the web server: a real redis-server and a
    real Celery worker process. Redis can be stopped and started again (same socket)
    to inject an outage."""

    def __init__(self, socket: Path, logs: Path, env: dict):
        from operations import services

        self.socket, self.logs = socket, logs
        self.redis = services.start_embedded_redis(socket, logs)
        self.worker = services.start_worker(logs, env=env)

    def stop_redis(self) -> None:
        from operations import services

        services.stop(self.redis)
        self.redis = None

    def start_redis(self) -> None:
        from operations import services

        self.redis = services.start_embedded_redis(self.socket, self.logs)

    def worker_log(self) -> str:
        path = self.logs / "worker.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        from operations import services

        services.stop(self.worker, self.redis)


@pytest.fixture
def celery_worker_process(transactional_db, settings, tmp_path):
    """A real redis-server and a real Celery worker process, sharing this test's
    database file and media folder: what ``make run`` starts."""
    import json
    import time

    from digits_site.celery import app

    socket = tmp_path / "redis.sock"
    broker = f"redis+socket://{socket}"
    previous = app.conf.broker_url
    use_broker(broker)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "digits_site.settings",
        "DATABASE_URL": database_url(),
        "DIGITS_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DIGITS_DATA_DIR": str(settings.DIGITS_DATA_DIR),
        "CELERY_BROKER_URL": broker,
        "DIGITS_GATE_FLOORS": json.dumps({"mnist-test": 0.5, "default": 0.5}),
        # Tiny test models cannot match the bootstrap; test_gate.py judges the rules.
        "DIGITS_GATE_MIN_EFFECT": "1.0",
        "DIGITS_GATE_MIN_EFFECT_SYNTHETIC": "1.0",
        "DIGITS_GATE_DRIFT": "1.0",
    }
    stack = WorkerStack(socket, tmp_path / "logs", env)
    try:
        deadline = time.monotonic() + 90
        while not app.control.ping(timeout=1):
            assert stack.worker.poll() is None, stack.worker_log()
            assert time.monotonic() < deadline, "the worker did not come up"
        yield stack
    finally:
        stack.stop()
        use_broker(previous)


@pytest.fixture
def sync_browser_thread(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; browser tests do
    their DB work between its calls, never concurrently, so Django may allow it."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def tiny_mnist():
    """3,000 MNIST digits to train on, 500 to validate and 1,000 to test: seconds."""
    from training.sources import TrainingData
    from training.sources import base as source_base
    from training.sources import mnist as mnist_source

    mnist = mnist_source.load_mnist()
    return TrainingData(
        train=source_base.Images(mnist.train.x[:3000], mnist.train.y[:3000]),
        val=source_base.Images(mnist.train.x[-500:], mnist.train.y[-500:]),
        tests={"mnist-test": source_base.Images(mnist.test.x[:1000], mnist.test.y[:1000])},
    )


# Headless Debian Chromium, as the machine's closed network needs it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def launched_chromium():
    """Debian's Chromium driven by Playwright (never a browser it downloads)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Debian's Chromium is needed: apt-get install chromium (.ci/run does)."
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # Playwright runs an event loop in this thread, and while it does, Django
            # keeps the connections a test opens apart from the thread's own (asgiref's
            # Local is per context then): nothing else closes them, and PostgreSQL will
            # not drop the test database while one is open.
            from django.db import connections

            connections.close_all()


def sign_in(page, url: str, username: str = "admin", password: str = "a-password-for-tests-only"):
    page.goto(url + "/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


@pytest.fixture
def staff_browser(transactional_db, live_server, staff_user, sync_browser_thread):
    """A desktop Chromium page signed in to the admin as staff, and the site's URL."""
    with launched_chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        sign_in(page, live_server.url)
        yield page, live_server.url
