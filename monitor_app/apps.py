from django.apps import AppConfig


class MonitorAppConfig(AppConfig):
    name = "monitor_app"
    verbose_name = "Dispatcher monitor"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_migrate

        from monitor_app import checks  # noqa: F401 - registers the checks
        from monitor_app.consumers import end_session_sockets
        from monitor_app.roles import ensure_roles_after_migrate

        post_migrate.connect(ensure_roles_after_migrate, sender=self)
        user_logged_out.connect(end_session_sockets, dispatch_uid="webmonitor-end-sockets")
