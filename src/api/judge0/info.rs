//! What Judge0's service is: `GET /judge0/about`, `/version`,
//! `/isolate`, `/license`, `/config_info`, `/statuses` and the languages
//! (`/languages`, `/languages/all`, `/languages/{id}`).

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::super::answer;
use super::super::state::Api;
use super::request::{Judge0ErrorBody, Refused};
use crate::judge0::render::StatusView;
use crate::judge0::request::{
    CPU_EXTRA_TIME, MAX_CPU_EXTRA_TIME, MAX_NUMBER_OF_RUNS, MAX_STACK_LIMIT, MULTI_FILE,
    STACK_LIMIT,
};
use crate::judge0::status::Judge0Status;
use crate::runner::Runner;

/// The Judge0 version this API answers as (`GET /about`): the Python
/// SDK maps its language names to ids by it.
pub(super) const JUDGE0_VERSION: &str = "1.13.1";

/// `GET /judge0/about`'s answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct About<'a> {
    version: &'static str,
    /// `judge0.homepage`, by default this service's `/playground`.
    homepage: &'a str,
    /// `judge0.source_code`, by default the service's name and version.
    source_code: &'a str,
    maintainer: &'static str,
}

/// The Judge0 version spoken, and this service's homepage and source.
#[utoipa::path(get, path = "/about", tag = "judge0", operation_id = "judge0_about",
    responses((status = 200, description = "The Judge0 version spoken", body = About)))]
pub(super) fn about<R: Runner>(api: &Api<R>) -> Response {
    let settings = api.judge0.settings();
    let about = About {
        version: JUDGE0_VERSION,
        homepage: settings.homepage(),
        source_code: settings.source_code(),
        maintainer: concat!(
            "code-runner ",
            env!("CARGO_PKG_VERSION"),
            ", speaking Judge0 CE 1.13.1's API"
        ),
    };
    answer::json(StatusCode::OK, &about)
}

/// The Judge0 version spoken, as text.
#[utoipa::path(get, path = "/version", tag = "judge0", operation_id = "judge0_version",
    responses((status = 200, description = "1.13.1", body = String, content_type = "text/plain")))]
pub(super) fn version() -> Response {
    JUDGE0_VERSION.into_response()
}

/// `GET /judge0/isolate`'s text: Judge0 answers `isolate --version`; no
/// isolate runs here, so it says what sandbox does.
const SANDBOX: &str = concat!(
    "code-runner ",
    env!("CARGO_PKG_VERSION"),
    " runs no isolate: each run gets a fresh Docker container of its own\n",
    "(no network, a read-only root, every capability dropped, a seccomp profile,\n",
    "a uid no other live sandbox has, and limits on memory, CPU time, processes,\n",
    "disk, wall time and output), removed once the run is over.\n",
);

/// What sandbox runs the programs (Judge0: `isolate --version`).
#[utoipa::path(get, path = "/isolate", tag = "judge0", operation_id = "judge0_isolate",
    responses((status = 200, description = "The sandbox, in words", body = String, content_type = "text/plain")))]
pub(super) fn isolate() -> Response {
    SANDBOX.into_response()
}

/// The service's license, as its Cargo.toml names it.
#[utoipa::path(get, path = "/license", tag = "judge0", operation_id = "judge0_license",
    responses((status = 200, description = "The license, in words", body = String, content_type = "text/plain")))]
pub(super) fn license() -> Response {
    license_text(env!("CARGO_PKG_LICENSE")).into_response()
}

/// What `/license` says of a crate whose Cargo.toml gives `license`.
fn license_text(license: &str) -> String {
    let this = concat!("code-runner ", env!("CARGO_PKG_VERSION"));
    if license.is_empty() {
        format!("{this} names no license (its Cargo.toml has no `license` field).\n")
    } else {
        format!("{this} is licensed under {license} (its Cargo.toml's `license`).\n")
    }
}

/// Judge0's statuses.
#[utoipa::path(get, path = "/statuses", tag = "judge0", operation_id = "judge0_statuses",
    responses((status = 200, description = "Judge0's statuses", body = Vec<StatusView>)))]
pub(super) fn statuses() -> Response {
    let list: Vec<StatusView> = Judge0Status::ALL
        .into_iter()
        .map(StatusView::from)
        .collect();
    answer::json(StatusCode::OK, &list)
}

/// `GET /judge0/config_info`'s answer: Judge0's 39 settings, from this
/// server's (the default limits stand for the languages' own, which each
/// submission is held to).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct ConfigInfo {
    maintenance_mode: bool,
    enable_wait_result: bool,
    enable_compiler_options: bool,
    allowed_languages_for_compile_options: Vec<String>,
    enable_command_line_arguments: bool,
    enable_submission_delete: bool,
    enable_callbacks: bool,
    callbacks_max_tries: u32,
    /// Seconds.
    callbacks_timeout: f64,
    enable_additional_files: bool,
    max_queue_size: usize,
    /// Seconds.
    cpu_time_limit: f64,
    max_cpu_time_limit: f64,
    cpu_extra_time: f64,
    max_cpu_extra_time: f64,
    wall_time_limit: f64,
    max_wall_time_limit: f64,
    /// KiB.
    memory_limit: u64,
    max_memory_limit: u64,
    /// KiB.
    stack_limit: i64,
    max_stack_limit: i64,
    max_processes_and_or_threads: u64,
    max_max_processes_and_or_threads: u64,
    enable_per_process_and_thread_time_limit: bool,
    allow_enable_per_process_and_thread_time_limit: bool,
    enable_per_process_and_thread_memory_limit: bool,
    allow_enable_per_process_and_thread_memory_limit: bool,
    /// KiB.
    max_file_size: u64,
    max_max_file_size: u64,
    number_of_runs: i64,
    max_number_of_runs: i64,
    redirect_stderr_to_stdout: bool,
    /// KiB.
    max_extract_size: usize,
    enable_batched_submissions: bool,
    max_submission_batch_size: usize,
    /// Seconds.
    submission_cache_duration: f64,
    use_docs_as_homepage: bool,
    allow_enable_network: bool,
    enable_network: bool,
}

/// Judge0's settings, as this server applies them.
#[utoipa::path(get, path = "/config_info", tag = "judge0", operation_id = "judge0_config_info",
    responses((status = 200, description = "Judge0's 39 settings", body = ConfigInfo)))]
pub(super) fn config_info<R: Runner>(api: &Api<R>) -> Response {
    let judge0 = &api.judge0;
    let settings = judge0.settings();
    let limits = &api.defaults;
    let with_options: Vec<String> = api
        .runner
        .registry()
        .languages()
        .iter()
        .filter(|l| l.judge0_id.is_some() && !l.compiler_options.is_empty())
        .map(|l| l.judge0_name.clone())
        .collect();
    let cpu = limits.cpu_time_ms as f64 / 1000.0;
    let wall = limits.wall_time_ms as f64 / 1000.0;
    let memory = limits.memory_mb * 1024;
    let file = (limits.scratch_mb * 1024).min(limits.output_bytes.div_ceil(1024));
    let config = ConfigInfo {
        maintenance_mode: false,
        enable_wait_result: true,
        enable_compiler_options: !with_options.is_empty(),
        allowed_languages_for_compile_options: with_options,
        enable_command_line_arguments: true,
        enable_submission_delete: judge0.stores(),
        enable_callbacks: !settings.callback_hosts.is_empty(),
        callbacks_max_tries: settings.callback_tries,
        callbacks_timeout: settings.callback_timeout().as_secs_f64(),
        enable_additional_files: true,
        max_queue_size: settings.max_queue,
        cpu_time_limit: cpu,
        max_cpu_time_limit: cpu,
        cpu_extra_time: CPU_EXTRA_TIME,
        max_cpu_extra_time: MAX_CPU_EXTRA_TIME,
        wall_time_limit: wall,
        max_wall_time_limit: wall,
        memory_limit: memory,
        max_memory_limit: memory,
        stack_limit: STACK_LIMIT,
        max_stack_limit: MAX_STACK_LIMIT,
        max_processes_and_or_threads: limits.pids,
        max_max_processes_and_or_threads: limits.pids,
        enable_per_process_and_thread_time_limit: false,
        allow_enable_per_process_and_thread_time_limit: false,
        enable_per_process_and_thread_memory_limit: false,
        allow_enable_per_process_and_thread_memory_limit: false,
        max_file_size: file,
        max_max_file_size: file,
        number_of_runs: 1,
        max_number_of_runs: MAX_NUMBER_OF_RUNS,
        redirect_stderr_to_stdout: false,
        max_extract_size: api.bounds.max_code_bytes.div_ceil(1024),
        enable_batched_submissions: judge0.stores(),
        max_submission_batch_size: settings.max_batch,
        submission_cache_duration: 0.0,
        use_docs_as_homepage: false,
        allow_enable_network: false,
        enable_network: false,
    };
    answer::json(StatusCode::OK, &config)
}

/// A language as Judge0 lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
struct LanguageEntry {
    id: i64,
    name: String,
    /// In `/languages/all` only: always false.
    #[serde(skip_serializing_if = "Option::is_none")]
    is_archived: Option<bool>,
}

/// The languages Judge0's API serves (those with a `judge0_id`), sorted by
/// name, with `is_archived` when `all`.
fn listed<R: Runner>(api: &Api<R>, all: bool) -> Response {
    let registry = api.runner.registry();
    let mut list: Vec<(&str, i64)> = registry
        .languages()
        .iter()
        .filter_map(|l| l.judge0_id.map(|id| (l.judge0_name.as_str(), id)))
        .collect();
    list.sort();
    let list: Vec<LanguageEntry> = list
        .into_iter()
        .map(|(name, id)| LanguageEntry {
            id,
            name: name.to_string(),
            is_archived: all.then_some(false),
        })
        .collect();
    answer::json(StatusCode::OK, &list)
}

/// The languages with a Judge0 id.
#[utoipa::path(get, path = "/languages", tag = "judge0", operation_id = "judge0_languages",
    responses((status = 200, description = "The languages with a Judge0 id", body = Vec<LanguageEntry>)))]
pub(super) fn languages<R: Runner>(api: &Api<R>) -> Response {
    listed(api, false)
}

/// The languages with a Judge0 id, with `is_archived`.
#[utoipa::path(get, path = "/languages/all", tag = "judge0", operation_id = "judge0_languages_all",
    responses((status = 200, description = "The same, with is_archived", body = Vec<LanguageEntry>)))]
pub(super) fn all_languages<R: Runner>(api: &Api<R>) -> Response {
    listed(api, true)
}

/// `GET /judge0/languages/{id}`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
struct LanguageDetail {
    id: i64,
    name: String,
    is_archived: bool,
    /// `null` for the multi-file program (89), whose scripts are the
    /// submission's.
    source_file: Option<String>,
    /// `null` for a language without a compile stage, and for 89.
    compile_cmd: Option<String>,
    /// `null` for 89.
    run_cmd: Option<String>,
}

/// One language, with its commands.
#[utoipa::path(get, path = "/languages/{id}", tag = "judge0", operation_id = "judge0_language",
    params(("id" = String, Path, description = "A Judge0 language id")),
    responses(
        (status = 200, description = "The language", body = LanguageDetail),
        (status = 404, description = "No such language", body = Judge0ErrorBody),
    ))]
pub(super) fn language<R: Runner>(api: &Api<R>, id: &str) -> Result<Response, Refused> {
    let registry = api.runner.registry();
    let (id, language) = id
        .parse()
        .ok()
        .and_then(|id| Some((id, registry.by_judge0_id(id)?)))
        .ok_or_else(Refused::not_found)?;
    // Judge0's multi-file program has no commands of its own: it runs
    // the submission's `compile` and `run`.
    let own = id != MULTI_FILE;
    let detail = LanguageDetail {
        id,
        name: language.judge0_name.clone(),
        is_archived: false,
        source_file: own.then(|| language.source_file.clone()),
        compile_cmd: (language.compile.as_ref())
            .filter(|_| own)
            .map(|c| c.command.join(" ")),
        run_cmd: own.then(|| language.run.join(" ")),
    };
    Ok(answer::json(StatusCode::OK, &detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_license_is_the_one_cargo_toml_names_or_none() {
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            license_text(""),
            format!(
                "code-runner {version} names no license (its Cargo.toml has no `license` field).\n"
            )
        );
        assert_eq!(
            license_text("MIT"),
            format!("code-runner {version} is licensed under MIT (its Cargo.toml's `license`).\n")
        );
    }
}
