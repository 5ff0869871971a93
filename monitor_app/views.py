"""The four tabs and the action log. Each view reads through the selectors,
shapes with the presenters and renders a page, or only its fragment for an
HTMX request. A lost Redis gives the page with a banner, never an error."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from monitor_app import protocol as p
from monitor_app import selectors, services
from monitor_app.forms import LogMessageForm
from monitor_app.header import HeaderState, header_state
from monitor_app.logtail import last_lines
from monitor_app.models import OPERATE_PERMISSION
from monitor_app.presenters import ActionQuery, action_tables
from monitor_app.redis_client import redis_location
from monitor_app.selectors import RedisUnavailable
from monitor_app.startup import current_reader
from monitor_app.state import PulseRef, ServerRow, summarize

PARTIALS = "monitor/partials/"


async def _header(servers: list[ServerRow] | None = None) -> HeaderState:
    """The header from this process's reader when it runs; else read now."""
    reader = current_reader()
    if reader is not None and reader.polls:
        return reader.header_now()
    location = redis_location()
    try:
        pointers = await selectors.pointers_get()
        if servers is None:
            servers = await selectors.servers_list()
        observed = await selectors.reader_observations()
        pulse = pointers.current
        phase = pointers.phase_of(pulse.tree) if pulse else ""
        rows = []
        if pulse and phase:
            live = {s.ident for s in servers if s.is_on}
            actions = await selectors.pulse_actions(pulse.tree, pulse.shot, live_idents=live)
            rows = actions.rows.values()
    except RedisUnavailable as exc:
        return HeaderState(redis_location=location, redis_ok=False, redis_error=str(exc))
    now = time.time()
    return header_state(
        location=location,
        redis_ok=True,
        pulse=pulse,
        phase=phase,
        rows=rows,
        last_activity=None,
        servers=servers,
        last_heartbeat=_float(observed.get("last_heartbeat")),
        watching_since=_float(observed.get("tables_seen")) or now,
        tables_built=pointers.last_build is not None,
        now=now,
    )


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


async def _base_context(request: HttpRequest, tab: str, header: HeaderState) -> dict:
    user = await request.auser()
    return {
        "tab": tab,
        "header": header,
        "can_operate": await user.ahas_perm(OPERATE_PERMISSION),
        "can_audit": await user.ahas_perm("monitor_app.view_commandrecord"),
        "now": time.time(),
        "stale_bound": settings.WEBMONITOR_STALE_SECONDS,
    }


async def _servers(request: HttpRequest) -> tuple[list[ServerRow], str]:
    try:
        return await selectors.servers_list(), ""
    except RedisUnavailable as exc:
        return [], str(exc)


@require_GET
async def servers_page(request: HttpRequest) -> HttpResponse:
    servers, error = await _servers(request)
    header = await _header(servers if not error else None)
    context = await _base_context(request, "servers", header)
    context.update(servers=servers, error=error)
    if request.htmx:
        return render(request, PARTIALS + "_servers_table.html", context)
    return render(request, "monitor/servers.html", context)


@require_GET
async def heartbeat_page(request: HttpRequest) -> HttpResponse:
    servers, error = await _servers(request)
    header = await _header(servers if not error else None)
    context = await _base_context(request, "heartbeat", header)
    context.update(servers=sorted(servers, key=lambda r: (r.ident, r.server_id)), error=error)
    if request.htmx:
        return render(request, PARTIALS + "_heartbeat_table.html", context)
    return render(request, "monitor/heartbeat.html", context)


def _requested_pulse(request: HttpRequest) -> tuple[PulseRef | None, str]:
    tree = (request.GET.get("tree") or "").strip()
    shot = (request.GET.get("shot") or "").strip()
    if not tree and not shot:
        return None, ""
    ref = p.parse_key(p.action_status_key(tree.upper(), shot))
    if ref is None:
        return None, "That is not a pulse: a tree is a name like DEMO, a shot a number like 42."
    return PulseRef(ref.tree, ref.shot), ""


def _watched(pulse: PulseRef) -> selectors.PulseActions | None:
    """The reader's live copy of a pulse it watches: the rows a read would
    give, at most a poll old, without reading 20,000 fields again."""
    reader = current_reader()
    view = reader.pulses.get(pulse) if reader is not None and reader.connected else None
    if view is None:
        return None
    return selectors.PulseActions(
        pulse=pulse, rows=dict(view.rows), idents=[], current_phase=view.current_phase
    )


@require_GET
async def actions_page(request: HttpRequest) -> HttpResponse:
    if "pulse" in request.GET:  # the pulse selector: go to its bookmarkable URL
        tree, _, shot = request.GET["pulse"].partition(":")
        return redirect(f"{request.path}?{urlencode({'tree': tree, 'shot': shot})}")
    query = ActionQuery.from_params(request.GET)
    chosen, notice = _requested_pulse(request)
    pulses: list[PulseRef] = []
    actions = None
    error = ""
    try:
        pointers = await selectors.pointers_get()
        pulses = await selectors.pulses_list()
        pulse = chosen or selectors.default_pulse(pulses, pointers)
        if pulse is not None:
            actions = _watched(pulse) or await selectors.pulse_actions(pulse.tree, pulse.shot)
    except RedisUnavailable as exc:
        pulse, error = chosen, str(exc)
    header = await _header()
    context = await _base_context(request, "actions", header)
    current_phase = actions.current_phase if actions else ""
    tables = action_tables(actions.rows if actions else {}, query, current_phase)
    # Following the dispatcher, sorting and paging go on following it (the
    # refresh of the tables names the pulse, and says it is followed).
    following = chosen is None or request.GET.get("follow") == "1"
    linked = None if following else pulse
    context.update(
        pulse=pulse,
        follow=chosen is None,
        pulses=pulses if pulse is None or pulse in pulses else [pulse, *pulses],
        notice=notice,
        error=error,
        query=query,
        current_phase=current_phase,
        tables=tables,
        summary=summarize(actions.rows.values()) if actions else None,
        has_actions=bool(actions and actions.rows),
        sort_links=query.sort_links(linked),
        page_urls={
            "prev": query.url(linked, page=tables.page.number - 1)
            if tables.page.has_previous()
            else "",
            "next": query.url(linked, page=tables.page.number + 1)
            if tables.page.has_next()
            else "",
        },
        self_url=request.path + query.url(pulse) + ("&follow=1" if following else ""),
    )
    if request.htmx:
        return render(request, PARTIALS + "_actions_tables.html", context)
    return render(request, "monitor/actions.html", context)


PATH_MAX = 1000


@require_GET
async def action_log(request: HttpRequest) -> HttpResponse:
    pulse, notice = _requested_pulse(request)
    path = request.GET.get("path") or ""
    log_text, error = None, ""
    if path and (len(path) > PATH_MAX or any(ord(c) < 32 for c in path)):
        notice, path = "That is not an action path.", ""
    if pulse is not None and path:
        try:
            log_text = await selectors.action_log_get(pulse.tree, pulse.shot, path)
        except RedisUnavailable as exc:
            error = str(exc)
    elif not notice:
        notice = "Choose an action: a tree, a shot and the action's path are needed."
    if request.GET.get("download") and log_text is not None:
        response = HttpResponse(log_text, content_type="text/plain; charset=utf-8")
        name = "".join(c if c.isalnum() else "_" for c in path).strip("_")[:80] or "action"
        response["Content-Disposition"] = (
            f'attachment; filename="{pulse.tree}_{pulse.shot}_{name}.log"'
        )
        return response
    context = {
        "pulse": pulse,
        "path": path,
        "log_text": log_text,
        "notice": notice,
        "error": error,
    }
    if request.htmx:
        return render(request, PARTIALS + "_action_log.html", context)
    header = await _header()
    context.update(await _base_context(request, "actions", header))
    return render(request, "monitor/action_log.html", context)


@require_GET
async def logs_page(request: HttpRequest) -> HttpResponse:
    path = settings.WEBMONITOR_PUBSUB_LOG
    lines = last_lines(path)
    if request.htmx:
        return render(request, PARTIALS + "_log_lines.html", {"lines": lines, "oob": False})
    header = await _header()
    context = await _base_context(request, "logs", header)
    context.update(lines=lines, log_path=path, log_exists=path.exists())
    return render(request, "monitor/logs.html", context)


async def log_note(request: HttpRequest) -> HttpResponse:
    """An operator's own line in the log, recorded with their user name."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    user = await request.auser()
    if not await user.ahas_perm(OPERATE_PERMISSION):
        return HttpResponse("Only operators may add to the log.", status=403)
    form = LogMessageForm(request.POST)
    error = ""
    if await sync_to_async(form.is_valid)():
        try:
            await sync_to_async(services.log_message_write)(
                message=form.cleaned_data["message"], actor=services.Actor.web(user)
            )
        except services.CommandRefused as exc:
            error = exc.message
    else:
        error = " ".join(form.errors.get("message", ["Not a message that can be logged."]))
    context = {
        "error": error,
        "message": request.POST.get("message", "") if error else "",
        "saved": not error,
    }
    status = 400 if error else 200
    if request.htmx:
        return render(request, PARTIALS + "_log_note_form.html", context, status=status)
    if error:
        header = await _header()
        context.update(await _base_context(request, "logs", header))
        path = settings.WEBMONITOR_PUBSUB_LOG
        context.update(lines=last_lines(path), log_path=path, log_exists=path.exists())
        return render(request, "monitor/logs.html", context, status=status)
    return redirect("monitor:logs")


CSRF_TEXT = (
    "The login behind this page changed since it was loaded (logged in again in another "
    "tab, or the session ended), so nothing was sent. Reload the page and try again."
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF refusal, in the console's words: as a command's answer
    for an HTMX request, else as a page."""
    context = {"error_text": CSRF_TEXT}
    if getattr(request, "htmx", False):
        return render(request, "errors/_csrf_result.html", context, status=403)
    return render(request, "403_csrf.html", context, status=403)
