//! Why a sandbox could not carry out its stage (the service's trouble,
//! never the program's: how a program ended is a result).

use crate::engine::EngineError;

pub(crate) use super::verdict::Unreported;

/// A stage that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the image `{image}` is not on the Docker engine")]
    ImageMissing { image: String },
    #[error("the OCI runtime `{runtime}` is not registered with the Docker engine")]
    RuntimeMissing { runtime: String },
    #[error("the engine weakened the sandbox, so the run was refused: {0}")]
    Weakened(String),
    #[error("the service is shutting down; the run was stopped")]
    Stopped,
    /// The sandbox ended before it started the program (its stderr).
    #[error("the sandbox ended before it started the program: {0}")]
    NeverStarted(String),
    /// The program ran, but its supervisor's report is missing or lacks
    /// the figure the CPU-time verdict stands on: the result is not
    /// trusted (the verdict fails closed).
    #[error("the sandbox's report of its run is {0}, so its result is not trusted")]
    Unreported(Unreported),
    /// A fault of the service's own.
    #[error("{0}")]
    Internal(String),
}
