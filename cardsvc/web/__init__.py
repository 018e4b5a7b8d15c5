"""Server-rendered staff pages (issuance desk, service points, partner bases, admin) beside the API.

:func:`cardsvc.web.app.create_web_app` composes one ASGI app: the pages (this package, its own
FastAPI instance with staff sessions, CSRF and role checks from :data:`cardsvc.web.access.PAGES`)
and the JSON API (:func:`cardsvc.api.app.create_app`, untouched). See ``docs/web.md``.
"""
