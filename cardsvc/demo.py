"""``tools/dev.sh demo``: run cardsvc on embedded defaults.

Until the API lands this starts the virtual readers with emulated blank cards (see ``cardsvc emulate``).
When no system pcscd offers vpcd readers (nothing listens on port 35963), the demo starts a private
pcscd (needs root) and prints the ``PCSCLITE_CSOCK_NAME`` other shells must export to see it.
"""

from __future__ import annotations

import sys

from cardsvc.cli.main import run
from cardsvc.emulator.pcscd import listening_ports
from cardsvc.emulator.vpcd import DEFAULT_PORT


def main() -> None:
    private = [] if DEFAULT_PORT in listening_ports() else ["--private-pcscd"]
    run(["emulate", "--profile", "ntag424-dna", "--readers", "2", *private, *sys.argv[1:]])


if __name__ == "__main__":
    main()
