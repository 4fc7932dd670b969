#!/usr/bin/env bash
# Three services on the embedded control plane, from a clone (after `npm run build`):
#
#   examples/control-plane/embedded/run.sh
#
# 1. starts `"${sidecarless[@]}" control-plane --config mesh.yaml` (its state — CA, root, token key — in a
#    temp dir), 2. issues one token per workload, 3. starts ledger and payments, which join and
#    register themselves, 4. runs orders, which calls payments, which calls ledger, all found by name
#    over mTLS under policies/, 5. prints `"${sidecarless[@]}" control-plane status`, and stops everything.
# LISTEN and ADMIN_LISTEN move the control plane's ports (default 127.0.0.1:15012 and :15014).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
sidecarless=(node "$root/dist/cli.js")   # installed from npm: sidecarless=(npx sidecarless)
tsx=(node --import tsx)
work="$(mktemp -d "${TMPDIR:-/tmp}/sidecarless-embedded-XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"${sidecarless[@]}" control-plane --config "$here/mesh.yaml" --state "$work/state" --grace 2s \
  --listen "${LISTEN:-127.0.0.1:15012}" --admin-listen "${ADMIN_LISTEN:-127.0.0.1:15014}" >"$work/cp.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^status on' "$work/cp.log" || ! kill -0 "${pids[0]}" 2>/dev/null && break; sleep 0.1; done
sed 's/^/control-plane │ /' "$work/cp.log"
address="$(sed -n 's/^control plane serving ADS + CA on \([^ ]*\) (TLS).*/\1/p' "$work/cp.log")"
admin="$(sed -n 's/^status on \(http:[^ ]*\)\/status;.*/\1/p' "$work/cp.log")"
[ -n "$address" ] || { echo "the control plane did not start"; exit 1; }

tokens=()
for sa in orders payments ledger; do
  "${sidecarless[@]}" control-plane token --state "$work/state" --namespace default --service-account "$sa" >"$work/$sa.token" & tokens+=($!)
done
for pid in "${tokens[@]}"; do wait "$pid"; done
# localhost, not 127.0.0.1: the name the server's certificate carries (TLS sends no IP as its server name).
export CONTROL_PLANE="${address/127.0.0.1/localhost}" ROOT="$work/state/root-cert.pem"
TOKEN="$work/ledger.token" "${tsx[@]}" "$here/ledger.ts" & pids+=($!)
TOKEN="$work/payments.token" "${tsx[@]}" "$here/payments.ts" & pids+=($!)
TOKEN="$work/orders.token" "${tsx[@]}" "$here/orders.ts"

echo
"${sidecarless[@]}" control-plane status --admin "$admin"
