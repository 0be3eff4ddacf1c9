//! The application: everything a running service holds, built from a
//! [`Config`], bound to a listener, and run until a shutdown signal, with
//! its background work supervised in one place.

use crate::judging::catalogue::Catalogue;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::gate::Gate;
use crate::api::{Api, routes};
use crate::config::{Config, UidRange};
use crate::custody::uids::Uids;
use crate::custody::{Custody, Owner};
use crate::engine::{Engine, EngineError};
use crate::executor::{Executor, most_waiting};
use crate::judge0::Judge0;
use crate::judge0::store::{Store, StoreError, Worker};
use crate::language::reload::{self, Watcher};
use crate::language::{Registry, RegistryError};
use crate::metrics::Metrics;
use crate::runner::DockerRunner;
use crate::runner::admission::Admission;
use crate::server::serve;

/// How long answers still in flight get after runs are stopped at shutdown.
const FINAL_ANSWERS: Duration = Duration::from_secs(5);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Languages(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The sandboxes' uids cannot be used as configured.
    #[error("invalid configuration: key `sandbox_uids`: {0}")]
    Uids(String),
    /// Judge0's submissions database cannot be opened.
    #[error("key `judge0.database`: {0}")]
    Store(#[from] StoreError),
    /// The API keys file cannot be used.
    #[error("key `front_door.api_keys_file`: {0}")]
    Keys(String),
    /// The catalogue of checkers cannot be read.
    #[error("key `checkers_dir`: {0}")]
    Checkers(String),
    /// The process may not open enough files for its connections.
    #[error("{0}")]
    FileLimit(String),
}

/// A service bound to its port, ready to run.
pub struct Application {
    config: Config,
    listener: TcpListener,
    addr: SocketAddr,
    runner: Arc<DockerRunner>,
    api: Arc<Api<DockerRunner>>,
    judge0: Arc<Judge0<DockerRunner>>,
    metrics: Arc<Metrics>,
    /// The languages served: the one place they live.
    languages: watch::Sender<Arc<Registry>>,
    watcher: Watcher,
}

impl Application {
    /// Loads the languages, prepares the Docker client and binds the
    /// listener. Docker need not be up: the service starts without it.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let defaults = config.default_limits();
        let registry = Registry::load(config.languages_dir(), &defaults)?;
        let watcher = Watcher::new(config.languages_dir(), defaults, &registry);
        let pooled = most_waiting(&config.pool, &registry);
        let uids = Uids::new(sandbox_uids(&config, pooled)?);
        let (languages, subscribed) = watch::channel(Arc::new(registry));
        check_file_limit(config.server.max_connections)?;
        let metrics = Arc::new(Metrics::new());
        let engine =
            Arc::new(Engine::connect(config.docker_host.as_deref())?.with_metrics(metrics.clone()));
        let owner = Owner {
            instance: config.instance.clone(),
            boot: uuid::Uuid::new_v4().simple().to_string(),
        };
        let worker = Worker {
            instance: owner.instance.clone(),
            boot: owner.boot.clone(),
        };
        let executor = Executor::new(Custody::new(engine, owner), uids, config.pool);
        let admission = Admission::new(&config.runs);
        let runner = Arc::new(DockerRunner::new(
            subscribed,
            admission,
            executor,
            metrics.clone(),
        ));
        let store = match config.judge0.database_url() {
            Some(url) => Some(Store::open(url).await?),
            None => None,
        };
        let judge0 = Arc::new(Judge0::new(
            runner.clone(),
            store,
            config.judge0.clone(),
            config.requests.clone(),
            worker,
        ));
        let gate = Gate::new(&config.front_door).map_err(StartError::Keys)?;
        let catalogue = Catalogue::load(&config.checkers_dir).map_err(StartError::Checkers)?;
        (catalogue.check(&languages.borrow(), config.requests.max_code_bytes))
            .map_err(StartError::Checkers)?;
        let api = Arc::new(Api::new(
            runner.clone(),
            judge0.clone(),
            gate,
            metrics.clone(),
            catalogue,
            &config,
        ));
        let (listener, addr) = listen(&config).await?;
        Ok(Application {
            config,
            listener,
            addr,
            runner,
            api,
            judge0,
            metrics,
            languages,
            watcher,
        })
    }

    /// The address the service listens on (its port is real even when the
    /// configuration asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets runs in
    /// flight finish within the grace period, stops the rest, and removes
    /// every container this process made.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Application {
            config,
            listener,
            addr,
            runner,
            api,
            judge0,
            metrics,
            languages,
            watcher,
        } = self;
        let background = CancellationToken::new();
        let mut tasks = JoinSet::new();
        runner.start(&mut tasks, languages.subscribe(), &background);
        let languages = Arc::new(languages);
        if let Some(every) = config.reload_interval() {
            tasks.spawn(follow_languages(
                watcher,
                languages.clone(),
                every,
                metrics.clone(),
                background.clone(),
            ));
            if config.front_door.api_keys_file.is_some() {
                tasks.spawn(follow_keys(api.clone(), every, background.clone()));
            }
        }

        let stopping = CancellationToken::new();
        // Judge0's workers stop taking submissions when shutdown begins;
        // the janitor runs until the end.
        tasks.spawn(judge0.clone().janitor(background.clone()));
        tasks.spawn(forget_idle_callers(api.clone(), background.clone()));
        for _ in 0..judge0.settings().workers(config.runs.max_concurrent) {
            tasks.spawn(judge0.clone().work(stopping.clone()));
        }
        let grace = config.server.shutdown_grace();
        tasks.spawn(judge0.clone().finish_callbacks(stopping.clone(), grace));
        let signal = {
            let (runner, stopping) = (runner.clone(), stopping.clone());
            async move {
                shutdown.await;
                tracing::info!("shutting down: no new connections, runs in flight may finish");
                runner.close();
                stopping.cancel();
            }
        };
        tracing::info!(%addr, instance = %config.instance, "code-runner listening");
        let server = {
            let (api, bounds) = (api.clone(), config.server.clone());
            async move {
                serve(listener, routes(api.clone()), &bounds, signal).await;
                // Streamed runs' sockets outlive their connections' tasks.
                api.sessions_ended().await;
            }
        };
        drain(server, &stopping, config.server.shutdown_grace(), &runner).await;
        background.cancel();
        runner.shutdown().await;
        while tasks.join_next().await.is_some() {}
        drop(languages);
        tracing::info!("code-runner stopped");
    }
}

/// Serves until `server` ends; once `stopping`, for at most `grace`: then
/// the runs still in flight are stopped and their answers get
/// [`FINAL_ANSWERS`] to go out before the connections close.
async fn drain(
    server: impl Future<Output = ()>,
    stopping: &CancellationToken,
    grace: Duration,
    runner: &DockerRunner,
) {
    tokio::pin!(server);
    let finished = tokio::select! {
        () = &mut server => true,
        () = async { stopping.cancelled().await; tokio::time::sleep(grace).await } => false,
    };
    if finished {
        return;
    }
    tracing::warn!(
        ?grace,
        running = runner.running(),
        "grace period over: stopping the runs still in flight"
    );
    runner.stop_runs();
    if tokio::time::timeout(FINAL_ANSWERS, &mut server)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the runs were stopped; closing them");
    }
}

/// Every minute, forgets the rate-limit state of callers not seen lately.
async fn forget_idle_callers(api: Arc<Api<DockerRunner>>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => api.forget_idle(),
            () = cancel.cancelled() => return,
        }
    }
}

/// Reads the keys file every `every`, and serves its keys when it changes
/// (`Gate::reload_keys`), until `cancel`.
async fn follow_keys(api: Arc<Api<DockerRunner>>, every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cancel.cancelled() => return,
        }
        let api = api.clone();
        if tokio::task::spawn_blocking(move || api.reload_keys())
            .await
            .is_err()
        {
            tracing::error!("the keys file's reload panicked; keys are no longer reloaded");
            return;
        }
    }
}

/// Files the process keeps open besides its connections (the listener,
/// the engine's socket and its pool, the databases, logs).
const OTHER_FILES: u64 = 256;

/// Checks that the process may open a file per connection and then some:
/// raises its soft limit of open files up to the hard limit if need be, or
/// refuses to start naming both numbers.
fn check_file_limit(max_connections: usize) -> Result<(), StartError> {
    let needed = max_connections as u64 + OTHER_FILES;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok(());
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max < needed {
        return Err(StartError::FileLimit(format!(
            "invalid configuration: key `server.max_connections` ({max_connections}) needs {needed} open files, but the process may open at most {} (its hard limit; its soft limit is {}): lower server.max_connections or raise the limit (ulimit -n, or the container's nofile ulimit)",
            limit.rlim_max, limit.rlim_cur
        )));
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(StartError::FileLimit(format!(
            "invalid configuration: key `server.max_connections` ({max_connections}) needs {needed} open files; the soft limit is {} and could not be raised: {}",
            limit.rlim_cur,
            std::io::Error::last_os_error()
        )));
    }
    tracing::info!(
        from = limit.rlim_cur,
        to = needed,
        "raised the soft limit of open files for server.max_connections"
    );
    Ok(())
}

/// The listener on `host:port`, and the address it got (its real port
/// when the configuration asked for port 0).
async fn listen(config: &Config) -> Result<(TcpListener, SocketAddr), StartError> {
    let addr = SocketAddr::new(config.server.host, config.server.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok((listener, addr))
}

/// The uids sandboxes run as, checked: never the service's own, and enough
/// for every run slot and `pooled` waiting sandboxes at once.
fn sandbox_uids(config: &Config, pooled: usize) -> Result<UidRange, StartError> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    check_uids(
        config.sandbox_uids(),
        own,
        config.runs.max_concurrent,
        pooled,
    )
}

/// `range`, unless it holds the service's uid (`own`) or fewer uids than
/// `slots` runs and `pooled` waiting sandboxes need at once.
fn check_uids(
    range: UidRange,
    own: Option<u32>,
    slots: usize,
    pooled: usize,
) -> Result<UidRange, StartError> {
    if let Some(own) = own.filter(|&uid| range.contains(uid)) {
        return Err(StartError::Uids(format!(
            "the range {range} holds the service's own uid, {own}; a sandbox must never run as the service (set CODE_RUNNER_SANDBOX_UIDS to a range without it)"
        )));
    }
    let needed = slots + pooled;
    if (range.count() as usize) < needed {
        return Err(StartError::Uids(format!(
            "the range {range} holds {} uids, fewer than the {needed} sandboxes that may live at once ({slots} run slots and {pooled} pooled)",
            range.count(),
        )));
    }
    Ok(range)
}

/// Polls the languages folder every `every` and publishes the next
/// registry when it changes, until `cancel`.
async fn follow_languages(
    mut watcher: Watcher,
    languages: Arc<watch::Sender<Arc<Registry>>>,
    every: Duration,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cancel.cancelled() => return,
        }
        let polled = tokio::task::spawn_blocking(move || {
            let update = watcher.poll();
            (watcher, update)
        })
        .await;
        let Ok((returned, (registry, events))) = polled else {
            tracing::error!("the languages watcher panicked; languages are no longer reloaded");
            return;
        };
        watcher = returned;
        reload::log(&events);
        let refused = events
            .iter()
            .filter(|e| matches!(e, reload::Event::Refused { .. }))
            .count();
        metrics.reload_failures.inc_by(refused as u64);
        if let Some(registry) = registry {
            tracing::info!(languages = ?registry.names(), "languages reloaded");
            languages.send_replace(Arc::new(registry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u32, last: u32) -> UidRange {
        UidRange { first, last }
    }

    #[test]
    fn the_sandboxes_uids_never_hold_the_services_own_and_fit_every_sandbox() {
        assert_eq!(
            check_uids(range(1000, 1009), Some(0), 6, 4).unwrap(),
            range(1000, 1009)
        );
        let err = check_uids(range(1000, 1009), Some(1005), 1, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`sandbox_uids`") && err.contains("own uid, 1005"),
            "{err}"
        );
        let err = check_uids(range(1000, 1009), None, 8, 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds 10 uids, fewer than the 11"), "{err}");
    }

    /// The user the shipped image and compose file run the service as.
    fn shipped_users() -> Vec<u32> {
        let dockerfile = include_str!("../Dockerfile");
        let compose = include_str!("../docker-compose.yml");
        let user = |line: &str| {
            line.split(':')
                .next()
                .unwrap()
                .trim()
                .trim_matches('"')
                .parse::<u32>()
                .unwrap()
        };
        let mut users: Vec<u32> = dockerfile
            .lines()
            .filter_map(|l| l.strip_prefix("USER "))
            .map(user)
            .collect();
        users.extend(
            compose
                .lines()
                .filter_map(|l| l.trim().strip_prefix("user: "))
                .map(user),
        );
        users
    }

    #[test]
    fn no_instance_block_holds_the_user_the_shipped_image_and_compose_file_run_as() {
        let users = shipped_users();
        assert_eq!(users, [65_532, 65_532]);
        for instance in ["default", "compose", "code-runner-1", "code-runner-2", "x"] {
            let block = UidRange::for_instance(instance);
            assert!(block.count() >= 65_536 && block.first >= 524_288, "{block}");
            assert!(
                users.iter().all(|u| !block.contains(*u)),
                "{instance}: {block}"
            );
        }
        assert_ne!(
            UidRange::for_instance("code-runner-1"),
            UidRange::for_instance("code-runner-2"),
            "two replicas on one engine share a block"
        );
    }
}
