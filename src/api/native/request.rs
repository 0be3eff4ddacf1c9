//! The body of `POST /run-code` as sent, parsed strictly (known fields
//! only), and its translation to a [`Job`] (and, for a batch, the checks
//! each test's output gets).

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::super::body::{expect_object, json_error};
use super::super::error::ApiError;
use super::judging::{self, CompareEntry, Context, ProgramEntry};
pub(crate) use super::wire::FileEntry;
use super::wire::{Strict, field_name, invalid};
use crate::config::RequestBounds;
use crate::job::{Client, Job, JobRequest, RunInput, Streams};
use crate::judging::Plan;
use crate::judging::catalogue::Catalogue;
use crate::language::Registry;
use crate::limits::LimitsOverride;

/// Longest name of a test, in bytes.
const MAX_TEST_NAME: usize = 256;

/// The body of `POST /run-code`, as sent.
#[derive(Debug, Clone, Default, PartialEq, utoipa::ToSchema)]
pub(crate) struct RunRequest {
    /// A language's name or alias (required).
    #[schema(example = "python")]
    pub(crate) language: Option<String>,
    /// A version range; the newest version when absent.
    pub(crate) version: Option<String>,
    /// The program, written to the language's source file (required).
    #[schema(example = "print('hello')")]
    pub(crate) code: Option<String>,
    /// Given to the program on its standard input.
    pub(crate) stdin: Option<String>,
    /// Appended to the language's run command.
    pub(crate) args: Option<Vec<String>>,
    /// Files written beside the main source file, before any compile.
    pub(crate) files: Option<Vec<FileEntry>>,
    /// A wall-clock limit lower than the language's, in ms.
    pub(crate) timeout_ms: Option<u64>,
    /// A CPU-time limit lower than the language's, in ms.
    pub(crate) cpu_time_ms: Option<u64>,
    /// A batch: the program is compiled once and run against each test.
    pub(crate) tests: Option<Vec<TestEntry>>,
    /// How a test's output is compared with its `expected_output`:
    /// `exact`, `trim` (the default), `tokens`, `floats`,
    /// `unordered_lines` or `case_insensitive` (docs/judging.md).
    pub(crate) compare: Option<CompareEntry>,
    /// A batch's checker: judges each test's output (testlib's
    /// convention; docs/judging.md).
    pub(crate) checker: Option<ProgramEntry>,
    /// A batch's interactor: talks with the program on each test
    /// (testlib's convention; docs/judging.md).
    pub(crate) interactor: Option<ProgramEntry>,
    /// Files to bring back from the working directory once the program
    /// has ended: paths or globs (`*`, `?`, `**`); a folder brings all its
    /// files (docs/api.md#files-back).
    #[schema(example = json!(["*.png", "out/**"]))]
    pub(crate) outputs: Option<Vec<String>>,
}

/// One test of a batch.
#[derive(Debug, Clone, Default, PartialEq, utoipa::ToSchema)]
pub(crate) struct TestEntry {
    /// A name, given back with its result.
    pub(crate) name: Option<String>,
    /// Its standard input (the request's `stdin` when absent).
    pub(crate) stdin: Option<String>,
    /// Its arguments (the request's `args` when absent).
    pub(crate) args: Option<Vec<String>>,
    /// What the program should print; then the test gets a verdict.
    pub(crate) expected_output: Option<String>,
}

/// What a batch's answers are judged by: per test, its name, and the
/// plan (expected outputs, and the comparison, checker or interactor).
#[derive(Debug, Clone)]
pub(crate) struct Checks {
    pub(crate) names: Vec<Option<String>>,
    pub(crate) plan: Plan,
}

impl RunRequest {
    /// Parses a body: a JSON object with known fields only (an unknown one
    /// is named), of the right types.
    pub(crate) fn parse(body: &[u8]) -> Result<RunRequest, ApiError> {
        expect_object(body)?;
        let refusal = RefCell::new(None);
        let mut de = serde_json::Deserializer::from_slice(body);
        let parsed = Strict::<RunRequest>::new(&refusal)
            .deserialize(&mut de)
            .and_then(|request| de.end().map(|()| request));
        if let Some(refusal) = refusal.into_inner() {
            return Err(refusal);
        }
        parsed.map_err(json_error)
    }

    /// [`RunRequest::into_judged_job`] with no catalogue.
    #[cfg(test)]
    pub(crate) fn into_job(
        self,
        registry: &Registry,
        bounds: &RequestBounds,
        client: Client,
    ) -> Result<(Job, Option<Checks>), ApiError> {
        self.into_judged_job(registry, bounds, &Catalogue::default(), client)
    }

    /// Checks the request into a job, and a batch's checks: sizes first
    /// (413), then the values this dialect adds (`language`, `code`,
    /// `timeout_ms`, `cpu_time_ms`, `tests`, `compare`, `checker`,
    /// `interactor`, the last two against `catalogue`), then the rest.
    pub(crate) fn into_judged_job(
        self,
        registry: &Registry,
        bounds: &RequestBounds,
        catalogue: &Catalogue,
        client: Client,
    ) -> Result<(Job, Option<Checks>), ApiError> {
        let refuse = |e| ApiError::from_job(e, registry.names(), field_name);
        let language = self.language.clone().ok_or_else(|| required("language"))?;
        let code = self.code.clone().ok_or_else(|| required("code"))?;
        let args = self.args.clone().unwrap_or_default();
        let stdin = self.stdin.clone().unwrap_or_default();
        let tests = self.tests.clone().unwrap_or_default();
        let request = JobRequest {
            language,
            version: self.version.clone(),
            main: code.into_bytes(),
            extra: self
                .files
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|f| (f.name, f.content.into_bytes()))
                .collect(),
            tests: tests
                .iter()
                .map(|t| RunInput {
                    stdin: t
                        .stdin
                        .clone()
                        .unwrap_or_else(|| stdin.clone())
                        .into_bytes(),
                    args: t.args.clone().unwrap_or_else(|| args.clone()),
                    files: Vec::new(),
                })
                .collect(),
            args,
            stdin: stdin.into_bytes(),
            run_limits: LimitsOverride {
                wall_time_ms: self.timeout_ms,
                cpu_time_ms: self.cpu_time_ms,
                ..LimitsOverride::default()
            },
            compile_limits: LimitsOverride::default(),
            compile_args: Vec::new(),
            streams: Streams::default(),
            outputs: self.outputs.clone().unwrap_or_default(),
        };
        request.check_sizes(bounds).map_err(refuse)?;
        let context = Context {
            registry,
            bounds,
            catalogue,
            client: client.clone(),
        };
        let checks = self.check_values(&request, tests, &context)?;
        let job = request.into_job(registry, bounds, client).map_err(refuse)?;
        Ok((job, checks))
    }

    /// The rules of this dialect's own fields; a batch's checks.
    fn check_values(
        &self,
        request: &JobRequest,
        tests: Vec<TestEntry>,
        context: &Context,
    ) -> Result<Option<Checks>, ApiError> {
        if request.language.is_empty() || request.language.len() > 64 {
            return Err(invalid("language", "length must be between 1 and 64"));
        }
        if request.main.is_empty() {
            return Err(invalid("code", "must not be empty"));
        }
        for (field, value) in [
            ("timeout_ms", self.timeout_ms),
            ("cpu_time_ms", self.cpu_time_ms),
        ] {
            if value == Some(0) {
                return Err(invalid(field, "must be at least 1 (got 0)"));
            }
        }
        if self.tests.is_none() {
            for (field, given) in [
                ("compare", self.compare.is_some()),
                ("checker", self.checker.is_some()),
                ("interactor", self.interactor.is_some()),
            ] {
                if given {
                    return Err(invalid(field, "is only for a batch (`tests`)"));
                }
            }
            return Ok(None);
        }
        if tests.is_empty() {
            return Err(invalid("tests", "must hold at least one test"));
        }
        if let Some(i) = tests
            .iter()
            .position(|t| t.name.as_ref().is_some_and(|n| n.len() > MAX_TEST_NAME))
        {
            return Err(ApiError::FieldTooLarge {
                field: "tests".to_string(),
                message: format!("has test {i} with a name over {MAX_TEST_NAME} bytes"),
            });
        }
        let judge = judging::judge(
            self.compare.as_ref(),
            self.checker.as_ref(),
            self.interactor.as_ref(),
            context,
        )?;
        let (names, expected) = tests
            .into_iter()
            .map(|t| (t.name, t.expected_output))
            .unzip();
        Ok(Some(Checks {
            names,
            plan: Plan { expected, judge },
        }))
    }
}

fn required(field: &str) -> ApiError {
    invalid(field, "is required")
}

impl<'de> DeserializeSeed<'de> for Strict<'_, RunRequest> {
    type Value = RunRequest;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RunRequest, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, RunRequest> {
    type Value = RunRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a run request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RunRequest, A::Error> {
        let mut r = RunRequest::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "language" => r.language = Some(map.next_value()?),
                "version" => r.version = map.next_value()?,
                "code" => r.code = Some(map.next_value()?),
                "stdin" => r.stdin = map.next_value()?,
                "args" => r.args = map.next_value()?,
                "timeout_ms" => r.timeout_ms = map.next_value()?,
                "cpu_time_ms" => r.cpu_time_ms = map.next_value()?,
                "compare" => r.compare = map.next_value()?,
                "outputs" => r.outputs = map.next_value()?,
                "checker" => {
                    r.checker =
                        map.next_value_seed(Strict::<Option<ProgramEntry>>::new(self.refusal))?
                }
                "interactor" => {
                    r.interactor =
                        map.next_value_seed(Strict::<Option<ProgramEntry>>::new(self.refusal))?
                }
                "files" => {
                    r.files =
                        map.next_value_seed(Strict::<Option<Vec<FileEntry>>>::new(self.refusal))?
                }
                "tests" => {
                    r.tests =
                        map.next_value_seed(Strict::<Option<Vec<TestEntry>>>::new(self.refusal))?
                }
                other => return Err(self.unknown(other)),
            }
        }
        Ok(r)
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_, TestEntry> {
    type Value = TestEntry;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TestEntry, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, TestEntry> {
    type Value = TestEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a test object (`name`, `stdin`, `args`, `expected_output`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TestEntry, A::Error> {
        let mut test = TestEntry::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => test.name = map.next_value()?,
                "stdin" => test.stdin = map.next_value()?,
                "args" => test.args = map.next_value()?,
                "expected_output" => test.expected_output = map.next_value()?,
                other => return Err(self.unknown(other)),
            }
        }
        Ok(test)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::check_file_name;
    use crate::limits::DefaultLimits;
    use proptest::prelude::*;

    fn parse(body: &str) -> Result<RunRequest, ApiError> {
        RunRequest::parse(body.as_bytes())
    }

    fn client() -> crate::job::Client {
        std::sync::Arc::from("a client")
    }

    fn bounds() -> RequestBounds {
        RequestBounds {
            max_code_bytes: 1000,
            max_files: 4,
            max_stdin_bytes: 1000,
            max_args: 4,
            max_arg_bytes: 100,
            max_tests: 4,
            max_output_files: 4,
            max_output_bytes: 1024,
        }
    }

    /// JSON values of any shape, nested a few levels.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            ".{0,40}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("python")),
            Just(serde_json::json!([{"name": "a.py", "content": "x"}])),
            Just(serde_json::json!([{"stdin": "x", "expected_output": "y"}])),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,10}", inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Request-shaped objects: the real keys (and a stray one) with values
    /// of any shape.
    fn request_like() -> impl Strategy<Value = serde_json::Value> {
        let key = prop_oneof![
            Just("language".to_string()),
            Just("code".to_string()),
            Just("stdin".to_string()),
            Just("args".to_string()),
            Just("files".to_string()),
            Just("timeout_ms".to_string()),
            Just("cpu_time_ms".to_string()),
            Just("version".to_string()),
            Just("tests".to_string()),
            Just("compare".to_string()),
            "[a-z_]{1,12}",
        ];
        prop::collection::btree_map(key, json_value(), 0..8)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_parse_to_a_request_or_a_400(body in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Err(e) = RunRequest::parse(&body) {
                prop_assert_eq!(e.status().as_u16(), 400);
            }
        }

        #[test]
        fn a_request_shaped_body_becomes_a_job_within_every_bound_or_a_4xx(value in request_like()) {
            let registry = Registry::builtin(&DefaultLimits::default()).unwrap();
            let body = serde_json::to_vec(&value).unwrap();
            let job = RunRequest::parse(&body).and_then(|r| r.into_job(&registry, &bounds(), client()));
            match job {
                Ok((job, checks)) => {
                    let b = bounds();
                    prop_assert_eq!(&job.files.main.name, &job.language.source_file);
                    prop_assert!(!job.files.main.content.is_empty());
                    let total: usize = job.files.all().map(|f| f.content.len()).sum();
                    prop_assert!(total <= b.max_code_bytes && job.files.extra.len() <= b.max_files);
                    for f in &job.files.extra {
                        prop_assert!(check_file_name(&f.name).is_ok(), "{}", f.name);
                        prop_assert!(f.name != job.files.main.name);
                    }
                    for input in job.inputs.iter() {
                        prop_assert!(input.args.len() <= b.max_args);
                        prop_assert!(input.args.iter().all(|a| a.len() <= b.max_arg_bytes && !a.contains('\0')));
                        prop_assert!(input.stdin.len() <= b.max_stdin_bytes);
                    }
                    prop_assert!(job.limits.run.wall_time_ms >= 1);
                    prop_assert!(job.limits.run.wall_time_ms <= job.language.limits.wall_time_ms);
                    prop_assert!(job.limits.run.cpu_time_ms <= job.language.limits.cpu_time_ms);
                    prop_assert!(job.inputs.len() <= b.max_tests.max(1));
                    match checks {
                        Some(checks) => prop_assert_eq!(checks.plan.expected.len(), job.inputs.len()),
                        None => prop_assert_eq!(job.inputs.len(), 1),
                    }
                }
                Err(e) => prop_assert!(matches!(e.status().as_u16(), 400 | 413), "{e:?}"),
            }
        }
    }

    #[test]
    fn a_request_parses_with_every_field() {
        let r = parse(r#"{"language":"python","version":"3","code":"print(1)","stdin":"ab","args":["x"],"files":[{"name":"a.py","content":"1"}],"timeout_ms":5,"cpu_time_ms":7,"compare":"tokens","tests":[{"name":"one","stdin":"1","args":["y"],"expected_output":"2"}]}"#).unwrap();
        assert_eq!(r.language.as_deref(), Some("python"));
        assert_eq!(r.version.as_deref(), Some("3"));
        assert_eq!(r.args, Some(vec!["x".to_string()]));
        assert_eq!(
            r.files,
            Some(vec![FileEntry {
                name: "a.py".into(),
                content: "1".into()
            }])
        );
        assert_eq!((r.timeout_ms, r.cpu_time_ms), (Some(5), Some(7)));
        assert_eq!(r.compare, Some(CompareEntry::Name("tokens".into())));
        assert_eq!(
            r.tests,
            Some(vec![TestEntry {
                name: Some("one".into()),
                stdin: Some("1".into()),
                args: Some(vec!["y".into()]),
                expected_output: Some("2".into()),
            }])
        );
        let r = parse(r#"{"language":"py","code":"x","stdin":null,"files":null}"#).unwrap();
        assert_eq!((r.stdin, r.files), (None, None));
    }

    #[test]
    fn json_errors_get_precise_codes() {
        let code = |body: &str| parse(body).unwrap_err().code();
        assert_eq!(code(r#"{"language": "py"#), "malformed_json");
        assert_eq!(code(r#"{"language": 1, "code": "x"}"#), "invalid_type");
        assert_eq!(code(r#"{"language": null, "code": "x"}"#), "invalid_type");
        assert_eq!(code(r#"["python", "print(1)"]"#), "invalid_type");
        assert_eq!(code(""), "malformed_json");
        assert_eq!(code("[1,"), "malformed_json");
        assert_eq!(
            code(r#"{"language": "python", "code": "x"} trailing"#),
            "malformed_json"
        );
        assert_eq!(
            parse(r#"{"language": "python", "code": "x", "cod": 1}"#).unwrap_err(),
            ApiError::UnknownField("cod".into())
        );
        assert_eq!(
            parse(r#"{"language": "python", "code": "x", "files": [{"name": "a", "content": "", "mode": 1}]}"#)
                .unwrap_err(),
            ApiError::UnknownField("mode".into())
        );
        assert_eq!(
            parse(r#"{"language": "python", "code": "x", "tests": [{"expected": "1"}]}"#)
                .unwrap_err(),
            ApiError::UnknownField("expected".into())
        );
        // An unknown field is named before its value is read, however deep.
        let deep = format!(r#"{{"language": "python", "zzz": {}"#, "[".repeat(100_000));
        assert_eq!(
            parse(&deep).unwrap_err(),
            ApiError::UnknownField("zzz".into())
        );
        let deep = format!(
            r#"{{"language": "python", "code": "x", "stdin": {}"#,
            "[".repeat(100_000)
        );
        assert_eq!(parse(&deep).unwrap_err().code(), "invalid_type");
        assert_eq!(
            parse(r#"{"language": "python", "code": "x", "files": [{"name": "a"}]}"#).unwrap_err(),
            ApiError::InvalidField {
                field: "content".into(),
                message: "is required in every file".into()
            }
        );
    }

    #[test]
    fn a_batch_gets_its_checks_and_each_test_the_requests_stdin_and_args_by_default() {
        let registry = Registry::builtin(&DefaultLimits::default()).unwrap();
        let body = r#"{"language":"python","code":"x","stdin":"shared","args":["a"],"compare":"exact",
            "tests":[{"name":"first","expected_output":"1"},{"stdin":"own","args":[]}]}"#;
        let (job, checks) = parse(body)
            .unwrap()
            .into_job(&registry, &bounds(), client())
            .unwrap();
        let inputs: Vec<&RunInput> = job.inputs.iter().collect();
        assert_eq!(
            *inputs[0],
            RunInput {
                stdin: b"shared".to_vec(),
                args: vec!["a".into()],
                files: Vec::new(),
            }
        );
        assert_eq!(
            *inputs[1],
            RunInput {
                stdin: b"own".to_vec(),
                args: vec![],
                files: Vec::new(),
            }
        );
        let checks = checks.unwrap();
        assert_eq!(checks.names, [Some("first".to_string()), None]);
        assert_eq!(checks.plan.expected, [Some("1".to_string()), None]);
        assert!(matches!(
            checks.plan.judge,
            crate::judging::Judge::Compare(crate::judging::Compare::Exact)
        ));
        let (_, none) = parse(r#"{"language":"python","code":"x"}"#)
            .unwrap()
            .into_job(&registry, &bounds(), client())
            .unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn bad_batches_and_limits_are_refused_naming_the_field() {
        let registry = Registry::builtin(&DefaultLimits::default()).unwrap();
        let refuse = |body: &str| {
            let e = parse(body)
                .unwrap()
                .into_job(&registry, &bounds(), client())
                .unwrap_err();
            (
                e.code(),
                match e {
                    ApiError::InvalidField { field, .. }
                    | ApiError::FieldTooLarge { field, .. } => field,
                    other => panic!("{other:?}"),
                },
            )
        };
        let five = r#"[{},{},{},{},{}]"#;
        for (body, want) in [
            (
                r#"{"language":"python","code":"x","tests":[]}"#.to_string(),
                ("invalid_field", "tests"),
            ),
            (
                format!(r#"{{"language":"python","code":"x","tests":{five}}}"#),
                ("field_too_large", "tests"),
            ),
            (
                r#"{"language":"python","code":"x","compare":"fuzzy","tests":[{}]}"#.to_string(),
                ("invalid_field", "compare"),
            ),
            (
                r#"{"language":"python","code":"x","compare":"exact"}"#.to_string(),
                ("invalid_field", "compare"),
            ),
            (
                r#"{"language":"python","code":"x","cpu_time_ms":0}"#.to_string(),
                ("invalid_field", "cpu_time_ms"),
            ),
            (
                r#"{"language":"python","code":"x","cpu_time_ms":999999999}"#.to_string(),
                ("invalid_field", "cpu_time_ms"),
            ),
            (
                format!(
                    r#"{{"language":"python","code":"x","tests":[{{"stdin":"{}"}}]}}"#,
                    "s".repeat(1001)
                ),
                ("field_too_large", "tests"),
            ),
            (
                format!(
                    r#"{{"language":"python","code":"x","tests":[{{"name":"{}"}}]}}"#,
                    "n".repeat(257)
                ),
                ("field_too_large", "tests"),
            ),
            (
                r#"{"language":"python","code":"x","tests":[{"args":["a\u0000"]}]}"#.to_string(),
                ("invalid_field", "tests"),
            ),
        ] {
            let (code, field) = refuse(&body);
            assert_eq!((code, field.as_str()), want, "{body}");
        }
    }
}
