//! Rebuild when a migration changes: `sqlx::migrate!` embeds the files at compile time.

/// The migration directories this crate embeds.
const MIGRATIONS: [&str; 2] = ["postgres", "sqlite"];

fn main() {
    for dir in MIGRATIONS {
        println!("cargo:rerun-if-changed=../../migrations/{dir}");
    }
}
