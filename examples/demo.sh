#!/usr/bin/env bash
# zt's demonstration, as root on Debian 12: validate the specification's example policy
# (examples/rules.yaml) and print the exact first-match ruleset every backend installs.
#
#   sudo examples/demo.sh
#
# It changes nothing on the host: the example's users (web-user, postgres) are added to a
# private copy of /etc/passwd and /etc/group, visible only inside a throwaway mount namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/prerequisites.sh
. tests/prerequisites.sh
zt_require_root
zt_ensure_packages "${ZT_PACKAGES[@]}"
zt_ensure_rust
cargo build --quiet --locked --example check

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
    echo "== zt check examples/rules.yaml"
    target/debug/examples/check examples/rules.yaml
'
