"""Logging set-up: a module logger everywhere, an APDU trace level, and redaction of personal data.

``TRACE`` (level 5) carries APDU traces; the transport redacts key material and cryptograms before
they reach it. :class:`RedactingFilter` masks anything shaped like a Chinese citizen ID number or a
mobile phone number in every record, whichever module produced it.
"""

from __future__ import annotations

import logging
import re

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# 17 digits + digit/X (citizen ID, residence permits) and 11-digit mainland mobile numbers.
# ``\d`` matches full-width digits too (Excel exports them); the check character may be a full-width X.
_ID_NUMBER = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXxＸｘ](?![\dA-Za-zＡ-Ｚａ-ｚ])")
_PHONE = re.compile(r"(?<![\dA-Za-z])[1１][3-9３-９]\d{9}(?![\dA-Za-zＡ-Ｚａ-ｚ])")


def redact(text: str) -> str:
    """Mask ID-number- and phone-shaped substrings."""
    text = _ID_NUMBER.sub("[ID-REDACTED]", text)
    return _PHONE.sub("[PHONE-REDACTED]", text)


class RedactingFilter(logging.Filter):
    """Replace a record's message with its redacted rendering."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def configure(level: str | int = "INFO") -> None:
    """Install one stderr handler with the redacting filter on the ``cardsvc`` logger."""
    root = logging.getLogger("cardsvc")
    root.setLevel(level)
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
