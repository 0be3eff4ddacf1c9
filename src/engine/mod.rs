//! The Docker engine: the one module that talks to it (through bollard).
//!
//! [`Engine`] offers one typed operation per Engine API call the service
//! makes: images (present? pull), sandbox containers (create from a
//! [`SandboxSpec`], attach, start, wait, inspect, kill, remove), scratch
//! volumes, and listing by label. Each failure is an [`EngineError`] naming
//! its step and the container, volume or image, with the engine's message;
//! only a failure to reach the engine at all is
//! [`EngineError::Unreachable`]. The bookkeeping of an engine that went
//! away (the next call connects and negotiates the API version again, as it
//! may come back as another version) is done here, once, for every call.
//!
//! The engine may be down when the service starts: nothing is sent until
//! the first call.

mod body;

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWrite;

use crate::outcome::StreamKind;

pub use body::{BUILD_POINT, SandboxSpec, TOOLS_POINT, Work};

/// How long one Engine API request may take to answer (headers only:
/// attach and wait streams are bounded by the run's own deadline).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long version negotiation may take before the engine counts as down.
const NEGOTIATE_TIMEOUT: Duration = Duration::from_secs(5);

/// One kind of Engine API call, as errors and logs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    Ping,
    ImageInspect,
    ImagePull,
    Create,
    Attach,
    Start,
    Wait,
    Inspect,
    Kill,
    Stats,
    Remove,
    Upload,
    VolumeCreate,
    VolumeRemove,
    List,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::Ping => "ping",
            Step::ImageInspect => "image inspect",
            Step::ImagePull => "image pull",
            Step::Create => "container create",
            Step::Attach => "container attach",
            Step::Start => "container start",
            Step::Wait => "container wait",
            Step::Inspect => "container inspect",
            Step::Kill => "container kill",
            Step::Stats => "container stats",
            Step::Remove => "container remove",
            Step::Upload => "archive upload",
            Step::VolumeCreate => "volume create",
            Step::VolumeRemove => "volume remove",
            Step::List => "list",
        })
    }
}

/// What the engine answered to a call it refused (or what broke in its
/// answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The container, volume or image the call was about.
    pub target: String,
    /// The HTTP status the engine answered, if it answered one.
    pub status: Option<u16>,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(
                f,
                "{}: the engine answered {status}: {}",
                self.target, self.message
            ),
            None => write!(f, "{}: {}", self.target, self.message),
        }
    }
}

/// A failed Engine API call: the engine could not be reached, or one
/// variant per step with what the engine said.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("the Docker engine cannot be reached ({step}): {reason}")]
    Unreachable { step: Step, reason: String },
    #[error("ping {0}")]
    Ping(Failure),
    #[error("image inspect {0}")]
    ImageInspect(Failure),
    #[error("image pull {0}")]
    ImagePull(Failure),
    #[error("container create {0}")]
    Create(Failure),
    #[error("container attach {0}")]
    Attach(Failure),
    #[error("container start {0}")]
    Start(Failure),
    #[error("container wait {0}")]
    Wait(Failure),
    #[error("container inspect {0}")]
    Inspect(Failure),
    #[error("container kill {0}")]
    Kill(Failure),
    #[error("container stats {0}")]
    Stats(Failure),
    #[error("container remove {0}")]
    Remove(Failure),
    #[error("archive upload {0}")]
    Upload(Failure),
    #[error("volume create {0}")]
    VolumeCreate(Failure),
    #[error("volume remove {0}")]
    VolumeRemove(Failure),
    #[error("list {0}")]
    List(Failure),
}

impl EngineError {
    fn failed(step: Step, failure: Failure) -> EngineError {
        match step {
            Step::Connect | Step::Ping => EngineError::Ping(failure),
            Step::ImageInspect => EngineError::ImageInspect(failure),
            Step::ImagePull => EngineError::ImagePull(failure),
            Step::Create => EngineError::Create(failure),
            Step::Attach => EngineError::Attach(failure),
            Step::Start => EngineError::Start(failure),
            Step::Wait => EngineError::Wait(failure),
            Step::Inspect => EngineError::Inspect(failure),
            Step::Kill => EngineError::Kill(failure),
            Step::Stats => EngineError::Stats(failure),
            Step::Remove => EngineError::Remove(failure),
            Step::Upload => EngineError::Upload(failure),
            Step::VolumeCreate => EngineError::VolumeCreate(failure),
            Step::VolumeRemove => EngineError::VolumeRemove(failure),
            Step::List => EngineError::List(failure),
        }
    }

    /// Classifies a bollard error of `step` about `target`.
    fn from_bollard(step: Step, target: &str, e: bollard::errors::Error) -> EngineError {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::failed(
                step,
                Failure {
                    target: target.to_string(),
                    status: Some(status_code),
                    message,
                },
            ),
            e @ (B::RequestTimeoutError
            | B::IOError { .. }
            | B::HyperResponseError { .. }
            | B::HyperLegacyError { .. }
            | B::HttpClientError { .. }
            | B::SocketNotFoundError(_)) => EngineError::Unreachable {
                step,
                reason: e.to_string(),
            },
            e => EngineError::failed(
                step,
                Failure {
                    target: target.to_string(),
                    status: None,
                    message: e.to_string(),
                },
            ),
        }
    }

    /// The call that failed.
    pub fn step(&self) -> Step {
        match self {
            EngineError::Unreachable { step, .. } => *step,
            EngineError::Ping(_) => Step::Ping,
            EngineError::ImageInspect(_) => Step::ImageInspect,
            EngineError::ImagePull(_) => Step::ImagePull,
            EngineError::Create(_) => Step::Create,
            EngineError::Attach(_) => Step::Attach,
            EngineError::Start(_) => Step::Start,
            EngineError::Wait(_) => Step::Wait,
            EngineError::Inspect(_) => Step::Inspect,
            EngineError::Kill(_) => Step::Kill,
            EngineError::Stats(_) => Step::Stats,
            EngineError::Remove(_) => Step::Remove,
            EngineError::Upload(_) => Step::Upload,
            EngineError::VolumeCreate(_) => Step::VolumeCreate,
            EngineError::VolumeRemove(_) => Step::VolumeRemove,
            EngineError::List(_) => Step::List,
        }
    }

    /// The engine's answer, when it answered with an error.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            EngineError::Unreachable { .. } => None,
            EngineError::Ping(f)
            | EngineError::ImageInspect(f)
            | EngineError::ImagePull(f)
            | EngineError::Create(f)
            | EngineError::Attach(f)
            | EngineError::Start(f)
            | EngineError::Wait(f)
            | EngineError::Inspect(f)
            | EngineError::Kill(f)
            | EngineError::Stats(f)
            | EngineError::Remove(f)
            | EngineError::Upload(f)
            | EngineError::VolumeCreate(f)
            | EngineError::VolumeRemove(f)
            | EngineError::List(f) => Some(f),
        }
    }

    fn status(&self) -> Option<u16> {
        self.failure().and_then(|f| f.status)
    }

    /// Whether the engine answered 404 (no such container, volume or image).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the engine answered 409 (a state that conflicts: a volume in
    /// use, a removal already under way).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// Whether the engine could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, EngineError::Unreachable { .. })
    }
}

/// A chunk of a container's output.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub stream: StreamKind,
    pub bytes: Bytes,
}

/// A container's output, as attached.
pub type Output = Pin<Box<dyn Stream<Item = Result<Chunk, EngineError>> + Send>>;
/// A container's stdin, as attached.
pub type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// How a stopped container ended, as the engine saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitState {
    /// Its init process's exit status (128+N for signal N).
    pub exit_code: Option<i64>,
    /// Whether the engine saw the kernel kill a process of it for memory.
    pub oom_killed: bool,
}

/// What a running container has used so far, by its cgroup: `None` where
/// the engine gives no figure (a peak under cgroup v2, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// CPU time of all its processes, in ns.
    pub cpu_ns: Option<u64>,
    /// Peak memory, in bytes.
    pub memory_peak: Option<u64>,
}

/// A container or volume found by [`Engine::list`].
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub kind: Kind,
    /// A container's id, or a volume's name.
    pub id: String,
    pub labels: HashMap<String, String>,
}

/// What a resource of the engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Container,
    Volume,
}

/// A handle on the Docker engine. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Engine {
    /// The address given in the configuration, if any.
    host: Option<String>,
    /// The client, once connected and with its API version agreed.
    current: Mutex<Option<Docker>>,
    /// Where failed calls are counted, when metrics are kept.
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl Engine {
    /// Prepares a client for the engine at `host` (`unix://…`, `tcp://…`),
    /// or else the one `DOCKER_HOST` names, or else the local socket.
    /// Nothing is sent until the first call, and a socket that does not
    /// exist yet is fine. Fails only on an address it can never use.
    pub fn connect(host: Option<&str>) -> Result<Engine, EngineError> {
        let engine = Engine {
            host: host.map(str::to_string),
            current: Mutex::new(None),
            metrics: None,
        };
        match engine.open() {
            Ok(_) | Err(bollard::errors::Error::SocketNotFoundError(_)) => Ok(engine),
            Err(e) => Err(EngineError::Unreachable {
                step: Step::Connect,
                reason: e.to_string(),
            }),
        }
    }

    /// Counts every failed call in `metrics` (`code_runner_docker_errors_total`).
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Engine {
        self.metrics = Some(metrics);
        self
    }

    fn open(&self) -> Result<Docker, bollard::errors::Error> {
        let docker = match &self.host {
            Some(host) => Docker::connect_with_host(host),
            None => Docker::connect_with_defaults(),
        }?;
        Ok(docker.with_timeout(REQUEST_TIMEOUT))
    }

    /// The client, connected, with its API version agreed with the engine.
    async fn client(&self, step: Step) -> Result<Docker, EngineError> {
        if let Some(docker) = self.current.lock().expect("engine lock").clone() {
            return Ok(docker);
        }
        let unreachable = |reason: String| EngineError::Unreachable { step, reason };
        let docker = self.open().map_err(|e| unreachable(e.to_string()))?;
        let docker = tokio::time::timeout(NEGOTIATE_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 5 s".to_string()))?
            .map_err(|e| unreachable(e.to_string()))?;
        *self.current.lock().expect("engine lock") = Some(docker.clone());
        Ok(docker)
    }

    /// The result of a call of `step` about `target`, with the engine
    /// marked as gone when it could not be reached.
    fn settle<T>(
        &self,
        step: Step,
        target: &str,
        result: Result<T, bollard::errors::Error>,
    ) -> Result<T, EngineError> {
        result.map_err(|e| self.noted(EngineError::from_bollard(step, target, e)))
    }

    /// Remembers an unreachable engine, so that the next call connects and
    /// negotiates again.
    fn noted(&self, e: EngineError) -> EngineError {
        if e.is_unreachable() {
            *self.current.lock().expect("engine lock") = None;
        }
        // A 404 is an answer (no such container or image), not a failure.
        let not_found = e.failure().is_some_and(|f| f.status == Some(404));
        if let Some(metrics) = &self.metrics
            && !not_found
        {
            metrics.docker_error(e.step());
        }
        e
    }

    /// Checks that the engine answers.
    pub async fn ping(&self) -> Result<(), EngineError> {
        let docker = self.client(Step::Ping).await.map_err(|e| self.noted(e))?;
        self.settle(Step::Ping, "engine", docker.ping().await)
            .map(|_| ())
    }

    /// The OCI runtimes the engine knows (`runc`, `runsc`, ...).
    pub async fn runtimes(&self) -> Result<Vec<String>, EngineError> {
        let docker = self.client(Step::Ping).await.map_err(|e| self.noted(e))?;
        let info = self.settle(Step::Ping, "engine", docker.info().await)?;
        let mut names: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        names.sort();
        Ok(names)
    }

    /// Whether the engine holds `image`.
    pub async fn image_present(&self, image: &str) -> Result<bool, EngineError> {
        let docker = self
            .client(Step::ImageInspect)
            .await
            .map_err(|e| self.noted(e))?;
        match self.settle(Step::ImageInspect, image, docker.inspect_image(image).await) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pulls `image` from its registry, to the end of the stream.
    pub async fn pull(&self, image: &str) -> Result<(), EngineError> {
        let docker = self
            .client(Step::ImagePull)
            .await
            .map_err(|e| self.noted(e))?;
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            self.settle(Step::ImagePull, image, item)?;
        }
        Ok(())
    }

    /// Creates a sandbox container from `spec` (see [`SandboxSpec`] for the
    /// hardening applied); returns its id and the engine's warnings (a
    /// warning can mean a limit was not applied).
    pub async fn create(&self, spec: &SandboxSpec) -> Result<(String, Vec<String>), EngineError> {
        let docker = self.client(Step::Create).await.map_err(|e| self.noted(e))?;
        let created = docker.create_container(None, body::create_body(spec)).await;
        let created = self.settle(Step::Create, &spec.image, created)?;
        Ok((created.id, created.warnings))
    }

    /// Attaches to a created container's stdin, stdout and stderr (before
    /// it starts, so that no output is lost).
    pub async fn attach(&self, id: &str) -> Result<(Input, Output), EngineError> {
        let docker = self.client(Step::Attach).await.map_err(|e| self.noted(e))?;
        let options = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        let attached = docker.attach_container(id, Some(options)).await;
        let attached = self.settle(Step::Attach, id, attached)?;
        let target = id.to_string();
        let output = attached.output.filter_map(move |item| {
            let item = match item {
                Ok(LogOutput::StdOut { message }) => Some(Ok(Chunk {
                    stream: StreamKind::Stdout,
                    bytes: message,
                })),
                Ok(LogOutput::StdErr { message }) => Some(Ok(Chunk {
                    stream: StreamKind::Stderr,
                    bytes: message,
                })),
                Ok(LogOutput::StdIn { .. } | LogOutput::Console { .. }) => None,
                Err(e) => Some(Err(EngineError::from_bollard(Step::Attach, &target, e))),
            };
            std::future::ready(item)
        });
        Ok((attached.input, Box::pin(output)))
    }

    /// Starts a created container.
    pub async fn start(&self, id: &str) -> Result<(), EngineError> {
        let docker = self.client(Step::Start).await.map_err(|e| self.noted(e))?;
        self.settle(Step::Start, id, docker.start_container(id, None).await)
    }

    /// Resolves when the container has stopped (whatever its exit code).
    pub async fn wait(&self, id: &str) -> Result<(), EngineError> {
        let docker = self.client(Step::Wait).await.map_err(|e| self.noted(e))?;
        let mut wait = std::pin::pin!(docker.wait_container(id, None));
        match wait.next().await {
            // A non-zero exit comes as an error carrying the code.
            Some(Ok(_) | Err(bollard::errors::Error::DockerContainerWaitError { .. })) => Ok(()),
            Some(Err(e)) => self.settle(Step::Wait, id, Err(e)),
            None => Err(EngineError::Wait(Failure {
                target: id.to_string(),
                status: None,
                message: "the wait stream ended without an exit".to_string(),
            })),
        }
    }

    /// How a container ended (or `exit_code: None` while it runs).
    pub async fn inspect(&self, id: &str) -> Result<ExitState, EngineError> {
        let docker = self
            .client(Step::Inspect)
            .await
            .map_err(|e| self.noted(e))?;
        let inspected = self.settle(Step::Inspect, id, docker.inspect_container(id, None).await)?;
        let state = inspected.state.unwrap_or_default();
        Ok(ExitState {
            exit_code: state.exit_code,
            oom_killed: state.oom_killed == Some(true),
        })
    }

    /// What a running container has used so far (one sample).
    pub async fn usage(&self, id: &str) -> Result<Usage, EngineError> {
        let docker = self.client(Step::Stats).await.map_err(|e| self.noted(e))?;
        let options = bollard::query_parameters::StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stats = std::pin::pin!(docker.stats(id, Some(options)));
        let Some(sample) = stats.next().await else {
            return Ok(Usage::default());
        };
        let sample = self.settle(Step::Stats, id, sample)?;
        Ok(Usage {
            cpu_ns: sample
                .cpu_stats
                .and_then(|c| c.cpu_usage)
                .and_then(|u| u.total_usage)
                .filter(|&ns| ns > 0),
            memory_peak: sample
                .memory_stats
                .and_then(|m| m.max_usage)
                .filter(|&b| b > 0),
        })
    }

    /// Kills a container with SIGKILL; one that already stopped is fine.
    pub async fn kill(&self, id: &str) -> Result<(), EngineError> {
        let docker = self.client(Step::Kill).await.map_err(|e| self.noted(e))?;
        let options = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        match self.settle(
            Step::Kill,
            id,
            docker.kill_container(id, Some(options)).await,
        ) {
            // 409: it is not running (it stopped on its own meanwhile).
            Err(e) if e.is_conflict() => Ok(()),
            other => other,
        }
    }

    /// Force-removes a container (killing it if it runs), with its
    /// anonymous volumes.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let docker = self.client(Step::Remove).await.map_err(|e| self.noted(e))?;
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        self.settle(
            Step::Remove,
            id,
            docker.remove_container(id, Some(options)).await,
        )
    }

    /// Creates a volume carrying `labels`: tmpfs-backed when `tmpfs` gives
    /// its mount options (size, inodes, owner, mode), else on the engine's
    /// disk.
    pub async fn create_volume(
        &self,
        name: &str,
        tmpfs: Option<&str>,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let docker = self
            .client(Step::VolumeCreate)
            .await
            .map_err(|e| self.noted(e))?;
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".to_string()),
            driver_opts: tmpfs.map(|options| {
                HashMap::from([
                    ("type".to_string(), "tmpfs".to_string()),
                    ("device".to_string(), "tmpfs".to_string()),
                    ("o".to_string(), options.to_string()),
                ])
            }),

            labels: Some(labels),
            ..Default::default()
        };
        let created = docker.create_volume(request).await.map(|_| ());
        self.settle(Step::VolumeCreate, name, created)
    }

    /// Writes `files` (name, mode, content) into the volume `volume`, owned
    /// by root: through a container of `image` that mounts it and is never
    /// started (the archive upload API writes into a created container's
    /// volumes), removed after.
    pub async fn fill_volume(
        &self,
        volume: &str,
        image: &str,
        files: &[(&str, u32, &[u8])],
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let body = body::filler_body(image, volume, labels);
        let docker = self.client(Step::Create).await.map_err(|e| self.noted(e))?;
        let created = docker.create_container(None, body).await;
        let id = self.settle(Step::Create, image, created)?.id;
        let uploaded = async {
            let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
                .path(body::FILL_POINT)
                .build();
            let tar = body::tar(files).map_err(|e| {
                EngineError::failed(
                    Step::Upload,
                    Failure {
                        target: volume.to_string(),
                        status: None,
                        message: e.to_string(),
                    },
                )
            })?;
            let upload = docker
                .upload_to_container(&id, Some(options), bollard::body_full(tar.into()))
                .await;
            self.settle(Step::Upload, volume, upload)
        }
        .await;
        let removed = self.remove_container(&id).await;
        uploaded.and(removed)
    }

    /// Removes a volume (the engine answers 409 while a container uses it).
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let docker = self
            .client(Step::VolumeRemove)
            .await
            .map_err(|e| self.noted(e))?;
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        let removed = docker.remove_volume(name, Some(options)).await;
        self.settle(Step::VolumeRemove, name, removed)
    }

    /// The containers (running or not), then the volumes, carrying every
    /// label of `labels` (`key=value` each).
    pub async fn list(&self, labels: &[String]) -> Result<Vec<Listed>, EngineError> {
        let docker = self.client(Step::List).await.map_err(|e| self.noted(e))?;
        let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = docker.list_containers(Some(options)).await;
        let containers = self.settle(Step::List, "containers", containers)?;
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let volumes = self.settle(
            Step::List,
            "volumes",
            docker.list_volumes(Some(options)).await,
        )?;
        let containers = containers.into_iter().filter_map(|c| {
            Some(Listed {
                kind: Kind::Container,
                id: c.id?,
                labels: c.labels.unwrap_or_default(),
            })
        });
        let volumes = volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Listed {
                kind: Kind::Volume,
                id: v.name,
                labels: v.labels,
            });
        Ok(containers.chain(volumes).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transport_failures_count_as_unreachable() {
        use bollard::errors::Error as B;
        let e = EngineError::from_bollard(Step::Create, "img", B::RequestTimeoutError);
        assert!(e.is_unreachable());
        assert!(e.to_string().contains("container create"), "{e}");
        let e = EngineError::from_bollard(
            Step::Create,
            "python:3.13-slim",
            B::DockerResponseServerError {
                status_code: 404,
                message: "No such image".into(),
            },
        );
        assert!(!e.is_unreachable() && e.is_not_found());
        assert_eq!(
            e.to_string(),
            "container create python:3.13-slim: the engine answered 404: No such image"
        );
        let e = EngineError::from_bollard(
            Step::Inspect,
            "abc",
            B::JsonDataError {
                message: "bad".into(),
                column: 1,
            },
        );
        assert!(matches!(
            e,
            EngineError::Inspect(Failure { status: None, .. })
        ));
    }

    #[tokio::test]
    async fn an_engine_that_is_not_there_is_unreachable_and_tried_again_next_time() {
        let engine = Engine::connect(Some("unix:///nonexistent/docker.sock")).unwrap();
        for _ in 0..2 {
            let e = engine.ping().await.unwrap_err();
            assert!(e.is_unreachable(), "{e}");
        }
        assert!(engine.current.lock().unwrap().is_none());
    }
}
