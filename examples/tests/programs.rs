//! The example programs, run in pairs as the README tells a user to run them. Every wait on a
//! child process is bounded, so a broken example fails its test instead of hanging the run.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one example program may take to start or to finish.
const LIMIT: Duration = Duration::from_secs(30);

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    transport: &'static str,
}

/// Every example runs over both transports.
const TRANSPORTS: [&str; 2] = ["tcp", "grpc"];

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(program: &str, transport: &'static str) -> Server {
    serve_with(program, transport, &[])
}

fn serve_with(program: &str, transport: &'static str, args: &[&str]) -> Server {
    let mut child = Command::new(program)
        .args(["--addr", "127.0.0.1:0", "--transport", transport])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let stdout = child.stdout.take().expect("piped stdout");
    // Read the first line on a thread, so a server that never prints cannot block the test.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(LIMIT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} printed nothing within {LIMIT:?}");
        }
    };
    // "listening on ADDR (TRANSPORT)"
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(line.contains(transport), "{line:?}");
    Server {
        child,
        addr,
        transport,
    }
}

/// Runs `command` to completion within [`LIMIT`], killing it and failing the test if it
/// takes longer. Returns whether it succeeded, its stdout and its stderr.
fn run(command: &mut Command) -> (bool, String, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the program");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Drain both pipes on threads so a chatty program cannot stall on a full pipe.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the program") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = out.join().expect("stdout reader");
    let err = err.join().expect("stderr reader");
    (status.success(), out, err)
}

fn client(program: &str, server: &Server, args: &[&str]) -> (bool, String, String) {
    run(Command::new(program)
        .args(["--addr", &server.addr, "--transport", server.transport])
        .args(args))
}

#[test]
fn echo_client_calls_echo_and_add() {
    for transport in TRANSPORTS {
        let server = serve(env!("CARGO_BIN_EXE_echo-server"), transport);
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
}

#[test]
fn pi_client_uses_the_unary_and_the_streaming_method() {
    for transport in TRANSPORTS {
        let server = serve(env!("CARGO_BIN_EXE_pi-server"), transport);
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
}

#[test]
fn numbers_client_drives_all_four_call_shapes() {
    for transport in TRANSPORTS {
        let server = serve(env!("CARGO_BIN_EXE_numbers-server"), transport);
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
}

#[test]
fn a_client_without_a_server_says_so() {
    let (ok, _, err) =
        run(Command::new(env!("CARGO_BIN_EXE_echo-client")).args(["--addr", "127.0.0.1:1"]));
    assert!(!ok);
    assert!(err.contains("cannot connect to 127.0.0.1:1"), "{err}");
}

#[test]
fn kv_client_makes_every_kind_of_call_and_the_trait_form_runs_either_way() {
    for transport in TRANSPORTS {
        let server = serve(env!("CARGO_BIN_EXE_kv-server"), transport);
        let (ok, out, err) = client(env!("CARGO_BIN_EXE_kv-client"), &server, &[]);
        assert!(ok, "{err}");
        assert_eq!(
        out,
        "Put a/1: version 1\nGet a/1: one\nPutMany: 3 written\nWatch: a/2 = two\nWatch: a/3 = three\nTrait: c/1 = dyn (version 1)\n"
    );
        // The same trait code on an in-process implementation chosen at run time.
        let (ok, out, err) = client(env!("CARGO_BIN_EXE_kv-client"), &server, &["--local"]);
        assert!(ok, "{err}");
        assert_eq!(out, "Trait: c/1 = dyn (version 1)\n");
    }
}

#[test]
fn a_bearer_token_is_added_by_the_client_and_checked_by_the_server() {
    for transport in TRANSPORTS {
        let server = serve_with(
            env!("CARGO_BIN_EXE_echo-server"),
            transport,
            &["--token", "s3cret"],
        );
        let echo = env!("CARGO_BIN_EXE_echo-client");
        let (ok, out, err) = client(echo, &server, &["--token", "s3cret", "hi"]);
        assert!(ok, "{err}");
        assert_eq!(out, "Echo: hi, welcome!\nAdd: 2 + 3 = 5\n");
        let (ok, _, err) = client(echo, &server, &["hi"]);
        assert!(!ok);
        assert!(err.contains("UNAUTHENTICATED: no bearer token"), "{err}");
        let (ok, _, err) = client(echo, &server, &["--token", "s3cres", "hi"]);
        assert!(!ok);
        assert!(err.contains("UNAUTHENTICATED: wrong bearer token"), "{err}");
    }
}
