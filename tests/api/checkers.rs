//! Special judges: checkers and interactors in testlib's convention, each
//! in sandboxes of its own, against the real engine.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use code_runner::Config;

use crate::helpers::{TestApp, language_file, spawn_app_with_languages};

/// A server serving python and C++, changed by `change`.
async fn spawn_judging_app(change: impl FnOnce(&mut Config)) -> TestApp {
    let files = vec![
        ("python.toml".to_string(), language_file("python.toml")),
        ("cpp.toml".to_string(), language_file("available/cpp.toml")),
    ];
    spawn_app_with_languages(files, change).await
}

/// A+B with floats: the tests' answers, and a solution that prints, for
/// each, what tells one verdict from another.
const A_PLUS_B: &str = r#"a, b = map(float, input().split())
print({3.0: "3.0000001", 4.0: "5", 6.0: "100", 8.0: "eight"}[a + b])
"#;

/// The tests of [`A_PLUS_B`]: accepted, partial (off by 1), wrong answer,
/// presentation error, and a run that fails (no answer for 0 + 0).
fn a_plus_b_tests() -> Value {
    json!([
        {"name": "ok", "stdin": "1 2\n", "expected_output": "3\n"},
        {"name": "close", "stdin": "2 2\n", "expected_output": "4\n"},
        {"name": "far", "stdin": "3 3\n", "expected_output": "6\n"},
        {"name": "words", "stdin": "4 4\n", "expected_output": "8\n"},
        {"name": "crash", "stdin": "0 0\n", "expected_output": "0\n"},
    ])
}

/// A testlib-style checker in C++ (`checker input output answer`): the
/// input's sum must be the answer (else it fails: exit 3), the output a
/// number (else a presentation error), within 1e-6 (accepted), within 1
/// (half the points), or wrong.
const CHECKER_CPP: &str = r#"#include <cmath>
#include <cstdio>
int main(int argc, char **argv) {
    if (argc < 4) { std::fprintf(stderr, "FAIL usage: checker input output answer"); return 3; }
    std::FILE *in = std::fopen(argv[1], "r"), *out = std::fopen(argv[2], "r"), *ans = std::fopen(argv[3], "r");
    double a, b, want, got;
    if (!in || !out || !ans || std::fscanf(in, "%lf %lf", &a, &b) != 2 || std::fscanf(ans, "%lf", &want) != 1 || a + b != want) {
        std::fprintf(stderr, "FAIL the test's files do not agree"); return 3;
    }
    if (std::fscanf(out, "%lf", &got) != 1) { std::fprintf(stderr, "wrong output format expected a number"); return 2; }
    double error = std::fabs(got - want);
    if (error <= 1e-6) { std::fprintf(stderr, "ok the sum is %g", got); return 0; }
    if (error <= 1.0) { std::fprintf(stderr, "points 0.5 off by %g", error); return 7; }
    std::fprintf(stderr, "wrong answer expected %g, found %g", want, got); return 1;
}
"#;

/// The same checker in python.
const CHECKER_PY: &str = r#"import sys
a, b = map(float, open(sys.argv[1]).read().split())
want = float(open(sys.argv[3]).read())
if a + b != want:
    sys.stderr.write("FAIL the test's files do not agree"); sys.exit(3)
try:
    got = float(open(sys.argv[2]).read().split()[0])
except (ValueError, IndexError):
    sys.stderr.write("wrong output format expected a number"); sys.exit(2)
error = abs(got - want)
if error <= 1e-6:
    sys.stderr.write("ok the sum is %g" % got); sys.exit(0)
if error <= 1:
    sys.stderr.write("points 0.5 off by %g" % error); sys.exit(7)
sys.stderr.write("wrong answer expected %g, found %g" % (want, got)); sys.exit(1)
"#;

fn verdicts(answer: &Value) -> Vec<(&str, &str)> {
    (answer["tests"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter())
    .map(|t| {
        let name = t["name"].as_str().unwrap_or("");
        (name, t["verdict"].as_str().unwrap_or("-"))
    })
    .collect()
}

async fn a_plus_b(app: &TestApp, checker: Value) -> Value {
    app.run_ok(json!({
        "language": "python",
        "code": A_PLUS_B,
        "tests": a_plus_b_tests(),
        "checker": checker,
    }))
    .await
}

/// Each verdict of the A+B batch, its score and its checker's message.
fn assert_a_plus_b(answer: &Value) {
    let expected = [
        ("ok", "accepted"),
        ("close", "partial"),
        ("far", "wrong_answer"),
        ("words", "presentation_error"),
        ("crash", "runtime_error"),
    ];
    assert_eq!(verdicts(answer), expected, "{answer}");
    let tests = &answer["tests"];
    assert_eq!(tests[0]["checker_message"], "ok the sum is 3", "{answer}");
    assert_eq!(tests[1]["score"], 0.5, "{answer}");
    assert_eq!(
        tests[1]["checker_message"], "points 0.5 off by 1",
        "{answer}"
    );
    assert_eq!(
        tests[2]["checker_message"],
        "wrong answer expected 6, found 100"
    );
    assert_eq!(tests[0]["checker"]["status"], "ok", "{answer}");
    assert_eq!(tests[2]["checker"]["exit_code"], 1, "{answer}");
    assert!(
        tests[4].get("checker").is_none(),
        "a failed run is not checked: {answer}"
    );
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["summary"], json!({"passed": 1, "total": 5}));
}

#[tokio::test]
async fn a_cpp_checker_compiled_once_gives_every_testlib_verdict() {
    let app = spawn_judging_app(|_| {}).await;
    let answer = a_plus_b(&app, json!({"language": "cpp", "code": CHECKER_CPP})).await;
    assert_a_plus_b(&answer);
    assert_eq!(
        answer["checker_compile"]["status"], "ok",
        "compiled once: {answer}"
    );
    // A checker that crashes is the batch's checker error, never the
    // program's fault.
    let crashing = "#include <cstdlib>\nint main() { std::abort(); }\n";
    let answer = a_plus_b(&app, json!({"language": "cpp", "code": crashing})).await;
    assert_eq!(answer["status"], "checker_error", "{answer}");
    assert_eq!(answer["tests"][0]["verdict"], "checker_error", "{answer}");
    let message = answer["tests"][0]["checker_message"].as_str().unwrap();
    assert!(message.contains("killed by SIGABRT"), "{answer}");
    assert_eq!(answer["tests"][4]["verdict"], "runtime_error", "{answer}");
    // One that does not compile: the tests' runs stand, none is judged.
    let answer = a_plus_b(
        &app,
        json!({"language": "cpp", "code": "int main() { return x; }"}),
    )
    .await;
    assert_eq!(answer["status"], "checker_error", "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("The checker did not compile"),
        "{answer}"
    );
    assert_eq!(answer["tests"][0]["verdict"], "checker_error", "{answer}");
    assert_eq!(answer["tests"][0]["stdout"], "3.0000001\n", "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_python_checker_gives_every_verdict_and_a_looping_one_is_stopped() {
    let app = spawn_judging_app(|_| {}).await;
    let answer = a_plus_b(&app, json!({"language": "python", "code": CHECKER_PY})).await;
    assert_a_plus_b(&answer);
    assert!(answer.get("checker_compile").is_none(), "{answer}");
    let began = Instant::now();
    let looping = json!({"language": "python", "code": "while True: pass", "timeout_ms": 500, "cpu_time_ms": 500});
    let answer = a_plus_b(&app, looping).await;
    assert_eq!(answer["status"], "checker_error", "{answer}");
    let test = &answer["tests"][0];
    assert_eq!(test["verdict"], "checker_error", "{answer}");
    assert_eq!(test["checker"]["status"], "timeout", "{answer}");
    assert!(
        test["checker_message"]
            .as_str()
            .unwrap()
            .contains("stopped: timeout")
    );
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
    // Exit 3 is testlib's FAIL: the checker's own failure.
    let fail = json!({"language": "python", "code": "import sys\nsys.stderr.write('FAIL no answer')\nsys.exit(3)"});
    let answer = a_plus_b(&app, fail).await;
    assert_eq!(answer["tests"][0]["verdict"], "checker_error", "{answer}");
    assert_eq!(
        answer["tests"][0]["checker_message"],
        "the checker failed: it exited 3 (FAIL): FAIL no answer"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_checker_of_the_catalogue_is_named_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-plus-b.py"), CHECKER_PY).unwrap();
    std::fs::write(
        dir.path().join("a-plus-b.toml"),
        "language = \"python\"\nsource = \"a-plus-b.py\"\n",
    )
    .unwrap();
    let checkers = dir.path().to_path_buf();
    let app = spawn_judging_app(move |c| c.checkers_dir = checkers).await;
    let answer = a_plus_b(&app, json!({"name": "a-plus-b"})).await;
    assert_a_plus_b(&answer);
    for (checker, field, words) in [
        (
            json!({"name": "nope"}),
            "checker.name",
            "not in the catalogue (it has a-plus-b)",
        ),
        (
            json!({"name": "a-plus-b", "language": "cpp"}),
            "checker.name",
            "no other field",
        ),
        (json!({"language": "python"}), "checker.code", "is required"),
        (json!({"language": "cobol", "code": "x"}), "", "cobol"),
        (
            json!({"language": "python", "code": "x", "files": [{"name": "answer.txt", "content": ""}]}),
            "checker.files",
            "the test's",
        ),
        (
            json!({"language": "python", "code": "x", "files": [{"name": "input.txt/x", "content": ""}]}),
            "checker.files",
            "the test's",
        ),
        (
            json!({"language": "python", "code": "x", "colour": 1}),
            "",
            "colour",
        ),
    ] {
        let (status, refused) = app
            .run(json!({"language": "python", "code": "print(1)", "tests": [{}], "checker": checker}))
            .await;
        assert!(matches!(status, 400 | 422), "{checker}: {status} {refused}");
        if !field.is_empty() {
            assert_eq!(refused["field"], field, "{checker}: {refused}");
        }
        assert!(refused.to_string().contains(words), "{checker}: {refused}");
    }
    let (status, refused) = app
        .run(json!({"language": "python", "code": "print(1)", "checker": {"name": "a-plus-b"}}))
        .await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (400, Some("checker")),
        "{refused}"
    );
    app.stop().await;
}

/// Guess the number (1 to 10⁹, read from the test's input file) in at
/// most 30 questions; testlib's verdicts: found (0), not in 30 (1), a
/// guess that is not a number or the program's silence (2).
const GUESS_INTERACTOR: &str = r#"#include <cstdio>
int main(int argc, char **argv) {
    std::FILE *in = std::fopen(argv[1], "r");
    long n;
    if (!in || std::fscanf(in, "%ld", &n) != 1) { std::fprintf(stderr, "FAIL no number in the input"); return 3; }
    for (int asked = 1; asked <= 30; asked++) {
        long guess;
        int read = std::scanf("%ld", &guess);
        if (read == EOF) { std::fprintf(stderr, "unexpected eof after %d questions", asked - 1); return 2; }
        if (read != 1) { std::fprintf(stderr, "wrong output format a guess is a number"); return 2; }
        if (guess == n) { std::printf("correct\n"); std::fflush(stdout); std::fprintf(stderr, "ok found %ld in %d questions", n, asked); return 0; }
        std::printf(guess < n ? "higher\n" : "lower\n");
        std::fflush(stdout);
    }
    std::fprintf(stderr, "wrong answer not found in 30 questions"); return 1;
}
"#;

/// A binary search that times each question, from its print to the
/// answer's line, and says the times (µs) on stderr at the end.
const BINARY_SEARCH: &str = r#"import sys, time
lo, hi, trips = 1, 10**9, []
while True:
    mid = (lo + hi) // 2
    asked = time.perf_counter_ns()
    print(mid, flush=True)
    reply = input()
    trips.append((time.perf_counter_ns() - asked) // 1000)
    if reply == "correct":
        break
    if reply == "higher":
        lo = mid + 1
    else:
        hi = mid - 1
print(" ".join(map(str, trips)), file=sys.stderr)
"#;

async fn guess(app: &TestApp, solution: &str, numbers: &[u64]) -> Value {
    let tests: Vec<Value> = (numbers.iter())
        .map(|n| json!({"name": n.to_string(), "stdin": n.to_string()}))
        .collect();
    app.run_ok(json!({
        "language": "python",
        "code": solution,
        "timeout_ms": 2000,
        "tests": tests,
        "interactor": {"language": "cpp", "code": GUESS_INTERACTOR},
    }))
    .await
}

#[tokio::test]
async fn a_guess_the_number_interactor_judges_each_kind_of_solution() {
    let app = spawn_judging_app(|_| {}).await;
    let answer = guess(&app, BINARY_SEARCH, &[1, 999_999_999, 536_870_912]).await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["checker_compile"]["status"], "ok", "{answer}");
    for test in answer["tests"].as_array().unwrap() {
        assert_eq!(test["verdict"], "accepted", "{answer}");
        let said = test["checker_message"].as_str().unwrap();
        assert!(said.starts_with("ok found"), "{answer}");
        let questions: u32 = said.rsplit(' ').nth(1).unwrap().parse().unwrap();
        assert!(questions <= 30, "{answer}");
        // Each round trip goes through the service; 30 of them take well
        // under a second.
        let mut trips: Vec<u64> = (test["stderr"].as_str().unwrap().split_whitespace())
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!(trips.len() as u32, questions, "{answer}");
        let all_ms = trips.iter().sum::<u64>() as f64 / 1000.0;
        trips.sort_unstable();
        let median_ms = trips[trips.len() / 2] as f64 / 1000.0;
        assert!(
            all_ms < 500.0 && median_ms < 5.0,
            "{questions} questions: {all_ms} ms in all, {median_ms} ms at the median: {answer}"
        );
    }
    let linear = "i = 1\nwhile True:\n    print(i, flush=True)\n    if input() == 'correct': break\n    i += 1\n";
    let answer = guess(&app, linear, &[500]).await;
    assert_eq!(verdicts(&answer), [("500", "wrong_answer")], "{answer}");
    assert_eq!(
        answer["tests"][0]["checker_message"],
        "wrong answer not found in 30 questions"
    );
    // A program that never asks runs out of time: a hang is not possible.
    let began = Instant::now();
    let answer = guess(&app, "import time\ntime.sleep(60)", &[7]).await;
    assert_eq!(verdicts(&answer), [("7", "timeout")], "{answer}");
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "{:?}",
        began.elapsed()
    );
    // One that floods the interactor without reading its answers is
    // stopped by its output limit (a limit the program hit comes first).
    let answer = guess(&app, "while True: print(1)", &[7]).await;
    assert_eq!(verdicts(&answer), [("7", "output_limit")], "{answer}");
    // With the interactor's wall-time limit no longer than the program's,
    // its clock runs out first while both wait: the program was idle.
    let answer = app
        .run_ok(json!({
            "language": "python", "code": "import time\ntime.sleep(60)", "timeout_ms": 1500,
            "tests": [{"name": "idle", "stdin": "7"}],
            "interactor": {"language": "cpp", "code": GUESS_INTERACTOR, "timeout_ms": 1500},
        }))
        .await;
    assert_eq!(verdicts(&answer), [("idle", "timeout")], "{answer}");
    assert_eq!(
        answer["status"], "ok",
        "the interactor is not at fault: {answer}"
    );
    // An interactor that does not compile judges nothing.
    let answer = app
        .run_ok(json!({
            "language": "python", "code": BINARY_SEARCH, "tests": [{"stdin": "5"}],
            "interactor": {"language": "cpp", "code": "int main() { return x; }"},
        }))
        .await;
    assert_eq!(
        (
            answer["status"].as_str(),
            answer["tests"].as_array().map(Vec::len)
        ),
        (Some("checker_error"), Some(0)),
        "{answer}"
    );
    app.stop().await;
}
