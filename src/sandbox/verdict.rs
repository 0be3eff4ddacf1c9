//! How a stage ended, decided: the one pure function, [`verdict`], from
//! what was observed of a stage's end (the supervisor's trailer, the
//! engine's account, the caps and the deadline) to its exit and the limit
//! it hit.

use std::time::Duration;

use crate::outcome::{Exit, LimitHit, StreamKind};

/// What the supervisor's trailer reported: the program's real wait
/// status, the kernel's out-of-memory kills in the sandbox while it ran,
/// its CPU time and peak memory, and whether the CPU-time limit stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported {
    pub(crate) exit: Exit,
    /// `None` where the sandbox's memory cgroup could not be read.
    pub(crate) oom_kills: Option<u64>,
    pub(crate) cpu_time: Option<Duration>,
    pub(crate) memory_peak: Option<u64>,
    /// The supervisor stopped it at the CPU-time limit.
    pub(crate) cpu_limit: bool,
}

/// What was observed of a stage's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Observed {
    /// The trailer, when the bootstrap wrote it.
    pub(crate) reported: Option<Reported>,
    /// The container's exit status, from the engine, when it was asked.
    pub(crate) engine_exit: Option<i64>,
    /// Whether the engine saw an out-of-memory kill.
    pub(crate) engine_oom: bool,
    /// The first stream that went over its cap, if one did.
    pub(crate) capped: Option<StreamKind>,
    /// Whether the deadline passed before the stage ended.
    pub(crate) deadline_passed: bool,
}

/// How the stage ended: its exit (the trailer's, else the engine's) and the
/// limit it hit. An output cap comes first (the stage was stopped for it,
/// whatever followed), then memory (the trailer's count of the sandbox's own
/// kills when it has one, else the engine's flag), then the CPU-time limit
/// (the supervisor's word), then the deadline.
pub(crate) fn verdict(o: &Observed) -> (Option<Exit>, Option<LimitHit>) {
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
    use crate::outcome::{Signal, StageResult, Status, Usage};

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
}
