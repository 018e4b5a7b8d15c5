"""Page modules: each exposes ``router`` and is listed in :data:`cardsvc.web.app.PAGE_MODULES`."""
