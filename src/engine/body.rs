//! A sandbox as the Engine API creates it: a pure function from a
//! [`SandboxSpec`] (what varies from one sandbox to another) to the create
//! body, with the hardening that never varies applied here, in one place.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, MountVolumeOptions,
    ResourcesUlimits,
};

/// Where a sandbox finds the tools volume (read-only).
pub(crate) const TOOLS_POINT: &str = "/.code-runner";
/// Where a test of a batch finds its compiled build (read-only).
pub(crate) const BUILD_POINT: &str = "/.code-runner-build";
/// Where the container that fills a volume mounts it.
pub(super) const FILL_POINT: &str = "/fill";

/// What varies between sandboxes. Everything else is fixed by
/// `create_body`: no network, a read-only root filesystem, every
/// capability dropped, `no-new-privileges`, no init but the container's
/// own command (the supervisor becomes the PID namespace's init, out of
/// the program's reach: `tools/supervise.rs`), no logging driver, swap equal to memory, `oom_score_adj` 1000, no core dumps, no
/// automatic removal, and stdin, stdout and stderr attached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SandboxSpec {
    pub(crate) image: String,
    /// The numeric user and group the sandbox runs as.
    pub(crate) uid: u32,
    pub(crate) entrypoint: Vec<String>,
    pub(crate) command: Vec<String>,
    /// `KEY=value` each.
    pub(crate) env: Vec<String>,
    pub(crate) labels: HashMap<String, String>,
    /// The working directory, and what is mounted there.
    pub(crate) working_dir: String,
    pub(crate) work: Work,
    /// Other tmpfs mounts: (path, mount options).
    pub(crate) tmpfs: Vec<(String, String)>,
    /// Memory, in bytes; swap is the same, so none.
    pub(crate) memory_bytes: u64,
    /// CPUs, fractional allowed.
    pub(crate) cpus: f64,
    /// Processes and threads at once (the pids cgroup).
    pub(crate) pids: u64,
    /// `RLIMIT_NPROC`, when set (for a runtime with a kernel of its own,
    /// which counts it per sandbox).
    pub(crate) nproc: Option<u64>,
    /// `RLIMIT_NOFILE`.
    pub(crate) open_files: u64,
    /// `RLIMIT_FSIZE`, in bytes (also the size of `/dev/shm`).
    pub(crate) file_size: u64,
    /// The OCI runtime, when not the engine's default.
    pub(crate) runtime: Option<String>,
    /// Security options beyond `no-new-privileges` (`seccomp=<profile>`).
    pub(crate) security_opt: Vec<String>,
    /// The volume of tools (the supervisor), mounted read-only at
    /// [`TOOLS_POINT`].
    pub(crate) tools: String,
    /// A compiled build's volume, mounted read-only at [`BUILD_POINT`].
    pub(crate) build: Option<String>,
}

/// What is mounted on the working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Work {
    /// A tmpfs of the container's own, with these mount options.
    Tmpfs(String),
    /// A volume, shared with another sandbox of the same run.
    Volume(String),
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The Engine API's create body for `spec`, hardened.
pub(crate) fn create_body(spec: &SandboxSpec) -> ContainerCreateBody {
    let mut tmpfs: HashMap<String, String> = spec.tmpfs.iter().cloned().collect();
    let mut mounts = vec![volume_mount(&spec.tools, TOOLS_POINT, true)];
    if let Some(build) = &spec.build {
        mounts.push(volume_mount(build, BUILD_POINT, true));
    }
    match &spec.work {
        Work::Tmpfs(options) => {
            tmpfs.insert(spec.working_dir.clone(), options.clone());
        }
        Work::Volume(name) => mounts.push(volume_mount(name, &spec.working_dir, false)),
    }
    let ulimit = |name: &str, value: u64| ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(clamp(value)),
        hard: Some(clamp(value)),
    };
    let mut ulimits = vec![
        ulimit("nofile", spec.open_files),
        ulimit("fsize", spec.file_size),
        ulimit("core", 0),
    ];
    if let Some(nproc) = spec.nproc {
        ulimits.push(ulimit("nproc", nproc));
    }
    let mut security_opt = vec!["no-new-privileges:true".to_string()];
    security_opt.extend(spec.security_opt.iter().cloned());
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: Some("sandbox".to_string()),
        user: Some(format!("{0}:{0}", spec.uid)),
        working_dir: Some(spec.working_dir.clone()),
        entrypoint: Some(spec.entrypoint.clone()),
        cmd: Some(spec.command.clone()),
        env: Some(spec.env.clone()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        labels: Some(spec.labels.clone()),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_string()),
            memory: Some(clamp(spec.memory_bytes)),
            memory_swap: Some(clamp(spec.memory_bytes)),
            // Never with cpu_quota/cpu_period: the engine refuses both.
            nano_cpus: Some((spec.cpus * 1e9).round() as i64),
            pids_limit: Some(clamp(spec.pids)),
            readonly_rootfs: Some(true),
            tmpfs: Some(tmpfs),
            mounts: Some(mounts),
            cap_drop: Some(vec!["ALL".to_string()]),
            security_opt: Some(security_opt),
            // The supervisor is the namespace's init, not Docker's.
            init: Some(false),
            ulimits: Some(ulimits),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".to_string()),
                config: None,
            }),
            auto_remove: Some(false),
            oom_score_adj: Some(1000),
            shm_size: Some(clamp(spec.file_size)),
            runtime: spec.runtime.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A volume mounted at `target`, without the engine copying the image's
/// (missing, so root-owned) mount point's ownership onto it.
fn volume_mount(name: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        target: Some(target.to_string()),
        source: Some(name.to_string()),
        typ: Some(MountType::VOLUME),
        read_only: Some(read_only),
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container of `image` that mounts `volume` at [`FILL_POINT`] to be
/// written through the archive upload API; never started.
pub(super) fn filler_body(
    image: &str,
    volume: &str,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["/nonexistent".to_string()]),
        network_disabled: Some(true),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_string()),
            mounts: Some(vec![Mount {
                volume_options: None,
                ..volume_mount(volume, FILL_POINT, false)
            }]),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".to_string()),
                config: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A tar archive of `files` (name, mode, content; a name ending in `/` is
/// a folder), owned by root.
pub(super) fn tar(files: &[(&str, u32, &[u8])]) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for (name, mode, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let kind = if name.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        };
        header.set_entry_type(kind);
        archive.append_data(&mut header, name, *content)?;
    }
    archive.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(work: Work) -> SandboxSpec {
        SandboxSpec {
            image: "python:3.13-slim".into(),
            uid: 65_001,
            entrypoint: vec!["/bin/sh".into()],
            command: vec!["python3".into(), "main.py".into()],
            env: vec!["HOME=/tmp".into()],
            labels: HashMap::from([("code-runner".into(), "test".into())]),
            working_dir: "/work".into(),
            work,
            tmpfs: vec![("/tmp".into(), "size=1".into())],
            memory_bytes: 128 << 20,
            cpus: 1.0,
            pids: 64,
            nproc: None,
            open_files: 256,

            file_size: 32 << 20,
            runtime: None,
            security_opt: vec!["seccomp={}".into()],
            tools: "tools-vol".into(),
            build: None,
        }
    }

    #[test]
    fn the_hardening_baseline_is_applied() {
        let body = create_body(&spec(Work::Tmpfs("size=2".into())));
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!(host.memory, host.memory_swap);
        assert_eq!(host.memory, Some(128 * 1024 * 1024));
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert!(host.cpu_quota.is_none() && host.cpu_period.is_none());
        assert_eq!(host.pids_limit, Some(64));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(
            host.security_opt.as_deref(),
            Some(
                &[
                    "no-new-privileges:true".to_string(),
                    "seccomp={}".to_string()
                ][..]
            )
        );
        assert_eq!(host.init, Some(false));
        assert_eq!(host.auto_remove, Some(false));
        assert_eq!(host.oom_score_adj, Some(1000));
        assert_eq!(
            host.log_config.as_ref().unwrap().typ.as_deref(),
            Some("none")
        );
        assert_eq!(body.user.as_deref(), Some("65001:65001"));
        assert!(host.privileged.is_none());
        assert!(host.binds.is_none());
        let tools = &host.mounts.as_ref().unwrap()[0];
        assert_eq!(
            (
                tools.source.as_deref(),
                tools.target.as_deref(),
                tools.read_only
            ),
            (Some("tools-vol"), Some("/.code-runner"), Some(true))
        );
        let tmpfs = host.tmpfs.as_ref().unwrap();
        assert_eq!(tmpfs["/work"], "size=2");
        assert_eq!(tmpfs["/tmp"], "size=1");
        assert_eq!(body.open_stdin, Some(true));
        assert_eq!(body.stdin_once, Some(true));
    }

    #[test]
    fn ulimits_cap_files_file_size_and_core_dumps() {
        let body = create_body(&spec(Work::Tmpfs(String::new())));
        let ulimits = body.host_config.unwrap().ulimits.unwrap();
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
    fn a_shared_volume_is_mounted_on_the_working_directory_without_copying() {
        let body = create_body(&spec(Work::Volume("vol1".into())));
        let host = body.host_config.unwrap();
        let mount = &host.mounts.as_ref().unwrap()[1];
        assert_eq!(mount.source.as_deref(), Some("vol1"));
        assert_eq!(mount.target.as_deref(), Some("/work"));
        assert_eq!(mount.volume_options.as_ref().unwrap().no_copy, Some(true));
        assert!(!host.tmpfs.as_ref().unwrap().contains_key("/work"));
        assert_eq!(mount.read_only, Some(false));
    }

    #[test]
    fn a_tar_of_tools_is_owned_by_root_with_its_modes() {
        let bytes = tar(&[("supervise", 0o555, b"\x7fELF")]).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        let header = entry.header();
        assert_eq!(header.path().unwrap().to_str(), Some("supervise"));
        assert_eq!((header.mode().unwrap(), header.uid().unwrap()), (0o555, 0));
        assert_eq!(header.size().unwrap(), 4);
    }
}
