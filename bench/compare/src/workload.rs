//! The one workload every engine is given: the xfinity mobile namespace, in three languages.
//!
//! A mobile client (JWT claims `pid`, `aid`, `jti`; client id `xfi:<PID>_<AID>:clt:<JTI>`)
//! may connect with exactly that client id, publish requests into its own account's
//! namespace `c/xfi/<PID>_<AID>/<service>/<client>/<rid>`, and subscribe to / receive its
//! responses `c/xfi/<PID>_<AID>/<client>/<service>/<rid>/<success|failure>`; nobody
//! publishes under `c/+/+/admin/#`.
//!
//! [`Workload::base`] is that policy with 20 services written as a set (4 rules), as a
//! policy author would write it in each language. [`Workload::rules`] writes one publish
//! and one subscribe rule per service instead, for policies of 1,000 or 10,000 rules, as
//! happens when services get their own rules. Each policy is written idiomatically for its
//! engine: topicguard templates, Cedar `permit`/`forbid` over a context holding the topic's
//! levels (Cedar has no string splitting), Rego rules over `split(input.topic, "/")`.
//! This module only writes text and requests; it never decides anything.

use std::fmt::Write;

/// The client every request is made by.
pub const PID: &str = "P1";
pub const AID: &str = "A1";
pub const JTI: &str = "J1";
pub const CLIENT: &str = "xfi:P1_A1:clt:J1";

/// One policy in the three languages, and the requests to time on it.
pub struct Workload {
    pub name: String,
    pub rules: usize,
    pub topicguard: String,
    pub cedar: String,
    /// Rego modules of one package (regorus caps one file at 1 MiB, so large policies
    /// are split the way a team would split them: a few hundred rules per file).
    pub rego: Vec<String>,
    /// The service the requests address.
    pub service: String,
}

/// What is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Connect,
    Publish,
    Subscribe,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        }
    }
}

/// One timed request and the verdict every engine must give.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub action: Action,
    /// The topic or filter; for connect, the client id presented.
    pub target: String,
    pub allow: bool,
}

const TOPICGUARD_IDENTITY: &str = r#"identity mobile from jwt {
    issuer "https://idp.example.com/"
    audience "iot-platform"
    algorithms RS256
    pid = claim "pid"
    aid = claim "aid"
    jti = claim "jti"
    client "xfi:{pid}_{aid}:clt:{jti}"
}

allow mobile connect
deny any publish "c/+/+/admin/#"
"#;

const CEDAR_COMMON: &str = r#"permit (principal is Mobile, action == Action::"connect", resource)
when {
    context.n == 4 && context.l0 == "xfi" && context.l1 == principal.account &&
    context.l2 == "clt" && context.l3 == principal.jti
};

forbid (principal, action == Action::"publish", resource)
when { context.n >= 4 && context.l0 == "c" && context.l3 == "admin" };
"#;

/// Every Rego module starts with this.
const REGO_HEADER: &str = "package mqtt\n\nimport rego.v1\n";

/// Service rules per Rego module.
const REGO_SERVICES_PER_MODULE: usize = 250;

const REGO_COMMON: &str = r#"package mqtt

import rego.v1

levels := split(input.topic, "/")

account := concat("_", [input.identity.pid, input.identity.aid])

default allow := false

allow if {
	permitted
	not denied
}

permitted if {
	input.action == "connect"
	input.identity.kind == "mobile"
	input.client_id == sprintf("xfi:%s:clt:%s", [account, input.identity.jti])
}

denied if {
	input.action == "publish"
	count(levels) >= 4
	levels[0] == "c"
	levels[3] == "admin"
}
"#;

/// How the service level is constrained: by a set, or by one literal.
enum Service<'a> {
    Set(&'a [String]),
    One(&'a str),
}

impl Service<'_> {
    fn topicguard(&self) -> String {
        match self {
            Service::Set(_) => "{sid in services}".to_string(),
            Service::One(s) => s.to_string(),
        }
    }

    fn cedar(&self, level: &str) -> String {
        match self {
            Service::Set(all) => format!("{}.contains({level})", cedar_set(all)),
            Service::One(s) => format!("{level} == \"{s}\""),
        }
    }

    fn rego(&self, level: &str) -> String {
        match self {
            Service::Set(_) => format!("{level} in services"),
            Service::One(s) => format!("{level} == \"{s}\""),
        }
    }
}

fn cedar_set(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn topicguard_rules(out: &mut String, service: &Service) {
    let s = service.topicguard();
    let _ = writeln!(
        out,
        "allow mobile publish \"c/xfi/{{pid}}_{{aid}}/{s}/{{client}}/{{+rid}}\""
    );
    let _ = writeln!(
        out,
        "allow mobile subscribe, receive \"c/xfi/{{pid}}_{{aid}}/{{client}}/{s}/{{+rid}}/{{success|failure}}\""
    );
}

fn cedar_rules(out: &mut String, service: &Service) {
    let _ = writeln!(
        out,
        "\npermit (principal is Mobile, action == Action::\"publish\", resource is Topic)\nwhen {{\n    \
         context.n == 6 && context.l0 == \"c\" && context.l1 == \"xfi\" &&\n    \
         context.l2 == principal.account && {} && context.l4 == principal.client\n}};",
        service.cedar("context.l3")
    );
    let _ = writeln!(
        out,
        "\npermit (\n    principal is Mobile,\n    action in [Action::\"subscribe\", Action::\"receive\"],\n    \
         resource is Topic\n)\nwhen {{\n    \
         context.n == 7 && context.l0 == \"c\" && context.l1 == \"xfi\" &&\n    \
         context.l2 == principal.account && context.l3 == principal.client && {} &&\n    \
         [\"success\", \"failure\"].contains(context.l6)\n}};",
        service.cedar("context.l4")
    );
}

fn rego_rules(out: &mut String, service: &Service) {
    let _ = writeln!(
        out,
        "\npermitted if {{\n\tinput.action == \"publish\"\n\tinput.identity.kind == \"mobile\"\n\t\
         count(levels) == 6\n\tlevels[0] == \"c\"\n\tlevels[1] == \"xfi\"\n\tlevels[2] == account\n\t\
         {}\n\tlevels[4] == input.client_id\n}}",
        service.rego("levels[3]")
    );
    let _ = writeln!(
        out,
        "\npermitted if {{\n\tinput.action in {{\"subscribe\", \"receive\"}}\n\t\
         input.identity.kind == \"mobile\"\n\tcount(levels) == 7\n\tlevels[0] == \"c\"\n\t\
         levels[1] == \"xfi\"\n\tlevels[2] == account\n\tlevels[3] == input.client_id\n\t\
         {}\n\tlevels[6] in {{\"success\", \"failure\"}}\n}}",
        service.rego("levels[4]")
    );
}

impl Workload {
    /// The xfinity mobile policy with `services` services in one set: 4 rules.
    pub fn base(services: usize) -> Workload {
        let names: Vec<String> = (0..services.max(1)).map(|i| format!("svc{i}")).collect();
        Workload::with_services(names)
    }

    /// The base policy over the given service names (at least one).
    pub fn with_services(names: Vec<String>) -> Workload {
        let services = names.len();
        let set = Service::Set(&names);
        let mut topicguard = TOPICGUARD_IDENTITY.to_string();
        let _ = writeln!(topicguard, "set services = {}", names.join(", "));
        topicguard_rules(&mut topicguard, &set);
        let mut cedar = CEDAR_COMMON.to_string();
        cedar_rules(&mut cedar, &set);
        let mut rego = REGO_COMMON.to_string();
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        let _ = writeln!(rego, "\nservices := {{{}}}", quoted.join(", "));
        rego_rules(&mut rego, &set);
        let rego = vec![rego];
        Workload {
            name: format!("base-{services}-services"),
            rules: 4,
            topicguard,
            cedar,
            rego,
            service: names[services / 2].clone(),
        }
    }

    /// One publish and one subscribe rule per service, `rules` rules in all (≥ 4).
    pub fn rules(rules: usize) -> Workload {
        let services = (rules.max(4) - 2) / 2;
        let mut topicguard = TOPICGUARD_IDENTITY.to_string();
        let mut cedar = CEDAR_COMMON.to_string();
        let mut rego = vec![REGO_COMMON.to_string()];
        for i in 0..services {
            let name = format!("svc{i}");
            let one = Service::One(&name);
            topicguard_rules(&mut topicguard, &one);
            cedar_rules(&mut cedar, &one);
            if i % REGO_SERVICES_PER_MODULE == 0 {
                rego.push(REGO_HEADER.to_string());
            }
            if let Some(module) = rego.last_mut() {
                rego_rules(module, &one);
            }
        }
        Workload {
            name: format!("rules-{rules}"),
            rules: 2 + 2 * services,
            topicguard,
            cedar,
            rego,
            service: format!("svc{}", services / 2),
        }
    }

    /// The timed requests: allowed and denied, for each action.
    pub fn cases(&self) -> Vec<Case> {
        let (s, c) = (&self.service, CLIENT);
        let case = |name, action, target: String, allow| Case {
            name,
            action,
            target,
            allow,
        };
        vec![
            case("connect/allow", Action::Connect, c.to_string(), true),
            case(
                "connect/deny",
                Action::Connect,
                "xfi:P1_A1:clt:J2".into(),
                false,
            ),
            case(
                "publish/allow",
                Action::Publish,
                format!("c/xfi/P1_A1/{s}/{c}/r42"),
                true,
            ),
            case(
                "publish/deny",
                Action::Publish,
                format!("c/xfi/P2_A9/{s}/{c}/r42"),
                false,
            ),
            case(
                "subscribe/allow",
                Action::Subscribe,
                format!("c/xfi/P1_A1/{c}/{s}/+/success"),
                true,
            ),
            case(
                "subscribe/deny",
                Action::Subscribe,
                format!("c/xfi/P2_A9/{c}/{s}/+/success"),
                false,
            ),
        ]
    }
}
