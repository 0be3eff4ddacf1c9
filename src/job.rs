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

use crate::config::RequestBounds;
use crate::language::{Language, Lookup, Registry};
use crate::limits::{Limit, LimitRaised, Limits, LimitsOverride};
use crate::nonempty::NonEmpty;
use crate::text::clip;

/// The most bytes a request's `outputs` patterns may take together (they
/// travel as one line of the sandbox's framing).
const MAX_PATTERN_BYTES: usize = 16 * 1024;

/// One run to carry out, already checked.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) language: Arc<Language>,
    pub(crate) files: Files,
    /// Appended to the language's compile command (compiler options the
    /// language allows); empty when it has no compile stage.
    pub(crate) compile_args: Vec<String>,
    /// The effective limits of each stage.
    pub(crate) limits: JobLimits,
    /// What each run of the program gets: one input for a single run, one
    /// per test of a batch (the program is compiled once, and each input
    /// runs in a fresh sandbox).
    pub(crate) inputs: NonEmpty<RunInput>,
    /// Who it runs for, for the fair share of run slots: an API key's id or
    /// the peer's address.
    pub(crate) client: Client,
    /// Where each stage's stderr goes.
    pub(crate) streams: Streams,
    /// The files each run of the program brings back, if any.
    pub(crate) outputs: Option<Outputs>,
}

/// The files a run asks back from its working directory (`outputs`):
/// paths or globs checked as file names are, and the server's caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outputs {
    pub(crate) patterns: Vec<String>,
    pub(crate) max_files: usize,
    pub(crate) max_bytes: u64,
}

/// Where a stage's program writes its stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Stderr {
    /// A stream of its own.
    #[default]
    Apart,
    /// Into stdout, as `2>&1` puts it: the program's fd 2 is the very pipe
    /// of its fd 1, so the one stream holds both in the order of the
    /// writes, and stderr stays empty.
    Merged,
}

/// Where each stage's stderr goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Streams {
    pub(crate) compile: Stderr,
    pub(crate) run: Stderr,
}

/// Who a run is for: the API key's id, or the peer's address when keys
/// are off (see `api::gate`).
pub(crate) type Client = std::sync::Arc<str>;

/// What one run of the program gets: its stdin, the arguments appended
/// to the language's run command, and files of its own (a checker's
/// input, output and answer), written beside the job's.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RunInput {
    pub(crate) stdin: Vec<u8>,
    pub(crate) args: Vec<String>,
    /// Checked by the service that made them: never a client's names.
    pub(crate) files: Vec<SourceFile>,
}

/// The effective limits of a job's stages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobLimits {
    pub(crate) run: Limits,
    /// Present exactly when the language compiles.
    pub(crate) compile: Option<Limits>,
}

/// The files written into the working directory before any compile.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Files {
    /// The main source, written to the language's `source_file`.
    pub(crate) main: SourceFile,
    /// Other files, with names that are safe and collide with nothing.
    pub(crate) extra: Vec<SourceFile>,
}

impl Files {
    /// Every file, the main source first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &SourceFile> {
        std::iter::once(&self.main).chain(&self.extra)
    }
}

/// One file for the working directory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SourceFile {
    /// A relative path, as the user named it (spaces, quotes and any
    /// script's letters included), that [`check_file_name`] allows: no
    /// control character, no `.` or `..`, no leading `/`, no component
    /// starting with `-` or `@`.
    pub(crate) name: String,
    pub(crate) content: Vec<u8>,
}

/// What any API dialect asks for, before it is checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobRequest {
    /// A language's name or alias.
    pub(crate) language: String,
    /// A version range (see [`Registry::resolve`]); the newest when `None`.
    pub(crate) version: Option<String>,
    /// The main source.
    pub(crate) main: Vec<u8>,
    /// Other files: (name, content).
    pub(crate) extra: Vec<(String, Vec<u8>)>,
    pub(crate) args: Vec<String>,
    /// Compiler options, each one argument (checked against the
    /// language's `compiler_options`).
    pub(crate) compile_args: Vec<String>,
    pub(crate) stdin: Vec<u8>,
    /// Run limits the request asks for (each may only lower the language's).
    pub(crate) run_limits: LimitsOverride,
    /// Compile limits the request asks for (likewise; ignored when the
    /// language does not compile).
    pub(crate) compile_limits: LimitsOverride,
    /// A batch's tests (none for a single run, which runs with `stdin`
    /// and `args`).
    pub(crate) tests: Vec<RunInput>,
    /// Where each stage's stderr goes (apart, unless a dialect asks).
    pub(crate) streams: Streams,
    /// Paths or globs of the files each run brings back (none when empty).
    pub(crate) outputs: Vec<String>,
}

/// A part of a request, as the domain knows it; each dialect has its own
/// name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// The main source.
    Main,
    /// The extra files.
    Files,
    Args,
    /// Compiler options.
    CompileArgs,
    Stdin,
    /// The files to bring back.
    Outputs,
    /// The tests of a batch (their count, or one test's stdin or
    /// arguments).
    Tests,
    /// A limit of a stage.
    Limit(Stage, Limit),
}

/// A stage of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Stage {
    Compile,
    Run,
}

impl Stage {
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) enum JobError {
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
    /// Checks the request against `bounds` and `registry`, for `client`:
    /// size bounds first (so that a request too large in any way is
    /// answered as such), then the values, the language, the compiler
    /// options, file names against the language's source file, and the
    /// limits.
    pub(crate) fn into_job(
        self,
        registry: &Registry,
        bounds: &RequestBounds,
        client: Client,
    ) -> Result<Job, JobError> {
        self.check_sizes(bounds)?;
        self.check_values()?;
        let language = registry.resolve(&self.language, self.version.as_deref())?;
        check_compile_args(&language, &self.compile_args)?;
        let files = files(&language, self.main, self.extra)?;
        let limits = limits(&language, &self.run_limits, &self.compile_limits)?;
        let runs = self.tests.len().max(1);
        let single = RunInput {
            stdin: self.stdin,
            args: self.args,
            files: Vec::new(),
        };
        Ok(Job {
            language,
            files,
            compile_args: self.compile_args,
            limits,
            inputs: NonEmpty::from_vec(self.tests).unwrap_or_else(|| NonEmpty::one(single)),
            client,
            streams: self.streams,
            outputs: (!self.outputs.is_empty()).then_some(Outputs {
                patterns: self.outputs,
                max_files: bounds.max_output_files,
                // The request's bytes, shared by its runs: a batch holds
                // no more than one run.
                max_bytes: bounds.max_output_bytes / runs as u64,
            }),
        })
    }

    /// Checks the size bounds alone (a dialect checks these before its own
    /// rules, so that a request too large in any way is answered as such).
    pub(crate) fn check_sizes(&self, bounds: &RequestBounds) -> Result<(), JobError> {
        let b = bounds;
        let files: usize = self.extra.iter().map(|(_, c)| c.len()).sum();
        let rows = [
            (
                Field::Main,
                "is",
                self.main.len(),
                b.max_code_bytes,
                " bytes",
            ),
            (
                Field::Stdin,
                "is",
                self.stdin.len(),
                b.max_stdin_bytes,
                " bytes",
            ),
            (
                Field::Args,
                "has",
                self.args.len(),
                b.max_args,
                " arguments",
            ),
            (
                Field::CompileArgs,
                "has",
                self.compile_args.len(),
                b.max_args,
                " options",
            ),
            (Field::Files, "has", self.extra.len(), b.max_files, " files"),
            (Field::Tests, "has", self.tests.len(), b.max_tests, " tests"),
        ];
        for (field, what, got, limit, unit) in rows {
            at_most(field, what, got, limit, unit)?;
        }
        let bytes = b.max_arg_bytes;
        if let Some((i, a)) = self.args.iter().enumerate().find(|(_, a)| a.len() > bytes) {
            at_most(
                Field::Args,
                &format!("argument {i} is"),
                a.len(),
                bytes,
                " bytes",
            )?;
        }
        if let Some(a) = self.compile_args.iter().find(|a| a.len() > bytes) {
            at_most(
                Field::CompileArgs,
                "has an option of",
                a.len(),
                bytes,
                " bytes",
            )?;
        }
        for (i, test) in self.tests.iter().enumerate() {
            test_sizes(i, test, bounds)?;
        }
        output_sizes(&self.outputs, bounds)?;
        let (total, code) = (self.main.len() + files, b.max_code_bytes);
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
        for pattern in &self.outputs {
            check_file_name(pattern).map_err(|why| {
                invalid(
                    Field::Outputs,
                    format!("has a pattern {:?}, which {why}", clip(pattern)),
                )
            })?;
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

/// The size bounds of the `outputs` patterns: their count (that of
/// `files`) and their bytes together.
fn output_sizes(patterns: &[String], bounds: &RequestBounds) -> Result<(), JobError> {
    let (count, max) = (patterns.len(), bounds.max_files);
    at_most(Field::Outputs, "has", count, max, " patterns")?;
    let bytes = patterns.iter().map(String::len).sum();
    let what = "has patterns of";
    at_most(
        Field::Outputs,
        what,
        bytes,
        MAX_PATTERN_BYTES,
        " bytes together",
    )
}

/// The size bounds of test `i` of a batch: its stdin and its arguments.
fn test_sizes(i: usize, test: &RunInput, bounds: &RequestBounds) -> Result<(), JobError> {
    let (bytes, args) = (bounds.max_arg_bytes, bounds.max_args);
    let stdin = (test.stdin.len(), bounds.max_stdin_bytes);
    at_most(
        Field::Tests,
        &format!("test {i}'s stdin is"),
        stdin.0,
        stdin.1,
        " bytes",
    )?;
    at_most(
        Field::Tests,
        &format!("test {i} has"),
        test.args.len(),
        args,
        " arguments",
    )?;
    if let Some(a) = test.args.iter().find(|a| a.len() > bytes) {
        let what = format!("an argument of test {i} is");
        at_most(Field::Tests, &what, a.len(), bytes, " bytes")?;
    }
    Ok(())
}

/// Compiler options are for a language with a compile stage, none is one
/// that hands options on or loads code (whatever the language allows), and
/// each matches one of its `compiler_options` patterns.
fn check_compile_args(language: &Language, options: &[String]) -> Result<(), JobError> {
    if !options.is_empty() && language.compile.is_none() {
        return Err(invalid(
            Field::CompileArgs,
            format!(
                "cannot be given: language `{}` has no compile stage",
                language.name
            ),
        ));
    }
    if let Some((option, refused)) = options
        .iter()
        .find_map(|o| crate::language::always_refused(o).map(|r| (o, r)))
    {
        return Err(invalid(
            Field::CompileArgs,
            format!(
                "has `{}`, which is never allowed: {} (`{}`)",
                clip(option),
                refused.why,
                refused.flag
            ),
        ));
    }
    let patterns = &language.compiler_options;
    let Some(option) = options
        .iter()
        .find(|o| !patterns.iter().any(|p| p.allows(o)))
    else {
        return Ok(());
    };
    let allowed = match patterns.as_slice() {
        [] => "none is".to_string(),
        patterns => {
            let list: Vec<String> = patterns.iter().map(ToString::to_string).collect();
            format!("these are: {}", list.join(" "))
        }
    };
    Err(invalid(
        Field::CompileArgs,
        format!(
            "has `{}`, which language `{}` does not allow ({allowed})",
            clip(option),
            language.name
        ),
    ))
}

/// The job's files: the main source under the language's source file, and
/// the extra files, none of which may collide with it.
fn files(
    language: &Language,
    main: Vec<u8>,
    extra: Vec<(String, Vec<u8>)>,
) -> Result<Files, JobError> {
    let main = SourceFile {
        name: language.source_file.clone(),
        content: main,
    };
    let mut files = Vec::with_capacity(extra.len());
    for (name, content) in extra {
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
        files.push(SourceFile { name, content });
    }
    Ok(Files { main, extra: files })
}

/// The effective limits of each stage: the language's, lowered by what the
/// request asks (never raised).
fn limits(
    language: &Language,
    run: &LimitsOverride,
    compile: &LimitsOverride,
) -> Result<JobLimits, JobError> {
    let none = LimitsOverride::default();
    let raised = |stage| move |raised| JobError::LimitRaised { stage, raised };
    let run = language
        .limits
        .resolve(&none, run)
        .map_err(raised(Stage::Run))?;
    let compile = match &language.compile {
        None => None,
        Some(stage) => Some(
            stage
                .limits
                .resolve(&none, compile)
                .map_err(raised(Stage::Compile))?,
        ),
    };
    Ok(JobLimits { run, compile })
}

fn invalid(field: Field, message: String) -> JobError {
    JobError::Invalid { field, message }
}

/// The folders a relative path lies in: `a/b/c` gives `a` and `a/b`.
pub(crate) fn folders_of(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(at, _)| &name[..at])
}

/// The longest file name, in bytes (folders, `/`s and the file).
pub(crate) const MAX_NAME_BYTES: usize = 1024;
/// The longest component of a file name, in bytes (Linux's `NAME_MAX`).
pub(crate) const MAX_COMPONENT_BYTES: usize = 255;
/// The most components a file name may have: 15 folders and the file.
pub(crate) const MAX_COMPONENTS: usize = 16;

/// Why a file name is refused ([`check_file_name`]); each says what it
/// saw, after "a file named … which".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NameFault {
    #[error("is empty")]
    Empty,
    #[error("is {0} bytes long, more than the limit of {MAX_NAME_BYTES} bytes")]
    TooLong(usize),
    #[error("holds {}, a control character", code_point(*.0))]
    Control(char),
    #[error(
        "holds {}, which changes how the text around it is shown (a bidirectional control, or a line or paragraph separator)",
        code_point(*.0)
    )]
    Layout(char),
    #[error("holds a `\\`; folders are separated by `/`")]
    Backslash,
    #[error("is an absolute path; names are relative to the working directory")]
    Absolute,
    #[error("has {0} components, more than the limit of {MAX_COMPONENTS} (folders and the file)")]
    TooDeep(usize),
    #[error("has an empty component (a `//`, or a `/` at the end)")]
    EmptyComponent,
    #[error("has a `.` or `..` component")]
    Dots,
    #[error("has a component of {0} bytes, more than the limit of {MAX_COMPONENT_BYTES} bytes")]
    LongComponent(usize),
    #[error(
        "has a component starting with `{0}`, which a compiler reads as an option (`-`) or an argument file (`@`)"
    )]
    Leading(char),
}

/// `U+202E`: a character named by its code point, never shown.
fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// Whether `c` changes how the text around it is laid out: the
/// bidirectional embeddings, overrides and isolates (the "Trojan Source"
/// characters, CVE-2021-42574) and the line and paragraph separators.
fn changes_layout(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Whether `name` is a file name a request may give, as users have them:
/// any UTF-8 (spaces, quotes, `$`, `*`, `;`, letters of any script) but
/// what is dangerous or ambiguous. Refused: an empty name, one over
/// [`MAX_NAME_BYTES`], a control character (NUL, newline, tab, DEL, C1), a
/// bidirectional control or a line or paragraph separator (which make a
/// name read as another), a backslash (a folder separator to Windows), an
/// absolute path, more than [`MAX_COMPONENTS`] components, an empty, `.`
/// or `..` component, one over [`MAX_COMPONENT_BYTES`], and one starting
/// with `-` or `@` (an option, or an argument file, to gcc, javac or
/// rustc when a command's glob hands it over). Names are kept byte for
/// byte: not normalized, not case-folded, spaces at either end kept.
pub(crate) fn check_file_name(name: &str) -> Result<(), NameFault> {
    if name.is_empty() {
        return Err(NameFault::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameFault::TooLong(name.len()));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(NameFault::Control(c));
    }
    if let Some(c) = name.chars().find(|&c| changes_layout(c)) {
        return Err(NameFault::Layout(c));
    }
    if name.contains('\\') {
        return Err(NameFault::Backslash);
    }
    if name.starts_with('/') {
        return Err(NameFault::Absolute);
    }
    let parts = name.split('/').count();
    if parts > MAX_COMPONENTS {
        return Err(NameFault::TooDeep(parts));
    }
    for part in name.split('/') {
        match part {
            "" => return Err(NameFault::EmptyComponent),
            "." | ".." => return Err(NameFault::Dots),
            p if p.len() > MAX_COMPONENT_BYTES => return Err(NameFault::LongComponent(p.len())),
            p if p.starts_with(['-', '@']) => {
                return Err(NameFault::Leading(p.chars().next().expect("not empty")));
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
            max_output_files: 2,
            max_output_bytes: 10,
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

    fn client() -> Client {
        Arc::from("a client")
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
        r.into_job(&registry(), &bounds(), client()).unwrap_err()
    }

    #[test]
    fn a_good_request_becomes_a_job_with_the_languages_limits() {
        let job = JobRequest {
            args: vec!["x".into()],
            stdin: b"ab".to_vec(),
            extra: vec![("util.c".into(), b"1".to_vec())],
            ..request("gcc", "int")
        }
        .into_job(&registry(), &bounds(), client())
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
            .into_job(&registry(), &bounds(), client())
            .unwrap();
        assert_eq!(python.limits.compile, None);
    }

    #[test]
    fn a_single_run_is_one_input_and_a_batch_one_input_per_test_for_its_client() {
        let single = JobRequest {
            args: vec!["x".into()],
            stdin: b"ab".to_vec(),
            ..request("python", "1")
        }
        .into_job(&registry(), &bounds(), client())
        .unwrap();
        assert_eq!(&*single.client, "a client");
        let only = RunInput {
            stdin: b"ab".to_vec(),
            args: vec!["x".into()],
            files: Vec::new(),
        };
        assert_eq!(single.inputs, NonEmpty::one(only));
        let tests = vec![
            RunInput {
                stdin: b"1".to_vec(),
                args: Vec::new(),
                files: Vec::new(),
            },
            RunInput {
                stdin: b"2".to_vec(),
                args: vec!["y".into()],
                files: Vec::new(),
            },
        ];
        let batch = JobRequest {
            tests: tests.clone(),
            ..request("python", "1")
        }
        .into_job(&registry(), &bounds(), client())
        .unwrap();
        assert_eq!(batch.inputs.iter().cloned().collect::<Vec<_>>(), tests);
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
        .into_job(&registry(), &bounds(), client())
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
            .into_job(&registry(), &bounds(), client())
            .is_ok()
        );
    }

    proptest! {
        #[test]
        fn file_name_checks_keep_paths_inside_the_working_directory(name in ".{0,300}") {
            if check_file_name(&name).is_ok() {
                prop_assert!(!name.is_empty() && name.len() <= MAX_NAME_BYTES);
                prop_assert!(!name.starts_with('/'));
                prop_assert!(!name.split('/').any(|p| p == ".." || p == "." || p.is_empty()));
                prop_assert!(!name.split('/').any(|p| p.starts_with(['-', '@'])));
                prop_assert!(!name.chars().any(|c| c.is_control() || changes_layout(c) || c == '\\'));
            }
        }
    }

    const SHOWN: &str = "which changes how the text around it is shown (a bidirectional control, or a line or paragraph separator)";
    const OPTION: &str = "which a compiler reads as an option (`-`) or an argument file (`@`)";

    /// Names refused whatever their length: (name, fault, the fault's
    /// message, without the parts [`SHOWN`] and [`OPTION`] end with).
    const REFUSED: [(&str, NameFault, &str); 19] = [
        ("", NameFault::Empty, "is empty"),
        (
            "a\0b",
            NameFault::Control('\0'),
            "holds U+0000, a control character",
        ),
        (
            "x\ny",
            NameFault::Control('\n'),
            "holds U+000A, a control character",
        ),
        (
            "tab\there",
            NameFault::Control('\t'),
            "holds U+0009, a control character",
        ),
        (
            "del\u{7f}",
            NameFault::Control('\u{7f}'),
            "holds U+007F, a control character",
        ),
        (
            "c1\u{85}",
            NameFault::Control('\u{85}'),
            "holds U+0085, a control character",
        ),
        (
            "invoice\u{202E}fdp.exe",
            NameFault::Layout('\u{202E}'),
            "holds U+202E,",
        ),
        ("a\u{2066}b", NameFault::Layout('\u{2066}'), "holds U+2066,"),
        ("a\u{2028}b", NameFault::Layout('\u{2028}'), "holds U+2028,"),
        (
            "dir\\file.c",
            NameFault::Backslash,
            "holds a `\\`; folders are separated by `/`",
        ),
        (
            "/etc/passwd",
            NameFault::Absolute,
            "is an absolute path; names are relative to the working directory",
        ),
        (
            "a//b",
            NameFault::EmptyComponent,
            "has an empty component (a `//`, or a `/` at the end)",
        ),
        (
            "a/",
            NameFault::EmptyComponent,
            "has an empty component (a `//`, or a `/` at the end)",
        ),
        ("../x", NameFault::Dots, "has a `.` or `..` component"),
        ("a/../../x", NameFault::Dots, "has a `.` or `..` component"),
        ("./x", NameFault::Dots, "has a `.` or `..` component"),
        (
            "-rf.c",
            NameFault::Leading('-'),
            "has a component starting with `-`,",
        ),
        (
            "src/-o.c",
            NameFault::Leading('-'),
            "has a component starting with `-`,",
        ),
        (
            "@flags.c",
            NameFault::Leading('@'),
            "has a component starting with `@`,",
        ),
    ];

    #[test]
    fn file_names_are_taken_as_users_have_them() {
        let long = "x".repeat(MAX_COMPONENT_BYTES);
        let deep = ["a"; MAX_COMPONENTS].join("/");
        for good in [
            "util.py",
            "pkg/util.py",
            "Main.java",
            "x+y_z-1.c",
            "helper functions.c",
            "input data/l'été 2024.txt",
            "\"quoted\" $HOME; rm -rf * `id`.txt",
            " leading and trailing spaces ",
            "a/in the -middle-/b@c",
            ".hidden/.config",
            "データ/ファイル.txt",
            "Ελληνικά/файл.c",
            "مرحبا.txt",
            "می\u{200C}خواهم.txt",
            "née\u{0301}.txt",
            "emoji 🎉.md",
            "…",
            long.as_str(),
            deep.as_str(),
        ] {
            assert_eq!(check_file_name(good), Ok(()), "{good:?}");
        }
        assert_eq!(folders_of("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
    }

    #[test]
    fn what_is_dangerous_is_refused_each_with_its_message() {
        for (bad, fault, message) in REFUSED {
            assert_eq!(check_file_name(bad), Err(fault), "{bad:?}");
            let message = match fault {
                NameFault::Layout(_) => format!("{message} {SHOWN}"),
                NameFault::Leading(_) => format!("{message} {OPTION}"),
                _ => message.to_string(),
            };
            assert_eq!(fault.to_string(), message, "{bad:?}");
        }
        let long = "x".repeat(MAX_COMPONENT_BYTES);
        let too_long = format!("{long}/{long}/{long}/{long}/x");
        let too_deep = ["a"; MAX_COMPONENTS + 1].join("/");
        let component = "y".repeat(MAX_COMPONENT_BYTES + 1);
        for (bad, fault, message) in [
            (
                too_long,
                NameFault::TooLong(1025),
                "is 1025 bytes long, more than the limit of 1024 bytes",
            ),
            (
                too_deep,
                NameFault::TooDeep(17),
                "has 17 components, more than the limit of 16 (folders and the file)",
            ),
            (
                component,
                NameFault::LongComponent(256),
                "has a component of 256 bytes, more than the limit of 255 bytes",
            ),
        ] {
            assert_eq!(check_file_name(&bad), Err(fault), "{bad:?}");
            assert_eq!(fault.to_string(), message);
        }
    }

    #[test]
    fn a_refused_file_name_is_named_escaped_with_why() {
        let refused = |name: &str| match refusal(with_files(&[name])) {
            JobError::Invalid { field, message } => {
                assert_eq!(field, Field::Files);
                message
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused("evil\u{202E}c.exe"),
            "has a file named \"evil\\u{202e}c.exe\", which holds U+202E, which changes how the text around it is shown (a bidirectional control, or a line or paragraph separator)"
        );
        assert_eq!(
            refused("@opts"),
            "has a file named \"@opts\", which has a component starting with `@`, which a compiler reads as an option (`-`) or an argument file (`@`)"
        );
        assert!(
            JobRequest {
                extra: vec![("input data/l'été 2024.txt".into(), b"1".to_vec())],
                ..request("c", "x")
            }
            .into_job(&registry(), &bounds(), client())
            .is_ok()
        );
    }
}
