"""The console's own records. Dispatcher state lives in Redis, never here."""

from __future__ import annotations

from django.conf import settings
from django.db import models

OPERATE_PERMISSION = "monitor_app.operate_dispatcher"


class CommandRecord(models.Model):
    """One operator command, from the web or the shell, and what came of it."""

    SOURCE_WEB = "web"
    SOURCE_SHELL = "shell"
    #: The result of an attempt by someone who is not an operator.
    DENIED_RESULT = "denied: not an operator"

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, db_index=True)
    source = models.CharField(max_length=8, choices=[(SOURCE_WEB, "web"), (SOURCE_SHELL, "shell")])
    command = models.CharField(max_length=64, db_index=True)
    arguments = models.JSONField(default=dict, blank=True)
    tree = models.CharField(max_length=64, blank=True, db_index=True)
    shot = models.CharField(max_length=16, blank=True, db_index=True)
    reason = models.TextField(blank=True)
    ok = models.BooleanField(default=False)
    #: Stopped before anything was sent (bad input, not an operator), as
    #: against a command that was sent or run and failed.
    refused = models.BooleanField(default=False)
    result = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]
        permissions = [
            ("operate_dispatcher", "Can send commands to the dispatcher and action servers"),
        ]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.username} {self.command}"

    @property
    def outcome(self) -> str:
        """ok, failed (sent or run, and it went wrong), refused (nothing
        sent), or denied (nothing sent: not an operator)."""
        if self.ok:
            return "ok"
        if not self.refused:
            return "failed"
        return "denied" if self.result == self.DENIED_RESULT else "refused"
