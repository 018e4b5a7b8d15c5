"""Sample files shipped for the demo and the README tour (fictional organisations and people).

``orgs.csv`` is a small district union hierarchy (codes D01/T01/P01 are the ones the verification
seed data refers to); ``members.csv`` holds 40 generated members and ``new-members.csv`` 8 more for
the tour's import step. Names, ID numbers (valid GB 11643 check characters) and phone numbers
(1390000xxxx) are generated: they describe no real person.
"""

from __future__ import annotations

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
ORGS = DIRECTORY / "orgs.csv"
MEMBERS = DIRECTORY / "members.csv"
NEW_MEMBERS = DIRECTORY / "new-members.csv"
