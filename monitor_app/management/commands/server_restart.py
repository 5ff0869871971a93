from monitor_app import services
from monitor_app.management.commands._server import ServerCommand


class Command(ServerCommand):
    help = "Restart a server: the actions it is doing end Aborted (RESTART+ID)."

    def handle(self, *args, **options):
        self.run(
            services.server_restart,
            ident=options["ident"],
            server_id=options["server_id"] or "1",
            reason=options["reason"],
        )
