//! Property test of the HTTP edge: arbitrary bodies, sent to the real
//! server, always get a JSON answer (a 4xx, or a 200 for a program that
//! ran) within a bound, and the service keeps answering.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::helpers::spawn_app_with;

fn body() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,6}".prop_map(Value::from),
        Just(Value::from("nope")),
        Just(Value::from("print(1)")),
        prop::collection::vec("[ -~]{0,8}".prop_map(Value::from), 0..4).prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("language"),
        Just("code"),
        Just("stdin"),
        Just("args"),
        Just("files"),
        Just("timeout_ms"),
        Just("extra"),
    ];
    let object = prop::collection::btree_map(key, value, 0..6).prop_map(|m| {
        let m: serde_json::Map<String, Value> =
            m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        serde_json::to_vec(&m).unwrap()
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        object.clone(),
        // A valid object cut short, or with a byte flipped.
        (object.clone(), any::<prop::sample::Index>()).prop_map(|(b, i)| {
            let cut = i.index(b.len().max(1));
            b[..cut].to_vec()
        }),
        (object, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut b, i, x)| {
            if !b.is_empty() {
                let at = i.index(b.len());
                b[at] = x;
            }
            b
        }),
    ]
}

#[test]
fn arbitrary_bodies_always_get_a_json_answer() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app_with(|c| {
        // Anything that does run is short.
        c.limits.wall_time_ms = 2000;
        c.runs.max_concurrent = 2;
    }));
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&body(), |body| {
            let (status, answer) = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(20), app.post_bytes("/run-code", body))
                    .await
                    .expect("answered within 20 s")
            });
            prop_assert!(
                status == 200 || (400..500).contains(&status),
                "{status}: {answer}"
            );
            if status == 200 {
                prop_assert!(answer["status"].is_string(), "{answer}");
            } else {
                prop_assert!(answer["code"].is_string(), "{answer}");
            }
            Ok(())
        })
        .unwrap();
    runtime.block_on(async {
        assert_eq!(app.get("/health").await.0, 200);
        app.stop().await;
    });
}
