//! The executor's upkeep over the fake engine, under paused time: the
//! janitor, the start-up sweep, image pulls, readiness.

use std::collections::HashMap;
use std::time::Duration;

use super::python_only;
use crate::custody::{BOOT_LABEL, JANITOR_EVERY, LABEL};
use crate::engine::fake::FakeEngine;
use crate::engine::{Kind, Step};
use crate::testing::{C_IMAGE, PYTHON_IMAGE, Rig, pool, registry};

fn labels(boot: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL.to_string(), "test".to_string()),
        (BOOT_LABEL.to_string(), boot.to_string()),
    ])
}

#[tokio::test(start_paused = true)]
async fn the_janitor_removes_what_this_process_no_longer_holds_on_its_second_look() {
    let mut rig = Rig::new(pool(0, 1, 0));
    let _languages = rig.start(python_only());
    rig.fake.plant(Kind::Container, "stray", labels("b1"));
    rig.fake.plant(Kind::Volume, "stray-volume", labels("b1"));
    // Its first look is at once, its second a period later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.fake.containers(), 1, "removed on its first look");
    tokio::time::sleep(JANITOR_EVERY).await;
    assert_eq!(rig.fake.left(), 0);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn the_start_up_sweep_waits_for_the_engine_and_removes_what_earlier_processes_left() {
    let mut rig = Rig::new(pool(0, 1, 0));
    rig.fake.plant(Kind::Container, "earlier", labels("b0"));
    rig.fake.set_unreachable(true);
    let _languages = rig.start(python_only());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rig.fake.containers(), 1);
    assert!(rig.fake.calls(Step::List) >= 2, "not retried");
    rig.fake.set_unreachable(false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rig.fake.containers(), 0);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn missing_images_are_pulled_at_start_and_when_the_languages_change() {
    let fake = FakeEngine::new(&[]);
    let mut rig = Rig::on(fake, pool(0, 1, 0));
    let languages = rig.start(python_only());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.fake.targets(Step::ImagePull), [PYTHON_IMAGE]);
    languages.send_replace(std::sync::Arc::new(registry()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.fake.targets(Step::ImagePull), [PYTHON_IMAGE, C_IMAGE]);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn readiness_names_each_missing_image_and_runtime_and_an_engine_that_is_away() {
    let rig = Rig::on(FakeEngine::new(&[PYTHON_IMAGE]), pool(0, 1, 0));
    assert_eq!(
        rig.executor.readiness(&python_only()).await,
        Default::default()
    );
    let mut registry = registry();
    let mut gvisor = (*registry.get("python").unwrap()).clone();
    gvisor.name = "python-gvisor".into();
    gvisor.aliases.clear();
    gvisor.judge0_id = None;
    gvisor.runtime = Some("runsc".into());
    let mut languages = registry.languages().to_vec();
    languages.push(std::sync::Arc::new(gvisor));
    registry = crate::language::Registry::from_languages(languages).unwrap();
    let readiness = rig.executor.readiness(&registry).await;
    assert_eq!(readiness.missing_images, [C_IMAGE]);
    let problems = readiness.problems.join("\n");
    assert!(
        problems.contains("`runsc` (for python-gvisor-3.13)"),
        "{problems}"
    );
    assert!(
        problems.contains("`gcc:14` (for c-14) is missing"),
        "{problems}"
    );
    rig.fake.add_runtime("runsc");
    let readiness = rig.executor.readiness(&registry).await;
    assert_eq!(readiness.problems.len(), 1, "{readiness:?}");
    rig.fake.set_unreachable(true);
    let away = rig.executor.readiness(&registry).await;
    assert!(away.problems[0].contains("cannot be reached"), "{away:?}");
    rig.fake.set_unreachable(false);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_removes_the_pool_the_tools_volume_and_whatever_this_process_left() {
    let mut rig = Rig::new(pool(2, 2, 32));
    let _languages = rig.start(registry());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rig.fake.containers() >= 2 + 4);
    // Something this process made and lost track of.
    rig.fake.plant(Kind::Container, "lost", labels("b1"));
    rig.finish().await;
}
