"""Model providers: which client serves a model string. Filled by the `register_models` hook.

Built-ins (promptomatix.plugins.builtins): `local` (local/NAME from the catalogue, local:/path.gguf) and `litellm`
(the fallback: every other string is a litellm/DSPy model string). A plugin adds `myprovider/...` strings by
registering a provider with that prefix; the longest matching prefix wins, then matchers, then the fallback.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from promptomatix.errors import ConfigurationError, PluginError
from promptomatix.lm.types import ModelClient


@dataclass(frozen=True)
class ClientOptions:
    """What a run passes every client factory. The key is held in memory only."""

    api_key: str | None = None
    api_base: str | None = None
    n_parallel: int = 4
    auto_pull: bool = True
    on_message: Callable[[str], None] | None = None
    request_timeout: float = 120.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelProvider:
    """Serves model strings that start with one of `prefixes` (or that `matches` accepts). `factory(model,
    options)` returns a ModelClient; `models` lists catalogue entries to show (`promptomatix plugins`)."""

    name: str
    factory: Callable[[str, ClientOptions], ModelClient]
    prefixes: tuple[str, ...] = ()
    matches: Callable[[str], bool] | None = None
    fallback: bool = False
    models: tuple[str, ...] = ()
    description: str = ""
    plugin: str = ""


class ProviderRegistry:
    def __init__(self) -> None:
        self._providers: dict[str, ModelProvider] = {}

    def register(self, provider: ModelProvider, *, plugin: str = "") -> str:
        if not isinstance(provider, ModelProvider):
            raise PluginError(f"register_models expects a ModelProvider, got {type(provider).__name__}")
        if provider.name in self._providers:
            raise PluginError(f"model provider {provider.name!r} is already registered")
        if not (provider.prefixes or provider.matches or provider.fallback):
            raise PluginError(f"model provider {provider.name!r} names no prefixes and no matcher")
        if any(not str(p).strip() for p in provider.prefixes):
            raise PluginError(
                f"model provider {provider.name!r} has an empty prefix, which would serve every model",
                hint="name the prefix it serves, e.g. 'myprovider/', or use `matches`",
            )
        taken = {p: o.name for o in self._providers.values() for p in o.prefixes}
        clash = [p for p in provider.prefixes if p in taken]
        if clash:
            raise PluginError(f"model prefix {clash[0]!r} is already served by provider {taken[clash[0]]!r}")
        # the longest prefix wins: 'local/s' would take 'local/smollm2-135m' from the provider serving 'local/'
        inside = [(p, t) for p in provider.prefixes for t in taken if p.startswith(t) or t.startswith(p)]
        if inside:
            p, t = inside[0]
            raise PluginError(
                f"model prefix {p!r} of provider {provider.name!r} overlaps {t!r}, served by provider {taken[t]!r}: "
                f"one would take the other's models",
                hint="serve a prefix of your own, e.g. 'myprovider/'",
            )
        self._providers[provider.name] = dataclasses.replace(provider, plugin=plugin or provider.plugin)
        return provider.name

    def all(self) -> list[ModelProvider]:
        return list(self._providers.values())

    def for_model(self, model: str) -> ModelProvider:
        """Longest matching prefix, then the first matcher that accepts it, then the fallback."""
        best: tuple[int, ModelProvider] | None = None
        for p in self._providers.values():
            for prefix in p.prefixes:
                if model.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), p)
        if best is not None:
            return best[1]
        for p in self._providers.values():
            if p.matches is not None and _accepts(p, model):
                return p
        for p in self._providers.values():
            if p.fallback:
                return p
        raise ConfigurationError(
            f"no model provider serves {model!r}",
            hint="known prefixes: " + ", ".join(x for p in self._providers.values() for x in p.prefixes),
        )


def _accepts(provider: ModelProvider, model: str) -> bool:
    """`provider.matches(model)`; a matcher that raises names its plugin (it broke every unprefixed model with
    "unexpected error")."""
    from promptomatix.plugins.manager import plugin_code

    with plugin_code(provider.plugin, f"model provider {provider.name!r} match for {model!r}"):
        return bool(provider.matches(model)) if provider.matches is not None else False


@functools.cache
def provider_registry() -> ProviderRegistry:
    from promptomatix.plugins.manager import on_reset, run_register_hook

    on_reset(provider_registry.cache_clear)
    reg = ProviderRegistry()
    run_register_hook("register_models", "models", reg.register)
    return reg
