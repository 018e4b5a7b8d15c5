"""Batch issuance: batches, the per-card journal, stations driving readers, card lifecycle, print.

* :mod:`.batches` — ``BatchService`` (create/list/status), member selection, ``batch_context``
* :mod:`.journal` — ``Journal``: one committed transaction per arrow, reservations, numbers
* :mod:`.workflow` — ``CardWorkflow``: one card from reservation to issued; fault points
* :mod:`.station` — ``Station``/``Worker``: one thread per reader, ``StationEvent`` progress,
  bounded waits (``Limits``) and a watchdog (``StationStuck``)
* :mod:`.recovery` — ``Recovery``: resolve middle states by reading the cards
* :mod:`.lifecycle` — ``LifecycleService``: suspend/resume/lost/revoke/replace/renew
* :mod:`.printing` — ``PrintService``: PDF sheets (A4/CR80) and QR files, reprints recorded
* :mod:`.proofs`, :mod:`.keys`, :mod:`.numbering`, :mod:`.readers` — checks, key material, card
  numbers, PC/SC card sources

See docs/issuance.md.
"""
