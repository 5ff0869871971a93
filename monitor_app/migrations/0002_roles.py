"""The two roles: viewers see everything, operators may also send commands."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from monitor_app.roles import OPERATORS, VIEWERS, ensure_roles


def create_roles(apps, schema_editor):
    # Permissions are normally made after all migrations; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


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
