//! The pool's rules: a pooled container serves one run only, with the same
//! isolation as a cold one; the deadline counts from the claim; a pooled
//! container that died is never handed out; nothing is left at shutdown.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bollard::query_parameters::{KillContainerOptionsBuilder, ListContainersOptionsBuilder};
use serde_json::{Value, json};

use crate::helpers::{CGROUP_LIMITS_PY, TestApp, spawn_app_with};

/// The running containers of `app`'s instance (the pool's, between runs).
async fn running(app: &TestApp) -> Vec<String> {
    let filters = HashMap::from([
        (
            "label".to_string(),
            vec![format!("code-runner={}", app.instance)],
        ),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let options = ListContainersOptionsBuilder::default()
        .filters(&filters)
        .build();
    app.docker
        .list_containers(Some(options))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// Waits until `/ready` says python's pool holds `size` warmed containers;
/// returns the running containers then.
async fn wait_for_pool(app: &TestApp, size: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let (_, ready) = app.get("/ready").await;
        if ready["pool"]["python"].as_u64() >= Some(size as u64) {
            return running(app).await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the pool did not fill: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A test server whose pools keep `size` sandboxes per language, with
/// interpreters pre-started (`prestart`) or not.
async fn spawn_pool(size: usize, prestart: bool) -> TestApp {
    spawn_app_with(move |c| {
        crate::helpers::pooled(c, size);
        c.pool.prestart = prestart;
    })
    .await
}

/// Runs python; returns the answer and whether it came from the pool.
async fn run(app: &TestApp, body: Value) -> (Value, String) {
    let response = app
        .client
        .post(app.url("/run-code"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let pool = response
        .headers()
        .get("x-code-runner-pool")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    // A pooled run's Server-Timing holds only what the request spent: the
    // sandbox's creation and start were the pool's, earlier.
    let timing = response.headers()["server-timing"].to_str().unwrap();
    if pool == "hit" {
        assert!(
            !timing.contains("create;") && !timing.contains("start;"),
            "{timing}"
        );
    }
    (response.json().await.unwrap(), pool)
}

const CONTAINER_ID: &str = "import re\nprint(re.search(r'containers/([0-9a-f]{64})/', open('/proc/self/mountinfo').read()).group(1))";

#[tokio::test]
async fn the_pool_fills_and_a_pooled_container_serves_exactly_one_run() {
    let app = spawn_app_with(|c| crate::helpers::pooled(c, 2)).await;
    let pooled = wait_for_pool(&app, 2).await;
    let mut seen = HashSet::new();
    let mut hits = 0;
    for i in 0..6 {
        let (answer, pool) = run(&app, json!({"language": "python", "code": CONTAINER_ID})).await;
        let id = answer["stdout"].as_str().unwrap().trim().to_string();
        assert_eq!(id.len(), 64, "{answer}");
        assert!(seen.insert(id.clone()), "container {id} served two runs");
        if i == 0 {
            assert_eq!(pool, "hit");
            assert!(
                pooled.contains(&id),
                "the first run did not get a waiting container"
            );
        }
        if pool == "hit" {
            hits += 1;
        }
        // Give the refill its quiet moment.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(hits >= 4, "only {hits} of 6 runs came from the pool");
    // A used container is removed, never put back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now: HashSet<String> = running(&app).await.into_iter().collect();
    assert!(now.is_disjoint(&seen), "a used container is still running");
    app.stop().await;
}

#[tokio::test]
async fn a_pooled_run_has_the_isolation_of_a_cold_one() {
    for prestart in [true, false] {
        pooled_isolation(prestart).await;
    }
}

/// The isolation test, with python's interpreter pre-started or not.
async fn pooled_isolation(prestart: bool) {
    let app = spawn_pool(1, prestart).await;
    wait_for_pool(&app, 1).await;
    let code = [
        CGROUP_LIMITS_PY,
        concat!(
            "import os, socket\n",
            "print(sorted(os.listdir('/sys/class/net')), len(open('/proc/net/route').read().splitlines()) - 1)\n",
            "print(os.getuid(), os.getgid())\n",
            "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n",
            "print(status['CapEff'].strip(), status['NoNewPrivs'].strip(), status['Seccomp'].strip())\n",
            "print(memory_mb(), pids_max())\n",
            "try:\n",
            "    open('/etc/x', 'w')\n",
            "except OSError as e:\n",
            "    print(e.strerror)\n",
        ),
    ]
    .concat();
    let (answer, pool) = run(&app, json!({"language": "python", "code": code})).await;
    assert_eq!(pool, "hit");
    let stdout = answer["stdout"].as_str().unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "['lo'] 0", "{answer}");
    let ids: Vec<u32> = lines[1].split(' ').map(|i| i.parse().unwrap()).collect();
    assert!(app.uids.contains(ids[0]) && ids[0] == ids[1], "{answer}");
    assert_eq!(
        lines[2..],
        ["0000000000000000 1 2", "128 64", "Read-only file system"],
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_pooled_run_keeps_the_limits_and_statuses() {
    for prestart in [true, false] {
        pooled_limits(prestart).await;
    }
}

/// The limits test, with python's interpreter pre-started or not.
async fn pooled_limits(prestart: bool) {
    let app = spawn_pool(2, prestart).await;
    wait_for_pool(&app, 2).await;
    let (answer, pool) = run(
        &app,
        json!({"language": "python", "code": "a = []\nwhile True:\n    a.append(bytearray(16 << 20))"}),
    )
    .await;
    assert_eq!(
        (answer["status"].as_str().unwrap(), pool.as_str()),
        ("memory_limit", "hit"),
        "{answer}"
    );
    let (answer, pool) = run(
        &app,
        json!({"language": "python", "code": "import sys\nprint(sys.stdin.read()[::-1])", "stdin": "olleh", "args": []}),
    )
    .await;
    assert_eq!(
        (answer["stdout"].as_str().unwrap(), pool.as_str()),
        ("hello\n", "hit"),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_deadline_counts_from_the_claim_not_the_containers_start() {
    for prestart in [true, false] {
        pooled_deadline(prestart).await;
    }
}

/// The deadline test, with python's interpreter pre-started or not.
async fn pooled_deadline(prestart: bool) {
    let app = spawn_pool(1, prestart).await;
    wait_for_pool(&app, 1).await;
    // The pooled container has now been up well over the run's limit.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (answer, pool) = run(
        &app,
        json!({"language": "python", "code": "import time\ntime.sleep(1)\nprint('slept')", "timeout_ms": 1500}),
    )
    .await;
    assert_eq!(pool, "hit");
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["stdout"], "slept\n");
    let ms = answer["duration_ms"].as_u64().unwrap();
    assert!((1000..1500).contains(&ms), "{ms}");
    app.stop().await;
}

#[tokio::test]
async fn a_pooled_container_killed_from_outside_is_not_handed_out() {
    let app = spawn_app_with(|c| crate::helpers::pooled(c, 1)).await;
    let pooled = wait_for_pool(&app, 1).await;
    let kill = KillContainerOptionsBuilder::default()
        .signal("SIGKILL")
        .build();
    app.docker
        .kill_container(&pooled[0], Some(kill))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (answer, pool) = run(&app, json!({"language": "python", "code": CONTAINER_ID})).await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(pool, "miss");
    assert_ne!(answer["stdout"].as_str().unwrap().trim(), pooled[0]);
    // The pool fills again.
    let refilled = wait_for_pool(&app, 1).await;
    assert!(!refilled.contains(&pooled[0]));
    app.stop().await;
}

#[tokio::test]
async fn shutdown_removes_the_pool() {
    let app = spawn_app_with(|c| crate::helpers::pooled(c, 3)).await;
    wait_for_pool(&app, 3).await;
    // stop() checks that no container of the instance is left.
    app.stop().await;
}

/// Waits until `/ready` says `language`'s pool holds `size`.
async fn wait_for_language(app: &TestApp, language: &str, size: u64) {
    let started = Instant::now();
    loop {
        let (_, ready) = app.get("/ready").await;
        if ready["pool"][language].as_u64() >= Some(size) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the {language} pool did not fill: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_compiled_language_is_pooled_as_a_pair_that_serves_one_compile_and_run() {
    let app = crate::helpers::spawn_app_with_languages(
        vec![(
            "c.toml".to_string(),
            crate::helpers::language_file("available/c.toml"),
        )],
        |c| crate::helpers::pooled(c, 1),
    )
    .await;
    wait_for_language(&app, "c", 1).await;
    // A pair is two waiting containers and their volume.
    assert_eq!(running(&app).await.len(), 2);
    let hello = json!({
        "language": "c",
        "code": "#include <stdio.h>\nint twice(int);\nint main(void) { int x; scanf(\"%d\", &x); printf(\"%d\\n\", twice(x)); return 0; }",
        "files": [{"name": "util.c", "content": "int twice(int x) { return 2 * x; }"}],
        "stdin": "21"
    });
    let (answer, pool) = run(&app, hello.clone()).await;
    assert_eq!(pool, "hit");
    assert_eq!(answer["stdout"], "42\n", "{answer}");
    assert_eq!(answer["compile"]["status"], "ok");
    // The next comes from a fresh pair, never the one just used.
    wait_for_language(&app, "c", 1).await;
    let (broken, pool) = run(&app, json!({"language": "c", "code": "int main( {"})).await;
    assert_eq!(pool, "hit");
    assert_eq!(broken["status"], "compile_error", "{broken}");
    app.stop().await;
}

#[tokio::test]
async fn a_run_that_lowers_a_limit_the_container_holds_gets_a_sandbox_of_its_own() {
    let app = spawn_app_with(|c| crate::helpers::pooled(c, 1)).await;
    wait_for_pool(&app, 1).await;
    // Piston's run_memory_limit lowers the memory the container holds: a
    // pooled sandbox (128 MiB) would not hold 48 MiB.
    let response = app
        .client
        .post(app.url("/api/v2/execute"))
        .json(&json!({
            "language": "python", "version": "*",
            "files": [{"content": "x = bytearray(80 << 20)\nprint('fits')"}],
            "run_memory_limit": 48 << 20
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-code-runner-pool"], "miss");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["run"]["message"], "Memory limit exceeded",
        "{answer}"
    );
    // A lower wall-clock limit is the service's to hold: the pool serves it.
    let (answer, pool) = run(
        &app,
        json!({"language": "python", "code": "print(1)", "timeout_ms": 2000}),
    )
    .await;
    assert_eq!((pool.as_str(), &answer["stdout"]), ("hit", &json!("1\n")));
    app.stop().await;
}
