//! The rest of Judge0 CE 1.13.1's API against the real server and engine:
//! every information endpoint in its shape, `/workers` while a worker
//! runs, `/statistics` and the paged list on SQLite and PostgreSQL, keys
//! in Judge0's `X-Auth-Token` and Piston's bare `Authorization`, the
//! multi-file program (language 89) through the official SDK, and the
//! information routes through a second Judge0 client from PyPI.

use std::time::{Duration, Instant};

use code_runner::config::Secret;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, language_file, python_client, spawn_app_with_languages};
use crate::judge0::postgres_database;

/// A server with python, C, C++ and the multi-file program, two workers,
/// the keys `alpha` and `beta`, storing its submissions in `database`
/// (or an SQLite file in its languages folder).
async fn keyed_app(database: Option<String>) -> TestApp {
    let files = vec![
        ("python.toml".to_string(), language_file("python.toml")),
        ("c.toml".to_string(), language_file("available/c.toml")),
        ("cpp.toml".to_string(), language_file("available/cpp.toml")),
        (
            "multi-file.toml".to_string(),
            language_file("available/multi-file.toml"),
        ),
    ];
    spawn_app_with_languages(files, move |c| {
        c.judge0.database = database
            .unwrap_or_else(|| format!("sqlite://{}/judge0.sqlite", c.languages_dir.display()));
        c.judge0.workers = 2;
        c.front_door.api_keys = vec![Secret("alpha".into()), Secret("beta".into())];
    })
    .await
}

/// `method path` with `headers` and `body`: status, and the JSON body
/// (its text as a string when it is not JSON, `null` when empty).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = match text.is_empty() {
        true => Value::Null,
        false => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    };
    (status, body)
}

const ALPHA: (&str, &str) = ("x-auth-token", "alpha");

/// Queues python `code` for `key`'s header; its token.
async fn queue(app: &TestApp, key: (&str, &str), code: &str) -> String {
    let body = json!({"source_code": code, "language_id": 71});
    let (status, created) = call(
        app,
        Method::POST,
        "/judge0/submissions",
        &[key],
        Some(&body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["token"].as_str().unwrap().to_string()
}

/// Polls `token` (of `key`) until it is finished, for at most 60 s.
async fn finished(app: &TestApp, key: (&str, &str), token: &str) -> Value {
    let start = Instant::now();
    loop {
        let path = format!("/judge0/submissions/{token}?fields=status,stdout");
        let (_, answer) = call(app, Method::GET, &path, &[key], None).await;
        if answer["status"]["id"].as_i64().unwrap_or(0) > 2 {
            return answer;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/workers`' one queue.
async fn workers(app: &TestApp) -> Value {
    let (status, queues) = call(app, Method::GET, "/judge0/workers", &[ALPHA], None).await;
    assert_eq!(status, 200, "{queues}");
    assert_eq!(queues.as_array().unwrap().len(), 1, "{queues}");
    queues[0].clone()
}

#[tokio::test]
async fn every_judge0_endpoint_answers_in_its_shape_on_the_real_server() {
    let app = keyed_app(None).await;
    let get = |path: &'static str| call(&app, Method::GET, path, &[ALPHA], None);
    let this = concat!("code-runner ", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        get("/judge0/about").await,
        (
            200,
            json!({"version": "1.13.1", "homepage": "/playground", "source_code": this,
                   "maintainer": format!("{this}, speaking Judge0 CE 1.13.1's API")})
        )
    );
    assert_eq!(get("/judge0/version").await, (200, json!("1.13.1")));
    let (_, isolate) = get("/judge0/isolate").await;
    assert!(
        isolate
            .as_str()
            .unwrap()
            .starts_with(&format!("{this} runs no isolate")),
        "{isolate}"
    );
    let (_, license) = get("/judge0/license").await;
    assert_eq!(
        license,
        json!(format!(
            "{this} names no license (its Cargo.toml has no `license` field).\n"
        ))
    );
    let (_, info) = get("/judge0/system_info").await;
    let cpus: usize = info["CPU(s)"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        cpus,
        std::thread::available_parallelism()
            .unwrap()
            .get()
            .max(cpus),
        "{info}"
    );
    assert!(info["Mem"].as_str().unwrap().ends_with("Gi"), "{info}");
    assert_eq!(
        get("/judge0/config_info")
            .await
            .1
            .as_object()
            .unwrap()
            .len(),
        39
    );
    assert_eq!(
        get("/judge0/statuses").await.1.as_array().unwrap().len(),
        14
    );
    let (_, languages) = get("/judge0/languages").await;
    assert!(
        languages
            .as_array()
            .unwrap()
            .contains(&json!({"id": 89, "name": "Multi-file program"})),
        "{languages}"
    );
    let (_, multi) = get("/judge0/languages/89").await;
    assert_eq!(
        (&multi["source_file"], &multi["run_cmd"]),
        (&Value::Null, &Value::Null)
    );
    for path in ["/judge0/authenticate", "/judge0/authorize"] {
        assert_eq!(
            call(&app, Method::POST, path, &[ALPHA], None).await,
            (200, Value::Null)
        );
    }

    // The workers: two idle, then one running a submission that sleeps.
    assert_eq!(
        workers(&app).await,
        json!({"queue": "1.13.1", "size": 0, "available": 2, "idle": 2, "working": 0, "paused": 0, "failed": 0})
    );
    let sleeper = queue(&app, ALPHA, "import time; time.sleep(3); print('up')").await;
    let start = Instant::now();
    while workers(&app).await["working"] != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no worker took it"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(workers(&app).await["idle"], 1);
    assert_eq!(finished(&app, ALPHA, &sleeper).await["stdout"], "up\n");

    // The list: alpha's, newest first, a page at a time; beta's apart.
    let second = queue(&app, ALPHA, "print(2)").await;
    let theirs = queue(&app, ("authorization", "beta"), "print(3)").await;
    for token in [&second, &theirs] {
        let key = if token == &theirs {
            ("x-api-key", "beta")
        } else {
            ALPHA
        };
        finished(&app, key, token).await;
    }
    let (status, page) = get("/judge0/submissions?per_page=1&fields=token,status_id").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page,
        json!({"submissions": [{"token": second, "status_id": 3}],
               "meta": {"current_page": 1, "next_page": 2, "prev_page": null, "total_pages": 2, "total_count": 2}})
    );
    let (_, page) = get("/judge0/submissions?page=2&per_page=1&fields=token").await;
    assert_eq!(page["submissions"], json!([{"token": sleeper}]));
    let (_, stats) = get("/judge0/statistics").await;
    assert_eq!(stats["submissions"]["total"], 2, "{stats}");
    assert_eq!(
        stats["statuses"],
        json!([{"status": {"id": 3, "name": "Accepted"}, "count": 2}])
    );
    app.stop().await;
}

/// The counts and the list on `database`, with two keys' submissions.
async fn statistics_and_list_on(database: Option<String>) {
    let app = keyed_app(database).await;
    let mut tokens = Vec::new();
    for code in ["print(1)", "import sys; sys.exit(3)", "print(1)"] {
        tokens.push(queue(&app, ALPHA, code).await);
    }
    let c = json!({"source_code": "int main(void) { return 0; }", "language_id": 50});
    let (_, created) = call(
        &app,
        Method::POST,
        "/judge0/submissions",
        &[ALPHA],
        Some(&c),
    )
    .await;
    tokens.push(created["token"].as_str().unwrap().to_string());
    let beta = queue(&app, ("x-auth-user", "beta"), "print(1)").await;
    for token in &tokens {
        finished(&app, ALPHA, token).await;
    }
    finished(&app, ("x-auth-user", "beta"), &beta).await;

    let (status, stats) = call(&app, Method::GET, "/judge0/statistics", &[ALPHA], None).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        (
            &stats["submissions"]["total"],
            &stats["submissions"]["today"]
        ),
        (&json!(4), &json!(4))
    );
    assert_eq!(
        stats["submissions"]["last_30_days"]
            .as_object()
            .unwrap()
            .len(),
        30
    );
    assert_eq!(
        stats["languages"],
        json!([{"language": {"id": 71, "name": "Python (3.13)"}, "count": 3},
               {"language": {"id": 50, "name": "C (GCC 14)"}, "count": 1}])
    );
    assert_eq!(
        stats["statuses"],
        json!([{"status": {"id": 3, "name": "Accepted"}, "count": 3},
               {"status": {"id": 11, "name": "Runtime Error (NZEC)"}, "count": 1}])
    );
    let bytes = stats["database"]["size_in_bytes"].as_i64().unwrap();
    let pretty = stats["database"]["size_pretty"].as_str().unwrap();
    assert!(
        bytes > 8192 && (pretty.ends_with(" kB") || pretty.ends_with(" MB")),
        "{stats}"
    );
    let (_, theirs) = call(
        &app,
        Method::GET,
        "/judge0/statistics",
        &[("x-auth-user", "beta")],
        None,
    )
    .await;
    assert_eq!(theirs["submissions"]["total"], 1, "{theirs}");

    let (_, list) = call(
        &app,
        Method::GET,
        "/judge0/submissions?fields=token",
        &[ALPHA],
        None,
    )
    .await;
    let listed: Vec<&str> = list["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["token"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = tokens.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert_eq!(list["meta"]["total_count"], 4);
    app.stop().await;
}

#[tokio::test]
async fn statistics_and_the_list_count_on_sqlite() {
    statistics_and_list_on(None).await;
}

#[tokio::test]
async fn statistics_and_the_list_count_on_postgresql() {
    statistics_and_list_on(Some(postgres_database().await)).await;
}

#[tokio::test]
async fn a_key_in_judge0s_header_or_a_bare_authorization_is_a_key_and_a_wrong_one_is_refused() {
    let app = keyed_app(None).await;
    let body = json!({"source_code": "print(6 * 7)", "language_id": 71});
    let path = "/judge0/submissions?wait=true&fields=stdout";
    for header in [
        ("x-auth-token", "alpha"),
        ("x-auth-user", "alpha"),
        ("authorization", "alpha"),
    ] {
        let (status, answer) = call(&app, Method::POST, path, &[header], Some(&body)).await;
        assert_eq!(
            (status, &answer["stdout"]),
            (201, &json!("42\n")),
            "{header:?}: {answer}"
        );
        let wrong = (header.0, "wrong");
        let (status, answer) = call(&app, Method::POST, path, &[wrong], Some(&body)).await;
        assert_eq!(
            (status, &answer["code"]),
            (401, &json!("unauthorized")),
            "{header:?}: {answer}"
        );
    }
    // Piston's clients send the bare key too.
    let execute =
        json!({"language": "python", "version": "3", "files": [{"content": "print('piston')"}]});
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/v2/execute",
        &[("authorization", "beta")],
        Some(&execute),
    )
    .await;
    assert_eq!(
        (status, &answer["run"]["stdout"]),
        (200, &json!("piston\n")),
        "{answer}"
    );
    // Two keys: refused, naming both headers, though both are good.
    let two = [("x-auth-token", "alpha"), ("authorization", "Bearer beta")];
    let (status, answer) = call(&app, Method::POST, path, &two, Some(&body)).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("`Authorization` and `X-Auth-Token`"),
        "{answer}"
    );
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/judge0/authenticate",
            &[("x-auth-token", "wrong")],
            None
        )
        .await
        .0,
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn a_multi_file_program_compiles_and_runs_through_judge0s_python_sdk() {
    let app = keyed_app(None).await;
    let out = python_client("judge0_multi_file.py", &[&app.url("/judge0"), "alpha"]).await;
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        12,
        "{out}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_second_judge0_client_from_pypi_reads_about_workers_isolate_and_license() {
    let app = keyed_app(None).await;
    let out = python_client("judge0_other_client.py", &[&app.url("/judge0"), "alpha"]).await;
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        10,
        "{out}"
    );
    app.stop().await;
}
