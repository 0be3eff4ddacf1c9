//! code-runner: an HTTP service that runs untrusted code snippets, each in
//! a fresh, locked-down Docker container, and answers with what the program
//! printed and how it ended.
//!
//! # Layout
//!
//! A `Job` goes in, an `Outcome` comes out. Modules depend downwards only:
//! `app` → `api` → `judge0` → `judging` → `runner` → `executor` → `sandbox` →
//! `custody` → `engine`, with `job`, `outcome`, `live`, `language`,
//! `limits` and `config` below them all; `tests/architecture.rs` checks that no import
//! closes a cycle, between modules or between the files of one folder, and
//! that no folder holds over 2,700 lines of production code.
//! The public surface is what the binary and the integration tests use:
//! [`Application`] (and [`StartError`]), [`Config`] and its sections, and
//! [`healthcheck`]; everything else is the crate's own.
//!
//! - [`app`]: wiring, serving, supervised background work, graceful
//!   shutdown.
//! - `server`: the HTTP accept loop (HTTP/1, with upgrades for
//!   WebSockets), with connection bounds (in all and per peer) and a write
//!   deadline for answers.
//! - `api`: the HTTP API: routes, each dialect's typed answers and
//!   handlers (`/run-code`, Piston's v2 API under `/api/v2`, Judge0's under
//!   `/judge0`), streamed runs (`/run-code/ws`, Piston's `/api/v2/connect`,
//!   Server-Sent Events, the playground), the front door (keys, rates), the probes, `/metrics`, the
//!   OpenAPI document generated from the handlers, and every error mapped
//!   to its HTTP status and headers in one place.
//! - `judge0`: Judge0's model over the pipeline: stored submissions
//!   (SQLite or PostgreSQL), the workers that run them, Judge0's statuses,
//!   verdicts and shapes, callbacks.
//! - `runner`: the seam the API depends on (`Runner`): admission (run
//!   slots and a bounded queue, shared fairly), then the executor.
//! - `executor`: one path for one run or many (compile once in a pair,
//!   then each input in a fresh sandbox), the pool of sandboxes started
//!   ahead of demand, and the upkeep (janitor, start-up sweep, pulls,
//!   readiness).
//! - `sandbox`: one sandbox's life: its spec, what it needs before it
//!   starts, the stream protocol, its output under caps (and the files it
//!   sends back), and the pure verdict of how it ended.
//! - `custody`: the ledger of every container and volume this process
//!   makes, until each is removed, and the uids the sandboxes run as.
//! - `engine`: the Docker engine behind the `Containers` trait, the one
//!   module that names bollard (and, for tests, a scripted fake).
//! - `job` and `outcome`: a request checked into a job that cannot be
//!   wrong, and the domain's answer: how each stage ended, and the files
//!   a run brought back.
//! - `live`: a streamed run's channels: the client's stdin and signals
//!   in, its stages and output out.
//! - `judging`: a batch's tests judged: output compared with the
//!   expected output (exact, trim, tokens, floats, unordered lines,
//!   case-insensitive), or by a checker or an interactor in testlib's
//!   convention, each in sandboxes of its own; the catalogue of shared ones.
//! - `language`: language files, the registry of languages and versions,
//!   and its reload.
//! - `limits`: the resource limits of a stage and the rule that merges
//!   them.
//! - [`config`]: server settings (defaults, TOML file, `CODE_RUNNER_*`), in
//!   sections that are the settings of the parts they configure.
//! - `metrics`: the Prometheus metrics.
//! - `nonempty`, `text`, `validation`: a list of at least one; client text
//!   cut before it reaches an error or a log; readable messages from
//!   `validator`'s errors.
//! - [`healthcheck`]: the binary's `healthcheck` command.

mod api;
pub mod app;
pub mod config;
mod custody;
mod engine;
mod executor;
pub mod healthcheck;
mod job;
mod judge0;
mod judging;
mod language;
mod limits;
mod live;
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
#[path = "../tools/supervise.rs"]
mod supervise;

pub use app::{Application, StartError};
pub use config::Config;
