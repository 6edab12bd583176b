# shellcheck shell=bash
# Shared by tests/run.sh and examples/demo.sh: install what zt's builds and tests need on a
# Debian 12 machine, idempotently (nothing is downloaded when everything is present).

# Debian packages the workspace needs, with why:
#   gcc, pkg-config                   building crates with C parts
#   iproute2                          network namespaces and veth pairs in kernel tests
#   nftables, libnftnl-dev, libmnl-dev  the nft backend (links libnftnl) and its tests
#   iptables                          the iptables backend (legacy and nft variants)
#   clang, llvm, libbpf-dev, bpftool  building and inspecting the eBPF backend's programs
#   protobuf-compiler, libprotobuf-dev  building zt-agent's etcd client (protoc and the
#                                       well-known .proto files its build script compiles)
#   etcd-server, etcd-client          the fleet store (etcd 3.4, etcdctl) for zt-agent's tests
#                                     and examples/fleet.sh, started in their own namespaces
#   openssl                           certificates for the fleet's TLS test
ZT_PACKAGES=(gcc pkg-config iproute2 nftables libnftnl-dev libmnl-dev iptables clang llvm libbpf-dev bpftool
    protobuf-compiler libprotobuf-dev etcd-server etcd-client openssl)

zt_require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: run as root: zt's tests and demo create network and mount namespaces" >&2
        exit 1
    fi
}

zt_ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing Debian packages: ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        # Debian starts etcd on the host's 127.0.0.1:2379 when etcd-server is installed under
        # systemd. zt's tests and demos run their own etcd in namespaces; one installed for
        # them is not left serving on the host.
        if [[ " ${missing[*]} " == *" etcd-server "* ]] && [ -d /run/systemd/system ]; then
            systemctl disable --now etcd >/dev/null 2>&1 || true
        fi
    fi
}

zt_ensure_rust() {
    # Debian 12's own cargo (1.63) is too old for this workspace (edition 2024, Rust >= 1.89).
    if [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        zt_ensure_packages curl ca-certificates
        echo "installing the Rust toolchain with rustup" >&2
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    local minor
    minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
    if [ "$minor" -lt 89 ]; then
        echo "error: rustc $(rustc --version) is too old; zt needs Rust 1.89 or newer (rustup update)" >&2
        exit 1
    fi
}
