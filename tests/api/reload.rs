//! Language files dropped into, changed in or removed from a running
//! server's folder take effect without a restart.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, language_file, spawn_app_with_languages};

async fn python_only() -> TestApp {
    spawn_app_with_languages(
        vec![("python.toml".to_string(), language_file("python.toml"))],
        |c| c.reload_interval_ms = 200,
    )
    .await
}

fn folder(app: &TestApp) -> &Path {
    app.languages.as_ref().unwrap().path()
}

/// Polls `/languages` until `check` holds, for at most 3 s.
async fn wait_for_languages(app: &TestApp, check: impl Fn(&[String]) -> bool) -> Vec<String> {
    let start = Instant::now();
    loop {
        let (_, body) = app.get("/languages").await;
        let names: Vec<String> = body["languages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect();
        if check(&names) {
            return names;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "languages stayed {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_dropped_in_file_is_served_without_a_restart() {
    let app = python_only().await;
    let (status, body) = app.run(json!({"language": "ruby", "code": "puts 1"})).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (400, "unknown_language")
    );
    std::fs::write(
        folder(&app).join("ruby.toml"),
        language_file("available/ruby.toml"),
    )
    .unwrap();
    let names = wait_for_languages(&app, |n| n.contains(&"ruby".to_string())).await;
    assert_eq!(names, ["python", "ruby"]);
    let answer = app
        .run_ok(json!({"language": "rb", "code": "puts 6 * 7"}))
        .await;
    assert_eq!(answer["stdout"], "42\n");
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_broken_file_is_refused_and_the_good_languages_stay_served() {
    let app = python_only().await;
    std::fs::write(
        folder(&app).join("ruby.toml"),
        language_file("available/ruby.toml").replace("[limits]", "colour = \"red\"\n[limits]"),
    )
    .unwrap();
    // A file taking python's alias is refused too.
    std::fs::write(
        folder(&app).join("snake.toml"),
        crate::helpers::language_file_base("python.toml")
            .replace("name = \"python\"", "name = \"snake\""),
    )
    .unwrap();
    // A good file written after them: once it is served, the watcher has
    // seen the broken ones.
    std::fs::write(
        folder(&app).join("bash.toml"),
        language_file("available/bash.toml"),
    )
    .unwrap();
    let names = wait_for_languages(&app, |n| n.contains(&"bash".to_string())).await;
    assert_eq!(names, ["bash", "python"]);
    let answer = app.python("print('still here')").await;
    assert_eq!(answer["stdout"], "still here\n");
    // Breaking python's own file keeps its good version; the removal of
    // bash beside it shows when the watcher has looked.
    std::fs::write(
        folder(&app).join("python.toml"),
        "name = \"python\"\nbroken",
    )
    .unwrap();
    std::fs::remove_file(folder(&app).join("bash.toml")).unwrap();
    let names = wait_for_languages(&app, |n| !n.contains(&"bash".to_string())).await;
    assert_eq!(names, ["python"]);
    let answer = app.python("print('kept')").await;
    assert_eq!(answer["stdout"], "kept\n");
    app.stop().await;
}

#[tokio::test]
async fn a_changed_file_takes_effect_and_a_removed_one_is_withdrawn() {
    let app = python_only().await;
    std::fs::write(
        folder(&app).join("bash.toml"),
        language_file("available/bash.toml"),
    )
    .unwrap();
    wait_for_languages(&app, |n| n.contains(&"bash".to_string())).await;
    std::fs::write(
        folder(&app).join("bash.toml"),
        language_file("available/bash.toml").replace("memory_mb = 128", "memory_mb = 96"),
    )
    .unwrap();
    let start = Instant::now();
    loop {
        let (_, body) = app.get("/languages").await;
        let bash: Vec<&Value> = body["languages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["name"] == "bash")
            .collect();
        if bash[0]["limits"]["memory_mb"] == 96 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the change was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_file(folder(&app).join("bash.toml")).unwrap();
    wait_for_languages(&app, |n| !n.contains(&"bash".to_string())).await;
    let (status, body) = app
        .run(json!({"language": "bash", "code": "echo hi"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (400, "unknown_language")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_run_in_flight_is_not_disturbed_by_its_file_being_removed() {
    let app = python_only().await;
    let run = app.python("import time\ntime.sleep(1.2)\nprint('finished')");
    let remove = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::remove_file(folder(&app).join("python.toml")).unwrap();
        wait_for_languages(&app, |n| n.is_empty()).await;
    };
    let (answer, ()) = tokio::join!(run, remove);
    assert_eq!(answer["stdout"], "finished\n");
    app.stop().await;
}

#[tokio::test]
async fn each_version_of_a_language_reloads_with_its_own_file() {
    let app = python_only().await;
    let versions = |body: &Value| -> Vec<String> {
        body["languages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{}-{}",
                    l["name"].as_str().unwrap(),
                    l["version"].as_str().unwrap()
                )
            })
            .collect()
    };
    let wait_for = |expected: &'static [&'static str]| {
        let app = &app;
        async move {
            let start = Instant::now();
            loop {
                let (_, body) = app.get("/languages").await;
                if versions(&body) == expected {
                    return;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(3),
                    "languages stayed {:?}",
                    versions(&body)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    std::fs::write(
        folder(&app).join("python-3.11.toml"),
        language_file("available/python-3.11.toml"),
    )
    .unwrap();
    wait_for(&["python-3.13", "python-3.11"]).await;
    let code = "import sys\nprint(sys.version_info[1])";
    let older = app
        .run_ok(json!({"language": "python", "version": "3.11", "code": code}))
        .await;
    assert_eq!(older["stdout"], "11\n", "{older}");
    // A second file with the same name and version is refused, naming both
    // files, and the folder as it was stays served.
    std::fs::write(
        folder(&app).join("python-copy.toml"),
        language_file("available/python-3.11.toml"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, body) = app.get("/languages").await;
    assert_eq!(versions(&body), ["python-3.13", "python-3.11"]);
    std::fs::remove_file(folder(&app).join("python-copy.toml")).unwrap();
    // Removing one version's file leaves the other.
    std::fs::remove_file(folder(&app).join("python.toml")).unwrap();
    wait_for(&["python-3.11"]).await;
    let newest = app.run_ok(json!({"language": "py", "code": code})).await;
    assert_eq!(newest["stdout"], "11\n", "{newest}");
    app.stop().await;
}
