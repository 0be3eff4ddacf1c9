//! How a run becomes a Judge0 result: its [`Judge0Status`] chosen as
//! Judge0 1.13.1's worker chooses it (`app/jobs/isolate_job.rb`), from
//! what the sandbox really reported.
//!
//! | ours | Judge0 |
//! | --- | --- |
//! | compile failed | 6 Compilation Error (`compile_output`; a compile stopped at its time limit says `Compilation time limit exceeded.`) |
//! | exit 0, output as expected (Judge0's rule: each line's end and the whole trimmed) or none expected | 3 Accepted |
//! | exit 0, other output | 4 Wrong Answer |
//! | exit 0 but past `cpu_time_limit` (within the extra time) | 5 Time Limit Exceeded |
//! | exit 0 with no CPU time measured (the time limit cannot be judged) | 13 Internal Error |
//! | wall-clock or CPU time limit | 5 Time Limit Exceeded |
//! | signal 11, 25, 8, 6 | 7, 8, 9, 10 Runtime Error (SIGSEGV, SIGXFSZ, SIGFPE, SIGABRT) |
//! | another signal | 12 Runtime Error (Other) |
//! | exit N ≠ 0 | 11 Runtime Error (NZEC) |
//! | memory limit | 11 Runtime Error (NZEC), exit code 137, signal 9, message `Memory limit exceeded` (Judge0 has no memory status; its users read NZEC with 137 as one, judge0/judge0#298) |
//! | output limit (`max_file_size`) | 8 Runtime Error (SIGXFSZ), signal 25, message `Output limit exceeded` (what Judge0's file size limit gives) |
//! | no exit status | 13 Internal Error |

use serde::{Deserialize, Serialize};

use super::request::Submission;
use super::status::Judge0Status;
use crate::judging::compare::{Compare, Verdict};
use crate::outcome::{Exit, LimitHit, Outcome, StageResult};

/// The status that lets [`judge`] count on to the next run.
const ACCEPTED: Judge0Status = Judge0Status::Accepted;

/// A finished submission's result, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Judged {
    /// Stored as its id.
    pub(crate) status_id: Judge0Status,
    pub(crate) stdout: Option<String>,
    pub(crate) stderr: Option<String>,
    pub(crate) compile_output: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) exit_code: Option<i64>,
    pub(crate) exit_signal: Option<i64>,
    /// CPU time, s.
    pub(crate) time: Option<f64>,
    /// Wall-clock time, s.
    pub(crate) wall_time: Option<f64>,
    /// Peak memory, KiB.
    pub(crate) memory: Option<i64>,
}

impl Judged {
    /// An Internal Error with `message` (the service's trouble).
    pub(crate) fn internal(message: impl Into<String>) -> Judged {
        Judged {
            status_id: Judge0Status::InternalError,
            message: Some(message.into()),
            ..Judged::default()
        }
    }
}

fn some(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// The result of a submission's `number_of_runs` runs (one, usually), as
/// Judge0 gives it: runs count up to the first that is not Accepted, whose
/// result it is; `time` and `memory` are their averages.
pub(crate) fn judge(submission: &Submission, outcome: &Outcome) -> Judged {
    let (compile, runs) = match outcome {
        Outcome::CompileFailed { compile } => return compile_failed(compile),
        Outcome::Ran { compile, runs } => (compile, runs),
    };
    let mut counted = Vec::new();
    for run in runs.iter() {
        let judged = judge_run(submission, run);
        let accepted = judged.status_id == ACCEPTED;
        counted.push(judged);
        if !accepted {
            break;
        }
    }
    let mut last = counted.last().cloned().unwrap_or_default();
    let average = |values: Vec<f64>| {
        (values.len() == counted.len() && !values.is_empty())
            .then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    last.time = average(counted.iter().filter_map(|j| j.time).collect());
    last.memory = average(
        counted
            .iter()
            .filter_map(|j| j.memory.map(|m| m as f64))
            .collect(),
    )
    .map(|m| m as i64);
    last.compile_output = compile.as_ref().and_then(|c| some(&c.output));
    last
}

fn compile_failed(compile: &StageResult) -> Judged {
    let compile_output = match compile.limit {
        Some(LimitHit::WallTime | LimitHit::CpuTime) => "Compilation time limit exceeded.".into(),
        Some(LimitHit::Memory) => format!("{}\nCompilation memory limit exceeded.", compile.output),
        Some(LimitHit::Output(_)) => {
            format!("{}\nCompilation output limit exceeded.", compile.output)
        }
        None => compile.output.clone(),
    };
    Judged {
        status_id: Judge0Status::CompilationError,
        compile_output: some(compile_output.trim_start_matches('\n')),
        ..Judged::default()
    }
}

/// One run's result: its figures, then its status (Accepted or Wrong
/// Answer when it exited 0 within its time, else how it failed).
fn judge_run(submission: &Submission, run: &StageResult) -> Judged {
    let mut judged = figures(run);
    match failure(submission, run) {
        None => judged.status_id = answer(submission, run),
        Some(failed) => {
            judged.status_id = failed.status;
            judged.message = Some(failed.message);
            judged.exit_code = failed.exit_code;
            judged.exit_signal = failed.exit_signal;
        }
    }
    judged
}

/// What Judge0 reports of any run: its output as the sandbox kept it
/// (with `redirect_stderr_to_stdout`, the program's stderr was its stdout
/// pipe, so `stdout` holds both in the order written and `stderr` is
/// empty: see `job::Stderr`), CPU and wall time in s, peak memory in KiB;
/// exit code 0.
fn figures(run: &StageResult) -> Judged {
    Judged {
        status_id: Judge0Status::Accepted,
        stdout: some(&run.stdout),
        stderr: some(&run.stderr),
        compile_output: None,
        message: None,
        exit_code: Some(0),
        exit_signal: None,
        time: run.usage.cpu_time.map(|d| d.as_secs_f64()),
        wall_time: Some(run.duration.as_secs_f64()),
        memory: run.usage.memory_peak.map(|b| b.div_ceil(1024) as i64),
    }
}

/// A run that exited 0 within its time: Accepted, unless its stdout is not
/// the expected output (Judge0's rule: each line's end and the whole
/// trimmed).
fn answer(submission: &Submission, run: &StageResult) -> Judge0Status {
    let expected = (submission.expected_output.as_deref()).map(String::from_utf8_lossy);
    match expected.map(|e| Compare::Trim.judge(&e, &run.stdout)) {
        Some(Verdict::WrongAnswer) => Judge0Status::WrongAnswer,
        _ => Judge0Status::Accepted,
    }
}

/// How a run failed, in Judge0's words.
struct Failure {
    status: Judge0Status,
    message: String,
    exit_code: Option<i64>,
    exit_signal: Option<i64>,
}

/// How `run` failed, or `None` when it exited 0 within its CPU time (the
/// table in this module's docs).
fn failure(submission: &Submission, run: &StageResult) -> Option<Failure> {
    let failed = |status, message: &str, exit_code, exit_signal| Failure {
        status,
        message: message.to_string(),
        exit_code,
        exit_signal,
    };
    let tle = Judge0Status::TimeLimitExceeded;
    let over_time = run.usage.cpu_time.map(|d| d.as_secs_f64()) > Some(submission.cpu_time_limit);
    Some(match (run.limit, run.exit) {
        (Some(LimitHit::WallTime), _) => {
            failed(tle, "Time limit exceeded (wall clock)", Some(0), None)
        }
        (Some(LimitHit::CpuTime), _) => failed(tle, "Time limit exceeded", Some(0), None),
        (Some(LimitHit::Memory), _) => failed(
            Judge0Status::Nzec,
            "Memory limit exceeded",
            Some(137),
            Some(9),
        ),
        (Some(LimitHit::Output(_)), _) => failed(
            Judge0Status::SigXfsz,
            "Output limit exceeded",
            Some(0),
            Some(25),
        ),
        (None, Some(Exit::Code(0))) if over_time => {
            failed(tle, "Time limit exceeded", Some(0), None)
        }
        // Fails closed: Accepted needs a CPU time to judge the limit by.
        (None, Some(Exit::Code(0))) if run.usage.cpu_time.is_none() => failed(
            Judge0Status::InternalError,
            "no CPU time was measured, so the time limit cannot be judged",
            Some(0),
            None,
        ),
        (None, Some(Exit::Code(0))) => return None,
        (None, Some(Exit::Code(n))) => {
            let message = format!("Exited with error status {n}");
            failed(Judge0Status::Nzec, &message, Some(i64::from(n)), None)
        }
        (None, Some(Exit::Signal(s))) => {
            let message = format!("Caught fatal signal {}", s.0);
            failed(
                Judge0Status::of_signal(s.0),
                &message,
                Some(0),
                Some(i64::from(s.0)),
            )
        }
        (None, None) => failed(
            Judge0Status::InternalError,
            "the sandbox ended without an exit status",
            None,
            None,
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::nonempty::NonEmpty;
    use crate::outcome::{Signal, StreamKind, Usage};

    fn submission(expected: Option<&str>) -> Submission {
        Submission {
            language_id: 71,
            source_code: b"x".to_vec(),
            stdin: None,
            expected_output: expected.map(|e| e.as_bytes().to_vec()),
            compiler_options: None,
            command_line_arguments: None,
            cpu_time_limit: 2.0,
            cpu_extra_time: 1.0,
            wall_time_limit: 5.0,
            memory_limit: 131_072,
            stack_limit: 64_000,
            max_processes_and_or_threads: 64,
            max_file_size: 64,
            number_of_runs: 1,
            redirect_stderr_to_stdout: false,
            callback_url: None,
            additional_files: None,
        }
    }

    fn stage(exit: Option<Exit>, limit: Option<LimitHit>, cpu_ms: u64) -> StageResult {
        StageResult {
            exit,
            limit,
            stdout: "4\n".into(),
            stderr: "warn\n".into(),
            output: "warn\n4\n".into(),
            duration: Duration::from_millis(1500),
            usage: Usage {
                cpu_time: Some(Duration::from_millis(cpu_ms)),
                memory_peak: Some(10_000_000),
            },
            files: None,
        }
    }

    fn ran(run: StageResult) -> Outcome {
        Outcome::Ran {
            compile: None,
            runs: NonEmpty::one(run),
        }
    }

    #[test]
    fn an_exit_0_without_a_cpu_time_is_never_accepted() {
        let mut run = stage(Some(Exit::Code(0)), None, 100);
        run.usage.cpu_time = None;
        let judged = judge(&submission(Some("4\n")), &ran(run));
        assert_eq!(judged.status_id, Judge0Status::InternalError);
        assert_eq!(
            judged.message.as_deref(),
            Some("no CPU time was measured, so the time limit cannot be judged")
        );
    }

    #[test]
    fn every_ending_has_judge0s_status_message_and_codes() {
        let s = submission(Some("4  \n\n"));
        // (exit, limit, CPU ms, status id, message, exit code, exit signal)
        #[rustfmt::skip]
        let cases = [
            (Some(Exit::Code(0)), None, 100, 3, None, Some(0), None),
            (Some(Exit::Code(0)), None, 2500, 5, Some("Time limit exceeded"), Some(0), None),
            (None, Some(LimitHit::CpuTime), 3000, 5, Some("Time limit exceeded"), Some(0), None),
            (None, Some(LimitHit::WallTime), 10, 5, Some("Time limit exceeded (wall clock)"), Some(0), None),
            (Some(Exit::Signal(Signal(9))), Some(LimitHit::Memory), 10, 11, Some("Memory limit exceeded"), Some(137), Some(9)),
            (None, Some(LimitHit::Output(StreamKind::Stdout)), 10, 8, Some("Output limit exceeded"), Some(0), Some(25)),
            (Some(Exit::Code(3)), None, 10, 11, Some("Exited with error status 3"), Some(3), None),
            (Some(Exit::Signal(Signal(11))), None, 10, 7, Some("Caught fatal signal 11"), Some(0), Some(11)),
            (Some(Exit::Signal(Signal(25))), None, 10, 8, Some("Caught fatal signal 25"), Some(0), Some(25)),
            (Some(Exit::Signal(Signal(8))), None, 10, 9, Some("Caught fatal signal 8"), Some(0), Some(8)),
            (Some(Exit::Signal(Signal(6))), None, 10, 10, Some("Caught fatal signal 6"), Some(0), Some(6)),
            (Some(Exit::Signal(Signal(15))), None, 10, 12, Some("Caught fatal signal 15"), Some(0), Some(15)),
            (None, None, 10, 13, Some("the sandbox ended without an exit status"), None, None),
        ];
        for (exit, limit, cpu, status, message, code, signal) in cases {
            let judged = judge(&s, &ran(stage(exit, limit, cpu)));
            assert_eq!(
                (
                    judged.status_id.id(),
                    judged.message.as_deref(),
                    judged.exit_code,
                    judged.exit_signal
                ),
                (status, message, code, signal),
                "{exit:?} {limit:?}"
            );
            assert_eq!(judged.stdout.as_deref(), Some("4\n"));
            assert_eq!(judged.memory, Some(9766));
            assert_eq!(judged.wall_time, Some(1.5));
        }
        let wrong = judge(
            &submission(Some("5")),
            &ran(stage(Some(Exit::Code(0)), None, 10)),
        );
        assert_eq!(wrong.status_id, Judge0Status::WrongAnswer);
        let none_expected = judge(
            &submission(None),
            &ran(stage(Some(Exit::Code(0)), None, 10)),
        );
        assert_eq!(none_expected.status_id, Judge0Status::Accepted);
        assert_eq!(none_expected.time, Some(0.01));
    }

    #[test]
    fn a_failed_compile_has_its_output_and_nothing_else() {
        let mut compile = stage(Some(Exit::Code(1)), None, 10);
        compile.output = "main.c:1: error\n".into();
        let judged = judge(
            &submission(None),
            &Outcome::CompileFailed {
                compile: compile.clone(),
            },
        );
        assert_eq!(
            judged,
            Judged {
                status_id: Judge0Status::CompilationError,
                compile_output: Some("main.c:1: error\n".into()),
                ..Judged::default()
            }
        );
        compile.limit = Some(LimitHit::WallTime);
        let judged = judge(&submission(None), &Outcome::CompileFailed { compile });
        assert_eq!(
            judged.compile_output.as_deref(),
            Some("Compilation time limit exceeded.")
        );
    }

    #[test]
    fn the_streams_are_as_the_sandbox_kept_them_and_empty_output_is_null() {
        // Merged in the sandbox (the program's fd 2 was its stdout pipe):
        // stdout holds both, in the order written, and is what is judged.
        let mut s = submission(Some("warn\n4"));
        s.redirect_stderr_to_stdout = true;
        let mut merged = stage(Some(Exit::Code(0)), None, 10);
        (merged.stdout, merged.stderr) = ("warn\n4\n".into(), String::new());
        let judged = judge(&s, &ran(merged));
        assert_eq!(
            (judged.stdout.as_deref(), judged.stderr, judged.status_id),
            (Some("warn\n4\n"), None, Judge0Status::Accepted)
        );
        // Never merged again here, in the order the two pipes were read.
        let judged = judge(&s, &ran(stage(Some(Exit::Code(0)), None, 10)));
        assert_eq!(
            (judged.stdout.as_deref(), judged.stderr.as_deref()),
            (Some("4\n"), Some("warn\n"))
        );
        let mut quiet = stage(Some(Exit::Code(0)), None, 10);
        quiet.stdout.clear();
        quiet.stderr.clear();
        let judged = judge(&submission(None), &ran(quiet));
        assert_eq!((judged.stdout, judged.stderr), (None, None));
    }

    #[test]
    fn several_runs_stop_at_the_first_failure_and_average_time_and_memory() {
        let s = submission(Some("4"));
        let mut slow = stage(Some(Exit::Code(0)), None, 300);
        slow.usage.memory_peak = Some(2048 * 1024);
        let tests = vec![
            stage(Some(Exit::Code(0)), None, 100),
            slow,
            stage(Some(Exit::Code(1)), None, 500),
            stage(Some(Exit::Code(0)), None, 100),
        ];
        let judged = judge(
            &s,
            &Outcome::Ran {
                compile: None,
                runs: NonEmpty::from_vec(tests).unwrap(),
            },
        );
        assert_eq!(judged.status_id, Judge0Status::Nzec);
        assert_eq!(judged.time, Some(0.3));
        assert_eq!(judged.memory, Some((9766 * 2 + 2048) / 3));
    }
}
