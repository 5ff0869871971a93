from monitor_app import services
from monitor_app.management.commands._server import ServerCommand


class Command(ServerCommand):
    help = "Make a server write OFF and exit at once (QUIT+ID)."

    def handle(self, *args, **options):
        self.run(
            services.server_quit,
            ident=options["ident"],
            server_id=options["server_id"] or "1",
            reason=options["reason"],
        )
