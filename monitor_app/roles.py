"""The two roles as Django groups: viewers see, operators also command."""

from __future__ import annotations

VIEWERS = "viewers"
OPERATORS = "operators"


def ensure_roles(group_model, permission_model) -> None:
    """Create both groups with their permissions; safe to run again."""
    operate = permission_model.objects.filter(
        content_type__app_label="monitor_app", codename="operate_dispatcher"
    ).first()
    view_records = permission_model.objects.filter(
        content_type__app_label="monitor_app", codename="view_commandrecord"
    ).first()
    viewers, _ = group_model.objects.get_or_create(name=VIEWERS)
    operators, _ = group_model.objects.get_or_create(name=OPERATORS)
    if view_records is not None:
        viewers.permissions.add(view_records)
        operators.permissions.add(view_records)
    if operate is not None:
        operators.permissions.add(operate)


def ensure_roles_after_migrate(sender, **kwargs) -> None:
    """Also after ``flush`` (which empties the groups the migration made)."""
    from django.contrib.auth.models import Group, Permission

    ensure_roles(Group, Permission)
