"""Test settings: the real settings, with an in-memory channel layer and a
throw-away data folder. The Redis URL is set by the ``redis_server`` fixture."""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("WEBMONITOR_CHANNEL_LAYER", "memory")
os.environ.setdefault("WEBMONITOR_DATA_DIR", tempfile.mkdtemp(prefix="webmonitor-test-"))
os.environ.setdefault("WEBMONITOR_READER_AUTOSTART", "0")

from webmonitor.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
