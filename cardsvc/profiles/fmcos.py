"""The `[fmcos]` table of a firmware profile (family-specific layout, keys and behaviour)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FmcosConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
