//! [`forward_queue!`]: a wrapper's `Queue` methods that only pass the
//! call on, written once.

/// Implements the named [`Queue`](crate::Queue) methods of a wrapper by
/// calling them on one of its fields, inside the wrapper's `impl Queue`:
///
/// ```
/// use runyard_queue::{Capabilities, Durability, MemoryQueue, Queue};
///
/// /// A memory queue that says it keeps no job feature.
/// #[derive(Debug)]
/// struct Plain {
///     inner: MemoryQueue,
/// }
///
/// impl Queue for Plain {
///     fn capabilities(&self) -> Capabilities {
///         Capabilities::new(Durability::Process, self.inner.capabilities().writes())
///     }
///     runyard_queue::forward_queue!(inner: insert, insert_async, claim_tasks, started,
///         heartbeat, complete, release, rescue, counts, next_due, now, set_waker);
/// }
/// # let q = Plain { inner: MemoryQueue::new() };
/// # assert_eq!(q.counts().unwrap().total(), 0);
/// ```
///
/// A method left out keeps the trait's default (or must be written by
/// hand); one the wrapper changes is written beside the macro.
#[macro_export]
macro_rules! forward_queue {
    ($field:ident: $($method:ident),* $(,)?) => {
        $($crate::forward_queue!(@one $field $method);)*
    };
    (@one $f:ident capabilities) => {
        fn capabilities(&self) -> $crate::Capabilities {
            self.$f.capabilities()
        }
    };
    (@one $f:ident as_admin) => {
        fn as_admin(&self) -> ::std::option::Option<&dyn $crate::Admin> {
            self.$f.as_admin()
        }
    };
    (@one $f:ident as_inspect) => {
        fn as_inspect(&self) -> ::std::option::Option<&dyn $crate::Inspect> {
            self.$f.as_inspect()
        }
    };
    (@one $f:ident as_flow) => {
        fn as_flow(&self) -> ::std::option::Option<&dyn $crate::FlowControl> {
            self.$f.as_flow()
        }
    };
    (@one $f:ident as_schedules) => {
        fn as_schedules(&self) -> ::std::option::Option<&dyn $crate::Schedules> {
            self.$f.as_schedules()
        }
    };
    (@one $f:ident insert) => {
        fn insert(
            &self,
            jobs: ::std::vec::Vec<$crate::NewJob>,
        ) -> ::std::result::Result<::std::vec::Vec<$crate::Enqueued>, $crate::QueueError> {
            self.$f.insert(jobs)
        }
    };
    (@one $f:ident insert_async) => {
        fn insert_async(&self, jobs: ::std::vec::Vec<$crate::NewJob>) -> $crate::Submit<'_> {
            self.$f.insert_async(jobs)
        }
    };
    (@one $f:ident claim_tasks) => {
        fn claim_tasks(
            &self,
            worker: &str,
            max: usize,
            lease: ::std::time::Duration,
            tasks: ::std::option::Option<&[$crate::TaskName]>,
        ) -> ::std::result::Result<::std::vec::Vec<$crate::Claimed>, $crate::QueueError> {
            self.$f.claim_tasks(worker, max, lease, tasks)
        }
    };
    (@one $f:ident started) => {
        fn started(
            &self,
            worker: &str,
            started: &[($crate::Lease, $crate::__Timestamp)],
        ) -> ::std::result::Result<(), $crate::QueueError> {
            self.$f.started(worker, started)
        }
    };
    (@one $f:ident heartbeat) => {
        fn heartbeat(
            &self,
            worker: &str,
            leases: &[$crate::Lease],
            lease: ::std::time::Duration,
        ) -> ::std::result::Result<$crate::HeartbeatReply, $crate::QueueError> {
            self.$f.heartbeat(worker, leases, lease)
        }
    };
    (@one $f:ident complete) => {
        fn complete(
            &self,
            worker: &str,
            done: &[$crate::Completion],
        ) -> ::std::result::Result<$crate::Recorded, $crate::QueueError> {
            self.$f.complete(worker, done)
        }
    };
    (@one $f:ident release) => {
        fn release(
            &self,
            worker: &str,
            leases: &[$crate::Lease],
        ) -> ::std::result::Result<
            ::std::vec::Vec<::std::result::Result<(), $crate::Fenced>>,
            $crate::QueueError,
        > {
            self.$f.release(worker, leases)
        }
    };
    (@one $f:ident rescue) => {
        fn rescue(
            &self,
            which: $crate::Rescue,
        ) -> ::std::result::Result<$crate::Rescued, $crate::QueueError> {
            self.$f.rescue(which)
        }
    };
    (@one $f:ident counts) => {
        fn counts(&self) -> ::std::result::Result<$crate::Counts, $crate::QueueError> {
            self.$f.counts()
        }
    };
    (@one $f:ident next_due) => {
        fn next_due(
            &self,
        ) -> ::std::result::Result<::std::option::Option<$crate::__Timestamp>, $crate::QueueError>
        {
            self.$f.next_due()
        }
    };
    (@one $f:ident now) => {
        fn now(&self) -> $crate::__Timestamp {
            self.$f.now()
        }
    };
    (@one $f:ident set_waker) => {
        fn set_waker(&self, waker: $crate::Waker) {
            self.$f.set_waker(waker)
        }
    };
    (@one $f:ident register_worker) => {
        fn register_worker(
            &self,
            worker: &$crate::WorkerInfo,
        ) -> ::std::result::Result<
            ::std::result::Result<(), $crate::NameTaken>,
            $crate::QueueError,
        > {
            self.$f.register_worker(worker)
        }
    };
    (@one $f:ident publish_tasks) => {
        fn publish_tasks(
            &self,
            worker: &str,
            tasks: &[$crate::PublishedTask],
        ) -> ::std::result::Result<(), $crate::QueueError> {
            self.$f.publish_tasks(worker, tasks)
        }
    };
    (@one $f:ident unregister_worker) => {
        fn unregister_worker(&self, name: &str) -> ::std::result::Result<(), $crate::QueueError> {
            self.$f.unregister_worker(name)
        }
    };
}
