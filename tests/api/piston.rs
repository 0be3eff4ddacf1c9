//! Piston's v2 API against the real engine: Piston's own clients, unchanged
//! but for the base URL (the Rust crate `piston_rs` and the PyPI package
//! `ultra-piston`; the crate `pistones` cannot be pointed anywhere but
//! emkc.org, so its response types read our answers instead), Piston's
//! README example, every stage status, and two Python versions side by
//! side.

use piston_rs::{Client, Executor, File};
use serde_json::{Value, json};

use crate::helpers::{TestApp, language_file, python_client, spawn_app_with_languages};

/// python 3.13 (shipped), python 3.11 and C from the catalogue, and
/// javascript when `javascript` is set.
async fn piston_app(javascript: bool) -> TestApp {
    let mut files = vec![
        ("python.toml".to_string(), language_file("python.toml")),
        (
            "python-3.11.toml".to_string(),
            language_file("available/python-3.11.toml"),
        ),
        ("c.toml".to_string(), language_file("available/c.toml")),
    ];
    if javascript {
        files.push((
            "javascript.toml".to_string(),
            language_file("available/javascript.toml"),
        ));
    }
    spawn_app_with_languages(files, |_| {}).await
}

async fn execute(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/v2/execute"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn pistons_python_client_ultra_piston_works_unchanged_but_for_the_base_url() {
    let app = piston_app(false).await;
    let out = python_client("piston_client.py", &[&app.url("/api/v2/")]).await;
    // Every check ran (the script exits at the first that fails).
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        14,
        "{out}"
    );
    app.stop().await;
}

#[tokio::test]
async fn pistons_rust_client_piston_rs_works_unchanged_but_for_the_base_url() {
    let app = piston_app(false).await;
    let client = Client::with_url(&app.url("/api/v2"));

    let runtimes = client.fetch_runtimes().await.unwrap();
    let listed: Vec<(String, String)> = runtimes
        .iter()
        .map(|r| (r.language.clone(), r.version.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            ("c".to_string(), "14.0.0".to_string()),
            ("python".to_string(), "3.13.0".to_string()),
            ("python".to_string(), "3.11.0".to_string()),
        ]
    );
    assert_eq!(runtimes[1].aliases, ["py", "python3"]);

    let python = |code: &str| {
        Executor::new()
            .set_language("python")
            .add_file(File::default().set_content(code))
    };
    let hello = client
        .execute(&python("print('Hello, World!')"))
        .await
        .unwrap();
    assert!(hello.is_ok() && hello.run.is_ok(), "{hello:?}");
    assert_eq!(hello.run.stdout, "Hello, World!\n");
    assert_eq!(
        (hello.language.as_str(), hello.version.as_str()),
        ("python", "3.13.0")
    );
    assert!(hello.compile.is_none());

    let stdin = client
        .execute(&python("print(input().upper())").set_stdin("quiet"))
        .await
        .unwrap();
    assert_eq!(stdin.run.stdout, "QUIET\n");

    let args = client
        .execute(&python("import sys\nprint(sys.argv[1:])").add_args(vec!["a", "b c"]))
        .await
        .unwrap();
    assert_eq!(args.run.stdout, "['a', 'b c']\n");

    let broken = Executor::new().set_language("c").add_file(
        File::default()
            .set_name("main.c")
            .set_content("int main( {"),
    );
    let broken = client.execute(&broken).await.unwrap();
    let compile = broken.compile.clone().expect("a compile stage");
    assert!(
        compile.is_err() && compile.stderr.contains("error"),
        "{compile:?}"
    );
    assert_eq!(broken.run.stderr, compile.stderr);

    let spin = client
        .execute(&python("while True: pass").set_run_timeout(800))
        .await
        .unwrap();
    assert_eq!(
        (spin.run.code, spin.run.signal.as_deref()),
        (None, Some("SIGKILL")),
        "{spin:?}"
    );

    let version = client
        .execute(&python("import sys\nprint(sys.version_info[:2])").set_version("~3.11"))
        .await
        .unwrap();
    assert_eq!(
        (version.version.as_str(), version.run.stdout.as_str()),
        ("3.11.0", "(3, 11)\n")
    );

    // A refusal: piston_rs gives the status and the body in `stderr`.
    let unknown = client.execute(&python("1").set_version("2")).await.unwrap();
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.run.stderr,
        r#"400 Bad Request: {"message":"python-2 runtime is unknown"}"#
    );
    app.stop().await;
}

#[tokio::test]
async fn pistones_types_read_the_answers_on_the_public_instances_paths() {
    // pistones' Client always asks https://emkc.org first (Client::new),
    // and always executes there: it cannot be pointed at this server, so
    // its types read this server's answers on the paths it uses.
    let app = piston_app(false).await;
    let runtimes: Vec<pistones::lang::Language> = app
        .client
        .get(app.url("/api/v2/piston/runtimes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runtimes.len(), 3);
    assert_eq!(runtimes[1].aliases, ["py", "python3"]);
    let answer = |body: Value| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/api/v2/piston/execute"))
                .json(&body)
                .send()
                .await
                .unwrap();
            response
                .json::<pistones::lang::ApiResponse>()
                .await
                .unwrap()
        }
    };
    // What pistones sends: language, version, files with a null name.
    match answer(json!({"language": "py", "version": "3.13.0",
        "files": [{"name": null, "content": "print(6 * 7)"}]}))
    .await
    {
        pistones::lang::ApiResponse::Good(r) => {
            assert_eq!((r.run.code, r.run.stdout.as_str()), (0, "42\n"));
            assert_eq!(r.version, "3.13.0");
        }
        pistones::lang::ApiResponse::Error(e) => panic!("{}", e.message),
    }
    match answer(json!({"language": "html", "version": "5.0.0",
        "files": [{"name": null, "content": "x"}]}))
    .await
    {
        pistones::lang::ApiResponse::Error(e) => {
            assert_eq!(e.message, "html-5.0.0 runtime is unknown")
        }
        pistones::lang::ApiResponse::Good(r) => panic!("{r:?}"),
    }
    app.stop().await;
}

#[tokio::test]
async fn pistons_readme_example_runs_as_its_readme_shows() {
    let app = piston_app(true).await;
    // readme.md's request, with the version we serve instead of 15.10.0.
    let request = json!({
        "language": "js",
        "version": "*",
        "files": [{"name": "my_cool_code.js", "content": "console.log(process.argv)"}],
        "stdin": "",
        "args": ["1", "2", "3"],
        "compile_timeout": 10000,
        "run_timeout": 3000,
        "compile_cpu_time": 10000,
        "run_cpu_time": 3000,
        "compile_memory_limit": -1,
        "run_memory_limit": -1
    });
    let (status, answer) = execute(&app, request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["language"], "javascript");
    assert_eq!(answer["version"], "20.0.0");
    assert!(answer.get("compile").is_none());
    let run = &answer["run"];
    // node prints its argv as the README shows: the node binary, the
    // program, then '1', '2', '3'. The paths are this sandbox's (the main
    // file is the language's `source_file`), short enough for node to
    // print them on one line.
    assert_eq!(
        run["stdout"],
        "[ '/usr/bin/node', '/work/main.js', '1', '2', '3' ]\n"
    );
    assert_eq!(run["output"], run["stdout"]);
    assert_eq!(
        (
            &run["stderr"],
            &run["code"],
            &run["signal"],
            &run["message"],
            &run["status"]
        ),
        (
            &json!(""),
            &json!(0),
            &Value::Null,
            &Value::Null,
            &Value::Null
        )
    );
    assert!(run["cpu_time"].as_f64().unwrap() > 0.0, "{run}");
    assert!(run["wall_time"].as_f64().unwrap() >= run["cpu_time"].as_f64().unwrap() / 2.0);
    assert!(run["memory"].as_u64().unwrap() > 1 << 20, "{run}");

    let (status, answer) = execute(
        &app,
        json!({"language": "html", "version": "5.0.0", "files": [{"content": "x"}]}),
    )
    .await;
    assert_eq!(
        (status, answer),
        (400, json!({"message": "html-5.0.0 runtime is unknown"}))
    );
    app.stop().await;
}

#[tokio::test]
async fn every_stage_status_piston_has_comes_from_a_real_run() {
    let app = piston_app(false).await;
    let cases = [
        (
            "import sys\nsys.exit(3)",
            json!({}),
            "RE",
            "Exited with error status 3",
            json!(3),
            Value::Null,
        ),
        (
            "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)",
            json!({}),
            "SG",
            "Caught fatal signal 11",
            Value::Null,
            json!("SIGSEGV"),
        ),
        (
            "import time\ntime.sleep(30)",
            json!({"run_timeout": 700}),
            "TO",
            "Time limit exceeded (wall clock)",
            Value::Null,
            json!("SIGKILL"),
        ),
        (
            "while True: pass",
            json!({"run_cpu_time": 400}),
            "TO",
            "Time limit exceeded",
            Value::Null,
            json!("SIGKILL"),
        ),
        (
            "a = []\nwhile True: a.append(bytearray(8 << 20))",
            json!({"run_memory_limit": 48 << 20}),
            "SG",
            "Memory limit exceeded",
            Value::Null,
            json!("SIGKILL"),
        ),
        (
            "while True: print('x' * 1000)",
            json!({}),
            "OL",
            "stdout length exceeded",
            Value::Null,
            json!("SIGKILL"),
        ),
        (
            "import sys\nwhile True: sys.stderr.write('x' * 1000)",
            json!({}),
            "EL",
            "stderr length exceeded",
            Value::Null,
            json!("SIGKILL"),
        ),
    ];
    for (code, limits, status, message, exit_code, signal) in cases {
        let mut body =
            json!({"language": "python", "version": "3.13", "files": [{"content": code}]});
        body.as_object_mut()
            .unwrap()
            .extend(limits.as_object().unwrap().clone());
        let (http, answer) = execute(&app, body).await;
        assert_eq!(http, 200, "{answer}");
        let run = &answer["run"];
        assert_eq!(
            (
                &run["status"],
                &run["message"],
                &run["code"],
                &run["signal"]
            ),
            (&json!(status), &json!(message), &exit_code, &signal),
            "{code}: {run}"
        );
    }
    // `output` holds both streams in the order written.
    let code = "import sys, time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.05)\n    print(-i, file=sys.stderr, flush=True)\n    time.sleep(0.05)";
    let (_, answer) = execute(
        &app,
        json!({"language": "python", "version": "*", "files": [{"content": code}]}),
    )
    .await;
    assert_eq!(answer["run"]["output"], "0\n0\n1\n-1\n2\n-2\n", "{answer}");
    assert_eq!(answer["run"]["stdout"], "0\n1\n2\n");
    app.stop().await;
}

#[tokio::test]
async fn two_python_versions_run_side_by_side_through_both_apis() {
    let app = piston_app(false).await;
    let code = "import sys\nprint('%d.%d' % sys.version_info[:2])";
    let native = |version: Option<&str>| {
        let mut body = json!({"language": "python", "code": code});
        if let Some(version) = version {
            body["version"] = json!(version);
        }
        body
    };
    // /run-code without `version` is unchanged: the newest.
    let newest = app.run_ok(native(None)).await;
    assert_eq!(newest["stdout"], "3.13\n", "{newest}");
    let older = app.run_ok(native(Some("3.11"))).await;
    assert_eq!(older["stdout"], "3.11\n", "{older}");
    let (status, refused) = app.run(native(Some("3.12"))).await;
    assert_eq!((status, &refused["code"]), (400, &json!("unknown_version")));
    assert_eq!(refused["versions"], json!(["3.13", "3.11"]));
    // Both at once.
    let (a, b) = tokio::join!(
        app.run_ok(native(Some("3.13"))),
        app.run_ok(native(Some("<3.13")))
    );
    assert_eq!(
        (&a["stdout"], &b["stdout"]),
        (&json!("3.13\n"), &json!("3.11\n"))
    );
    let (_, languages) = app.get("/languages").await;
    let versions: Vec<&str> = languages["languages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["name"] == "python")
        .map(|l| l["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["3.13", "3.11"]);
    app.stop().await;
}
