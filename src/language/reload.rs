//! Hot reload of the languages folder: files added, changed or removed take
//! effect without a restart.
//!
//! [`reload`] is a pure function from what the folder holds now and what
//! was loaded before ([`Loaded`]) to what to serve next, plus what happened
//! ([`Event`]s, to log). Every file is held to the start-up rules (unknown
//! keys, missing fields, ranges, a name and version given twice, a name or
//! alias of another language). A file that breaks them is refused; the
//! version of it that was good (if any) stays served, and so do all the
//! other languages. [`Watcher`] reads the folder and feeds it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::file::{Language, LanguageError, Origin};
use super::registry::FileText;
use super::registry::{Registry, read_language_files};
use crate::limits::DefaultLimits;

/// What the folder holds, as read once.
#[derive(Debug)]
pub(crate) enum Snapshot {
    /// The folder does not exist.
    Missing,
    /// The folder cannot be listed.
    Unlistable(LanguageError),
    /// Its `*.toml` files, each with its text or why it cannot be read.
    Files(Vec<FileText>),
}

impl Snapshot {
    /// Reads `dir`.
    pub(crate) fn read(dir: &Path) -> Snapshot {
        if !dir.exists() {
            return Snapshot::Missing;
        }
        match read_language_files(dir) {
            Ok(files) => Snapshot::Files(files),
            Err(e) => Snapshot::Unlistable(e),
        }
    }
}

/// What was loaded: the text of every file as last read (broken ones
/// included, so that a refusal is made once per change) and the language
/// each file gives that is served now.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loaded {
    texts: BTreeMap<PathBuf, String>,
    served: BTreeMap<PathBuf, Arc<Language>>,
    /// The built-in python is served (the folder was missing).
    builtin: bool,
}

/// One thing a reload did, for the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// A file was loaded (new or changed).
    Loaded { file: PathBuf, language: String },
    /// A file was removed, and its language version with it.
    Withdrawn { file: PathBuf, language: String },
    /// A file was refused; `kept` says whether its last good version stays.
    Refused { error: LanguageError, kept: bool },
    /// A file could not be read; its last good version stays.
    Unreadable { error: LanguageError },
    /// The folder cannot be listed; everything stays.
    Unlistable { error: LanguageError },
    /// The folder is gone: the built-in python is served.
    FolderGone,
}

impl Loaded {
    /// What start-up loaded from `snapshot` into `registry`.
    pub(crate) fn new(snapshot: &Snapshot, registry: &Registry) -> Loaded {
        let Snapshot::Files(files) = snapshot else {
            return Loaded {
                builtin: matches!(snapshot, Snapshot::Missing),
                ..Loaded::default()
            };
        };
        Loaded {
            texts: files
                .iter()
                .filter_map(|(path, text)| Some((path.clone(), text.clone().ok()?)))
                .collect(),
            served: registry
                .languages()
                .iter()
                .filter_map(|l| match &l.origin {
                    Origin::File(path) => Some((path.clone(), l.clone())),
                    Origin::BuiltIn => None,
                })
                .collect(),
            builtin: false,
        }
    }
}

/// The next state from the last one and what the folder holds now: the
/// registry to serve (`None` when nothing changed) and what happened.
pub(crate) fn reload(
    last: &Loaded,
    snapshot: Snapshot,
    defaults: &DefaultLimits,
) -> (Loaded, Option<Registry>, Vec<Event>) {
    let files = match snapshot {
        Snapshot::Missing if last.builtin => return (last.clone(), None, Vec::new()),
        Snapshot::Missing => {
            let next = Loaded {
                builtin: true,
                ..Loaded::default()
            };
            let events = vec![Event::FolderGone];
            return (next, Registry::builtin(defaults).ok(), events);
        }
        Snapshot::Unlistable(error) => {
            return (last.clone(), None, vec![Event::Unlistable { error }]);
        }
        Snapshot::Files(files) => files,
    };
    let mut events = Vec::new();
    let (mut next, changed) = carry_over(last, files, &mut events);
    if changed.is_empty()
        && events.iter().all(|e| matches!(e, Event::Unreadable { .. }))
        && !last.builtin
    {
        return (next, None, events);
    }
    for (path, text) in changed {
        admit(&mut next, last, path, &text, defaults, &mut events);
    }
    match Registry::from_languages(next.served.values().cloned().collect()) {
        Ok(registry) => (next, Some(registry), events),
        // Cannot happen (every language was admitted through the same
        // check); keep serving what was served.
        Err(e) => {
            events.push(Event::Refused {
                error: e.0.into_iter().next().expect("a problem"),
                kept: true,
            });
            (last.clone(), None, events)
        }
    }
}

/// What stays from `last` given the folder's `files` (unchanged and
/// unreadable files keep what they gave; files gone are withdrawn), and the
/// files that are new or changed, to admit.
fn carry_over(
    last: &Loaded,
    files: Vec<FileText>,
    events: &mut Vec<Event>,
) -> (Loaded, Vec<(PathBuf, String)>) {
    let mut now: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut unreadable = BTreeSet::new();
    for (path, text) in files {
        match text {
            Ok(text) => {
                now.insert(path, text);
            }
            Err(error) => {
                unreadable.insert(path);
                events.push(Event::Unreadable { error });
            }
        }
    }
    let mut next = Loaded::default();
    for (path, text) in &last.texts {
        if unreadable.contains(path) || now.get(path) == Some(text) {
            next.texts.insert(path.clone(), text.clone());
            if let Some(language) = last.served.get(path) {
                next.served.insert(path.clone(), language.clone());
            }
        } else if !now.contains_key(path)
            && let Some(language) = last.served.get(path)
        {
            events.push(Event::Withdrawn {
                file: path.clone(),
                language: language.label(),
            });
        }
    }
    let mut changed = Vec::new();
    for (path, text) in now {
        if last.texts.get(&path) != Some(&text) {
            next.texts.insert(path.clone(), text.clone());
            changed.push((path, text));
        }
    }
    (next, changed)
}

/// Parses a new or changed file and serves it beside what `next` serves,
/// unless it breaks a rule: then it is refused, and its last good version
/// (if any) stays.
fn admit(
    next: &mut Loaded,
    last: &Loaded,
    path: PathBuf,
    text: &str,
    defaults: &DefaultLimits,
    events: &mut Vec<Event>,
) {
    let previous = last.served.get(&path).cloned();
    next.served.remove(&path);
    let accepted = Language::parse(Origin::File(path.clone()), text, defaults)
        .map(Arc::new)
        .and_then(|language| {
            let mut trial: Vec<Arc<Language>> = next.served.values().cloned().collect();
            trial.push(language.clone());
            match Registry::from_languages(trial) {
                Ok(_) => Ok(language),
                Err(e) => Err(e.0.into_iter().next().expect("a problem")),
            }
        });
    match accepted {
        Ok(language) => {
            events.push(Event::Loaded {
                file: path.clone(),
                language: language.label(),
            });
            next.served.insert(path, language);
        }
        Err(error) => {
            events.push(Event::Refused {
                error,
                kept: previous.is_some(),
            });
            if let Some(previous) = previous {
                next.served.insert(path, previous);
            }
        }
    }
}

/// Reads the languages folder on each [`Watcher::poll`] and turns what
/// changed into the next registry.
#[derive(Debug)]
pub(crate) struct Watcher {
    dir: PathBuf,
    defaults: DefaultLimits,
    loaded: Loaded,
}

impl Watcher {
    /// A watcher that starts from `registry`, loaded at start-up from `dir`.
    pub(crate) fn new(dir: &Path, defaults: DefaultLimits, registry: &Registry) -> Watcher {
        Watcher {
            dir: dir.to_path_buf(),
            loaded: Loaded::new(&Snapshot::read(dir), registry),
            defaults,
        }
    }

    /// Reads the folder; returns the registry to serve when anything
    /// changed, and what happened.
    pub(crate) fn poll(&mut self) -> (Option<Registry>, Vec<Event>) {
        let (loaded, registry, events) =
            reload(&self.loaded, Snapshot::read(&self.dir), &self.defaults);
        self.loaded = loaded;
        (registry, events)
    }
}

/// Writes one log line per event.
pub(crate) fn log(events: &[Event]) {
    for event in events {
        match event {
            Event::Loaded { file, language } => {
                tracing::info!(file = %file.display(), %language, "language file loaded")
            }
            Event::Withdrawn { file, language } => {
                tracing::info!(file = %file.display(), %language, "language file removed; language withdrawn")
            }
            Event::Refused { error, kept } => {
                tracing::warn!(reason = %error, kept_previous = kept, "language file refused")
            }
            Event::Unreadable { error } => {
                tracing::warn!(error = %error, "cannot read a language file; keeping its last good version")
            }
            Event::Unlistable { error } => {
                tracing::warn!(error = %error, "cannot read the languages folder; keeping the languages served")
            }
            Event::FolderGone => {
                tracing::warn!("the languages folder is gone; serving the built-in python")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LUA: &str = "name = \"lua\"\nversion = \"5.4\"\nimage = \"lua:5.4\"\nsource_file = \"main.lua\"\nrun = [\"lua\", \"main.lua\"]\n";

    fn files(list: &[(&str, &str)]) -> Snapshot {
        Snapshot::Files(
            list.iter()
                .map(|(p, t)| (PathBuf::from(p), Ok(t.to_string())))
                .collect(),
        )
    }

    fn start(list: &[(&str, &str)]) -> Loaded {
        let snapshot = files(list);
        let Snapshot::Files(texts) = &snapshot else {
            unreachable!()
        };
        let languages = texts
            .iter()
            .map(|(p, t)| {
                Arc::new(
                    Language::parse(
                        Origin::File(p.clone()),
                        t.as_ref().unwrap(),
                        &DefaultLimits::default(),
                    )
                    .unwrap(),
                )
            })
            .collect();
        Loaded::new(&snapshot, &Registry::from_languages(languages).unwrap())
    }

    fn step(last: &Loaded, now: Snapshot) -> (Loaded, Option<Registry>, Vec<Event>) {
        reload(last, now, &DefaultLimits::default())
    }

    fn labels(registry: &Registry) -> Vec<String> {
        registry.languages().iter().map(|l| l.label()).collect()
    }

    #[test]
    fn nothing_changed_gives_nothing() {
        let last = start(&[("lua.toml", LUA)]);
        let (_, registry, events) = step(&last, files(&[("lua.toml", LUA)]));
        assert!(registry.is_none() && events.is_empty());
    }

    #[test]
    fn an_added_file_is_served_and_a_removed_one_withdrawn() {
        let tcl = LUA.replace("lua", "tcl");
        let last = start(&[("lua.toml", LUA)]);
        let (last, registry, events) = step(&last, files(&[("lua.toml", LUA), ("tcl.toml", &tcl)]));
        assert_eq!(labels(&registry.unwrap()), ["lua-5.4", "tcl-5.4"]);
        assert_eq!(
            events,
            [Event::Loaded {
                file: "tcl.toml".into(),
                language: "tcl-5.4".into()
            }]
        );
        let (last, registry, events) = step(&last, files(&[("tcl.toml", &tcl)]));
        assert_eq!(labels(&registry.unwrap()), ["tcl-5.4"]);
        assert!(matches!(&events[..], [Event::Withdrawn { .. }]));
        let (_, registry, _) = step(&last, files(&[("tcl.toml", &tcl)]));
        assert!(registry.is_none());
    }

    #[test]
    fn an_unchanged_language_keeps_its_identity() {
        let last = start(&[("lua.toml", LUA)]);
        let before = last.served[&PathBuf::from("lua.toml")].clone();
        let tcl = LUA.replace("lua", "tcl");
        let (_, registry, _) = step(&last, files(&[("lua.toml", LUA), ("tcl.toml", &tcl)]));
        let after = registry.unwrap().get("lua").unwrap();
        assert!(Arc::ptr_eq(&before, &after));
    }

    #[test]
    fn a_broken_change_keeps_the_good_version_until_fixed_and_is_refused_once() {
        let last = start(&[("lua.toml", LUA)]);
        let broken = format!("{LUA}bogus = 1\n");
        let (last, registry, events) = step(&last, files(&[("lua.toml", &broken)]));
        assert_eq!(registry.unwrap().get("lua").unwrap().version, "5.4");
        assert!(matches!(&events[..], [Event::Refused { kept: true, .. }]));
        let (last, registry, events) = step(&last, files(&[("lua.toml", &broken)]));
        assert!(
            registry.is_none() && events.is_empty(),
            "refused once per change"
        );
        let fixed = LUA.replace("5.4\"\nimage", "5.5\"\nimage");
        let (_, registry, _) = step(&last, files(&[("lua.toml", &fixed)]));
        assert_eq!(registry.unwrap().get("lua").unwrap().version, "5.5");
    }

    #[test]
    fn a_new_file_taking_a_served_name_and_version_is_refused() {
        let last = start(&[("lua.toml", LUA)]);
        let (_, registry, events) = step(&last, files(&[("another.toml", LUA), ("lua.toml", LUA)]));
        let registry = registry.unwrap();
        assert_eq!(labels(&registry), ["lua-5.4"]);
        assert_eq!(
            registry.get("lua").unwrap().origin,
            Origin::File("lua.toml".into())
        );
        match &events[..] {
            [Event::Refused { error, kept: false }] => {
                let text = error.to_string();
                assert!(
                    text.contains("another.toml") && text.contains("lua.toml"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_new_version_of_a_served_language_is_served_beside_it() {
        let last = start(&[("lua.toml", LUA)]);
        let newer = LUA.replace("5.4\"\nimage", "5.5\"\nimage");
        let (_, registry, _) = step(&last, files(&[("lua.toml", LUA), ("lua55.toml", &newer)]));
        assert_eq!(labels(&registry.unwrap()), ["lua-5.5", "lua-5.4"]);
    }

    #[test]
    fn an_unreadable_file_keeps_its_last_good_version() {
        let last = start(&[("lua.toml", LUA)]);
        let now = Snapshot::Files(vec![(
            PathBuf::from("lua.toml"),
            Err(LanguageError::Read {
                file: Origin::File("lua.toml".into()),
                message: "permission denied".into(),
            }),
        )]);
        let (last, registry, events) = step(&last, now);
        assert!(registry.is_none());
        assert!(matches!(&events[..], [Event::Unreadable { .. }]));
        let (_, registry, _) = step(&last, files(&[("lua.toml", LUA)]));
        assert!(registry.is_none(), "the text it had did not change");
    }

    #[test]
    fn a_missing_folder_falls_back_to_the_builtin_python_and_back() {
        let last = start(&[("lua.toml", LUA)]);
        let (last, registry, events) = step(&last, Snapshot::Missing);
        assert_eq!(registry.unwrap().names(), ["python"]);
        assert_eq!(events, [Event::FolderGone]);
        let (last, registry, _) = step(&last, Snapshot::Missing);
        assert!(registry.is_none());
        let (_, registry, _) = step(&last, files(&[("lua.toml", LUA)]));
        assert_eq!(registry.unwrap().names(), ["lua"]);
    }

    #[test]
    fn the_watcher_reads_a_real_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lua.toml"), LUA).unwrap();
        let defaults = DefaultLimits::default();
        let registry = Registry::load(dir.path(), &defaults).unwrap();
        let mut watcher = Watcher::new(dir.path(), defaults, &registry);
        assert!(watcher.poll().0.is_none());
        std::fs::write(dir.path().join("tcl.toml"), LUA.replace("lua", "tcl")).unwrap();
        assert_eq!(watcher.poll().0.unwrap().names(), ["lua", "tcl"]);
    }
}
