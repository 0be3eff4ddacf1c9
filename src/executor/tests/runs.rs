//! One path for one run or many: cold and pooled sandboxes, compiled
//! pairs, batches, and what is released on every error path.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{pooled, python_only};
use crate::engine::fake::{Act, Ending, Run};
use crate::engine::{EngineError, Step};
use crate::executor::Ran;
use crate::job::{Job, Stderr, Streams};
use crate::limits::LimitsOverride;
use crate::outcome::{Exit, Outcome, Phase, PoolUse, Status};
use crate::sandbox::SandboxError;
use crate::testing::{Rig, Width, job, job_with, pool, registry};

async fn run(rig: &Rig, job: &Job, width: usize) -> Result<Ran, SandboxError> {
    rig.executor.run(job, &Width::new(width), None).await
}

fn stdouts(outcome: &Outcome) -> Vec<String> {
    let runs = outcome.runs().expect("the program ran");
    runs.iter().map(|r| r.stdout.clone()).collect()
}

/// A script whose compiles fail when the source says `broken`, and whose
/// programs print their stdin.
fn compiles_unless_broken(run: &Run) -> Act {
    if run.stage == "compile" {
        let broken = run.files.iter().any(|(_, c)| c == b"broken");
        return match broken {
            true => Act {
                stderr: b"main.c:1: error\n".to_vec(),
                ..Act::prints("").exit(Exit::Code(1))
            },
            false => Act::prints(""),
        };
    }
    Act::prints(&String::from_utf8_lossy(&run.stdin))
}

#[tokio::test(start_paused = true)]
async fn a_cold_run_is_one_sandbox_removed_after_with_where_its_time_went() {
    let rig = Rig::new(pool(0, 1, 0));
    let job = job(&registry(), "python", "print(input())", &["hi"]);
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(stdouts(&ran.outcome), ["hi"]);
    assert!(ran.outcome.compile().is_none());
    assert_eq!(ran.timing.pool, PoolUse::Miss);
    let phases: Vec<Phase> = ran.timing.phases.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        phases,
        [
            Phase::Create,
            Phase::Attach,
            Phase::Start,
            Phase::Run,
            Phase::State
        ]
    );
    let program = &rig.fake.runs()[0];
    assert_eq!(
        (program.args.as_slice(), program.stdin.as_slice()),
        (&["arg".to_string()][..], &b"hi"[..])
    );
    assert_eq!(
        program.files[0],
        ("main.py".into(), b"print(input())".to_vec())
    );
    rig.settle().await;
    assert_eq!(rig.fake.containers(), 0);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_pooled_run_takes_a_waiting_sandbox_and_creates_nothing_on_its_path() {
    let mut rig = Rig::new(pool(1, 1, 8));
    let languages = rig.start(python_only());
    let registry = languages.borrow().clone();
    pooled(&rig, "python", 1).await;
    let waiting = rig.fake.ids();
    let job = job(&registry, "python", "x", &["pooled"]);
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(ran.timing.pool, PoolUse::Hit);
    assert_eq!(stdouts(&ran.outcome), ["pooled"]);
    let program = &rig.fake.runs()[0];
    assert!(
        waiting.contains(&program.id),
        "it ran in a container made for it"
    );
    assert!(!ran.timing.phases.iter().any(|(p, _)| *p == Phase::Create));
    // Pre-started: the pooled sandbox ran python under its hook.
    let spec = (rig.fake.specs().into_iter())
        .find(|s| s.labels.contains_key("code-runner.stage"))
        .unwrap();
    assert_eq!(spec.entrypoint[6], "python");
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_pooled_sandbox_that_stopped_while_waiting_is_discarded_and_the_run_goes_cold() {
    let mut rig = Rig::new(pool(1, 1, 1));
    let languages = rig.start(python_only());
    let registry = languages.borrow().clone();
    pooled(&rig, "python", 1).await;
    for id in rig.fake.ids() {
        rig.fake.kill_from_outside(&id);
    }
    let job = job(&registry, "python", "x", &["cold"]);
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(ran.timing.pool, PoolUse::Miss);
    assert_eq!(stdouts(&ran.outcome), ["cold"]);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_pooled_sandbox_that_dies_after_the_claim_before_its_program_runs_it_cold() {
    let mut rig = Rig::new(pool(1, 1, 1));
    let fed = Arc::new(AtomicUsize::new(0));
    let counter = fed.clone();
    rig.fake
        .script(move |run| match counter.fetch_add(1, Ordering::AcqRel) {
            0 => Act::prints("")
                .exit(Exit::Code(125))
                .ending(Ending::DiesBeforeStart),
            _ => Act::prints(&String::from_utf8_lossy(&run.stdin)),
        });
    let languages = rig.start(python_only());
    let registry = languages.borrow().clone();
    pooled(&rig, "python", 1).await;
    let job = job(&registry, "python", "x", &["again"]);
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(
        (ran.timing.pool, stdouts(&ran.outcome)),
        (PoolUse::Miss, vec!["again".to_string()])
    );
    assert_eq!(fed.load(Ordering::Acquire), 2);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_that_lowers_a_limit_the_sandbox_holds_gets_a_sandbox_of_its_own() {
    let mut rig = Rig::new(pool(1, 1, 1));
    let languages = rig.start(python_only());
    let registry = languages.borrow().clone();
    pooled(&rig, "python", 1).await;
    let lower = LimitsOverride {
        memory_mb: Some(64),
        ..LimitsOverride::default()
    };
    let waiting = rig.fake.ids();
    let job = job_with(&registry, "python", "x", &["own"], lower);
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(ran.timing.pool, PoolUse::Miss);
    let program = &rig.fake.runs()[0];
    assert!(
        !waiting.contains(&program.id),
        "it ran in the pooled sandbox"
    );
    assert_eq!(
        rig.executor.pooled()["python"],
        1,
        "the pooled one was not used"
    );
    // Wall and CPU time are the stage's own, not the container's: they
    // may be lowered and still take the pooled sandbox.
    let quicker = LimitsOverride {
        wall_time_ms: Some(1000),
        ..LimitsOverride::default()
    };
    let job = job_with(&registry, "python", "x", &["pooled"], quicker);
    assert_eq!(run(&rig, &job, 1).await.unwrap().timing.pool, PoolUse::Hit);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_compiled_run_compiles_in_its_pair_then_runs_on_the_volume_and_removes_containers_first()
{
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(compiles_unless_broken);
    let job = job(&registry(), "c", "int main;", &["input"]);
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(ran.outcome.compile().map(|c| c.status()), Some(Status::Ok));
    assert_eq!(stdouts(&ran.outcome), ["input"]);
    assert_eq!(
        (ran.timing.pool, ran.timing.phases[0].0),
        (PoolUse::Miss, Phase::Compile)
    );
    let runs = rig.fake.runs();
    let (compile, program) = (&runs[0], &runs[1]);
    assert_eq!(
        (compile.stage.as_str(), program.stage.as_str()),
        ("compile", "run")
    );
    assert_eq!(compile.files[0], ("main.c".into(), b"int main;".to_vec()));
    assert!(
        program.files.is_empty(),
        "the run reads what the compile left"
    );
    assert_eq!(compile.uid, program.uid, "one user for the pair");
    rig.settle().await;
    assert_eq!(rig.fake.containers(), 0);
    assert_eq!(rig.fake.volumes(), 1, "only the tools volume");
    // The volume went once its two containers had.
    assert_eq!(rig.fake.calls(Step::VolumeRemove), 1);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_compile_runs_nothing_and_releases_its_run_sandbox_and_volume() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(compiles_unless_broken);
    let job = job(&registry(), "c", "broken", &["input"]);
    let ran = run(&rig, &job, 1).await.unwrap();
    match &ran.outcome {
        Outcome::CompileFailed { compile } => {
            assert_eq!(compile.stderr, "main.c:1: error\n");
            assert_eq!(compile.status(), Status::RuntimeError);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.fake.runs().len(), 1, "only the compile ran");
    rig.settle().await;
    assert_eq!((rig.fake.containers(), rig.fake.volumes()), (0, 1));
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_compiled_run_takes_a_pooled_pair_whose_compiler_is_warm() {
    let mut rig = Rig::new(pool(0, 1, 8));
    rig.fake.script(compiles_unless_broken);
    let languages = rig.start(registry());
    let registry = languages.borrow().clone();
    pooled(&rig, "c", 2).await;
    let job = job(&registry, "c", "int main;", &["pair"]);
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(
        (ran.timing.pool, stdouts(&ran.outcome)),
        (PoolUse::Hit, vec!["pair".to_string()])
    );
    // The pooled compile sandbox ran the language's warm-up first.
    let warm = (rig.fake.specs().into_iter())
        .any(|s| s.labels["code-runner.stage"] == "compile" && !s.entrypoint[5].is_empty());
    assert!(warm);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_pooled_pair_whose_compile_sandbox_died_after_the_claim_compiles_cold() {
    let mut rig = Rig::new(pool(0, 1, 8));
    let compiles = Arc::new(AtomicUsize::new(0));
    let counter = compiles.clone();
    rig.fake.script(move |run| {
        if run.stage == "compile" && counter.fetch_add(1, Ordering::AcqRel) == 0 {
            return Act::prints("")
                .exit(Exit::Code(125))
                .ending(Ending::DiesBeforeStart);
        }
        compiles_unless_broken(run)
    });
    let languages = rig.start(registry());
    let registry = languages.borrow().clone();
    pooled(&rig, "c", 2).await;
    let job = job(&registry, "c", "int main;", &["cold pair"]);
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(ran.timing.pool, PoolUse::Miss);
    assert_eq!(stdouts(&ran.outcome), ["cold pair"]);
    assert_eq!(compiles.load(Ordering::Acquire), 2);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_runs_each_input_in_a_fresh_sandbox_in_order_as_wide_as_its_turns() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(|run| {
        Act::prints(&String::from_utf8_lossy(&run.stdin)).took(Duration::from_secs(1))
    });
    let job = job(&registry(), "python", "x", &["1", "2", "3", "4", "5"]);
    let began = tokio::time::Instant::now();
    let turns = Width::new(2);
    let ran = rig.executor.run(&job, &turns, None).await.unwrap();
    let took = began.elapsed();
    assert_eq!(stdouts(&ran.outcome), ["1", "2", "3", "4", "5"]);
    assert_eq!(turns.taken.load(Ordering::Acquire), 5);
    // Two at a time: three rounds of a second.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let uids: std::collections::HashSet<u32> = rig.fake.runs().iter().map(|r| r.uid).collect();
    assert_eq!(uids.len(), 5, "a sandbox of its own for each: {uids:?}");
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn the_files_wanted_back_go_to_each_run_and_never_to_the_compile() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(compiles_unless_broken);
    for inputs in [&["a"][..], &["a", "b"]] {
        let mut job = job(&registry(), "c", "int main;", inputs);
        job.outputs = Some(crate::job::Outputs {
            patterns: vec!["*.png".into(), "out dir/**".into()],
            max_files: 3,
            max_bytes: 100,
        });
        run(&rig, &job, 2).await.unwrap();
    }
    let runs = rig.fake.runs();
    let (compiles, tests): (Vec<&Run>, Vec<&Run>) = runs.iter().partition(|r| r.stage == "compile");
    assert_eq!((compiles.len(), tests.len()), (2, 3));
    assert!(compiles.iter().all(|r| r.outputs.is_none()));
    for test in tests {
        assert_eq!(test.outputs.as_deref(), Some("3:100\t*.png\tout dir/**"));
    }
    rig.settle().await;
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_compiled_batch_compiles_once_and_each_run_copies_the_build_the_keeper_holds() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(compiles_unless_broken);
    let job = job(&registry(), "c", "int main;", &["a", "b", "c"]);
    let ran = run(&rig, &job, 3).await.unwrap();
    assert_eq!(stdouts(&ran.outcome), ["a", "b", "c"]);
    let runs = rig.fake.runs();
    let compiles: Vec<&Run> = runs.iter().filter(|r| r.stage == "compile").collect();
    assert_eq!(compiles.len(), 1);
    let tests: Vec<&Run> = runs.iter().filter(|r| r.stage == "run").collect();
    assert_eq!(tests.len(), 3, "the keeper is never fed");
    for test in &tests {
        assert_eq!(test.build.as_deref(), Some("/.code-runner-build"));
        assert_ne!(test.uid, compiles[0].uid);
    }
    rig.settle().await;
    assert_eq!((rig.fake.containers(), rig.fake.volumes()), (0, 1));
    rig.finish().await;
}

/// A script whose compiles pass and whose tests, by their stdin, end
/// before the program starts: `copy` with the supervisor's account of a
/// build it could not copy, `silent` with nothing said, `other` with
/// another message; any other prints its stdin.
fn tests_that_cannot_start(run: &Run) -> Act {
    let before_start = |stderr: &str| Act {
        stderr: stderr.as_bytes().to_vec(),
        ..Act::prints("")
            .exit(Exit::Code(126))
            .ending(Ending::DiesBeforeStart)
    };
    match (run.stage.as_str(), &run.stdin[..]) {
        ("compile", _) => Act::prints(""),
        (_, b"copy") => before_start(
            "supervise: cannot copy the build from /.code-runner-build: No space left on device (os error 28)\n",
        ),
        (_, b"silent") => before_start(""),
        (_, b"other") => before_start("sh: 1: exec: /.code-runner/supervise: not found\n"),
        _ => Act::prints(&String::from_utf8_lossy(&run.stdin)),
    }
}

#[tokio::test(start_paused = true)]
async fn a_test_whose_build_cannot_be_copied_has_that_as_its_result_beside_the_others() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(tests_that_cannot_start);
    let job = job(&registry(), "c", "int main;", &["a", "copy", "silent"]);
    let ran = run(&rig, &job, 3).await.unwrap();
    let runs: Vec<_> = ran.outcome.runs().expect("the tests ran").iter().collect();
    let statuses: Vec<Status> = runs.iter().map(|r| r.status()).collect();
    assert_eq!(
        statuses,
        [Status::Ok, Status::RuntimeError, Status::MemoryLimit]
    );
    let (copy, silent) = (runs[1], runs[2]);
    assert_eq!(copy.exit, Some(Exit::Code(126)));
    assert!(
        copy.stderr.starts_with("supervise: cannot copy the build")
            && copy.stderr.contains("code-runner: the build could not be copied for this test: the build counts against the run's memory (128 MiB), and its working directory holds the build (at most the compile's scratch space, 128 MiB) and the run's scratch space (32 MiB)"),
        "{}",
        copy.stderr
    );
    assert_eq!(copy.output, copy.stderr);
    assert_eq!(silent.exit, None);
    assert!(
        silent
            .stderr
            .starts_with("code-runner: this test's sandbox was killed while copying the build"),
        "{}",
        silent.stderr
    );
    rig.settle().await;
    assert_eq!((rig.fake.containers(), rig.fake.volumes()), (0, 1));
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_test_that_ends_before_its_program_for_another_reason_is_the_services_trouble() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(tests_that_cannot_start);
    let job = job(&registry(), "c", "int main;", &["a", "other"]);
    match run(&rig, &job, 2).await {
        Err(SandboxError::NeverStarted(stderr)) => assert!(stderr.contains("not found")),
        other => panic!("{:?}", other.map(|r| r.outcome)),
    }
    rig.settle().await;
    assert_eq!((rig.fake.containers(), rig.fake.volumes()), (0, 1));
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_whose_compile_fails_runs_no_test() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(compiles_unless_broken);
    let job = job(&registry(), "c", "broken", &["a", "b"]);
    let ran = run(&rig, &job, 2).await.unwrap();
    assert!(matches!(ran.outcome, Outcome::CompileFailed { .. }));
    assert_eq!(rig.fake.runs().len(), 1);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_whose_run_cannot_start_fails_whole_and_leaves_nothing() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(compiles_unless_broken);
    let job = job(&registry(), "c", "int main;", &["a", "b", "c"]);
    // The pair's two starts, then the first test's start, pass; the next
    // test's start is refused.
    let refused = EngineError::answered(Step::Start, "x", Some(500), "no");
    let mut first = Box::pin(run(&rig, &job, 1));
    // Let the pair start and the compile run, then refuse every start.
    let early = tokio::time::timeout(Duration::from_millis(10), &mut first).await;
    assert!(early.is_err());
    rig.fake.fail(Step::Start, 10, refused);
    match (&mut first).await {
        Err(SandboxError::Engine(e)) => assert_eq!(e.step, Step::Start),
        other => panic!("{:?}", other.map(|r| r.outcome)),
    }
    drop(first);
    rig.settle().await;
    assert_eq!((rig.fake.containers(), rig.fake.volumes()), (0, 1));
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_turn_refused_ends_the_job_as_stopped_and_leaves_nothing() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(compiles_unless_broken);
    let job = job(&registry(), "c", "int main;", &["a", "b"]);
    let turns = Width {
        refuse: true,
        ..Width::new(2)
    };
    let refused = rig.executor.run(&job, &turns, None).await;
    assert!(
        matches!(refused, Err(SandboxError::Stopped)),
        "{:?}",
        refused.err()
    );
    assert_eq!(rig.fake.runs().len(), 1, "the compile ran, no test did");
    rig.settle().await;
    assert_eq!((rig.fake.containers(), rig.fake.volumes()), (0, 1));
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_run_dropped_at_any_moment_leaves_no_container_volume_or_uid() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake
        .script(|run| compiles_unless_broken(run).took(Duration::from_millis(7)));
    rig.fake.set_create_took(Duration::from_millis(3));
    let job = job(&registry(), "c", "int main;", &["a", "b"]);
    // Every millisecond of a run's life, through create, attach, start,
    // feed, compile, the keeper and the tests.
    for at in 0..60 {
        let cut = tokio::time::timeout(Duration::from_millis(at), run(&rig, &job, 2)).await;
        if at == 59 {
            assert!(cut.is_ok(), "the run takes longer than the loop covers");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        rig.settle().await;
        assert_eq!(rig.fake.containers(), 0, "left after a cut at {at} ms");
        assert!(
            rig.fake.volumes() <= 1,
            "a scratch volume left after {at} ms"
        );
        assert_eq!(rig.uids.in_use(), 0, "a uid left after {at} ms");
    }
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn runs_in_flight_are_stopped_at_shutdown_and_later_ones_refused() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(|_| Act::prints("").ending(Ending::Hangs));
    let job = job(&registry(), "python", "x", &["a"]);
    let mut running = Box::pin(run(&rig, &job, 1));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut running)
            .await
            .is_err()
    );
    rig.executor.stop_runs();
    assert!(matches!((&mut running).await, Err(SandboxError::Stopped)));
    assert!(matches!(
        run(&rig, &job, 1).await,
        Err(SandboxError::Stopped)
    ));
    drop(running);
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_program_past_its_limit_is_a_result_not_an_error() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake
        .script(|_| Act::prints("so far").ending(Ending::Hangs));
    let quick = LimitsOverride {
        wall_time_ms: Some(300),
        ..LimitsOverride::default()
    };
    let job = job_with(&registry(), "python", "x", &["a", "b"], quick);
    let ran = run(&rig, &job, 2).await.unwrap();
    let runs = ran.outcome.runs().unwrap();
    assert!(
        runs.iter()
            .all(|r| r.status() == Status::Timeout && r.stdout == "so far")
    );
    rig.finish().await;
}

/// A script whose compiles say `compile!` on stderr, and whose programs
/// print their stdin and say `run!` on stderr.
fn says_on_both(run: &Run) -> Act {
    let stdout = match run.stage.as_str() {
        "compile" => String::new(),
        _ => String::from_utf8_lossy(&run.stdin).to_string(),
    };
    Act {
        stderr: format!("{}!", run.stage).into_bytes(),
        ..Act::prints(&stdout)
    }
}

/// `stage`'s (stdout, stderr) as the fake's `says_on_both` gives them,
/// `printed` on stdout, with its stderr where `stderr` says.
fn streams_said(stage: &str, printed: &str, stderr: Stderr) -> (String, String) {
    match stderr {
        Stderr::Apart => (printed.to_string(), format!("{stage}!")),
        Stderr::Merged => (format!("{printed}{stage}!"), String::new()),
    }
}

#[tokio::test(start_paused = true)]
async fn every_sandbox_of_a_job_gets_its_stages_stderr_as_the_job_asks() {
    let rig = Rig::new(pool(0, 1, 0));
    rig.fake.script(says_on_both);
    let (apart, merged) = (Stderr::Apart, Stderr::Merged);
    // An interpreted run, a compiled one (in its pair), a compiled batch
    // (each test in a sandbox of its own).
    for (language, inputs) in [
        ("python", &["one"][..]),
        ("c", &["one"]),
        ("c", &["a", "b"]),
    ] {
        for (compile, run_stage) in [(apart, apart), (merged, apart), (merged, merged)] {
            let mut job = job(&registry(), language, "x", inputs);
            job.streams = Streams {
                compile,
                run: run_stage,
            };
            let before = rig.fake.runs().len();
            let ran = run(&rig, &job, 2).await.unwrap();
            let case = format!("{language} {inputs:?} {:?}", job.streams);
            for program in &rig.fake.runs()[before..] {
                let asked = match program.stage.as_str() {
                    "compile" => compile,
                    _ => run_stage,
                };
                assert_eq!(program.stderr, asked, "{case}: {}", program.stage);
            }
            let results = ran.outcome.runs().expect("it ran");
            for (result, stdin) in results.iter().zip(inputs) {
                let said = (result.stdout.clone(), result.stderr.clone());
                assert_eq!(said, streams_said("run", stdin, run_stage), "{case}");
            }
            if let Some(c) = ran.outcome.compile() {
                let said = (c.stdout.clone(), c.stderr.clone());
                assert_eq!(said, streams_said("compile", "", compile), "{case}");
            }
        }
    }
    rig.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_merged_run_never_takes_a_prestarted_sandbox_whose_streams_are_set() {
    let mut rig = Rig::new(pool(1, 1, 8));
    let languages = rig.start(python_only());
    let registry = languages.borrow().clone();
    pooled(&rig, "python", 1).await;
    let waiting = rig.fake.ids();
    let mut job = job(&registry, "python", "x", &["merged"]);
    job.streams.run = Stderr::Merged;
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(ran.timing.pool, PoolUse::Miss);
    let program = &rig.fake.runs()[0];
    assert!(!waiting.contains(&program.id), "a sandbox of its own");
    assert_eq!(program.stderr, Stderr::Merged);
    // The pre-started one still waits, for a run whose stderr is apart.
    job.streams.run = Stderr::Apart;
    let ran = run(&rig, &job, 1).await.unwrap();
    assert_eq!(ran.timing.pool, PoolUse::Hit);
    assert!(waiting.contains(&rig.fake.runs()[1].id));
    rig.finish().await;
}
