//! A compiled language's sandboxes: the compile and the run sandbox,
//! started side by side on one scratch volume (the compile writes the
//! build there, the run reads it), as one user, each waiting for its
//! payload. A run makes one, or claims one the pool made ahead of demand.

use std::sync::Arc;

use crate::custody::uids::UidLease;
use crate::custody::{Custody, Held};
use crate::job::Stage;
use crate::language::Language;
use crate::limits::Limits;
use crate::sandbox::{Launch, Launcher, Sandbox, SandboxError, Start};

/// How long a pooled compile sandbox's warm-up may take.
const WARMUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Two started sandboxes and their shared volume. Dropped unused, it is
/// removed: the containers first, then the volume.
pub(crate) struct Pair {
    custody: Arc<Custody>,
    /// The volume (`None` once handed out with the sandboxes).
    volume: Option<Held>,
    compile: Option<Sandbox>,
    run: Option<Sandbox>,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("volume", &self.volume.as_ref().map(Held::id))
            .finish_non_exhaustive()
    }
}

impl Pair {
    /// Makes a pair of `language` under `compile` and `run` limits: the
    /// volume (sized by the compile's scratch space), then the run sandbox
    /// and the compile sandbox, both waiting for their payloads. A pooled
    /// pair (`pooled`) runs the language's `warmup` in its compile sandbox
    /// first (a trivial compile, so that the compiler's files are in the
    /// caches when the program comes), and is ready once that is over.
    pub(crate) async fn make(
        launcher: &Launcher,
        language: &Language,
        compile: &Limits,
        run: &Limits,
        pooled: bool,
    ) -> Result<Pair, SandboxError> {
        // One user for both stages: the compile writes what the run reads.
        let uid: Arc<UidLease> = launcher.lease().await;
        let volume = launcher.new_volume(language, compile, uid.uid()).await?;
        let mut pair = Pair {
            custody: launcher.custody().clone(),
            volume: Some(volume),
            compile: None,
            run: None,
        };
        let volume_id = pair.volume_id().to_string();
        let warm = pooled && language.warmup.is_some();
        let launch = |stage, limits, start| Launch {
            language,
            stage,
            limits,
            volume: Some(&volume_id),
            build: None,
            start,
        };
        // The run sandbox starts first and waits: while it runs, the
        // volume's tmpfs stays mounted with what the compile leaves.
        pair.run = Some(
            launcher
                .launch(launch(Stage::Run, run, Start::Cold), &uid, None)
                .await?,
        );
        let start = if warm { Start::Warm } else { Start::Cold };
        let mut compiler = launcher
            .launch(launch(Stage::Compile, compile, start), &uid, None)
            .await?;
        if warm && !compiler.warmed(WARMUP_LIMIT).await {
            pair.compile = Some(compiler);
            return Err(SandboxError::Internal(format!(
                "the warm-up of `{}`'s compile sandbox did not end well within {} s",
                language.label(),
                WARMUP_LIMIT.as_secs()
            )));
        }
        pair.compile = Some(compiler);
        Ok(pair)
    }

    fn volume_id(&self) -> &str {
        self.volume.as_ref().map(Held::id).unwrap_or_default()
    }

    /// Whether both sandboxes still wait for their payloads.
    pub(crate) fn is_waiting(&mut self) -> bool {
        self.compile.as_mut().is_some_and(Sandbox::is_waiting)
            && self.run.as_mut().is_some_and(Sandbox::is_waiting)
    }

    /// The compile sandbox, the run sandbox and the volume, for a run
    /// (which releases them in that order).
    pub(crate) fn take(mut self) -> (Sandbox, Sandbox, Held) {
        (
            self.compile
                .take()
                .expect("a made pair has its compile sandbox"),
            self.run.take().expect("a made pair has its run sandbox"),
            self.volume.take().expect("a made pair has its volume"),
        )
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let mut items: Vec<Held> = Vec::new();
        items.extend(self.compile.take().map(Sandbox::into_container));
        items.extend(self.run.take().map(Sandbox::into_container));
        items.extend(self.volume.take());
        self.custody.release(items);
    }
}
