//! Internal causes stay out of clients' reach (security review 3, L8),
//! against the real engine: a run the engine refuses for the service's own
//! reasons (here a language whose seccomp profile denies even `execve`,
//! so the runtime cannot start its container) is answered with a request
//! id only, on `/run-code` and through Judge0; the engine's words stay in
//! the service's log.

use serde_json::json;

use crate::helpers::spawn_app_with_languages;

/// Python, under a profile that allows nothing: the engine's runtime
/// fails to start the container, with a message naming the container.
fn broken_language() -> Vec<(String, String)> {
    let toml = "name = \"broken\"\nversion = \"3.13\"\njudge0_id = 4242\njudge0_name = \"Broken\"\nimage = \"python:3.13-slim\"\nsource_file = \"main.py\"\nrun = [\"python3\", \"main.py\"]\nseccomp = \"deny-all.json\"\n";
    let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []});
    vec![
        ("broken.toml".to_string(), toml.to_string()),
        ("deny-all.json".to_string(), profile.to_string()),
    ]
}

/// Words of the engine's and the runtime's that must never reach a client.
const ENGINE_WORDS: [&str; 5] = ["OCI", "runc", "daemon", "container", "seccomp"];

#[tokio::test]
async fn an_engine_failure_reaches_clients_as_a_request_id_only() {
    let app = spawn_app_with_languages(broken_language(), |_| {}).await;
    let (status, native) = app
        .run(json!({"language": "broken", "code": "print(1)"}))
        .await;
    assert_eq!(status, 500, "{native}");
    let text = native.to_string();
    assert!(text.contains("request id"), "{native}");
    let (status, judge0) = app
        .post(
            "/judge0/submissions?wait=true",
            &json!({"source_code": "print(1)", "language_id": 4242}),
        )
        .await;
    // Storage off: the run is answered at once, as Judge0's 500.
    let text = judge0.to_string();
    assert_eq!(status, 500, "{judge0}");
    assert!(text.contains("request id"), "{judge0}");
    for answer in [native.to_string(), text] {
        for word in ENGINE_WORDS {
            assert!(
                !answer.contains(word),
                "{word} reached the client: {answer}"
            );
        }
    }
    app.stop().await;
    // Stored: the submission finishes as 13 Internal Error, naming a
    // request id and no cause.
    let app = spawn_app_with_languages(broken_language(), |c| {
        c.judge0.database = format!("sqlite://{}/judge0.sqlite", c.languages_dir.display());
    })
    .await;
    let (status, stored) = app
        .post(
            "/judge0/submissions?wait=true&fields=status,message",
            &json!({"source_code": "print(1)", "language_id": 4242}),
        )
        .await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["status"]["id"], 13, "{stored}");
    let text = stored.to_string();
    assert!(text.contains("request id"), "{stored}");
    for word in ENGINE_WORDS {
        assert!(!text.contains(word), "{word} reached the client: {stored}");
    }
    app.stop().await;
}
