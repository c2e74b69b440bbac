"""A meta round's slots turned into candidates: each slot's own strategy first, all at once; a slot that gives
nothing the round can score (nothing left to drop, an answer the guards refuse, a repeat) tries other strategies,
so a round scores as many candidates as planned and spends the calls the dry run counted (on the qwen suite, trec
s0's rounds left 7 of 12 slots empty and spent half its estimate).

Why a class: the round's slots share what they have claimed (two slots must not score the same candidate) and the
round's teacher calls (at most one per slot, the bound the plan and the budget check count). Every decision is
made in slot order, and every try has a seed of its own, so a seed gives the same run whatever the threads do.
"""

from __future__ import annotations

import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from promptomatix.backends.guards import rejection
from promptomatix.backends.rounds import Proposal
from promptomatix.backends.strategies import ProposalContext, ProposalRejected, StrategyRegistry
from promptomatix.errors import LMCallError

Found = tuple[int, Proposal]  # (position in the slot's fallback chain, the usable proposal found there)


class SlotProposer:
    """`(slots, failures) -> {slot: proposal}` for one round; called for the slots proposed at once, then for the
    teacher's slots (which read the best's failures)."""

    def __init__(self, registry: StrategyRegistry, rotation: list[str], names: list[str], pctx: ProposalContext):
        self.registry, self.names, self.pctx = registry, names, pctx
        self.rotation = list(dict.fromkeys(rotation))
        self.base = pctx.rng.random()  # drawn here, in order: each try gets its own seeded rng (threads race)
        self.claimed: set[str] = set()  # keys the round's slots have taken, in slot order (early ones first)
        self.teacher_calls = 0  # this round's teacher asks so far; never more than its slots

    def __call__(self, slots: list[int], failures: list[dict[str, Any]] | None) -> dict[int, Proposal]:
        if not slots:
            return {}
        own = self.pctx if failures is None else dataclasses.replace(self.pctx, failures=failures)
        early = failures is None
        with ThreadPoolExecutor(max_workers=len(slots)) as ex:
            firsts = dict(zip(slots, ex.map(lambda i: self.attempt(i, 0, self.names[i], own), slots), strict=True))
        self.teacher_calls += sum(self._teacher(self.names[i]) for i in slots)
        chains = {i: self.chain(i, early, firsts[i][2]) for i in sorted(slots) if _unusable(firsts[i], own) is not None}
        with ThreadPoolExecutor(max_workers=max(1, len(chains))) as ex:  # every empty slot's tries at once
            found = dict(zip(chains, ex.map(lambda i: self.walk(i, chains[i], 0, own), chains), strict=True))
        return {i: self.settle(i, firsts[i], found, chains, own, early) for i in sorted(slots)}

    def attempt(self, i: int, n: int, name: str, own: ProposalContext) -> Proposal:
        strategy = self.registry.get(name)
        seed = f"{self.base}:{i}:{n}" if n else f"{self.base}:{i}"  # a slot's own try keeps the seed it always had
        try:
            cand = strategy.propose(dataclasses.replace(own, rng=random.Random(seed)))
        except LMCallError as e:
            return name, None, f"teacher call failed: {e.message}"
        except ProposalRejected as e:
            return name, None, str(e)
        if cand is None:
            return name, None, "teacher answer unusable" if self._teacher(name) else "nothing new to propose"
        return name, cand, ""

    def chain(self, i: int, early: bool, error: str) -> list[str]:
        """What slot `i` tries after its own, each slot starting at its own place so that two empty slots try
        different ones first: a teacher's slot one other teacher strategy the round does not use, while the
        round's teacher calls stay within one per slot and unless the teacher call failed (a teacher that is down
        is not asked again); then the strategies that ask no teacher, those the round does not use first, then
        those of earlier slots (they cost no call; a demo set drawn again is a new one). A slot proposed before the
        best's failures are known tries only those that do not read them."""
        free = [n for n in self.rotation if not self._teacher(n)]
        if early:
            free = [n for n in free if not getattr(self.registry.get(n), "needs_failures", True)]
        out: list[str] = []
        teacher = [n for n in self.rotation if self._teacher(n) and n not in self.names]
        if teacher and not early and not error.startswith("teacher call failed") and self.teacher_calls < len(self.names):
            self.teacher_calls += 1  # decided in slot order, so which slot may ask again does not depend on timing
            out.append(teacher[i % len(teacher)])
        earlier = set(self.names[:i])  # never a later slot's own strategy: it would take that slot's candidate
        for group in ([n for n in free if n not in self.names], [n for n in free if n in earlier]):
            j = i % len(group) if group else 0
            out += group[j:] + group[:j]
        return out

    def walk(self, i: int, chain: list[str], start: int, own: ProposalContext) -> Found | None:
        """Slot `i`'s tries from position `start` until one gives a candidate the round could score (new to the
        run, passed by the guards); whether an earlier slot of this round took it is settled after."""
        for pos in range(start, len(chain)):
            got = self.attempt(i, pos + 1, chain[pos], own)
            if _unusable(got, own) is None:
                return pos, got
        return None

    def settle(self, i: int, first: Proposal, found: dict[int, Found | None], chains: dict[int, list[str]],
               own: ProposalContext, early: bool) -> Proposal:  # fmt: skip
        """Slot `i`'s proposal, in slot order: its own if the round can score it, else its first try that no
        earlier slot took (a try that lost to one goes on along the chain; a slot whose own answer repeats an
        earlier slot's starts its chain now)."""
        why = _unusable(first, own, self.claimed)
        if why is None:
            return self._claim(first)
        if i not in chains:  # its own answer was new to the run but an earlier slot of this round took it
            chains[i] = self.chain(i, early, first[2])
            found[i] = self.walk(i, chains[i], 0, own)
        hit = found.get(i)
        while hit is not None and _unusable(hit[1], own, self.claimed) is not None:
            hit = self.walk(i, chains[i], hit[0] + 1, own)
        if hit is None:
            return first  # the slot's own answer, recorded with why it was not scored
        name, cand, _ = hit[1]
        return self._claim((name, cand, f"in the slot of {self.names[i]}, which gave nothing to score ({why})"))

    def _claim(self, p: Proposal) -> Proposal:
        self.claimed.add(p[1].key())  # type: ignore[union-attr]  # only usable proposals are claimed
        return p

    def _teacher(self, name: str) -> bool:
        return bool(getattr(self.registry.get(name), "uses_teacher", True))


def _unusable(p: Proposal, own: ProposalContext, claimed: set[str] | frozenset[str] = frozenset()) -> str | None:
    """Why the round could not score this proposal (None: it can): no candidate, the guards refuse it, or it was
    tried before (in an earlier round, or `claimed` by an earlier slot of this one)."""
    cand = p[1]
    if cand is None:
        return p[2] or "no candidate"
    if not own.is_new(cand) or cand.key() in claimed:
        return "duplicate of an earlier candidate"
    why = None if own.initial is None else rejection(cand, own.spec, own.initial)
    return None if why is None else f"rejected before scoring: {why}"
