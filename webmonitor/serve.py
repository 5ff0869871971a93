"""``python -m webmonitor.serve [daphne's arguments]``: daphne, on uvloop.

daphne runs Twisted on an asyncio loop it makes when imported, and every
WebSocket frame it sends registers and unregisters its socket with that
loop: at 200 browsers that bookkeeping was the largest cost of a change
(docs/performance.md). uvloop does it in C. The policy has to be in place
before daphne is imported; without uvloop (another platform) this is plain
daphne."""

from __future__ import annotations

import asyncio
import sys


def install_loop() -> str:
    """Make new event loops uvloop's when it is installed; the loop's name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def main() -> None:
    install_loop()
    from daphne.cli import CommandLineInterface

    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
