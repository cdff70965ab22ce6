//! Fjord's HTTP admin API, on the admin listener (127.0.0.1:9644 by default): Prometheus
//! metrics at `/metrics` and JSON resources under `/v1`. The CLI's `fjord processor`
//! commands use it; scripts can too.
//!
//! | Method and path | Does |
//! |---|---|
//! | `GET /metrics` | Prometheus text format |
//! | `GET /v1/processors` | every processor, with its tasks |
//! | `GET /v1/processors/{name}` | one processor |
//! | `PUT /v1/processors/{name}` | deploy or redeploy: `{"spec": {...}, "module": "<base64 of the .wasm>"}` |
//! | `POST /v1/processors/{name}/pause`, `/resume` | stop (after committing) or start its tasks |
//! | `DELETE /v1/processors/{name}` | stop and forget it (its changelog and group stay) |
//! | `GET /v1/processors/{name}/logs?lines=N` | its last log lines |
//!
//! Errors are `{"error": "<message>"}` with a 4xx status for the caller's mistakes (404 for
//! an unknown processor) and 5xx for the broker's.
//!
//! # Why it is built this way
//! The admin API is a front end like the Kafka wire: it translates HTTP to calls on the
//! engine and on the platform's resources, and holds no state of its own. It is up before
//! the engine has recovered (metrics answer during recovery); resources answer 503 until
//! they are ready.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use fjord_processor::{Error, ProcessorSpec, Processors};

/// Largest request body: a module at the runtime's default limit (32 MiB), base64-encoded
/// (4/3 of it), and its spec. A larger module is refused by its size before it is decoded.
const BODY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Log lines `logs` returns by default, and at most.
const LOG_LINES_DEFAULT: usize = 100;
const LOG_LINES_MAX: usize = 1_000;

/// What the routes reach.
#[derive(Clone)]
pub struct Admin {
    render_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    processors: Arc<RwLock<Option<Arc<Processors>>>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// `render_metrics` renders the Prometheus text of the process's recorder.
    pub fn new(render_metrics: Arc<dyn Fn() -> String + Send + Sync>) -> Admin {
        Admin {
            render_metrics,
            processors: Arc::default(),
        }
    }

    /// Makes the processor routes answer (they say 503 until then).
    pub fn set_processors(&self, processors: Arc<Processors>) {
        if let Ok(mut slot) = self.processors.write() {
            *slot = Some(processors);
        }
    }

    /// Lets go of the processors at shutdown (the routes say 503 again), so the engine
    /// under them can close.
    pub fn clear_processors(&self) {
        if let Ok(mut slot) = self.processors.write() {
            *slot = None;
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(metrics))
            .route("/metrics", get(metrics))
            .route("/v1/processors", get(list_processors))
            .route(
                "/v1/processors/{name}",
                get(describe_processor)
                    .put(deploy_processor)
                    .delete(delete_processor),
            )
            .route("/v1/processors/{name}/pause", post(pause_processor))
            .route("/v1/processors/{name}/resume", post(resume_processor))
            .route("/v1/processors/{name}/logs", get(processor_logs))
            .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
            .with_state(self)
    }

    fn processors(&self) -> Result<Arc<Processors>, ApiError> {
        let unavailable = || ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the broker is starting or stopping".to_owned(),
        };
        let slot = self.processors.read().map_err(|_| unavailable())?;
        slot.clone().ok_or_else(unavailable)
    }
}

/// Serves `admin` on `listener` until the runtime stops.
pub fn spawn(listener: tokio::net::TcpListener, admin: Admin) {
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, admin.router()).await {
            tracing::error!(%error, "the admin listener stopped");
        }
    });
}

async fn metrics(State(admin): State<Admin>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        (admin.render_metrics)(),
    )
        .into_response()
}

/// A deploy request.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Deploy {
    spec: ProcessorSpec,
    /// The component, base64 (standard alphabet, padded).
    module: String,
}

#[derive(Debug, serde::Deserialize)]
struct LogsQuery {
    lines: Option<usize>,
}

async fn list_processors(State(admin): State<Admin>) -> Result<Response, ApiError> {
    Ok(axum::Json(admin.processors()?.list().await).into_response())
}

async fn describe_processor(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(admin.processors()?.describe(&name).await?).into_response())
}

async fn deploy_processor(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: Deploy = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("the request body: {error}")))?;
    if request.spec.name != name {
        return Err(ApiError::bad_request(format!(
            "the spec names `{}`, the path `{name}`",
            request.spec.name
        )));
    }
    let module = base64::engine::general_purpose::STANDARD
        .decode(request.module.as_bytes())
        .map_err(|error| ApiError::bad_request(format!("`module` is not base64: {error}")))?;
    let description = admin.processors()?.deploy(request.spec, &module).await?;
    Ok((StatusCode::OK, axum::Json(description)).into_response())
}

async fn delete_processor(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin.processors()?.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn pause_processor(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(admin.processors()?.pause(&name).await?).into_response())
}

async fn resume_processor(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(admin.processors()?.resume(&name).await?).into_response())
}

async fn processor_logs(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let lines = query.lines.unwrap_or(LOG_LINES_DEFAULT).min(LOG_LINES_MAX);
    Ok(axum::Json(admin.processors()?.logs(&name, lines).await?).into_response())
}

/// An error answer: `{"error": message}` with its status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: String) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let status = match &error {
            Error::UnknownProcessor { .. } => StatusCode::NOT_FOUND,
            Error::InvalidSpec { .. }
            | Error::Module { .. }
            | Error::NoOutput
            | Error::Start { .. } => StatusCode::BAD_REQUEST,
            Error::Engine(fjord_engine::Error::UnknownTopic { .. }) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: error.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}
