//! Whether a Postgres connection asks for TLS. sqlx's default (`prefer`) wraps every statement
//! in TLS whenever the server offers it, on a loopback connection too, where it guards
//! nothing (the traffic never leaves the machine) and cost about a tenth of a Postgres sign-in
//! (BENCHMARKS.md). So when the admin chose no `sslmode`, a connection that stays on this
//! machine is tried without TLS first, and with the default again if the server refuses that.

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use std::str::FromStr;

/// `attempt` with the options `url` is best reached with (`given`, as parsed from it): without
/// TLS first where [`plain_first`] says so, else or when that fails as the URL says; those
/// options and what `attempt` made with them.
pub(super) async fn first_that_connects<T>(
    given: PgConnectOptions,
    url: &str,
    attempt: impl AsyncFn(&PgConnectOptions) -> Result<T, sqlx::Error>,
) -> Result<(PgConnectOptions, T), sqlx::Error> {
    if let Some(plain) = plain_first(&given, url) {
        if let Ok(made) = attempt(&plain).await {
            return Ok((plain, made));
        }
    }
    let made = attempt(&given).await?;
    Ok((given, made))
}

/// One connection to `url`, reached as the store's are (for the Gateway leadership's lock).
pub async fn connect_one(url: &str) -> Result<PgConnection, sqlx::Error> {
    let given = PgConnectOptions::from_str(url)?;
    let (_, connection) = first_that_connects(given, url, async |options| {
        PgConnection::connect_with(options).await
    })
    .await?;
    Ok(connection)
}

/// The options to try first for `url` (parsed as `given`), when they differ from `given`:
/// `given` without TLS, for a loopback address or a Unix socket with no `sslmode` chosen in
/// the URL or in `PGSSLMODE`.
pub(super) fn plain_first(given: &PgConnectOptions, url: &str) -> Option<PgConnectOptions> {
    let chosen = std::env::var_os("PGSSLMODE").is_some() || names_sslmode(url);
    (!chosen && stays_on_this_machine(given.get_host()))
        .then(|| given.clone().ssl_mode(PgSslMode::Disable))
}

/// Whether the URL's query sets `sslmode` (or sqlx's spelling, `ssl-mode`).
fn names_sslmode(url: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or_default();
        key.eq_ignore_ascii_case("sslmode") || key.eq_ignore_ascii_case("ssl-mode")
    })
}

/// A Unix socket's folder, `localhost`, or a loopback address.
fn stays_on_this_machine(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::super::PgStore;
    use super::super::test_db::ThrowawayDb;
    use super::*;

    /// Whether a connection of `store`'s pool talks TLS to the server.
    async fn uses_tls(store: &PgStore) -> bool {
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_refused_plain_login_is_made_again_as_the_url_says_and_its_error_is_the_one_told() {
        let url = "postgres://gg@127.0.0.1/gg";
        let given = PgConnectOptions::from_str(url).unwrap();
        // A server that takes TLS logins only (a `hostssl`-only pg_hba.conf).
        let tls_only = async |options: &PgConnectOptions| match options.get_ssl_mode() {
            PgSslMode::Disable => Err(sqlx::Error::Protocol("no encryption".into())),
            _ => Ok(()),
        };
        let (chosen, ()) = first_that_connects(given.clone(), url, tls_only)
            .await
            .unwrap();
        assert!(matches!(chosen.get_ssl_mode(), PgSslMode::Prefer));

        // One that refuses both: the error of the URL's own options is reported.
        let refuses = async |options: &PgConnectOptions| {
            Err::<(), _>(sqlx::Error::Protocol(format!(
                "{:?}",
                options.get_ssl_mode()
            )))
        };
        let error = first_that_connects(given, url, refuses).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "encountered unexpected or invalid data: Prefer"
        );
    }

    /// Runs on the cluster named by `GUILDGATE_TEST_POSTGRES_URL` (as `.ci/run` sets it, on
    /// 127.0.0.1), on a throwaway database.
    #[tokio::test]
    async fn a_store_on_this_machine_talks_without_tls_unless_its_url_asks_for_it() {
        let Some(db) = ThrowawayDb::create().await else {
            return;
        };
        let given = PgConnectOptions::from_str(&db.url).unwrap();
        assert!(
            stays_on_this_machine(given.get_host()),
            "the test cluster is on this machine"
        );

        let plain = PgStore::connect(&db.url, 1).await.unwrap();
        let asked = PgStore::connect(&format!("{}?sslmode=prefer", db.url), 1)
            .await
            .unwrap();

        assert!(!uses_tls(&plain).await, "no TLS on a loopback connection");
        let offered: String = sqlx::query_scalar("SHOW ssl")
            .fetch_one(plain.pool.pool())
            .await
            .unwrap();
        assert_eq!(
            uses_tls(&asked).await,
            offered == "on",
            "sslmode=prefer takes TLS when the server offers it"
        );
        drop((plain, asked));
        db.drop_database().await;
    }

    fn first(url: &str) -> Option<PgConnectOptions> {
        plain_first(&PgConnectOptions::from_str(url).unwrap(), url)
    }

    #[test]
    fn only_a_connection_that_stays_on_this_machine_with_no_sslmode_is_tried_without_tls() {
        for url in [
            "postgres://gg@127.0.0.1:5432/gg",
            "postgres://gg@127.8.9.10/gg",
            "postgres://gg@localhost/gg",
            "postgres://gg@[::1]:5432/gg",
            "postgres://gg@localhost/gg?host=/var/run/postgresql",
        ] {
            let plain = first(url).unwrap_or_else(|| panic!("{url}: tried with TLS"));
            assert!(matches!(plain.get_ssl_mode(), PgSslMode::Disable), "{url}");
        }
        for url in [
            "postgres://gg@db.example.com/gg",
            "postgres://gg@10.0.0.5/gg",
            "postgres://gg@127.0.0.1/gg?sslmode=prefer",
            "postgres://gg@localhost/gg?application_name=x&SSLMODE=require",
            "postgres://gg@[::1]/gg?ssl-mode=verify-full",
        ] {
            assert!(first(url).is_none(), "{url}: should keep the URL's TLS");
        }
    }
}
