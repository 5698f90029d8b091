//! The library API that `coffer serve` uses: open with a password, read secure settings by
//! name and prefix, reload after the file changed on disk.

use coffer_keystore::{KdfParams, Keystore, KeystoreError, SecureSetting};
use secrecy::SecretString;

const FAST: KdfParams = KdfParams {
    m_cost_kib: 256,
    t_cost: 1,
    p_cost: 1,
};

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[test]
fn open_get_prefix_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.keystore");
    let mut ks = Keystore::new().with_kdf_params(FAST);
    ks.set("s3.client.default.access_key", SecureSetting::string("AK1"))
        .unwrap();
    ks.set("s3.client.default.secret_key", SecureSetting::string("SK1"))
        .unwrap();
    ks.set("s3.client.other.access_key", SecureSetting::string("AK2"))
        .unwrap();
    ks.set("unrelated", SecureSetting::file(vec![1, 2, 3]))
        .unwrap();
    ks.save(&path, &pw("p")).unwrap();

    let opened = Keystore::load(&path, &pw("p")).unwrap();
    assert!(Keystore::is_password_protected(&path).unwrap());
    assert_eq!(
        opened.names().collect::<Vec<_>>(),
        [
            "s3.client.default.access_key",
            "s3.client.default.secret_key",
            "s3.client.other.access_key",
            "unrelated"
        ]
    );
    let default = opened.with_prefix("s3.client.default.");
    assert_eq!(default.len(), 2);
    assert_eq!(
        default["s3.client.default.secret_key"].expose_str(),
        Some("SK1")
    );

    // Another process changes the file; a reload sees it, the old copy is unaffected.
    let mut changed = Keystore::load(&path, &pw("p"))
        .unwrap()
        .with_kdf_params(FAST);
    changed
        .set("s3.client.default.secret_key", SecureSetting::string("SK2"))
        .unwrap();
    changed.save(&path, &pw("p")).unwrap();
    let reloaded = Keystore::load(&path, &pw("p")).unwrap();
    assert_eq!(
        reloaded
            .get("s3.client.default.secret_key")
            .unwrap()
            .expose_str(),
        Some("SK2")
    );
    assert_eq!(
        opened
            .get("s3.client.default.secret_key")
            .unwrap()
            .expose_str(),
        Some("SK1")
    );

    assert!(matches!(
        Keystore::load(&path, &pw("nope")),
        Err(KeystoreError::WrongPassword)
    ));
    let missing = dir.path().join("missing.keystore");
    let err = Keystore::load(&missing, &pw("")).unwrap_err();
    assert!(matches!(err, KeystoreError::NotFound { .. }));
    assert!(
        err.to_string()
            .contains("Use 'create' command to create one.")
    );
}

#[test]
fn debug_of_a_loaded_keystore_shows_names_only() {
    let mut ks = Keystore::new().with_kdf_params(FAST);
    ks.set(
        "s3.client.default.secret_key",
        SecureSetting::string("TOPSECRET-xyz"),
    )
    .unwrap();
    let shown = format!("{ks:?} {:?}", ks.get("s3.client.default.secret_key"));
    assert!(shown.contains("s3.client.default.secret_key"));
    assert!(!shown.contains("TOPSECRET"), "{shown}");
}

#[test]
fn removing_a_missing_setting_is_an_error() {
    let mut ks = Keystore::new();
    assert!(matches!(
        ks.remove("x"),
        Err(KeystoreError::SettingMissing { .. })
    ));
    assert!(matches!(
        ks.set("bad name", SecureSetting::string("v")),
        Err(KeystoreError::InvalidSettingName { .. })
    ));
}
