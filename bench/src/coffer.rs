//! coffer driven as a user drives it: a config directory with `coffer.yml`, a keystore made
//! with `coffer keystore add --stdin`, `coffer serve`, and the REST API.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::commands::Recorder;

/// The keystore password of the benchmark's config directory (a throwaway keystore).
const KEYSTORE_PASSWORD: &str = "coffer-bench-keystore";
/// The S3 client name in `coffer.yml` and the keystore.
pub const CLIENT: &str = "bench";

/// How one `coffer serve` is set up.
pub struct ServeSetup<'a> {
    /// The release binary.
    pub binary: &'a Path,
    /// An empty directory: config, keystore, `path.data` and the log go there.
    pub dir: &'a Path,
    /// The S3 endpoint coffer talks to (the counting proxy).
    pub endpoint: &'a str,
    /// The signing region.
    pub region: &'a str,
    /// The access key id.
    pub access_key: &'a str,
    /// The secret key.
    pub secret_key: &'a str,
    /// Attached indices: name and directory.
    pub indices: &'a [(&'a str, &'a Path)],
}

/// A running `coffer serve`. Dropping it stops the process.
pub struct CofferServe {
    child: Child,
    base: String,
    http: reqwest::blocking::Client,
    data: PathBuf,
    log: PathBuf,
}

impl CofferServe {
    /// Writes the config and the keystore, then starts `coffer serve` and waits for its
    /// listening address.
    pub fn start(setup: &ServeSetup<'_>, rec: &mut Recorder) -> Result<CofferServe> {
        let config = setup.dir.join("config");
        let data = setup.dir.join("data");
        std::fs::create_dir_all(&config)?;
        let mut yml = format!(
            "http.port: 0\n\
             path.data: {data}\n\
             s3.client.{CLIENT}.endpoint: {endpoint}\n\
             s3.client.{CLIENT}.region: {region}\n\
             s3.client.{CLIENT}.path_style_access: true\n",
            data = data.display(),
            endpoint = setup.endpoint,
            region = setup.region,
        );
        for (name, path) in setup.indices {
            let _ = writeln!(yml, "indices.{name}.path: {}", path.display());
        }
        std::fs::write(config.join("coffer.yml"), &yml)?;
        rec.note_file("coffer.yml", &yml);

        let mut create = Command::new(setup.binary);
        create
            .arg("--config-dir")
            .arg(&config)
            .args(["keystore", "create", "-p"]);
        rec.command(&create, "COFFER_KEYSTORE_PASSWORD=… ");
        run_with_stdin(
            create.env("COFFER_KEYSTORE_PASSWORD", KEYSTORE_PASSWORD),
            "",
        )?;
        let mut add = Command::new(setup.binary);
        add.arg("--config-dir").arg(&config).args([
            "keystore",
            "add",
            "--stdin",
            &format!("s3.client.{CLIENT}.access_key"),
            &format!("s3.client.{CLIENT}.secret_key"),
        ]);
        rec.command(
            &add,
            "printf '%s\\n%s\\n' \"$ACCESS_KEY\" \"$SECRET_KEY\" | COFFER_KEYSTORE_PASSWORD=… ",
        );
        run_with_stdin(
            add.env("COFFER_KEYSTORE_PASSWORD", KEYSTORE_PASSWORD),
            &format!("{}\n{}\n", setup.access_key, setup.secret_key),
        )?;

        let log = setup.dir.join("coffer.log");
        let log_file = std::fs::File::create(&log)?;
        let mut serve = Command::new(setup.binary);
        serve.arg("--config-dir").arg(&config).arg("serve");
        rec.command(&serve, "COFFER_KEYSTORE_PASSWORD=… ");
        let child = serve
            .env("COFFER_KEYSTORE_PASSWORD", KEYSTORE_PASSWORD)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", setup.binary.display()))?;
        let mut serve = CofferServe {
            child,
            base: String::new(),
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(None)
                .build()?,
            data,
            log,
        };
        serve.base = serve.wait_for_address()?;
        Ok(serve)
    }

    fn wait_for_address(&mut self) -> Result<String> {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(addr) = listening_address(&text) {
                return Ok(format!("http://{addr}"));
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("coffer serve exited ({status}) during start-up:\n{text}");
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("coffer serve did not announce its address in 60 s:\n{text}");
            }
            crate::pause(Duration::from_millis(50));
        }
    }

    /// The process id (whose peak RSS and CPU are measured).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<path.data>/indices/<name>`: where a restored (managed) index lives.
    pub fn managed_index_dir(&self, name: &str) -> PathBuf {
        self.data.join("indices").join(name)
    }

    /// One API call; a status ≥ 300 is an error carrying the answer.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text()?;
        if !status.is_success() {
            bail!(
                "{method} {path}: HTTP {status}: {text}\n--- coffer log tail ---\n{}",
                self.log_tail()
            );
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: answer {text}"))
    }

    /// `PUT /_snapshot/{repo}` with an s3 repository on `bucket`.
    pub fn register_s3(&self, repo: &str, bucket: &str, rec: &mut Recorder) -> Result<()> {
        let body = json!({"type": "s3", "settings": {"bucket": bucket, "client": CLIENT}});
        rec.http("PUT", &format!("/_snapshot/{repo}"), Some(&body));
        self.api("PUT", &format!("/_snapshot/{repo}"), Some(&body))?;
        Ok(())
    }

    /// A snapshot of `indices`, waiting for completion; fails unless it ends `SUCCESS`.
    pub fn snapshot(
        &self,
        repo: &str,
        snap: &str,
        indices: &str,
        rec: &mut Recorder,
    ) -> Result<Value> {
        let path = format!("/_snapshot/{repo}/{snap}?wait_for_completion=true");
        let body = json!({"indices": indices});
        rec.http("PUT", &path, Some(&body));
        let answer = self.api("PUT", &path, Some(&body))?;
        let state = answer["snapshot"]["state"].as_str().unwrap_or("?");
        if state != "SUCCESS" {
            bail!("snapshot {repo}:{snap} ended {state}: {answer}");
        }
        Ok(answer)
    }

    /// Restores `index` of `snap` as the managed index `target`, waiting for completion.
    pub fn restore(
        &self,
        repo: &str,
        snap: &str,
        index: &str,
        target: &str,
        rec: &mut Recorder,
    ) -> Result<()> {
        let path = format!("/_snapshot/{repo}/{snap}/_restore?wait_for_completion=true");
        let body = json!({
            "indices": index,
            "rename_pattern": format!("^{index}$"),
            "rename_replacement": target,
        });
        rec.http("POST", &path, Some(&body));
        let answer = self.api("POST", &path, Some(&body))?;
        let failed = answer["snapshot"]["shards"]["failed"].as_u64().unwrap_or(0);
        if failed != 0 {
            bail!("restore of {repo}:{snap} had failed shards: {answer}");
        }
        Ok(())
    }

    /// Deletes a managed index (and its directory).
    pub fn delete_index(&self, name: &str) -> Result<()> {
        self.api("DELETE", &format!("/{name}"), None)?;
        Ok(())
    }

    /// The last 30 lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM, then SIGKILL after 20 s.
    pub fn stop(mut self) -> Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            crate::pause(Duration::from_millis(50));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for CofferServe {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// `coffer listening on http://127.0.0.1:PORT` in the log.
fn listening_address(log: &str) -> Option<String> {
    let at = log.find("coffer listening on http://")? + "coffer listening on http://".len();
    let addr: String = log[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.contains(':').then_some(addr)
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> Result<()> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", crate::commands::describe(cmd)))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}{}",
            crate::commands::describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_is_found() {
        let log = "2026-11-24T09:00:00Z  INFO coffer::serve: coffer listening on http://127.0.0.1:40123 local=127.0.0.1:40123\n";
        assert_eq!(listening_address(log).as_deref(), Some("127.0.0.1:40123"));
        assert_eq!(listening_address("starting coffer"), None);
    }
}
