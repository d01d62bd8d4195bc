//! The one integration-test binary: one module per pipeline stage.
