//! The sandbox container's configuration: a pure function from a language
//! to the Engine API's create body, with the hardening applied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, MountVolumeOptions,
    ResourcesUlimits,
};

use super::input::{BOOTSTRAP, WORK_DIR};
use crate::engine::{BOOT_LABEL, LABEL};
use crate::language::Language;
use crate::limits::Limits;

/// The first of the numeric users (and groups) sandboxes run as, whatever
/// the image's passwd says: Debian reserves 65000–65533, so no account
/// there has them.
pub const FIRST_UID: u32 = 65_000;
/// How many there are. Each sandbox (each run: its compile and run
/// containers share one) takes the next, round robin, so that concurrent
/// runs do not share the kernel's per-user limits (inotify instances, pipe
/// buffers, message queues) with one another.
pub const UIDS: u32 = 534;

static NEXT_UID: AtomicU32 = AtomicU32::new(0);

/// The user (and group) for the next sandbox.
pub fn next_uid() -> u32 {
    FIRST_UID + NEXT_UID.fetch_add(1, Ordering::Relaxed) % UIDS
}
/// Label naming the language of a container.
pub const LANGUAGE_LABEL: &str = "code-runner.language";
/// Label naming the stage (`compile` or `run`) of a container.
pub const STAGE_LABEL: &str = "code-runner.stage";

/// Which command of the language a sandbox is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Compile,
    Run,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Compile => "compile",
            Stage::Run => "run",
        }
    }
}

/// The sandbox's working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// A tmpfs of the container's own, `noexec`: for interpreted languages.
    Tmpfs,
    /// A tmpfs volume shared by a compile and a run container (made with
    /// [`volume_options`]), where the compiled program may be executed.
    Volume(String),
}

/// Who a container belongs to: the deployment and the process.
#[derive(Debug, Clone)]
pub struct Owner {
    /// The deployment's instance name (value of the `code-runner` label).
    pub instance: String,
    /// This process's id, different on every start.
    pub boot: String,
}

/// The labels of everything (containers, volumes) made for `language`.
pub fn labels(owner: &Owner, language: &Language) -> HashMap<String, String> {
    HashMap::from([
        (LABEL.to_string(), owner.instance.clone()),
        (BOOT_LABEL.to_string(), owner.boot.clone()),
        (LANGUAGE_LABEL.to_string(), language.name.clone()),
    ])
}

/// Inodes for a scratch space: one per 8 KiB, at least 1024, so that
/// millions of empty files cannot be made.
fn inodes(scratch: i64) -> i64 {
    (scratch / 8192).max(1024)
}

/// The tmpfs mount options of the working-directory volume of a compiled
/// language (sized by its compile stage, executable), owned by `uid`.
pub fn volume_options(language: &Language, uid: u32) -> String {
    let scratch = language.compile_limits.scratch_bytes();
    format!(
        "size={scratch},nr_inodes={},uid={uid},gid={uid},mode=0700,nosuid,nodev",
        inodes(scratch)
    )
}

/// The create body of a sandbox for one stage of `language`, run as `uid`
/// (user and group). `warm`: run the language's warm-up before waiting for
/// the payload (pooled containers, which wait long enough for it to pay).
pub fn container(
    language: &Language,
    stage: Stage,
    owner: &Owner,
    work: &Work,
    uid: u32,
    warm: bool,
) -> ContainerCreateBody {
    let (command, limits): (&[String], &Limits) = match stage {
        Stage::Compile => (
            language.compile.as_deref().unwrap_or_default(),
            &language.compile_limits,
        ),
        Stage::Run => (&language.run, &language.limits),
    };
    let scratch = limits.scratch_bytes();
    let inodes = inodes(scratch);
    let mut tmpfs = HashMap::from([(
        "/tmp".to_string(),
        format!("rw,noexec,nosuid,nodev,size={scratch},nr_inodes={inodes},mode=1777"),
    )]);
    let mounts = match work {
        Work::Tmpfs => {
            tmpfs.insert(
                WORK_DIR.to_string(),
                format!(
                    "rw,noexec,nosuid,nodev,size={scratch},nr_inodes={inodes},uid={uid},gid={uid},mode=0700"
                ),
            );
            None
        }
        Work::Volume(name) => Some(vec![Mount {
            target: Some(WORK_DIR.to_string()),
            source: Some(name.clone()),
            typ: Some(MountType::VOLUME),
            read_only: Some(false),
            // Without it, the engine copies the image's (missing, so
            // root-owned) mount point's ownership onto the empty volume.
            volume_options: Some(MountVolumeOptions {
                no_copy: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }]),
    };
    let mut env = vec!["HOME=/tmp".to_string(), "LANG=C.UTF-8".to_string()];
    env.extend(language.env.iter().map(|(k, v)| format!("{k}={v}")));
    let mut labels = labels(owner, language);
    labels.insert(STAGE_LABEL.to_string(), stage.as_str().to_string());
    let ulimit = |name: &str, value: i64| ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(value),
        hard: Some(value),
    };
    ContainerCreateBody {
        image: Some(language.image.clone()),
        hostname: Some("sandbox".to_string()),
        user: Some(format!("{uid}:{uid}")),
        working_dir: Some(WORK_DIR.to_string()),
        entrypoint: Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            BOOTSTRAP.to_string(),
            "code-runner".to_string(),
            match (warm, &language.warmup) {
                (true, Some(warmup)) => warmup.clone(),
                _ => String::new(),
            },
        ]),
        cmd: Some(command.to_vec()),
        env: Some(env),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_string()),
            memory: Some(limits.memory_bytes()),
            memory_swap: Some(limits.memory_bytes()),
            nano_cpus: Some((limits.cpus * 1e9) as i64),
            pids_limit: Some(limits.pids),
            readonly_rootfs: Some(true),
            tmpfs: Some(tmpfs),
            mounts,
            cap_drop: Some(vec!["ALL".to_string()]),
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            init: Some(true),
            ulimits: Some(vec![
                ulimit("nofile", limits.open_files),
                ulimit("fsize", scratch),
                ulimit("core", 0),
            ]),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".to_string()),
                config: None,
            }),
            auto_remove: Some(false),
            oom_score_adj: Some(1000),
            shm_size: Some(scratch),
            runtime: language.runtime.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::{Language, Registry};
    use crate::limits::DefaultLimits;

    fn python_spec() -> ContainerCreateBody {
        let registry = Registry::builtin(&DefaultLimits::default()).unwrap();
        let owner = Owner {
            instance: "test".into(),
            boot: "b1".into(),
        };
        container(
            registry.get("python").unwrap(),
            Stage::Run,
            &owner,
            &Work::Tmpfs,
            65_001,
            false,
        )
    }

    fn c_language() -> Language {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/languages/available/c.toml"
        ))
        .unwrap();
        Language::parse("c.toml", &text, &DefaultLimits::default()).unwrap()
    }

    #[test]
    fn a_compile_stage_has_its_command_and_limits_and_shares_the_volume() {
        let c = c_language();
        let owner = Owner {
            instance: "test".into(),
            boot: "b1".into(),
        };
        let work = Work::Volume("vol1".into());
        let compile = container(&c, Stage::Compile, &owner, &work, 65_002, false);
        let run = container(&c, Stage::Run, &owner, &work, 65_002, false);
        assert_eq!(compile.cmd.as_ref().unwrap()[0], "sh");
        assert_eq!(run.cmd.as_ref().unwrap(), &vec!["./main".to_string()]);
        let (ch, rh) = (compile.host_config.unwrap(), run.host_config.unwrap());
        assert_eq!(ch.memory, Some(512 * 1024 * 1024));
        assert_eq!(rh.memory, Some(128 * 1024 * 1024));
        for host in [&ch, &rh] {
            let mount = &host.mounts.as_ref().unwrap()[0];
            assert_eq!(mount.source.as_deref(), Some("vol1"));
            assert_eq!(mount.target.as_deref(), Some("/work"));
            assert!(!host.tmpfs.as_ref().unwrap().contains_key("/work"));
            assert_eq!(host.readonly_rootfs, Some(true));
        }
        assert_eq!(compile.labels.unwrap()["code-runner.stage"], "compile");
        let options = volume_options(&c, 65_002);
        assert!(
            options.contains("nosuid") && options.contains("uid=65002,gid=65002"),
            "{options}"
        );
        assert!(!options.contains("noexec"), "{options}");
    }

    #[test]
    fn the_hardening_baseline_is_applied() {
        let spec = python_spec();
        let host = spec.host_config.as_ref().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(spec.network_disabled, Some(true));
        assert_eq!(host.memory, host.memory_swap);
        assert_eq!(host.memory, Some(128 * 1024 * 1024));
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert!(host.cpu_quota.is_none() && host.cpu_period.is_none());
        assert_eq!(host.pids_limit, Some(64));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(
            host.security_opt.as_deref(),
            Some(&["no-new-privileges:true".to_string()][..])
        );
        assert_eq!(host.init, Some(true));
        assert_eq!(host.auto_remove, Some(false));
        assert_eq!(host.oom_score_adj, Some(1000));
        assert_eq!(
            host.log_config.as_ref().unwrap().typ.as_deref(),
            Some("none")
        );
        assert_eq!(spec.user.as_deref(), Some("65001:65001"));
        assert!(host.privileged.is_none());
        assert!(host.binds.is_none() && host.mounts.is_none());
    }

    #[test]
    fn scratch_space_is_capped_in_size_and_inodes() {
        let spec = python_spec();
        let tmpfs = spec.host_config.unwrap().tmpfs.unwrap();
        for dir in ["/work", "/tmp"] {
            let options = &tmpfs[dir];
            assert!(options.contains("size=33554432"), "{options}");
            assert!(options.contains("nr_inodes=4096"), "{options}");
            assert!(options.contains("nosuid"), "{options}");
        }
        assert!(tmpfs["/work"].contains("uid=65001,gid=65001"));
    }

    #[test]
    fn ulimits_cap_files_file_size_and_core_dumps() {
        let spec = python_spec();
        let ulimits = spec.host_config.unwrap().ulimits.unwrap();
        let get = |n: &str| {
            ulimits
                .iter()
                .find(|u| u.name.as_deref() == Some(n))
                .map(|u| (u.soft, u.hard))
        };
        assert_eq!(get("nofile"), Some((Some(256), Some(256))));
        assert_eq!(get("fsize"), Some((Some(33554432), Some(33554432))));
        assert_eq!(get("core"), Some((Some(0), Some(0))));
    }

    #[test]
    fn only_a_pooled_container_runs_the_warm_up() {
        let registry = Registry::builtin(&DefaultLimits::default()).unwrap();
        let python = registry.get("python").unwrap();
        let owner = Owner {
            instance: "test".into(),
            boot: "b1".into(),
        };
        let warm = container(python, Stage::Run, &owner, &Work::Tmpfs, 65_003, true);
        let cold = container(python, Stage::Run, &owner, &Work::Tmpfs, 65_003, false);
        assert_eq!(warm.entrypoint.unwrap()[4], "python3 -c pass");
        assert_eq!(cold.entrypoint.unwrap()[4], "");
        assert_eq!(warm.host_config, cold.host_config);
        assert_eq!(warm.cmd, cold.cmd);
    }

    #[test]
    fn users_are_reserved_ids_handed_out_round_robin() {
        let ids: Vec<u32> = (0..2 * UIDS).map(|_| next_uid()).collect();
        assert!(
            ids.iter()
                .all(|id| (FIRST_UID..FIRST_UID + UIDS).contains(id))
        );
        assert!(ids.iter().all(|id| *id != 65_534 && *id != 0));
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn every_container_is_labelled_with_its_owner() {
        let labels = python_spec().labels.unwrap();
        assert_eq!(labels["code-runner"], "test");
        assert_eq!(labels["code-runner.boot"], "b1");
        assert_eq!(labels["code-runner.language"], "python");
    }

    #[test]
    fn the_code_goes_through_stdin_not_argv() {
        let spec = python_spec();
        assert_eq!(spec.open_stdin, Some(true));
        assert_eq!(spec.stdin_once, Some(true));
        assert_eq!(spec.cmd.unwrap(), vec!["python3", "main.py"]);
    }
}
