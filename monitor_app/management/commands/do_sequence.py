from monitor_app import services
from monitor_app.management.base import OperatorCommand, add_pulse_options, pulse_options


class Command(OperatorCommand):
    help = (
        "Run the sequential actions of PHASE numbered START to END (and the dependent "
        "actions that fire), of the default pulse or of --tree/--shot. Warnings (tables "
        "not built, servers off) are printed; the command is sent anyway."
    )

    def add_arguments(self, parser):
        parser.add_argument("phase", help="phase name, e.g. INIT (sent upper-cased)")
        parser.add_argument("start", help="first sequence number")
        parser.add_argument("end", help="last sequence number")
        add_pulse_options(parser)

    def handle(self, *args, **options):
        tree, shot = pulse_options(options)
        self.run(
            services.sequence_do,
            tree=tree,
            shot=shot,
            phase=options["phase"],
            start=options["start"],
            end=options["end"],
            confirm=True,
        )
