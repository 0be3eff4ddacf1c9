//! The catalogue of an operator's shared checkers and interactors: one
//! TOML file per program in a folder (`checkers_dir`, `checkers` by
//! default), named by its file's stem, as languages are:
//!
//! ```toml
//! # checkers/floats-1e-3.toml
//! language = "python"          # a language's name or alias
//! version = "3"                # optional: a version range
//! source = "floats-1e-3.py"    # beside this file; or the program inline, as `code`
//! ```
//!
//! A request names one as `{"name": "floats-1e-3"}` where it could send
//! the program itself. The folder is read at start-up; a file that cannot
//! be used stops the start, naming it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::language::Registry;

/// Longest program in the catalogue, in bytes.
const MAX_SOURCE: u64 = 1 << 20;

/// A program of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) language: String,
    pub(crate) version: Option<String>,
    pub(crate) code: String,
}

/// The catalogue's programs, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Catalogue {
    entries: BTreeMap<String, Entry>,
}

/// A catalogue file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    language: String,
    version: Option<String>,
    code: Option<String>,
    source: Option<String>,
}

impl Catalogue {
    /// Reads every `*.toml` file of `dir`; an empty catalogue when `dir`
    /// does not exist.
    pub(crate) fn load(dir: &Path) -> Result<Catalogue, String> {
        let listed = match std::fs::read_dir(dir) {
            Ok(listed) => listed,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalogue::default()),
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        let mut entries = BTreeMap::new();
        for item in listed {
            let path = item.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let name = (path.file_stem().and_then(|s| s.to_str()))
                .ok_or_else(|| format!("{}: the name is not UTF-8", path.display()))?;
            let entry = read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            entries.insert(name.to_string(), entry);
        }
        Ok(Catalogue { entries })
    }

    /// Checks that every program can run: its language and version are
    /// served by `registry`, and it fits in `max_code_bytes` (a request's
    /// bound on its code, which a checker is held to).
    pub(crate) fn check(&self, registry: &Registry, max_code_bytes: usize) -> Result<(), String> {
        for (name, entry) in &self.entries {
            let named = |why: String| format!("{name}: {why}");
            registry
                .resolve(&entry.language, entry.version.as_deref())
                .map_err(|e| named(e.to_string()))?;
            if entry.code.len() > max_code_bytes {
                let why = format!(
                    "its program is {} bytes, over requests.max_code_bytes ({max_code_bytes})",
                    entry.code.len()
                );
                return Err(named(why));
            }
        }
        Ok(())
    }

    /// The program named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// The programs' names, sorted.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// One catalogue file, its `source` read from beside it.
fn read(path: &Path) -> Result<Entry, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let file: File = toml::from_str(&text).map_err(|e| e.to_string())?;
    let code = match (file.code, file.source) {
        (Some(code), None) => code,
        (None, Some(source)) => {
            let beside = path.parent().unwrap_or(Path::new(".")).join(&source);
            let size =
                std::fs::metadata(&beside).map_err(|e| format!("key `source` ({source}): {e}"))?;
            if size.len() > MAX_SOURCE {
                return Err(format!("key `source` ({source}): over {MAX_SOURCE} bytes"));
            }
            std::fs::read_to_string(&beside).map_err(|e| format!("key `source` ({source}): {e}"))?
        }
        (Some(_), Some(_)) => return Err("keys `code` and `source`: give one, not both".into()),
        (None, None) => return Err("key `code` or `source`: one is required".into()),
    };
    if code.is_empty() {
        return Err("the program is empty".into());
    }
    Ok(Entry {
        language: file.language,
        version: file.version,
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_files_loads_by_name_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "yes-no.toml",
            "language = \"python\"\ncode = \"print(1)\"\n",
        );
        write(
            "floats.toml",
            "language = \"cpp\"\nversion = \"14\"\nsource = \"floats.cpp\"\n",
        );
        write("floats.cpp", "int main() {}\n");
        write("notes.txt", "not a checker");
        let catalogue = Catalogue::load(dir.path()).unwrap();
        assert_eq!(catalogue.names().collect::<Vec<_>>(), ["floats", "yes-no"]);
        let floats = catalogue.get("floats").unwrap();
        assert_eq!(
            (
                floats.language.as_str(),
                floats.version.as_deref(),
                floats.code.as_str()
            ),
            ("cpp", Some("14"), "int main() {}\n")
        );
        assert_eq!(catalogue.get("yes-no").unwrap().code, "print(1)");

        for (text, why) in [
            (
                "language = \"python\"\n",
                "key `code` or `source`: one is required",
            ),
            (
                "language = \"python\"\ncode = \"x\"\nsource = \"y\"\n",
                "give one, not both",
            ),
            (
                "language = \"python\"\nsource = \"missing.py\"\n",
                "key `source` (missing.py)",
            ),
            (
                "language = \"python\"\ncode = \"\"\n",
                "the program is empty",
            ),
            (
                "language = \"python\"\ncode = \"x\"\nlimits = 1\n",
                "unknown field `limits`",
            ),
        ] {
            write("bad.toml", text);
            let error = Catalogue::load(dir.path()).unwrap_err();
            assert!(
                error.contains("bad.toml") && error.contains(why),
                "{text:?}: {error}"
            );
        }
    }

    #[test]
    fn a_program_whose_language_is_not_served_or_too_large_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let registry = Registry::builtin(&crate::limits::DefaultLimits::default()).unwrap();
        write("fine.toml", "language = \"python\"\ncode = \"print(1)\"\n");
        Catalogue::load(dir.path())
            .unwrap()
            .check(&registry, 100)
            .unwrap();
        write("cobol.toml", "language = \"cobol\"\ncode = \"x\"\n");
        let error = Catalogue::load(dir.path())
            .unwrap()
            .check(&registry, 100)
            .unwrap_err();
        assert!(
            error.starts_with("cobol: ") && error.contains("cobol"),
            "{error}"
        );
        std::fs::remove_file(dir.path().join("cobol.toml")).unwrap();
        write(
            "old.toml",
            "language = \"python\"\nversion = \"2\"\ncode = \"x\"\n",
        );
        let error = Catalogue::load(dir.path())
            .unwrap()
            .check(&registry, 100)
            .unwrap_err();
        assert!(error.starts_with("old: "), "{error}");
        std::fs::remove_file(dir.path().join("old.toml")).unwrap();
        let error = Catalogue::load(dir.path())
            .unwrap()
            .check(&registry, 4)
            .unwrap_err();
        assert!(error.contains("fine: its program is 8 bytes"), "{error}");
    }

    #[test]
    fn a_missing_folder_is_an_empty_catalogue() {
        let dir = tempfile::tempdir().unwrap();
        let catalogue = Catalogue::load(&dir.path().join("none")).unwrap();
        assert_eq!(catalogue.names().count(), 0);
    }
}
