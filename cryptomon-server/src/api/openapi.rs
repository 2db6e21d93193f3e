//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers' annotations by
//! utoipa, so it cannot disagree with the routes.

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;
use super::{dashboard, routes, sse};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cryptomon API",
        description = "24-hour crypto market metrics: the summary, per-metric charts and ranks, \
                       candles, alerts and live updates. The same API runs in `cryptomon serve` \
                       and on AWS Lambda. Errors are JSON `{\"error\": \"...\"}`. JSON responses \
                       carry an `ETag` and answer `304` to a matching `If-None-Match`."
    ),
    components(schemas(
        cryptomon_core::Summary,
        cryptomon_core::SeriesSummary,
        cryptomon_core::Spread,
        cryptomon_core::Alert,
        cryptomon_core::alerting::KeyedAlertEvent,
        super::model::AlertEvents,
        cryptomon_core::Candles,
        cryptomon_core::Candle,
        cryptomon_core::model::SkippedDay,
        cryptomon_core::Point,
        super::errors::ErrorBody,
        cryptomon_core::SourceName,
        cryptomon_core::Pair,
        cryptomon_core::CandleInterval,
        cryptomon_core::Tick,
        super::params::MetricIdParam,
        super::params::RuleNameParam,
        super::params::TimeParam,
    )),
    tags(
        (name = "status", description = "Health and live events"),
        (name = "aggregates", description = "The documents of the data contract"),
        (name = "metrics", description = "Per-metric views for charts and ranks"),
        (name = "dashboard", description = "The web page"),
    )
)]
struct ApiDoc;

/// Every documented route, with the document.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health))
        .routes(routes!(routes::summary))
        .routes(routes!(routes::metrics))
        .routes(routes!(routes::metric))
        .routes(routes!(routes::candles))
        .routes(routes!(routes::alerts))
        .routes(routes!(sse::events))
        .routes(routes!(dashboard::index))
}
