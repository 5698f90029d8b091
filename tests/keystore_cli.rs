//! `coffer keystore` as an operator runs it: the real binary, real files, real exit codes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn keystore(&self) -> PathBuf {
        self.config().join("coffer.keystore")
    }

    /// `coffer --config-dir <tmp>/config keystore ARGS`, with no password in the environment
    /// and a bounded run time so a prompt that waits for a terminal fails the test.
    fn ks(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("coffer").unwrap();
        cmd.arg("--config-dir")
            .arg(self.config())
            .arg("keystore")
            .args(args);
        cmd.env_remove("COFFER_KEYSTORE_PASSWORD")
            .env_remove("COFFER_KEYSTORE_NEW_PASSWORD")
            .env_remove("COFFER_PATH_CONF")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .timeout(Duration::from_secs(60));
        cmd
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.keystore()).unwrap()
    }

    fn show(&self, name: &str) -> String {
        let out = self
            .ks(&["show", name])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn create_makes_an_empty_unprotected_keystore_with_mode_0600() {
    let env = Env::new();
    env.ks(&["create"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Created coffer keystore"));
    let mode = std::fs::metadata(env.keystore())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    env.ks(&["list"]).assert().success().stdout("");
    env.ks(&["has-passwd"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("not password-protected"));
}

#[test]
fn add_from_stdin_list_show_and_no_plaintext_on_disk() {
    let env = Env::new();
    env.ks(&["create"]).assert().success();
    env.ks(&[
        "add",
        "--stdin",
        "s3.client.default.secret_key",
        "s3.client.default.access_key",
    ])
    .write_stdin("Wj1+Very/Secret-Value\nGKACCESSKEYID12345\n")
    .assert()
    .success();
    env.ks(&["list"])
        .assert()
        .success()
        .stdout("s3.client.default.access_key\ns3.client.default.secret_key\n");
    assert_eq!(
        env.show("s3.client.default.secret_key"),
        "Wj1+Very/Secret-Value\n"
    );
    assert_eq!(
        env.show("s3.client.default.access_key"),
        "GKACCESSKEYID12345\n"
    );
    let bytes = env.bytes();
    assert!(!contains(&bytes, b"Wj1+Very/Secret-Value"));
    assert!(!contains(&bytes, b"GKACCESSKEYID12345"));
    assert!(
        !contains(&bytes, b"s3.client"),
        "setting names are encrypted too"
    );
    let mode = std::fs::metadata(env.keystore())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn short_stdin_flag_and_crlf_input() {
    let env = Env::new();
    env.ks(&["add", "-f", "-x", "a"])
        .write_stdin("value-a\r\n")
        .assert()
        .success();
    assert_eq!(env.show("a"), "value-a\n");
}

#[test]
fn overwrite_prompt_answered_no_keeps_everything() {
    let env = Env::new();
    env.ks(&["add", "-f", "--stdin", "k"])
        .write_stdin("old\n")
        .assert()
        .success();
    let before = env.bytes();
    env.ks(&["add", "--stdin", "k"])
        .write_stdin("n\nnew\n")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "Setting k already exists. Overwrite? [y/N]",
        ))
        .stdout(predicate::str::contains(
            "Exiting without modifying keystore.",
        ));
    assert_eq!(
        env.bytes(),
        before,
        "a declined overwrite must not rewrite the file"
    );
    assert_eq!(env.show("k"), "old\n");
}

#[test]
fn overwrite_prompt_answered_yes_replaces() {
    let env = Env::new();
    env.ks(&["add", "-f", "--stdin", "k"])
        .write_stdin("old\n")
        .assert()
        .success();
    env.ks(&["add", "--stdin", "k"])
        .write_stdin("y\nnew\n")
        .assert()
        .success();
    assert_eq!(env.show("k"), "new\n");
    env.ks(&["add", "-f", "--stdin", "k"])
        .write_stdin("forced\n")
        .assert()
        .success();
    assert_eq!(env.show("k"), "forced\n");
}

#[test]
fn add_offers_to_create_a_missing_keystore() {
    let env = Env::new();
    env.ks(&["add", "--stdin", "k"])
        .write_stdin("n\n")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Exiting without creating keystore.",
        ));
    assert!(!env.keystore().exists());
    env.ks(&["add", "--stdin", "k"])
        .write_stdin("y\nv\n")
        .assert()
        .success();
    assert_eq!(env.show("k"), "v\n");
}

#[test]
fn create_over_an_existing_keystore_asks_first() {
    let env = Env::new();
    env.ks(&["add", "-f", "--stdin", "k"])
        .write_stdin("v\n")
        .assert()
        .success();
    let before = env.bytes();
    env.ks(&["create"]).write_stdin("n\n").assert().success();
    assert_eq!(env.bytes(), before);
    env.ks(&["create"]).write_stdin("y\n").assert().success();
    env.ks(&["list"]).assert().success().stdout("");
}

#[test]
fn usage_errors_exit_64() {
    let env = Env::new();
    env.ks(&["create"]).assert().success();
    let before = env.bytes();
    env.ks(&["add", "--stdin", "bad name"])
        .write_stdin("v\n")
        .assert()
        .code(64)
        .stderr(predicate::str::contains(
            "does not match the allowed setting name pattern",
        ));
    env.ks(&["add", "--stdin", "ok", "bad/name"])
        .write_stdin("v\nw\n")
        .assert()
        .code(64);
    env.ks(&["add"]).assert().code(64);
    env.ks(&["remove"]).assert().code(64);
    env.ks(&["add-file", "a", "/etc/hostname", "b"])
        .assert()
        .code(64);
    env.ks(&["frobnicate"]).assert().code(64);
    env.ks(&["list", "--no-such-flag"]).assert().code(64);
    assert_eq!(env.bytes(), before, "failed commands change nothing");
}

#[test]
fn missing_keystore_exits_65_with_the_elasticsearch_message() {
    let env = Env::new();
    let expected = format!(
        "ERROR: coffer keystore not found at [{}]. Use 'create' command to create one.",
        env.keystore().display()
    );
    for args in [
        &["list"][..],
        &["show", "x"],
        &["remove", "x"],
        &["passwd"],
        &["upgrade"],
        &["has-passwd"],
    ] {
        env.ks(args)
            .assert()
            .code(65)
            .stderr(predicate::str::contains(expected.clone()));
    }
}

#[test]
fn missing_setting_exits_78_and_changes_nothing() {
    let env = Env::new();
    env.ks(&["add", "-f", "--stdin", "a"])
        .write_stdin("v\n")
        .assert()
        .success();
    let before = env.bytes();
    env.ks(&["remove", "a", "nope"])
        .assert()
        .code(78)
        .stderr(predicate::str::contains(
            "Setting [nope] does not exist in the keystore.",
        ));
    env.ks(&["show", "nope"]).assert().code(78);
    assert_eq!(env.bytes(), before);
    env.ks(&["remove", "a"]).assert().success();
    env.ks(&["list"]).assert().success().stdout("");
}

#[test]
fn stdin_running_out_is_a_data_error() {
    let env = Env::new();
    env.ks(&["add", "-f", "--stdin", "a", "b"])
        .write_stdin("only-one\n")
        .assert()
        .code(65)
        .stderr(predicate::str::contains("Missing value for setting [b]"));
    assert!(
        !env.keystore().exists(),
        "nothing is written when a value is missing"
    );
}

#[test]
fn value_without_stdin_and_without_terminal_fails_fast() {
    let env = Env::new();
    env.ks(&["add", "-f", "k"])
        .assert()
        .code(65)
        .stderr(predicate::str::contains("no terminal").and(predicate::str::contains("--stdin")));
}

#[test]
fn add_file_and_binary_show() {
    let env = Env::new();
    let blob: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let file = env.dir.path().join("blob.bin");
    std::fs::write(&file, &blob).unwrap();
    let pem = env.dir.path().join("ca.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    env.ks(&[
        "add-file",
        "-f",
        "bin",
        file.to_str().unwrap(),
        "s3.client.default.ca",
        pem.to_str().unwrap(),
    ])
    .assert()
    .success();
    // stdout is a pipe here, so raw bytes are allowed.
    let out = env
        .ks(&["show", "bin"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(out, blob);
    let target = env.dir.path().join("out.bin");
    env.ks(&["show", "-o", target.to_str().unwrap(), "bin"])
        .assert()
        .success();
    assert_eq!(std::fs::read(&target).unwrap(), blob);
    assert!(!contains(&env.bytes(), b"BEGIN CERTIFICATE"));
    env.ks(&["add-file", "-f", "x", "/definitely/not/here"])
        .assert()
        .code(74)
        .stderr(predicate::str::contains(
            "File [/definitely/not/here] does not exist",
        ));
}

#[test]
fn password_protected_keystore_from_environment() {
    let env = Env::new();
    env.ks(&["create", "-p"])
        .env("COFFER_KEYSTORE_PASSWORD", "correct horse")
        .assert()
        .success();
    env.ks(&["has-passwd"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Keystore is password-protected"));
    env.ks(&["add", "--stdin", "k"])
        .env("COFFER_KEYSTORE_PASSWORD", "correct horse")
        .write_stdin("secret-value\n")
        .assert()
        .success();
    let before = env.bytes();

    env.ks(&["list"])
        .env("COFFER_KEYSTORE_PASSWORD", "battery staple")
        .assert()
        .code(65)
        .stderr(predicate::str::contains(
            "Provided keystore password was incorrect",
        ))
        .stderr(predicate::str::contains("battery staple").not());
    // No password source and no terminal: a clear message at once, never a hang.
    env.ks(&["list"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(65)
        .stderr(predicate::str::contains("COFFER_KEYSTORE_PASSWORD"));
    assert_eq!(env.bytes(), before, "a failed open never rewrites the file");

    env.ks(&["show", "k"])
        .env("COFFER_KEYSTORE_PASSWORD", "correct horse")
        .assert()
        .success()
        .stdout("secret-value\n");
}

#[test]
fn passwd_changes_the_password_from_environment_variables() {
    let env = Env::new();
    env.ks(&["add", "-f", "--stdin", "k"])
        .write_stdin("v\n")
        .assert()
        .success();
    env.ks(&["passwd"])
        .env("COFFER_KEYSTORE_NEW_PASSWORD", "first")
        .assert()
        .success()
        .stdout(predicate::str::contains("password changed successfully"));
    env.ks(&["has-passwd"]).assert().code(0);
    env.ks(&["passwd"])
        .env("COFFER_KEYSTORE_PASSWORD", "first")
        .env("COFFER_KEYSTORE_NEW_PASSWORD", "second")
        .assert()
        .success();
    env.ks(&["list"])
        .env("COFFER_KEYSTORE_PASSWORD", "first")
        .assert()
        .code(65);
    env.ks(&["show", "k"])
        .env("COFFER_KEYSTORE_PASSWORD", "second")
        .assert()
        .success()
        .stdout("v\n");
    // Back to no password.
    env.ks(&["passwd"])
        .env("COFFER_KEYSTORE_PASSWORD", "second")
        .env("COFFER_KEYSTORE_NEW_PASSWORD", "")
        .assert()
        .success();
    env.ks(&["has-passwd"]).assert().code(1);
    env.ks(&["show", "k"]).assert().success().stdout("v\n");
    // A new password with no source and no terminal fails fast.
    env.ks(&["passwd"])
        .assert()
        .code(65)
        .stderr(predicate::str::contains("COFFER_KEYSTORE_NEW_PASSWORD"));
}

#[test]
fn a_flipped_byte_is_reported_as_tampering() {
    let env = Env::new();
    env.ks(&["add", "-f", "--stdin", "k"])
        .write_stdin("v\n")
        .assert()
        .success();
    let good = env.bytes();
    for i in [0, 9, 30, 70, 105, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x20;
        std::fs::write(env.keystore(), &bad).unwrap();
        env.ks(&["list"])
            .assert()
            .code(65)
            .stderr(predicate::str::contains(
                "Keystore has been corrupted or tampered with",
            ));
        env.ks(&["add", "-f", "--stdin", "other"])
            .write_stdin("x\n")
            .assert()
            .code(65);
        assert_eq!(
            env.bytes(),
            bad,
            "a corrupted keystore is left for the operator to inspect"
        );
    }
    std::fs::write(env.keystore(), &good[..good.len() - 10]).unwrap();
    env.ks(&["list"])
        .assert()
        .code(65)
        .stderr(predicate::str::contains("corrupted or tampered"));
    std::fs::write(env.keystore(), b"").unwrap();
    env.ks(&["list", "-v"])
        .assert()
        .code(65)
        .stderr(predicate::str::contains("corrupted or tampered"));
}

#[test]
fn upgrade_rewrites_and_keeps_values() {
    let env = Env::new();
    env.ks(&["add", "-f", "--stdin", "k"])
        .write_stdin("v\n")
        .assert()
        .success();
    let before = env.bytes();
    env.ks(&["upgrade"])
        .assert()
        .success()
        .stdout(predicate::str::contains("format version [1]"));
    assert_ne!(env.bytes(), before, "fresh salt and nonce on every save");
    assert_eq!(env.show("k"), "v\n");
}

#[test]
fn config_dir_from_environment_and_default() {
    let env = Env::new();
    let mut cmd = Command::cargo_bin("coffer").unwrap();
    cmd.env("COFFER_PATH_CONF", env.config())
        .args(["keystore", "create"])
        .assert()
        .success();
    assert!(env.keystore().exists());
    let work = tempfile::tempdir().unwrap();
    Command::cargo_bin("coffer")
        .unwrap()
        .env_remove("COFFER_PATH_CONF")
        .current_dir(work.path())
        .args(["keystore", "create"])
        .assert()
        .success();
    assert!(work.path().join("config/coffer.keystore").exists());
}

#[test]
fn concurrent_adds_do_not_lose_settings() {
    let env = Env::new();
    env.ks(&["create"]).assert().success();
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("coffer"))
                .arg("--config-dir")
                .arg(env.config())
                .args(["keystore", "add", "-f", "--stdin", &format!("key{i}")])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .map(|mut c| {
                    use std::io::Write;
                    c.stdin
                        .take()
                        .unwrap()
                        .write_all(format!("v{i}\n").as_bytes())
                        .unwrap();
                    c
                })
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    env.ks(&["list"])
        .assert()
        .success()
        .stdout("key0\nkey1\nkey2\nkey3\n");
}

/// The kernel keyring (keyutils) keeps the password for later commands in other processes.
#[test]
fn password_saved_in_the_os_keyring() {
    let env = Env::new();
    env.ks(&["create", "-p", "--save-to-keyring"])
        .env("COFFER_KEYSTORE_PASSWORD", "kr-pass")
        .assert()
        .success();
    // No environment variable: the keyring supplies it.
    env.ks(&["add", "--stdin", "k"])
        .write_stdin("v\n")
        .assert()
        .success();
    env.ks(&["show", "k"]).assert().success().stdout("v\n");
    // Changing the password updates the keyring entry it came from.
    env.ks(&["passwd"])
        .env("COFFER_KEYSTORE_NEW_PASSWORD", "kr-pass-2")
        .assert()
        .success();
    env.ks(&["show", "k"]).assert().success().stdout("v\n");
    env.ks(&["passwd", "--forget-keyring"])
        .env("COFFER_KEYSTORE_NEW_PASSWORD", "kr-pass-2")
        .assert()
        .success()
        .stdout(predicate::str::contains("removed from the OS keyring"));
    env.ks(&["list"]).assert().code(65);
    env.ks(&["list"])
        .env("COFFER_KEYSTORE_PASSWORD", "kr-pass-2")
        .assert()
        .success();
}

#[test]
fn help_and_version_exit_zero() {
    let env = Env::new();
    env.ks(&["--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("add-file"));
    Command::cargo_bin("coffer")
        .unwrap()
        .arg("--version")
        .assert()
        .success();
    let _ = Path::new("");
}

/// On a real terminal (a pty made by util-linux `script`), passwords and values are asked
/// without echo, and a password is asked twice on `create -p`.
#[test]
fn interactive_prompts_on_a_terminal_do_not_echo() {
    let env = Env::new();
    let bin = assert_cmd::cargo::cargo_bin("coffer");
    let run = |coffer_args: &str, typed: &[&str]| -> (bool, String) {
        // Each line is typed after a pause so that it arrives once the prompt has turned
        // echo off, as a person's typing would.
        let feed = typed.iter().fold(String::new(), |mut acc, t| {
            use std::fmt::Write as _;
            let _ = write!(acc, "sleep 1; printf '%s\\n' '{t}'; ");
            acc
        });
        let cmd = format!(
            "({feed} sleep 1) | script -qec \"'{}' --config-dir '{}' keystore {coffer_args}\" /dev/null",
            bin.display(),
            env.config().display()
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &cmd])
            .env_remove("COFFER_KEYSTORE_PASSWORD")
            .env_remove("COFFER_KEYSTORE_NEW_PASSWORD")
            .output()
            .expect("util-linux `script` is needed for terminal tests (Debian package bsdutils)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, screen) = run("create -p", &["tty-pass-1", "tty-pass-1"]);
    assert!(ok, "{screen}");
    assert!(
        screen.contains("Enter new password for the coffer keystore"),
        "{screen}"
    );
    assert!(screen.contains("Enter same password again"), "{screen}");
    assert!(!screen.contains("tty-pass-1"), "password echoed: {screen}");
    env.ks(&["has-passwd"]).assert().code(0);

    let (ok, screen) = run(
        "add s3.client.default.secret_key",
        &["tty-pass-1", "tty-secret-value"],
    );
    assert!(ok, "{screen}");
    assert!(
        screen.contains("Enter password for the coffer keystore"),
        "{screen}"
    );
    assert!(
        screen.contains("Enter value for s3.client.default.secret_key"),
        "{screen}"
    );
    assert!(
        !screen.contains("tty-secret-value"),
        "value echoed: {screen}"
    );
    env.ks(&["show", "s3.client.default.secret_key"])
        .env("COFFER_KEYSTORE_PASSWORD", "tty-pass-1")
        .assert()
        .success()
        .stdout("tty-secret-value\n");

    let before = env.bytes();
    let (ok, screen) = run("passwd", &["tty-pass-1", "new-1", "new-2"]);
    assert!(!ok, "{screen}");
    assert!(screen.contains("Passwords are not equal"), "{screen}");
    assert_eq!(env.bytes(), before);

    // A binary value is not dumped onto a terminal.
    let file = env.dir.path().join("bin");
    std::fs::write(&file, [0u8, 159, 146, 150, 255]).unwrap();
    env.ks(&["add-file", "-f", "b", file.to_str().unwrap()])
        .env("COFFER_KEYSTORE_PASSWORD", "tty-pass-1")
        .assert()
        .success();
    let (ok, screen) = run("show b", &["tty-pass-1"]);
    assert!(!ok, "{screen}");
    assert!(screen.contains("is binary"), "{screen}");
}
