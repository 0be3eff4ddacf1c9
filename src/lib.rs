//! code-runner: an HTTP service that runs untrusted code snippets, each in
//! a fresh, locked-down Docker container, and answers with what the program
//! printed and how it ended.
//!
//! # Layout
//!
//! Modules depend downwards only: `app` → `api` → `judge0` → `runner` →
//! `executor` → `engine` → `metrics`, with `job`, `language`, `limits`,
//! `config` and `text` below them all (`tests/architecture.rs` checks that
//! no import closes a cycle).
//! The public surface is what the binary and the integration tests use:
//! [`Application`], [`Config`], [`healthcheck`], the [`engine`] and the
//! executor's [`custody`](executor::custody).
//!
//! - [`app`]: wiring, serving, supervised background work, graceful
//!   shutdown.
//! - `server`: the HTTP accept loop, with connection bounds.
//! - `api`: the HTTP API: routes, each dialect's typed answers and
//!   handlers (`/run-code`, Piston's v2 API under `/api/v2`, Judge0's under
//!   `/judge0`), the front door (keys, rates), the probes, `/metrics`, the
//!   OpenAPI document generated from the handlers, and every error mapped
//!   to its HTTP status and headers in one place.
//! - `judge0`: Judge0's model over the pipeline: stored submissions
//!   (SQLite or PostgreSQL), the workers that run them, Judge0's statuses,
//!   verdicts and shapes, callbacks.
//! - `runner`: the seam the API depends on (`Runner`):
//!   admission (run slots and a bounded queue), then the executor.
//! - [`executor`]: runs a job in fresh hardened sandboxes (a compile stage,
//!   a pool of pre-started ones), decides how each stage ended (a pure
//!   verdict), and keeps custody of everything it makes until it is removed.
//! - [`engine`]: the Docker engine: the one module that calls its API.
//! - `job`: a request parsed and checked into a job that cannot be wrong.
//! - `checker`: judging output against the expected output.
//! - `language`: language files, the registry of languages and versions,
//!   and its reload.
//! - `limits`: the resource limits of a stage and the rule that merges
//!   them.
//! - [`config`]: server settings (defaults, TOML file, `CODE_RUNNER_*`).
//! - `metrics`: the Prometheus metrics.
//! - `text`: client text cut before it reaches an error or a log.
//! - [`healthcheck`]: the binary's `healthcheck` command.
//! - `validation`: readable messages from `validator`'s errors.

mod api;
pub mod app;
mod checker;
pub mod config;
pub mod custody;
pub mod engine;
pub mod executor;
pub mod healthcheck;
mod job;
mod judge0;
mod language;
mod limits;
mod metrics;
mod nonempty;
mod outcome;
mod runner;
mod sandbox;
mod server;
#[cfg(test)]
mod testing;
mod text;
mod validation;

/// The sandboxes' supervisor, built apart as a static executable by
/// `build.rs`; compiled here too for its unit tests.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tools/supervise.rs"]
mod supervise;

pub use app::{Application, StartError};
pub use config::Config;
