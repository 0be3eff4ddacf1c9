//! The pool over the fake engine, under paused time: floors, refills and
//! their pace, back-off, demand and the budget, reloads, shutdown.

use std::sync::Arc;
use std::time::Duration;

use super::{language, pooled, python_only};
use crate::engine::fake::Warmup;
use crate::engine::{EngineError, Step};
use crate::executor::pool::{BURST, MEMORY, QUIET};
use crate::language::Registry;
use crate::testing::{Rig, pool, registry};

fn refused() -> EngineError {
    EngineError::answered(Step::Create, "python:3.13-slim", Some(500), "no space left")
}

#[tokio::test(start_paused = true)]
async fn each_language_fills_to_its_floor_a_compiled_one_with_pairs() {
    let mut rig = Rig::new(pool(3, 2, 32));
    let _languages = rig.start(registry());
    pooled(&rig, "python", 3).await;
    // C's file gives its own floor, 2: two pairs, each two containers on a
    // volume of their own.
    pooled(&rig, "c", 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.fake.containers(), 3 + 2 * 2);
    assert_eq!(rig.fake.volumes(), 1 + 2, "the tools volume and two pairs'");
    assert_eq!(rig.executor.pool_targets()["python"], 3);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn refills_start_several_at_once_when_no_run_is_in_flight() {
    let mut rig = Rig::new(pool(6, 3, 32));
    rig.fake.set_create_took(Duration::from_millis(200));
    let _languages = rig.start(python_only());
    pooled(&rig, "python", 6).await;
    assert_eq!(rig.fake.most_creating(), 3);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn refills_go_one_at_a_time_while_a_run_is_in_flight() {
    let mut rig = Rig::new(pool(6, 3, 32));
    rig.fake.set_create_took(Duration::from_millis(200));
    let in_flight = rig.custody.run_in_flight();
    let _languages = rig.start(python_only());
    pooled(&rig, "python", 6).await;
    assert_eq!(rig.fake.most_creating(), 1);
    drop(in_flight);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_pool_that_is_not_empty_waits_for_a_quiet_moment_before_it_refills() {
    let mut rig = Rig::new(pool(3, 3, 32));
    let languages = rig.start(python_only());
    let python = language(&languages.borrow(), "python");
    pooled(&rig, "python", 3).await;
    let created = rig.fake.calls(Step::Create);
    let claimed = rig.executor.runs.pool.claim(&python);
    assert!(claimed.is_some());
    tokio::time::sleep(QUIET / 2).await;
    assert_eq!(
        rig.fake.calls(Step::Create),
        created,
        "refilled within the quiet time"
    );
    tokio::time::sleep(QUIET).await;
    assert_eq!(rig.fake.calls(Step::Create), created + 1);
    drop(claimed);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn an_empty_pool_is_refilled_at_once() {
    let mut rig = Rig::new(pool(1, 1, 32));
    let languages = rig.start(python_only());
    let python = language(&languages.borrow(), "python");
    pooled(&rig, "python", 1).await;
    let created = rig.fake.calls(Step::Create);
    let claimed = rig.executor.runs.pool.claim(&python);
    tokio::time::sleep(QUIET / 10).await;
    assert_eq!(rig.fake.calls(Step::Create), created + 1);
    drop(claimed);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn start_failures_back_off_instead_of_spinning_then_the_pool_fills() {
    let mut rig = Rig::new(pool(1, 1, 32));
    // The tools volume first, so that every failure below is a start's.
    let job = crate::testing::job(&python_only(), "python", "x", &["warm"]);
    let _ = rig
        .executor
        .run(&job, &crate::testing::Width::new(1), None)
        .await
        .unwrap();
    rig.fake.fail(Step::Create, 4, refused());
    let before = rig.fake.calls(Step::Create);
    let _languages = rig.start(python_only());
    // Tries at 0, 0.5, 1.5, 3.5 s (each failing), then at 7.5 s.
    tokio::time::sleep(Duration::from_millis(3600)).await;
    assert_eq!(rig.fake.calls(Step::Create) - before, 4);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        rig.fake.calls(Step::Create) - before,
        4,
        "retried before its back-off"
    );
    pooled(&rig, "python", 1).await;
    assert_eq!(rig.fake.calls(Step::Create) - before, 5);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_warm_up_that_never_ends_is_removed_and_the_start_counts_as_failed() {
    let mut rig = Rig::new(pool(1, 1, 32));
    rig.fake.set_warmup(Warmup::Never);
    let _languages = rig.start(python_only());
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(rig.executor.pooled()["python"], 0);
    rig.settle().await;
    let waiting = rig.fake.containers();
    assert!(waiting <= 1, "warm-ups that failed were kept: {waiting}");
    rig.fake
        .set_warmup(Warmup::After(Duration::from_millis(10)));
    pooled(&rig, "python", 1).await;
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_pooled_sandbox_killed_from_outside_is_never_handed_out() {
    let mut rig = Rig::new(pool(2, 2, 32));
    let languages = rig.start(python_only());
    let python = language(&languages.borrow(), "python");
    pooled(&rig, "python", 2).await;
    let ids = rig.fake.ids();
    rig.fake.kill_from_outside(&ids[0]);
    let mut claimed = rig
        .executor
        .runs
        .pool
        .claim(&python)
        .expect("the other one");
    assert!(claimed.is_waiting());
    drop(claimed);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_changed_language_file_discards_what_waits_for_the_old_one() {
    let mut rig = Rig::new(pool(2, 2, 32));
    let languages = rig.start(python_only());
    pooled(&rig, "python", 2).await;
    let old = rig.fake.ids();
    let mut changed = (*language(&languages.borrow(), "python")).clone();
    changed.env.insert("CHANGED".into(), "1".into());
    languages.send_replace(Arc::new(
        Registry::from_languages(vec![Arc::new(changed)]).unwrap(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    pooled(&rig, "python", 2).await;
    rig.settle().await;
    let now = rig.fake.ids();
    assert!(old.iter().all(|id| !now.contains(id)), "{old:?} {now:?}");
    assert!(
        rig.fake
            .specs()
            .iter()
            .all(|s| s.env.contains(&"CHANGED=1".to_string()))
    );
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_language_taken_away_has_its_pool_emptied() {
    let mut rig = Rig::new(pool(2, 2, 32));
    let languages = rig.start(registry());
    pooled(&rig, "python", 2).await;
    let c_only = vec![language(&languages.borrow(), "c")];
    languages.send_replace(Arc::new(Registry::from_languages(c_only).unwrap()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    rig.settle().await;
    assert!(!rig.executor.pooled().contains_key("python"));
    let images: Vec<String> = rig.fake.specs().into_iter().map(|s| s.image).collect();
    assert!(images.iter().all(|i| i == "gcc:14"), "{images:?}");
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn demand_raises_a_pool_within_the_budget_and_it_falls_back_when_demand_goes() {
    let mut rig = Rig::new(pool(2, 4, 10));
    let languages = rig.start(python_only());
    let python = language(&languages.borrow(), "python");
    pooled(&rig, "python", 2).await;
    let mut claimed = Vec::new();
    for _ in 0..14 {
        claimed.extend(rig.executor.runs.pool.claim(&python));
        tokio::time::sleep(BURST / 20).await;
    }
    // Fourteen asked for within a burst; the budget holds ten.
    assert_eq!(rig.executor.pool_targets()["python"], 10);
    drop(claimed);
    pooled(&rig, "python", 10).await;
    tokio::time::sleep(MEMORY + Duration::from_secs(5)).await;
    assert_eq!(rig.executor.pool_targets()["python"], 2);
    pooled(&rig, "python", 2).await;
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn floors_over_the_budget_share_it_in_proportion() {
    let mut rig = Rig::new(pool(4, 4, 3));
    let _languages = rig.start(registry());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let targets = rig.executor.pool_targets();
    // python's floor 4 and C's 2 in a budget of 3: 4*3/6 and 2*3/6.
    assert_eq!((targets["python"], targets["c"]), (2, 1));
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn without_pre_start_a_pooled_python_waits_warmed_up_instead() {
    let mut settings = pool(1, 1, 32);
    settings.prestart = false;
    let mut rig = Rig::new(settings);
    let _languages = rig.start(python_only());
    pooled(&rig, "python", 1).await;
    let spec = (rig.fake.specs().into_iter())
        .find(|s| s.image == crate::testing::PYTHON_IMAGE)
        .unwrap();
    assert_eq!(
        (spec.entrypoint[5].as_str(), spec.entrypoint[6].as_str()),
        ("python3 -c pass", "")
    );
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_starts_under_way_and_removes_every_waiting_sandbox() {
    let mut rig = Rig::new(pool(4, 4, 32));
    rig.fake.set_create_took(Duration::from_millis(300));
    let _languages = rig.start(python_only());
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Some wait, some are still being started: none outlives shutdown
    // (the rig checks that nothing is left and no uid leased).
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_closed_pool_refills_no_more() {
    let mut rig = Rig::new(pool(1, 1, 32));
    let languages = rig.start(python_only());
    let python = language(&languages.borrow(), "python");
    pooled(&rig, "python", 1).await;
    rig.executor.close();
    let created = rig.fake.calls(Step::Create);
    let claimed = rig.executor.runs.pool.claim(&python);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rig.fake.calls(Step::Create), created);
    drop(claimed);
    rig.finish().await;
}
