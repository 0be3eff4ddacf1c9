//! One sandbox's life: what it is ([`spec`]: a pure function from a
//! language's stage and its limits to the container the engine creates),
//! what it needs before it starts ([`launcher`]: a uid, the tools volume,
//! a seccomp profile), how its files, arguments and stdin go in and its end
//! comes back ([`protocol`]), how its output is kept under its caps
//! ([`output`]), its run from feed to removal ([`container`]), and how it
//! ended, decided by one pure function ([`verdict`]), with the CPU-time
//! limit also held from outside ([`watch`]). What it cannot carry
//! out is a [`SandboxError`].
//!
//! A sandbox is created, attached and started, then waits, blocked in the
//! bootstrap's first read, until its payload arrives; its stage's clock
//! counts from that moment. That is what lets a run sandbox start before
//! the compile that fills its working directory, and the pool start
//! sandboxes ahead of demand.

mod container;
mod error;
mod launcher;
mod output;
mod protocol;
mod spec;
#[cfg(test)]
mod tests;
mod verdict;
mod watch;

pub(crate) use container::{Payload, Sandbox, StageBounds};
pub(crate) use error::SandboxError;
pub(crate) use launcher::Launcher;
pub(crate) use protocol::{Clock, Terms};
pub(crate) use spec::{Build, Launch, Start};
pub(crate) use watch::CpuBound;
