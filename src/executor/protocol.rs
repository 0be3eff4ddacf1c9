//! How a run's files, arguments and stdin reach the sandbox: one byte
//! stream on the container's attached stdin, read by a small POSIX shell
//! bootstrap that then `exec`s the language's command.
//!
//! The archive-upload API is refused on a read-only root filesystem, and
//! argv is limited to 128 KiB per argument, so neither carries the code.
//! The stream is:
//!
//! ```text
//! <nonce>\n
//! <file count>\n  then per file: <size>\n<relative path>\n<size bytes>
//! <arg count>\n   then per arg:  <size>\n<size bytes>
//! <the program's stdin, to end of stream>
//! ```
//!
//! Sizes are read with `head -c`, which (in GNU coreutils, as in every
//! Debian- or Ubuntu-based image) reads exactly that many bytes, so what
//! follows the framing is left, unread, for the program's own stdin.
//!
//! The bootstrap runs the command as its child and, when it ends, writes
//! `<nonce>:<exit status>:<out-of-memory kills>\n` to stdout and to stderr
//! (the [`Trailer`]); the kernel's out-of-memory kills while the program
//! ran come from the container's memory cgroup (`oom_kill` in
//! `memory.events`, or `memory.oom_control` under cgroup v1), or are `-`
//! where neither can be read.
//! Everything the program wrote comes before it on each stream, so the
//! service knows the program is done, and how it ended, as soon as both
//! trailers arrive, without waiting for the engine to notice the container
//! stop (which takes tens of milliseconds more). The nonce is fresh for
//! every run and never on a command line; a program that dug it out of the
//! shell's memory could only misreport its own exit status.

use super::verdict::{Exit, Reported};
use crate::job::SourceFile;

/// The sandbox's working directory, where the files are written.
pub const WORK_DIR: &str = "/work";

/// The bootstrap, run as `sh -c BOOTSTRAP code-runner <warm-up> <command...>`:
/// it runs the warm-up (a shell command, when not empty: a pooled container
/// loads its interpreter once while it waits, so that the run finds its
/// files cached), writes the files, appends the arguments to the command,
/// runs it, and writes the trailers. The command runs in a subshell that
/// gives it the real stderr, while the shell's own is /dev/null, so that
/// the shell's "Killed" notices never reach the program's output.
pub const BOOTSTRAP: &str = r#"set -eu
warmup=$1
shift
if [ -n "$warmup" ]; then
  sh -c "$warmup" </dev/null >/dev/null 2>&1 || true
  echo code-runner-ready
fi
IFS= read -r nonce
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
oom_kills() {
  kills=-
  for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do
    if [ -r "$f" ]; then
      kills=0
      while read -r key value; do
        if [ "$key" = oom_kill ]; then kills=$value; fi
      done < "$f"
      return
    fi
  done
}
set +e
oom_kills
before=$kills
exec 4>&2 2>/dev/null
( exec 2>&4 4>&-; exec "$@" )
status=$?
oom_kills
after=$kills
oom=-
if [ "$before" != - ] && [ "$after" != - ]; then oom=$((after - before)); fi
printf '%s:%d:%s\n' "$nonce" "$status" "$oom"
printf '%s:%d:%s\n' "$nonce" "$status" "$oom" >&4
exit "$status"
"#;

/// The line the bootstrap writes on stdout once its warm-up is over.
pub const READY: &str = "code-runner-ready\n";

/// A fresh nonce for one run's trailers.
pub fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Encodes the nonce, files, arguments and stdin into the bootstrap's stream.
pub fn encode(nonce: &str, files: &[&SourceFile], args: &[String], stdin: &[u8]) -> Vec<u8> {
    let size = files
        .iter()
        .map(|f| f.content.len() + f.name.len() + 24)
        .sum::<usize>()
        + args.iter().map(|a| a.len() + 12).sum::<usize>()
        + stdin.len()
        + 16;
    let mut out = Vec::with_capacity(size + nonce.len() + 1);
    out.extend_from_slice(format!("{nonce}\n{}\n", files.len()).as_bytes());
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

/// Finds the bootstrap's trailer at the end of one output stream, holding
/// back the few bytes that might be its start, so that what it passes on
/// is the program's output alone.
#[derive(Debug)]
pub struct Trailer {
    marker: Vec<u8>,
    held: Vec<u8>,
    status: Option<Reported>,
}

/// Bytes after the nonce that a trailer may take (`:status:kills\n`).
const TRAILER_TAIL: usize = 32;

impl Trailer {
    pub fn new(nonce: &str) -> Trailer {
        Trailer {
            marker: nonce.as_bytes().to_vec(),
            held: Vec::new(),
            status: None,
        }
    }

    /// What the trailer said, once it has come.
    pub fn ending(&self) -> Option<Reported> {
        self.status
    }

    /// Takes a chunk of the stream; returns the bytes that are surely
    /// program output. After the trailer, everything is dropped.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.status.is_some() {
            return Vec::new();
        }
        self.held.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            match find(&self.held, &self.marker) {
                Some(at) => {
                    let rest = &self.held[at + self.marker.len()..];
                    match parse_status(rest) {
                        Parsed::Status(status) => {
                            out.extend_from_slice(&self.held[..at]);
                            self.held.clear();
                            self.status = Some(status);
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
                None => {
                    let keep = self.marker.len() + TRAILER_TAIL;
                    if self.held.len() > keep {
                        let cut = self.held.len() - keep;
                        out.extend_from_slice(&self.held[..cut]);
                        self.held.drain(..cut);
                    }
                    return out;
                }
            }
        }
    }

    /// The bytes still held, when the stream ended with no trailer.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

enum Parsed {
    Status(Reported),
    Incomplete,
    Not,
}

fn parse_status(rest: &[u8]) -> Parsed {
    let Some(rest) = rest.strip_prefix(b":") else {
        return if rest.is_empty() {
            Parsed::Incomplete
        } else {
            Parsed::Not
        };
    };
    let allowed = |b: &u8| b.is_ascii_digit() || *b == b':' || *b == b'-';
    match rest.iter().position(|&b| b == b'\n') {
        Some(end) if end < TRAILER_TAIL => {
            let line = std::str::from_utf8(&rest[..end]).unwrap_or_default();
            let mut parts = line.split(':');
            let status = parts.next().and_then(|s| s.parse().ok());
            let oom_kills = parts.next();
            match (status, oom_kills, parts.next()) {
                (Some(status), Some(kills), None) => Parsed::Status(Reported {
                    exit: Exit::from_shell_status(status),
                    oom_kills: kills.parse().ok(),
                }),
                _ => Parsed::Not,
            }
        }
        Some(_) => Parsed::Not,
        None if rest.len() < TRAILER_TAIL && rest.iter().all(allowed) => Parsed::Incomplete,
        None => Parsed::Not,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Starts the bootstrap with the host's own `sh` and `head` in `dir`,
    /// running `command`, and writes `input` to it.
    fn bootstrap(
        dir: &std::path::Path,
        warmup: &str,
        command: &[&str],
        input: &[u8],
    ) -> std::process::Output {
        let mut child = Command::new("sh")
            .current_dir(dir)
            .args(["-c", BOOTSTRAP, "code-runner", warmup])
            .args(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs the bootstrap in a temporary folder, with a command that prints
    /// its arguments and stdin.
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
            &encode("NONCE", &files.iter().collect::<Vec<_>>(), args, stdin),
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

    #[test]
    fn files_args_and_stdin_arrive_intact() {
        let files = vec![
            SourceFile {
                name: "main.py".into(),
                content: b"print('hi')\n\n\0binary\xff".to_vec(),
            },
            SourceFile {
                name: "pkg/sub/util.py".into(),
                content: Vec::new(),
            },
        ];
        let args = vec![
            "a b".to_string(),
            "".to_string(),
            "line\n\n".to_string(),
            "x".to_string(),
        ];
        let (stdout, written) = run_locally(&files, &args, b"first line\nsecond");
        assert!(
            stdout
                .starts_with("code-runner-ready\n[a b][][line\n\n][x]|first line\nsecondNONCE:0:"),
            "{stdout}"
        );
        assert_eq!(written[0].1, files[0].content);
        assert_eq!(written[1].1, b"");
    }

    #[test]
    fn the_trailer_carries_the_exit_status_on_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let out = bootstrap(
            dir.path(),
            "",
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            &encode("abc", &[], &[], b""),
        );
        assert_eq!(out.status.code(), Some(3));
        // The host's cgroup may or may not be readable here: "-" or a count.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.starts_with("out\nabc:3:"), "{stdout}");
        assert!(stderr.starts_with("err\nabc:3:"), "{stderr}");
        let mut trailer = Trailer::new("abc");
        assert_eq!(trailer.push(stdout.as_bytes()), b"out\n");
        assert_eq!(trailer.ending().unwrap().exit, Exit::Code(3));
    }

    fn scan(nonce: &str, chunks: &[&[u8]]) -> (Vec<u8>, Option<Reported>) {
        let mut trailer = Trailer::new(nonce);
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(trailer.push(chunk));
        }
        if trailer.ending().is_none() {
            out.extend(trailer.finish());
        }
        (out, trailer.ending())
    }

    #[test]
    fn a_trailer_split_anywhere_is_found_and_stripped() {
        let stream = b"hello\nworld0123456789abcdef:137:2\nignored";
        let ending = Reported {
            exit: Exit::from_shell_status(137),
            oom_kills: Some(2),
        };
        for cut in 0..stream.len() {
            let (out, found) = scan("0123456789abcdef", &[&stream[..cut], &stream[cut..]]);
            assert_eq!(out, b"hello\nworld", "cut at {cut}");
            assert_eq!(found, Some(ending));
        }
        let bytes: Vec<&[u8]> = stream.iter().map(std::slice::from_ref).collect();
        assert_eq!(
            scan("0123456789abcdef", &bytes),
            (b"hello\nworld".to_vec(), Some(ending))
        );
        let (_, found) = scan("n", &[b"n:0:-\n"]);
        assert_eq!(
            found,
            Some(Reported {
                exit: Exit::Code(0),
                oom_kills: None
            })
        );
    }

    #[test]
    fn output_without_a_trailer_comes_through_whole() {
        let (out, found) = scan(
            "0123456789abcdef",
            &[b"no trailer here, ", b"0123456789abc"],
        );
        assert_eq!(out, b"no trailer here, 0123456789abc");
        assert_eq!(found, None);
        let (out, found) = scan(
            "nonce",
            &[
                b"nonce:x\n",
                b"nonce:1\n",
                b"nonce:1:2:3\n",
                b"nonce:123456789012345678901234567890\n",
                b"nonce",
            ],
        );
        assert_eq!(
            out,
            b"nonce:x\nnonce:1\nnonce:1:2:3\nnonce:123456789012345678901234567890\nnonce"
        );
        assert_eq!(found, None);
    }

    #[test]
    fn no_args_and_empty_stdin() {
        let files = vec![SourceFile {
            name: "main.py".into(),
            content: vec![b'x'; 100_000],
        }];
        let (stdout, written) = run_locally(&files, &[], b"");
        assert!(
            stdout.starts_with("code-runner-ready\n|NONCE:0:"),
            "{stdout}"
        );
        assert_eq!(written[0].1.len(), 100_000);
    }
}
