//! Batches: a program compiled once, then run against many tests, each in
//! a fresh sandbox of its own (so that one test cannot see another's files
//! or processes).
//!
//! For a compiled language, the compile writes its build into the run's
//! scratch volume, which a keeper sandbox (started, never fed) holds
//! mounted so that it outlives the compile container (a tmpfs volume
//! empties when its last container stops). Each test's sandbox mounts it
//! read-only and has the supervisor copy the build into its own working
//! directory (executable, like a compiled language's) before the program
//! starts. For an interpreted language, each test is an ordinary run,
//! pooled or cold.

use std::sync::Arc;

use super::custody::{Custody, Held};
use super::launcher::Launch;
use super::sandbox::{Payload, Sandbox};
use super::spec::Start;
use super::uids::UidLease;
use super::verdict::{StageResult, Status};
use super::{ExecError, Executor, bounds};
use crate::engine::{BUILD_POINT, Kind};
use crate::job::{Job, Stage, TestInput};
use crate::limits::Limits;

/// A job made ready for its tests.
#[derive(Debug)]
pub enum Built {
    /// Nothing to compile: each test runs from the sources.
    Sources,
    /// Compiled: the build waits on its volume, held by the keeper.
    Compiled {
        compile: StageResult,
        build: Box<Build>,
    },
    /// The compile did not end `ok`; no test runs.
    Failed(StageResult),
}

/// A compiled build, and what holds it; removed when dropped.
pub struct Build {
    custody: Arc<Custody>,
    /// The keeper: a sandbox started and never fed (its stdin stays open,
    /// so it waits), which holds the volume mounted. (In a mutex only so
    /// that the build may be shared by the tests running at once.)
    keeper: std::sync::Mutex<Option<Sandbox>>,
    volume: Option<Held>,
    /// The compile's uid, held while its files are.
    _uid: Arc<UidLease>,
}

impl std::fmt::Debug for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Build")
            .field("volume", &self.volume)
            .finish_non_exhaustive()
    }
}

impl Drop for Build {
    fn drop(&mut self) {
        let keeper = (self.keeper.get_mut())
            .ok()
            .and_then(Option::take)
            .map(Sandbox::into_container);
        let held: Vec<Held> = [keeper, self.volume.take()].into_iter().flatten().collect();
        self.custody.release(held);
    }
}

impl Executor {
    /// Compiles `job` once for its tests (compiled languages); the build
    /// stays until the returned value is dropped.
    pub async fn build(&self, job: &Job) -> Result<Built, ExecError> {
        let Some(compile) = &job.limits.compile else {
            return Ok(Built::Sources);
        };
        let uid = self.launcher.lease().await;
        let name = format!("code-runner-{}", uuid::Uuid::new_v4().simple());
        let volume = self.custody.hold(Kind::Volume, name, None);
        self.custody
            .engine()
            .create_volume(
                volume.id(),
                Some(&super::spec::volume_options(compile, uid.uid())),
                super::spec::labels(self.custody.owner(), &job.language),
            )
            .await?;
        let keeper = self.launch(job, Stage::Run, &job.limits.run, Some(volume.id()));
        let keeper = self.launcher.launch(keeper, &uid, None).await?;
        let compiled = self.compile(job, compile, volume.id(), &uid).await?;
        let build = Build {
            custody: self.custody.clone(),
            keeper: std::sync::Mutex::new(Some(keeper)),
            volume: Some(volume),
            _uid: uid,
        };
        Ok(match compiled.status() {
            Status::Ok => Built::Compiled {
                compile: compiled,
                build: Box::new(build),
            },
            _ => Built::Failed(compiled),
        })
    }

    pub(super) async fn compile(
        &self,
        job: &Job,
        limits: &Limits,
        volume: &str,
        uid: &Arc<UidLease>,
    ) -> Result<StageResult, ExecError> {
        let launch = self.launch(job, Stage::Compile, limits, Some(volume));
        let compiler = self.launcher.launch(launch, uid, None).await?;
        let files: Vec<_> = job.files.all().collect();
        let payload = Payload::new(Some(limits.cpu_time()), &files, &job.compile_args, b"");
        let compiled = compiler
            .execute(Some(payload), bounds(limits), &self.stop)
            .await?;
        Ok(compiled.result)
    }

    /// Runs one test of `job` in a fresh sandbox, from `built`.
    pub async fn run_test(
        &self,
        job: &Job,
        built: &Built,
        test: &TestInput,
    ) -> Result<StageResult, ExecError> {
        let _in_flight = self.custody.run_in_flight();
        match built {
            Built::Sources => {
                let single = Job {
                    args: test.args.clone(),
                    stdin: test.stdin.clone(),
                    tests: Vec::new(),
                    ..job.clone()
                };
                let ran = self.interpreted(&single).await?;
                Ok(ran.outcome.run().cloned().expect("an interpreted run ran"))
            }
            Built::Compiled { build, .. } => {
                let uid = self.launcher.lease().await;
                let volume = build.volume.as_ref().map(Held::id);
                let launch = Launch {
                    language: &job.language,
                    stage: Stage::Run,
                    limits: &job.limits.run,
                    volume: None,
                    build: volume,
                    start: Start::Cold,
                };
                let run = &job.limits.run;
                let payload =
                    Payload::with_build(run.cpu_time(), BUILD_POINT, &test.args, &test.stdin);
                let sandbox = self.launcher.launch(launch, &uid, Some(payload)).await?;
                Ok(sandbox.execute(None, bounds(run), &self.stop).await?.result)
            }
            Built::Failed(_) => Err(ExecError::Internal(
                "a test was run after its compile failed".into(),
            )),
        }
    }
}
