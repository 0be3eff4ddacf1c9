//! Files and streams as users have them, against the real engine: a C
//! build whose files are named with spaces, quotes, `$`, `;`, `*` and
//! accents, compiled, linked and read through each dialect (`/run-code`'s
//! `files`, Piston's `files`, Judge0's zip); and Judge0's
//! `redirect_stderr_to_stdout` as one stream in the order of the writes,
//! exactly as `2>&1` gives it, under the output cap, with the streams
//! kept apart when it is not asked.

use std::io::Write;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{TestApp, pooled};
use crate::judge0::judge0_app;

/// The main source: it includes the helper's header, calls a function of
/// each other source (linked with it) and reads the data file.
const MAIN: &str = r#"#include <stdio.h>
#include "helper functions.h"
int main(void) {
    FILE *f = fopen("input data/l'été 2024.txt", "r");
    if (!f) { perror("input data/l'été 2024.txt"); return 1; }
    int a, b;
    if (fscanf(f, "%d %d", &a, &b) != 2) return 2;
    printf("%d %s\n", add(a, b), shout());
    return 0;
}
"#;

/// The other files: (name, content).
const FILES: [(&str, &str); 4] = [
    (
        "helper functions.h",
        "int add(int a, int b);\nconst char *shout(void);\n",
    ),
    (
        "helper functions.c",
        "#include \"helper functions.h\"\nint add(int a, int b) { return a + b; }\n",
    ),
    (
        "ça va; $HOME * 'x' \"y\".c",
        "const char *shout(void) { return \"linked\"; }\n",
    ),
    ("input data/l'été 2024.txt", "20 22\n"),
];

/// What the program prints when every file arrived under its name.
const PRINTED: &str = "42 linked\n";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// [`FILES`] as a zip, with UTF-8 names.
fn zipped() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in FILES {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Posts a Judge0 submission and waits for its result (every field).
async fn judge0(app: &TestApp, body: Value) -> Value {
    let (status, answer) = app
        .post("/judge0/submissions?wait=true&fields=*", &body)
        .await;
    assert_eq!(status, 201, "{answer}");
    answer
}

#[tokio::test]
async fn a_c_build_whose_files_are_named_as_users_name_them_compiles_links_and_reads_them() {
    let app = judge0_app(None, |_| {}).await;
    let files: Vec<Value> = (FILES.iter())
        .map(|(name, content)| json!({"name": name, "content": content}))
        .collect();
    let answer = app
        .run_ok(json!({"language": "c", "code": MAIN, "files": files}))
        .await;
    assert_eq!(
        (&answer["status"], &answer["stdout"]),
        (&json!("ok"), &json!(PRINTED)),
        "{answer}"
    );

    let mut piston = vec![json!({"name": "main.c", "content": MAIN})];
    piston.extend(files.iter().cloned());
    let (status, answer) = app
        .post(
            "/api/v2/execute",
            &json!({"language": "c", "version": "*", "files": piston}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["compile"]["code"], &answer["run"]["stdout"]),
        (&json!(0), &json!(PRINTED)),
        "{answer}"
    );

    let answer = judge0(
        &app,
        json!({"source_code": MAIN, "language_id": 50, "additional_files": b64(&zipped())}),
    )
    .await;
    assert_eq!(
        (&answer["status"]["id"], &answer["stdout"]),
        (&json!(3), &json!(PRINTED)),
        "{answer}"
    );

    // A name that a compiler would read as an argument file is refused,
    // in each dialect, before any container.
    let answer = app
        .run(json!({"language": "c", "code": MAIN, "files": [{"name": "@x.c", "content": "-v"}]}))
        .await;
    assert_eq!(
        (answer.0, &answer.1["field"]),
        (400, &json!("files")),
        "{answer:?}"
    );
    app.stop().await;
}

/// A C program that alternates `write`s to stdout and stderr, then a
/// child (the shell) writing to both, then stdio's own streams.
const ALTERNATING_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    char line[32];
    for (int i = 0; i < 500; i++) {
        int n = snprintf(line, sizeof line, "out %d\n", i);
        if (write(1, line, n) != n) return 1;
        n = snprintf(line, sizeof line, "err %d\n", i);
        if (write(2, line, n) != n) return 1;
    }
    if (system("echo child out; echo child err >&2") != 0) return 1;
    fprintf(stderr, "stdio err\n");
    printf("stdio out\n");
    return 0;
}
"#;

/// The same in python, flushed after each print.
const ALTERNATING_PY: &str = "import sys, subprocess
for i in range(500):
    print('out', i, flush=True)
    print('err', i, file=sys.stderr, flush=True)
subprocess.run(['sh', '-c', 'echo child out; echo child err >&2'], check=True)
sys.stderr.write('stdio err\\n')
print('stdio out')
";

/// What [`ALTERNATING_C`] and [`ALTERNATING_PY`] write: (both in the
/// order written, stdout's alone, stderr's alone).
fn alternating() -> (String, String, String) {
    let (mut both, mut out, mut err) = (String::new(), String::new(), String::new());
    for i in 0..500 {
        both.push_str(&format!("out {i}\nerr {i}\n"));
        out.push_str(&format!("out {i}\n"));
        err.push_str(&format!("err {i}\n"));
    }
    both.push_str("child out\nchild err\nstdio err\nstdio out\n");
    out.push_str("child out\nstdio out\n");
    err.push_str("child err\nstdio err\n");
    (both, out, err)
}

#[tokio::test]
async fn judge0s_redirect_stderr_to_stdout_is_one_stream_in_the_order_of_the_writes() {
    // Pooled, so that python's pre-started sandbox waits (and is passed
    // over: its program's stderr cannot become its stdout).
    let app = judge0_app(None, |c| pooled(c, 1)).await;
    let (both, out, err) = alternating();
    for (code, language) in [(ALTERNATING_C, 50), (ALTERNATING_PY, 71)] {
        let answer = judge0(
            &app,
            json!({"source_code": code, "language_id": language, "redirect_stderr_to_stdout": true}),
        )
        .await;
        assert_eq!(answer["status"]["id"], 3, "{answer}");
        assert_eq!(answer["stdout"], both, "{language}");
        assert_eq!(answer["stderr"], Value::Null, "{language}");
        let answer = judge0(&app, json!({"source_code": code, "language_id": language})).await;
        assert_eq!(
            (&answer["stdout"], &answer["stderr"]),
            (&json!(out), &json!(err)),
            "{language}: apart unless asked"
        );
    }
    // The output cap holds on the merged stream: a flood on stderr alone
    // fills stdout up to max_file_size, and stops there.
    let flood = "import sys\nwhile True: sys.stderr.write('e' * 1000)";
    let answer = judge0(
        &app,
        json!({"source_code": flood, "language_id": 71, "max_file_size": 16, "redirect_stderr_to_stdout": true}),
    )
    .await;
    assert_eq!(
        (&answer["status"]["id"], &answer["exit_signal"]),
        (&json!(8), &json!(25)),
        "{answer}"
    );
    assert_eq!(answer["stdout"], "e".repeat(16 * 1024));
    assert_eq!(answer["stderr"], Value::Null);
    app.stop().await;
}
