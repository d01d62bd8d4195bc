//! The C ABI mosquitto calls: version negotiation, init and cleanup, and five event callbacks.
//!
//! Each entry point converts C data at the boundary (a NULL pointer or a string that is not
//! UTF-8 is a deny) and runs under `catch_unwind`: a panic is logged and answered with a
//! deny, a refused authentication or a refused start, and never unwinds into mosquitto. The
//! [`Plugin`] lives in one heap allocation ([`Instance`]) handed to mosquitto as `userdata`,
//! behind a `Mutex`: mosquitto 2.0 calls plugins from its one thread, and the lock keeps that
//! correct whatever calls it. The lock is never held while calling back into mosquitto —
//! `mosquitto_log_printf` may publish to `$SYS/broker/log/#` and
//! `mosquitto_kick_client_by_clientid` disconnects a client, and both run plugin callbacks
//! again. This is the only module with `unsafe` code; it must stay a thin translation.

use crate::authority::{Presented, Refusal};
use crate::clients::ClientKey;
use crate::ffi::*;
use crate::options::{OptionError, Options};
use crate::plugin::{Access, Level, Plugin};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Instant;

/// What `userdata` points to.
struct Instance {
    identifier: *mut mosquitto_plugin_id_t,
    plugin: Mutex<Plugin>,
}

impl Instance {
    /// Runs `f` on the plugin, then writes its queued log lines after unlocking.
    fn with<T>(&self, f: impl FnOnce(&mut Plugin) -> T) -> T {
        let (result, logs) = {
            let mut plugin = self.plugin.lock().unwrap_or_else(|p| p.into_inner());
            let result = f(&mut plugin);
            (result, plugin.take_logs())
        };
        for (level, line) in logs {
            log(level, &line);
        }
        result
    }
}

/// The events the plugin registers for, with their callbacks.
const EVENTS: [(c_int, MosqCallback); 5] = [
    (MOSQ_EVT_BASIC_AUTH, on_basic_auth),
    (MOSQ_EVT_ACL_CHECK, on_acl_check),
    (MOSQ_EVT_DISCONNECT, on_disconnect),
    (MOSQ_EVT_RELOAD, on_reload),
    (MOSQ_EVT_TICK, on_tick),
];

/// Runs `f`; a panic is logged and `fallback` returned instead.
fn guarded(what: &str, fallback: c_int, f: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(rc) => rc,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_string());
            // Logging itself must not panic back out: ignore a failure here.
            let _ = catch_unwind(|| {
                log(
                    Level::Error,
                    &format!("internal error in {what}, answered with a deny: {message}"),
                )
            });
            fallback
        }
    }
}

/// Writes one line to mosquitto's log, prefixed `topicguard: `.
fn log(level: Level, line: &str) {
    let level = match level {
        Level::Debug => MOSQ_LOG_DEBUG,
        Level::Info => MOSQ_LOG_INFO,
        Level::Notice => MOSQ_LOG_NOTICE,
        Level::Warning => MOSQ_LOG_WARNING,
        Level::Error => MOSQ_LOG_ERR,
    };
    let text = CString::new(format!("topicguard: {line}").replace('\0', "\\0"))
        .unwrap_or_else(|_| c"topicguard: (unprintable log line)".to_owned());
    // SAFETY: a constant "%s" format with one NUL-terminated string argument.
    unsafe { mosquitto_log_printf(level, c"%s".as_ptr(), text.as_ptr()) };
}

/// A C string as UTF-8; `None` for NULL or anything that is not UTF-8.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that outlives `'a`.
unsafe fn utf8<'a>(ptr: *const c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(ptr) }.to_str().ok()
}

/// The instance behind `userdata`.
///
/// # Safety
/// `userdata` is NULL or the pointer `mosquitto_plugin_init` returned, not yet cleaned up.
unsafe fn instance<'a>(userdata: *mut c_void) -> Option<&'a Instance> {
    // SAFETY: guaranteed by the caller.
    unsafe { (userdata as *const Instance).as_ref() }
}

/// Negotiation: the plugin speaks interface version 5 only.
///
/// # Safety
/// `versions` points to `count` ints (mosquitto's list of supported versions).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mosquitto_plugin_version(count: c_int, versions: *const c_int) -> c_int {
    guarded("mosquitto_plugin_version", -1, || {
        if versions.is_null() || count <= 0 {
            return -1;
        }
        // SAFETY: mosquitto passes an array of `count` ints.
        let versions = unsafe { std::slice::from_raw_parts(versions, count as usize) };
        if versions.contains(&MOSQ_PLUGIN_VERSION) {
            MOSQ_PLUGIN_VERSION
        } else {
            -1
        }
    })
}

/// Reads the options, loads the policy (or starts closed) and registers the callbacks. An
/// option error refuses the start (`MOSQ_ERR_INVAL`): mosquitto logs it and exits.
///
/// # Safety
/// Called by mosquitto with its identifier, a place for `userdata` and `count` options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mosquitto_plugin_init(
    identifier: *mut mosquitto_plugin_id_t,
    userdata: *mut *mut c_void,
    options: *mut mosquitto_opt,
    count: c_int,
) -> c_int {
    guarded("mosquitto_plugin_init", MOSQ_ERR_INVAL, || {
        if identifier.is_null() || userdata.is_null() {
            return MOSQ_ERR_INVAL;
        }
        // SAFETY: mosquitto passes `count` options (or NULL with 0).
        let options = match unsafe { read_options(options, count) } {
            Ok(options) => options,
            Err(error) => {
                log(Level::Error, &format!("cannot start: {error}"));
                return MOSQ_ERR_INVAL;
            }
        };
        let mut plugin = Plugin::start(options);
        for (level, line) in plugin.take_logs() {
            log(level, &line);
        }
        // Freed by cleanup, or below if registering fails.
        let instance = Box::into_raw(Box::new(Instance {
            identifier,
            plugin: Mutex::new(plugin),
        }));
        for (done, (event, callback)) in EVENTS.iter().enumerate() {
            // SAFETY: a live identifier, a callback with the generic signature and the
            // instance as its userdata.
            let rc = unsafe {
                mosquitto_callback_register(
                    identifier,
                    *event,
                    *callback,
                    std::ptr::null(),
                    instance.cast(),
                )
            };
            if rc != MOSQ_ERR_SUCCESS {
                log(
                    Level::Error,
                    &format!("cannot register for event {event} (error {rc})"),
                );
                // SAFETY: undo what was registered, then free the instance nobody holds.
                unsafe {
                    unregister(identifier, &EVENTS[..done]);
                    drop(Box::from_raw(instance));
                }
                return rc;
            }
        }
        // SAFETY: mosquitto gave a valid place for the userdata pointer.
        unsafe { *userdata = instance.cast() };
        MOSQ_ERR_SUCCESS
    })
}

/// Unregisters the callbacks and frees the plugin.
///
/// # Safety
/// `userdata` is what `mosquitto_plugin_init` stored, and is not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mosquitto_plugin_cleanup(
    userdata: *mut c_void,
    _options: *mut mosquitto_opt,
    _count: c_int,
) -> c_int {
    guarded("mosquitto_plugin_cleanup", MOSQ_ERR_SUCCESS, || {
        if userdata.is_null() {
            return MOSQ_ERR_SUCCESS;
        }
        // SAFETY: the pointer init created; mosquitto calls cleanup once.
        let instance = unsafe { Box::from_raw(userdata.cast::<Instance>()) };
        // SAFETY: the identifier is still valid during cleanup.
        unsafe { unregister(instance.identifier, &EVENTS) };
        MOSQ_ERR_SUCCESS
    })
}

/// # Safety
/// `identifier` is this plugin's live identifier.
unsafe fn unregister(identifier: *mut mosquitto_plugin_id_t, events: &[(c_int, MosqCallback)]) {
    for (event, callback) in events {
        // SAFETY: guaranteed by the caller; unregistering an absent callback is harmless.
        unsafe { mosquitto_callback_unregister(identifier, *event, *callback, std::ptr::null()) };
    }
}

/// # Safety
/// `options` points to `count` entries of NUL-terminated key/value strings (or is NULL).
unsafe fn read_options(
    options: *const mosquitto_opt,
    count: c_int,
) -> Result<Options, OptionError> {
    let entries = if options.is_null() || count <= 0 {
        &[][..]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(options, count as usize) }
    };
    let mut pairs = Vec::with_capacity(entries.len());
    for entry in entries {
        // SAFETY: mosquitto's option strings live as long as its configuration.
        let key = unsafe { utf8(entry.key) }.ok_or(OptionError::NotUtf8 {
            key: "?".to_string(),
        })?;
        // SAFETY: as above.
        let value = unsafe { utf8(entry.value) }.ok_or(OptionError::NotUtf8 {
            key: key.to_string(),
        })?;
        pairs.push((key, value));
    }
    Options::parse(pairs)
}

/// `MOSQ_EVT_BASIC_AUTH`: the password is the JWT; without one, the TLS client certificate;
/// without either, the policy's anonymous identity. `MOSQ_ERR_AUTH` refuses the CONNECT.
unsafe extern "C" fn on_basic_auth(
    _event: c_int,
    data: *mut c_void,
    userdata: *mut c_void,
) -> c_int {
    guarded("basic auth", MOSQ_ERR_AUTH, || {
        // SAFETY: mosquitto passes its event struct and our userdata.
        let (Some(instance), Some(event)) = (unsafe { instance(userdata) }, unsafe {
            data.cast::<mosquitto_evt_basic_auth>().as_ref()
        }) else {
            return MOSQ_ERR_AUTH;
        };
        let client = event.client;
        // SAFETY: the client is live for the duration of the event.
        let client_id = unsafe { utf8(mosquitto_client_id(client)) };
        let password = (!event.password.is_null())
            // SAFETY: a NUL-terminated password owned by mosquitto.
            .then(|| unsafe { CStr::from_ptr(event.password) }.to_bytes());
        // SAFETY: the client is live; the certificate is read only when there is no password.
        let presented = Presented::from_connect(password, || unsafe { client_certificate(client) });
        let key = ClientKey(client as usize);
        if instance.with(|plugin| plugin.authenticate(key, client_id, presented)) {
            MOSQ_ERR_SUCCESS
        } else {
            MOSQ_ERR_AUTH
        }
    })
}

/// The leaf certificate of the client's TLS session, as DER.
///
/// # Safety
/// `client` is a live mosquitto client.
unsafe fn client_certificate(client: *const mosquitto) -> Result<Option<Vec<u8>>, Refusal> {
    // SAFETY: returns a new reference to the peer certificate, or NULL.
    let x509 = unsafe { mosquitto_client_certificate(client) }.cast::<X509>();
    if x509.is_null() {
        return Ok(None);
    }
    // SAFETY: x509 is a valid certificate; the first call sizes, the second writes exactly
    // that many bytes into the buffer.
    let der = unsafe {
        let len = i2d_X509(x509, std::ptr::null_mut());
        if len <= 0 {
            Err(Refusal::CertificateUnreadable)
        } else {
            let mut buffer = vec![0u8; len as usize];
            let mut cursor = buffer.as_mut_ptr();
            if i2d_X509(x509, &mut cursor) == len {
                Ok(Some(buffer))
            } else {
                Err(Refusal::CertificateUnreadable)
            }
        }
    };
    // SAFETY: releases the reference mosquitto_client_certificate took.
    unsafe { X509_free(x509) };
    der
}

/// `MOSQ_EVT_ACL_CHECK`: subscribe, publish (write, with retain, also the last will) and
/// every delivery (read). Anything not allowed is `MOSQ_ERR_ACL_DENIED`, never a deferral.
unsafe extern "C" fn on_acl_check(
    _event: c_int,
    data: *mut c_void,
    userdata: *mut c_void,
) -> c_int {
    guarded("ACL check", MOSQ_ERR_ACL_DENIED, || {
        // SAFETY: mosquitto passes its event struct and our userdata.
        let (Some(instance), Some(event)) = (unsafe { instance(userdata) }, unsafe {
            data.cast::<mosquitto_evt_acl_check>().as_ref()
        }) else {
            return MOSQ_ERR_ACL_DENIED;
        };
        let access = match event.access {
            MOSQ_ACL_SUBSCRIBE => Access::Subscribe,
            MOSQ_ACL_READ => Access::Read,
            MOSQ_ACL_WRITE => Access::Write,
            MOSQ_ACL_UNSUBSCRIBE => Access::Unsubscribe,
            _ => return MOSQ_ERR_ACL_DENIED,
        };
        // SAFETY: the topic and the client are live for the duration of the event.
        let (Some(topic), client_id) = (unsafe { utf8(event.topic) }, unsafe {
            utf8(mosquitto_client_id(event.client))
        }) else {
            return MOSQ_ERR_ACL_DENIED;
        };
        let key = ClientKey(event.client as usize);
        let allowed =
            instance.with(|plugin| plugin.check(key, client_id, access, topic, event.retain));
        if allowed {
            MOSQ_ERR_SUCCESS
        } else {
            MOSQ_ERR_ACL_DENIED
        }
    })
}

/// `MOSQ_EVT_DISCONNECT`: the client's state is dropped (after its will check).
unsafe extern "C" fn on_disconnect(
    _event: c_int,
    data: *mut c_void,
    userdata: *mut c_void,
) -> c_int {
    guarded("disconnect", MOSQ_ERR_SUCCESS, || {
        // SAFETY: mosquitto passes its event struct and our userdata.
        if let (Some(instance), Some(event)) = (unsafe { instance(userdata) }, unsafe {
            data.cast::<mosquitto_evt_disconnect>().as_ref()
        }) {
            instance.with(|plugin| plugin.disconnect(ClientKey(event.client as usize)));
        }
        MOSQ_ERR_SUCCESS
    })
}

/// `MOSQ_EVT_RELOAD` (SIGHUP): reload, keeping the old policy on error. Answers "defer" so
/// that mosquitto 2.0 still runs the reload of any other plugin after this one.
unsafe extern "C" fn on_reload(_event: c_int, _data: *mut c_void, userdata: *mut c_void) -> c_int {
    guarded("reload", MOSQ_ERR_PLUGIN_DEFER, || {
        // SAFETY: our userdata.
        if let Some(instance) = unsafe { instance(userdata) } {
            instance.with(Plugin::reload);
        }
        MOSQ_ERR_PLUGIN_DEFER
    })
}

/// `MOSQ_EVT_TICK`: refuse expired credentials and disconnect clients no longer admitted.
unsafe extern "C" fn on_tick(_event: c_int, _data: *mut c_void, userdata: *mut c_void) -> c_int {
    guarded("tick", MOSQ_ERR_SUCCESS, || {
        // SAFETY: our userdata.
        let Some(instance) = (unsafe { instance(userdata) }) else {
            return MOSQ_ERR_SUCCESS;
        };
        let to_kick = instance.with(|plugin| plugin.sweep(Instant::now()));
        for client_id in to_kick {
            if let Ok(id) = CString::new(client_id) {
                // SAFETY: a NUL-terminated id; called outside the plugin lock, since the
                // disconnect runs the plugin's disconnect callback.
                unsafe { mosquitto_kick_client_by_clientid(id.as_ptr(), false) };
            }
        }
        MOSQ_ERR_SUCCESS
    })
}
