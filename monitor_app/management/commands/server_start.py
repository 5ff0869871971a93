from monitor_app import services
from monitor_app.management.commands._server import ServerCommand


class Command(ServerCommand):
    help = (
        "Start the servers of a class with the site command "
        "(WEBMONITOR_SERVER_COMMAND + CLASS START): no shell, a timeout, its exit "
        "status and output printed and recorded."
    )

    def handle(self, *args, **options):
        if options["server_id"] is not None:
            self.stderr.write(
                self.style.WARNING("warning: the site command takes CLASS only; ID is not passed")
            )
        self.run(services.server_start, ident=options["ident"], reason=options["reason"])
