//! Helpers shared by every place that validates with `validator`: turning
//! its nested errors into `(path, message)` pairs a person can read.

use std::borrow::Cow;

use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

/// One refused field: its dotted path and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub(crate) path: String,
    /// The validator's code (`range`, `length`, or one of ours).
    pub(crate) code: String,
    pub(crate) message: String,
}

impl FieldError {
    /// The error of the field at `path`, with our own `code`.
    pub(crate) fn new(path: &str, code: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.to_string(),
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// Flattens validator's nested errors into sorted `(path, message)` pairs.
pub(crate) fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    out.push(FieldError {
                        path: path.clone(),
                        code: e.code.to_string(),
                        message: describe(e),
                    });
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    collect(inner, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

/// A sentence for one validation error: its own message, or one built from
/// the standard validators' parameters.
pub(crate) fn describe(e: &ValidationError) -> String {
    if let Some(m) = &e.message {
        return m.to_string();
    }
    let param = |k: &str| e.params.get(k).map(|v| v.to_string());
    let got = param("value")
        .map(|v| format!(" (got {v})"))
        .unwrap_or_default();
    match e.code.as_ref() {
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}{got}"),
            (Some(min), None) => format!("must be at least {min}{got}"),
            (None, Some(max)) => format!("must be at most {max}{got}"),
            (None, None) => format!("is out of range{got}"),
        },
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("length must be between {min} and {max}"),
            (Some(min), None) => format!("length must be at least {min}"),
            (None, Some(max)) => format!("length must be at most {max}"),
            (None, None) => "has a bad length".to_string(),
        },
        code => format!("is invalid ({code})"),
    }
}

/// A validation error with a message of our own.
pub(crate) fn error(code: &'static str, message: impl Into<Cow<'static, str>>) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

/// A value usable as a Docker label value and a name in logs: 1 to 63
/// characters of `[A-Za-z0-9_.-]`.
pub(crate) fn label_value(value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(error(
            "label_value",
            format!("must be 1 to 63 characters of A-Z, a-z, 0-9, `_`, `.` or `-` (got {value:?})"),
        ))
    }
}
