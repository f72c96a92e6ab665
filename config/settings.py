"""Cronhouse settings.

With no environment set, Cronhouse runs embedded: SQLite in ``var/`` and Celery over
kombu's ``filesystem://`` transport, so one command starts everything on a laptop.
``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and Redis; nothing else in
the code path changes. Every variable is listed with its meaning in ``.env.example``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("CRONHOUSE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

PRODUCTION = env.str("CRONHOUSE_MODE", default="development") == "production"
# Off unless asked for (DEBUG=true): the debug pages list every URL to anyone and show the
# request and its code. Even then, no error page holds a secret (core.safe_errors).
DEBUG = env.bool("DEBUG", default=False)
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.safe_errors.SecretHidingReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "core.safe_errors.SecretHidingReporter"

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
    # Login throttling: failed logins counted per account and per address (see "Logins" below).
    "axes",
    # Content-Security-Policy header (its system checks and nonce support).
    "csp",
    "django_celery_beat",
    "jobs",
    "notifications",
    "billing",
    "accounts",
    "directory",
]

MIDDLEWARE = [
    # First: before anything reads a request body (the CSRF check reads forms).
    "core.slow_clients.client_timeout_middleware",
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware (HTTPS redirect first), before anything that reads a session:
    # gunicorn serves the admin's CSS and JS itself, no proxy or runserver needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Names the user and the surface on the job versions a request records.
    "jobs.permissions.authors.change_author_middleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes documents: it turns a login refused for a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
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
    {
        # E-mails (templates/emails/, rendered only by notifications): Jinja2, see notifications/email/jinja.py.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "emails",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {"environment": "notifications.email.jinja.environment"},
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
# The languages customer e-mails are shipped in (docs/notifications.md, "Languages"): a
# member's or an organization's language is one of these; blank falls back to LANGUAGE_CODE.
LANGUAGES = [("en", "English"), ("de", "German")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Django's documented override of a locale's formats (config/formats/en: the admin's date hierarchy).
FORMAT_MODULE_PATH = "config.formats"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files are served by WhiteNoise from the web process itself (gunicorn has no static
# handler and DEBUG is off). Production serves what `manage.py collectstatic` put in STATIC_ROOT,
# compressed and with content-hashed names cached for a year; collectstatic is a deployment step
# (docs/operations.md, "Serving") and `check --deploy` says when it was not run (jobs.W010).
# Development serves straight from the apps' static folders, so a plain checkout needs no step.
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default="") or VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
# Development looks a file up when it is asked for instead of scanning every static folder each
# time a request handler starts (every test client starts one).
WHITENOISE_AUTOREFRESH = not PRODUCTION

# --- HTTPS, cookies and security headers ----------------------------------------------
# Production defaults are the safe ones: HTTPS only (redirect, HSTS, secure cookies). Behind a
# proxy that terminates TLS, set SECURE_PROXY_SSL_HEADER, or every request looks like plain HTTP
# and is redirected forever. Every variable is described in .env.example.


def _env_or(cast, name: str, default):
    """``cast(name)``, where an empty variable (as .env.example lists them) means the default."""
    return cast(name, default=default) if env.str(name, default="") else default


SECURE_SSL_REDIRECT = _env_or(env.bool, "SECURE_SSL_REDIRECT", PRODUCTION)
# Paths (regular expressions, no leading slash) answered over plain HTTP too: a load balancer's
# health probe usually speaks HTTP to the web process directly.
SECURE_REDIRECT_EXEMPT = _env_or(env.list, "SECURE_REDIRECT_EXEMPT", [r"^health/$"])
# Browsers that saw the header refuse plain HTTP for this long; it cannot be taken back from them,
# so try HTTPS with a small value (3600) first. Subdomains and the preload list are opt-in: they
# bind every other host of the domain too.
SECURE_HSTS_SECONDS = _env_or(env.int, "SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_or(env.bool, "SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _env_or(env.bool, "SECURE_HSTS_PRELOAD", False)


def _proxy_ssl_header(value: list[str]) -> tuple[str, str] | None:
    """``HTTP_X_FORWARDED_PROTO,https`` -> Django's (header, value) pair; empty -> None."""
    if not value:
        return None
    if len(value) != 2 or not value[0].startswith("HTTP_") or not value[1]:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be 'HTTP_<HEADER>,<value>', e.g. HTTP_X_FORWARDED_PROTO,https."
        )
    return (value[0], value[1])


# Only when every request passes a proxy that sets this header itself (a client could send it).
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env.list("SECURE_PROXY_SSL_HEADER", default=[]))
SESSION_COOKIE_SECURE = _env_or(env.bool, "SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = _env_or(env.bool, "CSRF_COOKIE_SECURE", PRODUCTION)

# Content-Security-Policy (django-csp): scripts only from this site or inline with the request's
# nonce (templates write nonce="{{ request.csp_nonce }}"), so injected markup cannot run script.
# Styles may be inline: Django's admin writes an inline <style>, pages and charts use style
# attributes, and the e-mail preview (an iframe's srcdoc inherits this policy) is inline-styled;
# CSS cannot run code. No framing (as X-Frame-Options), forms post only here.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Logins (django-axes) -------------------------------------------------------------
# Every password check goes through authenticate(request, ...) (the admin login, which is the
# dashboard's login too, and the dashboard's password re-entry), so axes counts each failure.
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out login before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# After this many failed logins within the cool-off the login is refused, even with the right
# password, until the cool-off has passed since the last failure (each try while locked counts).
AXES_FAILURE_LIMIT = _env_or(env.int, "LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=_env_or(env.float, "LOGIN_COOLOFF_MINUTES", 15))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME <= timedelta(0):
    # 0 would lock every login out; no cool-off would lock until a superuser unlocks.
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be at least 1.")


def _lockout_parameters(value: list[str]) -> list[str | list[str]]:
    """LOGIN_LOCKOUT_BY: comma-separated counters; "username+ip_address" counts the pair."""
    parameters = [part.split("+") if "+" in part else part for part in value]
    names = {name for parameter in parameters for name in ([parameter] if isinstance(parameter, str) else parameter)}
    if not parameters or not names <= {"username", "ip_address"}:
        raise ImproperlyConfigured(
            "LOGIN_LOCKOUT_BY takes username, ip_address or username+ip_address, comma-separated."
        )
    return parameters


# Default "username,ip_address": two counters, one per account (whatever the address, so guessing
# one password from many addresses stops) and one per address (whatever the account, so trying
# many accounts from one address stops). The price: anyone can keep an account locked by failing
# on purpose; "username+ip_address" counts the pair instead, which never locks the owner out from
# their own address but lets a password be guessed from many addresses.
AXES_LOCKOUT_PARAMETERS = _lockout_parameters(_env_or(env.list, "LOGIN_LOCKOUT_BY", ["username", "ip_address"]))
# The address the API's rate limit uses too (TRUSTED_PROXY_HOPS; IPv6 counted per /64).
AXES_CLIENT_IP_CALLABLE = "jobs.permissions.logins.login_client_address"
# The lockout page (templates/admin/login_locked_out.html), status 429.
AXES_LOCKOUT_CALLABLE = "jobs.permissions.logins.lockout_response"
# Failed logins are in the audit log (jobs.permissions.logins); successful ones need no second table.
AXES_DISABLE_ACCESS_LOG = True
# No start-up banner on every command; axes' own log lines mask the username and address.
AXES_VERBOSE = False

# --- E-mail ---------------------------------------------------------------------------

# EMAIL_URL unset or empty: every message is written to a file in var/mail/ (Django's file
# backend), so nothing is sent by accident and no e-mail body fills a terminal, a log or a run's output.
EMAIL_URL = env.str("EMAIL_URL", default="") or f"filemail:///{VAR_DIR / 'mail'}"
vars().update(env.email_url_config(EMAIL_URL))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="cronhouse@localhost")

# --- Celery ---------------------------------------------------------------------------

# "localhost" names no server (the filesystem transport has none); without a host kombu logs a
# warning on every connection.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "filesystem://localhost//"
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
# The queue a job that names none is published to, and the one a worker started without -Q takes.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# The other queues a job may name (its runs go there; a worker takes them with -Q), e.g. "slow".
JOBS_QUEUES = env.list("JOBS_QUEUES", default=[])
# Celery's Django fixup opens a new database connection per task unless this is set;
# measured here it cut a two-write task from 464/s to 94/s.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=200)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "jobs.scheduling.beat:LeaderDatabaseScheduler"
# Beat checks the schedule at least this often, so cron edits reach it within ~5 s.
CELERY_BEAT_MAX_LOOP_INTERVAL = env.int("CELERY_BEAT_MAX_LOOP_INTERVAL", default=5)
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- Cronhouse ------------------------------------------------------------------------

# Seconds a run may exceed its timeout before the reaper declares it abandoned.
JOBS_REAPER_GRACE_SECONDS = env.int("JOBS_REAPER_GRACE_SECONDS", default=60)
# Seconds a run in flight is given to end when its worker is stopped (SIGTERM, Ctrl-C on `up`);
# then it is stopped, its processes ended, and it ends `abandoned` (docs/operations.md "Stopping").
JOBS_STOP_GRACE_SECONDS = env.float("JOBS_STOP_GRACE_SECONDS", default=20.0)
# A running run writes a heartbeat this often; one silent for the timeout is abandoned.
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=5.0)
JOBS_HEARTBEAT_TIMEOUT_SECONDS = env.int("JOBS_HEARTBEAT_TIMEOUT_SECONDS", default=30)
# Seconds a cancelled run is given to stop at its next progress step or check; then its worker
# ends its processes, records it cancelled and kills the process running it (docs/operations.md).
JOBS_CANCEL_GRACE_SECONDS = env.float("JOBS_CANCEL_GRACE_SECONDS", default=30.0)
# A queued run whose message was published but not picked up this long ago is re-sent.
JOBS_REDISPATCH_AFTER_SECONDS = env.int("JOBS_REDISPATCH_AFTER_SECONDS", default=120)
# Bytes of command output kept per run (head and tail).
JOBS_OUTPUT_LIMIT = env.int("JOBS_OUTPUT_LIMIT", default=64 * 1024)
# Management commands a job may run besides job definitions and JobCommands (jobs.catalog.allowlist).
JOBS_EXTRA_COMMANDS = env.list("JOBS_EXTRA_COMMANDS", default=[])
# Celery tasks a beat row no job owns may name in django-celery-beat's admin, besides
# celery.backend_cleanup (jobs.scheduling.periodic_task_actions.schedulable_task_names).
JOBS_BEAT_EXTRA_TASKS = env.list("JOBS_BEAT_EXTRA_TASKS", default=[])
# One beat leads (jobs.scheduling.leader): it holds a lease in the database that it renews every second;
# other beats are hot standbys that take the lease once it has not been renewed for this long.
# False: every beat fires (the (job, slot) constraint still makes one run per slot).
JOBS_BEAT_LEADER_LEASE = env.bool("JOBS_BEAT_LEADER_LEASE", default=True)
JOBS_BEAT_LEASE_SECONDS = env.float("JOBS_BEAT_LEASE_SECONDS", default=6.0)
# The database is the clock (jobs.scheduling.clock). A process whose clock is off from it by more than the
# first (seconds) logs a WARNING; a beat off by more than the second refuses to lead.
JOBS_CLOCK_SKEW_WARN_SECONDS = env.float("JOBS_CLOCK_SKEW_WARN_SECONDS", default=2.0)
JOBS_CLOCK_SKEW_MAX_SECONDS = env.float("JOBS_CLOCK_SKEW_MAX_SECONDS", default=10.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # sys.__stderr__: inside a Celery worker sys.stderr is a logging proxy that would log
    # every line a second time.
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.__stderr__"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes: its INFO lines are per login (clean-ups, successes); failures and lockouts are WARNING.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- Billing --------------------------------------------------------------------------

# Rows per transaction in billing jobs: a crash loses at most one uncommitted batch, and the
# query count grows only with the number of batches.
BILLING_BATCH_SIZE = env.int("BILLING_BATCH_SIZE", default=10_000)
# Percent of collected rent the property manager keeps (per owner; this is the default).
BILLING_MANAGEMENT_FEE_PERCENT = env.str("BILLING_MANAGEMENT_FEE_PERCENT", default="8.00")
# Days before the due date the rent reminder (no autopay) and the autopay notice go out.
BILLING_RENT_REMINDER_DAYS = env.int("BILLING_RENT_REMINDER_DAYS", default=3)
BILLING_AUTOPAY_REMINDER_DAYS = env.int("BILLING_AUTOPAY_REMINDER_DAYS", default=3)
# Days past due at which escalating overdue notices go out, each tier once per charge.
BILLING_OVERDUE_TIERS = env.list("BILLING_OVERDUE_TIERS", cast=int, default=[1, 5, 15, 30])
# Days before a lease ends at which expiry alerts go out, each tier once per lease.
BILLING_LEASE_EXPIRY_TIERS = env.list("BILLING_LEASE_EXPIRY_TIERS", cast=int, default=[90, 60, 30, 14, 7])
# Payment processor settlement API (financial-reconciliation). Empty URL: only --file imports.
BILLING_PROCESSOR_BASE_URL = env.str("BILLING_PROCESSOR_BASE_URL", default="")
BILLING_PROCESSOR_API_KEY = env.str("BILLING_PROCESSOR_API_KEY", default="")
BILLING_PROCESSOR_TIMEOUT_SECONDS = env.float("BILLING_PROCESSOR_TIMEOUT_SECONDS", default=20.0)
# A processor payment with no settlement record this many days after it was received is
# reported "missing at processor".
BILLING_SETTLEMENT_GRACE_DAYS = env.int("BILLING_SETTLEMENT_GRACE_DAYS", default=3)
# Where owner statement PDFs are stored, and the letterhead printed on them.
# An empty value (as in .env.example) means the default.
BILLING_STATEMENTS_DIR = Path(env.str("BILLING_STATEMENTS_DIR", default="") or VAR_DIR / "statements")
BILLING_COMPANY_NAME = env.str("BILLING_COMPANY_NAME", default="Cronhouse Property Management")
BILLING_COMPANY_ADDRESS = env.str("BILLING_COMPANY_ADDRESS", default="1 Main Street, Springfield")
# Owner statement PDFs as a named storage, so a queued e-mail can attach one by reference.
# Added to STORAGES above (which keeps WhiteNoise's manifest storage in production).
STORAGES["billing_statements"] = {"BACKEND": "billing.models.statements.StatementStorage"}
# Disbursement provider that pays owner payouts (submit-payouts, reconcile-payouts; the API is in
# docs/billing.md). Empty URL: payouts stay pending and the runs say so. The key has no default.
BILLING_PAYOUT_PROVIDER_URL = env.str("BILLING_PAYOUT_PROVIDER_URL", default="")
BILLING_PAYOUT_PROVIDER_KEY = env.str("BILLING_PAYOUT_PROVIDER_KEY", default="")
BILLING_PAYOUT_PROVIDER_TIMEOUT_SECONDS = env.float("BILLING_PAYOUT_PROVIDER_TIMEOUT_SECONDS", default=20.0)
BILLING_PAYOUT_CURRENCY = env.str("BILLING_PAYOUT_CURRENCY", default="USD")
# --- End billing ----------------------------------------------------------------------

# --- Accounts (the SaaS customers) ----------------------------------------------------
# Every variable is described in .env.example.

ACCOUNTS_BATCH_SIZE = env.int("ACCOUNTS_BATCH_SIZE", default=10_000)
# Days before a trial ends at which trial reminders go out, each tier once per subscription.
ACCOUNTS_TRIAL_REMINDER_TIERS = env.list("ACCOUNTS_TRIAL_REMINDER_TIERS", cast=int, default=[7, 1])
# Paths on SITE_URL that customer e-mails link to.
ACCOUNTS_SUBSCRIPTION_PATH = env.str("ACCOUNTS_SUBSCRIPTION_PATH", default="/account/{account_id}/subscription/")
ACCOUNTS_CATALOG_PATH = env.str("ACCOUNTS_CATALOG_PATH", default="/catalogs/{catalog_id}/")
# Web Push subscriptions unused this many days are removed (cleanup-push-subscriptions).
ACCOUNTS_PUSH_UNUSED_DAYS = env.int("ACCOUNTS_PUSH_UNUSED_DAYS", default=90)
# Error logging, and how long its rows are kept (purge-error-logs runs only while it is on).
ACCOUNTS_ERROR_LOGGING_ENABLED = env.bool("ACCOUNTS_ERROR_LOGGING_ENABLED", default=False)
ACCOUNTS_ERROR_LOG_RETENTION_DAYS = env.int("ACCOUNTS_ERROR_LOG_RETENTION_DAYS", default=30)
# How customers pay: subscription, license or hybrid; licenses (check-license-expiration) exist
# only in the last two.
ACCOUNTS_BILLING_MODEL = env.str("ACCOUNTS_BILLING_MODEL", default="subscription")
ACCOUNTS_LICENSES_ENABLED = ACCOUNTS_BILLING_MODEL in ("license", "hybrid")
ACCOUNTS_LICENSE_WARNING_DAYS = env.list("ACCOUNTS_LICENSE_WARNING_DAYS", cast=int, default=[7, 3, 1])
# The affiliate programme, and how long a conversion is held before it is approved.
ACCOUNTS_AFFILIATES_ENABLED = env.bool("ACCOUNTS_AFFILIATES_ENABLED", default=False)
ACCOUNTS_AFFILIATE_HOLD_DAYS = env.int("ACCOUNTS_AFFILIATE_HOLD_DAYS", default=30)
# Stripe (sync-stripe, seeded only with a key). The API base is Stripe's unless set (tests point
# it at a local server); the library retries 5xx answers this many times.
ACCOUNTS_STRIPE_API_KEY = env.str("ACCOUNTS_STRIPE_API_KEY", default="")
ACCOUNTS_STRIPE_API_BASE = env.str("ACCOUNTS_STRIPE_API_BASE", default="")
ACCOUNTS_STRIPE_MAX_RETRIES = env.int("ACCOUNTS_STRIPE_MAX_RETRIES", default=2)
ACCOUNTS_STRIPE_TIMEOUT_SECONDS = env.float("ACCOUNTS_STRIPE_TIMEOUT_SECONDS", default=30.0)
# process-account-deletions carries out a deletion request this many days after it was made.
ACCOUNTS_DELETION_GRACE_DAYS = env.int("ACCOUNTS_DELETION_GRACE_DAYS", default=30)


def _credit_providers(names: list[str]) -> list[dict]:
    """check-provider-credits' providers: ACCOUNTS_CREDIT_PROVIDERS names them; each NAME has
    ACCOUNTS_CREDIT_PROVIDER_<NAME>_URL and _KEY (required), _LOW_BALANCE and _BALANCE_FIELD."""
    providers = []
    for name in names:
        if not name.isidentifier():
            raise ImproperlyConfigured(f"ACCOUNTS_CREDIT_PROVIDERS: {name!r} is not a name of letters, digits and _.")
        prefix = f"ACCOUNTS_CREDIT_PROVIDER_{name.upper()}_"
        providers.append(
            {
                "name": name,
                "url": env.str(prefix + "URL"),
                "key": env.str(prefix + "KEY"),
                "low_balance": env.str(prefix + "LOW_BALANCE", default="") or None,
                "balance_field": env.str(prefix + "BALANCE_FIELD", default="balance"),
            }
        )
    return providers


ACCOUNTS_CREDIT_PROVIDERS = _credit_providers(env.list("ACCOUNTS_CREDIT_PROVIDERS", default=[]))
ACCOUNTS_CREDIT_PROVIDER_TIMEOUT_SECONDS = env.float("ACCOUNTS_CREDIT_PROVIDER_TIMEOUT_SECONDS", default=10.0)
# --- End accounts ---------------------------------------------------------------------

# --- Notifications --------------------------------------------------------------------
# Settings of the notifications app, the job alerts and log retention. Every
# variable is described in .env.example.

# Links in e-mails are built from this (no trailing slash needed).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# Administrators told about critical events (notifications.alerts.admins.admins_notify), comma-separated
# addresses. Empty: the job-alert recipients.
ADMINS = [("", address) for address in env.list("ADMINS", default=[])]
# Staff who receive job failure / escalation / recovery e-mails (comma-separated). Empty: every
# active superuser with an e-mail address receives them (the dashboard and jobs.W005 say so).
JOBS_ALERT_RECIPIENTS = env.list("JOBS_ALERT_RECIPIENTS", default=[])
# E-mail: the right-hand side of every Message-ID (<notification uuid>@this).
NOTIFICATIONS_MESSAGE_ID_DOMAIN = env.str("NOTIFICATIONS_MESSAGE_ID_DOMAIN", default="cronhouse.local")
# A send attempt is counted when claimed; after this many the message is dead.
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=5)
# Messages one drain claims per transaction, and how long one process-notifications run drains.
NOTIFICATIONS_BATCH_SIZE = env.int("NOTIFICATIONS_BATCH_SIZE", default=200)
NOTIFICATIONS_DRAIN_SECONDS = env.float("NOTIFICATIONS_DRAIN_SECONDS", default=25.0)
# A message (or webhook delivery) left "processing" this long had its sender die: claim it again.
NOTIFICATIONS_STALE_CLAIM_SECONDS = env.int("NOTIFICATIONS_STALE_CLAIM_SECONDS", default=15 * 60)
# E-mail attachments (by reference, read at send time): the STORAGES keys they may come from,
# the largest file attached (a larger one is sent as a signed link), and how long a link works.
NOTIFICATIONS_ATTACHMENT_STORAGES = ["billing_statements"]
NOTIFICATIONS_ATTACHMENT_MAX_BYTES = env.int("NOTIFICATIONS_ATTACHMENT_MAX_BYTES", default=5 * 1024 * 1024)
NOTIFICATIONS_ATTACHMENT_LINK_MAX_AGE = env.int("NOTIFICATIONS_ATTACHMENT_LINK_MAX_AGE", default=14 * 24 * 3600)
# SMTP socket timeout (seconds), far below the stale-claim age so a slow server is not a resend.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=globals().get("EMAIL_TIMEOUT") or 30)
# Outgoing webhooks: attempts per delivery, first retry delay (x5 per further attempt),
# connect/read timeouts, and how much of a response body is kept.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=3)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=60)
WEBHOOK_CONNECT_TIMEOUT = env.float("WEBHOOK_CONNECT_TIMEOUT", default=5.0)
WEBHOOK_READ_TIMEOUT = env.float("WEBHOOK_READ_TIMEOUT", default=10.0)
WEBHOOK_RESPONSE_EXCERPT = env.int("WEBHOOK_RESPONSE_EXCERPT", default=2000)
# Outbound-HTTP guard (core.http_guard). Deliberately NOT read from the environment: only
# tests turn it on (with the settings fixture) to let a receiver on 127.0.0.1 answer.
JOBS_HTTP_GUARD_ALLOW_LOOPBACK = False
# Loopback is let through on these ports only (empty: never). Not read from the environment
# either: only the embedded demo's own port, below ("The embedded demo's stand-ins").
JOBS_HTTP_GUARD_LOOPBACK_PORTS: frozenset[int] = frozenset()
# Redirects the guard follows (each hop is checked like the first URL).
JOBS_HTTP_MAX_REDIRECTS = env.int("JOBS_HTTP_MAX_REDIRECTS", default=3)
# Retention: audit + system log rows (audit-log-cleanup), job runs (purge-logs keeps the
# newest JOBS_RUNS_KEEP_PER_JOB per job regardless), sent/dead notifications and deliveries.
JOBS_AUDIT_RETENTION_DAYS = env.int("JOBS_AUDIT_RETENTION_DAYS", default=90)
JOBS_RUN_RETENTION_DAYS = env.int("JOBS_RUN_RETENTION_DAYS", default=90)
JOBS_RUNS_KEEP_PER_JOB = env.int("JOBS_RUNS_KEEP_PER_JOB", default=20)
NOTIFICATIONS_RETENTION_DAYS = env.int("NOTIFICATIONS_RETENTION_DAYS", default=90)
# Alert channels (notifications/models/channels.py): a job alerts after this many failed runs in a
# row; this many alerts on one channel within DIGEST_SECONDS become one digest message; a chat or
# incident delivery is tried MAX_ATTEMPTS times, waiting RETRY_BASE_SECONDS, then 3x, at most 15 min.
NOTIFICATIONS_ALERT_AFTER_FAILURES = env.int("NOTIFICATIONS_ALERT_AFTER_FAILURES", default=1)
# ... or after this many failed runs within WINDOW_SECONDS, passes in between or not (0: off).
NOTIFICATIONS_ALERT_FAILURES_IN_WINDOW = env.int("NOTIFICATIONS_ALERT_FAILURES_IN_WINDOW", default=0)
NOTIFICATIONS_ALERT_FAILURE_WINDOW_SECONDS = env.int("NOTIFICATIONS_ALERT_FAILURE_WINDOW_SECONDS", default=3600)
# When one check finds this many jobs late (or no longer late) at once -- after downtime --, each
# destination gets one summary naming them instead of one message per job.
NOTIFICATIONS_LATE_SUMMARY_AFTER = env.int("NOTIFICATIONS_LATE_SUMMARY_AFTER", default=10)
NOTIFICATIONS_ALERT_DIGEST_AFTER = env.int("NOTIFICATIONS_ALERT_DIGEST_AFTER", default=3)
NOTIFICATIONS_ALERT_DIGEST_SECONDS = env.int("NOTIFICATIONS_ALERT_DIGEST_SECONDS", default=60)
NOTIFICATIONS_ALERT_MAX_ATTEMPTS = env.int("NOTIFICATIONS_ALERT_MAX_ATTEMPTS", default=8)
NOTIFICATIONS_ALERT_RETRY_BASE_SECONDS = env.int("NOTIFICATIONS_ALERT_RETRY_BASE_SECONDS", default=30)
# Rows one retention batch deletes (each batch its own short transaction).
JOBS_PURGE_BATCH_SIZE = env.int("JOBS_PURGE_BATCH_SIZE", default=1000)
# --- end Notifications ----------------------------------------------------------------

# --- Surfaces -------------------------------------------------------------------------
# Admin, staff dashboard, HTTP trigger API and webhook handlers. Every variable is
# described in .env.example.

# Bearer token of the HTTP trigger API (POST /api/jobs/run, GET /api/jobs/status, /api/runs/N).
# Unset (the goal once schedulers have named API keys, docs/permissions.md), the API accepts only
# named keys. Shorter than 32 characters or a placeholder, it is refused and `manage.py check
# --deploy` says so (jobs.W001); set and usable, jobs.W004 there says how to move off it.
JOBS_SECRET_KEY = env.str("JOBS_SECRET_KEY", default="")


def _development_fernet_key() -> str:
    """A random Fernet key kept in var/, so a laptop can store webhook secrets; never committed."""
    import base64

    path = VAR_DIR / "secrets_encryption_key"
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


# Fernet keys that encrypt webhook-handler secrets at rest, comma-separated, newest first:
# the first encrypts, all decrypt (rotation: prepend a new key, re-save, then drop the old).
# Production has no default (system check jobs.W002); development generates one into var/.
JOBS_SECRETS_ENCRYPTION_KEY = env.list("JOBS_SECRETS_ENCRYPTION_KEY", default=[])
if not JOBS_SECRETS_ENCRYPTION_KEY and not PRODUCTION:
    JOBS_SECRETS_ENCRYPTION_KEY = [_development_fernet_key()]
# Requests one API client may make per window: the key holder (per key), a staff user (per
# user), and anyone else (no or a wrong token) per client address; see core/ratelimit.py.
JOBS_API_RATE_LIMIT = env.str("JOBS_API_RATE_LIMIT", default="120/m")
# Actions one person may take per window on the dashboard and in the admin ("Run now", retry,
# run a slot again, backfill, the failures page's actions and acknowledge), counted together
# per user (jobs.permissions.guards.action_rate_limited). Beyond it nothing is recorded.
JOBS_ACTION_RATE_LIMIT = env.str("JOBS_ACTION_RATE_LIMIT", default="5/m")
# Reverse proxies in front of the web server that append to X-Forwarded-For (0: none, the
# client address is REMOTE_ADDR). Only the entry the outermost of them wrote is believed.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
# No longer read (a header a client can set itself); the system check jobs.W003 says so.
RATELIMIT_IP_META_KEY = env.str("RATELIMIT_IP_META_KEY", default="") or None
# Seconds one read or write on a client connection may wait (gunicorn only, core/slow_clients.py).
WEB_CLIENT_TIMEOUT_SECONDS = env.float("WEB_CLIENT_TIMEOUT_SECONDS", default=10.0)
# Destructive dashboard actions (unschedule, purge orphans) need a password entered within
# this many minutes; otherwise the user re-authenticates first.
RECENT_LOGIN_MINUTES = env.int("RECENT_LOGIN_MINUTES", default=15)
# How often the leading beat looks for late jobs (Job.objects.late says what "late" means; a
# job's grace is its own setting). A late alert follows a slot's grace expiry within about
# this long; each check costs one query per enabled job that has not run since its slot.
JOBS_LATENESS_CHECK_SECONDS = env.float("JOBS_LATENESS_CHECK_SECONDS", default=20.0)
# How often the dashboard re-reads its data (seconds).
JOBS_DASHBOARD_REFRESH_SECONDS = env.int("JOBS_DASHBOARD_REFRESH_SECONDS", default=5)
# How long the dashboard's "last 24 hours" run totals are shared between requests (seconds; 0:
# counted for every request). Counting a day of runs reads every run of the day.
JOBS_DASHBOARD_TOTALS_SECONDS = env.int("JOBS_DASHBOARD_TOTALS_SECONDS", default=30)

# The cache holds the API's rate-limit counters. CACHE_URL wins; else the Redis broker's
# server when there is one (shared by every web process); else a per-process memory cache:
# the embedded mode serves the web from one process, so its count is still exact there, but
# several processes without Redis each count on their own (set CACHE_URL then).
if env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache("CACHE_URL")}
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CELERY_BROKER_URL,
            "KEY_PREFIX": "cronhouse",
            # An unreachable Redis must cost a request about a second, not the OS's connect timeout.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "cronhouse"}}
# The rate limiter counts in "default" and, while that fails, in each process's memory
# (core.ratelimit.FallbackCache): an outage loosens the limit instead of failing requests.
CACHES["ratelimit"] = {"BACKEND": "core.ratelimit.FallbackCache", "LOCATION": "default"}
RATELIMIT_USE_CACHE = "ratelimit"
# --- End surfaces ---------------------------------------------------------------------

# --- Operations -----------------------------------------------------------------------
# Late / slow detection, beat catch-up, /health/, /metrics and structured logs.
# Every variable is described in .env.example.

# A slot beat fires more than this late (it or the database was down) is "missed" and follows
# the job's catch-up policy (latest / skip / all).
JOBS_CATCH_UP_TOLERANCE_SECONDS = env.int("JOBS_CATCH_UP_TOLERANCE_SECONDS", default=30)
# How often the leading beat does its housekeeping (seconds): heartbeat, the reap / re-send
# sweep (process-jobs' own run can be lost too) and catch-up backlogs.
JOBS_BEAT_HEARTBEAT_SECONDS = env.float("JOBS_BEAT_HEARTBEAT_SECONDS", default=5.0)
# /health/: the beat heartbeat may be this old; some run must have started or beaten this
# recently (process-jobs runs every minute, so an idle but live worker passes); fail when
# more than this many jobs are late (-1: report late jobs, never fail on them).
JOBS_HEALTH_BEAT_MAX_AGE_SECONDS = env.int("JOBS_HEALTH_BEAT_MAX_AGE_SECONDS", default=120)
JOBS_HEALTH_WORKER_MAX_AGE_SECONDS = env.int("JOBS_HEALTH_WORKER_MAX_AGE_SECONDS", default=300)
JOBS_HEALTH_MAX_LATE_JOBS = env.int("JOBS_HEALTH_MAX_LATE_JOBS", default=-1)
# /metrics: runs by status and their durations cover runs created in the last this many seconds
# (an index range, never the whole history); per-job series (failing, late, running jobs) name
# at most this many jobs each, the counts say how many in all.
JOBS_METRICS_WINDOW_SECONDS = env.int("JOBS_METRICS_WINDOW_SECONDS", default=3600)
JOBS_METRICS_MAX_JOB_SERIES = env.int("JOBS_METRICS_MAX_JOB_SERIES", default=500)
# How long the window's run counts are shared between scrapes (seconds; 0: read for every scrape).
JOBS_METRICS_WINDOW_CACHE_SECONDS = env.int("JOBS_METRICS_WINDOW_CACHE_SECONDS", default=15)
# Log format of every process: "plain" or "json" (one object per line; run start/end lines
# carry job, run_id, status, duration_seconds, attempt). Secrets are redacted in both.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING["filters"] = {
    "redact": {"()": "jobs.running.runlog.RedactingFilter"},
    # A refused request (4xx) is one line with who and why, not a traceback (jobs/permissions/refusals.py).
    "refusals": {"()": "jobs.permissions.refusals.RefusedRequestFilter"},
}
LOGGING["handlers"]["console"]["filters"] = ["refusals", "redact"]
LOGGING["loggers"]["django.request"] = {"filters": ["refusals"]}
LOGGING["formatters"]["json"] = {"()": "jobs.running.runlog.JsonFormatter"}
if LOG_FORMAT == "json":
    LOGGING["handlers"]["console"]["formatter"] = "json"
elif LOG_FORMAT != "plain":
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}.")
# --- Sentry ---------------------------------------------------------------------------
# Errors (unhandled exceptions in views and tasks, and every ERROR log line: failed runs and
# job-failure alerts among them) go to Sentry when SENTRY_DSN is set; nothing is loaded without
# it. Events are redacted like log lines (config/sentry.py).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="production" if PRODUCTION else "development")
SENTRY_RELEASE = env.str("SENTRY_RELEASE", default="")
if SENTRY_DSN:
    from config.sentry import sentry_start

    sentry_start(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, release=SENTRY_RELEASE)
# --- End Sentry -----------------------------------------------------------------------
# --- End operations -------------------------------------------------------------------

# --- Directory ------------------------------------------------------------------------
# The member directory's source: a second, read-only database (docs/directory.md). Unset, it is
# the embedded demo source, an SQLite file in the var dir that `seed_demo` fills. Every variable
# is described in .env.example.
from directory.source_settings import source_database  # noqa: E402  (plain data, no models)

DIRECTORY_SOURCE_URL = env.str("DIRECTORY_SOURCE_URL", default="")
DIRECTORY_SOURCE_SQLITE_PATH = VAR_DIR / "directory-source.sqlite3"
DATABASES["legacy"] = source_database(
    env.db_url_config(DIRECTORY_SOURCE_URL) if DIRECTORY_SOURCE_URL else None,
    sqlite_path=DIRECTORY_SOURCE_SQLITE_PATH,
    time_zone=env.str("DIRECTORY_SOURCE_TIME_ZONE", default="UTC"),
)
DATABASE_ROUTERS = ["directory.routers.SourceDatabaseRouter"]
# Source rows per transaction in the sync jobs: a crash loses at most one batch, and the query
# count grows only with the number of batches.
DIRECTORY_BATCH_SIZE = env.int("DIRECTORY_BATCH_SIZE", default=5000)
# An incremental sync re-reads rows this many seconds older than its cursor: a source transaction
# that committed late with an earlier updated_at is still picked up (re-read rows are "unchanged").
DIRECTORY_SYNC_OVERLAP_SECONDS = env.int("DIRECTORY_SYNC_OVERLAP_SECONDS", default=300)
# members-sync and positions-sync run a full sync (which finds rows deleted at the source) when
# the last one is older than this; otherwise they read only rows changed since their cursor.
DIRECTORY_FULL_SYNC_DAYS = env.int("DIRECTORY_FULL_SYNC_DAYS", default=7)
# intercom-sync: Intercom's access token (secret: never logged) and API base URL; how long one
# rate-limited (429) call may wait for X-RateLimit-Reset; attempts per contact and the first
# back-off after a 5xx or network error (doubled per attempt).
INTERCOM_ACCESS_TOKEN = env.str("INTERCOM_ACCESS_TOKEN", default="")
INTERCOM_API_BASE = env.str("INTERCOM_API_BASE", default="https://api.intercom.io")
INTERCOM_MAX_RATE_LIMIT_WAIT_SECONDS = env.float("INTERCOM_MAX_RATE_LIMIT_WAIT_SECONDS", default=60.0)
INTERCOM_MAX_ATTEMPTS = env.int("INTERCOM_MAX_ATTEMPTS", default=5)
INTERCOM_RETRY_BASE_SECONDS = env.float("INTERCOM_RETRY_BASE_SECONDS", default=1.0)
INTERCOM_TIMEOUT_SECONDS = env.float("INTERCOM_TIMEOUT_SECONDS", default=20.0)
# httpx (python-intercom's HTTP library) logs every request at INFO: one line per contact call.
LOGGING["loggers"]["httpx"] = {"level": "WARNING"}
# --- End directory --------------------------------------------------------------------

# --- The embedded demo's stand-ins ----------------------------------------------------
# The embedded mode (SQLite, the filesystem broker, not production) has no Stripe account and
# no API provider to ask, yet its demo runs sync-stripe and check-provider-credits. Cronhouse
# serves stand-ins for both itself, under /demo/ on its own web server (accounts/demo_services.py),
# and points the jobs at them over loopback: no request leaves the machine. The outbound guard
# lets loopback through to SITE_URL's port and no other; production and every deployment with a
# DATABASE_URL or a broker never get here, and CRONHOUSE_DEMO_SERVICES=false turns it off. A
# Stripe key or provider list set in the environment is used as it is (docs/accounts.md).
EMBEDDED_DEMO_SERVICES = (
    not PRODUCTION
    and EMBEDDED_BROKER
    and DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    and urlsplit(SITE_URL).hostname in ("127.0.0.1", "localhost")
    and env.bool("CRONHOUSE_DEMO_SERVICES", default=True)
)
if EMBEDDED_DEMO_SERVICES:
    from accounts.demo_settings import demo_services_settings  # noqa: E402  (plain data, no models)

    vars().update(
        demo_services_settings(
            SITE_URL,
            stripe_configured=bool(ACCOUNTS_STRIPE_API_KEY),
            providers_configured=bool(ACCOUNTS_CREDIT_PROVIDERS),
        )
    )
# --- End the embedded demo's stand-ins ------------------------------------------------
