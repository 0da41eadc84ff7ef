//! The HTTP routes: the index, the JSON API, comparisons, run files and downloads.
//!
//! Paths under `/runs/`, `/api/runs/` and `/download/` are taken from the raw request URI and
//! decoded by [`super::safe_path`] rather than by axum's `Path` extractor, so that one piece of code
//! decides, once, what a path means. File-system work runs on the blocking pool.

use std::path::Path;
use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use serde::Deserialize;

use super::archive;
use super::catalog::{Catalog, Filter, LoadError, RunDetail, RunId, Status};
use super::compare::{compare, Comparison};
use super::files::{self, content_type, FILE_BYTES_MAX};
use super::pages::{ComparePage, DirPage, ErrorPage, IndexPage};
use super::safe_path::{resolve_inside, split_raw, Segments};
use crate::store;

/// Pages of the server itself fetch nothing from anywhere, and submit forms only to it.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// Files of a run (its report, drawings) may use what they carry inline and the run's other files,
/// never another origin: a report stays self-contained even if a value in it was hostile.
const FILE_CSP: &str = "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; \
form-action 'none'; base-uri 'none'";

pub struct AppState {
    pub catalog: Catalog,
}

type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/runs", get(api_runs))
        .route("/api/runs/{*id}", get(api_run))
        .route("/compare", get(compare_page))
        .route("/api/compare", get(api_compare))
        .route("/runs/{*path}", get(run_path))
        .route("/download/{*path}", get(download))
        .fallback(|| async { PageError(HttpError::not_found("no such page")) })
        .layer(middleware::map_response(common_headers))
        .with_state(state)
}

/// An error answer: a status and a sentence for the person or program that asked.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    message: String,
}

impl HttpError {
    fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }
    fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, message)
    }
    fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }
    fn internal(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<LoadError> for HttpError {
    fn from(e: LoadError) -> HttpError {
        match e {
            LoadError::NotFound(_) => HttpError::not_found(e.to_string()),
            LoadError::Unreadable(_) => HttpError::internal(e.to_string()),
        }
    }
}

/// An error shown as a page.
struct PageError(HttpError);
/// An error answered as `{"error": "…"}`.
struct ApiError(HttpError);

impl From<HttpError> for PageError {
    fn from(e: HttpError) -> Self {
        PageError(e)
    }
}
impl From<HttpError> for ApiError {
    fn from(e: HttpError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let HttpError { status, message } = self.0;
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
            message: message.clone(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.0.message });
        (self.0.status, Json(body)).into_response()
    }
}

/// Runs file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(HttpError::internal(format!("the request failed: {e}"))))
}

fn render(page: impl Template) -> Result<Response, HttpError> {
    page.render()
        .map(|html| Html(html).into_response())
        .map_err(|e| HttpError::internal(format!("cannot render the page: {e}")))
}

/// `?verdict=invalid&target=cluster`; empty values (the form's "all") filter nothing.
#[derive(Debug, Deserialize)]
struct FilterQuery {
    verdict: Option<String>,
    target: Option<String>,
}

impl FilterQuery {
    fn filter(self) -> Result<Filter, HttpError> {
        let verdict = match self.verdict.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(Status::parse(v).ok_or_else(|| {
                let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                HttpError::bad_request(format!(
                    "unknown verdict {v:?}: valid choices are {}",
                    names.join(", ")
                ))
            })?),
        };
        Ok(Filter {
            verdict,
            target: self.target.filter(|t| !t.is_empty()),
        })
    }
}

fn filter_of(query: Result<Query<FilterQuery>, QueryRejection>) -> Result<Filter, HttpError> {
    let Query(q) = query.map_err(|e| HttpError::bad_request(e.body_text()))?;
    q.filter()
}

async fn index(
    State(s): State<Shared>,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let filter = filter_of(query)?;
    let page = blocking(move || {
        let listing = s.catalog.list().map_err(store_unreadable)?;
        Ok(IndexPage::new(s.catalog.root(), listing, &filter))
    })
    .await?;
    Ok(render(page)?)
}

async fn api_runs(
    State(s): State<Shared>,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let filter = filter_of(query)?;
    let runs = blocking(move || {
        let listing = s.catalog.list().map_err(store_unreadable)?;
        Ok(listing
            .runs
            .into_iter()
            .filter(|r| filter.matches(r))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(runs).into_response())
}

fn store_unreadable(e: std::io::Error) -> HttpError {
    HttpError::internal(format!("cannot read the store: {e}"))
}

async fn api_run(State(s): State<Shared>, uri: Uri) -> Result<Response, ApiError> {
    let raw = uri.path().strip_prefix("/api/runs/").unwrap_or_default();
    let id = run_id_of(&split_raw(raw).map_err(|e| HttpError::bad_request(e.to_string()))?)?;
    let detail = blocking(move || Ok(s.catalog.load(&id)?)).await?;
    Ok(Json(detail).into_response())
}

/// A run id that is the whole path: exactly two segments.
fn run_id_of(path: &Segments) -> Result<RunId, HttpError> {
    match path.segments.as_slice() {
        [group, name] => {
            RunId::from_segments(group, name).map_err(|e| HttpError::bad_request(e.to_string()))
        }
        _ => Err(HttpError::not_found(
            "a run id is <target>-<workload>/<stamp>",
        )),
    }
}

#[derive(Debug, Deserialize)]
struct CompareQuery {
    a: Option<String>,
    b: Option<String>,
}

async fn compare_page(
    State(s): State<Shared>,
    query: Result<Query<CompareQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let comparison = comparison(s, query).await?;
    Ok(render(ComparePage::new(&comparison))?)
}

async fn api_compare(
    State(s): State<Shared>,
    query: Result<Query<CompareQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    Ok(Json(comparison(s, query).await?).into_response())
}

async fn comparison(
    s: Shared,
    query: Result<Query<CompareQuery>, QueryRejection>,
) -> Result<Comparison, HttpError> {
    let Query(q) = query.map_err(|e| HttpError::bad_request(e.body_text()))?;
    let id = |side: &str, v: Option<String>| -> Result<RunId, HttpError> {
        let v = v.filter(|v| !v.is_empty()).ok_or_else(|| {
            HttpError::bad_request(format!(
                "pick two runs: /compare?a=<run id>&b=<run id> (run {side} is missing)"
            ))
        })?;
        RunId::parse(&v).map_err(|e| HttpError::bad_request(format!("run {side}: {e}")))
    };
    let (a, b) = (id("a", q.a)?, id("b", q.b)?);
    blocking(move || {
        let (da, dira) = loaded(&s.catalog, &a)?;
        let (db, dirb) = loaded(&s.catalog, &b)?;
        Ok(compare(da, &dira, db, &dirb))
    })
    .await
}

fn loaded(catalog: &Catalog, id: &RunId) -> Result<(RunDetail, std::path::PathBuf), HttpError> {
    let detail = catalog.load(id)?;
    let dir = catalog
        .dir_of(id)
        .ok_or_else(|| HttpError::not_found(format!("no run {id} in this store")))?;
    Ok((detail, dir))
}

/// `/runs/<id>/<path>`: a file of the run, or a listing of one of its directories.
async fn run_path(State(s): State<Shared>, uri: Uri) -> Result<Response, PageError> {
    let raw = uri.path().strip_prefix("/runs/").unwrap_or_default();
    let path = split_raw(raw).map_err(|e| HttpError::bad_request(e.to_string()))?;
    let [group, name, rest @ ..] = path.segments.as_slice() else {
        return Err(HttpError::not_found("a run id is <target>-<workload>/<stamp>").into());
    };
    let id =
        RunId::from_segments(group, name).map_err(|e| HttpError::bad_request(e.to_string()))?;
    let rest = rest.to_vec();
    let wants_dir = path.trailing_slash;
    let here = uri.path().to_string();
    Ok(blocking(move || serve_in_run(&s.catalog, &id, &rest, wants_dir, &here)).await?)
}

fn serve_in_run(
    catalog: &Catalog,
    id: &RunId,
    rest: &[String],
    wants_dir: bool,
    here: &str,
) -> Result<Response, HttpError> {
    let missing = || HttpError::not_found(format!("no such file in run {id}"));
    let run_dir = catalog
        .dir_of(id)
        .ok_or_else(|| HttpError::not_found(format!("no run {id} in this store")))?;
    let requested = rest.iter().fold(run_dir.clone(), |p, s| p.join(s));
    let target = resolve_inside(&run_dir, &requested).ok_or_else(missing)?;
    if target.is_dir() {
        if !wants_dir {
            // Relative links inside the directory's files resolve against a trailing slash.
            return Ok(Redirect::permanent(&format!("{here}/")).into_response());
        }
        let (entries, truncated) = files::list_dir(&target, &run_dir)
            .map_err(|e| HttpError::internal(format!("cannot list the directory: {e}")))?;
        let has_report = run_dir.join(store::REPORT_FILE).is_file();
        return render(DirPage::new(id, rest, entries, truncated, has_report));
    }
    if wants_dir {
        return Err(missing());
    }
    file_response(&target)
}

/// A regular file, whole. Sockets and FIFOs are not files to serve (reading a FIFO would block).
/// The body is held in memory, hence the cap: streaming it needs a `Stream` type (tokio-util or
/// futures), which is not among the binary's dependencies.
fn file_response(path: &Path) -> Result<Response, HttpError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| HttpError::internal(format!("cannot read the file: {e}")))?;
    if !meta.is_file() {
        return Err(HttpError::not_found("not a regular file"));
    }
    if meta.len() > FILE_BYTES_MAX {
        return Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "serving files larger than {} MiB is not implemented: download the run to read it",
                FILE_BYTES_MAX >> 20
            ),
        ));
    }
    let body = std::fs::read(path)
        .map_err(|e| HttpError::internal(format!("cannot read the file: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type(path)),
            (header::CONTENT_SECURITY_POLICY, FILE_CSP),
        ],
        body,
    )
        .into_response())
}

/// `/download/<id>.tar.zst`: the whole run directory.
async fn download(State(s): State<Shared>, uri: Uri) -> Result<Response, PageError> {
    let raw = uri.path().strip_prefix("/download/").unwrap_or_default();
    let raw = raw
        .strip_suffix(".tar.zst")
        .ok_or_else(|| HttpError::not_found("downloads are /download/<run id>.tar.zst"))?;
    let id = run_id_of(&split_raw(raw).map_err(|e| HttpError::bad_request(e.to_string()))?)?;
    let archive = blocking(move || {
        let dir = s
            .catalog
            .dir_of(&id)
            .ok_or_else(|| HttpError::not_found(format!("no run {id} in this store")))?;
        let bytes = archive::tar_zst(&dir, &id.rel_path())
            .map_err(|e| HttpError::internal(format!("cannot archive run {id}: {e:#}")))?;
        Ok((id, bytes))
    })
    .await?;
    let (id, bytes) = archive;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        header_safe(&id.archive_name())
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// A file name that cannot break out of a quoted header parameter.
fn header_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Headers every answer carries: no sniffing a text file into HTML, no referrer leaking run ids,
/// nothing cached (a run's verdict changes when it finishes), and the page CSP unless a route set
/// its own.
async fn common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(PAGE_CSP));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_file_names_are_tame() {
        assert_eq!(
            header_safe("memory-bank-20261201T101010.tar.zst"),
            "memory-bank-20261201T101010.tar.zst"
        );
        assert_eq!(header_safe("a\"b\r\n.tar.zst"), "a_b__.tar.zst");
    }
}
