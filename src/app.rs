//! The application: everything a running service holds, built from a
//! [`Config`], bound to a listener, and run until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{Engine, EngineError};
use crate::executor::pool::Pool;
use crate::executor::{Executor, Owner};
use crate::language::{Registry, RegistryError};
use crate::limiter::Limiter;
use crate::server::{ConnectionBounds, serve};
use crate::watch::Watcher;

/// How often the start-up sweep retries while Docker cannot be reached.
const SWEEP_RETRY: Duration = Duration::from_secs(2);
/// How often the janitor looks for containers and volumes this process
/// made and no longer holds (a removal that failed).
const JANITOR_EVERY: Duration = Duration::from_secs(30);
/// How long answers still in flight get after runs are stopped at shutdown.
const FINAL_ANSWERS: Duration = Duration::from_secs(5);

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    registry: RwLock<Arc<Registry>>,
    pub engine: Arc<Engine>,
    pub executor: Executor,
    pub limiter: Limiter,
    /// Request bodies being read at once (each up to `max_body_bytes`).
    pub body_reads: tokio::sync::Semaphore,
}

/// Request bodies read at once.
pub const BODY_READS: usize = 16;

impl AppState {
    /// The languages served now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().expect("registry lock").clone()
    }
}

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
}

/// A service bound to its port, ready to run.
pub struct Application {
    state: Arc<AppState>,
    listener: TcpListener,
    addr: SocketAddr,
    stop_runs: CancellationToken,
    watcher: Watcher,
}

impl Application {
    /// Loads the languages, prepares the Docker client and binds the
    /// listener. Docker need not be up: the service starts without it.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let registry = Registry::load(config.languages_dir(), &config.default_limits())?;
        let watcher = Watcher::new(config.languages_dir(), config.default_limits(), &registry);
        let engine = Arc::new(Engine::connect(config.docker_host.as_deref())?);
        let owner = Owner {
            instance: config.instance.clone(),
            boot: uuid::Uuid::new_v4().simple().to_string(),
        };
        let stop_runs = CancellationToken::new();
        let pool = Pool::new(engine.clone(), owner.clone(), config.pool_refills);
        pool.configure(&registry, config.pool_size);
        let executor = Executor::new(engine.clone(), owner, stop_runs.clone(), pool);
        let limiter = Limiter::new(
            config.max_concurrent_runs,
            config.max_queue,
            config.queue_timeout(),
        );
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let state = Arc::new(AppState {
            config,
            registry: RwLock::new(Arc::new(registry)),
            engine,
            executor,
            limiter,
            body_reads: tokio::sync::Semaphore::new(BODY_READS),
        });
        Ok(Application {
            state,
            listener,
            addr,
            stop_runs,
            watcher,
        })
    }

    /// The address the service listens on (its port is real even when the
    /// configuration asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state, for tests and the binary.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets runs in
    /// flight finish within the grace period, stops the rest, and removes
    /// every container this process made.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Application {
            state,
            listener,
            addr,
            stop_runs,
            watcher,
        } = self;
        tokio::spawn(prepare_engine(state.clone()));
        let pool = state.executor.pool().clone();
        tokio::spawn(pool.clone().run());
        let janitor = tokio::spawn(janitor(state.clone()));
        let reaper = state.executor.reaper().clone();
        let reaping = tokio::spawn({
            let reaper = reaper.clone();
            async move { reaper.run().await }
        });
        let reload = state.config.reload_interval();
        let watching =
            reload.map(|every| tokio::spawn(watch_languages(state.clone(), watcher, every)));

        let stopping = CancellationToken::new();
        let signal = {
            let state = state.clone();
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down: no new connections, runs in flight may finish");
                state.limiter.close();
                state.executor.pool().close();
                stopping.cancel();
            }
        };
        tracing::info!(%addr, instance = %state.config.instance, "code-runner listening");
        let bounds = ConnectionBounds {
            max_connections: state.config.max_connections,
            header_timeout: state.config.header_timeout(),
        };
        let server = serve(listener, crate::api::routes(state.clone()), bounds, signal);
        tokio::pin!(server);
        let grace = state.config.shutdown_grace();
        let finished = tokio::select! {
            _ = &mut server => true,
            _ = async { stopping.cancelled().await; tokio::time::sleep(grace).await } => false,
        };
        if !finished {
            tracing::warn!(
                ?grace,
                running = state.limiter.running(),
                "grace period over: stopping the runs still in flight"
            );
            stop_runs.cancel();
            if tokio::time::timeout(FINAL_ANSWERS, &mut server)
                .await
                .is_err()
            {
                tracing::warn!("connections still open after the runs were stopped; closing them");
            }
        }
        if let Some(watching) = watching {
            watching.abort();
        }
        janitor.abort();
        pool.shutdown().await;
        reaper.flush(FINAL_ANSWERS).await;
        reaping.abort();
        sweep_own_containers(&state).await;
        tracing::info!("code-runner stopped");
    }
}

/// Polls the languages folder and swaps in the new registry when it
/// changes; images new languages need are pulled in the background.
async fn watch_languages(state: Arc<AppState>, mut watcher: Watcher, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let polled = tokio::task::spawn_blocking(move || {
            let update = watcher.poll();
            (watcher, update)
        })
        .await;
        let Ok((returned, update)) = polled else {
            tracing::error!("the languages watcher panicked; languages are no longer reloaded");
            return;
        };
        watcher = returned;
        if let Some(registry) = update {
            let registry = Arc::new(registry);
            *state.registry.write().expect("registry lock") = registry.clone();
            state
                .executor
                .pool()
                .configure(&registry, state.config.pool_size);
            let engine = state.engine.clone();
            tokio::spawn(async move { pull_missing_images(&engine, &registry).await });
        }
    }
}

/// Every [`JANITOR_EVERY`], removes what this process made and no longer
/// holds: a container or volume whose removal failed (the engine was away,
/// say) does not outlive the next pass or two.
async fn janitor(state: Arc<AppState>) {
    let owner = state.executor.owner().clone();
    let mut tick = tokio::time::interval(JANITOR_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state
            .engine
            .remove_litter(&owner.instance, &owner.boot)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                removed = n,
                "removed containers or volumes whose removal had failed"
            ),
            Err(e) => tracing::debug!(error = %e, "the janitor could not look"),
        }
    }
}

/// At start: removes the containers an earlier process of this instance
/// left behind (retrying until Docker answers), then pulls missing images.
async fn prepare_engine(state: Arc<AppState>) {
    let owner = state.executor.owner().clone();
    loop {
        match state
            .engine
            .remove_stale_containers(&owner.instance, &owner.boot)
            .await
        {
            Ok(0) => break,
            Ok(n) => {
                tracing::info!(removed = n, "removed containers left by an earlier process");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot sweep leftover containers yet; retrying");
                tokio::time::sleep(SWEEP_RETRY).await;
            }
        }
    }
    pull_missing_images(&state.engine, &state.registry()).await;
}

/// Pulls, one after the other, every image of `registry` the engine lacks.
/// A failed pull (no registry reachable, say) is logged, and `/ready` keeps
/// naming the image as missing.
pub async fn pull_missing_images(engine: &Engine, registry: &Registry) {
    let mut images: Vec<&str> = registry
        .languages()
        .iter()
        .map(|l| l.image.as_str())
        .collect();
    images.sort();
    images.dedup();
    for image in images {
        match engine.image_present(image).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(image, "image missing; pulling it");
                match engine.pull(image).await {
                    Ok(()) => tracing::info!(image, "image pulled"),
                    Err(e) => tracing::warn!(image, error = %e, "could not pull the image"),
                }
            }
            Err(e) => tracing::warn!(image, error = %e, "cannot check the image"),
        }
    }
}

/// Removes every container this process made (the last line of defence
/// behind each run's own removal).
async fn sweep_own_containers(state: &AppState) {
    let owner = state.executor.owner();
    match state
        .engine
        .remove_boot_containers(&owner.instance, &owner.boot)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed this process's remaining containers"),
        Err(e) => tracing::warn!(error = %e, "could not sweep this process's containers"),
    }
}
