//! A batch's checker and interactor over the runner double: what each is
//! given, how their exits become verdicts, and every refusal.

use serde_json::json;

use super::*;

/// A double whose program prints its stdin (a batch's runs do), failing
/// on stdin `crash`, and whose checker or interactor (a job with the
/// testlib arguments) exits `judge_exit`, saying `judge_says`.
fn judged(judge_exit: i32, judge_says: &'static str) -> Arc<Double> {
    double(move |job| {
        let judging = job.inputs.first().args.first().map(String::as_str) == Some("input.txt");
        Ok(match judging {
            true => ran(stage(Some(Exit::Code(judge_exit)), None, "", judge_says)),
            false if job.inputs.iter().any(|i| i.stdin == b"crash") => Outcome::Ran {
                compile: None,
                runs: NonEmpty::from_vec(
                    (job.inputs.iter())
                        .map(|i| match i.stdin == b"crash" {
                            true => stage(Some(Exit::Code(1)), None, "", "boom"),
                            false => stage(Some(Exit::Code(0)), None, "", ""),
                        })
                        .collect(),
                )
                .unwrap(),
            },
            false => ran(stage(Some(Exit::Code(0)), None, "", "")),
        })
    })
}

const CHECKED: &str = r#"{"language": "python", "code": "x",
    "tests": [{"stdin": "1 2", "expected_output": "3"}, {"stdin": "4"}],
    "checker": {"language": "python", "code": "check", "timeout_ms": 500}}"#;

#[tokio::test]
async fn a_checker_gets_each_tests_input_output_and_answer_as_files() {
    let runner = judged(0, "ok fine\n");
    let reply = post(&runner, CHECKED).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let b = &reply.body;
    assert_eq!(
        (&b["status"], &b["summary"]),
        (&json!("ok"), &json!({"passed": 2, "total": 2})),
        "{b}"
    );
    assert_eq!(b["tests"][0]["checker_message"], "ok fine", "{b}");
    assert_eq!(b["tests"][0]["checker"]["exit_code"], 0, "{b}");
    let jobs = runner.jobs.lock().unwrap();
    assert_eq!(jobs.len(), 2, "the program's batch, then the checker's");
    let checker = &jobs[1];
    assert_eq!(checker.files.main.content, b"check");
    assert_eq!(checker.limits.run.wall_time_ms, 500);
    let files = |i: usize| -> Vec<(String, String)> {
        let input = checker.inputs.iter().nth(i).unwrap();
        assert_eq!(input.args, ["input.txt", "output.txt", "answer.txt"]);
        (input.files.iter())
            .map(|f| {
                (
                    f.name.clone(),
                    String::from_utf8(f.content.clone()).unwrap(),
                )
            })
            .collect()
    };
    // The double's runs print their stdin.
    let file = |n: &str, c: &str| (n.to_string(), c.to_string());
    assert_eq!(
        files(0),
        [
            file("input.txt", "1 2"),
            file("output.txt", "1 2"),
            file("answer.txt", "3")
        ]
    );
    assert_eq!(
        files(1),
        [
            file("input.txt", "4"),
            file("output.txt", "4"),
            file("answer.txt", "")
        ]
    );
}

#[tokio::test]
async fn each_checker_exit_is_its_verdict_and_a_failed_run_is_not_checked() {
    let body = r#"{"language": "python", "code": "x",
        "tests": [{"stdin": "crash"}, {"stdin": "2"}],
        "checker": {"language": "python", "code": "check"}}"#;
    for (exit, says, verdict, score, status) in [
        (0, "ok", "accepted", None, "ok"),
        (1, "wrong answer 2nd", "wrong_answer", None, "ok"),
        (2, "wrong output format", "presentation_error", None, "ok"),
        (8, "unexpected eof", "presentation_error", None, "ok"),
        (7, "points 0.25 a quarter", "partial", Some(0.25), "ok"),
        (3, "FAIL bad", "checker_error", None, "checker_error"),
        (5, "", "checker_error", None, "checker_error"),
    ] {
        let runner = judged(exit, says);
        let b = post(&runner, body).await.body;
        assert_eq!(b["tests"][0]["verdict"], "runtime_error", "{exit}: {b}");
        assert!(b["tests"][0].get("checker").is_none(), "{b}");
        let test = &b["tests"][1];
        assert_eq!(test["verdict"], verdict, "{exit}: {b}");
        assert_eq!(test["score"].as_f64(), score, "{exit}: {b}");
        assert_eq!(b["status"], status, "{exit}: {b}");
        let jobs = runner.jobs.lock().unwrap();
        assert_eq!(
            jobs[1].inputs.len(),
            1,
            "only the test that ended ok is checked"
        );
    }
}

#[tokio::test]
async fn an_interactor_gets_the_tests_input_and_the_program_no_stdin() {
    let runner = judged(1, "wrong answer too many guesses");
    let body = r#"{"language": "python", "code": "x",
        "tests": [{"stdin": "42", "expected_output": "found"}],
        "interactor": {"language": "python", "code": "interact"}}"#;
    let b = post(&runner, body).await.body;
    assert_eq!(b["tests"][0]["verdict"], "wrong_answer", "{b}");
    assert_eq!(
        b["tests"][0]["checker_message"],
        "wrong answer too many guesses"
    );
    let jobs = runner.jobs.lock().unwrap();
    let (program, interactor) = (&jobs[0], &jobs[1]);
    assert!(
        program.inputs.first().stdin.is_empty(),
        "its stdin is the interactor's"
    );
    let files: Vec<_> = (interactor.inputs.first().files.iter())
        .map(|f| (f.name.as_str(), f.content.as_slice()))
        .collect();
    assert_eq!(
        files,
        [
            ("input.txt", &b"42"[..]),
            ("output.txt", b""),
            ("answer.txt", b"found")
        ]
    );
}

#[tokio::test]
async fn a_checker_or_interactor_that_cannot_be_used_is_refused_and_runs_nothing() {
    let runner = hello();
    let checker = r#""checker": {"language": "python", "code": "c"}"#;
    let batch =
        |extra: &str| format!(r#"{{"language": "python", "code": "x", "tests": [{{}}], {extra}}}"#);
    let cases = [
        (batch(&format!(r#"{checker}, "compare": "exact""#)), "invalid_field", "compare"),
        (batch(&format!(r#"{checker}, "interactor": {{"language": "python", "code": "i"}}"#)), "invalid_field", "checker"),
        (r#"{"language": "python", "code": "x", "checker": {"language": "python", "code": "c"}}"#.to_string(), "invalid_field", "checker"),
        (r#"{"language": "python", "code": "x", "interactor": {"language": "python", "code": "c"}}"#.to_string(), "invalid_field", "interactor"),
        (batch(r#""checker": {"code": "c"}"#), "invalid_field", "checker.language"),
        (batch(r#""checker": {"language": "python", "code": ""}"#), "invalid_field", "checker.code"),
        (batch(r#""interactor": {"language": "python", "code": "c", "timeout_ms": 0}"#), "invalid_field", "interactor.timeout_ms"),
        (batch(r#""checker": {"language": "python", "code": "c", "timeout_ms": 999999}"#), "invalid_field", "checker.timeout_ms"),
        (batch(r#""checker": {"language": "python", "code": "c", "files": [{"name": "output.txt", "content": ""}]}"#), "invalid_field", "checker.files"),
        (batch(r#""checker": {"language": "python", "code": "c", "files": [{"name": "../x", "content": ""}]}"#), "invalid_field", "checker.files"),
        (batch(r#""checker": {"name": "shared"}"#), "invalid_field", "checker.name"),
        (batch(r#""checker": {"language": "python", "code": "c", "colour": "red"}"#), "unknown_field", "colour"),
        (batch(r#""compare": {"mode": "floats", "relative": -0.1}"#), "invalid_field", "compare"),
        (batch(r#""compare": {"mode": "trim", "absolute": 1}"#), "invalid_field", "compare"),
        (batch(r#""compare": "floatz""#), "invalid_field", "compare"),
    ];
    for (body, code, field) in cases {
        let reply = post(&runner, &body).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (400, Some(code)),
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.body["field"], field, "{body}: {}", reply.body);
    }
    let reply = post(
        &runner,
        &batch(r#""checker": {"language": "cobol", "code": "c"}"#),
    )
    .await;
    assert_eq!(reply.body["code"], "unknown_language", "{}", reply.body);
    assert!(
        runner.jobs.lock().unwrap().is_empty(),
        "a refused request reached the runner"
    );
}
