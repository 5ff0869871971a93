from django.core.management.base import CommandError

from monitor_app import services
from monitor_app.management.base import EXIT_REFUSED, OperatorCommand


class Command(OperatorCommand):
    help = "Print the output captured while an action ran (ACTION_LOG)."

    def add_arguments(self, parser):
        parser.add_argument("tree", help="tree name")
        parser.add_argument("shot", help="shot number")
        parser.add_argument("path", help=r"full action path as stored, e.g. '\DEMO::TOP.A:INIT'")

    def handle(self, *args, **options):
        try:
            log = services.action_log_read(
                tree=options["tree"], shot=options["shot"], path=options["path"]
            )
        except services.CommandRefused as exc:
            raise CommandError(exc.message, returncode=EXIT_REFUSED) from None
        if log.log is None:
            raise CommandError(
                f"{log.path} of {log.tree} {log.shot} has no log: it never reported "
                "to the dispatcher.",
                returncode=EXIT_REFUSED,
            )
        self.stdout.write(log.log, ending="" if log.log.endswith("\n") else "\n")
