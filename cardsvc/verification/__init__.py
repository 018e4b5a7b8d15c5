"""Verification workflows: QR, phone tap (SUN), reader tap; eligibility, service records, audit."""
