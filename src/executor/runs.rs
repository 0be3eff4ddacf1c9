//! One path for one run or many: a job is compiled once (for a compiled
//! language), then each of its inputs runs in a fresh sandbox of its own,
//! so that one run cannot see another's files or processes. A single run is
//! a batch of one.
//!
//! An interpreted language's run is one sandbox, pooled when one waits
//! with the job's limits, else started for it. A compiled language's
//! compile runs in the compile sandbox of a pair (pooled or made now),
//! whose run sandbox waits beside it on their shared volume, holding it
//! mounted (a tmpfs volume empties when its last container stops). For one
//! input, the program then runs in that run sandbox, on the volume the
//! compile wrote: the fast case. For several, the run sandbox stays unfed
//! as the build's keeper, and each input runs in a fresh sandbox that
//! mounts the volume read-only and has the supervisor copy the build into
//! its own working directory before the program starts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::pair::Pair;
use super::pool::Pool;
use crate::custody::{Custody, Held};
use crate::engine::BUILD_POINT;
use crate::job::{Job, RunInput, Stage, Stderr};
use crate::limits::Limits;
use crate::live::Live;
use crate::nonempty::NonEmpty;
use crate::outcome::{
    Exit, LimitHit, Outcome, Phase, Phases, PoolUse, StageResult, Status, Timing, Usage,
};
use crate::sandbox::{
    Build, Clock, CpuBound, Launch, Launcher, Payload, Sandbox, SandboxError, StageBounds, Start,
    Terms,
};

/// Where each run of a job gets its turn (the run slots of the layer
/// above): a job's runs go as their turns come, at most [`Turns::width`]
/// at once.
pub(crate) trait Turns: Sync {
    /// Held while one run runs.
    type Turn: Send;

    /// How many of the job's runs may run at once.
    fn width(&self) -> usize;

    /// Waits for the turn of one more run; [`SandboxError::Stopped`] when no
    /// more may start.
    fn take(&self) -> impl Future<Output = Result<Self::Turn, SandboxError>> + Send;
}

/// What [`Executor::run`](super::Executor::run) gives.
#[derive(Debug, Clone)]
pub(crate) struct Ran {
    pub(crate) outcome: Outcome,
    pub(crate) timing: Timing,
}

/// The run path: what a job's runs need (custody, the launcher, the pool)
/// and the token that stops them at shutdown.
#[derive(Debug, Clone)]
pub(super) struct Runs {
    pub(super) custody: Arc<Custody>,
    pub(super) launcher: Arc<Launcher>,
    pub(super) pool: Arc<Pool>,
    /// Cancelled at shutdown, when the grace period is over.
    pub(super) stop: CancellationToken,
}

/// A job made ready for its runs, or its compile's failure.
// Made once per job and taken apart at once, never stored: a box would
// buy nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Prepared {
    Failed(Ran),
    Ready(Readied),
}

/// A job made ready: how (`R`), its compile's result and how it was
/// served.
pub(super) struct Readied<R = Ready> {
    pub(super) ready: R,
    pub(super) compile: Option<StageResult>,
    pub(super) pool: Option<PoolUse>,
    pub(super) phases: Phases,
}

impl Readied {
    /// Its account, and what it made ready.
    pub(super) fn split(self) -> (Readied<()>, Ready) {
        let account = Readied {
            ready: (),
            compile: self.compile,
            pool: self.pool,
            phases: self.phases,
        };
        (account, self.ready)
    }
}

/// A job made ready for its runs.
pub(super) enum Ready {
    /// Nothing to compile: each run is from the sources.
    Sources,
    /// Compiled, for its one run: the pair's run sandbox, on the volume the
    /// compile wrote.
    Alone { pair: Leftovers, runner: Sandbox },
    /// Compiled, for several runs: the pair's run sandbox, never fed, is
    /// the keeper that holds the volume mounted while each run copies the
    /// build from it.
    Shared { pair: Leftovers, keeper: Sandbox },
}

/// What a compile leaves to remove once the runs are over: its container
/// and the volume (released with the run sandbox, in that order, so that
/// the volume goes once no container uses it).
pub(super) struct Leftovers {
    compiler: Held,
    pub(super) volume: Held,
}

/// One run's result, and how it was served.
pub(super) struct Served {
    pub(super) result: StageResult,
    pub(super) pool: PoolUse,
    pub(super) phases: Phases,
}

/// A compile's result, with the pair it left and how the pair was had.
struct Compiled {
    result: StageResult,
    pair: Leftovers,
    runner: Sandbox,
    pool: PoolUse,
    took: Duration,
}

impl Runs {
    /// Runs `job` (see [`super::Executor::run`]).
    pub(super) async fn run(
        &self,
        job: &Job,
        turns: &impl Turns,
        live: Option<&Live>,
    ) -> Result<Ran, SandboxError> {
        if self.stop.is_cancelled() {
            return Err(SandboxError::Stopped);
        }
        let _in_flight = self.custody.run_in_flight();
        let began = Instant::now();
        let readied = match self.prepare(job, live, job.inputs.len() == 1).await? {
            Prepared::Failed(ran) => return Ok(ran),
            Prepared::Ready(readied) => readied,
        };
        let Readied {
            ready,
            compile,
            pool,
            mut phases,
        } = readied;
        let runs = self.run_inputs(job, ready, turns, live).await?;
        let (first, rest) = runs.into_parts();
        phases.extend(first.phases);
        let timing = Timing {
            pool: pool.unwrap_or(first.pool),
            phases,
            docker: began.elapsed(),
        };
        let runs = NonEmpty::from_vec(
            std::iter::once(first.result)
                .chain(rest.into_iter().map(|r| r.result))
                .collect(),
        )
        .expect("the first run is there");
        let outcome = Outcome::Ran { compile, runs };
        Ok(Ran { outcome, timing })
    }

    /// Makes `job` ready for its runs: compiled once, if its language
    /// compiles (for its `alone` run in the pair's run sandbox, else for
    /// runs that copy the build); a failed compile is its answer.
    pub(super) async fn prepare(
        &self,
        job: &Job,
        live: Option<&Live>,
        alone: bool,
    ) -> Result<Prepared, SandboxError> {
        let began = Instant::now();
        let Some(limits) = &job.limits.compile else {
            return Ok(Prepared::Ready(Readied {
                ready: Ready::Sources,
                compile: None,
                pool: None,
                phases: Phases::new(),
            }));
        };
        let compiled = self.compile(job, limits, live).await?;
        if let Some(live) = live {
            live.compiled(&compiled.result);
        }
        let phases = vec![(Phase::Compile, compiled.took)];
        if compiled.result.status() != Status::Ok {
            self.release(compiled.pair, compiled.runner.into_container());
            let timing = Timing {
                pool: compiled.pool,
                phases,
                docker: began.elapsed(),
            };
            let outcome = Outcome::CompileFailed {
                compile: compiled.result,
            };
            return Ok(Prepared::Failed(Ran { outcome, timing }));
        }
        let (pair, runner) = (compiled.pair, compiled.runner);
        let ready = if alone {
            Ready::Alone { pair, runner }
        } else {
            Ready::Shared {
                pair,
                keeper: runner,
            }
        };
        Ok(Prepared::Ready(Readied {
            ready,
            compile: Some(compiled.result),
            pool: Some(compiled.pool),
            phases,
        }))
    }

    /// Removes what a job made ready and will not run leaves.
    pub(super) fn discard(&self, ready: Ready) {
        match ready {
            Ready::Sources => {}
            Ready::Alone { pair, runner } => self.release(pair, runner.into_container()),
            Ready::Shared { pair, keeper } => self.release(pair, keeper.into_container()),
        }
    }

    /// Runs every input of `job` from `ready`, in the inputs' order.
    async fn run_inputs(
        &self,
        job: &Job,
        ready: Ready,
        turns: &impl Turns,
        live: Option<&Live>,
    ) -> Result<NonEmpty<Served>, SandboxError> {
        let (pair, keeper) = match ready {
            Ready::Alone { pair, runner } => {
                let _turn = turns.take().await?;
                let input = job.inputs.first();
                let (served, runner) = self.in_pair(job, input, runner, live).await?;
                self.release(pair, runner);
                return Ok(NonEmpty::one(served));
            }
            Ready::Sources => (None, None),
            Ready::Shared { pair, keeper } => (Some(pair), Some(keeper)),
        };
        let build = (pair.as_ref().zip(job.limits.compile.as_ref())).map(|(pair, compile)| Build {
            volume: pair.volume.id(),
            compile,
        });
        let runs: Vec<_> = (job.inputs.iter())
            .map(|input| self.in_turn(job, build, input, turns, live))
            .collect();
        let runs = futures_util::stream::iter(runs)
            .buffered(turns.width().max(1))
            .try_collect::<Vec<_>>()
            .await;
        if let (Some(pair), Some(keeper)) = (pair, keeper) {
            self.release(pair, keeper.into_container());
        }
        Ok(NonEmpty::from_vec(runs?).expect("a job has an input"))
    }

    /// One run of `job` once its turn comes: from the sources, or from the
    /// `build` volume.
    async fn in_turn(
        &self,
        job: &Job,
        build: Option<Build<'_>>,
        input: &RunInput,
        turns: &impl Turns,
        live: Option<&Live>,
    ) -> Result<Served, SandboxError> {
        let _turn = turns.take().await?;
        self.run_one(job, build, input, live).await
    }

    /// One run of `job`: from the sources, or from the `build` volume
    /// (streamed, with `live`).
    pub(super) async fn run_one(
        &self,
        job: &Job,
        build: Option<Build<'_>>,
        input: &RunInput,
        live: Option<&Live>,
    ) -> Result<Served, SandboxError> {
        match build {
            None => self.run_sources(job, input, live).await,
            Some(build) => self.run_build(job, build, input, live).await,
        }
    }

    /// One run of an interpreted language, from its sources: in a pooled
    /// sandbox when one waits with the job's limits (a job that lowers a
    /// limit the container holds gets a sandbox of its own), else in one
    /// started for it, which gets its payload before it starts so that the
    /// program starts with its process.
    async fn run_sources(
        &self,
        job: &Job,
        input: &RunInput,
        live: Option<&Live>,
    ) -> Result<Served, SandboxError> {
        let streamed = live.map(|live| {
            live.started(Stage::Run);
            live.stage(Stage::Run)
        });
        // A cold retry shares the streamed run's controls and sink.
        let payload = || {
            let files: Vec<_> = job.files.all().chain(&input.files).collect();
            let stdin = &input.stdin;
            Payload::new(
                run_terms(job, None),
                &files,
                &input.args,
                stdin,
                streamed.clone(),
            )
        };
        let bounds = bounds(&job.limits.run);
        // A pre-started program's streams were set before the run was
        // known: a merged stderr needs a sandbox that starts it.
        let pooled = (job.limits.run.same_sandbox(&job.language.limits)
            && (job.streams.run == Stderr::Apart || !self.pool.prestarts(&job.language)))
        .then(|| self.pool.claim(&job.language))
        .flatten();
        if let Some(sandbox) = pooled {
            // Its creation and start were the pool's, before this request.
            match sandbox.execute(Some(payload()), bounds, &self.stop).await {
                Ok(ran) => return Ok(served(ran.result, PoolUse::Hit, ran.phases)),
                // It died while waiting, after the claim: the program never
                // ran, so it runs in a sandbox of its own.
                Err(SandboxError::NeverStarted(_)) => {
                    tracing::warn!(language = %job.language.label(), "a pooled sandbox died before its program started; running it cold");
                }
                Err(e) => return Err(e),
            }
        }
        let uid = self.launcher.lease().await;
        let launch = Launch::cold(job, Stage::Run, &job.limits.run, None, None);
        let sandbox = self.launcher.launch(launch, &uid, Some(payload())).await?;
        let mut phases = sandbox.start_phases.clone();
        let ran = sandbox.execute(None, bounds, &self.stop).await?;
        phases.extend(ran.phases);
        Ok(served(ran.result, PoolUse::Miss, phases))
    }

    /// The one run of a compiled job, in its pair's run sandbox (handed
    /// back, to go with the pair's leftovers).
    async fn in_pair(
        &self,
        job: &Job,
        input: &RunInput,
        runner: Sandbox,
        live: Option<&Live>,
    ) -> Result<(Served, Held), SandboxError> {
        let streamed = live.map(|live| {
            live.started(Stage::Run);
            live.stage(Stage::Run)
        });
        let (args, stdin) = (&input.args, &input.stdin);
        let files: Vec<_> = input.files.iter().collect();
        let payload = Payload::new(run_terms(job, None), &files, args, stdin, streamed);
        let ran = runner
            .execute(Some(payload), bounds(&job.limits.run), &self.stop)
            .await?;
        Ok((served(ran.result, PoolUse::Hit, ran.phases), ran.container))
    }

    /// Queues a pair's containers, then its volume, for removal.
    fn release(&self, pair: Leftovers, runner: Held) {
        self.custody
            .release(vec![pair.compiler, runner, pair.volume]);
    }

    /// One run of a compiled job with several, in a fresh sandbox that
    /// copies the build from its volume. A build its sandbox cannot hold
    /// is that test's result ([`uncopied`]).
    async fn run_build(
        &self,
        job: &Job,
        build: Build<'_>,
        input: &RunInput,
        live: Option<&Live>,
    ) -> Result<Served, SandboxError> {
        let streamed = live.map(|live| {
            live.started(Stage::Run);
            live.stage(Stage::Run)
        });
        let uid = self.launcher.lease().await;
        let run = &job.limits.run;
        let launch = Launch::cold(job, Stage::Run, run, None, Some(build));
        let files: Vec<_> = input.files.iter().collect();
        let (args, stdin) = (&input.args, &input.stdin);
        let terms = run_terms(job, Some(BUILD_POINT));
        let payload = Payload::new(terms, &files, args, stdin, streamed);
        let sandbox = self.launcher.launch(launch, &uid, Some(payload)).await?;
        let mut phases = sandbox.start_phases.clone();
        let ran = match sandbox.execute(None, bounds(run), &self.stop).await {
            Err(SandboxError::NeverStarted(stderr)) => match uncopied(&stderr, job, build) {
                Some(result) => return Ok(served(result, PoolUse::Miss, phases)),
                None => return Err(SandboxError::NeverStarted(stderr)),
            },
            ran => ran?,
        };
        phases.extend(ran.phases);
        Ok(served(ran.result, PoolUse::Miss, phases))
    }

    /// Compiles `job` in a pair from the pool when one waits (and the job
    /// keeps the language's own limits, which the pair was made with), else
    /// in one made now.
    async fn compile(
        &self,
        job: &Job,
        limits: &Limits,
        live: Option<&Live>,
    ) -> Result<Compiled, SandboxError> {
        let language = &job.language;
        let own_limits = language
            .compile
            .as_ref()
            .is_some_and(|c| c.limits.same_sandbox(limits))
            && job.limits.run.same_sandbox(&language.limits);
        if let Some(pair) = own_limits.then(|| self.pool.claim_pair(language)).flatten() {
            match self.compile_in(job, limits, pair, PoolUse::Hit, live).await {
                // A pooled sandbox died after the claim: the compiler never
                // ran, so it runs in a pair of its own.
                Err(SandboxError::NeverStarted(_)) => {
                    tracing::warn!(language = %language.label(), "a pooled compile sandbox died before its compiler started; compiling cold");
                }
                other => return other,
            }
        }
        let pair = Pair::make(&self.launcher, language, limits, &job.limits.run, false).await?;
        self.compile_in(job, limits, pair, PoolUse::Miss, live)
            .await
    }

    /// Runs the compile of `job` in `pair`'s compile sandbox.
    async fn compile_in(
        &self,
        job: &Job,
        limits: &Limits,
        pair: Pair,
        pool: PoolUse,
        live: Option<&Live>,
    ) -> Result<Compiled, SandboxError> {
        let (compiler, runner, volume) = pair.take();
        let files: Vec<_> = job.files.all().collect();
        let streamed = live.map(|live| {
            live.started(Stage::Compile);
            live.stage(Stage::Compile)
        });
        let args = &job.compile_args;
        let terms = Terms {
            clock: clock(limits),
            stderr: job.streams.compile,
            ..Terms::default()
        };
        let payload = Payload::new(terms, &files, args, b"", streamed);
        match compiler
            .execute(Some(payload), bounds(limits), &self.stop)
            .await
        {
            Ok(compiled) => {
                let pair = Leftovers {
                    compiler: compiled.container,
                    volume,
                };
                Ok(Compiled {
                    result: compiled.result,
                    pair,
                    runner,
                    pool,
                    // The compile's own phases, as one: the compiler's time.
                    took: compiled.phases.iter().map(|(_, d)| *d).sum(),
                })
            }
            Err(e) => {
                self.custody.release(vec![runner.into_container(), volume]);
                Err(e)
            }
        }
    }
}

impl<'a> Launch<'a> {
    /// A sandbox of `job` for `stage` that starts its program when fed.
    pub(super) fn cold(
        job: &'a Job,
        stage: Stage,
        limits: &'a Limits,
        volume: Option<&'a str>,
        build: Option<Build<'a>>,
    ) -> Launch<'a> {
        Launch {
            language: &job.language,
            stage,
            limits,
            volume,
            build,
            start: Start::Cold,
        }
    }
}

fn served(result: StageResult, pool: PoolUse, phases: Phases) -> Served {
    Served {
        result,
        pool,
        phases,
    }
}

/// What the supervisor holds a run of `job` to: its limits, its stderr,
/// the files it brings back, and the `build` to copy in first (a test of
/// a batch).
fn run_terms<'a>(job: &'a Job, build: Option<&'a str>) -> Terms<'a> {
    Terms {
        clock: clock(&job.limits.run),
        stderr: job.streams.run,
        build,
        outputs: job.outputs.as_ref(),
    }
}

/// The time limits the supervisor holds a stage under `limits` to.
pub(super) fn clock(limits: &Limits) -> Clock {
    Clock {
        cpu: Some(limits.cpu_time()),
        wall: Some(limits.wall_time()),
    }
}

/// What the supervisor writes on stderr, before its start line, when it
/// cannot copy the build into a test's working directory (then it exits
/// 126; `tools/supervise.rs`).
const COPY_FAILED: &str = "supervise: cannot copy the build";

/// The result of a test of a batch whose sandbox ended before its program
/// started, while it copied the build into its working directory (sized
/// to hold it, so what is left is a build that outgrows the run's memory,
/// which the copy counts against, or one that expands when copied): the
/// supervisor's own account of the copy's failure, exit 126; or, when the
/// sandbox ended with nothing said, killed for memory (nothing else kills
/// it silently there). `None`: it ended for another reason, the service's
/// trouble.
fn uncopied(stderr: &str, job: &Job, build: Build) -> Option<StageResult> {
    let run = &job.limits.run;
    let room = format!(
        "the build counts against the run's memory ({} MiB), and its working directory holds the build (at most the compile's scratch space, {} MiB) and the run's scratch space ({} MiB)",
        run.memory_mb, build.compile.scratch_mb, run.scratch_mb
    );
    let (exit, limit, stderr) = if stderr.contains(COPY_FAILED) {
        let why =
            format!("{stderr}code-runner: the build could not be copied for this test: {room}\n");
        (Some(Exit::Code(126)), None, why)
    } else if stderr.trim().is_empty() {
        tracing::warn!(language = %job.language.label(), "a test's sandbox ended silently while copying the build; taken as its memory limit");
        let why = format!(
            "code-runner: this test's sandbox was killed while copying the build, before the program started: {room}\n"
        );
        (None, Some(LimitHit::Memory), why)
    } else {
        return None;
    };
    Some(StageResult {
        exit,
        limit,
        stdout: String::new(),
        output: stderr.clone(),
        stderr,
        duration: Duration::ZERO,
        usage: Usage::default(),
        files: None,
    })
}

/// The bounds a stage under `limits` is read within.
pub(super) fn bounds(limits: &Limits) -> StageBounds {
    StageBounds {
        wall_time: limits.wall_time(),
        output_bytes: limits.output_cap(),
        cpu: Some(CpuBound {
            limit: limits.cpu_time(),
            cpus: limits.cpus,
        }),
    }
}
