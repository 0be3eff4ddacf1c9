//! The `code-runner` binary: `code-runner` serves (until SIGTERM or
//! SIGINT); `code-runner healthcheck` checks a running service's `/health`.

use std::process::ExitCode;

use code_runner::config::LogFormat;
use code_runner::{Application, Config, healthcheck};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: code-runner [healthcheck]\n\n\
  code-runner              serve (configured by CODE_RUNNER_* variables and CODE_RUNNER_CONFIG)\n\
  code-runner healthcheck  exit 0 when the service on the configured port answers /health";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("code-runner: {e}");
            return ExitCode::from(2);
        }
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => serve(config).await,
        ["healthcheck"] => match healthcheck::check(healthcheck::target(&config)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("code-runner healthcheck: {e}");
                ExitCode::FAILURE
            }
        },
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.init(),
        // One JSON object per line, the event's fields flattened.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("code-runner: {e}");
            return ExitCode::from(2);
        }
    };
    app.run(shutdown_signal()).await;
    ExitCode::SUCCESS
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
