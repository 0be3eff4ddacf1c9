//! What every sandbox needs before it starts: a uid of its own, the tools
//! volume (the supervisor), and a seccomp profile; [`Launcher`] gathers
//! them, starts sandboxes, and makes the scratch volume a compiled
//! language's pair shares.
//!
//! The tools volume is made once per process, on first use: a volume on
//! the engine's disk, filled through the archive upload API of a container
//! of the first image a run needs (created, never started, removed), and
//! mounted read-only at `/.code-runner` in every sandbox. It is in custody
//! like any volume, so it goes at shutdown and with an earlier process's
//! leftovers.

use std::sync::Arc;

use super::container::{Payload, Sandbox};
use super::error::SandboxError;
use super::spec::{Launch, Provisions, labels, volume_options};
use crate::custody::uids::{UidLease, Uids};
use crate::custody::{Custody, Held};
use crate::engine::{Kind, Step};
use crate::language::Language;
use crate::limits::Limits;

/// The supervisor, built by `build.rs` from `tools/supervise.rs`.
pub(crate) const SUPERVISOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/supervise"));

/// What the tools volume holds (path, mode, content; a path ending in `/`
/// is a folder): the supervisor, and the pre-start hooks it loads
/// (`tools/prestart/`).
pub(crate) const TOOLS: [(&str, u32, &[u8]); 5] = [
    ("supervise", 0o555, SUPERVISOR),
    ("prestart/", 0o555, b""),
    ("prestart/python/", 0o555, b""),
    (
        "prestart/python/sitecustomize.py",
        0o444,
        include_bytes!("../../tools/prestart/python/sitecustomize.py"),
    ),
    (
        "prestart/node.js",
        0o444,
        include_bytes!("../../tools/prestart/node.js"),
    ),
];

/// The seccomp profile every sandbox runs under unless its language names
/// another: Docker's current default, tightened (`seccomp/generate.py`).
pub(crate) const DEFAULT_SECCOMP: &str = include_str!("../../seccomp/profile.json");

/// Starts sandboxes with what each needs.
#[derive(Debug)]
pub(crate) struct Launcher {
    custody: Arc<Custody>,
    uids: Arc<Uids>,
    tools: Tools,
    /// [`DEFAULT_SECCOMP`], compacted.
    seccomp: String,
}

impl Launcher {
    pub(crate) fn new(custody: Arc<Custody>, uids: Arc<Uids>) -> Launcher {
        let seccomp: serde_json::Value =
            serde_json::from_str(DEFAULT_SECCOMP).expect("the shipped seccomp profile is JSON");
        Launcher {
            tools: Tools {
                name: format!("code-runner-tools-{}", custody.owner().boot),
                volume: Arc::new(tokio::sync::Mutex::new(None)),
            },
            custody,
            uids,
            seccomp: seccomp.to_string(),
        }
    }

    /// A uid for a sandbox (or a compile and run pair), waiting for one
    /// when every uid is leased.
    pub(crate) async fn lease(&self) -> Arc<UidLease> {
        Arc::new(self.uids.lease().await)
    }

    /// Starts a sandbox as `uid`, writing `payload` before its start when
    /// given (see [`Sandbox::start`]).
    pub(crate) async fn launch(
        &self,
        launch: Launch<'_>,
        uid: &Arc<UidLease>,
        payload: Option<Payload>,
    ) -> Result<Sandbox, SandboxError> {
        self.tools
            .ready(&self.custody, &launch.language.image)
            .await?;
        let seccomp = launch
            .language
            .seccomp
            .as_ref()
            .map_or(self.seccomp.as_str(), |p| p.json.as_str());
        let spec = launch.spec(&Provisions {
            owner: self.custody.owner(),
            uid: uid.uid(),
            tools: &self.tools.name,
            seccomp,
        });
        Sandbox::start(&self.custody, spec, uid.clone(), payload).await
    }

    /// A scratch volume for a compiled language's pair, in custody from
    /// before its create: a tmpfs sized by the `compile` stage's scratch
    /// space, owned by `uid` (the pair's), labelled as `language`'s.
    pub(crate) async fn new_volume(
        &self,
        language: &Language,
        compile: &Limits,
        uid: u32,
    ) -> Result<Held, SandboxError> {
        let name = format!("code-runner-{}", uuid::Uuid::new_v4().simple());
        let volume = self.custody.hold(Kind::Volume, name, None);
        let options = volume_options(compile, uid);
        let labels = labels(self.custody.owner(), language);
        (self.custody.engine())
            .create_volume(volume.id(), Some(&options), labels)
            .await?;
        Ok(volume)
    }

    /// The custody every sandbox it starts is in.
    pub(crate) fn custody(&self) -> &Arc<Custody> {
        &self.custody
    }

    /// Runs in flight now (see [`Custody::runs`]).
    pub(crate) fn runs(&self) -> usize {
        self.custody.runs()
    }

    /// Lets go of the tools volume (shutdown): custody removes it once the
    /// sandboxes using it are gone.
    pub(crate) async fn release_tools(&self) {
        self.tools.volume.lock().await.take();
    }
}

/// The tools volume of this process.
#[derive(Debug)]
struct Tools {
    name: String,
    /// In custody once made and filled.
    volume: Arc<tokio::sync::Mutex<Option<Held>>>,
}

impl Tools {
    /// Makes sure the volume exists and holds the tools, filling it through
    /// `image` the first time (or after a failed try). The filling runs in
    /// a task of its own, which a dropped request does not cut short (it
    /// would leave its container behind).
    async fn ready(&self, custody: &Arc<Custody>, image: &str) -> Result<(), SandboxError> {
        let mut volume = self.volume.clone().lock_owned().await;
        if volume.is_some() {
            return Ok(());
        }
        let (custody, name, image) = (custody.clone(), self.name.clone(), image.to_string());
        let filling = tokio::spawn(async move {
            let held = custody.hold(Kind::Volume, name.clone(), None);
            let engine = custody.engine();
            let labels = custody.owner().labels();
            let filled = match engine.create_volume(&name, None, labels.clone()).await {
                Ok(()) => engine.fill_volume(&name, &image, &TOOLS, labels).await,
                Err(e) => Err(e),
            };
            match filled {
                Ok(()) => {
                    *volume = Some(held);
                    Ok(())
                }
                // Removed now, not queued: the next try makes it again under
                // the same name, which a late removal would take away.
                Err(e) => {
                    held.remove_now().await;
                    match e {
                        e if e.step == Step::Create && e.is_not_found() => {
                            Err(SandboxError::ImageMissing { image: e.target })
                        }
                        e => Err(e.into()),
                    }
                }
            }
        });
        filling
            .await
            .map_err(|e| SandboxError::Internal(format!("filling the tools volume failed: {e}")))?
    }
}
