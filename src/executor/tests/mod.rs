//! The executor over the fake engine, under paused time: one path for one
//! run or many ([`runs`]), the pool's sizing and refills ([`pool`]), and
//! its upkeep ([`upkeep`]).

mod pool;
mod runs;
mod upkeep;

use std::sync::Arc;
use std::time::Duration;

use crate::language::Registry;
use crate::limits::DefaultLimits;
use crate::testing::Rig;

/// The shipped python alone (a pooled, pre-started language).
fn python_only() -> Registry {
    Registry::builtin(&DefaultLimits::default()).unwrap()
}

/// Waits (in paused time) until `rig`'s pool of `language` holds `count`
/// waiting sandboxes, for at most a minute.
async fn pooled(rig: &Rig, language: &str, count: usize) {
    for _ in 0..600 {
        if rig.executor.pooled().get(language).copied() == Some(count) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the pool of {language} never held {count}: {:?}",
        rig.executor.pooled()
    );
}

/// The language `name` of `registry`.
fn language(registry: &Registry, name: &str) -> Arc<crate::language::Language> {
    registry.get(name).unwrap()
}
