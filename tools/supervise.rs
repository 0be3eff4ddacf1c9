//! `supervise`: the program every sandbox runs its stage's command under.
//!
//! It is built by `build.rs` as a static executable (it must run in any
//! image), put by the service on a read-only volume mounted at
//! `/.code-runner`, and `exec`ed by the bootstrap once the files are
//! written:
//!
//! ```text
//! /.code-runner/supervise <cpu limit in ms, 0 for none> <build dir or -> <command> [args...]
//! ```
//!
//! It reads the run's nonce from fd 3 (so the nonce is on no command
//! line), makes itself non-dumpable (so no process of the same user can
//! read its memory), copies the build folder (a compiled program, for one
//! test of a batch) into the working directory when one is given, writes
//! `<nonce>:start:<cpu µs>` on stdout, runs the
//! command as its child (stdin, stdout and stderr inherited), and when the
//! child ends writes on both stdout and stderr the trailer
//!
//! ```text
//! <nonce>:<x<exit code>|s<signal>>:<oom kills>:<cpu µs>:<memory peak bytes>:<cpu|->
//! ```
//!
//! with the child's real wait status (a shell's `$?` cannot tell `exit(139)`
//! from death by SIGSEGV), the kernel's out-of-memory kills in the
//! sandbox's own memory cgroup while it ran, the CPU time the sandbox's
//! processes used while it ran (user and system, all of them), the peak
//! memory of the sandbox's cgroup, and whether the CPU-time limit stopped
//! it. A figure it cannot read is `-`. It then exits with the child's
//! status (128+N for signal N).
//!
//! With a CPU-time limit, a thread reads the sandbox's CPU usage every
//! 10 ms and, past the limit, kills every process it may (`kill(-1)`: all
//! of the sandbox's but init and itself); each process also gets
//! `RLIMIT_CPU` just above the limit, so that a program that stops this
//! supervisor still cannot run past it alone.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

unsafe extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn setrlimit(resource: i32, rlim: *const [u64; 2]) -> i32;
}

const PR_SET_DUMPABLE: i32 = 4;
const SIGKILL: i32 = 9;
const RLIMIT_CPU: i32 = 0;
const POLL: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nonce = read_nonce();
    // SAFETY: plain system calls with constant arguments.
    unsafe {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let (Some(limit), Some(build), Some(program)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!(
            "supervise: usage: supervise <cpu limit ms> <build dir or -> <command> [args...]"
        );
        return ExitCode::from(2);
    };
    if build != "-"
        && let Err(e) = copy_tree(Path::new(build), Path::new("."))
    {
        eprintln!("supervise: cannot copy the build from {build}: {e}");
        return ExitCode::from(126);
    }
    let cpu_limit_us = limit.parse::<u64>().unwrap_or(0) * 1000;
    let cgroup = Cgroup::find(
        &fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        &fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
    );
    let oom_before = cgroup.oom_kills();
    let cpu_before = cgroup.cpu_us();
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{nonce}:start:{}", figure(cpu_before));
    let _ = stdout.flush();

    let mut command = Command::new(program);
    command.args(&args[3..]);
    if cpu_limit_us > 0 {
        let seconds = cpu_limit_us.div_ceil(1_000_000) + 1;
        // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(move || {
                setrlimit(RLIMIT_CPU, &[seconds, seconds]);
                Ok(())
            });
        }
    }
    let status = match command.spawn() {
        Ok(mut child) => {
            let stopped = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicBool::new(false));
            if let (Some(before), true) = (cpu_before, cpu_limit_us > 0) {
                let (cgroup, stopped, done) = (cgroup.clone(), stopped.clone(), done.clone());
                std::thread::spawn(move || {
                    watch_cpu(&cgroup, before + cpu_limit_us, &stopped, &done)
                });
            }
            let status = child.wait();
            done.store(true, Ordering::SeqCst);
            match status {
                Ok(status) => Ended {
                    code: status.code(),
                    signal: status.signal(),
                    cpu_limit: stopped.load(Ordering::SeqCst),
                },
                Err(_) => Ended::failed(),
            }
        }
        Err(e) => {
            // As a shell says it: 127 when the command is not there, 126
            // when it cannot be run.
            let _ = writeln!(std::io::stderr(), "{program}: {e}");
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            Ended {
                code: Some(code),
                signal: None,
                cpu_limit: false,
            }
        }
    };
    let trailer = format!(
        "{nonce}:{}:{}:{}:{}:{}\n",
        status.how(),
        match (oom_before, cgroup.oom_kills()) {
            (Some(before), Some(after)) => (after.saturating_sub(before)).to_string(),
            _ => "-".to_string(),
        },
        match (cpu_before, cgroup.cpu_us()) {
            (Some(before), Some(after)) => (after.saturating_sub(before)).to_string(),
            _ => "-".to_string(),
        },
        figure(cgroup.memory_peak()),
        if status.cpu_limit { "cpu" } else { "-" },
    );
    let _ = stdout.write_all(trailer.as_bytes());
    let _ = stdout.flush();
    let _ = std::io::stderr().write_all(trailer.as_bytes());
    ExitCode::from(status.exit_code())
}

/// Copies the files, folders and links under `from` into `to`, keeping
/// each file's permissions.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::create_dir_all(&target)?;
            copy_tree(&source, &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
        } else {
            fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

fn figure(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The nonce, one line on fd 3; fd 3 is closed after.
fn read_nonce() -> String {
    // SAFETY: fd 3 is the nonce's pipe, given by the bootstrap, and owned
    // here alone (the File closes it when dropped).
    let mut pipe = unsafe { fs::File::from_raw_fd(3) };
    let mut nonce = String::new();
    let _ = Read::by_ref(&mut pipe).take(256).read_to_string(&mut nonce);
    nonce.trim().to_string()
}

/// Kills every process of the sandbox once its CPU usage passes `until`.
fn watch_cpu(cgroup: &Cgroup, until: u64, stopped: &AtomicBool, done: &AtomicBool) {
    while !done.load(Ordering::SeqCst) {
        if cgroup.cpu_us().is_some_and(|used| used > until) {
            stopped.store(true, Ordering::SeqCst);
            // SAFETY: kill(-1) signals every process this one may, but
            // init and itself: the sandbox's.
            unsafe {
                kill(-1, SIGKILL);
            }
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// How the child ended.
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    cpu_limit: bool,
}

impl Ended {
    fn failed() -> Ended {
        Ended {
            code: Some(126),
            signal: None,
            cpu_limit: false,
        }
    }

    fn how(&self) -> String {
        match (self.signal, self.code) {
            (Some(signal), _) => format!("s{signal}"),
            (None, Some(code)) => format!("x{code}"),
            (None, None) => "x126".to_string(),
        }
    }

    fn exit_code(&self) -> u8 {
        match (self.signal, self.code) {
            (Some(signal), _) => (128 + signal).clamp(0, 255) as u8,
            (None, Some(code)) => code.clamp(0, 255) as u8,
            (None, None) => 126,
        }
    }
}

/// The sandbox's own cgroup files, wherever the cgroup filesystems are
/// mounted and whatever version each controller is.
#[derive(Debug, Clone, Default, PartialEq)]
struct Cgroup {
    memory: Option<Dir>,
    cpu: Option<Dir>,
}

/// A controller's folder, in a v1 hierarchy or the unified (v2) one.
#[derive(Debug, Clone, PartialEq)]
enum Dir {
    V1(PathBuf),
    V2(PathBuf),
}

impl Cgroup {
    /// From `/proc/self/cgroup` and `/proc/self/mountinfo`: each
    /// controller's mount point, joined with this process's cgroup path
    /// below the mount's root. A folder that does not exist falls back to
    /// the mount point (where a container's own cgroup is usually mounted).
    /// A v1 controller wins over the unified hierarchy (hybrid hosts).
    fn find(cgroups: &str, mountinfo: &str) -> Cgroup {
        let (mut memory, mut cpu, mut unified) = (None, None, None);
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = left.split(' ').collect();
            let rights: Vec<&str> = right.split(' ').collect();
            let (Some(root), Some(point), Some(kind)) =
                (fields.get(3), fields.get(4), rights.first())
            else {
                continue;
            };
            let options = rights.get(2).copied().unwrap_or_default();
            let has = |name: &str| options.split(',').any(|o| o == name);
            let in_hierarchy = |name: &str| own_path(cgroups, |c| c.split(',').any(|n| n == name));
            match *kind {
                "cgroup2" => {
                    unified = Some(below(
                        point,
                        root,
                        own_path(cgroups, str::is_empty).as_deref(),
                    ))
                }
                "cgroup" if has("memory") => {
                    memory = Some(below(point, root, in_hierarchy("memory").as_deref()))
                }
                "cgroup" if has("cpuacct") => {
                    cpu = Some(below(point, root, in_hierarchy("cpuacct").as_deref()))
                }
                _ => {}
            }
        }
        Cgroup {
            memory: memory.map(Dir::V1).or_else(|| unified.clone().map(Dir::V2)),
            cpu: cpu.map(Dir::V1).or_else(|| unified.map(Dir::V2)),
        }
    }

    /// The kernel's out-of-memory kills in the sandbox's memory cgroup.
    fn oom_kills(&self) -> Option<u64> {
        match self.memory.as_ref()? {
            Dir::V1(dir) => keyed(&read(dir, "memory.oom_control")?, "oom_kill"),
            Dir::V2(dir) => keyed(&read(dir, "memory.events")?, "oom_kill"),
        }
    }

    /// CPU time used by the sandbox's processes, in µs.
    fn cpu_us(&self) -> Option<u64> {
        match self.cpu.as_ref()? {
            Dir::V1(dir) => Some(read(dir, "cpuacct.usage")?.trim().parse::<u64>().ok()? / 1000),
            Dir::V2(dir) => keyed(&read(dir, "cpu.stat")?, "usage_usec"),
        }
    }

    /// The peak memory of the sandbox's cgroup, in bytes.
    fn memory_peak(&self) -> Option<u64> {
        let text = match self.memory.as_ref()? {
            Dir::V1(dir) => read(dir, "memory.max_usage_in_bytes")?,
            Dir::V2(dir) => read(dir, "memory.peak")?,
        };
        text.trim().parse().ok()
    }
}

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// This process's path in the hierarchy whose controllers `matches`
/// (`/proc/self/cgroup` lines are `id:controllers:path`).
fn own_path(cgroups: &str, matches: impl Fn(&str) -> bool) -> Option<String> {
    cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        matches(controllers).then(|| path.to_string())
    })
}

/// `point` joined with `own` below `root`; `point` itself when that folder
/// does not exist (or `own` is not below `root`).
fn below(point: &str, root: &str, own: Option<&str>) -> PathBuf {
    let base = Path::new(point);
    let Some(rest) = own.and_then(|own| own.strip_prefix(root)) else {
        return base.to_path_buf();
    };
    let dir = base.join(rest.trim_start_matches('/'));
    if dir.is_dir() {
        dir
    } else {
        base.to_path_buf()
    }
}

/// The value of `key` in a `key value` file.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_CGROUP: &str = "12:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
    const V1_MOUNTS: &str = "\
700 690 0:60 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:18 - cgroup cgroup rw,memory
701 690 0:61 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:19 - cgroup cgroup rw,cpu,cpuacct
702 690 0:62 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn on_cgroup_v1_the_containers_own_controllers_are_found() {
        let c = Cgroup::find(V1_CGROUP, V1_MOUNTS);
        assert_eq!(c.memory, Some(Dir::V1("/sys/fs/cgroup/memory".into())));
        assert_eq!(c.cpu, Some(Dir::V1("/sys/fs/cgroup/cpu,cpuacct".into())));
    }

    #[test]
    fn on_cgroup_v2_the_unified_folder_is_found() {
        let mounts = "30 20 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n";
        let c = Cgroup::find("0::/\n", mounts);
        assert_eq!(c.memory, Some(Dir::V2("/sys/fs/cgroup".into())));
        // A path below the root that does not exist falls back to the mount.
        let c = Cgroup::find("0::/system.slice/x.scope\n", mounts);
        assert_eq!(c.cpu, Some(Dir::V2("/sys/fs/cgroup".into())));
    }

    #[test]
    fn a_build_is_copied_with_its_folders_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let from = std::env::temp_dir().join(format!("supervise-from-{}", std::process::id()));
        let to = std::env::temp_dir().join(format!("supervise-to-{}", std::process::id()));
        fs::create_dir_all(from.join("pkg")).unwrap();
        fs::create_dir_all(&to).unwrap();
        fs::write(from.join("main"), b"binary").unwrap();
        fs::set_permissions(from.join("main"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(from.join("pkg/Util.class"), b"class").unwrap();
        std::os::unix::fs::symlink("main", from.join("link")).unwrap();
        copy_tree(&from, &to).unwrap();
        assert_eq!(fs::read(to.join("pkg/Util.class")).unwrap(), b"class");
        let mode = fs::metadata(to.join("main")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(fs::read_link(to.join("link")).unwrap(), Path::new("main"));
        fs::remove_dir_all(&from).unwrap();
        fs::remove_dir_all(&to).unwrap();
    }

    #[test]
    fn keyed_files_and_statuses_are_read() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(oom, "oom_kill"), Some(3));
        assert_eq!(keyed(oom, "missing"), None);
        let e = Ended {
            code: None,
            signal: Some(11),
            cpu_limit: false,
        };
        assert_eq!((e.how(), e.exit_code()), ("s11".to_string(), 139));
        let e = Ended {
            code: Some(139),
            signal: None,
            cpu_limit: false,
        };
        assert_eq!((e.how(), e.exit_code()), ("x139".to_string(), 139));
    }
}
