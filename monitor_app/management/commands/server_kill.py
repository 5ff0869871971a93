from monitor_app import services
from monitor_app.management.commands._server import ServerCommand


class Command(ServerCommand):
    help = (
        "Kill the servers of a class with the site command "
        "(WEBMONITOR_SERVER_COMMAND + CLASS KILL): no shell, a timeout, its exit "
        "status and output printed and recorded."
    )

    def handle(self, *args, **options):
        if options["server_id"] is not None:
            self.stderr.write(
                self.style.WARNING("warning: the site command takes CLASS only; ID is not passed")
            )
        self.run(services.server_kill, ident=options["ident"], reason=options["reason"])
