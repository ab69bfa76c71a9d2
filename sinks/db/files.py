"""The packaged migration files: ``migrations/NNNN_name[.path].sql``, loaded with importlib.resources.

A version is either one file for both schema paths (``0001_tables.sql``) or one file per path
(``0002_time_layout.postgresql.sql`` and ``0002_time_layout.timescaledb.sql``). Versions start at
1 and have no gaps, so "pending" is simply "not applied yet".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Final, Literal, cast, get_args

SchemaPath = Literal["timescaledb", "postgresql"]
SCHEMA_PATHS: Final[tuple[SchemaPath, ...]] = get_args(SchemaPath)

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<path>[a-z]+))?\.sql$")


@dataclass(frozen=True)
class MigrationFile:
    """One SQL file; ``path`` is None when it serves both schema paths."""

    version: int
    name: str
    path: SchemaPath | None
    filename: str
    text: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the text with line endings normalised (a Windows checkout stays equal)."""
        normalised = self.text.replace("\r\n", "\n").encode("utf-8")
        return hashlib.sha256(normalised).hexdigest()


@dataclass(frozen=True)
class Migration:
    """One version: its name and the file each schema path runs."""

    version: int
    name: str
    variants: Mapping[SchemaPath | None, MigrationFile]

    @property
    def label(self) -> str:
        """``0002_time_layout``: how reports and errors name a migration."""
        return f"{self.version:04d}_{self.name}"

    def for_path(self, path: SchemaPath) -> MigrationFile:
        return self.variants.get(path) or self.variants[None]


def parse_file_name(filename: str) -> tuple[int, str, SchemaPath | None]:
    """(version, name, path) of a migration file name.

    >>> parse_file_name("0002_time_layout.timescaledb.sql")
    (2, 'time_layout', 'timescaledb')
    >>> parse_file_name("0001_tables.sql")
    (1, 'tables', None)
    """
    match = _FILE_NAME.match(filename)
    if match is None:
        raise ValueError(f"migration file {filename!r} is not named NNNN_name[.path].sql")
    path = match["path"]
    if path is not None and path not in SCHEMA_PATHS:
        raise ValueError(f"migration file {filename!r}: path must be one of {SCHEMA_PATHS}")
    return int(match["version"]), match["name"], cast("SchemaPath | None", path)


def load_migrations(root: Traversable) -> tuple[Migration, ...]:
    """Every migration under ``root``, by version; a malformed set is a ValueError."""
    grouped: dict[int, dict[SchemaPath | None, MigrationFile]] = {}
    for entry in root.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version, name, path = parse_file_name(entry.name)
        variants = grouped.setdefault(version, {})
        if path in variants:
            raise ValueError(f"migration {version:04d} has two files for path {path}")
        variants[path] = MigrationFile(version, name, path, entry.name, entry.read_text("utf-8"))
    migrations = []
    for expected, version in enumerate(sorted(grouped), start=1):
        if version != expected:
            raise ValueError(f"migration versions must run 1, 2, 3, ...; {expected:04d} is missing")
        variants = grouped[version]
        names = {f.name for f in variants.values()}
        if len(names) != 1:
            raise ValueError(f"migration {version:04d} has different names: {sorted(names)}")
        if None in variants and len(variants) > 1:
            raise ValueError(f"migration {version:04d} has both a common and a per-path file")
        if None not in variants and set(variants) != set(SCHEMA_PATHS):
            raise ValueError(f"migration {version:04d} needs one file for each of {SCHEMA_PATHS}")
        migrations.append(Migration(version, names.pop(), variants))
    return tuple(migrations)


@cache
def packaged_migrations() -> tuple[Migration, ...]:
    """The migrations shipped in ``sinks/db/migrations`` (package data)."""
    return load_migrations(files("sinks.db").joinpath("migrations"))
