//! The domain's answer: what a run did. A `Job` goes in
//! ([`crate::job`]), an [`Outcome`] comes out: for each stage, how its
//! process ended ([`Exit`]) and which limit stopped it ([`LimitHit`]), with
//! its output and what it used; its [`Status`] is derived from those two
//! facts. Beside it, how the run was served ([`Timing`]), for response
//! headers and logs. Every dialect renders these in its own words.

use std::fmt;
use std::time::Duration;

use crate::nonempty::NonEmpty;

/// Which of a program's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Stdout,
    Stderr,
}
/// A signal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signal(pub(crate) i32);

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
    #[cfg(test)]
    pub(crate) const KILL: Signal = Signal(9);

    /// Its name (`SIGKILL`), if it is one of Linux's standard signals.
    pub(crate) fn name(self) -> Option<&'static str> {
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
pub(crate) enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(Signal),
}

impl Exit {
    /// From an exit status as a shell or an init process reports it, where
    /// 128+N stands for death by signal N.
    pub(crate) fn from_shell_status(status: i64) -> Exit {
        match status {
            129..=159 => Exit::Signal(Signal((status - 128) as i32)),
            other => Exit::Code(i32::try_from(other).unwrap_or(i32::MAX)),
        }
    }

    /// The exit status as the API reports it: the code, or 128+N for
    /// signal N.
    pub(crate) fn status(self) -> i64 {
        match self {
            Exit::Code(code) => i64::from(code),
            Exit::Signal(Signal(n)) => 128 + i64::from(n),
        }
    }

    /// The signal that killed it, if one did.
    pub(crate) fn signal(self) -> Option<Signal> {
        match self {
            Exit::Signal(signal) => Some(signal),
            Exit::Code(_) => None,
        }
    }
}

/// The limit a stage was stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
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
pub(crate) enum Status {
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

impl Status {
    /// Its name, as `/run-code` and the metrics write it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::RuntimeError => "runtime_error",
            Status::Timeout => "timeout",
            Status::MemoryLimit => "memory_limit",
            Status::OutputLimit => "output_limit",
        }
    }
}

/// What one stage (compile or run) did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StageResult {
    /// How its process ended, when known.
    pub(crate) exit: Option<Exit>,
    /// The limit it was stopped at, if one.
    pub(crate) limit: Option<LimitHit>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// What the two streams kept, interleaved in the order it came (as the
    /// engine received it).
    pub(crate) output: String,
    /// From the moment the stage was fed to the end of its program.
    pub(crate) duration: Duration,
    /// Figures read from the sandbox's cgroup.
    pub(crate) usage: Usage,
    /// The files the run asked back (`None` when it asked for none).
    pub(crate) files: Option<Box<FilesBack>>,
}

/// The files a run brought back from its working directory, and those
/// left out (over a cap, a link, not a regular file).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FilesBack {
    /// In the order of their paths.
    pub(crate) files: Vec<FileBack>,
    /// The first of those left out (at most 256 are listed).
    pub(crate) omitted: Vec<Omitted>,
    /// How many more were left out than are listed.
    pub(crate) more_omitted: u64,
}

/// A file brought back: its path under the working directory and its
/// bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileBack {
    pub(crate) name: String,
    pub(crate) content: Vec<u8>,
}

/// A file that matched but was not brought back, and why: `max_files`,
/// `max_bytes`, `symlink`, `not_a_file`, `unreadable`, `bad_name`,
/// `too_deep`, or `max_entries` (the walk's bound, on the folder where it
/// stopped).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Omitted {
    pub(crate) name: String,
    /// Its size in bytes (0 for what is not a regular file).
    pub(crate) size: u64,
    pub(crate) reason: String,
}

/// What a stage used, from the sandbox's own cgroup: `None` where the
/// kernel (or the runtime) does not give a figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// User and system CPU time of all the stage's processes.
    pub(crate) cpu_time: Option<Duration>,
    /// Peak memory of the sandbox's memory cgroup (what the limit counts,
    /// page cache of its own scratch space included), in bytes. A pooled
    /// sandbox's includes its warm-up.
    pub(crate) memory_peak: Option<u64>,
}

impl StageResult {
    pub(crate) fn status(&self) -> Status {
        match (self.limit, self.exit) {
            (Some(LimitHit::Output(_)), _) => Status::OutputLimit,
            (Some(LimitHit::Memory), _) => Status::MemoryLimit,
            (Some(LimitHit::WallTime | LimitHit::CpuTime), _) => Status::Timeout,
            (None, Some(Exit::Code(0))) => Status::Ok,
            (None, _) => Status::RuntimeError,
        }
    }

    /// Whether a stream was cut at its cap.
    pub(crate) fn truncated(&self) -> bool {
        matches!(self.limit, Some(LimitHit::Output(_)))
    }
}

/// What a run did: a job's program ran once per input (a single run is a
/// batch of one), or its compile stage failed and nothing ran.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The program ran, once per input, in the inputs' order (after its
    /// compile stage, for compiled languages).
    Ran {
        compile: Option<StageResult>,
        runs: NonEmpty<StageResult>,
    },
    /// The compile stage did not end with status `ok`, so nothing ran.
    CompileFailed { compile: StageResult },
}

impl Outcome {
    /// The compile stage, if there was one.
    #[cfg(test)]
    pub(crate) fn compile(&self) -> Option<&StageResult> {
        match self {
            Outcome::Ran { compile, .. } => compile.as_ref(),
            Outcome::CompileFailed { compile } => Some(compile),
        }
    }

    /// The runs, if the program ran.
    pub(crate) fn runs(&self) -> Option<&NonEmpty<StageResult>> {
        match self {
            Outcome::Ran { runs, .. } => Some(runs),
            Outcome::CompileFailed { .. } => None,
        }
    }

    /// The first (for a single run, the only) run, if the program ran.
    pub(crate) fn run(&self) -> Option<&StageResult> {
        self.runs().map(NonEmpty::first)
    }
}

/// Whether a run's sandbox came from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolUse {
    /// A sandbox (or a compile and run pair) that was waiting.
    Hit,
    /// Started for the run (none was waiting, or the language has no pool).
    Miss,
}

impl PoolUse {
    /// `hit` or `miss`, as headers and metrics write it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PoolUse::Hit => "hit",
            PoolUse::Miss => "miss",
        }
    }
}

/// One step of a run's time, for the `Server-Timing` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The Engine API's create.
    Create,
    /// Its attach.
    Attach,
    /// Its start.
    Start,
    /// From the feed to the end of the program.
    Run,
    /// After the program: stopping it if a limit did, reading its state.
    State,
    /// A compiled language's compile stage, from its feed to its end.
    Compile,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Attach => "attach",
            Phase::Start => "start",
            Phase::Run => "run",
            Phase::State => "state",
            Phase::Compile => "compile",
        }
    }
}

/// Where the time of a stage went.
pub(crate) type Phases = Vec<(Phase, Duration)>;

/// How a run was served, for response headers and logs: its compile stage
/// and its first run (a batch's other runs are in its results).
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) pool: PoolUse,
    /// Where the time went: the compile, as one phase, then the run's.
    pub(crate) phases: Phases,
    /// Everything from the claim (or the create) to the outcome: Engine API
    /// calls and waiting for the program.
    pub(crate) docker: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_outcome_has_runs_exactly_when_the_program_ran() {
        let stage = |code| StageResult {
            exit: Some(Exit::Code(code)),
            limit: None,
            stdout: String::new(),
            stderr: String::new(),
            output: String::new(),
            duration: Duration::ZERO,
            usage: Usage::default(),
            files: None,
        };
        let ran = Outcome::Ran {
            compile: None,
            runs: NonEmpty::from_vec(vec![stage(0), stage(1)]).unwrap(),
        };
        assert!(ran.compile().is_none());
        assert_eq!(ran.runs().map(NonEmpty::len), Some(2));
        assert_eq!(ran.run().and_then(|r| r.exit), Some(Exit::Code(0)));
        let failed = Outcome::CompileFailed { compile: stage(1) };
        assert!(failed.run().is_none() && failed.runs().is_none());
        assert!(failed.compile().is_some());
    }

    #[test]
    fn statuses_and_pool_use_have_their_wire_names() {
        let names: Vec<&str> = [
            Status::Ok,
            Status::RuntimeError,
            Status::Timeout,
            Status::MemoryLimit,
            Status::OutputLimit,
        ]
        .into_iter()
        .map(Status::as_str)
        .collect();
        assert_eq!(
            names,
            [
                "ok",
                "runtime_error",
                "timeout",
                "memory_limit",
                "output_limit"
            ]
        );
        assert_eq!(
            (PoolUse::Hit.as_str(), PoolUse::Miss.as_str()),
            ("hit", "miss")
        );
        assert_eq!(Phase::Compile.as_str(), "compile");
    }
}
