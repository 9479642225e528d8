//! Compresses the generated body schemas for embedding (they are ~470 KB of JSON text; the
//! component carries ~10x less and inflates them on first use). The committed
//! `src/generated/schemas.json` stays the readable source of truth.

fn main() {
    let src = "src/generated/schemas.json";
    println!("cargo:rerun-if-changed={src}");
    let text =
        std::fs::read(src).expect("generated schemas.json exists (run `cargo xtask codegen`)");
    let packed = miniz_oxide::deflate::compress_to_vec(&text, 9);
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("schemas.json.deflate");
    std::fs::write(out, packed).expect("OUT_DIR is writable");
}
