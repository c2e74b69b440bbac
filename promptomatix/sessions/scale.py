"""One scale for the valid scores of a session's versions: penalized under the session's λ.

Every run of a session (optimize, refine, resume) penalizes length with the same λ, `run_config.lambda_penalty`, so
its versions' penalized scores compare. `sessions pick --lambda X` used to store the candidate's score penalized
under X instead: `sessions list`'s "best" then jumped from 0.946 to 1.000 for the same quality, and the UI's
"valid (penalized)" row put 0.000 (λ = 1e308) beside 0.464 (review 20, finding 6). A pick now stores the run's
number; a version picked that way before is read back through its source candidate, which kept the run's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptomatix.sessions.models import PromptVersion, Score, Session


def session_lambda(session: Session) -> float | None:
    """The λ the session's penalized scores are under (None: not recorded, e.g. a session made by hand)."""
    lam = (session.run_config or {}).get("lambda_penalty")
    return float(lam) if isinstance(lam, int | float) and math.isfinite(lam) else None


def comparable_valid(session: Session, version: PromptVersion) -> Score | None:
    """`version.valid`, penalized under the session's λ: a version picked with `--lambda X` before picks kept the
    run's score stored its penalized score under X; its source candidate's stored score is the run's."""
    valid = version.valid
    picked = version.settings.get("picked")
    if valid is None or not isinstance(picked, dict) or picked.get("lambda") is None:
        return valid
    source = next((v for v in session.versions if v.version == picked.get("version")), None)
    cand = next((c for c in (source.candidates if source else []) if c.get("id") == picked.get("candidate")), None)
    if cand is None or cand.get("prompt") != version.prompt:
        return valid  # the source is gone or changed (a hand edit): the stored score is all there is
    return valid.model_copy(update={"penalized": cand.get("valid_penalized")})


def selection_score(session: Session, version: PromptVersion) -> float | None:
    """What versions are ranked by across the session: the penalized valid score under the session's λ (raw when
    no penalty was recorded)."""
    valid = comparable_valid(session, version)
    return valid.selection if valid is not None else None
