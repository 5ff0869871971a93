"""ASGI entry point: ``daphne webmonitor.asgi:application``.

Django is set up before anything imports models; the WebSocket stack checks
the Origin header, then the session, and each consumer refuses anonymous
users. The process's Redis reader starts with the first connection."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmonitor.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from monitor_app.consumers import ServerSend  # noqa: E402
from monitor_app.routing import websocket_urlpatterns  # noqa: E402
from monitor_app.startup import StartReader, start_with_server  # noqa: E402

start_with_server()

application = StartReader(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": ServerSend(
                AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
            ),
        }
    )
)
