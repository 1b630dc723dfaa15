//! Golden files: generated code, rendered diagnostics and the runtime's well-known types are
//! compared with what is committed. `UPDATE_GOLDEN=1` rewrites them; read every diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rust_rpc_compiler::{compile_protos_with, Config};

const BLESS: &str = "run: UPDATE_GOLDEN=1 cargo test -p rust-rpc-compiler --test golden";

/// The golden cases live in `testdata/`; this test sits in the compiler crate so that it runs
/// even when a committed golden no longer compiles (the `testdata` crate includes them all).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `actual` with the file at `path`, or writes it under `UPDATE_GOLDEN=1`.
/// Returns a failure report instead of panicking, so one run lists every mismatch.
fn check(path: &Path, actual: &str) -> Option<String> {
    let expected = std::fs::read_to_string(path).ok();
    if expected.as_deref() == Some(actual) {
        return None;
    }
    if updating() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create golden directory");
        }
        std::fs::write(path, actual).expect("write golden file");
        return None;
    }
    let expected = expected.unwrap_or_default();
    let diff = similar::TextDiff::from_lines(expected.as_str(), actual)
        .unified_diff()
        .context_radius(3)
        .header(&path.display().to_string(), "generated")
        .to_string();
    Some(format!("{} differs:\n{diff}\n{BLESS}\n", path.display()))
}

/// Reads `// rust-rpc-options: k=v, ...` from the first line of a case.
fn case_config(proto: &Path) -> Config {
    let mut config = Config::default();
    let text = std::fs::read_to_string(proto).expect("read case");
    if let Some(options) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// rust-rpc-options:"))
    {
        for option in options.split(',').map(str::trim) {
            let (name, value) = option
                .split_once('=')
                .map_or((option, None), |(n, v)| (n, Some(v)));
            config
                .set_option(name, value)
                .unwrap_or_else(|e| panic!("{}: {e}", proto.display()));
        }
    }
    config
}

fn protos_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(protos_under(&path));
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every file names a case; lists golden files that no longer have one.
fn orphans(dir: &Path, expected: &BTreeSet<PathBuf>) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(orphans(&path, expected));
        } else if !expected.contains(&path) {
            if updating() {
                std::fs::remove_file(&path).expect("remove orphan golden");
            } else {
                out.push(format!(
                    "{} has no case any more; {BLESS} removes it",
                    path.display()
                ));
            }
        }
    }
    out
}

#[test]
fn generated_code_matches_goldens() {
    let protos = root().join("protos");
    let golden = root().join("golden");
    let mut failures = Vec::new();
    let mut expected = BTreeSet::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&protos)
        .expect("read protos")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "golden cases went missing");
    for case in cases {
        let name = case
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 case name")
            .to_owned();
        if case.is_dir() {
            // A directory case: every file in it, every output file compared.
            let files = protos_under(&case);
            let output = compile_protos_with(&files, &[&case], &Config::default())
                .unwrap_or_else(|e| panic!("{name}: {}", e.render_plain()));
            for file in &output.files {
                let path = golden.join(&name).join(&file.name);
                failures.extend(check(&path, &file.content));
                expected.insert(path);
            }
        } else {
            let output = compile_protos_with(&[&case], &[&protos], &case_config(&case))
                .unwrap_or_else(|e| panic!("{name}: {}", e.render_plain()));
            let packages: Vec<_> = output
                .files
                .iter()
                .filter(|f| f.name != "_include.rs")
                .collect();
            assert_eq!(
                packages.len(),
                1,
                "{name}: a single-file case makes one package file"
            );
            let path = golden.join(format!("{name}.rs"));
            failures.extend(check(&path, &packages[0].content));
            expected.insert(path);
        }
    }
    // The cases only protoc reads have their goldens here too.
    for case in protos_under(&root().join("protos_protoc")) {
        let name = case
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name");
        expected.insert(golden.join(format!("{name}.rs")));
    }
    failures.extend(orphans(&golden, &expected));
    report(failures);
}

/// Cases that protoc accepts and protox rejects, generated through `Config::protoc` with the
/// vendored protoc (`protoc-bin-vendored`): the same goldens, compiled by the testdata crate.
#[test]
fn protoc_only_cases_match_goldens() {
    let protos = root().join("protos_protoc");
    let golden = root().join("golden");
    let mut config = Config::default();
    config.protoc = Some(protoc_bin_vendored::protoc_bin_path().expect("vendored protoc"));
    let cases = protos_under(&protos);
    assert!(!cases.is_empty(), "protoc-only cases went missing");
    let mut failures = Vec::new();
    for case in cases {
        let name = case
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name");
        // protox rejects it: that is why it is here.
        assert!(
            compile_protos_with(&[&case], &[&protos], &Config::default()).is_err(),
            "{name}: protox accepts it now; move it to testdata/protos"
        );
        let output = compile_protos_with(&[&case], &[&protos], &config)
            .unwrap_or_else(|e| panic!("{name}: {}", e.render_plain()));
        let packages: Vec<_> = output
            .files
            .iter()
            .filter(|f| f.name != "_include.rs")
            .collect();
        assert_eq!(packages.len(), 1, "{name}: one package file");
        failures.extend(check(
            &golden.join(format!("{name}.rs")),
            &packages[0].content,
        ));
    }
    report(failures);
}

#[test]
fn generation_is_deterministic() {
    let protos = root().join("protos");
    let case = protos.join("maps.proto");
    let first = compile_protos_with(&[&case], &[&protos], &Config::default()).expect("generate");
    let second = compile_protos_with(&[&case], &[&protos], &Config::default()).expect("generate");
    assert_eq!(first.files, second.files);
}

#[test]
fn diagnostics_match_goldens() {
    let dir = root().join("errors");
    let mut failures = Vec::new();
    let cases: Vec<PathBuf> = protos_under(&dir);
    assert!(cases.len() >= 5, "error cases went missing");
    for case in cases {
        // With PROTOC set, an editions file goes to that protoc instead of failing.
        let editions = case.to_string_lossy().contains("editions");
        if editions && std::env::var_os("PROTOC").is_some() {
            eprintln!("skipped {} (PROTOC is set)", case.display());
            continue;
        }
        let result = compile_protos_with(&[&case], &[&dir], &Config::default());
        let rendered = match result {
            Ok(_) => panic!("{}: expected an error", case.display()),
            Err(e) => e.render_plain(),
        };
        failures.extend(check(&case.with_extension("stderr"), &rendered));
    }
    report(failures);
}

#[test]
fn group_extensions_are_generated_without_warnings() {
    let protos = root().join("protos");
    let output = compile_protos_with(
        &[protos.join("extensions.proto")],
        &[&protos],
        &Config::default(),
    )
    .expect("generate");
    assert!(output.warnings.is_empty(), "{:?}", output.warnings);
    let file = output.file("extensions.rs").expect("one package file");
    assert!(
        file.content.contains("GroupCodec<Legacy, 106>"),
        "{}",
        file.content
    );
}

/// The runtime's well-known types are generated by this compiler; this fails when they are stale.
#[test]
fn runtime_well_known_types_are_current() {
    let files = [
        "google/protobuf/any.proto",
        "google/protobuf/api.proto",
        "google/protobuf/duration.proto",
        "google/protobuf/empty.proto",
        "google/protobuf/field_mask.proto",
        "google/protobuf/source_context.proto",
        "google/protobuf/struct.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/type.proto",
        "google/protobuf/wrappers.proto",
    ];
    let mut config = Config::default();
    config.extern_paths.clear();
    // The runtime's `json` feature gates their JSON mapping; the types with a form of their
    // own get it by hand in `runtime/src/json/wkt.rs`.
    config.json = true;
    config.json_feature = Some("json".to_owned());
    config.text = true;
    config.text_feature = Some("text".to_owned());
    let no_includes: [&Path; 0] = [];
    let output =
        compile_protos_with(&files, &no_includes, &config).expect("generate well-known types");
    let file = output.file("google.protobuf.rs").expect("one package file");
    let path = root().join("../runtime/src/wkt/google.protobuf.rs");
    report(check(&path, &file.content).into_iter().collect());
}

/// The descriptor types in the runtime (`google/protobuf/descriptor.proto`
/// and `compiler/plugin.proto`) are generated by this compiler from the files the vendored
/// protoc ships (`protoc-bin-vendored`), read by that protoc: protox cannot parse the editions
/// syntax of today's `descriptor.proto` (extension declarations). This fails when they are stale.
#[test]
fn runtime_descriptor_types_are_current() {
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    let include = protoc_bin_vendored::include_path().expect("vendored protoc's include files");
    let mut config = Config::default();
    config.extern_paths.clear();
    config.protoc = Some(protoc);
    let output = compile_protos_with(
        &[
            "google/protobuf/descriptor.proto",
            "google/protobuf/compiler/plugin.proto",
        ],
        &[&include],
        &config,
    )
    .expect("generate the descriptor types");
    let mut failures = Vec::new();
    for (name, target) in [
        ("google.protobuf.rs", "descriptor.rs"),
        ("google.protobuf.compiler.rs", "compiler.rs"),
    ] {
        let file = output.file(name).expect("a package file");
        let path = root().join("../runtime/src/wkt").join(target);
        failures.extend(check(&path, &file.content));
    }
    report(failures);
}

/// The TCP transport's envelope is generated by this compiler too; this fails when it is stale.
#[test]
fn runtime_wire_envelope_is_current() {
    let proto_dir = root().join("../runtime/proto");
    let output = compile_protos_with(
        &[proto_dir.join("wire.proto")],
        &[&proto_dir],
        &Config::default(),
    )
    .expect("generate the envelope");
    let file = output.file("rust_rpc.wire.rs").expect("one package file");
    let path = root().join("../runtime/src/tcp/rust_rpc.wire.rs");
    report(check(&path, &file.content).into_iter().collect());
}

/// The gRPC health service in the runtime is generated by this compiler from Debian's
/// `grpc-proto` files (`interop/fetch-protos.sh` fetches them; `.ci/test` runs it first); this
/// fails when it is stale. Without the files (outside CI) it says so and checks nothing.
#[test]
fn runtime_grpc_health_is_current() {
    let proto_root = match std::env::var_os("RUST_RPC_GRPC_PROTOS") {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/grpc-proto/usr/share/grpc-proto"),
    };
    let proto = proto_root.join("grpc/health/v1/health.proto");
    if !proto.is_file() {
        eprintln!(
            "skipped: no {} (run interop/fetch-protos.sh)",
            proto.display()
        );
        return;
    }
    let output = compile_protos_with(&[proto], &[&proto_root], &Config::default())
        .expect("generate the health service");
    let file = output.file("grpc.health.v1.rs").expect("one package file");
    let path = root().join("../runtime/src/grpc/health/grpc.health.v1.rs");
    report(check(&path, &file.content).into_iter().collect());
}

/// The etcd v3 API in the runtime (`etcd` feature) is generated by this compiler from the
/// `.proto` files of Debian's etcd and gogo packages (`testdata/etcd/fetch.sh` fetches them;
/// `.ci/test` runs it first); this fails when it is stale. Without the files (outside CI) it
/// says so and checks nothing.
#[test]
fn runtime_etcd_api_is_current() {
    let cache = match std::env::var_os("RUST_RPC_ETCD_CACHE") {
        Some(root) => PathBuf::from(root),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/rust-rpc-etcd")
        }
    };
    let src = cache.join("usr/share/gocode/src");
    let etcd = src.join("go.etcd.io");
    let files = [
        "etcd/etcdserver/etcdserverpb/rpc.proto",
        "etcd/mvcc/mvccpb/kv.proto",
        "etcd/auth/authpb/auth.proto",
    ]
    .map(|f| etcd.join(f));
    if !src
        .join("github.com/gogo/googleapis/google/api/http.proto")
        .is_file()
        || files.iter().any(|f| !f.is_file())
    {
        eprintln!(
            "skipped: no etcd .proto files under {} (run testdata/etcd/fetch.sh)",
            src.display()
        );
        return;
    }
    let includes = [
        etcd.clone(),
        src.join("github.com/gogo/protobuf"),
        src.join("github.com/gogo/googleapis"),
    ];
    let includes: Vec<&Path> = includes.iter().map(PathBuf::as_path).collect();
    let output =
        compile_protos_with(&files, &includes, &Config::default()).expect("generate the etcd API");
    let mut failures = Vec::new();
    for package in ["etcdserverpb", "mvccpb", "authpb"] {
        let name = format!("{package}.rs");
        let file = output.file(&name).expect("one file per package");
        let path = root().join("../runtime/src/etcd").join(&name);
        failures.extend(check(&path, &file.content));
    }
    report(failures);
}
