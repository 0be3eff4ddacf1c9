//! Every language of the catalogue (`languages/available/`), against the
//! real engine: hello world, stdin, a runtime error, a compile error, a
//! program split across two files; and its limits.

use serde_json::{Value, json};

use crate::helpers::spawn_catalogue_app;

/// What to run in one language, and what it must print.
struct Case {
    language: &'static str,
    hello: &'static str,
    /// Copies stdin to stdout.
    echo: &'static str,
    /// Fails at run time: (code, exit code, a piece of its stderr).
    runtime_error: (&'static str, i64, &'static str),
    /// Does not compile: (code, a piece of the compiler's message).
    compile_error: Option<(&'static str, &'static str)>,
    /// The main file calls `twice(21)` from a second file: (main, name, other).
    two_files: (&'static str, &'static str, &'static str),
}

async fn check(case: Case) {
    let app = spawn_catalogue_app().await;
    let compiled = case.compile_error.is_some();
    let (hello, echo, failure, two) = tokio::join!(
        app.run_in(case.language, case.hello),
        app.run_ok(json!({
            "language": case.language,
            "code": case.echo,
            "stdin": "line one\nline two\n",
        })),
        app.run_in(case.language, case.runtime_error.0),
        app.run_ok(json!({
            "language": case.language,
            "code": case.two_files.0,
            "files": [{"name": case.two_files.1, "content": case.two_files.2}],
        })),
    );
    let language = case.language;
    assert_eq!(hello["status"], "ok", "{language} hello: {hello}");
    assert_eq!(hello["stdout"], "hello\n", "{language} hello: {hello}");
    assert_eq!(hello["output"], "hello\n");
    assert_eq!(
        hello["compile"].is_object(),
        compiled,
        "{language}: {hello}"
    );
    if compiled {
        assert_eq!(hello["compile"]["status"], "ok", "{language}: {hello}");
        assert_eq!(hello["compile"]["exit_code"], 0);
        assert!(hello["compile"]["duration_ms"].is_u64());
    }
    assert_eq!(
        echo["stdout"], "line one\nline two\n",
        "{language} echo: {echo}"
    );
    assert_eq!(
        failure["status"], "runtime_error",
        "{language} failure: {failure}"
    );
    assert_eq!(
        failure["exit_code"], case.runtime_error.1,
        "{language} failure: {failure}"
    );
    let stderr = failure["stderr"].as_str().unwrap();
    assert!(
        stderr.contains(case.runtime_error.2),
        "{language} failure: {failure}"
    );
    assert_eq!(two["stdout"], "42\n", "{language} two files: {two}");

    if let Some((code, message)) = case.compile_error {
        let broken = app.run_in(language, code).await;
        assert_eq!(broken["status"], "compile_error", "{language}: {broken}");
        assert_eq!(broken["compile"]["status"], "runtime_error");
        assert_ne!(broken["compile"]["exit_code"], 0);
        let error = broken["error"].as_str().unwrap();
        assert!(error.contains(message), "{language}: {error}");
        assert_eq!(broken["stdout"], "");
        assert_eq!(broken["exit_code"], Value::Null);
    }
    app.stop().await;
}

#[tokio::test]
async fn javascript() {
    check(Case {
        language: "javascript",
        hello: "console.log('hello')",
        echo: "process.stdout.write(require('fs').readFileSync(0, 'utf8'))",
        runtime_error: ("throw new Error('boom')", 1, "Error: boom"),
        compile_error: None,
        two_files: (
            "const { twice } = require('./util');\nconsole.log(twice(21));",
            "util.js",
            "module.exports = { twice: (x) => 2 * x };",
        ),
    })
    .await;
}

#[tokio::test]
async fn ruby() {
    check(Case {
        language: "ruby",
        hello: "puts 'hello'",
        echo: "print STDIN.read",
        runtime_error: ("raise 'boom'", 1, "boom (RuntimeError)"),
        compile_error: None,
        two_files: (
            "require_relative 'util'\nputs twice(21)",
            "util.rb",
            "def twice(x) = 2 * x",
        ),
    })
    .await;
}

#[tokio::test]
async fn bash() {
    check(Case {
        language: "bash",
        hello: "echo hello",
        echo: "while IFS= read -r line; do echo \"$line\"; done",
        runtime_error: ("echo boom >&2\nexit 3", 3, "boom"),
        compile_error: None,
        two_files: (
            "source ./util.sh\ntwice 21",
            "util.sh",
            "twice() { echo $(( $1 * 2 )); }",
        ),
    })
    .await;
}

#[tokio::test]
async fn c() {
    check(Case {
        language: "c",
        hello: "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }",
        echo: "#include <stdio.h>\nint main(void) { int c; while ((c = getchar()) != EOF) putchar(c); return 0; }",
        runtime_error: (
            "#include <stdio.h>\nint main(void) { fprintf(stderr, \"boom\\n\"); return 3; }",
            3,
            "boom",
        ),
        compile_error: Some(("int main(void) { return x; }", "undeclared")),
        two_files: (
            "#include <stdio.h>\nint twice(int);\nint main(void) { printf(\"%d\\n\", twice(21)); return 0; }",
            "util.c",
            "int twice(int x) { return 2 * x; }",
        ),
    })
    .await;
}

#[tokio::test]
async fn cpp() {
    check(Case {
        language: "cpp",
        hello: "#include <iostream>\nint main() { std::cout << \"hello\" << std::endl; }",
        echo: "#include <iostream>\n#include <string>\nint main() { std::string l; while (std::getline(std::cin, l)) std::cout << l << '\\n'; }",
        runtime_error: (
            "#include <stdexcept>\nint main() { throw std::runtime_error(\"boom\"); }",
            134,
            "boom",
        ),
        compile_error: Some(("int main() { undefined_function(); }", "was not declared")),
        two_files: (
            "#include <iostream>\nint twice(int);\nint main() { std::cout << twice(21) << std::endl; }",
            "util.cpp",
            "int twice(int x) { return 2 * x; }",
        ),
    })
    .await;
}

#[tokio::test]
async fn go() {
    check(Case {
        language: "go",
        hello: "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }",
        echo: "package main\n\nimport (\n\t\"io\"\n\t\"os\"\n)\n\nfunc main() { io.Copy(os.Stdout, os.Stdin) }",
        runtime_error: ("package main\n\nfunc main() { panic(\"boom\") }", 2, "panic: boom"),
        compile_error: Some((
            "package main\n\nfunc main() { x := 1 }",
            "declared and not used",
        )),
        two_files: (
            "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(twice(21)) }",
            "util.go",
            "package main\n\nfunc twice(x int) int { return 2 * x }",
        ),
    })
    .await;
}

#[tokio::test]
async fn java() {
    check(Case {
        language: "java",
        hello: "public class Main { public static void main(String[] a) { System.out.println(\"hello\"); } }",
        echo: "public class Main { public static void main(String[] a) throws Exception { System.in.transferTo(System.out); } }",
        runtime_error: (
            "public class Main { public static void main(String[] a) { throw new RuntimeException(\"boom\"); } }",
            1,
            "java.lang.RuntimeException: boom",
        ),
        compile_error: Some((
            "public class Main { public static void main(String[] a) { int x = 1 } }",
            "';' expected",
        )),
        two_files: (
            "public class Main { public static void main(String[] a) { System.out.println(Util.twice(21)); } }",
            "Util.java",
            "class Util { static int twice(int x) { return 2 * x; } }",
        ),
    })
    .await;
}

#[tokio::test]
async fn rust() {
    check(Case {
        language: "rust",
        hello: "fn main() { println!(\"hello\"); }",
        echo: "fn main() { std::io::copy(&mut std::io::stdin(), &mut std::io::stdout()).unwrap(); }",
        runtime_error: ("fn main() { panic!(\"boom\"); }", 101, "boom"),
        compile_error: Some((
            "fn main() { let x: i32 = \"text\"; }",
            "mismatched types",
        )),
        two_files: (
            "mod util;\nfn main() { println!(\"{}\", util::twice(21)); }",
            "util.rs",
            "pub fn twice(x: i32) -> i32 { 2 * x }",
        ),
    })
    .await;
}

#[tokio::test]
async fn multi_file() {
    // Judge0's multi-file program: the code is its `run` script, and a
    // `compile` script among the files runs first, both with bash.
    let app = spawn_catalogue_app().await;
    let makefile = "all: twice hello\ntwice: twice.c\n\tgcc -O2 -o twice twice.c\n\
                    hello: hello.cpp\n\tg++ -O2 -o hello hello.cpp\n";
    let built = app
        .run_ok(json!({
            "language": "multi-file",
            "code": "./twice 21\n./hello\npython3 -c 'print(input()[::-1])'\n",
            "stdin": "olleh",
            "files": [
                {"name": "compile", "content": "make"},
                {"name": "Makefile", "content": makefile},
                {"name": "twice.c", "content": "#include <stdio.h>\n#include <stdlib.h>\nint main(int c, char **v) { printf(\"%d\\n\", 2 * atoi(v[1])); }"},
                {"name": "hello.cpp", "content": "#include <iostream>\nint main() { std::cout << \"hello\" << std::endl; }"},
            ],
        }))
        .await;
    assert_eq!(built["status"], "ok", "{built}");
    assert_eq!(built["stdout"], "42\nhello\nhello\n", "{built}");
    assert_eq!(built["compile"]["status"], "ok", "{built}");
    assert!(
        built["compile"]["stdout"]
            .as_str()
            .unwrap()
            .contains("g++ -O2 -o hello hello.cpp"),
        "{built}"
    );
    // No compile script: the compile stage does nothing, and run runs.
    let (plain, failure) = tokio::join!(
        app.run_in("multi-file", "echo hello"),
        app.run_in("multi-file", "echo boom >&2\nexit 3"),
    );
    assert_eq!(
        (&plain["status"], &plain["stdout"]),
        (&json!("ok"), &json!("hello\n")),
        "{plain}"
    );
    assert_eq!(
        (&failure["status"], &failure["exit_code"]),
        (&json!("runtime_error"), &json!(3)),
        "{failure}"
    );
    assert_eq!(failure["stderr"], "boom\n");
    let broken = app
        .run_ok(json!({
            "language": "multi-file",
            "code": "./main",
            "files": [
                {"name": "compile", "content": "gcc -o main main.c"},
                {"name": "main.c", "content": "int main( { }"},
            ],
        }))
        .await;
    assert_eq!(broken["status"], "compile_error", "{broken}");
    assert!(
        broken["error"].as_str().unwrap().contains("error"),
        "{broken}"
    );
    assert_eq!(broken["exit_code"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn python_two_files_and_a_package() {
    let app = spawn_catalogue_app().await;
    let answer = app
        .run_ok(json!({
            "language": "python",
            "code": "import util\nfrom pkg.deep import three\nprint(util.twice(21), three())",
            "files": [
                {"name": "util.py", "content": "def twice(x):\n    return 2 * x\n"},
                {"name": "pkg/deep.py", "content": "def three():\n    return 3\n"},
            ],
        }))
        .await;
    assert_eq!(answer["stdout"], "42 3\n", "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_java_memory_bomb_ends_as_memory_limit() {
    let app = spawn_catalogue_app().await;
    let answer = app
        .run_in(
            "java",
            "import java.util.*;\npublic class Main { public static void main(String[] a) { List<byte[]> l = new ArrayList<>(); while (true) l.add(new byte[1 << 20]); } }",
        )
        .await;
    assert_eq!(answer["status"], "memory_limit", "{answer}");
    assert_eq!(answer["compile"]["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn a_c_busy_loop_ends_as_timeout() {
    let app = spawn_catalogue_app().await;
    let answer = app
        .run_ok(json!({
            "language": "c",
            "code": "#include <stdio.h>\nint main(void) { volatile unsigned long n = 0; puts(\"spinning\"); fflush(stdout); for (;;) n++; }",
            "timeout_ms": 1000,
        }))
        .await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert_eq!(answer["stdout"], "spinning\n");
    let ms = answer["duration_ms"].as_u64().unwrap();
    assert!((1000..2000).contains(&ms), "{ms}");
    app.stop().await;
}

#[tokio::test]
async fn a_c_fork_bomb_is_contained() {
    let app = spawn_catalogue_app().await;
    let answer = app
        .run_ok(json!({
            "language": "c",
            "code": "#include <unistd.h>\nint main(void) { for (;;) fork(); }",
            "timeout_ms": 2000,
        }))
        .await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    let benign = app
        .run_in(
            "c",
            "#include <stdio.h>\nint main(void) { puts(\"fine\"); }",
        )
        .await;
    assert_eq!(benign["stdout"], "fine\n");
    app.stop().await;
}
