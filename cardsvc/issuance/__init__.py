"""Batch issuance: batches, the per-card journal, stations driving readers, card lifecycle, print."""
