"""Route modules; each exposes ``router``. Every route has a ``name`` listed in ROUTE_POLICIES."""
