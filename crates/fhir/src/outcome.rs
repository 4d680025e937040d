//! OperationOutcome: the one error shape of the FHIR boundary.

use serde_json::{Value, json};
use std::fmt;

/// How bad an issue is (FHIR `issue.severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// What kind of issue (FHIR `issue.code`, the subset we raise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueCode {
    /// The content is not well-formed JSON or not FHIR's JSON shape.
    Structure,
    /// A required element is missing.
    Required,
    /// A value does not meet a rule of its type (an invalid date, id, code...).
    Value,
    /// An invariant or business rule does not hold.
    Invariant,
    /// A code outside the value set its element is required to take it from.
    CodeInvalid,
    /// Unsafe content (script in narrative, external entities).
    Security,
    /// The resource or type is not known or not supported.
    NotSupported,
    NotFound,
    Deleted,
    Conflict,
    TooLong,
    /// The request would cost more than the server allows (too many values, entries).
    TooCostly,
    Duplicate,
    Processing,
    Exception,
    /// A passing failure: the same request may succeed later.
    Transient,
    /// The request took longer than the server allows and was stopped.
    Timeout,
    Informational,
    Forbidden,
    Login,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::Invariant => "invariant",
            IssueCode::CodeInvalid => "code-invalid",
            IssueCode::Security => "security",
            IssueCode::NotSupported => "not-supported",
            IssueCode::NotFound => "not-found",
            IssueCode::Deleted => "deleted",
            IssueCode::Conflict => "conflict",
            IssueCode::TooLong => "too-long",
            IssueCode::TooCostly => "too-costly",
            IssueCode::Duplicate => "duplicate",
            IssueCode::Processing => "processing",
            IssueCode::Exception => "exception",
            IssueCode::Transient => "transient",
            IssueCode::Timeout => "timeout",
            IssueCode::Informational => "informational",
            IssueCode::Forbidden => "forbidden",
            IssueCode::Login => "login",
        }
    }

    /// Whether an issue of this code means the input could not be read as FHIR at all
    /// (HTTP 400) rather than read but refused (HTTP 422).
    pub fn is_structural(self) -> bool {
        matches!(
            self,
            IssueCode::Structure | IssueCode::Value | IssueCode::Security | IssueCode::NotSupported
        )
    }
}

/// One issue: what is wrong and where (a FHIRPath-like location such as `Patient.birthDate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueCode,
    pub diagnostics: String,
    pub expression: Option<String>,
}

/// A FHIR OperationOutcome: the error (or information) returned to a caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperationOutcome {
    pub issues: Vec<Issue>,
}

impl OperationOutcome {
    /// One error issue at a location.
    pub fn error(code: IssueCode, path: impl Into<String>, diagnostics: impl Into<String>) -> Self {
        let path = path.into();
        OperationOutcome {
            issues: vec![Issue {
                severity: Severity::Error,
                code,
                diagnostics: diagnostics.into(),
                expression: (!path.is_empty()).then_some(path),
            }],
        }
    }

    /// One error issue with no location.
    pub fn message(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Self::error(code, "", diagnostics)
    }

    /// An informational outcome (for successful deletes and the like).
    pub fn information(diagnostics: impl Into<String>) -> Self {
        OperationOutcome {
            issues: vec![Issue {
                severity: Severity::Information,
                code: IssueCode::Informational,
                diagnostics: diagnostics.into(),
                expression: None,
            }],
        }
    }

    pub fn push(&mut self, code: IssueCode, path: &str, diagnostics: impl Into<String>) {
        self.issues.push(Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: (!path.is_empty()).then(|| path.to_string()),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// True when every issue is structural: the input is not readable FHIR (HTTP 400).
    pub fn is_structural(&self) -> bool {
        self.issues
            .iter()
            .filter(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
            .any(|i| i.code.is_structural())
    }

    /// Prefixes every location with `prefix` (used for Bundle entries).
    pub fn within(mut self, prefix: &str) -> Self {
        for issue in &mut self.issues {
            issue.expression = Some(match issue.expression.take() {
                Some(e) => format!("{prefix}.{e}"),
                None => prefix.to_string(),
            });
        }
        self
    }

    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = self
            .issues
            .iter()
            .map(|i| {
                let mut v = json!({
                    "severity": i.severity.as_str(),
                    "code": i.code.as_str(),
                    "diagnostics": i.diagnostics,
                });
                if let Some(e) = &i.expression {
                    v["expression"] = json!([e]);
                }
                v
            })
            .collect();
        json!({"resourceType": "OperationOutcome", "issue": issues})
    }
}

impl fmt::Display for OperationOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, i) in self.issues.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            match &i.expression {
                Some(e) => write!(f, "{e}: {}", i.diagnostics)?,
                None => f.write_str(&i.diagnostics)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for OperationOutcome {}
