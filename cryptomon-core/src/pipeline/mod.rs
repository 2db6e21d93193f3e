//! The pipelines every adapter runs: `collect` and `transform`.

mod collect;
mod decode;
mod state;
mod transform;

pub use collect::{CollectReport, collect, collect_all};
pub use transform::{
    Skipped, TransformMode, TransformReport, blocking, read_summary, read_window, transform,
    transform_with,
};
