//! A language file: one `languages/*.toml`, parsed and validated into a
//! [`Language`] with every limit decided ([`Language::parse`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use validator::{Validate, ValidationError};

use super::options::OptionPattern;
use crate::limits::{DefaultLimits, Limits, LimitsOverride};
use crate::validation::{FieldError, error, field_errors};

/// The python language file, built into the binary.
pub(crate) const BUILTIN_PYTHON: &str = include_str!("../../languages/python.toml");

/// A language file as written, before defaults are applied.
#[derive(Debug, Clone, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct LanguageFile {
    #[validate(custom(function = "language_name"))]
    name: String,
    #[serde(default)]
    #[validate(custom(function = "aliases"))]
    aliases: Vec<String>,
    #[validate(custom(function = "version"))]
    version: String,
    #[validate(custom(function = "image_name"))]
    image: String,
    #[validate(custom(function = "plain_file_name"))]
    source_file: String,
    #[serde(default)]
    #[validate(custom(function = "command"))]
    compile: Option<Vec<String>>,
    #[validate(custom(function = "command"))]
    run: Vec<String>,
    #[serde(default)]
    #[validate(custom(function = "environment"))]
    env: BTreeMap<String, String>,
    #[serde(default)]
    limits: LimitsOverride,
    #[serde(default)]
    compile_limits: Option<LimitsOverride>,
    #[serde(default)]
    #[validate(custom(function = "runtime_name"))]
    runtime: Option<String>,
    #[serde(default)]
    #[validate(range(max = 64))]
    pool_size: Option<usize>,
    #[serde(default)]
    #[validate(length(max = 1024))]
    warmup: Option<String>,
    #[serde(default)]
    seccomp: Option<String>,
    #[serde(default)]
    #[validate(range(min = 1, max = 1_000_000))]
    judge0_id: Option<i64>,
    #[serde(default)]
    #[validate(length(min = 1, max = 128))]
    judge0_name: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "option_patterns"))]
    compiler_options: Vec<String>,
    #[serde(default)]
    prestart: Option<Prestart>,
}

/// How a pooled sandbox of the language pre-starts its interpreter: the
/// hook (on the tools volume, `tools/prestart/`) that holds the run command
/// after the interpreter's start-up until the program's files are there
/// (docs/performance.md: "Pre-started interpreters").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Prestart {
    /// `sitecustomize` on PYTHONPATH, for `python3 main.py`.
    Python,
    /// A `-r` preload, for `node main.js`.
    Node,
}

impl Prestart {
    /// The hook's name, as the supervisor takes it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Prestart::Python => "python",
            Prestart::Node => "node",
        }
    }
}

/// A language, validated, with every limit decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Language {
    /// What requests send as `language`.
    pub(crate) name: String,
    /// Other names requests may send.
    pub(crate) aliases: Vec<String>,
    /// The version the image provides, as the file writes it (`3.13`).
    pub(crate) version: String,
    /// That version as a semantic version (`3.13.0`), for ranges and order.
    pub(crate) semver: nodejs_semver::Version,
    /// The Docker image runs start from.
    pub(crate) image: String,
    /// The file the request's main source (`code`) is written to.
    pub(crate) source_file: String,
    /// The compile stage, if the language has one: it runs in its own
    /// sandbox, under its own limits, before the run.
    pub(crate) compile: Option<Compile>,
    /// The command that runs the program; the request's `args` are appended.
    pub(crate) run: Vec<String>,
    /// Environment of both stages.
    pub(crate) env: BTreeMap<String, String>,
    /// Limits of a run: the server's `limits`, then the file's `[limits]`.
    pub(crate) limits: Limits,
    /// OCI runtime to use instead of the engine's default (e.g. `runsc`).
    pub(crate) runtime: Option<String>,
    /// The least its pool keeps started ahead of demand (for a compiled
    /// language, compile-and-run pairs); unset: the server's `pool.size`.
    pub(crate) pool_size: Option<usize>,
    /// A shell command a pooled sandbox runs once, output discarded, before
    /// it waits for its run (to load the interpreter, or for a compiled
    /// language the compiler, into the caches; a pooled pair runs it in its
    /// compile sandbox).
    pub(crate) warmup: Option<String>,
    /// A seccomp profile of its own, instead of the service's.
    pub(crate) seccomp: Option<SeccompProfile>,
    /// Judge0's id for this language (`71` for Python), under which the
    /// Judge0 API serves it; `None`: not served there.
    pub(crate) judge0_id: Option<i64>,
    /// Its name in Judge0's `Name (version)` form (`Python (3.13)`);
    /// default: the name and version (`python (3.13)`).
    pub(crate) judge0_name: String,
    /// The compiler options a request may add (Judge0's
    /// `compiler_options`), as patterns: `-O2` allows exactly that word,
    /// `-std=*` `-std=` followed by flag characters (see
    /// [`OptionPattern`]); the options of [`super::options::always_refused`]
    /// never. Each option the request gives is one argument appended to the
    /// compile command (no shell reads it); empty: no option is allowed.
    pub(crate) compiler_options: Vec<OptionPattern>,
    /// Whether (and how) its pooled sandboxes pre-start the interpreter.
    pub(crate) prestart: Option<Prestart>,
    /// Where the language came from.
    pub(crate) origin: Origin,
}

/// A seccomp profile a language file names (`seccomp = "file.json"`,
/// relative to the file's folder), read when the file is loaded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeccompProfile {
    pub(crate) path: PathBuf,
    /// The profile, compacted.
    pub(crate) json: String,
}

impl SeccompProfile {
    /// Reads and checks the profile `name` given in the file of `origin`:
    /// not `unconfined`, JSON, and an allow list (its default action
    /// refuses).
    fn load(name: &str, origin: &Origin) -> Result<SeccompProfile, String> {
        if name.eq_ignore_ascii_case("unconfined") {
            return Err(
                "may not be `unconfined`: every sandbox runs under a seccomp profile".into(),
            );
        }
        let dir = match origin {
            Origin::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Origin::BuiltIn => PathBuf::new(),
        };
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("names {}, which cannot be read: {e}", path.display()))?;
        let profile: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("names {}, which is not JSON: {e}", path.display()))?;
        match profile["defaultAction"].as_str() {
            Some(
                "SCMP_ACT_ERRNO"
                | "SCMP_ACT_KILL"
                | "SCMP_ACT_KILL_PROCESS"
                | "SCMP_ACT_KILL_THREAD"
                | "SCMP_ACT_TRAP",
            ) => {}
            other => {
                return Err(format!(
                    "names {}, whose defaultAction is {other:?}: a profile must refuse what it does not allow",
                    path.display()
                ));
            }
        }
        Ok(SeccompProfile {
            path,
            json: profile.to_string(),
        })
    }
}

/// A compile stage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compile {
    /// The command that compiles the files in the working directory.
    pub(crate) command: Vec<String>,
    /// Its limits: the server's `compile_limits`, then the file's
    /// `[compile_limits]`. Its `scratch_mb` also sizes the working
    /// directory the run inherits.
    pub(crate) limits: Limits,
}

/// Where a language came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Origin {
    /// A file in the languages folder.
    File(PathBuf),
    /// The python built into the binary.
    BuiltIn,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::BuiltIn => f.write_str("the built-in python"),
        }
    }
}

impl Language {
    /// Parses and validates one language file; limits it leaves out come
    /// from `defaults`. Errors name the file, the line or the field, and
    /// why.
    pub(crate) fn parse(
        origin: Origin,
        text: &str,
        defaults: &DefaultLimits,
    ) -> Result<Language, LanguageError> {
        let file: LanguageFile = toml::from_str(text).map_err(|e| LanguageError::Parse {
            file: origin.clone(),
            line: e.span().map(|s| 1 + text[..s.start].matches('\n').count()),
            message: e.message().trim().to_string(),
        })?;
        let mut errors = match file.validate() {
            Ok(()) => Vec::new(),
            Err(e) => field_errors(&e),
        };
        let limits = resolved(&defaults.run, &file.limits, "limits", &mut errors);
        let compile = compile_stage(&file, defaults, &mut errors);
        let seccomp = match file
            .seccomp
            .as_deref()
            .map(|n| SeccompProfile::load(n, &origin))
        {
            None => None,
            Some(Ok(profile)) => Some(profile),
            Some(Err(message)) => {
                errors.push(FieldError::new("seccomp", "seccomp", message));
                None
            }
        };
        if file.prestart.is_some() && compile.is_some() {
            errors.push(FieldError::new(
                "prestart",
                "compile",
                "is for interpreted languages, and this one has a `compile` command",
            ));
        }
        if !file.compiler_options.is_empty() && compile.is_none() {
            errors.push(FieldError::new(
                "compiler_options",
                "compile",
                "is given, but there is no `compile` command",
            ));
        }
        if !errors.is_empty() {
            return Err(LanguageError::Fields {
                file: origin,
                errors,
            });
        }
        Ok(Language {
            seccomp,
            judge0_name: file
                .judge0_name
                .unwrap_or_else(|| format!("{} ({})", file.name, file.version)),
            judge0_id: file.judge0_id,
            compiler_options: (file.compiler_options.iter())
                .map(|p| OptionPattern::parse(p).expect("validated"))
                .collect(),
            prestart: file.prestart,
            semver: lenient_semver(&file.version).expect("validated"),
            name: file.name,
            aliases: file.aliases,
            version: file.version,
            image: file.image,
            source_file: file.source_file,
            compile,
            run: file.run,
            env: file.env,
            limits,
            runtime: file.runtime,
            pool_size: file.pool_size,
            warmup: file.warmup,
            origin,
        })
    }

    /// The name and every alias.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// `name-version`, as logs and errors name one language version.
    pub(crate) fn label(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// The file's compile stage, its limits resolved against `defaults`; a
/// `compile_limits` table without a `compile` command is an error.
fn compile_stage(
    file: &LanguageFile,
    defaults: &DefaultLimits,
    errors: &mut Vec<FieldError>,
) -> Option<Compile> {
    let none = LimitsOverride::default();
    match (&file.compile, &file.compile_limits) {
        (Some(command), compile_limits) => Some(Compile {
            command: command.clone(),
            limits: resolved(
                &defaults.compile,
                compile_limits.as_ref().unwrap_or(&none),
                "compile_limits",
                errors,
            ),
        }),
        (None, Some(_)) => {
            errors.push(FieldError::new(
                "compile_limits",
                "compile",
                "is given, but there is no `compile` command",
            ));
            None
        }
        (None, None) => None,
    }
}

/// `defaults` resolved with a file's `[limits]`, checked against every
/// limit's range; problems go to `errors`, named under `prefix`.
fn resolved(
    defaults: &Limits,
    file: &LimitsOverride,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Limits {
    let limits = defaults
        .resolve(file, &LimitsOverride::default())
        .expect("nothing is lowered");
    if let Err(e) = limits.validate() {
        errors.extend(field_errors(&e).into_iter().map(|mut e| {
            e.path = format!("{prefix}.{}", e.path);
            e
        }));
    }
    limits
}

/// A version as a semantic version, missing parts taken as 0: `3.13` is
/// `3.13.0`, `21` is `21.0.0`.
pub(crate) fn lenient_semver(text: &str) -> Option<nodejs_semver::Version> {
    let parts = text.split('.').count();
    let padded = match parts {
        1 => format!("{text}.0.0"),
        2 => format!("{text}.0"),
        _ => text.to_string(),
    };
    nodejs_semver::Version::parse(&padded).ok()
}

/// Why a language file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum LanguageError {
    #[error("{file}: cannot be read: {message}")]
    Read { file: Origin, message: String },
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        file: Origin,
        line: Option<usize>,
        message: String,
    },
    #[error("{file}: {}", describe_fields(errors))]
    Fields {
        file: Origin,
        errors: Vec<FieldError>,
    },
    #[error("{file}: {what} is already used by {other}")]
    Duplicate {
        file: Origin,
        /// "the name `x`", "version 3.13 of `python`".
        what: String,
        other: Origin,
    },
    #[error("{dir}: holds no *.toml language file")]
    NoFiles { dir: PathBuf },
    #[error("{dir}: cannot be listed: {message}")]
    Dir { dir: PathBuf, message: String },
}

fn describe_fields(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("field `{}` {}", e.path, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 32
        && value.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+#._-".contains(&b))
}

fn language_name(value: &str) -> Result<(), ValidationError> {
    if is_name(value) {
        Ok(())
    } else {
        Err(error(
            "name",
            format!(
                "must be 1 to 32 characters, starting with a-z, of a-z, 0-9 and `+#._-` (got {value:?})"
            ),
        ))
    }
}

fn aliases(values: &[String]) -> Result<(), ValidationError> {
    match values.iter().find(|v| !is_name(v)) {
        None => Ok(()),
        Some(bad) => Err(error(
            "name",
            format!(
                "every alias must be 1 to 32 characters, starting with a-z, of a-z, 0-9 and `+#._-` (got {bad:?})"
            ),
        )),
    }
}

fn version(value: &str) -> Result<(), ValidationError> {
    if value.len() <= 64 && lenient_semver(value).is_some() {
        Ok(())
    } else {
        Err(error(
            "version",
            format!(
                "must be a version such as `3.13`, `21` or `1.85.1` (a semantic version, missing parts taken as 0; got {value:?})"
            ),
        ))
    }
}

fn image_name(value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(error(
            "image",
            format!("must be a Docker image reference such as `python:3.13-slim` (got {value:?})"),
        ))
    }
}

/// A file name with no folder part, not hidden, of safe characters.
fn plain_file_name(value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(error(
            "file_name",
            format!("must be a plain file name such as `main.py`, with no folder (got {value:?})"),
        ))
    }
}

fn command(argv: &[String]) -> Result<(), ValidationError> {
    if argv.is_empty() || argv[0].is_empty() {
        return Err(error("command", "must name a program to run"));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(error("command", "must not contain NUL bytes"));
    }
    Ok(())
}

fn environment(env: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    for (key, value) in env {
        let key_ok = !key.is_empty()
            && !key.as_bytes()[0].is_ascii_digit()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !key_ok {
            return Err(error(
                "env",
                format!("{key:?} is not a valid variable name (letters, digits and `_`)"),
            ));
        }
        if value.contains('\0') {
            return Err(error(
                "env",
                format!("the value of {key} contains a NUL byte"),
            ));
        }
    }
    Ok(())
}

/// Compiler option patterns ([`OptionPattern::parse`]).
fn option_patterns(values: &[String]) -> Result<(), ValidationError> {
    match values
        .iter()
        .map(|v| OptionPattern::parse(v))
        .find_map(Result::err)
    {
        Some(message) => Err(error("compiler_options", message)),
        None => Ok(()),
    }
}

fn runtime_name(value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(error(
            "runtime",
            format!("must name an OCI runtime such as `runsc` (got {value:?})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const LUA: &str = r#"
name = "lua"
aliases = ["lua5"]
version = "5.4"
image = "lua:5.4"
source_file = "main.lua"
run = ["lua", "main.lua"]
[limits]
memory_mb = 64
"#;

    fn parse(text: &str) -> Result<Language, LanguageError> {
        Language::parse(
            Origin::File("lua.toml".into()),
            text,
            &DefaultLimits::default(),
        )
    }

    #[test]
    fn the_builtin_python_takes_its_limits_from_the_server_defaults() {
        let defaults = DefaultLimits {
            run: Limits {
                memory_mb: 300,
                wall_time_ms: 4000,
                pids: 40,
                ..Limits::default()
            },
            ..DefaultLimits::default()
        };
        let python = Language::parse(Origin::BuiltIn, BUILTIN_PYTHON, &defaults).unwrap();
        assert_eq!(python.image, "python:3.13-slim");
        assert_eq!(python.limits, defaults.run);
        assert!(python.names().any(|n| n == "py"));
    }

    #[test]
    fn limits_a_file_leaves_out_come_from_the_defaults() {
        let defaults = DefaultLimits {
            run: Limits {
                pids: 77,
                ..Limits::default()
            },
            ..DefaultLimits::default()
        };
        let lua = Language::parse(Origin::File("lua.toml".into()), LUA, &defaults).unwrap();
        assert_eq!(lua.limits.memory_mb, 64);
        assert_eq!(lua.limits.pids, 77);
        assert_eq!(lua.semver, (5, 4, 0).into());
    }

    #[test]
    fn an_unknown_key_names_the_file_the_line_and_the_key() {
        let err = parse(&format!("{LUA}\nbogus = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("lua.toml:"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn an_unknown_limit_names_the_key() {
        let err = parse(&format!("{LUA}\nmemroy_mb = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("memroy_mb"), "{err}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse(&LUA.replace("image = \"lua:5.4\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lua.toml"), "{err}");
        assert!(err.contains("`image`"), "{err}");
    }

    #[test]
    fn an_out_of_range_limit_names_the_field_and_the_range() {
        let err = parse(&LUA.replace("memory_mb = 64", "memory_mb = 2"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `limits.memory_mb`"), "{err}");
        assert!(err.contains("between 16 and 65536"), "{err}");
    }

    #[test]
    fn a_bad_version_and_a_source_file_with_a_folder_are_refused() {
        let err = parse(&LUA.replace("\"5.4\"", "\"five\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `version`"), "{err}");
        let err = parse(&LUA.replace(
            "source_file = \"main.lua\"",
            "source_file = \"../main.lua\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("field `source_file`"), "{err}");
    }

    #[test]
    fn a_compile_stage_gets_its_own_limits_with_defaults() {
        let text = LUA.replace(
            "run = [\"lua\", \"main.lua\"]",
            "compile = [\"luac\", \"main.lua\"]\nrun = [\"lua\", \"luac.out\"]\n[compile_limits]\nmemory_mb = 300",
        );
        let lua = parse(&text).unwrap();
        let compile = lua.compile.unwrap();
        assert_eq!(compile.command[0], "luac");
        assert_eq!(compile.limits.memory_mb, 300);
        assert_eq!(
            compile.limits.wall_time_ms,
            Limits::compile_default().wall_time_ms
        );
        assert_eq!(lua.limits.memory_mb, 64);
        let err = parse(&text.replace("memory_mb = 300", "memory_mb = 3"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `compile_limits.memory_mb`"), "{err}");
    }

    #[test]
    fn compile_limits_without_a_compile_command_are_refused() {
        let err = parse(&format!("{LUA}\n[compile_limits]\nmemory_mb = 300\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `compile_limits`"), "{err}");
    }

    #[test]
    fn a_seccomp_profile_is_read_beside_the_file_and_unconfined_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = Origin::File(dir.path().join("lua.toml"));
        let with = |name: &str| {
            format!("{LUA}seccomp = {name:?}\n").replace("[limits]\nmemory_mb = 64\n", "")
                + "[limits]\nmemory_mb = 64\n"
        };
        let parse = |text: &str| Language::parse(file.clone(), text, &DefaultLimits::default());
        std::fs::write(
            dir.path().join("jvm.json"),
            r#"{ "defaultAction": "SCMP_ACT_ERRNO", "syscalls": [] }"#,
        )
        .unwrap();
        let lua = parse(&with("jvm.json")).unwrap();
        let profile = lua.seccomp.unwrap();
        assert_eq!(profile.path, dir.path().join("jvm.json"));
        assert_eq!(
            profile.json,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}"#
        );
        for (name, why) in [
            ("unconfined", "may not be `unconfined`"),
            ("missing.json", "cannot be read"),
        ] {
            let err = parse(&with(name)).unwrap_err().to_string();
            assert!(
                err.contains("field `seccomp`") && err.contains(why),
                "{err}"
            );
        }
        std::fs::write(
            dir.path().join("open.json"),
            r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#,
        )
        .unwrap();
        let err = parse(&with("open.json")).unwrap_err().to_string();
        assert!(err.contains("must refuse what it does not allow"), "{err}");
    }

    #[test]
    fn versions_are_read_leniently() {
        assert_eq!(lenient_semver("3.13"), Some((3, 13, 0).into()));
        assert_eq!(lenient_semver("21"), Some((21, 0, 0).into()));
        assert_eq!(lenient_semver("1.85.1"), Some((1, 85, 1).into()));
        assert_eq!(lenient_semver("x"), None);
        assert_eq!(lenient_semver(""), None);
    }
}
