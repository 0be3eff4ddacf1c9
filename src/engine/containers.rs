//! The floor the sandboxes and their custody stand on: [`Containers`], the
//! narrow set of engine operations they call, and the values those
//! operations take and give. [`Engine`](super::Engine) is the real one
//! (Docker, through bollard); the tests have a scripted fake whose
//! containers speak the real stream protocol, so that everything above can
//! be tested without Docker, under paused time.

use std::collections::HashMap;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use futures_util::future::BoxFuture;
use tokio::io::AsyncWrite;

use super::body::SandboxSpec;
use super::error::EngineError;
use crate::outcome::StreamKind;

/// A chunk of a container's output.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) stream: StreamKind,
    pub(crate) bytes: Bytes,
}

/// A container's output, as attached.
pub(crate) type Output = Pin<Box<dyn Stream<Item = Result<Chunk, EngineError>> + Send>>;
/// A container's stdin, as attached.
pub(crate) type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// A created container: its id, and the engine's warnings (a warning can
/// mean a limit was not applied).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Created {
    pub(crate) id: String,
    pub(crate) warnings: Vec<String>,
}

/// How a stopped container ended, as the engine saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ExitState {
    /// Its init process's exit status (128+N for signal N); `None` while it
    /// runs.
    pub(crate) exit_code: Option<i64>,
    /// Whether the engine saw the kernel kill a process of it for memory.
    pub(crate) oom_killed: bool,
}

/// What a running container has used so far, by its cgroup: `None` where
/// the engine gives no figure (a peak under cgroup v2, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Usage {
    /// CPU time of all its processes, in ns.
    pub(crate) cpu_ns: Option<u64>,
    /// Peak memory, in bytes.
    pub(crate) memory_peak: Option<u64>,
}

/// What a resource of the engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Container,
    Volume,
}

/// A container or volume found by [`Containers::list`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listed {
    pub(crate) kind: Kind,
    /// A container's id, or a volume's name.
    pub(crate) id: String,
    pub(crate) labels: HashMap<String, String>,
}

/// A file to write into a volume: its path (a folder when it ends in `/`),
/// mode and content.
pub(crate) type ToolFile<'a> = (&'a str, u32, &'a [u8]);

/// The engine operations sandboxes and custody call. Each failure is an
/// [`EngineError`] naming its step and target.
pub(crate) trait Containers: Send + Sync + std::fmt::Debug {
    /// The OCI runtimes the engine knows (`runc`, `runsc`, ...): an answer
    /// means the engine is there.
    fn runtimes(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>>;

    /// Whether the engine holds `image`.
    fn image_present<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, EngineError>>;

    /// Pulls `image` from its registry.
    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Creates a sandbox container from `spec` (see [`SandboxSpec`] for the
    /// hardening applied).
    fn create<'a>(&'a self, spec: &'a SandboxSpec) -> BoxFuture<'a, Result<Created, EngineError>>;

    /// Attaches to a created container's stdin, stdout and stderr (before
    /// it starts, so that no output is lost).
    fn attach<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(Input, Output), EngineError>>;

    /// Starts a created container.
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Resolves when the container has stopped (whatever its exit code).
    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;

    /// How a container ended (or `exit_code: None` while it runs).
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ExitState, EngineError>>;

    /// What a running container has used so far (one sample).
    fn usage<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Usage, EngineError>>;

    /// Kills a container with SIGKILL; one that already stopped is fine.
    fn kill<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Force-removes a container (killing it if it runs).
    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Creates a volume carrying `labels`: tmpfs-backed when `tmpfs` gives
    /// its mount options, else on the engine's disk.
    fn create_volume<'a>(
        &'a self,
        name: &'a str,
        tmpfs: Option<&'a str>,
        labels: HashMap<String, String>,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Writes `files` into the volume `name`, owned by root, through a
    /// container of `image` that is created and never started.
    fn fill_volume<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
        files: &'a [ToolFile<'a>],
        labels: HashMap<String, String>,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Removes a volume (the engine answers 409 while a container uses it).
    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;

    /// The containers (running or not), then the volumes, carrying every
    /// label of `labels` (`key=value` each).
    fn list<'a>(&'a self, labels: &'a [String]) -> BoxFuture<'a, Result<Vec<Listed>, EngineError>>;
}
