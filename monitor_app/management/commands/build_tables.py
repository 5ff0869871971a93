from django.core.management.base import CommandError

from monitor_app import services
from monitor_app.management.base import EXIT_REFUSED, OperatorCommand


class Command(OperatorCommand):
    help = (
        "Build the dispatch tables of a pulse: of TREE SHOT if given, else of the "
        "pulse in DISPATCH_DEFAULT (the last create_pulse)."
    )

    def add_arguments(self, parser):
        parser.add_argument("tree", nargs="?", help="tree name (default: DISPATCH_DEFAULT)")
        parser.add_argument("shot", nargs="?", help="shot number (default: DISPATCH_DEFAULT)")

    def handle(self, *args, **options):
        tree, shot = options["tree"], options["shot"]
        if (tree is None) != (shot is None):
            raise CommandError("Give both TREE and SHOT, or neither.", returncode=EXIT_REFUSED)
        self.run(services.tables_build, tree=tree, shot=shot)
