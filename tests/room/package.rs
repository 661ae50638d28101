//! The Debian package (`cargo deb`), built from this build's binary: what
//! it holds (the binary, the systemd unit, `/etc/kendali/kendali.toml` as a
//! conffile, the broker's configuration and ACL as examples), what its
//! maintainer scripts do (the service's own user; the unit enabled and
//! started), the unit as systemd reads it (verified, and its hardening
//! scored offline), and the service's own command line, run from the
//! unpacked package with its shipped settings, serving a ready room.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("the command runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Whether `cargo deb` is installed (a loud skip, or a failure under CI).
fn cargo_deb(test: &str) -> bool {
    let ok = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!(
            "test `{test}` needs cargo-deb (`cargo install cargo-deb --locked`; .ci/run installs it)"
        );
        if support::under_ci() {
            panic!("{msg} (CI=true)");
        }
        eprintln!("\n*** SKIPPED {test}: {msg}\n");
    }
    ok
}

/// Where the unit is in the unpacked package.
fn unit_in(root: &Path) -> PathBuf {
    [
        "lib/systemd/system/kendali.service",
        "usr/lib/systemd/system/kendali.service",
    ]
    .iter()
    .map(|p| root.join(p))
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("no kendali.service under {}", root.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debian_package_installs_a_hardened_service_whose_command_serves_the_room() {
    let test = "the_debian_package_installs_a_hardened_service_whose_command_serves_the_room";
    if !cargo_deb(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("kendali.deb");
    // This build's binary: the tests do not make a release build.
    let (ok, out) = run(Command::new("cargo")
        .args([
            "deb",
            "--no-build",
            "--fast",
            "--profile",
            "dev",
            "--output",
        ])
        .arg(&deb)
        .current_dir(env!("CARGO_MANIFEST_DIR")));
    assert!(ok, "cargo deb: {out}");

    // Its control fields and files.
    let (ok, fields) = run(Command::new("dpkg-deb").arg("-f").arg(&deb));
    assert!(ok, "{fields}");
    assert!(fields.contains("Package: kendali"), "{fields}");
    assert!(fields.contains("adduser"), "depends on adduser: {fields}");
    let (ok, files) = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    assert!(ok, "{files}");
    for f in [
        "./usr/bin/kendali",
        "/systemd/system/kendali.service",
        "./etc/kendali/kendali.toml",
        "./usr/share/doc/kendali/examples/mosquitto.conf",
        "./usr/share/doc/kendali/examples/mosquitto.acl",
        "./usr/share/doc/kendali/README.md",
    ] {
        assert!(files.contains(f), "{f} not in the package:\n{files}");
    }
    let control = dir.path().join("control");
    let (ok, out) = run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    assert!(ok, "{out}");
    let read = |name: &str| std::fs::read_to_string(control.join(name)).unwrap_or_default();
    assert!(
        read("conffiles").contains("/etc/kendali/kendali.toml"),
        "the settings are a conffile: {}",
        read("conffiles")
    );
    let postinst = read("postinst");
    assert!(postinst.contains("adduser --system"), "{postinst}");
    // Enabled on a first installation (with `enable = false` cargo-deb only
    // re-enables a unit that was installed before, behind
    // `debian-installed`), and started (not only `try-restart`ed).
    assert!(
        postinst.contains("deb-systemd-helper enable kendali.service")
            && !postinst.contains("debian-installed kendali.service"),
        "the unit is enabled: {postinst}"
    );
    assert!(
        postinst.contains("_dh_action=start"),
        "and started: {postinst}"
    );
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");

    // The unit as systemd reads it, pointed at the unpacked binary.
    let root = dir.path().join("root");
    let (ok, out) = run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    assert!(ok, "{out}");
    let unit = std::fs::read_to_string(unit_in(&root)).unwrap();
    for line in [
        "User=kendali",
        "Restart=on-failure",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ExecStart=/usr/bin/kendali serve --config /etc/kendali/kendali.toml",
    ] {
        assert!(unit.contains(line), "{line} not in the unit:\n{unit}");
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap()
        .to_owned();
    let here = |p: &str| root.join(p.trim_start_matches('/')).display().to_string();
    let local_unit = dir.path().join("kendali.service");
    std::fs::write(
        &local_unit,
        unit.replace("/usr/bin/kendali", &here("/usr/bin/kendali"))
            .replace("/etc/kendali/", &format!("{}/", here("/etc/kendali"))),
    )
    .unwrap();
    if Path::new("/usr/bin/systemd-analyze").exists() {
        let (ok, out) = run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(&local_unit));
        assert!(ok, "systemd-analyze verify: {out}");
        let (_, out) = run(Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&local_unit));
        let exposure = out
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .and_then(|l| l.split_whitespace().find_map(|w| w.parse::<f64>().ok()))
            .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
        println!("systemd-analyze security: overall exposure {exposure}");
        assert!(exposure <= 3.0, "the unit's exposure is {exposure}:\n{out}");
    }

    // The service's command, from the package, with its shipped settings
    // (Mosquitto on 127.0.0.1:1883, no simulated city); the port and the
    // broker client id are the test's own.
    let http = support::free_addr();
    let mut args: Vec<String> = exec
        .split_whitespace()
        .map(|w| {
            if w.starts_with('/') {
                here(w)
            } else {
                w.to_owned()
            }
        })
        .collect();
    let bin = args.remove(0);
    let mut child = tokio::process::Command::new(bin)
        .args(&args)
        .env("KENDALI_HTTP_ADDR", http.to_string())
        .env(
            "KENDALI__MQTT__CLIENT_ID",
            format!("kendali-deb-{}", std::process::id()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the packaged binary starts");
    let ready = support::eventually(30, "the packaged service ready", || async move {
        let r = reqwest::get(format!("http://{http}/readyz")).await.ok()?;
        (r.status() == 200).then_some(r.json::<serde_json::Value>().await.ok()?)
    })
    .await;
    assert!(
        ready["store"].as_str().unwrap_or("").starts_with("memory"),
        "no database in the shipped settings: {ready}"
    );
    // A real city: the shipped settings run no simulated one, and the
    // anonymous wall is off.
    let me = reqwest::get(format!("http://{http}/api/me")).await.unwrap();
    assert_eq!(
        me.status(),
        401,
        "no anonymous wall in the shipped settings"
    );
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
