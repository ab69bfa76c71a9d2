"""Find the programs the local services need, and say how to install the missing ones."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from meterstream.errors import MissingToolError


def cache_dir() -> Path:
    """Where downloads and builds are cached (``METERSTREAM_CACHE_DIR``, else ~/.cache/meterstream)."""
    configured = os.environ.get("METERSTREAM_CACHE_DIR")
    path = Path(configured) if configured else Path.home() / ".cache" / "meterstream"
    path.mkdir(parents=True, exist_ok=True)
    return path


def require(program: str, remedy: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise MissingToolError(f"`{program}` is not on PATH; {remedy}")
    return found


def java_binary(minimum_major: int = 17) -> str:
    """A java of at least ``minimum_major``: $JAVA_HOME first, then PATH."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if Path(candidate).exists() and _java_major(candidate) >= minimum_major:
            return candidate
    raise MissingToolError(
        f"Kafka 4 needs Java {minimum_major} or newer and none was found; "
        "install it with `apt-get install openjdk-17-jre-headless` or set JAVA_HOME"
    )


def _java_major(java: str) -> int:
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def postgres_bindir() -> Path:
    """PostgreSQL's server binaries (not on PATH on Debian): pg_config first, then the usual places."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        bindir = Path(result.stdout.strip())
        if (bindir / "postgres").exists():
            return bindir
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "postgres").exists():
            return candidate
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise MissingToolError(
        "PostgreSQL's server is not installed; on Debian/Ubuntu run "
        "`apt-get install -y postgresql` (other systems: install the postgresql server package)"
    )
