//! The pipelines every adapter runs: `collect` and `transform`.

mod alerts;
mod collect;
mod decode;
mod state;
mod transform;

pub use alerts::{DeliveryReport, DynNotifier, Notifier, deliver};
pub use collect::{CollectReport, collect, collect_all};
pub use transform::{
    Skipped, TransformMode, TransformOptions, TransformReport, blocking, read_summary, read_window,
    transform, transform_opts, transform_with,
};
