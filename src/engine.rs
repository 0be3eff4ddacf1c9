//! The connection to the Docker engine: API version negotiation, images
//! (present? pull in the background), scratch volumes, and removal of
//! labelled containers and volumes.
//!
//! The engine may be down when the service starts or go away later; every
//! call then fails with [`EngineError::Unavailable`], and the first call
//! after it comes back negotiates the API version again.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListContainersOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use futures_util::StreamExt;

/// Label key carried by every sandbox container; its value is the
/// service's instance name.
pub const LABEL: &str = "code-runner";
/// Label naming the process (boot) that made a container.
pub const BOOT_LABEL: &str = "code-runner.boot";

/// How long one Engine API request may take to answer (headers only:
/// attach and wait streams are bounded by the run's own deadline).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long version negotiation may take before the engine counts as down.
const NEGOTIATE_TIMEOUT: Duration = Duration::from_secs(5);

/// A failure talking to the engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The engine did not answer (socket missing, refused, timed out).
    #[error("the Docker engine cannot be reached: {0}")]
    Unavailable(String),
    /// The engine answered with an error status.
    #[error("the Docker engine answered {status}: {message}")]
    Api { status: u16, message: String },
}

impl EngineError {
    /// Whether the engine answered 404 (no such container or image).
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::Api { status: 404, .. })
    }

    /// Whether the engine answered 409 (in a state that conflicts, such as
    /// already being removed).
    pub fn is_conflict(&self) -> bool {
        matches!(self, EngineError::Api { status: 409, .. })
    }
}

impl From<bollard::errors::Error> for EngineError {
    fn from(e: bollard::errors::Error) -> Self {
        match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::Api {
                status: status_code,
                message,
            },
            other => EngineError::Unavailable(other.to_string()),
        }
    }
}

/// A handle on the Docker engine. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Engine {
    /// The address given in the configuration, if any.
    host: Option<String>,
    /// The client, once connected and with its API version agreed.
    current: Mutex<Option<Docker>>,
    /// The containers and volumes this process holds (in flight, pooled,
    /// waiting for removal); anything else of its own is litter.
    held: Mutex<HashSet<String>>,
    /// Litter seen by the last [`Engine::remove_litter`] pass.
    litter: Mutex<HashSet<String>>,
}

impl Engine {
    /// Prepares a client for the engine at `host` (`unix://…`, `tcp://…`),
    /// or else the one `DOCKER_HOST` names, or else the local socket.
    /// Nothing is sent until the first call, and a socket that does not
    /// exist yet is fine: the service starts while the engine is down. It
    /// fails only on an address it can never use.
    pub fn connect(host: Option<&str>) -> Result<Engine, EngineError> {
        let engine = Engine {
            host: host.map(str::to_string),
            current: Mutex::new(None),
            held: Mutex::new(HashSet::new()),
            litter: Mutex::new(HashSet::new()),
        };
        match engine.open() {
            Ok(_) | Err(bollard::errors::Error::SocketNotFoundError(_)) => Ok(engine),
            Err(e) => Err(EngineError::Unavailable(e.to_string())),
        }
    }

    fn open(&self) -> Result<Docker, bollard::errors::Error> {
        let docker = match &self.host {
            Some(host) => Docker::connect_with_host(host),
            None => Docker::connect_with_defaults(),
        }?;
        Ok(docker.with_timeout(REQUEST_TIMEOUT))
    }

    /// The client, connected, with its API version agreed with the engine.
    pub async fn client(&self) -> Result<Docker, EngineError> {
        if let Some(docker) = self.current.lock().expect("engine lock").clone() {
            return Ok(docker);
        }
        let docker = self
            .open()
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let docker = tokio::time::timeout(NEGOTIATE_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| EngineError::Unavailable("no answer within 5 s".to_string()))??;
        *self.current.lock().expect("engine lock") = Some(docker.clone());
        Ok(docker)
    }

    /// Records that the engine stopped answering, so that the next call
    /// connects and negotiates again (it may come back as another version).
    pub fn mark_unavailable(&self) {
        *self.current.lock().expect("engine lock") = None;
    }

    /// Checks that the engine answers.
    pub async fn ping(&self) -> Result<(), EngineError> {
        let result = async { self.client().await?.ping().await.map_err(EngineError::from) }.await;
        self.note(result).map(|_| ())
    }

    /// Whether the engine holds `image`.
    pub async fn image_present(&self, image: &str) -> Result<bool, EngineError> {
        let result = async {
            self.client()
                .await?
                .inspect_image(image)
                .await
                .map_err(EngineError::from)
        }
        .await;
        match self.note(result) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pulls `image` from its registry, to the end of the stream.
    pub async fn pull(&self, image: &str) -> Result<(), EngineError> {
        let docker = self.client().await?;
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            self.note(item.map_err(EngineError::from))?;
        }
        Ok(())
    }

    /// Force-removes the containers and volumes of `instance` made by any
    /// process but `boot` (leftovers of an earlier process); returns how many.
    pub async fn remove_stale_containers(
        &self,
        instance: &str,
        boot: &str,
    ) -> Result<usize, EngineError> {
        self.remove_labelled(instance, |labels| {
            labels.get(BOOT_LABEL).map(String::as_str) != Some(boot)
        })
        .await
    }

    /// Force-removes the containers and volumes of `instance` made by
    /// process `boot`; returns how many.
    pub async fn remove_boot_containers(
        &self,
        instance: &str,
        boot: &str,
    ) -> Result<usize, EngineError> {
        self.remove_labelled(instance, |labels| {
            labels.get(BOOT_LABEL).map(String::as_str) == Some(boot)
        })
        .await
    }

    /// Removes the containers of `instance` that `select` picks by their
    /// labels, then the volumes it picks likewise (volumes go last: one in
    /// use by a container cannot be removed).
    async fn remove_labelled(
        &self,
        instance: &str,
        select: impl Fn(&HashMap<String, String>) -> bool,
    ) -> Result<usize, EngineError> {
        let docker = self.client().await?;
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL}={instance}")])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self.note(
            docker
                .list_containers(Some(options))
                .await
                .map_err(EngineError::from),
        )?;
        let mut removed = 0;
        for container in containers {
            let labels = container.labels.unwrap_or_default();
            let Some(id) = container.id.filter(|_| select(&labels)) else {
                continue;
            };
            match self.remove_container(&id).await {
                Ok(()) => removed += 1,
                // 409: its removal is already under way.
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(e),
            }
        }
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let volumes = self.note(
            docker
                .list_volumes(Some(options))
                .await
                .map_err(EngineError::from),
        )?;
        for volume in volumes.volumes.unwrap_or_default() {
            if select(&volume.labels) {
                match self.remove_volume_retrying(&volume.name).await {
                    Ok(()) => removed += 1,
                    Err(e) if e.is_not_found() || e.is_conflict() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }

    /// Marks a container or volume as held by this process.
    pub fn hold(&self, id: &str) {
        self.held.lock().expect("held lock").insert(id.to_string());
    }

    /// Marks a container or volume as no longer held (removed, or left to
    /// [`Engine::remove_litter`]).
    pub fn release(&self, id: &str) {
        self.held.lock().expect("held lock").remove(id);
    }

    /// Removes the containers and volumes of this process (`instance`,
    /// `boot`) that it does not hold, once seen unheld twice in a row (so
    /// that one being created, not yet held, is spared): what a failed
    /// removal left. Returns how many went.
    pub async fn remove_litter(&self, instance: &str, boot: &str) -> Result<usize, EngineError> {
        let docker = self.client().await?;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL}={instance}"),
                format!("{BOOT_LABEL}={boot}"),
            ],
        )]);
        let containers = self.note(
            docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::default()
                        .all(true)
                        .filters(&filters)
                        .build(),
                ))
                .await
                .map_err(EngineError::from),
        )?;
        let volumes = self.note(
            docker
                .list_volumes(Some(
                    ListVolumesOptionsBuilder::default()
                        .filters(&filters)
                        .build(),
                ))
                .await
                .map_err(EngineError::from),
        )?;
        let found: Vec<(bool, String)> = containers
            .into_iter()
            .filter_map(|c| c.id)
            .map(|id| (true, id))
            .chain(
                volumes
                    .volumes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| (false, v.name)),
            )
            .collect();
        let unheld: HashSet<String> = {
            let held = self.held.lock().expect("held lock");
            found
                .iter()
                .filter(|(_, id)| !held.contains(id))
                .map(|(_, id)| id.clone())
                .collect()
        };
        let seen_before = std::mem::replace(
            &mut *self.litter.lock().expect("litter lock"),
            unheld.clone(),
        );
        let mut removed = 0;
        // Containers first: a volume in use cannot go.
        for (container, id) in found {
            if !(unheld.contains(&id) && seen_before.contains(&id)) {
                continue;
            }
            let result = if container {
                self.remove_container(&id).await
            } else {
                self.remove_volume_retrying(&id).await
            };
            match result {
                Ok(()) => removed += 1,
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Removes a volume, retrying for a few seconds while a container being
    /// removed still uses it (the engine answers 409).
    pub async fn remove_volume_retrying(&self, name: &str) -> Result<(), EngineError> {
        let mut result = self.remove_volume(name).await;
        for _ in 0..50 {
            match &result {
                Err(e) if e.is_conflict() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    result = self.remove_volume(name).await;
                }
                _ => break,
            }
        }
        result
    }

    /// Creates a tmpfs-backed volume, capped by `options` (the mount
    /// options of the tmpfs), carrying `labels`.
    pub async fn create_tmpfs_volume(
        &self,
        name: &str,
        options: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let docker = self.client().await?;
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".to_string()),
            driver_opts: Some(HashMap::from([
                ("type".to_string(), "tmpfs".to_string()),
                ("device".to_string(), "tmpfs".to_string()),
                ("o".to_string(), options.to_string()),
            ])),
            labels: Some(labels),
            ..Default::default()
        };
        let result = docker.create_volume(request).await.map(|_| ());
        self.note(result.map_err(EngineError::from))
    }

    /// Removes a volume.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let docker = self.client().await?;
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        let result = docker.remove_volume(name, Some(options)).await;
        self.note(result.map_err(EngineError::from))
    }

    /// Force-removes one container (killing it if it runs), with its
    /// anonymous volumes.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let docker = self.client().await?;
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let result = docker.remove_container(id, Some(options)).await;
        self.note(result.map_err(EngineError::from))
    }

    /// Passes a result through, remembering an unreachable engine.
    pub fn note<T>(&self, result: Result<T, EngineError>) -> Result<T, EngineError> {
        if let Err(EngineError::Unavailable(_)) = &result {
            self.mark_unavailable();
        }
        result
    }
}
