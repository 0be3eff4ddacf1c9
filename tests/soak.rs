//! Soak test: the real binary under a mixed load above its run limit.
//!
//! Sends `SOAK_REQUESTS` programs (default 300, the short form every
//! `cargo test` runs; `scripts/soak` runs 3000) from 16 concurrent clients
//! to a service with 4 run slots and a queue of 8, mixing hello worlds,
//! errors, timeouts, memory bombs and output floods; a client answered 429
//! waits a moment and sends again. Every answer must be right for its
//! program, or a 429; no 5xx; every program runs in the end; the service's
//! RSS must stay flat; no labelled container may be left; Docker's disk use
//! must not grow. It prints its figures.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

const CONCURRENCY: usize = 16;

/// One kind of program, and how its answer must look.
#[derive(Clone)]
struct Program {
    name: &'static str,
    body: Value,
    check: fn(&Value) -> bool,
}

fn programs() -> Vec<(usize, Program)> {
    vec![
        (
            10,
            Program {
                name: "hello",
                body: json!({"language": "python", "code": "print('Hello, from the container!')"}),
                check: |a| a["status"] == "ok" && a["output"] == "Hello, from the container!\n",
            },
        ),
        (
            4,
            Program {
                name: "error",
                body: json!({"language": "python", "code": "prit('x')"}),
                check: |a| {
                    a["status"] == "runtime_error"
                        && a["exit_code"] == 1
                        && a["error"].as_str().unwrap_or("").contains("NameError")
                },
            },
        ),
        (
            2,
            Program {
                name: "timeout",
                body: json!({"language": "python", "code": "while True: pass", "timeout_ms": 500}),
                check: |a| a["status"] == "timeout" && a["signal"] == "SIGKILL",
            },
        ),
        (
            2,
            Program {
                name: "memory",
                body: json!({"language": "python", "code": "a = []\nwhile True:\n    a.append(bytearray(16 << 20))"}),
                check: |a| a["status"] == "memory_limit",
            },
        ),
        (
            2,
            Program {
                name: "flood",
                body: json!({"language": "python", "code": "while True:\n    print('x' * 999)"}),
                check: |a| {
                    a["status"] == "output_limit"
                        && a["stdout"].as_str().map(str::len) == Some(65536)
                },
            },
        ),
    ]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// `docker system df`, per type: (type, count, bytes).
fn disk_use() -> Vec<(String, u64, f64)> {
    let out = Command::new("docker")
        .args(["system", "df", "--format", "{{json .}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).unwrap();
            let count = row["TotalCount"]
                .as_str()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0);
            (
                row["Type"].as_str().unwrap_or("").to_string(),
                count,
                bytes(row["Size"].as_str().unwrap_or("0B")),
            )
        })
        .collect()
}

/// Parses Docker's human sizes ("0B", "12.3kB", "1.2GB").
fn bytes(size: &str) -> f64 {
    let split = size
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(size.len());
    let (number, unit) = size.split_at(split);
    let number: f64 = number.parse().unwrap_or(0.0);
    number
        * match unit {
            "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            _ => 1.0,
        }
}

fn labelled(instance: &str) -> usize {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=code-runner={instance}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    let requests: usize = std::env::var("SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    assert!(
        Command::new("docker")
            .arg("info")
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success(),
        "the soak test needs a running Docker engine"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let instance = format!(
        "test-soak-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_code-runner"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CODE_RUNNER_") {
            command.env_remove(key);
        }
    }
    let child = command
        .env("CODE_RUNNER_PORT", port.to_string())
        .env("CODE_RUNNER_INSTANCE", &instance)
        .env(
            "CODE_RUNNER_LANGUAGES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/languages"),
        )
        .env("CODE_RUNNER_MAX_CONCURRENT_RUNS", "4")
        .env("CODE_RUNNER_MAX_QUEUE", "8")
        .env("CODE_RUNNER_JUDGE0__DATABASE", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let service = Service(child);
    let pid = service.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the service did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Warm up, then take the first figures.
    for _ in 0..4 {
        client
            .post(format!("{base}/run-code"))
            .json(&programs()[0].1.body)
            .send()
            .await
            .unwrap();
    }
    let disk_before = disk_use();
    let rss_start = rss_kib(pid);

    let mix: Arc<Vec<Program>> = Arc::new(
        programs()
            .into_iter()
            .flat_map(|(weight, program)| std::iter::repeat_n(program, weight))
            .collect(),
    );
    let done = Arc::new(AtomicUsize::new(0));
    let rss_middle = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // Each client retries a 429 after a pause, as its Retry-After asks
    // (shortened, so the test keeps the slots busy); every answer counts.
    let results: Vec<Vec<(&'static str, u16, bool)>> = futures_util::stream::iter(0..requests)
        .map(|i| {
            let client = client.clone();
            let base = base.clone();
            let mix = mix.clone();
            let done = done.clone();
            let rss_middle = rss_middle.clone();
            async move {
                let program = &mix[i % mix.len()];
                let mut answers = Vec::new();
                for attempt in 0.. {
                    let response = client
                        .post(format!("{base}/run-code"))
                        .json(&program.body)
                        .send()
                        .await
                        .expect("every request is answered");
                    let status = response.status().as_u16();
                    let answer: Value = response.json().await.expect("a JSON answer");
                    let right = match status {
                        200 => (program.check)(&answer),
                        429 => answer["code"] == "busy",
                        _ => false,
                    };
                    if !right {
                        eprintln!("wrong answer to {}: {status} {answer}", program.name);
                    }
                    answers.push((program.name, status, right));
                    if status != 429 || attempt == 1000 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100 + (i as u64 * 37) % 200)).await;
                }
                if done.fetch_add(1, Ordering::SeqCst) + 1 == requests / 2 {
                    rss_middle.store(rss_kib(pid) as usize, Ordering::SeqCst);
                }
                answers
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let results: Vec<(&'static str, u16, bool)> = results.into_iter().flatten().collect();
    let elapsed = started.elapsed();
    let rss_end = rss_kib(pid);
    let rss_middle = rss_middle.load(Ordering::SeqCst) as u64;

    drop(service);
    let left = labelled(&instance);
    let disk_after = disk_use();

    let count = |f: &dyn Fn(&(&str, u16, bool)) -> bool| results.iter().filter(|r| f(r)).count();
    let ok = count(&|r| r.1 == 200);
    let busy = count(&|r| r.1 == 429);
    let server_errors = count(&|r| r.1 >= 500);
    let wrong = count(&|r| !r.2);
    println!(
        "soak: {requests} programs at concurrency {CONCURRENCY} in {elapsed:.1?} ({:.1} runs/s)",
        ok as f64 / elapsed.as_secs_f64()
    );
    println!("soak: answers: 200: {ok}, 429: {busy}, 5xx: {server_errors}, wrong: {wrong}");
    for program in programs() {
        let name = program.1.name;
        println!(
            "soak:   {name}: {} ran, {} refused with 429",
            count(&|r| r.0 == name && r.1 == 200),
            count(&|r| r.0 == name && r.1 == 429)
        );
    }
    println!("soak: service RSS start {rss_start} KiB, middle {rss_middle} KiB, end {rss_end} KiB");
    println!("soak: docker system df before {disk_before:?}");
    println!("soak: docker system df after  {disk_after:?}");
    println!("soak: labelled containers left: {left}");

    assert_eq!(server_errors, 0, "5xx answers");
    assert_eq!(wrong, 0, "wrong answers");
    assert_eq!(ok, requests, "every program ran in the end");
    assert_eq!(left, 0, "containers left");
    for (kind, count, size) in &disk_after {
        if kind == "Containers" || kind == "Local Volumes" {
            let (_, count_before, size_before) =
                disk_before.iter().find(|(k, _, _)| k == kind).unwrap();
            assert!(
                count <= count_before,
                "{kind} grew: {count_before} → {count}"
            );
            assert!(
                size <= size_before,
                "{kind} grew: {size_before} → {size} bytes"
            );
        }
    }
    let flat = rss_start.max(rss_middle) + 8 * 1024;
    assert!(
        rss_end <= flat,
        "RSS grew: {rss_start} → {rss_middle} → {rss_end} KiB"
    );
}
