"""Verification workflows: QR, phone tap (SUN), reader tap; eligibility, service records, audit.

Foundations shared by every workflow: :mod:`.roles` (roles, route permissions, member-view allow-lists),
:mod:`.tokens` (API clients and their tokens), :mod:`.ratelimit` (per-client token buckets) and
:mod:`.audit` (the hash-chained audit log).

Workflows: :mod:`.service` (QR, SUN, reader tap; :mod:`.checks` holds the pure cryptographic checks,
:mod:`.outcome` the OK/NOK/CHECK rules, :mod:`.views` the per-role member views), :mod:`.points`
(service records and statistics), :mod:`.recuperation` (eligibility, check-ins, offline lists),
:mod:`.trustbundle`, :mod:`.seed`. Storage glue: :mod:`.db` (transactions in a worker thread),
:mod:`.store` (DB client store and audit sink), :mod:`.keys` and :mod:`.setup` (key material).
"""

from cardsvc.verification.audit import AuditEvent, AuditRow, AuditSink, InMemoryAuditSink, Outcome
from cardsvc.verification.ratelimit import InProcessRateLimiter, RateLimit, RateLimiter, RedisRateLimiter
from cardsvc.verification.roles import Role, check_permission, present_member
from cardsvc.verification.tokens import ClientRecord, ClientStore, InMemoryClientStore, authenticate

__all__ = [
    "AuditEvent",
    "AuditRow",
    "AuditSink",
    "ClientRecord",
    "ClientStore",
    "InMemoryAuditSink",
    "InMemoryClientStore",
    "InProcessRateLimiter",
    "Outcome",
    "RateLimit",
    "RateLimiter",
    "RedisRateLimiter",
    "Role",
    "authenticate",
    "check_permission",
    "present_member",
]
