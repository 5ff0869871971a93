from monitor_app import services
from monitor_app.management.commands._actions import ActionCommand


class Command(ActionCommand):
    help = (
        "Re-dispatch actions of a pulse outside the dispatcher's sequence: a work item "
        "on the queue of the action's server class, then DO. The result lands in "
        "ACTION_STATUS/ACTION_INFO only."
    )

    def handle(self, *args, **options):
        self.each(services.action_dispatch, **options)
