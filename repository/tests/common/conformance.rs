//! The contract every `BlobStore` adapter must meet, as one suite run against each backend
//! (memory, fs, the fake S3, Garage, Ceph radosgw). `caps` says whether the backend honours
//! conditional writes; where it does not, the suite asserts that too, so a server that starts
//! honouring them (or stops) is noticed.

use std::sync::Arc;

use bytes::Bytes;
use coffer_repository::{BlobStore, Capabilities, PutMode, RepositoryError};

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

/// Runs every check below `prefix` (which must end with `/`), leaving nothing behind.
pub async fn run(store: Arc<dyn BlobStore>, caps: Capabilities, prefix: &str) {
    let k = |name: &str| format!("{prefix}{name}");

    // put / get / head
    let r1 = store
        .put(&k("a"), b("one"), PutMode::Overwrite)
        .await
        .unwrap();
    let (data, meta) = store.get(&k("a")).await.unwrap();
    assert_eq!(data, b("one"));
    assert_eq!(meta.size, 3);
    assert_eq!(meta.etag, r1.etag, "get reports the etag put returned");
    assert_eq!(store.head(&k("a")).await.unwrap().etag, r1.etag);
    assert!(matches!(
        store.get(&k("missing")).await,
        Err(RepositoryError::NotFound { .. })
    ));
    assert!(matches!(
        store.head(&k("missing")).await,
        Err(RepositoryError::NotFound { .. })
    ));

    // overwrite changes the etag
    let r2 = store
        .put(&k("a"), b("two!"), PutMode::Overwrite)
        .await
        .unwrap();
    assert_ne!(r1.etag, r2.etag);
    assert_eq!(store.get(&k("a")).await.unwrap().0, b("two!"));

    // create-only
    store
        .put(&k("c"), b("first"), PutMode::Create)
        .await
        .unwrap();
    let second = store.put(&k("c"), b("second"), PutMode::Create).await;
    if caps.conditional_create {
        assert!(
            matches!(second, Err(RepositoryError::AlreadyExists { .. })),
            "{second:?}"
        );
        assert_eq!(store.get(&k("c")).await.unwrap().0, b("first"));
    } else {
        second.expect("a store that ignores If-None-Match overwrites");
        assert_eq!(store.get(&k("c")).await.unwrap().0, b("second"));
    }

    // compare-and-swap
    let cur = store.head(&k("a")).await.unwrap().etag;
    let swapped = store
        .put(&k("a"), b("three"), PutMode::Update(cur.clone()))
        .await
        .unwrap();
    let stale = store.put(&k("a"), b("four"), PutMode::Update(cur)).await;
    if caps.conditional_update {
        assert!(
            matches!(stale, Err(RepositoryError::PreconditionFailed { .. })),
            "{stale:?}"
        );
        assert_eq!(store.get(&k("a")).await.unwrap().0, b("three"));
        store
            .put(&k("a"), b("five"), PutMode::Update(swapped.etag))
            .await
            .unwrap();
    } else {
        stale.expect("a store that ignores If-Match overwrites");
    }

    // ranges
    let big: Vec<u8> = (0..(3 << 20) + 17).map(|i: u32| (i % 251) as u8).collect();
    store
        .put(&k("big/blob"), Bytes::from(big.clone()), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(
        store.get(&k("big/blob")).await.unwrap().0.as_ref(),
        big.as_slice()
    );
    assert_eq!(
        store
            .get_range(&k("big/blob"), 10..20)
            .await
            .unwrap()
            .as_ref(),
        &big[10..20]
    );
    let n = big.len() as u64;
    assert_eq!(
        store
            .get_range(&k("big/blob"), n - 5..n)
            .await
            .unwrap()
            .as_ref(),
        &big[big.len() - 5..]
    );
    assert!(
        store.get_range(&k("big/blob"), n - 5..n + 5).await.is_err(),
        "a range past the end is an error"
    );

    // listing: recursive, sorted, by name prefix, with awkward keys
    for name in [
        "index-0",
        "index-1",
        "index.latest",
        "indices/x/0/__p",
        "indices/x/1/snap-a.dat",
        "sp ace/ü ñ+%.dat",
    ] {
        store
            .put(&k(name), b(name), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let keys =
        |v: Vec<coffer_repository::ObjectMeta>| v.into_iter().map(|m| m.key).collect::<Vec<_>>();
    assert_eq!(
        keys(store.list(&k("index-")).await.unwrap()),
        vec![k("index-0"), k("index-1")]
    );
    assert_eq!(
        keys(store.list(&k("indices/")).await.unwrap()),
        vec![k("indices/x/0/__p"), k("indices/x/1/snap-a.dat")]
    );
    assert_eq!(
        store.get(&k("sp ace/ü ñ+%.dat")).await.unwrap().0,
        b("sp ace/ü ñ+%.dat")
    );
    let all = store.list(prefix).await.unwrap();
    let mut sorted = keys(all.clone());
    sorted.sort();
    assert_eq!(keys(all.clone()), sorted, "list is sorted");
    assert!(all.iter().all(|m| m.key.starts_with(prefix)));
    assert!(keys(store.list(&k("nothing-here")).await.unwrap()).is_empty());

    // concurrent create-only puts of one key: exactly one winner where conditional
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        let key = k("race");
        tasks.push(tokio::spawn(async move {
            store
                .put(&key, Bytes::from(format!("w{i}")), PutMode::Create)
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(RepositoryError::AlreadyExists { .. }) => {}
            Err(e) => panic!("unexpected error in race: {e}"),
        }
    }
    if caps.conditional_create {
        assert_eq!(wins, 1, "exactly one create-only put wins");
    } else {
        assert!(wins >= 1);
    }

    // deletes are idempotent and complete
    let everything = keys(store.list(prefix).await.unwrap());
    let mut with_missing = everything.clone();
    with_missing.push(k("never-existed"));
    store.delete_batch(&with_missing).await.unwrap();
    assert!(
        store.list(prefix).await.unwrap().is_empty(),
        "everything below the prefix is gone"
    );
    store.delete_batch(&everything).await.unwrap();
    store.remove_incomplete_writes(prefix).await.unwrap();

    // keys that could escape are refused before reaching storage
    for bad in ["../x", "/abs", "a/../../b"] {
        assert!(
            store.put(bad, b("x"), PutMode::Overwrite).await.is_err(),
            "{bad}"
        );
    }
}
