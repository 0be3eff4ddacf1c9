//! Fixtures of the fast tier: the shipped languages, jobs, and a rig that
//! puts custody, the uids, a launcher and an executor on the fake engine
//! (`engine::fake`), for tests that run under paused time.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::RequestBounds;
use crate::config::UidRange;
use crate::config::{IDLE_SANDBOX_MB, PoolSettings};
use crate::custody::uids::Uids;
use crate::custody::{Custody, Owner};
use crate::engine::Containers;
use crate::engine::fake::FakeEngine;
use crate::executor::Executor;
use crate::job::{Client, Job, JobRequest, RunInput};
use crate::language::{Language, Origin, Registry};
use crate::limits::{DefaultLimits, LimitsOverride};
use crate::sandbox::{Launcher, SandboxError};

pub(crate) const PYTHON_IMAGE: &str = "python:3.13-slim";
pub(crate) const C_IMAGE: &str = "gcc:14";

/// The owner of everything a rig makes.
pub(crate) fn owner() -> Owner {
    Owner {
        instance: "test".into(),
        boot: "b1".into(),
    }
}

/// A language file of the catalogue (`languages/available/NAME.toml`).
pub(crate) fn catalogue(name: &str) -> Arc<Language> {
    let path = format!(
        "{}/languages/available/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let origin = Origin::File(path.into());
    Arc::new(Language::parse(origin, &text, &DefaultLimits::default()).unwrap())
}

/// The shipped python (with a warm-up and a pre-start hook) and C (a
/// compiled language).
pub(crate) fn registry() -> Registry {
    let mut languages = Registry::builtin(&DefaultLimits::default())
        .unwrap()
        .languages()
        .to_vec();
    languages.push(catalogue("c"));
    Registry::from_languages(languages).unwrap()
}

pub(crate) fn bounds() -> RequestBounds {
    RequestBounds {
        max_code_bytes: 1 << 16,
        max_files: 8,
        max_stdin_bytes: 1 << 16,
        max_args: 8,
        max_arg_bytes: 256,
        max_tests: 64,
        max_output_files: 16,
        max_output_bytes: 8 * 1024 * 1024,
    }
}

/// A job of `language` (a name of [`registry`]) with `code`, one run per
/// stdin of `inputs` (a single run for one).
pub(crate) fn job(registry: &Registry, language: &str, code: &str, inputs: &[&str]) -> Job {
    job_with(registry, language, code, inputs, LimitsOverride::default())
}

/// [`job`] with the run limits lowered by `run_limits`.
pub(crate) fn job_with(
    registry: &Registry,
    language: &str,
    code: &str,
    inputs: &[&str],
    run_limits: LimitsOverride,
) -> Job {
    let tests: Vec<RunInput> = match inputs {
        [_] => Vec::new(),
        many => many
            .iter()
            .map(|stdin| RunInput {
                stdin: stdin.as_bytes().to_vec(),
                args: vec!["arg".into()],
                files: Vec::new(),
            })
            .collect(),
    };
    let request = JobRequest {
        language: language.into(),
        main: code.as_bytes().to_vec(),
        stdin: inputs
            .first()
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default(),
        args: vec!["arg".into()],
        run_limits,
        tests,
        ..JobRequest::default()
    };
    let client: Client = Arc::from("tester");
    request.into_job(registry, &bounds(), client).unwrap()
}

/// Pool settings with `floor` waiting sandboxes per language, `refills` at
/// once, a budget of `budget` sandboxes, pre-start on.
pub(crate) fn pool(floor: usize, refills: usize, budget: u64) -> PoolSettings {
    PoolSettings {
        size: floor,
        refills,
        memory_mb: budget * IDLE_SANDBOX_MB,
        prestart: true,
    }
}

/// Custody, uids, a launcher and an executor on a fake engine, with the
/// removal queue running; `stop` ends it.
pub(crate) struct Rig {
    pub(crate) fake: Arc<FakeEngine>,
    pub(crate) custody: Arc<Custody>,
    pub(crate) uids: Arc<Uids>,
    pub(crate) launcher: Launcher,
    pub(crate) executor: Executor,
    pub(crate) tasks: JoinSet<()>,
    pub(crate) cancel: CancellationToken,
}

impl Rig {
    /// A rig on an engine holding python's and C's images, with `pool`.
    pub(crate) fn new(pool: PoolSettings) -> Rig {
        Rig::on(FakeEngine::new(&[PYTHON_IMAGE, C_IMAGE]), pool)
    }

    pub(crate) fn on(fake: Arc<FakeEngine>, pool: PoolSettings) -> Rig {
        let engine: Arc<dyn Containers> = Arc::new(fake.clone());
        let custody = Custody::new(engine, owner());
        let uids = Uids::new(UidRange {
            first: 700_000,
            last: 700_063,
        });
        let launcher = Launcher::new(custody.clone(), uids.clone());
        let executor = Executor::new(custody.clone(), uids.clone(), pool);
        let mut tasks = JoinSet::new();
        let cancel = CancellationToken::new();
        tasks.spawn(custody.clone().run(cancel.clone()));
        Rig {
            fake,
            custody,
            uids,
            launcher,
            executor,
            tasks,
            cancel,
        }
    }

    /// Starts the executor's background work (pool, janitor, sweep) over
    /// `registry`.
    pub(crate) fn start(
        &mut self,
        registry: Registry,
    ) -> tokio::sync::watch::Sender<Arc<Registry>> {
        let (languages, subscribed) = tokio::sync::watch::channel(Arc::new(registry));
        self.executor
            .start(&mut self.tasks, subscribed, &self.cancel);
        languages
    }

    /// Waits until every queued removal is done.
    pub(crate) async fn settle(&self) {
        self.custody.flush(std::time::Duration::from_secs(30)).await;
    }

    /// Shuts the executor down and checks that nothing is left on the
    /// engine and no uid is leased.
    pub(crate) async fn finish(mut self) {
        self.executor.shutdown().await;
        self.launcher.release_tools().await;
        self.settle().await;
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
        let left = self.fake.left();
        assert_eq!(left, 0, "left on the engine: {:?}", self.fake.ids());
        assert_eq!(self.uids.in_use(), 0, "uids still leased");
    }
}

/// Turns for a job's runs: `width` at once, each taken at once, or refused
/// when `refuse` says.
pub(crate) struct Width {
    pub(crate) width: usize,
    pub(crate) refuse: bool,
    pub(crate) taken: std::sync::atomic::AtomicUsize,
}

impl Width {
    pub(crate) fn new(width: usize) -> Width {
        Width {
            width,
            refuse: false,
            taken: Default::default(),
        }
    }
}

impl crate::executor::Turns for Width {
    type Turn = ();

    fn width(&self) -> usize {
        self.width
    }

    async fn take(&self) -> Result<(), SandboxError> {
        self.taken.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if self.refuse {
            return Err(SandboxError::Stopped);
        }
        Ok(())
    }
}
