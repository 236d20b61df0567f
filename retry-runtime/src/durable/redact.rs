//! A store URL as it may be printed: without its password, in any form the PostgreSQL client
//! accepts. Every message, event and `Debug` form that shows a URL shows this one.
//!
//! The URL is read as `tokio-postgres` reads it, erring on the side of hiding: the user info
//! runs to the last `@` (the client stops at the first, so a password with an unencoded `/`,
//! `?` or `@` is still hidden whole), and a query parameter is hidden when its key, once
//! percent-decoded, is `password` (so `pass%77ord=` is too). A query piece that is not
//! `key=value` is not something the client accepts and may be the tail of a password with an
//! unencoded `&`: it is hidden as well.

/// What stands for a hidden value.
const HIDDEN: &str = "***";

/// `url` with its password hidden.
pub(crate) fn redact(url: &str) -> String {
    hide(url).0
}

/// Whether `text` (a driver's message about `url`) quotes a part of the URL that [`redact`]
/// hides, as given or percent-decoded: such a message must not be shown.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn quotes_a_secret(url: &str, text: &str) -> bool {
    hide(url)
        .1
        .iter()
        .filter(|part| !part.is_empty())
        .any(|part| text.contains(part) || text.contains(&percent_decode(part)))
}

/// `url` with its password hidden, and the parts hidden.
fn hide(url: &str) -> (String, Vec<&str>) {
    let mut hidden = Vec::new();
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL the PostgreSQL store reads; say nothing of what follows its first `:`.
        return match url.split_once(':') {
            Some((scheme, tail)) => (format!("{scheme}:{HIDDEN}"), vec![tail]),
            None => (HIDDEN.to_owned(), vec![url]),
        };
    };
    let mut out = format!("{scheme}://");
    let mut after = rest;
    if let Some(at) = rest.rfind('@') {
        // User info with a password: kept up to its first `:`, unless that is no user name.
        if let Some((user, password)) = rest[..at].split_once(':') {
            hidden.push(password);
            if user.contains(['/', '?', '&', '=']) {
                hidden.push(user);
                out.push_str(HIDDEN);
            } else {
                out.push_str(user);
                out.push(':');
                out.push_str(HIDDEN);
            }
            out.push('@');
            after = &rest[at + 1..];
        }
    }
    let Some((location, query)) = after.split_once('?') else {
        out.push_str(after);
        return (out, hidden);
    };
    out.push_str(location);
    out.push('?');
    let pieces: Vec<String> = query
        .split('&')
        .map(|piece| match piece.split_once('=') {
            Some((key, value)) if percent_decode(key).eq_ignore_ascii_case("password") => {
                hidden.push(value);
                format!("{key}={HIDDEN}")
            }
            Some(_) => piece.to_owned(),
            None if piece.is_empty() => String::new(),
            None => {
                hidden.push(piece);
                HIDDEN.to_owned()
            }
        })
        .collect();
    out.push_str(&pieces.join("&"));
    (out, hidden)
}

/// `%XX` sequences decoded, as the client decodes keys and values (lossily: the client refuses
/// what is not UTF-8).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{percent_decode, quotes_a_secret, redact};

    #[test]
    fn a_message_quoting_a_hidden_part_is_known() {
        let url = "postgres://db/jobs?password=PW1&PW2&connect_timeout=5";
        assert!(quotes_a_secret(url, "unknown option `PW2&connect_timeout`"));
        assert!(quotes_a_secret("postgres://app:P%57@db", "password PW"));
        assert!(!quotes_a_secret(url, "connection refused"));
    }

    #[test]
    fn a_password_in_the_user_info_is_hidden() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/jobs"),
            "postgres://app:***@db:5432/jobs"
        );
        assert_eq!(redact("postgres://app@db/jobs"), "postgres://app@db/jobs");
        assert_eq!(redact("postgres://db/jobs"), "postgres://db/jobs");
    }

    #[test]
    fn a_password_with_an_unencoded_slash_question_mark_or_at_is_hidden_whole() {
        for (url, shown) in [
            (
                "postgres://app:se/cr?et@db/jobs",
                "postgres://app:***@db/jobs",
            ),
            (
                "postgres://app:s?e/c@db:5432/jobs?sslmode=disable",
                "postgres://app:***@db:5432/jobs?sslmode=disable",
            ),
            (
                "postgresql://app:a@b@db/jobs",
                "postgresql://app:***@db/jobs",
            ),
            ("postgres://app:/secret@db", "postgres://app:***@db"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn a_password_parameter_is_hidden_however_its_key_is_spelled() {
        assert_eq!(
            redact("postgresql://db/jobs?user=app&password=s3cret&sslmode=disable"),
            "postgresql://db/jobs?user=app&password=***&sslmode=disable"
        );
        assert_eq!(
            redact("postgres://db/jobs?user=app&pass%77ord=s3cret"),
            "postgres://db/jobs?user=app&pass%77ord=***"
        );
        assert_eq!(
            redact("postgres://db/jobs?%70assword=s3cret&PASSWORD=other"),
            "postgres://db/jobs?%70assword=***&PASSWORD=***"
        );
        // An unencoded `&` in the value: the tail is not a `key=value` piece.
        assert_eq!(
            redact("postgres://db/jobs?password=s3&cret"),
            "postgres://db/jobs?password=***&***"
        );
    }

    #[test]
    fn an_at_sign_in_the_query_does_not_hide_a_password_parameter() {
        assert_eq!(
            redact("postgres://db/jobs?user=a@b&password=s3cret"),
            "postgres://db/jobs?user=a@b&password=***"
        );
        let shown = redact("postgres://db/jobs?user=a@b&password=s3cr:et@x");
        assert!(
            !shown.contains("s3cr") && !shown.contains("et@x"),
            "{shown}"
        );
        assert_eq!(
            redact("postgres://app:s3cret@db/jobs?application_name=me@host"),
            "postgres://app:***@host",
            "hides too much rather than too little"
        );
    }

    #[test]
    fn what_is_not_a_url_shows_its_scheme_at_most() {
        assert_eq!(redact("postgres:app:s3cret@db"), "postgres:***");
        assert_eq!(redact("host=db password=s3cret"), "***");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("pass%77ord"), "password");
        assert_eq!(percent_decode("%7"), "%7");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
