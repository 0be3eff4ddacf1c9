//! The playground page, `GET /playground` (docs/streaming.md, "The
//! playground"): served as one self-contained page that may load nothing
//! from elsewhere, and driven in a real browser (headless Chromium through
//! Selenium, `tests/clients/playground.py`) against the real engine with
//! API keys on: an interactive run over `/run-code/ws`, Stop, and a wrong
//! key refused.

use code_runner::config::Secret;
use serde_json::Value;

use crate::helpers::{python_client, spawn_app_with};

const KEY: &str = "playground-key";

/// The page as the repository holds it.
fn page_file() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/live/playground.html");
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn the_playground_is_served_as_one_page_that_loads_nothing_from_elsewhere() {
    // With keys on, the page itself needs none: its key field takes it.
    let app = spawn_app_with(|c| c.front_door.api_keys = vec![Secret(KEY.into())]).await;
    let response = app.client.get(app.url("/playground")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let content_type = header("content-type");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    // Every source the policy names is a keyword ('self', 'unsafe-inline',
    // 'none'...) or `data:`, which fetches nothing: no host, no other
    // scheme, no wildcard.
    for directive in csp.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        for source in directive.split_whitespace().skip(1) {
            assert!(
                source.starts_with('\'') || source == "data:",
                "`{source}` in `{directive}` lets the page load from elsewhere: {csp}"
            );
        }
    }
    let body = response.text().await.unwrap();
    assert_eq!(body, page_file(), "the page served is not the repository's");
    for scheme in ["http://", "https://"] {
        assert!(
            !body.contains(scheme),
            "the page names a {scheme} URL: it would load something from elsewhere"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_playground_runs_an_interactive_program_in_a_real_browser() {
    let app = spawn_app_with(|c| c.front_door.api_keys = vec![Secret(KEY.into())]).await;
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("playground.png");
    let _ = std::fs::remove_file(&screenshot);
    println!("the playground's screenshot: {}", screenshot.display());
    let out = python_client(
        "playground.py",
        &[&app.url(""), KEY, screenshot.to_str().unwrap()],
    )
    .await;
    let seen: Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("playground.py printed no JSON line ({e}): {out}"));
    println!("playground.py saw: {seen:#}");

    assert!(
        seen["languages"]
            .as_array()
            .unwrap()
            .contains(&"python".into()),
        "{seen}"
    );
    let interactive = &seen["interactive"];
    assert_eq!(
        interactive["output"], "name? Ada\nhello Ada\nfirst\nsecond\n",
        "{seen}"
    );
    assert_eq!(interactive["first_while_running"], true, "{seen}");
    assert_eq!(interactive["second_after_first"], true, "{seen}");
    assert_eq!(interactive["answer"]["status"], "ok", "{seen}");
    assert_eq!(interactive["answer"]["exit_code"], "0", "{seen}");
    let duration = interactive["answer"]["duration"].as_str().unwrap();
    let duration_ms: u64 = duration.trim_end_matches(" ms").parse().unwrap();
    // The program sleeps 1 s, and its wall time counts the wait for stdin.
    assert!(duration_ms >= 1000, "{duration}");

    let stopped = &seen["stopped"];
    // stdout's line and stderr's: each stream keeps its order, not the two.
    let mut lines: Vec<&str> = stopped["output"].as_str().unwrap().lines().collect();
    lines.sort();
    assert_eq!(lines, ["tick", "tock"], "{seen}");
    assert_eq!(stopped["answer"]["signal"], "killed by SIGKILL", "{seen}");
    assert_eq!(stopped["answer"]["exit_code"], "137", "{seen}");
    assert!(stopped["stopped_in_s"].as_f64().unwrap() < 10.0, "{seen}");
    let refused = seen["refused"]["status_text"].as_str().unwrap();
    assert!(refused.contains("4401 unauthorized"), "{refused}");

    let png = std::fs::read(&screenshot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", screenshot.display()));
    assert!(
        png.len() > 8 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG ({} bytes)",
        screenshot.display(),
        png.len()
    );
    // Stop removed the sandbox at once; the refused run made none.
    app.assert_no_containers_within(std::time::Duration::from_secs(10))
        .await;
    app.stop().await;
}
