from monitor_app import services
from monitor_app.management.base import OperatorCommand, add_reason


class Command(OperatorCommand):
    help = (
        "Send any dispatcher command of the protocol, checked against its grammar: "
        "create_pulse:TREE:SHOT, build_tables:TREE:SHOT, do_phase:TREE:SHOT:PHASE, "
        "do_sequence:TREE:SHOT:PHASE:START:END, abort, abort_pending, print_pending, quit."
    )

    def add_arguments(self, parser):
        parser.add_argument("text", help="the command, e.g. do_sequence:DEMO:42:INIT:10:20")
        add_reason(parser)

    def handle(self, *args, **options):
        self.run(
            services.dispatcher_command_send,
            text=options["text"],
            confirm=True,
            reason=options["reason"],
        )
