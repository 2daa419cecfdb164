# shellcheck shell=bash
# Small helpers of the image tests: steps, figures, waiting with a deadline.

SECONDS=0
step() { printf '\n== %s  (at %d s)\n' "$*" "$SECONDS"; }
note() { printf '   %s\n' "$*"; }
figure() { printf '   figure: %s: %s\n' "$1" "$2"; }
fail() {
    printf 'FAILED: %s\n' "$*" >&2
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
http_ok() { curl -fsS -o /dev/null --max-time 5 "$1"; }

# until_true SECONDS WHAT COMMAND...: run COMMAND every half second until it succeeds; fail,
# naming WHAT, when SECONDS pass first.
until_true() {
    local deadline=$(($(date +%s) + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting until $what"
        sleep 0.5
    done
}
