"""Web pages served by the API (Chinese UI): the phone-tap page."""
