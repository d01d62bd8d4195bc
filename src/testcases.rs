//! Policy test files (`*.test.toml`): expected decisions stated next to a policy.
