//! Reading a Judge0 request: its query parameters as Judge0 reads them,
//! its JSON body, and its refusals in Judge0's own body (`{"error"}`) with
//! the status and headers of the one mapping.

use bytes::Buf;
use futures_util::Stream;
use serde::Serialize;
use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::Response;

use super::super::answer;
use super::super::answer::new_request_id;
use super::super::error::ApiError;
use super::super::gate::{Caller, Reach};
use super::super::state::Api;
use crate::judge0::Judge0Error;
use crate::judge0::render::Fields;
use crate::judge0::store::Scope;
use crate::runner::Runner;

/// The query parameters of Judge0's submission routes, as Judge0 reads
/// them: the first of each name counts, and a flag is set only by the text
/// `true`.
#[derive(Debug, Clone, Default, PartialEq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Params {
    /// `true`: text fields are base64, in and out.
    #[param(value_type = Option<bool>)]
    pub(super) base64_encoded: bool,
    /// `true`: answer with the result (creation only).
    #[param(value_type = Option<bool>)]
    pub(super) wait: bool,
    /// Fields to answer, comma-separated, or `*`.
    pub(super) fields: Option<String>,
    /// The tokens of `GET /submissions/batch`, comma-separated (described
    /// there).
    #[param(ignore)]
    pub(super) tokens: Option<String>,
    /// `GET /submissions`'s page and its size, as sent (described there).
    #[param(ignore)]
    pub(super) page: Option<String>,
    #[param(ignore)]
    pub(super) per_page: Option<String>,
}

impl Params {
    pub(super) fn parse(query: &str) -> Params {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        Params {
            base64_encoded: get("base64_encoded").as_deref() == Some("true"),
            wait: get("wait").as_deref() == Some("true"),
            fields: get("fields"),
            tokens: get("tokens"),
            page: get("page"),
            per_page: get("per_page"),
        }
    }

    /// The fields `fields=` selects, or Judge0's 400 naming those it does
    /// not know.
    pub(super) fn fields(&self) -> Result<Fields, Refused> {
        Fields::parse(self.fields.as_deref())
            .map_err(|text| Refused::Judge0(StatusCode::BAD_REQUEST, text))
    }
}

/// A number as Ruby's `String#to_i` reads it: leading blanks, a sign,
/// then the digits up to the first other character (`"3x"` is 3, `"x"`
/// 0), with `_` between digits; beyond `i64`'s range, its bound.
pub(super) fn ruby_int(text: &str) -> i64 {
    let text = text.trim_start();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    let mut previous = None;
    for c in digits.chars() {
        match (c, previous) {
            ('0'..='9', _) => {
                let digit = i64::from(c as u8 - b'0');
                value = value.saturating_mul(10).saturating_add(digit);
            }
            ('_', Some('0'..='9')) => {}
            _ => break,
        }
        previous = Some(c);
    }
    if negative { -value } else { value }
}

/// Who sent a request, and the length its body declared.
pub(super) struct Request<'a> {
    pub(super) caller: &'a Caller,
    pub(super) declared: Option<u64>,
}

impl Request<'_> {
    /// Whose stored submissions it reads and deletes: with keys on, its
    /// key's only (unless granted `judge0:all`).
    pub(super) fn scope(&self) -> Scope<'_> {
        match self.caller.reach {
            Reach::Every => Scope::Every,
            Reach::Own => Scope::Client(&self.caller.client),
        }
    }
}

/// Judge0's error: `{"error": text}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(super) struct Judge0ErrorBody {
    pub(super) error: String,
}

/// Why a Judge0 request is not answered as asked; written in Judge0's
/// `{"error"}` ([`Judge0ErrorBody`]).
#[derive(Debug)]
pub(super) enum Refused {
    /// One of Judge0's own refusals, with its status.
    Judge0(StatusCode, String),
    /// The service's trouble, or a refused body: with the status and
    /// headers [`ApiError`] gives it.
    Trouble(ApiError),
}

impl Refused {
    /// Judge0's 404.
    pub(super) fn not_found() -> Refused {
        Refused::Judge0(StatusCode::NOT_FOUND, "Not Found".into())
    }

    /// A call Judge0's service could not serve (a full queue, the
    /// database, no storage, a run refused, an internal fault: logged with
    /// a request id).
    pub(super) fn failed(e: Judge0Error) -> Refused {
        Refused::Trouble(ApiError::from_judge0(e, &new_request_id()))
    }

    pub(super) fn into_response(self) -> Response {
        match self {
            Refused::Judge0(status, error) => answer::json(status, &Judge0ErrorBody { error }),
            Refused::Trouble(e) => e.respond(&Judge0ErrorBody {
                error: e.to_string(),
            }),
        }
    }
}

/// The request's body as JSON (an empty one is `{}`), or the answer
/// refusing it.
pub(super) async fn read_json<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Result<Value, Refused> {
    let bytes = api
        .body
        .read(&request.caller.client, request.declared, body)
        .await
        .map_err(Refused::Trouble)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Refused::Trouble(ApiError::MalformedJson(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_ruby_reads_them() {
        for (text, n) in [
            ("3", 3),
            (" 42abc", 42),
            ("-4", -4),
            ("+7", 7),
            ("1_000", 1000),
            ("1__0", 1),
            ("_1", 0),
            ("abc", 0),
            ("", 0),
            ("2.9", 2),
            ("99999999999999999999", i64::MAX),
        ] {
            assert_eq!(ruby_int(text), n, "{text:?}");
        }
    }
}
