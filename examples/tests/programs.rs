//! The example programs, run in pairs as the README tells a user to run them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(program: &str) -> Server {
    let mut child = Command::new(program)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the server's first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, addr }
}

fn client(program: &str, server: &Server, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(program)
        .arg("--addr")
        .arg(&server.addr)
        .args(args)
        .output()
        .expect("run the client");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn echo_client_calls_echo_and_add() {
    let server = serve(env!("CARGO_BIN_EXE_echo-server"));
    let (ok, out, err) = client(env!("CARGO_BIN_EXE_echo-client"), &server, &["hello"]);
    assert!(ok, "{err}");
    assert_eq!(out, "Echo: hello, welcome!\nAdd: 2 + 3 = 5\n");

    let (ok, _, err) = client(
        env!("CARGO_BIN_EXE_echo-client"),
        &server,
        &["x", "--a", "2147483647", "--b", "1"],
    );
    assert!(!ok);
    assert!(err.contains("OUT_OF_RANGE"), "{err}");
}

#[test]
fn pi_client_uses_the_unary_and_the_streaming_method() {
    let server = serve(env!("CARGO_BIN_EXE_pi-server"));
    let (ok, out, err) = client(env!("CARGO_BIN_EXE_pi-client"), &server, &["1", "1000"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Calc(1) = 4\nCalcStream(1) = 4\nCalcStream(1000) = 3.140592653839794\n"
    );

    let (ok, _, err) = client(env!("CARGO_BIN_EXE_pi-client"), &server, &["0"]);
    assert!(!ok);
    assert!(
        err.contains("INVALID_ARGUMENT: n must be positive, got 0"),
        "{err}"
    );
}

#[test]
fn numbers_client_drives_all_four_call_shapes() {
    let server = serve(env!("CARGO_BIN_EXE_numbers-server"));
    let (ok, out, err) = client(
        env!("CARGO_BIN_EXE_numbers-client"),
        &server,
        &["3", "1", "4", "1", "5"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Square(3) = 9\nFibonacci(5) = 0 1 1 2 3\nSummarize = count 5 sum 14 mean 2.8\nRunningMax = 3 3 4 4 5\n"
    );
}

#[test]
fn a_client_without_a_server_says_so() {
    let output = Command::new(env!("CARGO_BIN_EXE_echo-client"))
        .args(["--addr", "127.0.0.1:1"])
        .output()
        .expect("run the client");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect to 127.0.0.1:1"));
}
