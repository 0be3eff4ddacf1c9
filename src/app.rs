//! The application: everything a running service holds, built from a
//! [`Config`], bound to a listener, and run until a shutdown signal, with
//! its background work supervised in one place.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiSettings, routes};
use crate::config::Config;
use crate::engine::{Engine, EngineError};
use crate::executor::Executor;
use crate::executor::custody::{Custody, Owner};
use crate::job::RequestBounds;
use crate::language::reload::{self, Watcher};
use crate::language::{Registry, RegistryError};
use crate::runner::DockerRunner;
use crate::runner::admission::Admission;
use crate::server::{ConnectionBounds, serve};

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
}

/// A service bound to its port, ready to run.
pub struct Application {
    config: Config,
    listener: TcpListener,
    addr: SocketAddr,
    runner: Arc<DockerRunner>,
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
        let (languages, subscribed) = watch::channel(Arc::new(registry));
        let engine = Arc::new(Engine::connect(config.docker_host.as_deref())?);
        let owner = Owner {
            instance: config.instance.clone(),
            boot: uuid::Uuid::new_v4().simple().to_string(),
        };
        let custody = Custody::new(engine, owner);
        let executor = Executor::new(custody, config.pool_size, config.pool_refills);
        let admission = Admission::new(
            config.max_concurrent_runs,
            config.max_queue,
            config.queue_timeout(),
        );
        let runner = Arc::new(DockerRunner::new(subscribed, admission, executor));
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        Ok(Application {
            config,
            listener,
            addr,
            runner,
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
            languages,
            watcher,
        } = self;
        let background = CancellationToken::new();
        let mut tasks = JoinSet::new();
        runner
            .executor()
            .start(&mut tasks, languages.subscribe(), &background);
        let languages = Arc::new(languages);
        if let Some(every) = config.reload_interval() {
            tasks.spawn(follow_languages(
                watcher,
                languages.clone(),
                every,
                background.clone(),
            ));
        }

        let stopping = CancellationToken::new();
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
        let server = serve(
            listener,
            routes(runner.clone(), api_settings(&config)),
            ConnectionBounds {
                max_connections: config.max_connections,
                header_timeout: config.header_timeout(),
            },
            signal,
        );
        tokio::pin!(server);
        let grace = config.shutdown_grace();
        let finished = tokio::select! {
            () = &mut server => true,
            () = async { stopping.cancelled().await; tokio::time::sleep(grace).await } => false,
        };
        if !finished {
            tracing::warn!(
                ?grace,
                running = runner.running(),
                "grace period over: stopping the runs still in flight"
            );
            runner.executor().stop_runs();
            if tokio::time::timeout(FINAL_ANSWERS, &mut server)
                .await
                .is_err()
            {
                tracing::warn!("connections still open after the runs were stopped; closing them");
            }
        }
        background.cancel();
        runner.executor().shutdown().await;
        while tasks.join_next().await.is_some() {}
        drop(languages);
        tracing::info!("code-runner stopped");
    }
}

/// The API's settings, from the configuration.
fn api_settings(config: &Config) -> ApiSettings {
    ApiSettings {
        max_body_bytes: config.max_body_bytes,
        body_timeout: config.body_timeout(),
        bounds: RequestBounds {
            max_code_bytes: config.max_code_bytes,
            max_files: config.max_files,
            max_stdin_bytes: config.max_stdin_bytes,
            max_args: config.max_args,
            max_arg_bytes: config.max_arg_bytes,
        },
    }
}

/// Polls the languages folder every `every` and publishes the next
/// registry when it changes, until `cancel`.
async fn follow_languages(
    mut watcher: Watcher,
    languages: Arc<watch::Sender<Arc<Registry>>>,
    every: Duration,
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
        if let Some(registry) = registry {
            tracing::info!(languages = ?registry.names(), "languages reloaded");
            languages.send_replace(Arc::new(registry));
        }
    }
}
