#!/usr/bin/env bash
# Run zt's whole test suite on a Debian 12 machine, as root. Installs what it needs first.
#
#   sudo tests/run.sh
#
# Kernel tests create their own network namespaces; nothing touches the host's firewall.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/prerequisites.sh
. tests/prerequisites.sh
zt_require_root
zt_ensure_packages "${ZT_PACKAGES[@]}"
zt_ensure_rust
cargo test --workspace --locked --all-features
# The configuration parser's fuzz targets, for a bounded time each (ZT_FUZZ_SECONDS, default 60).
tests/fuzz.sh "${ZT_FUZZ_SECONDS:-60}"
