//! How a stage ended: the result types, and the one pure function,
//! [`verdict`], that decides them from what was observed.
//!
//! A stage's result holds two facts and nothing derived from them: how its
//! process ended ([`Exit`], when known) and which limit stopped it
//! ([`LimitHit`], if one did). Its [`Status`], its signal and whether its
//! output was cut are methods.

use std::fmt;
use std::time::Duration;

use crate::engine::StreamKind;

/// A signal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub i32);

/// Linux's signal names, from 1.
const SIGNALS: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

impl Signal {
    pub const KILL: Signal = Signal(9);

    /// Its name (`SIGKILL`), if it is one of Linux's standard signals.
    pub fn name(self) -> Option<&'static str> {
        usize::try_from(self.0 - 1)
            .ok()
            .and_then(|i| SIGNALS.get(i).copied())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(Signal),
}

impl Exit {
    /// From an exit status as a shell or an init process reports it, where
    /// 128+N stands for death by signal N.
    pub fn from_shell_status(status: i64) -> Exit {
        match status {
            129..=159 => Exit::Signal(Signal((status - 128) as i32)),
            other => Exit::Code(i32::try_from(other).unwrap_or(i32::MAX)),
        }
    }

    /// The exit status as the API reports it: the code, or 128+N for
    /// signal N.
    pub fn status(self) -> i64 {
        match self {
            Exit::Code(code) => i64::from(code),
            Exit::Signal(Signal(n)) => 128 + i64::from(n),
        }
    }

    /// The signal that killed it, if one did.
    pub fn signal(self) -> Option<Signal> {
        match self {
            Exit::Signal(signal) => Some(signal),
            Exit::Code(_) => None,
        }
    }
}

/// The limit a stage was stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// Still running at the wall-clock deadline.
    WallTime,
    /// Its processes together used more CPU time than allowed.
    CpuTime,
    /// The kernel killed a process of it for memory.
    Memory,
    /// It wrote more than the cap to this stream.
    Output(StreamKind),
}

/// How a stage ended, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exited with code 0.
    Ok,
    /// Exited with another code, or was killed by a signal not of a limit.
    RuntimeError,
    /// Stopped at the wall-clock deadline or the CPU-time limit.
    Timeout,
    /// Killed by the kernel for going over the memory limit.
    MemoryLimit,
    /// Stopped for writing more than the cap to stdout or stderr.
    OutputLimit,
}

/// What one stage (compile or run) did.
#[derive(Debug, Clone, PartialEq)]
pub struct StageResult {
    /// How its process ended, when known.
    pub exit: Option<Exit>,
    /// The limit it was stopped at, if one.
    pub limit: Option<LimitHit>,
    pub stdout: String,
    pub stderr: String,
    /// What the two streams kept, interleaved in the order it came (as the
    /// engine received it).
    pub output: String,
    /// From the moment the stage was fed to the end of its program.
    pub duration: Duration,
    /// Figures read from the sandbox's cgroup.
    pub usage: Usage,
}

/// What a stage used, from the sandbox's own cgroup: `None` where the
/// kernel (or the runtime) does not give a figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// User and system CPU time of all the stage's processes.
    pub cpu_time: Option<Duration>,
    /// Peak memory of the sandbox's memory cgroup (what the limit counts,
    /// page cache of its own scratch space included), in bytes. A pooled
    /// sandbox's includes its warm-up.
    pub memory_peak: Option<u64>,
}

impl StageResult {
    pub fn status(&self) -> Status {
        match (self.limit, self.exit) {
            (Some(LimitHit::Output(_)), _) => Status::OutputLimit,
            (Some(LimitHit::Memory), _) => Status::MemoryLimit,
            (Some(LimitHit::WallTime | LimitHit::CpuTime), _) => Status::Timeout,
            (None, Some(Exit::Code(0))) => Status::Ok,
            (None, _) => Status::RuntimeError,
        }
    }

    /// Whether a stream was cut at its cap.
    pub fn truncated(&self) -> bool {
        matches!(self.limit, Some(LimitHit::Output(_)))
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The program ran (after its compile stage, for compiled languages).
    Ran {
        compile: Option<StageResult>,
        run: StageResult,
    },
    /// The compile stage did not end with status `ok`, so nothing ran.
    CompileFailed { compile: StageResult },
}

impl Outcome {
    /// The compile stage, if there was one.
    pub fn compile(&self) -> Option<&StageResult> {
        match self {
            Outcome::Ran { compile, .. } => compile.as_ref(),
            Outcome::CompileFailed { compile } => Some(compile),
        }
    }

    /// The run, if the program ran.
    pub fn run(&self) -> Option<&StageResult> {
        match self {
            Outcome::Ran { run, .. } => Some(run),
            Outcome::CompileFailed { .. } => None,
        }
    }
}

/// What the supervisor's trailer reported: the program's real wait
/// status, the kernel's out-of-memory kills in the sandbox while it ran,
/// its CPU time and peak memory, and whether the CPU-time limit stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    pub exit: Exit,
    /// `None` where the sandbox's memory cgroup could not be read.
    pub oom_kills: Option<u64>,
    pub cpu_time: Option<Duration>,
    pub memory_peak: Option<u64>,
    /// The supervisor stopped it at the CPU-time limit.
    pub cpu_limit: bool,
}

/// What was observed of a stage's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    /// The trailer, when the bootstrap wrote it.
    pub reported: Option<Reported>,
    /// The container's exit status, from the engine, when it was asked.
    pub engine_exit: Option<i64>,
    /// Whether the engine saw an out-of-memory kill.
    pub engine_oom: bool,
    /// The first stream that went over its cap, if one did.
    pub capped: Option<StreamKind>,
    /// Whether the deadline passed before the stage ended.
    pub deadline_passed: bool,
}

/// How the stage ended: its exit (the trailer's, else the engine's) and the
/// limit it hit. An output cap comes first (the stage was stopped for it,
/// whatever followed), then memory (the trailer's count of the sandbox's own
/// kills when it has one, else the engine's flag), then the CPU-time limit
/// (the supervisor's word), then the deadline.
pub fn verdict(o: &Observed) -> (Option<Exit>, Option<LimitHit>) {
    let exit = match o.reported {
        Some(reported) => Some(reported.exit),
        None => o.engine_exit.map(Exit::from_shell_status),
    };
    let oom = match o.reported.and_then(|r| r.oom_kills) {
        Some(kills) => kills > 0,
        None => o.engine_oom,
    };
    let limit = if let Some(stream) = o.capped {
        Some(LimitHit::Output(stream))
    } else if oom {
        Some(LimitHit::Memory)
    } else if o.reported.is_some_and(|r| r.cpu_limit) {
        Some(LimitHit::CpuTime)
    } else if o.deadline_passed {
        Some(LimitHit::WallTime)
    } else {
        None
    };
    (exit, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(exit: Exit, oom_kills: Option<u64>) -> Option<Reported> {
        Some(Reported {
            exit,
            oom_kills,
            cpu_time: None,
            memory_peak: None,
            cpu_limit: false,
        })
    }

    fn stopped_for_cpu(oom_kills: Option<u64>) -> Option<Reported> {
        Some(Reported {
            cpu_limit: true,
            ..reported(Exit::Signal(Signal::KILL), oom_kills).unwrap()
        })
    }

    fn stage(exit: Option<Exit>, limit: Option<LimitHit>) -> StageResult {
        StageResult {
            exit,
            limit,
            stdout: String::new(),
            stderr: String::new(),
            output: String::new(),
            duration: Duration::ZERO,
            usage: Usage::default(),
        }
    }

    /// Each row: (observed, exit, limit, status) — the verdict of what was
    /// observed, and the status and truncation the stage reports from it.
    fn check(rows: Vec<(Observed, Option<Exit>, Option<LimitHit>, Status)>) {
        for (i, (observed, exit, limit, status)) in rows.into_iter().enumerate() {
            assert_eq!(verdict(&observed), (exit, limit), "row {i}: {observed:?}");
            let result = stage(exit, limit);
            assert_eq!(result.status(), status, "row {i}");
            assert_eq!(
                result.truncated(),
                matches!(limit, Some(LimitHit::Output(_))),
                "row {i}"
            );
        }
    }

    #[test]
    fn the_trailer_reports_how_a_program_ended() {
        let kill = Exit::Signal(Signal::KILL);
        check(vec![
            // Ended on its own, reported by the trailer.
            (
                Observed {
                    reported: reported(Exit::Code(0), Some(0)),
                    ..Default::default()
                },
                Some(Exit::Code(0)),
                None,
                Status::Ok,
            ),
            (
                Observed {
                    reported: reported(Exit::Code(3), Some(0)),
                    ..Default::default()
                },
                Some(Exit::Code(3)),
                None,
                Status::RuntimeError,
            ),
            (
                Observed {
                    reported: reported(kill, Some(0)),
                    ..Default::default()
                },
                Some(kill),
                None,
                Status::RuntimeError,
            ),
        ]);
    }

    #[test]
    fn the_trailers_count_of_out_of_memory_kills_decides() {
        use LimitHit::*;
        let kill = Exit::Signal(Signal::KILL);
        check(vec![
            // The trailer's own count of out-of-memory kills decides, even
            // when the engine says otherwise.
            (
                Observed {
                    reported: reported(kill, Some(1)),
                    ..Default::default()
                },
                Some(kill),
                Some(Memory),
                Status::MemoryLimit,
            ),
            (
                Observed {
                    reported: reported(Exit::Code(0), Some(2)),
                    ..Default::default()
                },
                Some(Exit::Code(0)),
                Some(Memory),
                Status::MemoryLimit,
            ),
            (
                Observed {
                    reported: reported(kill, Some(0)),
                    engine_oom: true,
                    ..Default::default()
                },
                Some(kill),
                None,
                Status::RuntimeError,
            ),
        ]);
    }

    #[test]
    fn without_a_count_the_engines_out_of_memory_flag_decides() {
        use LimitHit::*;
        let kill = Exit::Signal(Signal::KILL);
        check(vec![
            // No count in the trailer: the engine's flag decides.
            (
                Observed {
                    reported: reported(kill, None),
                    engine_oom: true,
                    ..Default::default()
                },
                Some(kill),
                Some(Memory),
                Status::MemoryLimit,
            ),
            (
                Observed {
                    reported: reported(kill, None),
                    ..Default::default()
                },
                Some(kill),
                None,
                Status::RuntimeError,
            ),
        ]);
    }

    #[test]
    fn without_a_trailer_the_engines_exit_decides() {
        use LimitHit::*;
        let kill = Exit::Signal(Signal::KILL);
        check(vec![
            // No trailer (the bootstrap was killed): the engine's exit.
            (
                Observed {
                    engine_exit: Some(137),
                    ..Default::default()
                },
                Some(kill),
                None,
                Status::RuntimeError,
            ),
            (
                Observed {
                    engine_exit: Some(137),
                    engine_oom: true,
                    ..Default::default()
                },
                Some(kill),
                Some(Memory),
                Status::MemoryLimit,
            ),
            (
                Observed {
                    engine_exit: Some(1),
                    ..Default::default()
                },
                Some(Exit::Code(1)),
                None,
                Status::RuntimeError,
            ),
            (Observed::default(), None, None, Status::RuntimeError),
        ]);
    }

    #[test]
    fn a_stop_at_the_cpu_time_limit_is_a_timeout_unless_memory_ran_out() {
        use LimitHit::*;
        let kill = Exit::Signal(Signal::KILL);
        check(vec![
            // Stopped by the supervisor at the CPU-time limit; memory wins.
            (
                Observed {
                    reported: stopped_for_cpu(Some(0)),
                    ..Default::default()
                },
                Some(kill),
                Some(CpuTime),
                Status::Timeout,
            ),
            (
                Observed {
                    reported: stopped_for_cpu(Some(1)),
                    ..Default::default()
                },
                Some(kill),
                Some(Memory),
                Status::MemoryLimit,
            ),
            (
                Observed {
                    reported: stopped_for_cpu(Some(0)),
                    deadline_passed: true,
                    ..Default::default()
                },
                Some(kill),
                Some(CpuTime),
                Status::Timeout,
            ),
        ]);
    }

    #[test]
    fn a_stop_at_the_deadline_is_a_timeout() {
        use LimitHit::*;
        let kill = Exit::Signal(Signal::KILL);
        check(vec![
            // Stopped at the deadline.
            (
                Observed {
                    engine_exit: Some(137),
                    deadline_passed: true,
                    ..Default::default()
                },
                Some(kill),
                Some(WallTime),
                Status::Timeout,
            ),
            (
                Observed {
                    deadline_passed: true,
                    ..Default::default()
                },
                None,
                Some(WallTime),
                Status::Timeout,
            ),
        ]);
    }

    #[test]
    fn out_of_memory_at_the_deadline_is_a_memory_limit() {
        use LimitHit::*;
        let kill = Exit::Signal(Signal::KILL);
        check(vec![
            // Out of memory at the deadline: memory wins.
            (
                Observed {
                    engine_exit: Some(137),
                    engine_oom: true,
                    deadline_passed: true,
                    ..Default::default()
                },
                Some(kill),
                Some(Memory),
                Status::MemoryLimit,
            ),
        ]);
    }

    #[test]
    fn an_output_cap_wins_over_everything() {
        use LimitHit::*;
        use StreamKind::*;
        let kill = Exit::Signal(Signal::KILL);
        check(vec![
            // Over an output cap: the cap wins over everything.
            (
                Observed {
                    engine_exit: Some(137),
                    capped: Some(Stdout),
                    ..Default::default()
                },
                Some(kill),
                Some(Output(Stdout)),
                Status::OutputLimit,
            ),
            (
                Observed {
                    engine_exit: Some(137),
                    capped: Some(Stderr),
                    engine_oom: true,
                    deadline_passed: true,
                    ..Default::default()
                },
                Some(kill),
                Some(Output(Stderr)),
                Status::OutputLimit,
            ),
            (
                Observed {
                    reported: reported(Exit::Code(0), Some(0)),
                    capped: Some(Stdout),
                    ..Default::default()
                },
                Some(Exit::Code(0)),
                Some(Output(Stdout)),
                Status::OutputLimit,
            ),
        ]);
    }

    #[test]
    fn a_shell_status_above_128_is_read_as_a_signal() {
        assert_eq!(Exit::from_shell_status(137), Exit::Signal(Signal(9)));
        assert_eq!(
            Exit::from_shell_status(139).signal().unwrap().name(),
            Some("SIGSEGV")
        );
        assert_eq!(
            Exit::from_shell_status(153).signal().unwrap().name(),
            Some("SIGXFSZ")
        );
        for code in [0, 1, 128, 160, 255] {
            assert_eq!(Exit::from_shell_status(code), Exit::Code(code as i32));
        }
        assert_eq!(Exit::Signal(Signal(11)).status(), 139);
        assert_eq!(Exit::Code(3).status(), 3);
        assert_eq!(Signal(64).name(), None);
        assert_eq!(Signal(0).name(), None);
        assert_eq!(Signal(31).name(), Some("SIGSYS"));
    }

    #[test]
    fn an_outcome_has_a_run_exactly_when_the_program_ran() {
        let ok = stage(Some(Exit::Code(0)), None);
        let ran = Outcome::Ran {
            compile: None,
            run: ok.clone(),
        };
        assert!(ran.run().is_some() && ran.compile().is_none());
        let failed = Outcome::CompileFailed {
            compile: stage(Some(Exit::Code(1)), None),
        };
        assert!(failed.run().is_none() && failed.compile().is_some());
    }
}
