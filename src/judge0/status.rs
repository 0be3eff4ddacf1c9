//! Judge0 1.13.1's statuses (`app/enumerations/status.rb`): the one list
//! of their ids and descriptions. A status is stored and written as its
//! id.

use serde::{Deserialize, Serialize};

/// A submission's status, as Judge0 numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub(crate) enum Judge0Status {
    InQueue,
    Processing,
    Accepted,
    WrongAnswer,
    TimeLimitExceeded,
    CompilationError,
    /// Signal 11.
    SigSegv,
    /// Signal 25, or the output limit.
    SigXfsz,
    /// Signal 8.
    SigFpe,
    /// Signal 6.
    SigAbrt,
    /// A non-zero exit, or the memory limit.
    Nzec,
    /// Another signal.
    OtherRuntimeError,
    /// The service's trouble; also a result's default (one not judged).
    #[default]
    InternalError,
    ExecFormatError,
}

impl Judge0Status {
    /// Every status, in the order of their ids.
    pub(crate) const ALL: [Judge0Status; 14] = [
        Judge0Status::InQueue,
        Judge0Status::Processing,
        Judge0Status::Accepted,
        Judge0Status::WrongAnswer,
        Judge0Status::TimeLimitExceeded,
        Judge0Status::CompilationError,
        Judge0Status::SigSegv,
        Judge0Status::SigXfsz,
        Judge0Status::SigFpe,
        Judge0Status::SigAbrt,
        Judge0Status::Nzec,
        Judge0Status::OtherRuntimeError,
        Judge0Status::InternalError,
        Judge0Status::ExecFormatError,
    ];

    /// Judge0's id.
    pub(crate) fn id(self) -> i64 {
        match self {
            Judge0Status::InQueue => 1,
            Judge0Status::Processing => 2,
            Judge0Status::Accepted => 3,
            Judge0Status::WrongAnswer => 4,
            Judge0Status::TimeLimitExceeded => 5,
            Judge0Status::CompilationError => 6,
            Judge0Status::SigSegv => 7,
            Judge0Status::SigXfsz => 8,
            Judge0Status::SigFpe => 9,
            Judge0Status::SigAbrt => 10,
            Judge0Status::Nzec => 11,
            Judge0Status::OtherRuntimeError => 12,
            Judge0Status::InternalError => 13,
            Judge0Status::ExecFormatError => 14,
        }
    }

    /// Judge0's description.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Judge0Status::InQueue => "In Queue",
            Judge0Status::Processing => "Processing",
            Judge0Status::Accepted => "Accepted",
            Judge0Status::WrongAnswer => "Wrong Answer",
            Judge0Status::TimeLimitExceeded => "Time Limit Exceeded",
            Judge0Status::CompilationError => "Compilation Error",
            Judge0Status::SigSegv => "Runtime Error (SIGSEGV)",
            Judge0Status::SigXfsz => "Runtime Error (SIGXFSZ)",
            Judge0Status::SigFpe => "Runtime Error (SIGFPE)",
            Judge0Status::SigAbrt => "Runtime Error (SIGABRT)",
            Judge0Status::Nzec => "Runtime Error (NZEC)",
            Judge0Status::OtherRuntimeError => "Runtime Error (Other)",
            Judge0Status::InternalError => "Internal Error",
            Judge0Status::ExecFormatError => "Exec Format Error",
        }
    }

    /// The status of `id`, if Judge0 has one.
    pub(crate) fn from_id(id: i64) -> Option<Judge0Status> {
        Judge0Status::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The runtime error of a program killed by `signal`.
    pub(crate) fn of_signal(signal: i32) -> Judge0Status {
        match signal {
            11 => Judge0Status::SigSegv,
            25 => Judge0Status::SigXfsz,
            8 => Judge0Status::SigFpe,
            6 => Judge0Status::SigAbrt,
            _ => Judge0Status::OtherRuntimeError,
        }
    }

    /// Whether a submission with this status has finished (is neither
    /// queued nor being run).
    pub(crate) fn finished(self) -> bool {
        !matches!(self, Judge0Status::InQueue | Judge0Status::Processing)
    }
}

impl From<Judge0Status> for i64 {
    fn from(status: Judge0Status) -> i64 {
        status.id()
    }
}

impl TryFrom<i64> for Judge0Status {
    type Error = String;

    fn try_from(id: i64) -> Result<Judge0Status, String> {
        Judge0Status::from_id(id).ok_or_else(|| format!("{id} is not a Judge0 status"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fourteen_statuses_have_judge0s_ids_in_order_and_are_stored_as_them() {
        let ids: Vec<i64> = Judge0Status::ALL.iter().map(|s| s.id()).collect();
        assert_eq!(ids, (1..=14).collect::<Vec<_>>());
        assert_eq!(Judge0Status::Nzec.description(), "Runtime Error (NZEC)");
        assert_eq!(serde_json::to_string(&Judge0Status::Accepted).unwrap(), "3");
        assert_eq!(
            serde_json::from_str::<Judge0Status>("13").unwrap(),
            Judge0Status::InternalError
        );
        assert!(serde_json::from_str::<Judge0Status>("15").is_err());
        assert!(!Judge0Status::Processing.finished() && Judge0Status::Accepted.finished());
    }
}
