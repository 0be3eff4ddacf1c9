//! code-runner: an HTTP service that runs untrusted code snippets, each in
//! a fresh, locked-down Docker container, and answers with what the program
//! printed and how it ended.
//!
//! # Layout
//!
//! - [`config`]: server settings (defaults, TOML file, `CODE_RUNNER_*`).
//! - [`limits`]: the resource limits of a run.
//! - [`language`]: the language registry (`languages/*.toml`).
//! - [`watch`]: reloading the registry when language files change.
//! - [`api`]: the HTTP API (routes, handlers, wire types, errors).
//! - [`limiter`]: run slots and the bounded queue.
//! - [`executor`]: hardened containers per run (a compile stage, a pool of
//!   pre-started ones, background removal), always removed.
//! - [`engine`]: the Docker connection, images, volumes and sweeps.
//! - [`server`]: the HTTP accept loop, with connection bounds.
//! - [`app`]: wiring, serving and graceful shutdown.
//! - [`healthcheck`]: the binary's `healthcheck` command.
//! - [`validation`]: readable messages from `validator`'s errors.

pub mod api;
pub mod app;
pub mod config;
pub mod engine;
pub mod executor;
pub mod healthcheck;
pub mod language;
pub mod limiter;
pub mod limits;
pub mod server;
pub mod validation;
pub mod watch;

pub use app::{Application, StartError};
pub use config::Config;
