//! The official measure bundles this build carries (CMS122 and CMS165, CC0; see
//! `bundles/README.md`), gzip-compressed in the binary, so a site measures with nothing to
//! download. A newer edition is read from a file instead (`coproduce measure --bundle`).

use crate::{MeasureBundle, MeasureError};
use std::io::Read;

const CMS122: &[u8] = include_bytes!("../bundles/CMS122.json.gz");
const CMS165: &[u8] = include_bytes!("../bundles/CMS165.json.gz");

/// The measures whose official bundles are carried, by their lower-case names.
pub const NAMES: &[&str] = &["cms122", "cms165"];

fn compressed(name: &str) -> Option<&'static [u8]> {
    match name.to_ascii_lowercase().as_str() {
        "cms122" => Some(CMS122),
        "cms165" => Some(CMS165),
        _ => None,
    }
}

/// The official bundle of a measure as its JSON text; None for a measure not carried.
pub fn bundle_text(name: &str) -> Option<Result<String, MeasureError>> {
    let bytes = compressed(name)?;
    let mut text = String::new();
    Some(
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|e| MeasureError::Bundle(format!("the carried {name} bundle: {e}"))),
    )
}

/// The official bundle of a measure, read; None for a measure not carried.
pub fn bundle(name: &str) -> Option<Result<MeasureBundle, MeasureError>> {
    let text = match bundle_text(name)? {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    Some(
        serde_json::from_str(&text)
            .map_err(|e| MeasureError::Bundle(format!("the carried {name} bundle: {e}")))
            .and_then(|json| MeasureBundle::from_json(&json)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_carried_bundle_reads_and_names_its_measure() {
        for name in NAMES {
            let text = bundle_text(name)
                .expect("carried")
                .expect("it decompresses");
            let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let measure = &json["entry"][0]["resource"];
            assert_eq!(measure["resourceType"], "Measure");
            assert!(
                measure["name"]
                    .as_str()
                    .is_some_and(|n| n.to_ascii_lowercase().starts_with(name)),
                "{name}: {}",
                measure["name"]
            );
            bundle(name).expect("carried").expect("a usable bundle");
        }
        assert!(bundle("cms999").is_none());
    }
}
