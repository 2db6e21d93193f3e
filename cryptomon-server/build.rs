//! Link settings for the `cryptomon` binary.
//!
//! On Linux with glibc the binary is linked with packed relative relocations (`DT_RELR`, glibc
//! 2.36 and later). The program is position-independent, so at start the dynamic loader patches
//! every pointer in its constant data; the classic table says where in 24 bytes a pointer, and
//! this one had 97,000 of them (2.3 MB, read at every start and counted in the process's RSS).
//! Packed, the same table is 33 KB. A warm `transform --every` process peaked 5-7 MB lower with
//! it (docs/performance.md), and the binary stays position-independent (ASLR), which linking it
//! as a fixed-address executable would have given up for the same saving.
//!
//! GNU ld before 2.38 ignores the option with a warning, and ld only packs when the C library
//! it links against supports it, so an older toolchain still links a working binary. Only this
//! binary: the Lambda functions run on Amazon Linux 2023 (glibc 2.34), where such a binary would
//! not start.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo::rustc-link-arg-bin=cryptomon=-Wl,-z,pack-relative-relocs");
    }
}
