"""What every operator management command shares: the shell actor, turning
a refusal into ``CommandError`` (exit status 1), and printing the result the
same way everywhere. The commands themselves only parse arguments and call
one service."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from monitor_app.services import Actor, CommandRefused, CommandResult

EXIT_REFUSED = 1  # refused, Redis unreachable, or the site command failed
EXIT_FAILED = 3  # do_phase --wait: an action failed or could not run
EXIT_TIMEOUT = 4  # do_phase --wait: the phase was not over in time

EXIT_STATUS_HELP = (
    f"Exit status: 0 done, {EXIT_REFUSED} refused or failed (the reason is printed), 2 bad usage."
)


class OperatorCommand(BaseCommand):
    """Base of the shell commands that send something to the dispatcher."""

    epilog = EXIT_STATUS_HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = self.epilog
        parser.formatter_class = _Formatter
        return parser

    def actor(self) -> Actor:
        return Actor.shell()

    def run(self, service: Callable[..., CommandResult], **kwargs: Any) -> CommandResult:
        """Call one service as the shell user and print what it did."""
        try:
            result = service(actor=self.actor(), **kwargs)
        except CommandRefused as exc:
            raise CommandError(exc.message, returncode=EXIT_REFUSED) from None
        self.show(result)
        if not result.ok:
            raise CommandError(result.message, returncode=EXIT_REFUSED)
        return result

    def show(self, result: CommandResult) -> None:
        style = self.style.SUCCESS if result.ok else self.style.ERROR
        self.stdout.write(style(result.message))
        for op in result.sent:
            self.stdout.write(f"  {op}")
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
        output = result.details.get("output")
        if output:
            self.stdout.write(output.rstrip("\n"))


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def add_reason(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reason", default="", help="why (kept in the audit record with the command)"
    )


def add_pulse_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tree", help="tree (default: the pulse in DISPATCH_DEFAULT)")
    parser.add_argument("--shot", help="shot (default: the pulse in DISPATCH_DEFAULT)")


def pulse_options(options: dict[str, Any]) -> tuple[Any, Any]:
    tree, shot = options.get("tree"), options.get("shot")
    if (tree is None) != (shot is None):
        raise CommandError("Give both --tree and --shot, or neither.", returncode=EXIT_REFUSED)
    return tree, shot
