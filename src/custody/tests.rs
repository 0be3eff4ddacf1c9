//! Custody over the fake engine, under paused time: the ledger, the
//! removal queue's deferral and bounds, and reconcile's three sweeps.

use super::*;
use crate::config::UidRange;
use crate::engine::fake::FakeEngine;
use crate::engine::{EngineError, Step};
use crate::testing::owner;

fn on(fake: &Arc<FakeEngine>) -> Arc<Custody> {
    let engine: Arc<dyn Containers> = Arc::new(fake.clone());
    Custody::new(engine, owner())
}

/// Custody on a fresh fake, with its removal worker running.
fn running() -> (Arc<FakeEngine>, Arc<Custody>, CancellationToken) {
    let fake = FakeEngine::new(&[]);
    let custody = on(&fake);
    let cancel = CancellationToken::new();
    tokio::spawn(custody.clone().run(cancel.clone()));
    (fake, custody, cancel)
}

fn labels(boot: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL.to_string(), "test".to_string()),
        (BOOT_LABEL.to_string(), boot.to_string()),
    ])
}

#[test]
fn a_held_resource_is_queued_for_removal_when_dropped() {
    let custody = on(&FakeEngine::new(&[]));
    let held = custody.hold(Kind::Container, "c1".into(), None);
    assert_eq!(custody.held(), 1);
    assert_eq!(held.id(), "c1");
    drop(held);
    assert_eq!(custody.pending.load(Ordering::Acquire), 1);
    let mut receiver = custody.receiver.lock().unwrap().take().unwrap();
    let (_, batch) = receiver.try_recv().unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(
        (batch[0].kind, batch[0].id.as_str()),
        (Kind::Container, "c1")
    );
}

#[test]
fn a_run_releases_its_containers_before_its_volume_in_one_batch() {
    let custody = on(&FakeEngine::new(&[]));
    let volume = custody.hold(Kind::Volume, "v".into(), None);
    let a = custody.hold(Kind::Container, "a".into(), None);
    let b = custody.hold(Kind::Container, "b".into(), None);
    custody.release(vec![a, b, volume]);
    let mut receiver = custody.receiver.lock().unwrap().take().unwrap();
    let (_, batch) = receiver.try_recv().unwrap();
    let order: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(order, ["a", "b", "v"]);
    assert!(
        receiver.try_recv().is_err(),
        "one batch, not one per handle"
    );
}

#[tokio::test(start_paused = true)]
async fn removals_wait_while_runs_are_in_flight_but_not_past_the_bound() {
    let (fake, custody, cancel) = running();
    fake.plant(Kind::Container, "c1", labels("b1"));
    let run = custody.run_in_flight();
    drop(custody.hold(Kind::Container, "c1".into(), None));
    tokio::time::sleep(MAX_DEFER / 2).await;
    assert_eq!(fake.containers(), 1, "removed while a run was in flight");
    tokio::time::sleep(MAX_DEFER).await;
    assert_eq!(fake.containers(), 0, "kept past the bound");
    assert_eq!(custody.held(), 0);
    drop(run);
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_removal_waits_for_a_quiet_moment_after_the_last_run() {
    let (fake, custody, cancel) = running();
    fake.plant(Kind::Container, "c1", labels("b1"));
    drop(custody.run_in_flight());
    drop(custody.hold(Kind::Container, "c1".into(), None));
    tokio::time::sleep(REMOVAL_QUIET / 3).await;
    assert_eq!(fake.containers(), 1, "removed at once after a run ended");
    tokio::time::sleep(REMOVAL_QUIET).await;
    assert_eq!(fake.containers(), 0);
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_backlog_over_its_bound_is_removed_at_once_runs_or_not_a_few_at_a_time() {
    let (fake, custody, cancel) = running();
    fake.set_remove_took(Duration::from_millis(50));
    let _run = custody.run_in_flight();
    for i in 0..BACKLOG + 8 {
        let id = format!("c{i}");
        fake.plant(Kind::Container, &id, labels("b1"));
        drop(custody.hold(Kind::Container, id, None));
    }
    tokio::time::sleep(MAX_DEFER / 4).await;
    assert!(
        fake.containers() < BACKLOG + 8,
        "nothing removed with {} waiting",
        BACKLOG + 8
    );
    custody.flush(Duration::from_secs(30)).await;
    assert_eq!(fake.containers(), 0);
    assert_eq!(fake.most_removing(), PARALLEL);
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_failed_removal_lets_go_keeps_its_uid_from_reuse_and_the_janitor_finishes_it() {
    let (fake, custody, cancel) = running();
    let uids = uids::Uids::new(UidRange { first: 7, last: 8 });
    fake.plant(Kind::Container, "c1", labels("b1"));
    let refused = EngineError::answered(Step::Remove, "c1", Some(500), "device busy");
    fake.fail(Step::Remove, 1, refused);
    let lease = Arc::new(uids.try_lease().unwrap());
    drop(custody.hold(Kind::Container, "c1".into(), Some(lease)));
    custody.flush(Duration::from_secs(10)).await;
    assert_eq!(custody.held(), 0, "let go of, whatever happened");
    assert_eq!(fake.containers(), 1);
    assert_eq!(uids.in_use(), 1, "the uid of a container that may remain");
    // Two janitor passes: seen unheld once, then removed.
    assert_eq!(custody.reconcile(Sweep::Unheld).await.unwrap(), 0);
    assert_eq!(custody.reconcile(Sweep::Unheld).await.unwrap(), 1);
    assert_eq!((fake.containers(), uids.in_use()), (0, 0));
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_volume_in_use_is_removed_once_its_container_is_gone() {
    let (fake, custody, cancel) = running();
    fake.plant(Kind::Volume, "v", labels("b1"));
    // The container goes in its own batch, which takes a while; the volume's
    // batch meanwhile meets a 409 and tries again.
    fake.plant(Kind::Container, "c", labels("b1"));
    fake.set_remove_took(Duration::from_millis(300));
    let refused = EngineError::answered(Step::VolumeRemove, "v", Some(409), "volume is in use");
    fake.fail(Step::VolumeRemove, 2, refused);
    drop(custody.hold(Kind::Container, "c".into(), None));
    drop(custody.hold(Kind::Volume, "v".into(), None));
    custody.flush(Duration::from_secs(30)).await;
    assert_eq!(fake.left(), 0);
    assert_eq!(fake.calls(Step::VolumeRemove), 3);
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_start_up_sweep_takes_only_what_earlier_processes_left() {
    let (fake, custody, cancel) = running();
    fake.plant(Kind::Container, "old", labels("b0"));
    fake.plant(Kind::Volume, "old-volume", labels("b0"));
    fake.plant(Kind::Container, "mine", labels("b1"));
    let mut other = labels("b0");
    other.insert(LABEL.into(), "another-instance".into());
    fake.plant(Kind::Container, "theirs", other);
    assert_eq!(custody.reconcile(Sweep::EarlierBoots).await.unwrap(), 2);
    let mut left = fake.ids();
    left.sort();
    assert_eq!(left, ["mine", "theirs"]);
    assert_eq!(fake.volumes(), 0);
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_janitor_spares_what_is_held_and_what_it_saw_unheld_only_once() {
    let (fake, custody, cancel) = running();
    fake.plant(Kind::Container, "held", labels("b1"));
    fake.plant(Kind::Container, "stray", labels("b1"));
    let held = custody.hold(Kind::Container, "held".into(), None);
    assert_eq!(custody.reconcile(Sweep::Unheld).await.unwrap(), 0);
    // A create whose id came between two passes is seen once, and spared.
    fake.plant(Kind::Container, "late", labels("b1"));
    assert_eq!(custody.reconcile(Sweep::Unheld).await.unwrap(), 1);
    let mut left = fake.ids();
    left.sort();
    assert_eq!(left, ["held", "late"]);
    drop(held);
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_sweep_takes_everything_of_this_process_containers_first() {
    let (fake, custody, cancel) = running();
    fake.plant(Kind::Volume, "v", labels("b1"));
    fake.plant(Kind::Container, "c", labels("b1"));
    fake.plant(Kind::Container, "earlier", labels("b0"));
    assert_eq!(custody.reconcile(Sweep::ThisBoot).await.unwrap(), 2);
    assert_eq!(fake.ids(), ["earlier"]);
    assert_eq!(fake.targets(Step::Remove), ["c"]);
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_sweep_fails_when_the_engine_cannot_be_reached() {
    let (fake, custody, cancel) = running();
    fake.set_unreachable(true);
    let e = custody.reconcile(Sweep::EarlierBoots).await.unwrap_err();
    assert!(e.is_unreachable(), "{e}");
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn remove_now_removes_before_it_returns_and_flush_waits_for_the_queue() {
    let (fake, custody, cancel) = running();
    fake.plant(Kind::Container, "now", labels("b1"));
    fake.plant(Kind::Container, "later", labels("b1"));
    let _run = custody.run_in_flight();
    custody
        .hold(Kind::Container, "now".into(), None)
        .remove_now()
        .await;
    assert_eq!(fake.ids(), ["later"]);
    drop(custody.hold(Kind::Container, "later".into(), None));
    custody.flush(Duration::from_secs(5)).await;
    assert_eq!(fake.containers(), 0);
    assert_eq!(custody.pending.load(Ordering::Acquire), 0);
    cancel.cancel();
}
