//! A queue that hangs: `/readyz` answers 503 within its timeout however
//! often it is asked, the queue is never called more than
//! `QUEUE_CALLS` times at once, and the calls refused meanwhile are not
//! made later when the queue answers again.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use runyard_queue::{Capabilities, Counts, MemoryQueue, Queue, QueueError};
use runyard_serve::{serve, Config, Stop, QUEUE_CALLS};

/// Calls to `counts` under way, the most at once, and in all.
#[derive(Debug, Default)]
struct Calls {
    now: usize,
    most: usize,
    all: usize,
    open: bool,
}

/// A memory queue whose `counts` waits until the gate opens.
#[derive(Debug)]
struct Hung {
    inner: MemoryQueue,
    calls: Mutex<Calls>,
    gate: Condvar,
}

impl Queue for Hung {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn counts(&self) -> Result<Counts, QueueError> {
        let mut c = self.calls.lock().unwrap();
        c.now += 1;
        c.all += 1;
        c.most = c.most.max(c.now);
        c = self.gate.wait_while(c, |c| !c.open).unwrap();
        c.now -= 1;
        drop(c);
        self.gate.notify_all();
        self.inner.counts()
    }

    runyard_queue::forward_queue!(inner: insert, insert_async, claim_tasks, started, heartbeat,
        complete, release, rescue, next_due, now, set_waker);
}

fn get(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        addr.port()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_hung_queue_holds_a_bounded_number_of_calls_and_readyz_answers_503() {
    let q = Arc::new(Hung {
        inner: MemoryQueue::new(),
        calls: Mutex::default(),
        gate: Condvar::new(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config {
        addr,
        token: None,
        read_only: true,
        queue_name: "hung".into(),
        ready_timeout: Duration::from_millis(200),
        program: "ready-test",
    };
    let stop = Stop::new();
    let server = {
        let (q, stop) = (Arc::clone(&q) as Arc<dyn Queue>, stop.clone());
        std::thread::spawn(move || serve(q, listener, config, stop))
    };
    // Three times as many probes as there are places, all at once: each
    // is answered 503 by its timeout.
    let probes: Vec<_> = (0..3 * QUEUE_CALLS)
        .map(|_| std::thread::spawn(move || get(addr, "/readyz")))
        .collect();
    for p in probes {
        assert_eq!(p.join().unwrap(), 503);
    }
    assert_eq!(get(addr, "/healthz"), 200, "the server itself goes on");
    {
        let c = q.calls.lock().unwrap();
        assert!(c.most <= QUEUE_CALLS, "{} calls at once", c.most);
        assert_eq!(c.now, c.all, "every call made is still hung");
    }
    // The queue answers again: the hung calls end, and the probes that
    // found no place are not made now.
    q.calls.lock().unwrap().open = true;
    q.gate.notify_all();
    drop(
        q.gate
            .wait_while(q.calls.lock().unwrap(), |c| c.now > 0)
            .unwrap(),
    );
    let made = q.calls.lock().unwrap().all;
    assert!(made <= QUEUE_CALLS, "{made} calls");
    assert_eq!(get(addr, "/readyz"), 200);
    assert_eq!(q.calls.lock().unwrap().all, made + 1);
    stop.stop();
    server.join().unwrap().unwrap();
}
