//! A job: one run to carry out, parsed and checked at the edge, whatever
//! API dialect it came through.
//!
//! A dialect turns its wire request into a [`JobRequest`];
//! [`JobRequest::into_job`] holds it to every rule (sizes, file names, the
//! language and version, the limits a request may only lower) and gives a
//! [`Job`], which cannot be wrong: its files have safe names and do not
//! collide, and its limits are the effective ones. A refusal is a
//! [`JobError`] naming the domain [`Field`], which each dialect names in
//! its own words.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::language::{Language, Lookup, Registry};
use crate::limits::{Limit, LimitRaised, Limits, LimitsOverride};
use crate::text::clip;

/// One run to carry out, already checked.
#[derive(Debug, Clone)]
pub struct Job {
    pub language: Arc<Language>,
    pub files: Files,
    /// Appended to the language's run command.
    pub args: Vec<String>,
    /// Appended to the language's compile command (compiler options the
    /// language allows); empty when it has no compile stage.
    pub compile_args: Vec<String>,
    /// The program's standard input.
    pub stdin: Vec<u8>,
    /// The effective limits of each stage.
    pub limits: JobLimits,
    /// A batch's tests: each runs the program (compiled once) in a fresh
    /// sandbox with its own stdin and arguments. Empty for a single run.
    pub tests: Vec<TestInput>,
    /// Who it runs for, for the fair share of run slots (the API sets it:
    /// an API key's id or the peer's address; empty until then).
    pub client: Client,
}

/// Who a run is for: the API key's id, or the peer's address when keys
/// are off (see `api::gate`).
pub type Client = std::sync::Arc<str>;

/// What one test of a batch gives the program.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestInput {
    pub stdin: Vec<u8>,
    pub args: Vec<String>,
}

/// The effective limits of a job's stages.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLimits {
    pub run: Limits,
    /// Present exactly when the language compiles.
    pub compile: Option<Limits>,
}

/// The files written into the working directory before any compile.
#[derive(Debug, Clone, PartialEq)]
pub struct Files {
    /// The main source, written to the language's `source_file`.
    pub main: SourceFile,
    /// Other files, with names that are safe and collide with nothing.
    pub extra: Vec<SourceFile>,
}

impl Files {
    /// Every file, the main source first.
    pub fn all(&self) -> impl Iterator<Item = &SourceFile> {
        std::iter::once(&self.main).chain(&self.extra)
    }
}

/// One file for the working directory.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// A relative path: no `..`, no leading `/`, no newline (see
    /// [`check_file_name`]).
    pub name: String,
    pub content: Vec<u8>,
}

/// The size bounds of a request (from the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestBounds {
    /// Largest main source and extra files together, in bytes.
    pub max_code_bytes: usize,
    /// Most extra files.
    pub max_files: usize,
    /// Largest stdin, in bytes.
    pub max_stdin_bytes: usize,
    /// Most arguments.
    pub max_args: usize,
    /// Largest argument, in bytes.
    pub max_arg_bytes: usize,
    /// Most tests in a batch.
    pub max_tests: usize,
}

/// What any API dialect asks for, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct JobRequest {
    /// A language's name or alias.
    pub language: String,
    /// A version range (see [`Registry::resolve`]); the newest when `None`.
    pub version: Option<String>,
    /// The main source.
    pub main: Vec<u8>,
    /// Other files: (name, content).
    pub extra: Vec<(String, Vec<u8>)>,
    pub args: Vec<String>,
    /// Compiler options, each one argument (checked against the
    /// language's `compiler_options`).
    pub compile_args: Vec<String>,
    pub stdin: Vec<u8>,
    /// Run limits the request asks for (each may only lower the language's).
    pub run_limits: LimitsOverride,
    /// Compile limits the request asks for (likewise; ignored when the
    /// language does not compile).
    pub compile_limits: LimitsOverride,
    /// A batch's tests (none for a single run).
    pub tests: Vec<TestInput>,
}

/// A part of a request, as the domain knows it; each dialect has its own
/// name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The main source.
    Main,
    /// The extra files.
    Files,
    Args,
    /// Compiler options.
    CompileArgs,
    Stdin,
    /// The tests of a batch (their count, or one test's stdin or
    /// arguments).
    Tests,
    /// A limit of a stage.
    Limit(Stage, Limit),
}

/// A stage of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Compile,
    Run,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Compile => "compile",
            Stage::Run => "run",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request cannot become a job.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    /// Over a size bound (HTTP 413 in every dialect that has it).
    #[error("{message}")]
    TooLarge { field: Field, message: String },
    /// Not a valid value.
    #[error("{message}")]
    Invalid { field: Field, message: String },
    /// No such language or version.
    #[error(transparent)]
    Language(#[from] Lookup),
    /// A limit asked for is above the language's.
    #[error("the {stage} {raised}")]
    LimitRaised { stage: Stage, raised: LimitRaised },
}

impl JobRequest {
    /// Checks the request against `bounds` and `registry`: size bounds
    /// first (so that a request too large in any way is answered as such),
    /// then the values, the language, file names against the language's
    /// source file, and the limits.
    pub fn into_job(self, registry: &Registry, bounds: &RequestBounds) -> Result<Job, JobError> {
        self.check_sizes(bounds)?;
        self.check_values()?;
        let language = registry.resolve(&self.language, self.version.as_deref())?;
        if !self.compile_args.is_empty() && language.compile.is_none() {
            return Err(invalid(
                Field::CompileArgs,
                format!(
                    "cannot be given: language `{}` has no compile stage",
                    language.name
                ),
            ));
        }
        if let Some(option) = self
            .compile_args
            .iter()
            .find(|o| !crate::language::option_allowed(&language.compiler_options, o))
        {
            let allowed = match language.compiler_options.as_slice() {
                [] => "none is".to_string(),
                patterns => format!("these are: {}", patterns.join(" ")),
            };
            return Err(invalid(
                Field::CompileArgs,
                format!(
                    "has `{option}`, which language `{}` does not allow ({allowed})",
                    language.name
                ),
            ));
        }
        let main = SourceFile {
            name: language.source_file.clone(),
            content: self.main,
        };
        let mut extra = Vec::with_capacity(self.extra.len());
        for (name, content) in self.extra {
            if name == main.name || folders_of(&name).any(|f| f == main.name) {
                return Err(invalid(
                    Field::Files,
                    format!(
                        "has a file named {:?}, which collides with `{}`, where the main source is written in language `{}`",
                        clip(&name),
                        main.name,
                        language.name
                    ),
                ));
            }
            extra.push(SourceFile { name, content });
        }
        let none = LimitsOverride::default();
        let run = language
            .limits
            .resolve(&none, &self.run_limits)
            .map_err(|raised| JobError::LimitRaised {
                stage: Stage::Run,
                raised,
            })?;
        let compile = match &language.compile {
            None => None,
            Some(compile) => Some(
                compile
                    .limits
                    .resolve(&none, &self.compile_limits)
                    .map_err(|raised| JobError::LimitRaised {
                        stage: Stage::Compile,
                        raised,
                    })?,
            ),
        };
        Ok(Job {
            language,
            files: Files { main, extra },
            args: self.args,
            compile_args: self.compile_args,
            stdin: self.stdin,
            limits: JobLimits { run, compile },
            tests: self.tests,
            client: std::sync::Arc::from(""),
        })
    }

    /// Checks the size bounds alone (a dialect checks these before its own
    /// rules, so that a request too large in any way is answered as such).
    pub fn check_sizes(&self, bounds: &RequestBounds) -> Result<(), JobError> {
        let (bytes, args) = (bounds.max_arg_bytes, bounds.max_args);
        let code = bounds.max_code_bytes;
        at_most(Field::Main, "is", self.main.len(), code, " bytes")?;
        at_most(
            Field::Stdin,
            "is",
            self.stdin.len(),
            bounds.max_stdin_bytes,
            " bytes",
        )?;
        at_most(Field::Args, "has", self.args.len(), args, " arguments")?;
        if let Some((i, a)) = self.args.iter().enumerate().find(|(_, a)| a.len() > bytes) {
            at_most(
                Field::Args,
                &format!("argument {i} is"),
                a.len(),
                bytes,
                " bytes",
            )?;
        }
        at_most(
            Field::CompileArgs,
            "has",
            self.compile_args.len(),
            args,
            " options",
        )?;
        if let Some(a) = self.compile_args.iter().find(|a| a.len() > bytes) {
            at_most(
                Field::CompileArgs,
                "has an option of",
                a.len(),
                bytes,
                " bytes",
            )?;
        }
        at_most(
            Field::Files,
            "has",
            self.extra.len(),
            bounds.max_files,
            " files",
        )?;
        at_most(
            Field::Tests,
            "has",
            self.tests.len(),
            bounds.max_tests,
            " tests",
        )?;
        for (i, test) in self.tests.iter().enumerate() {
            let what = format!("test {i}'s stdin is");
            at_most(
                Field::Tests,
                &what,
                test.stdin.len(),
                bounds.max_stdin_bytes,
                " bytes",
            )?;
            let what = format!("test {i} has");
            at_most(Field::Tests, &what, test.args.len(), args, " arguments")?;
            if let Some(a) = test.args.iter().find(|a| a.len() > bytes) {
                let what = format!("an argument of test {i} is");
                at_most(Field::Tests, &what, a.len(), bytes, " bytes")?;
            }
        }
        let total = self.main.len() + self.extra.iter().map(|(_, c)| c.len()).sum::<usize>();
        if total > code {
            return Err(JobError::TooLarge {
                field: Field::Files,
                message: format!(
                    "and the main source together are {total} bytes, more than the limit of {code} bytes"
                ),
            });
        }
        Ok(())
    }

    fn check_values(&self) -> Result<(), JobError> {
        if let Some(i) = self.args.iter().position(|a| a.contains('\0')) {
            return Err(invalid(
                Field::Args,
                format!("argument {i} contains a NUL byte, which a command line cannot carry"),
            ));
        }
        if let Some(i) = self
            .tests
            .iter()
            .position(|t| t.args.iter().any(|a| a.contains('\0')))
        {
            return Err(invalid(
                Field::Tests,
                format!(
                    "test {i} has an argument with a NUL byte, which a command line cannot carry"
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (name, _) in &self.extra {
            check_file_name(name).map_err(|why| {
                invalid(
                    Field::Files,
                    format!("has a file named {:?}, which {why}", clip(name)),
                )
            })?;
            if !seen.insert(name.as_str()) {
                return Err(invalid(
                    Field::Files,
                    format!("has two files named {name:?}"),
                ));
            }
        }
        for (name, _) in &self.extra {
            if let Some(folder) = folders_of(name).find(|f| seen.contains(f)) {
                return Err(invalid(
                    Field::Files,
                    format!(
                        "has a file named {:?} and a file named {:?}, which would have to be a folder",
                        clip(name),
                        clip(folder)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `got` within `limit`, or a [`JobError::TooLarge`] for `field` saying
/// `what {got}{unit}, more than the limit of {limit}{unit}`.
fn at_most(field: Field, what: &str, got: usize, limit: usize, unit: &str) -> Result<(), JobError> {
    if got <= limit {
        return Ok(());
    }
    Err(JobError::TooLarge {
        field,
        message: format!("{what} {got}{unit}, more than the limit of {limit}{unit}"),
    })
}

fn invalid(field: Field, message: String) -> JobError {
    JobError::Invalid { field, message }
}

/// The folders a relative path lies in: `a/b/c` gives `a` and `a/b`.
pub fn folders_of(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(at, _)| &name[..at])
}

/// Why `name` is not a plain relative path of safe characters, if it is
/// not: 1 to 255 bytes, at most 8 folders deep, of `A-Za-z0-9._+-` and `/`,
/// no empty, `.` or `..` component, none starting with `-`.
pub fn check_file_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("must be 1 to 255 bytes long");
    }
    if name.starts_with('/') {
        return Err("is an absolute path; names are relative to the working directory");
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 8 {
        return Err("is more than 8 folders deep");
    }
    for part in parts {
        match part {
            "" => return Err("has an empty path component"),
            "." | ".." => return Err("has a `.` or `..` component"),
            p if p.starts_with('-') => return Err("has a component starting with `-`"),
            p if !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b)) =>
            {
                return Err("may only hold A-Z, a-z, 0-9, `.`, `_`, `+`, `-` and `/`");
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::Origin;
    use crate::limits::DefaultLimits;
    use proptest::prelude::*;

    fn bounds() -> RequestBounds {
        RequestBounds {
            max_code_bytes: 10,
            max_files: 2,
            max_stdin_bytes: 5,
            max_args: 2,
            max_arg_bytes: 3,
            max_tests: 2,
        }
    }

    pub(crate) fn registry() -> Registry {
        let c = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/languages/available/c.toml"
        ))
        .unwrap();
        let c = Language::parse(Origin::File("c.toml".into()), &c, &DefaultLimits::default());
        let mut languages = Registry::builtin(&DefaultLimits::default())
            .unwrap()
            .languages()
            .to_vec();
        languages.push(Arc::new(c.unwrap()));
        Registry::from_languages(languages).unwrap()
    }

    fn request(language: &str, main: &str) -> JobRequest {
        JobRequest {
            language: language.to_string(),
            main: main.as_bytes().to_vec(),
            ..JobRequest::default()
        }
    }

    fn with_files(files: &[&str]) -> JobRequest {
        JobRequest {
            extra: files.iter().map(|n| (n.to_string(), Vec::new())).collect(),
            ..request("c", "x")
        }
    }

    fn refusal(r: JobRequest) -> JobError {
        r.into_job(&registry(), &bounds()).unwrap_err()
    }

    #[test]
    fn a_good_request_becomes_a_job_with_the_languages_limits() {
        let job = JobRequest {
            args: vec!["x".into()],
            stdin: b"ab".to_vec(),
            extra: vec![("util.c".into(), b"1".to_vec())],
            ..request("gcc", "int")
        }
        .into_job(&registry(), &bounds())
        .unwrap();
        assert_eq!(job.language.name, "c");
        assert_eq!(job.files.main.name, "main.c");
        assert_eq!(job.files.all().count(), 2);
        assert_eq!(job.limits.run, job.language.limits);
        assert_eq!(
            job.limits.compile.as_ref(),
            Some(&job.language.compile.as_ref().unwrap().limits)
        );
        let python = request("python", "1")
            .into_job(&registry(), &bounds())
            .unwrap();
        assert_eq!(python.limits.compile, None);
    }

    #[test]
    fn sizes_over_their_bounds_are_too_large_before_any_other_fault() {
        for (r, field) in [
            (request("python", "12345678901"), Field::Main),
            (
                JobRequest {
                    stdin: b"123456".to_vec(),
                    ..request("nope", "1")
                },
                Field::Stdin,
            ),
            (
                JobRequest {
                    args: vec!["a".into(), "b".into(), "\0".into()],
                    ..request("python", "1")
                },
                Field::Args,
            ),
            (
                JobRequest {
                    args: vec!["abcd".into()],
                    ..request("python", "1")
                },
                Field::Args,
            ),
            (with_files(&["a", "b", "../c"]), Field::Files),
            (
                JobRequest {
                    extra: vec![("a".into(), vec![0; 8])],
                    ..request("c", "123")
                },
                Field::Files,
            ),
        ] {
            match refusal(r) {
                JobError::TooLarge { field: f, .. } => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bad_file_names_duplicates_and_folder_collisions_are_invalid() {
        for files in [
            &["../a"][..],
            &["a", "a"],
            &["a/b", "a"],
            &["main.c"],
            &["main.c/x"],
        ] {
            match refusal(with_files(files)) {
                JobError::Invalid { field, message } => {
                    assert_eq!(field, Field::Files, "{files:?}");
                    assert!(message.contains(&format!("{:?}", files[0])), "{message}");
                }
                other => panic!("{files:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_nul_argument_is_invalid_and_an_unknown_language_or_version_is_named() {
        let r = JobRequest {
            args: vec!["a\0".into()],
            ..request("python", "1")
        };
        assert!(matches!(
            refusal(r),
            JobError::Invalid {
                field: Field::Args,
                ..
            }
        ));
        assert!(matches!(
            refusal(request("cobol", "1")),
            JobError::Language(Lookup::UnknownLanguage { .. })
        ));
        let r = JobRequest {
            version: Some("2".into()),
            ..request("python", "1")
        };
        assert!(matches!(
            refusal(r),
            JobError::Language(Lookup::UnknownVersion { .. })
        ));
    }

    #[test]
    fn limits_may_only_be_lowered_per_stage() {
        let lower = |ms| LimitsOverride {
            wall_time_ms: Some(ms),
            ..LimitsOverride::default()
        };
        let job = JobRequest {
            run_limits: lower(1500),
            compile_limits: lower(2000),
            ..request("c", "x")
        }
        .into_job(&registry(), &bounds())
        .unwrap();
        assert_eq!(job.limits.run.wall_time_ms, 1500);
        assert_eq!(job.limits.compile.unwrap().wall_time_ms, 2000);
        match refusal(JobRequest {
            compile_limits: lower(999_999),
            ..request("c", "x")
        }) {
            JobError::LimitRaised { stage, raised } => {
                assert_eq!(stage, Stage::Compile);
                assert_eq!(raised.limit, Limit::wall_time_ms);
            }
            other => panic!("{other:?}"),
        }
        // A compile limit asked of a language that does not compile is
        // not an error: there is no stage to lower.
        assert!(
            JobRequest {
                compile_limits: lower(999_999),
                ..request("python", "x")
            }
            .into_job(&registry(), &bounds())
            .is_ok()
        );
    }

    proptest! {
        #[test]
        fn file_name_checks_keep_paths_inside_the_working_directory(name in ".{0,300}") {
            if check_file_name(&name).is_ok() {
                prop_assert!(!name.starts_with('/'));
                prop_assert!(!name.split('/').any(|p| p == ".." || p == "." || p.is_empty()));
                prop_assert!(!name.contains('\n') && !name.contains('\0'));
            }
        }
    }

    #[test]
    fn file_names_must_be_plain_relative_paths() {
        for good in [
            "util.py",
            "pkg/util.py",
            "a/b/c.txt",
            "Main.java",
            "x+y_z-1.c",
        ] {
            assert_eq!(check_file_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./x",
            "a/.",
            "-rf.c",
            "a b",
            "x\ny",
            "a\\b",
            "é.py",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name("a/".repeat(9).trim_end_matches('/')).is_err());
        assert_eq!(folders_of("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
    }
}
