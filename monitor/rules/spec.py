"""The base of every part of a rule file's schema: a frozen model that rejects unknown keys.
Each rule stage writes its own part (`Fragment`); `monitor.rules.schema` puts them together."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A part of a rule file: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Fragment(Model):
    """The keys one rule stage adds to a rule (`RuleSpec` is the core and every fragment)."""
