//! A node restarted after a crash takes back its own dead process's lease at once, instead of
//! waiting out its expiry; anyone else still waits.

use std::sync::Arc;

use coffer_repository::clock::{Clock, SystemClock};
use coffer_repository::lease::{Lease, LeaseConfig, LeaseOwner};
use coffer_repository::store::MemoryBlobStore;
use coffer_repository::{BlobStore, Capabilities, RepositoryError};

fn owner(node_id: &str, pid: u32) -> LeaseOwner {
    LeaseOwner {
        node_name: "node".into(),
        node_id: node_id.into(),
        pid,
        repository_uuid: "r".into(),
        operation: "snapshot [s]".into(),
    }
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

async fn case(caps: Capabilities, ignore_conditions: bool) {
    let memory = MemoryBlobStore::new();
    memory.set_ignore_conditions(ignore_conditions);
    let store: Arc<dyn BlobStore> = Arc::new(memory);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cfg = LeaseConfig::default();

    // A process of node n1 took the lease and died without releasing it.
    let crashed = Lease::acquire(
        Arc::clone(&store),
        caps,
        Arc::clone(&clock),
        owner("n1", dead_pid()),
        cfg,
    )
    .await
    .unwrap();
    drop(crashed);

    // Another node must wait for the lease to expire.
    let err = Lease::acquire(
        Arc::clone(&store),
        caps,
        Arc::clone(&clock),
        owner("n2", std::process::id()),
        cfg,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RepositoryError::Locked { .. }), "{err}");

    // The same node's new process takes it over at once.
    let restarted = Lease::acquire(
        Arc::clone(&store),
        caps,
        Arc::clone(&clock),
        owner("n1", std::process::id()),
        cfg,
    )
    .await
    .unwrap();
    restarted.check().unwrap();
    drop(restarted);

    // But not while the recorded process still runs (pid 1 always does).
    let store2: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let live = Lease::acquire(
        Arc::clone(&store2),
        caps,
        Arc::clone(&clock),
        owner("n1", 1),
        cfg,
    )
    .await
    .unwrap();
    let err = Lease::acquire(
        Arc::clone(&store2),
        caps,
        Arc::clone(&clock),
        owner("n1", std::process::id()),
        cfg,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RepositoryError::Locked { .. }), "{err}");
    drop(live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional() {
    case(
        Capabilities {
            conditional_create: true,
            conditional_update: true,
        },
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback() {
    case(
        Capabilities {
            conditional_create: false,
            conditional_update: false,
        },
        true,
    )
    .await;
}
