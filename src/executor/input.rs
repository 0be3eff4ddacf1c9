//! How a run's files, arguments and stdin reach the sandbox: one byte
//! stream on the container's attached stdin, read by a small POSIX shell
//! bootstrap that then `exec`s the language's command.
//!
//! The archive-upload API is refused on a read-only root filesystem, and
//! argv is limited to 128 KiB per argument, so neither carries the code.
//! The stream is:
//!
//! ```text
//! <file count>\n  then per file: <size>\n<relative path>\n<size bytes>
//! <arg count>\n   then per arg:  <size>\n<size bytes>
//! <the program's stdin, to end of stream>
//! ```
//!
//! Sizes are read with `head -c`, which (in GNU coreutils, as in every
//! Debian- or Ubuntu-based image) reads exactly that many bytes, so what
//! follows the framing is left, unread, for the program's own stdin.

/// The sandbox's working directory, where the files are written.
pub const WORK_DIR: &str = "/work";

/// The bootstrap, run as `sh -c BOOTSTRAP code-runner <command...>`: it
/// writes the files, appends the arguments to the command and execs it.
pub const BOOTSTRAP: &str = r#"set -eu
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
exec "$@"
"#;

/// One file to write into the working directory.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// A relative path, already checked: no `..`, no leading `/`, no newline.
    pub name: String,
    pub content: Vec<u8>,
}

/// Encodes files, arguments and stdin into the bootstrap's stream.
pub fn encode(files: &[SourceFile], args: &[String], stdin: &[u8]) -> Vec<u8> {
    let size = files
        .iter()
        .map(|f| f.content.len() + f.name.len() + 24)
        .sum::<usize>()
        + args.iter().map(|a| a.len() + 12).sum::<usize>()
        + stdin.len()
        + 16;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(format!("{}\n", files.len()).as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Runs the bootstrap with the host's own `sh` and `head`, in a
    /// temporary folder, with a command that prints its arguments and stdin.
    fn run_locally(
        files: &[SourceFile],
        args: &[String],
        stdin: &[u8],
    ) -> (String, Vec<(String, Vec<u8>)>) {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("sh")
            .current_dir(dir.path())
            .args(["-c", BOOTSTRAP, "code-runner", "sh", "-c"])
            .arg(r#"for a in "$@"; do printf '[%s]' "$a"; done; printf '|'; cat"#)
            .arg("prog")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&encode(files, args, stdin))
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
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
        assert_eq!(stdout, "[a b][][line\n\n][x]|first line\nsecond");
        assert_eq!(written[0].1, files[0].content);
        assert_eq!(written[1].1, b"");
    }

    #[test]
    fn no_args_and_empty_stdin() {
        let files = vec![SourceFile {
            name: "main.py".into(),
            content: vec![b'x'; 100_000],
        }];
        let (stdout, written) = run_locally(&files, &[], b"");
        assert_eq!(stdout, "|");
        assert_eq!(written[0].1.len(), 100_000);
    }
}
