"""``python -m cardsvc.demo`` (what ``tools/dev.sh demo`` runs)."""

import sys

from cardsvc.demo.main import main

sys.exit(main())
