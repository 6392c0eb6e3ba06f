"""Static files: hashed and compressed once collected, plain names from the finders before that.

`quell collectstatic` copies every static file into STATIC_ROOT under a content-hashed name with gzip and
brotli variants beside it, which WhiteNoise serves with a far-future Cache-Control.

Pages link those hashed names only in a process that made sure they are current: `quell serve` (and so
`quell start`) calls `use_collected_static_files()` before it forks, which collects when the sources
changed since the last collection. Everywhere else (runserver, the tests, the worker, a shell) pages
link the plain names, which WhiteNoise serves from the apps' static directories (WHITENOISE_USE_FINDERS),
so a manifest left behind by an older version can never point a page at a file that is not there.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from whitenoise.compress import Compressor  # type: ignore[import-untyped]
from whitenoise.storage import CompressedManifestStaticFilesStorage  # type: ignore[import-untyped]

import quell

FINGERPRINT_NAME = "quell-static.fingerprint"
# Brotli's best quality takes seconds on the API docs' megabyte bundles, and `quell serve` compresses at
# start after an upgrade; from this size on, quality 5 is about fifty times faster and ~10% larger.
BROTLI_BEST_UP_TO_BYTES = 256 * 1024
BROTLI_LARGE_FILE_QUALITY = 5


class QuellCompressor(Compressor):  # type: ignore[misc,unused-ignore]
    @staticmethod
    def compress_brotli(data: bytes) -> bytes:
        # Called only when brotli is installed (WhiteNoise checks), so it is imported only then.
        import brotli  # type: ignore[import-not-found,import-untyped,unused-ignore]

        if len(data) <= BROTLI_BEST_UP_TO_BYTES:
            return bytes(brotli.compress(data))
        return bytes(brotli.compress(data, quality=BROTLI_LARGE_FILE_QUALITY))


_serving_collected = False


class QuellStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def stored_name(self, name: str) -> str:
        if not _serving_collected:
            return name
        return super().stored_name(name)

    def create_compressor(self, **kwargs: Any) -> Compressor:
        return QuellCompressor(**kwargs)

    def post_process(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, str, bool]]:
        yield from super().post_process(*args, **kwargs)
        # Whoever ran collectstatic (an operator, or `quell serve`), the next start need not run it again.
        if not kwargs.get("dry_run"):
            (Path(self.location) / FINGERPRINT_NAME).write_text(source_fingerprint() + "\n")


def source_fingerprint() -> str:
    """A digest of every static file the finders see (name, size, modification time) and Quell's version."""
    digest = hashlib.sha256(f"quell {quell.__version__}\n".encode())
    entries: list[str] = []
    for finder in finders.get_finders():
        for path, storage in finder.list([]):
            stat = Path(storage.path(path)).stat()
            entries.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    for entry in sorted(entries):
        digest.update(entry.encode() + b"\n")
    return digest.hexdigest()


def is_stale() -> bool:
    root = Path(settings.STATIC_ROOT)
    fingerprint = root / FINGERPRINT_NAME
    if not (root / "staticfiles.json").exists() or not fingerprint.exists():
        return True
    return fingerprint.read_text().strip() != source_fingerprint()


def use_collected_static_files(say: Callable[[str], None]) -> bool:
    """Collect when the collected files are missing or older than the sources, then link hashed names.

    Returns whether collectstatic ran.

    Files from earlier versions stay (no --clear): pages an old process is still serving keep working
    while an upgrade rolls through. A lock keeps two servers starting at once from collecting together.
    """
    root = Path(settings.STATIC_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".collect.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        collected = is_stale()
        if collected:
            say(f"Collecting static files into {root} ...")
            call_command("collectstatic", interactive=False, verbosity=0)
        # Read the manifest now, under the lock, whoever wrote it.
        storage: Any = staticfiles_storage
        storage.hashed_files, storage.manifest_hash = storage.load_manifest()
    global _serving_collected  # one switch per process, set before gunicorn forks
    _serving_collected = True
    return collected
