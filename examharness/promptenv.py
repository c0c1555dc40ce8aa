"""The sandboxed Jinja environment class prompts render in (imported with Jinja, on first use).

Prompt variables are plain dicts (:func:`examharness.prompts.item_context`), read in templates as
``item.question`` or ``o.letter``. The sandbox resolves ``obj.name`` by trying the attribute first
and the key only when that raises ``AttributeError``: for a dict, an exception per lookup, about a
third of what rendering a 5-shot MMLU prompt costs. :class:`PromptEnvironment` answers those
lookups from the dict directly, with the very same result.

It also notes whether any template it compiled has a ``{% filter %}`` block: such a block's text
goes out through its filter without passing Jinja's ``finalize`` again, so
:func:`examharness.prompts._hold` holds every value aside in that environment (a filter such as
``lower`` or ``wordwrap`` could turn a written-out value into a role marker line).
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

DICT_ATTRIBUTES = frozenset(dir(dict))
"""Every attribute a plain dict has (its type's, ``object``'s; a dict has no instance ones)."""


class PromptEnvironment(ImmutableSandboxedEnvironment):
    """:class:`ImmutableSandboxedEnvironment` with a shortcut for ``plain_dict.name``, that
    records whether it compiled a filter block (:attr:`filter_blocks`)."""

    filter_blocks: bool = False
    """Set (for good) when a template with a ``{% filter %}`` block is compiled, before any of
    its code runs: a value written inside such a block is finalized after this is set."""

    def getattr(self, obj: Any, attribute: str) -> Any | Undefined:
        """Exact: for an object whose type is exactly ``dict`` and a name that is not one of its
        attributes, the sandbox's ``getattr(obj, name)`` raises ``AttributeError`` and it returns
        ``obj[name]``, unchecked, when the key is there, which is what this returns. Everything
        else (a dict method such as ``items``, a missing key, any other object) goes through the
        sandbox's own lookup and safety checks."""
        if type(obj) is dict and attribute not in DICT_ATTRIBUTES and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        """Jinja's documented hook between parsing and code generation: every compiled template
        (loaded, included, imported or extended) passes here with its syntax tree."""
        if source.find(nodes.FilterBlock) is not None:
            self.filter_blocks = True
        return super()._generate(source, name, filename, defer_init=defer_init)
