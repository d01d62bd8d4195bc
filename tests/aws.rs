//! The AWS IoT Core target: rendered policy documents held to AWS's documented evaluation
//! (`eval`, written from AWS's documentation) and to the engine's decisions, over the
//! shipped policies and generated ones; the CLI and the custom authorizer end to end.

#[cfg(feature = "runtime")]
mod cli_cases;
mod eval;
mod exactness;
mod generate;
mod model_cases;
mod shipped;

use topicguard::aws::Target;

/// The ARN target every test renders for.
pub fn target() -> Target {
    Target::new("aws", "us-east-1", "123456789012").expect("a valid target")
}

/// The ARN prefix of [`target`].
pub const ARN: &str = "arn:aws:iot:us-east-1:123456789012";
