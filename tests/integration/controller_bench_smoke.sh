#!/usr/bin/env bash
# Smoke test of tests/bench/controller_bench, so the harness does not rot: a handful of canaries,
# short windows and a short soak, spread over two namespaces (the layout with more moving parts:
# serin and the benchmark's watches see the whole cluster). Asserts only that it completes and
# prints its tables, every release seen; the figures of such a short run mean nothing.
# Watching the whole cluster, serin's cache holds one Service more than the benchmark's five apps
# have: default/kubernetes.
#   controller_bench_smoke.sh <controller_bench binary> <output file>
set -euo pipefail
bench=$1
out=$2
"$bench" --canaries 5 --namespaces 2 --releases 2 --interval 10s --quiet-seconds 3 \
  --settle-timeout 120 --rest-seconds 5 --release-seconds 10 --soak-seconds 4 --sample-seconds 2 \
  --timeout 240 >"$out"
cat "$out"
for want in 'over 2 namespaces, serin watching the whole cluster' \
            '| serin start -> every Canary Initialized |' \
            '| at rest: API requests / min (serin'"'"'s counter, audit log) |' \
            '| releases: bump -> Progressing p50 / p99 / max |' '(2 of 2 seen)' \
            '| per minute | get | list | watch | create | update | patch | delete |' \
            '| Flagger'"'"'s polling (model) at rest |' \
            '| a tick of one canary | at rest | progressing |' \
            '| soak time (s) | RSS (MiB) | open fds |' \
            '| releases: work queue waits; mean wait |' \
            '| canaries.flagger.app | 5 (listed: 5) |' '| deployments.apps | 10 (listed: 10) |' \
            '| services | 16 (listed: 15) |' \
            '| at rest: heap in use; held free (serin_heap_bytes) |'; do
  if ! grep -qF -- "$want" "$out"; then
    echo "missing from the output: $want" >&2
    exit 1
  fi
done
