//! The FHIR R4 definitions, compiled from the official StructureDefinitions by
//! `tools/gen-fhir-schema.py` into `data/r4-schema.json` and loaded once.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::LazyLock;

/// What a type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Kind {
    #[serde(rename = "p")]
    Primitive,
    #[serde(rename = "c")]
    Complex,
    #[serde(rename = "r")]
    Resource,
    #[serde(rename = "b")]
    Backbone,
}

/// One element of a type, under its JSON property name (choice elements are expanded:
/// `valueQuantity`, `valueString`...).
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "(Vec<String>, bool, u32, Option<String>)")]
pub struct Element {
    pub types: Vec<String>,
    pub array: bool,
    pub min: u32,
    /// For an expanded choice element, the choice's base name (`value` for `value[x]`).
    pub choice: Option<String>,
}

impl From<(Vec<String>, bool, u32, Option<String>)> for Element {
    fn from((types, array, min, choice): (Vec<String>, bool, u32, Option<String>)) -> Self {
        Element {
            types,
            array,
            min,
            choice,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TypeDef {
    #[serde(rename = "k")]
    pub kind: Kind,
    #[serde(rename = "e")]
    pub elements: HashMap<String, Element>,
}

/// The kind of a search parameter we index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchType {
    Token,
    Reference,
    Date,
    String,
    Uri,
    Quantity,
    Number,
}

#[derive(Debug, Deserialize)]
#[serde(from = "(SearchType, Vec<String>)")]
pub struct SearchParam {
    pub kind: SearchType,
    /// Dotted paths below the resource; `subject@Patient` keeps only references to Patient.
    pub paths: Vec<String>,
}

impl From<(SearchType, Vec<String>)> for SearchParam {
    fn from((kind, paths): (SearchType, Vec<String>)) -> Self {
        SearchParam { kind, paths }
    }
}

#[derive(Debug, Deserialize)]
pub struct Schema {
    #[serde(rename = "fhirVersion")]
    pub fhir_version: String,
    pub types: HashMap<String, TypeDef>,
    /// Choice groups per type, with their minimum cardinality.
    pub choices: HashMap<String, HashMap<String, u32>>,
    pub search: HashMap<String, HashMap<String, SearchParam>>,
    /// Parameters that place a resource in a Patient's compartment.
    pub compartment: HashMap<String, Vec<String>>,
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../data/r4-schema.json"))
        .expect("the bundled R4 schema is valid JSON of the expected shape")
});

/// The R4 definitions.
pub fn r4() -> &'static Schema {
    &SCHEMA
}

impl Schema {
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.types
            .get(name)
            .is_some_and(|t| t.kind == Kind::Resource)
    }

    pub fn resource_types(&self) -> impl Iterator<Item = &str> {
        self.types
            .iter()
            .filter(|(_, t)| t.kind == Kind::Resource)
            .map(|(n, _)| n.as_str())
    }

    pub fn search_params(&self, resource_type: &str) -> Option<&HashMap<String, SearchParam>> {
        self.search.get(resource_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_r4_resource_types() {
        let s = r4();
        assert_eq!(s.fhir_version, "4.0.1");
        assert!(s.is_resource_type("Patient"));
        assert!(s.is_resource_type("MeasureReport"));
        assert!(!s.is_resource_type("Coding"));
        assert!(!s.is_resource_type("Bot"));
        assert_eq!(s.resource_types().count(), 147);
    }
}
