from django.apps import AppConfig


class MonitorAppConfig(AppConfig):
    name = "monitor_app"
    verbose_name = "Dispatcher monitor"

    def ready(self) -> None:
        from monitor_app import checks  # noqa: F401 - registers the checks
