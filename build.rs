//! Compiles the eBPF capture program (src/ebpf/bpf/tap.bpf.c) with clang
//! (through libbpf-cargo, which brings libbpf's BPF headers) into
//! OUT_DIR/tap.bpf.o, which src/ebpf/loader.rs embeds and opens with
//! libbpf-rs. The object is CO-RE: its kernel struct
//! offsets are relocated at load time against the running kernel's BTF,
//! so the build machine's kernel does not matter, only clang and the
//! kernel's UAPI headers (Debian: clang, linux-libc-dev).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SOURCE: &str = "src/ebpf/bpf/tap.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("tap.bpf.o");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    // <linux/types.h> includes <asm/types.h>, which Debian keeps under the
    // multiarch triplet.
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    if let Err(e) = SkeletonBuilder::new().source(SOURCE).obj(&out).clang_args([multiarch.as_str(), "-Wall"]).build() {
        eprintln!("error: building the eBPF program {SOURCE} failed: {e:#}");
        eprintln!(
            "hint: it needs clang and the kernel UAPI headers (apt-get install clang linux-libc-dev libelf-dev zlib1g-dev)"
        );
        std::process::exit(1);
    }
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=src/ebpf/bpf/kernel.h");
}
