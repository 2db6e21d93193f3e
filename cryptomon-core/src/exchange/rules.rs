//! The checks of a `[[sources]]` entry that several exchanges share: the fields only one
//! exchange uses.

use crate::config::{PairSelection, SourceConfig};
use crate::model::Pair;

/// The pairs of an entry whose exchange needs them listed: every exchange but Binance.
pub(crate) fn listed_pairs(config: &SourceConfig) -> Result<&[Pair], String> {
    match &config.pairs {
        PairSelection::List(pairs) => Ok(pairs),
        PairSelection::All => {
            Err("pairs = \"all\" is only supported by binance; list the pairs".to_owned())
        }
    }
}

/// Refuses `api_key_env` and `ids`, which only CoinGecko uses.
pub(crate) fn no_key_nor_ids(config: &SourceConfig) -> Result<(), String> {
    if config.api_key_env.is_some() {
        return Err(
            "api_key_env is only used by coingecko (the other exchanges' market data needs no key)"
                .to_owned(),
        );
    }
    if !config.ids.is_empty() {
        return Err("ids is only used by coingecko".to_owned());
    }
    Ok(())
}
