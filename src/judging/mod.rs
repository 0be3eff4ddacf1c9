//! Judging a batch's tests, as online judges do: each test's output
//! compared with its expected output ([`compare`]), or judged by a
//! checker, or the program run against an interactor, both programs of
//! the problem's that speak testlib's convention ([`testlib`]), each in
//! sandboxes of its own, never the solution's. An operator's shared
//! checkers are files in a catalogue ([`catalogue`]).
//!
//! A checker runs once per test whose run ended `ok`, compiled once for
//! the batch, as `checker input.txt output.txt answer.txt`: the test's
//! stdin, the program's stdout and the expected output, as files. An
//! interactor runs beside each test's run as
//! `interactor input.txt output.txt answer.txt`, its stdout relayed to the
//! program's stdin and the program's stdout to its stdin, with no file
//! between them.

pub(crate) mod catalogue;
pub(crate) mod compare;
pub(crate) mod testlib;

use std::sync::Arc;

pub(crate) use compare::Compare;

use crate::job::{Job, RunInput, SourceFile};
use crate::language::Language;
use crate::nonempty::NonEmpty;
use crate::outcome::{LimitHit, Outcome, StageResult, Status};
use crate::runner::{Interaction, Report, RunError, Runner};
use testlib::Said;

/// The files a checker or an interactor gets, and the arguments that name
/// them (testlib's order).
pub(crate) const INPUT_FILE: &str = "input.txt";
pub(crate) const OUTPUT_FILE: &str = "output.txt";
pub(crate) const ANSWER_FILE: &str = "answer.txt";

/// A test's verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    Accepted,
    WrongAnswer,
    PresentationError,
    /// Partly right: a checker's points (testlib's exit 7).
    Partial,
    /// The checker or interactor failed: never the program's fault.
    CheckerError,
    /// The run did not end `ok`: its own status (`timeout`,
    /// `runtime_error`, …).
    Ran(Status),
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::WrongAnswer => "wrong_answer",
            Verdict::PresentationError => "presentation_error",
            Verdict::Partial => "partial",
            Verdict::CheckerError => "checker_error",
            Verdict::Ran(status) => status.as_str(),
        }
    }
}

/// How a batch's tests are judged.
#[derive(Debug, Clone)]
pub(crate) enum Judge {
    /// Each output against its expected output.
    Compare(Compare),
    /// By a checker: its job, whose inputs are made for each test.
    Checker(Job),
    /// Against an interactor: its job, likewise.
    Interactor(Job),
}

/// What a batch is judged by: per test, its expected output (a checker's
/// or an interactor's answer file), and the judge.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) expected: Vec<Option<String>>,
    pub(crate) judge: Judge,
}

impl Plan {
    /// How many programs run per test: the program, and its checker or
    /// interactor.
    pub(crate) fn programs(&self) -> usize {
        match self.judge {
            Judge::Compare(_) => 1,
            Judge::Checker(_) | Judge::Interactor(_) => 2,
        }
    }
}

/// A judged batch.
#[derive(Debug, Clone)]
pub(crate) struct Judged {
    /// What judged it: `compare`, `checker` or `interactor`.
    pub(crate) judged_by: &'static str,
    /// The program's language.
    pub(crate) language: Arc<Language>,
    /// The program's report; `None` when the interactor did not compile
    /// (the program did not run).
    pub(crate) solution: Option<Report>,
    /// The checker's or the interactor's: its compile, and its runs.
    pub(crate) judge: Option<Report>,
    /// One per test, when the program ran.
    pub(crate) tests: Vec<Judgement>,
}

/// One test's judgement.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Judgement {
    /// `None`: a test with nothing to judge it by (no expected output).
    pub(crate) verdict: Option<Verdict>,
    /// A partial verdict's score, as the checker gave it.
    pub(crate) score: Option<f64>,
    /// What the checker or interactor said of it (what it wrote on
    /// stderr, trimmed), with, when it failed, why.
    pub(crate) message: Option<String>,
    /// The checker's or interactor's run for this test.
    pub(crate) judge: Option<StageResult>,
}

impl Judged {
    /// Whether the checker or interactor failed anywhere: it did not
    /// compile, or failed on a test.
    pub(crate) fn judge_failed(&self) -> bool {
        let compile_failed = self
            .judge
            .as_ref()
            .is_some_and(|r| matches!(r.outcome, Outcome::CompileFailed { .. }));
        compile_failed || (self.tests.iter()).any(|t| t.verdict == Some(Verdict::CheckerError))
    }
}

/// Runs `job` on `runner` and judges its tests as `plan` says.
pub(crate) async fn judge<R: Runner>(runner: &R, job: Job, plan: Plan) -> Result<Judged, RunError> {
    let language = job.language.clone();
    let judged_by = match plan.judge {
        Judge::Compare(_) => "compare",
        Judge::Checker(_) => "checker",
        Judge::Interactor(_) => "interactor",
    };
    let (solution, judge, tests) = match plan.judge {
        Judge::Compare(compare) => {
            let report = runner.run(job).await?;
            let tests = compared(&report, compare, &plan.expected);
            (Some(report), None, tests)
        }
        Judge::Checker(checker) => checked(runner, job, checker, &plan.expected).await?,
        Judge::Interactor(interactor) => {
            interacted(runner, job, interactor, &plan.expected).await?
        }
    };
    Ok(Judged {
        judged_by,
        language,
        solution,
        judge,
        tests,
    })
}

type Parts = (Option<Report>, Option<Report>, Vec<Judgement>);

/// The runs of `report`, when the program ran.
fn runs(report: &Report) -> Option<&NonEmpty<StageResult>> {
    match &report.outcome {
        Outcome::Ran { runs, .. } => Some(runs),
        Outcome::CompileFailed { .. } => None,
    }
}

/// Each test's output compared with its expected output.
fn compared(report: &Report, compare: Compare, expected: &[Option<String>]) -> Vec<Judgement> {
    let Some(runs) = runs(report) else {
        return Vec::new();
    };
    (runs.iter().zip(expected))
        .map(|(run, expected)| Judgement {
            verdict: expected.as_deref().map(|expected| match run.status() {
                Status::Ok => match compare.judge(expected, &run.stdout) {
                    compare::Verdict::Accepted => Verdict::Accepted,
                    compare::Verdict::WrongAnswer => Verdict::WrongAnswer,
                },
                status => Verdict::Ran(status),
            }),
            ..Judgement::default()
        })
        .collect()
}

/// The program's tests, then the checker on each that ended `ok`.
async fn checked<R: Runner>(
    runner: &R,
    job: Job,
    checker: Job,
    expected: &[Option<String>],
) -> Result<Parts, RunError> {
    let inputs = job.inputs.clone();
    let report = runner.run(job).await?;
    let Some(ran) = runs(&report) else {
        return Ok((Some(report), None, Vec::new()));
    };
    let mut tests: Vec<Judgement> = ran.iter().map(|run| unjudged(run.status())).collect();
    let judged: Vec<usize> = (0..tests.len())
        .filter(|&i| ran[i].status() == Status::Ok)
        .collect();
    let checks = judged.iter().map(|&i| {
        let answer = expected[i].as_deref().unwrap_or_default();
        judge_input(&inputs[i].stdin, Some(ran[i].stdout.as_bytes()), answer)
    });
    let Some(checks) = NonEmpty::from_vec(checks.collect()) else {
        return Ok((Some(report), None, tests));
    };
    let checker = runner.run(with_inputs(checker, checks)).await?;
    for (k, &i) in judged.iter().enumerate() {
        tests[i] = match runs(&checker) {
            Some(said) => told(&said[k], "checker"),
            None => Judgement {
                verdict: Some(Verdict::CheckerError),
                message: Some("the checker did not compile".to_string()),
                ..Judgement::default()
            },
        };
    }
    Ok((Some(report), Some(checker), tests))
}

/// The program's tests, each against the interactor.
async fn interacted<R: Runner>(
    runner: &R,
    mut job: Job,
    interactor: Job,
    expected: &[Option<String>],
) -> Result<Parts, RunError> {
    let theirs = job.inputs.iter().zip(expected).map(|(input, answer)| {
        let answer = answer.as_deref().unwrap_or_default();
        judge_input(&input.stdin, None, answer)
    });
    let theirs = NonEmpty::from_vec(theirs.collect()).expect("a job has an input");
    // The program's stdin is the interactor's stdout, and nothing else.
    for input in job.inputs.iter_mut() {
        input.stdin.clear();
    }
    let interactor = with_inputs(interactor, theirs);
    Ok(match runner.interact(job, interactor).await? {
        Interaction::InteractorFailed(report) => (None, Some(report), Vec::new()),
        Interaction::SolutionFailed(report) => (Some(report), None, Vec::new()),
        Interaction::Ran {
            solution,
            interactor,
        } => {
            let (ours, theirs) = (runs(&solution), runs(&interactor));
            let tests = (ours.into_iter().flat_map(NonEmpty::iter))
                .zip(theirs.into_iter().flat_map(NonEmpty::iter))
                .map(|(ours, theirs)| interaction(ours, theirs))
                .collect();
            (Some(*solution), Some(*interactor), tests)
        }
    })
}

/// A test's verdict from the program's run and the interactor's, in this
/// order: a limit the program hit; the interactor's wrong answer or
/// presentation error; the interactor stopped at its wall-time limit while
/// the program had not ended `ok` (they waited on each other: the program
/// was idle, a time limit); any other failure of the interactor (its
/// fault, even when the program then failed on its closed stdin); the
/// program's own failure; what the interactor said.
fn interaction(ours: &StageResult, theirs: &StageResult) -> Judgement {
    let told = told(theirs, "interactor");
    let status = ours.status();
    let ran = |status| Judgement {
        verdict: Some(Verdict::Ran(status)),
        score: None,
        ..told.clone()
    };
    let idle = theirs.limit == Some(LimitHit::WallTime) && status != Status::Ok;
    match (status, told.verdict) {
        (Status::Timeout | Status::MemoryLimit | Status::OutputLimit, _) => ran(status),
        (_, Some(Verdict::WrongAnswer | Verdict::PresentationError)) => told,
        _ if idle => ran(Status::Timeout),
        (_, Some(Verdict::CheckerError)) => told,
        (Status::RuntimeError, _) => ran(status),
        _ => told,
    }
}

/// What a checker's (or interactor's) run says of a test.
fn told(result: &StageResult, what: &str) -> Judgement {
    let (said, message) = testlib::read(result);
    let (verdict, score, message) = match said {
        Said::Accepted => (Verdict::Accepted, None, message),
        Said::WrongAnswer => (Verdict::WrongAnswer, None, message),
        Said::PresentationError => (Verdict::PresentationError, None, message),
        Said::Partial(score) => (Verdict::Partial, score, message),
        Said::Failed(why) => {
            let message = match message.is_empty() {
                true => format!("the {what} failed: {why}"),
                false => format!("the {what} failed: {why}: {message}"),
            };
            (Verdict::CheckerError, None, message)
        }
    };
    Judgement {
        verdict: Some(verdict),
        score,
        message: Some(message),
        judge: Some(result.clone()),
    }
}

/// A test the checker does not see: its run's own status.
fn unjudged(status: Status) -> Judgement {
    Judgement {
        verdict: Some(Verdict::Ran(status)),
        ..Judgement::default()
    }
}

/// A checker's (with the program's `output`) or an interactor's input for
/// one test: testlib's files and the arguments naming them.
fn judge_input(stdin: &[u8], output: Option<&[u8]>, answer: &str) -> RunInput {
    let file = |name: &str, content: &[u8]| SourceFile {
        name: name.to_string(),
        content: content.to_vec(),
    };
    let files = vec![
        file(INPUT_FILE, stdin),
        file(OUTPUT_FILE, output.unwrap_or_default()),
        file(ANSWER_FILE, answer.as_bytes()),
    ];
    RunInput {
        stdin: Vec::new(),
        args: [INPUT_FILE, OUTPUT_FILE, ANSWER_FILE]
            .map(String::from)
            .to_vec(),
        files,
    }
}

/// The checker's (or interactor's) job with the inputs of this batch.
fn with_inputs(mut job: Job, inputs: NonEmpty<RunInput>) -> Job {
    job.inputs = inputs;
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Exit, StreamKind, Usage};

    fn ended(code: Option<i32>, limit: Option<LimitHit>, stderr: &str) -> StageResult {
        StageResult {
            exit: code.map(Exit::Code),
            limit,
            stdout: String::new(),
            stderr: stderr.to_string(),
            output: stderr.to_string(),
            duration: std::time::Duration::ZERO,
            usage: Usage::default(),
            files: None,
        }
    }

    #[test]
    fn an_interactive_tests_verdict_weighs_both_ends_in_order() {
        use Verdict::*;
        let ok = ended(Some(0), None, "");
        let crashed = ended(Some(1), None, "EOFError");
        let out_of_time = ended(None, Some(LimitHit::WallTime), "");
        let flooded = ended(None, Some(LimitHit::Output(StreamKind::Stdout)), "");
        let (accepted, wrong) = (ended(Some(0), None, "ok"), ended(Some(1), None, "wrong"));
        let points = ended(Some(7), None, "points 0.5 half");
        let fail = ended(Some(3), None, "FAIL bad input");
        let waited = ended(None, Some(LimitHit::WallTime), "");
        // (the program, the interactor, the verdict)
        let rows = [
            (&ok, &accepted, Accepted),
            (&ok, &points, Partial),
            (&ok, &wrong, WrongAnswer),
            (&out_of_time, &accepted, Ran(Status::Timeout)),
            (&out_of_time, &wrong, Ran(Status::Timeout)),
            (&flooded, &wrong, Ran(Status::OutputLimit)),
            (&crashed, &wrong, WrongAnswer),
            (&crashed, &accepted, Ran(Status::RuntimeError)),
            // They waited on each other and the interactor's clock ran
            // out first: the program was idle.
            (&crashed, &waited, Ran(Status::Timeout)),
            // The program ended, the interactor went on waiting: its own.
            (&ok, &waited, CheckerError),
            // A broken interactor is never the program's fault, even when
            // the program then failed on its closed stdin.
            (&crashed, &fail, CheckerError),
            (&ok, &fail, CheckerError),
        ];
        for (i, (ours, theirs, verdict)) in rows.into_iter().enumerate() {
            let got = interaction(ours, theirs);
            assert_eq!(got.verdict, Some(verdict), "row {i}: {got:?}");
            assert_eq!(got.judge.as_ref(), Some(theirs), "row {i}: its run is kept");
        }
        assert_eq!(interaction(&ok, &points).score, Some(0.5));
        assert_eq!(interaction(&out_of_time, &points).score, None);
    }
}
