//! Shared harness for the `topicguard authz` tests: the real binary on 127.0.0.1 port 0,
//! development tokens signed by one key (the JWKS written beside them), and a small
//! blocking HTTP/1.1 client with keep-alive. Every wait is bounded; the process is killed
//! when its handle drops, on every exit path of a test.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use topicguard::devcred::{self as dev, DevAlg, DevSigner};

/// How long the service may take to start.
const START: Duration = Duration::from_secs(30);
/// How long one HTTP exchange may take.
const EXCHANGE: Duration = Duration::from_secs(10);

/// `policies/xfinity.policy` plus a JWT-authenticated stand-in for its certificate-based
/// `service` identity: RabbitMQ, EMQX and go-auth forward no client certificate, so a
/// backend that answers requests logs in with a token (issuer `https://services.example.com/`).
pub const JWT_SERVICE_RULES: &str = "
identity backend from jwt {
    trust \"backend\"
    issuer \"https://services.example.com/\"
    audience \"iot-platform\"
    sid = claim \"sid\"
    client \"svc:{sid}:{+instance}\"
}
allow backend connect
allow backend subscribe, receive \"c/+/+/{sid}/+/+\"
allow backend publish \"c/+/+/+/{sid}/+/{success|failure}\"
";

pub use crate::scratch::Scratch;

/// The xfinity policy with [`JWT_SERVICE_RULES`], written into `scratch`.
pub fn xfinity_with_jwt_service(scratch: &Scratch) -> PathBuf {
    let base = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/xfinity.policy"
    ))
    .expect("read policies/xfinity.policy");
    scratch.write("xfinity.policy", &format!("{base}\n{JWT_SERVICE_RULES}"))
}

/// Development tokens, all signed by one key whose JWKS is written into the scratch dir.
pub struct Tokens {
    signer: DevSigner,
    pub jwks: PathBuf,
}

impl Tokens {
    pub fn new(scratch: &Scratch) -> Tokens {
        let signer = DevSigner::generate(DevAlg::ES256, "authz-test").expect("signer");
        let jwks = scratch.write("jwks.json", &dev::jwks(&[&signer]).to_string());
        Tokens { signer, jwks }
    }

    pub fn now() -> u64 {
        dev::unix_now()
    }

    /// A mobile token (xfinity `mobile`: client id `xfi:PID_AID:clt:JTI`) expiring at `exp`.
    pub fn mobile_until(&self, pid: &str, aid: &str, jti: &str, exp: u64) -> String {
        let mut claims = dev::default_claims(Tokens::now(), jti);
        claims["pid"] = json!(pid);
        claims["aid"] = json!(aid);
        claims["exp"] = json!(exp);
        self.signer.sign(&claims).expect("sign")
    }

    pub fn mobile(&self, pid: &str, aid: &str, jti: &str) -> String {
        self.mobile_until(pid, aid, jti, Tokens::now() + 3600)
    }

    /// A backend-service token ([`JWT_SERVICE_RULES`]).
    pub fn service(&self, sid: &str) -> String {
        let now = Tokens::now();
        self.sign(json!({
            "iss": "https://services.example.com/", "aud": "iot-platform",
            "iat": now, "exp": now + 3600, "sid": sid,
        }))
    }

    pub fn sign(&self, claims: Value) -> String {
        self.signer.sign(&claims).expect("sign")
    }
}

/// A running `topicguard authz`, killed on drop.
pub struct AuthzProcess {
    child: Child,
    pub addr: SocketAddr,
    stderr: PathBuf,
}

impl AuthzProcess {
    /// Starts the service with `policy`, `jwks` (the default keys, and the keys of the labels
    /// `idp` and `backend`) and extra arguments; waits for its address.
    pub fn start(policy: &Path, jwks: &Path, extra: &[&str], log: PathBuf) -> AuthzProcess {
        let stderr = std::fs::File::create(&log).expect("create the service log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_topicguard"))
            .arg("authz")
            .arg("--policy")
            .arg(policy)
            .arg("--jwks")
            .arg(jwks)
            // xfinity's `mobile` and the stand-in `backend` have trust labels; one test key
            // set serves both labels (a deployment may map two labels to one file).
            .arg("--trust")
            .arg(format!("idp={}", jwks.display()))
            .arg("--trust")
            .arg(format!("backend={}", jwks.display()))
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start topicguard authz");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(START) {
            Ok(line) if line.starts_with("listening on ") => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("topicguard authz did not start ({other:?}):\n{log}");
            }
        };
        let addr = line["listening on ".len()..]
            .trim()
            .parse()
            .expect("address");
        AuthzProcess {
            child,
            addr,
            stderr: log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the service logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// A new keep-alive connection.
    pub fn client(&self) -> HttpClient {
        HttpClient::connect(self.addr)
    }

    /// One POST on a fresh connection.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        self.client()
            .request("POST", path, Some(content_type), body)
    }

    pub fn form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        self.post(path, FORM, form_body(fields).as_bytes())
    }

    pub fn json(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.post(path, JSON, body.to_string().as_bytes());
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: answer is not JSON ({e}): {text}"));
        (status, value)
    }

    pub fn healthz(&self) -> Value {
        let (status, body) = self.client().request("GET", "/healthz", None, b"");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("healthz JSON")
    }
}

impl Drop for AuthzProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const FORM: &str = "application/x-www-form-urlencoded";
pub const JSON: &str = "application/json";

/// `a=1&b=x%2Fy`, as RabbitMQ encodes it.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A blocking HTTP/1.1 client on one keep-alive connection (Content-Length bodies only).
pub struct HttpClient {
    stream: BufReader<TcpStream>,
}

impl HttpClient {
    pub fn connect(addr: SocketAddr) -> HttpClient {
        let stream = TcpStream::connect_timeout(&addr, EXCHANGE).expect("connect to authz");
        stream.set_read_timeout(Some(EXCHANGE)).expect("timeout");
        stream.set_write_timeout(Some(EXCHANGE)).expect("timeout");
        HttpClient {
            stream: BufReader::new(stream),
        }
    }

    /// Sends raw bytes (for malformed requests).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).expect("send");
    }

    /// Sends bytes the service may refuse midway: false once it has closed the connection
    /// (its answer can then already be waiting to be read).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.get_mut().write_all(bytes).is_ok()
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, String) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n",
            body.len()
        );
        if let Some(content_type) = content_type {
            head.push_str(&format!("content-type: {content_type}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.send_raw(&request);
        self.response()
    }

    /// Reads one response: status and body.
    pub fn response(&mut self) -> (u16, String) {
        let mut status_line = String::new();
        self.stream
            .read_line(&mut status_line)
            .expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("content-length");
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).expect("body");
        (status, String::from_utf8(body).expect("UTF-8 body"))
    }
}
