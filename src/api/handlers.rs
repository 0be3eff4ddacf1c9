//! Request handlers: parse and validate at the edge, then hand a typed job
//! to the executor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use validator::ValidateArgs;
use warp::http::StatusCode;
use warp::http::header::HeaderValue;
use warp::reply::{Reply, Response};

use super::error::ApiError;
use super::models::{
    LanguageInfo, RequestBounds, RunRequest, RunResponse, TOO_LARGE, folders_of, wire_field,
};
use super::{POOL_HEADER, REQUEST_ID_HEADER, new_request_id};
use crate::app::AppState;
use crate::engine::EngineError;
use crate::executor::input::SourceFile;
use crate::executor::{ExecError, Job};
use crate::limiter::Refusal;
use crate::validation::field_errors;

/// `POST /run-code`.
pub async fn run_code(
    state: Arc<AppState>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Response {
    let request_id = new_request_id();
    let received = Instant::now();
    let mut response = match run(&state, body, &request_id).await {
        Ok((answer, ran)) => {
            let mut response = warp::reply::json(&answer).into_response();
            let headers = response.headers_mut();
            let pool = if ran.pooled { "hit" } else { "miss" };
            headers.insert(POOL_HEADER, HeaderValue::from_static(pool));
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let mut timing: String = ran
                .phases
                .iter()
                .map(|(name, d)| format!("{name};dur={:.3}, ", ms(*d)))
                .collect();
            timing.push_str(&format!(
                "docker;dur={:.3}, total;dur={:.3}",
                ms(ran.docker_time),
                ms(received.elapsed())
            ));
            if let Ok(value) = HeaderValue::from_str(&timing) {
                headers.insert("server-timing", value);
            }
            response
        }
        Err(e) => {
            tracing::info!(%request_id, code = e.code(), error = %e, "request refused");
            e.into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// How a run was served, for the response headers.
struct Ran {
    pooled: bool,
    docker_time: Duration,
    phases: Vec<(&'static str, Duration)>,
}

async fn run(
    state: &AppState,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
    request_id: &str,
) -> Result<(RunResponse, Ran), ApiError> {
    let config = &state.config;
    // Bodies are read a few at a time, so that many clients cannot make
    // the service hold many large bodies at once.
    let reading = tokio::time::timeout(config.body_timeout(), state.body_reads.acquire())
        .await
        .map_err(|_| ApiError::Busy)?
        .map_err(|_| ApiError::ShuttingDown)?;
    let body = read_body(body, config.max_body_bytes, config.body_timeout()).await?;
    drop(reading);
    let request = parse_request(&body)?;
    drop(body);
    let bounds = RequestBounds {
        max_code_bytes: config.max_code_bytes,
        max_files: config.max_files,
        max_stdin_bytes: config.max_stdin_bytes,
        max_args: config.max_args,
        max_arg_bytes: config.max_arg_bytes,
    };
    if let Err(errors) = request.validate_with_args(&bounds) {
        // Report a size error before any other, so that 413 wins.
        let mut fields = field_errors(&errors);
        fields.sort_by_key(|f| f.code != TOO_LARGE);
        let first = fields.swap_remove(0);
        let field = wire_field(&first.path).to_string();
        return Err(if first.code == TOO_LARGE {
            ApiError::FieldTooLarge {
                field,
                message: first.message,
            }
        } else {
            ApiError::InvalidField {
                field,
                message: first.message,
            }
        });
    }

    if request.source_bytes() > config.max_code_bytes {
        return Err(ApiError::FieldTooLarge {
            field: "files".to_string(),
            message: format!(
                "and `code` together are {} bytes, more than the limit of {} bytes",
                request.source_bytes(),
                config.max_code_bytes
            ),
        });
    }

    let registry = state.registry();
    let language = registry
        .get(&request.language)
        .ok_or_else(|| ApiError::UnknownLanguage {
            name: request.language.clone(),
            available: registry.names(),
        })?
        .clone();
    let limit_ms = language.limits.wall_time_ms;
    let wall_time_ms = match request.timeout_ms {
        Some(ms) if ms > limit_ms => {
            return Err(ApiError::InvalidField {
                field: "timeout_ms".to_string(),
                message: format!(
                    "may only lower the limit of language `{}`, {limit_ms} ms (got {ms})",
                    language.name
                ),
            });
        }
        Some(ms) => ms,
        None => limit_ms,
    };
    let mut files = vec![SourceFile {
        name: language.source_file.clone(),
        content: request.code.into_bytes(),
    }];
    for file in request.files.unwrap_or_default() {
        let in_source_file = folders_of(&file.name).any(|f| f == language.source_file);
        if file.name == language.source_file || in_source_file {
            return Err(ApiError::InvalidField {
                field: "files".to_string(),
                message: format!(
                    "has a file named {:?}, which collides with `{}`, where `code` is written in language `{}`",
                    file.name, language.source_file, language.name
                ),
            });
        }
        files.push(SourceFile {
            name: file.name,
            content: file.content.into_bytes(),
        });
    }
    let job = Job {
        files,
        args: request.arguments.unwrap_or_default(),
        stdin: request.stdin.unwrap_or_default().into_bytes(),
        wall_time: Duration::from_millis(wall_time_ms),
        language: language.clone(),
    };

    let _slot = state
        .limiter
        .acquire()
        .await
        .map_err(|refusal| match refusal {
            Refusal::QueueFull | Refusal::QueueTimeout => ApiError::Busy,
            Refusal::Closed => ApiError::ShuttingDown,
        })?;
    let started = Instant::now();
    let outcome = state.executor.run(job).await.map_err(|e| match e {
        ExecError::Engine(EngineError::Unavailable(reason)) => {
            tracing::warn!(%request_id, %reason, "Docker cannot be reached");
            ApiError::DockerUnavailable
        }
        ExecError::ImageMissing { image } => ApiError::ImageMissing {
            image,
            language: language.name.clone(),
        },
        ExecError::Stopped => ApiError::ShuttingDown,
        e @ (ExecError::Engine(_) | ExecError::Weakened(_)) => {
            tracing::error!(%request_id, error = %e, "run failed");
            ApiError::Internal {
                request_id: request_id.to_string(),
            }
        }
    })?;
    let ran = Ran {
        pooled: outcome.pooled,
        docker_time: outcome.docker_time,
        phases: outcome.phases.clone(),
    };
    let answer = RunResponse::new(&language, wall_time_ms, outcome);
    tracing::info!(
        %request_id,
        language = %answer.language,
        status = answer.run.status.as_str(),
        exit_code = ?answer.run.exit_code,
        compile_ms = answer.compile.as_ref().map(|c| c.duration_ms),
        duration_ms = answer.run.duration_ms,
        total_ms = started.elapsed().as_millis() as u64,
        pooled = ran.pooled,
        "run finished"
    );
    Ok((answer, ran))
}

/// Reads the whole body, bounded in size and time.
async fn read_body(
    mut body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
    limit: u64,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let read = async {
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk
                .map_err(|e| ApiError::MalformedJson(format!("the body could not be read: {e}")))?;
            if (out.len() + chunk.remaining()) as u64 > limit {
                return Err(ApiError::BodyTooLarge { limit });
            }
            out.put(&mut chunk);
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::BodyTimeout {
            ms: timeout.as_millis() as u64,
        })?
}

/// Parses a body as a request: a JSON object with known fields only.
fn parse_request(body: &[u8]) -> Result<RunRequest, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Err(ApiError::MalformedJson("the body is empty".to_string())),
        // serde would also take a struct from an array: refuse anything
        // but an object.
        Some(b'{') => serde_json::from_slice(body).map_err(json_error),
        Some(_) => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Err(e) => Err(json_error(e)),
            Ok(_) => Err(ApiError::InvalidType(
                "the body must be a JSON object".to_string(),
            )),
        },
    }
}

/// Names what is wrong with a body that does not parse as a request.
fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let message = e.to_string();
    match e.classify() {
        Category::Data => {
            if let Some(field) = quoted_after(&message, "unknown field `") {
                ApiError::UnknownField(field)
            } else if let Some(field) = quoted_after(&message, "missing field `") {
                ApiError::InvalidField {
                    field,
                    message: "is required".to_string(),
                }
            } else {
                ApiError::InvalidType(format!(
                    "the body does not match the request's shape: {message}"
                ))
            }
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson(message),
    }
}

/// The text between `prefix` and the next backtick, if `message` starts so.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    Some(rest[..rest.find('`')?].to_string())
}

/// `GET /ready`: 200 when Docker answers and every image is present.
pub async fn ready(state: Arc<AppState>) -> Response {
    let registry = state.registry();
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    match state.engine.ping().await {
        Err(e) => problems.push(e.to_string()),
        Ok(()) => {
            let mut images: Vec<&str> = registry
                .languages()
                .iter()
                .map(|l| l.image.as_str())
                .collect();
            images.sort();
            images.dedup();
            for image in images {
                match state.engine.image_present(image).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let users: Vec<&str> = registry
                            .languages()
                            .iter()
                            .filter(|l| l.image == image)
                            .map(|l| l.name.as_str())
                            .collect();
                        problems.push(format!(
                            "the image `{image}` (for {}) is missing",
                            users.join(", ")
                        ));
                        missing.push(image.to_string());
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
    }
    if problems.is_empty() {
        // How many started containers wait in each language's pool.
        let pool = state.executor.pool().ready();
        let body = json!({ "status": "ready", "languages": registry.names(), "pool": pool });
        warp::reply::json(&body).into_response()
    } else {
        let body =
            json!({ "status": "not_ready", "problems": problems, "missing_images": missing });
        warp::reply::with_status(warp::reply::json(&body), StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    }
}

/// `GET /languages`: every language with its version and limits.
pub async fn languages(state: Arc<AppState>) -> Response {
    let registry = state.registry();
    let list: Vec<LanguageInfo> = registry
        .languages()
        .iter()
        .map(|l| LanguageInfo::from(l.as_ref()))
        .collect();
    warp::reply::json(&json!({ "languages": list })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::check_file_name;
    use proptest::prelude::*;

    fn bounds() -> RequestBounds {
        RequestBounds {
            max_code_bytes: 1000,
            max_files: 4,
            max_stdin_bytes: 1000,
            max_args: 4,
            max_arg_bytes: 100,
        }
    }

    /// JSON values of any shape, nested a few levels.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            ".{0,40}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,10}", inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Request-shaped objects: the real keys (and a stray one) with values
    /// of any shape.
    fn request_like() -> impl Strategy<Value = serde_json::Value> {
        let key = prop_oneof![
            Just("language".to_string()),
            Just("code".to_string()),
            Just("stdin".to_string()),
            Just("args".to_string()),
            Just("files".to_string()),
            Just("timeout_ms".to_string()),
            "[a-z_]{1,12}",
        ];
        prop::collection::btree_map(key, json_value(), 0..7)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_parse_to_a_request_or_a_400(body in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Err(e) = parse_request(&body) {
                prop_assert_eq!(e.status(), StatusCode::BAD_REQUEST);
            }
        }

        #[test]
        fn any_request_shaped_json_is_accepted_or_refused_cleanly(value in request_like()) {
            let body = serde_json::to_vec(&value).unwrap();
            match parse_request(&body) {
                Ok(request) => {
                    let _ = request.validate_with_args(&bounds());
                    let _ = request.source_bytes();
                }
                Err(e) => prop_assert_eq!(e.status(), StatusCode::BAD_REQUEST),
            }
        }

        #[test]
        fn file_name_checks_never_panic_and_keep_paths_inside(name in ".{0,300}") {
            if check_file_name(&name).is_ok() {
                prop_assert!(!name.starts_with('/'));
                prop_assert!(!name.split('/').any(|p| p == ".." || p == "." || p.is_empty()));
                prop_assert!(!name.contains('\n') && !name.contains('\0'));
            }
        }
    }

    fn classify(body: &str) -> ApiError {
        parse_request(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn json_errors_get_precise_codes() {
        assert_eq!(classify(r#"{"language": "py"#).code(), "malformed_json");
        assert_eq!(
            classify(r#"{"language": 1, "code": "x"}"#).code(),
            "invalid_type"
        );
        assert_eq!(classify(r#"["python", "print(1)"]"#).code(), "invalid_type");
        assert_eq!(classify("").code(), "malformed_json");
        assert_eq!(classify("[1,").code(), "malformed_json");
        match classify(r#"{"language": "python", "code": "x", "cod": 1}"#) {
            ApiError::UnknownField(f) => assert_eq!(f, "cod"),
            other => panic!("{other:?}"),
        }
        match classify(r#"{"language": "python"}"#) {
            ApiError::InvalidField { field, .. } => assert_eq!(field, "code"),
            other => panic!("{other:?}"),
        }
        let deep = "[".repeat(10_000);
        assert_eq!(classify(&deep).code(), "malformed_json");
        let deep = format!(
            r#"{{"language": "python", "code": "x", "args": {}"#,
            "[".repeat(10_000)
        );
        assert!(matches!(
            classify(&deep).code(),
            "malformed_json" | "invalid_type"
        ));
    }
}
