"""The operator commands in the browser, and the Server log.

Each command view only checks the form, calls its service (which validates
again, sends, records) and renders what came of it into the page's
``aria-live`` result area: what was sent, or why nothing was. The service
layer owns every rule; nothing here talks to Redis for a command.

Statuses: 200 sent (or a question: confirm the warnings), 204 the input
holds (a check only, ``CHECK_ONLY_HEADER``), 400 refused (bad input,
nothing sent), 403 not an operator (nothing sent), 503 Redis down.
Without htmx the same outcome comes as a full page, so the forms work with
JavaScript off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from monitor_app import protocol as p
from monitor_app import selectors, services
from monitor_app import validation as v
from monitor_app.forms import (
    ActionForm,
    CommandForm,
    DispatcherCommandForm,
    PhaseForm,
    PulseForm,
    ReasonForm,
    ServerForm,
)
from monitor_app.models import OPERATE_PERMISSION, CommandRecord
from monitor_app.selectors import RedisUnavailable
from monitor_app.state import ActionRow
from monitor_app.views import _base_context, _header

PARTIALS = "monitor/partials/"
RESULT_PARTIAL = PARTIALS + "_command_result.html"
RESULT_PAGE = "monitor/command_result.html"

#: The fields of the dispatcher bar that show their own error next to them.
BAR_FIELDS = ("tree", "shot", "phase", "text")
SERVER_VERBS = ("start", "stop", "restart", "quit", "kill")
SERVER_LOG_ACTIONS = 20

DENIED = "Only operators may send commands: nothing was sent."

#: A POST with this header only checks the input: 204 when it holds (the
#: page then asks its question: confirm, or the reason), else the refusal,
#: as the command itself would answer. Nothing is sent either way.
CHECK_ONLY_HEADER = "WM-Check-Only"
#: The check's answer may carry the question to ask instead of the page's.
QUESTION_HEADER = "WM-Question"
#: The fields the check found good (only their messages are cleared).
CHECKED_HEADER = "WM-Checked"


@dataclass(slots=True)
class Item:
    """One command's answer as the result area shows it."""

    ok: bool
    message: str
    sent: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    output: str | None = None
    returncode: int | None = None
    timed_out: bool = False

    @classmethod
    def of(cls, result: services.CommandResult | services.CommandRefused) -> Item:
        if isinstance(result, services.CommandRefused):
            return cls(ok=False, message="Not sent: " + result.message)
        details = result.details
        return cls(
            ok=result.ok,
            message=result.message,
            sent=result.sent_text,
            warnings=list(result.warnings),
            output=details.get("output") if "output" in details else None,
            returncode=details.get("returncode"),
            timed_out=bool(details.get("timed_out")),
        )


@dataclass(slots=True)
class Outcome:
    """What a command view answers: one or several items, or the refusal,
    or the question to confirm."""

    title: str
    status: int = 200
    kind: str = "ok"  # ok, partial, failed, refused, denied, unreachable, confirm
    items: list[Item] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    check: services.PhaseCheck | None = None
    confirm_url: str = ""
    confirm_fields: list[tuple[str, str]] = field(default_factory=list)
    at: float = field(default_factory=time.time)


Run = Callable[..., Any]
Resubmit = Callable[[dict[str, Any]], list[tuple[str, str]]]

#: A refused attempt is audited under the name the service gives the command.
AUDIT_NAMES = {
    "pulse_create": p.CMD_CREATE_PULSE,
    "tables_build": p.CMD_BUILD_TABLES,
    "phase_do": p.CMD_DO_PHASE,
    "sequence_abort": p.CMD_ABORT,
    "actions_dispatch": "dispatch_action",
    "actions_abort": "abort_action",
}


async def _is_operator(request: HttpRequest) -> tuple[Any, bool]:
    user = await request.auser()
    return user, await user.ahas_perm(OPERATE_PERMISSION)


def _form_data(request: HttpRequest) -> QueryDict:
    """The POST, with the reason typed into an ``hx-prompt`` (sent as a
    header when the page script did not move it into the form)."""
    data = request.POST.copy()
    prompt = request.htmx.prompt if request.htmx else None
    if prompt is not None and not data.get("reason"):
        data["reason"] = prompt
    return data


def _errors(form: forms.Form) -> tuple[list[str], dict[str, list[str]]]:
    """Messages for the result area (labelled) and per field."""
    listed, per_field = [], {}
    for name, messages in form.errors.items():
        messages = list(messages)
        per_field[name] = messages
        label = form.fields[name].label if name in form.fields else ""
        listed.extend(f"{label}: {m}" if label else m for m in messages)
    return listed, per_field


def _from_results(
    title: str, results: Sequence[services.CommandResult | services.CommandRefused]
) -> Outcome:
    items = [Item.of(r) for r in results]
    sent = [i for i in items if i.ok]
    if len(sent) == len(items):
        return Outcome(title, items=items)
    if any(isinstance(r, services.CommandResult) for r in results):
        # Something ran (a site command that failed, or part of a bulk).
        return Outcome(title, kind="partial" if sent else "failed", items=items)
    return Outcome(title, status=400, kind="refused", items=items)


async def _respond(
    request: HttpRequest, outcome: Outcome, error_slots: Iterable[str] = ()
) -> HttpResponse:
    context = {"outcome": outcome}
    if request.htmx:
        context["slots"] = [
            {
                "id": f"bar-err-{name}",
                "input": f"bar-{name}",
                "messages": outcome.field_errors.get(name, []),
            }
            for name in error_slots
        ]
        return render(request, RESULT_PARTIAL, context, status=outcome.status)
    tab = "servers" if "/servers/" in request.path else "actions"
    context.update(await _base_context(request, tab, await _header()))
    back = request.headers.get("referer", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = reverse(f"monitor:{tab}")
    context["back"] = back
    return render(request, RESULT_PAGE, context, status=outcome.status)


def command(
    title: str,
    form_class: type[CommandForm],
    *,
    error_slots: Sequence[str] = (),
    resubmit: Resubmit | None = None,
) -> Callable[[Run], Callable[..., Any]]:
    """Make ``run(cleaned_data, actor, **url_kwargs)`` a POST-only command
    view: operators only, the form checked first, each refusal of the
    service put back next to its field, ``ConfirmationRequired`` turned into
    the question with a "Run anyway" that re-posts ``resubmit``'s fields."""

    def decorate(run: Run) -> Callable[..., Any]:
        @require_POST
        @wraps(run)
        async def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            user, operator = await _is_operator(request)
            data = _form_data(request)

            async def audit(result: str) -> None:
                await sync_to_async(services.attempt_record)(
                    actor=services.Actor.web(user),
                    name=AUDIT_NAMES.get(run.__name__, run.__name__),
                    # the command's own fields (a bar posts all of its inputs)
                    # and the reason, which any attempt may give
                    fields={
                        k: vs
                        for k, vs in data.lists()
                        if k in form_class.base_fields or k == "reason"
                    },
                    result=result,
                )

            if not operator:
                await audit(CommandRecord.DENIED_RESULT)
                outcome = Outcome(title, status=403, kind="denied", errors=[DENIED])
                return await _respond(request, outcome, error_slots)
            form = form_class(data)
            if not await sync_to_async(form.is_valid)():
                listed, per_field = _errors(form)
                await audit("; ".join(listed))
                outcome = Outcome(
                    title, status=400, kind="refused", errors=listed, field_errors=per_field
                )
                return await _respond(request, outcome, error_slots)
            if request.headers.get(CHECK_ONLY_HEADER) == "1":
                checked = HttpResponse(status=204)
                checked[CHECKED_HEADER] = ",".join(form.fields)  # their messages are stale
                question = form.question()
                if question:
                    checked[QUESTION_HEADER] = question
                return checked
            actor = services.Actor.web(user)
            try:
                value = await sync_to_async(run)(form.cleaned_data, actor, **kwargs)
            except services.ConfirmationRequired as exc:
                outcome = Outcome(
                    title,
                    kind="confirm",
                    check=exc.check,
                    errors=list(exc.check.warnings),
                    confirm_url=request.path,
                    confirm_fields=resubmit(form.cleaned_data) if resubmit else [],
                )
            except services.RedisUnreachable as exc:
                outcome = Outcome(title, status=503, kind="unreachable", errors=[exc.message])
            except services.CommandRefused as exc:
                exc.add_to_form(form)
                listed, per_field = _errors(form)
                outcome = Outcome(
                    title, status=400, kind="refused", errors=listed, field_errors=per_field
                )
            except PermissionDenied:
                outcome = Outcome(title, status=403, kind="denied", errors=[DENIED])
            else:
                results = value if isinstance(value, list) else [value]
                outcome = _from_results(title, results)
            return await _respond(request, outcome, error_slots)

        return view

    return decorate


# --- the dispatcher bar ------------------------------------------------------------


@command("Create Pulse", PulseForm, error_slots=BAR_FIELDS)
def pulse_create(data: dict[str, Any], actor: services.Actor) -> services.CommandResult:
    """Also makes the pulse the default one of later commands (PROTOCOL.md)."""
    return services.pulse_create(tree=data["tree"], shot=data["shot"], actor=actor)


@command("Build Tables", PulseForm, error_slots=BAR_FIELDS)
def tables_build(data: dict[str, Any], actor: services.Actor) -> services.CommandResult:
    """For the pulse in the bar, not ``DISPATCH_DEFAULT``: what you see is what is built."""
    return services.tables_build(tree=data["tree"], shot=data["shot"], actor=actor)


def _phase_again(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("tree", data["tree"]),
        ("shot", str(data["shot"])),
        ("phase", data["phase"]),
        ("confirm", "1"),
    ]


@command("Do Phase", PhaseForm, error_slots=BAR_FIELDS, resubmit=_phase_again)
def phase_do(data: dict[str, Any], actor: services.Actor) -> services.CommandResult:
    """Asks first when the tables are not built or needed servers are OFF or dead."""
    return services.phase_do(
        tree=data["tree"],
        shot=data["shot"],
        phase=data["phase"],
        actor=actor,
        confirm=bool(data.get("confirm")),
    )


@command("Abort Sequence", ReasonForm, error_slots=BAR_FIELDS)
def sequence_abort(data: dict[str, Any], actor: services.Actor) -> services.CommandResult:
    """The dispatcher abandons the sequence; running actions go on."""
    return services.sequence_abort(actor=actor, reason=data.get("reason") or "")


def _command_again(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("text", data["text"].message),
        ("reason", data.get("reason") or ""),
        ("confirm", "1"),
    ]


@command(
    "Dispatcher command", DispatcherCommandForm, error_slots=BAR_FIELDS, resubmit=_command_again
)
def dispatcher_command(data: dict[str, Any], actor: services.Actor) -> services.CommandResult:
    """Sent as the grammar spells it (``ParsedCommand.message``), never as typed."""
    return services.dispatcher_command_send(
        text=data["text"].message,
        actor=actor,
        confirm=bool(data.get("confirm")),
        reason=data.get("reason") or "",
    )


# --- actions --------------------------------------------------------------------------


@command("Dispatch", ActionForm)
def actions_dispatch(
    data: dict[str, Any], actor: services.Actor
) -> list[services.CommandResult | services.CommandRefused]:
    """One path or several: each is its own command and record."""
    return services.actions_dispatch(
        tree=data["tree"], shot=data["shot"], paths=data["path"], actor=actor
    )


@command("Abort", ActionForm)
def actions_abort(
    data: dict[str, Any], actor: services.Actor
) -> list[services.CommandResult | services.CommandRefused]:
    """ABORT with each path exactly as stored, on its own class's channel."""
    return services.actions_abort(
        tree=data["tree"],
        shot=data["shot"],
        paths=data["path"],
        actor=actor,
        reason=data.get("reason") or "",
    )


# --- servers --------------------------------------------------------------------------


async def server_command(request: HttpRequest, verb: str) -> HttpResponse:
    """``/commands/servers/<verb>/``: the verb picks the view, so an unknown
    one is a 404 before anything else."""
    view = _SERVER_VIEWS.get(verb)
    if view is None:
        raise Http404("No such server command.")
    return await view(request)


def _server_view(verb: str) -> Callable[..., Any]:
    def run(data: dict[str, Any], actor: services.Actor) -> services.CommandResult:
        reason = data.get("reason") or ""
        if verb == "start":
            return services.server_start(ident=data["ident"], actor=actor, reason=reason)
        if verb == "kill":
            return services.server_kill(ident=data["ident"], actor=actor, reason=reason)
        return services.server_control(
            ident=data["ident"],
            server_id=data["server_id"],
            verb=verb.upper(),
            actor=actor,
            reason=reason,
        )

    run.__name__ = f"server_{verb}"
    return command(f"{verb.capitalize()} server", ServerForm)(run)


_SERVER_VIEWS = {verb: _server_view(verb) for verb in SERVER_VERBS}


def _servers_all_view(verb: str) -> Callable[..., Any]:
    site_verb = p.SITE_START if verb == "start" else p.SITE_KILL
    title = "Start all OFF classes" if verb == "start" else "Kill all ON classes"

    def run(
        data: dict[str, Any], actor: services.Actor, *, idents: list[str]
    ) -> list[services.CommandResult | services.CommandRefused]:
        if not idents:
            raise services.CommandRefused(
                "No server class is OFF: nothing to start."
                if verb == "start"
                else "No server class is ON: nothing to kill."
            )
        return services.servers_site_all(
            idents=idents, verb=site_verb, actor=actor, reason=data.get("reason") or ""
        )

    run.__name__ = f"servers_all_{verb}"
    return command(title, ReasonForm)(run)


_SERVERS_ALL_VIEWS = {verb: _servers_all_view(verb) for verb in ("start", "kill")}


async def servers_all(request: HttpRequest, verb: str) -> HttpResponse:
    """Start every class with no server ON, or kill every class with one ON.
    The classes are read from Redis now, not taken from the page, and only
    for an operator's POST."""
    view = _SERVERS_ALL_VIEWS.get(verb)
    if view is None:
        raise Http404("No such command.")
    idents: list[str] = []
    _user, operator = await _is_operator(request)
    if operator and request.method == "POST":
        try:
            rows = await selectors.servers_list()
        except RedisUnavailable as exc:
            outcome = Outcome("Servers", status=503, kind="unreachable", errors=[str(exc)])
            return await _respond(request, outcome)
        on = {r.ident for r in rows if r.is_on}
        every = {r.ident for r in rows}
        idents = sorted(every - on) if verb == "start" else sorted(on)
    return await view(request, idents=idents)


# --- the Server log -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedAction:
    row: ActionRow
    log: str | None


def _recent_first(row: ActionRow) -> tuple[float, str]:
    return (-(row.done_at or row.doing_at or 0.0), row.path)


@require_GET
async def server_log(request: HttpRequest) -> HttpResponse:
    """A class's recent action logs for the current pulse (``LAST_BUILD_TABLE``,
    else ``DISPATCH_INFO``), and the output of its last Start or Kill."""
    raw = request.GET.get("ident", "")
    context: dict[str, Any] = {
        "ident": raw,
        "error": "",
        "notice": "",
        "pulse": None,
        "registered": None,  # unknown until Redis has said
    }
    status = 200
    try:
        ident = v.clean_server_class(raw)
    except ValidationError as exc:
        ident = ""
        context["notice"] = " ".join(exc.messages)
        status = 400
    logged: list[LoggedAction] = []
    more = 0
    if ident:
        try:
            pointers, servers = await asyncio.gather(
                selectors.pointers_get(), selectors.servers_list()
            )
            pulse = pointers.current
            context["pulse"] = pulse
            context["registered"] = any(s.ident == ident for s in servers)
            if pulse is not None:
                actions = await selectors.pulse_actions(pulse.tree, pulse.shot)
                rows = sorted(
                    (r for r in actions.rows.values() if r.server == ident), key=_recent_first
                )
                more = max(0, len(rows) - SERVER_LOG_ACTIONS)
                rows = rows[:SERVER_LOG_ACTIONS]
                logs = await asyncio.gather(
                    *(selectors.action_log_get(r.tree, r.shot, r.path) for r in rows)
                )
                logged = [LoggedAction(r, log) for r, log in zip(rows, logs, strict=True)]
        except RedisUnavailable as exc:
            context["error"] = str(exc)
            status = 503
        context["site"] = await sync_to_async(services.last_site_output)(ident=ident)
    context.update(ident=ident or raw, logged=logged, more=more)
    if request.htmx:
        return render(request, PARTIALS + "_server_log.html", context, status=status)
    context.update(await _base_context(request, "servers", await _header()))
    return render(request, "monitor/server_log.html", context, status=status)
