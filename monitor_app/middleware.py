"""The console's own middleware: a Content Security Policy (even if some
Redis text ever slipped past the escaping, the browser would run no script
and load nothing that is not the console's own), a page for a 405, and the
login redirect of an HTMX request."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django_htmx.http import HttpResponseClientRedirect

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class _ResponseMiddleware:
    """A middleware that only looks at the response, in sync and async
    stacks alike (the console serves async views under daphne)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self._acall(request)
        return self.answer(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self.answer(request, await self.get_response(request))

    def answer(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        raise NotImplementedError


class ContentSecurityPolicy(_ResponseMiddleware):
    def answer(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response


class MethodNotAllowedPage(_ResponseMiddleware):
    """Django answers a GET to a POST-only command address with an empty 405;
    someone who pasted such a URL gets a page saying what the address is for."""

    def answer(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code != 405 or response.content or request.method == "HEAD":
            return response
        page = HttpResponse(render_to_string("405.html", request=request), status=405)
        if "Allow" in response.headers:
            page.headers["Allow"] = response.headers["Allow"]
        return page


class LoginRequired(LoginRequiredMiddleware):
    """Django's, except for an HTMX request (a command, a table refresh) from
    a page whose login has ended: htmx would follow the redirect and swap the
    whole login page into a fragment. The browser goes to the login page
    instead, and comes back to the page it was on."""

    def handle_no_permission(self, request: HttpRequest, view_func: Callable) -> HttpResponse:
        htmx = getattr(request, "htmx", None)
        if not htmx:
            return super().handle_no_permission(request, view_func)
        page = htmx.current_url_abs_path or "/"
        return HttpResponseClientRedirect(
            redirect_to_login(
                page, self.get_login_url(view_func), self.get_redirect_field_name(view_func)
            ).url
        )
