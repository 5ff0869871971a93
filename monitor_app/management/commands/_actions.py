"""Shared by dispatch_action and abort_action: one or more paths, each its
own command, exit status 1 when any was refused."""

from django.core.management.base import CommandError

from monitor_app import services
from monitor_app.management.base import EXIT_REFUSED, OperatorCommand


class ActionCommand(OperatorCommand):
    def add_arguments(self, parser):
        parser.add_argument("tree", help="tree name")
        parser.add_argument("shot", help="shot number")
        parser.add_argument(
            "paths",
            nargs="+",
            metavar="PATH",
            help=r"full action path exactly as stored, e.g. '\DEMO::TOP.A:INIT' (quote it)",
        )

    def each(self, service, **options):
        refused = 0
        for path in options["paths"]:
            try:
                result = service(
                    tree=options["tree"],
                    shot=options["shot"],
                    path=path,
                    actor=self.actor(),
                    **options.get("extra", {}),
                )
            except services.RedisUnreachable as exc:
                raise CommandError(exc.message, returncode=EXIT_REFUSED) from None
            except services.CommandRefused as exc:
                refused += 1
                self.stderr.write(self.style.ERROR(exc.message))
                continue
            self.show(result)
        if refused:
            raise CommandError(
                f"{refused} of {len(options['paths'])} refused.", returncode=EXIT_REFUSED
            )
