//! What a build script that depends on the library compiles.

use std::process::Command;

/// With `default-features = false` (as the README's `[build-dependencies]` line has it), the
/// library's normal and build dependencies hold no argument parser: the CLI's crates stay off
/// the critical path of a user's clean build.
#[test]
fn the_library_without_the_cli_compiles_no_argument_parser() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "rust-rpc-compiler",
            "--no-default-features",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The tree is real: it holds what the library does need.
    assert!(tree.lines().any(|l| l.starts_with("protox ")), "{tree}");
    let parsers: Vec<&str> = tree
        .lines()
        .filter(|l| l.starts_with("clap") || l.starts_with("argh ") || l.starts_with("getopts "))
        .collect();
    assert!(
        parsers.is_empty(),
        "argument parsers in the tree: {parsers:?}"
    );
}
