//! Interactive runs: a solution and an interactor, each compiled once,
//! then for each test the two run side by side, each in a sandbox of its
//! own, with nothing shared between them but what the service relays: the
//! solution's stdout to the interactor's stdin and back ([`live::pipe`]).
//! The pair of one test runs in one turn, so that neither waits for the
//! other's start, and each is held to its own limits.

use futures_util::{StreamExt, TryStreamExt};
use tokio::time::Instant;

use super::runs::{Prepared, Ran, Readied, Ready, Runs, Served, Turns};
use crate::job::{Job, RunInput};
use crate::live::{self, Live};
use crate::nonempty::NonEmpty;
use crate::outcome::{Outcome, Timing};
use crate::sandbox::{Build, SandboxError};

/// How an interactive job went.
#[derive(Debug, Clone)]
pub(crate) enum Interacted {
    /// The interactor did not compile: the solution did not run.
    InteractorFailed(Ran),
    /// The solution did not compile.
    SolutionFailed(Ran),
    /// Both ran, once per test.
    Ran {
        solution: Box<Ran>,
        interactor: Box<Ran>,
    },
}

impl Runs {
    /// Runs `solution` against `interactor`, test `i` of the one with
    /// input `i` of the other (see the module's doc).
    pub(super) async fn interact(
        &self,
        solution: &Job,
        interactor: &Job,
        turns: &impl Turns,
    ) -> Result<Interacted, SandboxError> {
        if self.stop.is_cancelled() {
            return Err(SandboxError::Stopped);
        }
        let _in_flight = self.custody.run_in_flight();
        let began = Instant::now();
        let (ours, theirs) = tokio::join!(
            self.prepare(solution, None, false),
            self.prepare(interactor, None, false)
        );
        let (ours, theirs) = match (ours, theirs) {
            (Ok(Prepared::Ready(ours)), Ok(Prepared::Ready(theirs))) => (ours, theirs),
            (ours, theirs) => return self.unprepared(ours, theirs),
        };
        let (our_build, their_build) = (
            build(solution, &ours.ready),
            build(interactor, &theirs.ready),
        );
        let runs: Vec<_> = (solution.inputs.iter().zip(interactor.inputs.iter()))
            .map(|(mine, its)| {
                let ours = (solution, our_build, mine);
                self.one_test(ours, (interactor, their_build, its), turns)
            })
            .collect();
        let runs = futures_util::stream::iter(runs)
            .buffered(turns.width().max(1))
            .try_collect::<Vec<_>>()
            .await;
        let (ours, our_ready) = ours.split();
        let (theirs, their_ready) = theirs.split();
        self.discard(our_ready);
        self.discard(their_ready);
        let (solution_runs, interactor_runs): (Vec<_>, Vec<_>) = runs?.into_iter().unzip();
        let solution = ran(ours, solution_runs, began);
        let interactor = ran(theirs, interactor_runs, began);
        Ok(Interacted::Ran {
            solution: Box::new(solution),
            interactor: Box::new(interactor),
        })
    }

    /// When either did not get ready: what the other made goes, and the
    /// failure is the answer (the interactor's first, as the judge's).
    fn unprepared(
        &self,
        ours: Result<Prepared, SandboxError>,
        theirs: Result<Prepared, SandboxError>,
    ) -> Result<Interacted, SandboxError> {
        let mut error = None;
        let mut failed = (None, None);
        for (side, prepared) in [(0, ours), (1, theirs)] {
            match prepared {
                Ok(Prepared::Ready(readied)) => self.discard(readied.ready),
                Ok(Prepared::Failed(ran)) if side == 0 => failed.0 = Some(ran),
                Ok(Prepared::Failed(ran)) => failed.1 = Some(ran),
                Err(e) => error = Some(e),
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        match failed {
            (_, Some(theirs)) => Ok(Interacted::InteractorFailed(theirs)),
            (Some(ours), None) => Ok(Interacted::SolutionFailed(ours)),
            (None, None) => unreachable!("called when one was not ready"),
        }
    }

    /// One test: its turn, then the interactor, and the solution once the
    /// interactor's program has started (so that the solution's clock
    /// never counts the interactor's start), relayed; each side's end
    /// closes the other's stdin.
    async fn one_test(
        &self,
        (solution, solution_build, mine): (&Job, Option<Build<'_>>, &RunInput),
        (interactor, interactor_build, its): (&Job, Option<Build<'_>>, &RunInput),
        turns: &impl Turns,
    ) -> Result<(Served, Served), SandboxError> {
        let _turn = turns.take().await?;
        let (ours, our_ends) = Live::new();
        let (theirs, their_ends) = Live::new();
        let (running, their_start) = tokio::sync::oneshot::channel();
        let ours = async move {
            // Untold, the interactor ended before its program started: the
            // solution runs and finds its stdin closed.
            let _ = their_start.await;
            let served = self
                .run_one(solution, solution_build, mine, Some(&ours))
                .await;
            drop(ours);
            served
        };
        let theirs = async move {
            let served = (self.run_one(interactor, interactor_build, its, Some(&theirs))).await;
            drop(theirs);
            served
        };
        // The first to fail ends the test: the other's sandbox goes with
        // its future (its custody removes it).
        let relay = async {
            live::pipe(our_ends, their_ends, running).await;
            Ok(())
        };
        let (ours, theirs, ()) = tokio::try_join!(ours, theirs, relay)?;
        Ok((ours, theirs))
    }
}

/// Where a job's runs find its build, if it was compiled.
fn build<'a>(job: &'a Job, ready: &'a Ready) -> Option<Build<'a>> {
    match ready {
        Ready::Shared { pair, .. } => job.limits.compile.as_ref().map(|compile| Build {
            volume: pair.volume.id(),
            compile,
        }),
        Ready::Sources | Ready::Alone { .. } => None,
    }
}

/// A side's answer: its compile and its runs, in the tests' order.
fn ran(readied: Readied<()>, runs: Vec<Served>, began: Instant) -> Ran {
    let first_pool = runs.first().map(|r| r.pool);
    let mut phases = readied.phases;
    if let Some(first) = runs.first() {
        phases.extend(first.phases.iter().cloned());
    }
    let runs = NonEmpty::from_vec(runs.into_iter().map(|r| r.result).collect())
        .expect("a job has an input");
    let timing = Timing {
        pool: readied.pool.or(first_pool).expect("a job has an input"),
        phases,
        docker: began.elapsed(),
    };
    Ran {
        outcome: Outcome::Ran {
            compile: readied.compile,
            runs,
        },
        timing,
    }
}
