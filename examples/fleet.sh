#!/usr/bin/env bash
# zt's fleet demonstration, as root on Debian 12: one etcd, three hosts, one agent per host.
#
#   sudo examples/fleet.sh
#
# Everything lives in network namespaces the demo creates and deletes on exit:
#
#   ztfleet-<pid>-etcd    etcd on 10.99.0.1:2379, a bridge br0
#   ztfleet-<pid>-web-1   10.99.0.11  zt-agent --label role=web  --backend nft
#   ztfleet-<pid>-web-2   10.99.0.12  zt-agent --label role=web  --backend iptables
#   ztfleet-<pid>-db-1    10.99.0.13  zt-agent --label role=db   --backend nft
#
# Each host runs listeners on its own 127.0.0.1:6379 (redis) and 127.0.0.1:5432 (postgres).
# Connections are made by a real process running as uid 65534 (nobody) inside the host's
# namespace. The steps:
#   1. push a policy for role=web and watch `zt-agent status` converge;
#   2. the same connection is allowed on one host and refused on another;
#   3. stop etcd: every host keeps enforcing what it enforced;
#   4. start etcd again, push a policy for role=db, watch it converge and change db-1.
# The demo exits non-zero, with the agents' logs, as soon as anything is not as expected.
# Nothing outside the namespaces and one temporary directory is touched: the host's
# firewall, its etcd (if any) and /var/lib/zt are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/prerequisites.sh
. tests/prerequisites.sh
zt_require_root
zt_ensure_packages "${ZT_PACKAGES[@]}"
zt_ensure_packages python3 # the listeners and the probe (present on a standard Debian 12)
zt_ensure_rust
cargo build --quiet --release --locked -p zt-agent --bin zt-agent -p zt-cli --bin zt

AGENT=$PWD/target/release/zt-agent
ZT=$PWD/target/release/zt
PYTHON=/usr/bin/python3
ENDPOINT=http://10.99.0.1:2379
PREFIX=ztfleet-$$
HOSTS=(web-1 web-2 db-1)
declare -A LABEL=([web-1]=role=web [web-2]=role=web [db-1]=role=db)
declare -A BACKEND=([web-1]=nft [web-2]=iptables [db-1]=nft)
declare -A ADDRESS=([web-1]=10.99.0.11 [web-2]=10.99.0.12 [db-1]=10.99.0.13)
declare -A AGENT_PID=()
LISTENER_PIDS=()
ETCD_PID=
NAMESPACES=()
WORK=$(mktemp -d /tmp/zt-fleet-demo.XXXXXX)
PROBE_TIMEOUT=1 # seconds a refused (dropped) connection is waited on

# ----- cleanup: every process this script started, by its pid; then the namespaces -----

stop_pid() { # pid: SIGTERM, up to 5 s, then SIGKILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid ns
    set +e
    for pid in "${AGENT_PID[@]}" "${LISTENER_PIDS[@]}" $ETCD_PID; do
        stop_pid "$pid"
    done
    for ns in "${NAMESPACES[@]}"; do
        # Anything still running in a namespace of the demo was started by it (a probe
        # interrupted by Ctrl-C): stopped by its pid, or the namespace would outlive us.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----- output -----

say() { printf '%s\n' "$*"; }
if [ -t 1 ]; then
    step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    step() { printf '\n== %s\n' "$*"; }
fi
show() { printf '\n$ %s\n' "$*"; } # a command as an operator would type it

fail() {
    local h
    printf '\nfleet demo: FAILED: %s\n' "$*" >&2
    for h in "${HOSTS[@]}"; do
        [ -f "$WORK/$h.log" ] && { printf '\n--- agent log of %s (last 15 lines)\n' "$h" >&2; tail -n 15 "$WORK/$h.log" >&2; }
    done
    [ -f "$WORK/etcd.log" ] && { printf '\n--- etcd log (last 10 lines)\n' >&2; tail -n 10 "$WORK/etcd.log" >&2; }
    exit 1
}

# ----- namespaces -----

ns_of() { printf '%s-%s' "$PREFIX" "$1"; }
# Background processes are started with `ip netns exec … &` directly (not through a function),
# so that $! is the process itself (ip execs it) and the cleanup stops it by its pid.
in_ns() { local ns; ns=$(ns_of "$1"); shift; ip netns exec "$ns" "$@"; }

make_ns() {
    local ns
    ns=$(ns_of "$1")
    ip netns add "$ns"
    NAMESPACES+=("$ns")
    ip -n "$ns" link set lo up
}

# ----- etcd -----

etcdctl_() { in_ns etcd etcdctl --endpoints "$ENDPOINT" --command-timeout=2s "$@"; }

start_etcd() {
    local i
    ip netns exec "$(ns_of etcd)" etcd --name=demo --data-dir="$WORK/etcd-data" \
        --listen-client-urls="$ENDPOINT" --advertise-client-urls="$ENDPOINT" \
        --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
        --initial-cluster=demo=http://127.0.0.1:2380 \
        --logger=zap --log-level=warn --log-outputs=stderr >>"$WORK/etcd.log" 2>&1 &
    ETCD_PID=$!
    for ((i = 0; i < 150; i++)); do
        kill -0 "$ETCD_PID" 2>/dev/null || fail "etcd exited while starting"
        etcdctl_ endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "etcd was not healthy within 15 s"
}

stop_etcd() {
    stop_pid "$ETCD_PID"
    ETCD_PID=
}

# The operator's commands run in the etcd namespace (any machine that reaches etcd would do).
operator() { in_ns etcd "$AGENT" "$@" --endpoints "$ENDPOINT"; }

# ----- hosts -----

# Listeners on 127.0.0.1:6379 and :5432: accept, close.
LISTENER='
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port)))
    s.listen(64)
    sel.register(s, selectors.EVENT_READ)
print("listening", flush=True)
while True:
    for key, _ in sel.select():
        conn, _ = key.fileobj.accept()
        conn.close()
'

# One TCP connection; prints connected, dropped (the SYN went unanswered), refused (RST:
# nothing listening) or the error.
PROBE='
import socket, sys
s = socket.socket()
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except socket.timeout:
    print("dropped")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("error: " + (e.strerror or str(e)))
'

add_host() {
    local h=$1 ns index
    ns=$(ns_of "$h")
    make_ns "$h"
    index=${ADDRESS[$h]##*.}
    in_ns etcd ip link add "vh$index" type veth peer name eth0 netns "$ns"
    in_ns etcd ip link set "vh$index" master br0 up
    ip -n "$ns" addr add "${ADDRESS[$h]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip netns exec "$ns" "$PYTHON" -c "$LISTENER" 6379 5432 >"$WORK/$h.listener" 2>&1 &
    LISTENER_PIDS+=($!)
    mkdir -p "$WORK/state-$h"
}

start_agent() {
    local h=$1
    ip netns exec "$(ns_of "$h")" "$AGENT" run --endpoints "$ENDPOINT" --host "$h" --label "${LABEL[$h]}" \
        --backend "${BACKEND[$h]}" --state-dir "$WORK/state-$h" >>"$WORK/$h.log" 2>&1 &
    AGENT_PID[$h]=$!
}

agents_alive() {
    local h
    for h in "${!AGENT_PID[@]}"; do
        kill -0 "${AGENT_PID[$h]}" 2>/dev/null || fail "the agent of $h exited"
    done
}

# probe HOST PORT [UID]: one connection from inside HOST to its own 127.0.0.1:PORT.
probe() {
    local uid=${3:-65534}
    in_ns "$1" setpriv --reuid="$uid" --regid="$uid" --clear-groups \
        "$PYTHON" -c "$PROBE" 127.0.0.1 "$2" "$PROBE_TIMEOUT" 2>&1
}

# connections "HOST:6379-OUTCOME:5432-OUTCOME ...": make each connection as nobody, print a
# table, fail if any outcome is not the expected one (allowed = connected, refused = dropped).
connections() {
    local spec h p6379 p5432 port want got word mark bad=0
    printf '\n  %-6s %-9s %-34s %-9s %s\n' host backend "connection (as uid 65534, nobody)" expected kernel
    for spec in "$@"; do
        IFS=: read -r h p6379 p5432 <<<"$spec"
        for port in 6379 5432; do
            if [ "$port" = 6379 ]; then want=$p6379; else want=$p5432; fi
            got=$(probe "$h" "$port")
            case "$got" in
                connected) word=allowed ;;
                dropped) word=refused ;;
                *) word="?" ;;
            esac
            if [ "$word" = "$want" ]; then mark=ok; else mark=UNEXPECTED; bad=1; fi
            printf '  %-6s %-9s %-34s %-9s %-10s %s\n' "$h" "${BACKEND[$h]}" \
                "tcp 127.0.0.1:$port" "$want" "$got" "$mark"
        done
    done
    [ "$bad" = 0 ] || fail "a connection was not decided as the policies say (UNEXPECTED above)"
}

# converged TIMEOUT REVISION "HOST=POLICY,POLICY ..." (an empty list: no policy): poll
# `zt-agent status --json` until every host is live, converged, applied or unchanged, lists
# exactly those policies, and has computed from store revision REVISION or later (so it has
# seen the last push: "converged" alone compares the status with what the store holds, and a
# host the push did not concern was converged already); then print `zt-agent status`.
CONVERGED='
import json, sys
fleet = json.load(sys.stdin)
rows = {h["host"]: h for h in fleet["hosts"]}
seen = int(sys.argv[1])
for spec in sys.argv[2:]:
    host, want = spec.split("=", 1)
    r = rows.get(host)
    names = ",".join(p["name"] for p in r["policies"]) if r else None
    if not (r and r["live"] and r["converged"] and r["result"] in ("applied", "unchanged") and names == want
            and (r["store_revision"] or 0) >= seen):
        print("%s: %s" % (host, "absent" if r is None else
              "live=%s converged=%s result=%s policies=%r (expected %r) store_revision=%s (expected >= %d)"
              % (r["live"], r["converged"], r["result"], names, want, r["store_revision"], seen)))
        sys.exit(1)
'
converged() {
    local timeout=$1 revision=$2 start json why=""
    shift 2
    start=$(date +%s.%N)
    while :; do
        agents_alive
        if json=$(operator status --json 2>&1) && why=$("$PYTHON" -c "$CONVERGED" "$revision" "$@" <<<"$json" 2>&1); then
            break
        fi
        [ -n "$why" ] || why=$json
        if awk -v s="$start" -v t="$timeout" -v n="$(date +%s.%N)" 'BEGIN { exit !(n - s > t) }'; then
            fail "the fleet did not converge within $timeout s: $why"
        fi
        sleep 0.1
    done
    say "converged in $(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }') s (polled with \`zt-agent status --json\`):"
    show "zt-agent status --endpoints $ENDPOINT"
    operator status
}

# revision_of "pushed /zt/v1/policies/web (1 rule) at revision 8": 8
revision_of() { sed -nE 's/.* at revision ([0-9]+)$/\1/p' <<<"$1"; }

# log_since MARK HOST PATTERN: the agent log lines of HOST after line MARK matching PATTERN.
log_since() { tail -n "+$(($1 + 1))" "$WORK/$2.log" | grep -E "$3" || true; }
log_lines() { wc -l <"$WORK/$1.log"; }

# ----- the policies -----

cat >"$WORK/web.yaml" <<'EOF'
# The web tier: the application (here uid 65534, nobody) may reach redis; nothing else may
# leave the host.
version: "1.0"
selector: { role: web }
order: 100
settings:
  default_policy: deny
rules:
  - name: app-to-redis
    from: { user: nobody }
    to: { hosts: [127.0.0.1], port: 6379, protocol: tcp }
    action: allow
EOF
cat >"$WORK/db.yaml" <<'EOF'
# The database tier: the application may reach postgres; nothing else may leave the host.
version: "1.0"
selector: { role: db }
order: 100
settings:
  default_policy: deny
rules:
  - name: app-to-postgres
    from: { user: nobody }
    to: { hosts: [127.0.0.1], port: 5432, protocol: tcp }
    action: allow
EOF

# ----- set-up -----

begun=$(date +%s.%N)
say "Setting up: etcd in namespace $(ns_of etcd) on $ENDPOINT, and three hosts around it:"
make_ns etcd
in_ns etcd ip link add br0 type bridge
in_ns etcd ip addr add 10.99.0.1/24 dev br0
in_ns etcd ip link set br0 up
start_etcd
for h in "${HOSTS[@]}"; do
    add_host "$h"
done
for h in "${HOSTS[@]}"; do
    for ((i = 0; i < 50; i++)); do
        grep -q listening "$WORK/$h.listener" 2>/dev/null && break
        sleep 0.1
    done
    grep -q listening "$WORK/$h.listener" || fail "the listeners of $h did not start: $(cat "$WORK/$h.listener")"
    [ "$(probe "$h" 6379 0)" = connected ] && [ "$(probe "$h" 5432 0)" = connected ] ||
        fail "$h cannot reach its own listeners before any policy"
    start_agent "$h"
    printf '  %-6s %-12s %-9s zt-agent run --host %s --label %s --backend %s --state-dir …\n' \
        "$h" "${ADDRESS[$h]}" "${BACKEND[$h]}" "$h" "${LABEL[$h]}" "${BACKEND[$h]}"
done
say "Each host listens on its own 127.0.0.1:6379 (redis) and 127.0.0.1:5432 (postgres)."
say "No policy is stored yet, so no host enforces anything:"
converged 20 0 web-1= web-2= db-1=

# ----- 1 -----

step "1. Push a policy for the web tier (selector role=web) and watch the fleet converge"
show "cat web.yaml"
cat "$WORK/web.yaml"
show "zt-agent push web web.yaml --endpoints $ENDPOINT"
pushed=$(operator push web "$WORK/web.yaml") || fail "zt-agent push web was refused"
say "$pushed"
converged 20 "$(revision_of "$pushed")" web-1=web web-2=web db-1=

# ----- 2 -----

step "2. The same connection is allowed on one host and refused on another"
say "web-1 and web-2 enforce 'web' (one with nftables, one with iptables); db-1 enforces nothing yet."
connections web-1:allowed:refused web-2:allowed:refused db-1:allowed:allowed
say
say "The counters on web-2 name each rule <policy>/<rule> (zt status reads the agent's state directory):"
show "zt --backend iptables status   # on web-2"
in_ns web-2 "$ZT" --backend iptables --state-dir "$WORK/state-web-2" status |
    grep -E '^(backend|policy|RULE|web/|zt-agent/|zt:default|no drift)' || fail "zt status on web-2 failed"

# ----- 3 -----

step "3. Stop etcd: every host keeps enforcing what it enforced"
declare -A MARK=()
for h in "${HOSTS[@]}"; do MARK[$h]=$(log_lines "$h"); done
stop_etcd
say "etcd stopped. The agents notice, and retry with backoff:"
for h in "${HOSTS[@]}"; do
    for ((i = 0; i < 150; i++)); do
        [ -n "$(log_since "${MARK[$h]}" "$h" 'disconnected')" ] && break
        sleep 0.1
    done
    line=$(log_since "${MARK[$h]}" "$h" 'disconnected' | head -n 1)
    [ -n "$line" ] || fail "the agent of $h did not report the outage within 15 s"
    # The client library's error in full is long: its first words and the retry suffice here.
    printf '  %-6s %s\n' "$h" "$(sed -E 's/^(zt-agent: disconnected: [^:]+: [^:]+):.*(; retrying in [^ ]+)$/\1: …\2/' <<<"$line")"
done
agents_alive
connections web-1:allowed:refused web-2:allowed:refused db-1:allowed:allowed
say
say "Enforcement is unchanged: the kernel holds each host's policy whether etcd answers or not."

# ----- 4 -----

step "4. Start etcd again and push a change: a policy for the database tier (selector role=db)"
start_etcd
say "etcd is back (same data directory)."
show "cat db.yaml"
cat "$WORK/db.yaml"
show "zt-agent push db db.yaml --endpoints $ENDPOINT"
pushed=$(operator push db "$WORK/db.yaml") || fail "zt-agent push db was refused"
say "$pushed"
converged 30 "$(revision_of "$pushed")" web-1=web web-2=web db-1=db
# Every host's store_revision reaching the push's proves its agent is connected again and got
# the change ("live" alone would not: a host's record survives an etcd restart on its lease).
# Its log says when it reconnected; wait for that line too, before showing the logs.
for h in "${HOSTS[@]}"; do
    for ((i = 0; i < 300; i++)); do
        [ -n "$(log_since "${MARK[$h]}" "$h" 'watching:')" ] && break
        sleep 0.1
    done
    [ -n "$(log_since "${MARK[$h]}" "$h" 'watching:')" ] ||
        fail "the agent of $h did not reconnect within 30 s of etcd's return"
done
say
say "What the agents logged since etcd stopped (their retries left out):"
for h in "${HOSTS[@]}"; do
    log_since "${MARK[$h]}" "$h" '(watching|listed|applied|unchanged|invalid|conflict|failed|compacted|cancelled):' |
        while IFS= read -r line; do printf '  %-6s %s\n' "$h" "$line"; done
done
connections web-1:allowed:refused web-2:allowed:refused db-1:refused:allowed
say
say "db-1 now refuses what it allowed before, and allows its application's postgres."

say
say "Done in $(awk -v s="$begun" -v n="$(date +%s.%N)" 'BEGIN { printf "%.0f", n - s }') s. The agents are stopped (they never flush: the kernel would keep each"
say "host's policy), then the namespaces are deleted, and everything in them with them."
