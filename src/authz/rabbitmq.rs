//! RabbitMQ's HTTP auth backend (`rabbitmq_auth_backend_http`) as its MQTT plugin uses it.
//!
//! Four form-encoded POSTs, each answered `allow` or `deny` (status 200; a request with
//! missing or malformed fields gets 400 and `deny`, which RabbitMQ also treats as a deny):
//!
//! - `user`: `username`, `password`, `vhost`, `client_id`. The password is the JWT; the
//!   session is stored under (username, client id, vhost). AMQP clients send no client id
//!   and are refused.
//! - `vhost`: allowed for a live session of (username, client id, vhost).
//! - `resource`: what the MQTT plugin declares for a connection — its own subscription
//!   queues `mqtt-subscription-<client id>qos0|qos1` (configure, read, write) and the
//!   `amq.topic` exchange (read, write). Anything else is denied.
//! - `topic`: `permission=write` is a PUBLISH, `read` a SUBSCRIBE (RabbitMQ has no check
//!   per delivery: the subscription must carry receive, see [`super::Delivery`]). The
//!   routing key is turned back into the MQTT topic by [`routing_key_to_topic`].
//!
//! Retained publishes cannot be told apart: the plugin does not say, so a publish is
//! decided as not retained (documented in docs/deployment.md).

use super::fields::{Encoding, FieldError, Fields};
use super::sessions::{BrokerKind, SessionKey};
use super::{Authz, Check, Delivery, Denial, Reply, log_denial};

/// The exchange the MQTT plugin publishes to and binds subscription queues on.
pub const MQTT_EXCHANGE: &str = "amq.topic";

/// The four endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `user_path`: authenticate a client.
    User,
    /// `vhost_path`: access to a virtual host.
    Vhost,
    /// `resource_path`: access to an exchange or queue.
    Resource,
    /// `topic_path`: publish or subscribe on a routing key.
    Topic,
}

impl Endpoint {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::User => "rabbitmq/user",
            Endpoint::Vhost => "rabbitmq/vhost",
            Endpoint::Resource => "rabbitmq/resource",
            Endpoint::Topic => "rabbitmq/topic",
        }
    }
}

/// Answers one request.
pub fn handle(
    authz: &Authz,
    endpoint: Endpoint,
    content_type: Option<&str>,
    body: &[u8],
    now: u64,
) -> Reply {
    let fields = match Fields::parse(content_type, body, Encoding::Form) {
        Ok(fields) => fields,
        Err(error) => return bad_request(endpoint, &error),
    };
    let result = match endpoint {
        Endpoint::User => user(authz, &fields, now),
        Endpoint::Vhost => vhost(authz, &fields, now),
        Endpoint::Resource => resource(authz, &fields, now),
        Endpoint::Topic => topic(authz, &fields, now),
    };
    match result {
        Ok(Ok(())) => Reply::text(200, "allow"),
        Ok(Err((key, denial))) => {
            log_denial(endpoint.name(), key.as_ref(), &denial);
            Reply::text(200, "deny")
        }
        Err(error) => bad_request(endpoint, &error),
    }
}

fn bad_request(endpoint: Endpoint, error: &FieldError) -> Reply {
    log_denial(endpoint.name(), None, error);
    Reply::text(400, "deny")
}

/// Outer error: the request is malformed (400). Inner: a well-formed request denied.
type Answer = Result<Result<(), (Option<SessionKey>, Denial)>, FieldError>;

fn key(fields: &Fields<'_>, client_id_field: &'static str) -> Result<SessionKey, FieldError> {
    Ok(SessionKey::new(
        BrokerKind::RabbitMq,
        fields.key("username")?,
        fields.key(client_id_field)?,
        fields.key("vhost")?,
    ))
}

fn user(authz: &Authz, fields: &Fields<'_>, now: u64) -> Answer {
    let key = key(fields, "client_id")?;
    let password = fields.require("password")?;
    Ok(match authz.authenticate(key.clone(), password, now) {
        Ok(_) => Ok(()),
        Err(denial) => Err((Some(key), denial)),
    })
}

fn vhost(authz: &Authz, fields: &Fields<'_>, now: u64) -> Answer {
    let key = key(fields, "client_id")?;
    Ok(authz.has_session(&key, now).map_err(|d| (Some(key), d)))
}

/// What a queue or exchange permission is for.
fn permission(fields: &Fields<'_>) -> Result<&'static str, FieldError> {
    match fields.require("permission")? {
        "configure" => Ok("configure"),
        "read" => Ok("read"),
        "write" => Ok("write"),
        other => Err(FieldError::BadValue {
            name: "permission",
            value: other.to_string(),
        }),
    }
}

fn resource(authz: &Authz, fields: &Fields<'_>, now: u64) -> Answer {
    let key = key(fields, "client_id")?;
    let permission = permission(fields)?;
    let name = fields.require("name")?;
    let own = match fields.require("resource")? {
        "queue" => is_own_subscription_queue(name, &key.client_id),
        "exchange" => name == MQTT_EXCHANGE && permission != "configure",
        _ => false,
    };
    if !own {
        let denial = Denial::NotNeeded(format!("{permission} on `{}`", name.escape_debug()));
        return Ok(Err((Some(key), denial)));
    }
    Ok(authz.has_session(&key, now).map_err(|d| (Some(key), d)))
}

/// `mqtt-subscription-<client id>qos0` or `...qos1`: the queues the plugin declares for
/// one connection's subscriptions (QoS 2 subscriptions use the QoS 1 queue).
pub fn is_own_subscription_queue(name: &str, client_id: &str) -> bool {
    name.strip_prefix("mqtt-subscription-")
        .and_then(|rest| rest.strip_prefix(client_id))
        .is_some_and(|qos| qos == "qos0" || qos == "qos1")
}

fn topic(authz: &Authz, fields: &Fields<'_>, now: u64) -> Answer {
    let key = key(fields, "variable_map.client_id")?;
    for (field, expected) in [
        ("variable_map.username", &*key.username),
        ("variable_map.vhost", &*key.vhost),
    ] {
        if fields.get(field).is_some_and(|v| v != expected) {
            return Err(FieldError::BadValue {
                name: field,
                value: "a value that differs from the connection's".into(),
            });
        }
    }
    let permission = permission(fields)?;
    let routing_key = fields.require("routing_key")?;
    if fields.require("resource")? != "topic" || fields.require("name")? != MQTT_EXCHANGE {
        let denial = Denial::NotNeeded("a topic outside amq.topic".into());
        return Ok(Err((Some(key), denial)));
    }
    let topic = routing_key_to_topic(routing_key);
    let check = match permission {
        "write" => Check::Publish {
            topic: &topic,
            retain: false,
        },
        "read" => Check::Subscribe {
            filter: &topic,
            delivery: Delivery::Unchecked,
        },
        _ => {
            let denial = Denial::NotNeeded("configure on a topic".into());
            return Ok(Err((Some(key), denial)));
        }
    };
    Ok(authz.decide(&key, check, now).map_err(|d| (Some(key), d)))
}

/// The MQTT topic (or filter) a routing key stands for.
///
/// The MQTT plugin maps `/` to `.` and `+` to `*`. RabbitMQ 3.10 (Debian 12) leaves a `.`
/// of the MQTT topic as it is, so on that broker `.` is a level separator: `a/b.c` is
/// routed, and delivered to MQTT subscribers, as `a/b/c`. Later releases swap the two
/// characters instead, so `.` in a topic arrives as `/` in the key. Swapping back (`.`
/// → `/`, `/` → `.`, a whole word `*` → `+`) gives, on both, the topic the broker routes:
/// what decides is exactly what is delivered. A `*` inside a word is literal for AMQP and
/// stays `*`; `#` stays `#`.
pub fn routing_key_to_topic(routing_key: &str) -> String {
    let mut topic = String::with_capacity(routing_key.len());
    for (i, word) in routing_key.split('.').enumerate() {
        if i > 0 {
            topic.push('/');
        }
        if word == "*" {
            topic.push('+');
        } else {
            topic.extend(word.chars().map(|c| if c == '/' { '.' } else { c }));
        }
    }
    topic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_translate_back_to_the_routed_topic() {
        for (key, topic) in [
            ("c.xfi.P1_A1.#", "c/xfi/P1_A1/#"),
            ("c.xfi.P1_A1.*.x", "c/xfi/P1_A1/+/x"),
            ("c.xfi.P1_A1.r/1", "c/xfi/P1_A1/r.1"),
            ("a..b", "a//b"),
            (".a", "/a"),
            ("a.", "a/"),
            ("a*b.*", "a*b/+"),
            (
                "$aws.things.P1_A1_d.shadow.get",
                "$aws/things/P1_A1_d/shadow/get",
            ),
            ("", ""),
        ] {
            assert_eq!(routing_key_to_topic(key), topic, "{key}");
        }
    }

    #[test]
    fn only_the_connections_own_queues_are_its_own() {
        let own = "xfi:P1_A1:clt:J1";
        assert!(is_own_subscription_queue(
            "mqtt-subscription-xfi:P1_A1:clt:J1qos1",
            own
        ));
        assert!(is_own_subscription_queue(
            "mqtt-subscription-xfi:P1_A1:clt:J1qos0",
            own
        ));
        for other in [
            "mqtt-subscription-xfi:P2_A2:clt:J2qos1",
            "mqtt-subscription-xfi:P1_A1:clt:J1qos2",
            "mqtt-subscription-xfi:P1_A1:clt:J1",
            "mqtt-subscription-xfi:P1_A1:clt:J1qos1x",
            "mqtt-will-xfi:P1_A1:clt:J1",
            "amq.gen-1",
            "",
        ] {
            assert!(!is_own_subscription_queue(other, own), "{other}");
        }
    }
}
