#!/usr/bin/env bash
# Regenerate constraints.txt and constraints-offline.txt: the exact versions `.ci/run` and README's setup install.
# Resolves the project's dependencies afresh in a throwaway venv (CPU torch wheel first, as .ci/run
# does), then freezes them. Run it after changing dependencies in pyproject.toml, run the suite, and
# commit the files together. `scripts/refresh_constraints.sh main` or `... offline` refreshes one of them:
# main = .ci/run's EXTRAS (constraints.txt); offline = its OFFLINE_EXTRAS, the d3rlpy venv (d3rlpy pins
# gymnasium 1.0.0, so it cannot share the main environment).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"

freeze() {  # freeze EXTRAS OUTPUT
  local venv
  venv="$(mktemp -d)/venv"
  python -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "torch==2.13.0"
  "$venv/bin/python" -m pip install -q -e ".[$1]"
  {
    echo "# Exact versions the test suite last passed with; .ci/run and README's setup install with -c."
    echo "# Regenerate with scripts/refresh_constraints.sh (Python $("$venv/bin/python" -c 'import platform;print(platform.python_version())'), $(date -u +%Y-%m-%d))."
    # torch: drop the local build label (+cpu) so the same line also admits the CUDA build.
    "$venv/bin/python" -m pip freeze --exclude-editable | sed -E 's/^(torch==[^+]*)\+.*/\1/' | LC_ALL=C sort -f
  } > "$2"
  rm -rf "$(dirname "$venv")"
  echo "wrote $2 ($(grep -vc '^#' "$2") packages)"
}

if [[ "$which" == all || "$which" == main ]]; then
  freeze "$(sed -n 's/^EXTRAS="\(.*\)"$/\1/p' .ci/run)" constraints.txt
fi
if [[ "$which" == all || "$which" == offline ]]; then
  freeze "$(sed -n 's/^OFFLINE_EXTRAS="\(.*\)"$/\1/p' .ci/run)" constraints-offline.txt
fi
