//! The C interface, written by hand: the few mosquitto 2.0 and OpenSSL items the plugin uses.
//!
//! Transcribed from Debian's `mosquitto-dev` 2.0.11 headers (`/usr/include/mosquitto.h`,
//! `mosquitto_plugin.h`, `mosquitto_broker.h`; plugin interface version 5) and OpenSSL 3's
//! `x509.h`. The `tests` below compile a C file against the installed headers and compare
//! every constant, struct size and field offset declared here, so a drift fails the build's
//! tests rather than a broker. The mosquitto functions are resolved from the broker process
//! when it loads the plugin; the OpenSSL ones from `libcrypto`, which mosquitto links too.
//! This module only declares: calling anything here is the `exports` module's business.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_uchar, c_void};

/// `MOSQ_PLUGIN_VERSION`: the plugin interface this plugin implements.
pub const MOSQ_PLUGIN_VERSION: c_int = 5;

// `enum mosq_err_t` (mosquitto.h): the answers a callback gives.
pub const MOSQ_ERR_SUCCESS: c_int = 0;
pub const MOSQ_ERR_INVAL: c_int = 3;
pub const MOSQ_ERR_AUTH: c_int = 11;
pub const MOSQ_ERR_ACL_DENIED: c_int = 12;
pub const MOSQ_ERR_PLUGIN_DEFER: c_int = 17;

// `MOSQ_ACL_*` (mosquitto_plugin.h): what an ACL check asks.
pub const MOSQ_ACL_READ: c_int = 0x01;
pub const MOSQ_ACL_WRITE: c_int = 0x02;
pub const MOSQ_ACL_SUBSCRIBE: c_int = 0x04;
pub const MOSQ_ACL_UNSUBSCRIBE: c_int = 0x08;

// `enum mosquitto_plugin_event` (mosquitto_broker.h).
pub const MOSQ_EVT_RELOAD: c_int = 1;
pub const MOSQ_EVT_ACL_CHECK: c_int = 2;
pub const MOSQ_EVT_BASIC_AUTH: c_int = 3;
pub const MOSQ_EVT_TICK: c_int = 9;
pub const MOSQ_EVT_DISCONNECT: c_int = 10;

// `MOSQ_LOG_*` (mosquitto.h).
pub const MOSQ_LOG_INFO: c_int = 1 << 0;
pub const MOSQ_LOG_NOTICE: c_int = 1 << 1;
pub const MOSQ_LOG_WARNING: c_int = 1 << 2;
pub const MOSQ_LOG_ERR: c_int = 1 << 3;
pub const MOSQ_LOG_DEBUG: c_int = 1 << 4;

/// `struct mosquitto`: a client connection, opaque to plugins.
#[repr(C)]
pub struct mosquitto {
    _opaque: [u8; 0],
}

/// `mosquitto_plugin_id_t`: the broker's handle for this plugin instance, opaque.
#[repr(C)]
pub struct mosquitto_plugin_id_t {
    _opaque: [u8; 0],
}

/// `struct mosquitto_opt`: one `plugin_opt_KEY value` line (key without the prefix).
#[repr(C)]
pub struct mosquitto_opt {
    pub key: *mut c_char,
    pub value: *mut c_char,
}

/// `struct mosquitto_evt_acl_check`: subscribe, publish (write) or delivery (read).
#[repr(C)]
pub struct mosquitto_evt_acl_check {
    pub future: *mut c_void,
    pub client: *mut mosquitto,
    pub topic: *const c_char,
    pub payload: *const c_void,
    pub properties: *mut c_void,
    pub access: c_int,
    pub payloadlen: u32,
    pub qos: u8,
    pub retain: bool,
    pub future2: [*mut c_void; 4],
}

/// `struct mosquitto_evt_basic_auth`: the CONNECT's username and password (either may be NULL).
#[repr(C)]
pub struct mosquitto_evt_basic_auth {
    pub future: *mut c_void,
    pub client: *mut mosquitto,
    pub username: *mut c_char,
    pub password: *mut c_char,
    pub future2: [*mut c_void; 4],
}

/// `struct mosquitto_evt_disconnect`: a client's connection ended.
#[repr(C)]
pub struct mosquitto_evt_disconnect {
    pub future: *mut c_void,
    pub client: *mut mosquitto,
    pub reason: c_int,
    pub future2: [*mut c_void; 4],
}

/// `MOSQ_FUNC_generic_callback`: `int cb(int event, void *event_data, void *userdata)`.
pub type MosqCallback = unsafe extern "C" fn(c_int, *mut c_void, *mut c_void) -> c_int;

/// `X509` (OpenSSL), opaque.
#[repr(C)]
pub struct X509 {
    _opaque: [u8; 0],
}

// Provided by the mosquitto broker binary that loads the plugin (mosquitto_broker.h).
unsafe extern "C" {
    pub fn mosquitto_callback_register(
        identifier: *mut mosquitto_plugin_id_t,
        event: c_int,
        cb_func: MosqCallback,
        event_data: *const c_void,
        userdata: *mut c_void,
    ) -> c_int;
    pub fn mosquitto_callback_unregister(
        identifier: *mut mosquitto_plugin_id_t,
        event: c_int,
        cb_func: MosqCallback,
        event_data: *const c_void,
    ) -> c_int;
    /// printf-style; the plugin always passes `"%s"` and one NUL-terminated string.
    pub fn mosquitto_log_printf(level: c_int, fmt: *const c_char, ...);
    pub fn mosquitto_client_id(client: *const mosquitto) -> *const c_char;
    /// The peer certificate (`X509 *`, a new reference the caller frees), or NULL.
    pub fn mosquitto_client_certificate(client: *const mosquitto) -> *mut c_void;
    pub fn mosquitto_kick_client_by_clientid(clientid: *const c_char, with_will: bool) -> c_int;
}

// OpenSSL 3 (x509.h), from libcrypto.
#[link(name = "crypto")]
unsafe extern "C" {
    /// DER-encodes `x` into `*out` (advancing it) and returns the length; with `out` NULL,
    /// only returns the length. Negative on error.
    pub fn i2d_X509(x: *const X509, out: *mut *mut c_uchar) -> c_int;
    pub fn X509_free(x: *mut X509);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};
    use std::path::Path;
    use std::process::Command;

    /// Every number the C compiler reports, with the value this module declares.
    fn declared() -> Vec<(&'static str, i64)> {
        vec![
            ("MOSQ_PLUGIN_VERSION", MOSQ_PLUGIN_VERSION as i64),
            ("MOSQ_ERR_SUCCESS", MOSQ_ERR_SUCCESS as i64),
            ("MOSQ_ERR_INVAL", MOSQ_ERR_INVAL as i64),
            ("MOSQ_ERR_AUTH", MOSQ_ERR_AUTH as i64),
            ("MOSQ_ERR_ACL_DENIED", MOSQ_ERR_ACL_DENIED as i64),
            ("MOSQ_ERR_PLUGIN_DEFER", MOSQ_ERR_PLUGIN_DEFER as i64),
            ("MOSQ_ACL_READ", MOSQ_ACL_READ as i64),
            ("MOSQ_ACL_WRITE", MOSQ_ACL_WRITE as i64),
            ("MOSQ_ACL_SUBSCRIBE", MOSQ_ACL_SUBSCRIBE as i64),
            ("MOSQ_ACL_UNSUBSCRIBE", MOSQ_ACL_UNSUBSCRIBE as i64),
            ("MOSQ_EVT_RELOAD", MOSQ_EVT_RELOAD as i64),
            ("MOSQ_EVT_ACL_CHECK", MOSQ_EVT_ACL_CHECK as i64),
            ("MOSQ_EVT_BASIC_AUTH", MOSQ_EVT_BASIC_AUTH as i64),
            ("MOSQ_EVT_TICK", MOSQ_EVT_TICK as i64),
            ("MOSQ_EVT_DISCONNECT", MOSQ_EVT_DISCONNECT as i64),
            ("MOSQ_LOG_INFO", MOSQ_LOG_INFO as i64),
            ("MOSQ_LOG_NOTICE", MOSQ_LOG_NOTICE as i64),
            ("MOSQ_LOG_WARNING", MOSQ_LOG_WARNING as i64),
            ("MOSQ_LOG_ERR", MOSQ_LOG_ERR as i64),
            ("MOSQ_LOG_DEBUG", MOSQ_LOG_DEBUG as i64),
            (
                "sizeof(struct mosquitto_opt)",
                size_of::<mosquitto_opt>() as i64,
            ),
            (
                "offsetof(struct mosquitto_opt, value)",
                offset_of!(mosquitto_opt, value) as i64,
            ),
            (
                "sizeof(struct mosquitto_evt_acl_check)",
                size_of::<mosquitto_evt_acl_check>() as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_acl_check, client)",
                offset_of!(mosquitto_evt_acl_check, client) as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_acl_check, topic)",
                offset_of!(mosquitto_evt_acl_check, topic) as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_acl_check, properties)",
                offset_of!(mosquitto_evt_acl_check, properties) as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_acl_check, access)",
                offset_of!(mosquitto_evt_acl_check, access) as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_acl_check, payloadlen)",
                offset_of!(mosquitto_evt_acl_check, payloadlen) as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_acl_check, qos)",
                offset_of!(mosquitto_evt_acl_check, qos) as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_acl_check, retain)",
                offset_of!(mosquitto_evt_acl_check, retain) as i64,
            ),
            (
                "sizeof(struct mosquitto_evt_basic_auth)",
                size_of::<mosquitto_evt_basic_auth>() as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_basic_auth, client)",
                offset_of!(mosquitto_evt_basic_auth, client) as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_basic_auth, username)",
                offset_of!(mosquitto_evt_basic_auth, username) as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_basic_auth, password)",
                offset_of!(mosquitto_evt_basic_auth, password) as i64,
            ),
            (
                "sizeof(struct mosquitto_evt_disconnect)",
                size_of::<mosquitto_evt_disconnect>() as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_disconnect, client)",
                offset_of!(mosquitto_evt_disconnect, client) as i64,
            ),
            (
                "offsetof(struct mosquitto_evt_disconnect, reason)",
                offset_of!(mosquitto_evt_disconnect, reason) as i64,
            ),
            ("sizeof(bool)", size_of::<bool>() as i64),
            ("sizeof(int)", size_of::<c_int>() as i64),
        ]
    }

    /// A C program printing `name=value` for every entry of [`declared`].
    fn probe_source() -> String {
        let mut c = String::from(
            "#include <stddef.h>\n#include <stdio.h>\n#include <mosquitto.h>\n\
             #include <mosquitto_broker.h>\n#include <mosquitto_plugin.h>\n\
             #include <openssl/x509.h>\n\
             /* The prototypes the plugin declares by hand must match the headers'. */\n\
             static int (*register_cb)(mosquitto_plugin_id_t *, int, MOSQ_FUNC_generic_callback, const void *, void *) = mosquitto_callback_register;\n\
             static int (*unregister_cb)(mosquitto_plugin_id_t *, int, MOSQ_FUNC_generic_callback, const void *) = mosquitto_callback_unregister;\n\
             static void (*log_printf)(int, const char *, ...) = mosquitto_log_printf;\n\
             static const char *(*client_id)(const struct mosquitto *) = mosquitto_client_id;\n\
             static void *(*client_certificate)(const struct mosquitto *) = mosquitto_client_certificate;\n\
             static int (*kick)(const char *, bool) = mosquitto_kick_client_by_clientid;\n\
             static int (*der)(const X509 *, unsigned char **) = i2d_X509;\n\
             static void (*x509_free)(X509 *) = X509_free;\n\
             int main(void) {\n\
             (void)register_cb; (void)unregister_cb; (void)log_printf; (void)client_id;\n\
             (void)client_certificate; (void)kick; (void)der; (void)x509_free;\n",
        );
        for (name, _) in declared() {
            c.push_str(&format!(
                "printf(\"%s=%ld\\n\", \"{name}\", (long)({name}));\n"
            ));
        }
        c.push_str("return 0;\n}\n");
        c
    }

    #[test]
    fn declarations_match_the_installed_mosquitto_and_openssl_headers() {
        for header in ["mosquitto.h", "mosquitto_broker.h", "mosquitto_plugin.h"] {
            assert!(
                Path::new("/usr/include").join(header).exists(),
                "/usr/include/{header} is missing: run scripts/install-test-deps.sh \
                 (Debian's mosquitto-dev, libmosquitto-dev and libssl-dev)"
            );
        }
        let dir = ScratchDir::new();
        let source = dir.0.join("probe.c");
        let binary = dir.0.join("probe");
        std::fs::write(&source, probe_source()).unwrap();
        // Compile only the declarations (-c would not check the initializers' types against
        // a linked symbol; a full link is not possible without the broker): -fsyntax-only
        // type-checks every prototype, then a link of main alone prints the numbers.
        let syntax = Command::new("cc")
            .args(["-Werror", "-Wall", "-fsyntax-only"])
            .arg(&source)
            .output()
            .expect("a C compiler (cc) runs");
        assert!(
            syntax.status.success(),
            "the prototypes declared by hand do not match the headers:\n{}",
            String::from_utf8_lossy(&syntax.stderr)
        );
        let numbers = source_without_prototypes(&probe_source());
        std::fs::write(&source, numbers).unwrap();
        let built = Command::new("cc")
            .arg(&source)
            .arg("-o")
            .arg(&binary)
            .output()
            .expect("cc runs");
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let run = Command::new(&binary).output().expect("the probe runs");
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        for (name, value) in declared() {
            let line = format!("{name}={value}");
            assert!(
                text.lines().any(|l| l == line),
                "{name}: declared {value}, headers say {}",
                text.lines()
                    .find(|l| l.starts_with(&format!("{name}=")))
                    .unwrap_or("(missing)")
            );
        }
    }

    /// A temporary directory, removed when dropped (also when an assertion fails).
    struct ScratchDir(std::path::PathBuf);

    impl ScratchDir {
        fn new() -> ScratchDir {
            let dir = std::env::temp_dir().join(format!("tg-mosq-ffi-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            ScratchDir(dir)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    /// The probe with the function-pointer lines removed, so it links without the broker.
    fn source_without_prototypes(source: &str) -> String {
        source
            .lines()
            .filter(|l| !l.starts_with("static ") && !l.starts_with("(void)"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}
