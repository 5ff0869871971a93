"""The audit record in Django's admin: read-only, since a record that can be
edited is no record."""

from __future__ import annotations

from django.contrib import admin

from monitor_app.models import CommandRecord


@admin.register(CommandRecord)
class CommandRecordAdmin(admin.ModelAdmin):
    list_display = ("created", "username", "source", "command", "tree", "shot", "ok", "reason")
    list_filter = ("ok", "source", "command", "tree", "created")
    search_fields = ("username", "command", "tree", "shot", "reason", "result")
    date_hierarchy = "created"
    ordering = ("-created",)
    list_per_page = 100

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
