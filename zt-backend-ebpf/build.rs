//! Compile the kernel programs (C, `bpf/zt.bpf.c`) with clang into `OUT_DIR/zt.bpf.o`, which
//! the crate embeds with `aya::include_bytes_aligned!`.
//!
//! The kernel side is C because writing it in Rust needs nightly, rust-src and bpf-linker;
//! clang and libbpf-dev are Debian packages (`apt-get install clang libbpf-dev`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=bpf/zt.bpf.c");
    println!("cargo:rerun-if-changed=bpf/zt.h");
    println!("cargo:rerun-if-env-changed=ZT_CLANG");
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        fail("OUT_DIR is not set (build.rs runs under cargo)");
    };
    let clang = std::env::var("ZT_CLANG").unwrap_or_else(|_| "clang".to_owned());
    let object = out_dir.join("zt.bpf.o");
    // Debian keeps <asm/types.h> under the multiarch directory of the host architecture.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".to_owned());
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    let output = Command::new(&clang)
        .args([
            "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
        ])
        .arg(&multiarch)
        .arg("-Ibpf")
        .args(["-c", "bpf/zt.bpf.c", "-o"])
        .arg(&object)
        .output();
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(&format!(
            "'{clang}' was not found. The eBPF backend compiles its kernel programs with clang: \
             install it with `apt-get install clang libbpf-dev` (or set ZT_CLANG to a clang binary), \
             or build zt without the eBPF backend (`--no-default-features --features nft,iptables`)"
        )),
        Err(e) => fail(&format!("cannot run '{clang}': {e}")),
        Ok(out) if !out.status.success() => fail(&format!(
            "'{clang}' failed to compile bpf/zt.bpf.c (are libbpf-dev's headers installed? \
             `apt-get install libbpf-dev`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Ok(_) => {}
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    println!("cargo:warning={message}");
    std::process::exit(1);
}
