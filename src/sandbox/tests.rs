//! One sandbox's life over the fake engine, under paused time: what goes
//! in, how each ending is read, what is removed on every path.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::container::{Payload, StageBounds};
use super::error::{SandboxError, Unreported};
use super::protocol::{Clock, Terms};
use super::spec::{Launch, Start};
use super::watch::CpuBound;
use crate::engine::fake::{Act, Ending, FakeEngine, Run};
use crate::engine::{EngineError, Step};
use crate::job::{SourceFile, Stage, Stderr};
use crate::language::Language;
use crate::outcome::{Exit, LimitHit, Phase, Signal, StageResult, Status, StreamKind};
use crate::testing::{PYTHON_IMAGE, Rig, pool, registry};

fn python() -> Arc<Language> {
    registry().get("python").unwrap()
}

fn bounds(wall_ms: u64, output_bytes: usize) -> StageBounds {
    StageBounds {
        wall_time: Duration::from_millis(wall_ms),
        output_bytes,
        cpu: None,
    }
}

fn payload(stdin: &str) -> Payload {
    let main = SourceFile {
        name: "main.py".into(),
        content: b"print(input())".to_vec(),
    };
    let args = vec!["one".to_string(), "two words".to_string()];
    let terms = Terms {
        clock: Clock {
            cpu: Some(Duration::from_secs(2)),
            wall: None,
        },
        ..Terms::default()
    };
    Payload::new(terms, &[&main], &args, stdin.as_bytes(), None)
}

/// Runs one cold python stage with `stdin` under `bounds` on `rig`.
async fn run_on(rig: &Rig, stdin: &str, bounds: StageBounds) -> Result<StageResult, SandboxError> {
    run_fed(rig, payload(stdin), bounds).await
}

/// Runs one cold python stage fed `payload` under `bounds` on `rig`.
async fn run_fed(
    rig: &Rig,
    payload: Payload,
    bounds: StageBounds,
) -> Result<StageResult, SandboxError> {
    let python = python();
    let launch = Launch {
        language: &python,
        stage: Stage::Run,
        limits: &python.limits,
        volume: None,
        build: None,
        start: Start::Cold,
    };
    let uid = rig.launcher.lease().await;
    let sandbox = rig.launcher.launch(launch, &uid, Some(payload)).await?;
    let stop = CancellationToken::new();
    Ok(sandbox.execute(None, bounds, &stop).await?.result)
}

async fn run(rig: &Rig, stdin: &str) -> Result<StageResult, SandboxError> {
    run_on(rig, stdin, bounds(5000, 1 << 16)).await
}

fn rig_with(script: impl Fn(&Run) -> Act + Send + Sync + 'static) -> Rig {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(script);
    rig
}

#[tokio::test(start_paused = true)]
async fn a_cold_run_gets_its_files_arguments_and_stdin_and_reports_the_trailers_figures() {
    let rig = Rig::new(pool(0, 1, 0));
    let result = run(&rig, "hello\n").await.unwrap();
    assert_eq!(result.status(), Status::Ok);
    assert_eq!((result.exit, result.limit), (Some(Exit::Code(0)), None));
    assert_eq!(result.stdout, "hello\n");
    assert_eq!(result.usage.cpu_time, Some(Duration::from_millis(3)));
    assert_eq!(result.usage.memory_peak, Some(4096));
    let runs = rig.fake.runs();
    assert_eq!(runs.len(), 1);
    let program = &runs[0];
    assert_eq!(
        program.files,
        [("main.py".into(), b"print(input())".to_vec())]
    );
    assert_eq!(program.args, ["one", "two words"]);
    assert_eq!(program.stdin, b"hello\n");
    assert_eq!((program.cpu_ms, program.stage.as_str()), (2000, "run"));
    assert_eq!(program.command, ["python3", "main.py"]);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn every_sandbox_gets_a_uid_of_its_own_the_seccomp_profile_and_the_tools_volume() {
    let rig = Rig::new(pool(0, 1, 0));
    let python = python();
    let launch = Launch {
        language: &python,
        stage: Stage::Run,
        limits: &python.limits,
        volume: None,
        build: None,
        start: Start::Cold,
    };
    let (a, b) = (rig.launcher.lease().await, rig.launcher.lease().await);
    let first = rig.launcher.launch(launch, &a, None).await.unwrap();
    let second = rig.launcher.launch(launch, &b, None).await.unwrap();
    let specs = rig.fake.specs();
    assert_eq!(specs.len(), 2);
    assert_ne!(specs[0].uid, specs[1].uid);
    for spec in &specs {
        assert!(
            spec.security_opt[0].starts_with("seccomp={"),
            "{:?}",
            spec.security_opt
        );
        assert_eq!(spec.tools, "code-runner-tools-b1");
    }
    // The tools volume is made and filled once, through the first image.
    assert_eq!(rig.fake.calls(Step::VolumeCreate), 1);
    let files = rig.fake.volume_files("code-runner-tools-b1");
    assert!(files.contains(&"supervise".to_string()), "{files:?}");
    assert!(
        files.iter().any(|f| f.contains("sitecustomize")),
        "{files:?}"
    );
    drop((first, second, a, b));
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_non_zero_exit_and_a_signal_are_runtime_errors_with_their_status() {
    let rig = rig_with(|run| {
        let exit = match run.stdin.as_slice() {
            b"3" => Exit::Code(3),
            _ => Exit::Signal(Signal(11)),
        };
        Act::prints("").exit(exit)
    });
    let three = run(&rig, "3").await.unwrap();
    assert_eq!(
        (three.status(), three.exit),
        (Status::RuntimeError, Some(Exit::Code(3)))
    );
    let segv = run(&rig, "x").await.unwrap();
    assert_eq!(segv.exit.and_then(Exit::signal), Some(Signal(11)));
    assert_eq!(segv.status(), Status::RuntimeError);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_program_past_its_wall_time_is_stopped_by_its_supervisor_and_keeps_what_it_printed() {
    let rig = rig_with(|_| {
        Act::prints("partial\n")
            .took(Duration::ZERO)
            .ending(Ending::Hangs)
    });
    let began = tokio::time::Instant::now();
    let clock = Clock {
        cpu: None,
        wall: Some(Duration::from_millis(800)),
    };
    let terms = Terms {
        clock,
        stderr: Stderr::Apart,
        ..Terms::default()
    };
    let fed = Payload::new(terms, &[], &[], b"", None);
    let result = run_fed(&rig, fed, bounds(800, 1 << 16)).await.unwrap();
    assert_eq!(result.status(), Status::Timeout);
    assert_eq!(result.limit, Some(LimitHit::WallTime));
    assert_eq!(result.stdout, "partial\n");
    assert_eq!(result.exit, Some(Exit::Signal(Signal::KILL)));
    // The supervisor's report has its figures.
    assert_eq!(result.usage.cpu_time, Some(Duration::from_millis(3)));
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(900),
        "{took:?}"
    );
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_program_its_supervisor_does_not_stop_is_killed_by_the_service_and_keeps_what_it_printed()
{
    // A payload without a wall-time limit: only the service's own
    // deadline, its backstop, holds it.
    let rig = rig_with(|_| {
        Act::prints("partial\n")
            .took(Duration::ZERO)
            .ending(Ending::Hangs)
    });
    let began = tokio::time::Instant::now();
    let result = run_on(&rig, "", bounds(800, 1 << 16)).await.unwrap();
    assert_eq!(result.status(), Status::Timeout);
    assert_eq!(result.limit, Some(LimitHit::WallTime));
    assert_eq!(result.stdout, "partial\n");
    assert_eq!(result.exit, Some(Exit::Signal(Signal::KILL)));
    // Its usage was sampled before the kill.
    assert_eq!(result.usage.memory_peak, Some(4096));
    let took = began.elapsed();
    assert!(
        took < Duration::from_millis(800) + Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(rig.fake.calls(Step::Kill), 1);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn output_over_the_cap_stops_the_stage_and_is_cut() {
    let rig = rig_with(|_| Act {
        stdout: vec![b'x'; 4096],
        ..Act::prints("").ending(Ending::Hangs)
    });
    let result = run_on(&rig, "", bounds(5000, 100)).await.unwrap();
    assert_eq!(result.status(), Status::OutputLimit);
    assert_eq!(result.limit, Some(LimitHit::Output(StreamKind::Stdout)));
    assert!(result.truncated());
    assert_eq!(result.stdout.len(), 100);
    assert_eq!(rig.fake.calls(Step::Kill), 1);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_sandbox_that_ends_before_its_program_starts_says_so_with_its_stderr() {
    let rig = rig_with(|_| Act {
        stderr: b"exec format error\n".to_vec(),
        ..Act::prints("")
            .exit(Exit::Code(126))
            .ending(Ending::DiesBeforeStart)
    });
    match run(&rig, "").await {
        Err(SandboxError::NeverStarted(stderr)) => assert_eq!(stderr, "exec format error\n"),
        other => panic!("{other:?}"),
    }
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_run_that_ends_without_its_supervisors_report_fails_closed() {
    // The container exits 0 with no trailers: never `ok`, whatever the
    // engine's exit says.
    let rig = rig_with(|_| Act::prints("out\n").ending(Ending::Dies));
    match run(&rig, "").await {
        Err(SandboxError::Unreported(Unreported::Missing)) => {}
        other => panic!("{other:?}"),
    }
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn an_unexplained_sigkill_is_checked_against_the_engines_out_of_memory_flag() {
    let rig = rig_with(|run| Act {
        oom_flag: run.stdin == b"oom",
        ..Act::prints("")
            .exit(Exit::Signal(Signal::KILL))
            .ending(Ending::Dies)
    });
    let oom = run(&rig, "oom").await.unwrap();
    assert_eq!(
        (oom.status(), oom.limit),
        (Status::MemoryLimit, Some(LimitHit::Memory))
    );
    // Killed with no report and no out-of-memory kill: no verdict.
    let killed = run(&rig, "kill").await;
    assert!(
        matches!(killed, Err(SandboxError::Unreported(Unreported::Missing))),
        "{killed:?}"
    );
    // The second was asked again, for a while, before it counted as a kill.
    assert!(
        rig.fake.calls(Step::Inspect) >= 2 + 5,
        "{}",
        rig.fake.calls(Step::Inspect)
    );
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn the_service_stops_a_stage_whose_cpu_time_it_reads_past_the_limit() {
    // The program uses 3 s of CPU time and never ends; its supervisor does
    // not stop it (as one blinded would not): the service's own look at
    // 1 s (the limit on one CPU) does, long before the 5 s deadline.
    let rig = rig_with(|_| Act {
        cpu: Duration::from_secs(3),
        ..Act::prints("busy\n").ending(Ending::Hangs)
    });
    let bounds = StageBounds {
        cpu: Some(CpuBound {
            limit: Duration::from_secs(1),
            cpus: 1.0,
        }),
        ..bounds(5000, 1 << 16)
    };
    let result = run_on(&rig, "", bounds).await.unwrap();
    assert_eq!(
        (result.status(), result.limit),
        (Status::Timeout, Some(LimitHit::CpuTime))
    );
    assert_eq!(result.stdout, "busy\n");
    assert_eq!(result.usage.cpu_time, Some(Duration::from_secs(3)));
    assert!(
        result.duration < Duration::from_millis(1500),
        "{:?}",
        result.duration
    );
    rig.finish().await;
    // A stage within its limit is looked at, and runs to its end.
    let rig = rig_with(|_| Act {
        cpu: Duration::from_millis(200),
        took: Duration::from_millis(2500),
        ..Act::prints("done\n")
    });
    let result = run_on(&rig, "", bounds).await.unwrap();
    assert_eq!(result.status(), Status::Ok, "{result:?}");
    assert!(rig.fake.calls(Step::Stats) >= 1);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn the_trailers_own_count_of_out_of_memory_kills_and_cpu_limit_decide() {
    let rig = rig_with(|run| match run.stdin.as_slice() {
        b"oom" => Act {
            oom_kills: 1,
            ..Act::prints("").exit(Exit::Signal(Signal::KILL))
        },
        _ => Act {
            cpu_limit: true,
            ..Act::prints("").exit(Exit::Signal(Signal::KILL))
        },
    });
    assert_eq!(
        run(&rig, "oom").await.unwrap().status(),
        Status::MemoryLimit
    );
    let cpu = run(&rig, "cpu").await.unwrap();
    assert_eq!(
        (cpu.status(), cpu.limit),
        (Status::Timeout, Some(LimitHit::CpuTime))
    );
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_container_still_running_after_its_trailers_is_killed_soon_after() {
    let rig = rig_with(|_| Act::prints("done\n").ending(Ending::Lingers));
    let python = python();
    let launch = Launch {
        language: &python,
        stage: Stage::Run,
        limits: &python.limits,
        volume: None,
        build: None,
        start: Start::Cold,
    };
    // A run in flight: removals wait, the kill does not.
    let in_flight = rig.custody.run_in_flight();
    let uid = rig.launcher.lease().await;
    let sandbox = rig
        .launcher
        .launch(launch, &uid, Some(payload("")))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let ran = sandbox
        .execute(None, bounds(5000, 100), &stop)
        .await
        .unwrap();
    assert_eq!(ran.result.status(), Status::Ok);
    assert_eq!(
        rig.fake.running(),
        1,
        "answered without waiting for the stop"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rig.fake.calls(Step::Kill), 1);
    assert_eq!(rig.fake.running(), 0);
    drop((ran, uid, in_flight));
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_stage_stopped_at_shutdown_is_removed_at_once() {
    let rig = rig_with(|_| Act::prints("").ending(Ending::Hangs));
    let python = python();
    let launch = Launch {
        language: &python,
        stage: Stage::Run,
        limits: &python.limits,
        volume: None,
        build: None,
        start: Start::Cold,
    };
    let uid = rig.launcher.lease().await;
    let sandbox = rig
        .launcher
        .launch(launch, &uid, Some(payload("")))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stopper.cancel();
    });
    let result = sandbox.execute(None, bounds(60_000, 100), &stop).await;
    assert!(
        matches!(result, Err(SandboxError::Stopped)),
        "{:?}",
        result.err()
    );
    assert_eq!(rig.fake.containers(), 0, "removed before the answer");
    drop(uid);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_image_an_unknown_runtime_and_a_weakening_warning_are_refused() {
    let rig = Rig::on(FakeEngine::new(&["other"]), pool(0, 1, 0));
    match run(&rig, "").await {
        Err(SandboxError::ImageMissing { image }) => assert_eq!(image, PYTHON_IMAGE),
        other => panic!("{other:?}"),
    }
    rig.finish().await;

    let rig = Rig::new(pool(0, 1, 0));
    let mut gvisor = (*python()).clone();
    gvisor.runtime = Some("runsc".into());
    let launch = Launch {
        language: &gvisor,
        stage: Stage::Run,
        limits: &gvisor.limits,
        volume: None,
        build: None,
        start: Start::Cold,
    };
    let uid = rig.launcher.lease().await;
    match rig.launcher.launch(launch, &uid, None).await {
        Err(SandboxError::RuntimeMissing { runtime }) => assert_eq!(runtime, "runsc"),
        other => panic!("{:?}", other.err()),
    }
    rig.fake
        .set_warnings(&["Your kernel does not support memory limit"]);
    match run(&rig, "").await {
        Err(SandboxError::Weakened(warning)) => assert!(warning.contains("memory"), "{warning}"),
        other => panic!("{other:?}"),
    }
    drop(uid);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_attach_or_start_leaves_no_container() {
    let rig = Rig::new(pool(0, 1, 0));
    let refused = EngineError::answered(Step::Start, "x", Some(500), "cannot start");
    rig.fake.fail(Step::Start, 1, refused);
    assert!(matches!(run(&rig, "").await, Err(SandboxError::Engine(e)) if e.step == Step::Start));
    let refused = EngineError::answered(Step::Attach, "x", Some(500), "cannot attach");
    rig.fake.fail(Step::Attach, 1, refused);
    assert!(matches!(run(&rig, "").await, Err(SandboxError::Engine(e)) if e.step == Step::Attach));
    rig.settle().await;
    assert_eq!(rig.fake.containers(), 0);
    assert_eq!(run(&rig, "ok").await.unwrap().stdout, "ok");
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_run_dropped_while_its_container_is_created_still_has_it_removed() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.set_create_took(Duration::from_millis(500));
    let dropped = tokio::time::timeout(Duration::from_millis(100), run(&rig, "")).await;
    assert!(dropped.is_err(), "the run ended before the create did");
    // The create's own task finishes and hands the container to custody.
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.settle().await;
    assert_eq!(
        rig.fake.calls(Step::Create),
        1 + 1,
        "the tools filler and the sandbox"
    );
    assert_eq!(rig.fake.containers(), 0);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_tools_volume_that_could_not_be_filled_is_filled_on_the_next_launch() {
    let rig = Rig::new(pool(0, 1, 0));
    let missing = EngineError::answered(Step::Create, PYTHON_IMAGE, Some(404), "No such image");
    rig.fake.fail(Step::Create, 1, missing);
    assert!(matches!(
        run(&rig, "").await,
        Err(SandboxError::ImageMissing { .. })
    ));
    assert_eq!(run(&rig, "again").await.unwrap().stdout, "again");
    assert_eq!(rig.fake.calls(Step::VolumeCreate), 2);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_waiting_sandbox_starts_its_stage_clock_at_the_feed_and_says_where_its_time_went() {
    let rig = rig_with(|_| Act::prints("x").took(Duration::from_millis(300)));
    let python = python();
    let launch = Launch {
        language: &python,
        stage: Stage::Run,
        limits: &python.limits,
        volume: None,
        build: None,
        start: Start::Warm,
    };
    let uid = rig.launcher.lease().await;
    let mut sandbox = rig.launcher.launch(launch, &uid, None).await.unwrap();
    assert!(sandbox.warmed(Duration::from_secs(1)).await);
    let phases: Vec<Phase> = sandbox.start_phases.iter().map(|(p, _)| *p).collect();
    assert_eq!(phases, [Phase::Create, Phase::Attach, Phase::Start]);
    // Waiting is not the program's time.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(sandbox.is_waiting());
    let stop = CancellationToken::new();
    let ran = sandbox
        .execute(Some(payload("")), bounds(1000, 100), &stop)
        .await
        .unwrap();
    assert_eq!(ran.result.status(), Status::Ok, "{:?}", ran.result);
    assert!(ran.result.duration >= Duration::from_millis(300));
    assert!(
        ran.result.duration < Duration::from_millis(400),
        "{:?}",
        ran.result.duration
    );
    assert_eq!(ran.phases[0].0, Phase::Run);
    drop((ran, uid));
    rig.finish().await;
}
