//! Database URLs in messages without their secrets ([`redact_url`]), and the check that a
//! Postgres URL names only parameters sqlx understands ([`check_postgres_url`]).
//!
//! The server's own messages (`conveyor serve`, `migrate`, ...) use them too: one place
//! decides what of a URL may be printed.

use std::borrow::Cow;

use url::Url;

/// What a hidden value is replaced with.
const HIDDEN: &str = "***";

/// The Postgres query parameters whose values are shown: everything sqlx's Postgres URL
/// parser takes (matching names case-sensitively) that is not a secret; TLS file *paths* are
/// shown.
const POSTGRES_SHOWN: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "application_name",
];

/// The rest of what sqlx's Postgres parser takes: secrets, whose values are hidden (besides
/// `options[NAME]`). It logs the value of any parameter in neither list.
const POSTGRES_SECRET: &[&str] = &["password", "options"];

/// The SQLite query parameters whose values are shown.
const SQLITE_SHOWN: &[&str] = &["mode", "cache", "immutable", "vfs"];

/// Whether the value of the (lower-case) parameter `lower` may be shown.
fn shown(lower: &str) -> bool {
    POSTGRES_SHOWN.contains(&lower) || SQLITE_SHOWN.contains(&lower)
}

/// Whether sqlx's Postgres parser takes the parameter `key` (case-sensitively).
fn postgres_parameter(key: &str) -> bool {
    POSTGRES_SHOWN.contains(&key)
        || POSTGRES_SECRET.contains(&key)
        || (key.starts_with("options[") && key.ends_with(']'))
}

/// `url` for messages and logs: the userinfo password, the value of every query parameter
/// that may be a secret (`password`, `sslpassword`, `options`, any unknown one; names
/// compared case-insensitively), the name of an unknown one, and the fragment become `***`. A string that does not parse
/// as a URL is not shown at all, nor the rest of one without `//` (other than `sqlite:`).
///
/// ```
/// use conveyor_bench::redact_url;
/// assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
/// assert_eq!(
///     redact_url("postgres://u@h/db?sslmode=require&PassWord=pw"),
///     "postgres://u@h/db?sslmode=require&PassWord=***"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url.trim()) else {
        return "(a URL that does not parse; not shown, it may hold a password)".to_owned();
    };
    if parsed.cannot_be_a_base() && parsed.scheme() != "sqlite" {
        // `user:password@host` without `//`: it all parses as the path
        return format!("{}:{HIDDEN}", parsed.scheme());
    }
    if parsed.password().is_some() {
        // only fails for URLs that cannot have a password, which then have none
        let _ = parsed.set_password(Some(HIDDEN));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let shown = shown(&key.to_ascii_lowercase());
                let value = if shown { value } else { Cow::Borrowed(HIDDEN) };
                let key = if known_name(&key) {
                    key
                } else {
                    Cow::Borrowed(HIDDEN)
                };
                (key.into_owned(), value.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some(HIDDEN));
    }
    parsed.to_string()
}

/// Whether `key` names a parameter sqlx knows, in any case: an unknown name may itself be a
/// secret (`?s3cret`), so only known ones are shown.
fn known_name(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    shown(&lower) || postgres_parameter(&lower) || lower == "sslpassword"
}

/// Check that `url` parses and names only query parameters sqlx's Postgres parser takes:
/// sqlx logs the value of any other (a misspelt or upper-case `PASSWORD=`, an
/// `sslpassword=`) in plain text, so such a URL is refused before it reaches sqlx.
///
/// # Errors
/// A message (without the URL or the parameter's value) saying what is wrong.
pub fn check_postgres_url(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url.trim()).map_err(|e| format!("not a valid URL ({e})"))?;
    for (i, (key, _)) in parsed.query_pairs().enumerate() {
        if !postgres_parameter(&key) {
            let name = if known_name(&key) {
                format!("`{key}`")
            } else {
                format!("number {} (its name is not shown)", i + 1)
            };
            return Err(format!(
                "query parameter {name} is not one the Postgres driver takes (names are \
                 case-sensitive): use {}",
                [POSTGRES_SHOWN, POSTGRES_SECRET].concat().join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_form_is_hidden() {
        for url in [
            "postgres://u:s3cret@h/db",
            "postgres://u@h/db?password=s3cret",
            "postgres://u@h/db?PASSWORD=s3cret",
            "postgres://u@h/db?sslmode=require&sslpassword=s3cret",
            "postgres://u@h/db?options=-c%20x%3Ds3cret",
            "postgres://u@h/db?pass%77ord=s3cret",
            "postgres://u@h/db?s3cret",
            "postgres://u@h/db#s3cret",
            "postgresql://u:s3cret@h:5432/db?password=s3cret&application_name=x",
            "u:s3cret@h/db",
            "postgres://u:s3@cret@h/db",
            "postgres://u:s3cret@/db?host=/run/pg",
            "mysql://u:s3cret@h/db",
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains("s3cret"), "{url} -> {shown}");
        }
    }

    #[test]
    fn what_is_not_secret_stays_readable() {
        for url in [
            "postgres://u@h/db",
            "postgres://h:5433/db",
            "postgres://u@h/db?sslmode=require&application_name=conveyor",
            "sqlite://data/c.db",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn unknown_postgres_parameters_are_refused_without_their_value() {
        assert!(check_postgres_url("postgres://u:pw@h/db?sslmode=require&password=pw").is_ok());
        assert!(check_postgres_url("postgres://h/db?options[search_path]=x").is_ok());
        for url in [
            "postgres://u@h/db?PASSWORD=s3cret",
            "postgres://u@h/db?sslpassword=s3cret",
            "postgres://u@h/db?s3cret",
        ] {
            let err = check_postgres_url(url).unwrap_err();
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
        assert!(check_postgres_url("postgres://u@h/db?PASSWORD=x")
            .unwrap_err()
            .contains("`PASSWORD`"));
    }
}
