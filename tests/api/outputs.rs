//! Files back from a run (`outputs`), against the real engine: a python
//! program's files by path, folder and glob, pooled (pre-started) and
//! cold, links and FIFOs never followed; the caps as omissions of an `ok`
//! run; a compiled program's files and each test's of a batch; the files
//! of a run stopped at its time limit; a Matplotlib plot as a PNG from the
//! catalogue's `python-data`; and patterns that are refused, before any
//! container.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{TestApp, language_file, pooled, spawn_app_with, spawn_app_with_languages};

/// Writes a tree of files, a link out of the working directory, a FIFO
/// and a file that no pattern names.
const WRITER: &str = r#"import os
os.makedirs('out/deep', exist_ok=True)
open('out/a.txt', 'w').write('alpha\n')
open('out/deep/b.bin', 'wb').write(bytes(range(256)))
open('table.csv', 'w').write('x,y\n1,2\n')
open('notes.md', 'w').write('# not asked for\n')
os.symlink('/etc/passwd', 'out/passwd')
os.mkfifo('out/pipe')
print('written')
"#;

fn decoded(file: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(file["content"].as_str().unwrap())
        .unwrap()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect()
}

async fn check_writer(app: &TestApp, label: &str) {
    let answer = app
        .run_ok(
            json!({"language": "python", "code": WRITER, "outputs": ["out", "*.csv", "nothing*"]}),
        )
        .await;
    assert_eq!(answer["status"], "ok", "{label}: {answer}");
    assert_eq!(answer["stdout"], "written\n", "{label}: {answer}");
    let files = &answer["files"];
    assert_eq!(
        names(files),
        ["out/a.txt", "out/deep/b.bin", "table.csv"],
        "{label}: {answer}"
    );
    assert_eq!(decoded(&files[0]), b"alpha\n");
    assert_eq!(files[0]["size"], 6);
    assert_eq!(files[0]["media_type"], "text/plain");
    assert_eq!(decoded(&files[1]), (0..=255).collect::<Vec<u8>>());
    assert_eq!(files[1]["media_type"], "application/octet-stream");
    assert_eq!(files[2]["media_type"], "text/csv");
    let omitted: Vec<(&str, &str)> = answer["omitted_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        omitted,
        [("out/passwd", "symlink"), ("out/pipe", "not_a_file")],
        "{label}: {answer}"
    );
}

#[tokio::test]
async fn a_runs_files_come_back_by_path_folder_and_glob_and_links_stay_unfollowed() {
    let cold = spawn_app_with(|_| {}).await;
    let pooled_app = spawn_app_with(|c| pooled(c, 1)).await;
    tokio::join!(
        check_writer(&cold, "cold"),
        check_writer(&pooled_app, "pooled")
    );
    // A run that asks for nothing gets no files fields.
    let plain = cold.python("open('x.txt', 'w').write('x')").await;
    assert!(plain.get("files").is_none(), "{plain}");
    assert!(plain.get("omitted_files").is_none(), "{plain}");
    cold.stop().await;
    pooled_app.stop().await;
}

#[tokio::test]
async fn past_the_caps_files_are_listed_as_omitted_and_the_run_is_ok() {
    let app = spawn_app_with(|c| {
        c.requests.max_output_files = 3;
        c.requests.max_output_bytes = 10;
    })
    .await;
    // In the order of their names: a and b fit (8 bytes), c would pass
    // the bytes, d fits (9 bytes, the third file), e would pass the count.
    let code = "for name, size in [('a', 4), ('b', 4), ('c', 20), ('d', 1), ('e', 1)]:\n    open(name + '.txt', 'w').write('x' * size)\n";
    let answer = app
        .run_ok(json!({"language": "python", "code": code, "outputs": ["*.txt"]}))
        .await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(
        names(&answer["files"]),
        ["a.txt", "b.txt", "d.txt"],
        "{answer}"
    );
    let omitted: Vec<(&str, &str, u64)> = answer["omitted_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let name = o["name"].as_str().unwrap();
            (
                name,
                o["reason"].as_str().unwrap(),
                o["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        omitted,
        [("c.txt", "max_bytes", 20), ("e.txt", "max_files", 1)],
        "{answer}"
    );
    // A batch's tests share the request's bytes: two tests, 5 bytes each.
    let batch = app
        .run_ok(json!({
            "language": "python",
            "code": "open('out.txt', 'w').write('x' * 6)\nprint('ok')",
            "outputs": ["out.txt"],
            "tests": [{"expected_output": "ok"}, {"expected_output": "ok"}],
        }))
        .await;
    for test in batch["tests"].as_array().unwrap() {
        assert_eq!(test["omitted_files"][0]["reason"], "max_bytes", "{batch}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_compiled_program_and_each_test_of_a_batch_bring_their_files_back() {
    let c = language_file("available/c.toml");
    let app = spawn_app_with_languages(vec![("c.toml".into(), c)], |_| {}).await;
    let code = r#"#include <stdio.h>
int main(void) {
    int n;
    if (scanf("%d", &n) != 1) n = 0;
    FILE *f = fopen("result.txt", "w");
    fprintf(f, "%d\n", n * n);
    fclose(f);
    printf("%d\n", n);
    return 0;
}
"#;
    let answer = app
        .run_ok(json!({"language": "c", "code": code, "stdin": "7", "outputs": ["result.txt"]}))
        .await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(decoded(&answer["files"][0]), b"49\n", "{answer}");
    assert!(answer["compile"].get("files").is_none(), "{answer}");
    let batch = app
        .run_ok(json!({
            "language": "c",
            "code": code,
            "outputs": ["result.txt"],
            "tests": [{"stdin": "2", "expected_output": "2"}, {"stdin": "3", "expected_output": "3"}],
        }))
        .await;
    assert_eq!(batch["status"], "ok", "{batch}");
    for (test, square) in batch["tests"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["4\n", "9\n"])
    {
        assert_eq!(decoded(&test["files"][0]), square.as_bytes(), "{batch}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_run_stopped_at_its_time_limit_still_brings_back_what_it_wrote() {
    let app = spawn_app_with(|_| {}).await;
    let code = "open('progress.log', 'w').write('step 1\\n')\nwhile True:\n    pass\n";
    let answer = app
        .run_ok(
            json!({"language": "python", "code": code, "timeout_ms": 1500, "outputs": ["*.log"]}),
        )
        .await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert_eq!(decoded(&answer["files"][0]), b"step 1\n", "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_matplotlib_plot_comes_back_as_a_png() {
    let files = vec![(
        "python-data.toml".to_string(),
        language_file("available/python-data.toml"),
    )];
    let app = spawn_app_with_languages(files, |_| {}).await;
    let code = r#"import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
frame = pd.DataFrame({"x": np.arange(10), "y": np.arange(10) ** 2})
frame.plot(x="x", y="y")
plt.savefig("plot.png")
print(frame["y"].sum(), plt.get_backend())
"#;
    let answer = app
        .run_ok(json!({"language": "python-data", "code": code, "outputs": ["*.png"]}))
        .await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["stdout"], "285 Agg\n", "{answer}");
    let plot = &answer["files"][0];
    assert_eq!(plot["name"], "plot.png");
    assert_eq!(plot["media_type"], "image/png");
    let bytes = decoded(plot);
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG's signature");
    assert!(bytes.len() > 1000, "{} bytes", bytes.len());
    app.stop().await;
}

#[tokio::test]
async fn patterns_out_of_the_working_directory_are_refused_before_any_container() {
    let app = spawn_app_with(|_| {}).await;
    for pattern in ["../etc/passwd", "/etc/passwd", "out/../../x", "a\nb", ""] {
        let (status, answer) = app
            .run(json!({"language": "python", "code": "print(1)", "outputs": [pattern]}))
            .await;
        assert_eq!(status, 400, "{pattern:?}: {answer}");
        assert_eq!(answer["field"], "outputs", "{pattern:?}: {answer}");
    }
    let many: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
    let (status, answer) = app
        .run(json!({"language": "python", "code": "print(1)", "outputs": many}))
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["field"], "outputs", "{answer}");
    // Within the count, over 16 KiB together.
    let long: Vec<String> = (0..20).map(|i| format!("{i}{}", "x".repeat(999))).collect();
    let (status, answer) = app
        .run(json!({"language": "python", "code": "print(1)", "outputs": long}))
        .await;
    assert_eq!(
        (status, &answer["field"]),
        (413, &json!("outputs")),
        "{answer}"
    );
    assert!(app.containers().await.is_empty());
    app.stop().await;
}
