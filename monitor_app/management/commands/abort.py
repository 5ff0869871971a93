from monitor_app import services
from monitor_app.management.base import OperatorCommand, add_reason


class Command(OperatorCommand):
    help = (
        "Abort the running sequence: the dispatcher dispatches nothing more of it. "
        "Actions already running go on; stop them with abort_action."
    )

    def add_arguments(self, parser):
        add_reason(parser)

    def handle(self, *args, **options):
        self.run(services.sequence_abort, reason=options["reason"])
