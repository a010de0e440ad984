//! `metaengine token …`: mints an HS256 token with the secret the server uses, and prints it
//! alone on stdout (`TOKEN=$(metaengine token --user alice --roles admin)`). Needs no database.

use std::time::Duration;

use anyhow::Context as _;
use metaengine_server::auth::{Claims, load_or_create_secret, mint_hs256};

use crate::cli::{GlobalArgs, TokenArgs};

/// The variable holding the HS256 secret; when unset (or empty) the data directory's is used.
const SECRET_VARIABLE: &str = "METAENGINE_JWT_SECRET";

pub fn run(global: &GlobalArgs, args: &TokenArgs) -> anyhow::Result<()> {
    for (flag, value) in [
        ("--user", &args.user),
        ("--tenant", &args.tenant),
        ("--realm", &args.realm),
    ] {
        if value.trim().is_empty() {
            anyhow::bail!("`{flag}` must not be empty: the server refuses a token without it");
        }
    }
    let secret = match std::env::var(SECRET_VARIABLE) {
        Ok(secret) if !secret.is_empty() => secret,
        _ => {
            let dir = global.data_dir();
            let (secret, created) = load_or_create_secret(&dir).with_context(|| {
                format!("cannot read or create the JWT secret in {}", dir.display())
            })?;
            if created {
                eprintln!(
                    "created a new JWT secret in {}; `metaengine serve` with the same data \
                     directory accepts this token",
                    dir.display()
                );
            }
            secret
        }
    };
    let roles = args
        .roles
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    let claims = Claims::new(
        args.user.as_str(),
        args.tenant.as_str(),
        args.realm.as_str(),
        roles,
        Duration::from_secs(args.ttl),
    );
    println!("{}", mint_hs256(&secret, &claims)?);
    Ok(())
}
