//! A real `nats-server` with JetStream for tests: on a free loopback port, its store in a temporary
//! folder, killed when dropped. It can be stopped and started again on the same port and store
//! (a server restart).
//!
//! Its JetStream storage limit is set (`max_file_store`): left unset, nats-server takes 75% of the
//! disk's free space, and a stream's `max_bytes` (the queue budget, 1 GiB by default) is refused
//! on a machine with little free disk. The tests do not depend on the machine's free disk.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server` with JetStream.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
}

/// The JetStream storage the tests' servers may reserve: a limit on reservations (each stream's
/// `max_bytes`), not space taken from the disk.
pub const STORAGE: u64 = 64 << 30;

impl NatsServer {
    /// Starts one on a free loopback port with a fresh store; panics (saying how to install it)
    /// when `nats-server` is not installed.
    pub fn start() -> Self {
        Self::start_in(&std::env::temp_dir())
    }

    /// [`NatsServer::start`] with its store in a new folder under `base`.
    pub fn start_in(base: &Path) -> Self {
        Self::start_with(base, STORAGE)
    }

    /// [`NatsServer::start_in`] with `max_file_store` bytes of JetStream storage.
    pub fn start_with(base: &Path, max_file_store: u64) -> Self {
        let port = free_port();
        let store = tempfile::tempdir_in(base).expect("temp dir");
        let conf = format!(
            "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: {:?}\n  \
             max_file_store: {max_file_store}\n  max_memory_store: {}\n}}\n",
            store.path(),
            64 << 20
        );
        std::fs::write(store.path().join("nats.conf"), conf).expect("write nats.conf");
        let child = spawn(port, store.path());
        Self {
            child: Some(child),
            port,
            store,
        }
    }

    /// Its URL, for `server.queue.url`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn(self.port, self.store.path()));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `nats-server` on the config written into `store`; waits until it listens on `port`.
fn spawn(port: u16, store: &Path) -> Child {
    let mut child = Command::new("nats-server")
        .arg("-c")
        .arg(store.join("nats.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start nats-server ({e}): install it (`apt-get install nats-server`)")
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            panic!("nats-server did not start on port {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// A loopback port free at the moment.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
