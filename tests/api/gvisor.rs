//! gVisor per language, for real: `python-gvisor` (the catalogue's python
//! under the runtime `runsc`) sees gVisor's kernel and keeps every limit;
//! a language whose runtime the engine does not know is named by `/ready`
//! and refused with a clear 503. `scripts/test` registers runsc first
//! (`scripts/enable-gvisor`).

use serde_json::json;

use crate::helpers::{TestApp, language_file, spawn_app_with_languages};

async fn gvisor_app() -> TestApp {
    spawn_app_with_languages(
        vec![
            ("python.toml".to_string(), language_file("python.toml")),
            (
                "python-gvisor.toml".to_string(),
                language_file("available/python-gvisor.toml"),
            ),
        ],
        |_| {},
    )
    .await
}

#[tokio::test]
async fn a_gvisor_language_runs_on_gvisors_kernel_and_runc_languages_on_the_hosts() {
    let app = gvisor_app().await;
    let (status, ready) = app.get("/ready").await;
    assert_eq!(
        status, 200,
        "runsc is not registered with the engine: {ready}"
    );
    let code = "import os\nprint(os.uname().release)";
    let under_gvisor = app.run_in("python-gvisor", code).await;
    assert_eq!(under_gvisor["stdout"], "4.4.0\n", "{under_gvisor}");
    let host = app.python(code).await;
    assert_ne!(host["stdout"], "4.4.0\n", "{host}");
    app.stop().await;
}

#[tokio::test]
async fn under_gvisor_every_limit_holds() {
    let app = gvisor_app().await;
    let busy = app
        .run_ok(json!({
            "language": "python-gvisor",
            "code": "print('busy', flush=True)\nwhile True: pass",
            "timeout_ms": 1500,
        }))
        .await;
    assert_eq!(busy["status"], "timeout", "{busy}");
    assert_eq!(busy["stdout"], "busy\n");
    let bomb = app
        .run_in(
            "python-gvisor",
            "a = []\nwhile True:\n    a.append(bytearray(16 << 20))",
        )
        .await;
    assert_eq!(bomb["status"], "memory_limit", "{bomb}");
    let flood = app
        .run_in("python-gvisor", "while True:\n    print('x' * 999)")
        .await;
    assert_eq!(flood["status"], "output_limit", "{flood}");
    assert_eq!(flood["stdout"].as_str().unwrap().len(), 65536);
    // A fork bomb is contained: under gVisor, the copies' memory counts
    // towards the sandbox's cgroup, so it may end at either limit.
    let forks = app
        .run_ok(json!({
            "language": "python-gvisor",
            "code": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
            "timeout_ms": 2000,
        }))
        .await;
    let status = forks["status"].as_str().unwrap();
    assert!(matches!(status, "timeout" | "memory_limit"), "{forks}");
    assert!(forks["duration_ms"].as_u64().unwrap() < 3000, "{forks}");
    // And the process limit holds: threads stop short of 64 tasks (gVisor
    // counts RLIMIT_NPROC in the sandbox's own kernel).
    let counted = app
        .run_in(
            "python-gvisor",
            concat!(
                "import threading, time\n",
                "n = 0\n",
                "try:\n",
                "    while n < 500:\n",
                "        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n",
                "        n += 1\n",
                "except RuntimeError:\n",
                "    print('stopped at', n < 64)\n",
            ),
        )
        .await;
    assert_eq!(counted["stdout"], "stopped at True\n", "{counted}");

    let inside = app
        .run_in(
            "python-gvisor",
            concat!(
                "import os, socket\n",
                "try:\n",
                "    open('/etc/x', 'w')\n",
                "    print('root writable')\n",
                "except OSError as e:\n",
                "    print('root', e.strerror)\n",
                "print('uid', os.getuid(), os.getgid())\n",
                "try:\n",
                "    socket.getaddrinfo('example.com', 80)\n",
                "    print('resolved')\n",
                "except OSError:\n",
                "    print('no resolver')\n",
                "print('interfaces', sorted(i[1] for i in socket.if_nameindex()))\n",
            ),
        )
        .await;
    let stdout = inside["stdout"].as_str().unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    // gVisor checks the permission before the read-only mount.
    assert!(
        matches!(
            lines[0],
            "root Read-only file system" | "root Permission denied"
        ),
        "{inside}"
    );

    let uid: u32 = lines[1].split(' ').nth(1).unwrap().parse().unwrap();
    assert!(app.uids.contains(uid), "{inside}");
    assert_eq!(lines[2..], ["no resolver", "interfaces ['lo']"], "{inside}");
    // A run beside them all is unharmed.
    assert_eq!(app.python("print('fine')").await["stdout"], "fine\n");
    app.stop().await;
}

#[tokio::test]
async fn a_language_whose_runtime_the_engine_does_not_know_is_named_by_ready_and_refused_with_503()
{
    let ghost = language_file("available/python-gvisor.toml")
        .replace("name = \"python-gvisor\"", "name = \"python-ghost\"")
        .replace("aliases = [\"py-gvisor\"]", "aliases = []")
        .replace("runtime = \"runsc\"", "runtime = \"no-such-runtime\"");
    let app = spawn_app_with_languages(
        vec![
            ("python.toml".to_string(), language_file("python.toml")),
            ("ghost.toml".to_string(), ghost),
        ],
        |_| {},
    )
    .await;
    let (status, ready) = app.get("/ready").await;
    assert_eq!(status, 503, "{ready}");
    let problem = ready["problems"][0].as_str().unwrap();
    assert!(
        problem.contains("`no-such-runtime`") && problem.contains("python-ghost"),
        "{ready}"
    );
    let (status, body) = app
        .run(json!({"language": "python-ghost", "code": "print(1)"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("runtime_missing")),
        "{body}"
    );
    assert_eq!(body["runtime"], "no-such-runtime");
    assert_eq!(
        app.python("print('runc still runs')").await["stdout"],
        "runc still runs\n"
    );
    app.stop().await;
}
