"""Tables for the comparison suite, built from whatever parts exist in benchmarks/results/suite/.

Per task and seed: the held-out score of the initial prompt, meta, our dspy MIPROv2 and plain DSPy MIPROv2-light,
each method's paired verdict against its own starting prompt, meta against the peer row by row, and the search's
LM calls (held-out scoring excluded: it is the same 2 × test rows for every method). Per task, the paired test
pooled over the seeds decides "significantly better"; the goals of issue 14 are checked at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.suite_estimate import estimate_lines
from promptomatix.metrics.verdict import PairedVerdict, paired_verdict

START, END = "<!-- suite:start -->", "<!-- suite:end -->"


def markers(out: Path) -> tuple[str, str]:
    """The RESULTS.md markers of a parts directory: §7's for results/suite, one pair per other directory (the suite
    on another model has a section of its own, and rebuilding one never overwrites the other)."""
    return (START, END) if out.name == "suite" else (f"<!-- suite:start {out.name} -->", f"<!-- suite:end {out.name} -->")
ORDER = ("trec", "intent", "spam", "sentiment", "squad", "math")
WORDS = {"improved": "better", "worse": "**worse**", "no_detectable_difference": "same", "unreliable": "unreliable"}


def load_parts(out: Path) -> dict[tuple[str, int, str], dict[str, Any]]:
    parts = {}
    for path in sorted(out.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        r = doc["result"]
        parts[(r["task"], int(r["seed"]), r["method"])] = {**r, "_meta": doc["meta"]}
    return parts


def _pairs(row: dict[str, Any] | None) -> list[tuple[float, float]]:
    """(initial, optimized) per held-out row, in row order; [] when the row has none or errored."""
    if not row or row.get("error"):
        return []
    rows = sorted(row.get("test_rows") or [], key=lambda r: r["index"])
    return [(float(r["initial_score"] or 0.0), float(r["score"] or 0.0)) for r in rows]


def _verdict(pairs: list[tuple[float, float]]) -> PairedVerdict | None:
    return paired_verdict([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None


def _v(v: PairedVerdict | None) -> str:
    if v is None or v.diff is None:
        return "-"
    return f"{WORDS.get(v.outcome, v.outcome)} {v.diff:+.3f} ({v.wins}/{v.losses}/{v.ties}, p={v.p_value:.2g})"


def _test(row: dict[str, Any] | None, key: str = "test") -> str:
    if not row:
        return "not run"
    if row.get("error"):
        return "error"
    t = row.get(key) or {}
    return f"{t['mean']:.3f}" if t.get("mean") is not None else "-"


def _vs_peer(meta: dict[str, Any] | None, peer: dict[str, Any] | None) -> PairedVerdict | None:
    """Meta (optimized) against the peer (compiled) on the same test rows, row by row."""
    a, b = _pairs(peer), _pairs(meta)
    if not a or len(a) != len(b):
        return None
    return paired_verdict([x for _, x in a], [y for _, y in b])


def _calls(row: dict[str, Any] | None) -> str:
    if not row or row.get("error"):
        return "-"
    return str(row.get("search_calls") if row.get("search_calls") is not None else row.get("calls"))


def _seed_rows(parts: dict, tasks: list[str], seeds: list[int]) -> list[str]:
    head = (
        "| task@seed | initial | meta | meta vs initial (W/L/T, p) | meta, ⅓ of DSPy's calls | its verdict | "
        "our MIPROv2: start → test | its verdict | DSPy MIPROv2-light: start → test | its verdict | "
        "meta vs DSPy MIPROv2-light | search calls meta / ⅓ / ours / DSPy | wall s meta / ⅓ / ours / DSPy |"
    )
    lines = [head, "|" + "---|" * 13]
    for t in tasks:
        for s in seeds:
            m, m3, o, p = (parts.get((t, s, k)) for k in ("meta", "meta-third", "dspy-miprov2", "peer-miprov2"))
            if not (m or m3 or o or p):
                continue
            wall = " / ".join(str(round(r["time_s"])) if r and r.get("time_s") else "-" for r in (m, m3, o, p))
            calls = " / ".join(_calls(r) for r in (m, m3, o, p))
            lines.append(
                f"| {t}@s{s} | {_test(m, 'initial_test')} | {_test(m)} | {_v(_verdict(_pairs(m)))} | "
                f"{_test(m3)} | {_v(_verdict(_pairs(m3)))} | "
                f"{_test(o, 'initial_test')} → {_test(o)} | {_v(_verdict(_pairs(o)))} | "
                f"{_test(p, 'initial_test')} → {_test(p)} | {_v(_verdict(_pairs(p)))} | {_v(_vs_peer(m, p))} | "
                f"{calls} | {wall} |"
            )
    return lines


def _score(rows: list[dict[str, Any]], key: str = "test") -> float | None:
    return _mean([r[key]["mean"] for r in rows if not r.get("error") and r.get(key)])


def _search(rows: list[dict[str, Any]]) -> float | None:
    return _mean([r["search_calls"] for r in rows if not r.get("error") and r.get("search_calls")])


def _cheap(parts: dict, t: str, seeds: list[int]) -> tuple[bool | None, str]:
    """Does meta (plain, or under a third of the peer's calls) score ≥ the peer with ≤ 1/3 of its search calls,
    on the seeds where both ran?"""
    verdict: bool | None = None
    for method in ("meta", "meta-third"):
        both = [s for s in seeds if _ok(parts.get((t, s, method))) and _ok(parts.get((t, s, "peer-miprov2")))]
        ours = [parts[(t, s, method)] for s in both]
        peer = [parts[(t, s, "peer-miprov2")] for s in both]
        mt, pt, mc, pc = _score(ours), _score(peer), _search(ours), _search(peer)
        if None in (mt, pt, mc, pc):
            continue
        if mt >= pt - 1e-9 and mc <= pc / 3:
            return True, method
        verdict = False
    return verdict, ""


def _ok(part: dict[str, Any] | None) -> bool:
    """A part that ran to a result: a refused or failed one (meta ⅓ with no search that fits) is compared on no seed,
    and the two methods' means are taken over the same seeds."""
    return part is not None and not part.get("error")


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _task_rows(parts: dict, tasks: list[str], seeds: list[int]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    lines = ["| task | seeds | meta vs initial, pooled (W/L/T, p) | mean test: initial / meta / meta ⅓ / DSPy "
             "MIPROv2-light | mean search calls: meta / meta ⅓ / DSPy | ≥ DSPy with ≤ 1/3 of its calls |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    goals: dict[str, dict[str, Any]] = {}
    f = lambda x, d=3: "-" if x is None else (f"{x:.{d}f}" if d else str(round(x)))  # noqa: E731
    for t in tasks:
        runs = {k: [parts[(t, s, k)] for s in seeds if (t, s, k) in parts] for k in ("meta", "meta-third",
                                                                                     "peer-miprov2")}  # fmt: skip
        metas = runs["meta"]
        v = _verdict([p for r in metas for p in _pairs(r)])
        cheap, how = _cheap(parts, t, seeds)
        worse_any = any((vv := _verdict(_pairs(r))) is not None and vv.outcome == "worse" for r in metas)
        goals[t] = {"better": bool(v and v.outcome == "improved"), "worse": bool(v and v.outcome == "worse") or worse_any,
                    "cheap": cheap, "seeds": len(metas)}  # fmt: skip
        tests = " / ".join(f(x) for x in (_score(metas, "initial_test"), _score(metas), _score(runs["meta-third"]),
                                          _score(runs["peer-miprov2"])))  # fmt: skip
        calls = " / ".join(f(_search(runs[k]), 0) for k in ("meta", "meta-third", "peer-miprov2"))
        cheap_s = "-" if cheap is None else (f"yes ({how})" if cheap else "no")
        lines.append(f"| {t} | {len(metas)} | {_v(v)} | {tests} | {calls} | {cheap_s} |")
    return lines, goals


def suite_markdown(out: Path) -> str:
    start, end = markers(out)
    parts = load_parts(out)
    if not parts:
        return f"{start}\nNo suite parts yet in {out}.\n{end}"
    tasks = [t for t in ORDER if any(k[0] == t for k in parts)]
    seeds = sorted({k[1] for k in parts})
    seed_lines = _seed_rows(parts, tasks, seeds)
    task_lines, goals = _task_rows(parts, tasks, seeds)
    better = [t for t, g in goals.items() if g["better"]]
    worse = [t for t, g in goals.items() if g["worse"]]
    cheap = [t for t, g in goals.items() if g["cheap"]]
    commits = sorted({str(p["_meta"].get("machine", {}).get("git_commit") or "?")[:7] for p in parts.values()})
    loads = [p.get("load_start") for p in parts.values() if p.get("load_start") is not None]
    models = sorted({f"{p['_meta'].get('model')} (teacher {p['_meta'].get('teacher_model') or 'the same'})"
                     for p in parts.values()})  # fmt: skip
    lines = [
        start,
        f"Models: {'; '.join(models)}.",
        "",
        f"{len(parts)} parts ({', '.join(tasks)}; seeds {', '.join(map(str, seeds))}); commits {', '.join(commits)}; "
        f"load average at the start of a part {min(loads, default=0):.1f}–{max(loads, default=0):.1f}.",
        "",
        "**Per task, pooled over the seeds that ran:**",
        "",
        *task_lines,
        "",
        f"- Meta significantly better than the initial prompt (pooled paired test, p < 0.05): **{len(better)} of "
        f"{len(goals)}** ({', '.join(better) or 'none'}); goal ≥ 3 of 5.",
        f"- Significantly worse on any task or seed: **{', '.join(worse) or 'none'}**; goal none.",
        f"- Meta ≥ DSPy MIPROv2-light with ≤ 1/3 of its search calls: **{len(cheap)}** ({', '.join(cheap) or 'none'}); "
        "goal ≥ 3.",
        "",
        "**Per task and seed** (a verdict is each method against its own starting prompt on the same held-out rows; "
        "W/L/T = rows won / lost / tied; search calls exclude the held-out scoring):",
        "",
        *seed_lines,
        "",
        "**The dry run's estimate against the real runs** (the part's command as a dry run; search calls are every "
        "call before the held-out scoring):",
        "",
        *estimate_lines(parts),
        end,
    ]
    return "\n".join(lines)


def write_results_section(path: Path, md: str, out: Path | None = None) -> None:
    """Replace the text between the parts directory's markers in RESULTS.md (append a section when there are none)."""
    start, end = markers(out or Path("suite"))
    text = path.read_text(encoding="utf-8")
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + md + rest.split(end, 1)[1]
    else:
        title = "The comparison suite" + ("" if out is None or out.name == "suite" else f" ({out.name})")
        text = text.rstrip() + f"\n\n## {title} (issue 14)\n\n" + md + "\n"
    path.write_text(text, encoding="utf-8")
