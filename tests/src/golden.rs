//! The golden data set (`data/golden/small`): its raw objects, as the contract stores them.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The directory of the golden data set.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/golden/small")
}

/// The raw objects of `raw.tsv.gz`: (key, bytes), in file order.
pub fn golden_objects() -> Vec<(String, Vec<u8>)> {
    let gz = std::fs::read(golden_dir().join("raw.tsv.gz")).expect("golden raw.tsv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("golden raw.tsv.gz is gzipped UTF-8");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('\t').expect("key TAB body");
            (k.to_owned(), v.as_bytes().to_vec())
        })
        .collect()
}
