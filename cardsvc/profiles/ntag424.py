"""The `[ntag424]` table of a firmware profile (family-specific layout, keys and behaviour)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Ntag424Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
