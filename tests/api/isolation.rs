//! The second layer of isolation, observed from inside the sandbox: the
//! service's own seccomp profile, uids that no two live sandboxes share,
//! the real exit status, and a pool that never hands out a dead sandbox.
//! Nothing here sends a packet anywhere.

use std::collections::HashSet;
use std::time::Duration;

use bollard::query_parameters::KillContainerOptionsBuilder;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, spawn_catalogue_app};

/// Calls each system call by number from python (ctypes) and prints its
/// name and the errno it failed with, or `allowed`.
const PROBE: &str = r#"
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(256)
child = os.fork()
if child == 0:
    import time
    time.sleep(30)
    os._exit(0)
calls = [
    ("io_uring_setup", 425, (4, buf)),
    ("keyctl", 250, (0, 0)),
    ("add_key", 248, (b"user", b"k", b"v", 1, -2)),
    ("bpf", 321, (0, buf, 64)),
    ("userfaultfd", 323, (0,)),
    ("perf_event_open", 298, (buf, 0, -1, -1, 0)),
    ("ptrace", 101, (16, child, 0, 0)),
    ("unshare", 272, (0x10000000,)),
    ("mount", 165, (b"none", b"/tmp", b"tmpfs", 0, None)),
    ("open_by_handle_at", 304, (-100, buf, 0)),
    ("process_vm_readv", 310, (child, buf, 1, buf, 1, 0)),
]
for name, number, args in calls:
    r = libc.syscall(number, *args)
    print(name, "allowed" if r >= 0 else errno.errorcode[ctypes.get_errno()])
os.kill(child, 9)
"#;

#[tokio::test]
async fn the_services_seccomp_profile_refuses_what_current_docker_refuses_and_more() {
    let app = spawn_app().await;
    let answer = app.python(PROBE).await;
    let expected: String = [
        "io_uring_setup",
        "keyctl",
        "add_key",
        "bpf",
        "userfaultfd",
        "perf_event_open",
        "ptrace",
        "unshare",
        "mount",
        "open_by_handle_at",
        "process_vm_readv",
    ]
    .iter()
    .map(|name| format!("{name} EPERM\n"))
    .collect();
    assert_eq!(answer["stdout"], expected, "{answer}");
    assert_eq!(answer["status"], "ok", "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn the_exit_status_is_the_programs_own_and_a_signal_only_when_one_killed_it() {
    let app = spawn_catalogue_app().await;
    let exited = app
        .run_in("python", "import sys\nprint('x')\nsys.exit(139)")
        .await;
    assert_eq!(
        (&exited["status"], &exited["exit_code"], &exited["signal"]),
        (&json!("runtime_error"), &json!(139), &json!(null)),
        "{exited}"
    );
    assert_eq!(exited["stdout"], "x\n");
    assert_eq!(exited["error"], "The program exited with code 139.");
    let segfault = app
        .run_in("python", "import ctypes\nctypes.string_at(0)")
        .await;
    assert_eq!(
        (
            &segfault["status"],
            &segfault["signal"],
            &segfault["exit_code"]
        ),
        (&json!("runtime_error"), &json!("SIGSEGV"), &json!(139)),
        "{segfault}"
    );
    let c = app
        .run_in("c", "int main(void) { volatile int *p = 0; return *p; }")
        .await;
    assert_eq!(c["signal"], "SIGSEGV", "{c}");
    assert_eq!(c["error"], "The program was killed by SIGSEGV.");
    let shell = app.run_in("bash", "echo bye\nexit 130").await;
    assert_eq!(
        (&shell["exit_code"], &shell["signal"]),
        (&json!(130), &json!(null)),
        "{shell}"
    );
    let killed = app.run_in("bash", "kill -INT $$").await;
    assert_eq!(killed["signal"], "SIGINT", "{killed}");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_and_pooled_sandboxes_never_share_a_uid() {
    let app = spawn_app_with(|c| {
        crate::helpers::pooled(c, 3);
        c.runs.max_concurrent = 6;
    })
    .await;
    // Let the pool fill, then run six at once (three pooled, three cold)
    // while the pool refills beside them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let code = "import os, time\nprint(os.getuid(), os.getgid())\ntime.sleep(1.5)";
    let runs = futures_util::future::join_all((0..6).map(|_| app.python(code)));
    let watch = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        live_users(&app).await
    };
    let (answers, live) = tokio::join!(runs, watch);
    let mut seen = HashSet::new();
    for answer in &answers {
        let ids: Vec<u32> = answer["stdout"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .map(|i| i.parse().unwrap())
            .collect();
        assert_eq!(ids[0], ids[1], "{answer}");
        assert!(app.uids.contains(ids[0]), "{answer}");
        assert!(seen.insert(ids[0]), "uid {} served two live runs", ids[0]);
    }
    // Every live sandbox at that moment (runs and the pool refilling) had
    // a uid of its own, none the service's.
    let own = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    let distinct: HashSet<&u32> = live.iter().collect();
    assert!(live.len() >= 6, "{live:?}");
    assert_eq!(distinct.len(), live.len(), "{live:?}");
    assert!(!live.contains(&own));
    app.stop().await;
}

/// The uids of this app's running sandboxes, from the engine.
async fn live_users(app: &TestApp) -> Vec<u32> {
    let mut users = Vec::new();
    for id in crate::helpers::sandboxes_of(&app.docker, &app.instance).await {
        let Ok(inspected) = app.docker.inspect_container(&id, None).await else {
            continue;
        };
        let running = inspected.state.and_then(|s| s.running) == Some(true);
        let user = inspected.config.and_then(|c| c.user).unwrap_or_default();
        if running {
            users.push(user.split(':').next().unwrap().parse().unwrap());
        }
    }
    users
}

#[tokio::test]
async fn a_range_too_small_for_the_run_slots_and_the_pool_stops_start_up() {
    let mut config = crate::helpers::test_config();
    config.runs.max_concurrent = 4;
    config.pool.size = 2;
    config.sandbox_uids = Some("700000-700004".parse().unwrap());
    let err = code_runner::Application::build(config)
        .await
        .err()
        .expect("start-up fails")
        .to_string();
    assert!(err.contains("`sandbox_uids`"), "{err}");
    assert!(err.contains("holds 5 uids, fewer than the 6"), "{err}");
}

#[tokio::test]
async fn a_pooled_sandbox_killed_right_before_a_request_never_costs_the_request_its_run() {
    // One pooled sandbox, and a budget that holds no more (the pool would
    // grow with the rounds' demand).
    let app = spawn_app_with(|c| {
        c.pool.size = 1;
        c.pool.memory_mb = code_runner::config::IDLE_SANDBOX_MB;
    })
    .await;
    for round in 0..3 {
        let pooled = wait_for_pooled(&app).await;
        let kill = async {
            let options = KillContainerOptionsBuilder::default()
                .signal("SIGKILL")
                .build();
            app.docker
                .kill_container(&pooled, Some(options))
                .await
                .unwrap();
        };
        // Killed, and the request sent the moment the engine says so:
        // before the service has heard of the death.
        kill.await;
        let answer = app.python("print('ran', 6 * 7)").await;

        assert_eq!(answer["status"], "ok", "round {round}: {answer}");
        assert_eq!(answer["stdout"], "ran 42\n", "round {round}: {answer}");
    }
    app.stop().await;
}

/// Waits until the pool holds a sandbox; returns its id.
async fn wait_for_pooled(app: &TestApp) -> String {
    let started = std::time::Instant::now();
    loop {
        let (_, ready) = app.get("/ready").await;
        if ready["pool"]["python"].as_u64() >= Some(1) {
            let running = crate::helpers::sandboxes_of(&app.docker, &app.instance).await;
            if let [only] = &running[..] {
                return only.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no pooled sandbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_run_is_never_memory_limit_because_of_another_run() {
    let app = spawn_app().await;
    let bomb = "a = []\nwhile True:\n    a.append(bytearray(16 << 20))";
    let calm = "import time\nx = bytearray(8 << 20)\ntime.sleep(1.5)\nprint('calm')";
    let (bombs, calms) = tokio::join!(
        futures_util::future::join_all((0..2).map(|_| app.python(bomb))),
        futures_util::future::join_all((0..2).map(|_| app.python(calm))),
    );
    for answer in bombs {
        assert_eq!(answer["status"], "memory_limit", "{answer}");
    }
    for answer in calms {
        assert_eq!(
            (&answer["status"], &answer["stdout"]),
            (&json!("ok"), &json!("calm\n")),
            "{answer}"
        );
    }
    app.stop().await;
}
