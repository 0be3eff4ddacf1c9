//! `supervise`: the program every sandbox runs its stage's command under.
//!
//! It is built by `build.rs` as a static executable (it must run in any
//! image), put by the service on a read-only volume mounted at
//! `/.code-runner`, and `exec`ed by the bootstrap once the files are
//! written:
//!
//! ```text
//! /.code-runner/supervise <cpu limit in ms, 0 for none> <wall limit in ms, 0 for none> <stdin: - or framed> <stderr: - or merged> <build dir or -> <files back: - or wanted> <command> [args...]
//! ```
//!
//! `wanted` is `<most files>:<most bytes>` and the patterns of the files
//! the run asks back, each after a tab (`returned`): once the program and
//! every process it left are gone, and its output is relayed, the matching
//! regular files of the working directory are written on stdout, before
//! the trailer, each as `<nonce>:file:<size>:<name>\n<size bytes>`, and
//! those left out as `<nonce>:omitted:<size>:<reason>:<name>\n`. No
//! symbolic link is followed, and only the working directory is walked.
//!
//! With stdin `-` the program's stdin is this process's own (the rest of
//! the payload's stream). With `framed` (a streamed run) the program gets
//! a pipe, and the rest of the stream is frames: `d<size>\n<size bytes>`
//! (stdin data), `e\n` (the end of stdin) and `k<signal>\n` (a signal to
//! the program: to every process of the sandbox but this one, as a
//! terminal's Ctrl-C reaches its foreground group). A thread reads them
//! while the program runs; another writes the data to the pipe, so that a
//! program that does not read its stdin never holds a signal back.
//!
//! It reads the run's nonce from fd 3 (so the nonce is on no command
//! line), makes itself non-dumpable (so no process of the same user can
//! read its memory), copies the build folder (a compiled program, for one
//! test of a batch) into the working directory when one is given, writes
//! `<nonce>:start:<cpu µs>` on stdout, runs the command as its child (stdin
//! inherited; stdout and stderr pipes of its own, which this program relays
//! to its own; with stderr `merged`, one pipe that is both the child's fd 1
//! and its fd 2, as `2>&1` makes it, relayed to stdout, so that the one
//! stream holds both in the order of the writes), and when the child ends
//! writes on both stdout and stderr the trailer
//!
//! ```text
//! <nonce>:<x<exit code>|s<signal>>:<oom kills>:<cpu µs>:<memory peak bytes>:<cpu|wall|->
//! ```
//!
//! with the child's real wait status (a shell's `$?` cannot tell `exit(139)`
//! from death by SIGSEGV), the kernel's out-of-memory kills in the
//! sandbox's own memory cgroup while it ran, the CPU time the sandbox's
//! processes used while it ran (user and system, all of them), the peak
//! memory of the sandbox's cgroup, and which limit stopped it, if one did
//! (the CPU time, or the wall time counted from the program's start). A
//! figure it cannot read is `-`. It then exits with the child's status
//! (128+N for signal N). Whatever stopped the program, the rest of its
//! output is relayed before the trailer.
//!
//! With a CPU-time limit, a thread reads the sandbox's CPU usage every
//! 10 ms and, past the limit, kills every process it may (`kill(-1)`: all
//! of the sandbox's but itself); each process also gets `RLIMIT_CPU` just
//! above the limit. The service holds the limit from outside as well.
//!
//! **Out of the program's reach.** In a sandbox this program is the PID
//! namespace's init (the bootstrap `exec`s it as PID 1; the container has
//! no other init): the kernel delivers no signal from inside the namespace
//! to an init that has no handler for it, so the program can neither stop
//! nor kill it; the seccomp profile refuses `prlimit64` on any process but
//! the caller, so it cannot change its limits; it is not dumpable, so its
//! memory, its file descriptors and its `/proc` files are closed to the
//! program, and `ptrace` is refused. The container's stdout and stderr,
//! where the start line and the trailer (and their nonce) travel, are held
//! by this process alone: the program writes to pipes, so what it can
//! reopen through `/proc/self/fd` is its own output, never the report. As
//! init it also reaps the orphans the program leaves.

// The service compiles this file into its unit tests only to run the
// tests below; there the executable's entry points have no caller.
#![cfg_attr(test, allow(dead_code))]

use std::fs;
use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

unsafe extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn setrlimit(resource: i32, rlim: *const [u64; 2]) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn pipe2(fds: *mut i32, flags: i32) -> i32;
    fn dup2(old: i32, new: i32) -> i32;
    fn close(fd: i32) -> i32;
    fn getuid() -> u32;
}

const O_CLOEXEC: i32 = 0o2_000_000;
const WNOHANG: i32 = 1;
const ECHILD: i32 = 10;

const PR_SET_DUMPABLE: i32 = 4;
const SIGKILL: i32 = 9;
const RLIMIT_CPU: i32 = 0;
const POLL: Duration = Duration::from_millis(10);
/// Longest the sandbox outlives its run, waiting to be removed.
const LINGER: Duration = Duration::from_secs(60);
/// Longest the relay waits, once the program ended, for the rest of its
/// output (every writer is killed first in a sandbox).
const DRAIN: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // SAFETY: plain system calls with constant arguments.
    unsafe {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    if args.first().map(String::as_str) == Some("--prestart") {
        return prestarted(&args[1..]);
    }
    let nonce = read_nonce();
    let (
        Some(limit),
        Some(wall),
        Some(stdin),
        Some(stderr),
        Some(build),
        Some(wanted),
        Some(program),
    ) = (
        args.first(),
        args.get(1),
        args.get(2),
        args.get(3).and_then(|s| Stderr::parse(s)),
        args.get(4),
        args.get(5).and_then(|s| returned::Wanted::parse(s)),
        args.get(6),
    )
    else {
        eprintln!(
            "supervise: usage: supervise <cpu limit ms> <wall limit ms> <- or framed> <- or merged> <build dir or -> <- or files wanted> <command> [args...]\n       supervise --prestart <python|node> <command> [args...]"
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
    let wall_ms = wall.parse::<u64>().unwrap_or(0);
    let mut command = Command::new(program);
    command.args(&args[7..]);
    let output = match output_pipes(&mut command, stderr) {
        Ok(output) => output,
        Err(e) => {
            eprintln!("supervise: cannot make the program's output pipes: {e}");
            return ExitCode::from(125);
        }
    };
    let input = match stdin.as_str() {
        "framed" => match input_pipe(&mut command) {
            Ok(pipe) => Some(pipe),
            Err(e) => {
                eprintln!("supervise: cannot make the program's stdin pipe: {e}");
                return ExitCode::from(125);
            }
        },
        _ => None,
    };
    let run = Run::begin(nonce, cpu_limit_us, wall_ms, wanted);
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
    let spawned = command.spawn();
    // The pipes' write ends are the child's now (or nobody's).
    drop(command);
    match spawned {
        Ok(child) => {
            if let Some(pipe) = input {
                Stdin::Framed.relay(pipe, child.id());
            }
            run.finish(&child, output)
        }
        Err(e) => run.unstarted(program, &e, stderr),
    }
}

/// One run under way: the nonce, the time limits, and the sandbox's
/// figures when it started.
struct Run {
    nonce: String,
    cpu_limit_us: u64,
    /// The wall-time limit, from the start line; 0 for none.
    wall_ms: u64,
    cgroup: Cgroup,
    oom_before: Option<u64>,
    cpu_before: Option<u64>,
    /// The files to send back once the program is gone, if any.
    wanted: Option<returned::Wanted>,
}

impl Run {
    /// Reads the sandbox's figures and writes the start line: the program
    /// starts now.
    fn begin(
        nonce: String,
        cpu_limit_us: u64,
        wall_ms: u64,
        wanted: Option<returned::Wanted>,
    ) -> Run {
        let cgroup = Cgroup::find(
            &fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            &fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
        );
        let oom_before = cgroup.oom_kills();
        let cpu_before = cgroup.cpu_us();
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "{nonce}:start:{}", figure(cpu_before));
        let _ = stdout.flush();
        Run {
            nonce,
            cpu_limit_us,
            wall_ms,
            cgroup,
            oom_before,
            cpu_before,
            wanted,
        }
    }

    /// Relays `child`'s output, waits for it (watching the CPU-time and
    /// wall-time limits) and ends the run.
    fn finish(self, child: &std::process::Child, output: Vec<(fs::File, i32)>) -> ExitCode {
        let relay = Relay::start(output);
        let cpu_stopped = Arc::new(AtomicBool::new(false));
        let wall_stopped = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        if let (Some(before), true) = (self.cpu_before, self.cpu_limit_us > 0) {
            let (cgroup, stopped, done) = (self.cgroup.clone(), cpu_stopped.clone(), done.clone());
            let until = before + self.cpu_limit_us;
            std::thread::spawn(move || watch_cpu(&cgroup, until, &stopped, &done));
        }
        // The wall clock's thread waits on a channel that closes when the
        // child has ended.
        let (child_ended, ending) = mpsc::channel::<()>();
        if self.wall_ms > 0 {
            let (limit, stopped) = (Duration::from_millis(self.wall_ms), wall_stopped.clone());
            std::thread::spawn(move || watch_wall(limit, &ending, &stopped));
        }
        let status = wait_for(child.id());
        done.store(true, Ordering::SeqCst);
        drop(child_ended);
        let stopped = if cpu_stopped.load(Ordering::SeqCst) {
            Some("cpu")
        } else if wall_stopped.load(Ordering::SeqCst) {
            Some("wall")
        } else {
            None
        };
        let ended = match status {
            Ok(status) => Ended {
                code: status.code(),
                signal: status.signal(),
                stopped,
            },
            Err(_) => Ended::failed(),
        };
        self.end(ended, Some(relay))
    }

    /// Ends the run of a command that could not be started, saying so as
    /// a shell does, on the program's stderr (wherever that goes): 127
    /// when the command is not there, 126 when it cannot be run.
    fn unstarted(self, program: &str, e: &std::io::Error, stderr: Stderr) -> ExitCode {
        let said = format!("{program}: {e}\n");
        let _ = match stderr {
            Stderr::Apart => std::io::stderr().write_all(said.as_bytes()),
            Stderr::Merged => std::io::stdout().write_all(said.as_bytes()),
        };
        let code = match e.kind() {
            std::io::ErrorKind::NotFound => 127,
            _ => 126,
        };
        let ended = Ended {
            code: Some(code),
            signal: None,
            stopped: None,
        };
        self.end(ended, None)
    }

    /// Ends every other process of the sandbox, relays the rest of the
    /// program's output, writes the trailer on both streams and exits with
    /// the child's status.
    fn end(self, status: Ended, relay: Option<Relay>) -> ExitCode {
        // The run is over for the service: whatever the program left
        // running goes now, as it would with the container, so that the
        // output pipes reach their end and the trailer comes last.
        let sandbox = in_sandbox();
        if sandbox {
            kill_the_rest();
        }
        let drained = relay.is_none_or(|relay| relay.drain(DRAIN));
        // The figures are the program's: read before the files are
        // gathered.
        let trailer = format!(
            "{}:{}:{}:{}:{}:{}\n",
            self.nonce,
            status.how(),
            match (self.oom_before, self.cgroup.oom_kills()) {
                (Some(before), Some(after)) => (after.saturating_sub(before)).to_string(),
                _ => "-".to_string(),
            },
            match (self.cpu_before, self.cgroup.cpu_us()) {
                (Some(before), Some(after)) => (after.saturating_sub(before)).to_string(),
                _ => "-".to_string(),
            },
            figure(self.cgroup.memory_peak()),
            status.stopped.unwrap_or("-"),
        );
        // Nothing of the program's is left to change its files, or to
        // write on stdout, once every process killed above is gone and its
        // output relayed; else none are sent.
        if let Some(wanted) = &self.wanted
            && drained
            && (!sandbox || reap_all(DRAIN))
        {
            let mut stdout = std::io::stdout().lock();
            let _ = returned::send(&self.nonce, wanted, Path::new("."), &mut stdout);
            let _ = stdout.flush();
        }
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(trailer.as_bytes());
        let _ = stdout.flush();
        let _ = std::io::stderr().write_all(trailer.as_bytes());
        // The sandbox itself stays until the service removes it, so that
        // the engine's work of ending a container comes when the service
        // has a quiet moment, not while the next run starts. (Where the
        // cgroup gives no figures, gVisor, the service reads the
        // container's end: it ends at once.)
        if sandbox {
            reap();
            if self.oom_before.is_some() && self.cpu_before.is_some() {
                std::thread::sleep(LINGER);
            }
        }
        ExitCode::from(status.exit_code())
    }
}

/// The line a sandbox writes once it is ready for its payload (as the
/// bootstrap's warm-up does).
const READY: &str = "code-runner-ready";

/// Where the hooks are, beside this program on the tools volume.
fn hooks() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/.code-runner"))
        .join("prestart")
}

/// The pre-started mode: starts the run command at once with the hook of
/// `kind` (python: `sitecustomize` on PYTHONPATH; node: `-r`), which says
/// when it is ready and then waits; says the sandbox is ready; reads the
/// payload from stdin itself (as the bootstrap does), writes the files,
/// holds the interpreter to the CPU-time limit, writes the start line and
/// sends the arguments on the go pipe; the interpreter then runs the
/// program as its run command would have.
fn prestarted(args: &[String]) -> ExitCode {
    let (Some(kind), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("supervise: usage: supervise --prestart <python|node> <command> [args...]");
        return ExitCode::from(2);
    };
    let rest = &args[2..];
    let (go, ready) = match (pipe(), pipe()) {
        (Ok(go), Ok(ready)) => (go, ready),
        _ => {
            eprintln!("supervise: cannot make the hook's pipes");
            return ExitCode::from(125);
        }
    };
    let mut command = Command::new(program);
    let hooks = hooks();
    match kind.as_str() {
        "python" => {
            let before = std::env::var("PYTHONPATH").unwrap_or_default();
            let mut path = hooks.join("python").into_os_string();
            if !before.is_empty() {
                path.push(":");
                path.push(&before);
            }
            command
                .args(rest)
                .env("PYTHONPATH", path)
                .env("CODE_RUNNER_PRESTART_PYTHONPATH", before);
        }
        "node" => {
            command.arg("-r").arg(hooks.join("node.js")).args(rest);
        }
        other => {
            eprintln!("supervise: no pre-start hook for `{other}`");
            return ExitCode::from(2);
        }
    }
    command.env("CODE_RUNNER_PRESTART", "3:4");
    let output = match output_pipes(&mut command, Stderr::Apart) {
        Ok(output) => output,
        Err(e) => {
            eprintln!("supervise: cannot make the interpreter's output pipes: {e}");
            return ExitCode::from(125);
        }
    };
    // The interpreter starts before the payload, which comes on this
    // process's stdin: its own stdin is a pipe, fed once the payload is
    // read.
    let input = match input_pipe(&mut command) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("supervise: cannot make the interpreter's stdin pipe: {e}");
            return ExitCode::from(125);
        }
    };
    let (go_read, ready_write) = (go[0], ready[1]);
    // SAFETY: dup2 and close are async-signal-safe, as pre_exec requires.
    // Through high numbers first, so that a pipe end that is already 3 or
    // 4 is not closed by the other's dup2.
    unsafe {
        command.pre_exec(move || {
            if dup2(go_read, 100) < 0 || dup2(ready_write, 101) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if dup2(100, 3) < 0 || dup2(101, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            close(100);
            close(101);
            Ok(())
        });
    }
    let child = command.spawn();
    // The output pipes' write ends are the child's now (or nobody's).
    drop(command);
    // SAFETY: the child has its own copies; these ends are the parent's.
    unsafe {
        close(go[0]);
        close(ready[1]);
    }
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("{program}: {e}");
            return ExitCode::from(127);
        }
    };
    // SAFETY: the pipes' remaining ends are this process's own.
    let mut ready_pipe = unsafe { fs::File::from_raw_fd(ready[0]) };
    let mut go_pipe = unsafe { fs::File::from_raw_fd(go[1]) };
    let mut byte = [0u8; 1];
    if !matches!(ready_pipe.read(&mut byte), Ok(1)) {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("supervise: the {kind} hook did not start (is it the language's interpreter?)");
        return ExitCode::from(125);
    }
    drop(ready_pipe);
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{READY}");
    let _ = stdout.flush();

    let payload = match prestarted_payload() {
        Ok(payload) => payload,
        Err(why) => {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("supervise: {why}");
            return ExitCode::from(125);
        }
    };
    // The interpreter started before its limit was known, and the seccomp
    // profile refuses `prlimit64` on another process (this one's too), so
    // it has no `RLIMIT_CPU` of its own: the watcher and the service hold
    // the limit.
    let cpu_limit_us = payload.cpu_ms * 1000;
    let run = Run::begin(payload.nonce, cpu_limit_us, payload.wall_ms, payload.wanted);
    let mut message = Vec::new();
    for arg in &payload.args {
        message.extend_from_slice(arg);
        message.push(0);
    }
    let _ = go_pipe.write_all(&message);
    drop(go_pipe);
    payload.stdin.relay(input, child.id());
    run.finish(&child, output)
}

/// The payload of a pre-started program, or why it cannot run: a broken
/// one, or one whose stderr is merged (the interpreter's fd 2 has been a
/// pipe of its own since its start, and cannot become its fd 1 now: the
/// service starts such a run afresh).
fn prestarted_payload() -> Result<Payload, String> {
    match read_payload() {
        Err(e) => Err(format!("the payload is broken: {e}")),
        Ok(payload) if payload.stderr == Stderr::Merged => {
            Err("a pre-started program's stderr cannot be merged into its stdout".into())
        }
        Ok(payload) => Ok(payload),
    }
}

/// What the payload carries that the pre-started mode needs.
struct Payload {
    nonce: String,
    cpu_ms: u64,
    wall_ms: u64,
    stdin: Stdin,
    stderr: Stderr,
    wanted: Option<returned::Wanted>,
    args: Vec<Vec<u8>>,
}

/// Reads the payload's framing from stdin, byte by byte (the program's
/// stdin follows it, unread), and writes its files (the stream's format:
/// `src/sandbox/protocol.rs`).
fn read_payload() -> std::io::Result<Payload> {
    // SAFETY: fd 0 stays open: the File is never dropped.
    let mut input = std::mem::ManuallyDrop::new(unsafe { fs::File::from_raw_fd(0) });
    let input: &mut fs::File = &mut input;
    let nonce = line(input)?;
    let cpu_ms = number(&line(input)?)?;
    let wall_ms = number(&line(input)?)?;
    let stdin = match line(input)?.as_str() {
        "framed" => Stdin::Framed,
        _ => Stdin::Raw,
    };
    let stderr = Stderr::parse(&line(input)?).ok_or(std::io::ErrorKind::InvalidData)?;
    let _build = line(input)?;
    let wanted = returned::Wanted::parse(&line(input)?).ok_or(std::io::ErrorKind::InvalidData)?;
    for _ in 0..number(&line(input)?)? {
        let size = number(&line(input)?)?;
        let name = line(input)?;
        if let Some((folder, _)) = name.rsplit_once('/') {
            fs::create_dir_all(folder)?;
        }
        let mut content = vec![0u8; size as usize];
        input.read_exact(&mut content)?;
        fs::write(&name, content)?;
    }
    let mut args = Vec::new();
    for _ in 0..number(&line(input)?)? {
        let size = number(&line(input)?)?;
        let mut arg = vec![0u8; size as usize];
        input.read_exact(&mut arg)?;
        args.push(arg);
    }
    Ok(Payload {
        nonce,
        cpu_ms,
        wall_ms,
        stdin,
        stderr,
        wanted,
        args,
    })
}

/// One line, without its newline, read a byte at a time.
fn line(input: &mut fs::File) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if input.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if byte[0] == b'\n' {
            return String::from_utf8(out).map_err(|_| std::io::ErrorKind::InvalidData.into());
        }
        out.push(byte[0]);
        if out.len() > 65_536 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

fn number(text: &str) -> std::io::Result<u64> {
    text.trim()
        .parse()
        .map_err(|_| std::io::ErrorKind::InvalidData.into())
}

/// A pipe (read end, write end), closed in the programs this one starts.
fn pipe() -> std::io::Result<[i32; 2]> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    if unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fds)
}

/// Gives `command` pipes of its own as stdout and stderr (one pipe as
/// both when `stderr` is merged, as `2>&1` makes it), and returns their
/// read ends with the fd (1 or 2) each is relayed to once the start line
/// is out. The container's stdout and stderr stay this process's alone.
fn output_pipes(command: &mut Command, stderr: Stderr) -> std::io::Result<Vec<(fs::File, i32)>> {
    let [out_read, out_write] = pipe()?;
    // SAFETY: pipe2 just made these fds; each is owned once, here (the
    // read ends close on exec: the child gets only its write ends).
    let (out_read, out_write) = unsafe {
        (
            fs::File::from_raw_fd(out_read),
            OwnedFd::from_raw_fd(out_write),
        )
    };
    if stderr == Stderr::Merged {
        // The child's fd 2 is a duplicate of its fd 1: one open pipe, so
        // each write lands in the order it was made.
        command.stderr(out_write.try_clone()?).stdout(out_write);
        return Ok(vec![(out_read, 1)]);
    }
    let [err_read, err_write] = pipe()?;
    // SAFETY: as above.
    unsafe {
        command
            .stdout(out_write)
            .stderr(OwnedFd::from_raw_fd(err_write));
        Ok(vec![(out_read, 1), (fs::File::from_raw_fd(err_read), 2)])
    }
}

/// Gives `command` a pipe of its own as stdin, and returns its write end.
fn input_pipe(command: &mut Command) -> std::io::Result<fs::File> {
    let [read, write] = pipe()?;
    // SAFETY: pipe2 just made these fds; each is owned once, here.
    unsafe {
        command.stdin(OwnedFd::from_raw_fd(read));
        Ok(fs::File::from_raw_fd(write))
    }
}

/// Where the program's stderr goes: a pipe of its own (`-`), or its
/// stdout's (`merged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stderr {
    Apart,
    Merged,
}

impl Stderr {
    fn parse(word: &str) -> Option<Stderr> {
        match word {
            "-" => Some(Stderr::Apart),
            "merged" => Some(Stderr::Merged),
            _ => None,
        }
    }
}

/// What follows the payload on this process's stdin: the program's stdin
/// itself, or frames of it (a streamed run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stdin {
    Raw,
    Framed,
}

impl Stdin {
    /// Feeds the rest of this process's stdin to the program's stdin
    /// `pipe`, in threads of their own: a copy, or the frames read (data
    /// written by a second thread, signals sent to `child` at once).
    fn relay(self, pipe: fs::File, child: u32) {
        // SAFETY: fd 0 stays open: the File is never dropped.
        let mut from = ManuallyDrop::new(unsafe { fs::File::from_raw_fd(0) });
        let mut pipe = pipe;
        match self {
            Stdin::Raw => {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut *from, &mut pipe);
                });
            }
            Stdin::Framed => {
                let (data, queue) = mpsc::channel::<Vec<u8>>();
                std::thread::spawn(move || {
                    for bytes in queue {
                        if pipe.write_all(&bytes).is_err() {
                            return;
                        }
                    }
                });
                std::thread::spawn(move || read_frames(&mut from, data, child));
            }
        }
    }
}

/// Reads stdin frames from `from` until its end: data to `data` (until an
/// `e` frame, which drops it and so closes the program's stdin; data after
/// it, or once the program closed its stdin, is read and dropped), signals
/// to the sandbox's processes (`child` alone outside a sandbox), whatever
/// came before.
fn read_frames(from: &mut fs::File, data: mpsc::Sender<Vec<u8>>, child: u32) {
    let mut data = Some(data);
    loop {
        let Ok(frame) = line(from) else { return };
        let (kind, rest) = frame.split_at(frame.len().min(1));
        match (kind, number(rest)) {
            ("d", Ok(size)) => {
                let mut bytes = vec![0u8; size as usize];
                if from.read_exact(&mut bytes).is_err() {
                    return;
                }
                if data.as_ref().is_some_and(|d| d.send(bytes).is_err()) {
                    data = None;
                }
            }
            ("e", _) => data = None,
            ("k", Ok(signal)) if (1..=64).contains(&signal) => {
                let target = if in_sandbox() { -1 } else { child as i32 };
                // SAFETY: kill with a checked signal number; -1 only in a
                // sandbox, where every process but this one is the run's.
                unsafe {
                    kill(target, signal as i32);
                }
            }
            _ => return,
        }
    }
}

/// The program's output on its way to the container's stdout and stderr:
/// a thread per pipe, each saying when its pipe reached its end.
struct Relay {
    pipes: usize,
    ended: mpsc::Receiver<()>,
}

impl Relay {
    /// Relays each pipe to this process's fd beside it (1 or 2).
    fn start(pipes: Vec<(fs::File, i32)>) -> Relay {
        let (tell, ended) = mpsc::channel();
        let count = pipes.len();
        for (from, to) in pipes {
            let tell = tell.clone();
            std::thread::spawn(move || {
                relay(from, to);
                let _ = tell.send(());
            });
        }
        Relay {
            pipes: count,
            ended,
        }
    }

    /// Waits, for at most `within`, until every pipe reached its end
    /// (every process that held them is gone); whether they all did.
    fn drain(self, within: Duration) -> bool {
        let until = Instant::now() + within;
        for _ in 0..self.pipes {
            let left = until.saturating_duration_since(Instant::now());
            if self.ended.recv_timeout(left).is_err() {
                return false;
            }
        }
        true
    }
}

/// Copies `from` to fd `to` until `from` ends. Once a write fails (the
/// service stopped reading) the rest is read and dropped, so that the
/// program never waits on it.
fn relay(mut from: fs::File, to: i32) {
    // SAFETY: fd `to` (1 or 2) stays open: the File is never dropped.
    let mut to = ManuallyDrop::new(unsafe { fs::File::from_raw_fd(to) });
    let mut buffer = vec![0u8; 64 * 1024];
    let mut open = true;
    loop {
        match from.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => open = open && to.write_all(&buffer[..n]).is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Waits for process `pid`, reaping every other child that ends meanwhile
/// (the orphans of the sandbox are its init's, this process's).
fn wait_for(pid: u32) -> std::io::Result<ExitStatus> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status it is given.
        let got = unsafe { waitpid(-1, &mut status, 0) };
        if got >= 0 && got as u32 == pid {
            return Ok(ExitStatus::from_raw(status));
        }
        if got < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Waits, for at most `within`, until no process of the sandbox but this
/// one is left (each was killed: as its PID namespace's init, this process
/// is the parent of them all), reaping them; whether none is left.
fn reap_all(within: Duration) -> bool {
    let until = Instant::now() + within;
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status it is given.
        match unsafe { waitpid(-1, &mut status, WNOHANG) } {
            0 if Instant::now() < until => std::thread::sleep(Duration::from_millis(1)),
            0 => return false,
            got if got > 0 => {}
            // No child left (ECHILD).
            _ => return std::io::Error::last_os_error().raw_os_error() == Some(ECHILD),
        }
    }
}

/// Reaps the children that have ended (the killed rest of the sandbox).
fn reap() {
    let mut status = 0;
    // SAFETY: waitpid writes the status it is given.
    while unsafe { waitpid(-1, &mut status, WNOHANG) } > 0 {}
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

/// Whether this runs in a sandbox: as a user other than root, as its PID
/// namespace's init. Only there may it signal every process it can
/// (`kill(-1)`): they are the sandbox's alone. (The supervisor's own tests
/// run it on the host, as root.)
fn in_sandbox() -> bool {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { getuid() };
    uid != 0 && std::process::id() == 1
}

/// Kills every process of the sandbox but this one (its init).
fn kill_the_rest() {
    // SAFETY: kill(-1) signals every process this one may, but itself; in
    // a sandbox (checked by the callers), the sandbox's.
    unsafe {
        kill(-1, SIGKILL);
    }
}

/// Kills every process of the sandbox once its CPU usage passes `until`.
fn watch_cpu(cgroup: &Cgroup, until: u64, stopped: &AtomicBool, done: &AtomicBool) {
    while !done.load(Ordering::SeqCst) {
        if cgroup.cpu_us().is_some_and(|used| used > until) {
            stopped.store(true, Ordering::SeqCst);
            if in_sandbox() {
                kill_the_rest();
            }
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Stops the program at its wall-time limit, unless `ending` closes
/// first (the program ended).
fn watch_wall(limit: Duration, ending: &mpsc::Receiver<()>, stopped: &AtomicBool) {
    if let Err(mpsc::RecvTimeoutError::Timeout) = ending.recv_timeout(limit) {
        stopped.store(true, Ordering::SeqCst);
        if in_sandbox() {
            kill_the_rest();
        }
    }
}

/// How the child ended, and the limit that stopped it (`cpu`, `wall`).
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    stopped: Option<&'static str>,
}

impl Ended {
    fn failed() -> Ended {
        Ended {
            code: Some(126),
            signal: None,
            stopped: None,
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

/// The files a run asks back: which, and how many of them, in how many
/// bytes, may come back.
mod returned {
    use std::fs;
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::Path;

    /// `O_NOFOLLOW | O_NONBLOCK`: a link is never opened through, and a
    /// FIFO never waits for a writer.
    #[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
    const NO_FOLLOW: i32 = 0o100_000 | 0o4_000;
    #[cfg(not(any(target_arch = "aarch64", target_arch = "arm")))]
    const NO_FOLLOW: i32 = 0o400_000 | 0o4_000;
    /// The most entries of the working directory looked at, and the
    /// deepest folder.
    const MOST_ENTRIES: usize = 10_000;
    const DEEPEST: usize = 16;
    /// The most files listed as left out; the rest are counted.
    pub(super) const MOST_OMITTED: usize = 256;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Wanted {
        pub(crate) max_files: usize,
        pub(crate) max_bytes: u64,
        /// Each pattern, split into its components once.
        pub(crate) patterns: Vec<Vec<String>>,
    }

    impl Wanted {
        /// `-` (none wanted), or `<most files>:<most bytes>` then each
        /// pattern after a tab; `None` when it is neither.
        pub(crate) fn parse(word: &str) -> Option<Option<Wanted>> {
            if word == "-" {
                return Some(None);
            }
            let mut parts = word.split('\t');
            let (files, bytes) = parts.next()?.split_once(':')?;
            Some(Some(Wanted {
                max_files: files.parse().ok()?,
                max_bytes: bytes.parse().ok()?,
                patterns: parts.map(components).collect(),
            }))
        }

        /// Where the patterns stand before any component.
        fn start(&self) -> Progress {
            let states = self
                .patterns
                .iter()
                .map(|parts| closed(parts, vec![0]))
                .collect();
            Progress {
                states,
                inside: false,
            }
        }

        /// Where the patterns stand after one more component, `name`, of
        /// the path `at` stands for.
        fn step(&self, at: &Progress, name: &str) -> Progress {
            if at.inside {
                return at.clone();
            }
            let mut inside = false;
            let states = self
                .patterns
                .iter()
                .zip(&at.states)
                .map(|(parts, positions)| {
                    let mut next = Vec::new();
                    for &i in positions.iter().filter(|&&i| i < parts.len()) {
                        if parts[i] == "**" {
                            next.push(i);
                        } else if component(&parts[i], name) {
                            next.push(i + 1);
                        }
                    }
                    let next = closed(parts, next);
                    inside |= next.contains(&parts.len());
                    next
                })
                .collect();
            Progress { states, inside }
        }
    }

    /// How far each pattern has matched a path: the positions of its
    /// components it may stand at (with `**` able to match nothing), and
    /// whether one matched it whole (the path, or a folder it is in, is
    /// wanted: all below it is too).
    #[derive(Debug, Clone)]
    struct Progress {
        states: Vec<Vec<usize>>,
        inside: bool,
    }

    impl Progress {
        /// No pattern can match anything below this path.
        fn hopeless(&self) -> bool {
            !self.inside && self.states.iter().all(Vec::is_empty)
        }
    }

    fn components(pattern: &str) -> Vec<String> {
        pattern.split('/').map(str::to_string).collect()
    }

    /// `positions`, with the one after each `**` (which may match no
    /// component), sorted and without repeats.
    fn closed(parts: &[String], mut positions: Vec<usize>) -> Vec<usize> {
        let mut i = 0;
        while i < positions.len() {
            let at = positions[i];
            if parts.get(at).is_some_and(|p| p == "**") && !positions.contains(&(at + 1)) {
                positions.push(at + 1);
            }
            i += 1;
        }
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    /// Whether the components of `pattern` match those of `path` whole:
    /// `**` any number of components (none too), `*` any run of characters
    /// within one, `?` one character.
    #[cfg(test)]
    pub(crate) fn matches(pattern: &str, path: &str) -> bool {
        let wanted = Wanted {
            max_files: 0,
            max_bytes: 0,
            patterns: vec![components(pattern)],
        };
        let mut at = wanted.start();
        for name in path.split('/') {
            at.inside = false;
            at = wanted.step(&at, name);
        }
        at.states[0].contains(&components(pattern).len())
    }

    /// Whether one component's pattern matches a name: `*` any run of
    /// characters, `?` one. Backtracks only to the last `*`, so it takes
    /// at most the product of their lengths, never more.
    fn component(pattern: &str, name: &str) -> bool {
        let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
        let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
        while j < n.len() {
            if i < p.len() && p[i] != '*' && (p[i] == '?' || p[i] == n[j]) {
                i += 1;
                j += 1;
            } else if i < p.len() && p[i] == '*' {
                star = Some(i);
                mark = j;
                i += 1;
            } else if let Some(at) = star {
                i = at + 1;
                mark += 1;
                j = mark;
            } else {
                return false;
            }
        }
        p[i..].iter().all(|&c| c == '*')
    }

    /// What the walk found that a pattern wants.
    #[derive(Debug, PartialEq, Eq)]
    enum Found {
        File {
            name: String,
            size: u64,
        },
        Omitted {
            name: String,
            size: u64,
            reason: &'static str,
        },
    }

    /// Walks `root` (never through a link), and writes each wanted file,
    /// in the order of their names, then what was left out.
    pub(crate) fn send(
        nonce: &str,
        wanted: &Wanted,
        root: &Path,
        out: &mut impl Write,
    ) -> std::io::Result<()> {
        let mut found = Vec::new();
        let mut seen = 0;
        walk(
            wanted,
            root,
            (&mut Vec::new(), &wanted.start()),
            &mut seen,
            &mut found,
        );
        found.sort_by(|a, b| name(a).cmp(name(b)));
        let (mut files, mut bytes, mut omitted, mut more) = (0, 0u64, Vec::new(), 0u64);
        for entry in found {
            let (name, size) = match entry {
                Found::File { name, size } => (name, size),
                omission @ Found::Omitted { .. } => {
                    omitted.push(omission);
                    continue;
                }
            };
            let reason = if files >= wanted.max_files {
                "max_files"
            } else if bytes + size > wanted.max_bytes {
                "max_bytes"
            } else {
                match read(&root.join(&name), size) {
                    Ok(content) => {
                        writeln!(out, "{nonce}:file:{}:{name}", content.len())?;
                        out.write_all(&content)?;
                        files += 1;
                        bytes += content.len() as u64;
                        continue;
                    }
                    Err(reason) => reason,
                }
            };
            omitted.push(Found::Omitted { name, size, reason });
        }
        for entry in omitted {
            if let Found::Omitted { name, size, reason } = entry {
                if more < MOST_OMITTED as u64 {
                    writeln!(out, "{nonce}:omitted:{size}:{reason}:{name}")?;
                }
                more += 1;
            }
        }
        if more > MOST_OMITTED as u64 {
            writeln!(out, "{nonce}:omitted:{}:more:", more - MOST_OMITTED as u64)?;
        }
        Ok(())
    }

    fn name(found: &Found) -> &str {
        match found {
            Found::File { name, .. } | Found::Omitted { name, .. } => name,
        }
    }

    /// Reads a regular file that is `size` bytes long, never through a
    /// link; the reason it cannot be sent, else.
    fn read(path: &Path, size: u64) -> Result<Vec<u8>, &'static str> {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(NO_FOLLOW)
            .open(path)
            .map_err(|_| "unreadable")?;
        match file.metadata() {
            Ok(meta) if meta.is_file() => {}
            _ => return Err("not_a_file"),
        }
        let mut content = Vec::with_capacity(size as usize);
        file.take(size)
            .read_to_end(&mut content)
            .map_err(|_| "unreadable")?;
        Ok(content)
    }

    /// Looks at the entries below `dir` (`at` the path from the root),
    /// never through a link, at most [`MOST_ENTRIES`] in all.
    fn walk(
        wanted: &Wanted,
        dir: &Path,
        (at, progress): (&mut Vec<String>, &Progress),
        seen: &mut usize,
        found: &mut Vec<Found>,
    ) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().take(MOST_ENTRIES + 1).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if *seen >= MOST_ENTRIES {
                if *seen == MOST_ENTRIES {
                    found.push(Found::Omitted {
                        name: at.join("/"),
                        size: 0,
                        reason: "max_entries",
                    });
                    *seen += 1;
                }
                return;
            }
            *seen += 1;
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let raw = entry.file_name();
            let next = wanted.step(progress, &raw.to_string_lossy());
            at.push(raw.to_string_lossy().into_owned());
            let (wants, joined) = (next.inside, at.join("/"));
            let plain = raw
                .to_str()
                .is_some_and(|n| !n.chars().any(char::is_control));
            let omit = |reason| Found::Omitted {
                name: joined
                    .chars()
                    .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                    .collect(),
                size: 0,
                reason,
            };
            if kind.is_dir() && plain && at.len() < DEEPEST {
                // Only where a pattern may still match below.
                if !next.hopeless() {
                    walk(wanted, &entry.path(), (at, &next), seen, found);
                }
            } else if wants {
                found.push(if !plain {
                    omit("bad_name")
                } else if kind.is_dir() {
                    omit("too_deep")
                } else if kind.is_symlink() {
                    omit("symlink")
                } else if kind.is_file() {
                    let size = entry.metadata().map_or(0, |m| m.len());
                    Found::File {
                        name: joined.clone(),
                        size,
                    }
                } else {
                    omit("not_a_file")
                });
            }
            at.pop();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn glob(pattern: &str, path: &str) -> bool {
            matches(pattern, path)
        }

        #[test]
        fn patterns_match_as_globs_by_component() {
            let rows = [
                ("plot.png", "plot.png", true),
                ("*.png", "plot.png", true),
                ("*.png", "out/plot.png", false),
                ("**/*.png", "out/plot.png", true),
                ("**/*.png", "plot.png", true),
                ("out/**", "out/a/b.txt", true),
                ("out/*", "out/a/b.txt", false),
                ("p?ot.png", "plot.png", true),
                ("?.txt", "é.txt", true),
                ("?.txt", "ab.txt", false),
                ("l'été */*.csv", "l'été 2024/x.csv", true),
                ("*", ".hidden", true),
                ("a*b*c", "aXbYc", true),
                ("a*b*c", "aXbY", false),
                ("**/**/x", "x", true),
                ("a/**/b/**", "a/q/b/r/s", true),
                ("a/**/b", "a/q/c", false),
                ("*?", "", false),
                ("**", "any/depth/at/all", true),
            ];
            for (pattern, path, expected) in rows {
                assert_eq!(glob(pattern, path), expected, "{pattern} against {path}");
            }
        }

        #[test]
        fn a_pattern_made_to_backtrack_takes_no_time() {
            let pattern = format!("{}b", "*a".repeat(500));
            let name = "a".repeat(255);
            let started = std::time::Instant::now();
            assert!(!glob(&pattern, &name));
            let deep = vec!["**"; 16].join("/") + "/x";
            let path = vec!["d"; 15].join("/") + "/y";
            assert!(!glob(&deep, &path));
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "{:?}",
                started.elapsed()
            );
        }

        #[test]
        fn a_folder_named_brings_its_files() {
            let w = Wanted::parse("4:100\tout\t*.png").unwrap().unwrap();
            let walked = |path: &str| {
                let mut at = w.start();
                for name in path.split('/') {
                    at = w.step(&at, name);
                }
                at
            };
            assert!(walked("out/a/b.txt").inside);
            assert!(!walked("outside.txt").inside);
            // A folder no pattern can reach below is not walked.
            assert!(walked("src").hopeless());
            assert!(!walked("out").hopeless());
            assert_eq!(Wanted::parse("-"), Some(None));
            assert_eq!(Wanted::parse("x:1\ta"), None);
        }

        fn read_back(wanted: &str, root: &Path) -> String {
            let mut out = Vec::new();
            send(
                "N",
                &Wanted::parse(wanted).unwrap().unwrap(),
                root,
                &mut out,
            )
            .unwrap();
            String::from_utf8_lossy(&out).into_owned()
        }

        #[test]
        fn files_come_back_in_order_within_the_caps_and_links_stay_unfollowed() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            fs::create_dir_all(root.join("out/deep")).unwrap();
            fs::write(root.join("out/a.txt"), b"aaaa").unwrap();
            fs::write(root.join("out/deep/b.txt"), b"bb").unwrap();
            fs::write(root.join("out/c.txt"), b"cccccc").unwrap();
            fs::write(root.join("secret"), b"s").unwrap();
            std::os::unix::fs::symlink("/etc/hostname", root.join("out/link.txt")).unwrap();
            std::os::unix::fs::symlink(root.join("secret"), root.join("out/inner")).unwrap();
            let said = read_back("8:1000\tout", root);
            assert_eq!(
                said,
                "N:file:4:out/a.txt\naaaaN:file:6:out/c.txt\nccccccN:file:2:out/deep/b.txt\nbbN:omitted:0:symlink:out/inner\nN:omitted:0:symlink:out/link.txt\n"
            );
            // Two files at most, in ten bytes at most.
            let said = read_back("2:10\t**/*.txt", root);
            assert!(
                said.starts_with("N:file:4:out/a.txt\naaaaN:file:6:out/c.txt\ncccccc"),
                "{said}"
            );
            assert!(
                said.contains("N:omitted:2:max_files:out/deep/b.txt\n"),
                "{said}"
            );
            let said = read_back("8:5\t*/*.txt", root);
            assert!(said.starts_with("N:file:4:out/a.txt\naaaa"), "{said}");
            assert!(said.contains("N:omitted:6:max_bytes:out/c.txt\n"), "{said}");
            assert_eq!(read_back("8:100\tnothing*", root), "");
        }

        #[test]
        fn a_fifo_is_never_waited_on_and_odd_names_are_left_out() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            let fifo = root.join("pipe");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap();
            assert!(made.success());
            fs::write(root.join("new\nline"), b"x").unwrap();
            let said = read_back("8:100\t*", root);
            assert_eq!(
                said,
                "N:omitted:0:bad_name:new\u{fffd}line\nN:omitted:0:not_a_file:pipe\n"
            );
        }

        #[test]
        fn past_the_listing_cap_the_rest_are_counted() {
            let dir = tempfile::tempdir().unwrap();
            for i in 0..MOST_OMITTED + 5 {
                fs::write(dir.path().join(format!("f{i:04}")), b"x").unwrap();
            }
            let said = read_back("0:0\t*", dir.path());
            assert_eq!(said.matches(":max_files:").count(), MOST_OMITTED);
            assert!(
                said.ends_with("N:omitted:5:more:\n"),
                "{}",
                &said[said.len() - 40..]
            );
        }
    }
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
            stopped: None,
        };
        assert_eq!((e.how(), e.exit_code()), ("s11".to_string(), 139));
        let e = Ended {
            code: Some(139),
            signal: None,
            stopped: None,
        };
        assert_eq!((e.how(), e.exit_code()), ("x139".to_string(), 139));
    }
}
