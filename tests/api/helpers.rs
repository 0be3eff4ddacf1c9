//! The test harness: a real server on port 0 against the real Docker
//! engine, one per test, each with its own instance name so that tests can
//! count their own containers. With `TEST_LOG` set, the servers' logs go
//! to the tests' output ([`install_test_log`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use code_runner::{Application, Config};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing_subscriber::EnvFilter;

/// The image of the shipped python language.
pub const PYTHON_IMAGE: &str = "python:3.13-slim";

/// Python that defines `memory_mb()` (the sandbox's memory limit, in MiB)
/// and `pids_max()` (its process limit, as the file says it): read from
/// cgroup v1's controller folders (`/sys/fs/cgroup/memory/`,
/// `/sys/fs/cgroup/pids/`), or, where v1's file is absent, from cgroup v2's
/// unified folder, which under the container's own cgroup namespace is
/// `/sys/fs/cgroup/` itself (`memory.max`, `pids.max`), the order
/// `tools/supervise.rs` finds them in. A limit of `max` (none) fails the
/// program. Put it before a program that prints them.
pub const CGROUP_LIMITS_PY: &str = "\
def _cgroup(v1, v2):
    import os
    return open(v1 if os.path.exists(v1) else v2).read().strip()
def memory_mb():
    return int(_cgroup('/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory.max')) >> 20
def pids_max():
    return _cgroup('/sys/fs/cgroup/pids/pids.max', '/sys/fs/cgroup/pids.max')
";

/// The repository's `languages/` folder.
pub fn languages_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("languages")
}

/// With `TEST_LOG` set (to any value), sends the `tracing` output of the
/// servers the tests run in this process to the test writer (shown for a
/// failing test, or for all with `--nocapture`), filtered by `RUST_LOG`
/// (default `info`); without it, installs nothing and the tests are
/// silent. The first call decides; later ones do nothing.
fn install_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_none() {
            return;
        }
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .init();
    });
}

/// A configuration for tests: loopback, port 0, the shipped languages, a
/// fresh instance name. Every server a test starts in this process starts
/// from it, so it also installs [`install_test_log`]'s subscriber.
pub fn test_config() -> Config {
    install_test_log();
    let mut config = Config {
        languages_dir: languages_dir(),
        instance: format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        // Judge0's tests give theirs a database.
        judge0: code_runner::config::Judge0Config {
            database: "off".into(),
            ..Default::default()
        },
        ..Config::default()
    };
    config.server.host = [127, 0, 0, 1].into();
    config.server.port = 0;
    config.server.shutdown_grace_ms = 5_000;
    // Tests count their containers; the pool's own tests turn it on.
    config.pool.size = 0;
    config.pool.memory_mb = 0;
    // Every test is one client (loopback): it may use every slot; the fair
    // shares' own tests set them.
    config.runs.client_max_concurrent = Some(1024);
    config.runs.client_max_queue = Some(100_000);
    config
}

/// Turns the pool on in `config` with `size` sandboxes per language, and a
/// memory budget that holds exactly those (so the pool does not grow with
/// a test's demand and the counts stay exact).
pub fn pooled(config: &mut Config, size: usize) {
    config.pool.size = size;
    config.pool.memory_mb = size as u64 * code_runner::config::IDLE_SANDBOX_MB;
}

/// A client of the engine the tests run against. Fails the test, loudly,
/// when Docker cannot be reached or the python image is missing: these
/// tests never skip.
pub async fn docker() -> Docker {
    let docker = Docker::connect_with_defaults()
        .expect("DOCKER_HOST is malformed")
        .negotiate_version()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the integration tests need a running Docker engine, and it cannot be reached: {e}"
            )
        });
    if docker.inspect_image(PYTHON_IMAGE).await.is_err() {
        panic!("the image {PYTHON_IMAGE} is missing: run scripts/build-images --all first");
    }
    docker
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub instance: String,
    /// The uids its sandboxes run as.
    pub uids: code_runner::config::UidRange,
    pub client: reqwest::Client,
    pub docker: Docker,
    shutdown: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    server: Option<JoinHandle<()>>,
    /// The languages folder of this server, when the test made one.
    pub languages: Option<tempfile::TempDir>,
}

/// Starts a server with the test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server with the test configuration, changed by `change`.
pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let docker = docker().await;
    let mut config = test_config();
    change(&mut config);
    let instance = config.instance.clone();
    let uids = config.sandbox_uids();
    let app = Application::build(config).await.expect("the app builds");
    let addr = app.addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        instance,
        uids,

        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        docker,
        shutdown: std::sync::Mutex::new(Some(tx)),
        server: Some(server),
        languages: None,
    }
}

/// The text of a shipped language file (`python.toml`, `available/c.toml`).
pub fn language_file(name: &str) -> String {
    std::fs::read_to_string(languages_dir().join(name)).unwrap()
}

/// A shipped language file as the start of another language's: without
/// its Judge0 id and name, which one language holds.
pub fn language_file_base(name: &str) -> String {
    language_file(name)
        .lines()
        .filter(|l| !l.starts_with("judge0_"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts a server whose languages folder is a fresh temporary one holding
/// `files` (name, text).
pub async fn spawn_app_with_languages(
    files: Vec<(String, String)>,
    change: impl FnOnce(&mut Config),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().to_path_buf();
    let mut app = spawn_app_with(move |c| {
        c.languages_dir = path;
        change(c);
    })
    .await;
    app.languages = Some(dir);
    app
}

/// Starts a server serving python and every language of the catalogue.
pub async fn spawn_catalogue_app() -> TestApp {
    let mut files = vec![("python.toml".to_string(), language_file("python.toml"))];
    for entry in std::fs::read_dir(languages_dir().join("available")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        files.push((name, std::fs::read_to_string(&path).unwrap()));
    }
    spawn_app_with_languages(files, |_| {}).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs JSON `body` to `path`; returns the status and the JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        post_json(&self.client, &self.url(path), body).await
    }

    /// POSTs `body` to `path` as `application/json`, whatever the bytes
    /// hold; returns the status and the JSON answer.
    pub async fn post_bytes(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        status_and_json(request).await
    }

    /// POSTs a JSON body to `/run-code`; returns the status and the JSON.
    pub async fn run(&self, body: Value) -> (u16, Value) {
        self.post("/run-code", &body).await
    }

    /// POSTs a run and expects HTTP 200.
    pub async fn run_ok(&self, body: Value) -> Value {
        let (status, answer) = self.run(body).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// Runs `code` in `language` (a name or alias) and expects HTTP 200.
    pub async fn run_in(&self, language: &str, code: &str) -> Value {
        self.run_ok(json!({ "language": language, "code": code }))
            .await
    }

    /// Runs python `code` and expects HTTP 200.
    pub async fn python(&self, code: &str) -> Value {
        self.run_in("python", code).await
    }

    /// GETs a path; returns the status and the JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        status_and_json(self.client.get(self.url(path))).await
    }

    /// The ids of the containers carrying this server's label.
    pub async fn containers(&self) -> Vec<String> {
        containers_of(&self.docker, &self.instance).await
    }

    /// Waits up to `within` for this server's containers to be gone.
    pub async fn assert_no_containers_within(&self, within: Duration) {
        assert_no_containers_of(&self.docker, &self.instance, within).await;
    }

    /// Waits up to `within` until this server has had no container for a
    /// whole second: a run that was ended while the engine created its
    /// container gets it a moment later (the service removes it then), and
    /// a test that ended at the first empty count would leave it to the
    /// engine after the server is gone.
    pub async fn assert_no_containers_settled(&self, within: Duration) {
        let began = Instant::now();
        let mut empty_since: Option<Instant> = None;
        loop {
            let held = self.containers().await;
            let since = match (held.is_empty(), empty_since) {
                (true, Some(since)) => since,
                (true, None) => *empty_since.insert(Instant::now()),
                (false, _) => {
                    empty_since = None;
                    assert!(began.elapsed() < within, "containers left: {held:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if since.elapsed() >= Duration::from_secs(1) {
                return;
            }
            assert!(began.elapsed() < within + Duration::from_secs(1));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Shuts the server down (as SIGTERM would), waits for it, and checks
    /// that it left no container.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("the server stops in time")
                .expect("the server task did not panic");
        }
        assert!(
            self.containers().await.is_empty(),
            "containers left after shutdown"
        );
    }

    /// Starts the shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        if let Some(tx) = self.shutdown.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }

    /// Waits for a shutdown begun earlier to end.
    pub async fn wait_stopped(&mut self, within: Duration) {
        if let Some(server) = self.server.take() {
            tokio::time::timeout(within, server)
                .await
                .expect("the server stops in time")
                .expect("the server task did not panic");
        }
    }
}

impl Drop for TestApp {
    /// A test that failed before `stop` leaves its server's containers to
    /// this: they are removed with the Docker CLI, so that a failing test
    /// leaves no debris for the next run.
    fn drop(&mut self) {
        if self.server.is_none() {
            return;
        }
        let label = format!("label=code-runner={}", self.instance);
        let listed = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output();
        if let Ok(listed) = listed {
            let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        if let Ok(listed) = std::process::Command::new("docker")
            .args(["volume", "ls", "-q", "--filter", &label])
            .output()
        {
            for volume in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
                let _ = std::process::Command::new("docker")
                    .args(["volume", "rm", "-f", volume])
                    .output();
            }
        }
    }
}

/// POSTs JSON `body` to `url` as `client` (for a server that is not a
/// [`TestApp`], such as the binary's); returns the status and the JSON
/// answer.
pub async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    status_and_json(client.post(url).json(body)).await
}

/// Sends `request`; returns the answer's status and JSON body.
async fn status_and_json(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.json().await.expect("the answer is JSON"))
}

/// The ids of the containers labelled `code-runner=<instance>`.
pub async fn containers_of(docker: &Docker, instance: &str) -> Vec<String> {
    ids_with_labels(docker, vec![format!("code-runner={instance}")]).await
}

/// The ids of every container (running or not) that carries all `labels`
/// (`key` or `key=value`).
async fn ids_with_labels(docker: &Docker, labels: Vec<String>) -> Vec<String> {
    let filters = HashMap::from([("label".to_string(), labels)]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .expect("containers can be listed")
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// Waits up to `within` for the containers of `instance` to be gone.
pub async fn assert_no_containers_of(docker: &Docker, instance: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let left = containers_of(docker, instance).await;
        if left.is_empty() {
            return;
        }
        if start.elapsed() > within {
            panic!("containers of {instance} still there after {within:?}: {left:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ids of the sandbox containers (those of a stage) of `instance`.
pub async fn sandboxes_of(docker: &Docker, instance: &str) -> Vec<String> {
    let labels = vec![
        format!("code-runner={instance}"),
        "code-runner.stage".to_string(),
    ];
    ids_with_labels(docker, labels).await
}

/// Waits until `instance` has at least one sandbox container (a run has
/// started).
pub async fn wait_for_a_container(docker: &Docker, instance: &str) {
    let start = Instant::now();
    while sandboxes_of(docker, instance).await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no container appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `code-runner` binary, with no `CODE_RUNNER_*` variable inherited
/// and quiet logs.
pub fn binary() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_code-runner"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CODE_RUNNER_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn");
    // Judge0's submissions are not kept unless a test says where.
    command.env("CODE_RUNNER_JUDGE0__DATABASE", "off");
    // No pool unless a test asks (it counts its containers).
    command.env("CODE_RUNNER_POOL_MEMORY_MB", "0");
    // One client (loopback) may use every slot, as in test_config.
    command.env("CODE_RUNNER_CLIENT_MAX_RUNS", "1024");
    command.env("CODE_RUNNER_CLIENT_MAX_QUEUE", "100000");
    command
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a Python client script of `tests/clients/` with `args`, in the
/// virtual environment `scripts/python-clients` made (its path in
/// `PYTHON_CLIENTS_VENV`, which `scripts/test` sets; default
/// `~/.cache/code-runner/venv`), and fails the test with the script's
/// output unless it exits 0. Returns its stdout.
pub async fn python_client(script: &str, args: &[&str]) -> String {
    let venv = std::env::var_os("PYTHON_CLIENTS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/code-runner/venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "the Python clients are not installed in {}: run scripts/python-clients (scripts/test does)",
        venv.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("the client script finishes within 180 s")
        .expect("the client script starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} failed ({}):\n{stdout}\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
