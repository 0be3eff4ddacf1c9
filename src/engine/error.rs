//! A failed Engine API call: which call ([`Step`]), about what (a
//! container, volume or image), and why ([`Cause`]): the engine could not
//! be reached at all, or it answered with an error.

use std::fmt;

/// One kind of Engine API call, as errors, logs and metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    Connect,
    Ping,
    ImageInspect,
    ImagePull,
    Create,
    Attach,
    Start,
    Wait,
    Inspect,
    Kill,
    Stats,
    Remove,
    Upload,
    VolumeCreate,
    VolumeRemove,
    List,
}

impl Step {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::Ping => "ping",
            Step::ImageInspect => "image inspect",
            Step::ImagePull => "image pull",
            Step::Create => "container create",
            Step::Attach => "container attach",
            Step::Start => "container start",
            Step::Wait => "container wait",
            Step::Inspect => "container inspect",
            Step::Kill => "container kill",
            Step::Stats => "container stats",
            Step::Remove => "container remove",
            Step::Upload => "archive upload",
            Step::VolumeCreate => "volume create",
            Step::VolumeRemove => "volume remove",
            Step::List => "list",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cause {
    /// The engine could not be reached (no socket, a refused or broken
    /// connection, no answer in time).
    Unreachable(String),
    /// It answered with an error (with its HTTP status, when it gave one),
    /// or its answer could not be read.
    Answered {
        status: Option<u16>,
        message: String,
    },
}

/// A failed Engine API call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct EngineError {
    pub(crate) step: Step,
    /// The container, volume or image the call was about.
    pub(crate) target: String,
    pub(crate) cause: Cause,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (step, target) = (self.step, &self.target);
        match &self.cause {
            Cause::Unreachable(reason) => {
                write!(f, "the Docker engine cannot be reached ({step}): {reason}")
            }
            Cause::Answered {
                status: Some(status),
                message,
            } => write!(
                f,
                "{step} {target}: the engine answered {status}: {message}"
            ),
            Cause::Answered {
                status: None,
                message,
            } => write!(f, "{step} {target}: {message}"),
        }
    }
}

impl EngineError {
    /// The engine could not be reached for `step`.
    pub(crate) fn unreachable(step: Step, reason: impl Into<String>) -> EngineError {
        EngineError {
            step,
            target: String::new(),
            cause: Cause::Unreachable(reason.into()),
        }
    }

    /// The engine answered `step` about `target` with an error.
    pub(crate) fn answered(
        step: Step,
        target: impl Into<String>,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> EngineError {
        EngineError {
            step,
            target: target.into(),
            cause: Cause::Answered {
                status,
                message: message.into(),
            },
        }
    }

    /// Classifies a bollard error of `step` about `target`: only a failed
    /// transport is unreachable.
    pub(super) fn from_bollard(step: Step, target: &str, e: bollard::errors::Error) -> EngineError {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::answered(step, target, Some(status_code), message),
            e @ (B::RequestTimeoutError
            | B::IOError { .. }
            | B::HyperResponseError { .. }
            | B::HyperLegacyError { .. }
            | B::HttpClientError { .. }
            | B::SocketNotFoundError(_)) => EngineError::unreachable(step, e.to_string()),
            e => EngineError::answered(step, target, None, e.to_string()),
        }
    }

    /// The HTTP status the engine answered, if it answered one.
    pub(crate) fn status(&self) -> Option<u16> {
        match &self.cause {
            Cause::Answered { status, .. } => *status,
            Cause::Unreachable(_) => None,
        }
    }

    /// What the engine said, or why it could not be reached.
    pub(crate) fn message(&self) -> &str {
        match &self.cause {
            Cause::Answered { message, .. } | Cause::Unreachable(message) => message,
        }
    }

    /// Whether the engine answered 404 (no such container, volume or image).
    pub(crate) fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the engine answered 409 (a state that conflicts: a volume in
    /// use, a removal already under way).
    pub(crate) fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// Whether the engine could not be reached at all.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(self.cause, Cause::Unreachable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transport_failures_count_as_unreachable() {
        use bollard::errors::Error as B;
        let e = EngineError::from_bollard(Step::Create, "img", B::RequestTimeoutError);
        assert!(e.is_unreachable());
        assert!(e.to_string().contains("container create"), "{e}");
        let e = EngineError::from_bollard(
            Step::Create,
            "python:3.13-slim",
            B::DockerResponseServerError {
                status_code: 404,
                message: "No such image".into(),
            },
        );
        assert!(!e.is_unreachable() && e.is_not_found());
        assert_eq!(
            e.to_string(),
            "container create python:3.13-slim: the engine answered 404: No such image"
        );
        let e = EngineError::from_bollard(
            Step::Inspect,
            "abc",
            B::JsonDataError {
                message: "bad".into(),
                column: 1,
            },
        );
        assert_eq!((e.step, e.status()), (Step::Inspect, None));
        assert!(e.to_string().starts_with("container inspect abc: "), "{e}");
    }

    #[test]
    fn a_conflict_and_a_missing_thing_are_told_apart_by_the_answer() {
        let conflict = EngineError::answered(Step::VolumeRemove, "v", Some(409), "in use");
        assert!(conflict.is_conflict() && !conflict.is_not_found());
        assert_eq!(conflict.message(), "in use");
        let gone = EngineError::unreachable(Step::Remove, "connection refused");
        assert!(gone.is_unreachable() && gone.status().is_none());
        assert_eq!(
            gone.to_string(),
            "the Docker engine cannot be reached (container remove): connection refused"
        );
    }
}
