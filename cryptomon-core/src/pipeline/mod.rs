//! The pipelines every adapter runs: `collect` and `transform`.

mod collect;
mod transform;

pub use collect::{CollectReport, collect, collect_all};
pub use transform::{
    Skipped, TransformReport, blocking, decode_snapshot, read_summary, read_window, transform,
};
