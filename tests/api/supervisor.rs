//! The supervisor out of the program's reach (security review 3, M1), each
//! test written as the attack: a program that re-limits, stops or reads its
//! supervisor gets the verdict it earned, never `ok`, `accepted` or Judge0's
//! Accepted; and the service holds the CPU-time limit from outside, where
//! the supervisor cannot (gVisor).

use serde_json::{Value, json};

use crate::helpers::{TestApp, language_file, spawn_app, spawn_app_with_languages};

/// Burns `seconds` of CPU time in this process (python).
const BURN: &str = "import time\ndef burn(seconds):\n    end = time.process_time() + seconds\n    while time.process_time() < end:\n        pass\n";

/// Sets the supervisor's open-file limit to 0 (which, were it allowed,
/// would blind its CPU watcher and its trailer's figures), then uses 1.6 s
/// of CPU time: under 2 s, the per-process `RLIMIT_CPU` of a 1 s limit.
const BLIND: &str = "import os, resource\ntry:\n    resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE, (0, 0))\n    print('changed', flush=True)\nexcept OSError as e:\n    print('refused', e.errno, flush=True)\nburn(1.6)\n";

fn blind() -> String {
    format!("{BURN}{BLIND}")
}

async fn run_limited(app: &TestApp, code: &str) -> Value {
    app.run_ok(json!({
        "language": "python",
        "code": code,
        "cpu_time_ms": 1000,
        "timeout_ms": 10000,
    }))
    .await
}

#[tokio::test]
async fn a_program_cannot_change_its_supervisors_limits_and_ends_at_its_cpu_time_limit() {
    let app = spawn_app().await;
    let answer = run_limited(&app, &blind()).await;
    // EPERM: the seccomp profile refuses prlimit64 on another process.
    assert_eq!(answer["stdout"], "refused 1\n", "{answer}");
    assert_eq!(answer["status"], "timeout", "{answer}");
    let cpu = answer["cpu_time_ms"].as_u64().expect("a CPU time");
    assert!((1000..1400).contains(&cpu), "{answer}");
    assert!(answer["memory_peak_bytes"].as_u64().is_some(), "{answer}");
    // A program may still set its own limits (glibc's setrlimit is
    // prlimit64 on pid 0) and read others'.
    let own = app
        .python("import os, resource\nresource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\nprint(resource.getrlimit(resource.RLIMIT_NOFILE), resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE)[0] > 0)")
        .await;
    assert_eq!(own["stdout"], "(64, 64) True\n", "{own}");
    // A native batch of the same program: time_limit_exceeded, not accepted.
    let batch = app
        .run_ok(json!({
            "language": "python",
            "code": blind(),
            "cpu_time_ms": 1000,
            "tests": [{"expected_output": "refused 1\n"}],
        }))
        .await;
    let verdict = &batch["tests"][0]["verdict"];
    assert_eq!(verdict, "timeout", "{batch}");
    app.stop().await;
}

#[tokio::test]
async fn judge0_says_time_limit_exceeded_to_a_program_that_tries_to_blind_its_supervisor() {
    let app = spawn_app().await;
    let body = json!({
        "source_code": blind(),
        "language_id": 71,
        "cpu_time_limit": 1,
        "cpu_extra_time": 0,
        "wall_time_limit": 10,
    });
    let (status, answer) = app
        .post(
            "/judge0/submissions?wait=true&fields=status,time,stdout",
            &body,
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"]["id"], 5, "{answer}");
    assert!(answer["time"].as_str().is_some(), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_program_cannot_stop_its_supervisor_to_outrun_the_cpu_time_limit() {
    // Stops the supervisor, computes, and exits, leaving a grandchild to
    // resume it once the program is gone (a race the stopped supervisor
    // lost two times in three): run three times, each must be a timeout.
    let attack = format!(
        "{BURN}import os, signal, time\nparent = os.getppid()\nos.kill(parent, signal.SIGSTOP)\nburn(1.6)\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(0.2)\n    os.kill(parent, signal.SIGCONT)\n    time.sleep(5)\nprint('done', flush=True)\n"
    );
    let app = spawn_app().await;
    for _ in 0..3 {
        let answer = run_limited(&app, &attack).await;
        assert_eq!(answer["status"], "timeout", "{answer}");
        assert!(answer["cpu_time_ms"].as_u64().is_some(), "{answer}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_supervisors_report_travels_where_the_program_cannot_read_or_write() {
    // The supervisor (the program's parent, PID 1) holds the container's
    // stdout and stderr, where its start line, trailer and nonce travel,
    // and no process the program can open them through does (Docker's
    // init, PID 1 before, held them and let the program open them); the
    // program's own fds 1 and 2 are pipes of its own.
    let code = "import os\nparent = os.getppid()\nprint('parent', parent)\nfor fd in (1, 2):\n    for mode in ('rb', 'wb'):\n        try:\n            open(f'/proc/1/fd/{fd}', mode, buffering=0).close()\n            print(fd, mode, 'opened')\n        except OSError as e:\n            print(fd, mode, 'refused')\n    try:\n        os.readlink(f'/proc/1/fd/{fd}')\n        print(fd, 'seen')\n    except OSError:\n        print(fd, 'hidden')\n";
    let app = spawn_app().await;
    let answer = app.python(code).await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(
        answer["stdout"],
        "parent 1\n1 rb refused\n1 wb refused\n1 hidden\n2 rb refused\n2 wb refused\n2 hidden\n",
        "{answer}"
    );
    // What the program can reopen is its own output: reading its own
    // stdout back never yields the start line or a trailer (no nonce).
    let code = "import os, sys\nprint('mine', flush=True)\nfd = os.open('/proc/self/fd/1', os.O_RDONLY | os.O_NONBLOCK)\ntry:\n    got = os.read(fd, 65536)\nexcept BlockingIOError:\n    got = b''\nsys.stderr.write(repr(got))\n";
    let answer = app.python(code).await;
    assert_eq!(answer["status"], "ok", "{answer}");
    let stolen = answer["stderr"].as_str().unwrap();
    assert!(!stolen.contains(":start:"), "{answer}");
    assert!(stolen == "b''" || stolen == "b'mine\\n'", "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn under_gvisor_the_service_holds_the_cpu_time_limit_from_outside() {
    // gVisor shows the supervisor no cgroup: only each process's own
    // RLIMIT_CPU (the limit + 1 s) held it. Two processes of 1.6 s each
    // passed a 1 s limit together; the service's own look stops them.
    let app = spawn_app_with_languages(
        vec![
            ("python.toml".to_string(), language_file("python.toml")),
            (
                "python-gvisor.toml".to_string(),
                language_file("available/python-gvisor.toml"),
            ),
        ],
        |_| {},
    )
    .await;
    let code = format!("{BURN}import os\nos.fork()\nburn(1.6)\nprint('done', flush=True)\n");
    let answer = app
        .run_ok(json!({
            "language": "python-gvisor",
            "code": code,
            "cpu_time_ms": 1000,
            "timeout_ms": 10000,
        }))
        .await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert_eq!(answer["limit"], "cpu_time", "{answer}");
    app.stop().await;
}
