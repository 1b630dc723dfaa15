//! The three ways in give byte-identical output: the protoc plugin (run by a real protoc), the
//! CLI and the build-script builder, on every golden case, and all equal the goldens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file in `dir`, by name.
fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name")
                .to_owned();
            (
                name,
                std::fs::read_to_string(&path).expect("read generated file"),
            )
        })
        .collect()
}

/// The protocs to test with: the vendored one always, Debian's too where it is installed.
fn protocs() -> Vec<(PathBuf, Vec<PathBuf>)> {
    let vendored = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    let include = protoc_bin_vendored::include_path().expect("vendored protoc includes");
    let mut out = vec![(vendored, vec![include])];
    let system = PathBuf::from("/usr/bin/protoc");
    if system.exists() {
        out.push((system, vec![PathBuf::from("/usr/include")]));
    }
    out
}

/// Runs protoc with our plugin on `files` (relative to `include`), returning the output.
fn via_plugin(
    protoc: &Path,
    extra_includes: &[PathBuf],
    include: &Path,
    files: &[String],
    options: &str,
) -> BTreeMap<String, String> {
    let out = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(protoc);
    cmd.arg(format!(
        "--plugin=protoc-gen-rust-rpc={}",
        env!("CARGO_BIN_EXE_protoc-gen-rust-rpc")
    ))
    .arg(format!("--rust-rpc_out={}", out.path().display()))
    .arg(format!("-I{}", include.display()));
    for dir in extra_includes {
        cmd.arg(format!("-I{}", dir.display()));
    }
    if !options.is_empty() {
        cmd.arg(format!("--rust-rpc_opt={options}"));
    }
    let output = cmd.args(files).output().expect("run protoc");
    assert!(
        output.status.success(),
        "protoc failed on {files:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    read_dir(out.path())
}

fn via_cli(include: &Path, files: &[String], flags: &[String]) -> BTreeMap<String, String> {
    let out = tempfile::tempdir().expect("temp dir");
    let mut args: Vec<String> = vec![
        "rust-rpc-compiler".into(),
        "-I".into(),
        include.display().to_string(),
        "-o".into(),
        out.path().display().to_string(),
    ];
    args.extend(flags.iter().cloned());
    args.extend(files.iter().map(|f| include.join(f).display().to_string()));
    rust_rpc_compiler::cli::run(args)
        .unwrap_or_else(|e| panic!("CLI failed on {files:?}: {}", e.render_plain()));
    read_dir(out.path())
}

fn via_builder(
    include: &Path,
    files: &[String],
    configure: impl FnOnce(rust_rpc_compiler::Builder) -> rust_rpc_compiler::Builder,
) -> BTreeMap<String, String> {
    let out = tempfile::tempdir().expect("temp dir");
    let paths: Vec<PathBuf> = files.iter().map(|f| include.join(f)).collect();
    configure(rust_rpc_compiler::Builder::new().out_dir(out.path()))
        .compile(&paths, &[include])
        .unwrap_or_else(|e| panic!("builder failed on {files:?}: {}", e.render_plain()));
    read_dir(out.path())
}

/// The golden cases: `(include dir, files relative to it, golden file or dir)`.
fn cases() -> Vec<(PathBuf, Vec<String>, PathBuf, String)> {
    let protos = repo().join("testdata/protos");
    let golden = repo().join("testdata/golden");
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&protos)
        .expect("protos")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_owned();
        if entry.is_dir() {
            let mut files = Vec::new();
            collect(&entry, &entry, &mut files);
            files.sort();
            out.push((entry.clone(), files, golden.join(&name), name));
        } else {
            let first_line = std::fs::read_to_string(&entry)
                .expect("read case")
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let options = first_line
                .strip_prefix("// rust-rpc-options:")
                .map(str::trim)
                .unwrap_or_default()
                .replace(' ', "");
            out.push((
                protos.clone(),
                vec![format!("{name}.proto")],
                golden.join(format!("{name}.rs")),
                options,
            ));
        }
    }
    out
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "proto") {
            files.push(
                path.strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string(),
            );
        }
    }
}

/// CLI flags equivalent to a case's plugin options.
fn flags(options: &str) -> Vec<String> {
    let mut flags: Vec<String> = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("map_type", "btree")) => flags.extend(["--map-type".into(), "btree".into()]),
            Some(("unknown_fields", "discard")) => {
                flags.extend(["--unknown-fields".into(), "discard".into()])
            }
            Some(("services", "false")) => flags.push("--no-services".into()),
            Some(("server", "false")) => flags.push("--no-server".into()),
            Some(("client", "false")) => flags.push("--no-client".into()),
            Some(("bytes", path)) => flags.extend(["--bytes".into(), path.to_owned()]),
            Some(("json_feature", feature)) => {
                flags.extend(["--json-feature".into(), feature.to_owned()])
            }
            None if option == "json" => flags.push("--json".into()),
            Some(("text_feature", feature)) => {
                flags.extend(["--text-feature".into(), feature.to_owned()])
            }
            None if option == "text" => flags.push("--text".into()),
            _ => panic!("no CLI flag known for {option}"),
        }
    }
    flags
}

#[test]
fn plugin_cli_and_builder_agree_with_the_goldens_on_every_case() {
    let cases = cases();
    assert!(cases.len() >= 15);
    for (include, files, golden, options) in &cases {
        let options = if golden.is_dir() {
            String::new()
        } else {
            options.clone()
        };
        let cli = via_cli(include, files, &flags(&options));
        let builder = via_builder(include, files, |b| {
            options
                .split(',')
                .filter(|o| !o.is_empty())
                .fold(b, |b, o| {
                    let (k, v) = o.split_once('=').map_or((o, None), |(k, v)| (k, Some(v)));
                    b.option(k, v)
                })
        });
        assert_eq!(cli, builder, "CLI and builder differ on {files:?}");
        for (protoc, extra) in protocs() {
            // Debian's protoc (3.21) ships a `descriptor.proto` without editions and no
            // `compiler/plugin.proto`, which this case imports.
            let system = protoc.starts_with("/usr");
            if system && files.iter().any(|f| f == "descriptor_fields.proto") {
                continue;
            }
            let plugin = via_plugin(&protoc, &extra, include, files, &options);
            assert_eq!(
                plugin,
                cli,
                "plugin via {} and CLI differ on {files:?}",
                protoc.display()
            );
        }
        if golden.is_dir() {
            assert_eq!(cli, read_dir(golden), "{files:?} differs from its goldens");
        } else {
            let package_files: Vec<&String> = cli
                .iter()
                .filter(|(n, _)| *n != "_include.rs")
                .map(|(_, c)| c)
                .collect();
            let expected = std::fs::read_to_string(golden).expect("golden");
            assert_eq!(
                package_files,
                [&expected],
                "{files:?} differs from {}",
                golden.display()
            );
        }
    }
}

#[test]
fn options_map_the_same_through_every_front_end() {
    let include = repo().join("testdata/protos");
    let files = vec!["maps.proto".to_owned()];
    let plugin_options = "map_type=btree,unknown_fields=discard,include_file=mod.rs,client=false,type_attribute=.maps.Value=#[derive(Eq, Hash)],field_attribute=.maps.Maps.labels=#[doc(alias = \"tags\")]";
    let cli = via_cli(
        &include,
        &files,
        &[
            "--map-type",
            "btree",
            "--unknown-fields",
            "discard",
            "--include-file",
            "mod.rs",
            "--no-client",
            "--type-attribute",
            ".maps.Value=#[derive(Eq, Hash)]",
            "--field-attribute",
            ".maps.Maps.labels=#[doc(alias = \"tags\")]",
        ]
        .map(String::from),
    );
    let builder = via_builder(&include, &files, |b| {
        b.btree_maps()
            .unknown_fields(false)
            .include_file("mod.rs")
            .build_client(false)
            .type_attribute(".maps.Value", "#[derive(Eq, Hash)]")
            .field_attribute(".maps.Maps.labels", "#[doc(alias = \"tags\")]")
    });
    assert_eq!(cli, builder);
    for (protoc, extra) in protocs() {
        assert_eq!(
            via_plugin(&protoc, &extra, &include, &files, plugin_options),
            cli
        );
    }
    let maps = &cli["maps.rs"];
    assert!(maps.contains("BTreeMap<"));
    assert!(!maps.contains("unknown_fields"));
    assert!(maps.contains("#[derive(Eq, Hash)]\npub struct Value"));
    assert!(maps.contains("#[doc(alias = \"tags\")]\n    pub labels"));
    assert!(cli.contains_key("mod.rs"));
}

#[test]
fn plugin_errors_go_into_the_response() {
    use prost::Message;
    use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};
    let request = CodeGeneratorRequest {
        parameter: Some("map_type=btree,bogus=1".into()),
        ..Default::default()
    };
    let response = CodeGeneratorResponse::decode(
        rust_rpc_compiler::plugin::run(&request.encode_to_vec()).as_slice(),
    )
    .unwrap();
    assert!(
        response.error().contains("unknown option 'bogus'"),
        "{}",
        response.error()
    );
    // FEATURE_PROTO3_OPTIONAL | FEATURE_SUPPORTS_EDITIONS; the edition range that goes with
    // the second is what protoc checks when it runs the plugin on `protos_protoc/editions.proto`.
    assert_eq!(
        response.supported_features(),
        3,
        "proto3 optional and editions are supported"
    );

    let response =
        CodeGeneratorResponse::decode(rust_rpc_compiler::plugin::run(&[0xff, 0xff]).as_slice())
            .unwrap();
    assert!(response
        .error()
        .contains("cannot decode the CodeGeneratorRequest"));

    // Through protoc, an error in the response fails the run with the message.
    let (protoc, _) = protocs().remove(0);
    let include = repo().join("testdata/protos");
    let out = tempfile::tempdir().expect("temp dir");
    let output = Command::new(protoc)
        .arg(format!(
            "--plugin=protoc-gen-rust-rpc={}",
            env!("CARGO_BIN_EXE_protoc-gen-rust-rpc")
        ))
        .arg(format!("--rust-rpc_out={}", out.path().display()))
        .arg("--rust-rpc_opt=map_type=list")
        .arg(format!("-I{}", include.display()))
        .arg("scalars.proto")
        .output()
        .expect("run protoc");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("option 'map_type' takes hash or btree, not 'list'"));
}

#[test]
fn run_by_hand_it_explains_itself() {
    let output = Command::new(env!("CARGO_BIN_EXE_protoc-gen-rust-rpc"))
        .arg("--help")
        .output()
        .expect("run the plugin");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(help.contains("--rust-rpc_out"));
    for (name, _) in rust_rpc_compiler::OPTIONS {
        assert!(help.contains(name), "--help lacks {name}");
    }
}

#[test]
fn descriptor_sets_round_trip_through_the_cli() {
    let include = repo().join("testdata/protos");
    let work = tempfile::tempdir().expect("temp dir");
    let set = work.path().join("set.bin");
    // Made by protoc, read by the CLI.
    let (protoc, extra) = protocs().remove(0);
    let status = Command::new(&protoc)
        .arg(format!("-I{}", include.display()))
        .arg(format!("-I{}", extra[0].display()))
        .arg("--include_imports")
        .arg("--include_source_info")
        .arg(format!("--descriptor_set_out={}", set.display()))
        .arg("wkt.proto")
        .status()
        .expect("run protoc");
    assert!(status.success());
    let from_set = work.path().join("from_set");
    rust_rpc_compiler::cli::run([
        "rust-rpc-compiler",
        "--descriptor-set-in",
        set.to_str().unwrap(),
        "-o",
        from_set.to_str().unwrap(),
        "wkt.proto",
    ])
    .unwrap_or_else(|e| panic!("{}", e.render_plain()));
    assert_eq!(
        read_dir(&from_set),
        via_cli(&include, &["wkt.proto".to_owned()], &[])
    );

    // Written by the CLI, read back by the CLI.
    let written = work.path().join("written.bin");
    let direct = work.path().join("direct");
    rust_rpc_compiler::cli::run([
        "rust-rpc-compiler",
        "-I",
        include.to_str().unwrap(),
        "--descriptor-set-out",
        written.to_str().unwrap(),
        "-o",
        direct.to_str().unwrap(),
        include.join("enums.proto").to_str().unwrap(),
    ])
    .unwrap_or_else(|e| panic!("{}", e.render_plain()));
    let again = work.path().join("again");
    rust_rpc_compiler::cli::run([
        "rust-rpc-compiler",
        "--descriptor-set-in",
        written.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ])
    .unwrap_or_else(|e| panic!("{}", e.render_plain()));
    assert_eq!(read_dir(&direct), read_dir(&again));
}

/// The cases that protoc reads and protox rejects: the plugin, the CLI with `--protoc` and the
/// builder with `.protoc(..)` all give the golden.
#[test]
fn protoc_read_cases_agree_through_every_front_end() {
    let include = repo().join("testdata/protos_protoc");
    let golden = repo().join("testdata/golden");
    let vendored = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    let protoc_flag = vec!["--protoc".to_owned(), vendored.display().to_string()];
    let mut names: Vec<String> = std::fs::read_dir(&include)
        .expect("protoc-only cases")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for name in names {
        let files = vec![name.clone()];
        let cli = via_cli(&include, &files, &protoc_flag);
        let builder = via_builder(&include, &files, |b| b.protoc(&vendored));
        assert_eq!(cli, builder, "CLI and builder differ on {name}");
        for (protoc, extra) in protocs() {
            // Debian's protoc (3.21) predates editions.
            if protoc.starts_with("/usr") && name.starts_with("editions") {
                continue;
            }
            let plugin = via_plugin(&protoc, &extra, &include, &files, "");
            assert_eq!(
                plugin,
                cli,
                "plugin via {} and CLI differ on {name}",
                protoc.display()
            );
        }
        let stem = name.trim_end_matches(".proto");
        let expected = std::fs::read_to_string(golden.join(format!("{stem}.rs"))).expect("golden");
        let generated: Vec<&String> = cli
            .iter()
            .filter(|(n, _)| *n != "_include.rs")
            .map(|(_, c)| c)
            .collect();
        assert_eq!(generated, [&expected], "{name} differs from its golden");
    }
}
