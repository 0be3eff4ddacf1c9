//! What judges need: CPU time and peak memory per stage, a CPU-time limit
//! over all of a stage's processes, and batches of tests compiled once,
//! each test in a fresh sandbox.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, spawn_catalogue_app};

fn ms(answer: &Value, key: &str) -> u64 {
    answer[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key}: {answer}"))
}

#[tokio::test]
async fn cpu_time_and_peak_memory_match_programs_whose_use_is_known() {
    let app = spawn_app_with(|c| c.limits.cpus = 2.0).await;
    let busy = app
        .python("import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass")
        .await;
    let cpu = ms(&busy, "cpu_time_ms");
    assert!(
        (950..1400).contains(&cpu),
        "a 1 s busy loop used {cpu} ms: {busy}"
    );
    // Two processes burning 1 s of CPU each: both seconds are counted (the
    // sandbox's one CPU runs them in turn, so the wall time says nothing
    // more).
    let two = app
        .python(concat!(
            "import multiprocessing, time\n",
            "def burn():\n",
            "    t = time.process_time()\n",
            "    while time.process_time() - t < 1.0: pass\n",
            "ps = [multiprocessing.Process(target=burn) for _ in range(2)]\n",
            "[p.start() for p in ps]\n",
            "[p.join() for p in ps]\n",
        ))
        .await;
    let (cpu, wall) = (ms(&two, "cpu_time_ms"), ms(&two, "duration_ms"));
    assert!(
        (1950..2600).contains(&cpu),
        "two busy processes of 1 s each: {cpu} ms of CPU in {wall} ms: {two}"
    );
    let sleeper = app.python("import time\ntime.sleep(1)").await;
    assert!(ms(&sleeper, "cpu_time_ms") < 150, "{sleeper}");
    let hog = app
        .python("x = bytearray(64 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\nprint('held')")
        .await;
    assert_eq!(hog["stdout"], "held\n", "{hog}");
    let peak = ms(&hog, "memory_peak_bytes");
    assert!(
        peak > 64 << 20 && peak < 128 << 20,
        "64 MiB held, a peak of {peak} bytes: {hog}"
    );
    assert_eq!(busy["limit"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn the_cpu_time_limit_counts_every_process_and_keeps_the_output() {
    let app = spawn_app_with(|c| c.limits.cpus = 2.0).await;
    // Four processes burning at once: a per-process limit would let each
    // use the whole second; the stage's total stops them all.
    let started = Instant::now();
    let answer = app
        .run_ok(json!({
            "language": "python",
            "code": concat!(
                "import os\n",
                "print('forking', flush=True)\n",
                "for _ in range(3):\n",
                "    if os.fork() == 0:\n",
                "        break\n",
                "while True: pass\n",
            ),
            "cpu_time_ms": 1000,
        }))
        .await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert_eq!(answer["limit"], "cpu_time", "{answer}");
    assert_eq!(answer["stdout"], "forking\n");
    let cpu = ms(&answer, "cpu_time_ms");
    assert!(
        (1000..1500).contains(&cpu),
        "stopped after {cpu} ms of CPU: {answer}"
    );
    // Stopped by the total: four processes with a second each would run
    // for two seconds on two CPUs.
    assert!(ms(&answer, "duration_ms") < 1800, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        answer["error"],
        "CPU time limit exceeded: the program used more than 1000 ms of CPU time and was stopped."
    );
    // A sleeping program is stopped by the wall clock instead.
    let sleeper = app
        .run_ok(json!({"language": "python", "code": "import time\ntime.sleep(30)", "cpu_time_ms": 500, "timeout_ms": 1000}))
        .await;
    assert_eq!(
        (&sleeper["status"], &sleeper["limit"]),
        (&json!("timeout"), &json!("wall_time")),
        "{sleeper}"
    );
    // A request may only lower the limit.
    let (status, body) = app
        .run(json!({"language": "python", "code": "1", "cpu_time_ms": 10_001}))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("cpu_time_ms")),
        "{body}"
    );
    let (_, languages) = app.get("/languages").await;
    assert_eq!(languages["languages"][0]["limits"]["cpu_time_ms"], 10_000);
    app.stop().await;
}

/// Counts the containers the engine creates for `instance`, per stage, until
/// `done` resolves.
async fn creates_during<T>(
    app: &TestApp,
    done: impl std::future::Future<Output = T>,
) -> (T, HashMap<String, usize>) {
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        ("event".to_string(), vec!["create".to_string()]),
        (
            "label".to_string(),
            vec![format!("code-runner={}", app.instance)],
        ),
    ]);
    let since = (std::time::SystemTime::now() - Duration::from_secs(1))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let result = done.await;
    let until = (std::time::SystemTime::now() + Duration::from_secs(1))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let options = EventsOptionsBuilder::default()
        .since(&since)
        .until(&until)
        .filters(&filters)
        .build();
    let mut counts = HashMap::new();
    let mut events = app.docker.events(Some(options));
    while let Some(Ok(event)) = events.next().await {
        let stage = event
            .actor
            .and_then(|a| a.attributes)
            .and_then(|a| a.get("code-runner.stage").cloned())
            .unwrap_or_else(|| "other".to_string());
        *counts.entry(stage).or_insert(0) += 1;
    }
    (result, counts)
}

const SQUARE_CPP: &str =
    "#include <iostream>\nint main() { long x; std::cin >> x; std::cout << x * x << std::endl; }";

#[tokio::test]
async fn a_batch_compiles_once_and_runs_each_test_in_a_sandbox_of_its_own() {
    let app = spawn_catalogue_app().await;
    let tests: Vec<Value> = (1..=5)
        .map(|i| json!({"name": format!("square {i}"), "stdin": i.to_string(), "expected_output": format!("{}\n", i * i)}))
        .collect();
    let (answer, creates) = creates_during(
        &app,
        app.run_ok(json!({"language": "cpp", "code": SQUARE_CPP, "tests": tests})),
    )
    .await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["compile"]["status"], "ok");
    assert_eq!(answer["summary"], json!({"passed": 5, "total": 5}));
    let results = answer["tests"].as_array().unwrap();
    for (i, test) in results.iter().enumerate() {
        assert_eq!(test["name"], format!("square {}", i + 1));
        assert_eq!(test["verdict"], "accepted", "{test}");
        assert_eq!(test["stdout"], format!("{}\n", (i + 1) * (i + 1)));
        assert!(test["cpu_time_ms"].is_u64(), "{test}");
    }
    // One compile; a keeper holding the build; one sandbox per test.
    assert_eq!(creates.get("compile"), Some(&1), "{creates:?}");
    assert_eq!(creates.get("run"), Some(&6), "{creates:?}");
    app.stop().await;
}

#[tokio::test]
async fn one_test_cannot_see_anothers_files_or_processes() {
    let app = spawn_catalogue_app().await;
    let code = concat!(
        "import os, subprocess\n",
        "seen = [os.path.exists(p) for p in ('/tmp/mark', 'mark')]\n",
        "sleepers = sum(1 for p in filter(str.isdigit, os.listdir('/proc')) if open(f'/proc/{p}/cmdline').read().startswith('sleep'))\n",
        "open('/tmp/mark', 'w').write('x')\n",
        "open('mark', 'w').write('x')\n",
        "subprocess.Popen(['sleep', '60'], start_new_session=True)\n",
        "print(seen, sleepers, os.getuid())\n",
    );
    for language in ["python", "c"] {
        let code = if language == "c" {
            concat!(
                "#include <stdio.h>\n#include <unistd.h>\n",
                "int main(void) {\n",
                "  int seen = access(\"mark\", F_OK) == 0 || access(\"/tmp/mark\", F_OK) == 0;\n",
                "  fclose(fopen(\"mark\", \"w\"));\n",
                "  fclose(fopen(\"/tmp/mark\", \"w\"));\n",
                "  printf(\"%d %d\\n\", seen, getuid());\n",
                "  return 0;\n",
                "}\n",
            )
        } else {
            code
        };
        let answer = app
            .run_ok(json!({"language": language, "code": code, "tests": [{}, {}, {}]}))
            .await;
        let outputs: Vec<&str> = answer["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["stdout"].as_str().unwrap())
            .collect();
        assert_eq!(outputs.len(), 3, "{answer}");
        let uids: std::collections::HashSet<&str> = outputs
            .iter()
            .map(|o| o.trim().rsplit(' ').next().unwrap())
            .collect();
        for output in &outputs {
            if language == "python" {
                assert!(
                    output.starts_with("[False, False] 0 "),
                    "{language}: {answer}"
                );
            } else {
                assert!(output.starts_with("0 "), "{language}: {answer}");
            }
        }
        assert_eq!(
            uids.len(),
            3,
            "{language}'s tests shared a uid: {outputs:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn each_compare_mode_gives_its_verdicts() {
    let app = spawn_app().await;
    let code = "import sys\nsys.stdout.write(sys.stdin.read())";
    let batch = |compare: &str| {
        app.run_ok(json!({
            "language": "python",
            "code": code,
            "compare": compare,
            "tests": [
                {"stdin": "1 2\n3\n", "expected_output": "1 2\n3\n"},
                {"stdin": "1 2   \n3\n\n\n", "expected_output": "1 2\n3\n"},
                {"stdin": "1\n2\n3", "expected_output": "1 2 3"},
                {"stdin": "4\n", "expected_output": "5\n"},
                {"stdin": "no expectation"},
            ],
        }))
    };
    for (compare, verdicts, passed) in [
        (
            "exact",
            ["accepted", "wrong_answer", "wrong_answer", "wrong_answer"],
            1,
        ),
        (
            "trim",
            ["accepted", "accepted", "wrong_answer", "wrong_answer"],
            2,
        ),
        (
            "tokens",
            ["accepted", "accepted", "accepted", "wrong_answer"],
            3,
        ),
    ] {
        let answer = batch(compare).await;
        let got: Vec<&str> = answer["tests"]
            .as_array()
            .unwrap()
            .iter()
            .take(4)
            .map(|t| t["verdict"].as_str().unwrap())
            .collect();
        assert_eq!(got, verdicts, "{compare}: {answer}");
        assert!(answer["tests"][4].get("verdict").is_none(), "{answer}");
        assert_eq!(
            answer["summary"],
            json!({"passed": passed, "total": 5}),
            "{compare}"
        );
    }
    // The tolerant modes, each on tests that tell it from the others.
    let tolerant = |compare: Value| {
        app.run_ok(json!({
            "language": "python",
            "code": code,
            "compare": compare,
            "tests": [
                {"stdin": "0.3333333\n", "expected_output": "0.333333333"},
                {"stdin": "2.51 x\n", "expected_output": "2.5 x"},
                {"stdin": "b\na\nc\n", "expected_output": "a\nb\nc\n"},
                {"stdin": "Yes\nNO  \n", "expected_output": "YES\nno\n"},
            ],
        }))
    };
    for (compare, verdicts) in [
        (
            json!("floats"),
            ["accepted", "wrong_answer", "wrong_answer", "wrong_answer"],
        ),
        (
            json!({"mode": "floats", "absolute": 0.05, "relative": 0}),
            ["accepted", "accepted", "wrong_answer", "wrong_answer"],
        ),
        (
            json!("unordered_lines"),
            ["wrong_answer", "wrong_answer", "accepted", "wrong_answer"],
        ),
        (
            json!("case_insensitive"),
            ["wrong_answer", "wrong_answer", "wrong_answer", "accepted"],
        ),
    ] {
        let answer = tolerant(compare.clone()).await;
        let got: Vec<&str> = (answer["tests"].as_array().unwrap().iter())
            .map(|t| t["verdict"].as_str().unwrap())
            .collect();
        assert_eq!(got, verdicts, "{compare}: {answer}");
    }
    let (status, refused) = app
        .run(json!({"language": "python", "code": code, "compare": {"mode": "floats", "absolute": -1}, "tests": [{}]}))
        .await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (400, Some("compare")),
        "{refused}"
    );
    let default = app
        .run_ok(json!({"language": "python", "code": code, "tests": [{"stdin": "x \n\n", "expected_output": "x"}]}))
        .await;
    assert_eq!(
        default["tests"][0]["verdict"], "accepted",
        "trim is the default: {default}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_compile_error_ends_the_batch_before_any_test() {
    let app = spawn_catalogue_app().await;
    let (answer, creates) = creates_during(
        &app,
        app.run_ok(json!({"language": "cpp", "code": "int main() { return x; }", "tests": [{"stdin": "1"}, {"stdin": "2"}]})),
    )
    .await;
    assert_eq!(answer["status"], "compile_error", "{answer}");
    assert_eq!(answer["compile"]["status"], "runtime_error");
    assert_eq!(answer["tests"], json!([]));
    assert_eq!(answer["summary"], json!({"passed": 0, "total": 2}));
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("was not declared"),
        "{answer}"
    );
    assert_eq!(creates.get("compile"), Some(&1), "{creates:?}");
    assert_eq!(creates.get("run"), Some(&1), "only the keeper: {creates:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_test_that_times_out_sits_beside_tests_that_pass() {
    let app = spawn_catalogue_app().await;
    let code = "#include <stdio.h>\nint main(void) { int n; scanf(\"%d\", &n); if (n < 0) for (;;); printf(\"%d\\n\", n + 1); return 0; }";
    let answer = app
        .run_ok(json!({
            "language": "c",
            "code": code,
            "timeout_ms": 1000,
            "tests": [
                {"name": "one", "stdin": "1", "expected_output": "2"},
                {"name": "loops", "stdin": "-1", "expected_output": "0"},
                {"name": "two", "stdin": "2", "expected_output": "3"},
            ],
        }))
        .await;
    let tests = answer["tests"].as_array().unwrap();
    let verdicts: Vec<&str> = tests
        .iter()
        .map(|t| t["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["accepted", "timeout", "accepted"], "{answer}");
    assert_eq!(tests[1]["limit"], "wall_time");
    assert_eq!(answer["summary"], json!({"passed": 2, "total": 3}));
    app.stop().await;
}

#[tokio::test]
async fn a_64_test_batch_leaves_room_for_another_client() {
    let app = spawn_app_with(|c| {
        c.runs.max_concurrent = 4;
        c.runs.max_queue = 8;
    })
    .await;
    let tests: Vec<Value> = (0..64).map(|i| json!({"stdin": i.to_string()})).collect();
    let batch = app.run_ok(json!({
        "language": "python",
        "code": "import time\ntime.sleep(0.3)\nprint(int(input()) * 2)",
        "tests": tests,
    }));
    let other = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let started = Instant::now();
            let answer = app.python("print(1)").await;
            assert_eq!(answer["stdout"], "1\n", "{answer}");
            slowest = slowest.max(started.elapsed());
        }
        slowest
    };
    let (batch, slowest) = tokio::join!(batch, other);
    assert!(
        slowest < Duration::from_secs(3),
        "another client waited {slowest:?} during a batch"
    );
    assert_eq!(batch["tests"].as_array().unwrap().len(), 64);
    for (i, test) in batch["tests"].as_array().unwrap().iter().enumerate() {
        assert_eq!(test["stdout"], format!("{}\n", i * 2), "{test}");
    }
    app.stop().await;
}
