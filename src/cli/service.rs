//! `topicguard service`: runs a backend service runtime ([`topicguard::runtime::service`]) that
//! answers requests addressed to its service id until Ctrl-C, printing each step. This
//! module must never hold runtime logic; it parses options and starts the runtime.

use super::gateway::{ConnectArgs, block_on};
use super::output::Exit;
use super::output::{CliError, Out};
use topicguard::runtime::service::{self, ServiceConfig};

/// Arguments of `topicguard service`.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The service id (its certificate's Subject CN), e.g. lights.
    #[arg(long)]
    pub sid: String,
    /// The instance part of its client id `svc:<sid>:<instance>`.
    #[arg(long, default_value = "1")]
    pub instance: String,
}

/// Runs `topicguard service`.
pub fn run(args: &ServiceArgs, out: Out) -> Exit {
    let tls = match args.connect.tls() {
        Ok(tls) => tls,
        Err(message) => return out.error(&CliError::Usage(message)),
    };
    let config = ServiceConfig {
        broker: args.connect.broker.clone(),
        sid: args.sid.clone(),
        instance: args.instance.clone(),
        username: args.connect.username.clone(),
        password: args.connect.password(),
        tls,
        backoff: args.connect.backoff(),
    };
    block_on(out, async move {
        let service = service::start(config, out.log());
        let _ = tokio::signal::ctrl_c().await;
        service.stop().await;
        Exit::Ok
    })
}
