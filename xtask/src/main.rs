//! `cargo xtask codegen [--check] [--spec PATH] [--promised PATH]`
//!
//! Reads Klaviyo's OpenAPI spec and the promised-actions list and writes the generated files:
//! the operation table and schemas of `klaviyo-catalog`, the WIT interfaces, and the component's
//! typed export glue. `--check` writes nothing and fails when a committed file is stale.
//!
//! `cargo xtask spec-diff OLD.json NEW.json [--promised PATH]` reports what a new revision of
//! the spec changes (operations, parameters, bodies, access, rate limits, scopes, promised
//! actions), before `cargo xtask codegen --spec NEW.json` regenerates from it.

mod codegen;

use std::path::{Path, PathBuf};
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
    let root = codegen::project_root();
    let mut spec = root.join("../shared/klaviyo-openapi/stable.json");
    let mut promised = root.join("../shared/reference/promised-actions.tsv");
    let mut check = false;
    let mut positional = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" if cmd == "codegen" => check = true,
            "--spec" if cmd == "codegen" => {
                spec = PathBuf::from(it.next().ok_or("--spec needs a path")?)
            }
            "--promised" => promised = PathBuf::from(it.next().ok_or("--promised needs a path")?),
            other if cmd == "spec-diff" && !other.starts_with("--") => {
                positional.push(PathBuf::from(other))
            }
            other => return Err(format!("unknown argument `{other}`\n{}", usage())),
        }
    }
    match cmd.as_str() {
        "codegen" => {}
        "spec-diff" => return spec_diff(&positional, &promised),
        _ => return Err(usage()),
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

fn spec_diff(paths: &[PathBuf], promised: &Path) -> Result<(), String> {
    let [old, new] = paths else {
        return Err(format!(
            "spec-diff needs two specs, OLD and NEW\n{}",
            usage()
        ));
    };
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    // The promised actions are optional here: without them the report says nothing of them.
    let promised = match std::fs::read_to_string(promised) {
        Ok(text) => codegen::parse_promised(&text)?,
        Err(_) => Vec::new(),
    };
    print!(
        "{}",
        codegen::diff::report(&read(old)?, &read(new)?, &promised)?
    );
    Ok(())
}

fn usage() -> String {
    "usage: cargo xtask codegen [--check] [--spec PATH] [--promised PATH]\n       \
     cargo xtask spec-diff OLD.json NEW.json [--promised PATH]"
        .into()
}

/// The golden table of the sample spec, compiled against the catalog's real model types: the
/// generated Rust is not only byte-stable (the golden test) but valid.
#[cfg(test)]
use codegen::model;
#[cfg(test)]
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "../tests/sample/golden/operations.rs"]
mod golden_operations;

#[cfg(test)]
mod tests {
    use super::golden_operations as g;

    #[test]
    fn the_golden_table_compiles_and_holds_the_sample() {
        assert_eq!(g::REVISION, "2099-01-15");
        assert_eq!(g::OPERATIONS.len(), 10);
        assert_eq!(
            g::COMPOSITES[0].choices,
            [
                ("gears", "add_gears_to_widget"),
                ("tags", "add_tags_to_widget")
            ]
        );
        assert!(
            g::NAMES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted for binary search"
        );
        assert_eq!(g::SHADOWED_ALIASES, [("get_widget", "get_widgets")]);
    }
}
