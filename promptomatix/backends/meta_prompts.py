"""Meta-prompt templates by name, filled by the `register_meta_prompts` hook (the four built-in templates too).

The meta backend turns each into a TemplateStrategy: a pinned template gets a slot in every round (as
`--meta-prompt FILE` does), an unpinned one joins the rotation of strategies the search draws from.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from promptomatix.errors import PluginError
from promptomatix.plugins.manager import BUILTINS


@dataclass(frozen=True)
class MetaPromptTemplate:
    name: str
    text: str
    pinned: bool = False
    plugin: str = ""


class MetaPromptRegistry:
    def __init__(self) -> None:
        self._templates: dict[str, MetaPromptTemplate] = {}

    def register(self, name: str, text: str, *, pinned: bool = False, plugin: str = "") -> str:
        if not isinstance(name, str) or not name.strip() or not isinstance(text, str) or not text.strip():
            raise PluginError("register_meta_prompts expects register(name, template_text) with non-empty strings")
        if plugin != BUILTINS:
            check_template(name, text)
        if name in self._templates:
            owner = self._templates[name].plugin or "user code"
            raise PluginError(f"meta-prompt {name!r} is already registered by {owner}",
                              hint="register it under another name")  # fmt: skip
        self._templates[name] = MetaPromptTemplate(name, text, pinned, plugin)
        return name

    def all(self) -> list[MetaPromptTemplate]:
        return list(self._templates.values())

    def get(self, name: str) -> MetaPromptTemplate | None:
        return self._templates.get(name)


def check_template(name: str, text: str) -> None:
    """A plugin's template, checked when registered (`promptomatix plugins`, a run's checks, a dry run), not when
    the search first builds it after the spec and data calls were paid for: a built-in strategy's name is refused
    (`add_demos` replaced the demo search without a word), and so is a template that never shows the prompt."""
    from promptomatix.backends.strategies import BUILTIN_STRATEGIES, TemplateStrategy

    if name in BUILTIN_STRATEGIES:
        raise PluginError(f"meta-prompt {name!r} is the name of a built-in search strategy ({BUILTINS})",
                          hint="register it under another name")  # fmt: skip
    TemplateStrategy(name, text)  # a ConfigurationError naming the missing $current_prompt


@functools.cache
def meta_prompt_registry() -> MetaPromptRegistry:
    from promptomatix.plugins.manager import on_reset, run_register_hook

    on_reset(meta_prompt_registry.cache_clear)
    reg = MetaPromptRegistry()
    run_register_hook("register_meta_prompts", "meta_prompts", reg.register)
    return reg
