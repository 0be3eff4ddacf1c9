//! Security review 3's L1, L2 and L7, each written as the attack against
//! the real server: compiler options that hand options on to the linker,
//! assembler or preprocessor or make the compiler load code; a Java upload
//! that carries its own annotation processor; a batch whose build is larger
//! than a run's scratch space; and a keys file changed while the service
//! runs.

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{TestApp, language_file, spawn_app_with, spawn_app_with_languages};

/// Python, C, C++ and Java (whose files carry Judge0's ids 71, 50, 52, 62),
/// with Judge0's storage off (its `wait=true` answers).
async fn compiled_app() -> TestApp {
    let files = [
        ("python.toml", "python.toml"),
        ("c.toml", "available/c.toml"),
        ("cpp.toml", "available/cpp.toml"),
        ("java.toml", "available/java.toml"),
    ];
    let files = files
        .iter()
        .map(|(name, shipped)| (name.to_string(), language_file(shipped)))
        .collect();
    spawn_app_with_languages(files, |_| {}).await
}

/// A Judge0 submission, waited for; the status and the answer (every
/// field).
async fn judge0(app: &TestApp, body: Value) -> (u16, Value) {
    app.post("/judge0/submissions?wait=true&fields=*", &body)
        .await
}

const C_VALUE: &str = "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", VALUE); return 0; }";

#[tokio::test]
async fn compiler_options_that_pass_options_on_or_load_code_are_refused_naming_them() {
    let app = compiled_app().await;
    // Each would reach gcc as one argument of its own. `-W*` once let the
    // first three through: `-Wl,-plugin,/work/p.so` has ld load a shared
    // object the request uploads, `-Wp,-fplugin=…` has cc1 do so.
    let refused = [
        "-Wl,-plugin,/work/p.so",
        "-Wp,-fplugin=/work/p.so",
        "-Wa,-adhln=/work/listing",
        "-Xlinker",
        "-Xassembler",
        "-Xpreprocessor",
        "-fplugin=/work/p.so",
        "-B/work",
        "-wrapper",
        "@/work/options",
        "-specs=/work/specs",
        "-imacros",
        "-include",
        "-W/work/x",
    ];
    for language_id in [50, 52] {
        for option in refused {
            let (status, answer) = judge0(
                &app,
                json!({
                    "source_code": C_VALUE,
                    "language_id": language_id,
                    "compiler_options": format!("-O2 -DVALUE=1 {option}"),
                }),
            )
            .await;
            assert_eq!(status, 422, "{option}: {answer}");
            let message = answer["compiler_options"][0].as_str().unwrap_or_default();
            assert!(
                message.starts_with(&format!("has `{option}`, which ")),
                "{option}: {answer}"
            );
        }
    }
    // /run-code has no field for compiler options (Piston's API has none).
    let (status, answer) = app
        .run(json!({"language": "c", "code": C_VALUE, "compile_args": ["-Wl,-plugin,p.so"]}))
        .await;
    assert_eq!(
        (status, &answer["code"]),
        (400, &json!("unknown_field")),
        "{answer}"
    );
    assert!(app.containers().await.is_empty(), "nothing was run");
    app.stop().await;
}

#[tokio::test]
async fn the_real_flags_the_catalogue_allows_still_reach_the_compiler() {
    let app = compiled_app().await;
    let cases = [
        (
            50,
            "-O2 -Wall -Wextra -Wformat=2 -Wno-unused-parameter -std=c17 -DVALUE=7 -g",
        ),
        (
            52,
            "-O0 -Wall -Werror=return-type -std=c++20 -DVALUE=7 -pedantic",
        ),
    ];
    for (language_id, options) in cases {
        let (status, answer) = judge0(
            &app,
            json!({"source_code": C_VALUE, "language_id": language_id, "compiler_options": options}),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        assert_eq!(
            (&answer["status"]["id"], &answer["stdout"]),
            (&json!(3), &json!("7\n")),
            "{options}: {answer}"
        );
    }
    app.stop().await;
}

/// An annotation processor that leaves a file named `marker` in the
/// working directory when javac starts it.
const PROCESSOR: &str = r#"
import java.util.Set;
import javax.annotation.processing.*;
import javax.lang.model.SourceVersion;
import javax.lang.model.element.TypeElement;

@SupportedAnnotationTypes("*")
public class Proc extends AbstractProcessor {
    @Override
    public synchronized void init(ProcessingEnvironment env) {
        super.init(env);
        try {
            java.nio.file.Files.writeString(java.nio.file.Path.of("marker"), "ran at compile time");
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    @Override
    public SourceVersion getSupportedSourceVersion() {
        return SourceVersion.latestSupported();
    }

    @Override
    public boolean process(Set<? extends TypeElement> annotations, RoundEnvironment round) {
        return false;
    }
}
"#;

#[tokio::test]
async fn a_java_upload_carrying_an_annotation_processor_does_not_run_it_at_compile_time() {
    let app = compiled_app().await;
    // The processor's class, compiled (not as a processor) by the service:
    // the run prints it.
    let print_class = "public class Main { public static void main(String[] a) throws Exception {\n\
        System.out.print(java.util.Base64.getEncoder().encodeToString(\n\
            java.nio.file.Files.readAllBytes(java.nio.file.Path.of(\"Proc.class\")))); } }";
    let compiled = app
        .run_ok(json!({
            "language": "java",
            "code": print_class,
            "files": [{"name": "Proc.java", "content": PROCESSOR}],
        }))
        .await;
    assert_eq!(compiled["status"], "ok", "{compiled}");
    let class = base64::engine::general_purpose::STANDARD
        .decode(compiled["stdout"].as_str().unwrap())
        .unwrap();
    assert_eq!(&class[..4], &[0xca, 0xfe, 0xba, 0xbe], "a class file");

    // The attack: the class and its service entry beside Main.java, where
    // javac looks for processors (the class path, `.`); the run says
    // whether the processor ran.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("Proc.class", options).unwrap();
    zip.write_all(&class).unwrap();
    zip.start_file(
        "META-INF/services/javax.annotation.processing.Processor",
        options,
    )
    .unwrap();
    zip.write_all(b"Proc\n").unwrap();
    let zip = zip.finish().unwrap().into_inner();
    let main = "public class Main { public static void main(String[] a) {\n\
        System.out.println(new java.io.File(\"marker\").exists() ? \"processor ran\" : \"no processor\"); } }";
    let (status, answer) = judge0(
        &app,
        json!({
            "source_code": main,
            "language_id": 62,
            "additional_files": base64::engine::general_purpose::STANDARD.encode(zip),
        }),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"]["id"], 3, "{answer}");
    assert_eq!(answer["stdout"], "no processor\n", "{answer}");
    app.stop().await;
}

/// C whose binary is over 40 MiB (an initialised global array, in the
/// binary's data), which prints twice its input and whether the binary it
/// runs from is that large.
const BIG_BINARY: &str = "#include <stdio.h>\n#include <sys/stat.h>\n\
    char big[40 << 20] = {1};\n\
    int main(void) {\n\
        long x; struct stat st;\n\
        if (scanf(\"%ld\", &x) != 1 || stat(\"main\", &st) != 0) return 2;\n\
        printf(\"%ld %d\\n\", x * 2 * big[0], st.st_size >= (40 << 20));\n\
        return 0;\n\
    }";

#[tokio::test]
async fn a_batch_whose_build_is_larger_than_a_runs_scratch_space_runs_every_test() {
    let app = compiled_app().await;
    // The run's scratch space is 32 MiB; each test copies the 40 MiB
    // build into its own working directory before its program starts.
    let (status, answer) = app
        .run(json!({
            "language": "c",
            "code": BIG_BINARY,
            "tests": [
                {"name": "three", "stdin": "3", "expected_output": "6 1"},
                {"name": "five", "stdin": "5", "expected_output": "10 1"},
            ],
        }))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["compile"]["status"], "ok", "{answer}");
    let verdicts: Vec<&Value> = answer["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["verdict"])
        .collect();
    assert_eq!(
        verdicts,
        [&json!("accepted"), &json!("accepted")],
        "{answer}"
    );
    assert_eq!(answer["summary"], json!({"passed": 2, "total": 2}));
    app.stop().await;
}

#[tokio::test]
async fn a_batch_whose_build_outgrows_the_runs_memory_answers_the_memory_limit_not_an_internal_error()
 {
    let app = compiled_app().await;
    // Judge0's number_of_runs makes a batch; each run's 32 MiB of memory
    // cannot hold the 40 MiB copy of the build.
    let (status, answer) = judge0(
        &app,
        json!({
            "source_code": BIG_BINARY,
            "language_id": 50,
            "stdin": "3",
            "number_of_runs": 2,
            "memory_limit": 32768,
        }),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        (&answer["status"]["id"], &answer["message"]),
        (&json!(11), &json!("Memory limit exceeded")),
        "{answer}"
    );
    let stderr = answer["stderr"].as_str().unwrap_or_default();
    assert!(
        stderr.contains("killed while copying the build") && stderr.contains("(32 MiB)"),
        "{answer}"
    );
    app.stop().await;
}

/// `GET /languages` with `key`: its status.
async fn status_with(app: &TestApp, key: &str) -> u16 {
    let response = app
        .client
        .get(app.url("/languages"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Replaces the keys file with `text` at once (a new file renamed over it).
fn replace_keys(file: &std::path::Path, text: &str) {
    let next = file.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, file).unwrap();
}

/// Asks until `key` gets `status`, for at most 5 s; how long it took.
async fn until_status(app: &TestApp, key: &str, status: u16) -> Duration {
    let began = Instant::now();
    loop {
        let got = status_with(app, key).await;
        if got == status {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "`{key}` still gets {got}, not {status}, 5 s after the keys file changed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_key_revoked_in_the_keys_file_is_refused_within_seconds_and_a_new_one_admitted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, "leaked-key\nkept-key\n").unwrap();
    let path = file.clone();
    // The default reload interval (1 s).
    let app = spawn_app_with(move |c| c.front_door.api_keys_file = Some(path)).await;
    assert_eq!(status_with(&app, "leaked-key").await, 200);
    assert_eq!(status_with(&app, "kept-key").await, 200);
    assert_eq!(status_with(&app, "new-key").await, 401);

    // The leaked key's line goes, a new key comes: no restart.
    replace_keys(&file, "kept-key\nnew-key probes\n");
    until_status(&app, "leaked-key", 401).await;
    assert_eq!(status_with(&app, "new-key").await, 200);
    assert_eq!(status_with(&app, "kept-key").await, 200);

    // A broken file keeps the last good keys; emptied, the door stays shut.
    replace_keys(&file, "kept-key admin\n");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(status_with(&app, "new-key").await, 200);
    replace_keys(&file, "# every key revoked\n");
    until_status(&app, "kept-key", 401).await;
    let anonymous = app.get("/languages").await;
    assert_eq!(anonymous.0, 401, "{}", anonymous.1);
    app.stop().await;
}
