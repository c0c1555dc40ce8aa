"""Model family files: the checkpoints of growing training compute that a scaling fit reads.

A family file is YAML, read safely and validated like an exam (one ``FILE:LINE: field: message``
line per problem). Each member names its backend (an OpenAI-compatible base URL, a model and the
environment variable holding its key; no ``model`` means the embedded local model) and its training
compute, either in FLOPs or as parameters N and training tokens D, which becomes C = 6·N·D (the
usual dense-transformer estimate) and is recorded as such, so a reader can tell a measured FLOP
count from an estimate::

    # Where the checkpoints and their compute figures come from.
    name: my-family
    members:
      - name: m-1e20
        label: "1/10,000"
        compute: {flops: 1.0e+20}
        backend: {base_url: "http://127.0.0.1:8000/v1", model: m-1e20, api_key_env: MY_KEY}
      - name: m-big
        compute: {parameters: 7.0e+9, tokens: 2.0e+12}
        backend: {base_url: "http://127.0.0.1:8000/v1", model: m-big}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from examharness.errors import InputError
from examharness.yamlpos import PathError, load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemberBackend(_Strict):
    """Where a member answers. Keys are read from ``api_key_env`` at run time, never stored."""

    base_url: str | None = None
    model: str | None = None
    """The model name sent with each request; None means the embedded local model."""
    api_key_env: str = "OPENAI_API_KEY"

    @model_validator(mode="after")
    def _url_needs_model(self) -> MemberBackend:
        if self.base_url is not None and self.model is None:
            raise ValueError("base_url needs a model name")
        return self


class Compute(_Strict):
    """Training compute: ``flops``, or ``parameters`` and ``tokens`` (then C = 6·N·D)."""

    flops: float | None = Field(default=None, gt=0)
    parameters: float | None = Field(default=None, gt=0)
    tokens: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_way(self) -> Compute:
        pair = (self.parameters is None, self.tokens is None)
        if self.flops is not None and pair != (True, True):
            raise ValueError("give flops, or parameters and tokens, not both")
        if self.flops is None and pair != (False, False):
            raise ValueError("give flops, or both parameters and tokens")
        return self

    def resolve(self) -> ResolvedCompute:
        if self.flops is not None:
            return ResolvedCompute(flops=self.flops, method="flops")
        assert self.parameters is not None and self.tokens is not None
        return ResolvedCompute(
            flops=6 * self.parameters * self.tokens,
            method="6ND",
            parameters=self.parameters,
            tokens=self.tokens,
        )


class ResolvedCompute(BaseModel):
    """The compute a fit uses, and how it was obtained (``6ND``: an estimate from N and D)."""

    flops: float
    method: Literal["flops", "6ND"]
    parameters: float | None = None
    tokens: float | None = None


class Member(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """Also the member's folder name in a family run."""
    label: str | None = None
    backend: MemberBackend
    compute: Compute

    @property
    def display(self) -> str:
        return self.label or self.name


class Family(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str | None = None
    members: list[Member] = Field(min_length=1)

    @field_validator("members")
    @classmethod
    def _unique(cls, members: list[Member]) -> list[Member]:
        seen: set[str] = set()
        for i, m in enumerate(members):
            if m.name in seen:
                raise PathError([i, "name"], f"member name {m.name!r} is used twice")
            seen.add(m.name)
        return members


class FamilyMember(BaseModel):
    """A member as recorded in result files: its compute resolved, its key never."""

    name: str
    label: str | None = None
    model: str | None
    base_url: str | None
    api_key_env: str
    compute: ResolvedCompute | None
    """None for a single ``--model`` outside a family (its loss is measured, not fitted)."""


def load_family(path: Path) -> Family:
    """Read and validate a family file; raise :class:`InputError` with FILE:LINE problems."""
    family, _ = load_model(path, Family, "a family file")
    return family


def recorded_members(family: Family) -> list[FamilyMember]:
    return [
        FamilyMember(
            name=m.name,
            label=m.label,
            model=m.backend.model,
            base_url=m.backend.base_url,
            api_key_env=m.backend.api_key_env,
            compute=m.compute.resolve(),
        )
        for m in family.members
    ]


def member_named(members: list[FamilyMember], name: str, where: str) -> FamilyMember:
    for m in members:
        if m.name == name:
            return m
    raise InputError.one(where, None, "member", f"no member named {name!r}")
