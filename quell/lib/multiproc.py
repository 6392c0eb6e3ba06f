"""Where the processes of one machine keep their Prometheus metrics, so that /metrics adds them all up.

prometheus_client chooses its storage when it is first imported: with PROMETHEUS_MULTIPROC_DIR set,
each process keeps its counters and histograms in small memory-mapped files named after its pid, and a
scrape of any web process sums the files of every process (gunicorn's workers and `quell worker`
alike). This module sets that variable, from settings, before anything imports prometheus_client;
it must itself never import prometheus_client.
"""

from __future__ import annotations

import os
from pathlib import Path

from quell.lib.env import default_data_dir

ENV = "PROMETHEUS_MULTIPROC_DIR"


def configure(data_dir: Path | None = None) -> Path:
    """Create the metrics directory and point prometheus_client at it; returns the directory.

    QUELL_METRICS_DIR wins, then a PROMETHEUS_MULTIPROC_DIR already set (by an operator, or inherited
    from the Quell process that started this one), then `metrics` in the data directory.
    """
    configured = os.environ.get("QUELL_METRICS_DIR") or os.environ.get(ENV)
    if configured:
        path = Path(configured).expanduser()
    else:
        base = data_dir or Path(os.environ.get("QUELL_DATA_DIR") or default_data_dir()).expanduser()
        path = base / "metrics"
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    return path


def _pid_of(file: Path) -> int | None:
    # prometheus_client names its files "<type>_<pid>.db" and "gauge_<mode>_<pid>.db".
    _, _, pid = file.stem.rpartition("_")
    return int(pid) if pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process holds the pid
    return True


def remove_files_of_dead_processes(path: Path | None = None) -> int:
    """Remove the metric files of processes that are gone; for a server to call when it starts.

    Files of processes still running (a `quell worker` that outlives a web server restart) are kept:
    deleting a file a live process has mapped would hide everything it counts from then on. Counters
    of the removed files drop out of the sums, which Prometheus reads as a counter reset.
    """
    path = path or configure()
    removed = 0
    for file in path.glob("*.db"):
        pid = _pid_of(file)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            file.unlink(missing_ok=True)
            removed += 1
    return removed
