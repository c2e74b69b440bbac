"""The built-in DSPy modules (predict, cot, pot, react) as factories `factory(signature) -> dspy.Module`.

Registered by promptomatix.plugins.builtins through `register_dspy_modules`, like a plugin's modules. DSPy is
imported when a factory is called, never when this module is imported.

ProgramOfThought runs the generated code in DSPy's Deno + Pyodide sandbox (`pip install "promptomatix[deno]"`
ships the Deno binary; Pyodide comes from the npm registry on first use). DSPy's runner.js also imports one
helper (`readLines`) from deno.land, which many networks (this project's CI among them) cannot reach while npm
is reachable; the sandbox here runs a copy of DSPy's runner with that one helper inlined, so only npm is needed.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from promptomatix.backends.dspy_settings import _POT_MAX_ITERS, _REACT_MAX_ITERS
from promptomatix.errors import ConfigurationError

log = logging.getLogger(__name__)

_DENO_LAND_IMPORT = 'import { readLines } from "https://deno.land/std@0.186.0/io/mod.ts";'
_READ_LINES = """async function* readLines(reader) {
  // Inlined by promptomatix (deno.land std io/read_lines.ts): DSPy's runner without a deno.land download.
  const decoder = new TextDecoder();
  const buf = new Uint8Array(65536);
  let pending = "";
  while (true) {
    const n = await reader.read(buf);
    if (n === null) break;
    pending += decoder.decode(buf.subarray(0, n), { stream: true });
    let i;
    while ((i = pending.indexOf("\\n")) >= 0) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      yield line.endsWith("\\r") ? line.slice(0, -1) : line;
    }
  }
  pending += decoder.decode();
  if (pending.length > 0) yield pending;
}"""


def predict(signature: Any) -> Any:
    import dspy

    return dspy.Predict(signature)


def chain_of_thought(signature: Any) -> Any:
    import dspy

    return dspy.ChainOfThought(signature)


def react(signature: Any, tools: Any = ()) -> Any:
    import dspy

    return dspy.ReAct(signature, tools=list(tools), max_iters=_REACT_MAX_ITERS)


react.takes_tools = True  # type: ignore[attr-defined]


def program_of_thought(signature: Any) -> Any:
    """dspy.ProgramOfThought over the sandbox; a missing Deno is a ConfigurationError naming the extra."""
    import dspy

    from promptomatix.backends import dspy_programs

    if not dspy_programs._deno_available():
        raise ConfigurationError(
            "the 'pot' module (dspy.ProgramOfThought) runs generated code in Deno, which is not installed",
            hint='install it with `pip install "promptomatix[deno]"` (or "dspy[deno]"), or use --dspy-module cot',
        )
    return dspy.ProgramOfThought(signature, max_iters=_POT_MAX_ITERS, interpreter_factory=sandbox_interpreter)


def sandbox_interpreter() -> Any:
    """DSPy's PythonInterpreter running the runner copy that needs no deno.land download (see the docstring)."""
    from dspy.primitives import python_interpreter as pi

    runner = _patched_runner(Path(pi.__file__).with_name("runner.js"))
    if runner is None or not hasattr(pi.PythonInterpreter, "_get_runner_path"):
        return pi.PythonInterpreter()

    class _Interpreter(pi.PythonInterpreter):
        def _get_runner_path(self) -> str:
            return str(runner)

    return _Interpreter()


def _patched_runner(original: Path) -> Path | None:
    """A copy of DSPy's runner.js with the deno.land import inlined, cached by content; None if DSPy changed it."""
    try:
        source = original.read_text(encoding="utf-8")
    except OSError:
        return None
    if _DENO_LAND_IMPORT not in source:
        return None  # a DSPy version without that import: use its runner unchanged
    patched = source.replace(_DENO_LAND_IMPORT, _READ_LINES)
    digest = hashlib.sha256(patched.encode()).hexdigest()[:16]
    from promptomatix.lm.catalog import models_dir

    path = models_dir().parent / "dspy-runner" / f"runner-{digest}.js"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(patched, encoding="utf-8")
        tmp.replace(path)
    return path
