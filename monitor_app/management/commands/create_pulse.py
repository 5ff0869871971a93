from monitor_app import services
from monitor_app.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Create pulse SHOT of TREE from the model; it also becomes the default pulse "
        "(DISPATCH_DEFAULT) that build_tables and do_phase use."
    )

    def add_arguments(self, parser):
        parser.add_argument("tree", help="tree name, e.g. DEMO (sent upper-cased)")
        parser.add_argument("shot", help="shot number, 1 to 2147483647")

    def handle(self, *args, **options):
        self.run(services.pulse_create, tree=options["tree"], shot=options["shot"])
