#!/usr/bin/env bash
# corral vs PM2 benchmark: install the pinned PM2 locally, run bench/core.py, always clean up.
#
#   bench/run.sh [core.py options]             e.g. bench/run.sh --rounds 5
#   bench/run.sh reload [reload.py options]    reload under load + 1 -> 2 instance scaling (wrk),
#                                              corral vs PM2 cluster mode vs gunicorn
#   bench/run.sh rss [rss.py options]          the daemon's memory budget alone (~15 s, no PM2):
#                                              exit status 1 above it
#   bench/run.sh monitor [monitor.py options]  sampling CPU with 100 apps, threshold -> webhook
#                                              time (~3 min, no PM2): exit status 1 over budget
#   bench/run.sh profile [options]             what `corral profile cpu` (py-spy, 100 Hz) costs the
#                                              app it profiles (~1 min, no PM2): exit 1 above 5 %
#   bench/run.sh logs [logs_corpus.py options] logs on realistic lines (bench/corpus.py, no PM2):
#                                              the redactor's MB/s per kind (redact_corpus.py),
#                                              then the app's write time through corral vs a bare
#                                              pipe per kind (logs_corpus.py --raw); exit status 1
#                                              for a secret missed or a line lost/duplicated/wrong
#   bench/run.sh redact [redact_corpus.py options]   the redactor part alone (~1 minute)
#
# Env: CORRAL_PYTHON (default: the repo's .venv/bin/python), BENCH_SKIP_INSTALL=1 to reuse
# bench/node_modules as it is.  Results: bench/results/core-latest.{md,json}
# (reload: bench/results/reload-latest.{md,json}).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
py=${CORRAL_PYTHON:-$root/.venv/bin/python}
script="$here/core.py"
state="$here/.work/state.json"
if [ "${1:-}" = reload ]; then
    shift
    script="$here/reload.py"
    state="$here/.work/reload-state.json"
elif [ "${1:-}" = profile ]; then
    shift
    exec "$py" "$here/profile_overhead.py" "$@"
elif [ "${1:-}" = rss ]; then
    shift
    script="$here/rss.py"
    state="$here/.work/rss-state.json"
elif [ "${1:-}" = monitor ]; then
    shift
    script="$here/monitor.py"
    state="$here/.work/monitor-state.json"
elif [ "${1:-}" = logs ] || [ "${1:-}" = redact ]; then
    # standard library + corral only; each script cleans up after itself (no state file)
    target=$1
    shift
    [ -x "$py" ] || { echo "run.sh: no python at $py (make the venv, or set CORRAL_PYTHON)" >&2; exit 2; }
    start=$(date +%s)
    status=0
    if [ "$target" = redact ]; then
        "$py" "$here/redact_corpus.py" "$@" || status=$?
    else
        "$py" "$here/redact_corpus.py" || status=$?
        "$py" "$here/logs_corpus.py" --raw "$@" || status=$?
    fi
    echo "run.sh: total $(( $(date +%s) - start )) s; results in bench/results/{redact,logs-corpus}-latest.md" >&2
    exit "$status"
fi

[ -x "$py" ] || { echo "run.sh: no python at $py (make the venv, or set CORRAL_PYTHON)" >&2; exit 2; }
needs_pm2=1
[ "$script" = "$here/rss.py" ] || [ "$script" = "$here/monitor.py" ] && needs_pm2=0
if [ "$needs_pm2" = 1 ]; then
    command -v node >/dev/null || { echo "run.sh: node is not installed" >&2; exit 2; }
    command -v npm >/dev/null || { echo "run.sh: npm is not installed" >&2; exit 2; }
fi

cleanup() {
    # core.py cleans up after itself; this catches a core.py that was itself killed
    if [ -f "$state" ]; then
        "$py" "$script" --cleanup "$state" || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

mkdir -p "$here/.work"
if [ -f "$state" ]; then
    echo "run.sh: cleaning up after an earlier run that did not finish" >&2
    cleanup
fi

# PM2, pinned by package-lock.json, into bench/node_modules (never global, never ~/.pm2).
if [ "$needs_pm2" = 1 ]; then
    installed=$(node -p 'try { require(process.argv[1]).version } catch (e) { "" }' \
        "$here/node_modules/pm2/package.json" 2>/dev/null || true)
    pinned=$(node -p 'require(process.argv[1]).packages["node_modules/pm2"].version' "$here/package-lock.json")
    if [ "${BENCH_SKIP_INSTALL:-0}" = 1 ] && [ -n "$installed" ]; then
        :
    elif [ "$installed" != "$pinned" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
        echo "run.sh: installing pm2@$pinned into bench/node_modules (npm ci)" >&2
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi

start=$(date +%s)
"$py" "$script" --state "$state" "$@"
echo "run.sh: total $(( $(date +%s) - start )) s (without the install)" >&2
