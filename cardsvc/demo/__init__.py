"""``tools/dev.sh demo`` (``python -m cardsvc.demo``): the whole service on embedded defaults.

Steps, each idempotent so a second run reuses the data directory (``CARDSVC_DATA_DIR``, ``./var``):

1. ``cardsvc init --dev`` (schema to head, development PII keys) and ``cardsvc keys init`` when the
   key store has no issuer key yet;
2. the shipped sample organisations and members (``cardsvc/demo_data``) when the registry is empty;
3. service items, service points, partner bases and one recuperation programme, when the
   verification seed module is present;
4. two virtual readers, each with a stack of blank NTAG 424 DNA cards: a private pcscd when root
   (see ``cardsvc emulate --private-pcscd``), else the system pcscd's vpcd ports; when neither
   works the demo says why and runs the API without readers;
   the sample lists are copied to ``<data-dir>/samples`` for the README tour;
5. one staff user per role for the web pages (``staff``): random passwords on the first run, kept
   in ``<data-dir>/demo-staff.env`` (0600), development only;
6. ``<data-dir>/demo.env`` for other shells (``source var/demo.env``): data directory, issuer,
   ``PCSCLITE_CSOCK_NAME`` (a symlink to whichever pcscd runs the readers), the venv's ``PATH`` and
   fresh API tokens of a demo service point and a demo partner base (earlier ones are revoked) and
   the demo staff passwords (``CARDSVC_DEMO_<ROLE>_PASSWORD``);
7. ``cardsvc serve`` on 127.0.0.1:8000 in the foreground. Ctrl-C (or SIGTERM) stops the server,
   then the readers, then pcscd, and exits 0.

``python -m cardsvc.demo phone-tap IMAGE`` plays an NFC phone: it reads the SUN URL of a saved NTAG
424 DNA card image (and saves the card back, its read counter moved) and prints the URL to open.

Modules: ``base`` (names, options, :class:`DemoError`, running ``cardsvc``), ``data`` (steps 1-3),
``readers`` (step 4 and the tap reader), ``staff`` (step 5), ``phone`` (phone tap), ``main`` (steps 6-7 and
:func:`main`); ``__main__`` makes ``python -m cardsvc.demo`` run :func:`main`.
"""

from cardsvc.demo.base import DEMO_ISSUER, DEMO_PROFILE, DemoError, Options, cli, parse_options
from cardsvc.demo.data import prepare, registry_counts, seed_reference_data
from cardsvc.demo.main import create_demo_clients, main, write_env_file
from cardsvc.demo.phone import phone_tap
from cardsvc.demo.readers import Readers, tap_reader, virtual_readers
from cardsvc.demo.staff import DEMO_USERS, DemoUser, StaffLogins, ensure_demo_staff

__all__ = [
    "DEMO_ISSUER",
    "DEMO_PROFILE",
    "DEMO_USERS",
    "DemoError",
    "DemoUser",
    "Options",
    "Readers",
    "StaffLogins",
    "cli",
    "create_demo_clients",
    "ensure_demo_staff",
    "main",
    "parse_options",
    "phone_tap",
    "prepare",
    "registry_counts",
    "seed_reference_data",
    "tap_reader",
    "virtual_readers",
    "write_env_file",
]
