//! The front door: a policy file parsed and checked in one step.
//!
//! [`Policy::load`] reads a file, [`Policy::from_source`] takes text. Both run
//! [`crate::parse`] then [`crate::check`] and return every diagnostic on failure. The
//! policy keeps its warnings so tools can show them. Compiling is [`crate::decide::Engine::new`].

use crate::check::{self, Checked};
use crate::diagnostic::Diagnostics;
use crate::source::{Source, SourceError};
use std::sync::Arc;

/// A parsed and checked policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Shared with every [`crate::decide::Engine`] built from it.
    pub checked: Arc<Checked>,
    /// The lint warnings.
    pub warnings: Diagnostics,
}

/// Loading a policy failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read or is not UTF-8.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The policy has errors.
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl Policy {
    /// Parses and checks policy text.
    ///
    /// Declarations are parsed first; then each rule is parsed and checked on its own and
    /// only its checked form is kept, so loading a 100,000-rule policy never holds all of
    /// its syntax trees at once. Syntax errors, if any, are all reported (and checking
    /// errors are not); otherwise every checking error is.
    pub fn from_source(source: &Source) -> Result<Policy, Diagnostics> {
        let split = crate::parse::split(source);
        let mut errors = split.errors;
        let mut checker = check::Checker::new(source, &split.declarations);
        for chunk in split.rule_chunks {
            if let Err(mut chunk_errors) =
                crate::parse::parse_rules(source, chunk, |rule| checker.rule(rule))
            {
                errors.append(&mut chunk_errors);
            }
        }
        if !errors.is_empty() {
            let mut diagnostics = Diagnostics::new(source.clone());
            diagnostics.items = errors;
            diagnostics.sort();
            return Err(diagnostics);
        }
        let out = checker.finish()?;
        Ok(Policy {
            checked: Arc::new(out.checked),
            warnings: out.warnings,
        })
    }

    /// Reads, parses and checks a policy file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Policy, LoadError> {
        let source = Source::read(path)?;
        Policy::from_source(&source).map_err(LoadError::Invalid)
    }

    /// The policy's source text.
    pub fn source(&self) -> &Source {
        &self.checked.source
    }
}
