//! Errors of the rule layer: every error names the file, and where it can, the rule and field.

/// A rule file could not be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// The file is not TOML at all.
    #[error("{file}: not valid TOML: {message}")]
    Syntax { file: String, message: String },
    /// A key outside `[[rule]]` at the top of the file.
    #[error("{file}: {field}: {message}")]
    File {
        file: String,
        field: String,
        message: String,
    },
    /// A field of a rule is missing, unknown, of the wrong type or out of range.
    #[error("{file}: rule {rule}: field {field}: {message}")]
    Field {
        file: String,
        rule: String,
        field: String,
        message: String,
    },
    /// The same rule id twice in the files given (replacing a built-in rule is allowed).
    #[error("{file}: rule {rule}: id already defined in {first_file}")]
    Duplicate {
        file: String,
        rule: String,
        first_file: String,
    },
}

impl RuleError {
    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            RuleError::Syntax { file, .. }
            | RuleError::File { file, .. }
            | RuleError::Field { file, .. }
            | RuleError::Duplicate { file, .. } => file,
        }
    }
}
