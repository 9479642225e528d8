//! Embeds the connector component in the harness binary, so an installed `klaviyo-harness`
//! needs no file beside it. The component is, in order: `KLAVIYO_EMBED_COMPONENT` (a path);
//! the release build in this workspace's `target/` (what `cargo build --target wasm32-wasip2
//! --release` at the root makes); else it is built here, into `OUT_DIR`, with a nested cargo
//! (as wasmtime's test-programs do) — so `cargo install --path host-harness` works on a fresh
//! checkout. If none of that works, the binary carries no component and says so at run time
//! (`--component` then names one).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("component.wasm");
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let root = manifest
        .parent()
        .expect("host-harness is in the workspace")
        .to_path_buf();
    println!("cargo:rerun-if-env-changed=KLAVIYO_EMBED_COMPONENT");
    let built = root.join("target/wasm32-wasip2/release/klaviyo_connector.wasm");
    let source = match std::env::var_os("KLAVIYO_EMBED_COMPONENT") {
        Some(p) => Some(PathBuf::from(p)),
        None if built.exists() => Some(built.clone()),
        None => build_here(&root, &out),
    };
    println!("cargo:rerun-if-changed={}", built.display());
    match source {
        Some(src) => {
            println!("cargo:rerun-if-changed={}", src.display());
            std::fs::copy(&src, &out)
                .unwrap_or_else(|e| panic!("cannot embed the component {}: {e}", src.display()));
        }
        None => {
            println!("cargo:warning=klaviyo-harness is built without its component: build it first (`cargo build --target wasm32-wasip2 --release` at the workspace root) or run with --component");
            std::fs::write(&out, b"").expect("OUT_DIR is writable");
        }
    }
}

/// Builds the component into `OUT_DIR` with a nested cargo; its path, or `None`.
fn build_here(root: &Path, out: &Path) -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = out.with_file_name("component-target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "klaviyo-connector",
            "--target-dir",
        ])
        .arg(&target_dir);
    // The outer build's settings are for the host target, not this one.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let ok = cmd.status().is_ok_and(|s| s.success());
    let wasm = target_dir.join("wasm32-wasip2/release/klaviyo_connector.wasm");
    (ok && wasm.exists()).then_some(wasm)
}
