//! A batch's judging fields as sent (`compare`, `checker`, `interactor`),
//! parsed strictly, and their translation to a [`Plan`].

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::super::error::ApiError;
use super::wire::{FileEntry, Strict, field_name, invalid};
use crate::config::RequestBounds;
use crate::job::{Client, Job, JobRequest};
use crate::judging::catalogue::Catalogue;
use crate::judging::compare::Tolerance;
use crate::judging::{ANSWER_FILE, Compare, INPUT_FILE, Judge, OUTPUT_FILE};
use crate::language::Registry;
use crate::limits::LimitsOverride;

/// How a batch's output is compared: a mode's name, or an object naming
/// it with its tolerances.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum CompareEntry {
    /// `exact`, `trim` (the default), `tokens`, `floats` (1e-6 absolute or
    /// relative), `unordered_lines` or `case_insensitive`.
    Name(String),
    /// A mode with its tolerances: `{"mode": "floats", "absolute": 1e-9,
    /// "relative": 0}`.
    Tolerant(TolerantCompare),
}

/// `floats` with its own tolerances.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TolerantCompare {
    /// `floats`.
    pub(crate) mode: String,
    /// How far a number may be from the expected one (default 1e-6; 0
    /// turns it off).
    pub(crate) absolute: Option<f64>,
    /// How far, as a fraction of the expected number (default 1e-6; 0
    /// turns it off).
    pub(crate) relative: Option<f64>,
}

/// A checker or an interactor: a program (`language`, `code`, …) or a
/// program of the catalogue by `name`.
#[derive(Debug, Clone, Default, PartialEq, utoipa::ToSchema)]
pub(crate) struct ProgramEntry {
    /// A program of the operator's catalogue; then no other field.
    pub(crate) name: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) code: Option<String>,
    /// Files beside its source (`testlib.h`, say).
    pub(crate) files: Option<Vec<FileEntry>>,
    /// A wall-clock limit lower than its language's, in ms.
    pub(crate) timeout_ms: Option<u64>,
    /// A CPU-time limit lower than its language's, in ms.
    pub(crate) cpu_time_ms: Option<u64>,
}

/// The judge of a batch, from its `compare`, `checker` and `interactor`.
pub(crate) fn judge(
    compare: Option<&CompareEntry>,
    checker: Option<&ProgramEntry>,
    interactor: Option<&ProgramEntry>,
    context: &Context,
) -> Result<Judge, ApiError> {
    match (compare, checker, interactor) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(invalid(
            "compare",
            "is for a batch judged by comparing; a checker or an interactor judges alone",
        )),
        (_, Some(_), Some(_)) => Err(invalid(
            "checker",
            "and `interactor` cannot both be given: an interactor gives the verdict",
        )),
        (_, Some(checker), None) => Ok(Judge::Checker(program("checker", checker, context)?)),
        (_, None, Some(interactor)) => Ok(Judge::Interactor(program(
            "interactor",
            interactor,
            context,
        )?)),
        (compare, None, None) => compare.map_or(Ok(Compare::Trim), mode).map(Judge::Compare),
    }
}

/// What a program is checked against: the languages, the bounds, the
/// catalogue and the client it runs for.
pub(crate) struct Context<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) bounds: &'a RequestBounds,
    pub(crate) catalogue: &'a Catalogue,
    pub(crate) client: Client,
}

/// The comparison `entry` names.
fn mode(entry: &CompareEntry) -> Result<Compare, ApiError> {
    let unknown = |name: &str| {
        let names = Compare::NAMES.map(|n| format!("`{n}`")).join(", ");
        invalid(
            "compare",
            &format!("must be one of {names} (got {:?})", crate::text::clip(name)),
        )
    };
    match entry {
        CompareEntry::Name(name) => Compare::named(name).ok_or_else(|| unknown(name)),
        CompareEntry::Tolerant(t) if t.mode == "floats" => {
            let default = Tolerance::default();
            let tolerance = Tolerance {
                absolute: t.absolute.unwrap_or(default.absolute),
                relative: t.relative.unwrap_or(default.relative),
            };
            for (key, value) in [
                ("absolute", tolerance.absolute),
                ("relative", tolerance.relative),
            ] {
                if !value.is_finite() || value < 0.0 {
                    let why = format!("has `{key}` {value}: a tolerance is a number of at least 0");
                    return Err(invalid("compare", &why));
                }
            }
            Ok(Compare::Floats(tolerance))
        }
        CompareEntry::Tolerant(t) => Err(invalid(
            "compare",
            &format!(
                "takes tolerances only for `floats` (got mode {:?})",
                crate::text::clip(&t.mode)
            ),
        )),
    }
}

/// The job of a checker or an interactor (`what`), with one input that
/// the batch replaces with its tests'.
fn program(what: &str, entry: &ProgramEntry, context: &Context) -> Result<Job, ApiError> {
    let entry = resolved(what, entry, context.catalogue)?;
    let language = entry
        .language
        .clone()
        .ok_or_else(|| required(what, "language"))?;
    let code = entry.code.clone().ok_or_else(|| required(what, "code"))?;
    if code.is_empty() {
        return Err(invalid(&format!("{what}.code"), "must not be empty"));
    }
    for (field, value) in [
        ("timeout_ms", entry.timeout_ms),
        ("cpu_time_ms", entry.cpu_time_ms),
    ] {
        if value == Some(0) {
            return Err(invalid(
                &format!("{what}.{field}"),
                "must be at least 1 (got 0)",
            ));
        }
    }
    let files = entry.files.clone().unwrap_or_default();
    let taken = [INPUT_FILE, OUTPUT_FILE, ANSWER_FILE];
    if let Some(file) = files
        .iter()
        .find(|f| taken.contains(&f.name.split('/').next().unwrap_or_default()))
    {
        let why = format!(
            "has a file named `{}`: {INPUT_FILE}, {OUTPUT_FILE} and {ANSWER_FILE} are the test's, written for each run",
            crate::text::clip(&file.name)
        );
        return Err(invalid(&format!("{what}.files"), &why));
    }
    let request = JobRequest {
        language,
        version: entry.version.clone(),
        main: code.into_bytes(),
        extra: files
            .into_iter()
            .map(|f| (f.name, f.content.into_bytes()))
            .collect(),
        run_limits: LimitsOverride {
            wall_time_ms: entry.timeout_ms,
            cpu_time_ms: entry.cpu_time_ms,
            ..LimitsOverride::default()
        },
        ..JobRequest::default()
    };
    let names = context.registry.names();
    (request.into_job(context.registry, context.bounds, context.client.clone()))
        .map_err(|e| ApiError::from_job(e, names, |field| format!("{what}.{}", field_name(field))))
}

/// `entry`, or the catalogue's program it names.
fn resolved(
    what: &str,
    entry: &ProgramEntry,
    catalogue: &Catalogue,
) -> Result<ProgramEntry, ApiError> {
    let Some(name) = &entry.name else {
        return Ok(entry.clone());
    };
    if *entry
        != (ProgramEntry {
            name: Some(name.clone()),
            ..ProgramEntry::default()
        })
    {
        return Err(invalid(
            &format!("{what}.name"),
            "names a program of the catalogue: no other field goes with it",
        ));
    }
    let Some(found) = catalogue.get(name) else {
        let known: Vec<&str> = catalogue.names().collect();
        let why = match known.is_empty() {
            true => format!(
                "{:?} is not in the catalogue, which is empty",
                crate::text::clip(name)
            ),
            false => format!(
                "{:?} is not in the catalogue (it has {})",
                crate::text::clip(name),
                known.join(", ")
            ),
        };
        return Err(invalid(&format!("{what}.name"), &why));
    };
    Ok(ProgramEntry {
        name: None,
        language: Some(found.language.clone()),
        version: found.version.clone(),
        code: Some(found.code.clone()),
        ..ProgramEntry::default()
    })
}

fn required(what: &str, field: &str) -> ApiError {
    invalid(
        &format!("{what}.{field}"),
        "is required (or `name`, for a program of the catalogue)",
    )
}

impl<'de> DeserializeSeed<'de> for Strict<'_, Option<ProgramEntry>> {
    type Value = Option<ProgramEntry>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, Option<ProgramEntry>> {
    type Value = Option<ProgramEntry>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a program object (`language`, `code`, … or `name`)")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut p = ProgramEntry::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => p.name = map.next_value()?,
                "language" => p.language = map.next_value()?,
                "version" => p.version = map.next_value()?,
                "code" => p.code = map.next_value()?,
                "timeout_ms" => p.timeout_ms = map.next_value()?,
                "cpu_time_ms" => p.cpu_time_ms = map.next_value()?,
                "files" => {
                    p.files =
                        map.next_value_seed(Strict::<Option<Vec<FileEntry>>>::new(self.refusal))?
                }
                other => return Err(self.unknown(other)),
            }
        }
        Ok(Some(p))
    }
}
