from monitor_app import services
from monitor_app.management.commands._server import ServerCommand


class Command(ServerCommand):
    help = "Ask a server to stop taking work (STOP+ID). The genuine server ignores it."

    def handle(self, *args, **options):
        self.run(
            services.server_stop,
            ident=options["ident"],
            server_id=options["server_id"] or "1",
            reason=options["reason"],
        )
