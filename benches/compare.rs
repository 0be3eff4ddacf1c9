//! Benchmark: code-runner against plain `docker run --rm`, side by side.
//!
//! `cargo bench --bench compare` (or `scripts/bench`) starts release builds
//! of the service on loopback with the shipped python and the catalogue's
//! C, C++ and Java (and python under gVisor when the engine knows `runsc`),
//! and measures in one run, with the default configuration unless a line
//! says otherwise:
//!
//! 1. hello world at concurrency 1 (latency p50, p95), alternating between
//!    the CLI's `docker run --rm` of the same program, hardened as the
//!    service's sandbox as far as the CLI allows ([`cli_args`] says what is
//!    and is not the same), the service with the pool off, and the service
//!    with its defaults (pool on): for python, for C (the CLI compiles and
//!    runs in one container, the language file's `gcc` then the program) and
//!    for Java (`javac` then `java`);
//! 2. bursts of `BENCH_BURST` python runs at concurrency 8 from eight
//!    clients (each its own loopback address, as the fair shares count
//!    clients): the CLI's, the pool off's, a fresh service's very first
//!    burst after start-up (once python's pool has reached its floor; the
//!    time that took is printed), and its burst after an earlier one and
//!    10 s of rest (runs per second, errors, runs from the pool);
//! 3. python cold under runc and under runsc (gVisor);
//! 4. a C++ batch of 20 tests against the same 20 runs as requests;
//! 5. the service's RSS idle and under load, and the host memory of the
//!    idle pool (`docker stats`) against its budget;
//! 6. a CPU-bound program alone and while the pool refills after a burst
//!    (do refills take CPU from running programs?);
//! 7. streamed runs over `GET /run-code/ws`, pooled python: the time from
//!    a print to its frame at the client (the program prints the host's
//!    clock, the client reads its own at the frame), an `input()` echo's
//!    round trip (a line sent, the line echoed back), and the service's
//!    memory per idle open run (`BENCH_STREAMS` runs waiting at `input()`);
//! 8. judging: an interactor's round trip per question (a pooled python
//!    binary search against a C++ guess-the-number interactor, each
//!    question timed by the program from its print to the answer's line),
//!    and the C++ batch of section 4 judged by `trim` against the same
//!    batch judged by a checker in python and in C++.
//!
//! Environment: `BENCH_ROUNDS` (8), `BENCH_BURST` (48), `BENCH_STREAMS`
//! (16), `BENCH_ONLY=streaming` or `BENCH_ONLY=judging` (section 7 or 8
//! alone).

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

const CONCURRENCY: usize = 8;
const PAUSE: Duration = Duration::from_millis(1500);

const PYTHON: &str = "print('Hello, from the container!')";
const PYTHON_OUT: &str = "Hello, from the container!\n";
const C: &str =
    "#include <stdio.h>\nint main(void) { puts(\"Hello, from the container!\"); return 0; }\n";
const JAVA: &str = "public class Main { public static void main(String[] a) { System.out.println(\"Hello, from the container!\"); } }\n";

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The limits of the sandbox the CLI's container gets, as the language
/// files and the default configuration give them: a language's run stage,
/// or, for a compiled one, its compile stage (the CLI compiles and runs in
/// one container, and the compile stage's limits are the larger).
struct Limits {
    memory_mb: u64,
    pids: u64,
    /// Each scratch space (`/tmp` and `/work`), the largest file and
    /// `/dev/shm`.
    scratch_mb: u64,
    /// Whether `/work` is where a program is built (executable, mode 0755,
    /// as a compiled language's shared working directory) or a run's own
    /// (`noexec`, 0700).
    compiled: bool,
}

/// The default configuration's limits both stages share: one CPU and 256
/// open files per process.
const CPUS: &str = "1";
const OPEN_FILES: u64 = 256;

/// The profile the service loads into every sandbox.
const SECCOMP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/seccomp/profile.json");

/// The uids the CLI's containers run as: 65536 from the start of systemd's
/// range for containers (524288 up), where the service's sandboxes' uids
/// are, never root, `nobody` or a user of the image; each run takes the
/// next one, as no two live sandboxes of the service share one.
const CLI_FIRST_UID: u32 = 524_288;
const CLI_UIDS: u32 = 65_536;
static CLI_RUNS: AtomicU32 = AtomicU32::new(0);

fn next_cli_uid() -> u32 {
    CLI_FIRST_UID + CLI_RUNS.fetch_add(1, Ordering::Relaxed) % CLI_UIDS
}

/// The arguments of `docker run --rm` for one run of `case` as `uid`:
/// the CLI's nearest to the sandbox the service creates for the language
/// (`src/engine/body.rs` `create_body`, filled by `src/executor/spec.rs`).
///
/// The same: the image; the language file's commands (`script` is its
/// compile command, if any, then its run command) on the same program;
/// a numeric uid and gid from systemd's container range, unknown to the
/// image; `HOME=/tmp`, `LANG=C.UTF-8` and the file's `[env]`; hostname
/// `sandbox`; working directory `/work`; a read-only root; `/tmp` and
/// `/work` as tmpfs with the service's options (size, `nr_inodes`, `noexec`
/// or not, mode, owner); `/dev/shm` of the scratch size; memory, and memory
/// plus swap, the same; one CPU; the process limit; ulimits `nofile`,
/// `fsize` (the scratch size) and `core` (0); every capability dropped;
/// `no-new-privileges`; the repository's seccomp profile
/// (`seccomp/profile.json`, which the service compiles in); network `none`;
/// OOM score adjustment 1000; docker-init as PID 1; log driver `none`.
///
/// Not the same:
/// - one container per run: a compiled language's compile and run share it,
///   under the compile stage's limits, where the service makes two sandboxes
///   on a shared volume, the run under its own (smaller) limits;
/// - no supervisor: the commands run under docker-init with no wall-time or
///   CPU-time deadline, no output cap and no result trailer, where the
///   service's entrypoint is its bootstrap and supervisor from a read-only
///   tools volume (not mounted here);
/// - the source arrives on stdin, written to `/work` by `cat`, where the
///   service writes the files through its stdin protocol;
/// - `--network none` only: the CLI cannot set the API's `NetworkDisabled`;
/// - `--rm` removes the container (the engine's `AutoRemove`), where the
///   service removes its own; no labels.
fn cli_args(image: &str, limits: &Limits, env: &[&str], script: &str, uid: u32) -> Vec<String> {
    let scratch = limits.scratch_mb << 20;
    let inodes = (scratch / 8192).max(1024);
    let work = if limits.compiled {
        format!(
            "/work:rw,exec,nosuid,nodev,size={scratch},nr_inodes={inodes},uid={uid},gid={uid},mode=0755"
        )
    } else {
        format!(
            "/work:rw,noexec,nosuid,nodev,size={scratch},nr_inodes={inodes},uid={uid},gid={uid},mode=0700"
        )
    };
    let memory = format!("{}m", limits.memory_mb);
    let mut args: Vec<String> = [
        "run",
        "--rm",
        "-i",
        "--network",
        "none",
        "--hostname",
        "sandbox",
        "--user",
        &format!("{uid}:{uid}"),
        "--workdir",
        "/work",
        "--read-only",
        "--tmpfs",
        &format!("/tmp:rw,noexec,nosuid,nodev,size={scratch},nr_inodes={inodes},mode=1777"),
        "--tmpfs",
        &work,
        "--shm-size",
        &scratch.to_string(),
        "--memory",
        &memory,
        "--memory-swap",
        &memory,
        "--cpus",
        CPUS,
        "--pids-limit",
        &limits.pids.to_string(),
        "--ulimit",
        &format!("nofile={OPEN_FILES}:{OPEN_FILES}"),
        "--ulimit",
        &format!("fsize={scratch}:{scratch}"),
        "--ulimit",
        "core=0:0",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges:true",
        "--security-opt",
        &format!("seccomp={SECCOMP}"),
        "--oom-score-adj",
        "1000",
        "--init",
        "--log-driver",
        "none",
        "--env",
        "HOME=/tmp",
        "--env",
        "LANG=C.UTF-8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for var in env {
        args.extend(["--env".to_string(), var.to_string()]);
    }
    args.extend([image, "sh", "-c", script].map(str::to_string));
    args
}

/// A hello world of one language, as the CLI and the service run it.
struct Case {
    name: &'static str,
    language: &'static str,
    code: &'static str,
    /// The CLI's container: its image, limits, environment and script.
    image: &'static str,
    limits: Limits,
    env: &'static [&'static str],
    script: &'static str,
}

impl Case {
    /// The CLI's arguments for one run, as the next uid.
    fn cli(&self) -> Vec<String> {
        cli_args(
            self.image,
            &self.limits,
            self.env,
            self.script,
            next_cli_uid(),
        )
    }
}

/// The three hello worlds; each CLI script is its language file's commands
/// (`languages/python.toml`, `languages/available/{c,java}.toml`), the
/// source first written from stdin.
fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "python",
            language: "python",
            code: PYTHON,
            image: "python:3.13-slim",
            // The server's default limits (python's file sets none).
            limits: Limits {
                memory_mb: 128,
                pids: 64,
                scratch_mb: 32,
                compiled: false,
            },
            env: &["PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"],
            script: "cat > main.py && exec python3 main.py",
        },
        Case {
            name: "C",
            language: "c",
            code: C,
            image: "gcc:14",
            // `[compile_limits]`, over the default compile limits (128 MiB
            // of scratch).
            limits: Limits {
                memory_mb: 512,
                pids: 64,
                scratch_mb: 128,
                compiled: true,
            },
            env: &[],
            script: "cat > main.c && gcc -std=gnu17 -O2 -Wall -o main *.c -lm && exec ./main",
        },
        Case {
            name: "Java",
            language: "java",
            code: JAVA,
            image: "eclipse-temurin:21-jdk",
            limits: Limits {
                memory_mb: 768,
                pids: 128,
                scratch_mb: 128,
                compiled: true,
            },
            env: &[],
            script: concat!(
                "cat > Main.java",
                " && javac -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -d . *.java",
                " && exec java -XX:+UseSerialGC -XX:MaxRAMPercentage=100",
                " -XX:TieredStopAtLevel=1 -Xshare:auto -cp . Main"
            ),
        },
    ]
}

/// One run's result.
#[derive(Debug)]
struct Sample {
    latency: Duration,
    ok: bool,
    pooled: bool,
    phases: Vec<(String, f64)>,
}

struct Service {
    child: Child,
    url: String,
    instance: String,
    _languages: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The languages the services serve: python and the catalogue's C, C++,
/// Java, and python under gVisor when `gvisor`.
fn languages(gvisor: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/languages");
    let mut files = vec![
        "python.toml",
        "available/c.toml",
        "available/cpp.toml",
        "available/java.toml",
    ];
    if gvisor {
        files.push("available/python-gvisor.toml");
    }
    for file in files {
        let name = file.rsplit('/').next().unwrap();
        std::fs::copy(format!("{root}/{file}"), dir.path().join(name)).unwrap();
    }
    dir
}

/// A release build of the service: the defaults, changed by `env`.
fn start_service(name: &str, env: &[(&str, &str)], gvisor: bool) -> Service {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let instance = format!(
        "bench-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let languages = languages(gvisor);
    let mut command = Command::new(env!("CARGO_BIN_EXE_code-runner"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CODE_RUNNER_") {
            command.env_remove(key);
        }
    }
    command
        .env("CODE_RUNNER_PORT", port.to_string())
        .env("CODE_RUNNER_INSTANCE", &instance)
        .env("CODE_RUNNER_LANGUAGES_DIR", languages.path())
        .env("CODE_RUNNER_JUDGE0__DATABASE", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().expect("the service starts");
    Service {
        child,
        url: format!("http://127.0.0.1:{port}"),
        instance,
        _languages: languages,
    }
}

const POOL_OFF: &[(&str, &str)] = &[
    ("CODE_RUNNER_POOL_SIZE", "0"),
    ("CODE_RUNNER_POOL_MEMORY_MB", "0"),
];

async fn wait_up(client: &reqwest::Client, service: &Service) {
    let started = Instant::now();
    while client
        .get(format!("{}/health", service.url))
        .send()
        .await
        .is_err()
    {
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `service`'s pool of `language` holds `n`, or (`n` `None`)
/// its target, at most 60 s; returns how long it waited.
async fn wait_pool(
    client: &reqwest::Client,
    service: &Service,
    language: &str,
    n: Option<u64>,
) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let ready: Value = match client.get(format!("{}/ready", service.url)).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let want = n.or(ready["pool_target"][language].as_u64());
        if want.is_some_and(|want| ready["pool"][language].as_u64().unwrap_or(0) >= want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed()
}

async fn run_cli(case: &Case) -> Sample {
    let started = Instant::now();
    let mut child = tokio::process::Command::new("docker")
        .args(case.cli())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker runs");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(case.code.as_bytes()).await;
    }
    let out = child.wait_with_output().await.expect("docker runs");
    Sample {
        latency: started.elapsed(),
        ok: out.status.success() && String::from_utf8_lossy(&out.stdout) == PYTHON_OUT,
        pooled: false,
        phases: Vec::new(),
    }
}

async fn run_service(client: &reqwest::Client, url: &str, body: &Value, expect: &str) -> Sample {
    let started = Instant::now();
    let response = client
        .post(format!("{url}/run-code"))
        .json(body)
        .send()
        .await;
    let Ok(response) = response else {
        return Sample {
            latency: started.elapsed(),
            ok: false,
            pooled: false,
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
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    Sample {
        latency: started.elapsed(),
        ok: status == 200 && answer["stdout"] == expect,
        pooled,
        phases: server_timing(&timing),
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

/// The service's resident memory, in KiB: (`VmRSS`, of it `RssAnon`, the
/// memory of its own rather than the executable's shared file pages).
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

/// `(rss, anonymous)` KiB as `X MiB (anonymous Y)`.
fn mib((rss, anon): (u64, u64)) -> String {
    format!(
        "{:.1} MiB (anonymous {:.1})",
        rss as f64 / 1024.0,
        anon as f64 / 1024.0
    )
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

/// The p50 of each `Server-Timing` phase.
fn phases(samples: &[Sample]) -> String {
    let mut names: Vec<String> = Vec::new();
    for s in samples {
        for (name, _) in &s.phases {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
        .iter()
        .map(|name| {
            let mut values: Vec<f64> = samples
                .iter()
                .flat_map(|s| &s.phases)
                .filter(|(n, _)| n == name)
                .map(|(_, ms)| *ms)
                .collect();
            format!("{name} {:.1}", median(&mut values))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A client calling from its own loopback address (the fair shares count
/// clients by address).
fn client_from(n: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(format!("127.0.0.{}", 2 + n).parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

/// A burst of `runs` python hello worlds at concurrency 8 from 8 clients
/// (or the CLI when `url` is `None`): its length and samples.
async fn burst(url: Option<&str>, runs: usize) -> (Duration, Vec<Sample>) {
    let clients: Vec<reqwest::Client> = (0..CONCURRENCY).map(client_from).collect();
    let body = json!({"language": "python", "code": PYTHON});
    let python = &cases()[0];
    let started = Instant::now();
    let samples = futures_util::stream::iter(0..runs)
        .map(|i| {
            let (client, body) = (clients[i % CONCURRENCY].clone(), body.clone());
            async move {
                match url {
                    Some(url) => run_service(&client, url, &body, PYTHON_OUT).await,
                    None => run_cli(python).await,
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    (started.elapsed(), samples)
}

/// The memory the containers of `instance` use now, in MiB (`docker
/// stats`), and how many there are.
fn containers_memory(instance: &str) -> (f64, usize) {
    let ids = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=code-runner={instance}"),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return (0.0, 0);
    }
    let out = Command::new("docker")
        .args(["stats", "--no-stream", "--format", "{{.MemUsage}}"])
        .args(&ids)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let mib: f64 = out
        .lines()
        .filter_map(|l| l.split('/').next())
        .map(|used| {
            let used = used.trim();
            let (number, unit) =
                used.split_at(used.find(|c: char| c.is_alphabetic()).unwrap_or(used.len()));
            let n: f64 = number.trim().parse().unwrap_or(0.0);
            match unit {
                "GiB" => n * 1024.0,
                "KiB" => n / 1024.0,
                "B" => n / 1024.0 / 1024.0,
                _ => n,
            }
        })
        .sum();
    (mib, ids.len())
}

fn runsc_registered() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{json .Runtimes}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("runsc"))
        .unwrap_or(false)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = env_usize("BENCH_ROUNDS", 8);
    let burst_size = env_usize("BENCH_BURST", 48);
    for image in ["python:3.13-slim", "gcc:14", "eclipse-temurin:21-jdk"] {
        let present = Command::new("docker")
            .args(["image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            present,
            "Docker must answer and hold {image} (scripts/build-images --all)"
        );
    }
    let gvisor = runsc_registered();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    println!("code-runner benchmark on {}", machine());
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("streaming") => return streaming(&client, env_usize("BENCH_STREAMS", 16)).await,
        Ok("judging") => return judging(&client).await,
        _ => {}
    }

    // 1. Hello worlds at concurrency 1: CLI, pool off, defaults.
    let off = start_service("off", POOL_OFF, gvisor);
    let on = start_service("defaults", &[], gvisor);
    for service in [&off, &on] {
        wait_up(&client, service).await;
    }
    let rss_idle = rss_kib(on.child.id());
    println!();
    println!("## Hello world, concurrency 1 ({rounds} rounds, alternating)");
    println!();
    println!(
        "| language | mode | p50 ms | p95 ms | p50 / CLI | errors | from pool | p50 per phase (Server-Timing, ms) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut summary = HashMap::new();
    for case in cases() {
        let body = json!({"language": case.language, "code": case.code});
        // Every path once, and the defaults' pool filled.
        run_cli(&case).await;
        run_service(&client, &off.url, &body, PYTHON_OUT).await;
        run_service(&client, &on.url, &body, PYTHON_OUT).await;
        wait_pool(&client, &on, case.language, Some(2)).await;
        let per_round = if case.name == "Java" { 1 } else { 3 };
        let mut samples: [Vec<Sample>; 3] = Default::default();
        for round in 0..rounds {
            for k in 0..3 {
                let mode = (round + k) % 3;
                for _ in 0..per_round {
                    let sample = match mode {
                        0 => run_cli(&case).await,
                        1 => run_service(&client, &off.url, &body, PYTHON_OUT).await,
                        _ => run_service(&client, &on.url, &body, PYTHON_OUT).await,
                    };
                    samples[mode].push(sample);
                }
                tokio::time::sleep(PAUSE).await;
            }
        }
        let p50_cli = percentile(&samples[0], 0.5);
        for (mode, name) in ["docker run --rm (CLI)", "pool off", "defaults (pool on)"]
            .iter()
            .enumerate()
        {
            let s = &samples[mode];
            let p50 = percentile(s, 0.5);
            let pooled = s.iter().filter(|x| x.pooled).count();
            println!(
                "| {} | {name} | {p50:.1} | {:.1} | {:.3}× | {} | {} | {} |",
                case.name,
                percentile(s, 0.95),
                p50 / p50_cli,
                s.iter().filter(|x| !x.ok).count(),
                if mode == 0 {
                    "–".to_string()
                } else {
                    format!("{pooled}/{}", s.len())
                },
                if mode == 0 {
                    "–".to_string()
                } else {
                    phases(s)
                },
            );
            summary.insert((case.name, mode), p50 / p50_cli);
        }
    }

    // 5. The idle pool's host memory, against its budget.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (pool_mib, pooled) = containers_memory(&on.instance);
    let rss_after = rss_kib(on.child.id());

    // 4. A C++ batch of 20 tests against 20 requests (defaults).
    let square = "#include <iostream>\nint main(){ long long x; std::cin >> x; std::cout << x * x << \"\\n\"; }\n";
    let tests: Vec<Value> = (0..20)
        .map(|i| json!({"stdin": i.to_string(), "expected_output": (i * i).to_string()}))
        .collect();
    let started = Instant::now();
    let batch: Value = client
        .post(format!("{}/run-code", on.url))
        .json(&json!({"language": "cpp", "code": square, "tests": tests}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let batch_time = started.elapsed();
    let passed = batch["summary"]["passed"].as_u64().unwrap_or(0);
    let started = Instant::now();
    let mut separate_ok = 0;
    for i in 0..20 {
        let answer: Value = client
            .post(format!("{}/run-code", on.url))
            .json(&json!({"language": "cpp", "code": square, "stdin": i.to_string()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer["stdout"] == format!("{}\n", i * i) {
            separate_ok += 1;
        }
    }
    let separate_time = started.elapsed();
    drop(on);
    drop(off);

    // 2. Bursts from rest, eight clients at concurrency 8.
    println!();
    println!("## Bursts of {burst_size} python runs, 8 clients at concurrency {CONCURRENCY}");
    println!();
    println!("| mode | runs/s | / CLI | errors | from pool |");
    println!("| --- | --- | --- | --- | --- |");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cli_time, cli_samples) = burst(None, burst_size).await;
    let cli_rate = burst_size as f64 / cli_time.as_secs_f64();
    let row = |name: &str, time: Duration, samples: &[Sample]| {
        let rate = samples.len() as f64 / time.as_secs_f64();
        println!(
            "| {name} | {rate:.1} | {:.2}× | {} | {} |",
            rate / cli_rate,
            samples.iter().filter(|s| !s.ok).count(),
            samples.iter().filter(|s| s.pooled).count()
        );
        rate / cli_rate
    };
    row("docker run --rm (CLI)", cli_time, &cli_samples);
    let off = start_service("burst-off", POOL_OFF, false);
    wait_up(&client, &off).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (t, s) = burst(Some(&off.url), burst_size).await;
    row("pool off", t, &s);
    drop(off);
    let fresh = start_service("burst-defaults", &[], false);
    let launched = Instant::now();
    wait_up(&client, &fresh).await;
    let listening = launched.elapsed();
    // Start-up ends when python's pool has reached its floor.
    let filled = wait_pool(&client, &fresh, "python", None).await + listening;
    let (t, s) = burst(Some(&fresh.url), burst_size).await;
    let first = row("defaults: the first burst after start-up", t, &s);
    // 6. A CPU-bound program while the pool refills after the burst, then
    // alone.
    let spin = json!({"language": "python", "code": "import time\nt = time.perf_counter()\nx = 0\nfor i in range(3_000_000): x += i\nprint(round((time.perf_counter() - t) * 1000))"});
    // The loop's own time, in ms, as the program prints it.
    let timed = || async {
        let answer: Value = client
            .post(format!("{}/run-code", fresh.url))
            .json(&spin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["stdout"]
            .as_str()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let spin_during = timed().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (t, s) = burst(Some(&fresh.url), burst_size).await;
    let rested = row(
        "defaults: a burst after an earlier one and 10 s of rest",
        t,
        &s,
    );
    let rested_pooled = s.iter().filter(|x| x.pooled).count();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let spin_alone = timed().await;
    let rss_load = rss_kib(fresh.child.id());
    drop(fresh);

    // 3. runc against runsc, cold.
    let mut gvisor_line = "runsc is not registered with the engine: not measured".to_string();
    if gvisor {
        let off = start_service("gvisor", POOL_OFF, true);
        wait_up(&client, &off).await;
        let mut samples: [Vec<Sample>; 2] = Default::default();
        for round in 0..rounds {
            for k in 0..2 {
                let which = (round + k) % 2;
                let language = ["python", "python-gvisor"][which];
                let body = json!({"language": language, "code": PYTHON});
                samples[which].push(run_service(&client, &off.url, &body, PYTHON_OUT).await);
            }
        }
        gvisor_line = format!(
            "python cold, p50: runc {:.1} ms, runsc {:.1} ms ({:.2}×); errors {}",
            percentile(&samples[0], 0.5),
            percentile(&samples[1], 0.5),
            percentile(&samples[1], 0.5) / percentile(&samples[0], 0.5),
            samples.iter().flatten().filter(|s| !s.ok).count()
        );
    }

    println!();
    println!("## The rest");
    println!();
    println!("- {gvisor_line}");
    println!(
        "- C++, 20 tests: as one batch {:.0} ms ({passed}/20 passed); as 20 requests {:.0} ms ({separate_ok}/20 right): the batch takes {:.0} %",
        batch_time.as_secs_f64() * 1000.0,
        separate_time.as_secs_f64() * 1000.0,
        100.0 * batch_time.as_secs_f64() / separate_time.as_secs_f64()
    );
    println!(
        "- service RSS (defaults): idle at start {}, idle after the hello worlds {}, idle after the bursts {}",
        mib(rss_idle),
        mib(rss_after),
        mib(rss_load)
    );
    println!(
        "- start-up (defaults): listening {:.2} s after launch, python's pool at its floor {:.1} s after launch (the first burst starts then)",
        listening.as_secs_f64(),
        filled.as_secs_f64()
    );
    println!(
        "- the idle pool (defaults, after the hello worlds): {pooled} containers, {pool_mib:.1} MiB of host memory (docker stats), against a budget of 768 MiB"
    );
    println!(
        "- a CPU-bound loop (3 M additions): {spin_alone:.0} ms alone, {spin_during:.0} ms while the pool refilled after a burst"
    );
    println!(
        "- ratios: python p50 {:.3}× the CLI; C p50 {:.3}×; Java p50 {:.3}×; first burst {first:.2}× the CLI's runs/s; rested burst {rested:.2}× with {rested_pooled}/{burst_size} from the pool",
        summary[&("python", 2)],
        summary[&("C", 2)],
        summary[&("Java", 2)],
    );
    streaming(&client, env_usize("BENCH_STREAMS", 16)).await;
    judging(&client).await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `GET /run-code/ws` on `url` and sends `request` as its first frame.
async fn open_stream(url: &str, request: &Value) -> Socket {
    use futures_util::SinkExt;
    let ws = format!("{}/run-code/ws", url.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws)
        .await
        .expect("connects");
    let first = tokio_tungstenite::tungstenite::Message::text(request.to_string());
    socket.send(first).await.expect("sends");
    socket
}

/// The next stdout frame's text, or `None` once the answer (or the end)
/// came.
async fn next_stdout(socket: &mut Socket) -> Option<String> {
    while let Some(Ok(message)) = socket.next().await {
        let Ok(text) = message.to_text() else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        match frame["type"].as_str() {
            Some("stdout") => return frame["data"].as_str().map(str::to_string),
            Some(_) => continue,
            None => return None,
        }
    }
    None
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Section 7: streamed runs, pooled python.
async fn streaming(client: &reqwest::Client, idle_runs: usize) {
    use futures_util::SinkExt;
    let open = idle_runs.to_string();
    let service = start_service(
        "streaming",
        &[
            ("CODE_RUNNER_RUNS__MAX_CONCURRENT", &open),
            ("CODE_RUNNER_STREAMS__CLIENT_MAX_OPEN", &open),
        ],
        false,
    );
    wait_up(client, &service).await;
    wait_pool(client, &service, "python", Some(2)).await;
    println!();
    println!("## Streamed runs (GET /run-code/ws, pooled python)");
    println!();
    // A print's way to the client: 20 timestamps a run, 50 ms apart.
    let prints = "import time\nfor _ in range(20):\n    print(time.time_ns(), flush=True)\n    time.sleep(0.05)\n";
    let mut print_us = Histogram::<u64>::new(3).unwrap();
    let mut pooled = 0;
    for _ in 0..5 {
        wait_pool(client, &service, "python", Some(1)).await;
        let mut socket =
            open_stream(&service.url, &json!({"language": "python", "code": prints})).await;
        let mut held = String::new();
        while let Some(data) = next_stdout(&mut socket).await {
            let at = now_ns();
            held.push_str(&data);
            while let Some(end) = held.find('\n') {
                let line: String = held.drain(..=end).collect();
                if let Ok(printed) = line.trim().parse::<u128>() {
                    print_us
                        .record((at.saturating_sub(printed) / 1000) as u64)
                        .unwrap();
                }
            }
        }
        pooled += 1;
    }
    // An input() echo: a line sent, the same line back.
    let echo = "while True:\n    print(input(), flush=True)\n";
    let mut echo_us = Histogram::<u64>::new(3).unwrap();
    wait_pool(client, &service, "python", Some(1)).await;
    let mut socket = open_stream(&service.url, &json!({"language": "python", "code": echo})).await;
    for i in 0..200 {
        let line = format!("line {i}");
        let sent = Instant::now();
        let frame = json!({"type": "stdin", "data": format!("{line}\n")}).to_string();
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(frame))
            .await
            .unwrap();
        let mut got = String::new();
        while !got.contains(&line) {
            got.push_str(&next_stdout(&mut socket).await.expect("the echo"));
        }
        echo_us.record(sent.elapsed().as_micros() as u64).unwrap();
    }
    drop(socket);
    // Idle open runs: the service's memory with each waiting at input().
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(service.child.id());
    let waits = json!({"language": "python", "code": "print('ready', flush=True)\ninput()\n"});
    let mut sockets = Vec::new();
    for _ in 0..idle_runs {
        let mut socket = open_stream(&service.url, &waits).await;
        next_stdout(&mut socket).await.expect("ready");
        sockets.push(socket);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(service.child.id());
    let (containers_mib, containers) = containers_memory(&service.instance);
    let per_run_kib = (after.0 as f64 - before.0 as f64) / idle_runs as f64;
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!("| measure | p50 ms | p95 ms | samples |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| a print to its frame at the client | {:.2} | {:.2} | {} ({pooled} runs) |",
        ms(&print_us, 0.5),
        ms(&print_us, 0.95),
        print_us.len()
    );
    println!(
        "| an `input()` echo's round trip | {:.2} | {:.2} | {} |",
        ms(&echo_us, 0.5),
        ms(&echo_us, 0.95),
        echo_us.len()
    );
    println!();
    println!(
        "- {idle_runs} idle open runs (each waiting at input()): the service's RSS {} before, {} with them open: {per_run_kib:.0} KiB per run; the service's {containers} containers then (the runs' and the pool's) {containers_mib:.1} MiB of host memory (docker stats)",
        mib(before),
        mib(after),
    );
    drop(sockets);
}

/// Guess the number (1 to 10^9) in at most 30 questions, in testlib's
/// convention (as the tests' interactor).
const GUESS_INTERACTOR: &str = r#"#include <cstdio>
int main(int argc, char **argv) {
    std::FILE *in = std::fopen(argv[1], "r");
    long n;
    if (!in || std::fscanf(in, "%ld", &n) != 1) return 3;
    for (int asked = 1; asked <= 30; asked++) {
        long guess;
        if (std::scanf("%ld", &guess) != 1) return 2;
        if (guess == n) { std::printf("correct\n"); std::fflush(stdout); return 0; }
        std::printf(guess < n ? "higher\n" : "lower\n");
        std::fflush(stdout);
    }
    return 1;
}
"#;

/// A binary search that times each question, from its print to the
/// answer's line, and says the times (ns) on stderr at the end.
const TIMED_SEARCH: &str = r#"import sys, time
lo, hi, trips = 1, 10**9, []
while True:
    mid = (lo + hi) // 2
    asked = time.perf_counter_ns()
    print(mid, flush=True)
    reply = input()
    trips.append(time.perf_counter_ns() - asked)
    if reply == "correct":
        break
    if reply == "higher":
        lo = mid + 1
    else:
        hi = mid - 1
print(" ".join(map(str, trips)), file=sys.stderr)
"#;

/// Section 8: an interactor's round trip per question, and a 20-test
/// batch judged by checkers against the same batch with `trim`.
async fn judging(client: &reqwest::Client) {
    let service = start_service("judging", &[], false);
    wait_up(client, &service).await;
    wait_pool(client, &service, "python", Some(2)).await;
    let url = format!("{}/run-code", service.url);
    let post = |body: Value| {
        let url = url.clone();
        async move {
            let started = Instant::now();
            let answer: Value = (client.post(url).json(&body))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (started.elapsed(), answer)
        }
    };
    println!();
    println!("## Judging");
    println!();
    let numbers = [1, 999_999_999, 123_456_789, 500_000_000, 31_415_926];
    let tests: Vec<Value> = (numbers.iter())
        .map(|n| json!({"stdin": n.to_string()}))
        .collect();
    let interactive = json!({"language": "python", "code": TIMED_SEARCH, "tests": tests,
        "interactor": {"language": "cpp", "code": GUESS_INTERACTOR}});
    let mut trips = Histogram::<u64>::new(3).unwrap();
    let mut searches = Vec::new();
    let mut accepted = 0;
    for _ in 0..4 {
        let (_, answer) = post(interactive.clone()).await;
        for test in answer["tests"].as_array().expect("a batch's answer") {
            accepted += usize::from(test["verdict"] == "accepted");
            searches.push(test["duration_ms"].as_f64().unwrap_or(f64::NAN));
            let said = test["stderr"].as_str().unwrap_or_default();
            for ns in said
                .split_whitespace()
                .filter_map(|t| t.parse::<u64>().ok())
            {
                trips.record(ns / 1000).unwrap();
            }
        }
    }
    searches.sort_by(f64::total_cmp);
    let ms = |q: f64| trips.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "- an interactor's round trip (pooled python against C++, {} questions in {} searches, {accepted} accepted): p50 {:.2} ms, p95 {:.2} ms a question; a whole search (the program's run, up to 30 questions) p50 {:.0} ms",
        trips.len(),
        searches.len(),
        ms(0.5),
        ms(0.95),
        searches[searches.len() / 2]
    );
    let square = "#include <iostream>\nint main(){ long long x; std::cin >> x; std::cout << x * x << \"\\n\"; }\n";
    let tests: Vec<Value> = (0..20)
        .map(|i| json!({"stdin": i.to_string(), "expected_output": (i * i).to_string()}))
        .collect();
    let python_checker = "import sys\nsys.exit(0 if open(sys.argv[2]).read().split() == open(sys.argv[3]).read().split() else 1)\n";
    let cpp_checker = "#include <fstream>\n#include <string>\nint main(int c, char **v) { std::ifstream o(v[2]), a(v[3]); std::string x, y; while (a >> y) { if (!(o >> x) || x != y) return 1; } return (o >> x) ? 1 : 0; }\n";
    println!();
    println!("| a C++ batch of 20 tests judged by | median ms (3 rounds) | passed |");
    println!("| --- | --- | --- |");
    for (judge, extra) in [
        ("`trim`", json!({})),
        (
            "a python checker",
            json!({"checker": {"language": "python", "code": python_checker}}),
        ),
        (
            "a C++ checker (compiled once)",
            json!({"checker": {"language": "cpp", "code": cpp_checker}}),
        ),
    ] {
        let mut body = json!({"language": "cpp", "code": square, "tests": tests});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let mut times = Vec::new();
        let mut passed = 0;
        for _ in 0..3 {
            let (took, answer) = post(body.clone()).await;
            times.push(took.as_secs_f64() * 1000.0);
            passed = answer["summary"]["passed"].as_u64().unwrap_or(0);
        }
        times.sort_by(f64::total_cmp);
        println!("| {judge} | {:.0} | {passed}/20 |", times[1]);
    }
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
