//! Hot reload of the languages folder: files added, changed or removed are
//! noticed by polling, once a second, without a restart.
//!
//! Every file is held to the start-up rules (unknown keys, missing fields,
//! ranges, a name or alias used twice). A file that breaks them is refused
//! with a log line naming it and why; the version of it that was good (if
//! any) stays served, and so do all the other languages. A run in flight
//! keeps the language it started with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::language::{Language, LanguageError, Registry, read_language_files};
use crate::limits::DefaultLimits;

/// What the watcher knows of the folder.
#[derive(Debug)]
pub struct Watcher {
    dir: PathBuf,
    defaults: DefaultLimits,
    /// The text of every file as last read (broken ones included), so that
    /// a file is parsed (and a refusal logged) once per change.
    texts: BTreeMap<PathBuf, String>,
    /// The language each file gives that is served now.
    served: BTreeMap<PathBuf, Language>,
    /// Whether the built-in python is served (the folder was missing).
    builtin: bool,
}

impl Watcher {
    /// A watcher that starts from the registry loaded at start-up from `dir`.
    pub fn new(dir: &Path, defaults: DefaultLimits, loaded: &Registry) -> Watcher {
        let mut watcher = Watcher {
            dir: dir.to_path_buf(),
            defaults,
            texts: BTreeMap::new(),
            served: BTreeMap::new(),
            builtin: !dir.exists(),
        };
        if !watcher.builtin {
            if let Ok(files) = read_language_files(dir) {
                for (path, text) in files {
                    if let Ok(text) = text {
                        watcher.texts.insert(path, text);
                    }
                }
            }
            for language in loaded.languages() {
                watcher
                    .served
                    .insert(PathBuf::from(&language.origin), language.as_ref().clone());
            }
        }
        watcher
    }

    /// Looks at the folder; returns the registry to serve when anything
    /// changed, `None` otherwise.
    pub fn poll(&mut self) -> Option<Registry> {
        if !self.dir.exists() {
            if self.builtin {
                return None;
            }
            tracing::warn!(dir = %self.dir.display(), "the languages folder is gone; serving the built-in python");
            self.builtin = true;
            self.texts.clear();
            self.served.clear();
            return Registry::builtin(&self.defaults).ok();
        }
        let files = match read_language_files(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the languages folder; keeping the languages served");
                return None;
            }
        };
        let mut now: BTreeMap<PathBuf, String> = BTreeMap::new();
        for (path, text) in files {
            match text {
                Ok(text) => {
                    now.insert(path, text);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a language file; keeping its last good version")
                }
            }
        }
        let was_builtin = std::mem::replace(&mut self.builtin, false);
        let removed: Vec<PathBuf> = self
            .texts
            .keys()
            .filter(|p| !now.contains_key(*p) && !p.exists())
            .cloned()
            .collect();
        let changed: BTreeSet<PathBuf> = now
            .iter()
            .filter(|(p, text)| self.texts.get(*p) != Some(*text))
            .map(|(p, _)| p.clone())
            .collect();
        if removed.is_empty() && changed.is_empty() && !was_builtin {
            return None;
        }
        for path in &removed {
            self.texts.remove(path);
            if let Some(language) = self.served.remove(path) {
                tracing::info!(file = %path.display(), language = %language.name, "language file removed; language withdrawn");
            }
        }

        // Parse what changed; refused files keep their last good version.
        let mut fresh: BTreeMap<PathBuf, Language> = BTreeMap::new();
        for path in &changed {
            let text = &now[path];
            self.texts.insert(path.clone(), text.clone());
            match Language::parse(&path.display().to_string(), text, &self.defaults) {
                Ok(language) => {
                    fresh.insert(path.clone(), language);
                }
                Err(e) => refuse(path, &e, self.served.contains_key(path)),
            }
        }

        // Languages that did not change keep their names; a changed file
        // whose name or an alias is taken is refused.
        let mut accepted: BTreeMap<PathBuf, Language> = self
            .served
            .iter()
            .filter(|(p, _)| !fresh.contains_key(*p))
            .map(|(p, l)| (p.clone(), l.clone()))
            .collect();
        for (path, language) in fresh {
            let taken = accepted.values().find_map(|other| {
                language
                    .names()
                    .find(|n| other.names().any(|m| m == *n))
                    .map(|n| (n.to_string(), other.origin.clone()))
            });
            match taken {
                None => {
                    tracing::info!(file = %path.display(), language = %language.name, "language file loaded");
                    accepted.insert(path, language);
                }
                Some((name, other)) => {
                    let e = LanguageError::Duplicate {
                        file: path.display().to_string(),
                        name,
                        other,
                    };
                    let previous = self.served.get(&path).cloned();
                    refuse(&path, &e, previous.is_some());
                    if let Some(previous) = previous {
                        accepted.insert(path, previous);
                    }
                }
            }
        }
        self.served = accepted;
        match Registry::from_languages(self.served.values().cloned().collect()) {
            Ok(registry) => {
                tracing::info!(languages = ?registry.names(), "languages reloaded");
                Some(registry)
            }
            Err(e) => {
                tracing::error!(error = %e, "reloaded languages conflict; keeping the languages served");
                None
            }
        }
    }
}

fn refuse(path: &Path, e: &LanguageError, kept: bool) {
    tracing::warn!(
        file = %path.display(),
        reason = %e,
        kept_previous = kept,
        "language file refused"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const LUA: &str = "name = \"lua\"\nversion = \"5.4\"\nimage = \"lua:5.4\"\nsource_file = \"main.lua\"\nrun = [\"lua\", \"main.lua\"]\n";

    fn watcher(dir: &Path) -> Watcher {
        let defaults = DefaultLimits::default();
        let registry = Registry::load(dir, &defaults).unwrap();
        Watcher::new(dir, defaults, &registry)
    }

    fn names(registry: &Registry) -> Vec<String> {
        registry.names()
    }

    #[test]
    fn nothing_changed_gives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lua.toml"), LUA).unwrap();
        let mut w = watcher(dir.path());
        assert!(w.poll().is_none());
    }

    #[test]
    fn an_added_file_is_served_and_a_removed_one_withdrawn() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lua.toml"), LUA).unwrap();
        let mut w = watcher(dir.path());
        std::fs::write(dir.path().join("tcl.toml"), LUA.replace("lua", "tcl")).unwrap();
        assert_eq!(names(&w.poll().unwrap()), ["lua", "tcl"]);
        std::fs::remove_file(dir.path().join("lua.toml")).unwrap();
        assert_eq!(names(&w.poll().unwrap()), ["tcl"]);
        assert!(w.poll().is_none());
    }

    #[test]
    fn a_broken_change_keeps_the_good_version_until_fixed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lua.toml"), LUA).unwrap();
        let mut w = watcher(dir.path());
        std::fs::write(dir.path().join("lua.toml"), format!("{LUA}bogus = 1\n")).unwrap();
        let registry = w.poll().unwrap();
        assert_eq!(registry.get("lua").unwrap().version, "5.4");
        assert!(w.poll().is_none(), "a refusal is made once per change");
        std::fs::write(
            dir.path().join("lua.toml"),
            LUA.replace("5.4\"\nimage", "5.5\"\nimage"),
        )
        .unwrap();
        assert_eq!(w.poll().unwrap().get("lua").unwrap().version, "5.5");
    }

    #[test]
    fn a_new_file_taking_a_served_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lua.toml"), LUA).unwrap();
        let mut w = watcher(dir.path());
        std::fs::write(dir.path().join("another.toml"), LUA).unwrap();
        let registry = w.poll().unwrap();
        assert_eq!(names(&registry), ["lua"]);
        assert_eq!(
            registry.get("lua").unwrap().origin,
            dir.path().join("lua.toml").display().to_string()
        );
    }

    #[test]
    fn a_missing_folder_falls_back_to_the_builtin_python_and_back() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("languages");
        let mut w = watcher(&dir);
        assert!(w.poll().is_none());
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("lua.toml"), LUA).unwrap();
        assert_eq!(names(&w.poll().unwrap()), ["lua"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names(&w.poll().unwrap()), ["python"]);
    }
}
