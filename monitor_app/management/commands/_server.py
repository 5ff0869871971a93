"""Shared by the server_* commands: CLASS and an optional ID."""

from monitor_app.management.base import OperatorCommand, add_reason


class ServerCommand(OperatorCommand):
    def add_arguments(self, parser):
        parser.add_argument("ident", metavar="CLASS", help="server class, e.g. TIMING_SERVER")
        parser.add_argument(
            "server_id", metavar="ID", nargs="?", default=None, help="server id (default 1)"
        )
        add_reason(parser)
