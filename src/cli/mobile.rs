//! `topicguard mobile ... request|set|get`: one mobile-app operation
//! ([`topicguard::runtime::mobile`]): prints the connection states and the answer; exits 0 on
//! an answer (`success`, `/accepted`), 1 on `failure`, `/rejected`, a policy refusal or a
//! timeout. This module must never hold runtime logic.

use super::gateway::{ConnectArgs, block_on};
use super::output::{CliError, Exit, Out};
use std::time::Duration;
use topicguard::runtime::mobile::{self, MobileConfig, Operation};

/// Arguments of `topicguard mobile`.
#[derive(Debug, clap::Args)]
pub struct MobileArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Partner id (the JWT's `pid` claim).
    #[arg(long)]
    pub pid: String,
    /// Account id (the JWT's `aid` claim).
    #[arg(long)]
    pub aid: String,
    /// Token id (the JWT's `jti` claim).
    #[arg(long)]
    pub jti: String,
    /// Seconds to wait for connecting and for the answer.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    #[command(subcommand)]
    pub operation: MobileOperation,
}

/// The operation.
#[derive(Debug, clap::Subcommand)]
pub enum MobileOperation {
    /// Send a request to a service and wait for its success|failure response.
    Request {
        /// Service id, e.g. lights.
        sid: String,
        /// Request id.
        rid: String,
        /// JSON payload.
        #[arg(default_value = "{}")]
        payload: String,
    },
    /// Set desired state on one of the account's device shadows, e.g. `set light '{"on":true}'`.
    Set {
        device: String,
        /// JSON object of desired settings.
        desired: String,
        /// The shadow version last seen (optimistic locking: an older one is refused with 409).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Read one of the account's device shadows.
    Get { device: String },
}

/// Runs `topicguard mobile`.
pub fn run(args: &MobileArgs, out: Out) -> Exit {
    let tls = match args.connect.tls() {
        Ok(tls) => tls,
        Err(message) => return out.error(&CliError::Usage(message)),
    };
    let config = MobileConfig {
        broker: args.connect.broker.clone(),
        pid: args.pid.clone(),
        aid: args.aid.clone(),
        jti: args.jti.clone(),
        username: args.connect.username.clone(),
        password: args.connect.password(),
        tls,
        backoff: args.connect.backoff(),
        timeout: Duration::from_secs(args.timeout),
    };
    let operation = match &args.operation {
        MobileOperation::Request { sid, rid, payload } => Operation::Request {
            sid: sid.clone(),
            rid: rid.clone(),
            payload: payload.clone(),
        },
        MobileOperation::Set {
            device,
            desired,
            version,
        } => Operation::SetDesired {
            device: device.clone(),
            desired: desired.clone(),
            version: *version,
        },
        MobileOperation::Get { device } => Operation::GetShadow {
            device: device.clone(),
        },
    };
    block_on(out, async move {
        match mobile::run(config, operation, out.log()).await {
            Ok(answer) => {
                let failed =
                    answer.topic.ends_with("/failure") || answer.topic.ends_with("/rejected");
                if out.is_json() {
                    let payload = serde_json::from_str::<serde_json::Value>(&answer.payload)
                        .unwrap_or_else(|_| answer.payload.clone().into());
                    out.json_line(&serde_json::json!({
                        "event": "answer",
                        "topic": answer.topic,
                        "payload": payload,
                        "ok": !failed,
                    }));
                } else {
                    out.print(&format!("{} {}\n", answer.topic, answer.payload));
                }
                if failed { Exit::Failure } else { Exit::Ok }
            }
            Err(error) => out.fail(&CliError::Runtime(error.to_string()), Exit::Failure),
        }
    })
}
