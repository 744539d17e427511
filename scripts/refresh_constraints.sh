#!/usr/bin/env bash
# Regenerate constraints.txt: the exact versions `.ci/run` and README's setup install.
# Resolves the project's dependencies afresh in a throwaway venv (CPU torch wheel first, as .ci/run
# does), then freezes them. Run it after changing dependencies in pyproject.toml, run the suite, and
# commit both files together.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="$(sed -n 's/^EXTRAS="\(.*\)"$/\1/p' .ci/run)"
venv="$(mktemp -d)/venv"
python -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "torch==2.13.0"
"$venv/bin/python" -m pip install -q -e ".[${EXTRAS}]"
{
  echo "# Exact versions the test suite last passed with; .ci/run and README's setup install with -c."
  echo "# Regenerate with scripts/refresh_constraints.sh (Python $("$venv/bin/python" -c 'import platform;print(platform.python_version())'), $(date -u +%Y-%m-%d))."
  # torch: drop the local build label (+cpu) so the same line also admits the CUDA build.
  "$venv/bin/python" -m pip freeze --exclude-editable | sed -E 's/^(torch==[^+]*)\+.*/\1/' | LC_ALL=C sort -f
} > constraints.txt
rm -rf "$(dirname "$venv")"
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) packages)"
