"""Tell a refused attempt (nothing sent) from a command that failed."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("monitor_app", "0002_roles")]

    operations = [
        migrations.AddField(
            model_name="commandrecord",
            name="refused",
            field=models.BooleanField(default=False),
        ),
    ]
