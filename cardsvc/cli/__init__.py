"""The ``cardsvc`` command line (typer). One module per command group; errors mapped in ``main``."""
