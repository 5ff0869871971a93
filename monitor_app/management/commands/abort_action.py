from monitor_app import services
from monitor_app.management.base import add_reason
from monitor_app.management.commands._actions import ActionCommand


class Command(ActionCommand):
    help = (
        "Abort running actions of a pulse: ABORT with the path exactly as stored, to the "
        "server class found in ACTION_SERVER_INFO."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        add_reason(parser)

    def handle(self, *args, **options):
        self.each(services.action_abort, extra={"reason": options["reason"]}, **options)
