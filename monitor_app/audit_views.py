"""The Audit tab: every command from the web and the shell, newest first,
filtered by user, command, pulse and outcome, paginated. A read of the
database only; everything shown is escaped by the template."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from monitor_app.forms import AuditFilterForm
from monitor_app.models import CommandRecord
from monitor_app.views import _base_context, _header

PAGE_SIZE = 50
VIEW_PERMISSION = "monitor_app.view_commandrecord"


def _audit_data(params: dict[str, str]) -> dict[str, Any]:
    """The filtered page of records and the choices for the filters (sync:
    the ORM)."""
    form = AuditFilterForm(params)
    form.is_valid()  # the filters understood apply; the page names the others
    filters = form.cleaned_data
    records = CommandRecord.objects.all()
    if filters.get("user"):
        records = records.filter(username=filters["user"])
    if filters.get("command"):
        records = records.filter(command=filters["command"])
    if filters.get("tree"):
        records = records.filter(tree=filters["tree"])
    if filters.get("shot"):
        records = records.filter(shot=filters["shot"])
    if filters.get("outcome") == "ok":
        records = records.filter(ok=True)
    elif filters.get("outcome") == "failed":
        records = records.filter(ok=False)
    page = Paginator(records.order_by("-created", "-id"), PAGE_SIZE).get_page(params.get("page"))
    kept = {k: str(val) for k, val in filters.items() if val}
    return {
        "form": form,
        "filters": kept,
        "page": page,
        "records": list(page.object_list),
        "users": list(
            CommandRecord.objects.order_by("username").values_list("username", flat=True).distinct()
        ),
        "commands": list(
            CommandRecord.objects.order_by("command").values_list("command", flat=True).distinct()
        ),
        "prev_url": "?" + urlencode({**kept, "page": page.previous_page_number()})
        if page.has_previous()
        else "",
        "next_url": "?" + urlencode({**kept, "page": page.next_page_number()})
        if page.has_next()
        else "",
    }


@require_GET
async def audit_page(request: HttpRequest) -> HttpResponse:
    """Who did what and what came of it; viewers may read it too (the
    record is how a control room explains itself)."""
    user = await request.auser()
    if not await user.ahas_perm(VIEW_PERMISSION):
        return HttpResponse("You may not read the audit record.", status=403)
    params = {k: request.GET.get(k, "") for k in ("user", "command", "tree", "shot", "outcome")}
    params["page"] = request.GET.get("page", "1")
    data = await sync_to_async(_audit_data)(params)
    context = await _base_context(request, "audit", await _header())
    context.update(data)
    if request.htmx:
        context["oob"] = True  # the messages next to the fields, outside the table
        return render(request, "monitor/partials/_audit_table.html", context)
    return render(request, "monitor/audit.html", context)
