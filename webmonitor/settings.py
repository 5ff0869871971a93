"""Django settings: every value that differs between deployments is read
from the environment here, and only here."""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            "(for a trial, set DJANGO_DEBUG=1)."
        )
    SECRET_KEY = secrets.token_urlsafe(50)  # debug only: sessions end with the process

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if not DEBUG else ["*"]
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "monitor_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "monitor_app.middleware.ContentSecurityPolicy",
    "monitor_app.middleware.MethodNotAllowedPage",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "monitor_app.middleware.LoginRequired",  # Django's, and HTMX requests
]

ROOT_URLCONF = "webmonitor.urls"
ASGI_APPLICATION = "webmonitor.asgi.application"
WSGI_APPLICATION = None

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

DATA_DIR = Path(os.environ.get("WEBMONITOR_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'webmonitor.sqlite3'}",
        conn_max_age=0,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/servers/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("WEBMONITOR_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from the finders: no collectstatic step is needed to run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads it for POSTs
CSRF_FAILURE_VIEW = "monitor_app.views.csrf_failure"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- the dispatcher's Redis and the console's own behaviour -------------------

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
#: Seconds a Redis command may take before the console gives up on it.
REDIS_TIMEOUT = env_float("WEBMONITOR_REDIS_TIMEOUT", 2.0)
#: Prefix of every key the console writes; never a dispatcher key.
WEBMONITOR_KEY_PREFIX = os.environ.get("WEBMONITOR_KEY_PREFIX", "WEBMONITOR")
WEBMONITOR_POLL_INTERVAL = env_float("WEBMONITOR_POLL_INTERVAL", 1.0)
WEBMONITOR_STALE_SECONDS = env_float("WEBMONITOR_STALE_SECONDS", 12.0)
WEBMONITOR_WATCHDOG_SECONDS = env_float("WEBMONITOR_WATCHDOG_SECONDS", 15.0)
#: Seconds between checks that an open WebSocket's login still holds
#: (expired, deleted, deactivated); a logout closes its sockets at once.
WEBMONITOR_LOGIN_CHECK_SECONDS = env_float("WEBMONITOR_LOGIN_CHECK_SECONDS", 60.0)
WEBMONITOR_PUBSUB_LOG = Path(os.environ.get("WEBMONITOR_PUBSUB_LOG", DATA_DIR / "redis_pubsub.log"))
WEBMONITOR_PUBSUB_LOG_MAX_BYTES = int(
    env_float("WEBMONITOR_PUBSUB_LOG_MAX_BYTES", 10 * 1024 * 1024)
)
WEBMONITOR_PUBSUB_LOG_BACKUPS = int(env_float("WEBMONITOR_PUBSUB_LOG_BACKUPS", 5))
#: Start the Redis reader inside the web process (off when a separate
#: ``run_reader`` worker feeds several web processes).
WEBMONITOR_READER_AUTOSTART = env_bool("WEBMONITOR_READER_AUTOSTART", True)
#: Site command for START/KILL, an argument list; IDENT and START/KILL are
#: appended. Parsed like a shell would split words, but never run by a shell.
WEBMONITOR_SERVER_COMMAND = shlex.split(os.environ.get("WEBMONITOR_SERVER_COMMAND", ""))
WEBMONITOR_SERVER_COMMAND_TIMEOUT = env_float("WEBMONITOR_SERVER_COMMAND_TIMEOUT", 30.0)
#: How many site commands Start all / Kill all run at the same time.
WEBMONITOR_SERVER_COMMAND_PARALLEL = int(env_float("WEBMONITOR_SERVER_COMMAND_PARALLEL", 8))

# The channel layer lives on the same Redis, under its own prefix. With it,
# several console processes share one reader (elected through a Redis lock).
WEBMONITOR_CHANNEL_LAYER = os.environ.get("WEBMONITOR_CHANNEL_LAYER", "redis")
WEBMONITOR_READER_SHARED = env_bool(
    "WEBMONITOR_READER_SHARED", WEBMONITOR_CHANNEL_LAYER != "memory"
)
if WEBMONITOR_CHANNEL_LAYER == "memory":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": f"{WEBMONITOR_KEY_PREFIX.lower()}-asgi",
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("WEBMONITOR_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
