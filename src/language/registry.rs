//! The languages served: every version of every language, looked up by
//! name or alias and a version range.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::file::{BUILTIN_PYTHON, Language, LanguageError, Origin};
use crate::limits::DefaultLimits;

/// The languages served. Several versions of one name may be served side
/// by side; a name or alias belongs to one language name only.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    /// Sorted by name, then newest version first.
    languages: Vec<Arc<Language>>,
}

/// Every problem found while loading a languages folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryError(pub(crate) Vec<LanguageError>);

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        write!(f, "invalid language files:\n  {}", lines.join("\n  "))
    }
}

impl std::error::Error for RegistryError {}

/// Why a lookup found no language.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Lookup {
    /// No language has that name or alias.
    #[error("unknown language `{name}`")]
    UnknownLanguage { name: String },
    /// The language has no version in that range.
    #[error("language `{name}` has no version matching `{range}`; its versions are: {}", available.join(", "))]
    UnknownVersion {
        name: String,
        range: String,
        available: Vec<String>,
    },
    /// The range does not parse.
    #[error("`{range}` is not a version range: {reason}")]
    BadRange { range: String, reason: String },
}

impl Registry {
    /// Loads every `*.toml` file directly in `dir` (sub-folders are not
    /// read), refusing the whole folder if any file is bad. When `dir` does
    /// not exist, the built-in python is served.
    pub(crate) fn load(dir: &Path, defaults: &DefaultLimits) -> Result<Registry, RegistryError> {
        if !dir.exists() {
            return Registry::builtin(defaults);
        }
        let files = read_language_files(dir).map_err(|e| RegistryError(vec![e]))?;
        if files.is_empty() {
            return Err(RegistryError(vec![LanguageError::NoFiles {
                dir: dir.to_path_buf(),
            }]));
        }
        let mut problems = Vec::new();
        let mut languages = Vec::new();
        for (path, text) in files {
            match text.and_then(|text| Language::parse(Origin::File(path), &text, defaults)) {
                Ok(language) => languages.push(Arc::new(language)),
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
    pub(crate) fn builtin(defaults: &DefaultLimits) -> Result<Registry, RegistryError> {
        let python = Language::parse(Origin::BuiltIn, BUILTIN_PYTHON, defaults)
            .map_err(|e| RegistryError(vec![e]))?;
        Registry::from_languages(vec![Arc::new(python)])
    }

    /// Builds a registry, refusing a name and version given twice, and a
    /// name or alias shared by two language names.
    pub(crate) fn from_languages(
        mut languages: Vec<Arc<Language>>,
    ) -> Result<Registry, RegistryError> {
        languages.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| b.semver.cmp(&a.semver))
                .then_with(|| a.origin.cmp(&b.origin))
        });
        let mut problems = Vec::new();
        let mut owners: HashMap<&str, &Language> = HashMap::new();
        let mut judge0_ids: HashMap<i64, &Language> = HashMap::new();
        for (i, language) in languages.iter().enumerate() {
            if let Some(other) = languages[..i]
                .iter()
                .find(|o| o.name == language.name && o.semver == language.semver)
            {
                problems.push(LanguageError::Duplicate {
                    file: language.origin.clone(),
                    what: format!("version {} of `{}`", language.version, language.name),
                    other: other.origin.clone(),
                });
                continue;
            }
            if let Some(id) = language.judge0_id {
                match judge0_ids.get(&id) {
                    Some(owner) => problems.push(LanguageError::Duplicate {
                        file: language.origin.clone(),
                        what: format!("the Judge0 id {id}"),
                        other: owner.origin.clone(),
                    }),
                    None => {
                        judge0_ids.insert(id, language);
                    }
                }
            }
            for name in language.names() {
                match owners.get(name) {
                    Some(owner) if owner.name != language.name => {
                        problems.push(LanguageError::Duplicate {
                            file: language.origin.clone(),
                            what: format!("the name `{name}`"),
                            other: owner.origin.clone(),
                        })
                    }
                    Some(_) => {}
                    None => {
                        owners.insert(name, language);
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(RegistryError(problems));
        }
        Ok(Registry { languages })
    }

    /// The newest version of the language a request names (by name or
    /// alias) within `range` (any version when `None`).
    ///
    /// A range follows npm's rules (`node-semver`, which Piston uses too):
    /// a version written in full (`3.13.0`: that version) or in part
    /// (`3.13`, `3`, `3.x`: any version it starts), `*`, comparators
    /// (`>=3.11 <3.13`, `^3`, `~3.11`), hyphen ranges and `||`.
    /// Pre-releases match only ranges that name them.
    pub(crate) fn resolve(&self, name: &str, range: Option<&str>) -> Result<Arc<Language>, Lookup> {
        let named: Vec<&Arc<Language>> = self
            .languages
            .iter()
            .filter(|l| l.names().any(|n| n == name))
            .collect();
        if named.is_empty() {
            return Err(Lookup::UnknownLanguage {
                name: name.to_string(),
            });
        }
        let range = range.map(str::trim).unwrap_or("*");
        let matcher = nodejs_semver::Range::parse(range).map_err(|e| Lookup::BadRange {
            range: range.to_string(),
            reason: e.to_string(),
        })?;
        named
            .iter()
            .find(|l| matcher.satisfies(&l.semver))
            .map(|l| Arc::clone(l))
            .ok_or_else(|| Lookup::UnknownVersion {
                name: named[0].name.clone(),
                range: range.to_string(),
                available: named.iter().map(|l| l.version.clone()).collect(),
            })
    }

    /// The language version that Judge0's API serves as `id`.
    pub(crate) fn by_judge0_id(&self, id: i64) -> Option<Arc<Language>> {
        self.languages
            .iter()
            .find(|l| l.judge0_id == Some(id))
            .cloned()
    }

    /// The newest version of the language named (by name or alias).
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Language>> {
        self.resolve(name, None).ok()
    }

    /// Every language version, sorted by name, newest version first.
    pub(crate) fn languages(&self) -> &[Arc<Language>] {
        &self.languages
    }

    /// The languages' names, sorted, each once.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.languages.iter().map(|l| l.name.clone()).collect();
        names.dedup();
        names
    }

    /// The images the languages run in, sorted, each once.
    pub(crate) fn images(&self) -> Vec<String> {
        let mut images: Vec<String> = self.languages.iter().map(|l| l.image.clone()).collect();
        images.sort();
        images.dedup();
        images
    }

    /// The languages (`name-version`) that run in `image`.
    pub(crate) fn users_of(&self, image: &str) -> Vec<String> {
        self.languages
            .iter()
            .filter(|l| l.image == image)
            .map(|l| l.label())
            .collect()
    }
}

/// A language file's path and its text, or why it could not be read.
pub(crate) type FileText = (PathBuf, Result<String, LanguageError>);

/// The `*.toml` files directly inside `dir`, sorted, with their text (or
/// why it could not be read).
pub(crate) fn read_language_files(dir: &Path) -> Result<Vec<FileText>, LanguageError> {
    let listing_error = |e: std::io::Error| LanguageError::Dir {
        dir: dir.to_path_buf(),
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
    Ok(files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| LanguageError::Read {
                file: Origin::File(path.clone()),
                message: e.to_string(),
            });
            (path, text)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LUA: &str = "name = \"lua\"\naliases = [\"lua5\"]\nversion = \"5.4\"\nimage = \"lua:5.4\"\nsource_file = \"main.lua\"\nrun = [\"lua\", \"main.lua\"]\n";

    fn lua(file: &str, version: &str) -> Arc<Language> {
        Arc::new(
            Language::parse(
                Origin::File(file.into()),
                &LUA.replace("5.4\"\nimage", &format!("{version}\"\nimage")),
                &DefaultLimits::default(),
            )
            .unwrap(),
        )
    }

    fn versions(registry: &Registry) -> Vec<String> {
        registry.languages().iter().map(|l| l.label()).collect()
    }

    #[test]
    fn several_versions_are_served_newest_first_and_the_newest_is_the_default() {
        let registry = Registry::from_languages(vec![
            lua("a.toml", "5.3"),
            lua("b.toml", "5.10"),
            lua("c.toml", "5.4.6"),
        ])
        .unwrap();
        assert_eq!(versions(&registry), ["lua-5.10", "lua-5.4.6", "lua-5.3"]);
        assert_eq!(registry.names(), ["lua"]);
        assert_eq!(registry.get("lua5").unwrap().version, "5.10");
        let pick = |range: &str| {
            registry
                .resolve("lua", Some(range))
                .map(|l| l.version.clone())
        };
        assert_eq!(pick("5.4").unwrap(), "5.4.6");
        assert_eq!(pick("5.4.6").unwrap(), "5.4.6");
        assert_eq!(pick("5").unwrap(), "5.10");
        assert_eq!(pick("*").unwrap(), "5.10");
        assert_eq!(pick("<5.4").unwrap(), "5.3");
        assert_eq!(pick("~5.3").unwrap(), "5.3");
        // npm's forms, as Piston's clients send them (each checked against
        // npm's semver 7.6.2).
        assert_eq!(pick("x").unwrap(), "5.10");
        assert_eq!(pick("5.x").unwrap(), "5.10");
        assert_eq!(pick("^5.4").unwrap(), "5.10");
        assert_eq!(pick(">=5.4 <5.5").unwrap(), "5.4.6");
        assert_eq!(pick("=5.4.6").unwrap(), "5.4.6");
        assert_eq!(pick("v5.4.6").unwrap(), "5.4.6");
        assert_eq!(pick("5.3.0 || 5.4.6").unwrap(), "5.4.6");
        assert_eq!(pick("5.3 - 5.4").unwrap(), "5.4.6");
        assert!(matches!(pick("latest"), Err(Lookup::BadRange { .. })));
        assert_eq!(
            pick("5.4.0").unwrap_err(),
            Lookup::UnknownVersion {
                name: "lua".into(),
                range: "5.4.0".into(),
                available: vec!["5.10".into(), "5.4.6".into(), "5.3".into()],
            }
        );
        assert!(matches!(pick("not a range"), Err(Lookup::BadRange { .. })));
        assert!(matches!(
            registry.resolve("tcl", None),
            Err(Lookup::UnknownLanguage { .. })
        ));
    }

    #[test]
    fn the_same_name_and_version_twice_is_refused_naming_both_files() {
        let err = Registry::from_languages(vec![lua("a.toml", "5.4"), lua("b.toml", "5.4.0")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.toml: version 5.4.0 of `lua` is already used by a.toml"),
            "{err}"
        );
    }

    #[test]
    fn a_judge0_id_is_one_languages_and_finds_it() {
        let with_id = |file: &str, version: &str, id: i64| {
            let mut language = (*lua(file, version)).clone();
            language.judge0_id = Some(id);
            Arc::new(language)
        };
        let registry =
            Registry::from_languages(vec![with_id("a.toml", "5.3", 64), lua("b.toml", "5.4")])
                .unwrap();
        assert_eq!(registry.by_judge0_id(64).unwrap().version, "5.3");
        assert!(registry.by_judge0_id(65).is_none());
        let err = Registry::from_languages(vec![
            with_id("a.toml", "5.3", 64),
            with_id("b.toml", "5.4", 64),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("a.toml: the Judge0 id 64 is already used by b.toml"),
            "{err}"
        );
    }

    #[test]
    fn a_name_or_alias_of_another_language_is_refused_naming_both_files() {
        let mut other = (*lua("b.toml", "1.0")).clone();
        other.name = "other".to_string();
        let err = Registry::from_languages(vec![lua("a.toml", "5.4"), Arc::new(other)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.toml"), "{err}");
        assert!(err.contains("a.toml"), "{err}");
        assert!(err.contains("`lua5`"), "{err}");
    }

    #[test]
    fn an_alias_reaches_only_the_versions_that_carry_it() {
        let mut old = (*lua("a.toml", "5.1")).clone();
        old.aliases.push("luajit".to_string());
        let registry = Registry::from_languages(vec![Arc::new(old), lua("b.toml", "5.4")]).unwrap();
        assert_eq!(registry.get("luajit").unwrap().version, "5.1");
        assert_eq!(registry.get("lua").unwrap().version, "5.4");
    }

    /// Every language the repository ships: the catalogue's and the
    /// built-in python.
    fn shipped() -> Vec<Arc<Language>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("languages/available");
        let files = read_language_files(&dir).unwrap();
        assert!(files.len() >= 8);
        let mut languages: Vec<Arc<Language>> = files
            .into_iter()
            .map(|(path, text)| {
                let language = Language::parse(
                    Origin::File(path),
                    &text.unwrap(),
                    &DefaultLimits::default(),
                )
                .unwrap_or_else(|e| panic!("{e}"));
                Arc::new(language)
            })
            .collect();
        languages.extend(
            Registry::builtin(&DefaultLimits::default())
                .unwrap()
                .languages()
                .iter()
                .cloned(),
        );
        languages
    }

    #[test]
    fn every_catalogue_file_parses_and_no_name_is_used_twice() {
        let registry = Registry::from_languages(shipped()).expect("no name used twice");
        for name in [
            "python",
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
        assert_eq!(registry.names(), ["python"]);
        assert_eq!(registry.languages()[0].origin, Origin::BuiltIn);
    }

    #[test]
    fn sub_folders_and_other_files_are_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lua.toml"), LUA).unwrap();
        std::fs::write(dir.path().join("README.md"), "not a language").unwrap();
        std::fs::create_dir(dir.path().join("available")).unwrap();
        std::fs::write(dir.path().join("available/broken.toml"), "x").unwrap();
        let registry = Registry::load(dir.path(), &DefaultLimits::default()).unwrap();
        assert_eq!(registry.names(), ["lua"]);
    }

    #[test]
    fn every_bad_file_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "name = 1").unwrap();
        std::fs::write(dir.path().join("b.toml"), "[[[").unwrap();
        let err = Registry::load(dir.path(), &DefaultLimits::default()).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }

    /// The tools the shipped commands name, each a stand-in on `PATH` that
    /// writes the arguments it got (each ending in a NUL) to `$ARGS`.
    const TOOLS: [&str; 10] = [
        "gcc", "g++", "go", "javac", "rustc", "java", "python3", "node", "ruby", "bash",
    ];

    #[test]
    fn every_shipped_command_hands_each_file_name_over_whole_and_runs_none() {
        let stubs = tempfile::tempdir().unwrap();
        for tool in TOOLS {
            let path = stubs.path().join(tool);
            let script = "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$ARGS\"\n";
            std::fs::write(&path, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!("{}:/usr/bin:/bin", stubs.path().display());
        for language in shipped() {
            let ext = language.source_file.rsplit_once('.').map_or("", |(_, e)| e);
            let mut names = vec![language.source_file.clone()];
            for stem in [
                "helper functions",
                " leading space",
                "l'été 2024",
                "\"double\" $(touch pwned) `touch pwned` ${HOME}",
                "*",
                "a;touch pwned;b & c | d",
                "dir/in a folder",
            ] {
                names.push(format!("{stem}.{ext}"));
            }
            let compile = language.compile.as_ref().map(|c| c.command.clone());
            for command in compile.into_iter().chain([language.run.clone()]) {
                // A program the command builds names no file.
                if command[0].starts_with("./") {
                    continue;
                }
                let case = format!("{}: {command:?}", language.name);
                let work = tempfile::tempdir().unwrap();
                for name in &names {
                    let file = work.path().join(name);
                    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                    std::fs::write(file, "x").unwrap();
                }
                let args_file = work.path().join("args");
                let status = std::process::Command::new(&command[0])
                    .args(&command[1..])
                    .current_dir(work.path())
                    .env("PATH", &path)
                    .env("ARGS", &args_file)
                    .status()
                    .unwrap();
                assert!(status.success(), "{case}");
                let raw = std::fs::read(&args_file).unwrap_or_else(|e| panic!("{case}: {e}"));
                let got: Vec<String> = (raw.split(|&b| b == 0))
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8(a.to_vec()).unwrap())
                    .collect();
                // Every argument is a part of the command (a script given
                // to `bash -c` whole), a word of one, or a file's whole
                // name; the top-level sources a glob names are each there
                // once.
                let words: Vec<String> = (command.iter())
                    .flat_map(|part| part.split_whitespace())
                    .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
                    .chain(command.iter().cloned())
                    .collect();
                for arg in &got {
                    assert!(
                        words.contains(arg) || names.contains(arg),
                        "{case}: {arg:?} in {got:?}"
                    );
                }
                if command
                    .iter()
                    .any(|part| part.contains(&format!("*.{ext}")))
                {
                    for name in names.iter().filter(|n| !n.contains('/')) {
                        let count = got.iter().filter(|a| *a == name).count();
                        assert_eq!(count, 1, "{case}: {name:?} in {got:?}");
                    }
                }
                assert!(!work.path().join("pwned").exists(), "{case}: a name ran");
            }
        }
    }
}
