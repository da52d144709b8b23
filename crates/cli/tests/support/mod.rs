//! What the tests that run `runyard` in the background share: a process
//! whose standard error is collected as it comes, waited on for what it
//! says, and killed when dropped; the address a server says it bound.

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A process in the background, its stderr collected; killed (and
/// reaped) when dropped.
pub(crate) struct Background {
    pub(crate) child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Background {
    /// Starts `cmd` with no stdin, stdout thrown away, stderr collected.
    pub(crate) fn start(mut cmd: Command) -> Background {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, buf) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Background { child, stderr }
    }

    /// What it wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What `find` finds in its stderr, once it does; a failure if the
    /// process ends first, or after a minute.
    #[allow(dead_code)] // the integration tests wait on their own conditions
    pub(crate) fn wait_for<T>(&mut self, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            let err = self.stderr();
            if let Some(found) = find(&err) {
                return found;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("it ended ({status}) before {what}:\n{err}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "gave up waiting for {what}:\n{err}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in a whole line `... listening on http://ADDR ...`.
#[allow(dead_code)] // not every test that starts processes starts a server
pub(crate) fn said_address(stderr: &str) -> Option<SocketAddr> {
    let rest = stderr.split("listening on http://").nth(1)?;
    let (line, _) = rest.split_once('\n')?;
    let a = line.split_whitespace().next().expect("an address");
    Some(a.parse().expect("an address"))
}
