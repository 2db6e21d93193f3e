//! The OpenAPI schemas of the model's string types (feature `openapi`): the pattern or format
//! that their hand-written serde impls enforce, which a derive cannot see.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use super::{Pair, SourceName, Tick};

/// A string schema with a pattern and one example, as the model's string types have and an HTTP
/// API's own parameters may share.
pub fn pattern_schema(description: &str, pattern: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .examples([example])
        .into()
}

impl PartialSchema for SourceName {
    fn schema() -> RefOr<Schema> {
        pattern_schema(
            "A source name: 1 to 32 of a-z, 0-9 and _, starting with a letter",
            SourceName::PATTERN,
            "demo",
        )
    }
}

impl ToSchema for SourceName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SourceName")
    }
}

impl PartialSchema for Pair {
    fn schema() -> RefOr<Schema> {
        pattern_schema(
            "A canonical pair: BASE-QUOTE, each side 1 to 20 of A-Z and 0-9",
            Pair::PATTERN,
            "BTC-USD",
        )
    }
}

impl ToSchema for Pair {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Pair")
    }
}

impl PartialSchema for Tick {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("A tick: an RFC 3339 time in UTC, in whole seconds"))
            .examples(["2026-11-27T12:00:00Z"])
            .into()
    }
}

impl ToSchema for Tick {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Tick")
    }
}
