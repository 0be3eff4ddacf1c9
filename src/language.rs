//! The language registry: one `languages/*.toml` file per language, parsed
//! and validated at start-up, with python built in for when no folder exists.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

use crate::limits::{DefaultLimits, Limits, LimitsOverride};
use crate::validation::{FieldError, error, field_errors};

/// The python language file, built into the binary.
pub const BUILTIN_PYTHON: &str = include_str!("../languages/python.toml");

/// A language as its file describes it, before defaults are applied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LanguageFile {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    version: String,
    image: String,
    source_file: String,
    #[serde(default)]
    compile: Option<Vec<String>>,
    run: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    limits: LimitsOverride,
    #[serde(default)]
    compile_limits: Option<LimitsOverride>,
    #[serde(default)]
    runtime: Option<String>,
    #[serde(default)]
    pool_size: Option<usize>,
    #[serde(default)]
    warmup: Option<String>,
}

/// A language, validated and with every limit filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Validate)]
pub struct Language {
    /// What requests send as `language`.
    #[validate(custom(function = "language_name"))]
    pub name: String,
    /// Other names requests may send.
    #[validate(custom(function = "aliases"))]
    pub aliases: Vec<String>,
    /// The language version the image provides, as reported to clients.
    #[validate(length(min = 1, max = 64))]
    pub version: String,
    /// The Docker image runs start from.
    #[validate(custom(function = "image_name"))]
    pub image: String,
    /// Name of the file the request's `code` is written to.
    #[validate(custom(function = "plain_file_name"))]
    pub source_file: String,
    /// The command that compiles the files, if the language has a compile
    /// stage; it runs in its own sandbox before the run.
    #[validate(custom(function = "command"))]
    pub compile: Option<Vec<String>>,
    /// The command that runs the program; the request's `args` are appended.
    #[validate(custom(function = "command"))]
    pub run: Vec<String>,
    /// Environment of the program.
    #[validate(custom(function = "environment"))]
    pub env: BTreeMap<String, String>,
    /// Limits of a run.
    #[validate(nested)]
    pub limits: Limits,
    /// Limits of the compile stage (unused without `compile`). Its
    /// `scratch_mb` also sizes the working directory the run inherits.
    #[validate(nested)]
    pub compile_limits: Limits,
    /// OCI runtime to use instead of the engine's default (e.g. `runsc`).
    #[validate(custom(function = "runtime_name"))]
    pub runtime: Option<String>,
    /// Containers kept started ahead of demand; unset: the server's
    /// `pool_size`. Languages with a compile stage are not pooled.
    #[validate(range(max = 64))]
    pub pool_size: Option<usize>,
    /// A shell command a pooled container runs once, output discarded,
    /// before it waits for its run (to load the interpreter into the caches).
    #[validate(length(max = 1024))]
    pub warmup: Option<String>,
    /// Where the language came from: a file path, or `built-in`.
    #[serde(skip)]
    pub origin: String,
}

impl Language {
    /// Parses and validates one language file; limits it leaves out come
    /// from `defaults`.
    pub fn parse(
        origin: &str,
        text: &str,
        defaults: &DefaultLimits,
    ) -> Result<Language, LanguageError> {
        let file: LanguageFile = toml::from_str(text).map_err(|e| LanguageError::Parse {
            file: origin.to_string(),
            line: e.span().map(|s| 1 + text[..s.start].matches('\n').count()),
            message: e.message().trim().to_string(),
        })?;
        if file.compile.is_none() && file.compile_limits.is_some() {
            return Err(LanguageError::Fields {
                file: origin.to_string(),
                errors: vec![FieldError {
                    path: "compile_limits".to_string(),
                    code: "compile".to_string(),
                    message: "is given, but there is no `compile` command".to_string(),
                }],
            });
        }
        let language = Language {
            name: file.name,
            aliases: file.aliases,
            version: file.version,
            image: file.image,
            source_file: file.source_file,
            compile: file.compile,
            run: file.run,
            env: file.env,
            limits: defaults.run.overridden_by(&file.limits),
            compile_limits: defaults
                .compile
                .overridden_by(&file.compile_limits.unwrap_or_default()),
            runtime: file.runtime,
            pool_size: file.pool_size,
            warmup: file.warmup,
            origin: origin.to_string(),
        };
        language
            .validate()
            .map_err(|errors| LanguageError::Fields {
                file: origin.to_string(),
                errors: field_errors(&errors),
            })?;
        Ok(language)
    }

    /// The name and every alias.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// Why a language file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LanguageError {
    #[error("{file}: cannot be read: {message}")]
    Read { file: String, message: String },
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{file}: {}", describe_fields(errors))]
    Fields {
        file: String,
        errors: Vec<FieldError>,
    },
    #[error("{file}: the name `{name}` is already used by {other}")]
    Duplicate {
        file: String,
        name: String,
        other: String,
    },
    #[error("{dir}: holds no *.toml language file")]
    NoFiles { dir: String },
    #[error("{dir}: cannot be listed: {message}")]
    Dir { dir: String, message: String },
}

fn describe_fields(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("field `{}` {}", e.path, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every problem found while loading a languages folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryError(pub Vec<LanguageError>);

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        write!(f, "invalid language files:\n  {}", lines.join("\n  "))
    }
}

impl std::error::Error for RegistryError {}

/// The languages served, looked up by name or alias.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    languages: Vec<Arc<Language>>,
    index: HashMap<String, usize>,
}

impl Registry {
    /// Loads every `*.toml` file directly in `dir` (sub-folders are not
    /// read). When `dir` does not exist, the built-in python is served.
    pub fn load(dir: &Path, defaults: &DefaultLimits) -> Result<Registry, RegistryError> {
        if !dir.exists() {
            return Registry::builtin(defaults);
        }
        let files = read_language_files(dir).map_err(|e| RegistryError(vec![e]))?;
        if files.is_empty() {
            return Err(RegistryError(vec![LanguageError::NoFiles {
                dir: dir.display().to_string(),
            }]));
        }
        let mut problems = Vec::new();
        let mut languages = Vec::new();
        for (path, text) in files {
            match text
                .and_then(|text| Language::parse(&path.display().to_string(), &text, defaults))
            {
                Ok(language) => languages.push(language),
                Err(e) => problems.push(e),
            }
        }
        match Registry::from_languages(languages) {
            Ok(registry) if problems.is_empty() => Ok(registry),
            Ok(_) => Err(RegistryError(problems)),
            Err(RegistryError(more)) => {
                problems.extend(more);
                Err(RegistryError(problems))
            }
        }
    }

    /// The registry of the built-in python language alone.
    pub fn builtin(defaults: &DefaultLimits) -> Result<Registry, RegistryError> {
        let python = Language::parse("built-in", BUILTIN_PYTHON, defaults)
            .map_err(|e| RegistryError(vec![e]))?;
        Registry::from_languages(vec![python])
    }

    /// Builds a registry, refusing a name or alias used twice.
    pub fn from_languages(mut languages: Vec<Language>) -> Result<Registry, RegistryError> {
        languages.sort_by(|a, b| a.name.cmp(&b.name));
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut problems = Vec::new();
        for (i, language) in languages.iter().enumerate() {
            for name in language.names() {
                match index.get(name) {
                    Some(&j) => problems.push(LanguageError::Duplicate {
                        file: language.origin.clone(),
                        name: name.to_string(),
                        other: if i == j {
                            "the same file".to_string()
                        } else {
                            languages[j].origin.clone()
                        },
                    }),
                    None => {
                        index.insert(name.to_string(), i);
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(RegistryError(problems));
        }
        Ok(Registry {
            languages: languages.into_iter().map(Arc::new).collect(),
            index,
        })
    }

    /// The language a request names, by name or alias.
    pub fn get(&self, name: &str) -> Option<&Arc<Language>> {
        self.index.get(name).map(|&i| &self.languages[i])
    }

    /// Every language, sorted by name.
    pub fn languages(&self) -> &[Arc<Language>] {
        &self.languages
    }

    /// The languages' names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.languages.iter().map(|l| l.name.clone()).collect()
    }
}

/// A language file's path and its text, or why it could not be read.
pub type FileText = (PathBuf, Result<String, LanguageError>);

/// The `*.toml` files directly inside `dir`, sorted, with their text (or
/// why it could not be read).
pub fn read_language_files(dir: &Path) -> Result<Vec<FileText>, LanguageError> {
    Ok(language_files(dir)?
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| LanguageError::Read {
                file: path.display().to_string(),
                message: e.to_string(),
            });
            (path, text)
        })
        .collect())
}

/// The `*.toml` files directly inside `dir`, sorted.
fn language_files(dir: &Path) -> Result<Vec<PathBuf>, LanguageError> {
    let listing_error = |e: std::io::Error| LanguageError::Dir {
        dir: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(listing_error)? {
        let path = entry.map_err(listing_error)?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
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

    const GOOD: &str = r#"
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
        Language::parse("lua.toml", text, &DefaultLimits::default())
    }

    #[test]
    fn the_builtin_python_parses_and_keeps_its_own_limits() {
        let registry = Registry::builtin(&DefaultLimits::default()).expect("built-in python");
        let python = registry.get("python").expect("python");
        assert_eq!(python.image, "python:3.13-slim");
        assert!(python.limits.memory_mb >= 128);
        assert!(registry.get("py").is_some());
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
        let lua = Language::parse("lua.toml", GOOD, &defaults).expect("parses");
        assert_eq!(lua.limits.memory_mb, 64);
        assert_eq!(lua.limits.pids, 77);
    }

    #[test]
    fn an_unknown_key_names_the_file_the_line_and_the_key() {
        let err = parse(&format!("{GOOD}\nbogus = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("lua.toml:"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn an_unknown_limit_names_the_key() {
        let err = parse(&format!("{GOOD}\nmemroy_mb = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("memroy_mb"), "{err}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse(&GOOD.replace("image = \"lua:5.4\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lua.toml"), "{err}");
        assert!(err.contains("`image`"), "{err}");
    }

    #[test]
    fn an_out_of_range_limit_names_the_field_and_the_range() {
        let err = parse(&GOOD.replace("memory_mb = 64", "memory_mb = 2"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `limits.memory_mb`"), "{err}");
        assert!(err.contains("between 16 and 65536"), "{err}");
    }

    #[test]
    fn a_source_file_with_a_folder_is_refused() {
        let err = parse(&GOOD.replace("\"main.lua\"]", "\"../main.lua\"]").replace(
            "source_file = \"main.lua\"",
            "source_file = \"../main.lua\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("field `source_file`"), "{err}");
    }

    #[test]
    fn a_compile_stage_gets_its_own_limits_with_defaults() {
        let text = GOOD.replace(
            "run = [\"lua\", \"main.lua\"]",
            "compile = [\"luac\", \"main.lua\"]\nrun = [\"lua\", \"luac.out\"]\n[compile_limits]\nmemory_mb = 300",
        );
        let lua = parse(&text).expect("parses");
        assert_eq!(lua.compile.as_deref().unwrap()[0], "luac");
        assert_eq!(lua.compile_limits.memory_mb, 300);
        assert_eq!(
            lua.compile_limits.wall_time_ms,
            Limits::compile_default().wall_time_ms
        );
        assert_eq!(lua.limits.memory_mb, 64);
    }

    #[test]
    fn compile_limits_without_a_compile_command_are_refused() {
        let err = parse(&format!("{GOOD}\n[compile_limits]\nmemory_mb = 300\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `compile_limits`"), "{err}");
    }

    #[test]
    fn every_catalogue_file_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("languages/available");
        let files = read_language_files(&dir).unwrap();
        assert!(files.len() >= 8);
        let languages: Vec<Language> = files
            .into_iter()
            .map(|(path, text)| {
                Language::parse(
                    &path.display().to_string(),
                    &text.unwrap(),
                    &DefaultLimits::default(),
                )
                .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let registry = Registry::from_languages(languages).expect("no name used twice");
        for name in [
            "javascript",
            "ruby",
            "bash",
            "c",
            "cpp",
            "go",
            "java",
            "rust",
        ] {
            assert!(registry.get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn a_name_used_twice_names_both_files() {
        let a = Language::parse("a.toml", GOOD, &DefaultLimits::default()).unwrap();
        let mut b = Language::parse("b.toml", GOOD, &DefaultLimits::default()).unwrap();
        b.name = "other".to_string();
        let err = Registry::from_languages(vec![a, b])
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.toml"), "{err}");
        assert!(err.contains("a.toml"), "{err}");
        assert!(err.contains("`lua5`"), "{err}");
    }

    #[test]
    fn a_folder_with_no_language_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Registry::load(dir.path(), &DefaultLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no *.toml language file"), "{err}");
    }

    #[test]
    fn a_missing_folder_serves_the_builtin_python() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::load(&dir.path().join("nope"), &DefaultLimits::default()).unwrap();
        assert_eq!(registry.names(), vec!["python".to_string()]);
    }

    #[test]
    fn sub_folders_and_other_files_are_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lua.toml"), GOOD).unwrap();
        std::fs::write(dir.path().join("README.md"), "not a language").unwrap();
        std::fs::create_dir(dir.path().join("available")).unwrap();
        std::fs::write(dir.path().join("available/broken.toml"), "x").unwrap();
        let registry = Registry::load(dir.path(), &DefaultLimits::default()).unwrap();
        assert_eq!(registry.names(), vec!["lua".to_string()]);
    }

    #[test]
    fn every_bad_file_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "name = 1").unwrap();
        std::fs::write(dir.path().join("b.toml"), "[[[").unwrap();
        let err = Registry::load(dir.path(), &DefaultLimits::default()).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }
}
