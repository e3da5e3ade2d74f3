//! Who may connect to the analysts' server: SCRAM-SHA-256 password authentication (the
//! Postgres default, understood by psql, libpq, JDBC and Npgsql), with the users either one
//! `analyst` whose password is in `EARLYSTART_SERVER_PASSWORD`, or a file of salted hashes.
//!
//! The password file holds one user per line, `name:scram-sha-256$4096$<salt hex>$<salted
//! password hex>`, made by `earlystart hash-password NAME`; the clear password never sits
//! on disk. `#` starts a comment.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use async_trait::async_trait;
use pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, gen_salted_password};
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::PgWireResult;
use rand::RngCore as _;

/// Environment variable holding the password of the default user.
pub const PASSWORD_ENV: &str = "EARLYSTART_SERVER_PASSWORD";

/// The default user when the password comes from the environment.
pub const DEFAULT_USER: &str = "analyst";

const SCHEME: &str = "scram-sha-256";

/// A user's SCRAM secret: the salt and PBKDF2-SHA-256(password, salt, 4096).
#[derive(Clone)]
struct Secret {
    salt: Vec<u8>,
    salted: Vec<u8>,
}

/// The users the server accepts.
#[derive(Clone)]
pub struct Users {
    users: HashMap<String, Secret>,
    /// Answered for unknown users, so a failed login does not tell whether the name exists.
    decoy: Secret,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        f.debug_struct("Users").field("names", &names).finish()
    }
}

impl Users {
    /// Loads the users: the password file when given, else `analyst` with the password of
    /// `EARLYSTART_SERVER_PASSWORD`. Errors when neither is set: a server without a password
    /// is never started.
    pub fn load(password_file: Option<&Path>, env_password: Option<String>) -> Result<Self> {
        let mut users = HashMap::new();
        if let Some(path) = password_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the password file {}", path.display()))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, secret) = parse_line(line).with_context(|| {
                    format!(
                        "{}:{}: not a user line (expected `name:{SCHEME}$4096$<salt>$<hash>`, \
                         as printed by `earlystart hash-password NAME`)",
                        path.display(),
                        i + 1
                    )
                })?;
                users.insert(name, secret);
            }
            if users.is_empty() {
                bail!("the password file {} names no user", path.display());
            }
        } else if let Some(password) = env_password.filter(|p| !p.is_empty()) {
            users.insert(DEFAULT_USER.to_string(), Secret::new(&password));
        } else {
            bail!(
                "no credentials: set {PASSWORD_ENV} (the password of user `{DEFAULT_USER}`) or \
                 give --passwords FILE (lines from `earlystart hash-password NAME`)"
            );
        }
        Ok(Self {
            users,
            decoy: Secret::new(&hex::encode(random_bytes())),
        })
    }

    /// Names of the users, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.users.keys().cloned().collect();
        names.sort();
        names
    }
}

impl Secret {
    fn new(password: &str) -> Self {
        let salt = random_bytes().to_vec();
        let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
        Self { salt, salted }
    }
}

fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn parse_line(line: &str) -> Option<(String, Secret)> {
    let (name, rest) = line.split_once(':')?;
    let mut parts = rest.split('$');
    if parts.next()? != SCHEME || parts.next()? != SCRAM_ITERATIONS.to_string() {
        return None;
    }
    let salt = hex::decode(parts.next()?).ok()?;
    let salted = hex::decode(parts.next()?).ok()?;
    if parts.next().is_some() || name.trim().is_empty() || salted.len() != 32 {
        return None;
    }
    Some((name.trim().to_string(), Secret { salt, salted }))
}

/// The password-file line for a user (a fresh random salt each time).
pub fn hash_line(name: &str, password: &str) -> String {
    let secret = Secret::new(password);
    format!(
        "{name}:{SCHEME}${SCRAM_ITERATIONS}${}${}",
        hex::encode(&secret.salt),
        hex::encode(&secret.salted)
    )
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let secret = login
            .user()
            .and_then(|u| self.users.get(u))
            .unwrap_or(&self.decoy);
        Ok(Password::new(
            Some(secret.salt.clone()),
            secret.salted.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_line_round_trips_and_holds_no_clear_password() {
        let line = hash_line("maria", "correct horse");
        assert!(!line.contains("correct horse"));
        let (name, secret) = parse_line(&line).unwrap();
        assert_eq!(name, "maria");
        assert_eq!(
            secret.salted,
            gen_salted_password("correct horse", &secret.salt, SCRAM_ITERATIONS)
        );
        assert!(parse_line("maria:md5$abc").is_none());
        assert!(parse_line(&line.replace("$4096$", "$1000$")).is_none());
    }

    #[test]
    fn credentials_come_from_the_file_or_the_environment_or_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passwords");
        std::fs::write(
            &file,
            format!(
                "# analysts\n{}\n{}\n",
                hash_line("a", "x"),
                hash_line("b", "y")
            ),
        )
        .unwrap();
        assert_eq!(Users::load(Some(&file), None).unwrap().names(), ["a", "b"]);
        assert_eq!(
            Users::load(None, Some("pw".into())).unwrap().names(),
            ["analyst"]
        );
        let err = Users::load(None, Some(String::new())).unwrap_err();
        assert!(err.to_string().contains(PASSWORD_ENV), "{err}");
        std::fs::write(&file, "a:plain-password\n").unwrap();
        let err = format!("{:#}", Users::load(Some(&file), None).unwrap_err());
        assert!(err.contains("passwords:1"), "{err}");
    }
}
