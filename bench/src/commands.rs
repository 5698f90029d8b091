//! The exact commands and requests of a run, recorded for the report with the run's
//! temporary paths, ports and keys replaced by names (`$DATASET`, `$S3`, …).

use std::process::Command;

use serde_json::Value;

/// Records commands once each, in the order first run.
#[derive(Debug, Default)]
pub struct Recorder {
    substitutions: Vec<(String, String)>,
    lines: Vec<String>,
    files: Vec<(String, String)>,
}

impl Recorder {
    /// Replaces `text` by `name` in everything recorded from now on (longest texts first).
    pub fn substitute(&mut self, text: impl Into<String>, name: &str) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        self.substitutions.retain(|(t, _)| *t != text);
        self.substitutions.push((text, name.to_owned()));
        self.substitutions
            .sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    }

    fn clean(&self, line: &str) -> String {
        let mut line = line.to_owned();
        for (text, name) in &self.substitutions {
            line = line.replace(text.as_str(), name);
        }
        line
    }

    fn push(&mut self, line: &str) {
        let line = self.clean(line);
        if !self.lines.contains(&line) {
            self.lines.push(line);
        }
    }

    /// A process as run, with a prefix (environment assignments, a pipe).
    pub fn command(&mut self, cmd: &Command, prefix: &str) {
        self.push(&format!("{prefix}{}", describe(cmd)));
    }

    /// A shell line as written.
    pub fn line(&mut self, line: &str) {
        self.push(line);
    }

    /// An HTTP request to coffer's API.
    pub fn http(&mut self, method: &str, path: &str, body: Option<&Value>) {
        let line = match body {
            Some(body) => format!(
                "curl -X{method} \"$COFFER{path}\" -H 'Content-Type: application/json' -d '{body}'"
            ),
            None => format!("curl -X{method} \"$COFFER{path}\""),
        };
        self.push(&line);
    }

    /// A configuration file's text, once.
    pub fn note_file(&mut self, name: &str, text: &str) {
        let text = self.clean(text);
        if !self.files.iter().any(|(n, _)| n == name) {
            self.files.push((name.to_owned(), text));
        }
    }

    /// The recorded lines and files.
    pub fn into_parts(self) -> (Vec<String>, Vec<(String, String)>) {
        (self.lines, self.files)
    }
}

/// A shell-like rendering of a command's program and arguments (never its environment).
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%$".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recorded_once_with_names() {
        let mut rec = Recorder::default();
        rec.substitute("/tmp/x/data", "$DATASET");
        rec.substitute("/tmp/x", "$WORK");
        let mut cmd = Command::new("restic");
        cmd.args(["backup", "/tmp/x/data", "a b"])
            .env("SECRET", "s");
        rec.command(&cmd, "");
        rec.command(&cmd, "");
        rec.line("ls /tmp/x");
        let (lines, _) = rec.into_parts();
        assert_eq!(lines, vec!["restic backup $DATASET 'a b'", "ls $WORK"]);
    }
}
