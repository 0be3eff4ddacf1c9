//! What a run answers: the predecessor's examples, stdin, args, statuses.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_readme_hello_example_gives_exactly_the_old_output() {
    let app = spawn_app().await;
    let answer = app.python("print('Hello, from the container!')").await;
    assert_eq!(answer["output"], "Hello, from the container!\n");
    assert_eq!(answer["status"], "ok");
    assert_eq!(answer["exit_code"], 0);
    assert_eq!(answer["signal"], json!(null));
    assert_eq!(answer["stdout"], "Hello, from the container!\n");
    assert_eq!(answer["stderr"], "");
    assert_eq!(answer["truncated"], false);
    assert_eq!(answer["language"], "python");
    assert_eq!(answer["version"], "3.13");
    assert!(answer.get("error").is_none(), "{answer}");
    assert!(answer["duration_ms"].as_u64().unwrap() < 10_000);
    app.stop().await;
}

#[tokio::test]
async fn the_readme_error_example_gives_the_name_error_traceback() {
    let app = spawn_app().await;
    let answer = app.python("prit('x')").await;
    let error = answer["error"].as_str().expect("an error text");
    assert!(
        error.starts_with("Traceback (most recent call last):"),
        "{error}"
    );
    assert!(
        error.contains("NameError: name 'prit' is not defined"),
        "{error}"
    );
    assert_eq!(answer["status"], "runtime_error");
    assert_eq!(answer["exit_code"], 1);
    assert_eq!(answer["stderr"], answer["error"]);
    assert!(answer.get("output").is_none(), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn stdin_reaches_the_program_and_args_follow_the_command() {
    let app = spawn_app().await;
    let answer = app
        .run_ok(json!({
            "language": "python",
            "code": "import sys\nprint(sys.argv[1:])\nprint(sys.stdin.read().upper(), end='')",
            "stdin": "hello\nworld\n",
            "args": ["a b", "", "--flag"],
        }))
        .await;
    assert_eq!(answer["stdout"], "['a b', '', '--flag']\nHELLO\nWORLD\n");
    assert_eq!(answer["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn input_with_no_stdin_meets_end_of_file() {
    let app = spawn_app().await;
    let answer = app.python("input()").await;
    assert_eq!(answer["status"], "runtime_error");
    assert!(
        answer["stderr"].as_str().unwrap().contains("EOFError"),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_exit_code_is_reported_as_a_runtime_error() {
    let app = spawn_app().await;
    let answer = app
        .python("import sys\nprint('partial')\nsys.exit(3)")
        .await;
    assert_eq!(answer["status"], "runtime_error");
    assert_eq!(answer["exit_code"], 3);
    assert_eq!(answer["signal"], json!(null));
    assert_eq!(answer["stdout"], "partial\n");
    assert_eq!(answer["error"], "The program exited with code 3.");
    app.stop().await;
}

#[tokio::test]
async fn a_self_sigkill_is_a_signal_not_out_of_memory() {
    let app = spawn_app().await;
    let answer = app
        .python("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        .await;
    assert_eq!(answer["status"], "runtime_error");
    assert_eq!(answer["exit_code"], 137);
    assert_eq!(answer["signal"], "SIGKILL");
    assert_eq!(answer["error"], "The program was killed by SIGKILL.");
    app.stop().await;
}

#[tokio::test]
async fn an_alias_runs_the_language_and_the_answer_names_it() {
    let app = spawn_app().await;
    let answer = app
        .run_ok(json!({ "language": "py", "code": "print(2 + 2)" }))
        .await;
    assert_eq!(answer["language"], "python");
    assert_eq!(answer["stdout"], "4\n");
    app.stop().await;
}

#[tokio::test]
async fn binary_and_invalid_utf8_output_never_breaks_the_answer() {
    let app = spawn_app().await;
    let answer = app
        .python("import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe\\x00 end')\nsys.stderr.buffer.write(b'\\xc3')")
        .await;
    assert_eq!(answer["status"], "ok");
    assert_eq!(answer["stdout"], "ok \u{fffd}\u{fffd}\u{0} end");
    assert_eq!(answer["stderr"], "\u{fffd}");
    app.stop().await;
}

#[tokio::test]
async fn nul_bytes_and_unicode_in_code_are_delivered_intact() {
    let app = spawn_app().await;
    let answer = app.python("print('héllo ✓ 😀')").await;
    assert_eq!(answer["stdout"], "héllo ✓ 😀\n");
    let answer = app.python("print(1)\0").await;
    assert_eq!(answer["status"], "runtime_error");
    assert!(
        answer["stderr"].as_str().unwrap().contains("null bytes"),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn runs_are_independent_nothing_carries_over() {
    let app = spawn_app().await;
    let first = app
        .python("open('/tmp/mark', 'w').write('x')\nopen('/work/mark', 'w').write('x')\nprint('written')")
        .await;
    assert_eq!(first["stdout"], "written\n");
    let second = app
        .python("import os\nprint(os.path.exists('/tmp/mark'), os.path.exists('/work/mark'))")
        .await;
    assert_eq!(second["stdout"], "False False\n");
    app.stop().await;
}
