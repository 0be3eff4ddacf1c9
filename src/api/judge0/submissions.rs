//! Judge0's submissions: `POST /judge0/submissions` (queued, or with
//! `wait=true` run and answered), `POST /submissions/batch`,
//! `GET /submissions/{token}`, `GET /submissions/batch`,
//! `GET /submissions` (a page of the caller's) and
//! `DELETE /submissions/{token}`, each written as a
//! [`SubmissionView`] with the fields `?fields=` selects.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::Stream;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::AnyOfBuilder;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use warp::http::StatusCode;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::reply::{Reply, Response};

use super::super::answer::{self, collect, new_request_id, reference};
use super::super::state::Api;
use super::request::{Judge0ErrorBody, Params, Refused, Request, read_json, ruby_int};
use super::sessions::authorized;
use crate::judge0::Judge0Error;
use crate::judge0::render::{Fields, Record, SubmissionView};
use crate::judge0::request::{Errors, Submission};
use crate::judge0::status::Judge0Status;
use crate::judge0::store::{Deleted, Scope, now_ms};
use crate::language::Registry;
use crate::runner::Runner;

const CONVERSION_ONE: &str = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";
const CONVERSION_MANY: &str = "some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter";

/// A queued submission's token.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
struct Token {
    token: String,
}

/// Judge0's refusals of a submission: each field with its messages, in
/// the order the checks ran.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(value_type = BTreeMap<String, Vec<String>>)]
struct FieldErrors<'a>(&'a Errors);

/// `POST /judge0/submissions`'s answer (201).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Created<'a> {
    /// Queued.
    Queued(&'a Token),
    /// With `wait=true`: the submission, with the fields asked for.
    Finished(&'a SubmissionView<'a>),
    /// With `wait=true`, when a text cannot be written.
    Unconvertible(&'a Unconvertible),
}

/// Judge0's conversion error, and the token: the answer to `wait=true`
/// when a text of the submission is not UTF-8 and base64 was not asked.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
struct Unconvertible {
    error: &'static str,
    token: String,
}

/// `anyOf`, not `oneOf`: every field of a view is optional, so a token
/// alone is also a view.
impl PartialSchema for Created<'_> {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(reference::<Token>())
            .item(reference::<SubmissionView>())
            .item(reference::<Unconvertible>())
            .into()
    }
}

impl ToSchema for Created<'_> {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        collect::<Token>(schemas);
        collect::<SubmissionView>(schemas);
        collect::<Unconvertible>(schemas);
    }
}

/// One entry of a batch's answer, in the order sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
enum BatchEntry<'a> {
    /// Queued.
    Queued(Token),
    /// Refused.
    Refused(FieldErrors<'a>),
}

/// `POST /judge0/submissions/batch`'s body, as it is read: its
/// submissions, each checked as `POST /submissions` checks one (none when
/// `submissions` is not an array).
#[derive(Debug, Clone, Copy, ToSchema)]
struct BatchRequest<'a> {
    #[schema(value_type = Vec<Submission>)]
    submissions: &'a [Value],
}

impl BatchRequest<'_> {
    fn of(body: &Value) -> BatchRequest<'_> {
        BatchRequest {
            submissions: body["submissions"].as_array().map_or(&[], Vec::as_slice),
        }
    }
}

/// `GET /judge0/submissions/batch`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct BatchShow<'a> {
    /// In the order of the tokens; `null` for an unknown one.
    submissions: Vec<Option<SubmissionView<'a>>>,
}

/// A finished submission's 201 with the fields asked for, or, when a text
/// of it cannot be written, Judge0's conversion error with its token.
fn finished(record: &Record, fields: &Fields, base64: bool, registry: &Registry) -> Response {
    let view = SubmissionView::new(record, base64, registry).select(fields);
    answer::try_json(StatusCode::CREATED, &Created::Finished(&view)).unwrap_or_else(|_| {
        let unconvertible = Unconvertible {
            error: CONVERSION_ONE,
            token: record.token.to_string(),
        };
        answer::json(StatusCode::CREATED, &Created::Unconvertible(&unconvertible))
    })
}

/// A refused submission: 422 with each field's messages.
fn refused(errors: &Errors) -> Response {
    answer::json(StatusCode::UNPROCESSABLE_ENTITY, &FieldErrors(errors))
}

/// Creates a submission: queued (its token), or with `wait=true` run and
/// answered with the fields asked for. (`enable_network` and the
/// per-process limits are refused when asked.)
#[utoipa::path(post, path = "/submissions", tag = "judge0", operation_id = "judge0_create",
    params(Params),
    request_body = Submission,
    responses(
        (status = 201, description = "Queued (its token), or with wait=true its result", body = Created),
        (status = 400, description = "Bad fields or body, or storage off", body = Judge0ErrorBody),
        (status = 404, description = "Deleted while waited for", body = Judge0ErrorBody),
        (status = 408, description = "The body was too slow", body = Judge0ErrorBody),
        (status = 413, description = "Body too large", body = Judge0ErrorBody),
        (status = 422, description = "Refused: each field with its messages", body = FieldErrors),
        (status = 429, description = "Busy, or the client's share of the queue or the store is used", body = Judge0ErrorBody),
        (status = 500, description = "The service's fault", body = Judge0ErrorBody),
        (status = 503, description = "Queue full, or cannot run now", body = Judge0ErrorBody),
        (status = 507, description = "The store is full", body = Judge0ErrorBody),
    ))]
pub(super) async fn create<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    params: &Params,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Result<Response, Refused> {
    let fields = params.fields()?;
    let base64 = params.base64_encoded;
    let body = read_json(api, request, body).await?;
    let judge0 = &api.judge0;
    let submission = match judge0.accept(&body, base64) {
        Ok(submission) => submission,
        Err(errors) => return Ok(refused(&errors)),
    };
    let client = &request.caller.client;
    charge(api, request, std::slice::from_ref(&submission))?;
    if !params.wait {
        let tokens = judge0
            .enqueue(client, std::slice::from_ref(&submission))
            .await
            .map_err(Refused::failed)?;
        let token = Token {
            token: tokens.into_iter().next().expect("one token"),
        };
        return Ok(answer::json(StatusCode::CREATED, &Created::Queued(&token)));
    }
    let registry = api.runner.registry();
    if judge0.stores() {
        let tokens = judge0
            .enqueue(client, std::slice::from_ref(&submission))
            .await
            .map_err(Refused::failed)?;
        let token = tokens.into_iter().next().expect("one token");
        return match judge0.wait(&token).await.map_err(Refused::failed)? {
            Some(found) => Ok(finished(&Record::from(&found), &fields, base64, &registry)),
            // Removed meanwhile (DELETE): gone.
            None => Err(Refused::not_found()),
        };
    }
    // Nothing is stored: run it now and answer.
    let created_at = now_ms();
    let judged = judge0
        .run_now(&submission, client)
        .await
        .map_err(Refused::failed)?;
    let token = uuid::Uuid::new_v4().to_string();
    let record = Record {
        token: &token,
        status: judged.status_id,
        submission: &submission,
        judged: Some(&judged),
        created_at,
        finished_at: Some(now_ms()),
    };
    Ok(finished(&record, &fields, base64, &registry))
}

/// Charges the caller's rate for the runs of `submissions` (each its
/// `number_of_runs`); the door charged the request one.
fn charge<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    submissions: &[Submission],
) -> Result<(), Refused> {
    let runs = submissions
        .iter()
        .map(|s| usize::try_from(s.number_of_runs).unwrap_or(1).max(1))
        .sum();
    (api.gate.charge(request.caller, runs)).map_err(|e| Refused::Trouble(e.into()))
}

/// The count rule of a batch (Judge0's messages).
fn batch_size(count: usize, max: usize) -> Result<(), Refused> {
    let text = if count == 0 {
        "there should be at least one submission in a batch".to_string()
    } else if count > max {
        format!("number of submissions in a batch should be less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(Refused::Judge0(StatusCode::BAD_REQUEST, text))
}

/// Creates a batch of submissions, each checked as one is; the valid
/// ones are queued, all or none.
#[utoipa::path(post, path = "/submissions/batch", tag = "judge0", operation_id = "judge0_create_batch",
    params(Params),
    request_body = BatchRequest,
    responses(
        (status = 201, description = "A token or the errors of each, in order", body = Vec<BatchEntry>),
        (status = 400, description = "Batch size or body, or storage off", body = Judge0ErrorBody),
        (status = 408, description = "The body was too slow", body = Judge0ErrorBody),
        (status = 413, description = "Body too large", body = Judge0ErrorBody),
        (status = 422, description = "None was valid", body = Vec<BatchEntry>),
        (status = 429, description = "Too many bodies at once, or the client's share of the queue or the store is used", body = Judge0ErrorBody),
        (status = 500, description = "The service's fault", body = Judge0ErrorBody),
        (status = 503, description = "Queue full", body = Judge0ErrorBody),
        (status = 507, description = "The store is full", body = Judge0ErrorBody),
    ))]
pub(super) async fn create_batch<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    params: &Params,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Result<Response, Refused> {
    let judge0 = &api.judge0;
    if !judge0.stores() {
        return Err(Refused::Judge0(
            StatusCode::BAD_REQUEST,
            "batched submissions are not allowed".into(),
        ));
    }
    let body = read_json(api, request, body).await?;
    let batch = BatchRequest::of(&body);
    batch_size(batch.submissions.len(), judge0.settings().max_batch)?;
    let checked: Vec<Result<Submission, Errors>> = batch
        .submissions
        .iter()
        .map(|item| judge0.accept(item, params.base64_encoded))
        .collect();
    let valid: Vec<Submission> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    charge(api, request, &valid)?;
    if valid.is_empty() {
        let refused: Vec<BatchEntry> = checked
            .iter()
            .filter_map(|c| c.as_ref().err())
            .map(|errors| BatchEntry::Refused(FieldErrors(errors)))
            .collect();
        return Ok(answer::json(StatusCode::UNPROCESSABLE_ENTITY, &refused));
    }
    let mut tokens = judge0
        .enqueue(&request.caller.client, &valid)
        .await
        .map_err(Refused::failed)?
        .into_iter();
    let entries: Vec<BatchEntry> = checked
        .iter()
        .map(|c| match c {
            Ok(_) => BatchEntry::Queued(Token {
                token: tokens.next().expect("a token per valid submission"),
            }),
            Err(errors) => BatchEntry::Refused(FieldErrors(errors)),
        })
        .collect();
    Ok(answer::json(StatusCode::CREATED, &entries))
}

/// A submission, with the fields asked for (with keys on, one of the
/// caller's key; another's is not found).
#[utoipa::path(get, path = "/submissions/{token}", tag = "judge0", operation_id = "judge0_show",
    params(("token" = String, Path, description = "The submission's token"), Params),
    responses(
        (status = 200, description = "The submission", body = SubmissionView),
        (status = 400, description = "Fields, or not UTF-8 without base64, or storage off", body = Judge0ErrorBody),
        (status = 404, description = "No such submission", body = Judge0ErrorBody),
        (status = 500, description = "The service's fault", body = Judge0ErrorBody),
        (status = 503, description = "The database failed", body = Judge0ErrorBody),
    ))]
pub(super) async fn show<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    params: &Params,
    token: &str,
) -> Result<Response, Refused> {
    let fields = params.fields()?;
    let found = match api.judge0.find(token, request.scope()).await {
        Ok(Some(found)) => found,
        Ok(None) | Err(Judge0Error::NotStored) => return Err(Refused::not_found()),
        Err(e) => return Err(Refused::failed(e)),
    };
    let registry = api.runner.registry();
    let view = SubmissionView::new(&Record::from(&found), params.base64_encoded, &registry)
        .select(&fields);
    answer::try_json(StatusCode::OK, &view)
        .map_err(|_| Refused::Judge0(StatusCode::BAD_REQUEST, CONVERSION_ONE.into()))
}

/// Several submissions, with the fields asked for (with keys on, the
/// caller's key's; another's is `null`, as an unknown one), written one
/// at a time as the client reads them ([`BatchAnswer`]).
#[utoipa::path(get, path = "/submissions/batch", tag = "judge0", operation_id = "judge0_show_batch",
    params(("tokens" = String, Query, description = "Tokens, comma-separated"), Params),
    responses(
        (status = 200, description = "Each submission, null when unknown", body = BatchShow),
        (status = 400, description = "Batch size, fields, or not UTF-8 without base64, or storage off", body = Judge0ErrorBody),
        (status = 500, description = "The service's fault", body = Judge0ErrorBody),
        (status = 503, description = "The database failed", body = Judge0ErrorBody),
    ))]
pub(super) async fn show_batch<R: Runner>(
    api: &Arc<Api<R>>,
    request: &Request<'_>,
    params: &Params,
) -> Result<Response, Refused> {
    let fields = params.fields()?;
    let tokens: Vec<String> = params
        .tokens
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    batch_size(tokens.len(), api.judge0.settings().max_batch)?;
    if !api.judge0.stores() {
        return Err(Refused::failed(Judge0Error::NotStored));
    }
    let envelope = BatchShow {
        submissions: Vec::new(),
    };
    let batch = BatchAnswer {
        api: api.clone(),
        tokens,
        owner: owner(request),
        fields,
        base64: params.base64_encoded,
        envelope: serde_json::to_string(&envelope).expect("an empty batch is written"),
        checked: Vec::new(),
    };
    batch.answer().await
}

/// With keys on, the caller's client, whose submissions alone it reaches
/// (unless granted `judge0:all`: `None`).
fn owner(request: &Request<'_>) -> Option<Arc<str>> {
    match request.scope() {
        Scope::Every => None,
        Scope::Client(client) => Some(Arc::from(client)),
    }
}

/// Judge0's page size when `per_page` is not given.
const PER_PAGE: i64 = 20;
/// The largest page given: a larger `per_page` gets pages of this size
/// (the answer's `meta` counts them), so that one request reads a bounded
/// number of stored rows.
const MAX_PER_PAGE: i64 = 100;

/// `GET /judge0/submissions`'s place in the list (will_paginate's).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
struct Meta {
    current_page: i64,
    next_page: Option<i64>,
    prev_page: Option<i64>,
    total_pages: i64,
    total_count: i64,
}

impl Meta {
    fn of(page: i64, per_page: i64, total: i64) -> Meta {
        let total_pages = if total == 0 {
            1
        } else {
            total / per_page + i64::from(total % per_page != 0)
        };
        Meta {
            current_page: page,
            next_page: (page < total_pages).then(|| page + 1),
            prev_page: (page > 1).then(|| page - 1),
            total_pages,
            total_count: total,
        }
    }
}

/// `GET /judge0/submissions`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct List<'a> {
    /// Newest first.
    submissions: Vec<SubmissionView<'a>>,
    meta: Meta,
}

/// The page and its size asked, as Judge0 reads them (Ruby's `to_i`),
/// or Judge0's 400 for a page below 1 or a size below 0 (and here a size
/// of 0, where Judge0 fails with a 500 once anything is stored).
fn paging(params: &Params) -> Result<(i64, i64), Refused> {
    let page = params.page.as_deref().map_or(1, ruby_int);
    let per_page = params.per_page.as_deref().map_or(PER_PAGE, ruby_int);
    let bad = |text: String| Err(Refused::Judge0(StatusCode::BAD_REQUEST, text));
    if page <= 0 {
        return bad(format!("invalid page: {page}"));
    }
    if per_page <= 0 {
        return bad(format!("invalid per_page: {per_page}"));
    }
    Ok((page, per_page.min(MAX_PER_PAGE)))
}

/// A page of the caller's submissions, newest first (with keys on, its
/// key's; every one for `judge0:all`; with keys off none may be listed,
/// as Judge0 without authorization), written one at a time as the
/// client reads them.
#[utoipa::path(get, path = "/submissions", tag = "judge0", operation_id = "judge0_list",
    params(
        ("page" = Option<i64>, Query, description = "The page, from 1 (default 1)"),
        ("per_page" = Option<i64>, Query, description = "Submissions a page (default 20)"),
        Params,
    ),
    responses(
        (status = 200, description = "A page of the caller's submissions", body = List),
        (status = 400, description = "Page, fields, or not UTF-8 without base64, or storage off", body = Judge0ErrorBody),
        (status = 403, description = "Keys are off: nothing is listed", body = Judge0ErrorBody),
        (status = 500, description = "The service's fault", body = Judge0ErrorBody),
        (status = 503, description = "The database failed", body = Judge0ErrorBody),
    ))]
pub(super) async fn list<R: Runner>(
    api: &Arc<Api<R>>,
    request: &Request<'_>,
    params: &Params,
) -> Result<Response, Refused> {
    authorized(api)?;
    let fields = params.fields()?;
    let (page, per_page) = paging(params)?;
    let offset = (page - 1).saturating_mul(per_page);
    let found =
        (api.judge0.page(request.scope(), offset, per_page).await).map_err(Refused::failed)?;
    let envelope = List {
        submissions: Vec::new(),
        meta: Meta::of(page, per_page, found.total),
    };
    let list = BatchAnswer {
        api: api.clone(),
        tokens: found.tokens,
        owner: owner(request),
        fields,
        base64: params.base64_encoded,
        envelope: serde_json::to_string(&envelope).expect("an empty list is written"),
        checked: Vec::new(),
    };
    list.answer().await
}

/// `GET /submissions/batch`'s answer, and `GET /submissions`', written
/// one submission at a time:
/// each is read from the store and rendered only once the client has
/// read the one before (hyper asks for the next part of a body when it
/// has room for it), so that an answer never read holds one
/// submission's rendering, not the batch's. Without base64, every
/// submission is checked first (one at a time), so that one whose text
/// is not UTF-8 gets Judge0's 400 before anything is written.
struct BatchAnswer<R> {
    api: Arc<Api<R>>,
    tokens: Vec<String>,
    /// With keys on, the caller's client, whose submissions alone it
    /// reads (unless granted `judge0:all`: `None`).
    owner: Option<Arc<str>>,
    fields: Fields,
    base64: bool,
    /// The answer with its list of submissions empty (`[]`), written
    /// around them.
    envelope: String,
    /// Without base64: each submission's status when it was checked
    /// (`None`: unknown).
    checked: Vec<Option<Judge0Status>>,
}

impl<R: Runner> BatchAnswer<R> {
    /// Whose submissions it reads.
    fn scope(&self) -> Scope<'_> {
        self.owner.as_deref().map_or(Scope::Every, Scope::Client)
    }

    async fn answer(mut self) -> Result<Response, Refused> {
        if self.tokens.is_empty() {
            // An empty page: the envelope is the answer.
            let mut response = self.envelope.into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return Ok(response);
        }
        if !self.base64 {
            self.check().await?;
        }
        // The first is read before answering, so that a database that
        // fails is a 503, as for one submission.
        let first = self.entry(0).await.map_err(Refused::failed)?;
        let (open, close) = (self.envelope.split_once("[]"))
            .expect("the list of submissions is written `[]` when empty");
        let (open, close) = (format!("{open}["), format!("]{close}"));
        let count = self.tokens.len();
        let this = Arc::new(self);
        let parts = futures_util::stream::unfold(Some(0), move |next| {
            let (this, open, close, first) =
                (this.clone(), open.clone(), close.clone(), first.clone());
            async move {
                let i = next?;
                let mut part = if i == 0 {
                    open.into_bytes()
                } else {
                    b",".to_vec()
                };
                match i {
                    0 => part.extend_from_slice(&first),
                    i if i == count => return Some((Ok(Bytes::from(close)), None)),
                    i => match this.entry(i).await {
                        Ok(entry) => part.extend_from_slice(&entry),
                        Err(e) => {
                            let request_id = new_request_id();
                            tracing::error!(%request_id, error = %e, "judge0: a batch's answer was cut short");
                            return Some((Err(std::io::Error::other(e.to_string())), None));
                        }
                    },
                }
                Some((Ok(Bytes::from(part)), Some(i + 1)))
            }
        });
        let mut response =
            warp::reply::stream(sync_wrapper::SyncStream::new(parts)).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(response)
    }

    /// Without base64: reads every submission, one at a time, and refuses
    /// the batch (Judge0's 400) if a text of one is not UTF-8.
    async fn check(&mut self) -> Result<(), Refused> {
        let registry = self.api.runner.registry();
        for token in &self.tokens {
            let found =
                (self.api.judge0.find(token, self.scope()).await).map_err(Refused::failed)?;
            if let Some(found) = &found {
                let view = SubmissionView::new(&Record::from(found), false, &registry)
                    .select(&self.fields);
                serde_json::to_writer(std::io::sink(), &view).map_err(|_| {
                    Refused::Judge0(StatusCode::BAD_REQUEST, CONVERSION_MANY.into())
                })?;
            }
            self.checked.push(found.map(|f| f.status));
        }
        Ok(())
    }

    /// The `i`th submission, written (`null` when unknown). Without
    /// base64, one whose result came after the check and cannot be written
    /// is written as the check found it (its status then, no result).
    async fn entry(&self, i: usize) -> Result<Vec<u8>, Judge0Error> {
        let Some(found) = self.api.judge0.find(&self.tokens[i], self.scope()).await? else {
            return Ok(b"null".to_vec());
        };
        let registry = self.api.runner.registry();
        let record = Record::from(&found);
        let write = |record: &Record| {
            let view = SubmissionView::new(record, self.base64, &registry).select(&self.fields);
            serde_json::to_vec(&view)
        };
        if let Ok(written) = write(&record) {
            return Ok(written);
        }
        let as_checked = self.checked.get(i).copied().flatten().map(|status| Record {
            status,
            judged: None,
            finished_at: None,
            ..record
        });
        Ok(as_checked
            .and_then(|record| write(&record).ok())
            .unwrap_or_else(|| b"null".to_vec()))
    }
}

/// Deletes a finished submission, and answers it (in base64, whatever
/// was asked, as Judge0 does); with keys on, one of the caller's key only.
#[utoipa::path(delete, path = "/submissions/{token}", tag = "judge0", operation_id = "judge0_delete",
    params(("token" = String, Path, description = "The submission's token"), Params),
    responses(
        (status = 200, description = "Deleted (answered in base64)", body = SubmissionView),
        (status = 400, description = "Fields, or still queued or running, or storage off", body = Judge0ErrorBody),
        (status = 404, description = "No such submission", body = Judge0ErrorBody),
        (status = 500, description = "The service's fault", body = Judge0ErrorBody),
        (status = 503, description = "The database failed", body = Judge0ErrorBody),
    ))]
pub(super) async fn delete<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    params: &Params,
    token: &str,
) -> Result<Response, Refused> {
    let fields = params.fields()?;
    match api.judge0.delete(token, request.scope()).await {
        Ok(Ok(found)) => {
            let registry = api.runner.registry();
            let view = SubmissionView::new(&Record::from(&found), true, &registry).select(&fields);
            Ok(answer::json(StatusCode::OK, &view))
        }
        Ok(Err(Deleted::Busy(status))) => {
            let description =
                Judge0Status::from_id(status).map_or("Unknown", Judge0Status::description);
            Err(Refused::Judge0(
                StatusCode::BAD_REQUEST,
                format!(
                    "submission cannot be deleted because its status is {status} ({description})"
                ),
            ))
        }
        Ok(Err(_)) | Err(Judge0Error::NotStored) => Err(Refused::not_found()),
        Err(e) => Err(Refused::failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_at_most_a_hundred_and_the_last_page_has_no_next() {
        let asked = |query: &str| paging(&Params::parse(query)).ok();
        assert_eq!(asked(""), Some((1, PER_PAGE)));
        assert_eq!(asked("per_page=100"), Some((1, 100)));
        assert_eq!(asked("per_page=999999999"), Some((1, MAX_PER_PAGE)));
        assert_eq!(asked("page=0"), None);
        // Ruby's to_i reads a page past i64 as its largest: no next page,
        // and no overflow on the way.
        let (page, per_page) = asked("page=99999999999999999999").unwrap();
        let meta = Meta::of(page, per_page, 5);
        assert_eq!((meta.next_page, meta.total_pages), (None, 1));
        assert_eq!(Meta::of(1, 2, 5).next_page, Some(2));
    }
}
