from monitor_app import services
from monitor_app.management.base import OperatorCommand, add_reason


class Command(OperatorCommand):
    help = "Mark every pending action Aborted and abandon the running sequence."

    def add_arguments(self, parser):
        add_reason(parser)

    def handle(self, *args, **options):
        self.run(services.pending_abort, reason=options["reason"])
