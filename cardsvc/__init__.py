"""cardsvc — issue and verify real-name trade-union membership smart cards."""

__version__ = "0.1.0"
