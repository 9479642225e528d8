//! `cargo xtask codegen [--check] [--spec PATH] [--promised PATH]`
//!
//! Reads Klaviyo's OpenAPI spec and the promised-actions list and writes the generated files:
//! the operation table and schemas of `klaviyo-catalog`, the WIT interfaces, and the component's
//! typed export glue. `--check` writes nothing and fails when a committed file is stale.

mod codegen;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(usage());
    };
    if cmd != "codegen" {
        return Err(usage());
    }
    let root = codegen::project_root();
    let mut spec = root.join("../shared/klaviyo-openapi/stable.json");
    let mut promised = root.join("../shared/reference/promised-actions.tsv");
    let mut check = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" => check = true,
            "--spec" => spec = PathBuf::from(it.next().ok_or("--spec needs a path")?),
            "--promised" => promised = PathBuf::from(it.next().ok_or("--promised needs a path")?),
            other => return Err(format!("unknown argument `{other}`\n{}", usage())),
        }
    }
    let files = codegen::generate(&spec, &promised)?;
    if check {
        let stale = codegen::stale_files(&root, &files);
        if stale.is_empty() {
            println!("generated files are up to date ({} files)", files.len());
            Ok(())
        } else {
            Err(format!(
                "generated files are stale: {}\nrun `cargo xtask codegen` and commit the result",
                stale.join(", ")
            ))
        }
    } else {
        codegen::write_files(&root, &files)?;
        println!("wrote {} generated files", files.len());
        Ok(())
    }
}

fn usage() -> String {
    "usage: cargo xtask codegen [--check] [--spec PATH] [--promised PATH]".into()
}
