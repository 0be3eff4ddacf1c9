//! Builds `tools/supervise.rs`, the program every sandbox runs its stage's
//! command under, as a static executable (so that it runs in any image,
//! whatever its C library), for the service to put on the sandboxes' tools
//! volume. The service embeds it (`include_bytes!`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "tools/supervise.rs";
    println!("cargo:rerun-if-changed={source}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("supervise");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let target = std::env::var("TARGET").expect("TARGET");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-name",
            "supervise",
            "--target",
            &target,
        ])
        .args(["-C", "opt-level=2", "-C", "target-feature=+crt-static"])
        .args(["-C", "strip=symbols", "-C", "panic=abort"])
        .arg("-o")
        .arg(&out)
        .arg(source)
        .status()
        .expect("rustc runs");
    assert!(
        status.success(),
        "building {source} as a static executable failed"
    );
}
