from django.core.management.base import CommandError
from django.utils import timezone

from monitor_app import protocol as p
from monitor_app import services
from monitor_app.management.base import (
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    OperatorCommand,
    add_pulse_options,
    pulse_options,
)
from monitor_app.phase_watch import PhaseOutcome, PhaseWatch


class Command(OperatorCommand):
    help = (
        "Run every action of PHASE of the default pulse (DISPATCH_DEFAULT) or of "
        "--tree/--shot. Warnings (tables not built, servers off) are printed; the "
        "command is sent anyway.\n\n"
        "With --wait, print each action as it starts and ends and return when the phase "
        "is really over, judged from the actions' states (the dispatcher's END_PHASE "
        "comes early, repeatedly, or not at all)."
    )
    epilog = (
        f"Exit status: 0 done (with --wait: every action of the phase succeeded), "
        f"{EXIT_REFUSED} refused, or tables not built with --wait, 2 bad usage, "
        f"{EXIT_FAILED} an action failed, was aborted or could not run, "
        f"{EXIT_TIMEOUT} --timeout passed before the phase was over."
    )

    def add_arguments(self, parser):
        parser.add_argument("phase", help="phase name, e.g. INIT (sent upper-cased)")
        add_pulse_options(parser)
        parser.add_argument("--wait", action="store_true", help="follow the phase until it is over")
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="with --wait: give up after this many seconds (default: wait for ever)",
        )

    def handle(self, *args, **options):
        tree, shot = pulse_options(options)
        timeout = options["timeout"]
        if timeout is not None and not options["wait"]:
            raise CommandError("--timeout needs --wait.", returncode=EXIT_REFUSED)
        if timeout is not None and timeout <= 0:
            raise CommandError("--timeout must be more than 0.", returncode=EXIT_REFUSED)
        if not options["wait"]:
            self.run(services.phase_do, tree=tree, shot=shot, phase=options["phase"], confirm=True)
            return
        try:
            check = services.phase_check(tree=tree, shot=shot, phase=options["phase"])
            with PhaseWatch(tree=check.tree, shot=check.shot, phase=check.phase) as watch:
                self.run(
                    services.phase_do,
                    tree=check.tree,
                    shot=check.shot,
                    phase=check.phase,
                    confirm=True,
                )
                if not check.tables_built:
                    raise CommandError(
                        f"Not waiting: the tables of {check.tree} {check.shot} have not been "
                        "built, so the dispatcher runs nothing. Run build_tables first.",
                        returncode=EXIT_REFUSED,
                    )
                if check.actions == 0:
                    raise CommandError(
                        f"Not waiting: no action of {check.tree} {check.shot} is in phase "
                        f"{check.phase}.",
                        returncode=EXIT_REFUSED,
                    )
                outcome = watch.wait(timeout=timeout, on_message=self.print_message)
        except services.CommandRefused as exc:
            raise CommandError(exc.message, returncode=EXIT_REFUSED) from None
        except KeyboardInterrupt:
            raise CommandError("Interrupted; the phase goes on.", returncode=130) from None
        self.report(check, outcome, timeout)

    def print_message(self, msg) -> None:
        stamp = timezone.localtime().strftime("%H:%M:%S")
        if isinstance(msg, p.Doing):
            self.stdout.write(f"{stamp} DOING {msg.ident} {msg.server_id} {msg.path}")
        elif isinstance(msg, p.Done):
            style = self.style.SUCCESS if msg.status == p.STATUS_SUCCESS else self.style.ERROR
            self.stdout.write(
                f"{stamp} DONE  {msg.ident} {msg.server_id} {msg.path} " + style(msg.status)
            )
        elif isinstance(msg, p.EndPhase):
            self.stdout.write(f"{stamp} END_PHASE {msg.phase} (checking the actions' states)")

    def report(self, check: services.PhaseCheck, outcome: PhaseOutcome, timeout) -> None:
        name = f"Phase {check.phase} of {check.tree} {check.shot}"
        for row in outcome.failed:
            what = "server off" if row.state == p.STATE_SERVER_OFF else row.status
            self.stderr.write(self.style.ERROR(f"  {row.path} ({row.server}): {what}"))
        for row in outcome.not_run:
            self.stderr.write(self.style.WARNING(f"  {row.path} ({row.server}): never ran"))
        counts = (
            f"{len(outcome.succeeded)} succeeded, {len(outcome.failed)} failed, "
            f"{len(outcome.not_run)} never ran"
        )
        if outcome.timed_out:
            raise CommandError(
                f"{name} was not over after {timeout:g} s ({counts}).", returncode=EXIT_TIMEOUT
            )
        if outcome.failed:
            raise CommandError(f"{name} is over: {counts}.", returncode=EXIT_FAILED)
        self.stdout.write(self.style.SUCCESS(f"{name} is over: {counts}."))
