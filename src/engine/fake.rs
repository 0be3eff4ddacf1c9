//! A scripted engine for the fast tier: its containers speak the real
//! stream protocol (`sandbox::protocol`): a started container says it is
//! ready when its bootstrap would (a warm-up or a pre-start hook), reads
//! the payload from its attached stdin (nonce, CPU-time limit, where
//! stderr goes, build, files, arguments, then the program's stdin), writes the start line,
//! plays what the test's [`Script`] says the program does, and ends with
//! the supervisor's trailers on both streams. Everything takes tokio's
//! time, so that tests run under `tokio::time::pause()` in milliseconds.
//!
//! Beside the script, a test can make any call fail ([`FakeEngine::fail`]),
//! make the engine unreachable, slow its creates down, and read back what
//! it did: containers alive, volumes, calls made, the most creates at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::sync::{mpsc, watch};

use super::{
    Chunk, Containers, Created, EngineError, ExitState, Input, Kind, Listed, Output, SandboxSpec,
    Step, ToolFile, Usage, Work,
};
use crate::job::Stderr;
use crate::outcome::{Exit, StreamKind};

/// What one program is, as its container received it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub(crate) id: String,
    pub(crate) image: String,
    /// `compile` or `run` (the stage label).
    pub(crate) stage: String,
    pub(crate) command: Vec<String>,
    pub(crate) uid: u32,
    pub(crate) cpu_ms: u64,
    /// The wall-time limit the supervisor holds it to (0: none).
    pub(crate) wall_ms: u64,
    /// Where its stderr goes: with [`Stderr::Merged`], the act's stderr is
    /// written on stdout, as the supervisor's one pipe would carry it.
    pub(crate) stderr: Stderr,
    /// The build folder to copy first, if any.
    pub(crate) build: Option<String>,
    /// The files wanted back, as the payload's line has them (`None`: `-`).
    pub(crate) outputs: Option<String>,
    pub(crate) files: Vec<(String, Vec<u8>)>,
    pub(crate) args: Vec<String>,
    pub(crate) stdin: Vec<u8>,
}

/// How a program's container ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The supervisor writes its trailers, then the container exits.
    Trailers,
    /// The container exits with the program's status and no trailers (the
    /// supervisor was killed).
    Dies,
    /// It runs until it is killed.
    Hangs,
    /// The container exits before the program starts (no start line).
    DiesBeforeStart,
    /// The trailers come, but the container goes on running (a program
    /// that forged them).
    Lingers,
}

/// What the test says a program does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Act {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) exit: Exit,
    /// How long it runs before it ends (or before it hangs).
    pub(crate) took: Duration,
    pub(crate) ending: Ending,
    /// The trailer's count of out-of-memory kills.
    pub(crate) oom_kills: u64,
    /// The engine's out-of-memory flag.
    pub(crate) oom_flag: bool,
    pub(crate) cpu: Duration,
    pub(crate) peak: u64,
    /// The supervisor stopped it at the CPU-time limit.
    pub(crate) cpu_limit: bool,
}

impl Act {
    /// Prints `stdout`, exits 0 after 5 ms.
    pub(crate) fn prints(stdout: &str) -> Act {
        Act {
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            exit: Exit::Code(0),
            took: Duration::from_millis(5),
            ending: Ending::Trailers,
            oom_kills: 0,
            oom_flag: false,
            cpu: Duration::from_millis(3),
            peak: 4096,
            cpu_limit: false,
        }
    }

    pub(crate) fn exit(self, exit: Exit) -> Act {
        Act { exit, ..self }
    }

    pub(crate) fn took(self, took: Duration) -> Act {
        Act { took, ..self }
    }

    pub(crate) fn ending(self, ending: Ending) -> Act {
        Act { ending, ..self }
    }
}

/// The test's script: what each program does.
pub(crate) type Script = Arc<dyn Fn(&Run) -> Act + Send + Sync>;

/// How the fake's containers warm up before they say they are ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Warmup {
    /// Ready after this long.
    After(Duration),
    /// Never ready (a warm-up that hangs).
    Never,
}

#[derive(Default)]
struct State {
    next: u64,
    containers: BTreeMap<String, Container>,
    volumes: BTreeMap<String, Volume>,
    images: HashSet<String>,
    runtimes: Vec<String>,
    failures: HashMap<Step, Vec<EngineError>>,
    unreachable: bool,
    warnings: Vec<String>,
    calls: Vec<(Step, String)>,
    creating: usize,
    most_creating: usize,
    removing: usize,
    most_removing: usize,
    runs: Vec<Run>,
}

struct Container {
    spec: SandboxSpec,
    /// The program's side of stdin, and the output's sender, until start.
    pipes: Option<(
        DuplexStream,
        mpsc::UnboundedSender<Result<Chunk, EngineError>>,
    )>,
    attached: Option<(Input, Output)>,
    started: bool,
    exit: Option<ExitState>,
    stopped: watch::Sender<bool>,
    task: Option<tokio::task::AbortHandle>,
    /// The usage a stats call reads (the act's, once it runs).
    usage: Usage,
    /// Whether the engine is to see an out-of-memory kill at the exit.
    oom_flag: bool,
}

#[derive(Debug, Clone, Default)]
struct Volume {
    labels: HashMap<String, String>,
    files: Vec<String>,
}

/// The scripted engine.
pub(crate) struct FakeEngine {
    state: Mutex<State>,
    script: Mutex<Script>,
    warmup: Mutex<Warmup>,
    create_took: Mutex<Duration>,
    remove_took: Mutex<Duration>,
}

impl std::fmt::Debug for FakeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEngine").finish_non_exhaustive()
    }
}

impl FakeEngine {
    /// An engine that holds `images`, knows `runc`, and whose programs
    /// print their stdin.
    pub(crate) fn new(images: &[&str]) -> Arc<FakeEngine> {
        let state = State {
            images: images.iter().map(|i| i.to_string()).collect(),
            runtimes: vec!["runc".to_string()],
            ..State::default()
        };
        Arc::new(FakeEngine {
            state: Mutex::new(state),
            script: Mutex::new(Arc::new(|run: &Run| {
                Act::prints(&String::from_utf8_lossy(&run.stdin))
            })),
            warmup: Mutex::new(Warmup::After(Duration::from_millis(20))),
            create_took: Mutex::new(Duration::from_millis(2)),
            remove_took: Mutex::new(Duration::from_millis(1)),
        })
    }

    /// What the programs do from now on.
    pub(crate) fn script(&self, script: impl Fn(&Run) -> Act + Send + Sync + 'static) {
        *self.script.lock().unwrap() = Arc::new(script);
    }

    pub(crate) fn set_warmup(&self, warmup: Warmup) {
        *self.warmup.lock().unwrap() = warmup;
    }

    /// How long each create takes from now on.
    pub(crate) fn set_create_took(&self, took: Duration) {
        *self.create_took.lock().unwrap() = took;
    }

    /// How long each container removal takes from now on.
    pub(crate) fn set_remove_took(&self, took: Duration) {
        *self.remove_took.lock().unwrap() = took;
    }

    /// The most container removals that were under way at once.
    pub(crate) fn most_removing(&self) -> usize {
        self.state.lock().unwrap().most_removing
    }

    /// The next `times` calls of `step` fail with `error`.
    pub(crate) fn fail(&self, step: Step, times: usize, error: EngineError) {
        let mut state = self.state.lock().unwrap();
        let queue = state.failures.entry(step).or_default();
        queue.extend(std::iter::repeat_n(error, times));
    }

    /// Every call fails as unreachable (or works again).
    pub(crate) fn set_unreachable(&self, unreachable: bool) {
        self.state.lock().unwrap().unreachable = unreachable;
    }

    /// The warnings every create answers from now on.
    pub(crate) fn set_warnings(&self, warnings: &[&str]) {
        self.state.lock().unwrap().warnings = warnings.iter().map(|w| w.to_string()).collect();
    }

    pub(crate) fn add_runtime(&self, runtime: &str) {
        self.state
            .lock()
            .unwrap()
            .runtimes
            .push(runtime.to_string());
    }

    /// Containers not removed yet.
    pub(crate) fn containers(&self) -> usize {
        self.state.lock().unwrap().containers.len()
    }

    /// Containers running now.
    pub(crate) fn running(&self) -> usize {
        let state = self.state.lock().unwrap();
        (state.containers.values())
            .filter(|c| c.started && c.exit.is_none())
            .count()
    }

    /// Volumes not removed yet.
    pub(crate) fn volumes(&self) -> usize {
        self.state.lock().unwrap().volumes.len()
    }

    /// The files written into volume `name`.
    pub(crate) fn volume_files(&self, name: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .volumes
            .get(name)
            .map(|v| v.files.clone())
            .unwrap_or_default()
    }

    /// Containers and volumes left: none after a test that cleaned up.
    pub(crate) fn left(&self) -> usize {
        self.containers() + self.volumes()
    }

    /// How many calls of `step` were made.
    pub(crate) fn calls(&self, step: Step) -> usize {
        let state = self.state.lock().unwrap();
        state.calls.iter().filter(|(s, _)| *s == step).count()
    }

    /// The targets of the calls of `step`, in order.
    pub(crate) fn targets(&self, step: Step) -> Vec<String> {
        let state = self.state.lock().unwrap();
        (state.calls.iter())
            .filter(|(s, _)| *s == step)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// The most creates that were under way at once.
    pub(crate) fn most_creating(&self) -> usize {
        self.state.lock().unwrap().most_creating
    }

    /// Every program that ran, in the order they were fed.
    pub(crate) fn runs(&self) -> Vec<Run> {
        self.state.lock().unwrap().runs.clone()
    }

    /// The specs of the containers alive now.
    pub(crate) fn specs(&self) -> Vec<SandboxSpec> {
        let state = self.state.lock().unwrap();
        state.containers.values().map(|c| c.spec.clone()).collect()
    }

    /// Puts a container or volume of the engine's own there, as another
    /// process would have left it.
    pub(crate) fn plant(&self, kind: Kind, id: &str, labels: HashMap<String, String>) {
        let mut state = self.state.lock().unwrap();
        match kind {
            Kind::Volume => {
                let volume = Volume {
                    labels,
                    files: Vec::new(),
                };
                state.volumes.insert(id.to_string(), volume);
            }
            Kind::Container => {
                let spec = SandboxSpec {
                    labels,
                    ..planted_spec()
                };
                let container = Container::new(spec);
                state.containers.insert(id.to_string(), container);
            }
        }
    }

    /// Stops a running container from outside (as `docker kill` would).
    pub(crate) fn kill_from_outside(&self, id: &str) {
        self.stop(id, 137);
    }

    /// The ids of the containers alive now.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .containers
            .keys()
            .cloned()
            .collect()
    }

    /// A call of `step` about `target`: noted, then failed if the test said
    /// so.
    fn enter(&self, step: Step, target: &str) -> Result<(), EngineError> {
        let mut state = self.state.lock().unwrap();
        state.calls.push((step, target.to_string()));
        if state.unreachable {
            return Err(EngineError::unreachable(step, "the fake engine is away"));
        }
        match state.failures.get_mut(&step) {
            Some(queue) if !queue.is_empty() => Err(queue.remove(0)),
            _ => Ok(()),
        }
    }

    fn not_found(step: Step, target: &str) -> EngineError {
        EngineError::answered(step, target, Some(404), format!("No such thing: {target}"))
    }

    /// Ends container `id` with `code`: its output closes and its waiters
    /// wake.
    fn stop(&self, id: &str, code: i64) {
        let mut state = self.state.lock().unwrap();
        let Some(container) = state.containers.get_mut(id) else {
            return;
        };
        if let Some(task) = container.task.take() {
            task.abort();
        }
        container.pipes = None;
        if container.exit.is_none() && container.started {
            container.exit = Some(ExitState {
                exit_code: Some(code),
                oom_killed: false,
            });
        }
        container.stopped.send_replace(true);
    }

    async fn create_container(&self, spec: &SandboxSpec) -> Result<Created, EngineError> {
        self.enter(Step::Create, &spec.image)?;
        {
            let mut state = self.state.lock().unwrap();
            if !state.images.contains(&spec.image) {
                return Err(FakeEngine::not_found(Step::Create, &spec.image));
            }
            if let Some(runtime) = spec
                .runtime
                .as_ref()
                .filter(|r| !state.runtimes.contains(r))
            {
                let message = format!("Unknown runtime specified {runtime}");
                return Err(EngineError::answered(
                    Step::Create,
                    &spec.image,
                    Some(400),
                    message,
                ));
            }
            state.creating += 1;
            state.most_creating = state.most_creating.max(state.creating);
        }
        let took = *self.create_took.lock().unwrap();
        let done = Done(self);
        tokio::time::sleep(took).await;
        drop(done);
        let mut state = self.state.lock().unwrap();
        state.next += 1;
        let id = format!("fake{:04}", state.next);
        state
            .containers
            .insert(id.clone(), Container::new(spec.clone()));
        Ok(Created {
            id,
            warnings: state.warnings.clone(),
        })
    }

    fn attach_container(&self, id: &str) -> Result<(Input, Output), EngineError> {
        self.enter(Step::Attach, id)?;
        let mut state = self.state.lock().unwrap();
        let container =
            (state.containers.get_mut(id)).ok_or_else(|| Self::not_found(Step::Attach, id))?;
        container
            .attached
            .take()
            .ok_or_else(|| EngineError::answered(Step::Attach, id, Some(409), "attached twice"))
    }

    fn start_container(self: &Arc<Self>, id: &str) -> Result<(), EngineError> {
        self.enter(Step::Start, id)?;
        let mut state = self.state.lock().unwrap();
        let container =
            (state.containers.get_mut(id)).ok_or_else(|| Self::not_found(Step::Start, id))?;
        let Some((stdin, output)) = container.pipes.take() else {
            return Err(EngineError::answered(
                Step::Start,
                id,
                Some(409),
                "started twice",
            ));
        };
        container.started = true;
        let spec = container.spec.clone();
        let warmup = *self.warmup.lock().unwrap();
        let script = self.script.lock().unwrap().clone();
        let engine = self.clone();
        let id = id.to_string();
        let task = tokio::spawn({
            let id = id.clone();
            async move {
                let code = bootstrap(&engine, &id, spec, stdin, &output, warmup, script).await;
                drop(output);
                if let Some(code) = code {
                    engine.exited(&id, code);
                }
            }
        });
        container.task = Some(task.abort_handle());
        Ok(())
    }

    /// The program of `id` ended by itself with `code`.
    fn exited(&self, id: &str, code: i64) {
        let mut state = self.state.lock().unwrap();
        if let Some(container) = state.containers.get_mut(id) {
            container.task = None;
            if container.exit.is_none() {
                container.exit = Some(ExitState {
                    exit_code: Some(code),
                    oom_killed: container.oom_flag,
                });
            }
            container.stopped.send_replace(true);
        }
    }

    fn note_run(&self, run: &Run, act: &Act) {
        let mut state = self.state.lock().unwrap();
        state.runs.push(run.clone());
        if let Some(container) = state.containers.get_mut(&run.id) {
            container.usage = Usage {
                cpu_ns: Some(act.cpu.as_nanos() as u64),
                memory_peak: Some(act.peak),
            };
            container.oom_flag = act.oom_flag;
        }
    }

    async fn wait_container(&self, id: &str) -> Result<(), EngineError> {
        self.enter(Step::Wait, id)?;
        let mut stopped = {
            let state = self.state.lock().unwrap();
            let container =
                (state.containers.get(id)).ok_or_else(|| Self::not_found(Step::Wait, id))?;
            container.stopped.subscribe()
        };
        // A removed container's sender is gone: it stopped too.
        let _ = stopped.wait_for(|stopped| *stopped).await;
        Ok(())
    }

    fn inspect_container(&self, id: &str) -> Result<ExitState, EngineError> {
        self.enter(Step::Inspect, id)?;
        let state = self.state.lock().unwrap();
        let container =
            (state.containers.get(id)).ok_or_else(|| Self::not_found(Step::Inspect, id))?;
        Ok(container.exit.unwrap_or_default())
    }

    fn container_usage(&self, id: &str) -> Result<Usage, EngineError> {
        self.enter(Step::Stats, id)?;
        let state = self.state.lock().unwrap();
        let container =
            (state.containers.get(id)).ok_or_else(|| Self::not_found(Step::Stats, id))?;
        Ok(container.usage)
    }

    fn kill_container(&self, id: &str) -> Result<(), EngineError> {
        self.enter(Step::Kill, id)?;
        if !self.state.lock().unwrap().containers.contains_key(id) {
            return Err(Self::not_found(Step::Kill, id));
        }
        self.stop(id, 137);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        self.enter(Step::Remove, id)?;
        {
            let mut state = self.state.lock().unwrap();
            state.removing += 1;
            state.most_removing = state.most_removing.max(state.removing);
        }
        let took = *self.remove_took.lock().unwrap();
        tokio::time::sleep(took).await;
        self.state.lock().unwrap().removing -= 1;
        self.stop(id, 137);
        let mut state = self.state.lock().unwrap();
        match state.containers.remove(id) {
            Some(_) => Ok(()),
            None => Err(Self::not_found(Step::Remove, id)),
        }
    }

    fn volume_create(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        self.enter(Step::VolumeCreate, name)?;
        let volume = Volume {
            labels,
            files: Vec::new(),
        };
        self.state
            .lock()
            .unwrap()
            .volumes
            .insert(name.to_string(), volume);
        Ok(())
    }

    fn volume_remove(&self, name: &str) -> Result<(), EngineError> {
        self.enter(Step::VolumeRemove, name)?;
        let mut state = self.state.lock().unwrap();
        let in_use = state.containers.values().any(|c| {
            c.spec.work == Work::Volume(name.to_string())
                || c.spec.build.as_deref() == Some(name)
                || c.spec.tools == name
        });
        if in_use {
            let message = format!("remove {name}: volume is in use");
            return Err(EngineError::answered(
                Step::VolumeRemove,
                name,
                Some(409),
                message,
            ));
        }
        match state.volumes.remove(name) {
            Some(_) => Ok(()),
            None => Err(Self::not_found(Step::VolumeRemove, name)),
        }
    }

    fn volume_fill(
        &self,
        name: &str,
        image: &str,
        files: &[ToolFile<'_>],
    ) -> Result<(), EngineError> {
        self.enter(Step::Create, image)?;
        let mut state = self.state.lock().unwrap();
        if !state.images.contains(image) {
            return Err(Self::not_found(Step::Create, image));
        }
        let volume =
            (state.volumes.get_mut(name)).ok_or_else(|| Self::not_found(Step::Upload, name))?;
        volume.files = files.iter().map(|(path, _, _)| path.to_string()).collect();
        Ok(())
    }

    fn listed(&self, labels: &[String]) -> Result<Vec<Listed>, EngineError> {
        self.enter(Step::List, "containers")?;
        let state = self.state.lock().unwrap();
        let wanted = |have: &HashMap<String, String>| {
            labels.iter().all(|label| {
                let (key, value) = label.split_once('=').unwrap_or((label, ""));
                have.get(key).is_some_and(|v| v == value)
            })
        };
        let containers = (state.containers.iter())
            .filter(|(_, c)| wanted(&c.spec.labels))
            .map(|(id, c)| Listed {
                kind: Kind::Container,
                id: id.clone(),
                labels: c.spec.labels.clone(),
            });
        let volumes = (state.volumes.iter())
            .filter(|(_, v)| wanted(&v.labels))
            .map(|(id, v)| Listed {
                kind: Kind::Volume,
                id: id.clone(),
                labels: v.labels.clone(),
            });
        Ok(containers.chain(volumes).collect())
    }
}

/// Counts a create as under way until dropped.
struct Done<'a>(&'a FakeEngine);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap().creating -= 1;
    }
}

impl Container {
    fn new(spec: SandboxSpec) -> Container {
        let (input, stdin) = tokio::io::duplex(1 << 16);
        let (sender, receiver) = mpsc::unbounded_channel();
        let output: Output = Box::pin(futures_util::stream::unfold(receiver, |mut rx| async {
            rx.recv().await.map(|chunk| (chunk, rx))
        }));
        let input: Input = Box::pin(input);
        Container {
            spec,
            pipes: Some((stdin, sender)),
            attached: Some((input, output)),
            started: false,
            exit: None,
            stopped: watch::channel(false).0,
            task: None,
            usage: Usage::default(),
            oom_flag: false,
        }
    }
}

fn planted_spec() -> SandboxSpec {
    SandboxSpec {
        image: "planted".into(),
        uid: 0,
        entrypoint: Vec::new(),
        command: Vec::new(),
        env: Vec::new(),
        labels: HashMap::new(),
        working_dir: "/work".into(),
        work: Work::Tmpfs(String::new()),
        tmpfs: Vec::new(),
        memory_bytes: 0,
        cpus: 1.0,
        pids: 1,
        nproc: None,
        open_files: 1,
        file_size: 1,
        runtime: None,
        security_opt: Vec::new(),
        tools: String::new(),
        build: None,
    }
}

type Sender = mpsc::UnboundedSender<Result<Chunk, EngineError>>;

fn send(output: &Sender, stream: StreamKind, bytes: &[u8]) {
    if !bytes.is_empty() {
        let _ = output.send(Ok(Chunk {
            stream,
            bytes: Bytes::copy_from_slice(bytes),
        }));
    }
}

/// What a sandbox's bootstrap and supervisor do in the fake: the warm-up's
/// ready line (when the sandbox has a warm-up or a pre-start hook), the
/// payload read, the start line, the program's act, the trailers. The
/// container's exit status, or `None` when it hangs until killed.
async fn bootstrap(
    engine: &FakeEngine,
    id: &str,
    spec: SandboxSpec,
    mut stdin: DuplexStream,
    output: &Sender,
    warmup: Warmup,
    script: Script,
) -> Option<i64> {
    let warms = spec.entrypoint.get(5).is_some_and(|w| !w.is_empty())
        || spec.entrypoint.get(6).is_some_and(|p| !p.is_empty());
    if warms {
        match warmup {
            Warmup::After(took) => tokio::time::sleep(took).await,
            Warmup::Never => std::future::pending::<()>().await,
        }
        send(output, StreamKind::Stdout, b"code-runner-ready\n");
    }
    let mut payload = Vec::new();
    // The payload's end is its stdin's end: the sandbox closes it.
    if stdin.read_to_end(&mut payload).await.is_err() {
        return Some(1);
    }
    let Some((nonce, mut run)) = decode(&payload) else {
        send(output, StreamKind::Stderr, b"bootstrap: a broken payload\n");
        return Some(2);
    };
    run.id = id.to_string();
    run.image = spec.image.clone();
    run.stage = spec
        .labels
        .get("code-runner.stage")
        .cloned()
        .unwrap_or_default();
    run.command = spec.command.clone();
    run.uid = spec.uid;
    let act = script(&run);
    engine.note_run(&run, &act);
    if act.ending == Ending::DiesBeforeStart {
        send(output, StreamKind::Stderr, &act.stderr);
        return Some(act.exit.status());
    }
    send(
        output,
        StreamKind::Stdout,
        format!("{nonce}:start:0\n").as_bytes(),
    );
    let wall = (run.wall_ms > 0).then(|| Duration::from_millis(run.wall_ms));
    let acted = act_out(&act, &nonce, run.stderr, output);
    match wall {
        None => acted.await,
        // The supervisor stops the program at its wall-time limit and
        // reports it.
        Some(wall) => match tokio::time::timeout(wall, acted).await {
            Ok(status) => status,
            Err(_) => {
                let trailer = trailer(&nonce, "s9", &act, "wall");
                send(output, StreamKind::Stdout, trailer.as_bytes());
                send(output, StreamKind::Stderr, trailer.as_bytes());
                tokio::time::sleep(Duration::from_millis(1)).await;
                Some(137)
            }
        },
    }
}

/// The trailer the supervisor writes.
fn trailer(nonce: &str, how: &str, act: &Act, limit: &str) -> String {
    format!(
        "{nonce}:{how}:{}:{}:{}:{limit}\n",
        act.oom_kills,
        act.cpu.as_micros(),
        act.peak
    )
}

/// The program's act after its start line, to its trailers; the
/// container's exit status, or `None` when it hangs until killed.
async fn act_out(act: &Act, nonce: &str, stderr: Stderr, output: &Sender) -> Option<i64> {
    tokio::time::sleep(act.took).await;
    send(output, StreamKind::Stdout, &act.stdout);
    let onto = match stderr {
        Stderr::Apart => StreamKind::Stderr,
        Stderr::Merged => StreamKind::Stdout,
    };
    send(output, onto, &act.stderr);
    match act.ending {
        Ending::Hangs => {
            std::future::pending::<()>().await;
            None
        }
        Ending::Dies => Some(act.exit.status()),
        Ending::Trailers | Ending::Lingers | Ending::DiesBeforeStart => {
            let how = match act.exit {
                Exit::Code(code) => format!("x{code}"),
                Exit::Signal(signal) => format!("s{}", signal.0),
            };
            let limit = if act.cpu_limit { "cpu" } else { "-" };
            let trailer = trailer(nonce, &how, act, limit);
            send(output, StreamKind::Stdout, trailer.as_bytes());
            send(output, StreamKind::Stderr, trailer.as_bytes());
            if act.ending == Ending::Lingers {
                std::future::pending::<()>().await;
            }
            // The bootstrap exits with the program's status, a moment
            // after its trailers.
            tokio::time::sleep(Duration::from_millis(1)).await;
            Some(act.exit.status())
        }
    }
}

/// The nonce and the program of a payload (`sandbox::protocol::encode`'s
/// stream), read exactly as the bootstrap reads it (each size, then that
/// many bytes; the rest is the program's stdin), or `None` when it is
/// broken.
fn decode(payload: &[u8]) -> Option<(String, Run)> {
    let mut at = 0;
    let line = |at: &mut usize| -> Option<String> {
        let end = payload[*at..].iter().position(|&b| b == b'\n')? + *at;
        let text = String::from_utf8(payload[*at..end].to_vec()).ok()?;
        *at = end + 1;
        Some(text)
    };
    let take = |at: &mut usize, size: usize| -> Option<Vec<u8>> {
        let bytes = payload.get(*at..*at + size)?.to_vec();
        *at += size;
        Some(bytes)
    };
    let nonce = line(&mut at)?;
    let cpu_ms = line(&mut at)?.parse().ok()?;
    let wall_ms = line(&mut at)?.parse().ok()?;
    let framed = line(&mut at)? == "framed";
    let stderr = match line(&mut at)?.as_str() {
        "-" => Stderr::Apart,
        "merged" => Stderr::Merged,
        _ => return None,
    };
    let build = Some(line(&mut at)?).filter(|b| b != "-");
    let outputs = Some(line(&mut at)?).filter(|o| o != "-");
    let mut files = Vec::new();
    for _ in 0..line(&mut at)?.parse::<usize>().ok()? {
        let size = line(&mut at)?.parse().ok()?;
        let name = line(&mut at)?;
        files.push((name, take(&mut at, size)?));
    }
    let mut args = Vec::new();
    for _ in 0..line(&mut at)?.parse::<usize>().ok()? {
        let size = line(&mut at)?.parse().ok()?;
        args.push(String::from_utf8(take(&mut at, size)?).ok()?);
    }
    let run = Run {
        id: String::new(),
        image: String::new(),
        stage: String::new(),
        command: Vec::new(),
        uid: 0,
        cpu_ms,
        wall_ms,
        stderr,
        build,
        outputs,
        files,
        args,
        stdin: if framed {
            unframe(&payload[at..])?
        } else {
            payload[at..].to_vec()
        },
    };
    Some((nonce, run))
}

/// The stdin data of a streamed run's frames, up to its `e` frame (the
/// fake's program reads it whole; signals are not acted).
fn unframe(mut frames: &[u8]) -> Option<Vec<u8>> {
    let mut stdin = Vec::new();
    while let Some(end) = frames.iter().position(|&b| b == b'\n') {
        let head = std::str::from_utf8(&frames[..end]).ok()?;
        frames = &frames[end + 1..];
        if let Some(size) = head.strip_prefix('d') {
            let size: usize = size.parse().ok()?;
            stdin.extend_from_slice(frames.get(..size)?);
            frames = &frames[size..];
        } else if head == "e" {
            break;
        }
    }
    Some(stdin)
}

/// The fake under the seam.
impl Containers for Arc<FakeEngine> {
    fn runtimes(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        async move {
            self.enter(Step::Ping, "engine")?;
            Ok(self.state.lock().unwrap().runtimes.clone())
        }
        .boxed()
    }
    fn image_present<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, EngineError>> {
        async move {
            self.enter(Step::ImageInspect, image)?;
            Ok(self.state.lock().unwrap().images.contains(image))
        }
        .boxed()
    }
    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        async move {
            self.enter(Step::ImagePull, image)?;
            self.state.lock().unwrap().images.insert(image.to_string());
            Ok(())
        }
        .boxed()
    }
    fn create<'a>(&'a self, spec: &'a SandboxSpec) -> BoxFuture<'a, Result<Created, EngineError>> {
        self.create_container(spec).boxed()
    }
    fn attach<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(Input, Output), EngineError>> {
        async move { self.attach_container(id) }.boxed()
    }
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        async move { self.start_container(id) }.boxed()
    }
    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        self.wait_container(id).boxed()
    }
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ExitState, EngineError>> {
        async move { self.inspect_container(id) }.boxed()
    }
    fn usage<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Usage, EngineError>> {
        async move { self.container_usage(id) }.boxed()
    }
    fn kill<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        async move { self.kill_container(id) }.boxed()
    }
    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        self.remove(id).boxed()
    }
    fn create_volume<'a>(
        &'a self,
        name: &'a str,
        _tmpfs: Option<&'a str>,
        labels: HashMap<String, String>,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        async move { self.volume_create(name, labels) }.boxed()
    }
    fn fill_volume<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
        files: &'a [ToolFile<'a>],
        _labels: HashMap<String, String>,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        async move { self.volume_fill(name, image, files) }.boxed()
    }
    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        async move { self.volume_remove(name) }.boxed()
    }
    fn list<'a>(&'a self, labels: &'a [String]) -> BoxFuture<'a, Result<Vec<Listed>, EngineError>> {
        async move { self.listed(labels) }.boxed()
    }
}
