//! [`Secrets`]: the values that `api_key_env` and `secret_env` name.

use std::collections::BTreeMap;
use std::fmt;

/// Secret values by name: the values given to it first, then the process environment.
///
/// [`Secrets::default()`] holds nothing of its own, so every name is an environment variable,
/// as for `cryptomon serve`. A host that keeps its secrets elsewhere (the Lambda functions read
/// them from SSM Parameter Store) collects them into one and passes it where sources and
/// webhooks are built. Its `Debug` output lists the names it holds, never a value.
///
/// ```
/// use cryptomon_core::secrets::Secrets;
///
/// let secrets: Secrets = [("CG_KEY".to_owned(), "k-123".to_owned())].into_iter().collect();
/// assert_eq!(secrets.get("CG_KEY").as_deref(), Some("k-123"));
/// assert!(!format!("{secrets:?}").contains("k-123"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl Secrets {
    /// The value of `name`: the one held, else the environment variable's.
    pub fn get(&self, name: &str) -> Option<String> {
        match self.values.get(name) {
            Some(value) => Some(value.clone()),
            None => std::env::var(name).ok(),
        }
    }

    /// The names held (not those of the environment), in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether none is held (every name is then an environment variable).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl FromIterator<(String, String)> for Secrets {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Secrets {
            values: iter.into_iter().collect(),
        }
    }
}

impl fmt::Debug for Secrets {
    // By hand: the values are secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_values_come_first_then_the_environment() {
        // Cargo sets CARGO_PKG_NAME for the test binary.
        let secrets: Secrets = [("CARGO_PKG_NAME".to_owned(), "held".to_owned())]
            .into_iter()
            .collect();
        assert_eq!(secrets.get("CARGO_PKG_NAME").as_deref(), Some("held"));
        assert_eq!(
            Secrets::default().get("CARGO_PKG_NAME").as_deref(),
            Some("cryptomon-core")
        );
        assert_eq!(secrets.get("CRYPTOMON_TEST_UNSET_SECRET"), None);
        assert_eq!(secrets.names().collect::<Vec<_>>(), ["CARGO_PKG_NAME"]);
    }

    #[test]
    fn debug_names_but_never_shows_values() {
        let secrets: Secrets = [("API_KEY".to_owned(), "sk-live-very-secret".to_owned())]
            .into_iter()
            .collect();
        let debug = format!("{secrets:?} {secrets:#?}");
        assert!(debug.contains("API_KEY"), "{debug}");
        assert!(!debug.contains("sk-live-very-secret"), "{debug}");
    }
}
