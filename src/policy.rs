//! The front door: a policy file parsed and checked in one step.
//!
//! [`Policy::load`] reads a file, [`Policy::from_source`] takes text. Both run
//! [`crate::parse`] then [`crate::check`] and return every diagnostic on failure. The
//! policy keeps its warnings so tools can show them. Compiling is [`crate::Engine::new`].

use crate::ast;
use crate::check::{self, Checked};
use crate::diagnostic::Diagnostics;
use crate::source::{Source, SourceError};

/// A parsed and checked policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub ast: ast::Policy,
    pub checked: Checked,
    pub warnings: Diagnostics,
}

/// Loading a policy failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl Policy {
    /// Parses and checks policy text.
    pub fn from_source(source: &Source) -> Result<Policy, Diagnostics> {
        let ast = crate::parse::parse(source)?;
        let out = check::check(source, &ast)?;
        Ok(Policy {
            ast,
            checked: out.checked,
            warnings: out.warnings,
        })
    }

    /// Reads, parses and checks a policy file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Policy, LoadError> {
        let source = Source::read(path)?;
        Policy::from_source(&source).map_err(LoadError::Invalid)
    }

    pub fn source(&self) -> &Source {
        &self.checked.source
    }
}
