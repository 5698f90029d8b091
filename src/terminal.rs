//! Talking to the operator: yes/no questions and values read from standard input, and
//! secrets read from the terminal without echo.

use std::io::{BufRead, IsTerminal, Write};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::exit::{CliError, DATA_ERROR};

/// Standard input as a line source shared by prompts and `--stdin` values, so that
/// `printf 'y\nvalue\n' | coffer keystore add --stdin name` answers the overwrite question
/// and then supplies the value, in that order (as with `elasticsearch-keystore`).
pub struct Terminal {
    stdin: std::io::StdinLock<'static>,
    interactive: bool,
    silent: bool,
}

impl Terminal {
    pub fn new(silent: bool) -> Self {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        Self {
            stdin: stdin.lock(),
            interactive,
            silent,
        }
    }

    /// Whether `--silent` was given.
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// Informational output; `--silent` suppresses it.
    pub fn println(&self, message: &str) {
        if !self.silent {
            println!("{message}");
        }
    }

    /// One line of standard input without its line ending, or `None` at end of input. The
    /// buffer is zeroized because the line may be a secret.
    pub fn read_line(&mut self) -> Result<Option<Zeroizing<String>>, CliError> {
        let mut line = Zeroizing::new(String::new());
        let n = self.stdin.read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        while line.ends_with('\n') || line.ends_with('\r') {
            line.pop();
        }
        Ok(Some(line))
    }

    /// Asks a yes/no question on standard error and reads the answer from standard input;
    /// anything but `y`/`yes`, including end of input, is no.
    pub fn confirm(&mut self, question: &str) -> Result<bool, CliError> {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let answer = self.read_line()?;
        if !self.interactive {
            eprintln!();
        }
        Ok(answer.is_some_and(|a| matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes")))
    }

    /// Reads a secret from the terminal without echo. Refuses at once when there is no
    /// terminal, so a script never hangs on a prompt nobody sees.
    pub fn read_secret(&self, prompt: &str, no_tty_hint: &str) -> Result<SecretString, CliError> {
        if !self.interactive {
            return Err(CliError::new(DATA_ERROR, no_tty_hint));
        }
        let value = rpassword::prompt_password(prompt)?;
        Ok(SecretString::from(value))
    }
}
