"""Promptomatix: prompt optimization on DSPy. Public names are imported lazily so `import promptomatix` is cheap."""

from __future__ import annotations

__version__ = "0.2.0"
