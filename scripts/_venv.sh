# Sourced by scripts/quickstart and scripts/test: makes .venv with Python >= 3.11 and installs Quell into it.
set -euo pipefail

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

ensure_venv() {
  local extras="$1"
  if [ ! -x .venv/bin/python ]; then
    local python
    if ! python=$(find_python); then
      echo "Quell needs Python 3.11 or newer (apt-get install python3)." >&2
      exit 1
    fi
    if ! "$python" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      # Debian and Ubuntu ship venv separately.
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv .venv
      else
        echo "Python's venv module is missing: sudo apt-get install python3-venv" >&2
        exit 1
      fi
    fi
    .venv/bin/python -m pip install -q --upgrade pip
  fi
  .venv/bin/python -m pip install -q -e ".${extras}"
}
