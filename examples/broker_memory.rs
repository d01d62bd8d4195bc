//! Where the broker's memory goes: the broker as `scripts/bench-broker` runs it, behind an
//! allocator that counts live heap bytes, printing twice a second
//! `MEMORY connections=N live_heap_kib=H rss_kib=R` to stderr.
//!
//! Live heap is what the program holds; RSS is what the process keeps from the operating
//! system. After connections close, live heap back at its baseline with RSS still high
//! means the allocator kept freed memory (retention); live heap still high means state
//! the broker never freed. `--trim` asks glibc to return free memory (`malloc_trim(0)`)
//! whenever no connection is open, to show how much of the RSS was retention. Prints
//! `LISTENING <addr>` once bound; runs until SIGTERM or SIGINT. `--tls CERT KEY` serves
//! MQTT over TLS instead (rustls, the broker's own TLS listener; e.g. `topicguard dev pki`'s
//! server.pem and server-key.pem, with `topicguard bench --idle N --tls-ca ca.pem`), so the
//! TLS cost per connection can be read the same way. This example must never
//! listen anywhere but 127.0.0.1, and is for measurement only: the counter costs two
//! atomic operations per allocation.

use arc_swap::ArcSwap;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;
use topicguard::broker::listener::{Listener, Protocol, serve_listeners, tls};
use topicguard::broker::state::Broker;
use topicguard::broker::{AnonymousAuthenticator, BrokerConfig, SharedEngine};
use topicguard::load::usage::rss_kib;
use topicguard::{Engine, Policy, Source};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is only
// bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

unsafe extern "C" {
    /// glibc: returns free memory at the top of the heap and in arenas to the system.
    fn malloc_trim(pad: usize) -> i32;
}

const POLICY: &str = "identity bench from anonymous {\n    client \"bench-{+cid}\"\n}\n\
                      allow bench connect\n\
                      allow bench publish, subscribe, receive \"bench/#\"\n";

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let trim = args.iter().any(|a| a == "--trim");
    let protocol = match args.iter().position(|a| a == "--tls") {
        None => Protocol::Tcp,
        Some(at) => {
            let (Some(cert), Some(key)) = (args.get(at + 1), args.get(at + 2)) else {
                return Err("--tls needs CERT and KEY (PEM files)".into());
            };
            let clients = tls::ClientCertificates::None;
            let acceptor = tls::acceptor(cert.as_ref(), key.as_ref(), clients, Vec::new())
                .map_err(|e| format!("--tls: {e}"))?;
            Protocol::Tls(acceptor)
        }
    };
    let policy = Policy::from_source(&Source::new("memory.policy", POLICY))
        .map_err(|d| format!("policy: {d}"))?;
    let engine = Engine::new(&policy.checked).map_err(|e| format!("compile: {e}"))?;
    let engine: SharedEngine = Arc::new(ArcSwap::from_pointee(engine));
    let config = BrokerConfig {
        max_connections: 20_000,
        ..BrokerConfig::default()
    };
    let metrics = config.observer.metrics().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!("LISTENING {address}");
    tokio::spawn(async move {
        let pid = std::process::id();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let text = metrics.render();
            let connections = text
                .lines()
                .find_map(|l| l.strip_prefix("topicguard_connections_current "))
                .unwrap_or("?")
                .to_string();
            let live = LIVE.load(Ordering::Relaxed) / 1024;
            let rss = rss_kib(pid).unwrap_or(0);
            let trimmed = if trim && connections == "0" {
                // SAFETY: malloc_trim only releases free memory; it takes no pointers.
                unsafe { malloc_trim(0) };
                format!(" rss_after_trim_kib={}", rss_kib(pid).unwrap_or(0))
            } else {
                String::new()
            };
            eprintln!(
                "MEMORY connections={connections} live_heap_kib={live} rss_kib={rss}{trimmed}"
            );
        }
    });
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let broker = Arc::new(Broker::new(
        engine,
        config,
        Arc::new(AnonymousAuthenticator),
    ));
    let listener = Listener {
        socket: listener,
        protocol,
    };
    serve_listeners(vec![listener], broker, shutdown).await;
    Ok(())
}
