"""The `quell` command (quell.cli): Django's management commands under Quell's name."""

from __future__ import annotations

import sys


def main() -> None:
    from quell.cli import main as run

    run(sys.argv[1:])


if __name__ == "__main__":
    main()
