#!/usr/bin/env bash
# zt's demonstration, as root on Debian 12: the specification's scenario end to end.
#
#   sudo examples/demo.sh
#
# It applies examples/rules.yaml with `zt apply` inside a throwaway network namespace, makes
# real connections as web-user, postgres and nobody (and from a second namespace standing in
# for another host), shows which were allowed or refused and by which rule, then `zt status`
# and `zt audit`, and flushes. The host's firewall is never touched:
#  - the users exist only in a private copy of /etc/passwd and /etc/group, inside a mount
#    namespace that ends with the demo;
#  - every rule, socket and interface lives in network namespaces that end with the demo;
#  - the kernel logs packets of non-host namespaces only with net.netfilter.nf_log_all_netns=1,
#    which `zt audit` needs to see the demo's refusals: the demo sets it for its duration and
#    puts the previous value back on exit (ZT_DEMO_NO_LOG=1 leaves it alone; the audit is then
#    empty).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/prerequisites.sh
. tests/prerequisites.sh
zt_require_root
zt_ensure_packages "${ZT_PACKAGES[@]}"
zt_ensure_rust
cargo build --quiet --locked -p zt-cli --bin zt
cargo build --quiet --locked --example demo

log_sysctl=/proc/sys/net/netfilter/nf_log_all_netns
if [ -z "${ZT_DEMO_NO_LOG:-}" ] && [ -w "$log_sysctl" ]; then
    previous=$(cat "$log_sysctl")
    trap 'echo "$previous" > "$log_sysctl"' EXIT
    echo 1 > "$log_sysctl"
fi

unshare --mount --propagation private bash -euo pipefail -c '
    work=$(mktemp -d)
    trap "rm -rf \"$work\"" EXIT
    cp /etc/passwd /etc/group "$work/"
    for user in web-user:61001 postgres:61002; do
        name=${user%%:*} id=${user##*:}
        getent passwd "$name" >/dev/null || echo "$name:x:$id:$id:zt demo:/nonexistent:/usr/sbin/nologin" >>"$work/passwd"
        getent group "$name" >/dev/null || echo "$name:x:$id:" >>"$work/group"
    done
    mount --bind "$work/passwd" /etc/passwd
    mount --bind "$work/group" /etc/group
    ZT_BIN=target/debug/zt target/debug/examples/demo
'
