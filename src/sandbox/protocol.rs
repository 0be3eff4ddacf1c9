//! How a run's files, arguments and stdin reach the sandbox, and how its
//! end comes back.
//!
//! **In:** one byte stream on the container's attached stdin, read by a
//! small POSIX shell bootstrap. The archive-upload API is refused on a
//! read-only root filesystem, and argv is limited to 128 KiB per argument,
//! so neither carries the code. The stream is:
//!
//! ```text
//! <nonce>\n
//! <CPU-time limit in ms, 0 for none>\n
//! <wall-time limit in ms, counted from the program's start, 0 for none>\n
//! <the program's stdin: - (the rest of the stream) or framed>\n
//! <the program's stderr: - (a stream of its own) or merged (its stdout's pipe, as 2>&1)>\n
//! <a build folder to copy into the working directory first, or ->\n
//! <the files to send back: - or <most files>:<most bytes> then each pattern after a tab>\n
//! <file count>\n  then per file: <size>\n<relative path>\n<size bytes>
//! <arg count>\n   then per arg:  <size>\n<size bytes>
//! <the program's stdin, to end of stream; or, framed, its frames>
//! ```
//!
//! A streamed run's stdin is framed, so that it can be fed while the
//! program runs and carry signals: `d<size>\n<size bytes>` (data), `e\n`
//! (the end of stdin), `k<signal number>\n` (a signal to the program),
//! as the supervisor reads them ([`frame`]).
//!
//! A path is one line: the job's file names hold no control character
//! (`job::check_file_name`), so no newline, and the bootstrap reads each
//! with `IFS= read -r` and uses it quoted, so that spaces (leading and
//! trailing too), quotes, `$`, `*`, `;` and backslashes are the name's own
//! bytes, never split, globbed or run.
//!
//! Sizes are read with `head -c`, which (in GNU coreutils, as in every
//! Debian- or Ubuntu-based image) reads exactly that many bytes, so what
//! follows the framing is left, unread, for the program's own stdin. The
//! bootstrap then `exec`s the supervisor (`tools/supervise.rs`, on the
//! read-only tools volume) with the command and its arguments, handing it
//! the nonce on a pipe (fd 3), never on a command line. A test of a batch
//! names the compiled build (a read-only mount) for the supervisor to copy
//! into its own working directory.
//!
//! **Out:** the supervisor writes `<nonce>:start:<CPU µs>` as the first
//! line of stdout, just before it starts the program (so a sandbox that
//! died before that is known never to have run it), and when the program
//! ends, on stdout and on stderr, the trailer
//! `<nonce>:<x<code>|s<signal>>:<oom kills>:<CPU µs>:<peak bytes>:<cpu|wall|->`
//! (the last field: the limit at which the supervisor stopped the program,
//! if it did)
//! ([`Framing`] strips both and reads them). A run that asks files back
//! gets them on stdout between its output and its trailer, each as
//! `<nonce>:file:<size>:<path>\n<size bytes>`, and those left out as
//! `<nonce>:omitted:<size>:<reason>:<path>\n` (`<n>:more:` counts the
//! rest past the listing's cap), once the program and all it started are
//! gone. Everything the program wrote
//! comes before the trailer on each stream, so the service knows the
//! program is done, and how it ended, as soon as both trailers arrive,
//! without waiting for the engine to notice the container stop (which
//! takes tens of milliseconds more). The nonce is fresh for every run; the
//! supervisor holds it in memory no other process of the sandbox may read
//! (it is not dumpable, and `ptrace` is refused), and the container's
//! stdout and stderr are its alone (the program writes to pipes it
//! relays), so a program can neither read nor forge its end. At the
//! wall-time limit the supervisor itself stops the program, relays the
//! rest of its output and reports, so that nothing it printed is lost.

use std::time::Duration;

use super::verdict::Reported;
use crate::engine::TOOLS_POINT;
use crate::job::{Outputs, SourceFile, Stderr};
use crate::outcome::{Exit, FileBack, FilesBack, Omitted, Signal};

/// The sandbox's working directory, where the files are written.
pub(crate) const WORK_DIR: &str = "/work";

/// The supervisor's path in a sandbox.
pub(crate) fn supervisor() -> String {
    format!("{TOOLS_POINT}/supervise")
}

/// The bootstrap, run as
/// `sh -c BOOTSTRAP code-runner <supervisor> <warm-up> <pre-start> <command...>`:
/// with a pre-start hook (a pooled sandbox of a language that has one),
/// it `exec`s the supervisor in its pre-started mode at once (which starts
/// the command, says when it is ready and reads the payload itself);
/// otherwise it runs the warm-up (a shell command, when not empty: a
/// pooled sandbox loads its interpreter once while it waits, so that the
/// run finds its files cached) and says so, reads the payload, writes the
/// files, appends the arguments to the command, and `exec`s the supervisor
/// with it.
pub(crate) const BOOTSTRAP: &str = r#"set -eu
supervisor=$1
warmup=$2
prestart=$3
shift 3
if [ -n "$prestart" ]; then
  exec "$supervisor" --prestart "$prestart" "$@"
fi
if [ -n "$warmup" ]; then
  sh -c "$warmup" </dev/null >/dev/null 2>&1 || true
  echo code-runner-ready
fi
IFS= read -r nonce
IFS= read -r cpu
IFS= read -r wall
IFS= read -r stdin
IFS= read -r stderr
IFS= read -r build
IFS= read -r wanted
IFS= read -r n
while [ "$n" -gt 0 ]; do
  IFS= read -r size
  IFS= read -r name
  case "$name" in */*) mkdir -p -- "${name%/*}" ;; esac
  head -c "$size" > "$name"
  n=$((n - 1))
done
IFS= read -r n
while [ "$n" -gt 0 ]; do
  IFS= read -r size
  arg=$(head -c "$size"; printf x)
  set -- "$@" "${arg%x}"
  n=$((n - 1))
done
exec "$supervisor" "$cpu" "$wall" "$stdin" "$stderr" "$build" "$wanted" "$@" 3<<NONCE
$nonce
NONCE
"#;

/// The line the bootstrap writes on stdout once its warm-up is over.
pub(crate) const READY: &str = "code-runner-ready\n";

/// A fresh nonce for one run's markers. It begins with a control byte
/// (U+0001) that text output does not hold, so that the end of a
/// program's output is never held back as the possible start of a marker
/// (a prompt ending in a hex digit would otherwise wait, in a streamed
/// run, for more output).
pub(crate) fn nonce() -> String {
    format!("\u{1}{}", uuid::Uuid::new_v4().simple())
}

/// The time limits the supervisor holds a stage to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Clock {
    /// CPU time of all the stage's processes together.
    pub(crate) cpu: Option<Duration>,
    /// Wall time, from the program's start.
    pub(crate) wall: Option<Duration>,
}

/// What the supervisor holds a stage to, beside its files, arguments and
/// stdin.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Terms<'a> {
    pub(crate) clock: Clock,
    /// Where the program's stderr goes.
    pub(crate) stderr: Stderr,
    /// A build folder (mounted) to copy into the working directory first.
    pub(crate) build: Option<&'a str>,
    /// The files to send back once the program is gone.
    pub(crate) outputs: Option<&'a Outputs>,
}

/// Encodes the nonce, the `terms`, the files, arguments and stdin into
/// the bootstrap's stream; `stdin` `None`: framed stdin follows, written
/// as the run goes ([`frame`]).
pub(crate) fn encode(
    nonce: &str,
    terms: Terms,
    files: &[&SourceFile],
    args: &[String],
    stdin: Option<&[u8]>,
) -> Vec<u8> {
    let Terms {
        clock,
        stderr,
        build,
        outputs,
    } = terms;
    let framed = stdin.is_none();
    let stdin = stdin.unwrap_or_default();
    let size = files
        .iter()
        .map(|f| f.content.len() + f.name.len() + 24)
        .sum::<usize>()
        + args.iter().map(|a| a.len() + 12).sum::<usize>()
        + stdin.len()
        + 40;
    let mut out = Vec::with_capacity(size + nonce.len());
    let ms = |limit: Option<Duration>| limit.map_or(0, |d| d.as_millis().max(1));
    let (cpu_ms, wall_ms) = (ms(clock.cpu), ms(clock.wall));
    let build = build.unwrap_or("-");
    let mode = if framed { "framed" } else { "-" };
    let stderr = match stderr {
        Stderr::Apart => "-",
        Stderr::Merged => "merged",
    };
    let wanted = outputs.map_or_else(
        || "-".to_string(),
        |o| {
            let mut line = format!("{}:{}", o.max_files, o.max_bytes);
            for pattern in &o.patterns {
                line.push('\t');
                line.push_str(pattern);
            }
            line
        },
    );
    let head = format!(
        "{nonce}\n{cpu_ms}\n{wall_ms}\n{mode}\n{stderr}\n{build}\n{wanted}\n{}\n",
        files.len()
    );
    out.extend_from_slice(head.as_bytes());
    for file in files {
        out.extend_from_slice(format!("{}\n{}\n", file.content.len(), file.name).as_bytes());
        out.extend_from_slice(&file.content);
    }
    out.extend_from_slice(format!("{}\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("{}\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
    }
    out.extend_from_slice(stdin);
    out
}

/// What a streamed run's framed stdin carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    Data(&'a [u8]),
    End,
    Signal(i32),
}

/// One frame of a streamed run's stdin, as the supervisor reads it.
pub(crate) fn frame(frame: Frame) -> Vec<u8> {
    match frame {
        Frame::Data(bytes) => {
            let mut out = format!("d{}\n", bytes.len()).into_bytes();
            out.extend_from_slice(bytes);
            out
        }
        Frame::End => b"e\n".to_vec(),
        Frame::Signal(number) => format!("k{number}\n").into_bytes(),
    }
}

/// Reads one output stream's markers: on stdout, the start line first;
/// on both, the trailer at the end. It holds back the few bytes that might
/// be a marker's start, so that what it passes on is the program's output
/// alone.
#[derive(Debug)]
pub(crate) struct Framing {
    marker: Vec<u8>,
    held: Vec<u8>,
    start: Start,
    ending: Option<Reported>,
    /// The files sent back, when the run asked for some (stdout only).
    back: Option<Back>,
}

/// The files a run's stdout brought back so far, and the bytes still
/// allowed.
#[derive(Debug)]
struct Back {
    room: u64,
    files: FilesBack,
}

/// Where a stream stands with its start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Expected first (stdout), not come yet.
    Awaited,
    /// Come: the sandbox's CPU time then (µs), when known.
    Seen(Option<u64>),
    /// Not expected on this stream (stderr), or the stream did not begin
    /// with one.
    Absent,
}

/// Bytes after the nonce that a trailer may take
/// (`:s31:<kills>:<µs>:<bytes>:cpu\n`).
const TRAILER_TAIL: usize = 96;
/// Bytes after the nonce that the line of a file sent back may take: a
/// path the walk found is at most 16 components of 255 bytes, and an
/// omitted one's control bytes are sent as U+FFFD (three bytes each).
const RECORD_TAIL: usize = 16 * 1024 + 64;

impl Framing {
    /// Stdout's framing: a start line, output, the files sent back (when
    /// `outputs` asks for some), a trailer.
    pub(crate) fn stdout(nonce: &str, outputs: Option<&Outputs>) -> Framing {
        let mut framing = Framing::new(nonce, Start::Awaited);
        framing.back = outputs.map(|o| Back {
            room: o.max_bytes,
            files: FilesBack::default(),
        });
        framing
    }

    /// Stderr's framing: output, a trailer.
    pub(crate) fn stderr(nonce: &str) -> Framing {
        Framing::new(nonce, Start::Absent)
    }

    fn new(nonce: &str, start: Start) -> Framing {
        Framing {
            marker: nonce.as_bytes().to_vec(),
            held: Vec::new(),
            start,
            ending: None,
            back: None,
        }
    }

    /// The files sent back, when the run asked for some.
    pub(crate) fn take_files(&mut self) -> Option<FilesBack> {
        self.back.take().map(|back| back.files)
    }

    /// Whether the start line came: the program was started.
    pub(crate) fn started(&self) -> bool {
        matches!(self.start, Start::Seen(_))
    }

    /// The sandbox's CPU time (µs) when the program started, if known.
    pub(crate) fn cpu_at_start(&self) -> Option<u64> {
        match self.start {
            Start::Seen(cpu) => cpu,
            _ => None,
        }
    }

    /// What the trailer said, once it has come.
    pub(crate) fn ending(&self) -> Option<Reported> {
        self.ending
    }

    /// Takes a chunk of the stream; returns the bytes that are surely
    /// program output. After the trailer, everything is dropped.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.ending.is_some() {
            return Vec::new();
        }
        self.held.extend_from_slice(chunk);
        if self.start == Start::Awaited && !self.read_start() {
            return Vec::new();
        }
        self.scan()
    }

    /// Reads the start line, once it is whole; false while it is not.
    fn read_start(&mut self) -> bool {
        let Some(end) = self.held.iter().position(|&b| b == b'\n') else {
            if self.held.len() > self.marker.len() + TRAILER_TAIL {
                self.start = Start::Absent;
                return true;
            }
            return false;
        };
        let line = &self.held[..end];
        let cpu = line
            .strip_prefix(self.marker.as_slice())
            .and_then(|rest| rest.strip_prefix(b":start:"))
            .and_then(|v| std::str::from_utf8(v).ok());
        match cpu {
            Some(cpu) => {
                self.start = Start::Seen(cpu.parse().ok());
                self.held.drain(..=end);
            }
            None => self.start = Start::Absent,
        }
        true
    }

    /// Passes on what is surely output; reads the trailer when it comes.
    fn scan(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match find(&self.held, &self.marker) {
                Some(at) => {
                    let rest = &self.held[at + self.marker.len()..];
                    if let Some(back) = self.back.as_mut() {
                        match back.record(rest) {
                            Record::Taken(length) => {
                                out.extend_from_slice(&self.held[..at]);
                                self.held.drain(..at + self.marker.len() + length);
                                continue;
                            }
                            Record::Incomplete => {
                                out.extend_from_slice(&self.held[..at]);
                                self.held.drain(..at);
                                return out;
                            }
                            Record::Not => {}
                        }
                    }
                    match parse_trailer(rest) {
                        Parsed::Trailer(reported) => {
                            out.extend_from_slice(&self.held[..at]);
                            self.held.clear();
                            self.ending = Some(reported);
                            return out;
                        }
                        Parsed::Incomplete => {
                            out.extend_from_slice(&self.held[..at]);
                            self.held.drain(..at);
                            return out;
                        }
                        // Not a trailer after all: pass the marker's first
                        // byte on and look further.
                        Parsed::Not => {
                            out.extend_from_slice(&self.held[..=at]);
                            self.held.drain(..=at);
                        }
                    }
                }
                // Only an end that may be the marker's beginning is held,
                // so output flows on as it comes (and the two streams'
                // order is kept).
                None => {
                    let cut = self.held.len() - marker_start_at_end(&self.held, &self.marker);
                    out.extend_from_slice(&self.held[..cut]);
                    self.held.drain(..cut);
                    return out;
                }
            }
        }
    }

    /// The bytes still held, when the stream ended with no trailer. A
    /// record of the files sent back, cut off there (the service stopped
    /// the sandbox while it came), is dropped: it was never output.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        if self.start == Start::Awaited {
            self.start = Start::Absent;
        }
        let held = std::mem::take(&mut self.held);
        let cut_record = self.back.is_some()
            && held
                .strip_prefix(self.marker.as_slice())
                .is_some_and(|rest| rest.starts_with(b":file:") || rest.starts_with(b":omitted:"));
        if cut_record { Vec::new() } else { held }
    }
}

/// What the bytes after a marker were, to the files sent back.
enum Record {
    /// A file's or an omission's record, this many bytes long, taken.
    Taken(usize),
    /// Possibly one, not whole yet.
    Incomplete,
    /// Not one (perhaps the trailer).
    Not,
}

impl Back {
    /// Takes the record that `rest` (the bytes after a marker) begins
    /// with, if it is one: `:file:<size>:<path>\n<bytes>` or
    /// `:omitted:<size>:<reason>:<path>\n`. A file past the bytes the run
    /// may bring back is not one (the supervisor never sends it).
    fn record(&mut self, rest: &[u8]) -> Record {
        let (kind, body) = if let Some(body) = rest.strip_prefix(b":file:") {
            (true, body)
        } else if let Some(body) = rest.strip_prefix(b":omitted:") {
            (false, body)
        } else if b":file:".starts_with(rest) || b":omitted:".starts_with(rest) {
            return Record::Incomplete;
        } else {
            return Record::Not;
        };
        let Some(end) = body.iter().position(|&b| b == b'\n') else {
            return if body.len() < RECORD_TAIL {
                Record::Incomplete
            } else {
                Record::Not
            };
        };
        let Ok(line) = std::str::from_utf8(&body[..end]) else {
            return Record::Not;
        };
        let head = rest.len() - body.len() + end + 1;
        let Some((size, rest_of_line)) = line.split_once(':') else {
            return Record::Not;
        };
        let Ok(size) = size.parse::<u64>() else {
            return Record::Not;
        };
        if !kind {
            let Some((reason, name)) = rest_of_line.split_once(':') else {
                return Record::Not;
            };
            match reason {
                "more" => self.files.more_omitted += size,
                _ => self.files.omitted.push(Omitted {
                    name: name.to_string(),
                    size,
                    reason: reason.to_string(),
                }),
            }
            return Record::Taken(head);
        }
        if size > self.room {
            return Record::Not;
        }
        let whole = head + size as usize;
        if rest.len() < whole {
            return Record::Incomplete;
        }
        self.room -= size;
        self.files.files.push(FileBack {
            name: rest_of_line.to_string(),
            content: rest[head..whole].to_vec(),
        });
        Record::Taken(whole)
    }
}

/// The length of the longest end of `held` that begins `marker` (0 when
/// none does).
fn marker_start_at_end(held: &[u8], marker: &[u8]) -> usize {
    (1..marker.len().min(held.len() + 1))
        .rev()
        .find(|&k| held.ends_with(&marker[..k]))
        .unwrap_or(0)
}

enum Parsed {
    Trailer(Reported),
    Incomplete,
    Not,
}

fn parse_trailer(rest: &[u8]) -> Parsed {
    let Some(rest) = rest.strip_prefix(b":") else {
        return if rest.is_empty() {
            Parsed::Incomplete
        } else {
            Parsed::Not
        };
    };
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || *b == b':' || *b == b'-';
    match rest.iter().position(|&b| b == b'\n') {
        Some(end) if end < TRAILER_TAIL => {
            let line = std::str::from_utf8(&rest[..end]).unwrap_or_default();
            match fields(line) {
                Some(reported) => Parsed::Trailer(reported),
                None => Parsed::Not,
            }
        }
        Some(_) => Parsed::Not,
        None if rest.len() < TRAILER_TAIL && rest.iter().all(allowed) => Parsed::Incomplete,
        None => Parsed::Not,
    }
}

/// `x3:0:1200:9000000:-` and the like.
fn fields(line: &str) -> Option<Reported> {
    let parts: Vec<&str> = line.split(':').collect();
    let [how, oom, cpu, peak, limit] = parts[..] else {
        return None;
    };
    let number = |s: &str| -> Option<Option<u64>> {
        match s {
            "-" => Some(None),
            s => s.parse().ok().map(Some),
        }
    };
    let exit = match how.split_at_checked(1)? {
        ("x", code) => Exit::Code(code.parse().ok()?),
        ("s", signal) => Exit::Signal(Signal(signal.parse().ok()?)),
        _ => return None,
    };
    let (cpu_limit, wall_limit) = match limit {
        "cpu" => (true, false),
        "wall" => (false, true),
        "-" => (false, false),
        _ => return None,
    };
    Some(Reported {
        exit,
        oom_kills: number(oom)?,
        cpu_time: number(cpu)?.map(Duration::from_micros),
        memory_peak: number(peak)?,
        cpu_limit,
        wall_limit,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(clock: Clock, stderr: Stderr, build: Option<&str>) -> Terms<'_> {
        Terms {
            clock,
            stderr,
            build,
            outputs: None,
        }
    }
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// The supervisor and the pre-start hooks, written into `dir` as on
    /// the tools volume.
    fn install_supervisor(dir: &std::path::Path) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        for (name, mode, content) in super::super::launcher::TOOLS {
            let path = dir.join(name);
            if name.ends_with('/') {
                std::fs::create_dir_all(&path).unwrap();
                continue;
            }
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        dir.join("supervise")
    }

    /// Starts the bootstrap with the host's own `sh` and `head` in `dir`,
    /// running `command` under the real supervisor, and writes `input`.
    fn bootstrap(
        dir: &std::path::Path,
        warmup: &str,
        command: &[&str],
        input: &[u8],
    ) -> std::process::Output {
        bootstrap_with(dir, warmup, "", command, input)
    }

    /// As [`bootstrap`], with a pre-start hook.
    fn bootstrap_with(
        dir: &std::path::Path,
        warmup: &str,
        prestart: &str,
        command: &[&str],
        input: &[u8],
    ) -> std::process::Output {
        let tools = tempfile::tempdir().unwrap();
        let supervisor = install_supervisor(tools.path());
        let mut child = Command::new("sh")
            .current_dir(dir)
            .args(["-c", BOOTSTRAP, "code-runner"])
            .arg(&supervisor)
            .arg(warmup)
            .arg(prestart)
            .args(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    fn source(name: &str, content: &[u8]) -> SourceFile {
        SourceFile {
            name: name.into(),
            content: content.to_vec(),
        }
    }

    /// Runs the bootstrap in a temporary folder, with a command that prints
    /// its arguments and stdin; returns stdout and the files written.
    fn run_locally(
        files: &[SourceFile],
        args: &[String],
        stdin: &[u8],
    ) -> (String, Vec<(String, Vec<u8>)>) {
        let dir = tempfile::tempdir().unwrap();
        let print = r#"for a in "$@"; do printf '[%s]' "$a"; done; printf '|'; cat"#;
        let out = bootstrap(
            dir.path(),
            "echo warm > warmed",
            &["sh", "-c", print, "prog"],
            &encode(
                "NONCE",
                terms(Clock::default(), Stderr::Apart, None),
                &files.iter().collect::<Vec<_>>(),
                args,
                Some(stdin),
            ),
        );
        assert!(out.status.success());
        assert_eq!(std::fs::read(dir.path().join("warmed")).unwrap(), b"warm\n");
        let written = files
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    std::fs::read(dir.path().join(&f.name)).unwrap(),
                )
            })
            .collect();
        (String::from_utf8(out.stdout).unwrap(), written)
    }

    /// Reads a whole stream through a framing; returns the output and what
    /// the trailer said.
    fn read(mut framing: Framing, chunks: &[&[u8]]) -> (Vec<u8>, Option<Reported>, bool) {
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(framing.push(chunk));
        }
        if framing.ending().is_none() {
            out.extend(framing.finish());
        }
        (out, framing.ending(), framing.started())
    }

    /// Runs `program` as `<interpreter> <main>` with `args` and `stdin`,
    /// cold and pre-started (with the host's interpreter); returns both
    /// outputs, trailers and start lines stripped, and the exit codes.
    fn both_ways(
        hook: &str,
        interpreter: &str,
        main: &str,
        program: &str,
        args: &[&str],
        stdin: &[u8],
    ) -> [(String, String, Option<i32>); 2] {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        ["", hook].map(|prestart| {
            let dir = tempfile::tempdir().unwrap();
            let files = [source(main, program.as_bytes())];
            let input = encode(
                "NONCE",
                terms(Clock::default(), Stderr::Apart, None),
                &files.iter().collect::<Vec<_>>(),
                &args,
                Some(stdin),
            );
            let out = bootstrap_with(dir.path(), "", prestart, &[interpreter, main], &input);
            let folder = dir.path().to_string_lossy().to_string();
            let strip = |bytes: &[u8]| {
                String::from_utf8_lossy(bytes)
                    .replace(&folder, "/work")
                    .lines()
                    .filter(|l| !l.starts_with("NONCE:") && *l != READY.trim_end())
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            (strip(&out.stdout), strip(&out.stderr), out.status.code())
        })
    }

    #[test]
    fn a_prestarted_python_runs_the_program_as_python3_main_py_does() {
        let program = "import sys, os\nprint(sys.argv, __file__.endswith('/main.py'), __name__, sys.path[0] == os.getcwd())\nprint(repr(sys.stdin.read()))\nprint('PYTHONPATH' in os.environ, 'CODE_RUNNER_PRESTART' in os.environ, any('prestart' in p for p in sys.path))\nimport subprocess\nprint(subprocess.run([sys.executable, '-c', 'import sys; print(sys.argv)'], capture_output=True, text=True).stdout.strip())\nraise SystemExit(3)";
        let [cold, warm] = both_ways(
            "python",
            "python3",
            "main.py",
            program,
            &["a", "b c", ""],
            b"in\nput",
        );
        assert_eq!(warm, cold);
        assert!(
            cold.0
                .contains("['main.py', 'a', 'b c', ''] True __main__ True"),
            "{cold:?}"
        );
        assert!(cold.0.contains("'in\\nput'"), "{cold:?}");
        assert!(cold.0.contains("False False False"), "{cold:?}");
        assert_eq!(cold.2, Some(3));
        let traceback = "def f():\n    return 1 / 0\nf()\n";
        let [cold, warm] = both_ways("python", "python3", "main.py", traceback, &[], b"");
        assert_eq!(warm, cold);
        assert!(cold.1.contains("ZeroDivisionError"), "{cold:?}");
        assert_eq!(cold.2, Some(1));
    }

    #[test]
    fn a_prestarted_node_runs_the_program_as_node_main_js_does() {
        let program = "console.log(process.argv.slice(2), require.main === module, __filename.endsWith('/main.js'), process.execArgv, 'CODE_RUNNER_PRESTART' in process.env);\nlet input = ''; process.stdin.on('data', d => input += d); process.stdin.on('end', () => { console.log(JSON.stringify(input)); null.x; });";
        let [cold, warm] = both_ways(
            "node",
            "node",
            "main.js",
            program,
            &["a", "b c"],
            b"in\nput",
        );
        assert_eq!(warm, cold);
        assert!(
            cold.0.contains("[ 'a', 'b c' ] true true [] false"),
            "{cold:?}"
        );
        assert!(
            cold.1.contains("TypeError: Cannot read properties of null"),
            "{cold:?}"
        );
        assert_eq!(cold.2, Some(1));
    }

    #[test]
    fn a_nonce_begins_with_a_byte_text_does_not_hold() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert!(a.starts_with('\u{1}') && a.len() == 33, "{a:?}");
        let mut framing = Framing::stdout(&a, None);
        let start = format!("{a}:start:1\n");
        assert_eq!(framing.push(start.as_bytes()), b"");
        // A prompt that ends in a hex digit is passed on whole.
        for digit in "0123456789abcdef".chars() {
            let prompt = format!("pick {digit}");
            assert_eq!(framing.push(prompt.as_bytes()), prompt.as_bytes());
        }
    }

    #[test]
    fn framed_stdin_feeds_the_program_and_a_signal_reaches_it_cold_and_prestarted() {
        let program = "import sys\nprint(repr(sys.stdin.readline()))\nsys.stdout.flush()\nimport time\ntime.sleep(30)\n";
        for prestart in ["", "python"] {
            let dir = tempfile::tempdir().unwrap();
            let files = [source("main.py", program.as_bytes())];
            let mut input = encode(
                "NONCE",
                terms(Clock::default(), Stderr::Apart, None),
                &files.iter().collect::<Vec<_>>(),
                &[],
                None,
            );
            input.extend(frame(Frame::Data(b"li")));
            input.extend(frame(Frame::Data(b"ne\n")));
            let tools = tempfile::tempdir().unwrap();
            let supervisor = install_supervisor(tools.path());
            let mut child = Command::new("sh")
                .current_dir(dir.path())
                .args(["-c", BOOTSTRAP, "code-runner"])
                .arg(&supervisor)
                .args(["", prestart, "python3", "main.py"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&input).unwrap();
            // The signal once the program has read its line and said so.
            let mut stdout = child.stdout.take().unwrap();
            let mut seen = Vec::new();
            let mut buffer = [0u8; 4096];
            // Its whole line (an unbuffered print writes the newline apart).
            while !String::from_utf8_lossy(&seen).contains("'line\\n'\n") {
                let n = std::io::Read::read(&mut stdout, &mut buffer).unwrap();
                assert!(n > 0, "{prestart:?}: {}", String::from_utf8_lossy(&seen));
                seen.extend_from_slice(&buffer[..n]);
            }
            let began = std::time::Instant::now();
            stdin.write_all(&frame(Frame::Signal(15))).unwrap();
            std::io::Read::read_to_end(&mut stdout, &mut seen).unwrap();
            child.wait().unwrap();
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "{prestart:?}: the signal stopped it"
            );
            let out = std::process::Output {
                status: child.wait().unwrap(),
                stdout: seen,
                stderr: Vec::new(),
            };
            let after_ready = out
                .stdout
                .strip_prefix(READY.as_bytes())
                .unwrap_or(&out.stdout);
            let (stdout, reported, _) = read(Framing::stdout("NONCE", None), &[after_ready]);
            let stdout = String::from_utf8_lossy(&stdout);
            let raw = String::from_utf8_lossy(&out.stdout);
            assert_eq!(stdout, "'line\\n'\n", "{prestart:?}: {raw:?}");
            assert_eq!(
                reported.unwrap().exit,
                Exit::Signal(Signal(15)),
                "{prestart:?}"
            );
        }
        assert_eq!(frame(Frame::End), b"e\n");
        assert_eq!(frame(Frame::Signal(2)), b"k2\n");
    }

    /// File names as users have them, and as an attacker would write
    /// them, each one the name rule allows.
    const HOSTILE_NAMES: [&str; 16] = [
        "helper functions.c",
        "input data/l'été 2024.txt",
        " leading space",
        "trailing space ",
        "main.py ",
        "\"double\" and 'single' quotes",
        "$HOME $(id) `id` ${x}",
        "*.c",
        "[ab]?.txt",
        "semi;colon && pipe | amp & lt < gt >",
        "~tilde #hash !bang %percent x=1",
        "データ/ファイル 1.txt",
        "a/in the -middle-/b@c",
        "sub/*",
        "\u{a0}no-break space",
        "emoji 🎉",
    ];

    /// Every file under `dir`, as paths relative to it.
    fn tree(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
        let mut found = std::collections::BTreeSet::new();
        let mut folders = vec![dir.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    let name = path.strip_prefix(dir).unwrap();
                    found.insert(name.to_str().unwrap().to_string());
                }
            }
        }
        found
    }

    /// Runs `python3 main.py` in `dir` through the real bootstrap, with
    /// `files` under `terms` (nonce `NONCE`), cold or (`prestart`
    /// `python`) pre-started with the host's python; returns stdout after
    /// the ready line, and stderr.
    fn python_main(
        dir: &std::path::Path,
        prestart: &str,
        terms: Terms,
        files: &[SourceFile],
    ) -> (Vec<u8>, String) {
        let files: Vec<&SourceFile> = files.iter().collect();
        let input = encode("NONCE", terms, &files, &[], Some(b""));
        let out = bootstrap_with(dir, "", prestart, &["python3", "main.py"], &input);
        let stdout = out
            .stdout
            .strip_prefix(READY.as_bytes())
            .unwrap_or(&out.stdout);
        (
            stdout.to_vec(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn hostile_file_names_are_written_as_named_cold_and_prestarted() {
        let mut files = vec![source("main.py", b"print('ran')")];
        for name in HOSTILE_NAMES {
            assert_eq!(crate::job::check_file_name(name), Ok(()), "{name:?}");
            files.push(source(name, name.as_bytes()));
        }
        let expected: std::collections::BTreeSet<String> =
            files.iter().map(|f| f.name.clone()).collect();
        for prestart in ["", "python"] {
            let dir = tempfile::tempdir().unwrap();
            let plain = terms(Clock::default(), Stderr::Apart, None);
            let (after_ready, said) = python_main(dir.path(), prestart, plain, &files);
            let (stdout, reported, _) = read(Framing::stdout("NONCE", None), &[&after_ready]);
            assert_eq!(stdout, b"ran\n", "{prestart:?}: {said}");
            assert_eq!(reported.unwrap().exit, Exit::Code(0), "{prestart:?}");
            // Exactly these files, none split, globbed, trimmed or added.
            assert_eq!(tree(dir.path()), expected, "{prestart:?}");
            for file in &files[1..] {
                let written = std::fs::read(dir.path().join(&file.name)).unwrap();
                assert_eq!(written, file.content, "{prestart:?}: {:?}", file.name);
            }
        }
    }

    /// Runs `script` under `sh -c` with its stderr where `stderr` says;
    /// returns stdout and stderr, trailers stripped, and what each
    /// trailer said.
    fn streams_of(script: &str, stderr: Stderr) -> (String, String, [Option<Reported>; 2]) {
        let dir = tempfile::tempdir().unwrap();
        let input = encode(
            "N",
            terms(Clock::default(), stderr, None),
            &[],
            &[],
            Some(b""),
        );
        let out = bootstrap(dir.path(), "", &["sh", "-c", script], &input);
        let (stdout, on_stdout, started) = read(Framing::stdout("N", None), &[&out.stdout]);
        let (stderr, on_stderr, _) = read(Framing::stderr("N"), &[&out.stderr]);
        assert!(started);
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        (text(stdout), text(stderr), [on_stdout, on_stderr])
    }

    #[test]
    fn a_merged_stderr_is_the_stdout_pipe_itself_in_the_order_of_the_writes() {
        // Writes that alternate, each its own write(2), and every 50th
        // from a child the program starts (which inherits both fds).
        let script = r#"i=0
while [ $i -lt 400 ]; do
  printf 'out %s\n' $i
  printf 'err %s\n' $i >&2
  if [ $((i % 50)) -eq 0 ]; then sh -c 'printf "child %s\n" "$0" >&2' $i; fi
  i=$((i + 1))
done
exit 3"#;
        let mut both = String::new();
        let (mut outs, mut errs) = (String::new(), String::new());
        for i in 0..400 {
            let child = if i % 50 == 0 {
                format!("child {i}\n")
            } else {
                String::new()
            };
            both.push_str(&format!("out {i}\nerr {i}\n{child}"));
            outs.push_str(&format!("out {i}\n"));
            errs.push_str(&format!("err {i}\n{child}"));
        }
        let (stdout, stderr, trailers) = streams_of(script, Stderr::Merged);
        assert_eq!(stdout, both);
        assert_eq!(stderr, "", "stderr stays empty, as with 2>&1");
        for trailer in trailers {
            assert_eq!(trailer.unwrap().exit, Exit::Code(3));
        }
        let (stdout, stderr, trailers) = streams_of(script, Stderr::Apart);
        assert_eq!((stdout, stderr), (outs, errs), "apart unless asked");
        for trailer in trailers {
            assert_eq!(trailer.unwrap().exit, Exit::Code(3));
        }
    }

    #[test]
    fn a_command_that_is_not_there_says_so_where_its_stderr_goes() {
        let dir = tempfile::tempdir().unwrap();
        let input = encode(
            "n",
            terms(Clock::default(), Stderr::Merged, None),
            &[],
            &[],
            Some(b""),
        );
        let out = bootstrap(dir.path(), "", &["no-such-command"], &input);
        let (stdout, reported, _) = read(Framing::stdout("n", None), &[&out.stdout]);
        let (stderr, _, _) = read(Framing::stderr("n"), &[&out.stderr]);
        assert_eq!(reported.unwrap().exit, Exit::Code(127));
        assert!(String::from_utf8_lossy(&stdout).starts_with("no-such-command: "));
        assert_eq!(stderr, b"");
    }

    #[test]
    fn a_prestarted_program_is_never_run_with_a_stderr_it_cannot_merge() {
        let dir = tempfile::tempdir().unwrap();
        let files = [source("main.py", b"print('ran')")];
        let input = encode(
            "NONCE",
            terms(Clock::default(), Stderr::Merged, None),
            &files.iter().collect::<Vec<_>>(),
            &[],
            Some(b""),
        );
        let out = bootstrap_with(dir.path(), "", "python", &["python3", "main.py"], &input);
        assert_eq!(out.status.code(), Some(125));
        assert_eq!(out.stdout, READY.as_bytes(), "no start line: it never ran");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("stderr cannot be merged"),
            "{out:?}"
        );
    }

    #[test]
    fn files_args_and_stdin_arrive_intact() {
        let files = vec![
            source("main.py", b"print('hi')\n\n\0binary\xff"),
            source("pkg/sub/util.py", b""),
        ];
        let args = vec![
            "a b".to_string(),
            String::new(),
            "line\n\n".to_string(),
            "x".to_string(),
        ];
        let (stdout, written) = run_locally(&files, &args, b"first line\nsecond");
        let (output, ending, started) = read(
            Framing::stdout("NONCE", None),
            &[stdout
                .strip_prefix("code-runner-ready\n")
                .unwrap()
                .as_bytes()],
        );
        assert!(started);
        assert_eq!(output, b"[a b][][line\n\n][x]|first line\nsecond");
        assert_eq!(ending.unwrap().exit, Exit::Code(0));
        assert_eq!(written[0].1, files[0].content);
        assert_eq!(written[1].1, b"");
    }

    #[test]
    fn the_trailer_carries_the_real_wait_status_on_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        for (script, exit) in [
            ("echo out; echo err >&2; exit 3", Exit::Code(3)),
            ("exit 139", Exit::Code(139)),
            ("kill -SEGV $$", Exit::Signal(Signal(11))),
        ] {
            let out = bootstrap(
                dir.path(),
                "",
                &["sh", "-c", script],
                &encode(
                    "abc",
                    terms(Clock::default(), Stderr::Apart, None),
                    &[],
                    &[],
                    Some(b""),
                ),
            );
            assert_eq!(out.status.code(), Some(exit.status() as i32), "{script}");
            let (stdout, reported, started) = read(Framing::stdout("abc", None), &[&out.stdout]);
            let (stderr, again, _) = read(Framing::stderr("abc"), &[&out.stderr]);
            assert!(started, "{script}");
            assert_eq!(reported.unwrap().exit, exit, "{script}");
            assert_eq!(again.unwrap().exit, exit, "{script}");
            if exit == Exit::Code(3) {
                assert_eq!((stdout, stderr), (b"out\n".to_vec(), b"err\n".to_vec()));
            }
        }
    }

    #[test]
    fn a_command_that_is_not_there_exits_127_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let out = bootstrap(
            dir.path(),
            "",
            &["no-such-command"],
            &encode(
                "n",
                terms(Clock::default(), Stderr::Apart, None),
                &[],
                &[],
                Some(b""),
            ),
        );
        let (stderr, reported, _) = read(Framing::stderr("n"), &[&out.stderr]);
        assert_eq!(reported.unwrap().exit, Exit::Code(127));
        assert!(String::from_utf8_lossy(&stderr).contains("no-such-command"));
    }

    const STREAM: &[u8] =
        b"0123456789abcdef:start:15\nhello\nworld0123456789abcdef:s9:2:1500:4096:cpu\nignored";

    #[test]
    fn markers_split_anywhere_are_found_and_stripped() {
        let expected = Reported {
            exit: Exit::Signal(Signal(9)),
            oom_kills: Some(2),
            cpu_time: Some(Duration::from_micros(1500)),
            memory_peak: Some(4096),
            cpu_limit: true,
            wall_limit: false,
        };
        for cut in 0..STREAM.len() {
            let framing = Framing::stdout("0123456789abcdef", None);
            let (out, found, started) = read(framing, &[&STREAM[..cut], &STREAM[cut..]]);
            assert_eq!(out, b"hello\nworld", "cut at {cut}");
            assert_eq!(found, Some(expected), "cut at {cut}");
            assert!(started);
        }
        let bytes: Vec<&[u8]> = STREAM.iter().map(std::slice::from_ref).collect();
        let mut framing = Framing::stdout("0123456789abcdef", None);
        let mut out = Vec::new();
        for b in bytes {
            out.extend(framing.push(b));
        }
        assert_eq!(
            (out, framing.ending()),
            (b"hello\nworld".to_vec(), Some(expected))
        );
        assert_eq!(framing.cpu_at_start(), Some(15));
    }

    #[test]
    fn output_is_passed_on_as_it_comes_but_for_what_may_begin_a_marker() {
        let mut framing = Framing::stdout("0123456789abcdef", None);
        assert_eq!(framing.push(b"0123456789abcdef:start:15\nhel"), b"hel");
        assert_eq!(framing.push(b"lo\n"), b"lo\n");
        assert_eq!(framing.push(b"x = 0123"), b"x = ");
        assert_eq!(framing.push(b"4x"), b"01234x");
        assert_eq!(framing.push(b"0"), b"");
        assert_eq!(framing.finish(), b"0");
    }

    #[test]
    fn a_stream_that_never_started_is_known_and_its_bytes_kept() {
        let (out, found, started) = read(Framing::stdout("nonce", None), &[b"oops"]);
        assert_eq!((out, found, started), (b"oops".to_vec(), None, false));
        let (out, _, started) = read(Framing::stdout("nonce", None), &[b"not a start line\nmore"]);
        assert_eq!((out, started), (b"not a start line\nmore".to_vec(), false));
    }

    #[test]
    fn output_without_a_trailer_comes_through_whole() {
        let (out, found, _) = read(
            Framing::stderr("0123456789abcdef"),
            &[b"no trailer here, ", b"0123456789abc"],
        );
        assert_eq!(out, b"no trailer here, 0123456789abc");
        assert_eq!(found, None);
        let bad: &[&[u8]] = &[
            b"nonce:x\n",
            b"nonce:x1\n",
            b"nonce:q1:0:0:0:-\n",
            b"nonce:x1:0:0:0:gpu\n",
            b"nonce:x1:0:0:0:-:7\n",
            b"nonce",
        ];
        let (out, found, _) = read(Framing::stderr("nonce"), bad);
        assert_eq!(out, bad.concat());
        assert_eq!(found, None);
    }

    #[test]
    fn the_time_limits_travel_in_milliseconds() {
        let clock = Clock {
            cpu: Some(Duration::from_millis(1500)),
            wall: Some(Duration::from_millis(2500)),
        };
        let bytes = encode(
            "n",
            terms(clock, Stderr::Apart, None),
            &[],
            &[],
            Some(b"in"),
        );
        assert_eq!(bytes, b"n\n1500\n2500\n-\n-\n-\n-\n0\n0\nin");
        let none = encode(
            "n",
            terms(Clock::default(), Stderr::Merged, Some("/b")),
            &[],
            &[],
            None,
        );
        assert!(none.starts_with(b"n\n0\n0\nframed\nmerged\n/b\n"));
    }

    fn wanted(patterns: &[&str], max_files: usize, max_bytes: u64) -> Outputs {
        Outputs {
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            max_files,
            max_bytes,
        }
    }

    #[test]
    fn the_files_wanted_travel_as_one_line_of_tab_separated_patterns() {
        let outputs = wanted(&["*.png", "out dir/**"], 4, 100);
        let terms = Terms {
            outputs: Some(&outputs),
            ..Terms::default()
        };
        let bytes = encode("n", terms, &[], &[], Some(b""));
        assert_eq!(bytes, b"n\n0\n0\n-\n-\n-\n4:100\t*.png\tout dir/**\n0\n0\n");
    }

    #[test]
    fn files_sent_back_are_read_off_stdout_whatever_their_bytes_and_however_cut() {
        // A file whose bytes hold the nonce and a trailer's shape, a file
        // with colons in its name, an omission and a count of the rest.
        let stream: &[u8] = b"N:start:1\nhi\nN:file:12:a.bin\nN:x9:0:0:0:-N:file:3:b:c.txt\nabcN:omitted:7:max_bytes:big file.csv\nN:omitted:2:more:\nN:x0:0:5:6:-\n";
        let outputs = wanted(&["*"], 8, 15);
        for cut in 1..stream.len() {
            let mut framing = Framing::stdout("N", Some(&outputs));
            let (first, second) = stream.split_at(cut);
            let (out, reported, started) = {
                let mut out = framing.push(first);
                out.extend(framing.push(second));
                (out, framing.ending(), framing.started())
            };
            assert!(started);
            assert_eq!(out, b"hi\n", "cut at {cut}");
            assert_eq!(reported.unwrap().exit, Exit::Code(0), "cut at {cut}");
            let back = framing.take_files().unwrap();
            assert_eq!(
                back.files,
                vec![
                    FileBack {
                        name: "a.bin".into(),
                        content: b"N:x9:0:0:0:-".to_vec()
                    },
                    FileBack {
                        name: "b:c.txt".into(),
                        content: b"abc".to_vec()
                    },
                ],
                "cut at {cut}"
            );
            assert_eq!(
                back.omitted,
                vec![Omitted {
                    name: "big file.csv".into(),
                    size: 7,
                    reason: "max_bytes".into()
                }]
            );
            assert_eq!(back.more_omitted, 2);
        }
        // Past the bytes the run may bring back, a record is no file: the
        // supervisor never sends one, and the service keeps to its bound.
        let small = wanted(&["*"], 8, 4);
        let mut framing = Framing::stdout("N", Some(&small));
        framing.push(b"N:start:1\nN:file:5:x\n12345N:x0:0:0:0:-\n");
        assert_eq!(framing.take_files().unwrap().files, vec![]);
        // A record cut off by the service's stop is never output, and a
        // long omission's line comes whole in pieces.
        let mut framing = Framing::stdout("N", Some(&outputs));
        let mut out = framing.push(b"N:start:1\nlast words\nN:file:9:a.bin\n1234");
        out.extend(framing.finish());
        assert_eq!(out, b"last words\n");
        assert_eq!(framing.take_files().unwrap().files, vec![]);
        let long = format!("N:omitted:0:bad_name:{}\n", "\u{fffd}".repeat(4000));
        let mut framing = Framing::stdout("N", Some(&outputs));
        let mut out = framing.push(b"N:start:1\n");
        for piece in long.as_bytes().chunks(4096) {
            out.extend(framing.push(piece));
        }
        out.extend(framing.push(b"N:x0:0:0:0:-\n"));
        assert_eq!(out, b"");
        assert_eq!(framing.take_files().unwrap().omitted[0].name.len(), 12_000);
        // A run that asked for none keeps the records as its output.
        let mut framing = Framing::stdout("N", None);
        let out = framing.push(b"N:start:1\nN:file:1:x\n1N:x0:0:0:0:-\n");
        assert_eq!(out, b"N:file:1:x\n1");
        assert_eq!(framing.take_files(), None);
    }

    #[test]
    fn a_run_sends_its_files_back_cold_and_prestarted_never_through_a_link() {
        let program = "import os\nos.makedirs('out/deep', exist_ok=True)\nopen('out/a.txt', 'w').write('alpha')\nopen('out/deep/b.bin', 'wb').write(bytes(range(256)))\nopen('plot.png', 'wb').write(b'\\x89PNG')\nos.symlink('/etc/passwd', 'out/passwd')\nprint('done')\n";
        let outputs = wanted(&["out", "*.png", "main.py"], 3, 1 << 20);
        for prestart in ["", "python"] {
            let dir = tempfile::tempdir().unwrap();
            let files = [source("main.py", program.as_bytes())];
            let terms = Terms {
                outputs: Some(&outputs),
                ..Terms::default()
            };
            let (after_ready, said) = python_main(dir.path(), prestart, terms, &files);
            let mut framing = Framing::stdout("NONCE", Some(&outputs));
            let stdout = framing.push(&after_ready);
            assert_eq!(
                String::from_utf8_lossy(&stdout),
                "done\n",
                "{prestart:?}: {said}"
            );
            assert!(framing.ending().is_some(), "{prestart:?}");
            let back = framing.take_files().unwrap();
            let names: Vec<&str> = back.files.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(
                names,
                ["main.py", "out/a.txt", "out/deep/b.bin"],
                "{prestart:?}"
            );
            assert_eq!(back.files[1].content, b"alpha");
            assert_eq!(back.files[2].content, (0..=255).collect::<Vec<u8>>());
            let omitted: Vec<(&str, &str)> = back
                .omitted
                .iter()
                .map(|o| (o.name.as_str(), o.reason.as_str()))
                .collect();
            assert_eq!(
                omitted,
                [("out/passwd", "symlink"), ("plot.png", "max_files")],
                "{prestart:?}"
            );
        }
    }
}
