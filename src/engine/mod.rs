//! The Docker engine: the one module that talks to it (through bollard).
//!
//! [`Containers`] is the seam everything above stands on: the operations
//! sandboxes and their custody call (images, sandbox containers, scratch
//! volumes, listing by label). [`Engine`] is Docker's, one typed call per
//! Engine API call. Each failure is an [`EngineError`] naming its step, its
//! target and its cause; only a failure to reach the engine at all is
//! unreachable. The bookkeeping of an engine that went away (the next call
//! connects and negotiates the API version again, as it may come back as
//! another version) is done here, once, for every call.
//!
//! The engine may be down when the service starts: nothing is sent until
//! the first call.

mod body;
mod containers;
mod error;
#[cfg(test)]
pub(crate) mod fake;

use std::collections::HashMap;
use std::future::Future;
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
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt};

use crate::outcome::StreamKind;
pub(crate) use body::{BUILD_POINT, SandboxSpec, TOOLS_POINT, Work};
pub(crate) use containers::{
    Chunk, Containers, Created, ExitState, Input, Kind, Listed, Output, ToolFile, Usage,
};
pub(crate) use error::{EngineError, Step};

/// How long one Engine API request may take to answer (headers only:
/// attach and wait streams are bounded by the run's own deadline).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long version negotiation may take before the engine counts as down.
const NEGOTIATE_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on the Docker engine. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct Engine {
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
    pub(crate) fn connect(host: Option<&str>) -> Result<Engine, EngineError> {
        let engine = Engine {
            host: host.map(str::to_string),
            current: Mutex::new(None),
            metrics: None,
        };
        match engine.open() {
            Ok(_) | Err(bollard::errors::Error::SocketNotFoundError(_)) => Ok(engine),
            Err(e) => Err(EngineError::unreachable(Step::Connect, e.to_string())),
        }
    }

    /// Counts every failed call in `metrics` (`code_runner_docker_errors_total`).
    pub(crate) fn with_metrics(
        mut self,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Engine {
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
        let unreachable = |reason: String| EngineError::unreachable(step, reason);
        let docker = self.open().map_err(|e| unreachable(e.to_string()))?;
        let docker = tokio::time::timeout(NEGOTIATE_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 5 s".to_string()))?
            .map_err(|e| unreachable(e.to_string()))?;
        *self.current.lock().expect("engine lock") = Some(docker.clone());
        Ok(docker)
    }

    /// One call of `step` about `target`: `call` with the client, its
    /// failure classified and noted.
    async fn call<T, F, Fut>(&self, step: Step, target: &str, call: F) -> Result<T, EngineError>
    where
        F: FnOnce(Docker) -> Fut,
        Fut: Future<Output = Result<T, bollard::errors::Error>>,
    {
        let docker = self.client(step).await.map_err(|e| self.noted(e))?;
        let result = call(docker).await;
        self.settle(step, target, result)
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
    /// negotiates again; counts the failure (a 404 is an answer, not a
    /// failure).
    fn noted(&self, e: EngineError) -> EngineError {
        if e.is_unreachable() {
            *self.current.lock().expect("engine lock") = None;
        }
        if let Some(metrics) = &self.metrics
            && !e.is_not_found()
        {
            metrics.docker_error(e.step);
        }
        e
    }

    /// The OCI runtimes the engine knows (`runc`, `runsc`, ...).
    pub(crate) async fn runtimes(&self) -> Result<Vec<String>, EngineError> {
        let info = self
            .call(Step::Ping, "engine", |d| async move { d.info().await })
            .await?;
        let mut names: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        names.sort();
        Ok(names)
    }

    /// Whether the engine holds `image`.
    pub(crate) async fn image_present(&self, image: &str) -> Result<bool, EngineError> {
        let inspect = |d: Docker| async move { d.inspect_image(image).await };
        match self.call(Step::ImageInspect, image, inspect).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pulls `image` from its registry, to the end of the stream.
    pub(crate) async fn pull(&self, image: &str) -> Result<(), EngineError> {
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

    /// Creates a sandbox container from `spec`.
    pub(crate) async fn create(&self, spec: &SandboxSpec) -> Result<Created, EngineError> {
        let body = body::create_body(spec);
        let create = |d: Docker| async move { d.create_container(None, body).await };
        let created = self.call(Step::Create, &spec.image, create).await?;
        Ok(Created {
            id: created.id,
            warnings: created.warnings,
        })
    }

    /// Attaches to a created container's stdin, stdout and stderr.
    pub(crate) async fn attach(&self, id: &str) -> Result<(Input, Output), EngineError> {
        let options = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        let attach = |d: Docker| async move { d.attach_container(id, Some(options)).await };
        let attached = self.call(Step::Attach, id, attach).await?;
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
    pub(crate) async fn start(&self, id: &str) -> Result<(), EngineError> {
        let start = |d: Docker| async move { d.start_container(id, None).await };
        self.call(Step::Start, id, start).await
    }

    /// Resolves when the container has stopped (whatever its exit code).
    pub(crate) async fn wait(&self, id: &str) -> Result<(), EngineError> {
        let docker = self.client(Step::Wait).await.map_err(|e| self.noted(e))?;
        let mut wait = std::pin::pin!(docker.wait_container(id, None));
        match wait.next().await {
            // A non-zero exit comes as an error carrying the code.
            Some(Ok(_) | Err(bollard::errors::Error::DockerContainerWaitError { .. })) => Ok(()),
            Some(Err(e)) => self.settle(Step::Wait, id, Err(e)),
            None => Err(EngineError::answered(
                Step::Wait,
                id,
                None,
                "the wait stream ended without an exit",
            )),
        }
    }

    /// How a container ended (or `exit_code: None` while it runs).
    pub(crate) async fn inspect(&self, id: &str) -> Result<ExitState, EngineError> {
        let inspect = |d: Docker| async move { d.inspect_container(id, None).await };
        let inspected = self.call(Step::Inspect, id, inspect).await?;
        let state = inspected.state.unwrap_or_default();
        Ok(ExitState {
            exit_code: state.exit_code,
            oom_killed: state.oom_killed == Some(true),
        })
    }

    /// What a running container has used so far (one sample).
    pub(crate) async fn usage(&self, id: &str) -> Result<Usage, EngineError> {
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
    pub(crate) async fn kill(&self, id: &str) -> Result<(), EngineError> {
        let options = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        let kill = |d: Docker| async move { d.kill_container(id, Some(options)).await };
        match self.call(Step::Kill, id, kill).await {
            // 409: it is not running (it stopped on its own meanwhile).
            Err(e) if e.is_conflict() => Ok(()),
            other => other,
        }
    }

    /// Force-removes a container (killing it if it runs), with its
    /// anonymous volumes.
    pub(crate) async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let remove = |d: Docker| async move { d.remove_container(id, Some(options)).await };
        self.call(Step::Remove, id, remove).await
    }

    /// Creates a volume carrying `labels`: tmpfs-backed when `tmpfs` gives
    /// its mount options (size, inodes, owner, mode), else on the engine's
    /// disk.
    pub(crate) async fn create_volume(
        &self,
        name: &str,
        tmpfs: Option<&str>,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
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
        let create = |d: Docker| async move { d.create_volume(request).await.map(|_| ()) };
        self.call(Step::VolumeCreate, name, create).await
    }

    /// Writes `files` (name, mode, content) into the volume `volume`, owned
    /// by root: through a container of `image` that mounts it and is never
    /// started (the archive upload API writes into a created container's
    /// volumes), removed after.
    pub(crate) async fn fill_volume(
        &self,
        volume: &str,
        image: &str,
        files: &[ToolFile<'_>],
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let body = body::filler_body(image, volume, labels);
        let create = |d: Docker| async move { d.create_container(None, body).await };
        let id = self.call(Step::Create, image, create).await?.id;
        let uploaded = async {
            let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
                .path(body::FILL_POINT)
                .build();
            let tar = body::tar(files)
                .map_err(|e| EngineError::answered(Step::Upload, volume, None, e.to_string()))?;
            let id = id.as_str();
            let upload = |d: Docker| async move {
                (d.upload_to_container(id, Some(options), bollard::body_full(tar.into()))).await
            };
            self.call(Step::Upload, volume, upload).await
        }
        .await;
        let removed = self.remove_container(&id).await;
        uploaded.and(removed)
    }

    /// Removes a volume (the engine answers 409 while a container uses it).
    pub(crate) async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        let remove = |d: Docker| async move { d.remove_volume(name, Some(options)).await };
        self.call(Step::VolumeRemove, name, remove).await
    }

    /// The containers (running or not), then the volumes, carrying every
    /// label of `labels` (`key=value` each).
    pub(crate) async fn list(&self, labels: &[String]) -> Result<Vec<Listed>, EngineError> {
        let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = |d: Docker| async move { d.list_containers(Some(options)).await };
        let containers = self.call(Step::List, "containers", list).await?;
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = |d: Docker| async move { d.list_volumes(Some(options)).await };
        let volumes = self.call(Step::List, "volumes", list).await?;
        let containers = containers.into_iter().filter_map(|c| {
            Some(Listed {
                kind: Kind::Container,
                id: c.id?,
                labels: c.labels.unwrap_or_default(),
            })
        });
        let volumes = (volumes.volumes.unwrap_or_default().into_iter()).map(|v| Listed {
            kind: Kind::Volume,
            id: v.name,
            labels: v.labels,
        });
        Ok(containers.chain(volumes).collect())
    }
}

/// The real engine under the seam: each operation is the call of the same
/// name above.
impl Containers for Engine {
    fn runtimes(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        Engine::runtimes(self).boxed()
    }
    fn image_present<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, EngineError>> {
        Engine::image_present(self, image).boxed()
    }
    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Engine::pull(self, image).boxed()
    }
    fn create<'a>(&'a self, spec: &'a SandboxSpec) -> BoxFuture<'a, Result<Created, EngineError>> {
        Engine::create(self, spec).boxed()
    }
    fn attach<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(Input, Output), EngineError>> {
        Engine::attach(self, id).boxed()
    }
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Engine::start(self, id).boxed()
    }
    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Engine::wait(self, id).boxed()
    }
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ExitState, EngineError>> {
        Engine::inspect(self, id).boxed()
    }
    fn usage<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Usage, EngineError>> {
        Engine::usage(self, id).boxed()
    }
    fn kill<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Engine::kill(self, id).boxed()
    }
    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Engine::remove_container(self, id).boxed()
    }
    fn create_volume<'a>(
        &'a self,
        name: &'a str,
        tmpfs: Option<&'a str>,
        labels: HashMap<String, String>,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Engine::create_volume(self, name, tmpfs, labels).boxed()
    }
    fn fill_volume<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
        files: &'a [ToolFile<'a>],
        labels: HashMap<String, String>,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Engine::fill_volume(self, name, image, files, labels).boxed()
    }
    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Engine::remove_volume(self, name).boxed()
    }
    fn list<'a>(&'a self, labels: &'a [String]) -> BoxFuture<'a, Result<Vec<Listed>, EngineError>> {
        Engine::list(self, labels).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_engine_that_is_not_there_is_unreachable_and_tried_again_next_time() {
        let engine = Engine::connect(Some("unix:///nonexistent/docker.sock")).unwrap();
        for _ in 0..2 {
            let e = engine.runtimes().await.unwrap_err();
            assert!(e.is_unreachable(), "{e}");
        }
        assert!(engine.current.lock().unwrap().is_none());
    }
}
