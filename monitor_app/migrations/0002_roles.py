"""The two roles: viewers see everything, operators may also send commands."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWERS = "viewers"
OPERATORS = "operators"


def create_roles(apps, schema_editor):
    # Permissions are normally made after all migrations; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    operate = Permission.objects.get(
        content_type__app_label="monitor_app", codename="operate_dispatcher"
    )
    view_records = Permission.objects.get(
        content_type__app_label="monitor_app", codename="view_commandrecord"
    )
    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    viewers.permissions.add(view_records)
    operators, _ = Group.objects.get_or_create(name=OPERATORS)
    operators.permissions.add(operate, view_records)


def remove_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=[VIEWERS, OPERATORS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("monitor_app", "0001_command_record"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
