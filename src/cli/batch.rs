//! `topicguard decide --batch`: many requests, one compiled policy, JSON lines in and out.
//!
//! Each line of the input is one JSON request (see [`BatchRequest`]); each gets one JSON
//! line out, in input order: the decision document `decide --format json` prints (with
//! `line`), or an error document naming the line. A bad line never stops the batch, and
//! the exit code is the worst line's: 0 all allowed, 1 any denied, 2 any bad line. Blank
//! lines are skipped. Costs one compile, then per line the line's parse, its identity's
//! binding (a credential is verified against the command line's anchors) and one decision;
//! memory is bounded by [`MAX_LINE_BYTES`] per line, whatever the input. It never widens a
//! request: anything it cannot read is an error line, never a guess.

use super::identity_args::{asserted, with_client_id};
use super::output::decision_json;
use super::output::{CliError, Exit, Out};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use topicguard::decide::{Engine, Explanation, Request};
use topicguard::identity::Identity;
use topicguard::identity::anchors::TrustFiles;
use topicguard::identity::files;
use topicguard::policy::Policy;

/// The longest request line read; a longer one is an error line (its rest is skipped).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The largest certificate chain file a request line may name.
pub const MAX_CREDENTIAL_BYTES: u64 = 1 << 20;

/// One request line.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// An asserted identity (nothing verified), with `attrs`.
    identity: Option<String>,
    #[serde(default)]
    attrs: BTreeMap<String, String>,
    /// Instead of `identity`: a file holding a JWT, verified with the anchor options.
    jwt: Option<PathBuf>,
    /// Instead of `identity`: a PEM certificate chain file, verified with the anchor options.
    cert: Option<PathBuf>,
    /// The CONNECT client id (default: the identity's client template, rendered).
    client_id: Option<String>,
    action: BatchAction,
    /// The topic name (publish, receive) or filter (subscribe); none for connect.
    topic: Option<String>,
    /// The publish's retain flag.
    #[serde(default)]
    retain: bool,
}

/// The action of a request line.
#[derive(Clone, Copy, Debug, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum BatchAction {
    Connect,
    Publish,
    Subscribe,
    Receive,
}

/// What is wrong with one line.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line is longer than [`MAX_LINE_BYTES`].
    #[error("the line is longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    /// The line is not UTF-8.
    #[error("the line is not valid UTF-8 (byte offset {0})")]
    NotUtf8(usize),
    /// The line is not a request object.
    #[error("not a request: {0}")]
    Json(#[from] serde_json::Error),
    /// The request is incomplete or contradictory.
    #[error("{0}")]
    Request(String),
    /// The identity cannot be bound (a credential rejected, a client id underivable).
    #[error("{0}")]
    Identity(#[from] CliError),
}

/// Decides every request line of `input`; returns the worst line's exit code.
pub fn run(
    policy: &Policy,
    engine: &Engine,
    trust: &TrustFiles,
    mut input: impl BufRead,
    out: Out,
) -> Exit {
    let mut worst = Exit::Ok;
    let mut number = 0u64;
    let mut buffer = Vec::new();
    loop {
        let line = match read_line(&mut input, &mut buffer) {
            Ok(None) => break,
            Ok(Some(line)) => line,
            Err(e) => {
                let message = format!("cannot read stdin: {e}");
                return worst.max(out.error(&CliError::Runtime(message)));
            }
        };
        number += 1;
        let text = line.and_then(|bytes| {
            std::str::from_utf8(bytes).map_err(|e| LineError::NotUtf8(e.valid_up_to()))
        });
        if matches!(text, Ok(t) if t.trim().is_empty()) {
            continue;
        }
        match text.and_then(|text| decide_line(policy, engine, trust, text)) {
            Ok((explanation, request)) => {
                let allowed = explanation.decision.is_allowed();
                out.json_line(&LineDocument {
                    line: number,
                    document: decision_json(&explanation, request.as_request()),
                });
                worst = worst.max(if allowed { Exit::Ok } else { Exit::Failure });
            }
            Err(error) => {
                let error = serde_json::json!({
                    "kind": "request", "message": error.to_string(), "diagnostics": [],
                });
                out.json_line(&LineDocument {
                    line: number,
                    document: serde_json::json!({ "error": error }),
                });
                worst = Exit::Usage;
            }
        }
    }
    worst
}

/// Reads one line (without its `\n`) into `buffer`, keeping at most [`MAX_LINE_BYTES`];
/// `None` at the end of the input.
fn read_line<'b>(
    input: &mut impl BufRead,
    buffer: &'b mut Vec<u8>,
) -> std::io::Result<Option<Result<&'b [u8], LineError>>> {
    buffer.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            break;
        }
        read_any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buffer.len() + chunk.len() > MAX_LINE_BYTES {
            too_long = true;
        } else {
            buffer.extend_from_slice(chunk);
        }
        let used = done.unwrap_or(available.len());
        input.consume(used);
        if done.is_some() {
            break;
        }
    }
    if !read_any {
        return Ok(None);
    }
    if too_long {
        return Ok(Some(Err(LineError::TooLong)));
    }
    if buffer.last() == Some(&b'\r') {
        buffer.pop();
    }
    Ok(Some(Ok(buffer.as_slice())))
}

/// A decided line's request, owned (the topic outlives the line's text).
struct Decided {
    action: BatchAction,
    topic: String,
    retain: bool,
}

impl Decided {
    fn as_request(&self) -> Request<'_> {
        let topic = self.topic.as_str();
        match self.action {
            BatchAction::Connect => Request::Connect,
            BatchAction::Publish => Request::Publish {
                topic,
                retain: self.retain,
            },
            BatchAction::Subscribe => Request::subscribe(topic),
            BatchAction::Receive => Request::receive(topic),
        }
    }
}

/// One line's explanation and the request it answers.
fn decide_line(
    policy: &Policy,
    engine: &Engine,
    trust: &TrustFiles,
    text: &str,
) -> Result<(Explanation, Decided), LineError> {
    let request: BatchRequest = serde_json::from_str(text)?;
    if request.retain && !matches!(request.action, BatchAction::Publish) {
        return Err(bad("`retain` is a flag of publish only"));
    }
    match (request.action, request.topic.is_some()) {
        (BatchAction::Connect, true) => return Err(bad("connect takes no `topic`")),
        (BatchAction::Connect, false) | (_, true) => {}
        (_, false) => return Err(bad("this action needs a `topic`")),
    }
    let (identity, client_id) = bind(policy, trust, &request)?;
    let session = engine.bind(&identity, &client_id);
    let decided = Decided {
        action: request.action,
        topic: request.topic.unwrap_or_default(),
        retain: request.retain,
    };
    let explanation = engine.explain(&session, decided.as_request());
    Ok((explanation, decided))
}

/// A certificate file a line names must be a regular file of at most
/// [`MAX_CREDENTIAL_BYTES`]: a device or a pipe (`/dev/zero`) is refused before it is read.
fn credential_file(path: &std::path::Path) -> Result<(), LineError> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| LineError::Request(format!("{}: {e}", path.display())))?;
    if !metadata.is_file() || metadata.len() > MAX_CREDENTIAL_BYTES {
        return Err(LineError::Request(format!(
            "{}: not a regular file of at most {MAX_CREDENTIAL_BYTES} bytes",
            path.display()
        )));
    }
    Ok(())
}

fn bad(message: &str) -> LineError {
    LineError::Request(message.to_string())
}

/// The line's identity: asserted, or verified from its credential file.
fn bind(
    policy: &Policy,
    trust: &TrustFiles,
    request: &BatchRequest,
) -> Result<(Identity, String), LineError> {
    let checked = &policy.checked;
    let rejected = |e: files::FileCredentialError| LineError::Request(e.to_string());
    let client_id = request.client_id.clone();
    match (&request.identity, &request.jwt, &request.cert) {
        (Some(identity), None, None) => Ok(asserted(
            checked,
            identity,
            request.attrs.clone(),
            client_id,
        )?),
        (None, jwt, cert) if !request.attrs.is_empty() && (jwt.is_some() || cert.is_some()) => {
            Err(bad("`attrs` come from the verified credential: drop them"))
        }
        (None, Some(jwt), None) => {
            if jwt.as_os_str() == "-" {
                return Err(bad("stdin carries the requests: give the JWT as a file"));
            }
            let token = files::read_token(jwt).map_err(rejected)?;
            let verified = files::verify_jwt(checked, &token, trust).map_err(rejected)?;
            Ok(with_client_id(verified, client_id)?)
        }
        (None, None, Some(cert)) => {
            credential_file(cert)?;
            let now = rustls_pki_types::UnixTime::now();
            let verified =
                files::verify_certificate(checked, cert, trust, now).map_err(rejected)?;
            Ok(with_client_id(verified, client_id)?)
        }
        _ => Err(bad("give exactly one of `identity`, `jwt` or `cert`")),
    }
}

/// A line of `decide --batch`: its 1-based line number, then its document.
#[derive(Debug, serde::Serialize)]
pub struct LineDocument<T: serde::Serialize> {
    /// The input line this answers.
    pub line: u64,
    /// The decision or error document.
    #[serde(flatten)]
    pub document: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Result<String, String>> {
        let mut reader = std::io::BufReader::with_capacity(7, input);
        let mut buffer = Vec::new();
        let mut found = Vec::new();
        while let Some(line) = read_line(&mut reader, &mut buffer).unwrap() {
            found.push(
                line.map(|b| String::from_utf8_lossy(b).into_owned())
                    .map_err(|e| e.to_string()),
            );
        }
        found
    }

    #[test]
    fn lines_are_split_across_buffer_refills_and_bounded() {
        assert_eq!(
            lines(b"abcdefghij\r\n\nxyz"),
            [Ok("abcdefghij".into()), Ok(String::new()), Ok("xyz".into())]
        );
        let mut long = vec![b'a'; MAX_LINE_BYTES + 1];
        long.extend_from_slice(b"\nnext\n");
        let found = lines(&long);
        assert_eq!(found.len(), 2);
        assert!(found[0].is_err());
        assert_eq!(found[1], Ok("next".into()));
        assert!(lines(b"").is_empty());
    }
}
