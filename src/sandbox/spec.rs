//! What a sandbox is: one description ([`Launch`]: a language's stage,
//! its limits, what is on its working directory, how it starts), and a pure
//! function from it and what the launcher provides every sandbox
//! ([`Provisions`]: its owner, uid, tools volume and seccomp profile) to
//! the [`SandboxSpec`] the engine creates (which adds the fixed hardening).

use super::protocol::{BOOTSTRAP, WORK_DIR, supervisor};
use crate::custody::{LANGUAGE_LABEL, Owner, STAGE_LABEL};
use crate::engine::{SandboxSpec, Work};
use crate::job::Stage;
use crate::language::Language;
use crate::limits::Limits;

/// Whether a sandbox waits with its warm-up done (a pooled one) or starts
/// its program as soon as it is fed (a cold one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Cold,
    /// Run the language's `warmup` first, then wait for the payload.
    Warm,
    /// Start the run command at once under the language's pre-start hook,
    /// which waits for the payload.
    Prestarted,
}

/// One sandbox to start: for which stage of which language, under which
/// limits, with what on its working directory, and how it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Launch<'a> {
    pub(crate) language: &'a Language,
    pub(crate) stage: Stage,
    pub(crate) limits: &'a Limits,
    /// A shared volume's name (a compiled language's pair), or `None` for a
    /// tmpfs of the sandbox's own.
    pub(crate) volume: Option<&'a str>,
    /// A compiled build to copy into its own working directory (one run of
    /// several), which is then executable.
    pub(crate) build: Option<Build<'a>>,
    pub(crate) start: Start,
}

/// A compiled build one test of a batch copies into its working directory
/// before its program starts: the volume the compile wrote, and the limits
/// of that compile, whose scratch space sized it (see [`volume_options`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Build<'a> {
    pub(crate) volume: &'a str,
    pub(crate) compile: &'a Limits,
}

/// What the launcher provides every sandbox: whose it is, the user (and
/// group: a numeric id from the instance's range, whatever the image's
/// passwd says) it runs as, the tools volume and the seccomp profile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Provisions<'a> {
    pub(crate) owner: &'a Owner,
    pub(crate) uid: u32,
    /// The tools volume's name.
    pub(crate) tools: &'a str,
    /// The seccomp profile, as JSON.
    pub(crate) seccomp: &'a str,
}

/// Threads gVisor's own kernel (the runtime `runsc`) may need beside a
/// sandbox's processes: under it, the host's pids cgroup counts gVisor's
/// threads, so the sandbox's process limit is `RLIMIT_NPROC`, which gVisor
/// counts per sandbox, and the pids cgroup is raised by this much (512 was
/// measured to hold 64 guest processes here).
pub(crate) const GVISOR_THREADS: u64 = 1024;

/// Whether `runtime` runs a kernel of its own (gVisor's `runsc`).
fn own_kernel(runtime: Option<&str>) -> bool {
    runtime.is_some_and(|r| r.contains("runsc"))
}

/// Inodes for a scratch space: one per 8 KiB, at least 1024, so that
/// millions of empty files cannot be made.
fn inodes(scratch: u64) -> u64 {
    (scratch / 8192).max(1024)
}

/// The labels of everything (containers, volumes) made for `language`.
pub(crate) fn labels(
    owner: &Owner,
    language: &Language,
) -> std::collections::HashMap<String, String> {
    let mut labels = owner.labels();
    labels.insert(LANGUAGE_LABEL.to_string(), language.name.clone());
    labels
}

/// The tmpfs mount options of a compiled language's shared working
/// directory: sized by its compile stage, executable, owned by `uid`, and
/// readable by the other users of a batch's tests (which mount it
/// read-only to copy the build).
pub(crate) fn volume_options(compile: &Limits, uid: u32) -> String {
    let scratch = compile.scratch_bytes();
    format!(
        "size={scratch},nr_inodes={},uid={uid},gid={uid},mode=0755,nosuid,nodev",
        inodes(scratch)
    )
}

impl Launch<'_> {
    /// The working directory, and its size (the largest file too): the
    /// shared volume, or a tmpfs of the sandbox's own of the scratch size,
    /// executable when it gets a build. A test's holds the build (at most
    /// what the compile's volume holds, in size and in files) and then the
    /// run's own scratch space.
    fn work(&self, uid: u32) -> (Work, u64) {
        let scratch = self.limits.scratch_bytes();
        let (bytes, inodes, exec) = match self.build {
            Some(build) => {
                let built = build.compile.scratch_bytes();
                (built + scratch, inodes(built) + inodes(scratch), "exec")
            }
            None => (scratch, inodes(scratch), "noexec"),
        };
        let work = match self.volume {
            None => Work::Tmpfs(format!(
                "rw,{exec},nosuid,nodev,size={bytes},nr_inodes={inodes},uid={uid},gid={uid},mode=0700"
            )),
            Some(name) => Work::Volume(name.to_string()),
        };
        (work, bytes)
    }

    /// The sandbox as the engine should create it, with `with`.
    pub(crate) fn spec(&self, with: &Provisions) -> SandboxSpec {
        let (language, limits, uid) = (self.language, self.limits, with.uid);
        let command = match self.stage {
            Stage::Compile => language
                .compile
                .as_ref()
                .map(|c| c.command.clone())
                .unwrap_or_default(),
            Stage::Run => language.run.clone(),
        };
        let scratch = limits.scratch_bytes();
        let inodes = inodes(scratch);
        let (work, work_bytes) = self.work(uid);
        let mut env = vec!["HOME=/tmp".to_string(), "LANG=C.UTF-8".to_string()];
        env.extend(language.env.iter().map(|(k, v)| format!("{k}={v}")));
        let mut labels = labels(with.owner, language);
        labels.insert(STAGE_LABEL.to_string(), self.stage.as_str().to_string());
        let warmup = match (self.start, &language.warmup) {
            (Start::Warm, Some(warmup)) => warmup.clone(),
            _ => String::new(),
        };
        let prestart = match (self.start, language.prestart) {
            (Start::Prestarted, Some(hook)) => hook.as_str().to_string(),
            _ => String::new(),
        };
        SandboxSpec {
            image: language.image.clone(),
            uid,
            entrypoint: vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                BOOTSTRAP.to_string(),
                "code-runner".to_string(),
                supervisor(),
                warmup,
                prestart,
            ],
            command,
            env,
            labels,
            working_dir: WORK_DIR.to_string(),
            work,
            tmpfs: vec![(
                "/tmp".to_string(),
                format!("rw,noexec,nosuid,nodev,size={scratch},nr_inodes={inodes},mode=1777"),
            )],
            memory_bytes: limits.memory_bytes(),
            cpus: limits.cpus,
            pids: if own_kernel(language.runtime.as_deref()) {
                limits.pids + GVISOR_THREADS
            } else {
                limits.pids
            },
            nproc: own_kernel(language.runtime.as_deref()).then_some(limits.pids),

            open_files: limits.open_files,
            file_size: work_bytes,
            runtime: language.runtime.clone(),
            security_opt: vec![format!("seccomp={}", with.seccomp)],
            tools: with.tools.to_string(),
            build: self.build.map(|b| b.volume.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::{Origin, Registry};
    use crate::limits::DefaultLimits;

    fn owner() -> Owner {
        Owner {
            instance: "test".into(),
            boot: "b1".into(),
        }
    }

    fn python() -> std::sync::Arc<Language> {
        Registry::builtin(&DefaultLimits::default())
            .unwrap()
            .get("python")
            .unwrap()
    }

    fn c_language() -> Language {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/languages/available/c.toml"
        ))
        .unwrap();
        Language::parse(
            Origin::File("c.toml".into()),
            &text,
            &DefaultLimits::default(),
        )
        .unwrap()
    }

    fn provisions(owner: &Owner, uid: u32) -> Provisions<'_> {
        Provisions {
            owner,
            uid,
            tools: "tools",
            seccomp: "{}",
        }
    }

    fn python_spec(start: Start) -> SandboxSpec {
        let python = python();
        Launch {
            language: &python,
            stage: Stage::Run,
            limits: &python.limits,
            volume: None,
            build: None,
            start,
        }
        .spec(&provisions(&owner(), 65_001))
    }

    #[test]
    fn a_run_has_the_languages_command_limits_and_labels() {
        let spec = python_spec(Start::Cold);
        assert_eq!(spec.command, ["python3", "main.py"]);
        assert_eq!(spec.memory_bytes, 128 << 20);
        assert_eq!(spec.pids, 64);
        assert_eq!(spec.uid, 65_001);
        assert_eq!(spec.labels["code-runner"], "test");
        assert_eq!(spec.labels["code-runner.boot"], "b1");
        assert_eq!(spec.labels["code-runner.language"], "python");
        assert_eq!(spec.labels["code-runner.stage"], "run");
        assert!(spec.env.contains(&"PYTHONUNBUFFERED=1".to_string()));
        assert_eq!(spec.security_opt, ["seccomp={}"]);
        assert_eq!(spec.tools, "tools");
        assert_eq!(spec.entrypoint[4], "/.code-runner/supervise");
    }

    #[test]
    fn scratch_space_is_capped_in_size_and_inodes_and_not_executable() {
        let spec = python_spec(Start::Cold);
        let Work::Tmpfs(work) = &spec.work else {
            panic!("{:?}", spec.work)
        };
        for options in [work, &spec.tmpfs[0].1] {
            assert!(options.contains("size=33554432"), "{options}");
            assert!(options.contains("nr_inodes=4096"), "{options}");
            assert!(options.contains("noexec,nosuid,nodev"), "{options}");
        }
        assert!(work.contains("uid=65001,gid=65001"));
        assert_eq!(spec.file_size, 32 << 20);
    }

    #[test]
    fn a_compile_stage_has_its_command_and_limits_and_shares_the_volume() {
        let c = c_language();
        let compile_limits = &c.compile.as_ref().unwrap().limits;
        let owner = owner();
        let sandbox = |stage, limits| {
            Launch {
                language: &c,
                stage,
                limits,
                volume: Some("vol1"),
                build: None,
                start: Start::Cold,
            }
            .spec(&provisions(&owner, 65_002))
        };
        let compile = sandbox(Stage::Compile, compile_limits);
        let run = sandbox(Stage::Run, &c.limits);
        assert_eq!(compile.command[0], "sh");
        assert_eq!(run.command, ["./main"]);
        assert_eq!(compile.memory_bytes, 512 << 20);
        assert_eq!(run.memory_bytes, 128 << 20);
        assert_eq!(compile.work, Work::Volume("vol1".into()));
        assert_eq!(run.work, Work::Volume("vol1".into()));
        assert_eq!(compile.labels["code-runner.stage"], "compile");
        let options = volume_options(compile_limits, 65_002);
        assert!(
            options.contains("nosuid") && options.contains("uid=65002,gid=65002"),
            "{options}"
        );
        assert!(!options.contains("noexec"), "{options}");
    }

    #[test]
    fn a_batchs_test_has_room_for_the_build_and_then_the_runs_scratch_space() {
        let c = c_language();
        let compile = &c.compile.as_ref().unwrap().limits;
        let owner = owner();
        let test = Launch {
            language: &c,
            stage: Stage::Run,
            limits: &c.limits,
            volume: None,
            build: Some(Build {
                volume: "vol1",
                compile,
            }),
            start: Start::Cold,
        }
        .spec(&provisions(&owner, 65_003));
        let (built, scratch) = (compile.scratch_bytes(), c.limits.scratch_bytes());
        assert_eq!((built, scratch), (128 << 20, 32 << 20));
        let Work::Tmpfs(work) = &test.work else {
            panic!("{:?}", test.work)
        };
        assert!(
            work.contains(&format!(
                "size={},nr_inodes={}",
                built + scratch,
                16_384 + 4096
            )),
            "{work}"
        );
        assert!(work.contains(",exec,"), "{work}");
        assert_eq!(test.file_size, built + scratch);
        assert_eq!(test.build.as_deref(), Some("vol1"));
        let tmp = &test.tmpfs[0].1;
        assert!(tmp.contains("size=33554432,nr_inodes=4096"), "{tmp}");
    }

    #[test]
    fn under_gvisor_the_process_limit_is_nproc_and_the_pids_cgroup_leaves_room_for_its_kernel() {
        let mut python = (*python()).clone();
        let runc = python_spec(Start::Cold);
        assert_eq!((runc.pids, runc.nproc), (64, None));
        python.runtime = Some("runsc".into());
        let gvisor = Launch {
            language: &python,
            stage: Stage::Run,
            limits: &python.limits,
            volume: None,
            build: None,
            start: Start::Cold,
        }
        .spec(&provisions(&owner(), 65_001));
        assert_eq!((gvisor.pids, gvisor.nproc), (64 + GVISOR_THREADS, Some(64)));
        assert_eq!(gvisor.runtime.as_deref(), Some("runsc"));
    }

    #[test]
    fn only_a_pooled_sandbox_runs_the_warm_up() {
        let warm = python_spec(Start::Warm);
        let cold = python_spec(Start::Cold);
        assert_eq!(warm.entrypoint[5], "python3 -c pass");
        assert_eq!(cold.entrypoint[5], "");
        assert_eq!(
            SandboxSpec {
                entrypoint: Vec::new(),
                ..warm
            },
            SandboxSpec {
                entrypoint: Vec::new(),
                ..cold
            }
        );
    }
}
