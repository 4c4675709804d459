//! Packaging for the places people run guildgate: the systemd unit (hardened, `Type=notify`,
//! checked by `systemd-analyze verify`) with the readiness guildgate sends on `$NOTIFY_SOCKET`,
//! and the Kubernetes manifests in `deploy/kubernetes`.

use crate::processes::{Deployment, free_port};
use crate::test_db::Backend;
use guildgate::config::Settings;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

fn deploy_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Receives one datagram (at most `seconds` later) on a thread of its own.
async fn receive(socket: UnixDatagram, seconds: u64) -> (UnixDatagram, String) {
    tokio::task::spawn_blocking(move || {
        socket
            .set_read_timeout(Some(Duration::from_secs(seconds)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a notification in time");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        (socket, text)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn guildgate_tells_systemd_it_is_ready_once_it_listens_and_that_it_stops_on_sigterm() {
    // Arrange: the socket systemd would pass in $NOTIFY_SOCKET.
    let deployment = Deployment::new(Backend::Sqlite, "").await;
    let path = deployment.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let port = free_port();
    let notify = path.display().to_string();

    // Act
    let process = deployment.spawn(port, &[("NOTIFY_SOCKET", &notify)]);
    let (socket, ready) = receive(socket, 30).await;
    let readyz = reqwest::get(format!("{}/readyz", process.address))
        .await
        .expect("it listens when it says it is ready")
        .status();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &process.pid().to_string()])
        .status()
        .unwrap();
    let (_, stopping) = receive(socket, 30).await;

    // Assert
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert_eq!(readyz, 200, "ready means serving: {}", process.log());
    assert!(sent.success());
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
}

/// `Key=value` settings of the unit's `[Service]` section, in order.
fn service_settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .skip_while(|l| l.trim() != "[Service]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_systemd_unit_is_hardened_and_systemd_analyze_verifies_it() {
    // Arrange
    let unit = deploy_file("systemd/guildgate.service");
    let settings = service_settings(&unit);
    let has = |key: &str, value: &str| settings.iter().any(|(k, v)| k == key && v == value);

    // Act: systemd's own check, on a copy that starts the binary this test built.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("guildgate.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/guildgate", env!("CARGO_BIN_EXE_guildgate")),
    )
    .unwrap();
    let verified = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output();

    // Assert
    for (key, value) in [
        ("Type", "notify"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "guildgate"),
        ("WorkingDirectory", "/var/lib/guildgate"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ] {
        assert!(has(key, value), "{key}={value} in the unit");
    }
    let stop = settings
        .iter()
        .find(|(k, _)| k == "TimeoutStopSec")
        .and_then(|(_, v)| humantime::parse_duration(v).ok())
        .expect("TimeoutStopSec");
    assert!(
        stop > Duration::from_secs(20),
        "longer than shutdown_timeout"
    );
    match verified {
        Ok(out) => {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "systemd-analyze verify: {said}");
            assert!(said.trim().is_empty(), "no warning either: {said}");
        }
        Err(e) if std::env::var_os("CI").is_none() => {
            println!("skipped: systemd-analyze is not installed here ({e}); CI installs it");
        }
        Err(e) => panic!("CI must have systemd-analyze (the systemd package): {e}"),
    }
}

/// The `- name: GUILDGATE…` variables of a manifest with their literal values (`x` where the
/// value comes from elsewhere).
fn environment(manifest: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = manifest.lines().collect();
    let mut env = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.trim().strip_prefix("- name: GUILDGATE") else {
            continue;
        };
        let value = lines
            .get(i + 1)
            .and_then(|next| next.trim().strip_prefix("value: "))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| "x".to_owned());
        env.push((format!("GUILDGATE{name}"), value));
    }
    env
}

/// The text after `key:` on the first line after `after` that has it.
fn value_after(manifest: &str, after: &str, key: &str) -> Option<String> {
    manifest
        .lines()
        .skip_while(|l| !l.contains(after))
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_owned())
        })
}

#[test]
fn the_kubernetes_manifests_probe_health_take_secrets_from_a_secret_and_name_only_real_settings() {
    // Arrange
    let deployment = deploy_file("kubernetes/deployment.yaml");
    let secret = deploy_file("kubernetes/secret.example.yaml");
    let config = deploy_file("kubernetes/config.yaml");
    let pdb = deploy_file("kubernetes/pdb.yaml");
    let kustomization = deploy_file("kubernetes/kustomization.yaml");

    // Act: the environment and the config file as guildgate would load them.
    let env = environment(&deployment);
    let toml: String = config
        .lines()
        .skip_while(|l| !l.contains("guildgate.toml: |"))
        .skip(1)
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("guildgate.toml");
    std::fs::write(&file, &toml).unwrap();
    let loaded = Settings::load_with(Some(&file), env.clone()).expect("the settings load");

    // Assert
    assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
    assert_eq!(loaded.server.listen, "0.0.0.0:8080");
    assert!(deployment.contains("containerPort: 8080"));
    assert_eq!(
        value_after(&deployment, "livenessProbe", "path").as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        value_after(&deployment, "readinessProbe", "path").as_deref(),
        Some("/readyz")
    );
    let from_secret: Vec<&(String, String)> = env.iter().filter(|(_, v)| v == "x").collect();
    let names: Vec<&str> = from_secret.iter().map(|(k, _)| k.as_str()).collect();
    for needed in [
        "GUILDGATE__DATABASE__URL",
        "GUILDGATE__DISCORD__CLIENT_SECRET",
        "GUILDGATE__SECRETS__ENCRYPTION_KEY",
    ] {
        assert!(
            names.contains(&needed),
            "{needed} comes from the Secret: {names:?}"
        );
    }
    for key in deployment
        .lines()
        .skip_while(|l| !l.contains("secretKeyRef"))
        .filter_map(|l| l.trim().strip_prefix("key: "))
    {
        assert!(
            secret.contains(&format!("  {key}:")),
            "the Secret holds {key}"
        );
    }
    assert!(secret.contains("kind: Secret") && secret.contains("name: guildgate"));
    assert!(deployment.contains("name: guildgate\n                  key:"));
    assert!(pdb.contains("kind: PodDisruptionBudget") && pdb.contains("minAvailable: 1"));
    assert!(pdb.contains("app.kubernetes.io/name: guildgate"));
    for file in [
        "secret.example.yaml",
        "config.yaml",
        "keys-volume.yaml",
        "deployment.yaml",
        "service.yaml",
        "pdb.yaml",
    ] {
        assert!(
            kustomization.contains(&format!("- {file}")),
            "{file} is applied"
        );
    }
}
