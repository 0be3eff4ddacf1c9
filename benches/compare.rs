//! Benchmark: code-runner against plain `docker run --rm`, side by side.
//!
//! `cargo bench --bench compare` (or `scripts/bench`) starts two release
//! builds of the service on loopback, one with the pool off and one with it
//! on, and measures in one run, alternating, on the same image, program and
//! limits:
//!
//! 1. `docker run --rm` through the CLI (the baseline),
//! 2. `POST /run-code` with the pool off,
//! 3. `POST /run-code` with the pool on,
//!
//! at concurrency 1 (latency p50, p95, p99) and at concurrency 8 (runs per
//! second, errors, runs served from the pool), plus the pooled service's
//! RSS idle and under load, and the time a request spends outside Docker
//! calls (from the service's `Server-Timing` header). It prints a table with
//! the ratios to the baseline.
//!
//! Each concurrency-1 round sends a few requests per mode, in a rotating
//! order, with an idle pause between modes, so that no mode pays for
//! another's background work (the pool's refills, the CLI's removals).
//! Environment: `BENCH_ROUNDS` (default 10), `BENCH_PER_ROUND` (5),
//! `BENCH_BURST` (48), `BENCH_BURSTS` (3), `BENCH_POOL_SIZE` (48: the pool
//! sized to the burst; with 8, the pool drains, see the README).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

const IMAGE: &str = "python:3.13-slim";
const CODE: &str = "print('Hello, from the container!')";
const EXPECTED: &str = "Hello, from the container!\n";
const CONCURRENCY: usize = 8;
const PAUSE: Duration = Duration::from_millis(1500);

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The limits of `languages/python.toml`, as `docker run` flags.
fn cli_args() -> Vec<String> {
    [
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "128m",
        "--memory-swap",
        "128m",
        "--cpus",
        "1",
        "--pids-limit",
        "64",
        "--read-only",
        "--tmpfs",
        "/tmp:rw,noexec,nosuid,nodev,size=33554432,nr_inodes=4096,mode=1777",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges:true",
        "--user",
        "65534:65534",
        "--init",
        "--log-driver",
        "none",
        IMAGE,
        "python3",
        "-c",
        CODE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Cli,
    NoPool,
    Pool,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Cli => "docker run --rm (CLI)",
            Mode::NoPool => "code-runner, pool off",
            Mode::Pool => "code-runner, pool on",
        }
    }
}

/// One run's result.
struct Sample {
    latency: Duration,
    ok: bool,
    pooled: bool,
    /// Milliseconds the service spent outside Docker calls.
    outside_ms: Option<f64>,
    /// The service's phases (`Server-Timing`), in ms.
    phases: Vec<(String, f64)>,
}

struct Service {
    child: Child,
    url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start_service(pool_size: usize, instance: &str) -> Service {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_code-runner"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CODE_RUNNER_") {
            command.env_remove(key);
        }
    }
    let child = command
        .env("CODE_RUNNER_PORT", port.to_string())
        .env("CODE_RUNNER_INSTANCE", instance)
        .env(
            "CODE_RUNNER_LANGUAGES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/languages"),
        )
        .env("CODE_RUNNER_POOL_SIZE", pool_size.to_string())
        .env("CODE_RUNNER_POOL_REFILLS", "2")
        .env("CODE_RUNNER_MAX_CONCURRENT_RUNS", CONCURRENCY.to_string())
        .env("CODE_RUNNER_MAX_QUEUE", "256")
        .env("CODE_RUNNER_JUDGE0__DATABASE", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the service starts");
    Service {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn run_cli() -> Sample {
    let started = Instant::now();
    let out = tokio::process::Command::new("docker")
        .args(cli_args())
        .output()
        .await
        .expect("docker runs");
    Sample {
        latency: started.elapsed(),
        ok: out.status.success() && String::from_utf8_lossy(&out.stdout) == EXPECTED,
        pooled: false,
        outside_ms: None,
        phases: Vec::new(),
    }
}

async fn run_service(client: &reqwest::Client, url: &str) -> Sample {
    let started = Instant::now();
    let response = client
        .post(format!("{url}/run-code"))
        .json(&json!({"language": "python", "code": CODE}))
        .send()
        .await;
    let Ok(response) = response else {
        return Sample {
            latency: started.elapsed(),
            ok: false,
            pooled: false,
            outside_ms: None,
            phases: Vec::new(),
        };
    };
    let pooled = response
        .headers()
        .get("x-code-runner-pool")
        .is_some_and(|v| v == "hit");
    let timing = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let outside_ms = outside_docker_ms(&timing);
    let phases = server_timing(&timing);
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Sample {
        latency: started.elapsed(),
        ok: status == 200 && body["output"] == EXPECTED,
        pooled,
        outside_ms,
        phases,
    }
}

/// The `name;dur=ms` entries of a `Server-Timing` header.
fn server_timing(header: &str) -> Vec<(String, f64)> {
    header
        .split(',')
        .filter_map(|part| {
            let (name, dur) = part.trim().split_once(";dur=")?;
            Some((name.to_string(), dur.parse().ok()?))
        })
        .collect()
}

/// `total - docker` from `docker;dur=X, total;dur=Y`.
fn outside_docker_ms(header: &str) -> Option<f64> {
    let mut docker = None;
    let mut total = None;
    for part in header.split(',') {
        let (name, dur) = part.trim().split_once(";dur=")?;
        let dur: f64 = dur.parse().ok()?;
        match name {
            "docker" => docker = Some(dur),
            "total" => total = Some(dur),
            _ => {}
        }
    }
    Some(total? - docker?)
}

async fn one(mode: Mode, client: &reqwest::Client, services: &[Service; 2]) -> Sample {
    match mode {
        Mode::Cli => run_cli().await,
        Mode::NoPool => run_service(client, &services[0].url).await,
        Mode::Pool => run_service(client, &services[1].url).await,
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(samples: &[Sample], q: f64) -> f64 {
    let mut h = Histogram::<u64>::new(3).unwrap();
    for s in samples {
        h.record(s.latency.as_micros() as u64).unwrap();
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = env_usize("BENCH_ROUNDS", 10);
    let per_round = env_usize("BENCH_PER_ROUND", 5);
    let burst = env_usize("BENCH_BURST", 48);
    let bursts = env_usize("BENCH_BURSTS", 3);
    let pool_size = env_usize("BENCH_POOL_SIZE", 48);

    let docker_ok = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        docker_ok,
        "Docker must answer and hold {IMAGE} (scripts/build-images)"
    );
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let services = [
        start_service(0, &format!("bench-nopool-{suffix}")),
        start_service(pool_size, &format!("bench-pool-{suffix}")),
    ];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    for service in &services {
        let started = Instant::now();
        while client
            .get(format!("{}/health", service.url))
            .send()
            .await
            .is_err()
        {
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Warm every path once, and let the pool fill.
    for mode in [Mode::Cli, Mode::NoPool, Mode::Pool] {
        one(mode, &client, &services).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pooled_pid = services[1].child.id();
    let rss_idle = rss_kib(pooled_pid);

    let machine = machine();
    println!("code-runner benchmark on {machine}");
    println!(
        "concurrency 1: {rounds} rounds of {per_round} sequential runs per mode, alternating; \
         concurrency {CONCURRENCY}: {bursts} bursts of {burst} runs per mode; pool size {pool_size}"
    );

    // Concurrency 1.
    let modes = [Mode::Cli, Mode::NoPool, Mode::Pool];
    let mut sequential: [Vec<Sample>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..3 {
            let index = (round + k) % 3;
            for _ in 0..per_round {
                sequential[index].push(one(modes[index], &client, &services).await);
            }
            tokio::time::sleep(PAUSE).await;
        }
    }

    // Concurrency 8.
    let peak = Arc::new(AtomicU64::new(rss_idle));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let peak = peak.clone();
        let sampling = sampling.clone();
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pooled_pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut bursts_out: [Vec<(Duration, Vec<Sample>)>; 3] = Default::default();
    for round in 0..bursts {
        for k in 0..3 {
            let index = (round + k) % 3;
            // Every mode starts its burst from rest (and the pool full).
            tokio::time::sleep(Duration::from_secs(3)).await;
            let started = Instant::now();
            let samples: Vec<Sample> = futures_util::stream::iter(0..burst)
                .map(|_| one(modes[index], &client, &services))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            bursts_out[index].push((started.elapsed(), samples));
        }
    }
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let rss_load = peak.load(Ordering::Relaxed);

    // The table.
    let p50_cli = percentile(&sequential[0], 0.5);
    let rate = |index: usize| {
        let runs: usize = bursts_out[index].iter().map(|(_, s)| s.len()).sum();
        let secs: f64 = bursts_out[index].iter().map(|(d, _)| d.as_secs_f64()).sum();
        runs as f64 / secs
    };
    let rate_cli = rate(0);
    println!();
    println!(
        "| mode | c=1 p50 ms | p95 ms | p99 ms | p50 / CLI | c={CONCURRENCY} runs/s | runs/s / CLI | errors | from pool |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (index, mode) in modes.iter().enumerate() {
        let seq = &sequential[index];
        let all_burst: Vec<&Sample> = bursts_out[index].iter().flat_map(|(_, s)| s).collect();
        let errors =
            seq.iter().filter(|s| !s.ok).count() + all_burst.iter().filter(|s| !s.ok).count();
        let pooled = all_burst.iter().filter(|s| s.pooled).count();
        let from_pool = if *mode == Mode::Cli {
            "–".to_string()
        } else {
            format!(
                "{pooled}/{} ({:.0} %)",
                all_burst.len(),
                100.0 * pooled as f64 / all_burst.len() as f64
            )
        };
        let p50 = percentile(seq, 0.5);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2}× | {:.2} | {:.2}× | {} | {} |",
            mode.name(),
            p50,
            percentile(seq, 0.95),
            percentile(seq, 0.99),
            p50 / p50_cli,
            rate(index),
            rate(index) / rate_cli,
            errors,
            from_pool
        );
    }
    let mut outside: Vec<f64> = sequential[1..]
        .iter()
        .flatten()
        .chain(bursts_out[1..].iter().flatten().flat_map(|(_, s)| s))
        .filter_map(|s| s.outside_ms)
        .collect();
    println!();
    println!(
        "time outside Docker calls per request (service, both modes): p50 {:.3} ms",
        median(&mut outside)
    );
    println!(
        "service RSS (pool on): idle {:.1} MiB, peak during the concurrency-{CONCURRENCY} bursts {:.1} MiB",
        rss_idle as f64 / 1024.0,
        rss_load as f64 / 1024.0
    );
    for (index, mode) in modes.iter().enumerate().skip(1) {
        let mut line = Vec::new();
        for phase in [
            "create", "attach", "start", "run", "state", "docker", "total",
        ] {
            let mut values: Vec<f64> = sequential[index]
                .iter()
                .flat_map(|s| &s.phases)
                .filter(|(name, _)| name == phase)
                .map(|(_, ms)| *ms)
                .collect();
            if !values.is_empty() {
                line.push(format!("{phase} {:.1}", median(&mut values)));
            }
        }
        println!(
            "{} at concurrency 1, p50 per phase (ms): {}",
            mode.name(),
            line.join(", ")
        );
    }
    let seq_pooled = sequential[2].iter().filter(|s| s.pooled).count();
    println!(
        "concurrency 1, pool on: {seq_pooled}/{} runs from the pool",
        sequential[2].len()
    );
}

/// A line describing the machine: CPUs, memory, Docker engine.
fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kib| format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    let engine = Command::new("docker")
        .args([
            "version",
            "--format",
            "Docker {{.Server.Version}} (API {{.Server.APIVersion}})",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let storage = Command::new("docker")
        .args([
            "info",
            "--format",
            "{{.Driver}}, cgroup v{{.CgroupVersion}}",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpus} CPUs, {memory}, {engine}, {storage}")
}
