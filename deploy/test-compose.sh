#!/usr/bin/env bash
# Both compose files as documented: each parses (`docker compose config`), and the replicas file
# runs end to end on podman: two callmon replicas on PostgreSQL watching the simulator, the
# leader killed with SIGKILL, a standby taking over, every missed intercom call notified once.
# Run by `make image-test` and by CI, after deploy/test-image.sh has built the image.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deploy/ci/podman.sh
. "$root/deploy/ci/podman.sh"
# shellcheck source=deploy/ci/checks.sh
. "$root/deploy/ci/checks.sh"
need_packages
command -v podman-compose >/dev/null || fail "podman-compose is not on PATH (pip install podman-compose)"
build_python_base
build_postgres_base

project=callmon-replicas
compose() { docker compose -f "$root/deploy/docker-compose.replicas.yml" -p "$project" "$@"; }
logs=$(mktemp -d "$TMPDIR/compose-test.XXXXXX")
down() { compose down -v -t 1 >/dev/null 2>&1 || true; }
cleanup() {
    down
    rm -rf "$logs"
}
trap cleanup EXIT

step "both compose files parse"
for file in docker-compose.yml docker-compose.replicas.yml; do
    docker compose -f "$root/deploy/$file" config >/dev/null || fail "$file does not parse"
    note "$file: ok"
done

step "two replicas on PostgreSQL"
down
CALLMON_A_PORT=$(free_port)
CALLMON_B_PORT=$(free_port)
export CALLMON_A_PORT CALLMON_B_PORT
compose up -d >"$logs/up.log" 2>&1 || fail "compose up: $(tail -5 "$logs/up.log")"
declare -A port=([a]=$CALLMON_A_PORT [b]=$CALLMON_B_PORT)
role() { curl -fsS --max-time 5 "http://127.0.0.1:${port[$1]}/readyz" | python3 -c 'import json, sys; print(json.load(sys.stdin)["role"])'; }
for r in a b; do until_true 120 "callmon-$r is ready" role "$r"; done
leaders=$(for r in a b; do role "$r"; done | grep -c leader || true)
[ "$leaders" = 1 ] || fail "$leaders leaders"
leader=a other=b
[ "$(role a)" = leader ] || { leader=b other=a; }
note "callmon-$leader leads, callmon-$other stands by"
container() { podman ps -a --format '{{.Names}}' | grep "callmon-$1"; }
missed() { podman exec -i "$(container "$other")" python - http://simulator:8080 sim-vms-token \
    http://127.0.0.1:9464 "$1" <"$root/deploy/ci/missed_calls.py"; }
field() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
after=$(missed 0 | field newest)
note "VMS calls up to id $after were there before: the baseline"

step "a missed call notified, then the leader killed"
printed() { podman logs "$(container "$1")" 2>/dev/null | grep -c '^\[[A-Z]*\] Missed call' || true; }
notified() { [ "$(printed "$1")" -gt "$2" ]; }
until_true 180 "callmon-$leader notifies a missed call" notified "$leader" 0
started=$(now)
podman kill --signal KILL "$(container "$leader")" >/dev/null
until_true 60 "callmon-$other leads" sh -c "curl -fsS http://127.0.0.1:${port[$other]}/readyz | grep -q '\"role\": \"leader\"'"
figure "failover after SIGKILL (lease_ttl 15s)" "$(since "$started") s"

step "every missed call notified once, before the kill and after"
until_true 180 "callmon-$other notifies a missed call" notified "$other" "$(printed "$other")"
some() { [ "$(missed "$after" | field missed)" != "[]" ]; }
until_true 240 "an intercom call is missed (the simulator's VMS)" some
snapshot=$(missed "$after" | field missed)
all_sent() {
    missed "$after" | python3 -c '
import json, sys
now = json.load(sys.stdin)
sys.exit(not set(json.loads(sys.argv[1])) <= set(now["sent"]))' "$snapshot"
}
until_true 90 "every missed call up to now is notified ($snapshot)" all_sent
for r in a b; do podman logs "$(container "$r")" >"$logs/$r.log" 2>&1 || true; done
alerts() { grep -h -A1 '^\[[A-Z]*\] Missed call' "$@" | grep -v '^--$' | paste - -; }
twice=$(alerts "$logs/a.log" "$logs/b.log" | sort | uniq -d)
[ -z "$twice" ] || fail "sent twice: $twice"
note "the simulator's missed intercom calls $snapshot: each notified"
note "$(alerts "$logs/a.log" "$logs/b.log" | wc -l) missed-call alerts printed by the two replicas, none twice"

echo "compose test: ok"
