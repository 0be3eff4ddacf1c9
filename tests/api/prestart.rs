//! Pre-started interpreters: a program run by a pooled sandbox whose
//! interpreter was started before the program existed answers exactly as
//! one run by a cold sandbox (the language's run command started with the
//! program there): over a corpus of python and javascript programs —
//! tracebacks, argv, `__file__`, `process.argv`, exit codes, uncaught
//! exceptions, stdin reads, extra files, children — and the attacks of the
//! red-team suite that end at a limit.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, language_file, spawn_app_with_languages};

/// A server with python and javascript; pooled and pre-started, or cold.
async fn app(prestarted: bool) -> TestApp {
    spawn_app_with_languages(
        vec![
            ("python.toml".to_string(), language_file("python.toml")),
            (
                "javascript.toml".to_string(),
                language_file("available/javascript.toml"),
            ),
        ],
        move |c| {
            c.pool.size = if prestarted { 1 } else { 0 };
            c.pool.memory_mb = if prestarted { 64 } else { 0 };
            c.pool.prestart = prestarted;
        },
    )
    .await
}

/// Runs `body` on `app`; when `pooled`, first waits for a waiting sandbox
/// of its language and checks that the run was served from the pool.
async fn run(app: &TestApp, body: &Value, pooled: bool) -> Value {
    let language = body["language"].as_str().unwrap();
    if pooled {
        let start = Instant::now();
        while app.get("/ready").await.1["pool"][language]
            .as_u64()
            .unwrap_or(0)
            == 0
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no pooled {language}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let response = app
        .client
        .post(app.url("/run-code"))
        .json(body)
        .send()
        .await
        .unwrap();
    let hit = response.headers()["x-code-runner-pool"] == "hit";
    assert_eq!(hit, pooled, "{body}");
    response.json().await.unwrap()
}

/// What must be the same either way.
fn outcome(answer: &Value) -> Value {
    json!([
        answer["status"],
        answer["exit_code"],
        answer["signal"],
        answer["stdout"],
        answer["stderr"],
        answer["limit"]
    ])
}

fn python(code: &str, extra: Value) -> Value {
    let mut body = json!({"language": "python", "code": code});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn javascript(code: &str, extra: Value) -> Value {
    let mut body = json!({"language": "javascript", "code": code});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn corpus() -> Vec<Value> {
    let none = json!({});
    vec![
        // Python: argv, __file__, __name__, the path, the environment.
        python(
            "import os, sys\nprint(sys.argv, __file__, __name__, sys.path[0], os.getcwd())\nprint(sorted(k for k in os.environ if 'CODE_RUNNER' in k or k == 'PYTHONPATH'))\nprint([p for p in sys.path if 'code-runner' in p], 'sitecustomize' in sys.modules)",
            json!({"args": ["a", "b c", "", "--flag"]}),
        ),
        // A traceback through a function, and its exit status.
        python(
            "def f(n):\n    return 10 // n\n\ndef g():\n    return f(0)\n\ng()\n",
            none.clone(),
        ),
        python("raise SystemExit(3)", none.clone()),
        python("import sys\nsys.exit('bye')", none.clone()),
        python(
            "import os\nprint('x', flush=True)\nos._exit(5)",
            none.clone(),
        ),
        python("raise KeyboardInterrupt", none.clone()),
        // stdin: read whole, line by line, and at its end.
        python(
            "import sys\nprint(repr(sys.stdin.readline()))\nprint(repr(sys.stdin.read()))",
            json!({"stdin": "first\nsecond\n\u{e9}\n"}),
        ),
        python("input()", none.clone()),
        // An extra file imported, a module run as a child.
        python(
            "import util, subprocess, sys\nprint(util.twice(21))\nprint(subprocess.run([sys.executable, 'util.py', 'x'], capture_output=True, text=True).stdout, end='')",
            json!({"files": [{"name": "util.py", "content": "import sys\ndef twice(x):\n    return 2 * x\nif __name__ == '__main__':\n    print('child', sys.argv)\n"}]}),
        ),
        python(
            "import warnings\nwarnings.warn('careful')\nprint('after')",
            none.clone(),
        ),
        // Limits.
        python("while True: pass", json!({"timeout_ms": 800})),
        python(
            "a = []\nwhile True: a.append(bytearray(16 << 20))",
            none.clone(),
        ),
        python("while True: print('x' * 1000)", none.clone()),
        python(
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
            json!({"timeout_ms": 2000}),
        ),
        python(
            "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
            none.clone(),
        ),
        python(
            "import os, sys, time\nos.close(1)\nos.close(2)\nwhile True: time.sleep(0.1)",
            json!({"timeout_ms": 800}),
        ),
        // JavaScript: argv, the main module, the environment.
        javascript(
            "console.log(process.argv.slice(1), __filename, require.main === module, process.execArgv, Object.keys(process.env).filter(k => k.includes('CODE_RUNNER')))",
            json!({"args": ["a", "b c", ""]}),
        ),
        // An uncaught exception's stack, and exits.
        javascript(
            "function f() { null.x; }\nfunction g() { f(); }\ng();",
            none.clone(),
        ),
        javascript("process.exitCode = 4; console.log('set')", none.clone()),
        javascript("console.error('bad'); process.exit(7)", none.clone()),
        javascript(
            "Promise.reject(new Error('nobody caught me'))",
            none.clone(),
        ),
        javascript(
            "let s = ''; process.stdin.on('data', d => s += d); process.stdin.on('end', () => console.log(JSON.stringify(s)))",
            json!({"stdin": "line one\nline two"}),
        ),
        javascript(
            "const u = require('./util'); console.log(u.twice(21)); console.log(require('child_process').execFileSync(process.execPath, ['util.js', 'x']).toString().trim())",
            json!({"files": [{"name": "util.js", "content": "exports.twice = x => 2 * x;\nif (require.main === module) console.log('child', process.argv.slice(2));\n"}]}),
        ),
        javascript("while (true) {}", json!({"timeout_ms": 800})),
        javascript(
            "const a = []; while (true) a.push(Buffer.alloc(16 << 20, 1));",
            none.clone(),
        ),
    ]
}

#[tokio::test]
async fn a_prestarted_interpreter_answers_exactly_as_a_cold_one() {
    let (warm, cold) = tokio::join!(app(true), app(false));
    let mut checked = 0;
    for body in corpus() {
        let prestarted = run(&warm, &body, true).await;
        let started_cold = run(&cold, &body, false).await;
        assert_eq!(
            outcome(&prestarted),
            outcome(&started_cold),
            "{body}\nprestarted: {prestarted}\ncold: {started_cold}"
        );
        checked += 1;
    }
    assert_eq!(checked, 25);
    warm.stop().await;
    cold.stop().await;
}

/// The traces a pre-started interpreter leaves, as a program sees them:
/// for python the kernel's copy of its first environment, the hook module
/// and its start time; for node its first environment and command line.
const TRACES_PY: &str = "import os, sys\nenv = open('/proc/self/environ', 'rb').read().split(b'\\0')\nfor e in env:\n    if b'CODE_RUNNER' in e or b'.code-runner' in e:\n        print(e.decode())\nprint('os.environ', sorted(k for k in os.environ if 'CODE_RUNNER' in k or '.code-runner' in os.environ[k]))\nprint('sitecustomize', getattr(sys.modules.get('sitecustomize'), '__file__', None))\nprint('sys.path', [p for p in sys.path if '.code-runner' in p])\n";
const TRACES_JS: &str = "const fs = require('fs');\nfor (const e of fs.readFileSync('/proc/self/environ', 'latin1').split('\\0')) if (e.includes('CODE_RUNNER')) console.log(e);\nconsole.log(fs.readFileSync('/proc/self/cmdline', 'latin1').split('\\0').filter(a => a.includes('.code-runner')).join(' '));\nconsole.log('process.env', Object.keys(process.env).filter(k => k.includes('CODE_RUNNER')));\nconsole.log('execArgv', process.execArgv);\n";

#[tokio::test]
async fn the_traces_a_prestarted_interpreter_leaves_are_the_ones_the_docs_name() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/performance.md"))
        .unwrap()
        .replace('\n', " ");
    let app = app(true).await;
    let py = run(&app, &python(TRACES_PY, json!({})), true).await;
    // (Debian's python has a sitecustomize of its own, which the hook
    // loads in its place.)
    let js = run(&app, &javascript(TRACES_JS, json!({})), true).await;
    assert_eq!(
        py["stdout"],
        "CODE_RUNNER_PRESTART=3:4\nCODE_RUNNER_PRESTART_PYTHONPATH=\nPYTHONPATH=/.code-runner/prestart/python\nos.environ []\nsitecustomize /usr/lib/python3.13/sitecustomize.py\nsys.path []\n",
        "{py}"
    );
    assert_eq!(
        js["stdout"],
        "CODE_RUNNER_PRESTART=3:4\n/.code-runner/prestart/node.js\nprocess.env []\nexecArgv []\n",
        "{js}"
    );
    // Each trace left is named in docs/performance.md, which says so.
    for trace in [
        "`/proc/self/environ`",
        "`CODE_RUNNER_PRESTART=3:4`",
        "`CODE_RUNNER_PRESTART_PYTHONPATH=`",
        "`PYTHONPATH=/.code-runner/prestart/python`",
        "`sys.modules['sitecustomize']`",
        "`/proc/self/cmdline`",
        "`-r /.code-runner/prestart/node.js`",
        "`/proc/self/stat`",
    ] {
        assert!(
            docs.contains(trace),
            "docs/performance.md does not name {trace}"
        );
    }
    assert!(
        !docs.contains("every trace"),
        "docs/performance.md overstates"
    );
    app.stop().await;
}
