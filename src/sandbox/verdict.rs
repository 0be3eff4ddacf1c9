//! How a stage ended, decided: the one pure function, [`verdict`], from
//! what was observed of a stage's end (the supervisor's trailer, the
//! engine's account, the caps, the deadline and the service's own watch
//! of the CPU time) to its exit and the limit it hit, or to no verdict at
//! all when the supervisor's report that one would stand on is missing.

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
    /// The supervisor stopped it at the wall-time limit.
    pub(crate) wall_limit: bool,
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
    /// Whether the service stopped the stage itself, its CPU time (read
    /// from outside the sandbox) past the limit.
    pub(crate) cpu_stopped: bool,
    /// The stage's CPU-time limit.
    pub(crate) cpu_limit: Option<Duration>,
    /// Whether the supervisor's start line carried the sandbox's CPU time
    /// (its cgroup is readable there, so its trailer must carry it too).
    pub(crate) cpu_at_start: bool,
}

/// Why a program's end has no verdict: the supervisor's report is
/// missing (the sandbox ended without it, and no limit of the service's
/// explains why) or incomplete (without the CPU time that its start line
/// showed was readable). The program cannot cause either (its supervisor
/// is out of its reach), so neither is ever taken for a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreported {
    Missing,
    Incomplete,
}

impl std::fmt::Display for Unreported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unreported::Missing => "missing",
            Unreported::Incomplete => "incomplete (no CPU time)",
        })
    }
}

/// How the stage ended: its exit (the trailer's, else the engine's) and the
/// limit it hit. An output cap comes first (the stage was stopped for it,
/// whatever followed), then memory (the trailer's count of the sandbox's own
/// kills when it has one, else the engine's flag), then the CPU-time limit
/// (the supervisor stopped it, the service did, or the trailer's CPU time
/// is past the limit), then the deadline. It fails closed: a stage that
/// ended without the supervisor's report, where no limit explains it, or
/// whose report lacks a CPU time that was readable, has no verdict.
pub(crate) fn verdict(o: &Observed) -> Result<(Option<Exit>, Option<LimitHit>), Unreported> {
    let stopped_by_service = o.capped.is_some() || o.deadline_passed || o.cpu_stopped;
    match o.reported {
        None if !stopped_by_service && !o.engine_oom => return Err(Unreported::Missing),
        Some(r) if o.cpu_at_start && r.cpu_time.is_none() => return Err(Unreported::Incomplete),
        _ => {}
    }
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
    } else if o.cpu_stopped || o.reported.is_some_and(|r| over_cpu(&r, o.cpu_limit)) {
        Some(LimitHit::CpuTime)
    } else if o.deadline_passed || o.reported.is_some_and(|r| r.wall_limit) {
        Some(LimitHit::WallTime)
    } else {
        None
    };
    Ok((exit, limit))
}

/// Whether the supervisor stopped the stage at the CPU-time limit, or its
/// reported CPU time is past it (the program ended between two looks).
fn over_cpu(r: &Reported, limit: Option<Duration>) -> bool {
    r.cpu_limit
        || r.cpu_time
            .zip(limit)
            .is_some_and(|(used, limit)| used > limit)
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
            wall_limit: false,
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
            files: None,
        }
    }

    /// Each row: (observed, exit, limit, status) — the verdict of what was
    /// observed, and the status and truncation the stage reports from it.
    fn check(rows: Vec<(Observed, Option<Exit>, Option<LimitHit>, Status)>) {
        for (i, (observed, exit, limit, status)) in rows.into_iter().enumerate() {
            assert_eq!(
                verdict(&observed),
                Ok((exit, limit)),
                "row {i}: {observed:?}"
            );
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
    fn without_a_trailer_only_a_limit_of_the_services_or_memory_decides() {
        use LimitHit::*;
        let kill = Exit::Signal(Signal::KILL);
        check(vec![
            // No trailer, out of memory: the engine's exit and flag.
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
            // Stopped by the service at the CPU-time limit.
            (
                Observed {
                    engine_exit: Some(137),
                    cpu_stopped: true,
                    ..Default::default()
                },
                Some(kill),
                Some(CpuTime),
                Status::Timeout,
            ),
        ]);
    }

    #[test]
    fn a_missing_or_incomplete_report_fails_closed() {
        let missing = [
            Observed {
                engine_exit: Some(0),
                ..Default::default()
            },
            Observed {
                engine_exit: Some(137),
                ..Default::default()
            },
            Observed::default(),
        ];
        for observed in missing {
            assert_eq!(verdict(&observed), Err(Unreported::Missing), "{observed:?}");
        }
        // The start line showed the CPU time was readable; the trailer has
        // none (its supervisor was blinded): no verdict, not `ok`.
        let blinded = Observed {
            reported: reported(Exit::Code(0), None),
            cpu_at_start: true,
            cpu_limit: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        assert_eq!(verdict(&blinded), Err(Unreported::Incomplete));
        // Where the cgroup is never readable (gVisor), no figure is expected.
        let gvisor = Observed {
            cpu_at_start: false,
            ..blinded
        };
        assert_eq!(verdict(&gvisor), Ok((Some(Exit::Code(0)), None)));
    }

    #[test]
    fn a_reported_cpu_time_past_the_limit_is_a_timeout_even_unstopped() {
        let within = |ms| Observed {
            reported: Some(Reported {
                cpu_time: Some(Duration::from_millis(ms)),
                ..reported(Exit::Code(0), Some(0)).unwrap()
            }),
            cpu_at_start: true,
            cpu_limit: Some(Duration::from_millis(1000)),
            ..Default::default()
        };
        assert_eq!(verdict(&within(1000)), Ok((Some(Exit::Code(0)), None)));
        assert_eq!(
            verdict(&within(1009)),
            Ok((Some(Exit::Code(0)), Some(LimitHit::CpuTime)))
        );
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
