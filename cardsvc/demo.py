"""``tools/dev.sh demo``: run cardsvc on embedded defaults.

Until the API lands this starts the virtual readers with emulated blank cards (see ``cardsvc emulate``).
"""

from __future__ import annotations

import sys

from cardsvc.cli.main import run


def main() -> None:
    run(["emulate", "--profile", "ntag424-dna", "--readers", "2", *sys.argv[1:]])


if __name__ == "__main__":
    main()
