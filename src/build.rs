//! Build script: stamps the binary with the commit it was built from
//! (`kendali --version`, and so the bench report's `commit`), with `-dirty`
//! when the sources differ from it.

use std::path::Path;
use std::process::Command;

fn main() {
    // Again after a commit, a checkout, or an edit of what goes into the
    // binary (for `-dirty`). Paths that do not exist are left out: cargo would
    // rerun the script on every build for them.
    for p in [
        ".git/HEAD",
        ".git/refs/heads",
        ".git/packed-refs",
        "src",
        "web",
        "migrations",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=KENDALI_COMMIT={commit}");
}
