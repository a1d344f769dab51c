#!/usr/bin/env bash
# Log throughput benchmark: corral vs PM2 vs supervisord vs a bare pipe (bench/logs.py).
#
#   bench/run_logs.sh [logs.py options]      e.g. bench/run_logs.sh --rounds 5 --lines 500000
#
# Installs the pinned PM2 (bench/package-lock.json, like run.sh) into bench/node_modules and the
# pinned supervisor into a throwaway venv, bench/.work/supervisor-venv; never anything global.
# Env: CORRAL_PYTHON (default: the repo's .venv/bin/python), BENCH_SKIP_INSTALL=1.
# Results: bench/results/logs-latest.{md,json}.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
py=${CORRAL_PYTHON:-$root/.venv/bin/python}
supervisor_version=$("$py" -c 'import sys; sys.path.insert(0, sys.argv[1]); import logs; print(logs.SUPERVISOR_VERSION)' "$here")
venv="$here/.work/supervisor-venv"

[ -x "$py" ] || { echo "run_logs.sh: no python at $py (make the venv, or set CORRAL_PYTHON)" >&2; exit 2; }
mkdir -p "$here/.work"

if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
    if command -v node >/dev/null && command -v npm >/dev/null; then
        installed=$(node -p 'try { require(process.argv[1]).version } catch (e) { "" }' \
            "$here/node_modules/pm2/package.json" 2>/dev/null || true)
        pinned=$(node -p 'require(process.argv[1]).packages["node_modules/pm2"].version' "$here/package-lock.json")
        if [ "$installed" != "$pinned" ]; then
            echo "run_logs.sh: installing pm2@$pinned into bench/node_modules (npm ci)" >&2
            (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
        fi
    else
        echo "run_logs.sh: node/npm missing: PM2 is skipped" >&2
    fi
    have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("supervisor"))' 2>/dev/null || true)
    if [ "$have" != "$supervisor_version" ]; then
        echo "run_logs.sh: installing supervisor==$supervisor_version into bench/.work/supervisor-venv" >&2
        rm -rf "$venv"
        "$py" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "supervisor==$supervisor_version"
    fi
fi

start=$(date +%s)
"$py" "$here/logs.py" "$@"
echo "run_logs.sh: total $(( $(date +%s) - start )) s (without the installs)" >&2
